"""The worker's process, from outside: starting it (:func:`_popen`), ending it with its
whole session and every process that carries its token (:func:`_kill_group`,
:func:`_sweep`), and reading how it ended or where it hung (:func:`_signal_name`,
:func:`_stuck_at`).
"""

from __future__ import annotations

import linecache
import os
import re
import signal
import subprocess
import time
from typing import Any

from .findings import _is_library

TOKEN = "BACKPROP_WORKER_TOKEN"
"""The variable that marks a worker's processes, so that its children are found and ended."""


class LoadFailed(Exception):
    """The implementation could not be loaded in the worker; the message says why."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _stuck_at(dump: str) -> dict[str, Any] | None:
    """The innermost user frame of the current thread in a faulthandler dump."""
    block = dump.split("Current thread", 1)[-1].split("\n\n", 1)[0]
    for file, line, function in re.findall(r'File "([^"]+)", line (\d+) in (\S+)', block):
        if not _is_library(file):
            code = linecache.getline(file, int(line)).strip()
            return {"file": file, "line": int(line), "code": code, "function": function}
    return None


def _popen(command: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen``, a start that fails (the interpreter not readable by ``user``)
    a :class:`LoadFailed` that says so."""
    try:
        return subprocess.Popen(command, **kwargs)
    except OSError as exc:
        who = f" as user id {kwargs['user']}" if "user" in kwargs else ""
        raise LoadFailed(
            f"cannot start the worker process{who}: {exc.strerror or exc} ({exc.filename}); "
            "the Python interpreter, the harness and the working copy must be readable by "
            "that user"
        ) from None


def _kill_group(pid: int) -> None:
    """Kill the worker's session (its process group: it leads one of its own)."""
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


def _sweep(token: str) -> int:
    """Kill every process whose environment carries the worker's ``token`` (children that
    left its process group, daemons included); how many. Linux's ``/proc`` only; elsewhere
    the process group is all."""
    mark = f"{TOKEN}={token}".encode()
    killed = 0
    for _ in range(3):  # a process may fork while being looked for: look again
        found = 0
        try:
            entries = os.listdir("/proc")
        except OSError:
            return killed
        for entry in entries:
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    environ = fh.read()
            except OSError:
                continue
            if mark in environ.split(b"\0"):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                    found += 1
                except (ProcessLookupError, PermissionError):
                    pass
        killed += found
        if not found:
            break
        time.sleep(0.05)
    return killed
