"""The JAX twin of every activation and cost, by name: the formulas the JAX oracle
differentiates (:mod:`reference.oracles.jax_model`), written in ``jax.numpy`` from DESIGN.md's
conventions, not from ``backprop``. The registry (:mod:`reference.registry`) adds a fork's
names here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .numpy_twins import LEAKY_SLOPE


def _softmax(z):
    """e^{z_i - c} / sum_k e^{z_k - c} along axis 0, c the column's largest z (held constant:
    the ratio does not depend on it, so its derivative adds nothing)."""
    e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z, axis=0, keepdims=True)))
    return e / jnp.sum(e, axis=0, keepdims=True)


def _log_softmax(z):
    """log softmax(z) along axis 0: z - c - log sum_k e^{z_k - c}."""
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=0, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=0, keepdims=True))


JAX_ACTIVATIONS: dict[str, Callable] = {
    # lax.logistic: 1 / (1 + e^{-z}) with a derivative that stays finite at any |z|.
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    # where(z >= 0, z, 0) differentiates to 1 at z = 0: the seed's relu'(0) = 1,
    # not jax.nn.relu's 0.
    "relu": lambda z: jnp.where(z >= 0, z, 0.0),
    # z for z >= 0 and 0.01 z below, differentiating to 1 at 0 like relu above.
    "leaky_relu": lambda z: jnp.where(z >= 0, z, LEAKY_SLOPE * z),
    "identity": lambda z: z,
    # e^{z_i} / sum_k e^{z_k} over each column (axis 0), shifted by the column's largest z
    "softmax": lambda z: _softmax(z),
}
"""JAX twins of ``backprop.ACTIVATIONS``, by name: g(z) only; jax.grad gives g'."""

ABSOLUTE_ROUNDING: dict[str, float] = {"relu": 0.0, "leaky_relu": 0.0, "identity": 0.0}
"""s_g per activation: a correct formula for g(z) is off by up to a few eps (|g(z)| + s_g).

s_g = 1 (the default for a name not listed) where correct formulas keep only absolute
precision: sigmoid as (1 + tanh(z/2))/2 or 1 - 1/(1 + e^z) is 0 where the true value is
1e-20, tanh as 2/(1 + e^{-2z}) - 1 (the seed's form) cancels near z = 0. s_g = 0 where every
formula is exact or keeps relative precision: relu's max(z, 0) and z [z > 0], leaky relu's
max(z, 0.01 z), the identity."""


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
    # cce: J = -1/m sum Y log A, Y one-hot by columns; from the logits of a softmax output
    # the same terms are -Y log softmax(Z), finite however large Z is.
    "cce": JaxCost(
        lambda a, y: -y * jnp.log(a),
        {"softmax": lambda z, y: -y * _log_softmax(z)},
    ),
}
"""JAX twins of ``backprop.COSTS``, by name."""
