"""What a guarded call may not do to the harness's process, and how its failures read.

:func:`contained` runs a call with ``os._exit`` refused, NumPy's error handling restored
afterwards and, where it can (POSIX, the main thread), a time limit armed with SIGALRM;
:func:`finding_of` turns whatever the call raised into a :class:`~.findings.Finding`.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .findings import Finding, RemoteFailure, user_frame
from .layouts import StructureError

_os_exit = os._exit


class _TimeLimit(BaseException):
    """The guarded call ran past :attr:`Guarded.time_limit` (raised by a SIGALRM handler)."""


def _alarm(signum: int, frame: Any) -> None:
    raise _TimeLimit()


class _ProcessExit(SystemExit):
    """``os._exit`` called by the implementation inside a guarded call."""


def _refuse_exit(status: int) -> None:
    raise _ProcessExit(status)


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, _ProcessExit):
        return f"called os._exit({exc.code!r})"
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc)
    return f"raised {type(exc).__name__}" + (f": {text}" if text else "")


@contextmanager
def contained(time_limit: float | None) -> Iterator[None]:
    """Run the body with ``os._exit`` refused (in this process it would end the harness's run
    too) and NumPy's error handling restored after it; with ``time_limit`` (seconds; POSIX,
    main thread) a SIGALRM raises :class:`_TimeLimit` in it after that long."""
    np_state = np.geterr()
    os._exit = _refuse_exit
    timed = (
        time_limit is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if timed:
        previous = signal.signal(signal.SIGALRM, _alarm)
        # repeating: code with a bare ``except:`` that swallows one alarm gets the next
        signal.setitimer(signal.ITIMER_REAL, time_limit, min(time_limit, 1.0))
    try:
        yield
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        os._exit = _os_exit
        np.seterr(**np_state)


def finding_of(exc: BaseException, member: str, network: str, time_limit: float | None) -> Finding:
    """What an exception raised by (or through) a guarded call of ``member`` says: a worker's
    own report (:class:`~.findings.RemoteFailure`), a time-out, a layout adapter's structure
    check, an exit, ``NotImplementedError`` (unsupported) or any other exception."""
    if isinstance(exc, RemoteFailure):  # what the worker said of its own exception
        return Finding(exc.kind, member, exc.text, network, exc.exception, exc.where)
    if isinstance(exc, StructureError):  # a layout adapter's check, in the user's terms
        return Finding("structure", member, str(exc), network)
    where = user_frame(exc.__traceback__)
    if isinstance(exc, _TimeLimit):
        return Finding("timeout", member, f"did not return within {time_limit:g} s (an "
                       "endless loop or a very slow call)", network, where=where)  # fmt: skip
    return Finding(_kind(exc), member, _describe_exception(exc), network, type(exc).__name__, where)


def _kind(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return "exit"
    if isinstance(exc, NotImplementedError):
        return "unsupported"
    return "raised"
