"""Dense networks: initialisation, the forward pass, the backward pass, the loss.

Conventions (the seed's sections 9-12, shapes as in DESIGN.md): layers are
numbered 0 (inputs) to L (outputs); layer l has n_l units; samples are columns.

    W^l : (n_l, n_{l-1})   b^l : (n_l, 1)   X = A^0 : (n_0, m)   Y : (n_L, m)
    Z^l = W^l A^{l-1} + b^l        A^l = g_l(Z^l)

``params`` is a list ``[(W^1, b^1), ..., (W^L, b^L)]``; Python index ``l - 1``
holds layer l. Nothing here changes its arguments.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from numbers import Integral
from typing import NamedTuple

import numpy as np

from . import _validate
from .activations import ACTIVATIONS
from .costs import Cost

Params = list[tuple[np.ndarray, np.ndarray]]
Grads = list[tuple[np.ndarray, np.ndarray]]


class Cache(NamedTuple):
    """What the forward pass keeps for the backward pass.

    ``Z[l - 1]`` is Z^l and ``A[l]`` is A^l (so ``A[0]`` is X), for l = 1..L.
    """

    Z: list[np.ndarray]
    A: list[np.ndarray]


def init_params(
    sizes: Sequence[int],
    *,
    seed: int | np.random.Generator | None = None,
    scale: float | None = None,
) -> Params:
    """Small random weights and biases near zero (the seed's step 1).

    W^l ~ N(0, s^2) with s = ``scale``, or 1/sqrt(n_{l-1}) when ``scale`` is None
    (LeCun et al., "Efficient BackProp", 1998: keeps Z^l of order one for any
    width); b^l ~ N(0, 0.01^2). ``sizes`` = (n_0, n_1, ..., n_L); the seed's
    network is ``init_params([2, 3, 2, 1])``. ``seed`` makes it reproducible.
    """
    if isinstance(sizes, str) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths (n_0, ..., n_L), got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least two widths (inputs and outputs), got {list(sizes)}")
    for l, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(
                f"sizes[{l}] (the width of layer {l}) must be a positive integer, got {n!r}"
            )
    if scale is not None:
        scale = _validate.check_positive_real(scale, "scale")
    rng = np.random.default_rng(seed)
    params: Params = []
    for n_prev, n in itertools.pairwise(sizes):
        s = scale if scale is not None else 1.0 / np.sqrt(n_prev)
        params.append((rng.normal(0.0, s, (n, n_prev)), rng.normal(0.0, 0.01, (n, 1))))
    return params


def forward_pass(params: Params, X: np.ndarray, activations: Sequence[str]) -> Cache:
    """Z^l = W^l A^{l-1} + b^l, A^l = g_l(Z^l) for l = 1..L, keeping every Z and A.

    Unchecked: the public functions validate first and then call this. Per layer:
    one matrix product, the bias added in place, one call of g; nothing else.
    """
    Z: list[np.ndarray] = []
    A: list[np.ndarray] = [X]
    a = X
    for (W, b), name in zip(params, activations):
        z = np.matmul(W, a)
        z += b
        a = ACTIVATIONS[name].fn(z)
        Z.append(z)
        A.append(a)
    return Cache(Z, A)


def cost_value(cache: Cache, Y: np.ndarray, activations: Sequence[str], cost: Cost) -> float:
    """J from a forward cache: the fused form from Z^L where the cost has one."""
    fused = cost.fused.get(activations[-1])
    if fused is not None:
        return fused.fn(cache.Z[-1], Y)
    return cost.fn(cache.A[-1], Y)


def backward(
    params: Params, cache: Cache, Y: np.ndarray, activations: Sequence[str], cost: Cost
) -> Grads:
    """The gradients of J for every layer, from a forward cache. Pure.

    Output layer:  dZ^L = dJ/dA^L * g'_L(Z^L)   (or the cost's fused delta; for
                   softmax, g's vjp: A^L * (dJ/dA^L - column sums of dJ/dA^L * A^L))
    Hidden layers: dZ^l = (W^{l+1})^T dZ^{l+1} * g'_l(Z^l)
    Every layer:   dW^l = dZ^l (A^{l-1})^T      (n_l, n_{l-1})
                   db^l = sum of dZ^l over the columns, (n_l, 1)

    The transpose in the hidden delta is the one the seed's shorthand leaves
    out: z_k^{l+1} depends on a_i^l through W^{l+1}_{ki}.
    Returns ``[(dW^1, db^1), ..., (dW^L, db^L)]``. Unchecked, like
    :func:`forward_pass`.
    """
    Z, A = cache
    L = len(params)
    out = activations[-1]
    fused = cost.fused.get(out)
    g = ACTIVATIONS[out]
    if fused is not None:
        dZ = fused.delta(A[L], Y)
    elif g.vjp is not None:  # not elementwise (softmax): dA times the Jacobian, by columns
        dZ = g.vjp(Z[L - 1], A[L], cost.grad(A[L], Y))
    else:
        dZ = cost.grad(A[L], Y) * g.grad(Z[L - 1], A[L])
    grads: Grads = [None] * L  # type: ignore[list-item]
    for l in range(L, 0, -1):
        a_prev = A[l - 1]
        grads[l - 1] = (np.matmul(dZ, a_prev.T), np.add.reduce(dZ, axis=1, keepdims=True))
        if l > 1:
            dA = np.matmul(params[l - 1][0].T, dZ)  # fresh: the derivative goes in in place
            dA *= ACTIVATIONS[activations[l - 2]].grad(Z[l - 2], a_prev)
            dZ = dA
    return grads


def l2_penalty(params: Params, l2: float, m: int) -> float:
    """lambda/(2m) times the sum over layers of sum(W^l ** 2); the biases are not penalised.

    The weight-decay term as Nielsen writes it ("Neural Networks and Deep Learning",
    ch. 3, "Regularization", eq. 87: C = C_0 + lambda/(2n) sum_w w^2, n the batch size).
    """
    if l2 == 0.0:
        return 0.0
    return l2 / (2 * m) * sum(float(np.vdot(W, W)) for W, _ in params)


def with_l2(grads: Grads, params: Params, l2: float, m: int) -> Grads:
    """The penalty's gradient added: dJ/dW^l += (lambda/m) W^l; dJ/db^l unchanged."""
    if l2 == 0.0:
        return grads
    return [(dW + (l2 / m) * W, db) for (dW, db), (W, _) in zip(grads, params)]


def forward(params: Params, X: np.ndarray, *, activations: Sequence[str]) -> np.ndarray:
    """The network's output A^L, shape (n_L, m), for inputs X of shape (n_0, m)."""
    p = _validate.check_params(params)
    acts = _validate.check_activations(activations, len(p))
    Xc = _validate.check_X(X, p)
    return forward_pass(p, Xc, acts).A[-1]


def loss(
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    l2: float = 0.0,
) -> float:
    """J(params; X, Y): the named cost of the network's output against Y, plus
    :func:`l2_penalty` when ``l2`` (lambda, >= 0) is not zero."""
    p, Xc, Yc, acts, entry = _validate.check_problem(params, X, Y, activations, cost)
    lam = _validate.check_l2(l2)
    J = cost_value(forward_pass(p, Xc, acts), Yc, acts, entry)
    return J + l2_penalty(p, lam, Xc.shape[1]) if lam else J


def gradients(
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    l2: float = 0.0,
) -> Grads:
    """``[(dJ/dW^1, dJ/db^1), ..., (dJ/dW^L, dJ/db^L)]``, each the shape of its parameter.

    One forward pass and one backward pass (:func:`backward`), vectorized over
    the m samples; with ``l2`` = lambda > 0, dJ/dW^l gains (lambda/m) W^l (:func:`with_l2`).
    """
    p, Xc, Yc, acts, entry = _validate.check_problem(params, X, Y, activations, cost)
    lam = _validate.check_l2(l2)
    return with_l2(backward(p, forward_pass(p, Xc, acts), Yc, acts, entry), p, lam, Xc.shape[1])
