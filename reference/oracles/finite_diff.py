"""Finite-difference gradients: every entry, kink-aware, with an error estimate per entry.

For every parameter theta_k, with u, v and w the changes of J at the steps +h,
-h and +2h (J(theta) itself is known, so three evaluations per entry):

    D(h)     = (u - v) / 2h                   = J' + c h^2 + O(h^4)
    D(2h)    = (w - 2 (u + v)) / 2h           = J' + 4 c h^2 + O(h^3)
    estimate = (4 D(h) - D(2h)) / 3           (Richardson: the h^2 term cancels)
    error    = |D(2h) - D(h)| + round-off     (a bound on the estimate's error)

D(2h) is the central difference at 2h with the change at -2h taken as
4 (u + v) - w: the even part of J's change at 2h is four times its even part
at h, up to O(h^4). The step -2h itself is evaluated only for entries whose
plus side crosses a kink (their one-sided difference on the minus side needs
it). h = eps^(1/3) max(1, |theta_k|), about 6e-6: the step that balances the
O(h^2) truncation against the O(eps/h) round-off of a central difference.

Kinks (DESIGN.md, "Kinks"): for every perturbation the side of each kink every
pre-activation lies on (the relu mask) is compared with the unperturbed one. An
entry whose masks change on one side only gets the one-sided difference on the
other side (again at h and 2h, Richardson-extrapolated); one whose masks change
on both sides is excluded (NaN) and counted, never reported as a bug.

A pre-activation within rounding of a kink (``Model.near``, found by the JAX
model's rounding analysis) has no known side at theta: a correct implementation
may put it on either, or take any subgradient there. Every perturbation that moves
it, or moves a sample in which one lies in a layer above, counts as crossing a kink
on both sides, and the entry is excluded.

Speed comes from the structure of a dense network: perturbing W^l_ij or b^l_i
changes only row i of Z^l, so layers below l are never recomputed, layer l+1
changes by a rank-one term, and the perturbations of a layer travel through the
layers above it together, as the columns of one matrix product per layer.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..boundary.guard import guard
from ..formulas import specs
from ..formulas.numpy_twins import MissingTwinError
from . import numpy_model
from .numpy_model import Model, kink_side
from .richardson import BACKWARD, EPS, EXCLUDED, FACTORS, FORWARD, STEP, combine, steps
from .richardson import CENTRAL as CENTRAL  # read as finite_diff.CENTRAL, as the others

_CHUNK_ELEMENTS = 1 << 18  # perturbed activations per chunk: 2 MiB of float64, about an L2
_WORKERS = min(2, os.cpu_count() or 1)  # NumPy's ufuncs release the GIL: chunks run in parallel


@dataclass
class FDGradients:
    """Finite-difference estimates for every entry of every layer.

    Lists are indexed like ``params``: ``grads[l - 1] = (dJ/dW^l, dJ/db^l)``.
    ``errors`` holds each estimate's error bound and ``method`` how it was
    formed (CENTRAL, FORWARD, BACKWARD or EXCLUDED; excluded entries are NaN).
    ``source`` says whose loss was differentiated.
    """

    grads: list[tuple[np.ndarray, np.ndarray]]
    errors: list[tuple[np.ndarray, np.ndarray]]
    method: list[tuple[np.ndarray, np.ndarray]]
    loss: float
    source: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def excluded(self) -> int:
        """How many entries sat too close to a kink on both sides to be estimated."""
        return int(sum((mW == EXCLUDED).sum() + (mb == EXCLUDED).sum() for mW, mb in self.method))


def _entries(model: Model, l: int, param: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """For every entry of layer l+1's W or b, in C order: the row of Z it moves, the row of
    A^{l} that moves it per unit step (None for a bias: a row of ones), and its value."""
    W, b = model.params[l]
    n, n_prev = W.shape
    if param == "W":
        return np.repeat(np.arange(n), n_prev), np.tile(np.arange(n_prev), n), W.ravel()
    return np.arange(n), None, b.ravel()


def _ambiguous(model: Model, l: int) -> tuple[np.ndarray, np.ndarray] | None:
    """For layer l+1: which of its pre-activations are near a kink, (n, m), and in which
    samples one is near a kink in a layer above, (m,); None when none is anywhere."""
    if model.near is None or not any(n.any() for n in model.near[l:]):
        return None
    above = np.zeros(model.m, dtype=bool)
    for n in model.near[l + 1 :]:
        above |= n.any(axis=0)
    return model.near[l], above


_local = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A per-thread buffer for the largest temporary, reused from chunk to chunk (it stays in
    cache, and a fresh 2 MiB allocation would fault in its pages every time)."""
    size = int(np.prod(shape))
    buffer = getattr(_local, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _local.buffer = np.empty(size)
    return buffer[:size].reshape(shape)


def _perturbed_losses(
    model: Model, l: int, rows: np.ndarray, inputs: np.ndarray | None, deltas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """J(theta + delta_p e_p) - J(theta) for a batch of perturbations p of layer l+1, and
    whether each one moved any pre-activation across a kink."""
    L, m, Y = len(model.params), model.m, model.Y
    P = len(rows)
    flipped = np.zeros(P, dtype=bool)

    step = deltas[:, None] * (model.A[l][inputs] if inputs is not None else 1.0)
    z_row = model.Z[l][rows] + step
    side = kink_side(model.g[l], model.Z[l])
    if side is not None:
        flipped |= (kink_side(model.g[l], z_row) != side[rows]).any(axis=1)
    ambiguous = _ambiguous(model, l)
    if ambiguous is not None:  # a sample moved where a pre-activation has no known side
        near, above = ambiguous
        flipped |= ((z_row != model.Z[l][rows]) & (near[rows] | above)).any(axis=1)
    if l == L - 1 and not model.g[l].elementwise:  # softmax: row i moves the whole column
        Z = np.repeat(model.Z[l][:, None, :], P, axis=1)
        Z[rows, np.arange(P)] = z_row
        base = model.terms(model.output(model.Z[l], model.A[l + 1]), Y)[:, None, :]
        new = model.terms(model.output(Z, model.g[l].fn(Z)), Y[:, None, :])
        return (new - base).sum(axis=(0, 2)) / m, flipped
    a_row = model.g[l].fn(z_row)
    if l == L - 1:  # the output layer: only row i of the cost's terms changes
        old = model.terms(model.output(model.Z[l][rows], model.A[l + 1][rows]), Y[rows])
        new = model.terms(model.output(z_row, a_row), Y[rows])
        return (new - old).sum(axis=1) / m, flipped

    # Layer l+2 moves by the rank-one term W^{l+2}[:, i] (A'_i - A_i); above it, in full.
    W_next = model.params[l + 1][0]
    if rows[0] == rows[-1]:  # one row of Z^l: one column of W^{l+2}, a contiguous broadcast
        column = W_next[:, rows[0], None, None]
    else:
        column = W_next[:, rows, None]
    Z = _scratch((W_next.shape[0], P, m))
    np.multiply(column, a_row - model.A[l + 1][rows], out=Z)
    Z += model.Z[l + 1][:, None, :]
    for k in range(l + 1, L):
        side = kink_side(model.g[k], model.Z[k])
        if side is not None:
            flipped |= (kink_side(model.g[k], Z) != side[:, None, :]).any(axis=(0, 2))
        g = model.g[k]
        keep_Z = k == L - 1 and model.on_logits  # the cost reads Z^L itself
        A = g.inplace(Z) if g.inplace is not None and not keep_Z else g.fn(Z)
        if k < L - 1:
            W, b = model.params[k + 1]
            Z = (W @ A.reshape(A.shape[0], P * m)).reshape(W.shape[0], P, m) + b[:, :, None]
    base = model.terms(model.output(model.Z[-1], model.A[-1]), Y)[:, None, :]
    new = model.terms(model.output(Z, A), Y[:, None, :])
    return (new - base).sum(axis=(0, 2)) / m, flipped


def _batched(model: Model, l: int, rows, inputs, deltas) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_perturbed_losses` in cache-sized chunks, spread over the cores.

    ``rows`` must come grouped (all perturbations of one row of Z^l together):
    a chunk holds whole groups where it can, so that it moves a single row.
    """
    # a perturbation moves one row of Z^l, (m,), and every row of the layers above it
    widest = max([1] + [W.shape[0] for W, _ in model.params[l + 1 :]])
    chunk = max(1, _CHUNK_ELEMENTS // (widest * model.m))
    bounds = [0]
    for edge in [*np.flatnonzero(np.diff(rows)) + 1, len(rows)]:
        while edge - bounds[-1] > chunk:  # a group larger than a chunk: split it
            bounds.append(bounds[-1] + chunk)
        if (
            edge - bounds[-1] > 0
            and (edge - bounds[-1]) + (bounds[-1] - bounds[-2] if len(bounds) > 1 else chunk)
            <= chunk
        ):
            bounds[-1] = edge  # merge small groups into the open chunk
        else:
            bounds.append(edge)
    spans = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

    def part(span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        sl = slice(*span)
        return _perturbed_losses(
            model, l, rows[sl], None if inputs is None else inputs[sl], deltas[sl]
        )

    if len(spans) > 1 and _WORKERS > 1:  # one long task per core: dispatch costs add up
        share = -(-len(spans) // _WORKERS)
        with ThreadPoolExecutor(_WORKERS) as pool:
            runs = pool.map(
                lambda k: [part(sp) for sp in spans[k : k + share]], range(0, len(spans), share)
            )
            parts = [p for run in runs for p in run]
    else:
        parts = [part(span) for span in spans]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _at_steps(
    model: Model, l: int, rows, inputs, h: np.ndarray, factors: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """J's change and the kink flips at theta + f h e_p for every entry p and factor f,
    each of shape (len(factors), P); the steps of an entry side by side, a row's entries
    together."""
    k = len(factors)
    dJ, flipped = _batched(
        model,
        l,
        np.repeat(rows, k),
        None if inputs is None else np.repeat(inputs, k),
        (h[:, None] * np.array(factors)).ravel(),
    )
    dJ = dJ.reshape(-1, k).T
    if model.l2 and inputs is not None:  # the penalty's exact change, entry by entry
        theta = model.params[l][0][rows, inputs]
        d = h[None, :] * np.array(factors)[:, None]
        dJ = dJ + model.l2 / (2 * model.m) * (2 * theta[None, :] + d) * d
    return dJ, flipped.reshape(-1, k).T


def model_gradients(model: Model, source: str = "the formulas (NumPy model)") -> FDGradients:
    """Every entry's finite-difference derivative of the model's J (see module docstring)."""
    J = model.loss()
    terms = model.terms(model.output(model.Z[-1], model.A[-1]), model.Y)
    roundoff = max(EPS * float(np.sum(np.abs(terms))) / model.m, model.rounding)
    grads, errors, methods = [], [], []
    for l, (W, b) in enumerate(model.params):
        per_param = []
        for name, shape in (("W", W.shape), ("b", b.shape)):
            rows, inputs, theta = _entries(model, l, name)
            h = steps(theta)
            dJ, flipped = np.full((4, h.size), np.nan), np.zeros((4, h.size), dtype=bool)
            dJ[:3], flipped[:3] = _at_steps(model, l, rows, inputs, h, FACTORS[:3])
            # -2h only where the backward difference will need it
            need = np.flatnonzero((flipped[0] | flipped[2]) & ~flipped[1])
            if need.size:
                moves = None if inputs is None else inputs[need]
                dJ[3:, need], flipped[3:, need] = _at_steps(
                    model, l, rows[need], moves, h[need], FACTORS[3:]
                )
            est, err, meth = combine(dJ, flipped, h, roundoff)
            per_param.append((est.reshape(shape), err.reshape(shape), meth.reshape(shape)))
        grads.append((per_param[0][0], per_param[1][0]))
        errors.append((per_param[0][1], per_param[1][1]))
        methods.append((per_param[0][2], per_param[1][2]))
    return FDGradients(grads, errors, methods, J, source)


def _calls_roundoff(J0: float, model: Model | None) -> float:
    """The rounding noise of one call of the implementation's loss, J0 at the base point: one
    rounding of J0, or the formulas' :func:`~reference.oracles.numpy_model.rounding_sensitivity`
    at the implementation's scale where a model exists (a loss that is the formulas' times c,
    a cost summed over samples or scaled by 1e-8, rounds c times as much, not as much as the
    formulas': the formulas' figure would let a small loss's gradient off by anything pass)."""
    roundoff = EPS * max(abs(J0), 1e-300)
    if model is not None:
        J = abs(model.loss())
        scale = abs(J0) / J if J > 0 else 1.0
        roundoff = max(roundoff, model.rounding * scale)
    return roundoff


def impl_gradients(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    activations: Sequence[str],
    cost: str,
    model: Model | None,
    l2: float = 0.0,
) -> FDGradients:
    """Every entry's finite-difference derivative of ``impl.loss`` itself, one call per point.

    The slow path, used when the implementation's loss is not the formulas' (the
    batched model would then differentiate the wrong function). Kinks are
    located with ``model``, which sees the pre-activations; without one (a
    fork's activation with no NumPy twin) every entry is a central difference.
    """
    impl = guard(impl)
    params = [(np.asarray(W), np.asarray(b)) for W, b in params]
    J0 = impl.loss(params, X, Y, activations=activations, cost=cost, l2=l2)
    roundoff = _calls_roundoff(J0, model)
    kinks = model_gradients(model).method if model is not None else None
    grads, errors, methods = [], [], []
    for l, (W, b) in enumerate(params):
        per_param = []
        for k, theta in enumerate((W, b)):
            h = steps(theta.ravel())
            meth = kinks[l][k].ravel() if kinks is not None else np.zeros(h.size, np.int8)
            flipped = np.stack([meth == BACKWARD, meth == FORWARD] * 2) | (meth == EXCLUDED)
            dJ = np.full((4, h.size), np.nan)
            where, points = [], []
            for e in range(h.size):
                # -2h only where the backward difference will need it
                for s, factor in enumerate(FACTORS if meth[e] == BACKWARD else FACTORS[:3]):
                    changed = theta.copy()
                    changed.flat[e] += factor * h[e]
                    moved = list(params)
                    moved[l] = (W, changed) if k == 1 else (changed, b)
                    where.append((s, e))
                    points.append(moved)
            losses = impl.losses(points, X, Y, activations=activations, cost=cost, l2=l2)
            for (s, e), J in zip(where, losses):
                dJ[s, e] = J - J0
            est, err, meth = combine(dJ, flipped, h, roundoff)
            per_param.append(tuple(x.reshape(theta.shape) for x in (est, err, meth)))
        grads.append((per_param[0][0], per_param[1][0]))
        errors.append((per_param[0][1], per_param[1][1]))
        methods.append((per_param[0][2], per_param[1][2]))
    return FDGradients(grads, errors, methods, J0, "the implementation's loss, entry by entry")


def loss_matches_model(
    impl: Any,
    model: Model,
    activations: Sequence[str],
    cost: str,
    *,
    points: int = 2,
    seed: int = 0,
) -> tuple[bool, float]:
    """Whether ``impl.loss`` is the model's J: at theta and at ``points`` random nearby points.

    Returns (agrees, worst difference relative to the allowance). Agreement to
    1e-10 relative, or to within the rounding noise of J where J is a small
    difference of large terms, at points the implementation cannot anticipate is
    what lets the batched model stand in for the implementation's own loss.
    """
    impl = guard(impl)
    rng = np.random.default_rng(seed)
    noise = 64 * model.rounding
    candidates = [model.params]
    for _ in range(points):
        candidates.append(
            [
                (W + 1e-3 * rng.standard_normal(W.shape), b + 1e-3 * rng.standard_normal(b.shape))
                for W, b in model.params
            ]
        )
    worst = 0.0
    for p in candidates:
        mine = numpy_model.loss_at(model, p)
        theirs = impl.loss(p, model.X, model.Y, activations=activations, cost=cost, l2=model.l2)
        allowance = 1e-10 * abs(mine) + noise + 1e-300
        ratio = abs(theirs - mine) / allowance
        if not np.isfinite(theirs) or not ratio <= 1.0:
            return False, ratio if np.isfinite(ratio) else float("inf")
        worst = max(worst, ratio)
    return True, worst


@dataclass
class DirectionalFD:
    """Directional derivatives of ``impl.loss`` along random unit directions, per layer and
    parameter: ``directions[l - 1][k]`` has shape (d, *param.shape) (k = 0 for W, 1 for b),
    ``values`` and ``errors`` shape (d,). Compare with ``sum(direction * gradient)``."""

    directions: list[tuple[np.ndarray, np.ndarray]]
    values: list[tuple[np.ndarray, np.ndarray]]
    errors: list[tuple[np.ndarray, np.ndarray]]
    loss: float


def directional_gradients(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    directions: int = 2,
    seed: int = 0,
    near_kink: Sequence[np.ndarray] | None = None,
    l2: float = 0.0,
) -> DirectionalFD:
    """For networks too large to check entry by entry: ``directions`` random unit directions
    per layer and parameter (like PyTorch's fast gradcheck, but per layer so that a failure
    still names its layer), each a central difference of ``impl.loss`` at h and 2h with
    Richardson extrapolation: 3 calls per direction, whatever the network's size.

    A random direction sees any wrong gradient array with probability one: the projection
    of a nonzero error on a random direction is almost surely nonzero. ``near_kink``: as in
    :func:`numerical_gradients`; ``l2``: the penalty's lambda, passed to ``impl.loss``.
    """
    impl = guard(impl)
    rng = np.random.default_rng(seed)
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    model = None
    if numpy_model.has_twins(activations, cost):
        model = numpy_model.build(params, X, Y, activations, cost, l2)
        model.near = None if near_kink is None else [np.asarray(n, bool) for n in near_kink]
        if loss_matches_model(impl, model, activations, cost)[0]:
            return _model_directional(model, directions, rng)
    J0 = impl.loss(params, X, Y, activations=activations, cost=cost, l2=l2)
    roundoff = _calls_roundoff(J0, model)
    dirs, values, errors = [], [], []
    for l, (W, b) in enumerate(params):
        per_param = []
        for k, theta in enumerate((W, b)):
            d = _unit_directions(rng, directions, theta.shape)
            h = STEP * max(1.0, float(np.abs(theta).max()))
            dJ = np.full((4, directions), np.nan)
            flipped = np.zeros((4, directions), dtype=bool)
            where, points = [], []
            for j in range(directions):
                if model is not None:  # the kinks, located with the model at the same points
                    flipped[:, j] = _along(model, l, k, d[j], h)[1]
                # -2h only where the backward difference will need it
                backward = (flipped[0, j] or flipped[2, j]) and not flipped[1, j]
                for s, factor in enumerate(FACTORS if backward else FACTORS[:3]):
                    step = factor * h * d[j]
                    moved = list(params)
                    moved[l] = (W, b + step) if k == 1 else (W + step, b)
                    where.append((s, j))
                    points.append(moved)
            losses = impl.losses(points, X, Y, activations=activations, cost=cost, l2=l2)
            for (s, j), J in zip(where, losses):
                dJ[s, j] = J - J0
            est, err, _ = combine(dJ, flipped, np.full(directions, h), roundoff)
            per_param.append((d, est, err))
        dirs.append((per_param[0][0], per_param[1][0]))
        values.append((per_param[0][1], per_param[1][1]))
        errors.append((per_param[0][2], per_param[1][2]))
    return DirectionalFD(dirs, values, errors, J0)


def _unit_directions(rng: np.random.Generator, count: int, shape: tuple[int, ...]) -> np.ndarray:
    d = rng.standard_normal((count, *shape))
    return d / np.linalg.norm(d.reshape(count, -1), axis=1).reshape(-1, *[1] * len(shape))


def _along(
    model: Model, l: int, k: int, direction: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """J's change and the kink flips at the four steps ``FACTORS`` h along ``direction`` in
    layer l+1's W (k = 0) or b (k = 1), each of shape (4,). A step along D in W^{l+1} moves
    Z^{l+1} by exactly step * D A^l (along d in b^{l+1}, by step * d), so the four steps
    share one product and travel through the layers above side by side."""
    L, m = len(model.params), model.m
    n = model.params[l][0].shape[0]
    move = direction @ model.A[l] if k == 0 else np.broadcast_to(direction, (n, m))
    Z = model.Z[l][:, None, :] + (h * np.array(FACTORS))[None, :, None] * move[:, None, :]
    flipped = np.zeros(len(FACTORS), dtype=bool)
    ambiguous = _ambiguous(model, l)
    if ambiguous is not None:  # a sample moved where a pre-activation has no known side
        near, above = ambiguous
        moved = Z != model.Z[l][:, None, :]
        flipped |= (moved & near[:, None, :]).any(axis=(0, 2))
        flipped |= (moved.any(axis=0) & above).any(axis=1)
    for layer in range(l, L):  # Z: (n_layer, 4, m)
        side = kink_side(model.g[layer], model.Z[layer])
        if side is not None:
            flipped |= (kink_side(model.g[layer], Z) != side[:, None, :]).any(axis=(0, 2))
        A = model.g[layer].fn(Z)
        if layer < L - 1:
            W_up, b_up = model.params[layer + 1]
            Z = (W_up @ A.reshape(A.shape[0], -1)).reshape(W_up.shape[0], -1, m) + b_up[:, :, None]
    base = model.terms(model.output(model.Z[-1], model.A[-1]), model.Y)[:, None, :]
    new = model.terms(model.output(Z, A), model.Y[:, None, :])
    dJ = (new - base).sum(axis=(0, 2)) / m
    if model.l2 and k == 0:  # the penalty along s D: lambda/(2m) (2 s <W, D> + s^2 ||D||^2)
        s = h * np.array(FACTORS)
        W = model.params[l][0]
        dJ = dJ + model.l2 / (2 * m) * (
            2 * s * np.vdot(W, direction) + s**2 * np.vdot(direction, direction)
        )
    return dJ, flipped


def _model_directional(model: Model, directions: int, rng: np.random.Generator) -> DirectionalFD:
    """:func:`directional_gradients` on the model, batched (:func:`_along`). Directions whose
    steps move a relu mask get one-sided differences or are excluded (NaN), as in the
    entry-by-entry mode."""
    terms0 = model.terms(model.output(model.Z[-1], model.A[-1]), model.Y)
    roundoff = max(EPS * float(np.sum(np.abs(terms0))) / model.m, model.rounding)
    dirs, values, errors = [], [], []
    for l, (W, b) in enumerate(model.params):
        per_param = []
        for k, theta in enumerate((W, b)):
            d = _unit_directions(rng, directions, theta.shape)
            h = STEP * max(1.0, float(np.abs(theta).max()))
            dJ, flipped = np.empty((4, directions)), np.empty((4, directions), dtype=bool)
            for j in range(directions):
                dJ[:, j], flipped[:, j] = _along(model, l, k, d[j], h)
            est, err, _ = combine(dJ, flipped, np.full(directions, h), roundoff)
            per_param.append((d, est, err))
        dirs.append((per_param[0][0], per_param[1][0]))
        values.append((per_param[0][1], per_param[1][1]))
        errors.append((per_param[0][2], per_param[1][2]))
    return DirectionalFD(dirs, values, errors, model.loss())


def numerical_gradients(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    method: str = "auto",
    near_kink: Sequence[np.ndarray] | None = None,
    l2: float = 0.0,
) -> FDGradients:
    """Central-difference estimates of dJ/dW and dJ/db for every entry of every layer.

    J is ``impl.loss``. With ``method="auto"`` the batched NumPy model stands in
    for it when ``impl.loss`` agrees with the model at theta and at random
    nearby points (:func:`loss_matches_model`); otherwise, or with
    ``method="calls"``, ``impl.loss`` is called for every perturbed point.
    ``method="model"`` differentiates the formulas' J whatever ``impl.loss`` is.
    Inputs must be float64 (finite differences at h ~ 6e-6 mean nothing in
    float32): anything else is a TypeError. ``near_kink``: per layer, (n_l, m), the
    pre-activations within rounding of a kink (``JaxResult.near_kink``); entries whose
    perturbations move one are excluded (``Model.near``). ``l2``: the L2 penalty's lambda
    (J gains lambda/(2m) sum ||W^l||^2), passed to ``impl.loss`` when not 0.
    """
    for name, a in [("X", X), ("Y", Y)] + [
        (f"layer {l}: {n}", arr)
        for l, (W, b) in enumerate(params, 1)
        for n, arr in (("W", W), ("b", b))
    ]:
        if np.asarray(a).dtype != np.float64:
            raise TypeError(
                f"{name} is {np.asarray(a).dtype}; finite differences need float64 "
                "(convert with .astype(np.float64))"
            )
    if method not in ("auto", "model", "calls"):
        raise ValueError(f"method must be 'auto', 'model' or 'calls', got {method!r}")
    impl = guard(impl)
    if not numpy_model.has_twins(activations, cost):
        if method == "model":
            missing = [a for a in activations if a not in specs.NUMPY_ACTIVATIONS]
            raise MissingTwinError(
                f"no NumPy twin for {missing or [cost]}: add it to the name's spec in "
                "ACTIVATION_SPECS / COST_SPECS in reference/formulas/specs.py, or register "
                "it: reference.register_activation / register_cost(name, numpy=, jax=)"
            )
        return impl_gradients(impl, params, X, Y, activations, cost, None, l2)
    model = numpy_model.build(params, X, Y, activations, cost, l2)
    model.near = None if near_kink is None else [np.asarray(n, bool) for n in near_kink]
    if method == "model":
        return model_gradients(model)
    if method == "auto":
        agrees, diff = loss_matches_model(impl, model, activations, cost)
        if agrees:
            fd = model_gradients(
                model, "the implementation's loss (batched: it equals the formulas)"
            )
            fd.details["loss_model_difference"] = diff
            return fd
    return impl_gradients(impl, model.params, model.X, model.Y, activations, cost, model, l2)
