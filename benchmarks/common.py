"""Side-by-side timing: every figure is a ratio of two things timed in the same run.

The machines are shared and noisy, so each comparison alternates its sides
(ours, peer, ours, peer, ...) and reports medians.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One line of the results table."""

    section: str
    figure: str
    ours: float | None
    peer: float | None
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def per_call(fn: Callable[[], object], min_time: float = 0.05) -> int:
    """How many calls make one timed sample last about ``min_time`` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(min_time / once))


def side_by_side(
    sides: dict[str, Callable[[], object]], repeats: int = 7, min_time: float = 0.05
) -> dict[str, float]:
    """Median seconds per call of each side, the sides alternated within every repeat."""
    counts = {name: per_call(fn, min_time) for name, fn in sides.items()}
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            fn, n = sides[name], counts[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def blas_info() -> dict[str, object]:
    """Which BLAS the process runs, with which kernel and how many threads."""
    info: dict[str, object] = {
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
    }
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for p in pools
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed: kernel unknown"
    return info


def environment() -> dict[str, object]:
    import numpy

    env: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cores": os.cpu_count(),
        "numpy": numpy.__version__,
    }
    for name in ("jax", "torch"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            env[name] = None
    env.update(blas_info())
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
