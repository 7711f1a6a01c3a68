"""The JAX oracle: the network written again in ``jax.numpy`` from the formulas, and ``jax.grad``.

Nothing here calls ``backprop``: the forward pass, the activations and the
costs are re-derived from DESIGN.md's conventions, so that a mistake in the
implementation under test cannot leak into the reference.

    Z^l = W^l A^{l-1} + b^l,  A^l = g_l(Z^l),  A^0 = X
    mse: J = 1/(2m) sum (A^L - Y)^2
    bce: J = 1/m sum -Y log A^L - (1 - Y) log(1 - A^L)
         (with a sigmoid output, from the logits: 1/m sum softplus(Z^L) - Y Z^L)

Importing this module turns on JAX's float64 mode (``jax_enable_x64``): the
oracle is only worth its ~1e-12 agreement in double precision.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (after the float64 switch)

JAX_ACTIVATIONS: dict[str, Callable] = {
    # lax.logistic: 1 / (1 + e^{-z}) with a derivative that stays finite at any |z|.
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    # where(z >= 0, z, 0) differentiates to 1 at z = 0: the seed's relu'(0) = 1,
    # not jax.nn.relu's 0.
    "relu": lambda z: jnp.where(z >= 0, z, 0.0),
}
"""JAX twins of ``backprop.ACTIVATIONS``, by name: g(z) only; jax.grad gives g'."""


class JaxCost(NamedTuple):
    """A cost's JAX twin as elementwise terms: J = (1/m) sum term(A, Y).

    ``from_logits[g](z, y)`` gives the same terms from Z^L for an output activation g.
    """

    term: Callable
    from_logits: Mapping[str, Callable] = {}


JAX_COSTS: dict[str, JaxCost] = {
    # mse: J = 1/(2m) sum (A - Y)^2
    "mse": JaxCost(lambda a, y: 0.5 * (a - y) ** 2),
    # bce: J = 1/m sum -Y log A - (1 - Y) log(1 - A); from the logits of a sigmoid output
    # the same terms are softplus(Z) - Y Z, finite however saturated Z is.
    "bce": JaxCost(
        lambda a, y: -y * jnp.log(a) - (1 - y) * jnp.log(1 - a),
        {"sigmoid": lambda z, y: jax.nn.softplus(z) - y * z},
    ),
}
"""JAX twins of ``backprop.COSTS``, by name."""


class MissingTwinError(LookupError):
    """A name in the implementation's tables has no JAX twin; the message says what to add."""


def _twin_activation(name: str) -> Callable:
    try:
        return JAX_ACTIVATIONS[name]
    except KeyError:
        raise MissingTwinError(
            f"activation {name!r} has no JAX twin: add an entry "
            f'"{name}": lambda z: <g(z) in jax.numpy> to JAX_ACTIVATIONS in '
            "reference/jax_model.py (and its NumPy twin to NUMPY_ACTIVATIONS in "
            "reference/numpy_model.py)"
        ) from None


def _twin_cost(name: str) -> JaxCost:
    try:
        return JAX_COSTS[name]
    except KeyError:
        raise MissingTwinError(
            f"cost {name!r} has no JAX twin: add an entry "
            f'"{name}": JaxCost(lambda a, y: <the terms of J summed over entries, over m>) '
            "to JAX_COSTS in "
            "reference/jax_model.py (and its NumPy twin to NUMPY_COSTS in "
            "reference/numpy_model.py)"
        ) from None


class JaxResult(NamedTuple):
    """The JAX oracle's numbers for one problem, all NumPy float64.

    ``grads[l - 1] = (dJ/dW^l, dJ/db^l)``; ``scales[l - 1]`` are the same
    products taken in absolute values, |dZ^l| |A^{l-1}|^T and sum |dZ^l|: the
    size of the terms each gradient entry sums, which bounds its rounding error.
    """

    loss: float
    grads: list[tuple[np.ndarray, np.ndarray]]
    scales: list[tuple[np.ndarray, np.ndarray]]


# Networks this small are padded to shared shapes, so that the many small
# architectures of a property test share a handful of compiled functions
# (a compile costs 0.1-0.5 s, a call about 0.1 ms). Padding is exact: padded
# units have zero weights in and out, padded samples and outputs are masked
# out of J, so they add exact zeros to every real entry.
_PAD_MAX_WIDTH = 64
_PAD_MAX_SAMPLES = 256


def _bucket(n: int, smallest: int = 8) -> int:
    return max(smallest, 1 << (n - 1).bit_length())


def _terms(twin: JaxCost, out_act: str) -> tuple[Callable, bool]:
    from_logits = twin.from_logits.get(out_act)
    return (from_logits, True) if from_logits is not None else (twin.term, False)


def _compile(forward_layer: Callable, layers: int, cost_terms: Callable, on_logits: bool):
    """jit of value_and_grad of J over (params, offsets).

    ``forward_layer(l, Z, which)`` applies layer l+1's activation (``which``
    selects it at run time on the padded path). The offsets are zeros added to
    each Z^l, so that d J / d offset^l is dZ^l, from which the scales are formed.
    """

    def loss_fn(params, offsets, which, X, Y, mask, m):
        A, As = X, [X]
        for l in range(layers):
            W, b = params[l]
            Z = W @ A + b + offsets[l]
            A = forward_layer(l, Z, which)
            As.append(A)
        out = Z if on_logits else A
        safe_out = jnp.where(mask, out, 0.5)  # padded entries: finite terms, masked out
        safe_y = jnp.where(mask, Y, 0.5)
        J = jnp.sum(jnp.where(mask, cost_terms(safe_out, safe_y), 0.0)) / m
        return J, As

    grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)

    def run(params, which, X, Y, mask, m):
        offsets = [jnp.zeros((W.shape[0], X.shape[1])) for W, _ in params]
        (J, As), (grads, dZs) = grad_fn(params, offsets, which, X, Y, mask, m)
        scales = [
            (jnp.abs(dZ) @ jnp.abs(A_prev).T, jnp.sum(jnp.abs(dZ), axis=1, keepdims=True))
            for dZ, A_prev in zip(dZs, As[:-1])
        ]
        return J, grads, scales

    return jax.jit(run)


@functools.cache
def _exact_fn(activations: tuple[str, ...], cost: str) -> Callable:
    """For larger networks: activations fixed at trace time; jit caches per shape."""
    gs = [_twin_activation(name) for name in activations]
    terms, on_logits = _terms(_twin_cost(cost), activations[-1])
    return _compile(lambda l, Z, which: gs[l](Z), len(gs), terms, on_logits)


@functools.cache
def _padded_fn(layers: int, cost: str, out_act: str, table: tuple[str, ...]) -> Callable:
    """For small networks: hidden activations chosen at run time by index into ``table``."""
    branches = [_twin_activation(name) for name in table]
    out_g = _twin_activation(out_act)
    terms, on_logits = _terms(_twin_cost(cost), out_act)

    def forward_layer(l, Z, which):
        if l == layers - 1:
            return out_g(Z)
        return jax.lax.switch(which[l], branches, Z)

    return _compile(forward_layer, layers, terms, on_logits)


def jax_model(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
) -> JaxResult:
    """Loss, gradients and their rounding scales from the JAX model (see :class:`JaxResult`)."""
    activations = tuple(activations)
    for name in activations:
        _twin_activation(name)
    _twin_cost(cost)
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    m = X.shape[1]
    if max(sizes) > _PAD_MAX_WIDTH or m > _PAD_MAX_SAMPLES:
        fn = _exact_fn(activations, cost)
        p = [(_f64(W), _f64(b)) for W, b in params]
        mask = np.ones(Y.shape, dtype=bool)
        J, grads, scales = fn(p, None, _f64(X), _f64(Y), mask, float(m))
        return JaxResult(float(J), _to_numpy(grads), _to_numpy(scales))

    width, mb = _bucket(max(sizes)), _bucket(m)
    table = tuple(JAX_ACTIVATIONS)
    which = np.array([table.index(a) for a in activations], dtype=np.int32)
    p = [(_pad(W, width, width), _pad(b, width, 1)) for W, b in params]
    mask = np.zeros((width, mb), dtype=bool)
    mask[: sizes[-1], :m] = True
    fn = _padded_fn(len(params), cost, activations[-1], table)
    J, grads, scales = fn(p, which, _pad(X, width, mb), _pad(Y, width, mb), mask, float(m))

    def cut(pairs):
        return [
            (np.asarray(gW)[: W.shape[0], : W.shape[1]], np.asarray(gb)[: W.shape[0]])
            for (gW, gb), (W, _) in zip(pairs, params)
        ]

    return JaxResult(float(J), cut(grads), cut(scales))


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _pad(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols))
    out[: a.shape[0], : a.shape[1]] = a
    return out


def _to_numpy(pairs) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(a), np.asarray(c)) for a, c in pairs]


def jax_gradients(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """``(J, [(dJ/dW^1, dJ/db^1), ...])`` from ``jax.grad`` of the JAX model, float64."""
    result = jax_model(params, X, Y, activations=activations, cost=cost)
    return result.loss, result.grads
