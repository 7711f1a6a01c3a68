"""Mutation scores (mutmut 3.x, hypothesis "ci" profile).

    python -m pip install -e ".[test,mutation]"
    python benchmarks/run_mutation.py                    # backprop/: runs mutmut, prints counts
    python benchmarks/run_mutation.py --report           # only the counts of the last run
    python benchmarks/run_mutation.py --target judging   # the harness's judging core
    python benchmarks/run_mutation.py --target judging --sample 400   # a random 400 of them
    python benchmarks/run_mutation.py --target judging --resume       # the rest of a stopped one
    python benchmarks/run_mutation.py --target judging --report --sample 400 \
        --equivalent benchmarks/equivalent-mutants.txt               # per module, equivalents out
    python benchmarks/run_mutation.py --target judging --resume       # the sample's unchecked

``--sample N`` runs N mutants drawn at random (``--sample-seed``) from all that mutmut
generates and gives the score of the sample with its 95% Wilson interval: an estimate of
the whole score in a fraction of the time (mutant sampling; Wong and Mathur, "Reducing the
cost of mutation testing: an empirical study", JSS 31(3), 1995, found a 10% random sample
to estimate adequacy closely).

``backprop`` uses ``[tool.mutmut]`` in pyproject.toml and runs here. ``judging`` mutates
the judging core (checker, diagnosis, finite differences, checks) against the tests that
judge it; mutmut reads one configuration, so that run happens in a copy of the tracked
files with its own ``[tool.mutmut]`` (``--workdir``, default a folder under the system's
temporary directory, kept for ``--report``). ``benchmarks/recheck_mutants.py`` runs the
survivors against tests written after the run; ``--report`` counts its verdicts. Survivors
and why each survives: benchmarks/MUTATION.md.

``--resume`` finishes a sample that was stopped: it leaves the work folder's copy as it is
(so that the mutants keep their names and the run its tests) and runs the sample's mutants
that are not checked yet in a random order (``--sample-seed``), so that a resume stopped
early has checked a uniform part of them (mutmut's own order runs the fastest first). Each
mutant runs the tests that mutmut's stats say reach its function, stopping at the first
failure, all in one pytest process (``recheck_mutants.py``'s driver); the verdicts go to
``mutants-resume.json``, which ``--report`` and ``recheck_mutants.py`` read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JUDGING = {
    "paths_to_mutate": [
        "reference/judging/checker.py",
        "reference/judging/diagnosis.py",
        "reference/judging/checks.py",
        "reference/oracles/finite_diff.py",
    ],
    "also_copy": ["reference/", "backprop/", "tests/"],
    "tests": [
        "tests/test_checker.py",
        "tests/test_diagnosis.py",
        "tests/test_directional.py",
        "tests/test_fixed_checks.py",
        "tests/test_check_results.py",
        "tests/test_html.py",
        "tests/test_catalog.py",
        "tests/test_oracles.py",
        "tests/test_false_alarms.py",
        "tests/test_float32.py",
        "tests/test_suite_catches_mistakes.py",
        "reference/suite/test_properties.py",
    ],
}
"""The judging core and the tests that judge it in-process (the CLI, plugin, scope and
hostile-implementation tests run subprocesses, which neither see the mutants nor fit in
mutmut's stats run)."""


def judging_workdir(workdir: Path, refresh: bool = True) -> Path:
    """A copy of the tracked files (refreshed unless ``refresh`` is False) whose
    ``[tool.mutmut]`` targets the judging core.

    Without ``refresh``, a configuration already there is kept: mutmut fingerprints its test
    selection and, when that changes, throws away every result of the run."""
    if refresh or not (workdir / "pyproject.toml").exists():
        files = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        for name in files:
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
    pyproject = (workdir / "pyproject.toml").read_text()
    if not refresh and "[tool.mutmut]" in pyproject:
        return workdir
    head = pyproject.split("[tool.mutmut]")[0]
    quoted = lambda items: "[" + ", ".join(f'"{i}"' for i in items) + "]"  # noqa: E731
    config = (
        "[tool.mutmut]\n"
        f"source_paths = {quoted(JUDGING['paths_to_mutate'])}\n"
        f"also_copy = {quoted(JUDGING['also_copy'])}\n"
        'process_isolation = "forkserver"\n'
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        f"pytest_add_cli_args_test_selection = {quoted(JUDGING['tests'])}\n"
    )
    (workdir / "pyproject.toml").write_text(head + config)
    return workdir


# mutmut from the environment running this script, even when its bin/ is not on PATH
MUTMUT = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"


def statuses(cwd: Path) -> dict[str, str]:
    """Every generated mutant's name and its status ("killed", "survived", "not checked"...)."""
    out = subprocess.run(
        [MUTMUT, "results", "--all", "true"], capture_output=True, text=True, cwd=cwd
    )
    found = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def rechecked(cwd: Path) -> dict[str, str]:
    """Survivors run again against tests written since (benchmarks/recheck_mutants.py)."""
    path = cwd / "mutants-recheck.json"
    return json.loads(path.read_text()) if path.exists() else {}


def resumed(cwd: Path) -> dict[str, str]:
    """Mutants of a stopped sample run by ``--resume``."""
    path = cwd / "mutants-resume.json"
    return json.loads(path.read_text()) if path.exists() else {}


def resume(cwd: Path, names: list[str], seed: int, env: dict[str, str]) -> None:
    """Run the mutants among ``names`` that neither mutmut nor an earlier resume checked, in
    a random order, each against the tests that reach its function (fastest first)."""
    from recheck_mutants import _DRIVER, PER_MUTANT_S

    done = resumed(cwd)
    found = {**statuses(cwd), **done}
    todo = [n for n in names if found.get(n, "not checked") == "not checked"]
    random.Random(seed).shuffle(todo)
    stats = json.loads((cwd / "mutants" / "mutmut-stats.json").read_text())
    tests, duration = stats["tests_by_mangled_function_name"], stats["duration_by_test"]
    plan = []
    for name in todo:
        reach = sorted(tests.get(name.partition("__mutmut_")[0], []),
                       key=lambda t: duration.get(t, 0.0))  # fmt: skip
        if reach:
            plan.append((name, reach))
        else:
            done[name] = "no tests"
    out = cwd / "mutants-resume.json"
    out.write_text(json.dumps(done, indent=1))
    print(f"resuming a sample of {len(names)}: {len(todo)} not checked yet, in a random order")
    plan_file = cwd / "mutants-resume-plan.json"
    plan_file.write_text(json.dumps(plan))
    subprocess.run(
        [sys.executable, "-c", _DRIVER, str(plan_file), str(out), str(PER_MUTANT_S), "none"],
        cwd=cwd / "mutants", env={**env, "PYTHONPATH": str(cwd / "mutants")}, check=False,
    )  # fmt: skip


def results(cwd: Path, names: list[str] | None = None) -> Counter:
    """How many mutants have each status: all of them, or those in ``names``."""
    found = {**statuses(cwd), **resumed(cwd), **rechecked(cwd)}
    return Counter(found[n] for n in (names if names is not None else found) if n in found)


def read_names(path: Path) -> set[str]:
    """Mutant names, one a line; ``#`` starts a comment."""
    return {line.split("#")[0].strip() for line in path.read_text().splitlines()} - {""}


def module_table(cwd: Path, names: list[str], equivalent: set[str]) -> str:
    """The sample per mutated module, as a Markdown table: how many were drawn, checked,
    killed (time-outs included) and survived, how many survivors are equivalent, and the
    share of the non-equivalent that were killed, with its 95% Wilson interval."""
    found = {**statuses(cwd), **resumed(cwd), **rechecked(cwd)}
    rows = ["| module | sampled | checked | killed | survived | equivalent | killed of the "
            "non-equivalent |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    modules = [*sorted({n.rsplit(".", 1)[0] for n in names}), "all"]
    for module in modules:
        mine = [n for n in names if module == "all" or n.rsplit(".", 1)[0] == module]
        status = [found.get(n, "not checked") for n in mine]
        killed = sum(s in ("killed", "timeout") for s in status)
        alive = [n for n, s in zip(mine, status) if s in ("survived", "no tests")]
        same = sum(n in equivalent for n in alive)
        judged = killed + len(alive) - same
        low, high = wilson(killed, judged)
        score = (
            f"{killed}/{judged} = {100 * killed / judged:.1f}% ({100 * low:.1f}-{100 * high:.1f}%)"
        )
        name = module if module == "all" else f"`{module.rsplit('.', 1)[-1]}.py`"
        rows.append(f"| {name} | {len(mine)} | {killed + len(alive)} | {killed} | {len(alive)} "
                    f"| {same} | {score if judged else '-'} |")  # fmt: skip
    return "\n".join(rows)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion k/n (Wilson, JASA 22, 1927)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--target", choices=("backprop", "judging"), default="backprop")
    parser.add_argument("--sample", type=int, metavar="N", help="run N mutants drawn at random")
    parser.add_argument("--sample-seed", type=int, default=0, metavar="S")
    parser.add_argument(
        "--equivalent",
        type=Path,
        metavar="FILE",
        help="with --report: survivors found equivalent (one name a line), left out of the "
        "score, which is then given per module",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="run the unchecked mutants of the work folder's sample (judging only)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "backprop-harness-mutation-judging",
        help="where the judging run copies the tracked files (kept for --report)",
    )
    args = parser.parse_args()
    if args.resume and (args.target != "judging" or args.sample is not None):
        parser.error("--resume: expected --target judging without --sample")
    cwd = ROOT
    if args.target == "judging":
        args.workdir.mkdir(parents=True, exist_ok=True)
        cwd = judging_workdir(args.workdir, refresh=not (args.report or args.resume))
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    run = [MUTMUT, "run", "--max-children", str(args.max_children)]
    names = None
    if args.resume:
        sample = cwd / "mutants-sample.txt"
        if not sample.exists():
            parser.error(f"--resume: expected a sample in {sample}, found none")
        names = sample.read_text().split()
        resume(cwd, names, args.sample_seed, env)
    elif args.sample is not None:
        if not args.report:  # generate the mutants (and the stats) without running any
            subprocess.run([*run, "no-such-mutant"], env=env, check=False, cwd=cwd)
        every = sorted(statuses(cwd))
        rng = random.Random(args.sample_seed)
        names = sorted(rng.sample(every, min(args.sample, len(every))))
        (cwd / "mutants-sample.txt").write_text("\n".join(names) + "\n")
        print(f"a sample of {len(names)} of the {len(every)} mutants (seed {args.sample_seed})")
    if not (args.report or args.resume):
        subprocess.run([*run, *(names or [])], env=env, check=False, cwd=cwd)
    if args.equivalent is not None and names is not None:
        print(module_table(cwd, names, read_names(args.equivalent)))
    counts = results(cwd, names)
    killed, timeout = counts.get("killed", 0), counts.get("timeout", 0)
    survived = counts.get("survived", 0) + counts.get("no tests", 0)  # no test: not killed
    tested = killed + survived + timeout
    print(dict(counts))
    if tested:
        low, high = wilson(killed + timeout, tested)
        interval = f" (95% interval {100 * low:.1f}-{100 * high:.1f}%)" if names else ""
        score = 100 * (killed + timeout) / tested
        print(f"killed {killed}, survived {survived}, timed out {timeout}: "
              f"{score:.1f}% of {tested} mutants killed{interval}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
