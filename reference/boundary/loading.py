"""Finding the implementation under test: a module or an object with the protocol's members.

DESIGN.md, "The implementation protocol": ``loss`` and ``gradients`` are
required; ``forward`` and ``update`` are used when present.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

REQUIRED = ("loss", "gradients")
OPTIONAL = ("forward", "update")


class ImplementationError(Exception):
    """The implementation cannot be loaded or lacks a required member; the message says which."""


def check_protocol(impl: Any, name: str | None = None) -> Any:
    """``impl`` itself, once it is known to have callable ``loss`` and ``gradients``."""
    label = name or getattr(impl, "__name__", type(impl).__name__)
    missing = [m for m in REQUIRED if not callable(getattr(impl, m, None))]
    if missing:
        raise ImplementationError(
            f"{label} does not implement the protocol: it has no callable "
            f"{' or '.join(repr(m) for m in missing)} (needs loss(params, X, Y, *, activations, "
            "cost) and gradients(params, X, Y, *, activations, cost))"
        )
    return impl


def load_impl(spec: str | ModuleType | Any) -> Any:
    """The implementation named by ``"package.module"`` or ``"package.module:object"``.

    A module or object passed in is checked and returned as it is.
    """
    if not isinstance(spec, str):
        return check_protocol(spec)
    module_name, _, attr = spec.partition(":")
    if not module_name or (":" in spec and not attr):
        raise ImplementationError(
            f"cannot read {spec!r} as an implementation: "
            "write package.module or package.module:object"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationError(f"cannot import module {module_name!r}: {exc}") from exc
    target: Any = module
    if attr:
        for part in attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise ImplementationError(
                    f"module {module_name!r} has no attribute {attr!r}"
                ) from None
    return check_protocol(target, spec)


def impl_name(impl: Any) -> str:
    """A short name for reports."""
    return getattr(impl, "__name__", None) or type(impl).__name__
