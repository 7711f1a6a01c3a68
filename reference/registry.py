"""Adding an activation or a cost to every table that needs it, in one call.

A name the harness checks lives in four places: ``backprop``'s table (the function and
its derivative), the NumPy twin the finite differences evaluate, the JAX twin the JAX
oracle differentiates, and, for an activation, its kinks (the z where g' jumps).
:func:`register_activation` and :func:`register_cost` fill all of them at once, after
checking every argument; the CLI, the strategies, the shipped suite and the reports read
the tables, so they pick the name up with no edit anywhere.

A package can register its names without being imported by hand: every entry point of
the groups :data:`ACTIVATION_GROUP` and :data:`COST_GROUP` is loaded once, the first time
the harness reads the tables (:func:`load_entry_points`). Its object is either a mapping
of this module's keyword arguments (the entry point's name is the name registered) or a
callable that registers on its own when called with no arguments.

:func:`unregister_activation` / :func:`unregister_cost` undo a registration (restoring
the entry it replaced, if any); :func:`registered_activation` is the same as a context
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
_saved: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
"""Per (kind, name), the entries each registration replaced, newest last (``_MISSING``
where there was none)."""
_loaded = False
_loading = False
_local: set[tuple[str, str]] = set()
"""The (kind, name) registered by a call in this process rather than through an entry point."""


def _tables(kind: str) -> tuple[dict[str, Any], ...]:
    import backprop

    from .oracles.numpy_model import NUMPY_ACTIVATIONS, NUMPY_COSTS

    if kind == "activation":
        return backprop.ACTIVATIONS, NUMPY_ACTIVATIONS
    return backprop.COSTS, NUMPY_COSTS


def _jax_tables(kind: str) -> tuple[dict[str, Any], ...]:
    from .oracles import jax_model

    if kind == "activation":
        return jax_model.JAX_ACTIVATIONS, jax_model.ABSOLUTE_ROUNDING
    return (jax_model.JAX_COSTS,)


def _clear_caches() -> None:
    """Forget what was derived from the tables (kinks and compiled JAX models by name)."""
    import sys

    jax_model = sys.modules.get(f"{__package__}.oracles.jax_model")
    if jax_model is not None:
        for fn in vars(jax_model).values():
            if callable(getattr(fn, "cache_clear", None)):
                fn.cache_clear()


def _check_name(name: object, kind: str, replace: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be a str that is a Python identifier, got {name!r}")
    if not isinstance(replace, bool):
        raise TypeError(f"replace must be True or False, got {replace!r}")
    backprop_table = _tables(kind)[0]
    if name in backprop_table and not replace:
        raise ValueError(f"{kind} {name!r} is already registered; pass replace=True to replace it")


def _check_callable(argument: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{argument} must be callable, got {type(value).__name__} {value!r}")


def _snapshot(kind: str, name: str) -> tuple[Any, ...]:
    tables = _tables(kind) + _jax_tables(kind)
    return tuple(t.get(name, _MISSING) for t in tables)


def _restore(kind: str, name: str, entries: tuple[Any, ...]) -> None:
    for table, entry in zip(_tables(kind) + _jax_tables(kind), entries):
        if entry is _MISSING:
            table.pop(name, None)
        else:
            table[name] = entry
    _clear_caches()


def register_activation(
    name: str,
    *,
    fn: Callable,
    grad: Callable,
    numpy: Callable,
    jax: Callable,
    kinks: Sequence[float] = (),
    absolute_rounding: float = 1.0,
    vjp: Callable | None = None,
    replace: bool = False,
) -> None:
    """Add activation ``name`` to every table: ``backprop.ACTIVATIONS`` (``fn(z) -> a`` and
    ``grad(z, a) -> g'(z)``, elementwise on arrays of shape (n_l, m)), the NumPy twin
    ``numpy(z)`` the finite differences evaluate, the JAX twin ``jax(z)`` (jax.numpy; its
    derivative is ``jax.grad``'s) and the finite ``kinks``, the z where g' jumps (relu:
    ``(0.0,)``), which the finite differences stay off and the JAX oracle treats as any
    subgradient.

    ``absolute_rounding``: s_g >= 0, how far a correct formula for g may be off, in eps
    (|g(z)| + s_g): 1 (the default) unless every correct formula keeps relative precision.
    ``vjp``: for a g that is not elementwise (softmax-like: each output depends on its whole
    column), ``vjp(z, a, dA) -> dZ``, dA times g's Jacobian by columns; ``numpy`` and ``jax``
    then work along axis 0 and the name is taken on the output layer only.
    ``replace=True`` replaces a name already in the table (the built-ins included);
    :func:`unregister_activation` brings the replaced entry back.
    """
    _check_name(name, "activation", replace)
    for argument, value in (("fn", fn), ("grad", grad), ("numpy", numpy), ("jax", jax)):
        _check_callable(argument, value)
    if vjp is not None:
        _check_callable("vjp", vjp)
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
    import backprop

    from .oracles.numpy_model import NumpyActivation

    _saved.setdefault(("activation", name), []).append(_snapshot("activation", name))
    ours, twins = _tables("activation")
    ours[name] = backprop.Activation(fn, grad, vjp)
    twins[name] = NumpyActivation(numpy, kinks=tuple(sorted(points)), elementwise=vjp is None)
    jax_table, rounding = _jax_tables("activation")
    jax_table[name] = jax
    rounding[name] = float(absolute_rounding)
    _clear_caches()
    _note("activation", name)


def register_cost(
    name: str,
    *,
    fn: Callable,
    grad: Callable,
    numpy: Callable,
    jax: Callable,
    output_activations: Sequence[str] | None = None,
    replace: bool = False,
) -> None:
    """Add cost ``name`` to every table: ``backprop.COSTS`` (``fn(a, y) -> J`` and
    ``grad(a, y) -> dJ/dA``, A and Y of shape (n_L, m), the 1/m included), and the twins
    ``numpy(a, y)`` and ``jax(a, y)``: the elementwise terms t with J = (1/m) sum t.

    ``output_activations``: the output activations the cost accepts (None: any); networks
    and strategies pair the cost with these only. ``replace`` as for
    :func:`register_activation`.
    """
    _check_name(name, "cost", replace)
    for argument, value in (("fn", fn), ("grad", grad), ("numpy", numpy), ("jax", jax)):
        _check_callable(argument, value)
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
        unknown = sorted(a for a in allowed if a not in _tables("activation")[0])
        if not allowed or unknown:
            raise ValueError(
                "output_activations must name registered activations, got "
                f"{sorted(allowed)!r} (unknown: {unknown})"
            )
    import backprop

    from .oracles.jax_model import JaxCost
    from .oracles.numpy_model import NumpyCost

    _saved.setdefault(("cost", name), []).append(_snapshot("cost", name))
    ours, twins = _tables("cost")
    ours[name] = backprop.Cost(fn, grad, output_activations=allowed)
    twins[name] = NumpyCost(numpy)
    (jax_table,) = _jax_tables("cost")
    jax_table[name] = JaxCost(jax)
    _clear_caches()
    _note("cost", name)


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
