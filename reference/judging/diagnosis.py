"""Naming the kind of mistake a wrong gradient shows.

Given the implementation's gradient ``a`` and the reference ``t`` for one
parameter array, :func:`diagnose` looks for the patterns hand-written backprop
produces: a constant factor (2, 1/2, m, 1/m, -1, or another measured value), a
transposed or zero gradient, non-finite entries. :func:`locate` reads the
per-layer verdicts for the pattern "right at the output, wrong from layer k
down", whose cause is layer k's delta.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_FIT = 1e-6  # how closely a * (1/c) must match t for "a constant factor c" to be named


def relative_error(a: np.ndarray, t: np.ndarray) -> float:
    """||a - t|| / max(||a|| + ||t||, tiny): norm-wise, so dead units and tiny entries
    do not dominate (DESIGN.md, "The oracles"). 0 for two zero arrays; at most 1 (the
    triangle inequality; rounding can push the quotient an ulp above it, where a = -c t)."""
    denom = float(np.linalg.norm(a) + np.linalg.norm(t))
    return min(1.0, float(np.linalg.norm(a - t)) / max(denom, np.finfo(np.float64).tiny))


def factor_name(c: float, m: int, outputs: int | None = None) -> str | None:
    """The name of a recognisable constant factor, or None. Where several names fit (a
    factor 2 with m = 2, or with n_L = 2) each is given, the batch-size one first, then the
    output count's: "m = n_L = 2"."""
    named = []
    if m > 1:
        named += [(float(m), "m"), (1.0 / m, "1/m"), (2.0 * m, "2m"), (1.0 / (2 * m), "1/(2m)")]
    if outputs is not None and outputs > 1:
        named += [(float(outputs), "n_L"), (1.0 / outputs, "1/n_L")]
    named += [(2.0, "2"), (0.5, "1/2"), (-1.0, "-1"), (4.0, "4"), (0.25, "1/4")]
    fits = [name for value, name in named if abs(c - value) <= 1e-6 * abs(value)]
    return " = ".join(fits) if fits else None


def factor_hint(name: str) -> str | None:
    """What a named factor usually means; where several names fit, each cause that fits,
    joined by "or" (one network cannot tell them apart: one of another size can)."""
    hints = [_HINTS[part] for part in name.split(" = ") if part in _HINTS]
    return " or ".join(hints) if hints else None


_HINTS = {
    "m": "the 1/m of the cost is missing",
    "1/m": "the 1/m is applied twice",
    "n_L": "a 1/n_L is missing (the cost's mean over the n_L outputs)",
    "1/n_L": "a 1/n_L too many (the cost averaged over the n_L outputs too)",
    "-1": "the sign is flipped",
    "2": "a factor 2 too many (mse's 1/2, or a term counted twice)",
    "1/2": "a factor 1/2 too many",
}


def _named_values(m: int, outputs: int | None) -> dict[str, float]:
    """Every name :func:`factor_name` knows, with its value at these sizes."""
    values = {"m": float(m), "1/m": 1.0 / m, "2m": 2.0 * m, "1/(2m)": 1.0 / (2 * m)}
    if outputs is not None:
        values.update({"n_L": float(outputs), "1/n_L": 1.0 / outputs})
    values.update({"2": 2.0, "1/2": 0.5, "-1": -1.0, "4": 4.0, "1/4": 0.25})
    return values


def across_networks(factors: Sequence[dict]) -> str | None:
    """Which named causes a constant factor follows over several networks, and which the
    other networks rule out: a factor 2 on a network with m = n_L = 2 fits the 1/m, the
    1/n_L and mse's 1/2 alike; a network with m = 3 and n_L = 1 where it is 3 leaves the 1/m.

    ``factors``: one :attr:`reference.judging.records.Report.factor` per failing network
    whose gradients are all off by one constant (``value``, ``m``, ``outputs``). None for
    fewer than two networks, or when every network names the same causes (nothing ruled
    out)."""
    factors = [f for f in factors if f is not None]
    if len(factors) < 2:
        return None

    def fits(f: dict) -> set[str]:
        c = float(f["value"])
        named = _named_values(int(f["m"]), f.get("outputs"))
        return {n for n, v in named.items() if abs(c - v) <= 1e-6 * abs(v)}

    each = [fits(f) for f in factors]
    anywhere = set().union(*each)
    everywhere = set.intersection(*each)
    ruled_out = anywhere - everywhere
    if not ruled_out:
        return None
    order = list(_named_values(2, 2))
    text = f"across the {len(factors)} networks off by one constant factor, "
    if everywhere:
        follows = sorted(everywhere, key=order.index)
        hints = [_HINTS.get(n, f"a factor {n}") for n in follows]
        text += f"it follows {' = '.join(follows)} in each ({' or '.join(hints)})"
    else:
        text += "no one named cause fits every network (the factor varies with something else)"
    for name in sorted(ruled_out, key=order.index):
        against = next(f for f, names in zip(factors, each) if name not in names)
        size = f"m = {against['m']}" + (
            f", n_L = {against['outputs']}" if against.get("outputs") is not None else ""
        )
        text += f"; {name} is ruled out (the factor is {float(against['value']):.6g} at {size})"
    return text


def _function_factor(c: float, m: int) -> str:
    """A constant factor of one function's gradient, named by its value and by what it
    equals, with the causes that fit inside a function (no network cost to blame)."""
    if abs(c + 1.0) <= 1e-6:
        return "-1: the sign is flipped"
    equals = []
    if m > 1:
        equals += [(float(m), "m, the batch size given"), (1.0 / m, "1/m")]
    for d in range(2, 65):  # attention's 1/sqrt(d); a whole root is named by its value
        if round(np.sqrt(d)) ** 2 != d:
            equals += [(np.sqrt(d), f"sqrt({d})"), (1 / np.sqrt(d), f"1/sqrt({d})")]
    fits = [name for value, name in equals if abs(c - value) <= 1e-6 * abs(value)]
    value = f"{c:.6g}" + (f" (= {' = '.join(fits)})" if fits else "")
    return (
        f"{value}: a constant factor inside this function (a scale such as a 1/N, a "
        "1/sqrt(d) or a 1/2 applied twice or left out, or a term counted twice)"
    )


def diagnose(
    a: np.ndarray,
    t: np.ndarray,
    m: int,
    param: str,
    *,
    within: str = "network",
    outputs: int | None = None,
) -> str:
    """A sentence on how ``a`` (the implementation's) differs from ``t`` (the reference).

    ``within`` is "network" (a network's dW or db: a factor is read against the cost's 1/m,
    the output count ``outputs`` = n_L where given, and mse's 1/2) or "function" (one
    argument of :func:`reference.check_function` or :func:`reference.check_vjp`: a factor is
    a constant inside that function, whatever number it equals). A ratio is called a
    constant factor only where at least two entries of ``t`` show it, or where it is one of
    the named factors (m, 2, -1...): one entry has a ratio to anything.
    """
    if within not in ("network", "function"):
        raise ValueError(f"within must be 'network' or 'function', got {within!r}")
    degenerate = _degenerate(a, t, param)
    if degenerate is not None:
        return degenerate
    c = _fitted_factor(a, t)
    if abs(c - 1.0) > _FIT and relative_error(a, c * t) <= _FIT:
        return _factor_sentence(a, t, c, m, param, within, outputs)
    index = np.unravel_index(int(np.argmax(np.abs(a - t))), a.shape)
    return (
        f"d{param} differs from the reference (relative error {relative_error(a, t):.3g}); "
        f"worst entry {tuple(int(i) for i in index)}: "
        f"{float(a[index]):.6g} vs {float(t[index]):.6g}"
    )


def _degenerate(a: np.ndarray, t: np.ndarray, param: str) -> str | None:
    """The sentence on a gradient that is not finite, all zeros where the reference is not,
    not zero where it is, or its transpose; None for any other."""
    if not np.isfinite(a).all():
        return f"d{param} holds NaN or inf where the reference is finite"
    na, nt = float(np.linalg.norm(a)), float(np.linalg.norm(t))
    if na == 0.0 and nt > 0.0:
        return f"d{param} is all zeros where the reference is not (never computed, or overwritten)"
    if nt == 0.0:
        return f"d{param} should be exactly zero here, but is not (norm {na:.3g})"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1:
        if relative_error(a, t.T) <= _FIT and relative_error(a, t) > _FIT:
            return f"d{param} is the transpose of the right gradient"
    return None


def _fitted_factor(a: np.ndarray, t: np.ndarray) -> float:
    """The least-squares c in a = c t, or 1 where c t does not explain the difference."""
    c = float(np.vdot(a, t) / np.vdot(t, t))
    # a factor must explain the difference, not only come within _FIT of it: a gradient 1e-6
    # off everywhere (a missing epsilon) is not "a constant factor of 1.000002"
    if relative_error(a, c * t) > 0.01 * relative_error(a, t):
        c = 1.0
    return c


def _factor_sentence(
    a: np.ndarray, t: np.ndarray, c: float, m: int, param: str, within: str, outputs: int | None
) -> str:
    """The sentence on a gradient that is ``c`` times the reference (:func:`diagnose`): the
    factor named where it can be, or the one entry that shows it."""
    shown = int(np.count_nonzero(np.abs(t) > _FIT * np.max(np.abs(t))))
    named = factor_name(c, m, outputs) if within == "network" else factor_name(c, 1)
    if shown < 2 and named is None:
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(t))), t.shape))
        return (
            f"d{param} differs from the reference at its one nonzero entry {index}: "
            f"{float(a[index]):.6g} vs {float(t[index]):.6g} (a ratio of {c:.3g}; one entry "
            "cannot tell a constant factor from one that varies)"
        )
    if within == "function":
        return f"d{param} is off by a constant factor of {_function_factor(c, m)}"
    name = factor_name(c, m, outputs)
    if name is None:
        return f"d{param} is off by a constant factor of {c:.6g}"
    hint = factor_hint(name)
    return f"d{param} is off by a constant factor of {name}" + (f": {hint}" if hint else "")


def common_factor(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """The one constant c with a = c t for every pair, if there is one (and it is not 1)."""
    a = np.concatenate([p[0].ravel() for p in pairs])
    t = np.concatenate([p[1].ravel() for p in pairs])
    tt = float(np.vdot(t, t))
    if tt == 0.0 or not np.isfinite(a).all():
        return None
    c = float(np.vdot(a, t)) / tt
    if abs(c - 1.0) > _FIT and relative_error(a, c * t) <= _FIT:
        return c
    return None


def locate(failing_layers: Sequence[int], n_layers: int) -> int | None:
    """k when layers 1..k fail and k+1..L pass (k < L): the delta of layer k is the first wrong
    quantity on the way down. None for any other pattern."""
    failing = sorted(set(failing_layers))
    if failing and failing == list(range(1, failing[-1] + 1)) and failing[-1] < n_layers:
        return failing[-1]
    return None


def shape_mismatch(name: str, got: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """A sentence on a gradient whose shape is not its argument's: a transpose's shape named."""
    text = f"d{name} has shape {tuple(got)}, {name} has {tuple(expected)}"
    if len(got) == 2 and tuple(got) == tuple(expected)[::-1]:
        return text + ": the transpose's shape (the factors of a product in the wrong order?)"
    if int(np.prod(got)) == int(np.prod(expected)):
        return text + ": the same entries in another shape (a reshape or a missing keepdims?)"
    return text
