"""Scaling out: --shard K/N slices the networks (each in exactly one shard, the union the
unsharded run), --jobs N spreads them over worker processes with the same report as one job,
and the property suite gives the same outcomes under pytest-xdist as serially."""

import functools
import io
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from background import Command
from tiers import first_quick

import backprop
from reference.bugs import CATALOG
from reference.frontends import cli
from reference.inputs import networks as default_networks
from reference.inputs.penalties import penalty_problems
from reference.inputs.scope import Scope
from reference.run import scaling, session
from reference.run.scaling import parse_shard, shard

ROOT = Path(__file__).resolve().parents[1]

# Ten networks: tanh or relu hidden layers, a sigmoid output, both costs, two random ones.
SMALL = ["--activations", "tanh,relu", "--output-activations", "sigmoid", "--networks", "2"]
# Four: the seed's tanh/tanh/sigmoid with each cost, two random ones (a worker each costs more).
TINY = ["--activations", "tanh", "--output-activations", "sigmoid", "--networks", "2"]


def run_json(tmp_path, name, *argv):
    """``backprop-check *argv --json --junit-xml``: the exit status and the JSON (the JUnit
    file is ``tmp_path / f"{name}.xml"``)."""
    path = tmp_path / f"{name}.json"
    code = cli.main([*argv, "--json", str(path), "--junit-xml", str(tmp_path / f"{name}.xml"),
                     "--quiet"], out=io.StringIO())  # fmt: skip
    return code, json.loads(path.read_text())


def cases(path):
    """The (classname, name) of every test case in a JUnit file."""
    return [(c.get("classname"), c.get("name")) for c in ET.parse(path).getroot().iter("testcase")]


# --- --shard --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("2/3", (2, 3)), ("3/3", (3, 3))])
def test_shard_parses_k_of_n(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/2/3"])
def test_a_bad_shard_is_a_usage_error(text, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--shard", text], out=io.StringIO())
    assert exc.value.code == 2 and "--shard" in capsys.readouterr().err


@pytest.mark.parametrize("n", range(1, 7))
def test_every_network_lies_in_exactly_one_shard(n):
    problems = default_networks.default_problems(seed=0, networks=5)
    slices = [shard(problems, k, n) for k in range(1, n + 1)]
    ids = [id(p) for s in slices for p in s]
    assert sorted(ids) == sorted(id(p) for p in problems) and len(set(ids)) == len(ids)
    with pytest.raises(ValueError, match="shard must be K/N"):
        shard(problems, n + 1, n)


def test_the_shards_together_are_the_unsharded_run(tmp_path):
    n = 3
    code, whole = run_json(tmp_path, "whole", *SMALL, "--in-process")
    parts = [run_json(tmp_path, f"s{k}", *SMALL, "--in-process", "--shard", f"{k}/{n}")
             for k in range(1, n + 1)]  # fmt: skip
    assert code == 0 and all(c == 0 for c, _ in parts)
    nets = [net for _, data in parts for net in data["networks"]]
    by_name = {net["name"]: net for net in nets}
    assert len(by_name) == len(nets)  # no network in two shards
    assert by_name == {net["name"]: net for net in whole["networks"]}

    def per_network(data):  # the non-gradient checks run on networks, as plain JSON
        return sorted(json.dumps(c, sort_keys=True) for c in data["checks"]
                      if c["where"] != "fixed" and not c["where"].startswith(session.WHOLE_RUN))  # fmt: skip

    assert sorted(x for _, d in parts for x in per_network(d)) == per_network(whole)
    fixed = [[c for c in d["checks"] if c["where"] == "fixed"] for _, d in parts]
    assert fixed[0] == [c for c in whole["checks"] if c["where"] == "fixed"] and fixed[0]
    assert not any(fixed[1:])  # the fixed checks run once, in shard 1
    # each shard's whole-run check is its own and named for it; no case is in two files
    whole_run = [c for c in whole["checks"] if c["where"] == session.WHOLE_RUN]
    for k, (_, d) in enumerate(parts, 1):
        mine = [c for c in d["checks"] if c["where"].startswith(session.WHOLE_RUN)]
        assert [c["where"] for c in mine] == [scaling.whole_run_label(k, n)] * len(whole_run)
    together = [c for k in range(1, n + 1) for c in cases(tmp_path / f"s{k}.xml")]
    assert len(set(together)) == len(together)
    assert len(together) == len(cases(tmp_path / "whole.xml")) + (n - 1) * len(whole_run)


def test_the_shards_fail_exactly_the_networks_the_unsharded_run_fails(tmp_path):
    codes, failing, shards = [], [], []
    for k in (1, 2):
        code, data = run_json(tmp_path, f"b{k}", "--impl", "reference.bugs:dW2_times_2",
                              *SMALL, "--in-process", "--shard", f"{k}/2")  # fmt: skip
        codes.append(code)
        failing += [net["name"] for net in data["networks"] if not net["ok"]]
        shards.append(data["networks"])
    _, whole = run_json(tmp_path, "b", "--impl", "reference.bugs:dW2_times_2", *SMALL,
                        "--in-process")  # fmt: skip
    assert sorted(failing) == sorted(net["name"] for net in whole["networks"] if not net["ok"])
    assert codes == [1 if any(not n["ok"] for n in d) else 0 for d in shards]


# --- --jobs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "impl",
    first_quick(
        [
            "tests.outside.partial:MSE_ONLY",  # the first network unsupported: checks move on
            "reference.bugs:dW2_times_2",
            "backprop",
        ]
    ),
)
def test_two_jobs_give_the_report_of_one(tmp_path, impl):
    (code1, one), (code2, two) = (
        run_json(tmp_path, name, "--impl", impl, *TINY, "--jobs", jobs)
        for name, jobs in (("one", "1"), ("two", "2"))
    )
    # the reproducing command names its own --jobs; everything else is the same
    assert one.pop("command").replace("--jobs 1", "--jobs 2") == two.pop("command")
    assert (code1, one) == (code2, two)


def test_a_stateful_mistake_fails_with_any_number_of_jobs(tmp_path):
    """Gradients that accumulate across calls differ with each process's history, so which
    networks fail depends on how they were spread; the run fails either way, and by the
    checks the catalog says catch it."""
    name = "accumulating_gradients"
    for jobs in (1, 2):
        code, data = run_json(tmp_path, f"j{jobs}", "--impl", f"reference.bugs:{name}", *TINY,
                              "--jobs", str(jobs))  # fmt: skip
        failed = {c["name"] for c in data["checks"] if c["ok"] is False}
        assert code == 1 and set(CATALOG[name].caught_by) <= failed, (jobs, failed)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--jobs", "2", "--in-process"], "needs worker processes"),
    ],
)
def test_bad_jobs_are_usage_errors(argv, says, capsys):
    assert cli.main([*argv, "--networks", "0"], out=io.StringIO()) == 2
    assert says in capsys.readouterr().err


# --- the suite under pytest-xdist -----------------------------------------------------------

SUBSET = [
    "tests/test_diagnosis.py",
    "reference/suite/test_properties.py::test_update_is_w_minus_alpha_g",
    "reference/suite/test_properties.py::test_gradients_are_repeatable",
    "reference/suite/test_properties.py::test_relu_derivative_at_zero_is_a_subgradient",
]
"""A bounded subset: this repository's tests and the shipped suite, each under its conftest;
against a mistake of the update rule, so that some fail."""


def _outcomes(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return out


def xdist_runs(item, root):
    """The subset against a mistake of the update rule, serially and under ``-n 2``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}  # fmt: skip
    env.update(CI="true", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    runs = {}
    for name, extra in (("serial", []), ("xdist", ["-n", "2"])):
        where = root / f"xdist-{name}"
        argv = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *extra, *SUBSET,
                "--backprop-impl", "reference.bugs:update_wrong_sign",
                f"--junit-xml={where / 'junit.xml'}", f"--basetemp={where / 'tmp'}")  # fmt: skip
        runs[("xdist", name)] = Command(argv, ROOT, env, functools.partial(where.mkdir))
    return runs


@pytest.mark.background(declare=xdist_runs)
def test_the_suite_gives_the_same_outcomes_under_xdist(background):
    pytest.importorskip("xdist")
    results = {}
    for name in ("serial", "xdist"):
        done = background.result(("xdist", name))
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        results[name] = _outcomes(background.root / f"xdist-{name}" / "junit.xml")
    assert results["serial"] == results["xdist"]
    assert set(results["serial"].values()) == {"passed", "failure"}


def test_every_worker_times_its_networks_for_the_junit_file(tmp_path):
    """With --jobs 2 the networks checked by the second worker are timed too."""
    import xml.etree.ElementTree as ET

    from reference.report.junit import CHECKS_SUITE

    path = tmp_path / "r.xml"
    code = cli.main([*TINY, "--jobs", "2", "--quiet", "--junit-xml", str(path)], out=io.StringIO())
    suites = ET.parse(path).getroot().findall("testsuite")
    networks = [  # the checked ones: not the other checks, not those outside the scope
        s for s in suites if s.get("name") != CHECKS_SUITE and s.get("skipped") != s.get("tests")
    ]
    # TINY's four, and the networks with an L2 penalty the built-in's SUPPORTS declares
    penalised = penalty_problems(0, Scope.read(backprop.SUPPORTS, "backprop.SUPPORTS"))
    assert code == 0 and len(networks) == 4 + len(penalised)
    assert all(float(s.get("time")) > 0 for s in networks), [s.get("time") for s in networks]
