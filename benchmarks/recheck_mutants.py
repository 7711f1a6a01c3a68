"""Run the survivors of the last judging mutation run against tests written since.

    python benchmarks/recheck_mutants.py [--workdir DIR] [--skip benchmarks/equivalent-mutants.txt]

mutmut's run takes an hour and a half on two cores; tests written after it to kill its
survivors would otherwise need another. A survivor already passed every test of the run, so
only the test files that changed since can kill it: this copies them from the working tree
into a copy of the run's ``mutants/`` folder (a run still going on is left alone) and runs
them once per survivor not killed by an earlier recheck, with that mutant switched
on (mutmut's trampolines read ``MUTANT_UNDER_TEST`` at each call), all in one pytest process
so that NumPy, JAX and the compiled models are loaded once; each survivor runs the changed
files among those that judge its module directly (``TESTS_OF``), and of those only the test
functions written or changed since the run where nothing else in the file changed. Each
survivor's new status goes to ``mutants-recheck.json`` in the work folder;
``run_mutation.py --report`` counts it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_mutation import JUDGING, resumed, statuses  # noqa: E402

PER_MUTANT_S = 300
"""A mutant whose tests use more CPU seconds than this (an endless loop) counts as killed by a
time-out, as in mutmut's own run. CPU time, not the clock's: on a shared machine a niced run
may wait far longer than it computes."""

_DRIVER = r"""
import json, os, signal, sys
import pytest

plan, out, limit = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
baseline_first = sys.argv[4] == "baseline"

class TimedOut(BaseException):
    pass

def alarm(signum, frame):
    raise TimedOut

signal.signal(signal.SIGPROF, alarm)  # the process's CPU time, all threads
found = json.load(open(out)) if os.path.exists(out) else {}


class Failures:
    def __init__(self):
        self.ids = []

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.ids.append(report.nodeid)


# The baseline: with no mutant switched on, a test that fails here (it needs code written
# after the run's copy) can say nothing about the mutants, and is left out.
baseline = Failures()
if baseline_first:
    every = sorted({t for _, tests in plan for t in tests})
    os.environ["MUTANT_UNDER_TEST"] = ""
    pytest.main([*every, "-q", "-p", "no:cacheprovider", "--no-header", "--tb=no"],
                plugins=[baseline])
    print(f"left out, failing with no mutant: {baseline.ids}", file=sys.stderr, flush=True)
deselect = [arg for nodeid in baseline.ids for arg in ("--deselect", nodeid)]
for k, (name, tests) in enumerate(plan):
    os.environ["MUTANT_UNDER_TEST"] = name
    signal.setitimer(signal.ITIMER_PROF, limit)
    try:
        code = pytest.main([*tests, *deselect, "-x", "-q", "-p", "no:cacheprovider",
                            "--no-header", "--tb=no"])
        found[name] = "survived" if code == 0 else "killed" if code == 1 else f"error {int(code)}"
    except TimedOut:
        found[name] = "timeout"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    print(f"[{k + 1}/{len(plan)}] {name}: {found[name]}", file=sys.stderr, flush=True)
    with open(out, "w") as f:
        json.dump(found, f, indent=1)
"""


TESTS_OF = {
    "reference.judging.checker": ["tests/test_checker.py"],
    "reference.judging.checker.xǁReportǁ_repr_html_": ["tests/test_html.py"],
    "reference.judging.checks": ["tests/test_fixed_checks.py", "tests/test_check_results.py"],
    "reference.judging.checks.xǁCheckResultǁ_repr_html_": ["tests/test_html.py"],
    "reference.judging.diagnosis": ["tests/test_diagnosis.py"],
    "reference.oracles.finite_diff": ["tests/test_directional.py", "tests/test_oracles.py"],
}
"""The test files that judge each module (or one function, the longest name that matches)
directly: a survivor is run against those of them that changed (the others passed with it
already), so that the recheck takes minutes."""


def changed_tests(workdir: Path) -> list[str]:
    """The judging tests the run did not have: not in its selection, or whose text in the
    working tree differs from the run's copy."""
    config = (workdir / "pyproject.toml").read_text().split("[tool.mutmut]")[-1]
    return [
        name
        for name in JUDGING["tests"]
        if (ROOT / name).exists()
        and (
            f'"{name}"' not in config
            or not (workdir / name).exists()
            or (ROOT / name).read_bytes() != (workdir / name).read_bytes()
        )
    ]


def _top_level(path: Path) -> dict[str, str]:
    """A test file's top-level statements, each as its syntax tree's dump (no line numbers):
    functions and classes under their names, anything else under its own dump."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        dump = ast.dump(node)
        found[getattr(node, "name", dump)] = dump
    return found


def what_can_kill(workdir: Path, name: str) -> list[str]:
    """What of a changed test file can kill a survivor: the test functions that are new or
    changed since the run's copy; the whole file when the run did not select it or when
    anything else the run's tests use (a helper, a fixture, an import) changed or went."""
    config = (workdir / "pyproject.toml").read_text().split("[tool.mutmut]")[-1]
    if f'"{name}"' not in config or not (workdir / name).exists():
        return [name]
    old, new = _top_level(workdir / name), _top_level(ROOT / name)
    if any(new.get(k) != v for k, v in old.items() if not k.startswith("test_")):
        return [name]
    return [f"{name}::{k}" for k, v in new.items() if k.startswith("test_") and old.get(k) != v]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "backprop-harness-mutation-judging",
    )
    parser.add_argument(
        "--skip",
        type=Path,
        metavar="FILE",
        help="survivors not to run (one name a line, # comments): those found equivalent",
    )
    args = parser.parse_args()
    out = args.workdir / "mutants-recheck.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    skip = set()
    if args.skip is not None:
        lines = args.skip.read_text().splitlines()
        skip = {line.split("#")[0].strip() for line in lines} - {""}
    survivors = sorted(
        n
        for n, s in {**statuses(args.workdir), **resumed(args.workdir)}.items()
        if s in ("survived", "no tests")
        and done.get(n) not in ("killed", "timeout")
        and n not in skip
    )
    tests = changed_tests(args.workdir)
    if not tests:
        print("no test file changed since the run: nothing can kill its survivors")
        return 0
    # A copy of mutmut's folder, so that a run still going on there is left alone; the run's
    # own copy of the tests stays as it was.
    mutants = args.workdir / "mutants-recheck"
    if mutants.exists():
        shutil.rmtree(mutants)
    shutil.copytree(args.workdir / "mutants", mutants)
    for name in tests:
        shutil.copy2(ROOT / name, mutants / name)
    plan = []
    ids = {t: what_can_kill(args.workdir, t) for t in tests}
    for name in survivors:
        keys = [k for k in TESTS_OF if name.startswith(k + "_") or name.startswith(k + ".")]
        mine = [
            i for t in (TESTS_OF[max(keys, key=len)] if keys else tests) for i in ids.get(t, [])
        ]
        if mine:
            plan.append((name, mine))
    print(f"{len(plan)} of {len(survivors)} survivors against what changed of {', '.join(tests)}")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", "PYTHONPATH": str(mutants)}
    plan_file = args.workdir / "mutants-recheck-plan.json"
    plan_file.write_text(json.dumps(plan))
    subprocess.run(
        [sys.executable, "-c", _DRIVER, str(plan_file), str(out), str(PER_MUTANT_S), "baseline"],
        cwd=mutants, env=env, check=False,
    )  # fmt: skip
    found = json.loads(out.read_text()) if out.exists() else {}
    killed = sum(s in ("killed", "timeout") for s in found.values())
    print(f"rechecked {len(found)} survivors in all: {killed} now killed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
