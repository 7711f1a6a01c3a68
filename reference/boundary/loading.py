"""Finding the implementation under test: a module or an object with the protocol's members.

DESIGN.md, "The implementation protocol": ``loss`` and ``gradients`` are
required; ``forward`` and ``update`` are used when present. An implementation is
named by a module path (``package.module[:object]``) or by a file path (a ``.py``
file or a package directory, ``path/to/backprop.py[:object]``), which is imported
under a name of its own so that a student's ``backprop.py`` never stands in for the
built-in ``backprop`` package, nor one student's file for another's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
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


def is_path(module: str) -> bool:
    """Whether ``module`` (a spec's part before ``:``) names a file or directory, not a module."""
    return module.endswith(".py") or "/" in module or "\\" in module


def import_path(path: str | Path) -> ModuleType:
    """The module in the ``.py`` file, or the package in the directory, at ``path``.

    It is imported under a name made from its resolved path
    (``_impl_<stem>_<hash>``), never under its own: a file called ``backprop.py`` does not
    replace the built-in ``backprop`` package in ``sys.modules``, and two files of the same
    name do not replace each other. Its directory is appended to ``sys.path`` (after
    everything else, so that it shadows nothing the harness imports), so that the modules
    beside it import as they would from that directory. What the module raises at import
    propagates, as ``import`` would raise it.
    """
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        init = path / "__init__.py"
        if not init.is_file():
            raise ImplementationError(
                f"cannot import {str(path)!r}: a directory must be a package (it has no "
                "__init__.py); or name its module file, path/to/module.py"
            )
        location, search = init, [str(path)]
    elif path.is_file():
        location, search = path, None
    else:
        raise ImplementationError(f"cannot import {str(path)!r}: no such file or directory")
    stem = re.sub(r"\W", "_", path.stem if path.is_file() else path.name)
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    name = f"_impl_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, location, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise ImplementationError(f"cannot import {str(path)!r}: not a Python module")
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as import does: dataclasses and pickle look it up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_impl(spec: str | ModuleType | Any) -> Any:
    """The implementation named by ``"package.module"`` or ``"package.module:object"``,
    or by a file path, ``"path/to/module.py"``, ``"path/to/package"`` (with ``:object``
    if need be; see :func:`import_path`).

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
        if is_path(module_name):
            module = import_path(module_name)
        else:
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
