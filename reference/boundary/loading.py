"""Finding the implementation under test: a module, an object, or plain functions.

DESIGN.md, "The implementation protocol": ``loss`` and ``gradients`` are
required; ``forward`` and ``update`` are used when present. An implementation is
named by a module path (``package.module[:object]``) or by a file path (a ``.py``
file or a package directory, ``path/to/backprop.py[:object]``), which is imported
under a name of its own so that a student's ``backprop.py`` never stands in for the
built-in ``backprop`` package, nor one student's file for another's. Besides a module
or an object with those members, the Python API takes the functions themselves
(written in a notebook cell, say): a ``(loss, gradients)`` pair, or a dict
``{"loss": ..., "gradients": ..., "forward": ..., "update": ..., "SUPPORTS": ...}``
(:func:`check_protocol` turns either into a :class:`Functions`). A module with a ``LAYERS``
declaration instead of ``loss`` and ``gradients`` is a model made of layer objects, served
through the protocol by :mod:`.layer_objects`. Functions are
called in the caller's process: only a module or file path can be imported by the
isolated worker (:mod:`.isolation`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

REQUIRED = ("loss", "gradients")
OPTIONAL = ("forward", "update")
_KEYS = (*REQUIRED, *OPTIONAL, "SUPPORTS")
"""What a dict of functions may hold."""
_SIGNATURES = (
    "loss(params, X, Y, *, activations, cost) and gradients(params, X, Y, *, activations, cost)"
)


class ImplementationError(Exception):
    """The implementation cannot be loaded or lacks a required member; the message says which."""


class ProtocolError(ImplementationError, TypeError):
    """What was given as an implementation does not offer the protocol: a ``TypeError``
    (the argument is of the wrong kind) that the CLI reports like any loading failure."""


class Functions:
    """Plain functions as an implementation: the members the protocol needs, and a name
    built from theirs for reports (``functions loss, gradients``). Made by
    :func:`check_protocol` from a ``(loss, gradients)`` pair or a dict of functions."""

    def __init__(
        self,
        loss: Callable[..., Any],
        gradients: Callable[..., Any],
        forward: Callable[..., Any] | None = None,
        update: Callable[..., Any] | None = None,
        SUPPORTS: Mapping[str, Any] | None = None,
    ) -> None:
        self.loss, self.gradients = loss, gradients
        if forward is not None:
            self.forward = forward
        if update is not None:
            self.update = update
        self.SUPPORTS = SUPPORTS
        names = [getattr(f, "__name__", type(f).__name__) for f in (loss, gradients)]
        self.__name__ = f"functions {', '.join(names)}"

    def __repr__(self) -> str:
        members = [m for m in (*REQUIRED, *OPTIONAL) if hasattr(self, m)]
        return f"<{self.__name__}: {', '.join(members)}, checked in this process>"


def _what(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, ModuleType) else "module"


def _functions(impl: Any, label: str | None) -> Functions:
    """A ``(loss, gradients)`` pair or a dict of functions as a :class:`Functions`."""
    if isinstance(impl, Mapping):
        what = label or "the dict given as the implementation"
        unknown = [k for k in impl if k not in _KEYS]
        if unknown:
            raise ProtocolError(
                f"{what} has {', '.join(map(repr, unknown))}, which the protocol does not "
                f"know (expected keys: {', '.join(_KEYS)})"
            )
        members = dict(impl)
    else:
        what = label or f"the {_what(impl)} given as the implementation"
        if len(impl) != 2:
            raise ProtocolError(
                f"{what} must be the pair (loss, gradients), got {len(impl)} "
                f"item{'' if len(impl) == 1 else 's'}; give forward and update in a dict: "
                '{"loss": loss, "gradients": gradients, "forward": forward, "update": update}'
            )
        members = dict(zip(REQUIRED, impl))
    wrong = [
        f"no {m!r}" if m not in members else f"{m} is of type {_what(members[m])}, not a function"
        for m in (*REQUIRED, *OPTIONAL)
        if (m in REQUIRED or members.get(m) is not None) and not callable(members.get(m))
    ]
    if wrong:
        raise ProtocolError(
            f"{what} does not implement the protocol: {'; '.join(wrong)} (needs {_SIGNATURES})"
        )
    return Functions(**members)


def check_protocol(impl: Any, name: str | None = None) -> Any:
    """``impl`` itself, once it is known to have callable ``loss`` and ``gradients``; for a
    ``(loss, gradients)`` pair or a dict of functions, a :class:`Functions` holding them.
    Anything else raises :class:`ProtocolError` (a ``TypeError``) naming what is missing."""
    if isinstance(impl, (tuple, list, Mapping)):
        return _functions(impl, name)
    label = name or getattr(impl, "__name__", None)
    what = f"{label} ({_what(impl)})" if label else f"the {_what(impl)} given as the implementation"
    missing = [m for m in REQUIRED if not callable(getattr(impl, m, None))]
    if missing and getattr(impl, "LAYERS", None) is not None:
        from .layer_objects import serve  # models made of layer objects (layer_objects.py)

        return serve(impl, label)
    if missing:
        hint = (
            f"load a module path with load_impl({impl!r}) first"
            if isinstance(impl, str)
            else "in Python, a (loss, gradients) pair or a dict of the functions will do"
        )
        raise ProtocolError(
            f"{what} does not implement the protocol: it has no callable "
            f"{' or '.join(repr(m) for m in missing)} (needs {_SIGNATURES}; {hint})"
        )
    return impl


def is_path(module: str) -> bool:
    """Whether ``module`` (a spec's part before ``:``) names a file or directory, not a module."""
    return module.endswith(".py") or "/" in module or "\\" in module


def import_path(path: str | Path, *, protect: bool = True) -> ModuleType:
    """The module in the ``.py`` file, or the package in the directory, at ``path``.

    It is imported under a name made from its resolved path
    (``_impl_<stem>_<hash>``), never under its own: a file called ``backprop.py`` does not
    replace the built-in ``backprop`` package in ``sys.modules``, and two files of the same
    name do not replace each other. Its directory is appended to ``sys.path`` (after
    everything else, so that it shadows nothing the harness imports), so that the modules
    beside it import as they would from that directory. What the module raises at import
    propagates, as ``import`` would raise it. ``protect=False`` (the worker process, which
    reads no tables of the harness) leaves the built-in ``backprop`` unimported.
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
        if not protect:
            sys.path.append(str(path.parent))
    if str(path.parent) not in sys.path:
        # The harness reads the built-in package's tables (backprop.ACTIVATIONS, ...). Under an
        # editable install it is found after every sys.path entry, so a student's backprop.py
        # in this directory would stand in for it: import it first, while it cannot.
        importlib.import_module("backprop")
        sys.path.append(str(path.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as import does: dataclasses and pickle look it up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_impl(spec: str | ModuleType | Any, *, protect: bool = True) -> Any:
    """The implementation named by ``"package.module"`` or ``"package.module:object"``,
    or by a file path, ``"path/to/module.py"``, ``"path/to/package"`` (with ``:object``
    if need be; see :func:`import_path`).

    A module or object passed in is checked and returned as it is. ``protect``: as for
    :func:`import_path`.
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
            module = import_path(module_name, protect=protect)
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


def _definition(fn: Any) -> dict[str, Any] | None:
    """``{"file", "line"}`` of the ``def`` line of ``fn`` (a function or a bound method;
    :mod:`inspect` looks through a decorator's ``__wrapped__``, and the decorator lines above
    the ``def`` are skipped), or None where it has no Python source."""
    import inspect
    import os

    try:
        fn = getattr(fn, "__func__", fn)
        if not inspect.isfunction(fn):
            return None
        source = inspect.getsourcefile(fn)
        lines, first = inspect.getsourcelines(fn)
    except (TypeError, OSError, ValueError):
        return None
    if source is None:
        return None
    offset = next(
        (k for k, text in enumerate(lines) if text.lstrip().startswith(("def ", "async def "))),
        0,
    )
    return {"file": os.path.abspath(source), "line": first + offset}


def definitions(target: Any) -> dict[str, dict[str, Any]]:
    """Where each protocol member of ``target`` (the loaded implementation) is defined,
    ``{member: {"file": absolute path, "line": the def line}}``, read with :mod:`inspect`
    (nothing is called); a member without Python source (a builtin, a callable object) is
    left out. An implementation that keeps the tables ``backprop`` keeps (``ACTIVATIONS``
    and ``COSTS``, mappings of entries with a ``grad``) also gets ``"activation NAME"`` and
    ``"cost NAME"``: the ``def`` line of each entry's derivative, wherever it is written."""
    import collections
    import inspect
    import types
    from collections.abc import Mapping

    # data fields whose reading runs no code of the class: slots, and the fields of a named
    # tuple (backprop's table entries are named tuples)
    fields = (types.MemberDescriptorType, type(collections.namedtuple("_Probe", "field").field))
    out: dict[str, dict[str, Any]] = {}
    for member in (*REQUIRED, *OPTIONAL):
        try:
            fn = inspect.getattr_static(target, member)
        except AttributeError:
            continue
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        where = _definition(fn)
        if where is not None:
            out[member] = where
    for table, kind in (("ACTIVATIONS", "activation"), ("COSTS", "cost")):
        try:
            entries = inspect.getattr_static(target, table)
        except AttributeError:
            continue
        if not isinstance(entries, Mapping):
            continue
        for name, entry in list(entries.items()):
            try:
                grad = inspect.getattr_static(entry, "grad")
                if isinstance(grad, fields):  # a slot or a named tuple's field: read, not run
                    grad = grad.__get__(entry, type(entry))
            except AttributeError:
                continue
            where = _definition(grad) if isinstance(name, str) else None
            if where is not None:
                out[f"{kind} {name}"] = where
    return out
