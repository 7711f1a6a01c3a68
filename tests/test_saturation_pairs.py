"""The saturation check is built from the declared scope: every admitted (output activation,
cost) pair whose output saturates is tried, a softmax under any cost included, and every
admitted hidden activation that saturates, whatever depth the scope asks for.

A softmax output written without the max shift turns NaN at a logit of 1000 under mse as
under cce; the check warns of it, with the shift as the way out, and passes the shifted one.
Expectations come from the tables (``table_activations``, ``compatible_costs``) and from
:func:`reference.judging.fixed_checks.saturates`, never from a list of names.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import backprop
from reference.inputs.problems import compatible_costs, output_only, table_activations
from reference.inputs.scope import Scope
from reference.judging import checks, fixed_checks


def _tried(scope):
    return {(c[3][-1], c[4]) for c in fixed_checks._saturation_cases(scope)}


def _hidden_tried(scope):
    return {a for c in fixed_checks._saturation_cases(scope) for a in c[3][:-1]}


@pytest.mark.parametrize("scope", [None, Scope()], ids=["everything", "the seed's names"])
def test_every_admitted_pair_that_saturates_is_tried(scope):
    admitted = scope if scope is not None else Scope.everything()
    want = {
        (out, cost)
        for out in admitted.output_choices(table_activations())
        if fixed_checks.saturates(out)
        for cost in admitted.cost_choices(out)
    }
    assert want and want <= _tried(scope)
    hidden = {a for a in admitted.hidden_choices(table_activations())
              if fixed_checks.saturates(a) and not output_only(a)}  # fmt: skip
    assert hidden <= _hidden_tried(scope)


def test_a_softmax_is_tried_under_every_cost_the_tables_allow_it():
    softmax = [a for a in table_activations() if output_only(a) and fixed_checks.saturates(a)]
    assert softmax
    for out in softmax:
        assert {(out, c) for c in compatible_costs(out)} <= _tried(None)


@pytest.mark.parametrize("min_depth", [2, 3])
def test_a_scope_that_needs_hidden_layers_gets_them_of_its_own_activation(min_depth):
    """softmax with cce under relu layers only, and no network of one layer: the check runs
    on such networks instead of saying the scope has none."""
    scope = Scope(activations=frozenset({"relu"}), output_activations=frozenset({"softmax"}),
                  costs=frozenset({"cce"}), min_depth=min_depth)  # fmt: skip
    cases = fixed_checks._saturation_cases(scope)
    assert [(c[3], c[4]) for c in cases] == [(["relu"] * (min_depth - 1) + ["softmax"], "cce")]
    result = checks.saturation(backprop, scope)
    assert result.ok is True, result.message


def test_every_network_reaches_a_logit_of_1000():
    for params, X, _, acts, cost, outputs in fixed_checks._saturation_cases(None):
        from reference.oracles.numpy_model import build

        Z = build(params, X, np.zeros((outputs, X.shape[1])), acts, "mse").Z[-1]
        assert np.isclose(np.abs(Z).max(), 1000.0), (acts, cost)
        assert Z.shape == (outputs, X.shape[1])


def test_relu_identity_and_leaky_relu_do_not_saturate_and_the_bounded_ones_do():
    """Read off the twins: the bounded ones flatten at both ends, the others keep a slope."""
    from reference.formulas.specs import NUMPY_ACTIVATIONS

    for name in table_activations():
        twin = NUMPY_ACTIVATIONS[name]
        z = np.array([[1e3, -1e3], [-1e3, 1e3]])
        with np.errstate(all="ignore"):
            bounded = bool(np.all(np.abs(twin.fn(z)) <= 1.0))
        assert fixed_checks.saturates(name) == bounded, name


# --- a softmax output written for the test, with or without the max shift -----------------


def softmax_code(shifted: bool) -> types.SimpleNamespace:
    """tanh hidden layers and a softmax output, under mse or cce, in NumPy."""

    def softmax(Z):
        E = np.exp(Z - Z.max(axis=0, keepdims=True) if shifted else Z)
        return E / E.sum(axis=0, keepdims=True)

    def log_softmax(Z):
        if not shifted:
            return np.log(softmax(Z))
        S = Z - Z.max(axis=0, keepdims=True)
        return S - np.log(np.exp(S).sum(axis=0, keepdims=True))

    def forward(params, X):
        As, Z = [X], X
        for l, (W, b) in enumerate(params, start=1):
            Z = W @ As[-1] + b
            As.append(softmax(Z) if l == len(params) else np.tanh(Z))
        return As, Z

    def loss(params, X, Y, *, activations, cost):
        (As, Z), m = forward(params, X), X.shape[1]
        if cost == "cce":
            with np.errstate(divide="ignore", invalid="ignore"):
                return float(-np.sum(np.where(Y > 0, Y * log_softmax(Z), 0.0)) / m)
        return float(0.5 * np.sum((As[-1] - Y) ** 2) / m)

    def gradients(params, X, Y, *, activations, cost):
        As = forward(params, X)[0]
        A, m = As[-1], X.shape[1]
        if cost == "cce":
            dZ = (A - Y) / m
        else:  # the softmax's Jacobian applied to dJ/dA
            dA = (A - Y) / m
            dZ = A * (dA - np.sum(A * dA, axis=0, keepdims=True))
        out = []
        for l in range(len(params), 0, -1):
            out.insert(0, (dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
            if l > 1:
                dZ = (params[l - 1][0].T @ dZ) * (1 - As[l - 1] ** 2)
        return out

    name = "shifted" if shifted else "unshifted"
    return types.SimpleNamespace(__name__=f"{name} softmax", loss=loss, gradients=gradients)


SOFTMAX = Scope(activations=frozenset({"tanh"}), output_activations=frozenset({"softmax"}),
                costs=frozenset({"mse", "cce"}))  # fmt: skip


@pytest.mark.parametrize("cost", ["mse", "cce"])
def test_a_softmax_without_the_shift_gets_the_warning_under_either_cost(cost):
    scope = Scope(**{**SOFTMAX.__dict__, "costs": frozenset({cost})})
    with np.errstate(all="ignore"):
        result = checks.saturation(softmax_code(shifted=False), scope)
    assert (result.ok, result.severity) == (False, "warning"), result.message
    assert result.message.startswith(f"softmax {cost}: "), result.message
    assert "shift each column of Z by its largest entry" in result.message


def test_a_softmax_with_the_shift_passes():
    result = checks.saturation(softmax_code(shifted=True), SOFTMAX)
    assert result.ok is True, result.message
    assert "softmax mse" in result.message and "softmax cce" in result.message


def test_a_cost_summed_over_the_samples_is_read_in_its_convention():
    """The convention holds at saturation too: m times the seed's loss and gradients."""

    def loss(params, X, Y, **kw):
        return X.shape[1] * backprop.loss(params, X, Y, **kw)

    def gradients(params, X, Y, **kw):
        m = X.shape[1]
        return [(m * dW, m * db) for dW, db in backprop.gradients(params, X, Y, **kw)]

    summed = types.SimpleNamespace(__name__="summed", loss=loss, gradients=gradients)
    assert checks.saturation(summed).ok is True
    doubled = types.SimpleNamespace(
        __name__="doubled", loss=loss, gradients=lambda *a, **k: [(2 * w, 2 * b) for w, b in
                                                                  gradients(*a, **k)]
    )  # fmt: skip
    assert checks.saturation(doubled).ok is False
