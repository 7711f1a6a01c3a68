"""Reading a ``LAYERS`` declaration (:mod:`.layer_objects`): each key checked, names of
classes and functions resolved, a wrong one a ``ValueError`` or ``TypeError`` that names the
key, what was expected and what came. What it leaves out is detected later, on a probe layer
(:meth:`~.layer_objects.LayerModel.probe`)."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KEYS = (
    "dense",
    "activations",
    "cost",
    "weights",
    "grads",
    "samples",
    "backward",
    "optimizer",
    "cost_args",
    "methods",
)
"""The keys a ``LAYERS`` declaration may hold; the first three are required."""
SAMPLES = ("rows", "columns", "row", "column", "vector")
"""How a layer's ``forward`` may take the samples (the last three: one sample per call)."""
BACKWARD = ("none", "learning_rate", "optimizer")
"""What ``backward``'s second argument may be."""


# -- the declaration ------------------------------------------------------------------------


def _resolve(value: Any, what: str) -> Any:
    """A class or function given as itself, or by ``"package.module.Name"`` /
    ``"package.module:Name"``."""
    if not isinstance(value, str):
        return value
    module, sep, attr = value.partition(":")
    if not sep:
        module, _, attr = value.rpartition(".")
    if not module or not attr:
        raise ValueError(f"LAYERS[{what}] must name package.module.Name, got {value!r}")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"LAYERS[{what}] names {value!r}, which cannot be found: {exc}") from None
    return target


def _path(name: Any, what: str) -> tuple[str, ...]:
    """``"W"``, ``"params.W"`` or ``"params['W']"`` as the steps of a path."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"LAYERS[{what}] must hold attribute names (str), got {name!r}")
    steps = re.findall(r"\[\s*['\"]([^'\"]+)['\"]\s*\]|([^.\[\]]+)", name)
    return tuple(a or b for a, b in steps)


def _pair(value: Any, what: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"LAYERS[{what}] must be a pair of names like ('W', 'b'), got {value!r}")
    return _path(value[0], what), _path(value[1], what)


def _choice(value: Any, allowed: Sequence[str], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise ValueError(
            f"LAYERS[{what}] must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        )
    return value


@dataclass
class Declaration:
    """A read ``LAYERS`` dict (see the module docstring); what it leaves out is detected by
    :meth:`~.layer_objects.LayerModel.probe` and kept in :attr:`found`."""

    dense: Callable[..., Any]
    activations: dict[str, Callable[[], Any]]
    costs: dict[str, Any]
    weights: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    grads: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    samples: str | None = None
    backward: str | None = None
    optimizer: str | None = None
    cost_args: str | None = None
    methods: tuple[str, str] = ("forward", "backward")
    found: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, layers: Any) -> Declaration:
        """``layers`` (a module's ``LAYERS``) checked and resolved; a wrong one raises
        ``ValueError`` or ``TypeError`` naming the key, what was expected and what came."""
        _check_keys(layers)
        dense = _resolve(layers["dense"], "'dense'")
        if not callable(dense):
            raise TypeError(f"LAYERS['dense'] must be a class or function, got {dense!r}")
        activations = _table(layers, "activations")
        costs = _table(layers, "cost")
        for name, make in activations.items():
            if not callable(make):
                raise TypeError(
                    f"LAYERS['activations'][{name!r}] must be a class or a function of no "
                    f"arguments, got {make!r}"
                )
        methods = _methods(layers, dense, activations)
        cost_args = _cost_args(layers)
        return cls(
            dense=dense,
            activations=activations,
            costs=costs,
            weights=_pair(layers.get("weights"), "'weights'"),
            grads=_pair(layers.get("grads"), "'grads'"),
            samples=_choice(layers.get("samples"), SAMPLES, "'samples'"),
            backward=_choice(layers.get("backward"), BACKWARD, "'backward'"),
            optimizer=layers.get("optimizer"),
            cost_args=cost_args,
            methods=methods,
        )


def _check_keys(layers: Any) -> None:
    """``layers`` is a dict with only :data:`KEYS`, the first three among them."""
    if not isinstance(layers, Mapping):
        raise TypeError(f"LAYERS must be a dict with keys {', '.join(KEYS)}, got {layers!r}")
    unknown = [k for k in layers if k not in KEYS]
    missing = [k for k in KEYS[:3] if k not in layers]
    if unknown or missing:
        raise ValueError(
            "LAYERS "
            + "; ".join(
                ([f"has unknown keys {', '.join(map(repr, unknown))}"] if unknown else [])
                + ([f"lacks {', '.join(map(repr, missing))}"] if missing else [])
            )
            + f" (keys: {', '.join(KEYS)}; the first three required)"
        )


def _table(layers: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``LAYERS[key]`` (``"activations"`` or ``"cost"``): a dict of the tables' names, each
    value resolved (:func:`_resolve`)."""
    known = _names("activation" if key == "activations" else "cost")
    given = layers[key]
    if not isinstance(given, Mapping) or not given:
        raise TypeError(
            f"LAYERS[{key!r}] must be a dict {{name: ...}} of the tables' "
            f"{'activations' if key != 'cost' else 'costs'}, got {given!r}"
        )
    wrong = [n for n in given if not isinstance(n, str) or (known and n not in known)]
    if wrong:
        raise ValueError(
            f"LAYERS[{key!r}] has {', '.join(map(repr, wrong))}, not among the "
            f"tables' names ({', '.join(known or [])})"
        )
    return {n: _resolve(v, f"{key!r}][{n!r}") for n, v in given.items()}


def _methods(layers: Mapping[str, Any], dense: Any, activations: dict[str, Any]) -> tuple[str, str]:
    """``LAYERS["methods"]``, (forward, backward) names, which every layer class declared has."""
    methods = layers.get("methods", ("forward", "backward"))
    if isinstance(methods, str) or not isinstance(methods, Sequence) or len(methods) != 2:
        raise TypeError(f"LAYERS['methods'] must be (forward, backward) names, got {methods!r}")
    classes = [("'dense'", dense)] + [(f"'activations'][{n!r}", c) for n, c in activations.items()]
    for what, made in classes:
        lacking = [m for m in methods if inspect.isclass(made) and not hasattr(made, m)]
        if lacking:
            raise TypeError(
                f"LAYERS[{what}] is the class {made.__name__}, which has no "
                f"{' or '.join(f'{m}()' for m in lacking)}; a layer needs "
                f"{methods[0]}(x) and {methods[1]}(grad)"
            )
    return str(methods[0]), str(methods[1])


def _cost_args(layers: Mapping[str, Any]) -> str | None:
    """``LAYERS["cost_args"]`` without its spaces: ``"y_true,y_pred"``, ``"y_pred,y_true"``
    or None (read from the cost's parameter names)."""
    cost_args = layers.get("cost_args")
    if cost_args is not None:
        cost_args = re.sub(r"\s", "", cost_args) if isinstance(cost_args, str) else cost_args
        _choice(cost_args, ("y_true,y_pred", "y_pred,y_true"), "'cost_args'")
    return cost_args


def _names(kind: str) -> list[str] | None:
    """The tables' names of ``kind``, where the harness's registry is loaded already (the
    checking process); None in the worker, which imports nothing of the tables: there a
    name outside them is never drawn, since the scope admits only the tables' names."""
    import sys

    registry = sys.modules.get("reference.registry")
    if registry is None:
        return None
    return registry.activation_names() if kind == "activation" else registry.cost_names()
