"""The two tiers (tests/tiers.py): what a plain run, ``-m``, ``--all`` and a named test select."""

import pytest
import tiers

pytest_plugins = ["pytester"]

TESTS = """
import pytest
from tiers import first_quick, slow


@slow
def test_whole():
    pass


@pytest.mark.parametrize("n", first_quick([1, 2, 3]))
def test_each(n):
    pass


@pytest.mark.parametrize("a, b", first_quick([(1, 2), pytest.param(3, 4, id="named")], unpack=True))
def test_pairs(a, b):
    pass


def test_plain():
    pass
"""
QUICK = {"test_each[1]", "test_pairs[1-2]", "test_plain"}
SLOW = {"test_whole", "test_each[2]", "test_each[3]", "test_pairs[named]"}


@pytest.fixture
def run(pytester):
    pytester.makepyfile(test_tiered=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: the slow tier\n")

    def run(*args):
        result = pytester.inline_run(*args, plugins=[tiers])
        passed, _, _ = result.listoutcomes()
        names = {r.nodeid.split("::")[-1] for r in passed}
        deselected = {
            i.nodeid.split("::")[-1] for c in result.getcalls("pytest_deselected") for i in c.items
        }
        return names, deselected

    return run


def test_a_plain_run_is_the_quick_tier_and_deselects_the_slow_one(run):
    assert run() == (QUICK, SLOW)


def test_minus_m_slow_runs_the_slow_tier_alone(run):
    assert run("-m", "slow")[0] == SLOW


def test_all_runs_both_tiers(run):
    assert run("--all") == (QUICK | SLOW, set())


def test_a_test_named_on_the_command_line_runs_whatever_its_tier(run):
    assert run("test_tiered.py::test_whole", "test_tiered.py::test_each")[0] == {
        "test_whole",
        "test_each[1]",
        "test_each[2]",
        "test_each[3]",
    }
    assert run("test_tiered.py::test_each[2]")[0] == {"test_each[2]"}


def test_the_header_says_which_tier_runs(pytester):
    pytester.makepyfile(test_tiered=TESTS)
    assert (
        "tiers: quick (the slow tier is deselected"
        in pytester.runpytest_inprocess("-p", "tiers").stdout.str()
    )
