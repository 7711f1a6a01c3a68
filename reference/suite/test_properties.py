"""Protocol-level properties: they run against the implementation ``--backprop-impl`` names
(default: backprop), so a student or a fork checks their own code with this file unchanged.

Every layer's dW and db against finite differences of the implementation's own loss and
against the JAX model, the loss against JAX, and what finite differences cannot see: purity,
repeatability, the update rule, a descent step, relu'(0), saturation, and metamorphic
relations. Networks are drawn inside the implementation's declared scope
(``backprop_scope``; one that raises NotImplementedError is replaced by another); a fixed
check that does not apply to it is skipped, and a warning or a
convention note fails only with ``--backprop-strict``. A failure shrinks to the smallest
failing network and prints the checker's report.
"""

import functools
import warnings

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from reference import check_gradients
from reference.inputs.strategies import NoArchitecture, architectures, problems
from reference.judging import checks
from reference.judging.fixed_checks import saturates

# Each test's drawing rule, as keyword arguments of ``problems`` (and, under "architecture",
# of ``architectures``); the scope is added when the test runs.
DEFAULT: dict = {}
SQUARE = {"architecture": {"square": True, "min_width": 2}, "min_samples": 2}
DEEP = {"architecture": {"min_depth": 3, "max_depth": 5, "max_width": 8}, "max_samples": 6}
SATURATED = {"min_scale": 4.0, "max_scale": 40.0}
GENTLE = {"max_scale": 2.0}
BATCH = {"min_samples": 2}
HIDDEN = {"architecture": {"min_depth": 2, "min_width": 2}}


@functools.cache
def _strategy(scope, rule: tuple) -> st.SearchStrategy:
    kwargs = dict(rule)
    shape = kwargs.pop("architecture", None)
    if shape is not None:
        kwargs["architecture"] = architectures(scope=scope, **dict(shape))
    return problems(scope=scope, **kwargs)


def draw(data, scope, rule: dict):
    """A problem drawn by ``rule`` inside ``scope`` (strategies built once per rule); the
    test is skipped where the declared scope admits none of its networks."""
    frozen = tuple(
        (k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in rule.items()
    )
    try:
        return data.draw(_strategy(scope, frozen))
    except NoArchitecture as exc:
        pytest.skip(f"not applicable: {exc}")


def assert_gradients_right(impl, p, settings, saturated=False):
    """The report passes; with --backprop-strict, without warnings or conventions either.

    ``saturated``: a network drawn with large weights. Where its output activation is one
    that saturates (the sigmoid, tanh, softmax: :func:`at_saturation`), a loss that differs
    from the formulas while every gradient is right (a loss clipped, computed from a
    probability that underflows, or from exponentials shifted by the batch's largest logit)
    is numerical robustness, a warning (DESIGN.md, "Severity"), as ``backprop-check``'s
    saturation check says. Behind an output that cannot saturate (relu, the identity) such a
    loss is wrong, and fails as everywhere else."""
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    if report.attribution == "unsupported":  # NotImplementedError: draw another network
        reject()
    if saturated and report.attribution == "loss" and not settings.strict and at_saturation(p):
        warnings.warn(SaturationWarning(f"at saturation: {report.summary}"), stacklevel=2)
        return
    assert report.ok, "\n" + report.render()
    if settings.strict:
        assert not (report.warnings or report.conventions), "\n" + report.render()


def at_saturation(p) -> bool:
    """Whether network ``p``'s output activation flattens out at large |z|
    (:func:`~reference.judging.fixed_checks.saturates`), so that its large weights saturate
    it."""
    return saturates(p.activations[-1])


class SaturationWarning(UserWarning):
    """A loss that loses its precision where the network saturates, its gradients right."""


def assert_check(result, settings):
    """An error fails the test; a warning or a convention note only with --backprop-strict.
    A network the implementation does not support (NotImplementedError) is replaced by
    another; a fixed check outside the declared scope is skipped."""
    if result.ok is None and result.message.startswith("not supported"):
        reject()
    if result.ok is None and result.message.startswith("not applicable"):
        pytest.skip(f"{result.name}: {result.message}")
    failed = result.is_error or (settings.strict and result.ok is False)
    assert not failed, f"{result.name} ({result.severity}): {result.message}"


@given(data=st.data())
def test_gradients_match_both_oracles(backprop_impl, backprop_scope, backprop_settings, data):
    p = draw(data, backprop_scope, DEFAULT)
    assert_gradients_right(backprop_impl, p, backprop_settings)


@given(data=st.data())
def test_gradients_on_square_layers_and_real_batches(
    backprop_impl, backprop_scope, backprop_settings, data
):
    """Square layers hide a missing transpose as a shape error never raised; m >= 2 exposes
    a missing or doubled 1/m that batch size 1 hides."""
    p = draw(data, backprop_scope, SQUARE)
    assert_gradients_right(backprop_impl, p, backprop_settings)


@given(data=st.data())
def test_gradients_of_deep_and_wide_networks(
    backprop_impl, backprop_scope, backprop_settings, data
):
    p = draw(data, backprop_scope, DEEP)
    assert_gradients_right(backprop_impl, p, backprop_settings)


@given(data=st.data())
def test_gradients_of_saturated_networks(backprop_impl, backprop_scope, backprop_settings, data):
    p = draw(data, backprop_scope, SATURATED)
    assert_gradients_right(backprop_impl, p, backprop_settings, saturated=True)


@given(data=st.data())
def test_gradients_leave_their_inputs_unchanged(
    backprop_impl, backprop_scope, backprop_settings, data
):
    p = draw(data, backprop_scope, DEFAULT)
    assert_check(checks.purity(backprop_impl, p), backprop_settings)


@given(data=st.data())
def test_gradients_are_repeatable(backprop_impl, backprop_scope, backprop_settings, data):
    p = draw(data, backprop_scope, DEFAULT)
    assert_check(checks.repeatability(backprop_impl, p), backprop_settings)


@given(data=st.data())
def test_update_is_w_minus_alpha_g(backprop_impl, backprop_scope, backprop_settings, data):
    p = draw(data, backprop_scope, DEFAULT)
    assert_check(checks.update_rule(backprop_impl, p), backprop_settings)


@given(data=st.data())
def test_a_small_step_lowers_the_loss(backprop_impl, backprop_scope, backprop_settings, data):
    p = draw(data, backprop_scope, GENTLE)
    assert_check(checks.descent(backprop_impl, p), backprop_settings)


@given(data=st.data())
def test_batch_gradient_is_the_mean_of_sample_gradients(
    backprop_impl, backprop_scope, backprop_settings, data
):
    p = draw(data, backprop_scope, BATCH)
    assert_check(checks.batch_mean(backprop_impl, p), backprop_settings)


@given(data=st.data())
def test_duplicating_every_sample_changes_nothing(
    backprop_impl, backprop_scope, backprop_settings, data
):
    p = draw(data, backprop_scope, DEFAULT)
    assert_check(checks.duplicated_batch(backprop_impl, p), backprop_settings)


@given(data=st.data())
def test_permuting_hidden_units_permutes_gradients(
    backprop_impl, backprop_scope, backprop_settings, data
):
    p = draw(data, backprop_scope, HIDDEN)
    assert_check(checks.permuted_units(backprop_impl, p), backprop_settings)


def test_relu_derivative_at_zero_is_a_subgradient(backprop_impl, backprop_scope, backprop_settings):
    """Any value in [0, 1] is a subgradient (a convention note when it is not the seed's 1);
    --backprop-relu-at-zero requires one."""
    result = checks.relu_at_zero(backprop_impl, backprop_scope, backprop_settings.relu_at_zero)
    assert_check(result, backprop_settings)


def test_saturated_sigmoid_bce_is_finite_and_right(
    backprop_impl, backprop_scope, backprop_settings
):
    assert_check(checks.saturation(backprop_impl, backprop_scope), backprop_settings)


PROPERTY_TESTS = [
    test_gradients_match_both_oracles,
    test_gradients_on_square_layers_and_real_batches,
    test_gradients_of_deep_and_wide_networks,
    test_gradients_of_saturated_networks,
    test_gradients_leave_their_inputs_unchanged,
    test_gradients_are_repeatable,
    test_update_is_w_minus_alpha_g,
    test_a_small_step_lowers_the_loss,
    test_batch_gradient_is_the_mean_of_sample_gradients,
    test_duplicating_every_sample_changes_nothing,
    test_permuting_hidden_units_permutes_gradients,
    test_relu_derivative_at_zero_is_a_subgradient,
    test_saturated_sigmoid_bce_is_finite_and_right,
]
