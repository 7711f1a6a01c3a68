"""check_function / check_vjp beside torch.autograd.gradcheck and jax.test_util.check_grads.

The same functions for all three: the per-layer examples of ``tests/layers.py`` (affine,
relu, softmax with cross-entropy) with their correct backward passes and the planted
mistakes. Each peer gets the hand-written backward pass the way its users hand one over:
a ``torch.autograd.Function`` whose ``backward`` calls it, and a ``jax.custom_vjp`` whose
``bwd`` calls it through ``jax.pure_callback``; both with their default tolerances. The
table says whether each one catches each mistake (and stays silent on the correct layers),
and times one check of each correct layer side by side.

    python -m benchmarks --only functions
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .common import Row, side_by_side

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

N, D, M, C = 4, 3, 3, 3
"""Sizes of the example arrays: square weights, so that a transposed dw has the right shape
and only its values can tell it (a wrong shape is caught by anything)."""


def _arrays(layer, seed: int = 7):
    rng = np.random.default_rng(seed)
    sizes = {"N": N, "D": D, "M": M, "C": C}
    arrays = tuple(rng.standard_normal([sizes[d] for d in shape]) for shape in layer.shapes)
    labels = rng.integers(0, C, size=N) if layer.kind == "function" else None
    return arrays, labels


def _ours(layer, backward, arrays, labels, batched=False):
    from layers import checks_args

    import reference

    f, grad, xs = checks_args(layer, backward, arrays, labels)
    entry = reference.check_vjp if layer.kind == "vjp" else reference.check_function
    return entry(f, grad, *xs, m=N, batched=batched)


def _torch(layer, backward, arrays, labels):
    """gradcheck of a torch Function whose backward is the hand-written one: True when it
    passes, False when it catches a difference."""
    import torch

    class Layer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            np_xs = [x.detach().numpy() for x in xs]
            ctx.np_xs = np_xs
            if layer.kind == "vjp":
                return torch.from_numpy(np.asarray(layer.forward(*np_xs)[0]))
            return torch.tensor(float(layer.forward(np_xs[0], labels)[0]), dtype=torch.float64)

        @staticmethod
        def backward(ctx, grad_out):
            g = grad_out.detach().numpy()
            if layer.kind == "vjp":
                grads = backward(g, layer.forward(*ctx.np_xs)[1])
                grads = grads if isinstance(grads, tuple) else (grads,)
            else:
                grads = (g * backward(ctx.np_xs[0], labels)[1],)
            return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in grads)

    inputs = tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays)
    return lambda: bool(torch.autograd.gradcheck(Layer.apply, inputs, raise_exception=False))


def _jax(layer, backward, arrays, labels):
    """check_grads (reverse mode) of a custom_vjp whose bwd is the hand-written one: True when
    it passes, False when it raises (its way of catching a difference)."""
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    if layer.kind == "vjp":
        out_shape = np.shape(layer.forward(*arrays)[0])
    else:
        out_shape = ()

    def np_forward(*xs):
        xs = [np.asarray(x) for x in xs]
        if layer.kind == "vjp":
            return np.asarray(layer.forward(*xs)[0], np.float64)
        return np.asarray(layer.forward(xs[0], labels)[0], np.float64)

    def np_backward(g, *xs):
        xs = [np.asarray(x) for x in xs]
        if layer.kind == "vjp":
            grads = backward(np.asarray(g), layer.forward(*xs)[1])
            grads = grads if isinstance(grads, tuple) else (grads,)
        else:
            grads = (np.asarray(g) * backward(xs[0], labels)[1],)
        return tuple(np.asarray(x, np.float64) for x in grads)

    shapes = [jax.ShapeDtypeStruct(np.shape(a), jnp.float64) for a in arrays]

    @jax.custom_vjp
    def f(*xs):
        return jax.pure_callback(np_forward, jax.ShapeDtypeStruct(out_shape, jnp.float64), *xs)

    def fwd(*xs):
        return f(*xs), xs

    def bwd(xs, g):
        return jax.pure_callback(np_backward, tuple(shapes), g, *xs)

    f.defvjp(fwd, bwd)
    jarrays = tuple(jnp.asarray(a) for a in arrays)

    def run() -> bool:
        try:
            check_grads(f, jarrays, order=1, modes=["rev"])
        except AssertionError:
            return False
        return True

    return run


def _peer(make, layer, backward, arrays, labels):
    try:
        return make(layer, backward, arrays, labels)
    except ImportError:
        return None


def catch_table() -> tuple[list[str], list[Row]]:
    """Every case, each tool's verdict, as the lines of a Markdown table, and the timing rows."""
    from layers import LAYERS, MISTAKES

    cases = [(f"{name}: correct", LAYERS[name], LAYERS[name].backward, False) for name in LAYERS]
    cases.append((_AT_KINK, LAYERS["relu"], LAYERS["relu"].backward, False))
    cases += [(name, LAYERS[m.layer], m.backward, True) for name, m in MISTAKES.items()]
    lines = [
        "| case | check_vjp / check_function | torch gradcheck | jax check_grads |",
        "|---|---|---|---|",
    ]
    for label, layer, backward, wrong in cases:
        arrays, labels = _arrays(layer)
        if label == _AT_KINK:  # one input on the kink, one a tenth of the peers' step from it
            arrays[0][0, 0], arrays[0][1, 1] = 0.0, 1e-7
        report = _ours(layer, backward, arrays, labels)
        ours = _verdict(report.ok, wrong)
        if not report.ok:
            ours += f": {report.failing()[0].diagnosis if report.failing() else report.summary}"
        peers = []
        for make in (_torch, _jax):
            run = _peer(make, layer, backward, arrays, labels)
            peers.append("not installed" if run is None else _verdict(run(), wrong))
        lines.append(f"| {label} | {ours} | {peers[0]} | {peers[1]} |")

    rows = []
    for name, layer in LAYERS.items():
        arrays, labels = _arrays(layer)
        sides = {
            "ours": lambda layer=layer, a=arrays, y=labels: _ours(layer, layer.backward, a, y),
            "ours batched": lambda layer=layer, a=arrays, y=labels: _ours(
                layer, layer.backward, a, y, batched=True
            ),
        }
        for peer, make in (("gradcheck", _torch), ("check_grads", _jax)):
            run = _peer(make, layer, layer.backward, arrays, labels)
            if run is not None:
                sides[peer] = run
        times = side_by_side(sides, repeats=5, min_time=0.05)
        for peer in ("gradcheck", "check_grads"):
            for mine in ("ours", "ours batched"):
                if peer in times:
                    rows.append(
                        Row(
                            "functions",
                            f"{name} {_size(arrays)}: {mine} / {peer} (seconds per check)",
                            times[mine],
                            times[peer],
                            times[mine] / times[peer],
                            "-",
                            None,
                            "ratio = ours / peer",
                        )
                    )
                else:
                    rows.append(
                        Row(
                            "functions",
                            f"{name}: {mine}",
                            times[mine],
                            None,
                            None,
                            "-",
                            None,
                            f"{peer} skipped: not installed",
                        )
                    )
    return lines, rows


_AT_KINK = "relu: correct, one input at 0 and one at 1e-7"
"""A case of its own: a correct relu at its kink, where a fixed-step check raises alarms."""


def _size(arrays) -> str:
    return "(" + ", ".join("x".join(map(str, np.shape(a))) for a in arrays) + ")"


def _verdict(passed: bool, wrong: bool) -> str:
    if wrong:
        return "missed" if passed else "caught"
    return "silent" if passed else "FALSE ALARM"


def bench_functions(quick: bool) -> list[Row]:
    """The catch table (printed) and the timing rows."""
    start = time.perf_counter()
    lines, rows = catch_table()
    print("\n".join(lines))
    print(f"[functions: catch table and timings in {time.perf_counter() - start:.1f} s]")
    return rows


if __name__ == "__main__":
    from reference.oracles.jax_x64 import enable_x64

    with enable_x64():
        bench_functions(False)
