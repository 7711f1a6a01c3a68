"""The optional L2 penalty: J + lambda/(2m) sum_l ||W^l||^2, dJ/dW^l + (lambda/m) W^l.

The built-in backprop, both oracles, the protocol's keyword (passed only where declared),
the scope key, the strategies, the default run, and the catalogued penalty mistakes.
Expectations come from the formula (Nielsen, "Neural Networks and Deep Learning", ch. 3,
eq. 87), the tables (activations, costs, the catalog) and the L2_VALUES of the default run.
"""

import io
import json
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument

import backprop
from reference import check_gradients
from reference.boundary.guard import guard
from reference.bugs import CATALOG, Correct
from reference.frontends import cli
from reference.inputs.penalties import L2_VALUES, penalty_problems
from reference.inputs.problems import random_problem, seed_problem
from reference.inputs.scope import PENALTIES, Scope, ScopeError
from reference.inputs.strategies import problems
from reference.judging import checks
from reference.oracles import finite_diff
from reference.oracles.jax_model import jax_model

DECLARED = Scope.read({"penalties": ["l2"]}, "SUPPORTS")


def _penalty(params, lam, m):
    """The formula itself, written out for the tests."""
    return lam / (2 * m) * sum(float((W**2).sum()) for W, _ in params)


def _problem(seed=3, lam=0.7):
    p = random_problem(np.random.default_rng(seed), depth=(2, 3), samples=(2, 5))
    p.l2 = lam
    return p


# --- the built-in backprop ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_backprop_adds_the_penalty_to_the_loss_and_lambda_over_m_w_to_dw(seed):
    p = _problem(seed)
    kw = {"activations": p.activations, "cost": p.cost}
    J0 = backprop.loss(p.params, p.X, p.Y, **kw)
    J = backprop.loss(p.params, p.X, p.Y, **kw, l2=p.l2)
    assert J == pytest.approx(J0 + _penalty(p.params, p.l2, p.m), rel=1e-13)
    plain = backprop.gradients(p.params, p.X, p.Y, **kw)
    penalised = backprop.gradients(p.params, p.X, p.Y, **kw, l2=p.l2)
    for (W, _), (dW0, db0), (dW, db) in zip(p.params, plain, penalised):
        np.testing.assert_allclose(dW - dW0, p.l2 / p.m * W, rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(db, db0)  # the biases are not penalised


@pytest.mark.parametrize(
    "bad, error",
    [(-0.1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
     (True, TypeError), ("0.1", TypeError), (None, TypeError)],
)  # fmt: skip
@pytest.mark.parametrize("member", ["loss", "gradients", "train"])
def test_backprop_refuses_a_bad_lambda_naming_l2(member, bad, error):
    p = seed_problem()
    with pytest.raises(error, match=r"^l2 must be a finite number >= 0, got"):
        getattr(backprop, member)(
            p.params, p.X, p.Y, activations=p.activations, cost=p.cost, l2=bad
        )


def test_train_with_a_penalty_follows_the_penalised_loss():
    p = seed_problem()
    kw = {"activations": p.activations, "cost": p.cost}
    run = backprop.train(
        p.params, p.X, p.Y, **kw, l2=2.0, learning_rate=0.5, max_iterations=2, tolerance=0
    )
    J0 = backprop.loss(p.params, p.X, p.Y, **kw, l2=2.0)
    assert run.history.loss[0] == pytest.approx(J0, rel=1e-13)
    step = backprop.update(p.params, backprop.gradients(p.params, p.X, p.Y, **kw, l2=2.0), 0.5)
    assert run.history.loss[1] == pytest.approx(
        backprop.loss(step, p.X, p.Y, **kw, l2=2.0), rel=1e-13
    )


# --- the oracles ----------------------------------------------------------------------------


def test_the_jax_model_adds_the_penalty():
    p = _problem()
    kw = {"activations": p.activations, "cost": p.cost}
    plain, penalised = (
        jax_model(p.params, p.X, p.Y, **kw),
        jax_model(p.params, p.X, p.Y, **kw, l2=p.l2),
    )
    assert penalised.loss == pytest.approx(plain.loss + _penalty(p.params, p.l2, p.m), rel=1e-13)
    for (W, _), (gW0, gb0), (gW, gb) in zip(p.params, plain.grads, penalised.grads):
        np.testing.assert_allclose(gW - gW0, p.l2 / p.m * W, rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(gb, gb0)


@pytest.mark.parametrize("method", ["model", "calls"])
def test_finite_differences_see_the_penalty(method):
    p = _problem()
    kw = {"activations": p.activations, "cost": p.cost}
    fd = finite_diff.numerical_gradients(backprop, p.params, p.X, p.Y, **kw, method=method, l2=p.l2)
    ref = jax_model(p.params, p.X, p.Y, **kw, l2=p.l2)
    for (fW, fb), (jW, jb) in zip(fd.grads, ref.grads):
        np.testing.assert_allclose(fW, jW, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(fb, jb, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("fd", ["auto", "calls", "model", "directional"])
def test_backprop_passes_with_a_penalty_whichever_finite_differences(fd):
    p = _problem(seed=5, lam=3.0)
    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), fd=fd)
    assert report.ok, report.render()
    assert report.network["l2"] == 3.0 and "l2 = 3" in report.render().splitlines()[0]
    assert all(c.fd_ok is not False for c in report.layers), report.render()
    if fd == "auto":  # the batched model stands in: its loss is the implementation's
        assert "batched" in report.fd_source


@settings(max_examples=40)
@given(p=problems(scope=DECLARED, penalty=True))
def test_backprop_passes_every_drawn_penalised_network(p):
    assert p.l2 > 0
    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, report.render()


# --- the protocol: the keyword only where declared ------------------------------------------


def _plain_loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, Y, activations=activations, cost=cost)


def _plain_gradients(params, X, Y, *, activations, cost):
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)


def test_code_without_the_keyword_is_never_called_with_it():
    p = seed_problem()
    report = check_gradients((_plain_loss, _plain_gradients), p.params, p.X, p.Y, **p.kwargs())
    assert "l2" not in p.kwargs() and report.ok, report.render()
    for name, fn in checks.PROBLEM_CHECKS.items():
        result = fn((_plain_loss, _plain_gradients), p)
        assert result.ok is not False, f"{name}: {result.message}"


@pytest.mark.parametrize("layout", ["rows", "dicts", "samples"])
def test_the_layouts_pass_the_penalty_on(layout):
    """The samples layout gives each sample lambda/m: the mean of their penalties is the
    batch's."""
    wrapper = _LAYOUT_WRAPPERS[layout]
    impl = guard({"loss": wrapper.loss, "gradients": wrapper.gradients})
    impl.use_layout(layout)
    p = _problem(seed=7, lam=1.5)
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, report.render()
    assert report.network["l2"] == 1.5


class _Rows:
    """backprop with samples as rows: W (n_in, n_out), b (1, n_out), X (m, n_0)."""

    @staticmethod
    def _cols(params):
        return [(W.T, b.reshape(-1, 1)) for W, b in params]

    @staticmethod
    def loss(params, X, Y, **kw):
        return backprop.loss(_Rows._cols(params), X.T, Y.T, **kw)

    @staticmethod
    def gradients(params, X, Y, **kw):
        grads = backprop.gradients(_Rows._cols(params), X.T, Y.T, **kw)
        return [(dW.T, db.reshape(1, -1)) for dW, db in grads]


class _Dicts:
    """backprop with parameters in a dict W1, b1, ... and gradients dW1, db1, ..."""

    @staticmethod
    def _pairs(params):
        return [(params[f"W{l}"], params[f"b{l}"]) for l in range(1, len(params) // 2 + 1)]

    @staticmethod
    def loss(params, X, Y, **kw):
        return backprop.loss(_Dicts._pairs(params), X, Y, **kw)

    @staticmethod
    def gradients(params, X, Y, **kw):
        grads = backprop.gradients(_Dicts._pairs(params), X, Y, **kw)
        out = {}
        for l, (dW, db) in enumerate(grads, start=1):
            out[f"dW{l}"], out[f"db{l}"] = dW, db
        return out


_LAYOUT_WRAPPERS = {"rows": _Rows, "dicts": _Dicts, "samples": backprop}


# --- the scope ------------------------------------------------------------------------------


def test_the_scope_admits_a_penalty_only_where_declared():
    p = _problem()
    assert "l2 penalty" in Scope().why_not(p)
    names = Scope.everything()  # the names aside: p may use any of the tables'
    assert DECLARED.over(names).why_not(p) is None
    assert "l2 penalty" in names.why_not(p)
    assert not DECLARED.declared  # it adds networks; it limits none
    assert DECLARED.to_dict() == {"penalties": list(PENALTIES)}
    with pytest.raises(ScopeError, match="penalties must name some of"):
        Scope.read({"penalties": ["l1"]}, "SUPPORTS")


def test_the_default_run_adds_penalised_networks_only_where_declared():
    assert penalty_problems(0, Scope()) == []
    drawn = penalty_problems(0, DECLARED)
    assert [p.l2 for p in drawn] == list(L2_VALUES)
    assert all(p.name.startswith("random") for p in drawn)  # they get the other checks too


def test_the_strategies_draw_a_penalty_only_where_declared():
    from hypothesis import find

    found = find(problems(scope=DECLARED), lambda p: p.l2 > 0)
    assert "l2" in found.kwargs()
    assert find(problems(scope=DECLARED), lambda p: p.l2 == 0).kwargs().get("l2") is None

    @settings(max_examples=30)
    @given(p=problems(scope=Scope()))
    def never(p):
        assert p.l2 == 0

    never()
    with pytest.raises(InvalidArgument, match="does not declare the l2 penalty"):
        find(problems(scope=Scope(), penalty=True), lambda p: True)


# --- the non-gradient checks stay exact under the penalty -----------------------------------


@pytest.mark.parametrize("name", ["batch mean", "duplicated batch"])
def test_the_batch_checks_hold_for_correct_code_with_a_penalty(name):
    p = _problem(seed=11, lam=4.0)
    result = checks.PROBLEM_CHECKS[name](backprop, p)
    assert result.ok, result.message
    assert checks.PROBLEM_CHECKS[name](CATALOG["missing_1_over_m"], p).ok is False


# --- the catalogued penalty mistakes ----------------------------------------------------------

PENALTY_MISTAKES = sorted(
    name for name, m in CATALOG.items() if type(m).penalty_grads is not Correct.penalty_grads
)


def test_the_catalog_has_penalty_mistakes():
    assert {"penalty_on_biases", "penalty_missing_1_over_m"} <= set(PENALTY_MISTAKES)


@pytest.mark.parametrize("name", PENALTY_MISTAKES)
def test_a_penalty_mistake_is_caught_blamed_and_named_only_with_a_penalty(name):
    mistake = CATALOG[name]
    p = seed_problem()
    assert check_gradients(mistake, p.params, p.X, p.Y, **p.kwargs()).ok  # no penalty: right
    p.l2 = 0.5
    report = check_gradients(mistake, p.params, p.X, p.Y, **p.kwargs())
    assert not report.ok
    layer, param = mistake.blame
    assert report.blame == {"layer": len(p.params) if layer == "L" else layer, "param": param}
    assert "L2 penalty" in report.summary, report.summary
    assert all(c.ok for c in report.layers if c.param != param)


# --- backprop-check ---------------------------------------------------------------------------

PLAIN = """
import backprop

def loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, Y, activations=activations, cost=cost)

def gradients(params, X, Y, *, activations, cost):
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)
"""

WITH_L2 = """
import backprop

SUPPORTS = {"penalties": ["l2"]}

def loss(params, X, Y, *, activations, cost, l2=0.0):
    return backprop.loss(params, X, Y, activations=activations, cost=cost, l2=l2)

def gradients(params, X, Y, *, activations, cost, l2=0.0):
    return backprop.gradients(params, X, Y, activations=activations, cost=cost, l2=l2)
"""

NARROW = ["--activations", "tanh", "--output-activations", "sigmoid", "--costs", "bce"]


@pytest.mark.parametrize(
    "name, source, flags, passes, penalised",
    [("plain", PLAIN, [], True, 0), ("with_l2", WITH_L2, [], True, len(L2_VALUES)),
     ("plain_flagged", PLAIN, ["--penalties", "l2"], False, len(L2_VALUES))],
    ids=["plain", "declared", "plain-declared-by-flag"],
)  # fmt: skip
def test_backprop_check_runs_the_penalised_networks_only_where_declared(
    tmp_path, monkeypatch, name, source, flags, passes, penalised
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    out, report = io.StringIO(), tmp_path / "r.json"
    argv = ["--in-process", "--networks", "1", "--quiet", "--impl", name, "--json", str(report)]
    code = cli.main([*argv, *NARROW, *flags], out=out)
    assert (code == 0) == passes, out.getvalue()
    data = json.loads(report.read_text())
    lams = [n["network"]["l2"] for n in data["networks"] if "l2" in n["network"]]
    assert lams == list(L2_VALUES)[:penalised]
    assert data["not_in_scope"]["undrawn"] >= 0


def test_against_an_upstream_without_the_penalty_compares_the_rest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "fork_l2.py").write_text(textwrap.dedent(WITH_L2))
    (tmp_path / "upstream_plain.py").write_text(textwrap.dedent(PLAIN))
    out, report = io.StringIO(), tmp_path / "r.json"
    argv = ["--in-process", "--networks", "1", "--quiet", "--impl", "fork_l2", "--json"]
    code = cli.main([*argv, str(report), "--against", "upstream_plain", *NARROW], out=out)
    assert code == 0, out.getvalue()
    data = json.loads(report.read_text())
    same = [c for c in data["checks"] if c["name"] == "same as upstream_plain"]
    skipped = [c for c in same if "does not declare the l2 penalty" in c["message"]]
    assert len(skipped) == len(L2_VALUES)
    assert all(c["ok"] is True for c in same if c not in skipped)


def test_the_penalty_widens_the_dw_rounding_bounds_only():
    from reference.judging.penalty import PENALTY_ROUNDING, with_penalty_rounding

    p = _problem(seed=2, lam=2.0)
    kw = {"activations": p.activations, "cost": p.cost}
    ref = jax_model(p.params, p.X, p.Y, **kw, l2=p.l2)
    eps = np.finfo(np.float64).eps
    wider = with_penalty_rounding(ref, p.params, p.l2, p.m, eps)
    for (W, _), (gW, _), (rW, rb), (wW, wb) in zip(
        p.params, ref.grads, ref.rounding, wider.rounding
    ):
        extra = PENALTY_ROUNDING * eps * (np.abs(p.l2 / p.m * W) + np.abs(gW))
        np.testing.assert_allclose(wW - rW, extra, rtol=1e-12)
        np.testing.assert_array_equal(wb, rb)
    assert wider.loss_rounding > ref.loss_rounding
    assert with_penalty_rounding(ref, p.params, 0.0, p.m) is ref
