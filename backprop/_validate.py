"""Argument checks shared by the public functions.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right
kind, wrong value) with a message that names the argument, what was expected
and what came. None of them changes its arguments; array checks return the
array to use (an integer or boolean array becomes float64, losslessly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from .activations import ACTIVATIONS
from .costs import COSTS, Cost

Params = list[tuple[np.ndarray, np.ndarray]]


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_float_array(value: object, name: str) -> np.ndarray:
    """``value`` as a floating-point ndarray (no copy when it already is one)."""
    if type(value) is np.ndarray and value.dtype.kind == "f":  # the common case, at once
        return value
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{name} must be a 2-D array, got {_describe(value)}: {exc}") from exc
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {array.dtype}")
    return array


def _total(array: np.ndarray) -> float:
    """A sum that is finite when every entry is: the sum of squares (BLAS's dot, the cheapest
    call) for a small contiguous array, the plain sum (no BLAS threads) for the rest. Either
    can also overflow with finite entries: a non-finite total calls for the entrywise test."""
    if array.size <= 4096 and array.flags.c_contiguous:
        return float(np.vdot(array, array))
    return float(np.add.reduce(array, axis=None))


def _finite(array: np.ndarray, name: str) -> None:
    if math.isfinite(_total(array)) or np.isfinite(array).all():
        return
    bad = np.argwhere(~np.isfinite(array))[0]
    value = array[tuple(bad)]
    raise ValueError(f"{name} must be finite, but {name}[{', '.join(map(str, bad))}] is {value}")


def check_finite_real(value: object, name: str) -> np.ndarray:
    """``value`` as a real floating-point array with finite entries only."""
    array = as_float_array(value, name)
    _finite(array, name)
    return array


def check_params(params: object) -> Params:
    """A list of (W, b) pairs whose shapes chain: W^l (n_l, n_{l-1}), b^l (n_l, 1)."""
    if isinstance(params, np.ndarray) or not isinstance(params, Sequence):
        raise TypeError(
            f"params must be a list of (W, b) tuples, one per layer, got {_describe(params)}"
        )
    if len(params) == 0:
        raise ValueError("params must hold at least one layer, got an empty list")
    checked: Params = []
    total = 0.0
    for l, pair in enumerate(params, start=1):
        if not (type(pair) is tuple or isinstance(pair, Sequence)) or len(pair) != 2:
            raise TypeError(
                f"layer {l}: params[{l - 1}] must be a (W, b) pair, got {_describe(pair)}"
            )
        W = as_float_array(pair[0], f"layer {l}: W")
        b = as_float_array(pair[1], f"layer {l}: b")
        if W.ndim != 2 or 0 in W.shape:
            raise ValueError(
                f"layer {l}: W must be a non-empty 2-D array (n_{l}, n_{l - 1}), "
                f"got shape {W.shape}"
            )
        if checked and W.shape[1] != checked[-1][0].shape[0]:
            n_prev = checked[-1][0].shape[0]
            raise ValueError(
                f"layer {l}: W has shape {W.shape}, but layer {l - 1} has {n_prev} units, "
                f"so W must have shape (n_{l}, {n_prev})"
            )
        if b.shape != (W.shape[0], 1):
            raise ValueError(
                f"layer {l}: b must have shape ({W.shape[0]}, 1) (one row per unit, one column), "
                f"got shape {b.shape}"
            )
        total += _total(W) + _total(b)
        checked.append((W, b))
    if not math.isfinite(total):  # one test for every layer; the entrywise ones name the entry
        for l, (W, b) in enumerate(checked, start=1):
            _finite(W, f"layer {l}: W")
            _finite(b, f"layer {l}: b")
    return checked


def check_activations(activations: object, n_layers: int) -> tuple[str, ...]:
    """One known activation name per layer."""
    if isinstance(activations, str) or not isinstance(activations, Sequence):
        raise TypeError(
            "activations must be a sequence of names, one per layer "
            f"(e.g. ['tanh', 'sigmoid']), got {_describe(activations)}"
        )
    if len(activations) != n_layers:
        raise ValueError(
            f"activations has {len(activations)} names but params has {n_layers} layers; "
            "give one activation per layer"
        )
    for l, name in enumerate(activations, start=1):
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise ValueError(
                f"layer {l}: unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}"
            )
        if l < n_layers and ACTIVATIONS[name].vjp is not None:
            raise ValueError(
                f"activations[{l - 1}] (layer {l} of {n_layers}) is {name!r}, which is not "
                "elementwise and is taken on the output layer only; give layer "
                f"{l} an elementwise activation"
            )
    return tuple(activations)


def check_cost(cost: object, activations: Sequence[str]) -> Cost:
    """A known cost name whose needs the output activation meets."""
    if not isinstance(cost, str) or cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; known: {', '.join(sorted(COSTS))}")
    entry = COSTS[cost]
    allowed = entry.output_activations
    if allowed is not None and activations[-1] not in allowed:
        raise ValueError(
            f"cost {cost!r} needs a {' or '.join(sorted(allowed))} output layer, "
            f"got {activations[-1]!r} for layer {len(activations)}"
        )
    return entry


def check_X(X: object, params: Params) -> np.ndarray:
    """Inputs of shape (n_0, m), m >= 1, finite."""
    X = as_float_array(X, "X")
    n0 = params[0][0].shape[1]
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D with samples as columns, shape ({n0}, m), got shape {X.shape}"
        )
    if X.shape[1] == 0:
        raise ValueError(f"X is an empty batch: shape {X.shape} has no samples (columns)")
    if X.shape[0] != n0:
        raise ValueError(
            f"X has {X.shape[0]} rows but layer 1's W takes {n0} inputs; "
            f"X must have shape ({n0}, m)"
        )
    _finite(X, "X")
    return X


def check_Y(Y: object, X: np.ndarray, params: Params, cost: str) -> np.ndarray:
    """Targets of shape (n_L, m) matching X's samples, finite, in [0, 1] for bce."""
    Y = as_float_array(Y, "Y")
    nL, m = params[-1][0].shape[0], X.shape[1]
    if Y.ndim != 2:
        raise ValueError(
            f"Y must be 2-D with samples as columns, shape ({nL}, {m}), got shape {Y.shape}"
        )
    if Y.shape[1] != m:
        raise ValueError(f"X has {m} samples (columns) but Y has {Y.shape[1]}; they must match")
    if Y.shape[0] != nL:
        raise ValueError(f"Y has {Y.shape[0]} rows but the output layer has {nL} units")
    _finite(Y, "Y")
    if cost == "bce" and ((Y < 0).any() or (Y > 1).any()):
        bad = Y[(Y < 0) | (Y > 1)][0]
        raise ValueError(
            f"Y holds labels outside [0, 1] (e.g. {bad}), which cost 'bce' cannot take"
        )
    if cost == "cce":
        check_one_hot(Y, "Y")
    return Y


def check_one_hot(Y: np.ndarray, name: str) -> None:
    """Every column of ``Y`` one-hot: zeros and a single 1 (categorical labels, for cce)."""
    binary = (Y == 0) | (Y == 1)
    counts = (Y == 1).sum(axis=0)
    if not binary.all() or (counts != 1).any():
        s = int(np.flatnonzero(~binary.all(axis=0) | (counts != 1))[0])
        raise ValueError(
            f"{name} must be one-hot by columns for cost 'cce' (zeros and a single 1 in each "
            f"column), but column {s} is {Y[:, s].tolist()}"
        )


def check_problem(
    params: object, X: object, Y: object, activations: object, cost: object
) -> tuple[Params, np.ndarray, np.ndarray, tuple[str, ...], Cost]:
    """Every check a loss or gradient call needs, in the order a reader expects."""
    p = check_params(params)
    acts = check_activations(activations, len(p))
    entry = check_cost(cost, acts)
    Xc = check_X(X, p)
    Yc = check_Y(Y, Xc, p, cost)  # type: ignore[arg-type]
    return p, Xc, Yc, acts, entry


def check_positive_real(value: object, name: str) -> float:
    """A finite real number > 0 (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive finite number, got {_describe(value)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def check_l2(value: object) -> float:
    """The L2 penalty's strength lambda: a finite real number >= 0 (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"l2 must be a finite number >= 0, got {_describe(value)}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"l2 must be a finite number >= 0, got {value}")
    return float(value)


def check_positive_int(value: object, name: str) -> int:
    """A whole number >= 1 (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a positive whole number, got {_describe(value)}")
    if value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value}")
    return int(value)
