"""The property suite, pointed at an implementation with one classic mistake, fails; pointed
at a correct outside implementation, it passes. (What ``--backprop-impl`` does, in-process.)"""

import inspect
import types

import pytest
from hypothesis import Phase, settings

from reference.bugs import CATALOG, CORRECT
from reference.frontends.pytest_plugin import Settings
from reference.inputs.scope import Scope
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


def run(test, impl):
    """Run one property test against ``impl``: derandomized, generate only (no shrinking:
    only the verdict matters here), a bounded number of examples, the strictest settings."""
    extra = {}
    wanted = inspect.signature(test).parameters
    if "backprop_settings" in wanted:
        extra["backprop_settings"] = STRICT
    if "backprop_scope" in wanted:
        extra["backprop_scope"] = Scope()
    if hasattr(test, "hypothesis"):
        copy = types.FunctionType(
            test.__code__, test.__globals__, test.__name__, test.__defaults__, test.__closure__
        )
        copy.__dict__.update({k: v for k, v in test.__dict__.items() if "settings" not in k})
        test = settings(
            max_examples=15,
            phases=(Phase.explicit, Phase.generate),
            database=None,
            derandomize=True,
        )(copy)
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
