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


def test_documented_defaults():
    import inspect

    sig = inspect.signature(backprop.train)
    defaults = {
        k: v.default for k, v in sig.parameters.items() if v.default is not inspect.Parameter.empty
    }
    assert defaults == {
        "X": None,
        "Y": None,
        "learning_rate": 0.1,
        "max_iterations": 1000,
        "tolerance": 1e-6,
        "batch_size": None,
        "epochs": None,
        "batches": None,
        "seed": None,
        "progress": False,
        "l2": 0.0,
    }


def test_default_learning_rate_steps_by_a_tenth_of_the_gradient():
    params, X, Y, acts, cost = xor_problem()
    trained, _ = backprop.train(params, X, Y, activations=acts, cost=cost, max_iterations=1)
    grads = backprop.gradients(params, X, Y, activations=acts, cost=cost)
    for (W, b), (dW, db), (W1, b1) in zip(params, grads, trained):
        np.testing.assert_allclose(W1, W - 0.1 * dW, rtol=1e-15)
        np.testing.assert_allclose(b1, b - 0.1 * db, rtol=1e-15)


def test_full_batch_epochs_run_out():
    params, X, Y, acts, cost = xor_problem()
    _, history = backprop.train(params, X, Y, activations=acts, cost=cost, epochs=3, tolerance=0.0)
    assert history.stop_reason == "no_more_batches" and history.iterations == 3


def test_every_epoch_visits_every_sample_once():
    import importlib

    train_module = importlib.import_module("backprop.train")  # the module, not the function
    X, Y = np.arange(10.0)[None, :], np.zeros((1, 10))
    seen = [Xb[0].tolist() for Xb, _ in train_module._minibatches(X, Y, 3, 2, seed=0)]
    assert [len(b) for b in seen] == [3, 3, 3, 1, 3, 3, 3, 1]
    first = [v for batch in seen[:4] for v in batch]
    second = [v for batch in seen[4:] for v in batch]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second  # reshuffled


def test_the_gradient_norm_must_fall_strictly_below_the_tolerance():
    params, X, Y, acts, cost = xor_problem()
    _, first = backprop.train(params, X, Y, activations=acts, cost=cost, max_iterations=1)
    norm = first.grad_norm[0]
    _, at = backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=1, tolerance=norm
    )
    assert at.stop_reason == "max_iterations"
    _, above = backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=1, tolerance=norm * (1 + 1e-12)
    )
    assert above.stop_reason == "converged"


def test_divergence_is_a_stop_reason_not_warnings():
    import warnings

    params = [(np.array([[1e160 + 1e150]]), np.zeros((1, 1)))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = backprop.train(
            params,
            np.array([[1.0]]),
            np.array([[1e160]]),
            activations=["relu"],
            cost="mse",
            learning_rate=1.25,
            max_iterations=100,
            tolerance=0.0,
        )
    assert history.stop_reason == "diverged" and np.isnan(history.grad_norm[-1])


def test_divergence_at_the_first_step_returns_the_starting_parameters():
    import warnings

    params = [(np.array([[1e200]]), np.zeros((1, 1)))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow on the way is the stop reason, not a warning
        result, history = backprop.train(
            params,
            np.array([[1e200]]),
            np.array([[0.0]]),
            activations=["relu"],
            cost="mse",
            tolerance=0.0,
        )
        assert history.stop_reason == "diverged" and history.iterations == 0
    assert result[0][0][0, 0] == 1e200 and len(history.loss) == 1


def test_progress_true_draws_on_stderr(capsys):
    params, X, Y, acts, cost = xor_problem()
    backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=3, tolerance=0.0, progress=True
    )
    err = capsys.readouterr().err
    assert "3/3" in err


def test_the_final_progress_line_shows_the_last_loss():
    params, X, Y, acts, cost = xor_problem()
    stream = io.StringIO()
    _, h = backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=4, tolerance=0.0, progress=stream
    )
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert last == f"[{'#' * 30}] 4/4 loss {h.loss[-1]:.6g}"


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        (
            {"batches": [(np.ones((2, 1)), np.ones((1, 1)))], "use_xy": True},
            ValueError,
            "^give either X and Y or batches, not both$",
        ),
        (
            {"batches": [], "batch_size": 2},
            ValueError,
            "^batch_size and epochs apply to X and Y; batches are used as they come$",
        ),
        ({"batches": [], "epochs": 2}, ValueError, "batch_size and epochs apply to X and Y"),
        ({"only_x": True}, ValueError, "^train needs X and Y, or batches$"),
        (
            {"batches": [np.ones((2, 1))]},
            TypeError,
            r"batch 0: each item of batches must be an \(X, Y\) pair",
        ),
        ({"bad_labels": True}, ValueError, r"outside \[0, 1\]"),
        ({"epochs": 0}, ValueError, "epochs must be a positive whole number, got 0"),
    ],
)
def test_train_argument_combinations(kwargs, exc, message):
    params, X, Y, acts, cost = xor_problem()
    kwargs = dict(kwargs)
    if kwargs.pop("use_xy", False):
        call = lambda: backprop.train(params, X, Y, activations=acts, cost=cost, **kwargs)  # noqa: E731
    elif kwargs.pop("only_x", False):
        call = lambda: backprop.train(params, X, activations=acts, cost=cost)  # noqa: E731
    elif kwargs.pop("bad_labels", False):
        call = lambda: backprop.train(params, X, Y * 2, activations=acts, cost=cost)  # noqa: E731
    elif "batches" in kwargs:
        call = lambda: backprop.train(params, activations=acts, cost=cost, **kwargs)  # noqa: E731
    else:
        call = lambda: backprop.train(params, X, Y, activations=acts, cost=cost, **kwargs)  # noqa: E731
    with pytest.raises(exc, match=message):
        call()


def test_default_iteration_limit_and_no_progress_bar(capsys):
    params, X, Y, acts, cost = xor_problem()
    _, history = backprop.train(params, X, Y, activations=acts, cost=cost, tolerance=0.0)
    assert history.stop_reason == "max_iterations" and history.iterations == 1000
    assert capsys.readouterr().err == ""


def test_the_first_progress_draw_is_partial():
    params, X, Y, acts, cost = xor_problem()
    stream = io.StringIO()
    _, h = backprop.train(
        params, X, Y, activations=acts, cost=cost, max_iterations=4, tolerance=0.0, progress=stream
    )
    first = stream.getvalue().split("\r")[1]
    assert first == f"[{'#' * 7}{'.' * 23}] 1/4 loss {h.loss[0]:.6g}"


@pytest.mark.parametrize("tolerance", ["0.1", True])
def test_tolerance_must_be_a_number(tolerance):
    params, X, Y, acts, cost = xor_problem()
    with pytest.raises(ValueError, match=r"tolerance must be a number >= 0"):
        backprop.train(params, X, Y, activations=acts, cost=cost, tolerance=tolerance)


def test_batches_with_only_X_is_refused():
    params, X, Y, acts, cost = xor_problem()
    with pytest.raises(ValueError, match=r"^give either X and Y or batches, not both$"):
        backprop.train(params, X, batches=[(X, Y)], activations=acts, cost=cost)


@pytest.mark.parametrize(
    "grads, exc, message",
    [
        (
            np.ones(3),
            ValueError,
            r"^grads must hold one \(dW, db\) pair per layer \(2\), got ndarray$",
        ),
        ([1, 2], TypeError, r"^layer 1: grads\[0\] must be a \(dW, db\) pair$"),
        (
            [(np.ones((3, 2)), np.ones(3)), (np.ones((1, 3)), np.ones((1, 1)))],
            ValueError,
            r"^layer 1: db has shape \(3,\) but b has shape \(3, 1\)$",
        ),
    ],
)
def test_update_names_a_bad_gradient(grads, exc, message):
    params = backprop.init_params([2, 3, 1], seed=0)
    with pytest.raises(exc, match=message):
        backprop.update(params, grads, 0.1)
