"""Bad input: a clear TypeError or ValueError naming the culprit; nothing changed in place."""

import numpy as np
import pytest

import backprop

P = backprop.init_params([2, 3, 1], seed=0)
X = np.array([[0.0, 1.0], [1.0, 0.0]])
Y = np.array([[0.0, 1.0]])
KW = {"activations": ["tanh", "sigmoid"], "cost": "bce"}


def loss(params=P, X=X, Y=Y, **kw):
    return backprop.loss(params, X, Y, **{**KW, **kw})


def grads(params=P, X=X, Y=Y, **kw):
    return backprop.gradients(params, X, Y, **{**KW, **kw})


def train(**kw):
    return backprop.train(P, X, Y, **{**KW, "max_iterations": 2, **kw})


CASES = {
    "inf in Y": (
        lambda: loss(Y=np.array([[0.0, np.inf]]), cost="mse", activations=["tanh", "sigmoid"]),
        ValueError,
        r"Y must be finite.*inf",
    ),
    "W that does not chain": (
        lambda: grads(params=[P[0], (np.ones((1, 4)), np.ones((1, 1)))]),
        ValueError,
        r"layer 2: W has shape \(1, 4\).*layer 1 has 3 units",
    ),
    "bias as a vector": (
        lambda: grads(params=[(P[0][0], np.zeros(3)), P[1]]),
        ValueError,
        r"layer 1: b must have shape \(3, 1\).*got shape \(3,\)",
    ),
    "bias as a row": (
        lambda: grads(params=[(P[0][0], np.zeros((1, 3))), P[1]]),
        ValueError,
        r"layer 1: b must have shape \(3, 1\)",
    ),
    "unknown activation": (
        lambda: grads(activations=["softsign", "sigmoid"]),
        ValueError,
        rf"layer 1: unknown activation 'softsign'; known: {', '.join(sorted(backprop.ACTIVATIONS))}",
    ),
    "unknown cost": (
        lambda: grads(cost="hinge"),
        ValueError,
        rf"unknown cost 'hinge'; known: {', '.join(sorted(backprop.COSTS))}",
    ),
    "empty batch": (
        lambda: grads(X=np.zeros((2, 0)), Y=np.zeros((1, 0))),
        ValueError,
        r"X is an empty batch",
    ),
    "sample counts differ": (
        lambda: grads(Y=np.array([[0.0, 1.0, 1.0]])),
        ValueError,
        r"X has 2 samples.*Y has 3",
    ),
    "X rows do not fit W^1": (
        lambda: grads(X=np.ones((3, 2))),
        ValueError,
        r"X has 3 rows but layer 1's W takes 2 inputs",
    ),
    "X one-dimensional": (lambda: grads(X=np.ones(2)), ValueError, r"X must be 2-D"),
    "bce without a sigmoid output": (
        lambda: grads(activations=["tanh", "tanh"]),
        ValueError,
        r"cost 'bce' needs a sigmoid output layer, got 'tanh' for layer 2",
    ),
    "softmax in a hidden layer": (
        lambda: grads(activations=["softmax", "sigmoid"]),
        ValueError,
        r"activations\[0\] \(layer 1 of 2\) is 'softmax', which is not elementwise and is "
        r"taken on the output layer only",
    ),
    "cce without a softmax output": (
        lambda: grads(cost="cce"),
        ValueError,
        r"cost 'cce' needs a softmax output layer, got 'sigmoid' for layer 2",
    ),
    "cce labels that are not one-hot": (
        lambda: grads(activations=["tanh", "softmax"], cost="cce", Y=np.array([[1.0, 0.5]])),
        ValueError,
        r"Y must be one-hot by columns for cost 'cce' .* column 1 is \[0.5\]",
    ),
    "NaN in a weight": (
        lambda: grads(params=[(np.full((3, 2), np.nan), P[0][1]), P[1]]),
        ValueError,
        r"layer 1: W must be finite",
    ),
    "learning rate zero": (
        lambda: backprop.update(P, backprop.gradients(P, X, Y, **KW), 0.0),
        ValueError,
        r"learning_rate must be a positive finite number, got 0.0",
    ),
    "learning rate inf": (
        lambda: train(learning_rate=float("inf")),
        ValueError,
        r"learning_rate must be a positive finite number, got inf",
    ),
    "learning rate a string": (
        lambda: train(learning_rate="0.1"),
        TypeError,
        r"learning_rate must be a positive finite number",
    ),
    "max_iterations zero": (
        lambda: train(max_iterations=0),
        ValueError,
        r"max_iterations must be a positive whole number, got 0",
    ),
    "max_iterations a float": (
        lambda: train(max_iterations=2.5),
        TypeError,
        r"max_iterations must be a positive whole number",
    ),
    "batch_size zero": (
        lambda: train(batch_size=0),
        ValueError,
        r"batch_size must be a positive whole number",
    ),
    "negative tolerance": (
        lambda: train(tolerance=-1.0),
        ValueError,
        r"tolerance must be a number >= 0",
    ),
    "grads of the wrong shape": (
        lambda: backprop.update(
            P, [(np.ones((2, 3)), np.ones((3, 1))), (np.ones((1, 3)), np.ones((1, 1)))], 0.1
        ),
        ValueError,
        r"layer 1: dW has shape \(2, 3\) but W has shape \(3, 2\)",
    ),
    "grads for too few layers": (
        lambda: backprop.update(P, [(np.ones((3, 2)), np.ones((3, 1)))], 0.1),
        ValueError,
        r"one \(dW, db\) pair per layer \(2\), got 1",
    ),
    "a bad batch in the stream": (
        lambda: backprop.train(
            P, batches=[(X, Y), (X, np.array([[0.0, 3.0]]))], **KW, tolerance=0.0
        ),
        ValueError,
        r"outside \[0, 1\]",
    ),
    "forward with a bad X": (
        lambda: backprop.forward(P, np.ones((5, 1)), activations=KW["activations"]),
        ValueError,
        r"X has 5 rows",
    ),
    "init sizes too short": (
        lambda: backprop.init_params([3]),
        ValueError,
        r"sizes needs at least two widths",
    ),
    "init width zero": (
        lambda: backprop.init_params([3, 0, 1]),
        ValueError,
        r"sizes\[1\] \(the width of layer 1\) must be a positive integer, got 0",
    ),
}


# More cases, anchored: the whole message, so that a changed word, name or value shows.
CASES.update(
    {
        "NaN in X": (
            lambda: grads(X=np.array([[0.0, np.nan], [1.0, 0.0]])),
            ValueError,
            r"^X must be finite, but X\[0, 1\] is nan$",
        ),
        "bce label above 1": (
            lambda: grads(Y=np.array([[1.0, 2.0]])),
            ValueError,
            r"^Y holds labels outside \[0, 1\] \(e.g. 2.0\), which cost 'bce' cannot take$",
        ),
        "bce label below 0": (
            lambda: loss(Y=np.array([[0.0, -0.5]])),
            ValueError,
            r"outside \[0, 1\] \(e.g. -0.5\)",
        ),
        "too few activations": (
            lambda: grads(activations=["sigmoid"]),
            ValueError,
            r"^activations has 1 names but params has 2 layers; give one activation per layer$",
        ),
        "activations as one string": (
            lambda: grads(activations="sigmoid"),
            TypeError,
            r"^activations must be a sequence of names, one per layer \(e.g. \['tanh', 'sigmoid'\]\), got str 'sigmoid'$",
        ),
        "Y rows do not fit the output": (
            lambda: grads(X=np.ones((2, 3)), Y=np.zeros((2, 3))),
            ValueError,
            r"^Y has 2 rows but the output layer has 1 units$",
        ),
        "params not a list": (
            lambda: grads(params=np.ones((3, 2))),
            TypeError,
            r"^params must be a list of \(W, b\) tuples, one per layer, got an array of dtype float64 and shape \(3, 2\)$",
        ),
        "params a number": (
            lambda: grads(params=5),
            TypeError,
            r"^params must be a list of \(W, b\) tuples, one per layer, got int 5$",
        ),
        "empty params": (
            lambda: grads(params=[]),
            ValueError,
            r"^params must hold at least one layer, got an empty list$",
        ),
        "a layer not a pair": (
            lambda: grads(params=[P[0], P[1][0]]),
            TypeError,
            r"^layer 2: params\[1\] must be a \(W, b\) pair, got an array",
        ),
        "a layer of three": (
            lambda: grads(params=[P[0], (*P[1], P[1][1])]),
            TypeError,
            r"^layer 2: params\[1\] must be a \(W, b\) pair, got tuple",
        ),
        "learning rate a string, named": (
            lambda: train(learning_rate="0.1"),
            TypeError,
            r"^learning_rate must be a positive finite number, got str '0.1'$",
        ),
        "b not numeric": (
            lambda: grads(params=[(P[0][0], np.array([["a"]] * 3)), P[1]]),
            TypeError,
            r"^layer 1: b must be a real floating-point array, got dtype <U1$",
        ),
        "W not numeric": (
            lambda: grads(params=[(np.array([["a", "b"]] * 3), P[0][1]), P[1]]),
            TypeError,
            r"^layer 1: W must be a real floating-point array, got dtype <U1$",
        ),
        "W one-dimensional": (
            lambda: grads(params=[(np.ones(3), P[0][1]), P[1]]),
            ValueError,
            r"^layer 1: W must be a non-empty 2-D array \(n_1, n_0\), got shape \(3,\)$",
        ),
        "inf in a bias": (
            lambda: grads(params=[(P[0][0], np.full((3, 1), np.inf)), P[1]]),
            ValueError,
            r"^layer 1: b must be finite, but layer 1: b\[0, 0\] is inf$",
        ),
        "Y one-dimensional": (
            lambda: grads(Y=np.zeros(2)),
            ValueError,
            r"^Y must be 2-D with samples as columns, shape \(1, 2\), got shape \(2,\)$",
        ),
        "Y not numeric": (
            lambda: grads(Y=np.array([["a", "b"]])),
            TypeError,
            r"^Y must be a real floating-point array",
        ),
        "ragged X": (
            lambda: grads(X=[[0.0, 1.0], [1.0]]),
            ValueError,
            r"^X must be a 2-D array, got list \[\[0.0, 1.0\], \[1.0\]\]",
        ),
        "string data": (
            lambda: grads(X=np.array([["a", "b"], ["c", "d"]])),
            TypeError,
            r"^X must be a real floating-point array, got dtype <U1$",
        ),
        "bce on a deeper non-sigmoid output": (
            lambda: backprop.gradients(
                backprop.init_params([2, 2, 2, 1], seed=0),
                X,
                Y,
                activations=["sigmoid", "relu", "tanh"],
                cost="bce",
            ),
            ValueError,
            r"got 'tanh' for layer 3$",
        ),
        "update with a number for grads": (
            lambda: backprop.update(P, 5, 0.1),
            ValueError,
            r"^grads must hold one \(dW, db\) pair per layer \(2\), got int$",
        ),
    }
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_a_message_naming_it(case):
    fn, exc, pattern = CASES[case]
    with pytest.raises(exc, match=pattern):
        fn()


def test_nothing_is_changed_in_place_even_on_error():
    params = [(W.copy(), b.copy()) for W, b in P]
    Xc, Yc = X.copy(), np.array([[0.0, 2.0]])
    with pytest.raises(ValueError):
        backprop.gradients(params, Xc, Yc, **KW)
    assert all(
        np.array_equal(W, W0) and np.array_equal(b, b0) for (W, b), (W0, b0) in zip(params, P)
    )
    assert np.array_equal(Xc, X) and np.array_equal(Yc, [[0.0, 2.0]])


def test_integer_data_is_taken_losslessly():
    got = backprop.gradients(P, X.astype(int), Y.astype(int), **KW)
    want = backprop.gradients(P, X, Y, **KW)
    assert all(np.array_equal(a, b) for g, w in zip(got, want) for a, b in zip(g, w))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: backprop.init_params("abc"), r"sizes must be a sequence of layer widths"),
        (
            lambda: backprop.init_params([2, True]),
            r"sizes\[1\] \(the width of layer 1\) must be a positive integer, got True",
        ),
        (lambda: backprop.init_params([2, 1.5]), r"got 1.5"),
        (
            lambda: backprop.init_params([2, 2], scale=-1.0),
            r"scale must be a positive finite number, got -1.0",
        ),
        (
            lambda: grads(activations=5),
            r"activations must be a sequence of names, one per layer .*got int 5",
        ),
        (
            lambda: train(max_iterations=2.5),
            r"max_iterations must be a positive whole number, got float 2.5",
        ),
    ],
)
def test_more_messages_name_the_argument_and_what_came(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_lists_and_huge_finite_values_are_accepted():
    as_lists = backprop.gradients(
        [(W.tolist(), b.tolist()) for W, b in P], X.tolist(), Y.tolist(), **KW
    )
    want = backprop.gradients(P, X, Y, **KW)
    assert all(np.array_equal(a, b) for g, w in zip(as_lists, want) for a, b in zip(g, w))
    huge = np.array([[1e308, 1e308], [1e308, 1e308]])  # finite, though their sum overflows
    with np.errstate(over="ignore"):  # W @ X overflows to inf on the way; tanh takes it
        assert np.isfinite(backprop.forward(P, huge, activations=KW["activations"])).all()


def test_a_diverging_run_that_meets_inf_minus_inf_stays_quiet():
    import warnings

    # Z^1 = (inf, inf), relu keeps it, and W^2 = (1, -1) makes inf - inf = nan.
    params = [
        (np.full((2, 1), 1e200), np.zeros((2, 1))),
        (np.array([[1.0, -1.0]]), np.zeros((1, 1))),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = backprop.train(
            params,
            np.array([[1e200]]),
            np.array([[0.0]]),
            activations=["relu", "relu"],
            cost="mse",
            tolerance=0.0,
        )
    assert history.stop_reason == "diverged" and np.isnan(history.loss[-1])


def test_no_batches_at_all_stops_at_once_with_a_progress_line():
    import io

    stream = io.StringIO()
    _, history = backprop.train(P, batches=[], **KW, progress=stream)
    assert history.stop_reason == "no_more_batches" and history.iterations == 0
    assert stream.getvalue().endswith("0/1000 loss nan\n")


@pytest.mark.parametrize("activations", [["sigmoid", "sigmoid"], ["tanh"] * 4, "tanh"])
def test_the_seed_problem_takes_one_activation_per_layer(activations):
    from reference.inputs.problems import seed_problem

    with pytest.raises(ValueError, match=r"activations must name one activation for each of the"):
        seed_problem(activations, "mse")


def test_the_harness_refuses_a_hidden_softmax_and_labels_not_one_hot_for_cce():
    """The caller's mistake, named before any implementation is called (a ProblemError)."""
    from reference.inputs.problems import seed_problem
    from reference.inputs.validate import ProblemError, validate_problem

    p = seed_problem(("tanh", "tanh", "softmax"), "cce")
    with pytest.raises(ProblemError, match=r"activations\[1\] \(layer 2 of 3\) must be an "
                       r"elementwise activation, got 'softmax'"):  # fmt: skip
        validate_problem(p.params, p.X, p.Y, ["tanh", "softmax", "softmax"], "cce")
    with pytest.raises(ProblemError, match=r"Y must be one-hot by columns for cce .* column 0"):
        validate_problem(p.params, p.X, p.Y * 0.5, p.activations, "cce")
    assert validate_problem(p.params, p.X, p.Y, p.activations, "cce")[3] == p.activations
