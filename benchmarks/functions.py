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


# --- the held-out kind: layers with kinks and ties (tests/kinked_layers.py) -------------------

CS231N_HAPPY = 1e-7
"""The cs231n rule: the largest entrywise relative error |a - n| / max(|a| + |n|, 1e-8) of a
centred difference with h = 1e-5 against the analytic gradient; "1e-7 and less you should be
happy" (CS231n notes, "Neural Networks Part 3", gradient checks:
https://cs231n.github.io/neural-networks-3/#gradcheck). Above it counts as an alarm here."""


def _flat_case(case):
    """A kinked case as one function of arrays with one array out, and its backward pass: a
    tuple of outputs concatenated (flattened), a loss as an array of shape ()."""
    from kinked_layers import arguments

    f, grad, arrays, entry = arguments(case)
    if entry == "check_function":
        return (lambda *xs: np.asarray(f(*xs), np.float64),
                lambda g, *xs: (np.asarray(g) * grad(*xs),), arrays)  # fmt: skip
    outs = f(*arrays)
    if not isinstance(outs, tuple):
        return f, lambda g, *xs: _as_tuple(grad(g, *xs)), arrays
    shapes = [np.shape(o) for o in outs]
    sizes = np.cumsum([0] + [int(np.prod(sh)) for sh in shapes])

    def flat(*xs):
        return np.concatenate([np.ravel(o) for o in f(*xs)])

    def flat_grad(g, *xs):
        parts = tuple(g[a:b].reshape(sh) for a, b, sh in zip(sizes[:-1], sizes[1:], shapes))
        return _as_tuple(grad(parts, *xs))

    return flat, flat_grad, arrays


def _as_tuple(grads):
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def _held_ours(case) -> bool:
    from kinked_layers import arguments

    import reference

    f, grad, arrays, entry = arguments(case)
    return getattr(reference, entry)(f, grad, *arrays).ok


def _held_torch(case):
    import torch

    f, grad, arrays = _flat_case(case)

    class Layer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.np_xs = [x.detach().numpy() for x in xs]
            return torch.from_numpy(np.array(f(*ctx.np_xs), dtype=np.float64))

        @staticmethod
        def backward(ctx, g):
            grads = grad(g.detach().numpy(), *ctx.np_xs)
            return tuple(torch.from_numpy(np.ascontiguousarray(x, np.float64)) for x in grads)

    inputs = tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays)
    return lambda: bool(torch.autograd.gradcheck(Layer.apply, inputs, raise_exception=False))


def _held_jax(case):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    f, grad, arrays = _flat_case(case)
    out = jax.ShapeDtypeStruct(np.shape(f(*arrays)), jnp.float64)
    shapes = tuple(jax.ShapeDtypeStruct(np.shape(a), jnp.float64) for a in arrays)

    @jax.custom_vjp
    def g(*xs):
        return jax.pure_callback(lambda *v: np.asarray(f(*v), np.float64), out, *xs)

    def fwd(*xs):
        return g(*xs), xs

    def bwd(xs, ct):
        return jax.pure_callback(
            lambda c, *v: tuple(np.asarray(x, np.float64) for x in grad(np.asarray(c), *v)),
            shapes,
            ct,
            *xs,
        )

    g.defvjp(fwd, bwd)

    def run() -> bool:
        try:
            check_grads(g, tuple(jnp.asarray(a) for a in arrays), order=1, modes=["rev"])
        except AssertionError:
            return False
        return True

    return run


def _held_autograd(case):
    import autograd.numpy as anp  # noqa: F401  (autograd's numpy must be importable)
    from autograd.extend import defvjp_argnums, primitive
    from autograd.test_util import check_grads

    f, grad, arrays = _flat_case(case)
    F = primitive(lambda *xs: np.asarray(f(*xs), np.float64))
    defvjp_argnums(
        F, lambda argnums, ans, args, kw: lambda g: tuple(grad(g, *args)[k] for k in argnums)
    )

    def run() -> bool:
        np.random.seed(0)  # noqa: NPY002 (autograd's check draws from the global state)
        try:
            check_grads(F, modes=["rev"], order=1, argnum=tuple(range(len(arrays))))(*arrays)
        except AssertionError:
            return False
        return True

    return run


def _held_chainer(case):
    import chainer  # noqa: F401

    raise NotImplementedError("chainer's check_backward is not wired in here")


def _held_cs231n(case):
    f, grad, arrays = _flat_case(case)

    def run() -> bool:
        rng = np.random.default_rng(0)
        dout = rng.standard_normal(np.shape(f(*arrays)))
        given = grad(dout, *arrays)
        worst = 0.0
        for k, x in enumerate(arrays):
            numeric = np.zeros_like(x)
            for i in np.ndindex(x.shape):
                up, down = [list(arrays) for _ in range(2)]
                up[k], down[k] = x.copy(), x.copy()
                up[k][i] += 1e-5
                down[k][i] -= 1e-5
                numeric[i] = np.sum((f(*up) - f(*down)) * dout) / 2e-5
            a = np.asarray(given[k])
            rel = np.abs(a - numeric) / np.maximum(1e-8, np.abs(a) + np.abs(numeric))
            worst = max(worst, float(rel.max()) if rel.size else 0.0)
        return worst <= CS231N_HAPPY

    return run


HELD_PEERS = {
    "torch gradcheck": _held_torch,
    "jax check_grads": _held_jax,
    "autograd check_grads": _held_autograd,
    "chainer check_backward": _held_chainer,
    "cs231n rule": _held_cs231n,
}
"""The peers of the held-out table, each handed the backward pass as its users hand one
over; one that cannot be imported is said to be absent."""


def held_out_table(seeds: int = 1) -> list[str]:
    """The correct layers of ``tests/kinked_layers.py`` at every kind of point (on a kink, a
    fraction of a step beside one, near 1e4, near 1e-4, plain) and its mistakes: each tool's
    false alarms and catches, as the lines of a Markdown table."""
    from kinked_layers import MISTAKES, correct_cases

    correct = correct_cases(seeds)
    tools = {"check_vjp / check_function": lambda case: lambda: _held_ours(case)}
    absent = []
    for name, make in HELD_PEERS.items():
        try:
            make(correct[0])
            tools[name] = make
        except ImportError:
            absent.append((name, "not installed"))
        except NotImplementedError:
            absent.append((name, "installed; not wired in here"))
    on = [c for c in correct if c.point == "on"]
    lines = [
        "| tool | false alarms, all correct cases | of them exactly on kinks | mistakes caught |",
        "|---|---|---|---|",
    ]
    for name, make in tools.items():
        alarms = [c for c in correct if not make(c)()]
        at_kinks = [c for c in alarms if c in on]
        caught = [m for m in MISTAKES.values() if not make(m)()]
        lines.append(
            f"| {name} | {len(alarms)} of {len(correct)} | {len(at_kinks)} of {len(on)} | "
            f"{len(caught)} of {len(MISTAKES)} |"
        )
    lines += [f"| {name} | {why} | | |" for name, why in absent]
    return lines


def bench_functions(quick: bool) -> list[Row]:
    """The catch table and the held-out table (printed) and the timing rows."""
    start = time.perf_counter()
    lines, rows = catch_table()
    print("\n".join(lines))
    print()
    print("\n".join(held_out_table()))
    print(f"[functions: catch tables and timings in {time.perf_counter() - start:.1f} s]")
    return rows


if __name__ == "__main__":
    from reference.oracles.jax_x64 import enable_x64

    with enable_x64():
        bench_functions(False)
