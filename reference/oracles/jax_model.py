"""The JAX oracle: the network written again in ``jax.numpy`` from the formulas, and ``jax.grad``.

Nothing here calls ``backprop``: the forward pass, the activations and the
costs are re-derived from DESIGN.md's conventions, so that a mistake in the
implementation under test cannot leak into the reference.

    Z^l = W^l A^{l-1} + b^l,  A^l = g_l(Z^l),  A^0 = X
    mse: J = 1/(2m) sum (A^L - Y)^2
    bce: J = 1/m sum -Y log A^L - (1 - Y) log(1 - A^L)
         (with a sigmoid output, from the logits: 1/m sum softplus(Z^L) - Y Z^L)

The oracle is only worth its ~1e-12 agreement in double precision: :func:`jax_model`
computes with ``jax_enable_x64`` on for the length of each call
(:func:`~reference.oracles.jax_x64.enable_x64`), and leaves the process's setting alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .jax_x64 import enable_x64
from .numpy_model import MissingTwinError

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


def _twin_activation(name: str) -> Callable:
    try:
        return JAX_ACTIVATIONS[name]
    except KeyError:
        raise MissingTwinError(
            f"activation {name!r} has no JAX twin: add an entry "
            f'"{name}": lambda z: <g(z) in jax.numpy> to JAX_ACTIVATIONS in '
            "reference/oracles/jax_model.py (and its NumPy twin to NUMPY_ACTIVATIONS in "
            "reference/oracles/numpy_model.py)"
        ) from None


def _twin_cost(name: str) -> JaxCost:
    try:
        return JAX_COSTS[name]
    except KeyError:
        raise MissingTwinError(
            f"cost {name!r} has no JAX twin: add an entry "
            f'"{name}": JaxCost(lambda a, y: <the terms of J summed over entries, over m>) '
            "to JAX_COSTS in "
            "reference/oracles/jax_model.py (and its NumPy twin to NUMPY_COSTS in "
            "reference/oracles/numpy_model.py)"
        ) from None


class JaxResult(NamedTuple):
    """The JAX oracle's numbers for one problem, all NumPy float64.

    ``grads[l - 1] = (dJ/dW^l, dJ/db^l)``. ``rounding[l - 1]`` bounds, entry by
    entry, the rounding error any float64 backward pass makes in those
    gradients (:func:`_rounding_bounds`): where a gradient is far smaller than
    the terms it is computed from (saturation, cancellation) two correct
    implementations differ by that much, and no more.
    """

    loss: float
    grads: list[tuple[np.ndarray, np.ndarray]]
    rounding: list[tuple[np.ndarray, np.ndarray]]


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


def _rounding_bounds(params, Zs, As, dZs, dAs, gps, Y, mask, m):
    """First-order bounds on the rounding error of a float64 backward pass, per entry.

    With eps the unit roundoff and |.| taken entrywise, the error E^l in dZ^l is
    at most
        E^L = eps (4 |dA^L| + |dZ^L|) + eps (|A^L| + |Y|) / m (1 + |g'_L|)
        E^l = |g'_l| (|W^{l+1}|^T E^{l+1} + n_{l+1} eps |W^{l+1}|^T |dZ^{l+1}|)
              + eps (4 |dA^l| + |dZ^l|)
    (g' evaluated from a rounded A is off by a few eps absolute; the cost's
    A - Y cancels to eps (|A| + |Y|)), and the gradients' errors at most
        dW^l: E^l |A^{l-1}|^T + m eps |dZ^l| |A^{l-1}|^T,   db^l: sum E^l + m eps sum |dZ^l|.
    """
    eps = jnp.finfo(jnp.float64).eps
    L = len(params)
    out = jnp.where(mask, eps * (jnp.abs(As[L]) + jnp.abs(Y)) / m * (1 + jnp.abs(gps[L - 1])), 0.0)
    E = eps * (4 * jnp.abs(dAs[L - 1]) + jnp.abs(dZs[L - 1])) + out
    bounds = [None] * L
    for l in range(L - 1, -1, -1):
        absA = jnp.abs(As[l])
        absdZ = jnp.abs(dZs[l])
        bounds[l] = (
            E @ absA.T + m * eps * absdZ @ absA.T,
            jnp.sum(E, axis=1, keepdims=True) + m * eps * jnp.sum(absdZ, axis=1, keepdims=True),
        )
        if l > 0:
            absW = jnp.abs(params[l][0])
            n = params[l][0].shape[0]
            E = jnp.abs(gps[l - 1]) * (absW.T @ E + n * eps * absW.T @ absdZ) + eps * (
                4 * jnp.abs(dAs[l - 1]) + jnp.abs(dZs[l - 1])
            )
    return bounds


def _compile(forward_layer: Callable, layers: int, cost_terms: Callable, on_logits: bool):
    """jit of J, its gradients and their rounding bounds.

    ``forward_layer(l, Z, which)`` applies layer l+1's activation (``which``
    selects it at run time on the padded path). Zeros added to every Z^l and
    A^l make d J / d offset the deltas dZ^l and dA^l the bounds are built from.
    """

    def loss_fn(params, offZ, offA, which, X, Y, mask, m):
        A, As, Zs = X, [X], []
        for l in range(layers):
            W, b = params[l]
            Z = W @ A + b + offZ[l]
            A = forward_layer(l, Z, which) + offA[l]
            Zs.append(Z)
            As.append(A)
        out = Z if on_logits else A
        safe_out = jnp.where(mask, out, 0.5)  # padded entries: finite terms, masked out
        safe_y = jnp.where(mask, Y, 0.5)
        J = jnp.sum(jnp.where(mask, cost_terms(safe_out, safe_y), 0.0)) / m
        return J, (Zs, As)

    grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)

    def run(params, which, X, Y, mask, m):
        zeros = [jnp.zeros((W.shape[0], X.shape[1])) for W, _ in params]
        (J, (Zs, As)), (grads, dZs, dAs) = grad_fn(params, zeros, zeros, which, X, Y, mask, m)
        gps = [
            jax.jvp(functools.partial(forward_layer, l, which=which), (Z,), (jnp.ones_like(Z),))[1]
            for l, Z in enumerate(Zs)
        ]
        return J, grads, _rounding_bounds(params, Zs, As, dZs, dAs, gps, Y, mask, m)

    return jax.jit(run)


@functools.cache
def _exact_fn(activations: tuple[str, ...], cost: str) -> Callable:
    """For larger networks: activations fixed at trace time; jit caches per shape."""
    gs = [_twin_activation(name) for name in activations]
    terms, on_logits = _terms(_twin_cost(cost), activations[-1])
    return _compile(lambda l, Z, which=None: gs[l](Z), len(gs), terms, on_logits)


@functools.cache
def _padded_fn(layers: int, cost: str, out_act: str, table: tuple[str, ...]) -> Callable:
    """For small networks: hidden activations chosen at run time by index into ``table``."""
    branches = [_twin_activation(name) for name in table]
    out_g = _twin_activation(out_act)
    terms, on_logits = _terms(_twin_cost(cost), out_act)

    def forward_layer(l, Z, which=None):
        if l == layers - 1:
            return out_g(Z)
        return jax.lax.switch(which[l], branches, Z)

    return _compile(forward_layer, layers, terms, on_logits)


@enable_x64()
def jax_model(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
) -> JaxResult:
    """Loss, gradients and their rounding bounds from the JAX model (see :class:`JaxResult`)."""
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
        J, grads, rounding = fn(p, None, _f64(X), _f64(Y), mask, float(m))
        return JaxResult(float(J), _to_numpy(grads), _to_numpy(rounding))

    width, mb = _bucket(max(sizes)), _bucket(m)
    table = tuple(JAX_ACTIVATIONS)
    which = np.array([table.index(a) for a in activations], dtype=np.int32)
    p = [(_pad(W, width, width), _pad(b, width, 1)) for W, b in params]
    mask = np.zeros((width, mb), dtype=bool)
    mask[: sizes[-1], :m] = True
    fn = _padded_fn(len(params), cost, activations[-1], table)
    J, grads, rounding = fn(p, which, _pad(X, width, mb), _pad(Y, width, mb), mask, float(m))

    def cut(pairs):
        return [
            (np.asarray(gW)[: W.shape[0], : W.shape[1]], np.asarray(gb)[: W.shape[0]])
            for (gW, gb), (W, _) in zip(pairs, params)
        ]

    return JaxResult(float(J), cut(grads), cut(rounding))


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
