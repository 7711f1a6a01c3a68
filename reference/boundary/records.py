"""What the guard notices on the way through a call (:mod:`.guard`): arguments a member
changed in place (:class:`Impurity`, :func:`impurities`, :func:`keyword_impurities`) and
different results for the same inputs at two calls of the run (:class:`Inconsistency`,
:class:`Repeats`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tolerances import REPEAT_RTOL as _REPEAT_RTOL
from .findings import MEMBERS

_MEMO_SIZE = 256
"""How many distinct inputs per member the guard remembers results for."""

_ARGUMENTS = {
    "loss": ("params", "X", "Y"),
    "gradients": ("params", "X", "Y"),
    "forward": ("params", "X"),
    "update": ("params", "grads", "learning_rate"),
}
"""The names of each member's positional arguments."""


@dataclass
class Impurity:
    """An argument a member changed in place."""

    member: str
    argument: str
    change: float
    detail: str = ""
    """What changed, where it is not a number: a list grown or shrunk, an entry replaced."""

    def describe(self) -> str:
        if self.detail:
            return f"{self.member} changed {self.argument} in place ({self.detail})"
        return f"{self.member} changed {self.argument} in place (by up to {self.change:.3g})"


@dataclass
class Inconsistency:
    """Two calls with the same inputs that returned different results."""

    member: str
    first_call: int
    call: int
    error: float

    def describe(self) -> str:
        return (
            f"{self.member} returned a different result at call {self.call} than at call "
            f"{self.first_call} for the same inputs (relative difference {self.error:.3g}): "
            "state carried across calls"
        )


def _digest(*parts: Any) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    stack = list(parts)
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            h.update(str((item.shape, item.dtype.str)).encode())
            h.update(np.ascontiguousarray(item).tobytes())
        elif isinstance(item, (list, tuple)):
            h.update(b"(%d" % len(item))
            stack.extend(item)
        else:
            h.update(repr(item).encode())
    return h.digest()


def _changed(before: Any, after: Any) -> float | None:
    """The largest change between two copies of an argument, or None when equal."""
    try:
        b, a = np.asarray(before), np.asarray(after)
        if a.shape != b.shape or a.dtype != b.dtype:
            return float("inf")
        if np.array_equal(a, b, equal_nan=True):
            return None
        with np.errstate(all="ignore"):
            return float(np.max(np.abs(a - b)))
    except Exception:  # an argument replaced by something that is not an array
        return float("inf")


_MISSING = object()
"""A keyword the member removed from its own copy of the keywords."""


def _size(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _describe(value: Any) -> str:
    """A short description of a value that replaced an argument or an entry of one."""
    if value is _MISSING:
        return "nothing (removed)"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (list, tuple)) and not all(isinstance(v, str) for v in value):
        return f"a {type(value).__name__} of {len(value)}"
    try:
        text = repr(value)
    except Exception:
        text = type(value).__name__
    return text if len(text) <= 80 else f"a {type(value).__name__} ({text[:60]}...)"


def _difference(first: Any, second: Any) -> float:
    if isinstance(first, float):
        a, b = np.array([first]), np.array([second])
    else:
        a = np.concatenate([np.ravel(x) for pair in first for x in pair])
        b = np.concatenate([np.ravel(x) for pair in second for x in pair])
    if np.array_equal(a, b, equal_nan=True):
        return 0.0
    with np.errstate(all="ignore"):
        denom = float(np.linalg.norm(a) + np.linalg.norm(b))
        err = float(np.linalg.norm(a - b)) / max(denom, np.finfo(np.float64).tiny)
    return err if np.isfinite(err) else float("inf")


# --- purity ---------------------------------------------------------------------------------


def impurities(
    member: str, before: tuple, after: tuple, skip_params: bool = False
) -> list[Impurity]:
    """The positional arguments of a call of ``member`` changed in place: ``before`` the
    copies as sent, ``after`` the ones the member was given, after the call. ``skip_params``:
    an update that works in place (a convention, not an impurity)."""
    found: list[Impurity] = []
    for name, b, a in zip(_ARGUMENTS[member], before, after):
        if skip_params and name == "params":
            continue  # an update that returns None works in place: a convention
        if name in ("params", "grads"):
            found += _layer_impurities(member, name, b, a)
        elif name != "learning_rate":
            change = _changed(b, a)
            if change is not None:
                found.append(Impurity(member, name, change))
    return found


def _layer_impurities(member: str, name: str, before: Any, after: Any) -> list[Impurity]:
    """``params`` or ``grads``, a list of (W, b) pairs: the list itself (grown, shrunk),
    each entry (replaced by something that is not a pair) and each array."""
    found: list[Impurity] = []
    pnames = ("W", "b") if name == "params" else ("dW", "db")
    if isinstance(before, list) and isinstance(after, list) and len(after) != len(before):
        found.append(Impurity(member, name, float("inf"), (
            f"the list of {len(before)} layers it was given now holds {len(after)}: "
            + ("an entry appended" if len(after) > len(before) else "an entry removed")
        )))  # fmt: skip
    for l, (pb, pa) in enumerate(zip(before, after), start=1):
        if type(pa) is not type(pb) or _size(pa) != _size(pb):
            what = f"a {type(pb).__name__} of {_size(pb)} replaced by {_describe(pa)}"
            found.append(Impurity(member, f"layer {l}'s entry of {name}", float("inf"), what))
            continue
        for k, pname in enumerate(pnames):
            try:
                change = _changed(pb[k], pa[k])
            except (TypeError, IndexError, KeyError):
                change = float("inf")
            if change is not None:
                found.append(Impurity(member, f"layer {l}'s {pname}", change))
    return found


def keyword_impurities(member: str, before: dict, after: dict) -> list[Impurity]:
    """The keywords (``activations``, ``cost``, ``l2``): plain values, compared as such."""
    found: list[Impurity] = []
    for key, value in before.items():
        now = after.get(key, _MISSING)
        same = _changed(value, now) is None if isinstance(value, np.ndarray) else (
            type(now) is type(value) and now == value
        )  # fmt: skip
        if not same:
            found.append(Impurity(member, key, float("inf"), f"{value!r} became {_describe(now)}"))
    return found


# --- repeatability --------------------------------------------------------------------------


class Repeats:
    """The results of up to :data:`_MEMO_SIZE` distinct inputs per member, by digest
    (:func:`_digest`), to compare a later call with the same inputs against."""

    def __init__(self) -> None:
        self._memo: dict[str, dict[bytes, tuple[int, Any]]] = {m: {} for m in MEMBERS}

    def check(self, member: str, key: bytes, call: int, value: Any) -> Inconsistency | None:
        """An :class:`Inconsistency` when ``value`` (the result of call number ``call``)
        differs from the first result for the same ``key``; else None, remembering it."""
        memo = self._memo[member]
        if key in memo:
            first_call, first = memo[key]
            error = _difference(first, value)
            if error > _REPEAT_RTOL:
                return Inconsistency(member, first_call, call, error)
        elif len(memo) < _MEMO_SIZE:
            memo[key] = (call, value)
        return None
