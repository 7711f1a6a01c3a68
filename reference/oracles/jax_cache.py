"""A persistent JAX compilation cache for ``backprop-check``.

Most of a fresh check's time is XLA compiling the JAX model, once per family of network
shapes (benchmarks/README.md, "A check in seconds"). JAX can keep what it compiled on disk
and load it the next time instead; :func:`compilation_cache` turns that on, in a directory
under the user's cache directory, for JAX imported inside its block (``backprop-check``
imports it there: the oracles run in the checking process, never in the worker that runs
the code under test) and for processes started inside it::

    with compilation_cache() as directory:   # None: off
        ...  # the check

``BACKPROP_CHECK_JAX_CACHE`` chooses: unset or empty, :func:`default_cache_dir`; ``off``
(or ``0``, ``no``, ``false``), no cache; anything else, that directory. A
``JAX_COMPILATION_CACHE_DIR`` already set is the user's own choice and is left as it is.
The cache holds compiled programs only, keyed by the program, the JAX version and the
compiler's settings, so a hit computes what a fresh compilation would. The block only sets
the environment: JAX already imported keeps the settings it read then.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ENV = "BACKPROP_CHECK_JAX_CACHE"
"""The environment variable that moves or turns off the cache."""

OFF = ("0", "off", "no", "false")
"""Values of :data:`ENV` (any case) that turn the cache off."""

MAX_BYTES = 256 * 2**20
"""The cache's size limit: JAX evicts the least recently used programs beyond it (one of the
small networks' programs takes about 25 kB). JAX needs the ``filelock`` package for it:
without that package the cache has no limit."""

_SETTINGS = {
    # Every program, however quick to compile: the small networks' take 0.1 to 1 s each,
    # under JAX's default threshold of 1 s, and they are the ones the default run compiles.
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}
if importlib.util.find_spec("filelock") is not None:  # JAX refuses a limit without it
    _SETTINGS["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(MAX_BYTES)


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``backprop-harness/jax`` under the platform's user cache directory: ``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows."""
    environ = os.environ if environ is None else environ
    if sys.platform == "win32" and environ.get("LOCALAPPDATA"):
        base = Path(environ["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif environ.get("XDG_CACHE_HOME"):
        base = Path(environ["XDG_CACHE_HOME"])
    else:
        base = Path.home() / ".cache"
    return base / "backprop-harness" / "jax"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory :data:`ENV` asks for (see the module's docstring); None when it is off."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "").strip()
    if not value:
        return default_cache_dir(environ)
    if value.lower() in OFF:
        return None
    return Path(value).expanduser()


def _usable(directory: Path) -> bool:
    """Whether ``directory`` exists or can be made, and can be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


@contextmanager
def compilation_cache() -> Iterator[Path | None]:
    """Worker processes started inside the block keep JAX's compiled programs in
    :func:`cache_dir` and load them from there; yields the directory, or None where the
    cache is off, cannot be written (the run goes on without it), or where
    ``JAX_COMPILATION_CACHE_DIR`` was already set (yields that). The environment is
    restored on exit."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        yield Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
        return
    directory = cache_dir()
    if directory is None or not _usable(directory):
        yield None
        return
    saved = {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR", *_SETTINGS)}
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
    for key, value in _SETTINGS.items():
        os.environ.setdefault(key, value)
    try:
        yield directory
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
