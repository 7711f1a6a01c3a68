"""The test suite's wall and CPU time, for one or two git revisions side by side, optionally
beside a CPU hog.

    python -m benchmarks.suite_time                             # the working tree, as it is
    python -m benchmarks.suite_time --rev main --rev HEAD       # two revisions, alternated
    python -m benchmarks.suite_time --rev main --rev HEAD --repeat 3
    python -m benchmarks.suite_time --load 8                    # beside 8 busy processes
    python -m benchmarks.suite_time -- tests/test_datasets.py   # pytest's arguments after --

Each revision is exported with ``git archive`` into a temporary directory (no worktree is
registered, nothing in the repository changes) and its suite runs there as the README says,
``python -m pytest -q -p no:cacheprovider`` (plus the arguments after ``--``), with
``PYTHONPATH`` set to that directory so that its ``backprop`` and ``reference`` are the ones
imported. With no ``--rev`` the working tree runs in place. The environment is passed on as
it is: prefix ``CI=true`` for the ``ci`` Hypothesis profile.

Wall time is the run's own; CPU time is user + system of every process the run waited for
(``resource.getrusage(RUSAGE_CHILDREN)``: pytest, the processes it starts and their workers,
as long as each was waited for by its parent; a process left running is not counted). With
two revisions the runs alternate (A, B, A, B, ...) on the same machine, medians are printed
and the ratio is the second revision's over the first's.

``--load N`` starts N busy processes (``nice`` 0, one spin loop each) before every run and
ends them after it: "the suite passes at load 8" is ``--load 8``. Their own CPU time is not
counted (the figures are taken before they are reaped). Run it on an otherwise quiet machine:
on a shared one the figures measure the neighbours too.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
_SPIN = "while True:\n    pass\n"


@dataclass
class Run:
    """One run of the suite: where, how long, what pytest said."""

    label: str
    wall: float
    cpu: float
    returncode: int
    summary: str
    stdout: str


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (a commit, branch or tag of this repository) under ``into``."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    where = into / f"{rev.replace('/', '_')}-{commit[:10]}"
    where.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(where)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return where


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` busy processes, one spin loop each."""
    return [
        subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL) for _ in range(n)
    ]


def stop_load(hogs: list[subprocess.Popen]) -> None:
    for hog in hogs:
        hog.kill()
    for hog in hogs:
        hog.wait()


def run_suite(
    where: Path,
    label: str,
    pytest_args: list[str],
    load: int = 0,
    env: dict | None = None,
    prefix: tuple[str, ...] = (),
) -> Run:
    """The suite in ``where`` (its own ``PYTHONPATH``), timed; ``load`` busy processes beside;
    ``env``: variables set for it on top of this process's environment; ``prefix``: a command
    that runs pytest (a profiler); what the run's CPU time counts then depends on it."""
    env = {**os.environ, **(env or {})}
    paths = [str(where), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    hogs = start_load(load)
    try:
        cpu = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(
            [*prefix, sys.executable, *PYTEST, *pytest_args],
            cwd=where, env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        cpu = _children_cpu() - cpu  # before the hogs are reaped: their time is not counted
    finally:
        stop_load(hogs)
    lines = (done.stdout.strip() or done.stderr.strip() or "(no output)").splitlines()
    return Run(label, wall, cpu, done.returncode, lines[-1], done.stdout)


def failures(run: Run) -> list[str]:
    """The lines of pytest's short summary that name a test that failed or erred."""
    return [line for line in run.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def measure(
    revs: list[str], pytest_args: list[str], repeat: int = 1, load: int = 0
) -> dict[str, list[Run]]:
    """Every revision's runs (the working tree's, under ``"worktree"``, when ``revs`` is
    empty), the revisions alternated within each repeat."""
    runs: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="suite-time-") as tmp:
        places = {rev: export(rev, Path(tmp)) for rev in revs} or {"worktree": ROOT}
        for r in range(repeat):
            order = list(places) if r % 2 == 0 else list(places)[::-1]
            for label in order:
                run = run_suite(places[label], label, pytest_args, load)
                print(
                    f"  {label}: {run.wall:7.1f} s wall {run.cpu:7.1f} s CPU  "
                    f"exit {run.returncode}: {run.summary}",
                    file=sys.stderr,
                )
                for line in failures(run):
                    print(f"    {line}", file=sys.stderr)
                runs.setdefault(label, []).append(run)
    return runs


def render(runs: dict[str, list[Run]], load: int) -> list[str]:
    """Medians per revision, and the second's over the first's."""
    lines = [f"the suite, {sum(len(r) for r in runs.values())} runs, load {load} beside it:"]
    medians = {}
    for label, done in runs.items():
        wall = statistics.median(r.wall for r in done)
        cpu = statistics.median(r.cpu for r in done)
        medians[label] = (wall, cpu)
        failed = sum(r.returncode != 0 for r in done)
        lines.append(
            f"  {label:<24} {wall:8.1f} s wall {cpu:8.1f} s CPU (median of {len(done)}; "
            f"{failed} with a nonzero exit)  last: {done[-1].summary}"
        )
    if len(medians) == 2:
        (a, (wa, ca)), (b, (wb, cb)) = medians.items()
        lines.append(f"  ratio {b} / {a}: wall {wb / wa:.2f}, CPU {cb / ca:.2f}")
    return lines


def split_args(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """The command's own arguments and pytest's (those after ``--``); ``argv`` None: the
    command line's."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def main(argv: list[str] | None = None) -> int:
    ours, pytest_args = split_args(argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite_time", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--rev",
        action="append",
        default=[],
        help="a git revision to run (at most two; none: the working tree in place)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per revision (default 1)")
    parser.add_argument(
        "--load", type=int, default=0, metavar="N", help="N busy processes beside each run"
    )
    args = parser.parse_args(ours)
    if len(args.rev) > 2:
        parser.error("--rev: at most two revisions")
    if args.repeat < 1 or args.load < 0:
        parser.error("--repeat must be >= 1 and --load >= 0")
    runs = measure(args.rev, pytest_args, args.repeat, args.load)
    print("\n".join(render(runs, args.load)))
    return 0 if all(r.returncode == 0 for done in runs.values() for r in done) else 1


if __name__ == "__main__":
    raise SystemExit(main())
