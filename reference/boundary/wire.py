"""What travels between the harness and the worker that runs the code under test.

The worker is not trusted: the code it runs may have replaced anything in it, its
``pickle`` included. So everything it sends is first made plain data there
(:func:`plain`: numbers, strings, NumPy arrays of numbers, lists, tuples and dicts of
them (a ``SimpleNamespace`` as the dict of its attributes), and :class:`Opaque` for
anything else), and the harness reads it back with
:func:`loads`, an unpickler that builds nothing but those (the standard library's
"restricting globals" recipe): a crafted message cannot run code in the harness.
Messages are capped at :data:`MAX_MESSAGE` bytes.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence, Set
from types import SimpleNamespace
from typing import Any

import numpy as np

MAX_MESSAGE = 1 << 30
"""The largest message (bytes) the harness reads from a worker: far above any network's
arrays, small enough that a worker cannot make the harness run out of memory."""
PROTOCOL = 4
"""The pickle protocol of the worker's messages (arrays go by ``_reconstruct``)."""
_DEPTH = 8
"""How deep :func:`plain` follows nested containers (the protocol's results nest 3 deep)."""
_ITEMS = 1 << 20
"""How many items of one container :func:`plain` converts; a longer one is :class:`Opaque`."""
_TEXT = 10_000
"""Characters of a string kept by :func:`plain`."""


class Opaque:
    """A value the worker could not send as plain data: its type's name and a short repr.
    The guard's structure checks read :func:`type_name` and say what came."""

    __slots__ = ("text", "type_name")

    def __init__(self, type_name: str, text: str = "") -> None:
        self.type_name, self.text = str(type_name), str(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Opaque, (self.type_name, self.text))

    def __repr__(self) -> str:
        return self.text or f"<{self.type_name}>"


def type_name(value: Any) -> str:
    """The name of ``value``'s type, as the code under test made it (an :class:`Opaque`
    names the type it stands for)."""
    return value.type_name if isinstance(value, Opaque) else type(value).__name__


def _opaque(value: Any) -> Opaque:
    try:
        text = repr(value)[:200]
    except Exception:
        text = ""
    return Opaque(type(value).__name__, text)


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data (runs in the worker): Python numbers, strings and None as
    they are; NumPy arrays and scalars of numbers as plain ``ndarray``/scalars of the same
    dtype; anything with ``__array__`` (JAX, torch) as such an array; lists, tuples (named
    ones as tuples), other sequences (as lists), sets (as lists) and dicts, item by item;
    anything else an :class:`Opaque`."""
    leaf = _plain_leaf(value)
    if leaf is not _NOT_LEAF:
        return leaf
    if depth >= _DEPTH:
        return _opaque(value)
    if isinstance(value, (list, tuple)):
        return _plain_items(value, depth)
    if type(value) is SimpleNamespace:  # the parameters of a layout with container=object
        value = vars(value)
    if isinstance(value, Mapping):
        return _plain_mapping(value, depth)
    if isinstance(value, (str, bytes)):  # a subclass: its text only
        return plain(str(value) if isinstance(value, str) else bytes(value), depth)
    if hasattr(value, "__array__"):
        try:
            array = np.asarray(value)
        except Exception:
            return _opaque(value)
        return _numeric(array, value)
    if isinstance(value, (Sequence, Set)):
        try:
            items = list(value)
        except Exception:
            return _opaque(value)
        return plain(items, depth)
    return _opaque(value)


_NOT_LEAF = object()
"""What :func:`_plain_leaf` returns for a value that is not a leaf of plain data."""


def _plain_leaf(value: Any) -> Any:
    """``value`` as plain data where it is a leaf (a Python number, string or None, a NumPy
    scalar or array), else :data:`_NOT_LEAF`."""
    if value is None or type(value) in (bool, int, float, complex):
        return value
    if type(value) in (str, bytes):
        return value[:_TEXT]
    if isinstance(value, np.generic):
        return value if value.dtype.kind in "biufc" else _opaque(value)
    if isinstance(value, np.ndarray):
        return _numeric(value, value)
    return _NOT_LEAF


def _numeric(array: np.ndarray, value: Any) -> Any:
    """``array`` as a plain ``ndarray`` where its dtype is numeric, else ``value`` opaque."""
    if array.dtype.kind in "biufc":
        return np.array(array, subok=False)
    return _opaque(value)


def _plain_items(value: list | tuple, depth: int) -> Any:
    """A list or tuple (a named one as a tuple) item by item, or opaque where too long."""
    if len(value) > _ITEMS:
        return _opaque(value)
    items = [plain(v, depth + 1) for v in value]
    return items if isinstance(value, list) else tuple(items)


def _plain_mapping(value: Mapping, depth: int) -> Any:
    """A mapping as a dict, item by item (keys that are not plain as their text), or opaque
    where too long."""
    if len(value) > _ITEMS:
        return _opaque(value)
    out = {}
    for k, v in value.items():
        key = k if type(k) in (str, int, float, bool) else str(k)[:_TEXT]
        out[key] = plain(v, depth + 1)
    return out


def dumps(message: Any) -> bytes:
    """The worker's message as bytes (it must already be :func:`plain`)."""
    return pickle.dumps(message, protocol=PROTOCOL)


_ALLOWED = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("builtins", "complex"),
        ("builtins", "bytearray"),
        (__name__, "Opaque"),
    }
)
"""The only globals a worker's message may name: what plain data pickles as."""


class UnsafeMessage(Exception):
    """A worker's message that names something besides plain data, or is not a pickle."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafeMessage(f"the worker's message names {module}.{name}, not plain data")
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    """A worker's message (runs in the harness): plain data, or :class:`UnsafeMessage`."""
    try:
        return _Restricted(io.BytesIO(data)).load()
    except UnsafeMessage:
        raise
    except Exception as exc:
        raise UnsafeMessage(
            f"the worker's message is not readable ({type(exc).__name__})"
        ) from None
