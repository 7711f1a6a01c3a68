"""Tests of the tester: the checker fails, with the message a user would read, on known-wrong
gradients, and stays silent on correct ones."""

import dataclasses
import json
import types

import numpy as np
import pytest
from hypothesis import given

import backprop
from reference import check_gradients
from reference.boundary.loading import ImplementationError
from reference.bugs.base import Correct
from reference.inputs.problems import Problem, seed_problem, with_relu_margin
from reference.inputs.strategies import architectures, problems
from reference.judging.outcome import Outcome
from reference.judging.records import ATTRIBUTIONS


def tampered(change, loss=None):
    """backprop with its gradients passed through ``change(grads, X)`` (and its loss replaced)."""

    def gradients(params, X, Y, *, activations, cost):
        return change(backprop.gradients(params, X, Y, activations=activations, cost=cost), X)

    return types.SimpleNamespace(
        __name__="tampered", gradients=gradients, loss=loss or backprop.loss
    )


def square_problem(seed=0, m=5):
    rng = np.random.default_rng(seed)
    acts = ["tanh", "tanh", "sigmoid"]
    params = [(rng.normal(0, 1, (3, 3)), rng.normal(0, 0.5, (3, 1))) for _ in range(3)]
    X, Y = rng.normal(size=(3, m)), rng.uniform(size=(3, m))
    return Problem(params, X, Y, acts, "mse")


def check(impl, p):
    return check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())


@given(p=problems(architecture=architectures(max_depth=4, max_width=5), max_scale=8.0))
def test_silent_on_correct_gradients(p):
    report = check(backprop, p)
    assert report.ok and report.attribution == "none", report.render()


@pytest.mark.parametrize(
    "factor, name",
    [(2.0, "2"), (0.5, "1/2"), (-1.0, "-1"), (5.0, "m"), (0.2, "1/m"), (1.37, "1.37")],
)
def test_a_scaled_gradient_names_its_factor(factor, name):
    p = square_problem(m=5)
    report = check(tampered(lambda g, X: [(factor * dW, factor * db) for dW, db in g]), p)
    assert not report.ok and report.attribution == "backward"
    assert f"every gradient is off by the same factor {name}" in report.summary
    assert report.blame == {"layer": 3, "param": "delta"}
    assert all(f"off by a constant factor of {name}" in c.diagnosis for c in report.layers)


class OutputsMean:
    """The cost averaged over the n_L outputs as well as the samples (a convention the run
    detects from the loss), with the gradient of the seed's cost: a 1/n_L missing."""

    @staticmethod
    def loss(params, X, Y, *, activations, cost):
        return backprop.loss(params, X, Y, activations=activations, cost=cost) / Y.shape[0]

    gradients = staticmethod(backprop.gradients)


def sized_problem(m, outputs, seed=0):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
              (rng.normal(size=(outputs, 3)), rng.normal(size=(outputs, 1)))]  # fmt: skip
    return Problem(params, rng.normal(size=(2, m)), rng.uniform(size=(outputs, m)),
                   ["tanh", "sigmoid"], "mse")  # fmt: skip


def test_a_missing_one_over_n_l_is_named_with_every_cause_it_equals():
    from reference.judging.diagnosis import across_networks

    both = check(OutputsMean, sized_problem(m=2, outputs=2))
    assert "off by the same factor m = n_L = 2" in both.summary, both.summary
    assert "a 1/n_L is missing" in both.summary and "the 1/m of the cost is missing" in both.summary
    assert both.factor == {"value": pytest.approx(2.0), "m": 2, "outputs": 2}
    other = check(OutputsMean, sized_problem(m=2, outputs=3, seed=1))
    assert "off by the same factor n_L:" in other.summary, other.summary
    text = across_networks([both.factor, other.factor])
    assert "it follows n_L in each" in text and "m is ruled out" in text
    assert check(backprop, sized_problem(m=2, outputs=2)).factor is None
    # and a run's printed outcome says it once, after the failing networks
    import io

    from reference.report.text import print_outcome

    out = io.StringIO()
    problems = [sized_problem(m=2, outputs=2), sized_problem(m=2, outputs=3, seed=1)]
    outcome = Outcome(False, list(zip(problems, [both, other])))
    print_outcome(outcome, "OutputsMean", out, quiet=True, verbose=False)
    assert f"  {text}\n" in out.getvalue()


def test_a_transposed_square_gradient_is_called_transposed():
    p = square_problem()
    report = check(
        tampered(lambda g, X: [(dW.T if l == 1 else dW, db) for l, (dW, db) in enumerate(g)]), p
    )
    bad = report.failing()
    assert [(c.layer, c.param) for c in bad] == [(2, "W")]
    assert bad[0].diagnosis == "dW is the transpose of the right gradient"
    assert report.blame == {"layer": 2, "param": "W"}


def test_a_transposed_shape_is_reported_not_raised():
    p = seed_problem()
    report = check(tampered(lambda g, X: [(dW.T, db) for dW, db in g]), p)
    assert not report.ok and report.attribution == "structure"
    assert (
        "layer 1: dW has shape (2, 3) but W has shape (3, 2) (the transpose's shape)"
        in report.summary
    )


def test_one_wrong_layer_is_blamed_alone():
    p = seed_problem(("relu", "tanh", "sigmoid"), "mse")
    report = check(
        tampered(lambda g, X: [(dW, db + 0.01 if l == 0 else db) for l, (dW, db) in enumerate(g)]),
        p,
    )
    assert [(c.layer, c.param) for c in report.failing()] == [(1, "b")]
    assert report.blame == {"layer": 1, "param": "b"} and report.summary.startswith(
        "only layer 1's db is wrong"
    )
    assert "worst entry" in report.failing()[0].diagnosis


def test_wrong_from_layer_k_down_points_at_layer_k():
    p = square_problem()

    def break_delta_2(g, X):  # what a wrong g'_2 does: layers 2 and 1 wrong, 3 right
        return [(dW * 1.5, db * 1.5) if l < 2 else (dW, db) for l, (dW, db) in enumerate(g)]

    report = check(tampered(break_delta_2), p)
    assert report.blame == {"layer": 2, "param": "delta"}
    assert "dW^1, db^1, dW^2, db^2 are all off by the same factor 1.5" in report.summary
    nonuniform = check(
        tampered(
            lambda g, X: [
                (dW * (1 + X[0, 0] * np.arange(dW.size).reshape(dW.shape)), db * 2)
                if l < 2
                else (dW, db)
                for l, (dW, db) in enumerate(g)
            ]
        ),
        p,
    )
    assert (
        "right at the output, wrong from layer 2 down: look at layer 2's delta dZ^2"
        in nonuniform.summary
    )


def test_forward_and_backward_wrong_together_is_the_forward_pass():
    """A network whose loss and gradients agree with each other but not with the formulas."""
    from reference.bugs import CATALOG

    report = check(CATALOG["bias_unused"], seed_problem())
    assert not report.ok and report.attribution == "forward"
    assert report.summary.startswith("the loss differs from the formulas")
    assert all(c.fd_ok for c in report.layers)  # consistent with its own loss
    assert "forward pass or the cost" in report.render()


def test_an_output_delta_without_its_activation_is_wrong_from_the_output_down():
    """(A - Y)/m without g'(Z^L) under mse: every array wrong, by no common factor."""
    from reference.bugs import CATALOG

    report = check(CATALOG["output_delta_ignores_activation"], seed_problem(cost="mse"))
    assert not report.ok and not any(c.ok for c in report.layers)
    assert report.summary.startswith("wrong from the output down: look at the output delta dZ^3")
    assert report.blame == {"layer": 3, "param": "delta"}


def test_a_wrong_loss_and_gradients_that_are_not_its_derivative_are_both_passes():
    """A loss 1.5 times the formulas' and gradients twice theirs: neither matches the
    formulas, and the gradients are not even the derivative of the implementation's own loss."""
    report = check(tampered(lambda g, X: [(2 * dW, 2 * db) for dW, db in g],
                            loss=lambda *a, **k: 1.5 * backprop.loss(*a, **k)), seed_problem())  # fmt: skip
    assert not report.ok and report.attribution == "forward+backward"
    assert not any(c.fd_ok for c in report.layers)
    assert report.summary.startswith("the loss differs from the formulas")


def test_a_wrong_loss_alone_is_the_loss():
    p = seed_problem(cost="mse")
    report = check(tampered(lambda g, X: g, loss=lambda *a, **k: 1.5 * backprop.loss(*a, **k)), p)
    assert report.attribution == "loss" and not report.ok
    assert report.blame == {"layer": None, "param": "loss"}
    assert "the loss differs from the formula" in report.summary


def test_a_raising_implementation_is_a_failing_report():
    def gradients(*args, **kwargs):
        raise RuntimeError("out of coffee")

    impl = types.SimpleNamespace(__name__="raises", gradients=gradients, loss=backprop.loss)
    report = check(impl, seed_problem())
    assert not report.ok and report.attribution == "crash"
    assert report.error.startswith("gradients raised RuntimeError: out of coffee (at ")
    assert report.finding["where"]["file"] == __file__
    assert report.finding["where"]["code"] == 'raise RuntimeError("out of coffee")'


@pytest.mark.parametrize(
    "returned, message",
    [
        (None, "gradients returned NoneType, not a list of (dW, db) pairs"),
        ([], "gradients returned 0 entries for a network of 3 layers"),
        ([1, 2, 3], "layer 1: expected a (dW, db) pair, got int"),
    ],
)
def test_a_wrong_structure_is_a_failing_report(returned, message):
    impl = types.SimpleNamespace(
        __name__="odd", gradients=lambda *a, **k: returned, loss=backprop.loss
    )
    report = check(impl, seed_problem())
    assert not report.ok and report.attribution == "structure" and message in report.summary


def test_a_missing_member_is_named():
    with pytest.raises(ImplementationError, match=r"has no callable 'gradients'"):
        p = seed_problem()
        check_gradients(types.SimpleNamespace(loss=backprop.loss), p.params, p.X, p.Y, **p.kwargs())


def test_a_mutating_implementation_cannot_corrupt_the_references():
    def gradients(params, X, Y, **kw):
        g = backprop.gradients(params, X, Y, **kw)
        for W, _ in params:
            W *= 0
        X *= 0
        return g

    p = seed_problem()
    before = [W.copy() for W, _ in p.params]
    report = check(
        types.SimpleNamespace(__name__="mutating", gradients=gradients, loss=backprop.loss), p
    )
    assert all(c.ok for c in report.layers), report.render()  # the references are intact
    assert not report.ok and report.attribution == "boundary"
    assert "gradients changed layer 1's W in place" in report.summary
    assert "gradients changed X in place" in report.render()
    assert all(np.array_equal(W, W0) for (W, _), W0 in zip(p.params, before))


def test_to_dict_has_every_field_and_is_strict_json():
    """Every field of the report and of each row, under its own name; tuples and NumPy
    scalars as JSON lists and numbers; NaN as null and the infinities as strings (strict
    JSON has none of them)."""
    from dataclasses import fields

    from reference import Report
    from reference.judging.records import ParamCheck

    odd = [np.float64(np.nan), np.inf, -np.inf, np.float32(-np.inf), np.float64(0.25)]
    rows = [ParamCheck(1, "W", (3, 2), error_fd=v, bound_fd=2.0) for v in odd]
    report = Report(True, "none", rows, {"impl": np.float64(0.5)}, 0, "", {"sizes": (2, 3)}, "x")
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(d) == {f.name for f in fields(Report)}
    assert all(set(row) == {f.name for f in fields(ParamCheck)} for row in d["layers"])
    assert [row["error_fd"] for row in d["layers"]] == [None, "inf", "-inf", "-inf", 0.25]
    assert d["layers"][0]["shape"] == [3, 2] and d["network"]["sizes"] == [2, 3]
    assert d["loss"] == {"impl": 0.5}


def test_report_to_dict_is_json_with_the_documented_keys():
    report = check(tampered(lambda g, X: [(2 * dW, db) for dW, db in g]), seed_problem())
    d = json.loads(json.dumps(report.to_dict()))
    assert {"ok", "attribution", "layers", "loss", "kinks_excluded"} <= set(d)
    row = d["layers"][0]
    assert {
        "layer",
        "param",
        "shape",
        "error_fd",
        "error_jax",
        "ok",
        "diagnosis",
        "bound_fd",
        "bound_jax",
        "worst",
    } <= set(row)
    assert row["layer"] == 1 and row["param"] == "W" and row["shape"] == [3, 2]
    assert d["attribution"] in ATTRIBUTIONS


def test_render_has_a_row_per_layer_parameter_and_the_verdict():
    text = check(tampered(lambda g, X: [(2 * dW, db) for dW, db in g]), seed_problem()).render()
    lines = text.splitlines()
    assert sum(1 for line in lines if line.strip().startswith(("1 ", "2 ", "3 "))) == 6
    assert "FAIL" in text and "attribution: the backward pass" in text


@pytest.mark.parametrize("scale", [20.0, 60.0])
def test_saturated_networks_are_not_false_alarms(scale):
    rng = np.random.default_rng(1)
    acts = ["tanh", "sigmoid", "sigmoid"]
    params = [
        (scale * rng.normal(size=(4, 3)), rng.normal(size=(4, 1))),
        (scale * rng.normal(size=(3, 4)), np.zeros((3, 1))),
        (scale * rng.normal(size=(2, 3)), np.zeros((2, 1))),
    ]
    X, Y = rng.normal(size=(3, 6)), rng.uniform(size=(2, 6))
    for cost in ("mse", "bce"):
        report = check_gradients(
            backprop, with_relu_margin(params, X, acts), X, Y, activations=acts, cost=cost
        )
        assert report.ok, report.render()


@pytest.mark.parametrize(
    "mistake, bad",
    [(None, []), ("dW2_times_2", [(2, "W")]), ("bias_grad_mean", [(1, "b"), (2, "b"), (3, "b")])],
)
def test_directional_mode_checks_every_layer_along_random_directions(mistake, bad):
    from reference.bugs import CATALOG

    impl = backprop if mistake is None else CATALOG[mistake]
    p = seed_problem(("relu", "tanh", "sigmoid"), "bce")
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), fd="directional")
    assert "random directions" in report.fd_source
    assert [(c.layer, c.param) for c in report.layers if c.fd_ok is False] == bad
    assert report.ok == (not bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_gradient_is_a_failing_report_not_a_crash(bad):
    def poison(g, X):
        g = [(dW.copy(), db.copy()) for dW, db in g]
        g[1][0][0, 0] = bad
        return g

    report = check(tampered(poison), seed_problem())
    assert not report.ok
    row = next(c for c in report.layers if (c.layer, c.param) == (2, "W"))
    assert row.diagnosis == "dW holds NaN or inf where the reference is finite"
    assert row.worst["index"] == [0, 0]
    json.dumps(report.to_dict(), allow_nan=False)  # still strict JSON


def scaled(scale):
    """backprop with its loss and gradients both multiplied by ``scale(X, Y)``."""

    def loss(params, X, Y, **kw):
        return scale(X, Y) * backprop.loss(params, X, Y, **kw)

    def gradients(params, X, Y, **kw):
        c = scale(X, Y)
        return [(c * dW, c * db) for dW, db in backprop.gradients(params, X, Y, **kw)]

    return types.SimpleNamespace(__name__="scaled", loss=loss, gradients=gradients)


@pytest.mark.parametrize(
    "scale, words",
    [
        (lambda X, Y: X.shape[1], "summed over the m samples"),
        (lambda X, Y: 2.0, "without the 1/2"),
        (lambda X, Y: 1 / Y.shape[0], "averaged over the outputs"),
        (lambda X, Y: 2.0 * X.shape[1] / Y.shape[0], "summed over the m samples and without"),
    ],
)
def test_a_cost_scaled_by_a_common_constant_is_a_convention(scale, words):
    p = square_problem(m=5)  # mse, 3 outputs, m = 5: every constant distinct
    report = check(scaled(scale), p)
    assert report.ok, report.render()
    assert len(report.conventions) == 1 and words in report.conventions[0]
    assert report.conventions[0].endswith(
        ": the gradients are judged against the same multiple of the reference"
    )
    assert "convention:" in report.render()


def test_a_wrong_gradient_under_a_scaled_cost_still_fails():
    """The references are scaled with the cost, bounds and all: a db off by 10% under a cost
    summed over the samples fails on the b rows and nowhere else."""
    sum_over_m = scaled(lambda X, Y: X.shape[1])

    def wrong_db(params, X, Y, **kw):
        return [(dW, 1.1 * db) for dW, db in sum_over_m.gradients(params, X, Y, **kw)]

    impl = types.SimpleNamespace(__name__="wrong db", loss=sum_over_m.loss, gradients=wrong_db)
    report = check(impl, square_problem(m=5))
    assert not report.ok and report.conventions, report.render()
    assert [c.param for c in report.layers if not c.ok] == ["b", "b", "b"]


def test_a_constant_with_two_names_is_given_both():
    """mse summed over m = 2 samples is also mse without its 1/2: both are named."""
    p = seed_problem(cost="mse")
    p = Problem(p.params, p.X[:, :2], p.Y[:, :2], p.activations, p.cost)
    report = check(scaled(lambda X, Y: 2.0), p)
    assert report.ok and len(report.conventions) == 1, report.render()
    assert "(without the 1/2 or summed over the m samples)" in report.conventions[0]


def test_another_constant_or_gradients_that_do_not_follow_stay_errors():
    p = square_problem(m=5)
    assert not check(scaled(lambda X, Y: 3.7), p).ok
    half_right = tampered(lambda g, X: g, loss=lambda *a, **k: 5 * backprop.loss(*a, **k))
    report = check(half_right, p)
    assert not report.ok and "the gradients must be the derivative of that loss" in report.summary


SHAPE_HINT = " (a shape error: check each matrix product; a missing transpose?)"


@pytest.mark.parametrize(
    ("kind", "exception", "message", "hinted", "attribution"),
    [
        ("raised", "ValueError", "raised ValueError: matmul: shape (3,4) vs (2,4)", True, "crash"),
        ("raised", "ValueError", "raised ValueError: operands mismatch in dim", True, "crash"),
        ("raised", "ValueError", "raised ValueError: math domain error", False, "crash"),
        ("raised", "TypeError", "raised TypeError: bad shape", False, "crash"),
        ("structure", "ValueError", "returned a shape (3,) for W", False, "structure"),
        ("unsupported", "NotImplementedError", "raised NotImplementedError", False, "unsupported"),
        ("timeout", "", "ran past the time limit", False, "crash"),
        ("exit", "", "called sys.exit(3)", False, "crash"),
    ],
)
def test_a_cut_short_check_says_what_happened(kind, exception, message, hinted, attribution):
    """A shape error raised by NumPy gets the hint a student needs; nothing else does, and
    each kind of failure has its own attribution."""
    from reference.boundary.guard import Finding
    from reference.judging.records import failed_report

    found = Finding(kind, "gradients", message, "seed 2-3-2-1", exception)
    report = failed_report(found, {"sizes": [2, 3, 2, 1]}, "impl")
    assert not report.ok and report.layers == []
    assert report.summary == found.describe() + (SHAPE_HINT if hinted else "")
    assert report.error == report.summary and report.attribution == attribution
    assert report.finding == found.to_dict() and report.network == {"sizes": [2, 3, 2, 1]}


@pytest.mark.parametrize(("fd", "mistake"), [("auto", "dW2_times_2"), ("none", None)])
def test_render_gives_the_terminal_table_field_by_field(fd, mistake):
    """The table a user reads (README's example), every field from the report: the network
    line, the columns, each row's numbers as written (``-`` where a reference was not run),
    the verdict words, and the PASS or FAIL line."""
    from reference.bugs import CATALOG

    impl = backprop if mistake is None else CATALOG[mistake]
    p = seed_problem()
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), fd=fd)
    lines = report.render().splitlines()
    net = report.network
    assert lines[0] == (
        f"{report.impl}: {'-'.join(map(str, net['sizes']))} "
        f"[{', '.join(net['activations'])}] {net['cost']}, m = {net['m']}"
    )
    assert (
        lines[1].split() == "layer param shape err FD bound err JAX bound verdict diagnosis".split()
    )

    def num(x, digits):
        return "-" if x is None else f"{x:.{digits}e}"

    for row, c in zip(lines[2:], report.layers):
        assert row.split()[:8] == [
            str(c.layer), c.param, "x".join(map(str, c.shape)), num(c.error_fd, 2),
            num(c.bound_fd, 1), num(c.error_jax, 2), num(c.bound_jax, 1), "ok" if c.ok else "FAIL",
        ]  # fmt: skip
    verdict = [line.strip() for line in lines if line.strip().startswith(("PASS", "FAIL"))]
    assert verdict and verdict[0].startswith("PASS: " if report.ok else "FAIL: ")
    assert report.ok is (mistake is None)


def test_render_names_a_layout_other_than_the_seeds():
    from reference import Report

    rows = Report(True, "none", [], {}, 0, "", {"sizes": [2, 1], "activations": ["sigmoid"],
                  "cost": "mse", "m": 3}, "x", layout="rows")  # fmt: skip
    assert rows.render().splitlines()[0].endswith(", rows layout")
    assert "layout" not in dataclasses.replace(rows, layout="columns").render().splitlines()[0]


class LogLoss(Correct):
    """bce taken as the seed's table writes it, -mean(Y log A + (1 - Y) log(1 - A)), and its
    delta as (-Y/A + (1 - Y)/(1 - A)) sigma'(Z) / m: right, until the sigmoid saturates."""

    name = "log loss"

    def fused(self, cost, out):
        return False


def one_sigmoid(z, y):
    """One sigmoid unit with W = 1, b = 0, X = z, bce: A = sigmoid(z)."""
    X = np.array([z], dtype=float)
    return Problem([(np.ones((1, 1)), np.zeros((1, 1)))], X, np.array([y], dtype=float),
                   ["sigmoid"], "bce")  # fmt: skip


def saturation_allowance(p):
    """What a correct bce loses to rounding A where the sigmoid saturates, as the checker's
    docstring gives it: safety (eps/m) sum [Y (1 + (1 - A)/A) + (1 - Y)(1 + A/(1 - A))]."""
    from reference.judging.checker import _LOG_A_SAFETY
    from reference.oracles.numpy_model import build

    A, Y = build(p.params, p.X, p.Y, p.activations, p.cost).A[-1], p.Y
    terms = Y * (1 + (1 - A) / A) + (1 - Y) * (1 + A / (1 - A))
    return _LOG_A_SAFETY * float(np.finfo(float).eps) * float(np.sum(terms)) / p.m


def test_a_log_loss_that_loses_precision_at_saturation_is_a_warning():
    """A of about 1 - 1e-12 where Y = 0: log(1 - A) is off by 1e-4 relative, far past the
    loss's bound and within what rounding A costs; the gradients are right."""
    p = one_sigmoid([27.0, 27.5, 28.0, 26.5], [0.0, 0.0, 0.0, 0.0])
    report = check(LogLoss(), p)
    assert report.ok, report.render()
    assert report.loss["error"] > report.loss["bound"] and report.loss["warning"] is True
    assert report.to_dict()["loss"]["warning"] is True
    (warning,) = report.warnings
    assert "loses precision where the sigmoid saturates" in warning
    assert warning.endswith(f"; {LOGITS_FIX}")  # the way out


LOGITS_FIX = "compute bce from the logits, J = mean(logaddexp(0, Z) - Y Z), and dZ = (A - Y)/m"


@pytest.mark.parametrize("times, ok", [(0.5, True), (1.5, False)])
def test_a_saturated_loss_is_excused_up_to_the_rounding_of_a_only(times, ok):
    """Y = 1 where A is about 1e-12 (m = 4): a loss off by half of what rounding A allows
    is a warning; one off by one and a half times that is a wrong loss."""
    p = one_sigmoid([-27.0, -27.5, -28.0, -26.5], [1.0, 1.0, 1.0, 1.0])
    from reference.judging.checker import LOSS_RTOL

    off = times * saturation_allowance(p)
    assert off > 1e3 * LOSS_RTOL * backprop.loss(p.params, p.X, p.Y, **p.kwargs())  # not rounding
    impl = tampered(lambda g, X: g, loss=lambda *a, **k: backprop.loss(*a, **k) + off)
    report = check(impl, p)
    assert report.ok is ok, report.render()
    assert report.attribution == ("none" if ok else "loss")
    assert bool(report.warnings) is ok and report.loss.get("warning", False) is ok


def overflowing():
    """A tanh layer under a sigmoid output that rounds to exactly 1 where Y = 0."""
    params = [
        (np.array([[1.0], [0.5]]), np.zeros((2, 1))),
        (np.full((1, 2), 30.0), np.zeros((1, 1))),
    ]
    return Problem(params, np.array([[2.0, 3.0, 0.1]]), np.array([[0.0, 0.0, 1.0]]),
                   ["tanh", "sigmoid"], "bce")  # fmt: skip


def test_gradients_that_overflow_where_the_sigmoid_rounds_to_1_are_a_warning():
    """The log loss is inf there and every gradient NaN: each row passes, with the reason."""
    with np.errstate(divide="ignore", invalid="ignore"):
        report = check(LogLoss(), overflowing())
    assert report.ok and report.attribution == "none", report.render()
    assert all(not np.isfinite(c.worst["impl"]) for c in report.layers)
    for c in report.layers:
        assert (c.ok, c.diagnosis) == (True, "not finite where the sigmoid saturates (a warning)")


def test_gradients_that_overflow_in_every_row_are_one_warning():
    with np.errstate(divide="ignore", invalid="ignore"):
        report = check(LogLoss(), overflowing())
    nonfinite = [w for w in report.warnings if w.startswith("gradients are NaN or inf")]
    assert nonfinite == [
        f"gradients are NaN or inf where the sigmoid rounds to 0 or 1; {LOGITS_FIX}"
    ]


@pytest.mark.parametrize("fd", ["auto", "none"])
def test_float32_code_is_differentiated_through_the_formulas_unless_told_none(fd):
    """Below float64 the finite differences are of the formulas (the implementation's own
    loss rounds too coarsely) and the note says so; ``fd="none"`` still means none."""
    from outside.lowprecision import LowPrecision

    p = seed_problem()
    report = check_gradients(LowPrecision("float32"), p.params, p.X, p.Y, **p.kwargs(), fd=fd)
    assert report.ok and report.precision == "float32", report.render()
    formulas = "finite differences of the formulas in float64"
    (note,) = [n for n in report.notes if "computes in float32" in n]
    if fd == "none":
        assert report.fd_source == "" and all(c.error_fd is None for c in report.layers)
        assert formulas not in note
    else:
        assert "formulas" in report.fd_source and all(c.fd_ok for c in report.layers)
        assert formulas in note


def test_directional_differences_leave_out_directions_through_a_kink():
    """A relu pre-activation within rounding of 0 (the JAX model puts it on the other side
    from NumPy): the random directions that move it are left out, counted, and the rest agree."""
    from rounding_problems import within_rounding_of_the_kink

    p = within_rounding_of_the_kink()
    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), fd="directional")
    assert report.ok and report.attribution == "none", report.render()
    assert report.kinks_excluded > 0 and report.kinks_excluded == sum(
        c.kinks_excluded for c in report.layers
    )


def test_no_numpy_twin_for_the_formulas_leaves_jax_and_a_note(monkeypatch):
    """fd="model" needs the formulas in NumPy: an activation with a JAX twin only is judged
    by JAX, and the report says why there are no finite differences."""
    import jax

    from reference.formulas.specs import ACTIVATION_SPECS, ActivationSpec

    softsign = backprop.Activation(lambda z: z / (1 + abs(z)), lambda z, a: 1 / (1 + abs(z)) ** 2)
    monkeypatch.setitem(backprop.ACTIVATIONS, "softsign", softsign)
    # a spec built by hand with its JAX twin only (the registry requires both)
    monkeypatch.setitem(ACTIVATION_SPECS, "softsign", ActivationSpec(None, jax.nn.soft_sign))
    params = backprop.init_params([2, 1], seed=0)
    X, Y = np.ones((2, 2)), np.ones((1, 2))
    report = check_gradients(
        backprop, params, X, Y, activations=["softsign"], cost="mse", fd="model"
    )
    assert report.ok and report.fd_source == "", report.render()
    assert all(c.error_fd is None and c.jax_ok for c in report.layers)
    (note,) = report.notes
    assert note.startswith("no finite differences: no NumPy twin for ['softsign']"), note


def test_a_bound_is_at_most_one_the_largest_relative_error():
    """Where the finite differences' own error is as large as the gradient (a saturated
    sigmoid chain), their bound is 1, which passes anything: never more."""
    from rounding_problems import saturated_sigmoid_chain

    report = check(backprop, saturated_sigmoid_chain())
    assert report.ok, report.render()
    assert all(0 < c.bound_fd <= 1.0 and 0 < c.bound_jax <= 1.0 for c in report.layers)
    assert any(c.bound_fd == 1.0 for c in report.layers)


def test_a_gradient_below_the_rounding_of_its_terms_is_ok_but_inconclusive():
    """Targets within 1e-14 of the outputs: every gradient is rounding, and the report says
    the comparison could not tell rather than that it agreed."""
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(2, 3)), rng.normal(size=(2, 1)))]
    X = rng.normal(size=(3, 6))
    A = backprop.forward(params, X, activations=["tanh"])
    p = Problem(params, X, A + 1e-14 * rng.normal(size=A.shape), ["tanh"], "mse")
    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), fd="none")
    assert report.ok, report.render()
    inconclusive = "ok (inconclusive: the gradient is below the rounding of its terms)"
    assert [c.diagnosis for c in report.layers if c.bound_jax == 1.0] == [inconclusive] * 2


def test_a_problem_without_kinks_excludes_no_entry():
    report = check(backprop, square_problem())
    assert report.ok and report.kinks_excluded == 0
    assert report.summary == "all gradients and the loss agree"
    assert all(c.kinks_excluded == 0 for c in report.layers)


def test_without_a_jax_twin_the_diagnosis_follows_the_finite_differences(monkeypatch):
    """No JAX model for the activation: the finite differences are the reference the
    diagnosis names the mistake against, and the worst entry is theirs."""
    softsign = backprop.Activation(lambda z: z / (1 + abs(z)), lambda z, a: 1 / (1 + abs(z)) ** 2)
    monkeypatch.setitem(backprop.ACTIVATIONS, "softsign", softsign)
    rng = np.random.default_rng(0)
    params = [
        (rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
        (rng.normal(size=(1, 3)), np.zeros((1, 1))),
    ]
    p = Problem(
        params, rng.normal(size=(2, 5)), rng.normal(size=(1, 5)), ["softsign", "tanh"], "mse"
    )
    doubled = tampered(lambda g, X: [g[0], (2 * g[1][0], g[1][1])])
    report = check(doubled, p)
    assert not report.ok and "no JAX comparison" in report.notes[0]
    row = next(c for c in report.layers if (c.layer, c.param) == (2, "W"))
    assert (row.fd_ok, row.jax_ok) == (False, None)
    assert "off by a constant factor of 2" in row.diagnosis
    assert row.worst["impl"] == pytest.approx(2 * row.worst["fd"], rel=1e-6)
    assert row.worst["impl"] != 0
    along = check_gradients(doubled, p.params, p.X, p.Y, **p.kwargs(), fd="directional")
    assert not along.ok and "random directions" in along.fd_source  # and no entrywise reference
    assert [(c.layer, c.param) for c in along.layers if c.fd_ok is False] == [(2, "W")]


def test_code_given_float32_arrays_is_judged_at_float32_whatever_it_returns():
    """Asked for float32 (``dtype``), an implementation that computes in float64 from the
    float32 arrays it is given is still judged at float32, and the note says why."""

    def widened(fn):
        def call(params, X, Y, **kwargs):
            wide = [(np.float64(W), np.float64(b)) for W, b in params]
            return fn(wide, np.float64(X), np.float64(Y), **kwargs)

        return call

    impl = types.SimpleNamespace(
        __name__="widens", loss=widened(backprop.loss), gradients=widened(backprop.gradients)
    )
    p = seed_problem()
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), dtype="float32")
    assert report.ok and report.precision == "float32", report.render()
    assert "it was given float32 arrays (as it asked)" in report.notes[0]


def test_a_pass_with_gradients_excused_at_saturation_says_so():
    """Gradients that are NaN where the sigmoid saturates pass with a warning; the summary
    says they agree where finite, not that everything agrees, and blames no one."""
    params = [(np.full((2, 1), 0.5), np.zeros((2, 1))), (np.full((1, 2), 50.0), np.zeros((1, 1)))]
    X, Y = np.array([[40.0, -40.0, 60.0, -60.0]]), np.array([[0.0, 1.0, 1.0, 0.0]])
    import reference.bugs

    report = check_gradients(reference.bugs.unstable_bce, params, X, Y,
                             activations=["tanh", "sigmoid"], cost="bce")  # fmt: skip
    assert report.ok and report.warnings
    assert report.attribution == "none", report.attribution
    assert report.summary.startswith("the gradients and the loss agree wherever they are finite")
    assert "FAIL" not in report.render()


class _OneArrayTransposed:
    """Right everywhere but layer 2's dW, returned transposed (the wrong shape)."""

    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kw):
        grads = backprop.gradients(params, X, Y, **kw)
        grads[1] = (grads[1][0].T, grads[1][1])
        return grads


def test_a_wrong_shape_in_one_array_fails_that_array_and_judges_the_others():
    p = seed_problem()  # layer 2's W is 2x3: its transpose has another shape
    report = check_gradients(_OneArrayTransposed, p.params, p.X, p.Y, **p.kwargs())
    assert not report.ok and report.attribution == "structure"
    assert report.finding is not None and report.finding["kind"] == "structure"
    by_place = {(c.layer, c.param): c for c in report.layers}
    assert not by_place[(2, "W")].ok and "the transpose's shape" in by_place[(2, "W")].diagnosis
    assert all(c.ok for place, c in by_place.items() if place != (2, "W"))
    assert report.loss["ok"] and "the other arrays agree" in report.summary
