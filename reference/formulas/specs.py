"""The harness's spec of every activation and cost it checks, one record per name:
:data:`ACTIVATION_SPECS` and :data:`COST_SPECS`, the built-ins here and a fork's names added
by :mod:`reference.registry`.

A spec holds everything the oracles know of a name: its NumPy twin (the finite differences
evaluate it, :mod:`.numpy_twins`), its JAX twin (the JAX oracle differentiates it,
:mod:`.jax_twins`), and for an activation its kinks, whether it is elementwise and its
rounding, for a cost its terms from the logits and the output activations it takes. A
registration or its undoing is one assignment into one table, so no two tables can
disagree on a name.

The oracles read the twins through views derived from these tables on every read
(:data:`NUMPY_ACTIVATIONS`, :data:`NUMPY_COSTS`, :data:`ABSOLUTE_ROUNDING`,
:data:`COST_OUTPUTS` here; ``JAX_ACTIVATIONS`` and ``JAX_COSTS`` in :mod:`.jax_twins`):
read-only mappings, never tables of their own.

Why a built-in's JAX twin is a name: a ``jax.numpy`` function exists only once JAX is
imported, and importing JAX takes a second or more that the CLI's ``--help``, the finite
differences and the registry must not pay. So a built-in spec names a function of
:mod:`.jax_twins` (``jax="relu"``), and :func:`.jax_twins.twin` resolves it there, when the
JAX oracle first reads it. This module never imports :mod:`.jax_twins`: the views of the
JAX twins live in that module, which imports this one, so the imports go one way only. A
spec built at run time (a fork's registration) holds its callable itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from .numpy_twins import (
    NumpyActivation,
    NumpyCost,
    bce_term,
    bce_term_from_sigmoid,
    cce_term,
    cce_term_from_softmax,
    copied,
    identity_inplace,
    leaky_relu_inplace,
    mse_term,
    relu_inplace,
    sigmoid_inplace,
    softmax_inplace,
    tanh_inplace,
)

JaxRef = Callable | str
"""A JAX twin: the function, or the name of a function of :mod:`.jax_twins` (a built-in's)."""


@dataclass(frozen=True)
class ActivationSpec:
    """Activation g as the oracles know it: A = g(Z), Z the pre-activation of shape (n_l, m).

    ``numpy``: g(z) in NumPy, float64 in and out, for an array of any rank (the finite
    differences stack perturbations on axis 1). ``inplace``: the same values computed into
    z and returned, where given (the finite differences evaluate g on millions of entries,
    and a temporary fewer is time saved); ``numpy`` is then its out-of-place form.

    ``jax``: g(z) in ``jax.numpy`` (a :data:`JaxRef`); jax.grad gives g', so where g' jumps
    the twin's choice there is the one the seed makes (relu'(0) = 1).

    ``kinks``: the finite z where g' jumps, sorted (relu: 0), which the finite differences
    stay off and the JAX oracle treats as any subgradient.

    ``elementwise``: False for a g whose outputs each depend on a whole column (softmax):
    both twins then work along axis 0, and g is taken on the output layer only.

    ``absolute_rounding``: s_g, how far a correct formula for g(z) may be off, as up to a few
    eps (|g(z)| + s_g). s_g = 1 (the default) where correct formulas keep only absolute
    precision: sigmoid as (1 + tanh(z/2))/2 or 1 - 1/(1 + e^z) is 0 where the true value is
    1e-20, tanh as 2/(1 + e^{-2z}) - 1 (the seed's form) cancels near z = 0. s_g = 0 where
    every formula is exact or keeps relative precision: relu's max(z, 0) and z [z > 0],
    leaky relu's max(z, 0.01 z), the identity.

    A twin may be None only in a spec built by hand (the registry requires both): that
    oracle then has no twin of the name, and says so.
    """

    numpy: Callable | None
    jax: JaxRef | None
    kinks: tuple[float, ...] = ()
    inplace: Callable | None = None
    elementwise: bool = True
    absolute_rounding: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinks", tuple(sorted(self.kinks)))

    @property
    def numpy_twin(self) -> NumpyActivation:
        """The record the finite differences read (a spec with a NumPy twin)."""
        return NumpyActivation(self.numpy, self.kinks, self.inplace, self.elementwise)


@dataclass(frozen=True)
class CostSpec:
    """Cost J as the oracles know it, by its elementwise terms t: J = (1/m) sum t(A, Y), A and
    Y of shape (n_L, m), the 1/m over the samples only.

    ``numpy`` / ``jax``: t(a, y) in NumPy and in ``jax.numpy`` (a :data:`JaxRef`).
    ``numpy_from_logits`` / ``jax_from_logits``: the same terms from the pre-activation Z^L,
    by output activation g (``{"sigmoid": t(z, y)}``), finite where A saturates (bce with a
    sigmoid: softplus(Z) - Y Z).

    ``output_activations``: the output activations the cost takes (None: any); networks and
    strategies pair it with these only (bce the sigmoid, cce the softmax: what
    ``backprop.COSTS`` says of them, and ``tests/test_registry.py`` holds the two equal).

    A twin may be None only in a spec built by hand, as for :class:`ActivationSpec`.
    """

    numpy: Callable | None
    jax: JaxRef | None
    numpy_from_logits: Mapping[str, Callable] = field(default_factory=dict)
    jax_from_logits: Mapping[str, JaxRef] = field(default_factory=dict)
    output_activations: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("numpy_from_logits", "jax_from_logits"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        if self.output_activations is not None:  # a list or a set as given: one frozenset
            object.__setattr__(self, "output_activations", frozenset(self.output_activations))

    @property
    def numpy_twin(self) -> NumpyCost:
        """The record the finite differences read (a spec with a NumPy twin)."""
        return NumpyCost(self.numpy, self.numpy_from_logits)


def _inplace(inplace: Callable, jax: str, **kw: Any) -> ActivationSpec:
    """A built-in activation whose NumPy twin is written in place (its out-of-place form the
    same code, so the same bits)."""
    return ActivationSpec(copied(inplace), jax, inplace=inplace, **kw)


ACTIVATION_SPECS: dict[str, ActivationSpec] = {
    # 1 / (1 + e^{-z})
    "sigmoid": _inplace(sigmoid_inplace, "sigmoid"),
    "tanh": _inplace(tanh_inplace, "tanh"),
    # max(z, 0): z for z >= 0 and 0 below; g' jumps at 0
    "relu": _inplace(relu_inplace, "relu", kinks=(0.0,), absolute_rounding=0.0),
    # z for z >= 0, 0.01 z below (LEAKY_SLOPE); the same kink as relu's
    "leaky_relu": _inplace(leaky_relu_inplace, "leaky_relu", kinks=(0.0,), absolute_rounding=0.0),
    "identity": _inplace(identity_inplace, "identity", absolute_rounding=0.0),
    # e^{z_i} / sum_k e^{z_k} over each column: not elementwise
    "softmax": _inplace(softmax_inplace, "softmax", elementwise=False),
}
"""The spec of every activation the harness checks, by name: the built-ins of
``backprop.ACTIVATIONS``, written from the formulas, then the registered ones."""

COST_SPECS: dict[str, CostSpec] = {
    # J = 1/(2m) sum (A - Y)^2
    "mse": CostSpec(mse_term, "mse_term"),
    # J = 1/m sum -Y log A - (1 - Y) log(1 - A), A in (0, 1): a sigmoid output
    "bce": CostSpec(
        bce_term,
        "bce_term",
        numpy_from_logits={"sigmoid": bce_term_from_sigmoid},
        jax_from_logits={"sigmoid": "bce_term_from_sigmoid"},
        output_activations=frozenset({"sigmoid"}),
    ),
    # J = -1/m sum Y log A, Y one-hot by columns: a softmax output
    "cce": CostSpec(
        cce_term,
        "cce_term",
        numpy_from_logits={"softmax": cce_term_from_softmax},
        jax_from_logits={"softmax": "cce_term_from_softmax"},
        output_activations=frozenset({"softmax"}),
    ),
}
"""The spec of every cost the harness checks, by name: the built-ins of ``backprop.COSTS``,
then the registered ones."""

_S = TypeVar("_S")
_T = TypeVar("_T")


_READ_ONLY = (
    "this table is a read-only view of the specs: change {name!r} through its spec, with "
    "reference.register_activation / register_cost (unregister_* undoes it), or in "
    "ACTIVATION_SPECS / COST_SPECS of reference/formulas/specs.py"
)


class SpecView(Mapping[str, _T], Generic[_S, _T]):
    """A read-only view of one table of specs: each name's record derived from its spec as
    it is read, so the view cannot disagree with the table. ``has(spec)`` False (a spec
    without that twin) leaves the name out of the view."""

    def __init__(
        self,
        specs: Mapping[str, _S],
        derive: Callable[[_S], _T],
        has: Callable[[_S], bool] = lambda spec: True,
    ) -> None:
        self._specs, self._derive, self._has = specs, derive, has

    def __getitem__(self, name: str) -> _T:
        spec = self._specs[name]
        if not self._has(spec):
            raise KeyError(name)
        return self._derive(spec)

    def __contains__(self, name: object) -> bool:
        spec = self._specs.get(name) if isinstance(name, str) else None
        return spec is not None and self._has(spec)

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, spec in self._specs.items() if self._has(spec)])

    def __len__(self) -> int:
        return sum(map(self._has, self._specs.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)})"

    def __setitem__(self, name: str, value: object) -> None:
        raise TypeError(_READ_ONLY.format(name=name))

    def __delitem__(self, name: str) -> None:
        raise TypeError(_READ_ONLY.format(name=name))


def has_numpy(spec: ActivationSpec | CostSpec) -> bool:
    """Whether ``spec`` holds a NumPy twin."""
    return spec.numpy is not None


def has_jax(spec: ActivationSpec | CostSpec) -> bool:
    """Whether ``spec`` holds a JAX twin."""
    return spec.jax is not None


NUMPY_ACTIVATIONS: Mapping[str, NumpyActivation] = SpecView(
    ACTIVATION_SPECS, lambda spec: spec.numpy_twin, has_numpy
)
"""The NumPy twin of every activation of :data:`ACTIVATION_SPECS` that has one, by name
(read-only)."""

NUMPY_COSTS: Mapping[str, NumpyCost] = SpecView(COST_SPECS, lambda spec: spec.numpy_twin, has_numpy)
"""The NumPy twin of every cost of :data:`COST_SPECS` that has one, by name (read-only)."""

ABSOLUTE_ROUNDING: Mapping[str, float] = SpecView(
    ACTIVATION_SPECS, lambda spec: spec.absolute_rounding
)
"""s_g of every activation of :data:`ACTIVATION_SPECS` (:class:`ActivationSpec`), by name
(read-only); a reader takes 1.0 for a name without a spec."""

COST_OUTPUTS: Mapping[str, frozenset[str] | None] = SpecView(
    COST_SPECS, lambda spec: spec.output_activations
)
"""The output activations each cost of :data:`COST_SPECS` takes (None: any), by name
(read-only)."""
