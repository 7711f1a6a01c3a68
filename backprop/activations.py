"""Activation functions and their derivatives, side by side in one table.

Every activation is a pair ``fn(z)`` / ``grad(z, a)`` where ``a = fn(z)``: the
derivative may reuse the forward result (sigmoid and tanh do) or read ``z``
(relu does); each takes both so that every entry has the same signature. The
functions keep the dtype of ``z`` and never change their arguments.

Most activations are elementwise. One that is not (softmax: each output of a
column depends on the whole column) also has ``vjp(z, a, dA) -> dZ``, the
product of dA with its Jacobian, which the backward pass uses instead of
``dA * grad(z, a)``; such an activation is taken on the output layer only.

A fork adds an activation by adding one entry to :data:`ACTIVATIONS` (or by
:func:`register_activation` from its own code); the harness's tests iterate the
table and pick it up. The oracles need its twins (``reference/oracles/``, or
``reference.register_activation`` for the harness's side): the harness never
writes into this table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


class Activation(NamedTuple):
    """An activation g and its derivative g'.

    ``fn(z) -> a`` and ``grad(z, a) -> g'(z)``, both elementwise, shapes (n_l, m).
    ``vjp``: None for an elementwise g; for one that is not, ``vjp(z, a, dA) -> dZ``
    with dZ_i = sum_k dA_k da_k/dz_i over each column, and ``grad`` is only the
    Jacobian's diagonal da_i/dz_i (not what the backward pass uses).
    """

    fn: Callable[[Array], Array]
    grad: Callable[[Array, Array], Array]
    vjp: Callable[[Array, Array, Array], Array] | None = None


# --- sigmoid -----------------------------------------------------------------


def sigmoid(z: Array) -> Array:
    """g(z) = 1 / (1 + e^{-z}).

    Four passes over memory, in one buffer, and no mask. The formula as it stands
    is accurate to a few ulps, tiny outputs included (sigmoid(-40) is about
    4.2e-18, not 0): for z < 0, 1 + e^{-z} is large and its reciprocal keeps its
    relative precision. Where e^{-z} overflows (z below about -709 in float64,
    -88 in float32) the result is 0; the exact value there is below the
    smallest normal number of the dtype.

    >>> float(sigmoid(np.array(0.0)))
    0.5
    """
    out = np.negative(z, out=np.empty_like(z))  # an array even for a 0-d z
    with np.errstate(over="ignore"):  # e^{-z} = inf gives 1 / inf = 0, the right limit
        np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)


def sigmoid_grad(z: Array, a: Array) -> Array:
    """g'(z) = g(z)(1 - g(z)), from the cached output ``a``; ``z`` is unused."""
    g = 1.0 - a
    g *= a
    return g


# --- tanh --------------------------------------------------------------------


def tanh(z: Array) -> Array:
    """g(z) = 2 / (1 + e^{-2z}) - 1 (the seed's form), which is tanh(z).

    ``np.tanh`` computes the same function without the seed form's overflow of
    e^{-2z} for z below about -355 and without its cancellation near 0; where
    the seed's form is representable the two agree to rounding.
    """
    return np.tanh(z)


def tanh_grad(z: Array, a: Array) -> Array:
    """g'(z) = 1 - g(z)^2, from the cached output ``a``; ``z`` is unused."""
    g = a * a
    return np.subtract(1.0, g, out=g)


# --- relu --------------------------------------------------------------------


def relu(z: Array) -> Array:
    """g(z) = z for z >= 0, 0 for z < 0."""
    return np.maximum(z, 0.0)


def relu_grad(z: Array, a: Array) -> Array:
    """g'(z) = 1 for z >= 0, 0 for z < 0; ``a`` is unused.

    At the kink the seed defines relu'(0) = 1 (JAX and PyTorch use 0). The mask
    is read from ``z``, not ``a``: a = 0 cannot tell z = 0 from z < 0.
    """
    return np.greater_equal(z, 0.0, out=np.empty_like(z))  # the mask as 0/1, one pass


# --- leaky relu --------------------------------------------------------------

LEAKY_SLOPE = 0.01
"""The slope of leaky relu below 0: 0.01 as in Maas, Hannun and Ng, "Rectifier
Nonlinearities Improve Neural Network Acoustic Models" (ICML 2013), the default
of PyTorch's ``nn.LeakyReLU`` and of ``jax.nn.leaky_relu``. The table's
``leaky_relu`` uses it; :func:`leaky_relu_activation` builds one with another."""


def leaky_relu(z: Array, slope: float = LEAKY_SLOPE) -> Array:
    """g(z) = z for z >= 0, slope * z for z < 0 (the table's slope: 0.01).

    Any slope in [0, 1) is accepted (:func:`leaky_relu_activation`).

    >>> leaky_relu(np.array([-2.0, 0.0, 3.0])).tolist()
    [-0.02, 0.0, 3.0]
    """
    return np.where(z >= 0, z, z * slope).astype(z.dtype, copy=False)


def leaky_relu_grad(z: Array, a: Array, slope: float = LEAKY_SLOPE) -> Array:
    """g'(z) = 1 for z >= 0, slope for z < 0; ``a`` is unused.

    At the kink g'(0) = 1, relu's convention (the seed's relu'(0) = 1); any value
    in [slope, 1] is a subgradient there. The mask is read from ``z``, as relu's is.
    """
    return np.where(z >= 0, 1.0, slope).astype(z.dtype, copy=False)


def leaky_relu_activation(slope: float) -> Activation:
    """The :class:`Activation` of leaky relu with this ``slope`` (0 <= slope < 1), for a
    fork that registers another slope under its own name (the table's ``leaky_relu`` is
    :data:`LEAKY_SLOPE`)."""
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
        raise ValueError(f"slope must be a number in [0, 1), got {slope!r}")
    s = float(slope)
    return Activation(lambda z: leaky_relu(z, s), lambda z, a: leaky_relu_grad(z, a, s))


# --- identity ----------------------------------------------------------------


def identity(z: Array) -> Array:
    """g(z) = z: a linear output, for regression with mse. A copy, never ``z`` itself."""
    return z.copy()


def identity_grad(z: Array, a: Array) -> Array:
    """g'(z) = 1; ``a`` is unused."""
    return np.ones_like(z)


# --- softmax -----------------------------------------------------------------


def softmax(z: Array) -> Array:
    """g(z)_i = e^{z_i} / sum_k e^{z_k} over each column (axis 0) of z, shape (n_L, m).

    Computed as e^{z_i - c} / sum_k e^{z_k - c} with c the column's largest z: the
    same value (the ratio is unchanged by the shift), but no exponent is positive,
    so logits of 1000 do not overflow, and the sum is at least 1.

    >>> softmax(np.array([[0.0], [np.log(3.0)]])).ravel().round(12).tolist()
    [0.25, 0.75]
    """
    e = z - z.max(axis=0, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=0, keepdims=True)
    return e


def softmax_grad(z: Array, a: Array) -> Array:
    """The Jacobian's diagonal da_i/dz_i = a_i (1 - a_i) only; ``z`` is unused.

    Softmax is not elementwise: da_i/dz_k = a_i (delta_ik - a_k), so dA * grad(z, a)
    is not the backward pass (that is :func:`softmax_vjp`). Kept so that every entry
    of the table has the same members.
    """
    g = 1.0 - a
    g *= a
    return g


def softmax_vjp(z: Array, a: Array, dA: Array) -> Array:
    """dZ = A * (dA - sum over the column of dA * A), shapes (n_L, m); ``z`` is unused.

    dZ_i = sum_k dA_k a_k (delta_ik - a_i) = a_i (dA_i - sum_k dA_k a_k).
    """
    dZ = dA * a
    dZ -= a * dZ.sum(axis=0, keepdims=True)
    return dZ


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, sigmoid_grad),
    "tanh": Activation(tanh, tanh_grad),
    "relu": Activation(relu, relu_grad),
    "leaky_relu": Activation(leaky_relu, leaky_relu_grad),
    "identity": Activation(identity, identity_grad),
    "softmax": Activation(softmax, softmax_grad, vjp=softmax_vjp),
}
"""The activation table, keyed by name: ``ACTIVATIONS["tanh"].fn(z)``."""


def _check_entry(kind: str, name: object, table: dict, replace: object) -> None:
    """The checks :func:`register_activation` and ``costs.register_cost`` share."""
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be a str that is a Python identifier, got {name!r}")
    if not isinstance(replace, bool):
        raise TypeError(f"replace must be True or False, got {replace!r}")
    if name in table and not replace:
        raise ValueError(f"{kind} {name!r} is already in the table; pass replace=True")


def register_activation(
    name: str,
    fn: Callable[[Array], Array],
    grad: Callable[[Array, Array], Array],
    vjp: Callable[[Array, Array, Array], Array] | None = None,
    *,
    replace: bool = False,
) -> None:
    """Add ``name`` to :data:`ACTIVATIONS` as ``Activation(fn, grad, vjp)``, for a fork that
    keeps its activation in its own module; the signatures are :class:`Activation`'s.
    ``replace=True`` overwrites an entry already there.

    >>> register_activation("softsign", lambda z: z / (1 + abs(z)),
    ...                     lambda z, a: 1 / (1 + abs(z)) ** 2)
    >>> "softsign" in ACTIVATIONS
    True
    >>> del ACTIVATIONS["softsign"]
    """
    _check_entry("activation", name, ACTIVATIONS, replace)
    for argument, value in (("fn", fn), ("grad", grad)):
        if not callable(value):
            raise TypeError(f"{argument} must be callable, got {type(value).__name__}")
    if vjp is not None and not callable(vjp):
        raise TypeError(f"vjp must be callable or None, got {type(vjp).__name__}")
    ACTIVATIONS[name] = Activation(fn, grad, vjp)
