"""How long grading a class takes, one submission at a time against two at once.

    python benchmarks/grading.py [--submissions 50] [--jobs 1,2] [--rubric PATH]

Writes ``--submissions`` generated submissions into a temporary folder (the built-in
implementation and the catalogued mistakes of ``reference.bugs`` in turn, each a file that
imports its members), grades the folder with ``backprop-check --submissions`` at each
``--jobs``, in the same run, and prints the wall time of each and their ratio to the first.
Each run starts with an empty JAX compilation cache, as a fresh ``--submissions`` does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reference.bugs import CATALOG

ROOT = Path(__file__).resolve().parent.parent


def write_class(folder: Path, count: int) -> None:
    """``count`` submissions: the built-in, then each catalogued mistake, and again."""
    sources = ["from backprop import forward, gradients, loss, update\n"] + [
        f"from reference.bugs import {name} as _impl\n\n"
        "loss, gradients = _impl.loss, _impl.gradients\n"
        "forward, update = _impl.forward, _impl.update\n"
        for name in CATALOG
    ]
    folder.mkdir(parents=True)
    for k in range(count):
        (folder / f"student_{k + 1:03d}.py").write_text(sources[k % len(sources)])


def grade(folder: Path, out: Path, jobs: int, rubric: str | None) -> float:
    """Seconds of one ``backprop-check --submissions`` run, in a fresh process."""
    command = [sys.executable, "-m", "reference.frontends.cli", "--submissions", str(folder),
               "--grades", str(out), "--jobs", str(jobs), "--quiet"]  # fmt: skip
    if rubric:
        command += ["--rubric", rubric]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # each run builds its own cache
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=out.parent, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values")
    parser.add_argument("--rubric", help="a rubric TOML (default: the shipped one)")
    args = parser.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="backprop-grading-bench-") as tmp:
        folder = Path(tmp) / "class"
        write_class(folder, args.submissions)
        seconds = {}
        for j in jobs:
            seconds[j] = grade(folder, Path(tmp) / f"grades-{j}", j, args.rubric)
            print(f"--jobs {j}: {args.submissions} submissions in {seconds[j]:.1f} s "
                  f"({seconds[j] / args.submissions:.2f} s each)")  # fmt: skip
        first = jobs[0]
        for j in jobs[1:]:
            print(f"--jobs {first} / --jobs {j}: {seconds[first] / seconds[j]:.2f}x")
    print(f"cores: {os.cpu_count()}; load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
