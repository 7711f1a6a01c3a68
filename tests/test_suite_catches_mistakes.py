"""The property suite, pointed at an implementation with one classic mistake, fails; pointed
at a correct outside implementation, it passes. (What ``--backprop-impl`` does, in-process.)"""

import inspect
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import backprop
from reference.bugs import CATALOG, CORRECT
from reference.frontends.pytest_plugin import Settings
from reference.inputs.problems import Problem
from reference.inputs.scope import Scope
from reference.suite import test_properties
from reference.suite.test_properties import PROPERTY_TESTS

STRICT = Settings(strict=True, relu_at_zero=1.0)
"""The strictest settings (the built-in's own): a warning or a convention fails too."""

CLASSIC = [
    "missing_transpose",
    "tanh_grad_wrong_cache",
    "sigmoid_grad_of_z",
    "missing_1_over_m",
    "double_1_over_m",
    "bias_grad_mean",
    "sigmoid_twice",
    "updates_inside_backward",
    "accumulating_gradients",
    "update_wrong_sign",
    "unstable_bce",
    "relu_grad_zero_at_zero",
]


def bounded(test, examples=15):
    """``test`` (a property test of the suite, ``@given(data=st.data())``) given again with
    ``examples`` derandomized examples and no shrinking: only the verdict matters here.

    Hypothesis reads a ``@given`` test's settings from the wrapper it built, so the settings
    go on a fresh ``@given`` around the inner test (``test.hypothesis.inner_test``)."""
    return settings(
        max_examples=examples,
        phases=(Phase.explicit, Phase.generate),
        database=None,
        derandomize=True,
    )(given(data=st.data())(test.hypothesis.inner_test))


def run(test, impl):
    """Run one property test against ``impl``: :func:`bounded`, the strictest settings."""
    extra = {}
    wanted = inspect.signature(test).parameters
    if "backprop_settings" in wanted:
        extra["backprop_settings"] = STRICT
    if "backprop_scope" in wanted:
        extra["backprop_scope"] = Scope()
    if hasattr(test, "hypothesis"):
        test = bounded(test)
    test(backprop_impl=impl, **extra)


def failures(impl, first_only=False):
    failed = []
    for test in PROPERTY_TESTS:
        try:
            run(test, impl)
        except AssertionError:
            failed.append(test.__name__)
            if first_only:
                break
    return failed


@pytest.mark.parametrize("name", CLASSIC)
def test_the_suite_fails_on_a_classic_mistake(name):
    impl = type(CATALOG[name])()  # a fresh instance: no state from other tests
    assert failures(impl, first_only=True), f"no property test failed on {name}"


def test_the_suite_passes_on_a_correct_outside_implementation():
    assert failures(CORRECT) == []


def _with_settings(test, impl, scope, judged, examples=15):
    """``test`` run :func:`bounded` to ``examples``, with ``scope`` and the settings
    ``judged`` of its own."""
    bounded(test, examples)(backprop_impl=impl, backprop_scope=scope, backprop_settings=judged)


def test_a_test_of_networks_the_scope_cannot_hold_is_skipped_and_says_why():
    """Code that declares two layers at most: the deep networks' test does not apply."""
    shallow = Scope.read({"max_depth": 2}, "SUPPORTS")
    with pytest.raises(pytest.skip.Exception, match=r"not applicable: no architecture fits"):
        _with_settings(test_properties.test_gradients_of_deep_and_wide_networks, CORRECT,
                       shallow, Settings())  # fmt: skip


class GlobalShift:
    """Right gradients (the built-in's); a softmax whose loss shifts Z by the largest entry of
    the whole batch, not of each column, and clips log's argument: where one sample's logits
    lie far below another's, its probabilities underflow and its loss is clipped."""

    SUPPORTS: ClassVar = {"output_activations": ["softmax"], "costs": ["cce"]}

    @staticmethod
    def loss(params, X, Y, *, activations, cost):
        A = X
        for (W, b), g in zip(params[:-1], activations[:-1]):
            A = backprop.forward([(W, b)], A, activations=[g])
        W, b = params[-1]
        Z = W @ A + b
        e = np.exp(Z - Z.max())
        return float(-np.sum(Y * np.log(e / (e.sum(axis=0) + 1e-15) + 1e-15)) / X.shape[1])

    gradients = staticmethod(backprop.gradients)
    forward = staticmethod(backprop.forward)


def test_a_loss_clipped_at_saturation_is_a_warning_as_the_command_says():
    """The same code the command passes with a saturation warning passes the saturated
    networks' test with a warning, and fails it under --backprop-strict."""
    test = test_properties.test_gradients_of_saturated_networks
    # of the 15 derandomized networks, three saturate so that it shows (ten would show one)
    with pytest.warns(test_properties.SaturationWarning, match="the loss differs"):
        _with_settings(test, GlobalShift, Scope.read(GlobalShift.SUPPORTS, "SUPPORTS"),
                       Settings())  # fmt: skip
    # one network whose second sample's logits lie 800 below the first's: its exponentials
    # underflow under the batch-wide shift
    X = np.array([[16.0, 0.02], [0.0, 0.0]])
    p = Problem([(np.array([[50.0, 0.0], [0.0, 0.0]]), np.zeros((2, 1)))], X,
                np.array([[1.0, 0.0], [0.0, 1.0]]), ["softmax"], "cce")  # fmt: skip
    with pytest.warns(test_properties.SaturationWarning, match="the loss differs"):
        test_properties.assert_gradients_right(GlobalShift, p, Settings(), saturated=True)
    with pytest.raises(AssertionError, match="the loss differs from the formula"):
        test_properties.assert_gradients_right(GlobalShift, p, STRICT, saturated=True)


class ClippedOutput:
    """Right gradients (the built-in's); an mse loss that clips A^L to [-5, 5] first: wrong
    wherever an output leaves that range, as large weights make it. Its identity output
    cannot saturate, so nothing excuses the loss."""

    SUPPORTS: ClassVar = {"output_activations": ["identity"], "costs": ["mse"]}

    @staticmethod
    def loss(params, X, Y, *, activations, cost):
        A = np.clip(backprop.forward(params, X, activations=activations), -5.0, 5.0)
        return float(np.sum((A - Y) ** 2) / (2 * X.shape[1]))

    gradients = staticmethod(backprop.gradients)
    forward = staticmethod(backprop.forward)


def test_a_wrong_loss_behind_an_output_that_cannot_saturate_still_fails():
    """The saturated networks excuse a loss only where the output saturates."""
    scope = Scope.read(ClippedOutput.SUPPORTS, "SUPPORTS")
    with pytest.raises(AssertionError, match="the loss differs from the formula"):
        _with_settings(test_properties.test_gradients_of_saturated_networks, ClippedOutput,
                       scope, Settings())  # fmt: skip
