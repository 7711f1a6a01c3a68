"""Directional finite differences (``reference.oracles.finite_diff.directional_gradients``):
each estimate is the derivative along its direction within its own error bound, the bound is
as tight as rounding allows, and directions that move a pre-activation near a kink are left out.

Both ways of computing J are pinned: the batched model standing in for ``impl.loss`` (the
built-in implementation) and calls of a loss the model cannot stand in for (``HalfLoss``)."""

from __future__ import annotations

import numpy as np
import pytest

import backprop
from reference.inputs.problems import Problem, random_problem
from reference.oracles.finite_diff import directional_gradients, numerical_gradients
from reference.oracles.jax_model import jax_gradients


class HalfLoss:
    """Half the formulas' loss: finite differences must call it (the model differs)."""

    gradients = staticmethod(backprop.gradients)

    @staticmethod
    def loss(*args, **kwargs):
        return 0.5 * backprop.loss(*args, **kwargs)


IMPLS = [(backprop, 1.0), (HalfLoss, 0.5)]
"""Each implementation and its loss as a multiple of the formulas'."""


def smooth_problem(seed: int, *, small_loss: bool = False, spread: float = 1.0) -> Problem:
    """A deep network of smooth activations. ``small_loss``: targets 1e-4 from the output, so
    J ~ 1e-8 and rounding error scales with J, not with 1. ``spread``: parameters multiplied by
    it (|theta| well above 1 makes the step scale with the parameter)."""
    rng = np.random.default_rng(seed)
    p = random_problem(
        rng, depth=(3, 4), width=(2, 5), samples=(8, 16), activation_names=("sigmoid", "tanh")
    )
    params = [(spread * W, spread * b) for W, b in p.params]
    Y, cost = p.Y, p.cost
    if small_loss:
        A = backprop.forward(params, p.X, activations=p.activations)
        Y, cost = A + 1e-4, "mse"
    return Problem(params, p.X, Y, list(p.activations), cost)


def truths(p: Problem, fd, factor: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The exact derivative along each of ``fd``'s directions, from JAX's gradient."""
    _, ref = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    return [
        tuple(
            factor * np.sum(d * g, axis=tuple(range(1, d.ndim)))
            for d, g in zip(fd.directions[l], ref[l])
        )
        for l in range(len(ref))
    ]


class TinyLoss:
    """The formulas' loss times 1e-8: every derivative and every rounding error scale with it."""

    gradients = staticmethod(backprop.gradients)

    @staticmethod
    def loss(*args, **kwargs):
        return 1e-8 * backprop.loss(*args, **kwargs)


def worst(bounds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The largest bound of each layer's W and of its b, shape (L, 2)."""
    return np.array([[np.max(e) for e in layer] for layer in bounds])


@pytest.mark.parametrize(("impl", "factor"), IMPLS)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("small_loss", "spread"), [(False, 1.0), (True, 1.0), (False, 3.0)])
def test_each_estimate_is_within_its_bound(impl, factor, seed, small_loss, spread):
    """|estimate - truth| <= 10 bound for every direction, whatever J's size and the
    parameters' scale (the step grows with max|theta|)."""
    p = smooth_problem(seed, small_loss=small_loss, spread=spread)
    fd = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), directions=3)
    for l, (exact, value, bound) in enumerate(zip(truths(p, fd, factor), fd.values, fd.errors)):
        for k in range(2):
            # 10: the checker's FD_SAFETY; the bounds are estimates, as entry by entry
            assert np.all(np.abs(value[k] - exact[k]) <= 10 * bound[k]), (l, k)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("small_loss", [False, True])
def test_bounds_scale_with_the_loss(seed, small_loss):
    """A loss 1e-8 times smaller has estimates and bounds 1e-8 times smaller: the rounding
    allowed for is relative to J, not to 1 (a floor of eps/h would pass any gradient of a
    small loss), whether the formulas' J is above 1 or far below it."""
    p = smooth_problem(seed, small_loss=small_loss)
    half = directional_gradients(HalfLoss, p.params, p.X, p.Y, **p.kwargs())
    tiny = directional_gradients(TinyLoss, p.params, p.X, p.Y, **p.kwargs())
    ratio = worst(tiny.errors) / worst(half.errors)
    assert np.all((ratio > 0.02 * 2e-8) & (ratio < 50 * 2e-8)), ratio / 2e-8


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spread", [0.2, 1.0, 3.0])
def test_model_and_calls_bounds_agree(seed, spread):
    """The batched model and calls of the loss allow for the same error (the model's J is
    the built-in loss, HalfLoss's half of it): neither path is looser than the other."""
    p = smooth_problem(seed, spread=spread)
    model = directional_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    calls = directional_gradients(HalfLoss, p.params, p.X, p.Y, **p.kwargs())
    ratio = worst(model.errors) / (2 * worst(calls.errors))
    assert np.all((ratio > 0.25) & (ratio < 4)), ratio


@pytest.mark.parametrize(("impl", "factor"), IMPLS)
def test_the_loss_is_the_implementations_own(impl, factor):
    p = smooth_problem(0)
    fd = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert fd.loss == pytest.approx(factor * backprop.loss(p.params, p.X, p.Y, **p.kwargs()))


@pytest.mark.parametrize(("impl", "factor"), IMPLS)
def test_defaults_are_two_directions_from_seed_zero(impl, factor):
    """The documented defaults, and the same directions every time (a check that can be
    repeated)."""
    p = smooth_problem(1)
    fd = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    same = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), directions=2, seed=0)
    other = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), seed=1)
    for l, (W, b) in enumerate(p.params):
        assert fd.directions[l][0].shape == (2, *W.shape)
        assert fd.directions[l][1].shape == (2, *b.shape)
        for k in range(2):
            np.testing.assert_array_equal(fd.directions[l][k], same.directions[l][k])
            np.testing.assert_array_equal(fd.values[l][k], same.values[l][k])
            assert not np.array_equal(fd.directions[l][k], other.directions[l][k])
            norms = np.linalg.norm(fd.directions[l][k].reshape(2, -1), axis=1)
            np.testing.assert_allclose(norms, 1.0, rtol=1e-12)


@pytest.mark.parametrize(("impl", "factor"), IMPLS)
def test_float32_parameters_are_differentiated_in_float64(impl, factor):
    """Parameters given in float32 are widened first: the steps (~6e-6) would be lost in
    float32's rounding of the parameters otherwise."""
    p = smooth_problem(2)
    p = Problem(
        [(W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))
         for W, b in p.params],
        p.X, p.Y, p.activations, p.cost,
    )  # fmt: skip
    wide = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    narrow = [(W.astype(np.float32), b.astype(np.float32)) for W, b in p.params]
    fd = directional_gradients(impl, narrow, p.X, p.Y, **p.kwargs())
    for l in range(len(p.params)):
        for k in range(2):
            np.testing.assert_allclose(fd.values[l][k], wide.values[l][k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("impl", "factor"), IMPLS)
def test_directions_that_move_a_sample_near_a_kink_are_left_out(impl, factor):
    """``near_kink`` marks sample 0's pre-activation in layer 1 as within rounding of relu's
    kink: every direction in layer 1 moves it, so each is excluded (NaN), and nothing in
    layer 2 is."""
    W1, b1 = np.array([[1.0, -1.0]]), np.array([[0.0]])
    X = np.array([[0.5, 1.0, -2.0], [0.5, 0.0, 1.0]])
    p = Problem(
        [(W1, b1), (np.array([[1.5]]), np.array([[0.2]]))],
        X, np.array([[1.0, 0.0, 1.0]]), ["relu", "sigmoid"], "bce",
    )  # fmt: skip
    near = [np.array([[True, False, False]]), np.zeros((1, 3), dtype=bool)]
    fd = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), near_kink=near)
    plain = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    for k in range(2):
        assert np.all(np.isnan(fd.values[0][k])) and np.all(np.isnan(fd.errors[0][k]))
        assert np.all(np.isfinite(plain.values[0][k]))
        np.testing.assert_array_equal(fd.values[1][k], plain.values[1][k])


@pytest.mark.parametrize("seed", range(2))
def test_entry_by_entry_bounds_scale_with_the_loss(seed):
    """The same for every entry's finite difference of calls (``method="calls"``)."""
    p = smooth_problem(seed)
    half = numerical_gradients(HalfLoss, p.params, p.X, p.Y, **p.kwargs(), method="calls")
    tiny = numerical_gradients(TinyLoss, p.params, p.X, p.Y, **p.kwargs(), method="calls")
    ratio = worst(tiny.errors) / worst(half.errors)
    assert np.all((ratio > 0.02 * 2e-8) & (ratio < 50 * 2e-8)), ratio / 2e-8


def test_an_activation_without_twins_is_differentiated_by_calls(monkeypatch):
    """A fork's activation with no NumPy twin: every direction from calls of its loss, central
    (no model to locate kinks), and still the derivative along the direction."""
    monkeypatch.setitem(
        backprop.ACTIVATIONS,
        "softsign",
        backprop.Activation(lambda z: z / (1 + abs(z)), lambda z, a: 1 / (1 + abs(z)) ** 2),
    )
    params = backprop.init_params([2, 3, 1], seed=0)
    X, Y = np.random.default_rng(0).normal(size=(2, 5)), np.ones((1, 5))
    kwargs = {"activations": ["softsign", "sigmoid"], "cost": "mse"}
    fd = directional_gradients(backprop, params, X, Y, **kwargs)
    grads = backprop.gradients(params, X, Y, **kwargs)
    for l, g in enumerate(grads):
        for k in range(2):
            d = fd.directions[l][k]
            exact = np.sum(d * g[k], axis=tuple(range(1, d.ndim)))
            assert np.all(np.abs(fd.values[l][k] - exact) <= 10 * fd.errors[l][k]), (l, k)


@pytest.mark.parametrize(("impl", "factor"), IMPLS)
@pytest.mark.parametrize("layer", [0, 1])
def test_only_directions_that_move_the_ambiguous_sample_are_left_out(impl, factor, layer):
    """Sample 0's input is zero, so a direction in W^1 leaves its pre-activations where they
    are and one in b^1 moves them. With sample 0 marked near a kink in layer 1 (or in layer 2
    above it), the b^1 directions are left out and the W^1 directions are not."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 4))
    X[:, 0] = 0.0
    params = [(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
              (rng.normal(size=(1, 3)), rng.normal(size=(1, 1)))]  # fmt: skip
    p = Problem(params, X, np.array([[1.0, 0.0, 1.0, 0.0]]), ["relu", "sigmoid"], "bce")
    near = [np.zeros((3, 4), dtype=bool), np.zeros((1, 4), dtype=bool)]
    near[layer][0, 0] = True
    fd = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), near_kink=near)
    assert np.all(np.isnan(fd.values[0][1]))  # b^1: moves sample 0
    assert np.all(np.isfinite(fd.values[0][0]))  # W^1: does not


def test_entry_by_entry_calls_give_the_implementations_loss_and_say_so():
    p = smooth_problem(0)
    fd = numerical_gradients(HalfLoss, p.params, p.X, p.Y, **p.kwargs(), method="calls")
    assert fd.loss == pytest.approx(0.5 * backprop.loss(p.params, p.X, p.Y, **p.kwargs()))
    assert fd.source == "the implementation's loss, entry by entry"
