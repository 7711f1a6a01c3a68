"""The hint for an output activation that is not elementwise (softmax): a derivative taken as
its Jacobian's diagonal is off by exactly 1/2 with two units, which reads as a cost factor."""

from __future__ import annotations

import pytest

import backprop
import reference
import reference.bugs as bugs
from reference.formulas.specs import NUMPY_ACTIVATIONS
from reference.inputs.problems import seed_problem

NOT_ELEMENTWISE = sorted(a for a, twin in NUMPY_ACTIVATIONS.items() if not twin.elementwise)
ELEMENTWISE_OUTPUTS = sorted(
    a for a, twin in NUMPY_ACTIVATIONS.items() if twin.elementwise and a in backprop.ACTIVATIONS
)


class Halved:
    """The built-in with every gradient halved."""

    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        return [(dW / 2, db / 2) for dW, db in backprop.gradients(params, X, Y, **kwargs)]


def test_the_catalogued_elementwise_softmax_gets_the_hint():
    p = seed_problem(["tanh", "sigmoid", "softmax"], "mse")
    report = reference.check_gradients(bugs.softmax_grad_elementwise, p.params, p.X, p.Y,
                                       **p.kwargs())  # fmt: skip
    assert not report.ok
    assert "softmax's derivative taken elementwise" in report.summary, report.summary


@pytest.mark.parametrize("output", NOT_ELEMENTWISE)
def test_a_halved_gradient_names_the_diagonal_for_two_units(output):
    p = seed_problem(["tanh", "sigmoid", output], "mse")
    assert p.Y.shape[0] == 2
    report = reference.check_gradients(Halved, p.params, p.X, p.Y, **p.kwargs())
    assert f"{output}'s derivative taken elementwise" in report.summary, report.summary


@pytest.mark.parametrize("output", ELEMENTWISE_OUTPUTS)
def test_no_such_hint_for_an_elementwise_output(output):
    p = seed_problem(["tanh", "sigmoid", output], "mse")
    report = reference.check_gradients(Halved, p.params, p.X, p.Y, **p.kwargs())
    assert not report.ok
    assert "taken elementwise" not in report.summary, report.summary
