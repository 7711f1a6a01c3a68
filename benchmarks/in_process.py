"""A pytest plugin that measures the suite without its processes: what the tests that start
no process cost on their own, the floor under any selection of the suite that keeps them.

    CI=true /usr/bin/time python -m pytest -p benchmarks.in_process -p no:cacheprovider -q
    CI=true /usr/bin/time python -m pytest -p benchmarks.in_process -p no:cacheprovider -q -n 2

Once collection is done, starting a process raises :class:`StartsAProcess` (``os.fork``,
``os.posix_spawn``, ``os.system`` and the ``fork_exec`` behind ``subprocess`` and
``multiprocessing``), and a test that starts one, in its body or in a fixture, is reported
skipped with the reason "starts a process" instead of failing. The tests with the
``background`` marker (``tests/background.py``) have their commands started when collection
ends; they are deselected. Time it with ``/usr/bin/time``: with no process started, its user
and system time are the tests' (and pytest-xdist's workers', which start before collection).
The patched functions are put back when the session ends.

A test may catch the exception only by ``except BaseException``; one that does would be
counted as passing. Measurement only: the tests' own verdicts are those of ``python -m
pytest``."""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess
from collections.abc import Generator
from typing import Any

import pytest

_SAVED = pytest.StashKey[list[tuple[Any, str, Any]]]()
REASON = "starts a process"


class StartsAProcess(BaseException):
    """Raised where a process would start; a BaseException, so ``except Exception`` in the
    code under test does not hide it."""


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise StartsAProcess(REASON)


_PATCHED = (
    (_posixsubprocess, "fork_exec"),
    (subprocess, "_fork_exec"),  # subprocess keeps its own name for it
    (os, "fork"),
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
    if call.excinfo is not None and call.excinfo.errisinstance(StartsAProcess):
        report = outcome.get_result()
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {REASON}")


def pytest_unconfigure(config: pytest.Config) -> None:
    for owner, name, value in config.stash.get(_SAVED, []):
        setattr(owner, name, value)
