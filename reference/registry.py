"""Declaring an activation or a cost to the harness's oracles, in one call.

The harness holds its own spec of every name it checks: the NumPy twin the finite
differences evaluate, the JAX twin the JAX oracle differentiates (its derivative is
``jax.grad``'s), for an activation its kinks (the z where g' jumps), its rounding and
whether it is elementwise, and for a cost the output activations it takes: one
:class:`~reference.formulas.specs.ActivationSpec` or
:class:`~reference.formulas.specs.CostSpec` per name, in one table per kind
(:mod:`reference.formulas.specs`). :func:`register_activation` and :func:`register_cost`
build that spec and put it in its table, after checking every argument; the oracles, the
CLI, the strategies, the shipped suite and the reports read it, so they pick the name up
with no edit anywhere.

Registration never writes into the code under test: ``backprop.ACTIVATIONS`` and
``backprop.COSTS`` are the implementation's own business (a fork edits them, or calls
``backprop.register_activation`` / ``backprop.register_cost`` from its own code). A fork
whose formula differs from the harness's on purpose registers its spec with
``replace=True``: the oracles then judge the fork by its declared formula, and the fork's
code stays exactly what it is. The names the harness checks are the built-in table's
(:func:`activation_names`, :func:`cost_names`) and the registered ones.

A package can register its names without being imported by hand: every entry point of
the groups :data:`ACTIVATION_GROUP` and :data:`COST_GROUP` is loaded once, the first time
the harness reads the tables (:func:`load_entry_points`). Its object is either a mapping
of this module's keyword arguments (the entry point's name is the name registered) or a
callable that registers on its own when called with no arguments.

:func:`unregister_activation` / :func:`unregister_cost` undo a registration (restoring
the spec it replaced, if any); :func:`registered_activation` is the same as a context
manager, for tests.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any

ACTIVATION_GROUP = "backprop_harness.activations"
"""The entry-point group of activations (each named after the activation it registers)."""

COST_GROUP = "backprop_harness.costs"
"""The entry-point group of costs."""

_MISSING = object()
_saved: dict[tuple[str, str], list[Any]] = {}
"""Per (kind, name), the spec each registration replaced, newest last (``_MISSING`` where
there was none)."""
_loaded = False
_loading = False
_local: set[tuple[str, str]] = set()
"""The (kind, name) registered by a call in this process rather than through an entry point."""

_IMPLEMENTATION_MEMBERS = ("fn", "grad", "vjp", "fused")
"""Keyword arguments the harness used to write into ``backprop``'s table, refused now."""


def _specs(kind: str) -> dict[str, Any]:
    """The harness's own table of specs of ``kind`` (never the implementation's)."""
    from .formulas.specs import ACTIVATION_SPECS, COST_SPECS

    return ACTIVATION_SPECS if kind == "activation" else COST_SPECS


_listeners: list[Callable[[], None]] = []


def on_change(forget: Callable[[], None]) -> None:
    """Call ``forget`` whenever a registration changes the tables: an oracle that caches
    what it derived from them by name (kinks, compiled programs) drops it then."""
    _listeners.append(forget)


def _clear_caches() -> None:
    """Tell every listener (:func:`on_change`) that the tables changed."""
    for forget in _listeners:
        forget()


def _check_name(name: object, kind: str, replace: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be a str that is a Python identifier, got {name!r}")
    if not isinstance(replace, bool):
        raise TypeError(f"replace must be True or False, got {replace!r}")
    if _has_spec(kind, name) and not replace:
        raise ValueError(
            f"{kind} {name!r} is already registered (the harness has its twins); pass "
            "replace=True to declare a changed formula"
        )


def _has_spec(kind: str, name: str) -> bool:
    """Whether the harness holds a spec of ``kind`` ``name``."""
    return name in _specs(kind)


def _refuse_implementation(kind: str, given: Mapping[str, Any]) -> None:
    """A TypeError for ``fn``/``grad``/``vjp``/``fused``: the implementation's own code."""
    members = [m for m in _IMPLEMENTATION_MEMBERS if m in given]
    if members:
        table = "ACTIVATIONS" if kind == "activation" else "COSTS"
        raise TypeError(
            f"{', '.join(members)}: the harness never writes into the code it checks; give "
            f"the {kind}'s own functions to the implementation (backprop.register_{kind}(name, "
            f"...) from the fork's code, or an entry in backprop.{table}), and to the harness "
            "only its twins (numpy=, jax=)"
        )


def _check_callable(argument: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{argument} must be callable, got {type(value).__name__} {value!r}")


def _put(kind: str, name: str, spec: Any) -> None:
    """Make ``spec`` the one spec of ``kind`` ``name``, keeping the one it replaces (or
    ``_MISSING``) for :func:`_unregister`, and tell the listeners."""
    table = _specs(kind)
    _saved.setdefault((kind, name), []).append(table.get(name, _MISSING))
    table[name] = spec
    _clear_caches()
    _note(kind, name)


def _restore(kind: str, name: str, spec: Any) -> None:
    """Put back the spec a registration replaced, or remove the name (``_MISSING``)."""
    table = _specs(kind)
    if spec is _MISSING:
        table.pop(name, None)
    else:
        table[name] = spec
    _clear_caches()


def register_activation(
    name: str,
    *,
    numpy: Callable,
    jax: Callable,
    kinks: Sequence[float] = (),
    absolute_rounding: float = 1.0,
    elementwise: bool = True,
    replace: bool = False,
    **implementation: Any,
) -> None:
    """Declare activation ``name`` to the oracles: the NumPy twin ``numpy(z)`` the finite
    differences evaluate, the JAX twin ``jax(z)`` (jax.numpy; its derivative is
    ``jax.grad``'s) and the finite ``kinks``, the z where g' jumps (relu: ``(0.0,)``), which
    the finite differences stay off and the JAX oracle treats as any subgradient.

    ``absolute_rounding``: s_g >= 0, how far a correct formula for g may be off, in eps
    (|g(z)| + s_g): 1 (the default) unless every correct formula keeps relative precision.
    ``elementwise=False``: a g whose outputs each depend on a whole column (softmax-like);
    ``numpy`` and ``jax`` then work along axis 0 and the name is taken on the output layer
    only. ``replace=True`` replaces the harness's twins of a name it has (the built-ins
    included: a fork's deliberately changed formula); :func:`unregister_activation` brings
    the replaced ones back.

    The implementation's own ``fn``/``grad``/``vjp`` are not taken (a TypeError says where
    they go): the code under test is never rewritten.
    """
    _refuse_implementation("activation", implementation)
    if implementation:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(sorted(implementation))}")
    _check_name(name, "activation", replace)
    for argument, value in (("numpy", numpy), ("jax", jax)):
        _check_callable(argument, value)
    if not isinstance(elementwise, bool):
        raise TypeError(f"elementwise must be True or False, got {elementwise!r}")
    if isinstance(kinks, (str, bytes)) or not isinstance(kinks, Sequence):
        raise TypeError(f"kinks must be a sequence of numbers, got {kinks!r}")
    points = []
    for k in kinks:
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k):
            raise ValueError(f"kinks must hold finite numbers, got {k!r} in {kinks!r}")
        points.append(float(k))
    if len(set(points)) != len(points):
        raise ValueError(f"kinks must not repeat a point, got {kinks!r}")
    if (
        isinstance(absolute_rounding, bool)
        or not isinstance(absolute_rounding, (int, float))
        or not 0 <= absolute_rounding < math.inf
    ):
        raise ValueError(f"absolute_rounding must be a number >= 0, got {absolute_rounding!r}")
    from .formulas.specs import ActivationSpec

    spec = ActivationSpec(
        numpy,
        jax,
        kinks=tuple(sorted(points)),
        elementwise=elementwise,
        absolute_rounding=float(absolute_rounding),
    )
    _put("activation", name, spec)


def register_cost(
    name: str,
    *,
    numpy: Callable,
    jax: Callable,
    output_activations: Sequence[str] | object | None = _MISSING,
    numpy_from_logits: Mapping[str, Callable] | None = None,
    jax_from_logits: Mapping[str, Callable] | None = None,
    replace: bool = False,
    **implementation: Any,
) -> None:
    """Declare cost ``name`` to the oracles: the twins ``numpy(a, y)`` and ``jax(a, y)``, the
    elementwise terms t with J = (1/m) sum t (A and Y of shape (n_L, m)).

    ``output_activations``: the output activations the cost accepts (None: any; left out:
    any for a new name, the replaced entry's for ``replace=True``); networks and strategies
    pair the cost with these only. ``replace`` as for :func:`register_activation`: a fork
    declares its changed formula of a built-in cost this way, and its own code (a fused
    form included) stays as it is. The implementation's ``fn``/``grad`` are not taken.

    ``numpy_from_logits`` / ``jax_from_logits``: the same terms from the pre-activation Z^L,
    by output activation (``{"sigmoid": lambda z, y: ...}``), finite where A saturates: the
    oracles' saturation check reads them (``bce`` with a sigmoid has them built in).
    """
    _refuse_implementation("cost", implementation)
    if implementation:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(sorted(implementation))}")
    _check_name(name, "cost", replace)
    for argument, value in (("numpy", numpy), ("jax", jax)):
        _check_callable(argument, value)
    if output_activations is _MISSING:
        output_activations = cost_output_activations(name) if replace else None
    allowed = None
    if output_activations is not None:
        if isinstance(output_activations, str) or not isinstance(
            output_activations, (Sequence, frozenset, set)
        ):
            raise TypeError(
                f"output_activations must be a sequence of activation names or None, "
                f"got {output_activations!r}"
            )
        allowed = frozenset(output_activations)
        unknown = sorted(a for a in allowed if a not in activation_names())
        if not allowed or unknown:
            raise ValueError(
                "output_activations must name registered activations, got "
                f"{sorted(allowed)!r} (unknown: {unknown})"
            )
    from .formulas.specs import CostSpec

    spec = CostSpec(
        numpy,
        jax,
        numpy_from_logits=_logit_forms("numpy_from_logits", numpy_from_logits),
        jax_from_logits=_logit_forms("jax_from_logits", jax_from_logits),
        output_activations=allowed,
    )
    _put("cost", name, spec)


def _logit_forms(argument: str, forms: Mapping[str, Callable] | None) -> dict[str, Callable]:
    """A cost's terms from the logits, by output activation, checked."""
    if forms is None:
        return {}
    if not isinstance(forms, Mapping):
        raise TypeError(f"{argument} must be a mapping of activation names to callables, "
                        f"got {type(forms).__name__}")  # fmt: skip
    for activation, fn in forms.items():
        if activation not in activation_names():
            raise ValueError(f"{argument} names {activation!r}, not an activation of the tables")
        _check_callable(f"{argument}[{activation!r}]", fn)
    return dict(forms)


def _note(kind: str, name: str) -> None:
    if _loading:
        _local.discard((kind, name))
    else:
        _local.add((kind, name))


def _unregister(kind: str, name: str) -> None:
    stack = _saved.get((kind, name))
    if not stack:
        raise ValueError(
            f"{kind} {name!r} was not registered through reference.register_{kind}, "
            "so there is nothing to unregister"
        )
    _restore(kind, name, stack.pop())
    if not stack:
        _local.discard((kind, name))


def _implementation_table(kind: str) -> Mapping[str, Any]:
    """The built-in ``backprop``'s table of ``kind``: read for its names (and a cost's output
    activations) only, never written."""
    import backprop

    return backprop.ACTIVATIONS if kind == "activation" else backprop.COSTS


def activation_names() -> list[str]:
    """The activations the harness checks: the built-in table's, in its order, then the
    registered ones it lacks (entry points loaded first)."""
    load_entry_points()
    ours = list(_implementation_table("activation"))
    added = sorted(registered_names("activation"))
    return ours + [n for n in added if n not in ours and n in _specs("activation")]


def cost_names() -> list[str]:
    """The costs the harness checks: the built-in table's, in its order, then the registered
    ones it lacks (entry points loaded first)."""
    load_entry_points()
    ours = list(_implementation_table("cost"))
    added = sorted(registered_names("cost"))
    return ours + [n for n in added if n not in ours and n in _specs("cost")]


def cost_output_activations(name: str) -> frozenset[str] | None:
    """The output activations cost ``name`` takes (None: any): its spec's (``bce``: the
    sigmoid), else, for a name the harness has no spec of, the built-in table's entry's."""
    load_entry_points()
    spec = _specs("cost").get(name)
    if spec is not None:
        return spec.output_activations
    entry = _implementation_table("cost").get(name)
    return getattr(entry, "output_activations", None)


def registered_names(kind: str) -> set[str]:
    """The names of ``kind`` ("activation" or "cost") registered through this module, by a
    call or an entry point (loaded first), and not unregistered since."""
    load_entry_points()
    return {name for (k, name), stack in _saved.items() if k == kind and stack}


def process_only() -> list[str]:
    """The names registered by a call in this process (not through an entry point), as
    "activation 'softplus'": a process the harness spawns, such as the CLI's worker, does
    not have them. Loads the entry points first (theirs are not among them)."""
    load_entry_points()
    return [f"{kind} {name!r}" for kind, name in sorted(_local)]


def unregister_activation(name: str) -> None:
    """Undo the latest :func:`register_activation` of ``name``: the entries it replaced come
    back, or the name leaves every table. A ValueError for a name never registered."""
    _unregister("activation", name)


def unregister_cost(name: str) -> None:
    """Undo the latest :func:`register_cost` of ``name`` (see :func:`unregister_activation`)."""
    _unregister("cost", name)


@contextlib.contextmanager
def registered_activation(name: str, **kwargs: Any) -> Iterator[None]:
    """:func:`register_activation` for the ``with`` block only."""
    register_activation(name, **kwargs)
    try:
        yield
    finally:
        unregister_activation(name)


@contextlib.contextmanager
def registered_cost(name: str, **kwargs: Any) -> Iterator[None]:
    """:func:`register_cost` for the ``with`` block only."""
    register_cost(name, **kwargs)
    try:
        yield
    finally:
        unregister_cost(name)


def load_entry_points() -> None:
    """Register every installed entry point of :data:`ACTIVATION_GROUP` and
    :data:`COST_GROUP`, once per process (later calls return at once). Activations load
    first, so a cost may name them in ``output_activations``. An entry point that fails to
    load or register raises a RuntimeError naming it."""
    global _loaded, _loading
    if _loaded:
        return
    _loaded = _loading = True
    try:
        _load_groups()
    finally:
        _loading = False


def _load_groups() -> None:
    for group, register in ((ACTIVATION_GROUP, register_activation), (COST_GROUP, register_cost)):
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            try:
                obj = ep.load()
                if isinstance(obj, Mapping):
                    register(ep.name, **obj)
                elif callable(obj):
                    obj()
                else:
                    raise TypeError(
                        f"expected a mapping of keyword arguments or a callable, "
                        f"got {type(obj).__name__}"
                    )
            except Exception as exc:
                raise RuntimeError(
                    f"entry point {ep.name!r} = {ep.value!r} in group {group!r}: {exc}"
                ) from exc
