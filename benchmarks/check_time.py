"""Where the default ``backprop-check`` run spends its time, and its wall time.

    python benchmarks/check_time.py                  # breakdown, wall time: cache off/cold/warm
    python benchmarks/check_time.py --baseline DIR   # and side by side with another tree
    python benchmarks/check_time.py --compare A.json B.json   # two --json: same verdicts?

The breakdown runs the default run's work in one fresh process, in this process (no worker),
phase by phase: the imports, each job the CLI sends its worker (the networks' checks, the fixed
checks, the whole run's consistency), the report's printing; within the jobs, JAX's own
tracing, lowering and compiling (``jax.monitoring``'s events) and the time in the finite
differences and the JAX model's calls. Worker start is timed apart (a spawned process that
loads the implementation, then its first job, which imports the harness and JAX there). The
wall time is ``python -m reference.frontends.launch`` itself, the README's first command. The
JAX compilation cache (reference/oracles/jax_cache.py) is off, cold (a new directory) or warm
(the same directory again); JAX's counts of what it traced, lowered, compiled and read from
the cache are printed beside their seconds (a compile of one operation outside ``jit`` counts
too). ``--baseline DIR`` times another tree (``git archive REV | tar -x -C DIR``) the same way
(with the cache off only where that tree has none), the trees alternated round by round.
Figures from a shared machine: read the ratios of runs side by side; the load average is
printed with them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_COMPILE_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
    "/jax/compilation_cache/cache_retrieval_time_sec": "cache read",
}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _env(tree: Path, cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["PYTHONPATH"] = str(tree)
    env["BACKPROP_CHECK_JAX_CACHE"] = cache
    return env


# --- the phases, in one fresh process ----------------------------------------------------


def _phases() -> dict[str, float]:
    """The default run's work in this process; seconds per phase (runs in a fresh process)."""
    clock = time.perf_counter
    spent: dict[str, float] = defaultdict(float)
    start = clock()
    import numpy  # noqa: F401

    spent["import numpy"] = clock() - start
    start = clock()
    import jax
    import jax.monitoring

    spent["import jax"] = clock() - start
    start = clock()
    from reference.inputs import networks as default_networks
    from reference.judging import checker, checks
    from reference.oracles import finite_diff
    from reference.report import text
    from reference.run import jobs, session

    spent["import the harness"] = clock() - start
    try:
        from reference.oracles.jax_cache import compilation_cache
    except ImportError:  # a tree from before the cache
        compilation_cache = None

    def on_event(name: str, seconds: float, **_: Any) -> None:
        if name in _COMPILE_EVENTS:
            spent["  JAX " + _COMPILE_EVENTS[name]] += seconds
            spent["  JAX " + _COMPILE_EVENTS[name] + ": count"] += 1

    jax.monitoring.register_event_duration_secs_listener(on_event)

    def timed(label: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += clock() - begin

        return wrapper

    finite_diff.numerical_gradients = timed("  finite differences", finite_diff.numerical_gradients)
    finite_diff.directional_gradients = timed(
        "  finite differences", finite_diff.directional_gradients
    )
    from reference.oracles import jax_model

    model = timed("  JAX model (with its compiling)", jax_model.jax_model)
    for module in (jax_model, checker, checks):  # imported on first use, or by name (before)
        if hasattr(module, "jax_model"):
            module.jax_model = model

    class Runner(jobs.InProcess):
        def run(self, job: Any, *args: Any) -> Any:
            begin = clock()
            try:
                return super().run(job, *args)
            finally:
                spent[f"job {job.__name__}"] += clock() - begin

    def work() -> None:
        begin = clock()
        import backprop

        runner = Runner(backprop, "backprop")
        problems = default_networks.default_problems(0, 8)
        progress = session.Progress(len(problems), enabled=False)
        spent["load, problems"] = clock() - begin
        outcome = session.run_checks(runner, problems, progress)
        begin = clock()
        text.print_outcome(outcome, "backprop (built-in)", io.StringIO(), False, False)
        spent["print the report"] = clock() - begin

    begin = clock()
    if compilation_cache is None:
        work()
    else:
        with compilation_cache() as directory:
            if directory is not None:  # this process's JAX read the setting at import: set it
                jax.config.update("jax_compilation_cache_dir", str(directory))
                jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
                jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
            work()
    spent["all the work"] = clock() - begin
    return dict(spent)


def _worker_start() -> dict[str, float]:
    """Seconds the CLI's process takes to import what it needs, to start the worker (spawn,
    load the implementation), and to run a first job there (it imports the harness)."""
    begin = time.perf_counter()
    import reference.frontends.cli  # noqa: F401

    imported = time.perf_counter() - begin
    from reference.boundary.isolation import Worker
    from reference.run.jobs import whole_run_consistency

    begin = time.perf_counter()
    worker = Worker("backprop")
    worker.start()
    started = time.perf_counter()
    worker.run(whole_run_consistency, None)  # imports the harness and JAX in the worker
    done = time.perf_counter()
    worker.close()
    return {
        "CLI process: import the CLI": imported,
        "CLI process: JAX imported": float("jax" in sys.modules),
        "worker start": started - begin,
        "worker's first job (imports)": done - started,
    }


def breakdown(tree: Path, cache: str) -> dict[str, float]:
    """:func:`_phases` and :func:`_worker_start`, each in a fresh process of ``tree``."""
    out: dict[str, float] = {}
    for phase in ("phases", "worker"):
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--phase", phase],
            env=_env(tree, cache),
            cwd=tree,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{phase} in {tree}: {proc.stderr[-2000:]}")
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def wall(tree: Path, cache: str, json_path: Path | None = None) -> float:
    """Seconds of one default ``backprop-check`` run of ``tree``."""
    argv = [sys.executable, "-m", "reference.frontends.launch"]
    if json_path is not None:
        argv += ["--json", str(json_path)]
    begin = time.perf_counter()
    proc = subprocess.run(argv, env=_env(tree, cache), cwd=tree, capture_output=True, text=True)
    seconds = time.perf_counter() - begin
    if proc.returncode != 0:
        raise RuntimeError(f"backprop-check in {tree} exited {proc.returncode}: {proc.stderr}")
    return seconds


# --- the --json reports, compared -----------------------------------------------------------

_NUMBERS = ("error_fd", "error_jax", "bound_fd", "bound_jax")


def compare_reports(a: dict[str, Any], b: dict[str, Any], rtol: float = 1e-3) -> list[str]:
    """The differences that matter between two ``--json`` reports of the same run: the
    verdicts (overall, per network, per parameter, per check), the networks and checks
    present, and the numbers beyond ``rtol`` relative or rounding (1e-13 absolute, a JAX
    error of about 1e-16 may move by its own size)."""
    diffs = []
    if a["ok"] != b["ok"]:
        diffs.append(f"ok: {a['ok']} vs {b['ok']}")
    nets_a, nets_b = ([n["name"] for n in x["networks"]] for x in (a, b))
    if nets_a != nets_b:
        return [*diffs, f"networks differ: {nets_a} vs {nets_b}"]
    for na, nb in zip(a["networks"], b["networks"]):
        for key in ("ok", "attribution"):
            if na.get(key) != nb.get(key):
                diffs.append(f"{na['name']}: {key} {na.get(key)} vs {nb.get(key)}")
        for la, lb in zip(na.get("layers", []), nb.get("layers", [])):
            where = f"{na['name']} layer {la['layer']} {la['param']}"
            for key in ("ok", "diagnosis"):
                if la.get(key) != lb.get(key):
                    diffs.append(f"{where}: {key} {la.get(key)} vs {lb.get(key)}")
            for key in _NUMBERS:
                x, y = la.get(key), lb.get(key)
                if x is None or y is None:
                    if x != y:
                        diffs.append(f"{where}: {key} {x} vs {y}")
                elif abs(x - y) > max(rtol * max(abs(x), abs(y)), 1e-13):
                    diffs.append(f"{where}: {key} {x:.3e} vs {y:.3e}")
    checks_a = [(c["where"], c["name"], c["ok"], c["severity"]) for c in a["checks"]]
    checks_b = [(c["where"], c["name"], c["ok"], c["severity"]) for c in b["checks"]]
    if checks_a != checks_b:
        diffs.append(f"checks differ: {sorted(set(checks_a) ^ set(checks_b))}")
    return diffs


def figure_stats(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int, float]:
    """(how many error and bound figures the two reports' layers hold side by side, how many
    are identical, the largest absolute difference of the others)."""
    total = same = 0
    worst = 0.0
    for na, nb in zip(a["networks"], b["networks"]):
        for la, lb in zip(na.get("layers", []), nb.get("layers", [])):
            for key in _NUMBERS:
                x, y = la.get(key), lb.get(key)
                if x is None or y is None:
                    continue
                total += 1
                same += x == y
                worst = max(worst, abs(x - y))
    return total, same, worst


# --- main -----------------------------------------------------------------------------------


def _print_breakdowns(columns: dict[str, dict[str, float]]) -> None:
    keys: list[str] = []
    for col in columns.values():
        keys += [k for k in col if k not in keys]
    width = max(14, *(len(name) + 2 for name in columns))
    print(f"{'seconds':<36}" + "".join(f"{name:>{width}}" for name in columns))
    for key in keys:
        cells = "".join(
            f"{columns[name][key]:>{width}.3f}" if key in columns[name] else f"{'-':>{width}}"
            for name in columns
        )
        print(f"{key:<36}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=["phases", "worker"], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2, help="wall-time rounds (default 2)")
    parser.add_argument("--baseline", type=Path, help="another tree to time side by side")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="JSON")
    args = parser.parse_args(argv)
    if args.phase:
        fn = _phases if args.phase == "phases" else _worker_start
        print(json.dumps(fn()))
        return 0
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        diffs = compare_reports(a, b)
        print("\n".join(diffs) if diffs else "same verdicts, numbers within rounding")
        total, same, worst = figure_stats(a, b)
        print(f"{total} error and bound figures: {same} identical, the others within {worst:.2g}")
        return 1 if diffs else 0
    rounds = max(1, args.rounds)
    trees = {"": ROOT}
    if args.baseline:
        trees = {"before: ": args.baseline.resolve(), "": ROOT}
    with tempfile.TemporaryDirectory(prefix="check-time-") as tmp:
        print(f"load average before: {_load()}")
        columns: dict[str, dict[str, float]] = {}
        sides: dict[str, tuple[Path, str]] = {}  # the wall-time runs: tree, cache
        for k, (label, tree) in enumerate(trees.items()):
            cold = str(Path(tmp) / f"cache-{k}")
            if not (tree / "reference" / "oracles" / "jax_cache.py").exists():
                columns[f"{label}no cache"] = breakdown(tree, "off")
                sides[f"{label}no cache"] = (tree, "off")
                continue
            columns[f"{label}cache off"] = breakdown(tree, "off")
            columns[f"{label}cache cold"] = breakdown(tree, cold)
            columns[f"{label}cache warm"] = breakdown(tree, cold)
            sides[f"{label}cache off"] = (tree, "off")
            sides[f"{label}cache warm"] = (tree, cold)
        _print_breakdowns(columns)
        print(f"load average: {_load()}")
        times: dict[str, list[float]] = {name: [] for name in sides}
        reports: dict[str, Path] = {}
        for r in range(rounds):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for name in order:
                path = Path(tmp) / f"{''.join(c if c.isalnum() else '-' for c in name)}.json"
                times[name].append(wall(*sides[name], path))
                reports[name] = path
        print(f"default backprop-check, wall seconds, {rounds} rounds alternated:")
        for name, ts in times.items():
            print(f"  {name:<24} " + "  ".join(f"{t:6.2f}" for t in ts))
        print(f"load average after: {_load()}")
        first = json.loads(reports[next(iter(reports))].read_text())
        for name, path in reports.items():
            diffs = compare_reports(first, json.loads(path.read_text()))
            print(f"--json of {name}: " + ("; ".join(diffs) if diffs else "same verdicts"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
