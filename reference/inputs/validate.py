"""The caller's problem, validated once at the harness's entry.

A problem (params, X, Y, activations, cost) that is itself wrong is the
caller's mistake, never the implementation's: :func:`validate_problem` raises
:class:`ProblemError` (a ``ValueError``; the CLI's exit status 2) naming the
argument, what was expected and what came, before any implementation sees it.
What passes comes back as float64 copies, so nothing behind the entry point
converts or checks it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .problems import Params, compatible_costs, output_only


class ProblemError(ValueError):
    """The problem given to the harness is invalid (a usage error, not a finding)."""


def known_activations() -> set[str]:
    """Names the harness can check: the built-in table's and the NumPy twins'."""
    from ..formulas.specs import NUMPY_ACTIVATIONS
    from ..registry import activation_names

    return set(activation_names()) | set(NUMPY_ACTIVATIONS)


def known_costs() -> set[str]:
    """Costs the harness can check: the built-in table's and the NumPy twins'."""
    from ..formulas.specs import NUMPY_COSTS
    from ..registry import cost_names

    return set(cost_names()) | set(NUMPY_COSTS)


def _real(name: str, value: Any, ndim: int) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise ProblemError(f"{name} must be a numeric array, got {type(value).__name__}") from exc
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ProblemError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ProblemError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ProblemError(f"{name} must be finite, got NaN or inf")
    return np.array(a, dtype=np.float64)


def validate_problem(
    params: Any, X: Any, Y: Any, activations: Any, cost: Any
) -> tuple[Params, np.ndarray, np.ndarray, list[str], str]:
    """``(params, X, Y, activations, cost)`` checked against DESIGN.md's conventions and
    returned as float64 copies: W^l (n_l, n_{l-1}), b^l (n_l, 1), X (n_0, m), Y (n_L, m),
    m >= 1, one known activation name per layer (an output-only one such as softmax on the
    output layer only), a known cost that the output activation allows, labels in [0, 1] for
    bce and one-hot by columns for cce, every value finite."""
    checked = _checked_params(params)
    X, Y = _checked_data(X, Y, checked)
    acts = _checked_activations(activations, len(checked))
    _check_cost(cost, acts[-1], Y)
    return checked, X, Y, acts, cost


def _checked_params(params: Any) -> Params:
    """``params`` as float64 ``(W, b)`` pairs: W^l (n_l, n_{l-1}), b^l (n_l, 1), each layer
    fed by the one before."""
    if isinstance(params, (str, bytes, np.ndarray)) or not isinstance(params, Sequence):
        raise ProblemError(f"params must be a list of (W, b) pairs, got {type(params).__name__}")
    if not params:
        raise ProblemError("params must hold at least one (W, b) layer, got an empty list")
    checked: Params = []
    for l, pair in enumerate(params, start=1):
        if not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2:
            raise ProblemError(f"params[{l - 1}] must be a (W, b) pair, got {type(pair).__name__}")
        W = _real(f"layer {l}'s W", pair[0], 2)
        b = _real(f"layer {l}'s b", pair[1], 2)
        if b.shape != (W.shape[0], 1):
            raise ProblemError(
                f"layer {l}'s b must have shape ({W.shape[0]}, 1) to match W {W.shape}, "
                f"got {b.shape}"
            )
        if checked and W.shape[1] != checked[-1][0].shape[0]:
            raise ProblemError(
                f"layer {l}'s W has {W.shape[1]} columns but layer {l - 1} has "
                f"{checked[-1][0].shape[0]} units (W^l must be (n_l, n_(l-1)))"
            )
        if W.size == 0:
            raise ProblemError(f"layer {l}'s W must not be empty, got shape {W.shape}")
        checked.append((W, b))
    return checked


def _checked_data(X: Any, Y: Any, checked: Params) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n_0, m), m >= 1, and ``Y`` (n_L, m) as float64 copies."""
    X = _real("X", X, 2)
    Y = _real("Y", Y, 2)
    n0, nL = checked[0][0].shape[1], checked[-1][0].shape[0]
    if X.shape[0] != n0:
        raise ProblemError(f"X must have {n0} rows (one per input, samples as columns), "
                           f"got shape {X.shape}")  # fmt: skip
    if X.shape[1] < 1:
        raise ProblemError(f"X must hold at least one sample (column), got shape {X.shape}")
    if Y.shape != (nL, X.shape[1]):
        raise ProblemError(f"Y must have shape ({nL}, {X.shape[1]}) (outputs x samples), "
                           f"got {Y.shape}")  # fmt: skip
    return X, Y


def _checked_activations(activations: Any, layers: int) -> list[str]:
    """One known activation name per layer, an output-only one on the output layer only."""
    if isinstance(activations, (str, bytes)) or not isinstance(activations, Sequence):
        raise ProblemError(
            f"activations must be a list of names, one per layer, got {activations!r}"
        )
    acts = list(activations)
    if len(acts) != layers:
        raise ProblemError(
            f"activations names {len(acts)} layers but params has {layers}: "
            f"give one name per layer, got {acts!r}"
        )
    known = known_activations()
    for l, name in enumerate(acts, start=1):
        if not isinstance(name, str) or name not in known:
            raise ProblemError(
                f"activations[{l - 1}] must be one of {', '.join(sorted(known))}, got {name!r}"
            )
        if l < len(acts) and output_only(name):
            raise ProblemError(
                f"activations[{l - 1}] (layer {l} of {len(acts)}) must be an elementwise "
                f"activation, got {name!r}, which is taken on the output layer only"
            )
    return acts


def _check_cost(cost: Any, output: str, Y: np.ndarray) -> None:
    """A known cost that the ``output`` activation allows, with labels it takes: in [0, 1]
    for bce, one-hot by columns for cce."""
    from ..registry import cost_names, cost_output_activations

    costs = known_costs()
    if not isinstance(cost, str) or cost not in costs:
        raise ProblemError(f"cost must be one of {', '.join(sorted(costs))}, got {cost!r}")
    if cost in cost_names() and cost not in compatible_costs(output):
        allowed = " or ".join(sorted(cost_output_activations(cost) or ()))
        why = " (its log(A) and log(1 - A) need A in (0, 1))" if cost == "bce" else ""
        raise ProblemError(f"cost {cost!r} needs a {allowed} output layer, got {output!r}{why}")
    if cost == "bce" and not ((Y >= 0) & (Y <= 1)).all():
        raise ProblemError(
            f"Y must lie in [0, 1] for bce, got values from {Y.min():g} to {Y.max():g}"
        )
    if cost == "cce":
        binary = ((Y == 0) | (Y == 1)).all(axis=0) & ((Y == 1).sum(axis=0) == 1)
        if not binary.all():
            s = int(np.flatnonzero(~binary)[0])
            raise ProblemError(
                "Y must be one-hot by columns for cce (zeros and a single 1 per column), "
                f"got column {s} = {Y[:, s].tolist()}"
            )


def validate_l2(l2: Any) -> float:
    """The L2 penalty's lambda as a float: a finite real number >= 0 (a TypeError for anything
    else than a number, :class:`ProblemError` for a negative or non-finite one)."""
    if isinstance(l2, bool) or not isinstance(l2, (int, float, np.integer, np.floating)):
        raise TypeError(f"l2 must be a finite number >= 0, got {type(l2).__name__} {l2!r}")
    if not (np.isfinite(l2) and l2 >= 0):
        raise ProblemError(f"l2 must be a finite number >= 0, got {l2!r}")
    return float(l2)
