"""This repository's own tests run under the backprop harness: its Hypothesis profiles, and
``backprop`` unless ``--backprop-impl`` names another implementation.

One JAX compilation cache serves the whole session (a temporary directory, unless
``BACKPROP_CHECK_JAX_CACHE`` or ``JAX_COMPILATION_CACHE_DIR`` says otherwise): this process
and every process the tests start (``backprop-check``, the shipped suite, a grading run) keep
the programs they compile there and load those another compiled before, so that each
network shape is compiled once per session, not once per process. A hit computes what a
fresh compilation would (``reference/oracles/jax_cache.py``).

Tests that check a child process's output declare the command with the ``background``
marker (``tests/background.py``): the selected tests' commands start once collection is
done and run beside this process's tests, and the ``background`` fixture hands each test its
command's result.

The suite has two tiers (``tests/tiers.py``): ``python -m pytest`` runs the quick one and
deselects the tests marked ``slow``; ``-m slow`` runs those alone, ``--all`` runs both."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from background import Background, start
from tiers import (  # noqa: F401  the two tiers' hooks
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_report_header,
)

from reference.frontends.pytest_plugin import activate
from reference.oracles.jax_cache import ENV, compilation_cache

_SESSION_CACHE = pytest.StashKey[str]()
_CACHE_BLOCK = pytest.StashKey[contextlib.ExitStack]()
_BACKGROUND = pytest.StashKey[Background]()


@pytest.hookimpl(tryfirst=True)  # before hypothesis loads a --hypothesis-profile of ours
def pytest_configure(config: pytest.Config) -> None:
    activate(config)
    if not (os.environ.get(ENV) or os.environ.get("JAX_COMPILATION_CACHE_DIR")):
        directory = tempfile.mkdtemp(prefix="backprop-tests-jax-")
        os.environ[ENV] = directory  # inherited by pytest-xdist's workers and by subprocesses
        config.stash[_SESSION_CACHE] = directory
    # JAX_COMPILATION_CACHE_DIR and the cache's settings for the session (JAX is imported
    # after this, here and in every process started from here), not only inside the
    # command-line's own block: the shipped suite's runs use the cache too.
    block = contextlib.ExitStack()
    block.enter_context(compilation_cache())
    config.stash[_CACHE_BLOCK] = block
    config.addinivalue_line(
        "markers",
        "background(declare=f): the commands (f(item, folder) -> {key: Command}) whose "
        "results the test takes from the background fixture (tests/background.py)",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:  # nothing runs: no command either
        return
    if any(item.get_closest_marker("background") for item in session.items):
        root = tempfile.mkdtemp(prefix="backprop-tests-background-")
        background = Background(Path(root))
        session.config.stash[_BACKGROUND] = background
        start(background, session.items, now=not hasattr(session.config, "workerinput"))


@pytest.fixture(scope="session")
def background(pytestconfig: pytest.Config) -> Background:
    """The session's background commands (tests/background.py)."""
    return pytestconfig.stash[_BACKGROUND]


def pytest_unconfigure(config: pytest.Config) -> None:
    background = config.stash.get(_BACKGROUND, None)
    if background is not None:
        background.close()
        shutil.rmtree(background.root, ignore_errors=True)
    block = config.stash.get(_CACHE_BLOCK, None)
    if block is not None:
        block.close()
    directory = config.stash.get(_SESSION_CACHE, None)
    if directory is not None:
        os.environ.pop(ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
