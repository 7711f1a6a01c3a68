"""Running ``python`` and the shipped suite (``reference.suite``) in a child process as a user
would: the helpers the tests of the plugin, the layouts and the people's code share. A helper
module, not a test module: no test module imports another."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import subprocess
import sys
from pathlib import Path

import reference

PLUGIN = "reference.frontends.pytest_plugin"
PACKAGE_ROOT = Path(reference.__file__).resolve().parents[1]
"""The directory that holds ``reference/``: a clone, or site-packages after an install."""


def python(args, cwd, **env_overrides) -> subprocess.CompletedProcess:
    """``python *args`` in ``cwd``, with the package importable but ``cwd`` not on PYTHONPATH
    (so only ``python -m`` itself can put it on sys.path), in the bounded ``ci`` profile."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS")}
    paths = [str(PACKAGE_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)), CI="true", **env_overrides)
    # timeout: a safety net against a run that never ends, generous enough for a machine at
    # load 8 (a whole shipped suite with JAX's compilations); never a criterion of speed
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


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


def run_shipped_suite(where: Path, impl: str, *extra: str) -> subprocess.CompletedProcess:
    """``python -m pytest --pyargs reference.suite --backprop-impl impl`` in ``where``."""
    assert not where.resolve().is_relative_to(PACKAGE_ROOT), "must run outside the clone"
    args = ["-m", "pytest", "-p", "no:cacheprovider", *plugin_args(), "--pyargs"]
    return python([*args, "reference.suite", "--backprop-impl", impl, *extra], cwd=where)
