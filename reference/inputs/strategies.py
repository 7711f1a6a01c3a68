"""Hypothesis strategies for gradient checks, reusable in a fork's own tests.

Like ``hypothesis.extra.numpy``: factories with keyword-only, validated
``min_*`` / ``max_*`` arguments and small defaults.

- :func:`architectures`: layer widths, an activation per layer drawn from the
  table, and a cost the output activation allows; with a fair chance of square
  hidden layers (which hide a missing transpose) beside free ones.
- :func:`problems`: an architecture with parameters, inputs and targets. The
  weight scale is drawn per problem on a log scale from ``min_scale`` (tiny) to
  ``max_scale`` (saturating); relu pre-activations keep ``relu_margin`` from 0,
  by moving biases (:func:`reference.inputs.problems.with_relu_margin`), never by rejecting
  examples.
- :func:`pre_activations`: arrays of z for elementwise derivative tests, from
  ordinary values to saturation, with a margin from the given kinks.
- :func:`function_arguments`: the arrays for :func:`reference.check_function` and
  :func:`reference.check_vjp`, with shared named sizes (an affine layer's x, w, b), a
  scale per array, and optionally a margin from kinks.

Values are drawn through ``hypothesis.extra.numpy.arrays`` so failures shrink
towards small networks with simple numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from .problems import Problem, needs_one_hot, output_only, with_relu_margin
from .scope import Scope


def _table(kind: str) -> list[str]:
    """The names in ``backprop.ACTIVATIONS`` or ``backprop.COSTS``, registered ones included."""
    from ..registry import activation_names, cost_names

    return sorted(activation_names() if kind == "activation" else cost_names())


def _chosen(kind: str, given: Sequence[str] | None) -> list[str]:
    """``given`` (default: the whole table), or hypothesis' InvalidArgument for a name the
    table does not hold: a strategy never draws something other than what it was asked."""
    table = _table(kind)
    if given is None:
        return table
    if isinstance(given, str):
        raise InvalidArgument(f"{kind}s must be a sequence of names, got the string {given!r}")
    names = list(given)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise InvalidArgument(
            f"{kind}s names {unknown}, not in the table ({', '.join(table)}); register it with "
            f"reference.register_{kind}"
        )
    return names


def _check_range(name: str, lo: float, hi: float, floor: float) -> None:
    for label, v in ((f"min_{name}", lo), (f"max_{name}", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise TypeError(f"{label} must be a finite number, got {v!r}")
        if v < floor:
            raise ValueError(f"{label} must be >= {floor}, got {v}")
    if lo > hi:
        raise ValueError(f"min_{name} ({lo}) must not exceed max_{name} ({hi})")


def _check_int_range(name: str, lo: int, hi: int, floor: int) -> None:
    for label, v in ((f"min_{name}", lo), (f"max_{name}", hi)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{label} must be an int, got {v!r}")
    _check_range(name, lo, hi, floor)


# Built once: a strategy is validated the first time it draws, and the suite draws thousands
# of examples, each with a few arrays of a handful of shapes.
_UNIT = st.floats(-1.0, 1.0, allow_nan=False, width=64)
_INPUTS = st.floats(-2.0, 2.0)
_PROBABILITIES = st.floats(0.0, 1.0)


@functools.lru_cache(maxsize=1024)
def _arrays(shape: tuple[int, int], elements: st.SearchStrategy[float]) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=elements)


@dataclass(frozen=True)
class Architecture:
    """Widths (n_0, ..., n_L), one activation per layer, a cost."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    cost: str


@st.composite
def architectures(
    draw,
    *,
    min_depth: int = 1,
    max_depth: int = 3,
    min_width: int = 1,
    max_width: int = 4,
    activations: Sequence[str] | None = None,
    costs: Sequence[str] | None = None,
    square: bool | None = None,
    scope: Scope | None = None,
) -> Architecture:
    """Dense architectures.

    - ``min_depth``, ``max_depth``: the number of layers L (weight matrices), >= 1.
    - ``min_width``, ``max_width``: every width n_0..n_L, >= 1.
    - ``activations``: names to draw each layer's activation from (default: the
      whole ``backprop.ACTIVATIONS`` table, registered names included); an output-only
      one (softmax) is drawn for the output layer only, with two units or more.
    - ``costs``: names to draw the cost from, among those the output activation
      allows (``bce`` needs a sigmoid); default the whole ``backprop.COSTS`` table.
      A name outside the tables raises hypothesis' ``InvalidArgument``.
    - ``square``: True makes every layer but the output as wide as the input
      (square W^1..W^{L-1}, which hide a missing transpose), False draws every
      width freely, None (the default) chooses either.
    - ``scope``: an implementation's declared scope
      (:class:`~reference.inputs.scope.Scope`): hidden and output activations, costs,
      (output activation, cost) pairs, mixed hidden activations where it declares one
      shared, output widths and depths outside it are never drawn. Asked for something nothing
      can satisfy, it raises hypothesis' ``InvalidArgument``.
    """
    _check_int_range("depth", min_depth, max_depth, 1)
    _check_int_range("width", min_width, max_width, 1)
    names = _chosen("activation", activations)
    if not names:
        raise ValueError("activations must name at least one activation")
    wanted = _chosen("cost", costs)
    if square is not None and not isinstance(square, bool):
        raise TypeError(f"square must be True, False or None, got {square!r}")
    scope = scope if scope is not None else Scope.everything()
    lo, hi, hidden, outputs = _choices(min_depth, max_depth, names, wanted, scope)
    L = draw(st.integers(lo, hi))
    if scope.shared_hidden:  # one activation for every hidden layer
        acts = [draw(st.sampled_from(hidden))] * (L - 1)
    else:
        acts = [draw(st.sampled_from(hidden)) for _ in range(L - 1)]
    acts.append(draw(st.sampled_from(outputs)))
    cost = draw(st.sampled_from([c for c in scope.cost_choices(acts[-1]) if c in wanted]))
    sizes = _draw_sizes(draw, L, acts[-1], scope, square, min_width, max_width)
    return Architecture(tuple(sizes), tuple(acts), cost)


class NoArchitecture(InvalidArgument):
    """No architecture fits what a strategy asks for inside the declared scope (deep
    networks for code that declares ``max_depth = 2``): a test of such networks does not
    apply to that code."""


def _choices(
    min_depth: int, max_depth: int, names: list[str], wanted: list[str], scope: Scope
) -> tuple[int, int, list[str], list[str]]:
    """The depths (lo, hi), hidden and output activations :func:`architectures` draws from,
    inside ``scope``; :class:`NoArchitecture` (a hypothesis ``InvalidArgument``) where
    nothing fits."""
    lo = max(min_depth, scope.min_depth or 1)
    hi = min(max_depth, scope.max_depth or max_depth)
    hidden = [n for n in scope.hidden_choices(names) if n in names and not output_only(n)]
    outputs = [
        n for n in scope.output_choices(names)
        if n in names and any(c in wanted for c in scope.cost_choices(n))
    ]  # fmt: skip
    if not hidden:
        hi = min(hi, 1)
    if lo > hi or not outputs:
        raise NoArchitecture(
            f"no architecture fits depth {min_depth}..{max_depth}, activations {names}, "
            f"costs {wanted} and the declared scope {scope.describe()}"
        )
    return lo, hi, hidden, outputs


def _draw_sizes(
    draw: st.DrawFn,
    L: int,
    output: str,
    scope: Scope,
    square: bool | None,
    min_width: int,
    max_width: int,
) -> list[int]:
    """The widths n_0..n_L: the output's among the scope's (two or more for an output-only
    activation), the others free, or all as wide as the input when ``square``."""
    widths = st.integers(min_width, max_width)
    out_widths = st.sampled_from(sorted(scope.outputs)) if scope.outputs else widths
    if output_only(output) and not scope.outputs and max_width >= 2:
        out_widths = st.integers(max(2, min_width), max_width)  # softmax of one unit is 1
    if square if square is not None else draw(st.booleans()):
        n = draw(widths)
        return [n] * L + [draw(out_widths)]
    return [draw(widths) for _ in range(L)] + [draw(out_widths)]


@st.composite
def problems(
    draw,
    *,
    architecture: st.SearchStrategy[Architecture] | None = None,
    min_samples: int = 1,
    max_samples: int = 4,
    min_scale: float = 0.05,
    max_scale: float = 4.0,
    relu_margin: float = 1e-3,
    scope: Scope | None = None,
    penalty: bool | None = None,
    min_l2: float = 1e-2,
    max_l2: float = 10.0,
) -> Problem:
    """A network, its data and its cost, ready for :func:`reference.check_gradients`.

    - ``architecture``: a strategy for the shape (default :func:`architectures`).
    - ``min_samples``, ``max_samples``: the batch size m, >= 1.
    - ``min_scale``, ``max_scale``: the weights are drawn in [-1, 1] times a scale
      s / sqrt(n_{l-1}), s log-uniform in this range; the largest saturate
      sigmoid and tanh.
    - ``relu_margin``: every relu pre-activation ends at least this far from 0.
    - ``scope``: passed to the default ``architecture`` (give an explicit one its own).
    - ``penalty``: whether the problem has an L2 penalty (``Problem.l2`` > 0): None (the
      default) draws one in about half the examples when ``scope`` declares ``l2`` in its
      penalties, and never otherwise; True always (hypothesis' ``InvalidArgument`` when the
      ``scope`` given does not declare it); False never.
    - ``min_l2``, ``max_l2``: the range lambda is drawn from, log-uniform, > 0.

    X is drawn in [-2, 2]; Y in [0, 1] for ``bce``, one-hot by columns for ``cce`` and a
    softmax output, [-2, 2] otherwise for ``mse``.
    """
    _check_int_range("samples", min_samples, max_samples, 1)
    _check_range("scale", min_scale, max_scale, 1e-12)
    if not isinstance(relu_margin, (int, float)) or not 0 <= relu_margin < 1:
        raise ValueError(f"relu_margin must be in [0, 1), got {relu_margin!r}")
    if penalty is not None and not isinstance(penalty, bool):
        raise InvalidArgument(f"penalty must be True, False or None, got {penalty!r}")
    _check_range("l2", min_l2, max_l2, 0.0)
    if min_l2 <= 0:
        raise InvalidArgument(f"min_l2 must be > 0 (penalty=False draws none), got {min_l2}")
    declared = scope is not None and scope.admits_penalty("l2")
    if penalty and scope is not None and not declared:
        raise InvalidArgument(
            f"penalty=True, but the scope {scope.describe()} does not declare the l2 penalty "
            "(SUPPORTS['penalties'])"
        )
    arch = draw(architecture if architecture is not None else architectures(scope=scope))
    m = draw(st.integers(min_samples, max_samples))
    scale = float(np.exp(draw(st.floats(np.log(min_scale), np.log(max_scale)))))
    params = []
    for n_prev, n in zip(arch.sizes[:-1], arch.sizes[1:]):
        W = draw(_arrays((n, n_prev), _UNIT)) * (scale / np.sqrt(n_prev))
        b = draw(_arrays((n, 1), _UNIT)) * 0.5
        params.append((W, b))
    X = draw(_arrays((arch.sizes[0], m), _INPUTS))
    if needs_one_hot(arch.activations[-1], arch.cost):
        classes = draw(st.lists(st.integers(0, arch.sizes[-1] - 1), min_size=m, max_size=m))
        Y = np.eye(arch.sizes[-1])[:, classes]
    else:
        Y = draw(_arrays((arch.sizes[-1], m), _PROBABILITIES if arch.cost == "bce" else _INPUTS))
    if relu_margin > 0:
        params = with_relu_margin(params, X, arch.activations, relu_margin)
    l2 = 0.0
    if penalty or (penalty is None and declared and draw(st.booleans())):
        l2 = float(np.exp(draw(st.floats(np.log(min_l2), np.log(max_l2)))))
    return Problem(params, X, Y, list(arch.activations), arch.cost, name="hypothesis",
                   tags={"scale": scale}, l2=l2)  # fmt: skip


def pre_activations(
    *,
    min_value: float = -50.0,
    max_value: float = 50.0,
    min_size: int = 1,
    max_size: int = 16,
    kinks: Sequence[float] = (),
    margin: float = 1e-3,
) -> st.SearchStrategy[np.ndarray]:
    """1-D float64 arrays of z in [``min_value``, ``max_value``], none within ``margin``
    of a kink (such values are moved to the kink +/- margin, keeping their side).

    The defaults reach far into saturation (sigmoid and tanh are flat to double
    precision beyond |z| of about 37 and 19).
    """
    _check_int_range("size", min_size, max_size, 1)
    if min_value > max_value:
        raise ValueError(f"min_value ({min_value}) must not exceed max_value ({max_value})")

    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float64, st.integers(min_size, max_size), elements=elements).map(
        functools.partial(_keep_off, kinks=tuple(kinks), margin=margin)
    )


def _keep_off(z: np.ndarray, kinks: Sequence[float], margin: float) -> np.ndarray:
    """``z`` with every value within ``margin`` of a kink moved to the kink +/- margin, on
    its own side."""
    z = z.copy()
    for k in kinks:
        near = np.abs(z - k) < margin
        z[near] = k + np.where(z[near] >= k, margin, -margin)
    return z


Shape = Sequence[int | str]


@st.composite
def function_arguments(
    draw,
    *shapes: Shape,
    min_side: int = 1,
    max_side: int = 4,
    min_scale: float = 0.1,
    max_scale: float = 10.0,
    kinks: Sequence[float] = (),
    margin: float = 1e-3,
) -> tuple[np.ndarray, ...]:
    """Arrays for :func:`reference.check_function` or :func:`reference.check_vjp`, one per
    shape in ``shapes``.

    - ``shapes``: a shape per array; an entry is an int (that size) or a name such as ``"N"``,
      drawn once in [``min_side``, ``max_side``] and shared by every array that names it, so
      ``("N", "D"), ("D", "M"), ("M",)`` draws an affine layer's x, w and b.
    - ``min_scale``, ``max_scale``: each array's entries are drawn in [-1, 1] times its own
      scale, log-uniform in this range.
    - ``kinks``: values to keep at least ``margin`` times the array's scale away from (0 for
      relu or abs): such entries move to the kink +/- that margin, keeping their side. The
      checks handle kinks themselves; this is for tests that want none.
    """
    if not shapes:
        raise InvalidArgument("function_arguments needs at least one shape")
    _check_int_range("side", min_side, max_side, 0)
    _check_range("scale", min_scale, max_scale, 1e-12)
    if not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise InvalidArgument(f"margin must be in [0, 1), got {margin!r}")
    sides: dict[str, int] = {}
    arrays = []
    for shape in shapes:
        if isinstance(shape, (str, int)):
            raise InvalidArgument(f"each shape must be a sequence of sizes or names, got {shape!r}")
        dims = []
        for d in shape:
            if isinstance(d, str):
                if d not in sides:
                    sides[d] = draw(st.integers(min_side, max_side), label=f"side {d}")
                dims.append(sides[d])
            elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
                dims.append(int(d))
            else:
                raise InvalidArgument(
                    f"a size must be an int >= 0 or a name, got {d!r} in {shape!r}"
                )
        scale = float(np.exp(draw(st.floats(np.log(min_scale), np.log(max_scale)))))
        a = draw(hnp.arrays(np.float64, tuple(dims), elements=_UNIT)) * scale
        arrays.append(_keep_off(a, tuple(kinks), margin * scale) if kinks else a)
    return tuple(arrays)
