"""The JAX oracle: the network written again in ``jax.numpy`` from the formulas, and ``jax.grad``.

Nothing here calls ``backprop``: the forward pass, the activations and the
costs are re-derived from DESIGN.md's conventions, so that a mistake in the
implementation under test cannot leak into the reference.

    Z^l = W^l A^{l-1} + b^l,  A^l = g_l(Z^l),  A^0 = X
    mse: J = 1/(2m) sum (A^L - Y)^2
    bce: J = 1/m sum -Y log A^L - (1 - Y) log(1 - A^L)
         (with a sigmoid output, from the logits: 1/m sum softplus(Z^L) - Y Z^L)

Beside the gradients it bounds the rounding error any correct float64
implementation makes in them.

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

ABSOLUTE_ROUNDING: dict[str, float] = {"relu": 0.0}
"""s_g per activation: a correct formula for g(z) is off by up to a few eps (|g(z)| + s_g).

s_g = 1 (the default for a name not listed) where correct formulas keep only absolute
precision: sigmoid as (1 + tanh(z/2))/2 or 1 - 1/(1 + e^z) is 0 where the true value is
1e-20, tanh as 2/(1 + e^{-2z}) - 1 (the seed's form) cancels near z = 0. s_g = 0 where every
formula is exact or keeps relative precision: relu's max(z, 0) and z [z > 0]."""


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

    ``grads[l - 1] = (dJ/dW^l, dJ/db^l)``. ``rounding[l - 1]`` bounds, entry by
    entry, the rounding error any float64 forward and backward pass makes in those
    gradients (:func:`_forward_rounding`, :func:`_rounding_bounds`): where a gradient
    is far smaller than the terms it is computed from (saturation, cancellation, an
    activation far below its absolute rounding) two correct implementations differ by
    that much, and no more.
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


# The rounding analysis runs in NumPy on the JAX model's intermediate values, after the
# jitted call: written in jax.numpy it would be compiled into every network's function,
# doubling the compile time for a few microseconds of arithmetic.

EPS = float(np.finfo(np.float64).eps)


def _forward_rounding(params, As, gps, scales):
    """First-order bounds on the rounding error of a float64 forward pass, per entry.

    With eps = 2^-52, |.| entrywise and n_{l-1} + 1 the terms of each sum,
        dZ^l = |W^l| dA^{l-1} + (n_{l-1} + 1) eps (|W^l| |A^{l-1}| + |b^l|),   dA^0 = 0
        dA^l = |g'_l(Z^l)| dZ^l + 4 eps (|A^l| + s_l)
    (s_l: :data:`ABSOLUTE_ROUNDING`). Returns (dZ, dA) per layer; dA[0] is X's, zero.
    """
    dA = np.zeros_like(As[0])
    dZs, dAs = [], [dA]
    for l, (W, b) in enumerate(params):
        absW = np.abs(W)
        dZ = absW @ dA + (W.shape[1] + 1) * EPS * (absW @ np.abs(As[l]) + np.abs(b))
        dA = np.abs(gps[l]) * dZ + 4 * EPS * (np.abs(As[l + 1]) + scales[l])
        dZs.append(dZ)
        dAs.append(dA)
    return dZs, dAs


def _rounding_bounds(params, As, dZs, dAs, gps, gpps, Y, m, forward, scales):
    """First-order bounds on the rounding error of a float64 backward pass, per entry.

    ``forward`` is :func:`_forward_rounding`'s (dZ, dA), written here delta Z^l and
    delta A^l. With eps = 2^-52 and |.| entrywise, g' evaluated at a rounded Z^l by a
    formula of its own is off by at most
        e'_l = |g''_l| delta Z^l + 4 eps (|g'_l| + 4 s_l)
    (g' from a rounded A, as A(1 - A) or 1 - A^2, is off by a few times A's absolute
    rounding); the cost's A - Y cancels to eps (|A| + |Y|) plus A's own error. The error E^l
    in dZ^l is then at most
        E^L = (eps (|A^L| + |Y|) + delta A^L) / m (1 + |g'_L|) + |dA^L| e'_L + eps |dZ^L|
        E^l = |g'_l| (|W^{l+1}|^T E^{l+1} + n_{l+1} eps |W^{l+1}|^T |dZ^{l+1}|)
              + |dA^l| e'_l + eps |dZ^l|
    and the gradients' errors at most
        dW^l: E^l |A^{l-1}|^T + |dZ^l| (delta A^{l-1})^T + m eps |dZ^l| |A^{l-1}|^T,
        db^l: sum E^l + m eps sum |dZ^l|.
    A gradient far below the terms it is computed from (saturation, cancellation, an input
    A^{l-1} far below its activation's absolute rounding) can differ between two correct
    implementations by that much, and no more.
    """
    L = len(params)
    fw_dZ, fw_dA = forward
    slope = [np.abs(g) for g in gps]
    g_err = [
        np.abs(gpp) * dz + 4 * EPS * (s + 4 * scale)
        for gpp, dz, s, scale in zip(gpps, fw_dZ, slope, scales)
    ]
    out = (EPS * (np.abs(As[L]) + np.abs(Y)) + fw_dA[L]) / m * (1 + slope[L - 1])
    E = out + np.abs(dAs[L - 1]) * g_err[L - 1] + EPS * np.abs(dZs[L - 1])
    bounds = [None] * L
    for l in range(L - 1, -1, -1):
        absA = np.abs(As[l])
        absdZ = np.abs(dZs[l])
        bounds[l] = (
            E @ absA.T + absdZ @ fw_dA[l].T + m * EPS * absdZ @ absA.T,
            np.sum(E, axis=1, keepdims=True) + m * EPS * np.sum(absdZ, axis=1, keepdims=True),
        )
        if l > 0:
            absW = np.abs(params[l][0])
            n = params[l][0].shape[0]
            E = (
                slope[l - 1] * (absW.T @ E + n * EPS * absW.T @ absdZ)
                + np.abs(dAs[l - 1]) * g_err[l - 1]
                + EPS * np.abs(dZs[l - 1])
            )
    return bounds


def _compile(forward_layer: Callable, layers: int, cost_terms: Callable, on_logits: bool):
    """jit of J, its gradients, and what the rounding analysis reads: A^l, the deltas
    dZ^l and dA^l, g_l' and g_l'' at Z^l.

    ``forward_layer(l, Z, which)`` applies layer l+1's activation (``which``
    selects it at run time on the padded path). Zeros added to every Z^l and
    A^l make d J / d offset the deltas dZ^l and dA^l.
    """

    def derivatives(l, Z, which):
        """(g_l'(Z), g_l''(Z)), elementwise."""
        g = functools.partial(forward_layer, l, which=which)
        return jax.jvp(
            lambda z: jax.jvp(g, (z,), (jnp.ones_like(z),))[1], (Z,), (jnp.ones_like(Z),)
        )

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
        derivs = [derivatives(l, Z, which) for l, Z in enumerate(Zs)]
        return J, grads, (As[1:], dZs, dAs, derivs)

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
    params = [(_f64(W), _f64(b)) for W, b in params]
    X, Y = _f64(X), _f64(Y)
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    m = X.shape[1]
    if max(sizes) > _PAD_MAX_WIDTH or m > _PAD_MAX_SAMPLES:
        fn = _exact_fn(activations, cost)
        mask = np.ones(Y.shape, dtype=bool)
        J, grads, inside = fn(params, None, X, Y, mask, float(m))
    else:
        width, mb = _bucket(max(sizes)), _bucket(m)
        table = tuple(JAX_ACTIVATIONS)
        which = np.array([table.index(a) for a in activations], dtype=np.int32)
        padded = [(_pad(W, width, width), _pad(b, width, 1)) for W, b in params]
        mask = np.zeros((width, mb), dtype=bool)
        mask[: sizes[-1], :m] = True
        fn = _padded_fn(len(params), cost, activations[-1], table)
        J, grads, inside = fn(
            padded,
            which,
            _pad(X, width, mb),
            _pad(Y, width, mb),
            mask,
            float(m),
        )

    def cut(a, rows):
        return np.asarray(a)[:rows, :m]

    grads = [
        (np.asarray(gW)[: W.shape[0], : W.shape[1]], np.asarray(gb)[: W.shape[0]])
        for (gW, gb), (W, _) in zip(grads, params)
    ]
    As, dZs, dAs, derivs = inside
    n = sizes[1:]
    As = [X] + [cut(A, r) for A, r in zip(As, n)]
    dZs, dAs = [cut(d, r) for d, r in zip(dZs, n)], [cut(d, r) for d, r in zip(dAs, n)]
    gps, gpps = ([cut(d[k], r) for d, r in zip(derivs, n)] for k in range(2))
    scales = [ABSOLUTE_ROUNDING.get(a, 1.0) for a in activations]
    forward = _forward_rounding(params, As, gps, scales)
    rounding = _rounding_bounds(params, As, dZs, dAs, gps, gpps, Y, m, forward, scales)
    return JaxResult(float(J), grads, rounding)


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _pad(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols))
    out[: a.shape[0], : a.shape[1]] = a
    return out


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
