"""The JAX oracle: the network written again in ``jax.numpy`` from the formulas, and ``jax.grad``.

Nothing here calls ``backprop``: the forward pass, the activations and the
costs are re-derived from DESIGN.md's conventions, so that a mistake in the
implementation under test cannot leak into the reference.

    Z^l = W^l A^{l-1} + b^l,  A^l = g_l(Z^l),  A^0 = X
    mse: J = 1/(2m) sum (A^L - Y)^2
    bce: J = 1/m sum -Y log A^L - (1 - Y) log(1 - A^L)
         (with a sigmoid output, from the logits: 1/m sum softplus(Z^L) - Y Z^L)
    cce: J = -1/m sum Y log A^L (with a softmax output, from the logits:
         -1/m sum Y log softmax(Z^L), softmax taken over each column)

Beside the gradients it bounds the rounding error any correct float64
implementation makes in them, and finds the pre-activations within rounding of a
kink, where such an implementation may use any slope between g's one-sided
derivatives (:func:`fit_kinks` picks the one its gradients match).

The oracle is only worth its ~1e-12 agreement in double precision: :func:`jax_model`
computes with ``jax_enable_x64`` on for the length of each call
(:func:`~reference.oracles.jax_x64.enable_x64`), and leaves the process's setting alone.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..formulas.jax_twins import (
    ABSOLUTE_ROUNDING,
    JAX_ACTIVATIONS,
    JAX_COSTS,
    JaxCost,
)
from ..formulas.numpy_twins import NUMPY_ACTIVATIONS, MissingTwinError
from ..registry import on_change
from ..tolerances import JAX_KINK_SAFETY as KINK_SAFETY
from .jax_x64 import enable_x64


def _elementwise(name: str) -> bool:
    """Whether activation ``name`` is elementwise (its NumPy twin says; softmax is not)."""
    twin = NUMPY_ACTIVATIONS.get(name)
    return twin is None or twin.elementwise


def _twin_activation(name: str) -> Callable:
    try:
        return JAX_ACTIVATIONS[name]
    except KeyError:
        raise MissingTwinError(
            f"activation {name!r} has no JAX twin: add an entry "
            f'"{name}": lambda z: <g(z) in jax.numpy> to JAX_ACTIVATIONS in '
            "reference/formulas/jax_twins.py (and its NumPy twin to NUMPY_ACTIVATIONS in "
            "reference/formulas/numpy_twins.py), or register all of them in one call: "
            "reference.register_activation(name, numpy=, jax=, kinks=)"
        ) from None


def _twin_cost(name: str) -> JaxCost:
    try:
        return JAX_COSTS[name]
    except KeyError:
        raise MissingTwinError(
            f"cost {name!r} has no JAX twin: add an entry "
            f'"{name}": JaxCost(lambda a, y: <the terms of J summed over entries, over m>) '
            "to JAX_COSTS in "
            "reference/formulas/jax_twins.py (and its NumPy twin to NUMPY_COSTS in "
            "reference/formulas/numpy_twins.py), or register all of them in one call: "
            "reference.register_cost(name, numpy=, jax=)"
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
    near_kink: Sequence[np.ndarray] = ()
    """Per layer, shape (n_l, m): the pre-activations within rounding of a kink of g_l
    (:data:`KINK_SAFETY`), where a correct implementation may use any slope between g's
    one-sided derivatives (relu: any relu'(0) in [0, 1])."""
    slopes: Sequence[tuple[np.ndarray, np.ndarray]] = ()
    """Per layer, (lowest, highest) of those one-sided derivatives; NaN away from kinks."""
    used: Sequence[np.ndarray] = ()
    """Per layer, the slopes ``grads`` used at the entries of ``near_kink`` (g's own
    derivative on JAX's side of the kink, or :func:`fit_kinks`' choice); NaN elsewhere."""
    loss_rounding: float = 0.0
    """A first-order bound on how far rounding at the analysis' unit roundoff moves J
    through the forward pass (:func:`_loss_rounding`); the cost's own sum is not in it."""

    @property
    def kinks(self) -> int:
        """How many pre-activation entries lie within rounding of a kink."""
        return int(sum(int(n.sum()) for n in self.near_kink))


# Networks this small are padded to shared shapes, so that the many small
# architectures of a property test share a handful of compiled functions
# (a compile costs 0.5-1.5 s, a call about 1 ms), and choose their activations and
# cost at run time, so that one program serves them all (benchmarks/README.md, "A check
# in seconds"). Padding is exact: padded units have zero weights in and out, padded
# samples and outputs are masked out of J, padded layers pass the output through,
# so they add exact zeros to every real entry.
_PAD_MAX_WIDTH = 64
_PAD_MAX_SAMPLES = 256
_PAD_MIN_DEPTH = 4
"""Depths are padded to a power of two, this one at least: one program for depths 1 to 4."""


def _bucket(n: int, smallest: int = 8) -> int:
    return max(smallest, 1 << (n - 1).bit_length())


def _terms(twin: JaxCost, out_act: str) -> tuple[Callable, bool]:
    from_logits = twin.from_logits.get(out_act)
    return (from_logits, True) if from_logits is not None else (twin.term, False)


PAD_FILL: dict[str, float] = {"softmax": -np.inf}
"""For an output activation that is not elementwise, the pre-activation that padded output
units take so that the real units' outputs are what they are without them: softmax's
e^{-inf} = 0 adds nothing to a column's sum, so softmax([z; -inf]) = [softmax(z); 0], and
-Y log softmax(Z) (cce from the logits) is unchanged on the real units likewise. With a fill
the output layer is padded to the shared width like the others, and such networks share the
program of their depth; one without an entry here (a fork's own) keeps its exact number of
output units (a program per output width)."""


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


# The rounding analysis runs in NumPy on the JAX model's intermediate values, after the
# jitted call: written in jax.numpy it would be compiled into every network's function,
# doubling the compile time for a few microseconds of arithmetic.

EPS = float(np.finfo(np.float64).eps)


def _forward_rounding(params, As, gps, gaps, one_sided, scales, eps=EPS):
    """First-order bounds on the rounding error of a forward pass at unit roundoff ``eps``
    (float64's by default), per entry, and the pre-activations within rounding of a kink.

    With eps = 2^-52 (float64), |.| entrywise and n_{l-1} + 1 the terms of each sum,
        dZ^l = |W^l| dA^{l-1} + (n_{l-1} + 1) eps (|W^l| |A^{l-1}| + |b^l|),
        dA^l = |g'_l(Z^l)| dZ^l + 4 eps (|A^l| + s_l),
        dA^0 = 0 in float64, eps |X| at a lower precision (the implementation rounds its
        float64 X, or was given X rounded)
    (s_l: :data:`ABSOLUTE_ROUNDING`). Z^l is near a kink of g_l where its distance to it,
    ``gaps[l]``, is at most KINK_SAFETY dZ^l; there |g'_l| is the larger of the one-sided
    derivatives ``one_sided[l]`` (g' just left and right of the kink). Returns
    (dZ, dA, near, (low, high, own)) per layer: low and high the one-sided derivatives in
    order, own g's derivative at Z^l, all three NaN away from kinks; dA[0] is X's, zero.
    """
    dA = np.zeros_like(As[0]) if eps <= EPS else eps * np.abs(As[0])
    dZs, dAs, nears, slopes = [], [dA], [], []
    for l, (W, b) in enumerate(params):
        absW = np.abs(W)
        dZ = absW @ dA + (W.shape[1] + 1) * eps * (absW @ np.abs(As[l]) + np.abs(b))
        near = gaps[l] <= KINK_SAFETY * dZ
        left, right = one_sided[l]
        low, high = np.minimum(left, right), np.maximum(left, right)
        slope = np.where(near, np.maximum(np.abs(low), np.abs(high)), np.abs(gps[l]))
        dA = slope * dZ + 4 * eps * (np.abs(As[l + 1]) + scales[l])
        dZs.append(dZ)
        dAs.append(dA)
        nears.append(near)
        slopes.append(tuple(np.where(near, x, np.nan) for x in (low, high, gps[l])))
    return dZs, dAs, nears, slopes


def _rounding_bounds(params, As, dZs, dAs, gps, gpps, Y, m, forward, scales, eps=EPS):
    """First-order bounds on the rounding error of a backward pass at unit roundoff ``eps``
    (float64's by default), per entry; every term is linear in eps.

    ``forward`` is :func:`_forward_rounding`'s (dZ, dA, near, slopes), written here
    delta Z^l and delta A^l. With eps = 2^-52, |.| entrywise and |g'_l| the larger
    one-sided derivative at a pre-activation near a kink, g' evaluated at a rounded Z^l by a
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
    fw_dZ, fw_dA, near, one_sided = forward
    slope = [
        np.where(n, np.maximum(np.abs(lo), np.abs(hi)), np.abs(g))
        for n, (lo, hi, _), g in zip(near, one_sided, gps)
    ]
    g_err = [
        np.where(n, 0.0, np.abs(gpp)) * dz + 4 * eps * (s + 4 * scale)
        for n, gpp, dz, s, scale in zip(near, gpps, fw_dZ, slope, scales)
    ]
    out = (eps * (np.abs(As[L]) + np.abs(Y)) + fw_dA[L]) / m * (1 + slope[L - 1])
    E = out + np.abs(dAs[L - 1]) * g_err[L - 1] + eps * np.abs(dZs[L - 1])
    bounds = [None] * L
    for l in range(L - 1, -1, -1):
        absA = np.abs(As[l])
        absdZ = np.abs(dZs[l])
        bounds[l] = (
            E @ absA.T + absdZ @ fw_dA[l].T + m * eps * absdZ @ absA.T,
            np.sum(E, axis=1, keepdims=True) + m * eps * np.sum(absdZ, axis=1, keepdims=True),
        )
        if l > 0:
            absW = np.abs(params[l][0])
            n = params[l][0].shape[0]
            E = (
                slope[l - 1] * (absW.T @ E + n * eps * absW.T @ absdZ)
                + np.abs(dAs[l - 1]) * g_err[l - 1]
                + eps * np.abs(dZs[l - 1])
            )
    return bounds


def _loss_rounding(params, As, dZs, dAs, scales, eps):
    """First-order bound on J's error from the forward pass's roundings at unit roundoff eps.

    Each rounding of Z^l and A^l moves J by its size times dJ/dZ^l or dJ/dA^l (which carry
    it through the layers above), so with the local roundings of :func:`_forward_rounding`
        |dJ| <= sum_l  |dJ/dZ^l| . (n_{l-1} + 1) eps (|W^l| |A^{l-1}| + |b^l|)
                     + |dJ/dA^l| . 4 eps (|A^l| + s_l)
                     [+ |(W^1)^T dJ/dZ^1| . eps |X| below float64: X itself rounded]
    (. summing the entrywise products). The cost's terms and their sum round on top of it.
    """
    total = 0.0
    for l, (W, b) in enumerate(params):
        local_Z = (W.shape[1] + 1) * eps * (np.abs(W) @ np.abs(As[l]) + np.abs(b))
        local_A = 4 * eps * (np.abs(As[l + 1]) + scales[l])
        total += float(np.sum(np.abs(dZs[l]) * local_Z) + np.sum(np.abs(dAs[l]) * local_A))
    if eps > EPS:
        total += float(np.sum(np.abs(params[0][0].T @ dZs[0]) * eps * np.abs(As[0])))
    return total


@functools.cache
def _kinks_of(name: str) -> tuple[tuple[float, float, float], ...]:
    """(k, g'(k^-), g'(k^+)) for each kink k of activation ``name`` (the NumPy twin lists
    them): g' one step of eps |k| to each side (a normal number at k = 0: XLA flushes
    subnormals)."""
    kinks = NUMPY_ACTIVATIONS[name].kinks if name in NUMPY_ACTIVATIONS else ()
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
    elementwise, the derivative along all ones, which :func:`jax_model` does not read)."""
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
    (:data:`PAD_FILL`). ``depth`` (None: ``layers``) is the network's own number of
    layers, the last of them its output; the layers past it are fed exact zeros, their
    results left out by selection, so they change no value and no derivative of the real
    ones. Zeros added to every Z^l and A^l make d J / d offset the deltas dZ^l and dA^l.
    ``slopes[l]`` replaces g_l' wherever it is not NaN (:func:`fit_kinks`): there
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
    the real ones at :data:`PAD_FILL`'s value where ``fill`` is not NaN. ``quick``: compiled
    with :data:`_QUICK_OPTIONS`."""
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


@enable_x64()
def jax_model(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    slopes: Sequence[np.ndarray] | None = None,
    eps: float = EPS,
    l2: float = 0.0,
) -> JaxResult:
    """Loss, gradients and their rounding bounds from the JAX model (see :class:`JaxResult`).

    ``slopes``: per layer, (n_l, m), g_l' to use where not NaN (at pre-activations near a
    kink: :func:`fit_kinks`); None uses g's own derivative everywhere. ``eps``: the unit
    roundoff the rounding analysis assumes of the implementation (float64's by default;
    float32's 2^-24 for one that computes in float32): the bounds scale with it, and so
    does which pre-activations lie within rounding of a kink. The numbers are float64.
    ``l2``: the L2 penalty's lambda, added to J (the rounding bounds leave it out:
    ``reference.judging.penalty.with_penalty_rounding`` adds it).
    """
    activations = tuple(activations)
    for name in activations:
        _twin_activation(name)
    _twin_cost(cost)
    params = [(_f64(W), _f64(b)) for W, b in params]
    X, Y = _f64(X), _f64(Y)
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    m = X.shape[1]
    if slopes is None:
        slopes = [np.full((n, m), np.nan) for n in sizes[1:]]
    slopes = [_f64(s) for s in slopes]
    if max(sizes) > _PAD_MAX_WIDTH or m > _PAD_MAX_SAMPLES:
        fn = _exact_fn(activations, cost)
        mask = np.ones(Y.shape, dtype=bool)
        J, grads, inside = fn(
            params, None, None, None, None, X, Y, mask, float(m), slopes, float(l2)
        )
    else:
        width, mb = _bucket(max(sizes)), _bucket(m)
        table, branches = tuple(JAX_ACTIVATIONS), _cost_branches(tuple(JAX_COSTS))
        which = np.array([table.index(a) for a in activations], dtype=np.int32)
        which_cost = np.int32(_cost_index(branches, cost, activations[-1]))
        # a g that normalises each column (softmax) sees the output layer's own units only:
        # padded units at its fill value, or none
        out = activations[-1]
        out_rows = width if _elementwise(out) or out in PAD_FILL else sizes[-1]
        fill = np.full((out_rows, mb), np.nan)
        if not _elementwise(out) and out in PAD_FILL:
            fill[sizes[-1] :] = PAD_FILL[out]
        # all layers width x width (the output too, but for a g without a fill): depths up to
        # a power of two share a program, the layers past the network's own passing its output
        # through (:func:`_compile`)
        depth = len(params)
        slots = _bucket(depth, _PAD_MIN_DEPTH) if out_rows == width else depth
        heights = [width] * (depth - 1) + [out_rows]
        padded = [(_pad(W, n, width), _pad(b, n, 1)) for (W, b), n in zip(params, heights)]
        padded += [(np.zeros((width, width)), np.zeros((width, 1)))] * (slots - depth)
        padded_slopes = [_pad(s, n, mb, np.nan) for s, n in zip(slopes, heights)]
        padded_slopes += [np.full((width, mb), np.nan)] * (slots - depth)
        mask = np.zeros((out_rows, mb), dtype=bool)
        mask[: sizes[-1], :m] = True
        quick = width <= _QUICK_MAX and mb <= _QUICK_MAX
        fn = _padded_fn(slots, table, branches, quick)
        J, grads, inside = fn(
            padded,
            np.concatenate([which, np.zeros(slots - depth, np.int32)]),
            which_cost,
            fill,
            np.int32(depth) if out_rows == width else None,  # None: all of them real
            _pad(X, width, mb),
            _pad(Y, out_rows, mb),
            mask,
            float(m),
            padded_slopes,
            float(l2),
        )
        second = _derivatives_fn(table, quick)
        inside = (*inside[:4], [second(w, Z) for w, Z in zip(which, inside[0])])

    def cut(a, rows):
        return np.asarray(a)[:rows, :m]

    grads = [
        (np.asarray(gW)[: W.shape[0], : W.shape[1]], np.asarray(gb)[: W.shape[0]])
        for (gW, gb), (W, _) in zip(grads, params)
    ]
    Zs, As, dZs, dAs, derivs = inside
    n = sizes[1:]
    Zs, As = [cut(Z, r) for Z, r in zip(Zs, n)], [X] + [cut(A, r) for A, r in zip(As, n)]
    dZs, dAs = [cut(d, r) for d, r in zip(dZs, n)], [cut(d, r) for d, r in zip(dAs, n)]
    gps, gpps = ([cut(d[k], r) for d, r in zip(derivs, n)] for k in range(2))
    for l, name in enumerate(activations):
        if not _elementwise(name):
            # Not elementwise: the Jacobian's rows sum to at most 2 a_i (1 - a_i) <= 1/2 in
            # absolute value (softmax), and its second derivatives are as small; 2 bounds
            # both per entry, taking a column's roundings as of one size.
            gps[l], gpps[l] = np.full_like(gps[l], 2.0), np.full_like(gpps[l], 2.0)
    gaps, one_sided = [], []
    for Z, name in zip(Zs, activations):
        gap, left, right = _nearest_kinks(Z, name)
        gaps.append(gap)
        one_sided.append((left, right))
    scales = [ABSOLUTE_ROUNDING.get(a, 1.0) for a in activations]
    forward = _forward_rounding(params, As, gps, gaps, one_sided, scales, eps)
    rounding = _rounding_bounds(params, As, dZs, dAs, gps, gpps, Y, m, forward, scales, eps)
    near, one_sided = forward[2], forward[3]
    return JaxResult(
        float(J),
        grads,
        rounding,
        near,
        [(lo, hi) for lo, hi, _ in one_sided],
        [np.where(np.isnan(s), own, s) for s, (_, _, own) in zip(slopes, one_sided)],
        _loss_rounding(params, As, dZs, dAs, scales, eps),
    )


FIT_ROUNDS = 4
"""Gauss-Newton rounds :func:`fit_kinks` takes at most (the gradient is multilinear in
the slopes: one round is exact where each sample's kinks lie in one layer)."""


def fit_kinks(
    result: JaxResult,
    grads: Sequence[tuple[np.ndarray, np.ndarray]],
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    rtol: float = 1e-12,
    eps: float = EPS,
    l2: float = 0.0,
) -> JaxResult:
    """The JAX model's result with the slopes at pre-activations near a kink chosen to
    bring its gradients closest to ``grads`` (an implementation's), each slope between
    g's one-sided derivatives there.

    Where Z^l_is is within rounding of a kink (``result.near_kink``), a correct
    implementation may land on either side of it, or take any subgradient at an exact kink:
    relu'(0) may be anything in [0, 1] (DESIGN.md, "relu'(0)"). The gradient G(s) is then
    one of a family; this looks for the member nearest ``grads`` in the checker's norm-wise
    relative measure, summed over the parameter arrays:

        min over s_low <= s <= s_high of  sum_k ||w_k (G_k(s) - a_k)||^2,
        w_k = 1 / (2 ||a_k||)   (an array of zeros weighs as the largest array).

    It stops at the first candidate that agrees with ``grads`` array by array, to ``rtol``
    relative or within its rounding bound: JAX's own side of each kink, then s at the low
    and the high ends everywhere (an implementation's fixed relu'(0) at exact zeros), then
    Gauss-Newton steps from the best so far, each a bounded linear least-squares problem
    whose Jacobian columns are G(s + e_u) - G(s) (exact: G is affine in each slope alone),
    each step's nearest corner (every slope at its low or high end) tried first.
    Whatever it returns is the exact gradient for one valid subgradient, so a wrong
    gradient stays wrong: a mistake elsewhere moves ``grads`` where no choice of slopes
    follows. ``eps``: the unit roundoff of ``result``'s analysis (:func:`jax_model`).
    """
    if result.kinks == 0:
        return result
    near = result.near_kink
    arrays = [np.asarray(g, np.float64) for pair in grads for g in pair]

    def agrees(r: JaxResult) -> bool:
        return all(
            np.linalg.norm(a - j)
            <= max(rtol * (np.linalg.norm(a) + np.linalg.norm(j)), np.linalg.norm(e))
            for a, j, e in zip(arrays, _arrays(r.grads), _arrays(r.rounding))
        )

    if agrees(result):
        return result
    from scipy.optimize import lsq_linear

    low = np.concatenate([lo[n] for (lo, _), n in zip(result.slopes, near)])
    high = np.concatenate([hi[n] for (_, hi), n in zip(result.slopes, near)])
    target = np.concatenate([a.ravel() for a in arrays])
    norms = [float(np.linalg.norm(a)) for a in arrays]
    top = max(norms) or 1.0
    weights = np.repeat([1.0 / (2 * (n or top)) for n in norms], [a.size for a in arrays])

    def evaluate(s: np.ndarray) -> JaxResult:
        full, at = [], 0
        for n in near:
            layer = np.full(n.shape, np.nan)
            layer[n] = s[at : at + int(n.sum())]
            at += int(n.sum())
            full.append(layer)
        return jax_model(
            params, X, Y, activations=activations, cost=cost, slopes=full, eps=eps, l2=l2
        )

    def flat(r: JaxResult) -> np.ndarray:
        return np.concatenate([g.ravel() for g in _arrays(r.grads)])

    def misfit(r: JaxResult) -> float:
        return float(np.linalg.norm(weights * (flat(r) - target)))

    s = np.concatenate([u[n] for u, n in zip(result.used, near)])
    best = result
    for corner in (low, high):
        trial = evaluate(corner)
        if agrees(trial):
            return trial
        if misfit(trial) < misfit(best):
            s, best = corner, trial
    free = np.flatnonzero(high > low)  # where the one-sided derivatives differ
    for _ in range(FIT_ROUNDS if free.size else 0):
        base = flat(best)
        columns = []
        for u in free:
            moved = s.copy()
            moved[u] += 1.0
            columns.append(flat(evaluate(moved)) - base)
        J = weights[:, None] * np.stack(columns, axis=1)
        bounds = (low[free] - s[free], high[free] - s[free])
        trial_s = s.copy()
        trial_s[free] += lsq_linear(J, weights * (target - base), bounds=bounds).x
        trial_s = np.clip(trial_s, low, high)
        # an implementation's slopes are usually one side or the other: try the nearest corner
        corner = np.where(trial_s - low <= high - trial_s, low, high)
        trial = evaluate(corner)
        if agrees(trial):
            return trial
        trial = evaluate(trial_s)
        if misfit(trial) >= misfit(best):
            break
        s, best = trial_s, trial
        if agrees(best):
            break
    return best


def _arrays(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    return [np.asarray(g) for pair in pairs for g in pair]


def kink_note(result: JaxResult) -> str:
    """A line for a report: how many pre-activations lie within rounding of a kink, and which
    of the allowed slopes the gradients use there (``result.used``)."""
    used = np.concatenate([u[n] for u, n in zip(result.used, result.near_kink)])
    low = np.concatenate([lo[n] for (lo, _), n in zip(result.slopes, result.near_kink)])
    high = np.concatenate([hi[n] for (_, hi), n in zip(result.slopes, result.near_kink)])
    at_high = int(np.sum((used == high) & (high != low)))
    at_low = int(np.sum((used == low) & (high != low)))
    between = used.size - at_high - at_low
    named = ((at_low, "the lower"), (at_high, "the higher"), (between, "another"))
    counts = [f"{k} at {name}" for k, name in named if k]
    return (
        f"{used.size} pre-activations within rounding of a kink, where any slope between the "
        "one-sided derivatives is right (relu'(0) in [0, 1]): judged with the slopes nearest "
        f"the implementation's gradients, {', '.join(counts)}"
    )


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _pad(a: np.ndarray, rows: int, cols: int, fill: float = 0.0) -> np.ndarray:
    out = np.full((rows, cols), fill)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def jax_gradients(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    l2: float = 0.0,
) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """``(J, [(dJ/dW^1, dJ/db^1), ...])`` from ``jax.grad`` of the JAX model, float64."""
    result = jax_model(params, X, Y, activations=activations, cost=cost, l2=l2)
    return result.loss, result.grads


def _forget_compiled() -> None:
    """Drop what was derived from the twins by name: a registration changed them."""
    for cached in (_kinks_of, _slopes_fn, _derivatives_fn, _exact_fn, _padded_fn):
        cached.cache_clear()


on_change(_forget_compiled)
