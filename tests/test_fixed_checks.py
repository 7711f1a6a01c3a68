"""The fixed checks (``checks.FIXED_CHECKS``) against a declared scope: a check whose network
the scope does not admit says so, under its own name, instead of failing code that never
claimed to handle it; a check with several networks runs those the scope admits."""

from __future__ import annotations

import numpy as np
import pytest

import backprop
from reference.bugs import CATALOG
from reference.inputs.scope import Scope
from reference.judging import checks, fixed_checks


@pytest.mark.parametrize("name", list(checks.FIXED_CHECKS))
def test_a_fixed_check_outside_the_scope_does_not_apply(name):
    """relu layers under a relu output with mse: no sigmoid with bce (relu'(0)'s network), and
    nothing that saturates (saturation's), which the message names from the tables."""
    relu = frozenset({"relu"})
    scope = Scope(activations=relu, output_activations=relu, costs=frozenset({"mse"}))
    result = checks.FIXED_CHECKS[name](backprop, scope)
    assert result.name == name and result.ok is None
    assert result.message.startswith("not applicable: the declared scope has no ")
    assert not result.is_error
    if name == "saturation":
        from reference.inputs.problems import table_activations

        assert all(a in result.message for a in table_activations() if fixed_checks.saturates(a))
    else:
        assert "bce" in result.message


@pytest.mark.parametrize("name", list(checks.FIXED_CHECKS))
def test_a_fixed_check_inside_the_scope_runs(name):
    result = checks.FIXED_CHECKS[name](backprop, Scope(costs=frozenset({"bce"})))
    assert result.name == name and result.ok is True, result.message


def test_saturation_runs_only_the_networks_the_scope_admits():
    """A wrong tanh derivative fails the saturation check through its tanh hidden layer; an
    implementation that declares no tanh is checked on the sigmoid-only networks alone."""
    wrong_tanh = CATALOG["tanh_grad_wrong_cache"]
    sigmoid = frozenset({"sigmoid"})
    assert checks.saturation(wrong_tanh).ok is False
    assert checks.saturation(wrong_tanh, Scope(activations=sigmoid, output_activations=sigmoid)).ok
    assert checks.saturation(wrong_tanh, Scope(activations=frozenset({"tanh"}))).ok is False


class ShiftedOutputBias:
    """The built-in, but the output layer's db off by one."""

    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        g = backprop.gradients(params, X, Y, **kwargs)
        return [*g[:-1], (g[-1][0], g[-1][1] + 1.0)]


@pytest.mark.parametrize(
    ("impl", "where"),
    [
        (CATALOG["tanh_grad_wrong_cache"], "layer 1's dW"),  # the tanh network's hidden layer
        (CATALOG["dW2_times_2"], "layer 2's dW"),
        (ShiftedOutputBias, "layer 1's db"),  # the one-layer network's output
    ],
)
def test_saturation_names_the_first_wrong_array(impl, where):
    result = checks.saturation(impl)
    assert (result.name, result.ok, result.severity) == ("saturation", False, "error")
    case, _, message = result.message.partition(": ")  # "tanh/sigmoid bce: layer 1's dW ..."
    assert case in {f"{'/'.join(c[3])} {c[4]}" for c in fixed_checks._saturation_cases()}, case
    assert message.startswith(f"{where} at |z| up to 1000 is "), result.message


def test_saturation_warns_of_a_loss_or_a_delta_that_overflows():
    """Losing the loss or the delta where the sigmoid rounds to 0 or 1 is a numerical
    weakness (a warning), said with the way out."""
    bce = Scope(costs=frozenset({"bce"}))
    loss = checks.saturation(CATALOG["sigmoid_twice"], bce)
    assert (loss.name, loss.ok, loss.severity) == ("saturation", False, "warning")
    assert loss.message.startswith("sigmoid bce: loss "), loss.message
    assert loss.message.endswith(fixed_checks._LOGITS_FIX)
    delta = checks.saturation(CATALOG["unstable_bce"], bce)
    assert (delta.name, delta.ok, delta.severity) == ("saturation", False, "warning")
    assert delta.message == (
        f"sigmoid bce: layer 1's dW is not finite at |z| up to 1000: {fixed_checks._DELTA_FIX}"
    )


class Raises:
    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        raise ValueError("no gradients today")


@pytest.mark.parametrize("name", list(checks.FIXED_CHECKS))
def test_a_fixed_check_cut_short_is_a_failure_under_its_own_name(name):
    """An implementation that raises fails the check, named, with where it raised."""
    result = checks.FIXED_CHECKS[name](Raises)
    assert (result.name, result.ok) == (name, False) and result.is_error
    assert result.finding is not None and "ValueError: no gradients today" in result.message


def test_run_all_gives_every_check_once_in_the_tables_order():
    from reference.inputs.problems import seed_problem

    results = checks.run_all(backprop, seed_problem())
    assert [r.name for r in results] == [*checks.PROBLEM_CHECKS, *checks.FIXED_CHECKS]
    assert all(r.ok is True for r in results), [r for r in results if r.ok is not True]
    wrong = checks.run_all(CATALOG["update_wrong_sign"], seed_problem())
    assert {"update", "descent"} <= {r.name for r in wrong if r.ok is False}


def relu_slope_at_zero(slope: float):
    """The built-in, with relu'(0) taken as ``slope``: on relu_at_zero's network (W^1 = 0,
    b^1 = 0, X = 1, Y = 0, sigmoid output with W^2 = 1), db^1 = dW^1 = slope / 2."""

    class Impl:
        loss = staticmethod(backprop.loss)

        @staticmethod
        def gradients(params, X, Y, **kwargs):
            g = backprop.gradients(params, X, Y, **kwargs)
            half = np.full((1, 1), slope / 2)
            return [(half, half), *g[1:]]

    return Impl


@pytest.mark.parametrize(
    ("slope", "ok", "severity", "message"),
    [
        (1.0, True, "error", "relu'(0) = 1 as the seed defines it"),
        (0.0, False, "convention",
         "relu'(0) = 0 (JAX's and PyTorch's choice), a valid subgradient; the seed uses 1"),
        (0.5, False, "convention", "relu'(0) = 0.5, a valid subgradient; the seed uses 1"),
        (2.0, False, "error", "relu'(0) = 2 at Z^1 = 0: not a subgradient of relu (any value in "
         "[0, 1] is; the seed uses 1)"),
    ],
)  # fmt: skip
def test_relu_at_zero_says_which_slope_it_found(slope, ok, severity, message):
    result = checks.relu_at_zero(relu_slope_at_zero(slope))
    assert (result.name, result.ok, result.severity, result.message) == (
        "relu'(0)",
        ok,
        severity,
        message,
    )


def test_a_sign_flipped_cost_is_not_blamed_on_relu_at_zero():
    """The output delta's sign flipped (db^2 = -1/2): relu'(0) is read as db^1 / db^2, the
    seed's 1, and the message says the mistake is above relu."""
    result = checks.relu_at_zero(CATALOG["sign_flipped"])
    assert result.ok is True and result.message.startswith("relu'(0) = 1 as the seed defines it")
    assert "the output delta db^2 is -0.5 here, not 1/2" in result.message


def test_relu_at_zero_can_require_a_slope():
    result = checks.relu_at_zero(backprop, expect=0.0)
    assert (result.ok, result.severity) == (False, "error")
    assert result.message == "relu'(0) = 1, and 0 is required (--relu-at-zero)"
    assert checks.relu_at_zero(relu_slope_at_zero(0.0), expect=0.0).ok is True


@pytest.mark.parametrize("name", list(checks.FIXED_CHECKS))
def test_a_scope_that_names_the_networks_activations_runs_the_check(name):
    """A scope of relu and tanh hidden layers under a sigmoid output with bce admits relu'(0)'s
    network and one of saturation's."""
    scope = Scope(activations=frozenset({"relu", "tanh"}), output_activations=frozenset({"sigmoid"}),
                  costs=frozenset({"bce"}))  # fmt: skip
    result = checks.FIXED_CHECKS[name](backprop, scope)
    assert (result.name, result.ok) == (name, True), result.message
