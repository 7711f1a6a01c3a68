"""The JAX model's compiled programs: J, its gradients and what the rounding analysis reads,
jitted once per shape and shared as widely as the twins allow.

Small networks run one padded program per depth bucket, every layer's activation and the
cost chosen at run time (:func:`_padded_fn`); larger ones a program per combination of
activations and cost (:func:`_exact_fn`); g' and g'' of every activation come from one more
program (:func:`_derivatives_fn`), and the one-sided slopes at kinks from another
(:func:`_slopes_fn`). All are cached by the twins' names and forgotten when a registration
changes the twins (:func:`reference.registry.on_change`). Private to the JAX oracle,
:mod:`reference.oracles.jax_model`, which pads the networks and calls them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..formulas.jax_twins import JAX_ACTIVATIONS, JAX_COSTS, JaxCost
from ..formulas.numpy_twins import MissingTwinError
from ..formulas.specs import ACTIVATION_SPECS
from ..registry import on_change
from .rounding import EPS


def _twin_activation(name: str) -> Callable:
    try:
        return JAX_ACTIVATIONS[name]
    except KeyError:
        raise MissingTwinError(
            f"activation {name!r} has no JAX twin: add its spec "
            f'"{name}": ActivationSpec(numpy=<g(z) in NumPy>, jax=<g(z) in jax.numpy>, '
            "kinks=) to ACTIVATION_SPECS in reference/formulas/specs.py, or register it in "
            "one call: reference.register_activation(name, numpy=, jax=, kinks=)"
        ) from None


def _twin_cost(name: str) -> JaxCost:
    try:
        return JAX_COSTS[name]
    except KeyError:
        raise MissingTwinError(
            f"cost {name!r} has no JAX twin: add its spec "
            f'"{name}": CostSpec(numpy=, jax=<the terms of J summed over entries, over m>) '
            "to COST_SPECS in reference/formulas/specs.py, or register it in one call: "
            "reference.register_cost(name, numpy=, jax=)"
        ) from None


def _terms(twin: JaxCost, out_act: str) -> tuple[Callable, bool]:
    from_logits = twin.from_logits.get(out_act)
    return (from_logits, True) if from_logits is not None else (twin.term, False)


def _cost_branches(costs: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """The cost terms a shared program chooses from at run time, in order: each cost's terms
    on A (``(cost, None)``), then its terms from the logits of each output activation that
    has them (``(cost, g)``)."""
    plain = tuple((name, None) for name in costs)
    fused = tuple((name, g) for name in costs for g in sorted(_twin_cost(name).from_logits))
    return plain + fused


def _cost_index(branches: tuple[tuple[str, str | None], ...], cost: str, out_act: str) -> int:
    """Which of :func:`_cost_branches` computes ``cost`` after output activation ``out_act``."""
    fused = (cost, out_act)
    return branches.index(fused if fused in branches else (cost, None))


@functools.cache
def _kinks_of(name: str) -> tuple[tuple[float, float, float], ...]:
    """(k, g'(k^-), g'(k^+)) for each kink k of activation ``name`` (its spec lists them):
    g' one step of eps |k| to each side (a normal number at k = 0: XLA flushes subnormals)."""
    kinks = ACTIVATION_SPECS[name].kinks if name in ACTIVATION_SPECS else ()
    _twin_activation(name)
    table = tuple(JAX_ACTIVATIONS)
    out = []
    for k in kinks:
        step = max(abs(k) * EPS, float(np.finfo(np.float64).tiny))
        points = np.array([k - step, k + step])
        left, right = np.asarray(_slopes_fn(table)(np.int32(table.index(name)), points))
        out.append((float(k), float(left), float(right)))
    return tuple(out)


@functools.cache
def _slopes_fn(table: tuple[str, ...]) -> Callable:
    """jit of g'(points) for g chosen at run time by index into ``table`` (one program for
    every activation's kinks, where g' taken op by op compiles each operation apart)."""
    gs = [_twin_activation(name) for name in table]

    def run(which, points):
        g = functools.partial(jax.lax.switch, which, gs)
        return jax.jvp(g, (points,), (jnp.ones_like(points),))[1]

    return jax.jit(run)


def _nearest_kinks(Z: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each entry of Z: the distance to the nearest kink of activation ``name`` (inf
    where it has none) and g' just left and right of that kink."""
    gap, left, right = np.full(Z.shape, np.inf), np.zeros(Z.shape), np.zeros(Z.shape)
    for k, g_left, g_right in _kinks_of(name):
        d = np.abs(Z - k)
        closer = d < gap
        gap = np.where(closer, d, gap)
        left = np.where(closer, g_left, left)
        right = np.where(closer, g_right, right)
    return gap, left, right


_JIT_TAKES_OPTIONS = "compiler_options" in inspect.signature(jax.jit).parameters
"""Whether this JAX's ``jit`` takes XLA options (newer ones than the oldest supported do)."""
_QUICK_MAX = 16
"""Padded widths and sample counts up to which the program is compiled with
:data:`_QUICK_OPTIONS`."""
_QUICK_OPTIONS = {"xla_backend_optimization_level": 0}
"""XLA's options for the smallest networks' programs (widths and samples padded to at most
:data:`_QUICK_MAX`, the default run's): without LLVM's optimizations they compile in about
half the CPU time and run as fast (0.33 against 0.54-0.71 s to compile, 0.5-0.7 ms a call
either way, measured at 6-5-4-1 and 16-16-16-1); at 64-64-64-1 with 256 samples a call took
2.7 times as long, so larger ones keep XLA's defaults."""


def _second_order(g: Callable, Z):
    """(g'(Z), g''(Z)) for an elementwise g, by forward mode twice (for softmax, not
    elementwise, the derivative along all ones, which
    :func:`~reference.oracles.jax_model.jax_model` does not read)."""
    return jax.jvp(lambda z: jax.jvp(g, (z,), (jnp.ones_like(z),))[1], (Z,), (jnp.ones_like(Z),))


def _jit(fn: Callable, options: Mapping[str, object] | None) -> Callable:
    if options and _JIT_TAKES_OPTIONS:
        return jax.jit(fn, compiler_options=dict(options))
    return jax.jit(fn)


@functools.cache
def _derivatives_fn(table: tuple[str, ...], quick: bool = False) -> Callable:
    """jit of (g'(Z), g''(Z)) for g chosen at run time by index into ``table``: one program
    per shape, shared by every layer of every depth (in the networks' own programs it would
    be compiled again into each); ``quick``: compiled with :data:`_QUICK_OPTIONS`."""
    gs = [_twin_activation(name) for name in table]

    def run(which, Z):
        return _second_order(lambda z: jax.lax.switch(which, gs, z), Z)

    return _jit(run, _QUICK_OPTIONS if quick else None)


def _compile(
    forward_layer: Callable,
    layers: int,
    cost_terms: Callable,
    options: Mapping[str, object] | None = None,
    with_derivatives: bool = True,
):
    """jit of J, its gradients, and what the rounding analysis reads: Z^l, A^l, the deltas
    dZ^l and dA^l, g_l' and g_l'' at Z^l (None without ``with_derivatives``:
    :func:`_derivatives_fn` gives them).

    ``forward_layer(l, Z, which)`` applies layer l+1's activation (``which``
    selects it at run time on the padded path). ``cost_terms(z, a, y, which_cost)`` gives
    J's terms from the output's logits z or its activations a (``which_cost`` selects them
    at run time on the padded path); padded entries of both are finite stand-ins, masked
    out of J. Where ``fill`` is not NaN the output pre-activation takes its value
    (:data:`~reference.oracles.jax_model.PAD_FILL`). ``depth`` (None: ``layers``) is the
    network's own number of layers, the last of them its output; the layers past it are fed
    exact zeros, their results left out by selection, so they change no value and no
    derivative of the real ones. Zeros added to every Z^l and A^l make d J / d offset the
    deltas dZ^l and dA^l. ``slopes[l]`` replaces g_l' wherever it is not NaN
    (:func:`~reference.oracles.jax_model.fit_kinks`): there
    A^l = s (Z^l - stop_gradient(Z^l)) + stop_gradient(g_l(Z^l)), the same value with the
    derivative s.
    """

    def derivatives(l, Z, which):
        return _second_order(functools.partial(forward_layer, l, which=which), Z)

    def loss_fn(params, offZ, offA, which, which_cost, fill, depth, X, Y, mask, m, slopes, l2):
        A, As, Zs = X, [X], []
        for l in range(layers):
            W, b = params[l]
            if depth is None:
                live, last = True, l == layers - 1
            else:  # layers from the depth on pass the output through, from exact zeros
                live, last = l < depth, l == depth - 1
                A = A if l == 0 else jnp.where(live, A, 0.0)
            Z = W @ A + b + offZ[l]
            if fill is not None and last is not False:
                Z = jnp.where(jnp.logical_and(last, ~jnp.isnan(fill)), fill, Z)
            A = forward_layer(l, Z, which)
            chosen = jnp.isnan(slopes[l])
            s = jnp.where(chosen, 0.0, slopes[l])
            A = jnp.where(chosen, A, s * (Z - jax.lax.stop_gradient(Z)) + jax.lax.stop_gradient(A))
            A = A + offA[l]
            if live is True or l == 0:
                out_z, out_a = Z, A
            else:
                out_z, out_a = jnp.where(last, Z, out_z), jnp.where(last, A, out_a)
            Zs.append(Z)
            As.append(A)
        # padded entries: finite stand-ins, masked out (padded units of a filled output keep
        # their fill, so that a column's sum over units leaves them out)
        pad_z = 0.5 if fill is None else jnp.where(jnp.isnan(fill), 0.5, fill)
        safe_z, safe_a = jnp.where(mask, out_z, pad_z), jnp.where(mask, out_a, 0.5)
        safe_y = jnp.where(mask, Y, 0.5)
        J = jnp.sum(jnp.where(mask, cost_terms(safe_z, safe_a, safe_y, which_cost), 0.0)) / m
        # L2 penalty, biases excluded (Nielsen, "Neural Networks and Deep Learning", ch. 3,
        # "Regularization", eq. 87): lambda/(2m) sum_l sum(W^l ** 2); padded W entries and the
        # pass-through layers past a network's depth are 0
        J = J + l2 / (2 * m) * sum(jnp.sum(W**2) for W, _ in params)
        return J, (Zs, As)

    grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)

    def run(params, which, which_cost, fill, depth, X, Y, mask, m, slopes, l2):
        zeros = [jnp.zeros((W.shape[0], X.shape[1])) for W, _ in params]
        (J, (Zs, As)), (grads, dZs, dAs) = grad_fn(
            params, zeros, zeros, which, which_cost, fill, depth, X, Y, mask, m, slopes, l2
        )
        derivs = [derivatives(l, Z, which) for l, Z in enumerate(Zs)] if with_derivatives else None
        return J, grads, (Zs, As[1:], dZs, dAs, derivs)

    return _jit(run, options)


@functools.cache
def _exact_fn(activations: tuple[str, ...], cost: str) -> Callable:
    """For larger networks: activations fixed at trace time; jit caches per shape."""
    gs = [_twin_activation(name) for name in activations]
    terms, on_logits = _terms(_twin_cost(cost), activations[-1])

    def cost_terms(z, a, y, _):
        return terms(z if on_logits else a, y)

    return _compile(lambda l, Z, which: gs[l](Z), len(gs), cost_terms)


@functools.cache
def _padded_fn(
    layers: int,
    table: tuple[str, ...],
    branches: tuple[tuple[str, str | None], ...],
    quick: bool = False,
) -> Callable:
    """For small networks: one program for every network of up to ``layers`` layers (its
    own depth given at run time, ``depth``; None: exactly ``layers``), every layer's
    activation chosen at run time by index into ``table`` (``which``), the cost's terms by
    index into ``branches`` (:func:`_cost_branches`; ``which_cost``), the output units past
    the real ones at :data:`~reference.oracles.jax_model.PAD_FILL`'s value where ``fill`` is
    not NaN. ``quick``: compiled with :data:`_QUICK_OPTIONS`."""
    gs = [_twin_activation(name) for name in table]

    def on_a(term):
        return lambda z, a, y: term(a, y)

    def on_z(term):
        return lambda z, a, y: term(z, y)

    terms = [
        on_a(_twin_cost(c).term) if g is None else on_z(_twin_cost(c).from_logits[g])
        for c, g in branches
    ]

    def forward_layer(l, Z, which):
        return jax.lax.switch(which[l], gs, Z)

    def cost_terms(z, a, y, which_cost):
        return jax.lax.switch(which_cost, terms, z, a, y)

    options = _QUICK_OPTIONS if quick else None
    return _compile(forward_layer, layers, cost_terms, options, with_derivatives=False)


def _forget_compiled() -> None:
    """Drop what was derived from the twins by name: a registration changed them."""
    for cached in (_kinks_of, _slopes_fn, _derivatives_fn, _exact_fn, _padded_fn):
        cached.cache_clear()


on_change(_forget_compiled)
