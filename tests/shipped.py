"""Running ``python`` and the shipped suite (``reference.suite``) in a child process as a user
would: the helpers the tests of the plugin, the layouts and the people's code share. A helper
module, not a test module: no test module imports another."""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import reference

PLUGIN = "reference.frontends.pytest_plugin"
PACKAGE_ROOT = Path(reference.__file__).resolve().parents[1]
"""The directory that holds ``reference/``: a clone, or site-packages after an install."""


SAFETY_NET = 900
"""Seconds a child may run: a safety net against a run that never ends, generous enough for a
machine at load 8 (a whole shipped suite with JAX's compilations); never a criterion of speed."""


def _env(**env_overrides) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS")}
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


def run_shipped_suite(where: Path, impl: str, *extra: str) -> subprocess.CompletedProcess:
    """``python -m pytest --pyargs reference.suite --backprop-impl impl`` in ``where``."""
    return python(_suite_args(where, impl, *extra), cwd=where)


def run_shipped_suites(where: Path, *runs: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """:func:`run_shipped_suite` for each ``(impl, *extra)`` of ``runs``, all started at once
    and waited for together: the test's own process only waits, so a second core runs the
    second suite. Output goes to files, not pipes, so that no child waits on a full pipe."""
    with contextlib.ExitStack() as files:
        outputs = [
            (files.enter_context(tempfile.TemporaryFile("w+")),
             files.enter_context(tempfile.TemporaryFile("w+")))
            for _ in runs
        ]  # fmt: skip
        procs = []
        try:
            for (impl, *extra), (out, err) in zip(runs, outputs):
                command = [sys.executable, *_suite_args(where, impl, *extra)]
                procs.append(
                    subprocess.Popen(command, cwd=where, env=_env(), stdout=out, stderr=err)
                )
            for proc in procs:
                proc.wait(timeout=SAFETY_NET)
        finally:
            for proc in procs:  # past the safety net, or interrupted: end every run
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        done = []
        for proc, (out, err) in zip(procs, outputs):
            out.seek(0)
            err.seek(0)
            done.append(
                subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
            )
        return done
