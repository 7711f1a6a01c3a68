"""The JAX twin of every built-in activation and cost: the formulas the JAX oracle
differentiates (:mod:`reference.oracles.jax_model`), written in ``jax.numpy`` from DESIGN.md's
conventions, not from ``backprop``; and the views of the specs that oracle reads,
:data:`JAX_ACTIVATIONS` and :data:`JAX_COSTS`.

A built-in spec (:mod:`.specs`) names its JAX twin by the name of a function here, so that
reading the specs imports no JAX; :func:`twin` turns that name into the function, and the
views do so for every spec as it is read. This module is the one that imports JAX: nothing
imports it until the JAX oracle runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .numpy_twins import LEAKY_SLOPE, MissingTwinError
from .specs import ACTIVATION_SPECS, COST_SPECS, ActivationSpec, CostSpec, SpecView, has_jax

# --- the activations: g(z) only; jax.grad gives g' ---------------------------------------

# lax.logistic: 1 / (1 + e^{-z}) with a derivative that stays finite at any |z|.
sigmoid = jax.nn.sigmoid
tanh = jnp.tanh


def relu(z):
    """where(z >= 0, z, 0), which differentiates to 1 at z = 0: the seed's relu'(0) = 1, not
    jax.nn.relu's 0."""
    return jnp.where(z >= 0, z, 0.0)


def leaky_relu(z):
    """z for z >= 0 and 0.01 z below (:data:`LEAKY_SLOPE`), differentiating to 1 at 0 like
    :func:`relu`."""
    return jnp.where(z >= 0, z, LEAKY_SLOPE * z)


def identity(z):
    """z itself."""
    return z


def softmax(z):
    """e^{z_i - c} / sum_k e^{z_k - c} along axis 0, c the column's largest z (held constant:
    the ratio does not depend on it, so its derivative adds nothing)."""
    e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z, axis=0, keepdims=True)))
    return e / jnp.sum(e, axis=0, keepdims=True)


def _log_softmax(z):
    """log softmax(z) along axis 0: z - c - log sum_k e^{z_k - c}."""
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=0, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=0, keepdims=True))


# --- the costs: the elementwise terms, J = (1/m) sum of them -----------------------------


def mse_term(a, y):
    """(A - Y)^2 / 2: mse's J = 1/(2m) sum (A - Y)^2."""
    return 0.5 * (a - y) ** 2


def bce_term(a, y):
    """-Y log A - (1 - Y) log(1 - A): bce's J = 1/m sum of them."""
    return -y * jnp.log(a) - (1 - y) * jnp.log(1 - a)


def bce_term_from_sigmoid(z, y):
    """bce's terms from the logits of a sigmoid output: softplus(Z) - Y Z, finite however
    saturated Z is."""
    return jax.nn.softplus(z) - y * z


def cce_term(a, y):
    """-Y log A: cce's J = -1/m sum Y log A, Y one-hot by columns."""
    return -y * jnp.log(a)


def cce_term_from_softmax(z, y):
    """cce's terms from the logits of a softmax output: -Y log softmax(Z), finite however
    large Z is."""
    return -y * _log_softmax(z)


# --- the views of the specs --------------------------------------------------------------


BUILT_IN: dict[str, Callable] = {
    "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu,
    "identity": identity, "softmax": softmax, "mse_term": mse_term, "bce_term": bce_term,
    "bce_term_from_sigmoid": bce_term_from_sigmoid, "cce_term": cce_term,
    "cce_term_from_softmax": cce_term_from_softmax,
}  # fmt: skip
"""The twins a built-in spec may name, by name: this module's formulas, nothing else."""


def twin(ref: Callable | str) -> Callable:
    """A spec's JAX twin: ``ref`` itself, or the built-in twin it names (:data:`BUILT_IN`);
    a :class:`MissingTwinError` for a name that is not one."""
    if callable(ref):
        return ref
    if ref not in BUILT_IN:
        raise MissingTwinError(f"no JAX twin named {ref!r} in reference/formulas/jax_twins.py")
    return BUILT_IN[ref]


class JaxCost(NamedTuple):
    """A cost's JAX twin as elementwise terms: J = (1/m) sum term(A, Y).

    ``from_logits[g](z, y)`` gives the same terms from Z^L for an output activation g.
    """

    term: Callable
    from_logits: Mapping[str, Callable] = {}


def _activation(spec: ActivationSpec) -> Callable:
    return twin(spec.jax)


def _cost(spec: CostSpec) -> JaxCost:
    return JaxCost(twin(spec.jax), {g: twin(f) for g, f in spec.jax_from_logits.items()})


JAX_ACTIVATIONS: Mapping[str, Callable] = SpecView(ACTIVATION_SPECS, _activation, has_jax)
"""The JAX twin g(z) of every activation of :data:`.specs.ACTIVATION_SPECS`, by name, read
from its spec (read-only); jax.grad gives g'."""

JAX_COSTS: Mapping[str, JaxCost] = SpecView(COST_SPECS, _cost, has_jax)
"""The JAX twin of every cost of :data:`.specs.COST_SPECS`, by name, read from its spec
(read-only)."""
