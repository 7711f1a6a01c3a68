"""Kinks judged, not excused: at an entry on a kink the hand-written gradient must lie between
the one-sided slopes, and entries on kinks moved together must add up to a rate between the
one-sided rates along them. The course-style layers of ``tests/kinked_layers.py``: no false
alarm on the correct ones, on and next to their kinks and near 1e4 and 1e-4; the mistakes
that hide at a kink or below a fixed bound caught, each with its own diagnosis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from kinked_layers import (
    LAYERS,
    MISTAKES,
    POINTS,
    arguments,
    correct_cases,
    layernorm_backward,
    layernorm_forward,
    svm_loss,
    two_outputs_backward,
    two_outputs_forward,
)

import reference
from reference.boundary.guard import ImplementationFailed
from reference.judging import checker, functions


def _run(case, **kw):
    f, grad, arrays, entry = arguments(case)
    return getattr(reference, entry)(f, grad, *arrays, **kw)


def sweep() -> list:
    """The correct cases the profile in force runs: every layer at every kind of point once,
    with max_examples // 100 seeds each (10 under ``thorough``); under a profile of fewer
    examples than that (``ci``), an evenly spread max_examples of them."""
    examples = settings.default.max_examples
    cases = correct_cases(seeds=max(1, examples // 100))
    if examples < len(cases):
        cases = [cases[int(k * len(cases) / examples)] for k in range(examples)]
    return cases


# --- no false alarm --------------------------------------------------------------------------


def test_the_correct_layers_raise_no_false_alarm():
    cases = sweep()
    alarms = [(c.label, str(r)) for c in cases if not (r := _run(c)).ok]
    assert not alarms, "\n\n".join(f"{label}\n{text}" for label, text in alarms)
    full = len(LAYERS) * len(POINTS)
    assert len(cases) >= min(full, settings.default.max_examples)


def test_the_sweep_puts_entries_on_kinks():
    """The "on" points do put entries on kinks, and the checks judge them there."""
    on = [c for c in correct_cases() if c.point == "on" and LAYERS[c.layer].kinked]
    assert on
    judged = {c.layer: _run(c).on_kink for c in on}
    assert all(count > 0 for count in judged.values()), judged


# --- the mistakes: caught, with their diagnoses ------------------------------------------------


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_caught_with_its_diagnosis(mistake):
    case = MISTAKES[mistake]
    m = arguments(case)[2][0].shape[0]  # the batch size: a factor m or 1/m is named as such
    report = _run(case, m=m)
    assert not report.ok, str(report)
    assert any(case.says in a.diagnosis for a in report.failing()), str(report)
    for network_cause in ("mse's 1/2", "the 1/m is applied twice", "the 1/m of the cost"):
        assert network_cause not in str(report)  # a layer has no network cost to blame
    right = _run(type(case)(case.layer, LAYERS[case.layer].backward, case.point, case.seed))
    assert right.ok, str(right)  # the same point with the layer's own backward pass: silent


def test_a_hinge_without_the_correct_class_is_outside_the_one_sided_slopes():
    """Every row has one wrong class exactly on its margin and k >= 1 beyond it: the correct
    class's slopes are -(k+1)/N (from the left) and -k/N (from the right); 0 is outside."""
    case = MISTAKES["svm_loss without the correct class's term"]
    report = _run(case)
    (row,) = report.failing()
    x = arguments(case)[2][0]
    N = x.shape[0]
    assert row.error_fd is not None and row.error_fd <= row.bound_fd  # the rest agrees
    assert row.outside == N and row.on_kink > N, str(report)
    worst = row.worst
    assert worst["yours"] == 0.0
    k = round(-worst["right"] * N)
    assert k >= 1 and worst["left"] == pytest.approx(-(k + 1) / N, abs=1e-6), str(report)
    assert "on a kink: yours 0, one-sided slopes" in str(report)
    assert "a term left out?" in row.diagnosis


def test_a_sign_flipped_at_a_kink_is_named():
    def relu_sum(x):
        return np.sum(np.maximum(0.0, x))

    def flipped(x):
        return -np.ones_like(x)

    mixed = reference.check_function(relu_sum, flipped, np.array([0.0, 0.0, 1.5]))
    (row,) = mixed.arguments
    assert row.outside == 2 and "the sign is flipped" in row.diagnosis, str(mixed)
    only = reference.check_function(relu_sum, flipped, np.zeros(2))
    assert "yours have the opposite sign" in only.arguments[0].diagnosis, str(only)


def test_a_min_that_hands_the_gradient_to_every_tie_fails_too():
    """The concave kinks (a minimum, or a maximum under a negative upstream) are moved as a
    group of their own."""
    x = np.array([[0.5, 0.5], [-1.0, -1.0], [2.0, 3.0]])

    def to_every_tie(dout, x):
        return dout[:, None] * (x == x.min(axis=1, keepdims=True))

    def to_the_first(dout, x):
        return dout[:, None] * np.eye(2)[np.argmin(x, axis=1)]

    up = np.array([1.0, 2.0, -1.0])
    wrong = reference.check_vjp(lambda x: x.min(axis=1), to_every_tie, x, upstream=up)
    assert not wrong.ok and "every tied" in wrong.arguments[0].diagnosis, str(wrong)
    right = reference.check_vjp(lambda x: x.min(axis=1), to_the_first, x, upstream=up)
    assert right.ok, str(right)


@pytest.mark.parametrize("seed", range(12))
def test_overlapping_windows_tied_under_both_signs_raise_no_alarm(seed):
    """An entry tied in several overlapping windows whose upstream gradients differ in sign:
    the first-maximum choice gives it one window's gradient, outside the interval of its
    own one-sided slopes (all those windows or none), yet a subgradient. Such a cluster of
    coupled kinks bends both ways near the point, and is left out, counted."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, size=(3, 7)).astype(np.float64)
    case = type(correct_cases()[0])("overlapping pool", LAYERS["overlapping pool"].backward,
                                    "on", seed)  # fmt: skip
    f, grad, _, _ = arguments(case)
    report = reference.check_vjp(f, grad, x, seed=seed)
    assert report.ok, str(report)


def test_kinks_of_opposite_kinds_are_not_moved_together():
    """sum |x| - sum |y| at 0: (1, 1) is a subgradient (1 in [-1, 1] for each), though the
    two moved together change f at the rate 0; the convex and the concave kink are held to
    their own slopes, each alone."""
    report = reference.check_function(
        lambda x, y: np.sum(np.abs(x)) - np.sum(np.abs(y)),
        lambda x, y: (np.ones_like(x), np.ones_like(y)),
        np.zeros(2),
        np.zeros(2),
    )
    assert report.ok and report.on_kink == 4, str(report)


def test_entries_within_rounding_of_a_kink_moved_together_raise_no_alarm():
    """|x| at 1e-15, 1e-15 and 0 (found by a 1,000-example run): moved together, the side
    whose steps stay clean was judged to cross a kink by rounding alone, and the one-sided
    rate 3 was taken for the rate along them; sign(x) adds up to 2, a subgradient of the
    interval [-3, 3] the two sides allow."""
    x = np.array([[1e-15, 1e-15], [0.0, 1.0]])
    report = reference.check_function(lambda x: np.sum(np.abs(x)), np.sign, x)
    assert report.ok and report.on_kink == 3, str(report)


# --- the finite-difference bound: no fixed floor -------------------------------------------------


def test_layernorm_without_its_epsilon_fails_below_the_old_floor():
    """Scaled to a variance near 25, the missing epsilon changes dx by about 1e-6 relative,
    under the fixed floor of 1e-6 that used to pass it; the bound from the differences' own
    error estimate is a hundred times tighter, and the correct backward pass stays within."""
    case = MISTAKES["layernorm without its epsilon in the std"]
    f, grad, (x, gamma, beta), _ = arguments(case)
    x = 5 * x
    wrong = reference.check_vjp(f, grad, x, gamma, beta)
    dx = wrong.arguments[0]
    assert not wrong.ok and dx.error_fd < checker.FD_FLOOR, str(wrong)
    assert dx.bound_fd < dx.error_fd / 10, str(wrong)

    def right(dout, x, gamma, beta):
        return layernorm_backward(dout, layernorm_forward(x, gamma, beta)[1])

    report = reference.check_vjp(f, right, x, gamma, beta)
    assert report.ok, str(report)


def test_the_bound_is_ten_times_the_differences_error():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(6)
    report = reference.check_function(lambda x: np.sum(np.sin(x)), np.cos, x)
    (row,) = report.arguments
    assert row.ok and functions.FD_ROUNDING <= row.bound_fd < checker.FD_FLOOR / 10


# --- outputs of several shapes ------------------------------------------------------------------


def _two(backward=two_outputs_backward):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))

    def f(x, w):
        return two_outputs_forward(x, w)[0]

    def vjp(douts, x, w):
        return backward(douts, two_outputs_forward(x, w)[1])

    return f, vjp, x, w


def test_a_layer_with_two_outputs_of_different_shapes_is_checked():
    f, vjp, x, w = _two()
    report = reference.check_vjp(f, vjp, x, w)
    assert report.ok, str(report)
    up = (np.ones((3, 2)), np.arange(3.0))
    given = reference.check_vjp(f, vjp, x, w, upstream=up)
    assert given.ok and given.value == pytest.approx(
        np.sum(x @ w) + np.sum(np.arange(3.0) * (x @ w).sum(1))
    )
    batched = reference.check_vjp(f, vjp, x, w, batched=True)
    assert batched.ok, str(batched)


def test_two_outputs_checked_by_jax_too():
    pytest.importorskip("jax")
    f, vjp, x, w = _two()
    report = reference.check_vjp(f, vjp, x, w, jax_f=lambda x, w: (x @ w, (x @ w).sum(-1)))
    assert report.ok and all(a.jax_ok for a in report.arguments), str(report)


@pytest.mark.parametrize(
    ("upstream", "words"),
    [
        (np.ones((3, 2)), "upstream must be a tuple of 2 arrays"),
        ((np.ones((3, 2)),), "upstream must be a tuple of 2 arrays"),
        ((np.ones((3, 2)), np.ones(4)), "upstream[1] has shape (4,); f's output #1 has shape (3,)"),
    ],
)
def test_a_wrong_upstream_for_two_outputs_names_it(upstream, words):
    f, vjp, x, w = _two()
    with pytest.raises(ValueError) as info:
        reference.check_vjp(f, vjp, x, w, upstream=upstream)
    assert words in str(info.value)


def test_writing_into_one_of_two_upstream_gradients_is_reported():
    def backward(douts, cache):
        douts[1][:] = 0.0
        return two_outputs_backward(douts, cache)

    f, vjp, x, w = _two(backward)
    report = reference.check_vjp(f, vjp, x, w)
    assert not report.ok and any("changed upstream" in s for s in report.findings), str(report)
    clean = reference.check_vjp(*_two())
    assert not clean.findings


def test_an_output_of_another_shape_at_a_perturbed_point_is_refused():
    def f(x):
        return (x, x.sum()) if x[0] == 1.0 else (x, x[:1])

    with pytest.raises(ImplementationFailed, match="returned shape"):
        reference.check_vjp(f, lambda u, x: u[0] + u[1], np.ones(3))


def test_the_hinge_is_the_loss_it_says():
    x = np.array([[1.0, 0.0, 2.0]])
    assert svm_loss(x, np.array([0]))[0] == pytest.approx(0.0 + 2.0)
