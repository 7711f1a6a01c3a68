"""This repository's own tests run under the backprop harness: its Hypothesis profiles, and
``backprop`` unless ``--backprop-impl`` names another implementation. The worker processes
the tests start share one JAX compilation cache for the session (a temporary directory,
unless ``BACKPROP_CHECK_JAX_CACHE`` or ``JAX_COMPILATION_CACHE_DIR`` says otherwise), so
that each compiles only what no test before it has."""

import os
import shutil
import tempfile

import pytest

from reference.frontends.pytest_plugin import activate
from reference.oracles.jax_cache import ENV

_SESSION_CACHE = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before hypothesis loads a --hypothesis-profile of ours
def pytest_configure(config: pytest.Config) -> None:
    activate(config)
    if not (os.environ.get(ENV) or os.environ.get("JAX_COMPILATION_CACHE_DIR")):
        directory = tempfile.mkdtemp(prefix="backprop-tests-jax-")
        os.environ[ENV] = directory  # inherited by pytest-xdist's workers and by subprocesses
        config.stash[_SESSION_CACHE] = directory


def pytest_unconfigure(config: pytest.Config) -> None:
    directory = config.stash.get(_SESSION_CACHE, None)
    if directory is not None:
        os.environ.pop(ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
