"""Mutation score of the test suite on ``backprop/`` (mutmut 3.x, hypothesis "ci" profile).

    python -m pip install -e ".[test,mutation]"
    python benchmarks/run_mutation.py            # runs mutmut, then prints the counts
    python benchmarks/run_mutation.py --report   # only the counts of the last run

Configuration: ``[tool.mutmut]`` in pyproject.toml. Survivors and why each survives:
benchmarks/MUTATION.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# mutmut from the environment running this script, even when its bin/ is not on PATH
MUTMUT = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"


def results() -> Counter:
    out = subprocess.run([MUTMUT, "results", "--all", "true"], capture_output=True, text=True)
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
    args = parser.parse_args()
    if not args.report:
        env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
        subprocess.run(
            [MUTMUT, "run", "--max-children", str(args.max_children)], env=env, check=False
        )
    counts = results()
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
