"""The pytest plugin: --backprop-impl reaches the impl fixture, profiles follow the environment."""

import pytest

from reference.frontends.pytest_plugin import PROFILES, profile_name

pytest_plugins = ["pytester"]

PROBE = """
from reference import check_gradients
from reference.inputs.problems import seed_problem

def test_probe(impl):
    p = seed_problem(cost="mse")
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, report.render()
"""


def test_default_implementation_is_backprop(pytester):
    pytester.makepyfile(PROBE)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_correct_outside_implementation_passes(pytester):
    pytester.makepyfile(PROBE)
    pytester.runpytest_subprocess("--backprop-impl", "reference.bugs:CORRECT").assert_outcomes(
        passed=1
    )


def test_a_broken_implementation_fails_with_the_report(pytester):
    pytester.makepyfile(PROBE)
    result = pytester.runpytest_subprocess("--backprop-impl", "reference.bugs:dW2_times_2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*only layer 2's dW is wrong*"])


def test_an_unimportable_implementation_is_a_usage_error(pytester):
    pytester.makepyfile(PROBE)
    result = pytester.runpytest_subprocess("--backprop-impl", "no_such_pkg.impl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot import module 'no_such_pkg.impl'*"])


def test_the_header_names_the_implementation_and_profile(pytester):
    pytester.makepyfile(PROBE)
    result = pytester.runpytest_subprocess("--backprop-impl", "reference.bugs:CORRECT")
    result.stdout.fnmatch_lines(
        ["backprop-harness: implementation reference.bugs:CORRECT, hypothesis profile *"]
    )


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
