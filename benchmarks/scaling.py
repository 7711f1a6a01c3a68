"""Wall time of scaling out, as ratios measured side by side: the default ``backprop-check``
at ``--jobs 1`` against ``--jobs N``, and the ``ci`` test suite (``CI=true python -m pytest``)
serially against ``-n N``.

    python benchmarks/scaling.py                 # backprop-check only, 3 rounds
    python benchmarks/scaling.py --suite         # and the test suite (minutes per run)
    python benchmarks/scaling.py --rounds 5 --jobs 4

Each round runs both variants back to back, alternating which goes first, so that a load
that comes and goes on a shared machine falls on both; the ratio of each round is printed,
then their range. The load average (``os.getloadavg``) is printed before and after: on a
machine shared with other work, read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode


def _compare(name: str, one: list[str], many: list[str], rounds: int, env: dict) -> None:
    ratios = []
    for r in range(rounds):
        pair = [("one", one), ("many", many)]
        if r % 2:
            pair.reverse()
        seconds = {}
        for label, argv in pair:
            seconds[label], code = _timed(argv, env)
            if code not in (0, 1):
                sys.exit(f"{' '.join(argv)} exited {code}")
        ratios.append(seconds["many"] / seconds["one"])
        print(f"  {name} round {r + 1}: {seconds['one']:.1f} s and {seconds['many']:.1f} s, "
              f"ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip
    print(f"{name}: ratio (many / one) {min(ratios):.2f} to {max(ratios):.2f} over {rounds} rounds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="N for --jobs N and -n N")
    parser.add_argument("--suite", action="store_true", help="time the ci test suite too")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    print(f"load average before: {os.getloadavg()}, cores {os.cpu_count()}")
    check = [sys.executable, "-m", "reference.frontends.cli", "--quiet"]
    _compare(
        "backprop-check", [*check, "--jobs", "1"], [*check, "--jobs", str(args.jobs)],
        args.rounds, env,
    )  # fmt: skip
    if args.suite:
        suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        _compare("ci suite", suite, [*suite, "-n", str(args.jobs)], args.rounds,
                 {**env, "CI": "true"})  # fmt: skip
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
