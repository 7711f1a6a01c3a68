"""The default run's persistent JAX compilation cache (reference/oracles/jax_cache.py): where it
goes, how it is turned off, that the check uses it, and that it changes no result."""

import functools
import json
import os
import sys
from pathlib import Path

import pytest
from background import Command

from reference.oracles import jax_cache
from reference.oracles.jax_cache import ENV, OFF, cache_dir, compilation_cache, default_cache_dir

JAX_VARS = ("JAX_COMPILATION_CACHE_DIR", *jax_cache._SETTINGS)


@pytest.fixture
def clean_env(monkeypatch):
    """No cache setting of the caller's reaches the test."""
    for key in (ENV, *JAX_VARS):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_unset_or_empty_means_the_user_cache_dir(clean_env):
    assert cache_dir() == default_cache_dir()
    clean_env.setenv(ENV, "  ")
    assert cache_dir() == default_cache_dir()


@pytest.mark.parametrize("value", [*OFF, *(v.upper() for v in OFF)])
def test_the_off_values_turn_it_off(clean_env, value):
    clean_env.setenv(ENV, value)
    assert cache_dir() is None


def test_any_other_value_is_the_directory(clean_env, tmp_path):
    clean_env.setenv(ENV, str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG is Linux's convention")
def test_the_default_follows_xdg_cache_home(tmp_path):
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}).is_relative_to(tmp_path)
    assert default_cache_dir({}).is_relative_to(Path.home() / ".cache")


def test_the_block_sets_the_workers_environment_and_restores_it(clean_env, tmp_path):
    clean_env.setenv(ENV, str(tmp_path / "jax"))
    clean_env.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "7")  # the user's, kept
    with compilation_cache() as directory:
        assert directory == tmp_path / "jax" and directory.is_dir()
        assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(directory)
        assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "7"
        for key, value in jax_cache._SETTINGS.items():
            if key != "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS":
                assert os.environ[key] == value
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "7"
    assert not any(k in os.environ for k in JAX_VARS if k.endswith(("BYTES", "MAX_SIZE")))


def test_off_sets_nothing(clean_env):
    clean_env.setenv(ENV, "off")
    with compilation_cache() as directory:
        assert directory is None
        assert not any(k in os.environ for k in JAX_VARS)


def test_a_jax_cache_dir_already_set_is_left_alone(clean_env, tmp_path):
    clean_env.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "users"))
    clean_env.setenv(ENV, str(tmp_path / "ours"))
    with compilation_cache() as directory:
        assert directory == tmp_path / "users"
        assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "users")
    assert not (tmp_path / "ours").exists()


def test_a_directory_that_cannot_be_made_means_no_cache(clean_env, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    clean_env.setenv(ENV, str(blocker / "jax"))
    with compilation_cache() as directory:
        assert directory is None
        assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def _listing(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


def cache_runs(item, root):
    """A short default-style run (tanh and sigmoid, mse only) in a process of its own, as
    ``backprop-check`` runs (JAX is imported there inside the cache's block), three times:
    on an empty cache, on the cache it filled, and with the cache off. What the first run
    left in the cache is listed just before the second starts."""
    where, cache = root / "jax-cache", root / "jax-cache" / "cache"
    env = {k: v for k, v in os.environ.items() if k not in JAX_VARS}
    argv = ["--networks", "1", "--activations", "tanh,sigmoid", "--costs", "mse", "--quiet"]

    def command(name, setting, prepare):
        return Command((sys.executable, "-m", "reference.frontends.cli", *argv, "--json",
                        str(where / f"{name}.json")), root, {**env, ENV: setting}, prepare)  # fmt: skip

    def listed():
        (where / "filled.json").write_text(json.dumps(_listing(cache)))

    return {
        ("jax-cache", "cold"): command("cold", str(cache), functools.partial(where.mkdir)),
        ("jax-cache", "warm"): command("warm", str(cache), listed),
        ("jax-cache", "off"): command("off", "off", None),
    }


@pytest.mark.background(declare=cache_runs)
def test_the_check_fills_the_cache_and_the_results_do_not_change(background):
    where = background.root / "jax-cache"
    results = {}
    for name in ("cold", "warm", "off"):  # in this order, wherever they run
        done = background.result(("jax-cache", name))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        data = json.loads((where / f"{name}.json").read_text())
        results[name] = {"networks": data["networks"], "checks": data["checks"]}
    filled = json.loads((where / "filled.json").read_text())
    assert filled, "the check wrote no compiled program to the cache"
    assert _listing(where / "cache") == filled  # the warm and off runs added nothing
    assert results["cold"] == results["warm"] == results["off"]
