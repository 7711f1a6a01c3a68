"""What the quick tier of the suite runs of the command-line interface, the worker and the
plugin, against the whole suite: lines and branches, child processes included.

    python -m benchmarks.tier_coverage                  # the working tree
    python -m benchmarks.tier_coverage --rev HEAD       # one revision, exported
    python -m benchmarks.tier_coverage -- -x            # pytest's arguments after --
    python -m benchmarks.tier_coverage --keep DIR       # keep the data; --from DIR reads it

It runs the suite twice under coverage.py (7.10 or later; not a dependency of the project:
``python -m pip install coverage``): as ``python -m pytest`` (the quick tier, ``tests/tiers.py``)
and with ``--all`` (both tiers). ``[run] patch = subprocess`` measures every Python process a
test starts as well: ``backprop-check``, the shipped suite's runs and the workers. For each
module of ``reference/frontends/``, ``reference/boundary/`` and ``reference/suite/`` it prints
the lines and branches the whole suite runs and the quick tier does not; for the rest of
``reference/``, the totals.

Two kinds of process are measured by neither run: one killed by a signal (a hang the harness
stops writes no data), and a grading worker, whose environment is reduced to a few variables
(``reference/boundary/isolation.py``) and so loses coverage's. The worker's code is measured in
the workers of ``backprop-check``, which keep the environment.

Exit status: 0 when the quick tier runs every line and branch of those folders that the whole
suite runs, 1 when it does not, 2 when either run failed or measured none of them. ``--from``
reads the sources where they were when the runs were made: with ``--rev``, the export kept
under ``--keep``; without it, the working tree as it is now.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .suite_processes import one_revision_parser
from .suite_time import ROOT, export, split_args

FRONT = ("frontends", "boundary", "suite")
"""The folders of ``reference/`` whose every line the quick tier must keep running."""
TIERS = {"quick": [], "whole": ["--all"]}
_RC = """[run]
branch = true
parallel = true
source = {source}
data_file = {data}
patch =
    subprocess
    _exit
"""


def measure(where: Path, label: str, extra: list[str], tmp: Path) -> tuple[object, int]:
    """The suite in ``where`` under coverage, with ``extra`` arguments: its combined data, and
    pytest's exit status."""
    folder = tmp / label
    folder.mkdir()
    rc = folder / "coveragerc"
    rc.write_text(_RC.format(source=where / "reference", data=folder / ".coverage"))
    command = [sys.executable, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", "-q"]
    env = dict(os.environ)  # ``where`` first on the path, as benchmarks.suite_time runs it
    paths = [str(where), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    done = subprocess.run(
        [*command, "-p", "no:cacheprovider", *extra],
        cwd=where, env=env, capture_output=True, text=True,
    )  # fmt: skip
    last = (done.stdout.strip() or done.stderr.strip() or "(no output)").splitlines()[-1]
    print(f"{label}: exit {done.returncode}: {last}", file=sys.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            print(f"  {line}", file=sys.stderr)
    (folder / "status").write_text(str(done.returncode))  # for --from
    return load(rc, combine=True), done.returncode


def load(rc: Path, combine: bool = False) -> object:
    """The data of the run configured by ``rc`` (its processes' files combined first)."""
    import coverage

    cov = coverage.Coverage(config_file=str(rc))
    if combine:
        cov.combine(strict=True)  # no data at all is an error, not an empty run
        cov.save()
    cov.load()
    return cov


def ranges(lines: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``"3-5, 9"``."""
    spans: list[list[int]] = []
    for line in sorted(lines):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def compare(quick, whole, source: Path) -> tuple[list[str], int, int]:
    """The report; how many lines and branches of the front folders only the whole suite
    runs; how many front modules the whole suite ran at all."""
    q, w = quick.get_data(), whole.get_data()
    lost, measured, rest = 0, 0, [0, 0, 0]
    lines = [
        "module: statements; run by the whole suite, by the quick tier; what only the whole runs"
    ]
    for path in sorted(source.rglob("*.py")):
        name = str(path.relative_to(source.parent))
        statements = set(whole.analysis2(str(path))[1])
        ran_w = set(w.lines(str(path)) or ()) & statements
        ran_q = set(q.lines(str(path)) or ()) & statements
        if path.relative_to(source).parts[0] not in FRONT:
            rest[0] += len(statements)
            rest[1] += len(ran_w)
            rest[2] += len(ran_q)
            continue
        measured += bool(ran_w)
        only = sorted(ran_w - ran_q)
        arcs = {a for a in (w.arcs(str(path)) or ()) if min(a) > 0} - set(q.arcs(str(path)) or ())
        arcs = {a for a in arcs if a[0] not in only}  # a branch from a line the tier never runs
        lost += len(only) + len(arcs)
        line = f"  {name}: {len(statements)}; {len(ran_w)}, {len(ran_q)}"
        if only:
            line += f"; lines {ranges(only)}"
        if arcs:
            line += "; branches " + ", ".join(f"{a}->{b}" for a, b in sorted(arcs))
        lines.append(line)
    lines.append(
        f"the rest of reference/: {rest[0]} statements; the whole suite runs {rest[1]}, "
        f"the quick tier {rest[2]}"
    )
    return lines, lost, measured


def main(argv: list[str] | None = None) -> int:
    ours, pytest_args = split_args(argv)
    parser = one_revision_parser("tier_coverage", __doc__)
    parser.add_argument("--keep", type=Path, help="write the runs' data to this new folder")
    parser.add_argument(
        "--from", dest="source", type=Path, help="compare the runs kept in this folder again"
    )
    args = parser.parse_args(ours)
    try:
        import coverage
    except ImportError:
        parser.error("needs coverage.py 7.10 or later: python -m pip install coverage")
    version = re.match(r"(\d+)\.(\d+)", coverage.__version__)
    if version is None or tuple(map(int, version.groups())) < (7, 10):
        parser.error(
            f"needs coverage.py 7.10 or later (patch = subprocess): {coverage.__version__}"
        )
    if args.source is not None:
        if args.rev or args.keep or pytest_args:
            parser.error("--from compares runs already made: --rev, --keep and pytest's "
                         "arguments do not apply")  # fmt: skip
        runs = {
            label: (load(args.source / label / "coveragerc"),
                    int((args.source / label / "status").read_text()))
            for label in TIERS
        }  # fmt: skip
        source = Path((args.source / "source").read_text())
        report = compare(runs["quick"][0], runs["whole"][0], source)
    else:
        if args.keep is not None and args.keep.exists():
            parser.error(f"--keep: {args.keep} exists; name a new folder")
        with tempfile.TemporaryDirectory(prefix="tier-coverage-") as tmp:
            folder = (args.keep or Path(tmp)).resolve()
            folder.mkdir(exist_ok=args.keep is None)
            where = export(args.rev, folder) if args.rev else ROOT
            source = where / "reference"
            (folder / "source").write_text(str(source))
            runs = {
                label: measure(where, label, [*extra, *pytest_args], folder)
                for label, extra in TIERS.items()
            }
            report = compare(runs["quick"][0], runs["whole"][0], source)
    lines, lost, measured = report
    print("\n".join(lines))
    front = f"reference/{{{','.join(FRONT)}}}"
    print(f"lines and branches of {front} that only the whole suite runs: {lost}")
    failed = [label for label, (_, status) in runs.items() if status != 0]
    why = [f"the {label} run failed" for label in failed]
    why += [] if measured else [f"the whole suite ran no module of {front}"]
    if why:
        print(f"not a comparison: {'; '.join(why)}")
        return 2
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
