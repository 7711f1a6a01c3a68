"""Mutation scores (mutmut 3.x, hypothesis "ci" profile).

    python -m pip install -e ".[test,mutation]"
    python benchmarks/run_mutation.py                    # backprop/: runs mutmut, prints counts
    python benchmarks/run_mutation.py --report           # only the counts of the last run
    python benchmarks/run_mutation.py --target judging   # the harness's judging core

``backprop`` uses ``[tool.mutmut]`` in pyproject.toml and runs here. ``judging`` mutates
the judging core (checker, diagnosis, finite differences, checks) against the tests that
judge it; mutmut reads one configuration, so that run happens in a copy of the tracked
files with its own ``[tool.mutmut]`` (``--workdir``, default a folder under the system's
temporary directory, kept for ``--report``). Survivors and why each survives:
benchmarks/MUTATION.md.
"""

from __future__ import annotations

import argparse
import os
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
    ``[tool.mutmut]`` targets the judging core."""
    if refresh or not (workdir / "pyproject.toml").exists():
        files = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        for name in files:
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
    pyproject = (workdir / "pyproject.toml").read_text()
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


def results(cwd: Path) -> Counter:
    out = subprocess.run(
        [MUTMUT, "results", "--all", "true"], capture_output=True, text=True, cwd=cwd
    )
    counts: Counter = Counter()
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            counts[m.group(2).strip()] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--target", choices=("backprop", "judging"), default="backprop")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "backprop-harness-mutation-judging",
        help="where the judging run copies the tracked files (kept for --report)",
    )
    args = parser.parse_args()
    cwd = ROOT
    if args.target == "judging":
        args.workdir.mkdir(parents=True, exist_ok=True)
        cwd = judging_workdir(args.workdir, refresh=not args.report)
    if not args.report:
        env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
        subprocess.run(
            [MUTMUT, "run", "--max-children", str(args.max_children)],
            env=env,
            check=False,
            cwd=cwd,
        )
    counts = results(cwd)
    killed, survived = counts.get("killed", 0), counts.get("survived", 0)
    timeout = counts.get("timeout", 0)
    tested = killed + survived + timeout
    print(dict(counts))
    if tested:
        print(f"killed {killed}, survived {survived}, timed out {timeout}: "
              f"{100 * (killed + timeout) / tested:.1f}% of {tested} mutants killed")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
