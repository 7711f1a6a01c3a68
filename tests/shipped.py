"""Running ``python`` and the shipped suite (``reference.suite``) in a child process as a user
would: the helpers the tests of the plugin, the layouts and the people's code share. A helper
module, not a test module: no test module imports another."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from background import Command

import reference

PLUGIN = "reference.frontends.pytest_plugin"
PACKAGE_ROOT = Path(reference.__file__).resolve().parents[1]
"""The directory that holds ``reference/``: a clone, or site-packages after an install."""


SAFETY_NET = 900
"""Seconds a child may run: a safety net against a run that never ends, generous enough for a
machine at load 8 (a whole shipped suite with JAX's compilations); never a criterion of speed."""


_STORAGE = tempfile.TemporaryDirectory(prefix="backprop-tests-hypothesis-")
"""The folder of the children's Hypothesis storage folders, one each (:func:`_env`)."""


def _env(**env_overrides) -> dict[str, str]:
    """This process's environment for a child: the package importable, the ``ci`` profile,
    and a Hypothesis storage folder of the child's own. Hypothesis caches there the constants
    it reads from local modules' source, and writes each cache file in place: a child that
    shared a folder with another running beside it could read a file half written, take its
    module to have no constants, and draw other examples than the run it reproduces."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS")}
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = tempfile.mkdtemp(dir=_STORAGE.name)
    paths = [str(PACKAGE_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)), CI="true", **env_overrides)
    return env


def python(args, cwd, **env_overrides) -> subprocess.CompletedProcess:
    """``python *args`` in ``cwd``, with the package importable but ``cwd`` not on PYTHONPATH
    (so only ``python -m`` itself can put it on sys.path), in the bounded ``ci`` profile."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(**env_overrides), capture_output=True,
        text=True, timeout=SAFETY_NET,
    )  # fmt: skip


def plugin_args() -> list[str]:
    """Nothing where the ``pytest11`` entry point loads the plugin (an installed package),
    else ``-p`` with its module."""
    points = importlib.metadata.entry_points(group="pytest11")
    return [] if any(ep.value == PLUGIN for ep in points) else ["-p", PLUGIN]


def suite_test_count() -> int:
    """The test functions the shipped suite defines, by inspecting its module.

    Call it at collection (a module-level constant of the test module): pytester restores
    sys.modules after each test, and jaxlib cannot be imported a second time into one process.
    """
    from reference.suite import test_properties

    return sum(
        1
        for name, obj in vars(test_properties).items()
        if name.startswith("test") and inspect.isfunction(obj)
    )


def _suite_args(where: Path, impl: str, *extra: str) -> list[str]:
    assert not where.resolve().is_relative_to(PACKAGE_ROOT), "must run outside the clone"
    args = ["-m", "pytest", "-p", "no:cacheprovider", *plugin_args(), "--pyargs"]
    return [*args, "reference.suite", "--backprop-impl", impl, *extra]


def shipped_suite_command(where: Path, impl: str, *extra: str, prepare=None) -> Command:
    """:func:`run_shipped_suite`'s command, for :mod:`background` (``prepare`` writes
    ``where``'s files before it runs)."""
    argv = (sys.executable, *_suite_args(where, impl, *extra))
    return Command(argv, where, _env(), prepare)


def run_shipped_suite(where: Path, impl: str, *extra: str) -> subprocess.CompletedProcess:
    """``python -m pytest --pyargs reference.suite --backprop-impl impl`` in ``where``."""
    return python(_suite_args(where, impl, *extra), cwd=where)
