"""What the implementation returns, converted and validated: a loss a float, gradients and
an update's parameters float64 ``(W, b)`` pairs of the parameters' shapes, ``forward``'s
result A^L; and the floating precision the results came in (:func:`result_precision`).

A result of the wrong structure raises :class:`_Structure` (the guard turns it into a
"structure" finding); gradients of the right structure with some arrays wrong raise
:class:`_WrongShapes`, which keeps the right ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .wire import type_name

Params = list[tuple[np.ndarray, np.ndarray]]


class _Structure(Exception):
    """A result of the wrong structure (turned into a "structure" finding)."""


class _WrongShapes(_Structure):
    """Gradients in the right structure with some arrays of the wrong shape (or not
    numeric): ``partial`` has the right ones, and NaN where each wrong one was."""

    def __init__(self, message: str, partial: Params, wrong: dict[tuple[int, str], str]) -> None:
        super().__init__(message)
        self.partial, self.wrong = partial, wrong


def _real_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 array, refusing what cannot be one without losing something."""
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise _Structure(f"{what} is not an array ({type(exc).__name__}: {exc})") from None
    if np.iscomplexobj(a):
        raise _Structure(f"{what} is complex ({a.dtype}); gradients of a real loss are real")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise _Structure(f"{what} is not numeric (dtype {a.dtype}, from {type_name(value)})")
    if a.dtype == np.bool_:
        raise _Structure(f"{what} is boolean, not numeric")
    return np.array(a, dtype=np.float64)  # a copy: the implementation keeps no alias to it


def as_loss(value: Any) -> float:
    """A loss as a float: a scalar, or an array with exactly one element (such as 1x1)."""
    if isinstance(value, (bool, np.bool_)):
        raise _Structure(f"loss returned a boolean ({value!r}), not a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    a = _real_array(value, "the loss")
    if a.size != 1:
        raise _Structure(
            f"loss returned an array of shape {a.shape}, not a single number "
            "(sum the cost over the batch: J is one number)"
        )
    return float(a.reshape(()))


def as_gradients(value: Any, params: Params) -> Params:
    """``[(dW^1, db^1), ...]`` as float64 arrays of the parameters' shapes."""
    if isinstance(value, (str, bytes, np.ndarray)) or not isinstance(value, (Sequence,)):
        raise _Structure(f"gradients returned {type_name(value)}, not a list of (dW, db) pairs")
    if len(value) != len(params):
        raise _Structure(
            f"gradients returned {len(value)} entries for a network of {len(params)} layers"
        )
    out = []
    wrong: dict[tuple[int, str], str] = {}
    for l, (pair, (W, b)) in enumerate(zip(value, params), start=1):
        if (
            isinstance(pair, (str, bytes))
            or not isinstance(pair, (Sequence, np.ndarray))
            or (len(pair) != 2)
        ):
            raise _Structure(f"layer {l}: expected a (dW, db) pair, got {type_name(pair)}")
        arrays = []
        for pname, theta, g in (("W", W, pair[0]), ("b", b, pair[1])):
            try:
                g = _real_array(g, f"layer {l}'s d{pname}")
            except _Structure as exc:
                wrong[(l, pname)] = str(exc)
                g = None
            if g is not None and g.shape != theta.shape:
                msg = f"layer {l}: d{pname} has shape {g.shape} but {pname} has shape {theta.shape}"
                if g.shape == theta.shape[::-1] and g.shape != theta.shape:
                    msg += " (the transpose's shape)"
                wrong[(l, pname)] = msg
            arrays.append(np.full(np.shape(theta), np.nan) if (l, pname) in wrong else g)
        out.append((arrays[0], arrays[1]))
    if wrong:  # judged array by array where the checker can: the others may be right
        raise _WrongShapes("; ".join(wrong.values()), out, wrong)
    return out


def _as_forward(value: Any, params: Params, m: int) -> np.ndarray:
    a = _real_array(value, "forward's result")
    want = (params[-1][0].shape[0], m)
    if a.shape != want:
        raise _Structure(f"forward returned shape {a.shape}, expected A^L of shape {want}")
    return a


PRECISIONS = ("float64", "float32", "float16")
"""The floating precisions the guard tells apart, highest first."""


def lowest_precision(*names: str) -> str:
    """The lowest of the given :data:`PRECISIONS`."""
    return max(names, key=PRECISIONS.index)


def result_precision(value: Any) -> str:
    """The lowest floating precision among the arrays and scalars in ``value`` (any depth of
    lists and tuples, three levels deep: the protocol's results nest no deeper): "float32" or
    "float16" where one is, else "float64". A structure it cannot walk is float64 here and
    the conversion that follows says what is wrong with it."""
    found, stack = "float64", [(value, 0)]
    try:
        while stack:
            item, depth = stack.pop()
            if isinstance(item, (list, tuple)) and depth < 3 and len(item) <= 4096:
                stack.extend((v, depth + 1) for v in item)
            else:
                name = _float_name(item)
                if name is not None:
                    found = lowest_precision(found, name)
    except Exception:
        return "float64"
    return found


def _float_name(item: Any) -> str | None:
    """The name of ``item``'s floating precision among :data:`PRECISIONS`, for a NumPy array
    or scalar and for any array that carries a NumPy ``dtype`` (a JAX array's is one), or None.
    Read from the attribute alone: nothing is imported and nothing converted."""
    if isinstance(item, (list, tuple, str, bytes, dict)):
        return None
    dtype = getattr(item, "dtype", None)
    if dtype is None:
        return None
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):  # a dtype NumPy does not know: left to the conversion
        return None
    return name if name in PRECISIONS else None


def _cast(value: Any, dtype: str) -> Any:
    """``value`` with every floating array in it (at any depth of lists and tuples) cast to
    ``dtype``; anything else as it is."""
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(dtype)
    if isinstance(value, list):
        return [_cast(v, dtype) for v in value]
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    return value


def _returns_what_it_wrote(raw: Any, sent: Any, written: Any) -> bool:
    """Whether ``update`` wrote into the params it was given (``sent`` before the call,
    ``written`` after) and returned those same values: the in-place convention, whatever it
    returns (a training loop written for the seed, ``params = update(...)``, works the same).
    Values written that differ from the ones returned stay an impurity."""
    try:
        pairs = [list(pair) for pair in raw]
        before = [np.asarray(a) for pair in sent for a in pair]
        after = [np.asarray(a) for pair in written for a in pair]
        got = [np.asarray(a) for pair in pairs for a in pair]
    except Exception:  # not pairs of arrays: _as_update says what it is
        return False
    if not (len(got) == len(after) == len(before)):
        return False
    if all(np.array_equal(a, b) for a, b in zip(before, after)):
        return False  # nothing written: not in place
    return all(g.shape == a.shape and np.array_equal(g, a) for g, a in zip(got, after))


def _as_update(raw: Any, given_params: Params, params: Params) -> Params:
    result = given_params if raw is None else raw
    if isinstance(result, (str, bytes)) or not isinstance(result, Sequence):
        raise _Structure(f"update returned {type_name(raw)}, not a list of (W, b) pairs")
    if len(result) != len(params):
        raise _Structure(f"update returned {len(result)} layers, not {len(params)}")
    out = []
    for l, (pair, (W, b)) in enumerate(zip(result, params), start=1):
        if not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2:
            raise _Structure(f"update: layer {l} is not a (W, b) pair")
        arrays = []
        for pname, theta, new in (("W", W, pair[0]), ("b", b, pair[1])):
            new = _real_array(new, f"update's layer {l} {pname}")
            if new.shape != np.shape(theta):
                raise _Structure(
                    f"update: layer {l}'s {pname} has shape {new.shape}, not {np.shape(theta)}"
                )
            arrays.append(new)
        out.append((arrays[0], arrays[1]))
    return out
