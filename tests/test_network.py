"""The network: the seed's shapes, initialisation, the forward pass, a pure backward pass."""

import numpy as np
import pytest

import backprop
from reference.inputs.problems import random_problem, seed_problem
from reference.oracles.jax_model import jax_gradients


def test_seed_network_gradient_shapes():
    """Seed section 9: dJ/dW^3 is 1x2, dJ/dW^2 2x3, dJ/dW^1 3x2; bias columns 3, 2, 1."""
    p = seed_problem()
    grads = backprop.gradients(p.params, p.X, p.Y, **p.kwargs())
    assert [dW.shape for dW, _ in grads] == [(3, 2), (2, 3), (1, 2)]
    assert [db.shape for _, db in grads] == [(3, 1), (2, 1), (1, 1)]


def test_init_params_shapes_scale_and_seed():
    params = backprop.init_params([2, 3, 2, 1], seed=7)
    assert [(W.shape, b.shape) for W, b in params] == [
        ((3, 2), (3, 1)),
        ((2, 3), (2, 1)),
        ((1, 2), (1, 1)),
    ]
    again = backprop.init_params([2, 3, 2, 1], seed=7)
    assert all(
        np.array_equal(W, W2) and np.array_equal(b, b2) for (W, b), (W2, b2) in zip(params, again)
    )
    big = backprop.init_params([400, 300], seed=0)
    assert abs(big[0][0].std() - 1 / np.sqrt(400)) < 0.01 * (1 / np.sqrt(400)) * 10
    assert np.abs(big[0][1]).max() < 0.1  # biases near zero
    small = backprop.init_params([3, 3], seed=0, scale=1e-3)
    assert np.abs(small[0][0]).max() < 1e-2


def test_forward_by_hand():
    # one tanh unit then one sigmoid unit: Z1 = 2x - 1, Z2 = 3 tanh(Z1) + 0.5
    params = [(np.array([[2.0]]), np.array([[-1.0]])), (np.array([[3.0]]), np.array([[0.5]]))]
    X = np.array([[0.0, 0.5, 1.0]])
    z1 = 2 * X - 1
    want = 1 / (1 + np.exp(-(3 * np.tanh(z1) + 0.5)))
    got = backprop.forward(params, X, activations=["tanh", "sigmoid"])
    np.testing.assert_allclose(got, want, rtol=1e-15)
    cache = backprop.forward_pass(params, X, ["tanh", "sigmoid"])
    np.testing.assert_allclose(cache.Z[0], z1, rtol=1e-15)
    assert cache.A[0] is X and len(cache.Z) == 2 and len(cache.A) == 3


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_jax_to_rounding(seed):
    """The 'done when' figure of the implementation: ~1e-12 against jax.grad, every mix."""
    p = random_problem(np.random.default_rng(seed), depth=(1, 4), width=(1, 6), samples=(1, 6))
    grads = backprop.gradients(p.params, p.X, p.Y, **p.kwargs())
    J, want = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    assert backprop.loss(p.params, p.X, p.Y, **p.kwargs()) == pytest.approx(J, rel=1e-12)
    for (dW, db), (jW, jb) in zip(grads, want):
        for a, j in ((dW, jW), (db, jb)):
            err = np.linalg.norm(a - j) / max(np.linalg.norm(a) + np.linalg.norm(j), 1e-300)
            assert err < 1e-12, p.describe()


def test_backward_is_pure_and_reads_only_the_cache():
    p = seed_problem(("relu", "tanh", "sigmoid"))
    cache = backprop.forward_pass(p.params, p.X, p.activations)
    snapshot = [z.copy() for z in cache.Z] + [a.copy() for a in cache.A]
    first = backprop.backward(p.params, cache, p.Y, p.activations, backprop.COSTS["bce"])
    second = backprop.backward(p.params, cache, p.Y, p.activations, backprop.COSTS["bce"])
    after = list(cache.Z) + list(cache.A)
    assert all(np.array_equal(x, y) for x, y in zip(snapshot, after))
    assert all(np.array_equal(a, b) for f, s in zip(first, second) for a, b in zip(f, s))


def test_float32_stays_float32():
    params = [
        (W.astype(np.float32), b.astype(np.float32))
        for W, b in backprop.init_params([4, 5, 2], seed=1)
    ]
    X = np.ones((4, 3), np.float32)
    Y = np.zeros((2, 3), np.float32)
    grads = backprop.gradients(params, X, Y, activations=["relu", "sigmoid"], cost="mse")
    assert all(dW.dtype == np.float32 and db.dtype == np.float32 for dW, db in grads)


def test_bce_saturated_output_is_finite_and_right():
    """|z| of 40, 60 and 1000 at a sigmoid output: finite loss, dZ = (A - Y)/m exactly."""
    params = [(np.array([[1.0]]), np.array([[0.0]]))]
    X = np.array([[40.0, -60.0, 1000.0, -1000.0]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    J = backprop.loss(params, X, Y, activations=["sigmoid"], cost="bce")
    # softplus(z) - y z per sample: 40, 60, ~0, ~0 (within 1e-17), over m = 4
    assert J == pytest.approx((40 + 60) / 4, rel=1e-15)
    ((dW, db),) = backprop.gradients(params, X, Y, activations=["sigmoid"], cost="bce")
    # dZ = (A - Y)/4 = (1, -1, 0, 0)/4 to double precision
    assert db[0, 0] == pytest.approx(0.0, abs=1e-16)
    assert dW[0, 0] == pytest.approx((40 + 60) / 4, rel=1e-15)


@pytest.mark.parametrize("cost", ["mse", "cce"])
def test_softmax_output_agrees_with_jax_through_the_jacobian(cost):
    """Softmax with mse takes the Jacobian path (vjp), with cce the fused (A - Y)/m: both
    are jax.grad's to rounding on a 3-4-3 network of one-hot labels."""
    rng = np.random.default_rng(5)
    params = backprop.init_params([3, 4, 3], seed=5, scale=1.5)
    X, Y = rng.normal(size=(3, 6)), np.eye(3)[:, [0, 1, 2, 2, 1, 0]]
    kwargs = {"activations": ["leaky_relu", "softmax"], "cost": cost}
    J, want = jax_gradients(params, X, Y, **kwargs)
    assert backprop.loss(params, X, Y, **kwargs) == pytest.approx(J, rel=1e-12)
    for (dW, db), (jW, jb) in zip(backprop.gradients(params, X, Y, **kwargs), want):
        np.testing.assert_allclose(dW, jW, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(db, jb, rtol=1e-10, atol=1e-15)


def test_softmax_cce_at_logits_of_1000_is_finite_and_right():
    """Logits (z, -z) for z = 1000 and -1000: A rounds to one-hot, J is 0 or 2000 per sample,
    dZ = (A - Y)/m exactly."""
    params = [(np.array([[1.0], [-1.0]]), np.zeros((2, 1)))]
    X = np.array([[1000.0, -1000.0]])
    Y = np.array([[1.0, 1.0], [0.0, 0.0]])  # right on the first sample, wrong on the second
    J = backprop.loss(params, X, Y, activations=["softmax"], cost="cce")
    assert J == pytest.approx(2000.0 / 2, rel=1e-15)
    ((dW, db),) = backprop.gradients(params, X, Y, activations=["softmax"], cost="cce")
    # dZ = (A - Y)/2 = ((0, -1/2), (0, 1/2)); dW = dZ X^T, db = row sums
    np.testing.assert_allclose(dW, [[500.0], [-500.0]], rtol=1e-15)
    np.testing.assert_allclose(db, [[-0.5], [0.5]], rtol=1e-15)
