"""The fixed checks (``checks.FIXED_CHECKS``) against a declared scope: a check whose network
the scope does not admit says so, under its own name, instead of failing code that never
claimed to handle it; a check with several networks runs those the scope admits."""

from __future__ import annotations

import pytest

import backprop
from reference.bugs import CATALOG
from reference.inputs.scope import Scope
from reference.judging import checks


@pytest.mark.parametrize("name", list(checks.FIXED_CHECKS))
def test_a_fixed_check_outside_the_scope_does_not_apply(name):
    result = checks.FIXED_CHECKS[name](backprop, Scope(costs=frozenset({"mse"})))
    assert result.name == name and result.ok is None
    assert result.message.startswith("not applicable: the declared scope has no ")
    assert "bce" in result.message and not result.is_error


@pytest.mark.parametrize("name", list(checks.FIXED_CHECKS))
def test_a_fixed_check_inside_the_scope_runs(name):
    result = checks.FIXED_CHECKS[name](backprop, Scope(costs=frozenset({"bce"})))
    assert result.name == name and result.ok is True, result.message


def test_saturation_runs_only_the_networks_the_scope_admits():
    """A wrong tanh derivative fails the saturation check through its tanh hidden layer; an
    implementation that declares no tanh is checked on the sigmoid-only network alone."""
    wrong_tanh = CATALOG["tanh_grad_wrong_cache"]
    assert checks.saturation(wrong_tanh).ok is False
    assert checks.saturation(wrong_tanh, Scope(activations=frozenset({"sigmoid"}))).ok is True
    assert checks.saturation(wrong_tanh, Scope(activations=frozenset({"tanh"}))).ok is False
