"""Problems where a correct implementation rounded differently from ``backprop``
(``tests/outside/rounded.py``) once raised a false alarm: shared by the tests of the false
alarms, the checker and the oracles."""

import numpy as np
from outside.rounded import AT_ZERO_1

from reference.formulas.specs import NUMPY_ACTIVATIONS
from reference.inputs.problems import Problem


def rounded_sigmoid_pair() -> tuple[float, float, float]:
    """A z > 0 where the outside implementation's sigmoid, (1 + tanh(z/2))/2, rounds below the
    formulas' 1 / (1 + e^{-z}) (both oracles' and backprop's form for z > 0): (z, theirs, ours)."""
    ours = NUMPY_ACTIVATIONS["sigmoid"].fn
    for z in np.linspace(0.1, 3.0, 291):
        a, b = float(AT_ZERO_1._g("sigmoid", np.array(z))), float(ours(np.array([z]))[0])
        if a < b:
            return float(z), a, b
    raise AssertionError("the two sigmoids round alike everywhere on the grid")


def within_rounding_of_the_kink() -> Problem:
    """1-1-1-1 [sigmoid, relu, sigmoid] mse, m = 1, with Z^2 = sigmoid(z) - sigmoid(z): exactly 0
    by the formulas (b^2 is minus their sigmoid(z)), one ulp below 0 in the outside
    implementation, whose relu' is then 0 where the formulas' is relu'(0) = 1."""
    z, _, ours = rounded_sigmoid_pair()
    params = [
        (np.ones((1, 1)), np.zeros((1, 1))),
        (np.ones((1, 1)), np.full((1, 1), -ours)),
        (np.full((1, 1), 2.0), np.full((1, 1), 0.1)),
    ]
    X, Y = np.full((1, 1), z), np.full((1, 1), 0.3)
    return Problem(params, X, Y, ["sigmoid", "relu", "sigmoid"], "mse", name="within rounding")


def saturated_sigmoid_chain() -> Problem:
    """1-1-1-1-1 sigmoids, mse, m = 1: A^2 = sigmoid(-24) is about 4e-11, so dW^3 = dZ^3 A^2 is
    about 2e-11, far below its activation's absolute rounding (eps): an implementation that
    computes sigmoid as (1 + tanh(z/2))/2 is off by 1e-8 relative there, correctly."""
    params = [
        (np.full((1, 1), 2.0), np.zeros((1, 1))),
        (np.full((1, 1), 3.0), np.full((1, 1), -24.0)),
        (np.full((1, 1), 1.5), np.full((1, 1), -0.5)),
        (np.full((1, 1), 2.0), np.full((1, 1), 0.1)),
    ]
    X, Y = np.ones((1, 1)), np.full((1, 1), 0.3)
    return Problem(params, X, Y, ["sigmoid"] * 4, "mse", name="saturated chain")
