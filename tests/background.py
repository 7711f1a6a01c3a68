"""Commands the tests run in child processes (the shipped suite, ``backprop-check``), started
when the session's tests are collected and run beside the tests of this process, so that a
test that checks a command's output finds the command done instead of starting it and
waiting.

A test declares what it will wait on with the ``background`` marker, whose ``declare`` is a
function of the test's item and a folder of the session's that returns the commands (:class:`Command`, each under a key);
:func:`start` (called by ``conftest.py`` once collection is done) starts the commands of the
selected tests, one at a time, in the order the tests run; the test takes its command's
result with the ``background`` fixture (``background.result(key)``). A command not yet
started when its test asks runs at once in the test's own thread (so does every command in a
pytest-xdist worker, where the workers share the tests out). The command is the same,
and so is what is asserted on its output: only the moment it runs changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SAFETY_NET = 900
"""Seconds a command may run: a safety net against a run that never ends, generous enough
for a machine at load 8; never a criterion of speed."""


@dataclass(frozen=True)
class Command:
    """``argv`` run in ``cwd`` with the environment ``env``; ``prepare`` (if given) makes
    its working directory first, in the thread that runs it."""

    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str] = field(hash=False, compare=False)
    prepare: Callable[[], None] | None = field(default=None, hash=False, compare=False)


def once(prepare: Callable[[], None]) -> Callable[[], None]:
    """``prepare``, for commands that share a working directory: the first call runs it,
    the others (from any thread) wait for that one."""
    lock, done = threading.Lock(), []

    def prepared() -> None:
        with lock:
            if not done:
                prepare()
                done.append(True)

    return prepared


def run(command: Command) -> subprocess.CompletedProcess:
    """``command``, waited for; its output through files, so no child waits on a full pipe."""
    if command.prepare is not None:
        command.prepare()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            command.argv, cwd=command.cwd, env=command.env, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            proc.wait(timeout=SAFETY_NET)
        finally:
            if proc.poll() is None:  # past the safety net, or interrupted: end it
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(command.argv, proc.returncode, out.read(), err.read())


def pytest_command(
    where: Path, label: str, *args: str, files: dict[str, str], **env: str
) -> Command:
    """``python -m pytest *args`` in ``where`` as pytester's ``runpytest_subprocess`` runs it
    (``where`` first on PYTHONPATH, its own HOME, no PYTEST_ADDOPTS, no colours, a base
    temporary folder of its own named by ``label``), ``files`` (name: text, dedented) written
    there first; ``env``: variables set on top (an empty value: left out)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TOX_ENV_DIR", "PYTEST_ADDOPTS")}
    environ.update(HOME=str(where), USERPROFILE=str(where), PY_COLORS="0")
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(where), environ.get("PYTHONPATH")]))
    environ.update(env)
    environ = {k: v for k, v in environ.items() if v}

    def prepare() -> None:
        where.mkdir()
        for name, text in files.items():
            (where / name).write_text(textwrap.dedent(text).lstrip("\n"))

    argv = (sys.executable, "-mpytest", f"--basetemp={where / ('basetemp-' + label)}", *args)
    return Command(argv, where, environ, prepare)


class Background:
    """The session's background commands, by key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        """A folder of the session's for the commands' working directories."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
        self._commands: dict[object, Command] = {}
        self._futures: dict[object, Future] = {}
        self._lock = threading.Lock()

    def submit(self, key: object, command: Command, start: bool = True) -> None:
        """Queue ``command`` under ``key`` (a key already queued keeps its command); with
        ``start`` false, only keep it for its test to run."""
        with self._lock:
            if key in self._commands:
                return
            self._commands[key] = command
            if start:
                self._futures[key] = self._pool.submit(run, command)

    def result(self, key: object) -> subprocess.CompletedProcess:
        """The finished command of ``key``: waited for if it runs, run here if it has not
        started."""
        with self._lock:
            if key not in self._commands:
                raise KeyError(f"no background command {key!r}: mark the test with it")
            command, future = self._commands[key], self._futures.get(key)
        # not started yet (or kept for this test): run it now rather than wait for the queue
        if future is None or future.cancel():
            return run(command)
        return future.result()

    def run_result(self, key: object) -> pytest.RunResult:
        """:meth:`result` as pytester's :class:`pytest.RunResult` (for ``assert_outcomes``
        and ``fnmatch_lines``)."""
        done = self.result(key)
        return pytest.RunResult(done.returncode, done.stdout.splitlines(),
                                done.stderr.splitlines(), 0.0)  # fmt: skip

    def close(self) -> None:
        """Forget what was not started; wait for what runs."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def start(background: Background, items: list[pytest.Item], now: bool = True) -> None:
    """Queue the commands the ``background`` markers of ``items`` declare, in their order;
    with ``now`` false (a pytest-xdist worker, which collects every test but runs only
    some), keep them for their tests to run."""
    for item in items:
        for marker in item.iter_markers("background"):
            for key, command in marker.kwargs["declare"](item, background.root).items():
                background.submit(key, command, start=now)
