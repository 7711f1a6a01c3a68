"""Gradient descent: the update rule and every stopping criterion, with its reason."""

import io

import numpy as np
import pytest

import backprop
from backprop import datasets


def xor_problem():
    X, Y = datasets.xor()
    return backprop.init_params([2, 3, 2, 1], seed=0), X, Y, ["tanh", "tanh", "sigmoid"], "bce"


def test_update_is_w_minus_alpha_g_and_pure():
    params = backprop.init_params([3, 2, 1], seed=1)
    grads = [(np.ones_like(W), np.full_like(b, 2.0)) for W, b in params]
    before = [(W.copy(), b.copy()) for W, b in params]
    new = backprop.update(params, grads, 0.5)
    for (W, b), (W1, b1) in zip(before, new):
        np.testing.assert_array_equal(W1, W - 0.5)
        np.testing.assert_array_equal(b1, b - 1.0)
    assert all(
        np.array_equal(W, W0) and np.array_equal(b, b0) for (W, b), (W0, b0) in zip(params, before)
    )


def test_trains_xor_to_a_low_loss():
    """XOR needs a hidden layer; the seed's 2-3-2-1 network learns it."""
    params, X, Y, acts, cost = xor_problem()
    trained, history = backprop.train(
        params,
        X,
        Y,
        activations=acts,
        cost=cost,
        learning_rate=0.5,
        max_iterations=20_000,
        tolerance=1e-3,
    )
    assert history.stop_reason == "converged"
    assert backprop.loss(trained, X, Y, activations=acts, cost=cost) < 0.01
    predictions = backprop.forward(trained, X, activations=acts)
    np.testing.assert_array_equal(predictions > 0.5, Y > 0.5)
    assert history.loss[0] > 10 * history.loss[-1]


def test_stops_at_max_iterations():
    params, X, Y, acts, cost = xor_problem()
    _, history = backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=7, tolerance=0.0
    )
    assert history.stop_reason == "max_iterations"
    assert history.iterations == 7 and len(history.loss) == len(history.grad_norm) == 7


def test_stops_when_the_gradient_norm_is_below_tolerance():
    params, X, Y, acts, cost = xor_problem()
    _, history = backprop.train(params, X, Y, activations=acts, cost=cost, tolerance=1e9)
    assert history.stop_reason == "converged" and history.iterations == 0
    assert len(history.grad_norm) == 1 and history.grad_norm[0] < 1e9


def test_grad_norm_is_the_norm_of_every_entry():
    params, X, Y, acts, cost = xor_problem()
    _, history = backprop.train(params, X, Y, activations=acts, cost=cost, max_iterations=1)
    grads = backprop.gradients(params, X, Y, activations=acts, cost=cost)
    want = np.sqrt(sum((dW**2).sum() + (db**2).sum() for dW, db in grads))
    assert history.grad_norm[0] == pytest.approx(want, rel=1e-12)


def test_stops_when_the_batches_run_out():
    params, X, Y, acts, cost = xor_problem()
    batches = [(X[:, :2], Y[:, :2]), (X[:, 2:], Y[:, 2:]), (X, Y)]
    _, history = backprop.train(params, batches=batches, activations=acts, cost=cost, tolerance=0.0)
    assert history.stop_reason == "no_more_batches" and history.iterations == 3


def test_minibatch_epochs_are_seeded_and_run_out():
    X, Y = datasets.moons(40, seed=0)
    params = backprop.init_params([2, 4, 1], seed=0)
    kw = dict(
        activations=["tanh", "sigmoid"], cost="bce", batch_size=16, epochs=2, seed=3, tolerance=0.0
    )
    _, ha = backprop.train(params, X, Y, **kw)
    _, hb = backprop.train(params, X, Y, **kw)
    assert ha.stop_reason == "no_more_batches" and ha.iterations == 2 * 3  # 16 + 16 + 8 per epoch
    assert ha.loss == hb.loss
    _, hc = backprop.train(params, X, Y, **{**kw, "seed": 4})
    assert hc.loss != ha.loss


def test_divergence_stops_and_returns_the_last_finite_parameters():
    """Too large a step on (W x + b - y)^2 multiplies the error by 1 - 2 alpha = -1.5 each
    iteration; with y = 1e160 the squared error overflows after 24 steps while W x + b
    stays positive (so relu passes it through)."""
    params = [(np.array([[1e160 + 1e150]]), np.zeros((1, 1)))]
    X, Y = np.array([[1.0]]), np.array([[1e160]])
    kw = dict(activations=["relu"], cost="mse")
    result, history = backprop.train(
        params, X, Y, **kw, learning_rate=1.25, max_iterations=10_000, tolerance=0.0
    )
    assert history.stop_reason == "diverged"
    assert not np.isfinite(history.loss[-1]) and np.isfinite(history.loss[:-1]).all()
    assert history.loss[-2] > 2 * history.loss[-3]  # it grew, it did not jump
    assert backprop.loss(result, X, Y, **kw) == history.loss[-2]


def test_progress_bar_writes_to_the_stream():
    params, X, Y, acts, cost = xor_problem()
    stream = io.StringIO()
    backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=5, tolerance=0.0, progress=stream
    )
    assert "5/5" in stream.getvalue() and stream.getvalue().endswith("\n")


def test_train_leaves_its_inputs_alone():
    params, X, Y, acts, cost = xor_problem()
    before = [(W.copy(), b.copy()) for W, b in params], X.copy(), Y.copy()
    backprop.train(params, X, Y, activations=acts, cost=cost, max_iterations=3)
    assert all(np.array_equal(W, W0) for (W, _), (W0, _) in zip(params, before[0]))
    assert np.array_equal(X, before[1]) and np.array_equal(Y, before[2])
