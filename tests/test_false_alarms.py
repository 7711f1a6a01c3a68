"""No false alarm on correct code: the checker passes correct implementations on an outside
distribution of problems, near relu kinks and far below the rounding of their terms, and still
fails planted mistakes there.

The outside distribution (:func:`outside_problem`): depth 1-5, widths 1-10, batches of 1-10,
a weight scale log-uniform in [0.01, 10], any activation per layer, mse, or bce on a sigmoid
output; a fifth of the problems have integer inputs, weights in multiples of 1/4 and zero
biases, so that relu pre-activations are exactly 0 often. Nothing keeps them off the kinks.
The correct implementations: the built-in ``backprop`` and ``outside.rounded``, the same
formulas rounded another way, with relu'(0) = 0 or 1.
"""

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import settings
from outside.rounded import ACTIVATIONS, AT_ZERO_0, AT_ZERO_1
from rounding_problems import (
    saturated_sigmoid_chain,
    within_rounding_of_the_kink,
)
from tiers import first_quick

import backprop
from reference import check_gradients, seed_problem
from reference.bugs.catalog import (
    BiasGradMean,
    DeltaSkipsW,
    DeltaUsesDW,
    DoubleOneOverM,
    DW2TimesTwo,
    MissingOneOverM,
    OutputDeltaIgnoresActivation,
    ReluMaskFromA,
    SigmoidGradOfZ,
    SignFlipped,
)
from reference.inputs.problems import Problem, random_problem
from reference.judging.diagnosis import relative_error
from reference.oracles.jax_model import jax_model

INTEGER_SHARE = 0.2


def outside_problem(
    seed: int, integer: bool | None = None, names: Sequence[str] | None = ACTIVATIONS
) -> Problem:
    """Problem ``seed`` of the outside distribution; ``integer`` forces its kind of data
    (None: integer data for a fifth of the seeds). ``names``: the activations drawn from,
    by default those the outside implementation computes (the seeds pinned below were found
    among them); None draws from the whole table."""
    rng = np.random.default_rng(seed)
    draw = rng.random()
    return random_problem(
        rng,
        depth=(1, 5),
        width=(1, 10),
        samples=(1, 10),
        scale=(0.01, 10.0),
        integer_data=bool(draw < INTEGER_SHARE) if integer is None else integer,
        relu_margin=None,
        name=f"outside #{seed}",
        activation_names=names,
    )


def check(impl, p: Problem):
    return check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())


def sweep_size() -> int:
    """Problems in the sweep: max_examples^2 / 100 of the profile in force (6 in ci, 36 in dev,
    10,000 in thorough)."""
    return max(1, settings.default.max_examples**2 // 100)


# --- the alarms, pinned -----------------------------------------------------------------


def exactly_at_the_kink() -> Problem:
    """2-3-2-1 [relu, relu, sigmoid] mse, m = 4, integer data, zero biases: Z^1 has exact zeros
    (a zero column of X, and opposite weights on equal inputs), so does Z^2."""
    X = np.array([[0.0, 1.0, 2.0, -1.0], [0.0, 1.0, -1.0, 3.0]])
    W1 = np.array([[1.0, -1.0], [0.5, 0.25], [-0.75, 1.0]])
    W2 = np.array([[1.0, -1.0, 0.5], [0.25, 0.5, -1.0]])
    W3 = np.array([[1.5, -0.5]])
    params = [(W1, np.zeros((3, 1))), (W2, np.zeros((2, 1))), (W3, np.zeros((1, 1)))]
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    return Problem(params, X, Y, ["relu", "relu", "sigmoid"], "mse", name="exact zeros")


@pytest.mark.parametrize("impl", [AT_ZERO_0, AT_ZERO_1], ids=["relu'(0)=0", "relu'(0)=1"])
def test_a_pre_activation_within_rounding_of_the_kink_is_judged_as_a_subgradient(impl):
    p = within_rounding_of_the_kink()
    assert (p.params[1][0] @ AT_ZERO_1._g("sigmoid", p.X) + p.params[1][1]).item() < 0
    report = check(impl, p)
    assert report.ok and report.attribution == "none", report.render()
    assert report.kinks_judged == 1
    assert report.kinks_excluded > 0  # the finite differences below the kink: no known side
    assert "judged with the slopes nearest" in report.render()


@pytest.mark.parametrize(
    "impl", [backprop, AT_ZERO_0, AT_ZERO_1], ids=["backprop", "relu'(0)=0", "relu'(0)=1"]
)
def test_exact_zero_pre_activations_take_any_relu_prime_in_0_1(impl):
    p = exactly_at_the_kink()
    near = jax_model(p.params, p.X, p.Y, **p.kwargs()).near_kink
    assert near[0][:, 0].all() and near[0].sum() >= 4 and near[1].any()
    report = check(impl, p)
    assert report.ok and report.attribution == "none", report.render()
    assert report.kinks_judged == sum(int(n.sum()) for n in near)
    assert report.kinks_excluded > 0


@pytest.mark.parametrize(
    "seed, integer",
    first_quick([(4525, None), (328, True), (1781, True), (2812, True)], quick=2, unpack=True),
)
def test_reproduced_kink_alarms_pass_on_both_implementations(seed, integer):
    """Outside problems where relu pre-activations sit within rounding of 0:

    - 4525, 3-3-7-10 [tanh, tanh, relu] mse, m = 10: one output pre-activation that JAX put
      on the other side from NumPy ('wrong from the output down', 'finite differences and
      JAX agree' for backprop, with err FD 4e-11 against err JAX 1e-2);
    - 328 with integer data, 4-7-8-10 [tanh, relu, tanh] mse, m = 7: the same in layer 2
      ('right at the output, wrong from layer 2 down' for both implementations, err FD 1e-10
      against err JAX 3e-2);
    - 1781 with integer data, 3-10-9-9-8-10 [tanh, relu, relu, tanh, tanh] mse, m = 8: six of them in two
      layers, where the slopes' effects multiply (the fit must land on a corner);
    - 2812 with integer data, 8-1-5-10-3 [relu, tanh, relu, relu] mse, m = 4: a dW^1 of the opposite sign to
      JAX's, both below the rounding of their terms (a relative error of 1 + 1 ulp)."""
    p = outside_problem(seed, integer)
    for impl in (backprop, AT_ZERO_1, AT_ZERO_0):
        report = check(impl, p)
        assert report.ok and report.attribution == "none", report.render()
        assert report.kinks_judged > 0


def test_a_relative_error_is_at_most_one():
    """||a - t|| / (||a|| + ||t||) <= 1 by the triangle inequality; rounding made it 1 + 1 ulp
    for a = -c t, which failed a bound of 1 ("inconclusive")."""
    a = np.array([-0.7322673547034516, -0.5442589828573099, -0.31630015636915454])
    assert relative_error(a, -a / (2 / 3)) <= 1.0


@pytest.mark.parametrize("impl", [backprop, AT_ZERO_1], ids=["backprop", "rounded"])
def test_a_gradient_far_below_its_activations_rounding_passes(impl):
    p = saturated_sigmoid_chain()
    report = check(impl, p)
    assert report.ok and report.attribution == "none", report.render()
    dW3 = report.layers[4]
    assert (dW3.layer, dW3.param) == (3, "W") and dW3.bound_jax > 1e-10


@pytest.mark.parametrize("seed", [206, 898, 1070])
def test_reproduced_rounding_alarms_pass(seed):
    """Outside problems whose dW^l = dZ^l (A^{l-1})^T reads a sigmoid output far below 1: the
    outside implementation's (1 + tanh(z/2))/2 has only absolute precision there (problem
    898 even rounds it to 0), which the rounding bound did not allow for."""
    p = outside_problem(seed)
    for impl in (backprop, AT_ZERO_1):
        report = check(impl, p)
        assert report.ok and report.attribution == "none", report.render()


def test_the_attribution_follows_the_measured_errors():
    """A gradient off by 1e-8 relative: below the finite differences' bound, above JAX's. The
    report fails, and says that JAX alone sees it, never that finite differences agree
    with JAX."""
    p = seed_problem()

    class Nudged:
        __name__ = "nudged"
        loss = staticmethod(backprop.loss)

        @staticmethod
        def gradients(params, X, Y, *, activations, cost):
            g = backprop.gradients(params, X, Y, activations=activations, cost=cost)
            return [(dW * (1 + 1e-8), db) if l == 0 else (dW, db) for l, (dW, db) in enumerate(g)]

    report = check(Nudged, p)
    assert not report.ok and report.attribution == "jax", report.render()
    bad = report.failing()
    assert bad and all(c.fd_ok for c in bad)
    assert "finite differences and JAX agree" not in report.render()


# --- the sweep ----------------------------------------------------------------------------


def test_no_false_alarm_on_the_outside_distribution():
    """Seeds 0, 1, ... of the outside distribution, on backprop and on the outside
    implementation (relu'(0) = 0 on odd seeds, 1 on even): every report passes. (A passing report may still
    say that finite differences disagree, attribution "check": where a correct implementation
    rounds a saturated output to exactly 0 or 1, its gradients vanish while the formulas'
    do not quite.)"""
    alarms = []
    for seed in range(sweep_size()):
        p = outside_problem(seed)
        for impl in (backprop, (AT_ZERO_1, AT_ZERO_0)[seed % 2]):
            report = check(impl, p)
            if not report.ok:
                alarms.append(f"#{seed} {impl.__name__}: {report.render()}")
    assert not alarms, "\n".join(alarms)


def test_no_false_alarm_on_the_outside_distribution_of_the_whole_table():
    """The same seeds with every activation of the table (softmax, cce and the rest the
    outside implementation does not compute), on backprop."""
    alarms = []
    for seed in range(sweep_size()):
        p = outside_problem(seed, names=None)
        report = check(backprop, p)
        if not report.ok:
            alarms.append(f"#{seed}: {report.render()}")
    assert not alarms, "\n".join(alarms)


# --- and mistakes are still caught there ---------------------------------------------------

PLANTED = [
    DW2TimesTwo, DeltaUsesDW, DeltaSkipsW, MissingOneOverM, DoubleOneOverM, BiasGradMean,
    SigmoidGradOfZ, OutputDeltaIgnoresActivation, SignFlipped, ReluMaskFromA,
]  # fmt: skip
"""Mistakes in the backward pass that relu'(0) cannot explain (a wrong relu mask too: it is 1
at negative Z, where no slope is free)."""


@pytest.mark.parametrize("mistake", PLANTED, ids=lambda m: m.name)
def test_mistakes_fail_at_exact_zero_pre_activations(mistake):
    p = exactly_at_the_kink()
    report = check(mistake(), p)
    assert not report.ok and report.attribution == "backward", report.render()
    assert report.kinks_judged > 0


def test_a_doubled_dw2_fails_on_integer_problems_with_kinks():
    """Outside problems with integer data and pre-activations at a kink: a doubled dW^2 fails
    wherever dW^2 is not zero."""
    tried = 0
    for seed in range(12):
        p = outside_problem(seed, integer=True)
        if (
            len(p.params) < 2
            or not backprop.gradients(p.params, p.X, p.Y, **p.kwargs())[1][0].any()
        ):
            continue
        report = check(DW2TimesTwo(), p)
        if report.kinks_judged == 0:
            continue
        tried += 1
        assert not report.ok, report.render()
        assert any(c.layer == 2 and c.param == "W" for c in report.failing()), report.render()
    assert tried >= 2
