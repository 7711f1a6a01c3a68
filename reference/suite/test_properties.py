"""Protocol-level properties: they run against the implementation ``--backprop-impl`` names
(default: backprop), so a student or a fork checks their own code with this file unchanged.

Every layer's dW and db against finite differences of the implementation's own loss and
against the JAX model, the loss against JAX, and what finite differences cannot see: purity,
repeatability, the update rule, a descent step, relu'(0), saturation, and metamorphic
relations. A failure shrinks to the smallest failing network and prints the checker's report.
"""

from hypothesis import given

from reference import check_gradients
from reference.inputs.strategies import architectures, problems
from reference.judging import checks


def assert_gradients_right(impl, p):
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, "\n" + report.render()


@given(p=problems())
def test_gradients_match_both_oracles(backprop_impl, p):
    assert_gradients_right(backprop_impl, p)


@given(p=problems(architecture=architectures(square=True, min_width=2), min_samples=2))
def test_gradients_on_square_layers_and_real_batches(backprop_impl, p):
    """Square layers hide a missing transpose as a shape error never raised; m >= 2 exposes
    a missing or doubled 1/m that batch size 1 hides."""
    assert_gradients_right(backprop_impl, p)


@given(p=problems(architecture=architectures(min_depth=3, max_depth=5, max_width=8), max_samples=6))
def test_gradients_of_deep_and_wide_networks(backprop_impl, p):
    assert_gradients_right(backprop_impl, p)


@given(p=problems(min_scale=4.0, max_scale=40.0))
def test_gradients_of_saturated_networks(backprop_impl, p):
    assert_gradients_right(backprop_impl, p)


def assert_check(result, settings):
    """An error fails the test; a warning or a convention note only with --backprop-strict."""
    failed = result.is_error or (settings.strict and result.ok is False)
    assert not failed, f"{result.name} ({result.severity}): {result.message}"


@given(p=problems())
def test_gradients_leave_their_inputs_unchanged(backprop_impl, backprop_settings, p):
    assert_check(checks.purity(backprop_impl, p), backprop_settings)


@given(p=problems())
def test_gradients_are_repeatable(backprop_impl, backprop_settings, p):
    assert_check(checks.repeatability(backprop_impl, p), backprop_settings)


@given(p=problems())
def test_update_is_w_minus_alpha_g(backprop_impl, backprop_settings, p):
    assert_check(checks.update_rule(backprop_impl, p), backprop_settings)


@given(p=problems(max_scale=2.0))
def test_a_small_step_lowers_the_loss(backprop_impl, backprop_settings, p):
    assert_check(checks.descent(backprop_impl, p), backprop_settings)


@given(p=problems(min_samples=2))
def test_batch_gradient_is_the_mean_of_sample_gradients(backprop_impl, backprop_settings, p):
    assert_check(checks.batch_mean(backprop_impl, p), backprop_settings)


@given(p=problems())
def test_duplicating_every_sample_changes_nothing(backprop_impl, backprop_settings, p):
    assert_check(checks.duplicated_batch(backprop_impl, p), backprop_settings)


@given(p=problems(architecture=architectures(min_depth=2, min_width=2)))
def test_permuting_hidden_units_permutes_gradients(backprop_impl, backprop_settings, p):
    assert_check(checks.permuted_units(backprop_impl, p), backprop_settings)


def test_relu_derivative_at_zero_is_a_subgradient(backprop_impl, backprop_settings):
    """Any value in [0, 1] is a subgradient (a convention note when it is not the seed's 1);
    --backprop-relu-at-zero requires one."""
    result = checks.relu_at_zero(backprop_impl, expect=backprop_settings.relu_at_zero)
    assert_check(result, backprop_settings)


def test_saturated_sigmoid_bce_is_finite_and_right(backprop_impl, backprop_settings):
    assert_check(checks.saturation(backprop_impl), backprop_settings)


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
