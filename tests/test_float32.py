"""float32 and float16: a correct implementation at that precision passes, judged at its unit
roundoff (detected from its results, or asked for with ``dtype``); a planted mistake still
fails with the right layer and parameter blamed; float64's verdicts are unchanged."""

import io

import numpy as np
import pytest
from hypothesis import given
from outside.lowprecision import FLOAT16, FLOAT32, STRICT32, LowPrecision

from reference import check_gradients
from reference.boundary.guard import Guarded
from reference.frontends import cli
from reference.inputs.problems import Problem, seed_problem
from reference.inputs.scope import Scope
from reference.inputs.strategies import architectures, problems

SEED = Scope()
"""The outside implementation here declares nothing: the seed's activations and costs."""
MODERATE = {"architecture": architectures(max_depth=4, max_width=5, scope=SEED), "max_scale": 2.0}


def check(impl, p, **kwargs):
    return check_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), **kwargs)


def square_problem(seed=0, m=5, cost="mse"):
    """Three square tanh layers under a sigmoid: a missing transpose raises no shape error."""
    rng = np.random.default_rng(seed)
    params = [(rng.normal(0, 1, (3, 3)), rng.normal(0, 0.5, (3, 1))) for _ in range(3)]
    X, Y = rng.normal(size=(3, m)), rng.uniform(size=(3, m))
    return Problem(params, X, Y, ["tanh", "tanh", "sigmoid"], cost)


# --- correct code passes -----------------------------------------------------------------


@given(p=problems(**MODERATE))
def test_a_correct_float32_implementation_passes_detected(p):
    report = check(FLOAT32, p)
    assert report.ok and report.attribution == "none", report.render()
    assert report.precision == "float32"
    assert any("computes in float32" in n for n in report.notes)


@given(p=problems(**MODERATE))
def test_a_correct_float32_implementation_passes_given_float32(p):
    report = check(STRICT32, p, dtype="float32")  # STRICT32 refuses any other dtype
    assert report.ok and report.attribution == "none", report.render()
    assert report.precision == "float32"


@given(p=problems(**MODERATE))
def test_a_correct_float16_implementation_passes(p):
    report = check(FLOAT16, p)
    assert report.ok and report.attribution == "none", report.render()
    assert report.precision == "float16"


def test_float32_rounding_is_not_blamed_on_the_forward_pass():
    """At float64's bounds (what the checker did before) float32 rounding fails the loss
    and every gradient; judged at float32 it is no finding."""
    p = seed_problem(("tanh", "tanh", "sigmoid"), "bce")
    report = check(FLOAT32, p)
    assert report.ok, report.render()
    assert report.loss["error"] > 1e-10 * abs(report.loss["jax"])  # beyond float64's bound
    assert all(c.error_jax > 1e-10 for c in report.layers)  # each beyond float64's floor


# --- planted mistakes still fail -----------------------------------------------------------


def two_layer_problem(seed=0, m=4):
    """2-3-1, tanh under a sigmoid, bce: shallow enough for float16's rounding bound to be
    conclusive (three layers of float16 may round by as much as the gradient: see
    reference/judging/precision.py)."""
    rng = np.random.default_rng(seed)
    params = [(rng.normal(0, 1, (3, 2)), rng.normal(0, 0.5, (3, 1)))]
    params.append((rng.normal(0, 1, (1, 3)), rng.normal(0, 0.5, (1, 1))))
    X, Y = rng.normal(size=(2, m)), rng.uniform(size=(1, m))
    return Problem(params, X, Y, ["tanh", "sigmoid"], "bce")


@pytest.mark.parametrize(
    "dtype, problem", [("float32", square_problem), ("float16", two_layer_problem)]
)
def test_a_doubled_dW2_is_blamed_on_layer_2_W(dtype, problem):
    report = check(LowPrecision(dtype, "dW2 x 2"), problem())
    assert not report.ok and report.attribution == "backward", report.render()
    assert report.blame == {"layer": 2, "param": "W"}
    assert "only layer 2's dW is wrong" in report.summary
    if dtype == "float32":  # float16's ratio, 1.998, is beyond the factor finder's tolerance
        assert "off by a constant factor of 2" in report.summary
    failing = report.failing()[0]
    assert failing.error_jax > 3 * failing.bound_jax  # outside, not at the edge


def test_a_missing_transpose_on_a_square_layer_is_blamed_below_it():
    report = check(LowPrecision("float32", "no transpose"), square_problem())
    assert not report.ok and report.attribution == "backward", report.render()
    assert report.blame == {"layer": 1, "param": "delta"}
    assert {(c.layer, c.param) for c in report.failing()} == {(1, "W"), (1, "b")}


def test_a_missing_1_over_m_is_named():
    report = check(LowPrecision("float32", "no 1/m"), square_problem(m=5))
    assert not report.ok and report.attribution == "backward", report.render()
    assert "every gradient is off by the same factor m" in report.summary
    assert report.blame == {"layer": 3, "param": "delta"}


@given(
    p=problems(
        architecture=architectures(min_depth=2, max_depth=4, max_width=5, scope=SEED),
        max_scale=2.0,
    )
)
def test_a_doubled_dW2_fails_on_every_network(p):
    report = check(LowPrecision("float32", "dW2 x 2"), p)
    dW2 = report.layers[2]
    assert (dW2.layer, dW2.param) == (2, "W")
    # 1/3 for any nonzero dW^2 doubled (an all-zero one stays zero), unless the gradient is
    # below float32's rounding of its terms (an input that underflows): inconclusive there
    if dW2.error_jax > 0.3 and dW2.bound_jax < 0.3:
        assert not report.ok and not dW2.ok, report.render()


def test_a_wrong_loss_in_float32_is_the_loss():
    """A cost off by 1% is far outside float32's loss bound: named, not forgiven."""
    wrong = LowPrecision("float32")
    right_loss = wrong.loss
    wrong.loss = lambda *a, **k: right_loss(*a, **k) * np.float32(1.01)
    report = check(wrong, square_problem())
    assert not report.ok and report.attribution == "loss", report.render()


# --- the boundary and the API ---------------------------------------------------------------


def test_the_guard_records_the_precision_and_casts_what_it_was_asked_to():
    p = square_problem()
    g = Guarded(STRICT32)
    g.dtype = "float32"
    g.gradients(p.params, p.X, p.Y, **p.kwargs())
    assert g.precision == g.last_precision == "float32"
    assert g.impurities == []  # the cast copies are compared with themselves
    g64 = Guarded(__import__("backprop"))
    g64.gradients(p.params, p.X, p.Y, **p.kwargs())
    assert g64.precision == "float64"


def test_float64_code_given_float32_is_judged_at_float32():
    import backprop  # keeps its inputs' dtype: float32 in, float32 out

    report = check(backprop, square_problem(), dtype="float32")
    assert report.ok and report.precision == "float32", report.render()
    assert check(backprop, square_problem()).precision == "float64"


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype must be one of"):
        check(FLOAT32, square_problem(), dtype="float8")


# --- the command line ------------------------------------------------------------------------


def run_cli(*argv):
    out = io.StringIO()
    return cli.main(["--in-process", "--networks", "3", *argv], out=out), out.getvalue()


def test_cli_detects_float32():
    code, text = run_cli("--impl", "outside.lowprecision:FLOAT32")
    assert code == 0, text
    assert "the implementation computes in float32" in text


def test_cli_dtype_flag_gives_float32_arrays():
    code, text = run_cli("--impl", "outside.lowprecision:STRICT32", "--dtype", "float32")
    assert code == 0, text
    assert "it was given float32 arrays" in text


def test_cli_reads_the_declared_dtype():
    # STRICT32.SUPPORTS = {"dtype": "float32"}: without it every call would raise TypeError
    code, text = run_cli("--impl", "outside.lowprecision:STRICT32")
    assert code == 0, text


def test_cli_float16_passes_and_a_mistake_fails():
    code, text = run_cli("--impl", "outside.lowprecision:FLOAT16", "--quiet")
    assert code == 0, text
    # float16's rounding hides a doubled dW^2 wherever that gradient is small against its
    # terms (the seed network's verdict is "inconclusive"): larger random networks show it
    code, text = run_cli(
        "--impl", "outside.lowprecision:FLOAT16_DW2_TIMES_2", "--quiet", "--networks", "8"
    )
    assert code == 1 and "only layer 2's dW is wrong" in text, text
