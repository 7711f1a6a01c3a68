"""The implementation as the parent sees it when it runs in a worker (:mod:`.isolation`):
:class:`RemoteImpl` offers the members the worker reported, each call one message to the
worker and one back, and mirrors onto the caller's arguments what the member did to its own
copies there (:func:`_mirror`), so that the guard sees an argument changed in place as it
would in one process.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from .findings import KINDS, RemoteFailure

if TYPE_CHECKING:
    from .isolation import Worker


def _where(value: Any) -> dict[str, Any] | None:
    """A ``where`` from the worker, if it has the expected plain fields; else None."""
    if not isinstance(value, dict):
        return None
    file, line = value.get("file"), value.get("line")
    if not isinstance(file, str) or not isinstance(line, int) or isinstance(line, bool):
        return None
    out: dict[str, Any] = {"file": file, "line": line}
    for key in ("code", "function"):
        if isinstance(value.get(key), str):
            out[key] = value[key][:500]
    return out


def _mirror(sent: Any, after: Any) -> None:
    """Write into ``sent`` (the arguments of a call, as this process gave them) what the
    member did to its own copies in the worker (``after``): the guard then sees an argument
    changed in place as it would in one process."""
    if isinstance(sent, np.ndarray):
        if isinstance(after, np.ndarray) and after.shape == sent.shape:
            with np.errstate(all="ignore"):
                sent[...] = after.astype(sent.dtype, copy=False)
    elif isinstance(sent, list) and isinstance(after, list):
        _mirror_list(sent, after)
    elif isinstance(sent, tuple) and isinstance(after, tuple) and len(sent) == len(after):
        for s, a in zip(sent, after):
            _mirror(s, a)
    elif isinstance(sent, SimpleNamespace) and isinstance(after, dict):
        _mirror(vars(sent), after)  # wire.plain sent its attributes as a dict
    elif isinstance(sent, dict) and isinstance(after, dict):
        _mirror_dict(sent, after)


def _mirror_list(sent: list, after: list) -> None:
    """A list: each entry mirrored, or replaced where it became another kind; then grown or
    shrunk to ``after``'s length."""
    for k in range(min(len(sent), len(after))):
        if _same_kind(sent[k], after[k]):
            _mirror(sent[k], after[k])
        else:
            sent[k] = after[k]
    del sent[len(after) :]
    sent.extend(after[len(sent) :])


def _mirror_dict(sent: dict, after: dict) -> None:
    """A dict: keys removed in the worker removed, each value mirrored or replaced."""
    for key in list(sent):
        if key not in after:
            del sent[key]
    for key, value in after.items():
        if key in sent and _same_kind(sent[key], value):
            _mirror(sent[key], value)
        else:
            sent[key] = value


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape
    return type(a) is type(b) and isinstance(a, (list, tuple, dict))


class RemoteImpl:
    """The implementation as the harness sees it when it runs in a worker: the members it
    has, each a call through the worker; its ``SUPPORTS`` and where its members are defined,
    as the worker read them."""

    def __init__(self, worker: Worker, ready: dict[str, Any]) -> None:
        self._worker = worker
        self.__name__ = str(ready.get("name") or worker.spec)
        self.SUPPORTS = ready.get("supports")
        self.locations: dict[str, dict[str, Any]] = {}
        self._pending: list[str] = []
        self.update_ready(ready)

    def update_ready(self, ready: dict[str, Any]) -> None:
        """Take what a (re)started worker said of the implementation."""
        members = ready.get("members") if isinstance(ready.get("members"), list) else []
        for member in ("loss", "gradients", "forward", "update"):
            if member in members:
                setattr(self, member, functools.partial(self._call, member))
            elif member in self.__dict__:
                delattr(self, member)
        locations = ready.get("locations")
        if isinstance(locations, dict):
            self.locations = {
                m: w for m, w in ((m, _where(w)) for m, w in locations.items()) if w is not None
            }
            for w in self.locations.values():
                w["file"] = self._worker.original_path(w["file"])

    @contextmanager
    def batch(self, member: str, calls: list[tuple], kwargs: dict) -> Iterator[None]:
        """Send ``calls`` of ``member`` (each a tuple of positional arguments, all with
        ``kwargs``) to the worker in one message; the next ``len(calls)`` calls of
        ``member`` through this object take their replies in order, each with its own time
        limit, instead of sending. Replies left unread at the end are read and dropped."""
        self._worker.send("calls", member, calls, kwargs)
        self._pending = [member] * len(calls)
        try:
            yield
        finally:
            unread, self._pending = len(self._pending), []
            for _ in range(unread):  # a worker lost meanwhile raises WorkerLost here
                self._worker.reply(member)

    def _call(self, member: str, *args: Any, **kwargs: Any) -> Any:
        if self._pending and self._pending[-1] == member:
            self._pending.pop()
            reply = self._worker.reply(member)
        else:
            reply = self._worker.call(member, args, kwargs)
        if not reply.get("ok"):
            kind = reply.get("kind")
            text = reply.get("text")
            where = _where(reply.get("where"))
            if where is not None:
                where["file"] = self._worker.original_path(where["file"])
            raise RemoteFailure(
                kind if kind in KINDS else "raised",
                self._worker.original_text(str(text)[:2000] if text is not None else "failed"),
                str(reply.get("exception", ""))[:200],
                where,
            )
        _mirror(args, reply.get("after"))
        _mirror(kwargs, reply.get("after_keywords"))  # the guard's copies of activations, cost
        return reply.get("value")

    def __repr__(self) -> str:
        return f"<{self.__name__}, in a worker process>"
