"""backprop against ``jax.jit(jax.grad)``, and the every-entry finite differences against
``torch.autograd.gradcheck``, at one thread and at more, each setting in its own process.

    python -m benchmarks.threads                      # both comparisons, every setting
    python -m benchmarks.threads --only backprop      # or: --only fd
    python -m benchmarks.threads --isa avx2           # as on an AVX2-only machine (see below)
    python -m benchmarks.threads --setting "one thread"
    python -m benchmarks --only threads               # the same inside the main table

Thread counts are read once, when NumPy's BLAS, XLA and torch start, so each setting runs
in a child process whose environment is set before any of them is imported:

- ``one thread``: ``OPENBLAS_NUM_THREADS=1`` (and OMP/MKL), ``XLA_FLAGS=
  --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``,
  ``torch.set_num_threads(1)``, and one worker for the finite differences' chunks;
- ``default`` (backprop) / ``two threads`` (finite differences): what each library does
  unasked, or two threads on every side.

Inside a child the sides alternate within every repeat and medians are reported
(:func:`benchmarks.common.side_by_side`). Each backprop row also times the matrix
products of its forward and backward pass alone (``W A``, ``dZ A^T``, ``W^T dZ``): what is
left, ``rest``, is validation, the elementwise passes and the calls' overhead.

``--isa avx2`` asks every library for its AVX2 code even on an AVX-512 machine:
``OPENBLAS_CORETYPE=Haswell``, ``NPY_DISABLE_CPU_FEATURES`` (NumPy's AVX-512 loops off),
``--xla_cpu_max_isa=AVX2`` and ``ATEN_CPU_CAPABILITY=avx2``. It approximates the AVX2
machine type (same cores otherwise); every child prints the kernel it ran.
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are otherwise passed on as found, and
printed; ``--unset-openblas-hints`` removes both in the children (and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import Row

ROOT = Path(__file__).resolve().parents[1]

NETS = [([2, 3, 2, 1], 4), ([64, 64, 64, 1], 128), ([784, 256, 128, 10], 256)]
FD_NET = ([64, 64, 64, 1], 64)

_ONE = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
_TWO = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
SETTINGS = {
    "backprop": {"one thread": (_ONE, 1), "default": ({}, None)},
    "fd": {"one thread": (_ONE, 1), "two threads": (_TWO, 2)},
}
"""Per comparison: setting -> (environment of the child, threads asked of torch and of the
finite differences' pool; None: left as they are)."""

_AVX2 = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "ATEN_CPU_CAPABILITY": "avx2",
}

TARGETS = {"2-3-2-1": 1.5}
"""Ratio targets, ours / jax: 1.5 at the seed's network (per-call overhead), 1.0 elsewhere."""


# --- the children ---------------------------------------------------------------------------


def _versions_and_threads(threads: int | None) -> dict[str, object]:
    from .common import environment

    env = environment()
    env["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "(unset)")
    env["NPY_DISABLE_CPU_FEATURES"] = os.environ.get("NPY_DISABLE_CPU_FEATURES", "(unset)")
    env["ATEN_CPU_CAPABILITY"] = os.environ.get("ATEN_CPU_CAPABILITY", "(unset)")
    env["fd_workers"] = threads if threads is not None else "default"
    return env


def _child_backprop(quick: bool) -> list[dict]:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 stays float64 on the JAX side
    import backprop
    from backprop import _validate
    from backprop.network import backward, forward_pass

    from .common import side_by_side
    from .run import _jax_grad_fn, _problem, _products

    rows = []
    for sizes, m in NETS:
        for dtype in (np.float64, np.float32):
            params, X, Y, acts = _problem(sizes, m, dtype)
            grad = _jax_grad_fn(tuple(acts))
            jparams, jX, jY = jax.device_put(params), jax.device_put(X), jax.device_put(Y)
            grad(jparams, jX, jY)  # compiled outside the timing
            p, Xc, Yc, a, cost = _validate.check_problem(params, X, Y, acts, "mse")
            cache = forward_pass(p, Xc, a)
            times = side_by_side(
                {
                    "ours": lambda: backprop.gradients(params, X, Y, activations=acts, cost="mse"),
                    "jax": lambda: jax.block_until_ready(grad(jparams, jX, jY)),
                    "products": _products(params, X, dtype),
                    "validation": lambda: _validate.check_problem(params, X, Y, acts, "mse"),
                    "forward": lambda: forward_pass(p, Xc, a),
                    "backward": lambda: backward(p, cache, Yc, a, cost),
                },
                repeats=5 if quick else 11,
            )
            rows.append({"net": "-".join(map(str, sizes)), "m": m, "dtype": np.dtype(dtype).name})
            rows[-1].update(times)
    return rows


def _child_fd(quick: bool, threads: int) -> list[dict]:
    import backprop
    from reference.oracles import finite_diff, numpy_model
    from reference.oracles.finite_diff import numerical_gradients

    from .run import _problem, _torch_gradcheck_fn

    finite_diff._WORKERS = threads  # the chunks' pool: one worker per thread asked for
    sizes, m = FD_NET
    params, X, Y, acts = _problem(sizes, m, np.float64)
    kw = {"activations": acts, "cost": "mse"}
    sides = {"ours": lambda: numerical_gradients(backprop, params, X, Y, **kw)}
    try:
        import torch

        torch.set_num_threads(threads)
        sides["gradcheck"] = _torch_gradcheck_fn(params, X, Y, acts)
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    for fn in sides.values():  # warm, once each (seconds a call: no calibration)
        fn()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(1 if quick else 3):
        for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            start = time.perf_counter()
            sides[name]()
            samples[name].append(time.perf_counter() - start)
    times = {name: statistics.median(s) for name, s in samples.items()}
    row = {"net": "-".join(map(str, sizes)), "m": m, "torch_threads": torch_threads, **times}
    row["breakdown"] = _fd_breakdown(params, X, Y, acts, numpy_model, finite_diff)
    return [row]


def _fd_breakdown(params, X, Y, acts, numpy_model, finite_diff) -> dict[str, float]:
    """Where one every-entry run's time goes: the model and the check that it is the
    implementation's loss; each layer's perturbed losses; and, for comparison, g alone on as
    many entries as the layers above the perturbed ones hold in all."""
    import backprop

    out: dict[str, float] = {}
    start = time.perf_counter()
    model = numpy_model.build(params, X, Y, acts, "mse")
    finite_diff.loss_matches_model(backprop, model, acts, "mse")
    out["setup: model, and its loss against the implementation's"] = time.perf_counter() - start
    entries_above = 0
    for l in range(len(model.params)):
        start = time.perf_counter()
        count = 0
        for name in ("W", "b"):
            rows, inputs, theta = finite_diff._entries(model, l, name)
            finite_diff._at_steps(
                model, l, rows, inputs, finite_diff.steps(theta), finite_diff.FACTORS[:3]
            )
            count += 3 * theta.size
        out[f"layer {l + 1}: {count:,} perturbed losses"] = time.perf_counter() - start
        entries_above += count * X.shape[1] * sum(W.shape[0] for W, _ in model.params[l + 1 :])
    chunk = np.random.default_rng(0).normal(size=finite_diff._CHUNK_ELEMENTS)
    g = model.g[0].inplace
    start = time.perf_counter()
    for _ in range(max(1, entries_above // chunk.size)):
        g(chunk)
        chunk.fill(0.5)
    out[f"of which g alone on {entries_above:,} entries (one thread, with a refill)"] = (
        time.perf_counter() - start
    )
    return out


def child(what: str, setting: str, quick: bool) -> None:
    """Run one comparison in this process, whose environment the parent has set; print JSON."""
    threads = SETTINGS[what][setting][1]
    env = _versions_and_threads(threads)
    rows = _child_backprop(quick) if what == "backprop" else _child_fd(quick, threads or 2)
    print(json.dumps({"environment": env, "rows": rows}))


# --- the parent -----------------------------------------------------------------------------


def _run_child(what: str, setting: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    extra, _ = SETTINGS[what][setting]
    env.update(extra)
    notes = []
    if args.unset_openblas_hints:
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if env.pop(name, None) is not None:
                notes.append(f"{name} unset by --unset-openblas-hints")
    if args.isa == "avx2":
        env.update(_AVX2)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = (flags + " --xla_cpu_max_isa=AVX2").strip()
        notes.append("--isa avx2: " + ", ".join(f"{k}={v}" for k, v in _AVX2.items()))
    argv = [sys.executable, "-m", "benchmarks.threads", "--child", what, setting]
    if args.quick:
        argv.append("--quick")
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} / {setting} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["notes"] = notes
    return result


def _threads_line(env: dict) -> str:
    blas = env.get("blas")
    if isinstance(blas, list) and blas:
        kernel = ", ".join(
            f"{b['internal_api']} {b['architecture']} x{b['num_threads']}" for b in blas
        )
    else:
        kernel = str(blas)
    return (
        f"BLAS {kernel}; XLA_FLAGS={env['XLA_FLAGS']!r}; "
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}, "
        f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']}, "
        f"NPY_DISABLE_CPU_FEATURES={env['NPY_DISABLE_CPU_FEATURES']!r}, "
        f"ATEN_CPU_CAPABILITY={env['ATEN_CPU_CAPABILITY']}"
    )


def run(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Every setting of the chosen comparisons: the table's rows and the lines to print."""
    rows: list[Row] = []
    lines = [f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    for what in args.only or ["backprop", "fd"]:
        for setting in SETTINGS[what]:
            if args.setting and setting not in args.setting:
                continue
            start = time.perf_counter()
            result = _run_child(what, setting, args)
            env = result["environment"]
            lines.append(f"[{what}, {setting}: {time.perf_counter() - start:.0f} s]")
            lines.append("  " + _threads_line(env))
            lines.extend("  " + n for n in result["notes"])
            for r in result["rows"]:
                if what == "backprop":
                    rows.append(_backprop_row(r, setting))
                    lines.append("  " + _backprop_breakdown(r))
                else:
                    rows.append(_fd_row(r, setting, env))
                    if "gradcheck" not in r:
                        lines.append(
                            "  torch is not installed: the gradcheck comparison is skipped "
                            "(pip install torch==2.13.0, the CPU build)"
                        )
                    lines.extend(f"  {name}: {t:.3f} s" for name, t in r["breakdown"].items())
    lines.append(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return rows, lines


def _backprop_row(r: dict, setting: str) -> Row:
    target = TARGETS.get(r["net"], 1.0)
    ratio = r["ours"] / r["jax"]
    return Row(
        "threads",
        f"gradients vs jax.jit(grad) {r['net']} m={r['m']} {r['dtype']}, {setting}",
        r["ours"],
        r["jax"],
        ratio,
        f"<= {target}",
        ratio <= target,
    )


def _backprop_breakdown(r: dict) -> str:
    us = {k: r[k] * 1e6 for k in ("ours", "products", "validation", "forward", "backward")}
    return (
        f"{r['net']} m={r['m']} {r['dtype']}: ours {us['ours']:.1f} us = products alone "
        f"{us['products']:.1f} + rest {us['ours'] - us['products']:.1f} "
        f"(validation {us['validation']:.1f}, forward_pass {us['forward']:.1f}, "
        f"backward {us['backward']:.1f}); jax {r['jax'] * 1e6:.1f} us"
    )


def _fd_row(r: dict, setting: str, env: dict) -> Row:
    figure = f"every entry, {r['net']} m={r['m']}: torch gradcheck / ours, {setting}"
    if "gradcheck" not in r:
        return Row(
            "threads",
            figure,
            r["ours"],
            None,
            None,
            ">= 10",
            None,
            "torch not installed: skipped (pip install torch==2.13.0)",
        )
    speedup = r["gradcheck"] / r["ours"]
    note = f"torch threads {r['torch_threads']}, FD workers {env['fd_workers']}"
    return Row("threads", figure, r["ours"], r["gradcheck"], speedup, ">= 10", speedup >= 10, note)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--unset-openblas-hints", action="store_true")
    parser.add_argument(
        "--setting",
        choices=sorted({name for settings in SETTINGS.values() for name in settings}),
        action="append",
        help="only these thread settings (default: every one)",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2], "--quick" in argv)
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.threads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--only", choices=["backprop", "fd"], action="append")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from .run import render

    rows, lines = run(args)
    print("\n".join(lines))
    print(render(rows))
    for r in rows:
        if r.note:
            print(f"{r.figure}: {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
