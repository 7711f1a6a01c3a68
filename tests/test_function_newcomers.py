"""check_function and check_vjp as a newcomer meets them with course-style layers: labels
and flags that have no gradient, a forward pass that draws a new dropout mask at every call,
warnings from the user's code, a loss that overflows, a forward pass that cannot take a
batch, a backward pass that writes into ``dout``, a forward pass that is itself wrong."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference
from reference.boundary.guard import ImplementationFailed
from reference.judging import functions


def _softmax_loss(x, y):
    """Scores (N, C), labels (N,): the mean cross-entropy and its gradient, max-shifted."""
    shifted = x - x.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    return -np.log(p[rows, y]).mean(), (p - np.eye(x.shape[1])[y]) / len(y)


def _softmax_loss_unshifted(x, y):
    """The same without the shift: exp overflows for scores of a few hundred."""
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    return -np.log(p[rows, y]).mean(), (p - np.eye(x.shape[1])[y]) / len(y)


def _dropout_forward(x, param):
    """Inverted dropout: keep with probability p; a seed in ``param`` fixes the mask."""
    rng = np.random.default_rng(param.get("seed"))
    mask = (rng.random(x.shape) < param["p"]) / param["p"]
    return x * mask, mask


def _dropout_backward(dout, mask):
    return dout * mask


X = np.random.default_rng(0).standard_normal((4, 3))
Y = np.array([0, 2, 1, 1])


# --- what has no gradient ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (Y, "holds int64 values"),
        (Y > 0, "holds bool values"),
        ({"mode": "train"}, "is a dict"),
        ("train", "is a str"),
    ],
)
def test_an_argument_without_a_gradient_is_told_to_be_closed_over(extra, says):
    with pytest.raises(TypeError) as info:
        reference.check_function(lambda x, y: 0.0, lambda x, y: (x, x), X, extra)
    message = str(info.value)
    assert "arrays[1] (y)" in message and says in message
    assert "close over them" in message and "lambda x: f(x, y)" in message


def test_labels_closed_over_are_the_documented_way_and_pass():
    report = reference.check_function(
        lambda x: _softmax_loss(x, Y)[0], lambda x: _softmax_loss(x, Y)[1], X, m=len(Y)
    )
    assert report.ok, str(report)


# --- a forward pass that is not a function -------------------------------------------------


def test_a_new_dropout_mask_at_every_call_is_refused_not_passed():
    param = {"p": 0.5}
    with pytest.raises(ImplementationFailed, match="different outputs for the same arrays"):
        reference.check_vjp(
            lambda x: _dropout_forward(x, param)[0],
            lambda dout, x: _dropout_backward(dout, _dropout_forward(x, param)[1]),
            X,
        )
    with pytest.raises(ImplementationFailed, match="different values for the same arrays"):
        reference.check_function(
            lambda x: float(np.sum(_dropout_forward(x, param)[0])),
            lambda x: _dropout_forward(x, param)[1],
            X,
        )


def test_a_fixed_dropout_mask_passes():
    param = {"p": 0.5, "seed": 3}
    report = reference.check_vjp(
        lambda x: _dropout_forward(x, param)[0],
        lambda dout, x: _dropout_backward(dout, _dropout_forward(x, param)[1]),
        X,
    )
    assert report.ok, str(report)


# --- what the terminal shows ---------------------------------------------------------------


def _quiet(call):
    """``call()``, asserting that no warning reaches the caller."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    assert not caught, [str(w.message) for w in caught]
    return result


def test_an_overflowing_loss_says_so_once_and_warns_nothing():
    big = 1000 * X  # scores of a few hundred and more: exp overflows
    report = _quiet(
        lambda: reference.check_function(
            lambda x: _softmax_loss_unshifted(x, Y)[0],
            lambda x: _softmax_loss_unshifted(x, Y)[1],
            big,
        )
    )
    assert not report.ok
    assert report.summary.startswith("f is not finite at the given point"), str(report)
    text = str(report)
    assert "overflow encountered in exp" in text  # the user's warnings, counted
    assert all(line.count("warned") == 1 for line in text.splitlines() if "warned" in line)
    assert "where the reference is finite" not in text  # the reference is not finite either
    # the max-shifted loss at the same scores is fine
    assert reference.check_function(
        lambda x: _softmax_loss(x, Y)[0], lambda x: _softmax_loss(x, Y)[1], big
    ).ok


def test_each_warning_is_one_counted_note():
    def f(x):
        warnings.warn("deprecated helper", DeprecationWarning, stacklevel=1)
        return float(np.sum(x**2))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under pytest -W error: still counted, not raised
        report = reference.check_function(f, lambda x: 2 * x, X)
    assert report.ok
    (note,) = [n for n in report.notes if "deprecated helper" in n]
    calls = report.calls - 1  # every call into f warned; grad_f once did not
    assert note.startswith(f"f warned {calls} times: DeprecationWarning")


def test_a_finding_is_not_repeated_as_the_summary():
    def relu_backward_in_place(dout, x):
        dout[x <= 0] = 0
        return dout

    report = reference.check_vjp(lambda x: np.maximum(0.0, x), relu_backward_in_place, X)
    text = str(report)
    assert not report.ok
    assert text.count("changed upstream in place") == 1, text
    assert report.findings[0].endswith(functions.UPSTREAM_HINT)
    html = report._repr_html_()
    assert html.count("changed upstream in place") == 1


def test_lambdas_are_named_by_the_function_they_call():
    def affine_forward(x, w):
        return x @ w, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout

    w = np.ones((3, 2))
    report = reference.check_vjp(
        lambda x, w: affine_forward(x, w)[0],
        lambda dout, x, w: affine_backward(dout, affine_forward(x, w)[1]),
        X,
        w,
    )
    assert (
        str(report)
        .splitlines()[0]
        .startswith("check_vjp affine_forward (in a lambda) / affine_backward (in a lambda)")
    )
    # a lambda that calls nothing keeps its own name
    name = reference.check_function(lambda x: 0.0, lambda x: 0 * x, X).name
    assert name.endswith(
        "<lambda> / test_lambdas_are_named_by_the_function_they_call.<locals>.<lambda>"
    )


# --- batched=True with a forward pass that takes no batch ----------------------------------


def test_a_forward_pass_that_cannot_take_a_batch_is_told_to_leave_batched():
    def affine_forward(x, w):  # flattens each sample, as the course assignments do
        return x.reshape(x.shape[0], -1).dot(w)

    with pytest.raises(ImplementationFailed) as info:
        reference.check_vjp(
            affine_forward, lambda dout, x, w: (dout @ w.T, x.T @ dout), X, np.ones((3, 2)),
            batched=True,
        )  # fmt: skip
    assert str(info.value.finding.message).endswith(functions.BATCHED_HINT)


# --- a wrong forward pass: JAX tells it, the report blames it --------------------------------


def test_a_wrong_forward_pass_with_its_own_right_backward_pass_is_blamed_on_the_forward():
    jnp = pytest.importorskip("jax.numpy")

    def scale_forward(x):  # meant 2 x; written 3 x, with the backward pass to match
        return 3.0 * x

    report = reference.check_vjp(
        scale_forward, lambda dout, x: 3.0 * dout, X, jax_f=lambda x: 2.0 * jnp.asarray(x)
    )
    assert not report.ok
    assert all(a.fd_ok for a in report.arguments)
    assert "the mistake is in f, the forward pass" in report.summary, str(report)


# --- ties: entries on a kink, moved together -------------------------------------------------


def _pairs_max(x):
    """The larger of each row's two entries: max-pooling over windows of two, x (N, 2)."""
    return x.max(axis=1)


def _pairs_max_backward(dout, x):
    """The upstream gradient to the first of the largest entries of each row."""
    return dout[:, None] * np.eye(2)[np.argmax(x, axis=1)]


def _pairs_max_backward_to_every_tie(dout, x):
    """To every largest entry: right where there is no tie, twice too much at a tie."""
    return dout[:, None] * (x == x.max(axis=1, keepdims=True))


@st.composite
def _tied_pairs(draw):
    """Rows of two, some tied (equal, or both zero after a relu), some not."""
    rows = draw(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=5))
    tie = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    x = np.array([(a, a) if t else (a, b) for (a, b), t in zip(rows, tie)], dtype=np.float64)
    return np.maximum(0.0, x) if draw(st.booleans()) else x


@given(_tied_pairs())
def test_a_right_max_at_ties_raises_no_warning(x):
    report = reference.check_vjp(_pairs_max, _pairs_max_backward, x)
    assert report.ok and not report.warnings, str(report)


@given(_tied_pairs())
def test_the_kinked_examples_raise_no_warning(x):
    for f, grad in (
        (lambda x: np.sum(np.abs(x)), np.sign),
        (lambda x: np.sum(np.maximum(0.0, x)), lambda x: (x >= 0).astype(float)),
        (lambda x: np.sum(np.maximum(x[:, 0], x[:, 1])), lambda x: np.eye(2)[np.argmax(x, 1)]),
        (lambda x: float(np.max(x)), lambda x: (x == x.max()) / np.sum(x == x.max())),
    ):
        report = reference.check_function(f, grad, x)
        assert report.ok and not report.warnings, str(report)


def test_a_max_that_hands_the_gradient_to_every_tie_fails():
    x = np.array([[1.5, 1.5], [0.0, 0.0], [2.0, -1.0]])  # two ties, one clear maximum
    report = reference.check_vjp(_pairs_max, _pairs_max_backward_to_every_tie, x)
    assert not report.ok, str(report)
    (row,) = report.failing()
    assert row.outside == 0  # each entry alone is a valid one-sided derivative
    assert row.diagnosis.startswith("every tied maximum got the full gradient"), str(report)
    assert "never to each in full" in row.diagnosis and "FAIL" in str(report)
    # without a tie the same backward pass is right, and nothing is said
    clear = reference.check_vjp(_pairs_max, _pairs_max_backward_to_every_tie, x[2:])
    assert clear.ok and not clear.warnings
