"""Peak memory and time per network of ``backprop-check --networks N --json PATH``.

    python -m benchmarks --only memory               # 100, 1,000 and 10,000 networks
    python -m benchmarks --only memory --quick       # 100 and 1,000
    python benchmarks/memory.py --sizes 100 1000 --before DIR   # against another checkout

Each run is a child process of a fresh measuring process, so that
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that run's own peak: the largest resident
set of ``backprop-check`` and of the worker process it starts, whichever is larger (the worker
holds JAX, about 330 MB). The ``backprop-check`` process's own peak (``RUSAGE_SELF``, where the
reports are kept) is reported beside it. Time per network is the wall time's growth between
two sizes divided by the networks added, so that the start-up (imports, JAX compilation) does
not count. With ``--before DIR`` each size runs on DIR's checkout (``main``'s, say) and on this
one back to back, alternating which goes first, so that the load falls on both.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SIZES = (100, 1_000, 10_000)

TARGET = 1.10
"""Peak RSS at every size within 10% of the smallest size's."""

_CHILD = (
    "import resource, sys\n"
    "from reference.frontends.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write(f'\\nmaxrss_self={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n"
    "raise SystemExit(code)\n"
)
"""``backprop-check`` that states its own peak resident set (KiB, Linux) last on stderr."""

_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,\n"
    "                      text=True)\n"
    "wall = time.perf_counter() - start\n"
    "tail = [l for l in done.stderr.splitlines() if l.startswith('maxrss_self=')]\n"
    "print(json.dumps({'code': done.returncode, 'wall': wall,\n"
    "    'tree_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,\n"
    "    'self_kb': int(tail[-1].split('=')[1]) if tail else None,\n"
    "    'stderr': done.stderr[-2000:]}))\n"
)
"""A fresh process that runs its arguments once and prints that run's peak and wall time."""


def measure(root: Path, networks: int, out: Path) -> dict:
    """One ``backprop-check --quiet --networks N --json OUT`` run on the checkout ``root``:
    ``wall`` seconds, ``tree_kb`` (RUSAGE_CHILDREN peak), ``self_kb`` (its own peak), the
    JSON's size ``json_mb``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    env["PYTHONPATH"] = str(root)
    argv = [sys.executable, "-c", _CHILD, "--quiet", "--networks", str(networks),
            "--json", str(out)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    if result["code"] not in (0, 1):
        raise RuntimeError(f"backprop-check exited {result['code']}: {result['stderr']}")
    result["json_mb"] = out.stat().st_size / 1e6
    out.unlink()
    return result


def _line(label: str, n: int, r: dict) -> str:
    own = f"{r['self_kb'] / 1024:.0f}" if r["self_kb"] else "?"
    return (
        f"  {label:<7} {n:>7} networks: {r['wall']:8.1f} s, peak RSS {r['tree_kb'] / 1024:6.0f} "
        f"MB (backprop-check itself {own} MB), JSON {r['json_mb']:.1f} MB"
    )


def run(sizes: list[int], before: Path | None = None) -> dict[str, dict[int, dict]]:
    """Every size on this checkout (``after``) and, with ``before``, on that one too, the two
    back to back with their order alternating; printed as they come."""
    sides = {"after": ROOT} if before is None else {"before": before, "after": ROOT}
    results: dict[str, dict[int, dict]] = {side: {} for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(sizes):
            order = list(sides) if i % 2 == 0 else list(sides)[::-1]
            for side in order:
                r = measure(sides[side], n, Path(tmp) / f"{side}-{n}.json")
                results[side][n] = r
                print(_line(side, n, r), flush=True)
    return results


def per_network(points: dict[int, dict]) -> list[tuple[int, int, float]]:
    """Seconds per network between consecutive sizes: (from, to, seconds)."""
    sizes = sorted(points)
    return [
        (a, b, (points[b]["wall"] - points[a]["wall"]) / (b - a))
        for a, b in itertools.pairwise(sizes)
    ]


def bench_memory(quick: bool) -> list:
    """``python -m benchmarks``' section: this checkout at 100 and 1,000 networks (and
    10,000 unless ``quick``), as table rows."""
    return rows(run(list(SIZES[:2] if quick else SIZES)))


def rows(results: dict[str, dict[int, dict]]) -> list:
    """The table's rows: each side's peak RSS at each size against its smallest size's, and
    its time per network between sizes."""
    from .common import Row

    out = []
    for side, points in results.items():
        sizes = sorted(points)
        base = points[sizes[0]]["tree_kb"]
        for n in sizes[1:]:
            peak = points[n]["tree_kb"]
            out.append(
                Row(
                    "memory",
                    f"{side}: peak RSS (MB), --networks {n} against {sizes[0]}",
                    peak / 1024,
                    base / 1024,
                    peak / base,
                    f"<= {TARGET}",
                    peak / base <= TARGET,
                    "RUSAGE_CHILDREN of a child run",
                )
            )
        steps = per_network(points)
        for a, b, seconds in steps:
            first = steps[0][2]
            out.append(
                Row(
                    "memory",
                    f"{side}: seconds per network, {a} -> {b} networks",
                    seconds,
                    first,
                    seconds / first,
                    "flat",
                    None,
                    "against the first step",
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--before", type=Path, help="another checkout to measure side by side")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}, cores {os.cpu_count()}", flush=True)
    start = time.perf_counter()
    results = run(args.sizes, args.before)
    for side, points in results.items():
        for a, b, seconds in per_network(points):
            print(f"  {side}: {1000 * seconds:.1f} ms per network from {a} to {b}")
    print(f"load average after: {os.getloadavg()}; {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
