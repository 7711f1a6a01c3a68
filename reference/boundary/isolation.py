"""The implementation under test in a worker process of its own; the judge stays here.

:class:`Worker` starts a process (:mod:`.server`) that loads the implementation and does
nothing else: it answers calls of the protocol's members. Here, :meth:`Worker.run` runs a
job (``job(guarded, *args)``, the same jobs :class:`~reference.run.runner.InProcess`
runs) in *this* process, on a :class:`~reference.boundary.guard.Guarded` whose
implementation is a :class:`RemoteImpl`: each member call is one message to the worker and
one back. So the oracles, the comparisons, the checks, the scores and the reports are all
computed here, from plain data (:mod:`.wire`) the worker sends; nothing the code under test
does in its own process reaches them.

The parent watches every call: one that runs past ``timeout`` seconds is a hang (the
worker's ``faulthandler`` is asked for its stack, which names the file and line the code
was stuck on, then the worker is killed) and a worker that dies (``os._exit``, a segfault,
a kill) is a crash. Either ends the job with a :class:`Failed` carrying the finding, and the
next job gets a fresh worker, so one network's hang costs only that network.

The worker runs in its own session (a process group of its own), killed whole when it is
done, with every process that carries its token in its environment; its environment holds
no secret of the harness's (:data:`SECRETS`; under a grading :class:`~.policy.Policy`, only
:data:`KEPT` variables). With ``copy`` (grading) its working directory is a fresh
temporary copy of the submission alone, so a classmate's files are out of reach by relative
path and a ``jax.py`` or ``numpy.py`` there shadows only its author's own imports.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .findings import Finding, WorkerLost
from .guard import Guarded
from .policy import Policy
from .processes import TOKEN, LoadFailed, _kill_group, _popen, _signal_name, _stuck_at, _sweep
from .remote import RemoteImpl
from .wire import MAX_MESSAGE, UnsafeMessage, loads

_GRACE = 0.5
"""Seconds the parent lets faulthandler write the stack before killing a hung worker."""
IMPORT_TIME = 60.0
"""The least time a module's import is given, whatever the per-call limit: an import may
load heavy libraries of the code's own (a worker imports nothing heavy of the harness's,
so all of this is the code's), and a per-call limit of a few seconds is meant for calls."""
SECRETS = ("BACKPROP_HIDDEN_SEED",)
"""Environment variables never passed to a worker (the hidden networks' seed)."""
KEPT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
KEPT_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "NPY_")
"""What a grading worker's environment keeps: the locale, the path, and the BLAS and NumPy
settings of the machine (some machines need OPENBLAS_CORETYPE to compute right)."""
_ROOT = str(Path(__file__).resolve().parent.parent.parent)
"""The folder that holds the ``reference`` package the worker imports its server from."""
_BOOT = "import sys; sys.path[0] = {root!r}; from reference.boundary.server import main; main({fd})"


@dataclass
class Failed:
    """A job that did not come back: the worker hung in a call or died."""

    finding: Finding


class Worker:
    """An implementation, named by ``spec`` (``package.module[:object]`` or a path), in its
    own process; :meth:`run` runs a job here on it. Use as a context manager, or call
    :meth:`close`.

    ``timeout``: the limit on each call into the implementation, in seconds (its import gets
    at least :data:`IMPORT_TIME`, within the ``budget``). ``policy``: what the worker may do
    (:class:`~.policy.Policy`; the default limits nothing). ``copy``: a file or folder that
    holds the implementation ``spec`` names by path; the worker runs in a fresh temporary
    copy of it alone (grading). ``user``: the user to run it as (when the harness runs as
    root). ``budget``: seconds for all its calls together, counted while a call is in the
    worker (the harness's own work between calls is not the submission's time)."""

    def __init__(
        self,
        spec: str,
        timeout: float = 60.0,
        *,
        policy: Policy | None = None,
        copy: str | Path | None = None,
        user: str | None = None,
        budget: float | None = None,
    ) -> None:
        if not isinstance(spec, str):  # the worker process imports it: it needs a path
            raise TypeError(
                f"Worker needs a module path such as 'package.module' or 'package.module:object', "
                f"got {type(spec).__name__}: the worker process imports the implementation by "
                "its path, so functions defined in a notebook or a script cannot travel there; "
                "check them in this process (check_gradients, run_all, jobs.InProcess), or save "
                "them in a module"
            )
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget must be > 0 seconds or None, got {budget!r}")
        self.spec = spec
        self.budget = budget
        """Seconds for all the implementation's calls together (None: no limit)."""
        self.busy = 0.0
        """Seconds spent so far waiting on the implementation (its import and its calls)."""
        self.timeout = float(timeout)
        self.policy = policy or Policy()
        self.user = user
        self._dir = tempfile.TemporaryDirectory(prefix="backprop-check-")
        scratch = Path(self._dir.name)
        self.output = scratch / "output.txt"
        self.output.touch()
        self._dump = scratch / "stack.txt"
        self._copy: tuple[str, str] | None = None  # (the copy's folder, the original's)
        self._spec, self._cwd = spec, os.getcwd()
        if copy is not None:
            self._spec, self._cwd = self._copied(spec, Path(copy), scratch / "work")
        if user is not None:
            shutil.chown(scratch, user)
            os.chmod(scratch, 0o755)
            shutil.chown(self.output, user)
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._remote: RemoteImpl | None = None
        self._guarded: Guarded | None = None
        self.name = spec
        self.declared: Any = None
        """The implementation's ``SUPPORTS``, as a :class:`~reference.inputs.scope.Scope`."""
        self.layout: str | None = None
        """The layout the implementation is checked in (:meth:`use_layout`); None: the seed's."""
        self.restarts = 0
        self.requests = 0
        """Messages sent to the worker (a batch of calls is one)."""
        self.warnings = 0
        """How many warnings the implementation's calls raised (counted, not printed)."""
        self.violations: list[str] = []
        """What the worker's policy refused, as the worker reported it (:mod:`.policy`)."""

    # -- where it runs ------------------------------------------------------------------------

    def _copied(self, spec: str, source: Path, work: Path) -> tuple[str, str]:
        """Copy ``source`` (a file, or a folder with everything in it) into ``work``; the
        spec there, and the folder to run in."""
        path_text, colon, attr = spec.partition(":")
        named = Path(path_text).expanduser().resolve()
        source = source.expanduser().resolve()
        if not source.exists():
            raise LoadFailed(f"cannot import {spec!r}: no such file or directory: {source}")
        if named != source and source not in named.parents:
            raise ValueError(f"copy: {str(source)!r} does not hold the implementation {spec!r}")
        work.mkdir()
        target = work / source.name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=False, ignore=shutil.ignore_patterns(
                "__pycache__", ".git"))  # fmt: skip
        else:
            shutil.copy2(source, target)
        self._copy = (str(work), str(source.parent))
        if self.user is not None:
            for folder, dirs, files in os.walk(work):
                for name in (folder, *(os.path.join(folder, f) for f in dirs + files)):
                    shutil.chown(name, self.user)
        return str(target / named.relative_to(source)) + colon + attr, str(work)

    def original_path(self, path: str) -> str:
        """``path`` in the worker's copy, as the original file's path."""
        if self._copy is not None and path.startswith(self._copy[0] + os.sep):
            return self._copy[1] + path[len(self._copy[0]) :]
        return path

    def original_text(self, text: str) -> str:
        """``text`` with the copy's folder named as the original's."""
        return text.replace(self._copy[0], self._copy[1]) if self._copy is not None else text

    def _environment(self, token: str) -> dict[str, str]:
        if self.policy.strict:
            env = {k: v for k, v in os.environ.items() if k in KEPT or k.startswith(KEPT_PREFIXES)}
            env["HOME"] = env["TMPDIR"] = self._cwd
        else:
            env = {k: v for k, v in os.environ.items() if k not in SECRETS}
        env[TOKEN] = token
        return env

    # -- life -----------------------------------------------------------------------------------

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the process and load the implementation; :class:`LoadFailed` if it cannot be."""
        from ..inputs.scope import Scope, ScopeError

        self._token = secrets.token_hex(12)
        self._sent = self._answered = 0  # calls numbered, and answers read, in this worker
        mine, theirs = socket.socketpair()
        with open(self.output, "ab") as out:
            try:
                self._proc = _popen(
                    # -u: what the code prints is in the file when the harness reads it
                    [sys.executable, "-u", "-c", _BOOT.format(root=_ROOT, fd=theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    cwd=self._cwd,
                    env=self._environment(self._token),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **self._identity(),
                )
            finally:
                theirs.close()
        self._conn = Connection(mine.detach())
        config = {
            "spec": self._spec,
            "cwd": self._cwd,
            "dump": str(self._dump),
            "policy": self.policy.to_dict(),
        }
        limit = max(self.timeout, IMPORT_TIME)
        if self.budget is not None:  # an import counts against the whole grading's wall time
            limit = min(limit, self.budget - self.busy)
        started = time.monotonic()
        try:
            self._conn.send(config)
            reply = self._receive("import", limit)
        except WorkerLost as lost:
            self.busy += time.monotonic() - started
            self._stop()
            finding = lost.finding
            if finding.kind == "timeout" and self.spent():  # the budget, not the import's time
                finding = self.over_budget("import")
            raise LoadFailed(f"cannot import {self.spec!r}: {finding.message}") from None
        self.busy += time.monotonic() - started
        status = reply[0] if isinstance(reply, tuple) and reply else None
        if status == "load failed" and len(reply) == 3:
            self._note_violations(reply[2])
            self._stop()
            raise LoadFailed(self.original_text(str(reply[1])[:2000]))
        if status != "ready" or len(reply) != 2 or not isinstance(reply[1], dict):
            self._stop()
            raise LoadFailed(f"cannot import {self.spec!r}: the worker's reply was not understood")
        ready = reply[1]
        self._note_violations(ready.get("violations"))
        if self._remote is None:
            self._remote = RemoteImpl(self, ready)
            self._guarded = Guarded(self._remote, self._remote.__name__)
            self.name = self._guarded.name
            try:
                self.declared = Scope.read(self._remote.SUPPORTS, f"{self.spec}.SUPPORTS")
            except ScopeError as exc:
                self._stop()
                raise LoadFailed(str(exc)) from None
            if self.layout is not None:
                self._guarded.use_layout(self.layout)
        else:
            self._remote.update_ready(ready)

    def _identity(self) -> dict[str, Any]:
        """Popen's keywords that start the worker as :attr:`user`, with that user's group
        and no other (none when no user is given)."""
        if self.user is None:
            return {}
        import pwd

        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            raise LoadFailed(f"user {self.user!r}: no such user on this machine") from None
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _note_violations(self, found: Any) -> None:
        if isinstance(found, list):
            for text in found:
                text = self.original_text(str(text)[:500])
                if text not in self.violations:
                    self.violations.append(text)

    @property
    def guarded(self) -> Guarded:
        """The implementation behind the boundary, its calls going to the worker."""
        if self._guarded is None:
            self.start()
        assert self._guarded is not None
        return self._guarded

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        """``job(guarded_impl, *args)`` here, its calls into the implementation made in the
        worker; a :class:`Failed` when the worker hung or died in one. A worker lost that
        way is replaced before the next job."""
        if self.spent():
            return Failed(self.over_budget("the implementation"))
        if self._proc is None or self._proc.poll() is not None:
            self.restarts += self._proc is not None
            self.start()
        try:
            return job(self.guarded, *args)
        except WorkerLost as lost:
            self._stop()
            return Failed(lost.finding)

    def use_layout(self, layout: str) -> None:
        """Check the implementation as written in ``layout`` (:mod:`.layouts`)."""
        self.layout = layout
        if self._guarded is not None:
            self._guarded.use_layout(layout)

    # -- one call -----------------------------------------------------------------------------

    def call(self, member: str, args: tuple, kwargs: dict) -> dict[str, Any]:
        """One member's call in the worker: the worker's reply, checked to be a dict.
        Raises :class:`~reference.boundary.guard.WorkerLost` on a hang or a death."""
        self.send("call", member, args, kwargs)
        return self.reply(member)

    def send(self, kind: str, member: str, args: Any, kwargs: dict) -> None:
        """Send one request to the worker: a ``"call"`` of ``member`` on ``args``, or
        ``"calls"``, one for each tuple in ``args`` (:meth:`reply` reads each call's
        answer). Each call is numbered; its answer must carry the number."""
        if self.spent():
            raise WorkerLost(self.over_budget(member))
        if self._proc is None or self._proc.poll() is not None or self._conn is None:
            raise WorkerLost(Finding("crash", member, "ended the worker process before the call"))
        count = len(args) if kind == "calls" else 1
        try:
            self._conn.send((kind, member, args, kwargs, self._sent))
        except (OSError, ValueError):
            raise WorkerLost(self._died(member)) from None
        self._sent += count
        self.requests += 1

    def reply(self, member: str) -> dict[str, Any]:
        """The worker's answer to the next call of ``member`` sent, checked to be a dict;
        the call has :attr:`timeout` seconds (and what is left of the :attr:`budget`)."""
        if self.spent():
            raise WorkerLost(self.over_budget(member))
        limit = self.timeout
        if self.budget is not None:
            limit = min(limit, self.budget - self.busy)
        started = time.monotonic()
        try:
            reply = self._receive(member, limit)
        except WorkerLost as lost:
            self.busy += time.monotonic() - started
            if lost.finding.kind == "timeout" and self.spent():  # the budget, not the call
                raise WorkerLost(self.over_budget(member, lost.finding.where)) from None
            raise
        except BaseException:  # interrupted while the worker works: its answer would be
            self._stop()  # read as the next call's, so this worker is done
            raise
        self.busy += time.monotonic() - started
        if not isinstance(reply, dict) or reply.get("seq") != self._answered:
            self._stop()
            raise WorkerLost(Finding("crash", member, "broke the worker's protocol (a reply "
                                     "that is not the one to this call)"))  # fmt: skip
        self._answered += 1
        count = reply.get("warnings")
        if isinstance(count, int) and count > 0:
            self.warnings += count
        self._note_violations(reply.get("violations"))
        return reply

    def spent(self) -> bool:
        """Whether the implementation has used up its :attr:`budget`."""
        return self.budget is not None and self.busy >= self.budget

    def over_budget(self, member: str, where: dict[str, Any] | None = None) -> Finding:
        """The finding of a call cut short, or not made, because the budget ran out."""
        return Finding(
            "wall_limit",
            member,
            f"ran past the wall-time limit of {self.budget:g} s for the whole grading (all "
            "of its calls together); what was left was not graded",
            where=where,
        )

    def _receive(self, member: str, limit: float | None = None) -> Any:
        assert self._proc is not None and self._conn is not None
        limit = self.timeout if limit is None else limit
        deadline = time.monotonic() + limit
        while True:
            try:
                ready = self._conn.poll(min(0.05, max(0.0, deadline - time.monotonic())))
            except (OSError, ValueError):
                raise WorkerLost(self._died(member)) from None
            if ready:
                try:
                    data = self._conn.recv_bytes(MAX_MESSAGE)
                except (EOFError, OSError):
                    raise WorkerLost(self._died(member)) from None
                try:
                    return loads(data)
                except UnsafeMessage as exc:
                    self._stop()
                    raise WorkerLost(
                        Finding("crash", member, f"broke the worker's protocol: {exc}")
                    ) from None
            if self._proc.poll() is not None:
                raise WorkerLost(self._died(member))
            if time.monotonic() >= deadline:
                raise WorkerLost(self._hung(member, limit))

    def _died(self, member: str) -> Finding:
        assert self._proc is not None
        try:
            code = self._proc.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        how = (
            f"was killed by {_signal_name(code)}"
            if code is not None and code < 0
            else f"ended the process with exit status {code} (os._exit or a fatal error)"
        )
        return Finding("crash", member if member != "import" else "the implementation", how)

    def _hung(self, member: str, limit: float) -> Finding:
        assert self._proc is not None
        self._dump.write_text("")
        try:
            os.kill(self._proc.pid, signal.SIGUSR1)
        except (ProcessLookupError, PermissionError):
            pass
        time.sleep(_GRACE)
        where = _stuck_at(self._dump.read_text(errors="replace"))
        if where is not None:
            where["file"] = self.original_path(where["file"])
        self._stop()
        return Finding(
            "timeout",
            member,
            f"did not return within {limit:g} s (an endless loop or a very slow call)",
            where=where,
        )

    # -- the end --------------------------------------------------------------------------------

    def kill(self) -> None:
        """End the worker process now; safe from another thread. The call it was running
        comes back as a crash, and the next job starts a fresh worker."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _kill_group(proc.pid)

    def _stop(self) -> None:
        proc = self._proc
        if proc is not None:
            _kill_group(proc.pid)
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                pass
            _sweep(self._token)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """End the worker process, every process it started, and remove its files."""
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            try:
                self._conn.send(None)
                self._proc.wait(2.0)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self._stop()
        self._dir.cleanup()

    def printed(self) -> list[str]:
        """What the implementation wrote to stdout and stderr so far, line by line."""
        try:
            text = self.output.read_text(errors="replace")
        except OSError:
            return []
        return self.original_text(text).splitlines()
