"""Run every benchmark and print the table: figure, ours, peer, ratio, target, met.

    python -m benchmarks            # everything (about twenty minutes on 2 cores)
    python -m benchmarks --quick    # the smaller sizes, under two minutes
    python -m benchmarks --out DIR  # where results.json and the plots go

Peers that are not installed (torch) are skipped with a note, never faked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import threads
from .common import Row, environment, side_by_side

SEED_NET = ([2, 3, 2, 1], 4)
SPEED_NETS = [
    SEED_NET,
    ([64, 64, 64, 1], 128),
    ([784, 256, 128, 10], 256),
    ([1024, 1024, 1024, 1024, 10], 512),
]


def _problem(sizes, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [
        (
            rng.normal(0, 1 / np.sqrt(p), (n, p)).astype(dtype),
            rng.normal(0, 0.1, (n, 1)).astype(dtype),
        )
        for p, n in itertools.pairwise(sizes)
    ]
    X = rng.normal(size=(sizes[0], m)).astype(dtype)
    Y = rng.uniform(size=(sizes[-1], m)).astype(dtype)
    acts = ["tanh"] * (len(sizes) - 2) + ["sigmoid"]
    return params, X, Y, acts


# --- 1. backprop speed --------------------------------------------------------------------


def _jax_grad_fn(acts):
    import jax
    import jax.numpy as jnp

    def loss(params, X, Y):  # the formulas, for the peer: mse on a sigmoid output
        A = X
        for (W, b), name in zip(params, acts):
            Z = W @ A + b
            A = jnp.tanh(Z) if name == "tanh" else jax.nn.sigmoid(Z)
        return jnp.sum((A - Y) ** 2) / (2 * X.shape[1])

    return jax.jit(jax.grad(loss))


def _products(params, X, dtype):
    """The matrix products of one forward and backward pass, alone: W A, dZ A^T, W^T dZ."""
    A = [X]
    for W, _ in params:
        A.append(np.ones((W.shape[0], X.shape[1]), dtype))
    dZ = [np.ones_like(a) for a in A[1:]]

    def run():
        for l, (W, _) in enumerate(params):
            W @ A[l]
        for l in range(len(params) - 1, -1, -1):
            dZ[l] @ A[l].T
            if l > 0:
                params[l][0].T @ dZ[l]

    return run


def bench_backprop(quick: bool) -> list[Row]:
    import jax

    import backprop

    rows = []
    nets = SPEED_NETS[:3] if quick else SPEED_NETS
    for sizes, m in nets:
        for dtype in (np.float64, np.float32):
            params, X, Y, acts = _problem(sizes, m, dtype)
            grad = _jax_grad_fn(tuple(acts))
            jparams = jax.device_put(params)
            jX, jY = jax.device_put(X), jax.device_put(Y)
            grad(jparams, jX, jY)  # compile outside the timing
            times = side_by_side(
                {
                    "ours": lambda: backprop.gradients(params, X, Y, activations=acts, cost="mse"),
                    "jax": lambda: jax.block_until_ready(grad(jparams, jX, jY)),
                    "products": _products(params, X, dtype),
                },
                repeats=5 if quick else 9,
            )
            name = f"{'-'.join(map(str, sizes))} m={m} {np.dtype(dtype).name}"
            ratio = times["ours"] / times["jax"]
            rows.append(
                Row(
                    "backprop",
                    f"gradients vs jax.jit(grad) {name}",
                    times["ours"],
                    times["jax"],
                    ratio,
                    "<= 1.0",
                    ratio <= 1.0,
                )
            )
            if sizes[0] >= 784:
                frac = times["products"] / times["ours"]
                rows.append(
                    Row(
                        "backprop",
                        f"share of the BLAS roofline {name}",
                        times["ours"],
                        times["products"],
                        frac,
                        ">= 0.85",
                        frac >= 0.85,
                        "peer = the same matrix products alone; ratio = products / ours",
                    )
                )
    return rows


# --- 2. check speed -----------------------------------------------------------------------


def _torch_gradcheck_fn(params, X, Y, acts):
    import torch

    tparams = [
        torch.tensor(a, dtype=torch.float64, requires_grad=True) for pair in params for a in pair
    ]
    tX, tY = torch.tensor(X), torch.tensor(Y)

    def loss(*flat):
        A = tX
        for l, name in enumerate(acts):
            Z = flat[2 * l] @ A + flat[2 * l + 1]
            A = torch.tanh(Z) if name == "tanh" else torch.sigmoid(Z)
        return ((A - tY) ** 2).sum() / (2 * tX.shape[1])

    return lambda: torch.autograd.gradcheck(
        loss, tparams, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False
    )


def bench_check(quick: bool) -> list[Row]:
    import backprop
    from reference import check_gradients
    from reference.oracles.finite_diff import numerical_gradients

    rows = []
    params, X, Y, acts = _problem([64, 64, 64, 1], 64, np.float64)
    ours = lambda: numerical_gradients(backprop, params, X, Y, activations=acts, cost="mse")  # noqa: E731
    try:
        import torch  # noqa: F401

        times = side_by_side(
            {"ours": ours, "gradcheck": _torch_gradcheck_fn(params, X, Y, acts)},
            repeats=3,
            min_time=0.0,
        )
        speedup = times["gradcheck"] / times["ours"]
        rows.append(
            Row(
                "check",
                "every entry, 64-64-64-1 m=64 (8,385 params): torch gradcheck / ours",
                times["ours"],
                times["gradcheck"],
                speedup,
                ">= 10",
                speedup >= 10,
            )
        )
    except ImportError:
        times = side_by_side({"ours": ours}, repeats=3, min_time=0.0)
        rows.append(
            Row(
                "check",
                "every entry, 64-64-64-1 m=64 (8,385 params)",
                times["ours"],
                None,
                None,
                ">= 10 x gradcheck",
                None,
                "torch not installed: pip install '.[bench]'",
            )
        )

    params, X, Y, acts = _problem([784, 256, 128, 10], 256, np.float64)
    kw = {"activations": acts, "cost": "mse"}
    check_gradients(backprop, params, X, Y, **kw, fd="directional")  # compile JAX for this shape
    times = side_by_side(
        {
            "check": lambda: check_gradients(backprop, params, X, Y, **kw, fd="directional"),
            "step": lambda: backprop.gradients(params, X, Y, **kw),
        },
        repeats=3 if quick else 5,
        min_time=0.0,
    )
    ratio = times["check"] / times["step"]
    rows.append(
        Row(
            "check",
            "full check 784-256-128-10 m=256 (JAX + directional FD) / one gradients call",
            times["check"],
            times["step"],
            ratio,
            "<= 30",
            ratio <= 30,
        )
    )
    try:
        import jax
        from jax.test_util import check_grads

        loss_fn = _jax_loss(acts)
        jparams = jax.device_put(params)
        t = side_by_side(
            {
                "check_grads": lambda: check_grads(
                    lambda p: loss_fn(p, X, Y), (jparams,), order=1, modes=["rev"]
                )
            },
            repeats=3,
            min_time=0.0,
        )["check_grads"]
        rows.append(
            Row(
                "check",
                "jax.test_util.check_grads, same network (for reference)",
                times["check"],
                t,
                times["check"] / t,
                "-",
                None,
                "peer = check_grads; ratio = ours / peer",
            )
        )
    except ImportError:
        pass
    return rows


def _jax_loss(acts):
    import jax
    import jax.numpy as jnp

    def loss(params, X, Y):
        A = X
        for (W, b), name in zip(params, acts):
            Z = W @ A + b
            A = jnp.tanh(Z) if name == "tanh" else jax.nn.sigmoid(Z)
        return jnp.sum((A - Y) ** 2) / (2 * X.shape[1])

    return loss


# --- 3. suite throughput --------------------------------------------------------------------


def bench_suite(quick: bool) -> list[Row]:
    from hypothesis import Phase, given, settings

    import backprop
    from reference import check_gradients
    from reference.inputs.strategies import problems

    n = 100 if quick else 300
    count = [0]

    @settings(
        max_examples=n, derandomize=True, database=None, deadline=None, phases=(Phase.generate,)
    )
    @given(p=problems())
    def run(p):
        report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
        assert report.ok
        count[0] += 1

    run()  # warm: the compiled JAX functions for the small shapes
    count[0] = 0
    start = time.perf_counter()
    run()
    rate = count[0] / (time.perf_counter() - start)
    rows = [
        Row(
            "suite",
            "property examples per second (FD + JAX + loss, small networks)",
            rate,
            None,
            None,
            ">= 200",
            rate >= 200,
            f"{count[0]} examples",
        )
    ]
    if not quick:  # the whole suite as the README runs it (benchmarks/suite_time.py)
        from .suite_time import ROOT, run_suite

        run = run_suite(ROOT, "worktree", ["--durations=0"], env={"CI": "true"})
        rows += [
            Row("suite", "ci profile, whole suite, wall seconds", run.wall, None, None,
                "<= 120", run.wall <= 120 and run.returncode == 0, run.summary),
            Row("suite", "ci profile, whole suite, CPU seconds (children included)", run.cpu,
                None, None, "-", None, run.summary),
        ]  # fmt: skip
        per_file = per_file_seconds(run.stdout)
        print("ci suite, seconds per test file (setup + call + teardown):", file=sys.stderr)
        for name, seconds in sorted(per_file.items(), key=lambda kv: -kv[1]):
            print(f"  {seconds:8.1f}  {name}", file=sys.stderr)
    return rows


def per_file_seconds(durations: str) -> dict[str, float]:
    """Seconds per test file from pytest's ``--durations=0`` lines (``1.23s call path::test``)."""
    totals: dict[str, float] = {}
    for line in durations.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].endswith("s") and "::" in parts[2]:
            try:
                seconds = float(parts[0][:-1])
            except ValueError:
                continue
            name = parts[2].split("::", 1)[0]
            totals[name] = totals.get(name, 0.0) + seconds
    return totals


# --- 4. scaling -----------------------------------------------------------------------------


def bench_scaling(quick: bool, out: Path) -> list[Row]:
    import backprop
    from reference.oracles.finite_diff import directional_gradients, numerical_gradients
    from reference.oracles.jax_model import jax_gradients

    widths = [4, 10, 30, 100, 300] + ([] if quick else [1000])
    points: dict[str, list[tuple[int, float]]] = {"entry FD": [], "directional FD": [], "JAX": []}
    for n in widths:
        params, X, Y, acts = _problem([n, n, 1], 32, np.float64)
        count = sum(W.size + b.size for W, b in params)
        kw = {"activations": acts, "cost": "mse"}
        jax_gradients(params, X, Y, **kw)  # compile
        sides = {
            "directional FD": lambda: directional_gradients(backprop, params, X, Y, **kw),
            "JAX": lambda: jax_gradients(params, X, Y, **kw),
        }
        if count <= (20_000 if quick else 100_000):
            sides["entry FD"] = lambda: numerical_gradients(backprop, params, X, Y, **kw)
        for name, t in side_by_side(sides, repeats=3, min_time=0.0).items():
            points[name].append((count, t))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name, pts in points.items():
            ax.loglog(*zip(*pts), "o-", label=name)
        ax.set_xlabel("parameters")
        ax.set_ylabel("seconds per check")
        ax.set_title("Check cost against network size (n-n-1, m = 32)", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110)
        plt.close(fig)
    except ImportError:
        pass
    rows = []
    for name, pts in points.items():
        (c0, t0), (c1, t1) = pts[0], pts[-1]
        slope = np.log(t1 / t0) / np.log(c1 / c0)
        rows.append(
            Row(
                "scaling",
                f"{name}: {c0} -> {c1} params, log-log slope",
                t0,
                t1,
                slope,
                "-",
                None,
                "ours = first size, peer = last size (seconds)",
            )
        )
    (out / "scaling.json").write_text(json.dumps(points))
    return rows


# --- 5. the default run's wall time ---------------------------------------------------------


def bench_startup(quick: bool) -> list[Row]:
    """The README's first command, ``backprop-check``, with the JAX compilation cache cold (the
    first run after installation) and warm, alternated; its breakdown is printed on stderr
    (``python benchmarks/check_time.py`` for the whole table)."""
    import tempfile

    from .check_time import ROOT, breakdown, wall

    rounds = 1 if quick else 3
    times: dict[str, list[float]] = {"cold": [], "warm": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for r in range(rounds):
            cache = str(Path(tmp) / f"cache{r}")
            times["cold"].append(wall(ROOT, cache))
            times["warm"].append(wall(ROOT, cache))
            times["off"].append(wall(ROOT, "off"))
        parts = breakdown(ROOT, str(Path(tmp) / "cache0"))
    print(json.dumps({"warm breakdown (s)": {k: round(v, 3) for k, v in parts.items()}}),
          file=sys.stderr)  # fmt: skip
    import statistics

    rows = []
    for name, what in (("warm", "cache warm"), ("cold", "cache cold (first run)")):
        t = statistics.median(times[name])
        off = statistics.median(times["off"])
        rows.append(
            Row(
                "startup",
                f"default backprop-check wall seconds, {what}; peer = cache off",
                t,
                off,
                t / off,
                "<= 5 s",
                t <= 5,
                f"{rounds} rounds, load {os.getloadavg()[0]:.1f}",
            )
        )
    return rows


# --- main -----------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}"


def render(rows: list[Row]) -> str:
    head = f"{'figure':<88} {'ours':>10} {'peer':>10} {'ratio':>8} {'target':>9} met"
    lines = [head]
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        numbers = f"{_fmt(r.ours):>10} {_fmt(r.peer):>10} {_fmt(r.ratio):>8}"
        lines.append(f"{r.figure[:88]:<88} {numbers} {r.target:>9} {met}")
    return "\n".join(lines)


SECTIONS = ("backprop", "check", "suite", "scaling", "functions", "threads", "startup", "memory")
"""What ``--only`` may name; all of them, in this order, when it names none."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under two minutes")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results"), help="where to write results"
    )
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
    )
    threads.add_arguments(parser)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from reference.oracles.jax_x64 import enable_x64

    env = environment()
    print("environment:", json.dumps(env))
    sections = args.only or list(SECTIONS)
    rows: list[Row] = []
    for section in sections:
        start = time.perf_counter()
        if section == "threads":  # one thread and more, each in a child process
            thread_rows, lines = threads.run(argparse.Namespace(**{**vars(args), "only": None}))
            rows += thread_rows
            print("\n".join(lines))
            print(f"[{section}: {time.perf_counter() - start:.0f} s]", file=sys.stderr)
            continue
        with enable_x64():  # the JAX peers in float64 where the inputs are, as the oracle is
            if section == "scaling":
                rows += bench_scaling(args.quick, args.out)
            elif section == "functions":
                from .functions import bench_functions

                rows += bench_functions(args.quick)
            elif section == "memory":
                from .memory import bench_memory

                rows += bench_memory(args.quick)
            else:
                rows += {
                    "backprop": bench_backprop,
                    "check": bench_check,
                    "suite": bench_suite,
                    "startup": bench_startup,
                }[section](args.quick)
        print(f"[{section}: {time.perf_counter() - start:.0f} s]", file=sys.stderr)
    table = render(rows)
    print(table)
    (args.out / "results.json").write_text(
        json.dumps({"environment": env, "rows": [r.to_dict() for r in rows]}, indent=1)
    )
    (args.out / "results.txt").write_text(table + "\n")
    return 0
