"""A pytest plugin that measures the suite without its processes: what the tests that start
no process cost on their own, the floor under any selection of the suite that keeps them.

    CI=true /usr/bin/time python -m pytest -p benchmarks.in_process -p no:cacheprovider -q
    CI=true /usr/bin/time python -m pytest -p benchmarks.in_process -p no:cacheprovider -q -n 2

Once collection is done, starting a process (``os.fork``, ``os.forkpty``, ``os.posix_spawn``,
``os.system`` and the ``fork_exec`` behind ``subprocess`` and ``multiprocessing``) raises
pytest's skip: a test that starts one, in its body or in a fixture, is reported skipped,
"starts a process", and a fixture that does is not run again for each test that asks for it. A
test whose process start was refused and the refusal swallowed (by an ``except BaseException``
of its own or of the harness's, or in a thread) is reported skipped too. The tests with the
``background`` marker (``tests/background.py``) have their commands started when collection
ends; they are deselected. Time it with ``/usr/bin/time``: with no process started, its user
and system time are the tests' (and pytest-xdist's workers', which start before collection).
The patched functions are put back when the session ends. A test whose fixture starts a process
in its teardown counts as passed and skipped both.

Measurement only: the tests' own verdicts are those of ``python -m pytest``."""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess
from collections.abc import Generator
from typing import Any

import pytest

_SAVED = pytest.StashKey[list[tuple[Any, str, Any]]]()
REASON = "starts a process"
_refused: list[str] = []
"""The refusals in the running phase of a test (setup, call, teardown), kept for a refusal
that was caught before pytest saw it."""


def _refuse(*args: Any, **kwargs: Any) -> Any:
    """Stands for every function that starts a process: pytest's skip (a BaseException, so
    ``except Exception`` in the code under test does not hide it), reported as one in any
    phase and at the test's own line (pytest's ``_use_item_location``, ``_pytest/outcomes.py``)."""
    _refused.append(REASON)
    raise pytest.skip.Exception(REASON, _use_item_location=True)


_PATCHED = (
    (_posixsubprocess, "fork_exec"),
    (subprocess, "_fork_exec"),  # subprocess keeps its own name for it
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "system"),
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    background = [item for item in items if item.get_closest_marker("background")]
    if background:
        config.hook.pytest_deselected(items=background)
        items[:] = [item for item in items if not item.get_closest_marker("background")]
    saved = [
        (owner, name, getattr(owner, name)) for owner, name in _PATCHED if hasattr(owner, name)
    ]
    config.stash[_SAVED] = saved
    for owner, name, _ in saved:
        setattr(owner, name, _refuse)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    outcome = yield
    report = outcome.get_result()
    if _refused and not report.skipped:  # refused in this phase, and the refusal caught
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {REASON}")
    _refused.clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    for owner, name, value in config.stash.get(_SAVED, []):
        setattr(owner, name, value)
