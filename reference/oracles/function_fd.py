"""Finite differences of any scalar function of arrays, kinks found from the differences alone.

The network's finite differences (:mod:`.finite_diff`) know where the kinks are: they see
the pre-activations and compare relu masks. A function of arrays shows nothing of the kind,
so here every entry is evaluated at all four steps ``FACTORS`` (+h, -h, +2h, -2h, with the
same per-entry step h = eps^(1/3) max(1, |x|)) and three estimates are formed with
:func:`.richardson.combine`, each Richardson-extrapolated with its error bound:

    C  the central difference      (error O(h^2))
    F  the forward difference      (uses +h, +2h)
    B  the backward difference     (uses -h, -2h)

On a smooth stretch all three estimate the same derivative, so each pair agrees within the
sum of its error bounds. A kink within 2h of x breaks the estimates whose steps cross it,
and the pair that crosses it disagrees beyond its bounds: that entry is next to a kink. Only
there, two more steps (+3h and -3h, ``THIRD``) give each side four points, and the side
whose third difference stays within rounding (or is far smaller than the other side's) did
not cross the kink: its one-sided estimate is used (method FORWARD or BACKWARD). A side's own
error bound cannot tell this: next to a kink in the second derivative (relu squared) the
crossing side looks flat and the clean side curved. Where both sides are clean, x sits on
the kink itself and any subgradient is right; where neither is, two kinks are too close:
both are EXCLUDED (NaN). An entry on the kink keeps its two one-sided slopes (``slopes``):
every subgradient there lies between them, and the judge (:mod:`reference.judging.functions`)
holds the hand-written gradient to that interval. Between two kinks nothing is known, and the
entry is counted, never reported as a mistake. A kink that only the 2h steps cross leaves the
central estimate within its (wider) bound.

A function that accepts a batch (every argument with one extra leading axis of B copies,
returning B values) is called once per chunk of perturbed points instead of once per point.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..tolerances import CLEAN_SIDE
from ..tolerances import FD_KINK_SAFETY as KINK_SAFETY
from .richardson import BACKWARD, CENTRAL, EPS, EXCLUDED, FACTORS, FORWARD, combine, steps

BATCH_ELEMENTS = 1 << 20
"""How many array elements one batched call may hold (8 MiB of float64 per argument)."""


@dataclass
class FunctionFD:
    """Finite-difference estimates of a scalar function's gradient, one array per argument.

    ``grads[k]``, ``errors[k]`` (the error bound of each estimate) and ``method[k]``
    (CENTRAL, FORWARD, BACKWARD or EXCLUDED, as in :mod:`.richardson`) have the shape of
    argument k; excluded entries are NaN. ``value`` is the function at the given point and
    ``calls`` how many times the function was called.
    """

    grads: list[np.ndarray]
    errors: list[np.ndarray]
    method: list[np.ndarray]
    value: float
    calls: int
    roundoff: float = 0.0
    """The rounding allowed for in every value of the function (eps times its size)."""
    slopes: list[np.ndarray] | None = None
    """Per argument, shape (4, *x.shape): the slope from the right, its error bound, the
    slope from the left and its error bound, at entries on a kink (both sides clean); NaN at
    every other entry."""

    @property
    def one_sided(self) -> int:
        """Entries next to a kink, estimated from the side that does not cross it."""
        return int(sum(((m == FORWARD) | (m == BACKWARD)).sum() for m in self.method))

    def on_kink(self, k: int) -> np.ndarray:
        """Where argument k sits on a kink with both one-sided slopes known."""
        if self.slopes is None:
            return np.zeros(self.method[k].shape, dtype=bool)
        return (self.method[k] == EXCLUDED) & np.isfinite(self.slopes[k]).all(axis=0)

    @property
    def kinks(self) -> int:
        """Entries on a kink, judged against their one-sided slopes."""
        return int(sum(self.on_kink(k).sum() for k in range(len(self.method))))

    @property
    def excluded(self) -> int:
        """Entries between two kinks, or where the function is not finite nearby: unknown."""
        return int(sum((m == EXCLUDED).sum() for m in self.method)) - self.kinks


THIRD = (3.0, -3.0)
"""The extra steps, in units of h, taken at entries where the estimates disagree: with them
each side has four points, and its third difference tells whether its steps crossed the kink."""


def _three_ways(dJ: np.ndarray, h: np.ndarray, roundoff: float) -> tuple[np.ndarray, ...]:
    """The central, forward and backward estimates with their bounds, and where they disagree
    (a kink within the steps): ``(c, ec, f, ef, b, eb, kink)``."""
    none = np.zeros(dJ.shape, dtype=bool)
    minus, plus = none.copy(), none.copy()
    minus[1] = True  # "the minus side crosses a kink": combine forms the forward difference
    plus[0] = True
    c, ec, _ = combine(dJ, none, h, roundoff)
    f, ef, _ = combine(dJ, minus, h, roundoff)
    b, eb, _ = combine(dJ, plus, h, roundoff)
    with np.errstate(invalid="ignore"):
        kink = (
            (np.abs(f - b) > KINK_SAFETY * (ef + eb))
            | (np.abs(c - f) > KINK_SAFETY * (ec + ef))
            | (np.abs(c - b) > KINK_SAFETY * (ec + eb))
        )
    return c, ec, f, ef, b, eb, kink


def sides(
    dJ: np.ndarray, h: np.ndarray, roundoff: float, third: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Estimates, error bounds, methods and one-sided slopes from the changes ``dJ`` (4, P)
    of the function at the steps ``FACTORS`` h of each of P entries, kinks found as the
    module docstring says.

    ``third`` (2, P) holds the changes at the steps ``THIRD`` h where the estimates disagree
    (NaN elsewhere): a side is clean when its third difference is within rounding, or
    CLEAN_SIDE times smaller than the other side's. Without it every kink is excluded.
    The slopes, (4, P), are (right, its bound, left, its bound) where both sides are clean
    at a kink (the entry sits on it), NaN elsewhere.
    """
    c, ec, f, ef, b, eb, kink = _three_ways(dJ, h, roundoff)
    f_clean = b_clean = np.zeros(h.shape, dtype=bool)
    if third is not None:
        up, down, up2, down2 = dJ
        with np.errstate(invalid="ignore"):
            t_f = np.abs(third[0] - 3 * up2 + 3 * up)
            t_b = np.abs(third[1] - 3 * down2 + 3 * down)
            # each value rounds by the roundoff plus eps of its own size; 7 is the sum of the
            # third difference's |coefficients|, doubled
            noise = 16 * (roundoff + EPS * np.nanmax(np.abs(np.vstack([dJ, third])), axis=0))
            f_clean = (t_f <= noise) | (CLEAN_SIDE * t_f < t_b)
            b_clean = (t_b <= noise) | (CLEAN_SIDE * t_b < t_f)
    method = np.full(h.shape, CENTRAL, dtype=np.int8)
    method[kink & f_clean & ~b_clean] = FORWARD
    method[kink & b_clean & ~f_clean] = BACKWARD
    method[kink & (f_clean == b_clean)] = EXCLUDED
    method[~np.isfinite(dJ).all(axis=0)] = EXCLUDED
    estimate = np.choose(np.minimum(method, 2), [c, f, b])
    error = np.choose(np.minimum(method, 2), [ec, ef, eb])
    estimate[method == EXCLUDED] = np.nan
    error[method == EXCLUDED] = np.nan
    slopes = np.full((4, *h.shape), np.nan)
    on = kink & f_clean & b_clean & np.isfinite(dJ).all(axis=0)
    slopes[:, on] = np.array([f, ef, b, eb])[:, on]
    return estimate, error, method, slopes


def function_gradients(
    phi: Callable[..., object],
    arrays: Sequence[np.ndarray],
    *,
    scale: Callable[..., float],
    batched: bool = False,
) -> FunctionFD:
    """Every entry's finite-difference derivative of the scalar ``phi(*arrays)``.

    ``phi`` returns a float (or, ``batched``, a (B,) array for arguments with a leading
    axis of B points). ``scale(*arrays)`` is the size of the terms ``phi`` sums at the given
    point (|phi| for a plain function; sum |u * f| for a vector-Jacobian product): its
    rounding, eps times the scale, enters every error bound.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    calls = 0

    def evaluate(points: list[list[np.ndarray]]) -> np.ndarray:
        """phi at each point (a list of arguments), one call per point or per chunk."""
        nonlocal calls
        if not batched:
            calls += len(points)
            return np.array([float(phi(*p)) for p in points])
        size = max(1, sum(a.size for a in arrays))
        chunk = max(1, BATCH_ELEMENTS // size)
        out = []
        for start in range(0, len(points), chunk):
            part = points[start : start + chunk]
            stacked = [np.stack([p[k] for p in part]) for k in range(len(arrays))]
            values = np.asarray(phi(*stacked), dtype=np.float64).reshape(-1)
            if values.size != len(part):
                raise ValueError(
                    f"a batched function returned {values.size} values for {len(part)} points"
                )
            out.append(values)
            calls += 1
        return np.concatenate(out)

    J0 = float(evaluate([arrays])[0])
    changes, hs = [], []
    for k, x in enumerate(arrays):
        h = steps(x.ravel())
        points = []
        for e in range(x.size):
            for factor in FACTORS:
                moved = x.copy()
                moved.flat[e] += factor * h[e]
                points.append([*arrays[:k], moved, *arrays[k + 1 :]])
        if not points:  # an empty array: nothing to estimate
            changes.append(np.zeros((len(FACTORS), 0)))
        else:
            values = evaluate(points).reshape(x.size, len(FACTORS))
            with np.errstate(invalid="ignore"):  # inf - inf where f overflows: NaN, excluded
                changes.append((values - J0).T)
        hs.append(h)
    # phi's rounding: eps times the size of its terms, which phi does not show; |phi| and the
    # scale the caller knows, and sum |x dphi/dx| (the terms of phi's first-order expansion,
    # what a sum of many terms that cancel rounds like), from the central estimates
    first_order = 0.0
    for x, dJ, h in zip(arrays, changes, hs):
        with np.errstate(invalid="ignore"):
            central = (dJ[0] - dJ[1]) / (2 * h)
        first_order += float(np.nansum(np.abs(x.ravel() * central)))
    size = max(float(scale(*arrays)), abs(J0), first_order, np.finfo(np.float64).tiny)
    roundoff = EPS * size
    grads, errors, methods, slopes = [], [], [], []
    for k, (x, dJ, h) in enumerate(zip(arrays, changes, hs)):
        # where the estimates disagree, two more steps: +3h and -3h
        third = np.full((len(THIRD), x.size), np.nan)
        with warnings.catch_warnings():  # all-NaN columns (f not finite nearby) are excluded
            warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
            flagged = np.flatnonzero(_three_ways(dJ, h, roundoff)[-1])
        points = []
        for e in flagged:
            for factor in THIRD:
                moved = x.copy()
                moved.flat[e] += factor * h[e]
                points.append([*arrays[:k], moved, *arrays[k + 1 :]])
        if points:
            values = evaluate(points).reshape(len(flagged), len(THIRD))
            with np.errstate(invalid="ignore"):
                third[:, flagged] = (values - J0).T
        with warnings.catch_warnings():  # all-NaN columns (f not finite nearby) are excluded
            warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
            est, err, meth, slope = sides(dJ, h, roundoff, third)
        grads.append(est.reshape(x.shape))
        errors.append(err.reshape(x.shape))
        methods.append(meth.reshape(x.shape))
        slopes.append(slope.reshape(4, *x.shape))
    return FunctionFD(grads, errors, methods, J0, calls, roundoff, slopes)


def along(
    phi: Callable[..., object],
    arrays: Sequence[np.ndarray],
    direction: Sequence[np.ndarray],
    roundoff: float,
    *,
    batched: bool = False,
) -> tuple[float, float, int, np.ndarray]:
    """The derivative of ``phi`` at ``arrays`` along ``direction`` (one array per argument):
    ``(estimate, error bound, method, slopes)`` from the steps ``FACTORS`` t and ``THIRD`` t,
    t from the largest entry the direction moves, with kinks found as for single entries.
    Where the rates from the right and from the left disagree (a kink along the direction,
    at the point or within the steps), ``slopes`` (4,) holds them with their error bounds,
    whichever side is clean; NaN where they agree (``phi`` is differentiable along it).

    Entries on a kink can each take any subgradient, but moved together their sum is held
    to the rates along them: at a tie of a maximum, moving every tied entry moves the
    maximum at the same rate, so the gradient must add up to that rate there.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    moved_abs = [np.abs(a[d != 0]) for a, d in zip(arrays, direction)]
    largest = max((float(m.max()) for m in moved_abs if m.size), default=0.0)
    t = float(steps(np.array([largest]))[0])
    factors = (*FACTORS, *THIRD)
    points = [[a + factor * t * d for a, d in zip(arrays, direction)] for factor in factors]
    values = _at_points(phi, [arrays, *points], batched)
    with np.errstate(invalid="ignore"):
        changes = (values[1:] - values[0]).reshape(len(factors), 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        estimate, error, method, _ = sides(
            changes[: len(FACTORS)], np.array([t]), roundoff, changes[len(FACTORS) :]
        )
        _, _, f, ef, b, eb, kink = _three_ways(changes[: len(FACTORS)], np.array([t]), roundoff)
    slopes = np.array([f[0], ef[0], b[0], eb[0]]) if kink[0] else np.full(4, np.nan)
    return float(estimate[0]), float(error[0]), int(method[0]), slopes


def kink_curvature(
    phi: Callable[..., object],
    arrays: Sequence[np.ndarray],
    directions: Sequence[Sequence[np.ndarray]],
    roundoff: float,
    *,
    batched: bool = False,
) -> tuple[np.ndarray, float]:
    """How ``phi`` bends at ``arrays`` along each direction (one array per argument each):
    the kink part of its second difference, ``(kappa, noise)``.

    With s(t) = phi(x + t d) + phi(x - t d) - 2 phi(x), a kink along d gives s linear in t
    (the jump of the slope times t) and a smooth stretch s quadratic, so
    kappa = 4 s(t/2) - s(t) keeps the kink's part alone (the t^2 terms cancel). Positive:
    a convex kink along d (a maximum's); negative: a concave one. ``noise`` is the rounding
    of kappa, from the rounding of every value (as for the third differences of
    :func:`sides`). t comes from the largest entry the directions move.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    largest = max(
        (float(np.abs(a[d != 0]).max()) for ds in directions for a, d in zip(arrays, ds)
         if (d != 0).any()),
        default=0.0,
    )  # fmt: skip
    t = float(steps(np.array([largest]))[0])
    factors = (1.0, -1.0, 0.5, -0.5)
    points = [arrays] + [
        [a + f * t * d for a, d in zip(arrays, ds)] for ds in directions for f in factors
    ]
    values = _at_points(phi, points, batched)
    base, moved = values[0], values[1:].reshape(len(directions), len(factors))
    with np.errstate(invalid="ignore"):
        s_t = moved[:, 0] + moved[:, 1] - 2 * base
        s_half = moved[:, 2] + moved[:, 3] - 2 * base
        kappa = 4 * s_half - s_t
    # 4 (2 + 4) + (2 + 2) = 28 times each value's rounding, doubled
    noise = 64 * (roundoff + EPS * float(np.nanmax(np.abs(values))))
    return kappa, noise


COUPLED_MAX = 48
"""The most entries on a kink whose coupling is measured pair by pair (4 calls a pair)."""


def coupled_pairs(
    phi: Callable[..., object],
    arrays: Sequence[np.ndarray],
    entries: Sequence[tuple[int, int]],
    roundoff: float,
    *,
    batched: bool = False,
) -> list[tuple[int, int]] | None:
    """The pairs of ``entries`` (argument, flat index) whose kinks are coupled: moving one
    changes the other's one-sided slopes, as two tied maxima do, or a hinge's correct class
    and a wrong class on its margin. None where there are more than COUPLED_MAX entries.

    The kink part of the mixed second difference, for the signs (+, +) and (+, -):
    m(t) = phi(x + t e_a +/- t e_b) - phi(x + t e_a) - phi(x +/- t e_b) + phi(x) is
    linear in t where the kinks are coupled and quadratic (the cross-curvature) where they
    are not, so 4 m(t/2) - m(t) keeps the coupling alone (as in :func:`kink_curvature`).
    """
    n = len(entries)
    if n > COUPLED_MAX:
        return None
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    largest = max((abs(float(arrays[k].flat[i])) for k, i in entries), default=0.0)
    t = float(steps(np.array([largest]))[0])
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    chunk = max(1, BATCH_ELEMENTS // max(1, sum(a.size for a in arrays)))
    v = _at_points(phi, _pair_points(arrays, entries, pairs, t), batched, chunk)
    base = v[0]
    single = v[1 : 1 + 4 * n].reshape(2, 2, n)  # [step][sign][entry]
    double = v[1 + 4 * n :].reshape(2, 2, len(pairs))  # [step][sign][pair]
    a_idx = np.array([a for a, _ in pairs], dtype=int)
    b_idx = np.array([b for _, b in pairs], dtype=int)
    with np.errstate(invalid="ignore"):
        # m[step][sign] = phi(a + s b) - phi(a) - phi(s b) + phi(x)
        m = double - single[:, :1, a_idx] - single[:, :, b_idx] + base
        kink = 4 * m[1] - m[0]
    noise = 64 * (roundoff + EPS * float(np.nanmax(np.abs(v))))
    found = ~(np.abs(kink) <= noise).all(axis=0)  # NaN counts as coupled: nothing is known
    return [pair for pair, c in zip(pairs, found) if c]


def _pair_points(
    arrays: list[np.ndarray],
    entries: Sequence[tuple[int, int]],
    pairs: list[tuple[int, int]],
    t: float,
) -> list[list[np.ndarray]]:
    """The points :func:`coupled_pairs` reads, in order: x; each entry moved by +h and -h,
    for h = t, then t/2; each pair moved by (h, +h) and (h, -h), likewise."""

    def point(moves: list[tuple[int, float]]) -> list[np.ndarray]:
        moved = [a.copy() for a in arrays]
        for e, amount in moves:
            k, i = entries[e]
            moved[k].flat[i] += amount
        return moved

    n = len(entries)
    steps_ = (t, t / 2)
    points = [arrays]
    points += [point([(e, s * h)]) for h in steps_ for s in (1.0, -1.0) for e in range(n)]
    points += [point([(a, h), (b, s * h)]) for h in steps_ for s in (1.0, -1.0) for a, b in pairs]
    return points


def _at_points(
    phi: Callable[..., object],
    points: list[list[np.ndarray]],
    batched: bool,
    chunk: int | None = None,
) -> np.ndarray:
    """``phi`` at each point (a list of arguments): one call per point, or, ``batched``, one
    per ``chunk`` points stacked along a leading axis (all of them at once: None)."""
    if not batched:
        return np.array([float(phi(*p)) for p in points])
    chunk = chunk or len(points)
    values = []
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        stacked = [np.stack([p[k] for p in part]) for k in range(len(part[0]))]
        values.append(np.asarray(phi(*stacked), dtype=np.float64).reshape(-1))
    return np.concatenate(values)
