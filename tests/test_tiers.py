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


@pytest.mark.parametrize(
    "n",
    first_quick(
        (pytest.param(n, id=f"n{n}", marks=pytest.mark.xfail(strict=True)) for n in range(4)),
        quick=2,
    ),
)
def test_failing(n):
    assert False


def test_plain():
    pass


def test_plain_too():
    pass


class TestGroup:
    @slow
    def test_method(self):
        pass

    def test_quick_method(self):
        pass
"""
QUICK = {"test_each[1]", "test_pairs[1-2]", "test_plain", "test_plain_too", "test_quick_method"}
SLOW = {"test_whole", "test_each[2]", "test_each[3]", "test_pairs[named]", "test_method"}
FAILING = ({"test_failing[n0]", "test_failing[n1]"}, {"test_failing[n2]", "test_failing[n3]"})
"""test_failing's quick and slow ids: each xfails (strict), so its mark is kept."""


@pytest.fixture
def run(pytester):
    pytester.makepyfile(test_tiered=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: the slow tier\n")

    def run(*args):
        """The names of the tests that ran (test_failing's strict xfails among them), and
        of those deselected."""
        result = pytester.inline_run(*args, plugins=[tiers])
        passed, skipped, failed = result.listoutcomes()
        assert not failed, failed
        names = {r.nodeid.split("::")[-1] for r in passed + skipped}
        deselected = {
            i.nodeid.split("::")[-1] for c in result.getcalls("pytest_deselected") for i in c.items
        }
        return names, deselected

    return run


def test_a_plain_run_is_the_quick_tier_and_deselects_the_slow_one(run):
    assert run() == (QUICK | FAILING[0], SLOW | FAILING[1])


def test_minus_m_slow_runs_the_slow_tier_alone(run):
    assert run("-m", "slow")[0] == SLOW | FAILING[1]


def test_all_runs_both_tiers(run):
    assert run("--all") == (QUICK | SLOW | FAILING[0] | FAILING[1], set())


def test_a_test_named_on_the_command_line_runs_whatever_its_tier(run):
    each = {"test_each[1]", "test_each[2]", "test_each[3]"}
    assert run("test_tiered.py::test_whole", "test_tiered.py::test_each")[0] == {
        "test_whole",
        *each,
    }
    assert run("test_tiered.py::test_each[2]")[0] == {"test_each[2]"}
    assert run("test_tiered.py::TestGroup")[0] == {"test_method", "test_quick_method"}
    # a name that begins another's names only itself
    assert run("test_tiered.py::test_plain")[0] == {"test_plain"}


def test_a_named_test_is_found_from_another_directory(run, pytester, monkeypatch):
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")
    named = "../test_tiered.py::TestGroup::test_method"
    assert run(named, "--rootdir", str(pytester.path))[0] == {"test_method"}


def test_the_header_says_which_tier_runs(pytester):
    pytester.makepyfile(test_tiered=TESTS)
    assert (
        "tiers: quick (the slow tier is deselected"
        in pytester.runpytest_inprocess("-p", "tiers").stdout.str()
    )
