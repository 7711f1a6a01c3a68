"""Activation functions and their derivatives, side by side in one table.

Every activation is a pair ``fn(z)`` / ``grad(z, a)`` where ``a = fn(z)``: the
derivative may reuse the forward result (sigmoid and tanh do) or read ``z``
(relu does); each takes both so that every entry has the same signature. All
functions are elementwise, keep the dtype of ``z`` and never change their
arguments.

A fork adds an activation by adding one entry to :data:`ACTIVATIONS`; the
harness's tests iterate the table and pick it up (the oracles need its twins, see
``reference/oracles/``). ``reference.register_activation`` does all of it in one
call, from outside this package.
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
    """

    fn: Callable[[Array], Array]
    grad: Callable[[Array, Array], Array]


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


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, sigmoid_grad),
    "tanh": Activation(tanh, tanh_grad),
    "relu": Activation(relu, relu_grad),
}
"""The activation table, keyed by name: ``ACTIVATIONS["tanh"].fn(z)``."""
