"""backprop keeps the inputs' precision on every path and never writes into its arguments.

Every combination the tables allow (each activation in a hidden layer under each output
activation a cost accepts, every cost, the fused forms included) is run through every
public function and through ``forward_pass`` / ``backward``: float32 in gives float32 out
at every step (a float64 scalar, a float64 1/m or a float64 constant array would promote
it), and arguments made read-only are read, never written.
"""

import itertools

import numpy as np
import pytest

import backprop
from reference.inputs.problems import needs_one_hot, one_hot_labels, output_only

LOW = [np.float32, np.float16]


def paths():
    """(hidden activation, output activation, cost) for every pairing the tables allow."""
    for cost_name, cost in sorted(backprop.COSTS.items()):
        outputs = cost.output_activations or backprop.ACTIVATIONS
        for hidden, out in itertools.product(sorted(backprop.ACTIVATIONS), sorted(outputs)):
            if not output_only(hidden):  # softmax and the like: the output layer only
                yield hidden, out, cost_name


PATHS = list(paths())


def problem(hidden, out, cost, dtype, m=5):
    """2-4-3-2 with the given activations; labels in [0, 1] so that every cost takes them,
    one-hot where the output or the cost needs it."""
    rng = np.random.default_rng(0)
    params = [
        (rng.normal(0, 1, (n, p)).astype(dtype), rng.normal(0, 0.5, (n, 1)).astype(dtype))
        for p, n in [(2, 4), (4, 3), (3, 2)]
    ]
    X = rng.normal(size=(2, m)).astype(dtype)
    if needs_one_hot(out, cost):
        Y = one_hot_labels(rng, 2, m).astype(dtype)
    else:
        Y = rng.uniform(size=(2, m)).astype(dtype)
    return params, X, Y, [hidden, hidden, out], cost


def read_only(params, X, Y):
    arrays = [a for pair in params for a in pair] + [X, Y]
    for a in arrays:
        a.flags.writeable = False
    return arrays


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("hidden, out, cost", PATHS)
def test_low_precision_stays_low_on_every_path(hidden, out, cost, dtype):
    params, X, Y, acts, cost = problem(hidden, out, cost, dtype)
    cache = backprop.forward_pass(params, X, acts)
    assert [z.dtype for z in cache.Z] == [dtype] * 3
    assert [a.dtype for a in cache.A] == [dtype] * 4
    assert backprop.forward(params, X, activations=acts).dtype == dtype
    grads = backprop.gradients(params, X, Y, activations=acts, cost=cost)
    assert [(dW.dtype, db.dtype) for dW, db in grads] == [(dtype, dtype)] * 3
    again = backprop.backward(params, cache, Y, acts, backprop.COSTS[cost])
    assert all(
        np.array_equal(g, h) for pair, other in zip(grads, again) for g, h in zip(pair, other)
    )
    assert isinstance(backprop.loss(params, X, Y, activations=acts, cost=cost), float)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("hidden, out, cost", PATHS)
def test_low_precision_gradients_are_the_float64_ones_rounded(hidden, out, cost, dtype):
    """Kept low and still right: within the dtype's rounding of the float64 gradients (an
    upcast-then-cast-back would pass the dtype test; a wrong formula would not pass this)."""
    params, X, Y, acts, cost = problem(hidden, out, cost, dtype)
    kw = {"activations": acts, "cost": cost}
    got = backprop.gradients(params, X, Y, **kw)
    wide = [(W.astype(np.float64), b.astype(np.float64)) for W, b in params]
    want = backprop.gradients(wide, X.astype(np.float64), Y.astype(np.float64), **kw)
    eps = float(np.finfo(dtype).eps)
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            err = np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30)
            assert err < 200 * eps, (hidden, out, cost, err)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("hidden, out, cost", PATHS)
def test_arguments_are_read_never_written(hidden, out, cost, dtype):
    params, X, Y, acts, cost = problem(hidden, out, cost, dtype)
    before = [a.copy() for pair in params for a in pair] + [X.copy(), Y.copy()]
    arrays = read_only(params, X, Y)  # a write into any of them raises ValueError
    kw = {"activations": acts, "cost": cost}
    backprop.forward(params, X, activations=acts)
    backprop.loss(params, X, Y, **kw)
    grads = backprop.gradients(params, X, Y, **kw)
    cache = backprop.forward_pass(params, X, acts)
    for a in [*cache.Z, *cache.A]:
        a.flags.writeable = False  # backward reads the cache too
    backprop.backward(params, cache, Y, acts, backprop.COSTS[cost])
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before))
    # and nothing handed back is a view of an argument, which a caller's update would write
    for g in (g for pair in grads for g in pair):
        assert g.flags.writeable and not any(np.shares_memory(g, a) for a in arrays)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_every_table_function_keeps_the_dtype_and_its_arguments(dtype):
    z = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    y = np.linspace(0, 1, 12, dtype=dtype).reshape(3, 4)
    z.flags.writeable = y.flags.writeable = False  # a write into an argument raises
    for name, act in backprop.ACTIVATIONS.items():
        a = act.fn(z)
        a.flags.writeable = False
        assert a.dtype == dtype and act.grad(z, a).dtype == dtype, name
    a = backprop.ACTIVATIONS["sigmoid"].fn(z)
    a.flags.writeable = False
    for name, cost in backprop.COSTS.items():
        assert cost.grad(a, y).dtype == dtype, name
        for out, fused in cost.fused.items():
            assert fused.delta(a, y).dtype == dtype, (name, out)
            assert isinstance(fused.fn(z, y), float), (name, out)
