"""The implementation under test in a worker process, with a time limit on every call.

:class:`Worker` starts a process (``multiprocessing``, spawn: nothing of the
parent's state or threads is inherited), loads the implementation there behind
the boundary (:class:`~reference.boundary.guard.Guarded`), and runs jobs in it
one at a time: a job is a module-level function called as ``job(guarded, *args)``
whose result travels back by pickle. What the implementation prints, at import
or later, goes to a file (:attr:`Worker.output`), never to the terminal.

The parent watches every call into the implementation: the guard writes the
member's code and start time into shared memory before each call and clears it
after. A call that runs past ``timeout`` seconds is a hang: the parent asks the
worker's ``faulthandler`` for its stack (which names the file and line the code
under test was stuck on), kills the process and reports a ``timeout``
:class:`~reference.boundary.guard.Finding`. A worker that dies (``os._exit``, a
segfault, a kill) is a ``crash`` finding. Either way the next job gets a fresh
worker, so one network's hang costs only that network.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .guard import MEMBERS, Finding, Guarded, guard

_CODES = ("import", *MEMBERS)
"""What the shared slot's first entry (an index, -1 when idle) says the worker is running."""
_GRACE = 0.5
"""Seconds the parent lets faulthandler write the stack before killing a hung worker."""


class LoadFailed(Exception):
    """The implementation could not be loaded in the worker; the message says why."""


@dataclass
class Failed:
    """A job that did not come back: the worker hung in a call or died."""

    finding: Finding


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _stuck_at(dump: str) -> dict[str, Any] | None:
    """The innermost user frame of the current thread in a faulthandler dump."""
    from .guard import _is_library

    block = dump.split("Current thread", 1)[-1].split("\n\n", 1)[0]
    for file, line, function in re.findall(r'File "([^"]+)", line (\d+) in (\S+)', block):
        if not _is_library(file):
            import linecache

            code = linecache.getline(file, int(line)).strip()
            return {"file": file, "line": int(line), "code": code, "function": function}
    return None


def _serve(
    conn, spec: str, cwd: str, slot, dump_path: str, out_path: str, layout: str | None
) -> None:
    """The worker's main loop (runs in the child process)."""
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    dump = open(dump_path, "w")
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # as python -m does: a module in the current directory loads

    import warnings

    import numpy as np

    from .loading import ImplementationError, load_impl

    def on_call(member: str | None) -> None:
        slot[0] = -1.0 if member is None else float(_CODES.index(member))
        slot[1] = time.monotonic()

    np_state, filters = np.geterr(), list(warnings.filters)
    on_call("import")
    try:
        from ..registry import load_entry_points

        load_entry_points()  # the tables as the parent sees them, through the entry points
        impl = load_impl(spec)
    except ImplementationError as exc:
        conn.send(("load failed", str(exc)))
        return
    except BaseException as exc:  # the module itself failed: say how, briefly
        conn.send(("load failed", _import_failure(spec, exc)))
        return
    finally:
        on_call(None)
        np.seterr(**np_state)  # what the module set at import stays out of the harness
        warnings.filters[:] = filters
    from ..inputs.scope import Scope, ScopeError

    try:
        declared = Scope.read(getattr(impl, "SUPPORTS", None), f"{spec}.SUPPORTS")
    except ScopeError as exc:
        conn.send(("load failed", str(exc)))
        return
    guarded = guard(impl, spec)
    guarded.on_call = on_call
    if layout is not None:
        guarded.use_layout(layout)
    conn.send(("ready", (guarded.name, declared)))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, args = job
        conn.send(("done", fn(guarded, *args)))


def _import_failure(spec: str, exc: BaseException) -> str:
    from .guard import _describe_exception, user_frame

    if isinstance(exc, SyntaxError):
        return f"cannot import {spec!r}: syntax error at {exc.filename}:{exc.lineno}: {exc.msg}"
    where = user_frame(exc.__traceback__)
    text = f"cannot import {spec!r}: the module {_describe_exception(exc)} at import"
    if where:
        text += f" (at {where['file']}:{where['line']}: {where['code']})"
    return text


class Worker:
    """An implementation, named by ``spec`` (``package.module[:object]``), in its own
    process; :meth:`run` calls a job there. Use as a context manager, or call
    :meth:`close`. ``timeout`` is the limit on each call into the implementation
    (and on its import), in seconds."""

    def __init__(self, spec: str, timeout: float = 60.0) -> None:
        if not isinstance(spec, str):  # the spawned process imports it: it needs a path
            raise TypeError(
                f"Worker needs a module path such as 'package.module' or 'package.module:object', "
                f"got {type(spec).__name__}: the worker process imports the implementation by "
                "its path, so functions defined in a notebook or a script cannot travel there; "
                "check them in this process (check_gradients, run_all, jobs.InProcess), or save "
                "them in a module"
            )
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.spec = spec
        self.timeout = float(timeout)
        self._dir = tempfile.TemporaryDirectory(prefix="backprop-check-")
        self.output = Path(self._dir.name) / "output.txt"
        self.output.touch()
        self._dump = Path(self._dir.name) / "stack.txt"
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self.name = spec
        self.declared: Any = None
        """The implementation's ``SUPPORTS``, read in the worker (a :class:`Scope`)."""
        self.layout: str | None = None
        """The layout the implementation is checked in (:meth:`use_layout`); None: the seed's."""
        self.restarts = 0

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the process and load the implementation; :class:`LoadFailed` if it cannot be."""
        self._slot = self._ctx.Array("d", [-1.0, 0.0], lock=False)
        self._conn, child = self._ctx.Pipe()
        args = (child, self.spec, os.getcwd(), self._slot, str(self._dump), str(self.output))
        self._proc = self._ctx.Process(target=_serve, args=(*args, self.layout), daemon=True)
        self._proc.start()
        child.close()
        reply = self._wait()
        if isinstance(reply, Failed):
            self._stop()
            raise LoadFailed(f"cannot import {self.spec!r}: {reply.finding.message}")
        status, value = reply
        if status == "load failed":
            self._stop()
            raise LoadFailed(value)
        self.name, self.declared = value

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        """``job(guarded_impl, *args)`` in the worker; a :class:`Failed` when it hung or died.
        A worker lost that way is replaced before the next job."""
        if self._proc is None or not self._proc.is_alive():
            self.restarts += self._proc is not None
            self.start()
        self._conn.send((job, args))
        reply = self._wait()
        if isinstance(reply, Failed):
            self._stop()
            return reply
        return reply[1]

    def use_layout(self, layout: str) -> None:
        """Check the implementation as written in ``layout`` (:mod:`.layouts`), in this worker
        and in every one that replaces it after a hang or a crash."""
        self.layout = layout
        if self._proc is not None and self._proc.is_alive():
            self.run(Guarded.use_layout, layout)

    def _wait(self) -> Any:
        while True:
            if self._conn.poll(0.02):
                try:
                    return self._conn.recv()
                except (EOFError, OSError):
                    pass  # the worker died while sending: reported below
            code, started = self._slot[0], self._slot[1]
            if not self._proc.is_alive() or (code < 0 and self._proc.exitcode is not None):
                return Failed(self._died(int(code)))
            if code >= 0 and time.monotonic() - started > self.timeout:
                return Failed(self._hung(int(code)))

    def _member(self, code: int) -> str:
        return _CODES[code] if code >= 0 else "the implementation"

    def _died(self, code: int) -> Finding:
        self._proc.join(1.0)
        exit = self._proc.exitcode
        how = (
            f"was killed by {_signal_name(exit)}"
            if exit is not None and exit < 0
            else f"ended the process with exit status {exit} (os._exit or a fatal error)"
        )
        return Finding("crash", self._member(code), how)

    def _hung(self, code: int) -> Finding:
        self._dump.write_text("")
        try:
            os.kill(self._proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        time.sleep(_GRACE)
        where = _stuck_at(self._dump.read_text(errors="replace"))
        return Finding(
            "timeout",
            self._member(code),
            f"did not return within {self.timeout:g} s (an endless loop or a very slow call)",
            where=where,
        )

    def kill(self) -> None:
        """End the worker process now; safe from another thread. The job it was running
        comes back as a crash, and the next job starts a fresh worker."""
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.kill()

    def _stop(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
        if self._proc is not None:
            self._proc.join(5.0)

    def close(self) -> None:
        """End the worker process and remove its files."""
        if self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(2.0)
            except (OSError, BrokenPipeError):
                pass
        self._stop()
        self._dir.cleanup()

    def printed(self) -> list[str]:
        """What the implementation wrote to stdout and stderr so far, line by line."""
        try:
            return self.output.read_text(errors="replace").splitlines()
        except OSError:
            return []
