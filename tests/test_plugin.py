"""The pytest plugin: off and free unless a run asks for the harness; on, --backprop-impl or
the ini key reaches the backprop_impl fixture and the profiles follow the environment; the
shipped suite runs from any directory against an outside implementation."""

import json
import re
from pathlib import Path

import pytest
from background import once, pytest_command
from shipped import (
    PACKAGE_ROOT,
    PLUGIN,
    plugin_args,
    python,
    shipped_suite_command,
    suite_test_count,
)
from tiers import first_quick

from reference.frontends.pytest_plugin import PROFILES, profile_name

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
from reference import check_gradients
from reference.inputs.problems import seed_problem

def test_probe(backprop_impl):
    p = seed_problem(cost="mse")
    report = check_gradients(backprop_impl, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, report.render()
"""

ACTIVATING_CONFTEST = """
import pytest
from reference.frontends.pytest_plugin import activate

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    activate(config)
"""

HEADER = "backprop-harness:*"


# --- on, through --backprop-impl, the ini key, or a conftest ------------------------------


BUILTIN_TEST = """
def test_it_is_the_builtin(backprop_impl):
    import backprop
    assert backprop_impl.impl is backprop and backprop_impl.name == "backprop"
"""

INI_KEY = """
[tool.pytest.ini_options]
backprop_impl = "reference.bugs:dW2_times_2"
"""


def probe_runs(item, root):
    """``python -m pytest`` on PROBE in a project of its own, as pytester runs it: activated
    by a conftest, by --backprop-impl (a correct, a broken and an unimportable
    implementation), by the ini key, and by the ini key with the option over it."""

    def run(label, *args, **files):
        command = pytest_command(root / f"plugin-probe-{label}", label, *args, files=files)
        return {("plugin", "probe", label): command}

    probe = {"test_probe.py": PROBE}
    impl = "--backprop-impl"
    return {
        **run("conftest", **{"conftest.py": ACTIVATING_CONFTEST,
                             "test_probe.py": PROBE + BUILTIN_TEST}),
        **run("correct", impl, "reference.bugs:CORRECT", **probe),
        **run("broken", impl, "reference.bugs:dW2_times_2", **probe),
        **run("unimportable", impl, "no_such_pkg.impl", **probe),
        **run("ini", **{"pyproject.toml": INI_KEY}, **probe),
        **run("ini-and-option", impl, "reference.bugs:CORRECT",
              **{"pyproject.toml": INI_KEY}, **probe),
    }  # fmt: skip


@pytest.mark.background(declare=probe_runs)
def test_activated_without_a_name_the_implementation_is_backprop(background):
    result = background.run_result(("plugin", "probe", "conftest"))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["backprop-harness: implementation backprop, *"])


@pytest.mark.background(declare=probe_runs)
def test_a_correct_outside_implementation_passes_and_the_header_names_it(background):
    result = background.run_result(("plugin", "probe", "correct"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["backprop-harness: implementation reference.bugs:CORRECT, hypothesis profile *"]
    )


@pytest.mark.background(declare=probe_runs)
def test_a_broken_implementation_fails_with_the_report(background):
    result = background.run_result(("plugin", "probe", "broken"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*only layer 2's dW is wrong*"])


@pytest.mark.background(declare=probe_runs)
def test_an_unimportable_implementation_is_a_usage_error(background):
    result = background.run_result(("plugin", "probe", "unimportable"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot import module 'no_such_pkg.impl'*"])


@pytest.mark.background(declare=probe_runs)
def test_the_ini_key_turns_the_harness_on_and_the_option_overrides_it(background):
    result = background.run_result(("plugin", "probe", "ini"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["backprop-harness: implementation reference.bugs:dW2_times_2, *"])
    result = background.run_result(("plugin", "probe", "ini-and-option"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["backprop-harness: implementation reference.bugs:CORRECT, *"])


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "dev"),
        ({"CI": "true"}, "ci"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "thorough"}, "thorough"),
        ({"CI": "false"}, "dev"),
    ],
)
def test_profile_selection(env, expected):
    assert profile_name(env) == expected


def test_profiles_are_ordered_and_ci_is_deterministic():
    from hypothesis import settings

    assert (
        PROFILES["ci"]["max_examples"]
        < PROFILES["dev"]["max_examples"] * 10
        <= PROFILES["thorough"]["max_examples"] * 10
    )
    assert PROFILES["thorough"]["max_examples"] >= 10 * PROFILES["dev"]["max_examples"]
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None and ci.deadline is None


# --- off, and free, in runs that do not ask for it ----------------------------------------


def test_importing_reference_and_the_plugin_imports_neither_jax_nor_hypothesis(tmp_path):
    result = python(
        [
            "-c",
            f"import sys, reference, {PLUGIN}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'hypothesis'}))",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_run_that_asks_for_nothing_leaves_the_harness_off(pytester):
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_wants_the_fixture(backprop_impl):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.no_fnmatch_line(HEADER)
    result.stdout.fnmatch_lines(
        ["*the backprop_impl fixture needs the backprop harness*--backprop-impl package.module*"]
    )


BLOCKED_RUN = """
import importlib.abc, json, sys

# jax and hypothesis as if not installed; backprop, so that loading any implementation shows
ABSENT = {"jax", "jaxlib", "hypothesis", "backprop"}
asked = []


class Absent(importlib.abc.MetaPathFinder):
    # Refuses the ABSENT modules and remembers which were asked for.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            asked.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


class AbsentFirst(list):
    # pytest puts its assertion-rewriting finder first, and that finder loads the modules of
    # every distribution with a pytest plugin (hypothesis among them) itself: stay ahead of it.
    def insert(self, index, finder):
        super().insert(1 if index == 0 else index, finder)


sys.meta_path = AbsentFirst([Absent(), *sys.meta_path])
import pytest

code = pytest.main(sys.argv[1:])
plugin = sys.modules.get("reference.frontends.pytest_plugin")
with open("outcome.json", "w") as f:
    json.dump({"code": int(code), "asked": asked, "plugin": getattr(plugin, "__file__", None)}, f)
"""


def test_without_jax_or_hypothesis_an_unrelated_project_passes(pytester):
    """An environment with the package but neither jax nor hypothesis (an import hook makes
    both absent; hypothesis' own plugin is off, as it would be uninstalled): an unrelated
    project's run loads the plugin and passes, and nothing asks for either, nor for the
    built-in implementation."""
    pytester.makepyfile(test_trivial="def test_trivial():\n    assert 1 + 1 == 2\n")
    script = pytester.path / "blocked_run.py"
    script.write_text(BLOCKED_RUN)
    result = python(
        [str(script), "-p", "no:hypothesispytest", "-p", "no:cacheprovider", *plugin_args()],
        cwd=pytester.path,
    )
    assert (pytester.path / "outcome.json").exists(), result.stdout + result.stderr
    outcome = json.loads((pytester.path / "outcome.json").read_text())
    assert outcome["code"] == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert outcome["asked"] == []
    assert outcome["plugin"] == str(PACKAGE_ROOT / "reference/frontends/pytest_plugin.py")


def test_an_unrelated_project_keeps_its_hypothesis_profile_and_jax_settings(pytester, monkeypatch):
    """With jax and hypothesis installed, a project with its own profile: the plugin neither
    loads a profile nor switches jax_enable_x64, during the run or after it."""
    monkeypatch.delenv("JAX_ENABLE_X64", raising=False)
    pytester.makeconftest(
        """
        import json
        from hypothesis import settings

        settings.register_profile("ours", max_examples=7)
        settings.load_profile("ours")

        def pytest_unconfigure(config):
            import jax
            state = {"profile": settings.get_current_profile_name(),
                     "max_examples": settings.default.max_examples,
                     "x64": jax.config.jax_enable_x64}
            (config.rootpath / "after.json").write_text(json.dumps(state))
        """
    )
    pytester.makepyfile(
        """
        import jax
        import jax.numpy as jnp
        from hypothesis import given, settings, strategies as st

        def test_its_own_settings():
            assert jax.config.jax_enable_x64 is False
            assert jnp.zeros(1).dtype == jnp.float32
            assert settings.get_current_profile_name() == "ours"

        @given(st.integers())
        def test_its_own_profile_applies(n):
            assert settings.default.max_examples == 7
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line(HEADER)
    after = json.loads((pytester.path / "after.json").read_text())
    assert after == {"profile": "ours", "max_examples": 7, "x64": False}


# --- the shipped suite, from outside the clone ---------------------------------------------

TINY_IMPLEMENTATION = '''
"""A small, independent implementation of the protocol (samples as columns)."""
import numpy as np


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


# name: (g(z), g'(z) from z and a = g(z)); relu'(0) = 1
G = {
    "sigmoid": (_sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z >= 0).astype(float)),
}


def _forward(params, X, activations):
    A, cache = X, []
    for (W, b), name in zip(params, activations):
        Z = W @ A + b
        cache.append((A, Z))
        A = G[name][0](Z)
    return A, cache


def loss(params, X, Y, *, activations, cost):
    A, cache = _forward(params, X, activations)
    m = X.shape[1]
    if cost == "mse":
        return float(np.sum((A - Y) ** 2) / (2 * m))
    Z = cache[-1][1]  # bce after a sigmoid, from the logits: softplus(Z) - Y Z
    return float(np.sum(np.logaddexp(0.0, Z) - Y * Z) / m)


def gradients(params, X, Y, *, activations, cost):
    A, cache = _forward(params, X, activations)
    m = X.shape[1]
    dZ = (A - Y) / m
    if cost == "mse":
        dZ = dZ * G[activations[-1]][1](cache[-1][1], A)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        A_prev = cache[l][0]
        grads.append((dZ @ A_prev.T, dZ.sum(axis=1, keepdims=True)))
        if l > 0:
            dZ = (params[l][0].T @ dZ) * G[activations[l - 1]][1](cache[l - 1][1], A_prev)
    return grads[::-1]


def update(params, grads, learning_rate):
    return [(W - learning_rate * dW, b - learning_rate * db)
            for (W, b), (dW, db) in zip(params, grads)]
'''


SUITE_TESTS = suite_test_count()  # at collection (see suite_test_count)


def _folder(where, **files):
    """A function that makes ``where`` with ``files`` (name: text) in it, once."""

    def prepare():
        where.mkdir()
        for name, text in files.items():
            (where / name).write_text(text)

    return once(prepare)


def whole_suite_runs(item, root):
    """The whole shipped suite on an outside implementation, on a mistaken one (``-x``) and
    on a hostile one, each in a folder of its own outside the clone."""
    tiny, broken, hostile = root / "plugin-tiny", root / "plugin-broken", root / "plugin-hostile"
    files = {"mymodule.py": TINY_IMPLEMENTATION, "test_unrelated.py": UNRELATED}
    return {
        ("plugin", "tiny"): shipped_suite_command(
            tiny, "mymodule", prepare=_folder(tiny, **files)
        ),
        ("plugin", "broken"): shipped_suite_command(
            broken, "reference.bugs:dW2_times_2", "-x", prepare=_folder(broken)
        ),
        ("plugin", "hostile"): shipped_suite_command(
            hostile, "hostile", "--backprop-timeout", "1",
            prepare=_folder(hostile, **{"hostile.py": HOSTILE_IMPLEMENTATION}),
        ),
    }  # fmt: skip


UNRELATED = "def test_not_collected():\n    pass\n"


@pytest.mark.background(declare=whole_suite_runs)
def test_the_shipped_suite_passes_an_outside_implementation_from_any_directory(background):
    """``mymodule.py`` in the current directory, importable because ``python -m pytest`` puts
    that directory on sys.path; every test of the suite runs against it, and nothing else."""
    result = background.result(("plugin", "tiny"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backprop-harness: implementation mymodule, hypothesis profile ci" in result.stdout
    assert f"collected {SUITE_TESTS} items" in result.stdout
    assert f" {SUITE_TESTS} passed in " in result.stdout


@pytest.mark.background(declare=whole_suite_runs)
def test_the_shipped_suite_fails_a_mistaken_implementation(background):
    result = background.result(("plugin", "broken"))
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert f"collected {SUITE_TESTS} items" in result.stdout
    assert "only layer 2's dW is wrong" in result.stdout
    assert " 1 failed" in result.stdout


HOSTILE_IMPLEMENTATION = """
import os
import backprop

def loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, Y, activations=activations, cost=cost)

def gradients(params, X, Y, *, activations, cost):
    if activations[-1] == "relu" and _hangs():
        while True:
            pass
    if len(params) == 2:
        os._exit(0)
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)


def _hangs():
    with open("hangs.log", "a") as log:
        print("hang", file=log)
    return True
"""


@pytest.mark.background(declare=whole_suite_runs)
def test_a_hanging_or_exiting_implementation_fails_its_tests_and_the_run_goes_on(background):
    """Each call has --backprop-timeout; os._exit is a finding, not the end of the run: every
    test of the suite reports, and the hang names its line. A test waits out a hang once at
    most: the calls after it (Hypothesis's shrinking) fail at once."""
    result = background.result(("plugin", "hostile"))
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert f"collected {SUITE_TESTS} items" in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert "failed" in summary and "error" not in summary, summary
    assert "gradients did not return within 1 s" in result.stdout
    assert "hostile.py:10: while True:)" in result.stdout
    assert "gradients called os._exit(0)" in result.stdout
    hangs = (background.root / "plugin-hostile" / "hangs.log").read_text().splitlines()
    assert 1 <= len(hangs) <= SUITE_TESTS, len(hangs)


# --- strictness comes from the run's own configuration -------------------------------------

RELU_ZERO = """
from reference.bugs import relu_grad_zero_at_zero as _impl

loss, gradients, forward, update = _impl.loss, _impl.gradients, _impl.forward, _impl.update
"""
"""A correct implementation whose relu'(0) is 0 (JAX's and PyTorch's), not the seed's 1."""

UPSTREAM_INI = """
[tool.pytest.ini_options]
backprop_strict = true
backprop_relu_at_zero = "1"
"""
"""What a fork inherits with its upstream's pyproject.toml (this repository's keys)."""


def _relu_run(root, label, source, config, *extra):
    """The shipped suite's relu'(0) test on ``source`` (``fork.py``) under ``config``
    (``pyproject.toml``), in a folder of its own."""
    where = root / f"plugin-relu-{label}"
    prepare = _folder(where, **{"fork.py": source, "pyproject.toml": config})
    k = ("-k", "relu_derivative_at_zero")
    return {("plugin", "relu", label): shipped_suite_command(where, "fork", *k, *extra,
                                                              prepare=prepare)}  # fmt: skip


def declared_relu_runs(item, root):
    declared, where, extra = (item.callspec.params[k] for k in ("declared", "where", "extra"))
    source, config = RELU_ZERO, UPSTREAM_INI
    if where == "SUPPORTS":
        source += f'\nSUPPORTS = {{"relu_at_zero": {declared}}}\n'
    elif where == "pyproject":
        config += f"\n[tool.backprop-check]\nrelu_at_zero = {declared}\n"
    return _relu_run(root, item.callspec.id, source, config, *extra)


@pytest.mark.background(declare=declared_relu_runs)
@pytest.mark.parametrize(
    "declared, where, extra, passes",
    first_quick(
        [
            (None, None, [], False),  # the inherited keys hold where nothing is declared
            (0, "pyproject", [], True),  # [tool.backprop-check] relu_at_zero wins over them
            (0, "pyproject", ["--backprop-relu-at-zero", "1"], False),  # the command line wins
            (1, "pyproject", [], False),  # a declaration the code does not keep fails
            (0, "SUPPORTS", [], True),  # so does the module's own SUPPORTS
        ],
        quick=4,
        unpack=True,
    ),
    ids=["inherited", "declared-in-pyproject", "command-line", "declared-wrongly",
         "declared-in-SUPPORTS"],
)  # fmt: skip
def test_a_declared_relu_at_zero_wins_over_inherited_settings(
    background, request, declared, where, extra, passes
):
    result = background.result(("plugin", "relu", request.node.callspec.id))
    expected = pytest.ExitCode.OK if passes else pytest.ExitCode.TESTS_FAILED
    assert result.returncode == expected, result.stdout + result.stderr
    assert " 1 passed" in result.stdout if passes else "relu'(0) = 0" in result.stdout


def settings_relu_runs(item, root):
    """relu'(0) = 0 with no ini key and no option, with backprop_strict alone, and with a
    relu'(0) that is neither 0 nor 1."""
    return {
        **_relu_run(root, "loose", RELU_ZERO, "[tool.pytest.ini_options]\n"),
        **_relu_run(root, "strict", RELU_ZERO,
                    "[tool.pytest.ini_options]\nbackprop_strict = true\n"),
        **_relu_run(root, "bad", RELU_ZERO,
                    '[tool.pytest.ini_options]\nbackprop_relu_at_zero = "0.5"\n'),
    }  # fmt: skip


@pytest.mark.background(declare=settings_relu_runs)
def test_without_settings_a_convention_is_a_note_and_strictness_fails_it(background):
    """No ini key and no option: relu'(0) = 0 is a valid subgradient; the ini key
    backprop_strict alone turns that note into a failure."""
    loose = background.result(("plugin", "relu", "loose"))
    assert loose.returncode == pytest.ExitCode.OK, loose.stdout + loose.stderr
    strict = background.result(("plugin", "relu", "strict"))
    assert strict.returncode == pytest.ExitCode.TESTS_FAILED, strict.stdout + strict.stderr


@pytest.mark.background(declare=settings_relu_runs)
def test_a_bad_relu_at_zero_is_a_usage_error(background):
    result = background.result(("plugin", "relu", "bad"))
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "backprop_relu_at_zero must be 0 or 1" in result.stderr


def test_this_repository_ignores_the_report_folders_its_workflows_write():
    """CONTRIBUTING.md's workflow writes reports/, the README's grading grades/."""
    ignored = (ROOT / ".gitignore").read_text().split()
    documented = set(re.findall(r"--(?:junit-xml|grades) (\w+)/", (ROOT / "CONTRIBUTING.md")
                                .read_text() + (ROOT / "README.md").read_text()))  # fmt: skip
    assert documented and {f"{d}/" for d in documented} <= set(ignored)
