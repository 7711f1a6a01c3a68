"""How long grading a class takes: per submission, at ``--jobs 1`` and ``--jobs 2``, and
against another revision of the harness in the same run.

    python benchmarks/grading.py [--submissions 50] [--jobs 1,2] [--against REV] [--rubric PATH]

Writes ``--submissions`` generated submissions into a temporary folder: a student's
implementation written from the formulas (``tests/submissions/honest.py``) and copies of it
with one planted mistake each (:data:`MISTAKES`), in turn; none imports the harness or the
built-in package, so that the grading policy passes them all. Grades the folder with
``backprop-check --submissions`` at each ``--jobs``; with ``--against REV`` the same folder
is graded by that git revision of the harness too (checked out into a temporary worktree),
interleaved run by run so that both see the same machine load. Prints the wall time, the
seconds per submission and each one's ratio to the first row of its ``--jobs``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HONEST = ROOT / "tests" / "submissions" / "honest.py"

MISTAKES = {
    "honest": ("", ""),
    "no_1_over_m": ("dZ = (A - Y) / m", "dZ = A - Y"),
    "dW_times_2": ("grads.append((dZ @ A_prev.T", "grads.append((2 * dZ @ A_prev.T"),
    "db_mean": ("dZ.sum(axis=1, keepdims=True)", "dZ.mean(axis=1, keepdims=True)"),
    "sign_flip": ("dZ = (A - Y) / m", "dZ = (Y - A) / m"),
    "tanh_grad": (
        '"tanh": (np.tanh, lambda z, a: 1.0 - a**2)',
        '"tanh": (np.tanh, lambda z, a: 1.0 - a)',
    ),
    "update_sign": ("W - learning_rate * dW", "W + learning_rate * dW"),
}
"""A planted mistake per kind: the text of the honest submission replaced, and by what."""


def write_class(folder: Path, count: int) -> None:
    """``count`` submissions: the honest one and each mistake in turn."""
    honest = HONEST.read_text()
    folder.mkdir(parents=True)
    names = list(MISTAKES)
    for k in range(count):
        name = names[k % len(names)]
        old, new = MISTAKES[name]
        if old and old not in honest:
            raise ValueError(f"mistake {name!r}: {old!r} is not in {HONEST}")
        (folder / f"student_{k + 1:03d}_{name}.py").write_text(honest.replace(old, new))


def grade(root: Path, folder: Path, out: Path, jobs: int, rubric: str | None) -> float:
    """Seconds of one ``backprop-check --submissions`` run of the harness at ``root``, in a
    fresh process."""
    command = [sys.executable, "-m", "reference.frontends.cli", "--submissions", str(folder),
               "--grades", str(out), "--jobs", str(jobs), "--quiet"]  # fmt: skip
    if rubric:
        command += ["--rubric", rubric]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # each run builds its own cache
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=root, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values")
    parser.add_argument("--against", metavar="REV", help="also grade with this git revision")
    parser.add_argument("--rubric", help="a rubric TOML (default: the shipped one)")
    args = parser.parse_args()
    if args.submissions < 1:
        parser.error(f"--submissions must be >= 1, got {args.submissions}")
    jobs = [int(j) for j in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="backprop-grading-bench-") as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "class"
        write_class(folder, args.submissions)
        harnesses = [("this tree", ROOT)]
        if args.against:
            old = tmp_path / "against"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                            args.against], check=True, capture_output=True)  # fmt: skip
            harnesses.append((f"revision {args.against}", old))
        try:
            print(f"grading {args.submissions} submissions ({len(MISTAKES) - 1} kinds of "
                  f"mistake and honest ones), the default rubric unless --rubric")  # fmt: skip
            print(f"{'harness':<28} {'jobs':>4} {'wall s':>8} {'s/submission':>13} {'ratio':>6}")
            for j in jobs:
                first = None
                for label, root in harnesses:
                    out = tmp_path / f"grades-{j}-{len(label)}"
                    seconds = grade(root, folder, out, j, args.rubric)
                    first = first or seconds
                    per = seconds / args.submissions
                    print(
                        f"{label:<28} {j:>4} {seconds:>8.1f} {per:>13.2f} {seconds / first:>6.2f}"
                    )
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tmp_path / "against")], capture_output=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
