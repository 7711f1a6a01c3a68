"""What :func:`~reference.judging.functions.check_function` and
:func:`~reference.judging.functions.check_vjp` accept, before any call is judged.

The arrays to differentiate (float64, finite, copied), the other arguments, the arguments'
names, the name a report gives the function, and two refusals of what ``f`` returns: a value
that is not one number, and results that change from call to call (a dropout mask drawn
anew). Bad arguments raise TypeError or ValueError naming the argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..boundary.functions import GuardedFunction
from ..tolerances import DETERMINISM_RTOL


def as_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array (a copy), or a TypeError/ValueError naming ``name``."""
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be an array, got {type(value).__name__} ({exc})") from None
    if not name.startswith("upstream") and (
        a.dtype == object or a.dtype.kind in "biuSUV" or isinstance(value, (dict, str))
    ):
        what = (
            f"holds {a.dtype} values" if a.dtype.kind in "biu" else f"is a {type(value).__name__}"
        )
        raise TypeError(
            f"{name} {what}, not float64 numbers to differentiate. Labels, indices, a mask, "
            f"a mode flag or a parameter dict have no gradient: leave them out of the arrays "
            f"and close over them, as in check_function(lambda x: f(x, y), lambda x: grad(x, y), "
            f"x). If it is data to differentiate, convert it with .astype(np.float64)"
        )
    if a.dtype == object or np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"{name} must be a float64 array, got dtype {a.dtype} (from {type(value).__name__}); "
            "convert with np.asarray(..., dtype=np.float64)"
        )
    if a.dtype != np.float64:
        raise TypeError(
            f"{name} is {a.dtype}; finite differences need float64 (convert with "
            ".astype(np.float64))"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or inf; the gradient is checked at finite points")
    return np.array(a, dtype=np.float64)


def validate(
    entry: str,
    f: Any,
    grad: Any,
    arrays: tuple,
    batched: Any,
    jax_f: Any,
    m: Any,
    names: Any,
) -> tuple[list[np.ndarray], list[str]]:
    """The arrays (float64 copies) and their names, or a TypeError/ValueError naming the
    argument that :func:`~reference.judging.functions.check_function` (``entry``) refuses."""
    which = "grad_f" if entry == "check_function" else "vjp_f"
    for label, fn in (("f", f), (which, grad)):
        if not callable(fn):
            raise TypeError(f"{label} must be callable, got {type(fn).__name__}")
    if jax_f is not None and not callable(jax_f):
        raise TypeError(f"jax_f must be callable or None, got {type(jax_f).__name__}")
    if not arrays:
        raise TypeError(f"{entry} needs at least one array to differentiate with respect to")
    if not isinstance(batched, bool):
        raise TypeError(f"batched must be True or False, got {batched!r}")
    if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1):
        raise ValueError(f"m must be a positive int (the batch size) or None, got {m!r}")
    if names is None:
        names = _parameter_names(f, len(arrays))
    elif isinstance(names, str) or len(names) != len(arrays):
        raise ValueError(f"names must be a sequence of {len(arrays)} names, got {names!r}")
    names = [str(n) for n in names]
    xs = [as_array(f"arrays[{k}] ({n})", a) for k, (a, n) in enumerate(zip(arrays, names))]
    return xs, names


def _parameter_names(f: Callable[..., Any], count: int) -> list[str]:
    """``f``'s positional parameter names where there are exactly ``count``, else x0, x1..."""
    try:
        params = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return params if len(params) == count else [f"x{k}" for k in range(count)]


def function_name(f: Any, grad: Any) -> str:
    """The report's name for a function and its gradient: ``"f / grad_f"``, a lambda named
    by the function it calls."""

    def one(fn: Any) -> str:
        if getattr(fn, "__name__", None) == "<lambda>":
            called = _called_by_lambda(fn)
            if called:
                return f"{called} (in a lambda)"
        return getattr(fn, "__qualname__", None) or type(fn).__name__

    return f"{one(f)} / {one(grad)}"


def _called_by_lambda(fn: Any) -> str | None:
    """The first function a lambda names (``lambda x: affine_forward(x, w, b)[0]``), found
    among its globals and the variables it closes over; None when it names none."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    cells = dict(zip(code.co_freevars, getattr(fn, "__closure__", None) or ()))
    for name in (*code.co_names, *code.co_freevars):
        if name in cells:
            try:
                value = cells[name].cell_contents
            except ValueError:  # an empty cell
                continue
        else:
            value = getattr(fn, "__globals__", {}).get(name)
        if callable(value) and not isinstance(value, type):
            return name
    return None


def same_twice(f_g: GuardedFunction, first: Any, second: Any, what: str) -> None:
    """Refuse an ``f`` that returns different results for the same arrays: a dropout mask or
    noise drawn at every call makes every finite difference a difference of two draws."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape == b.shape and np.allclose(a, b, rtol=DETERMINISM_RTOL, atol=0.0, equal_nan=True):
        return
    gap = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("nan")
    raise f_g.fail(
        f"returned different {what} for the same arrays (two calls at the given point, apart by "
        f"up to {gap:.3g}): a random draw at every call, such as a dropout mask, leaves nothing "
        "to differentiate. Fix the randomness inside f (a seed set at every call, or one mask "
        "closed over) and give the backward pass the same mask"
    )


def scalar(f_g: GuardedFunction, raw: Any) -> float:
    a = f_g.value(raw, "f's value")
    if a.size != 1:
        raise f_g.fail(
            f"returned an array of shape {a.shape}, not one number (check_function is for a "
            "scalar function; check_vjp checks a layer's backward pass)"
        )
    return float(a.reshape(()))
