"""The JAX oracle: the network written again in ``jax.numpy`` from the formulas, and ``jax.grad``.

Nothing here calls ``backprop``: the forward pass, the activations and the
costs are re-derived from DESIGN.md's conventions, so that a mistake in the
implementation under test cannot leak into the reference.

    Z^l = W^l A^{l-1} + b^l,  A^l = g_l(Z^l),  A^0 = X
    mse: J = 1/(2m) sum (A^L - Y)^2
    bce: J = 1/m sum -Y log A^L - (1 - Y) log(1 - A^L)
         (with a sigmoid output, from the logits: 1/m sum softplus(Z^L) - Y Z^L)
    cce: J = -1/m sum Y log A^L (with a softmax output, from the logits:
         -1/m sum Y log softmax(Z^L), softmax taken over each column)

Beside the gradients it bounds the rounding error any correct float64
implementation makes in them, and finds the pre-activations within rounding of a
kink, where such an implementation may use any slope between g's one-sided
derivatives (:func:`fit_kinks` picks the one its gradients match).

The oracle is only worth its ~1e-12 agreement in double precision: :func:`jax_model`
computes with ``jax_enable_x64`` on for the length of each call
(:func:`~reference.oracles.jax_x64.enable_x64`), and leaves the process's setting alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..formulas.jax_twins import JAX_ACTIVATIONS, JAX_COSTS
from ..formulas.numpy_twins import MissingTwinError as MissingTwinError  # raised from here too
from ..formulas.specs import ABSOLUTE_ROUNDING, ACTIVATION_SPECS
from .jax_programs import (
    _QUICK_MAX,
    _cost_branches,
    _cost_index,
    _derivatives_fn,
    _exact_fn,
    _nearest_kinks,
    _padded_fn,
    _twin_activation,
    _twin_cost,
)
from .jax_x64 import enable_x64
from .rounding import EPS, forward_rounding, loss_rounding, rounding_bounds


def _elementwise(name: str) -> bool:
    """Whether activation ``name`` is elementwise (its spec says; softmax is not)."""
    spec = ACTIVATION_SPECS.get(name)
    return spec is None or spec.elementwise


class JaxResult(NamedTuple):
    """The JAX oracle's numbers for one problem, all NumPy float64.

    ``grads[l - 1] = (dJ/dW^l, dJ/db^l)``. ``rounding[l - 1]`` bounds, entry by
    entry, the rounding error any float64 forward and backward pass makes in those
    gradients (:func:`~reference.oracles.rounding.forward_rounding`,
    :func:`~reference.oracles.rounding.rounding_bounds`): where a gradient
    is far smaller than the terms it is computed from (saturation, cancellation, an
    activation far below its absolute rounding) two correct implementations differ by
    that much, and no more.
    """

    loss: float
    grads: list[tuple[np.ndarray, np.ndarray]]
    rounding: list[tuple[np.ndarray, np.ndarray]]
    near_kink: Sequence[np.ndarray] = ()
    """Per layer, shape (n_l, m): the pre-activations within rounding of a kink of g_l
    (:data:`~reference.tolerances.JAX_KINK_SAFETY`), where a correct implementation may use
    any slope between g's one-sided derivatives (relu: any relu'(0) in [0, 1])."""
    slopes: Sequence[tuple[np.ndarray, np.ndarray]] = ()
    """Per layer, (lowest, highest) of those one-sided derivatives; NaN away from kinks."""
    used: Sequence[np.ndarray] = ()
    """Per layer, the slopes ``grads`` used at the entries of ``near_kink`` (g's own
    derivative on JAX's side of the kink, or :func:`fit_kinks`' choice); NaN elsewhere."""
    loss_rounding: float = 0.0
    """A first-order bound on how far rounding at the analysis' unit roundoff moves J
    through the forward pass (:func:`~reference.oracles.rounding.loss_rounding`); the cost's
    own sum is not in it."""

    @property
    def kinks(self) -> int:
        """How many pre-activation entries lie within rounding of a kink."""
        return int(sum(int(n.sum()) for n in self.near_kink))


# Networks this small are padded to shared shapes, so that the many small
# architectures of a property test share a handful of compiled functions
# (a compile costs 0.5-1.5 s, a call about 1 ms), and choose their activations and
# cost at run time, so that one program serves them all (benchmarks/README.md, "A check
# in seconds"). Padding is exact: padded units have zero weights in and out, padded
# samples and outputs are masked out of J, padded layers pass the output through,
# so they add exact zeros to every real entry.
_PAD_MAX_WIDTH = 64
_PAD_MAX_SAMPLES = 256
_PAD_MIN_DEPTH = 4
"""Depths are padded to a power of two, this one at least: one program for depths 1 to 4."""


def _bucket(n: int, smallest: int = 8) -> int:
    return max(smallest, 1 << (n - 1).bit_length())


PAD_FILL: dict[str, float] = {"softmax": -np.inf}
"""For an output activation that is not elementwise, the pre-activation that padded output
units take so that the real units' outputs are what they are without them: softmax's
e^{-inf} = 0 adds nothing to a column's sum, so softmax([z; -inf]) = [softmax(z); 0], and
-Y log softmax(Z) (cce from the logits) is unchanged on the real units likewise. With a fill
the output layer is padded to the shared width like the others, and such networks share the
program of their depth; one without an entry here (a fork's own) keeps its exact number of
output units (a program per output width)."""


@enable_x64()
def jax_model(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    slopes: Sequence[np.ndarray] | None = None,
    eps: float = EPS,
    l2: float = 0.0,
) -> JaxResult:
    """Loss, gradients and their rounding bounds from the JAX model (see :class:`JaxResult`).

    ``slopes``: per layer, (n_l, m), g_l' to use where not NaN (at pre-activations near a
    kink: :func:`fit_kinks`); None uses g's own derivative everywhere. ``eps``: the unit
    roundoff the rounding analysis assumes of the implementation (float64's by default;
    float32's 2^-24 for one that computes in float32): the bounds scale with it, and so
    does which pre-activations lie within rounding of a kink. The numbers are float64.
    ``l2``: the L2 penalty's lambda, added to J (the rounding bounds leave it out:
    ``reference.judging.penalty.with_penalty_rounding`` adds it).
    """
    activations = tuple(activations)
    for name in activations:
        _twin_activation(name)
    _twin_cost(cost)
    params = [(_f64(W), _f64(b)) for W, b in params]
    X, Y = _f64(X), _f64(Y)
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    m = X.shape[1]
    if slopes is None:
        slopes = [np.full((n, m), np.nan) for n in sizes[1:]]
    slopes = [_f64(s) for s in slopes]
    if max(sizes) > _PAD_MAX_WIDTH or m > _PAD_MAX_SAMPLES:
        fn = _exact_fn(activations, cost)
        mask = np.ones(Y.shape, dtype=bool)
        J, grads, inside = fn(
            params, None, None, None, None, X, Y, mask, float(m), slopes, float(l2)
        )
    else:
        J, grads, inside = _run_padded(params, X, Y, activations, cost, slopes, l2)
    grads = [
        (np.asarray(gW)[: W.shape[0], : W.shape[1]], np.asarray(gb)[: W.shape[0]])
        for (gW, gb), (W, _) in zip(grads, params)
    ]
    Zs, As, dZs, dAs, gps, gpps = _unpadded(inside, X, sizes[1:], m, activations)
    gaps, one_sided = [], []
    for Z, name in zip(Zs, activations):
        gap, left, right = _nearest_kinks(Z, name)
        gaps.append(gap)
        one_sided.append((left, right))
    scales = [ABSOLUTE_ROUNDING.get(a, 1.0) for a in activations]
    forward = forward_rounding(params, As, gps, gaps, one_sided, scales, eps)
    rounding = rounding_bounds(params, As, dZs, dAs, gps, gpps, Y, m, forward, scales, eps)
    near, one_sided = forward[2], forward[3]
    return JaxResult(
        float(J),
        grads,
        rounding,
        near,
        [(lo, hi) for lo, hi, _ in one_sided],
        [np.where(np.isnan(s), own, s) for s, (_, _, own) in zip(slopes, one_sided)],
        loss_rounding(params, As, dZs, dAs, scales, eps),
    )


def _run_padded(
    params: list[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    activations: tuple[str, ...],
    cost: str,
    slopes: list[np.ndarray],
    l2: float,
) -> tuple:
    """The shared program of the network's padded shape (:func:`_padded_fn`) and the shared
    derivatives program: ``(J, grads, (Zs, As, dZs, dAs, derivs))``, all padded."""
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    m = X.shape[1]
    width, mb = _bucket(max(sizes)), _bucket(m)
    table, branches = tuple(JAX_ACTIVATIONS), _cost_branches(tuple(JAX_COSTS))
    which = np.array([table.index(a) for a in activations], dtype=np.int32)
    which_cost = np.int32(_cost_index(branches, cost, activations[-1]))
    # a g that normalises each column (softmax) sees the output layer's own units only:
    # padded units at its fill value, or none
    out = activations[-1]
    out_rows = width if _elementwise(out) or out in PAD_FILL else sizes[-1]
    fill = np.full((out_rows, mb), np.nan)
    if not _elementwise(out) and out in PAD_FILL:
        fill[sizes[-1] :] = PAD_FILL[out]
    # all layers width x width (the output too, but for a g without a fill): depths up to
    # a power of two share a program, the layers past the network's own passing its output
    # through (:func:`~reference.oracles.jax_programs._compile`)
    depth = len(params)
    slots = _bucket(depth, _PAD_MIN_DEPTH) if out_rows == width else depth
    heights = [width] * (depth - 1) + [out_rows]
    padded = [(_pad(W, n, width), _pad(b, n, 1)) for (W, b), n in zip(params, heights)]
    padded += [(np.zeros((width, width)), np.zeros((width, 1)))] * (slots - depth)
    padded_slopes = [_pad(s, n, mb, np.nan) for s, n in zip(slopes, heights)]
    padded_slopes += [np.full((width, mb), np.nan)] * (slots - depth)
    mask = np.zeros((out_rows, mb), dtype=bool)
    mask[: sizes[-1], :m] = True
    quick = width <= _QUICK_MAX and mb <= _QUICK_MAX
    fn = _padded_fn(slots, table, branches, quick)
    J, grads, inside = fn(
        padded,
        np.concatenate([which, np.zeros(slots - depth, np.int32)]),
        which_cost,
        fill,
        np.int32(depth) if out_rows == width else None,  # None: all of them real
        _pad(X, width, mb),
        _pad(Y, out_rows, mb),
        mask,
        float(m),
        padded_slopes,
        float(l2),
    )
    second = _derivatives_fn(table, quick)
    return J, grads, (*inside[:4], [second(w, Z) for w, Z in zip(which, inside[0])])


def _unpadded(
    inside: tuple, X: np.ndarray, n: list[int], m: int, activations: tuple[str, ...]
) -> tuple[list[np.ndarray], ...]:
    """What the rounding analysis reads, cut to the network's own n_l units and m samples:
    Z^l, A^l (A^0 = X), the deltas dZ^l and dA^l, g_l'(Z^l) and g_l''(Z^l) (2 for a g that
    is not elementwise)."""

    def cut(a, rows):
        return np.asarray(a)[:rows, :m]

    Zs, As, dZs, dAs, derivs = inside
    Zs, As = [cut(Z, r) for Z, r in zip(Zs, n)], [X] + [cut(A, r) for A, r in zip(As, n)]
    dZs, dAs = [cut(d, r) for d, r in zip(dZs, n)], [cut(d, r) for d, r in zip(dAs, n)]
    gps, gpps = ([cut(d[k], r) for d, r in zip(derivs, n)] for k in range(2))
    for l, name in enumerate(activations):
        if not _elementwise(name):
            # Not elementwise: the Jacobian's rows sum to at most 2 a_i (1 - a_i) <= 1/2 in
            # absolute value (softmax), and its second derivatives are as small; 2 bounds
            # both per entry, taking a column's roundings as of one size.
            gps[l], gpps[l] = np.full_like(gps[l], 2.0), np.full_like(gpps[l], 2.0)
    return Zs, As, dZs, dAs, gps, gpps


FIT_ROUNDS = 4
"""Gauss-Newton rounds :func:`fit_kinks` takes at most (the gradient is multilinear in
the slopes: one round is exact where each sample's kinks lie in one layer)."""


def fit_kinks(
    result: JaxResult,
    grads: Sequence[tuple[np.ndarray, np.ndarray]],
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    rtol: float = 1e-12,
    eps: float = EPS,
    l2: float = 0.0,
) -> JaxResult:
    """The JAX model's result with the slopes at pre-activations near a kink chosen to
    bring its gradients closest to ``grads`` (an implementation's), each slope between
    g's one-sided derivatives there.

    Where Z^l_is is within rounding of a kink (``result.near_kink``), a correct
    implementation may land on either side of it, or take any subgradient at an exact kink:
    relu'(0) may be anything in [0, 1] (DESIGN.md, "relu'(0)"). The gradient G(s) is then
    one of a family; this looks for the member nearest ``grads`` in the checker's norm-wise
    relative measure, summed over the parameter arrays:

        min over s_low <= s <= s_high of  sum_k ||w_k (G_k(s) - a_k)||^2,
        w_k = 1 / (2 ||a_k||)   (an array of zeros weighs as the largest array).

    It stops at the first candidate that agrees with ``grads`` array by array, to ``rtol``
    relative or within its rounding bound: JAX's own side of each kink, then s at the low
    and the high ends everywhere (an implementation's fixed relu'(0) at exact zeros), then
    Gauss-Newton steps from the best so far, each a bounded linear least-squares problem
    whose Jacobian columns are G(s + e_u) - G(s) (exact: G is affine in each slope alone),
    each step's nearest corner (every slope at its low or high end) tried first.
    Whatever it returns is the exact gradient for one valid subgradient, so a wrong
    gradient stays wrong: a mistake elsewhere moves ``grads`` where no choice of slopes
    follows. ``eps``: the unit roundoff of ``result``'s analysis (:func:`jax_model`).
    """
    if result.kinks == 0:
        return result
    fit = _KinkFit.of(result, grads, params, X, Y, activations, cost, rtol, eps, l2)
    if fit.agrees(result):
        return result
    s, best = np.concatenate([u[n] for u, n in zip(result.used, fit.near)]), result
    for corner in (fit.low, fit.high):
        trial = fit.evaluate(corner)
        if fit.agrees(trial):
            return trial
        if fit.misfit(trial) < fit.misfit(best):
            s, best = corner, trial
    free = np.flatnonzero(fit.high > fit.low)  # where the one-sided derivatives differ
    for _ in range(FIT_ROUNDS if free.size else 0):
        trial_s = fit.gauss_newton(s, best, free)
        # an implementation's slopes are usually one side or the other: try the nearest corner
        corner = np.where(trial_s - fit.low <= fit.high - trial_s, fit.low, fit.high)
        trial = fit.evaluate(corner)
        if fit.agrees(trial):
            return trial
        trial = fit.evaluate(trial_s)
        if fit.misfit(trial) >= fit.misfit(best):
            break
        s, best = trial_s, trial
        if fit.agrees(best):
            break
    return best


@dataclass
class _KinkFit:
    """What :func:`fit_kinks` searches with: the implementation's gradient arrays, the
    slopes' bounds at the entries near a kink (flattened in layer order), the misfit's
    weights, and the JAX model's problem to evaluate a choice of slopes on."""

    arrays: list[np.ndarray]
    near: Sequence[np.ndarray]
    low: np.ndarray
    high: np.ndarray
    target: np.ndarray
    weights: np.ndarray
    rtol: float
    problem: tuple
    options: dict

    @classmethod
    def of(
        cls,
        result: JaxResult,
        grads: Sequence[tuple[np.ndarray, np.ndarray]],
        params: Sequence[tuple[np.ndarray, np.ndarray]],
        X: np.ndarray,
        Y: np.ndarray,
        activations: Sequence[str],
        cost: str,
        rtol: float,
        eps: float,
        l2: float,
    ) -> _KinkFit:
        """The search's data: the slopes' bounds from ``result``, the weights w_k from the
        norms of ``grads`` (:func:`fit_kinks`)."""
        near = result.near_kink
        arrays = [np.asarray(g, np.float64) for pair in grads for g in pair]
        norms = [float(np.linalg.norm(a)) for a in arrays]
        top = max(norms) or 1.0
        return cls(
            arrays,
            near,
            np.concatenate([lo[n] for (lo, _), n in zip(result.slopes, near)]),
            np.concatenate([hi[n] for (_, hi), n in zip(result.slopes, near)]),
            np.concatenate([a.ravel() for a in arrays]),
            np.repeat([1.0 / (2 * (n or top)) for n in norms], [a.size for a in arrays]),
            rtol,
            (params, X, Y),
            {"activations": activations, "cost": cost, "eps": eps, "l2": l2},
        )

    def agrees(self, r: JaxResult) -> bool:
        """Whether ``r``'s gradients agree with the implementation's, array by array."""
        return all(
            np.linalg.norm(a - j)
            <= max(self.rtol * (np.linalg.norm(a) + np.linalg.norm(j)), np.linalg.norm(e))
            for a, j, e in zip(self.arrays, _arrays(r.grads), _arrays(r.rounding))
        )

    def evaluate(self, s: np.ndarray) -> JaxResult:
        """The JAX model with the slopes ``s`` at the entries near a kink."""
        full, at = [], 0
        for n in self.near:
            layer = np.full(n.shape, np.nan)
            layer[n] = s[at : at + int(n.sum())]
            at += int(n.sum())
            full.append(layer)
        return jax_model(*self.problem, slopes=full, **self.options)

    def flat(self, r: JaxResult) -> np.ndarray:
        """``r``'s gradients as one vector, in the order of ``target``."""
        return np.concatenate([g.ravel() for g in _arrays(r.grads)])

    def misfit(self, r: JaxResult) -> float:
        """||w (G(s) - a)||: the square root of the sum :func:`fit_kinks` minimizes."""
        return float(np.linalg.norm(self.weights * (self.flat(r) - self.target)))

    def gauss_newton(self, s: np.ndarray, best: JaxResult, free: np.ndarray) -> np.ndarray:
        """One bounded least-squares step from ``s`` (whose result is ``best``) in the
        ``free`` slopes, kept between their bounds."""
        from scipy.optimize import lsq_linear

        base = self.flat(best)
        columns = []
        for u in free:
            moved = s.copy()
            moved[u] += 1.0
            columns.append(self.flat(self.evaluate(moved)) - base)
        J = self.weights[:, None] * np.stack(columns, axis=1)
        bounds = (self.low[free] - s[free], self.high[free] - s[free])
        trial_s = s.copy()
        trial_s[free] += lsq_linear(J, self.weights * (self.target - base), bounds=bounds).x
        return np.clip(trial_s, self.low, self.high)


def _arrays(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    return [np.asarray(g) for pair in pairs for g in pair]


def kink_note(result: JaxResult) -> str:
    """A line for a report: how many pre-activations lie within rounding of a kink, and which
    of the allowed slopes the gradients use there (``result.used``)."""
    used = np.concatenate([u[n] for u, n in zip(result.used, result.near_kink)])
    low = np.concatenate([lo[n] for (lo, _), n in zip(result.slopes, result.near_kink)])
    high = np.concatenate([hi[n] for (_, hi), n in zip(result.slopes, result.near_kink)])
    at_high = int(np.sum((used == high) & (high != low)))
    at_low = int(np.sum((used == low) & (high != low)))
    between = used.size - at_high - at_low
    named = ((at_low, "the lower"), (at_high, "the higher"), (between, "another"))
    counts = [f"{k} at {name}" for k, name in named if k]
    return (
        f"{used.size} pre-activations within rounding of a kink, where any slope between the "
        "one-sided derivatives is right (relu'(0) in [0, 1]): judged with the slopes nearest "
        f"the implementation's gradients, {', '.join(counts)}"
    )


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _pad(a: np.ndarray, rows: int, cols: int, fill: float = 0.0) -> np.ndarray:
    out = np.full((rows, cols), fill)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def jax_gradients(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    l2: float = 0.0,
) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """``(J, [(dJ/dW^1, dJ/db^1), ...])`` from ``jax.grad`` of the JAX model, float64."""
    result = jax_model(params, X, Y, activations=activations, cost=cost, l2=l2)
    return result.loss, result.grads
