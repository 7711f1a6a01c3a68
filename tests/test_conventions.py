"""Conventions hold everywhere: code right by its own cost convention passes every check.

A cost summed over the samples, or averaged over the outputs with an L2 penalty, is named
as a convention, and every check (the gradients, the loss with its penalty, batch mean,
duplicated batch, the layer view) reads the implementation in it; a mistake planted in such
code still fails with the right blame, and a penalty missing its 1/m or its 1/2 is still
wrong. Each implementation here is written for the test, in NumPy, without ``backprop``.
"""

from __future__ import annotations

import io
import itertools
import json
import textwrap
import types

import numpy as np
import pytest

from reference.frontends import cli
from reference.judging import checks
from reference.judging.checker import check_gradients
from reference.judging.conventions import SEED, candidates, detect

SOURCE = """
import numpy as np

SUPPORTS = {supports}

_G = {{"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "identity": lambda z: z}}
_DG = {{"tanh": lambda a: 1 - a * a, "sigmoid": lambda a: a * (1 - a),
        "identity": lambda a: np.ones_like(a)}}


def _forward(params, X, activations):
    As = [X]
    for (W, b), g in zip(params, activations):
        As.append(_G[g](W @ As[-1] + b))
    return As


def loss(params, X, Y, *, activations, cost, l2=0.0):
    n, m = Y.shape
    A = _forward(params, X, activations)[-1]
    J = {data} * 0.5 * np.sum((A - Y) ** 2) / m
    return float(J + {penalty} * sum(np.sum(W * W) for W, _ in params))


def gradients(params, X, Y, *, activations, cost, l2=0.0):
    n, m = Y.shape
    As = _forward(params, X, activations)
    dZ = {data} * (As[-1] - Y) / m * _DG[activations[-1]](As[-1])
    out = []
    for l in range(len(params), 0, -1):
        W = params[l - 1][0]
        out.insert(0, (dZ @ As[l - 1].T + 2 * {penalty} * W, dZ.sum(axis=1, keepdims=True)))
        if l > 1:
            dZ = (W.T @ dZ) * _DG[activations[l - 2]](As[l - 1])
    return out
"""
"""mse on tanh hidden layers: J = data (1/(2m)) sum (A - Y)^2 + penalty sum ||W^l||^2."""

PLANTED = ("out.insert(0, (dZ @ As[l - 1].T", "out.insert(0, ((1 + (l == 1)) * dZ @ As[l - 1].T")
"""A mistake: layer 1's dW twice what it is."""

SCOPE = {"activations": ["tanh"], "output_activations": ["sigmoid", "identity"],
         "costs": ["mse"]}  # fmt: skip
PENALISED = {**SCOPE, "penalties": ["l2"]}

CODE = {  # (SUPPORTS, the constant on the data term, the penalty's coefficient)
    # J = 1/2 sum (A - Y)^2: m times the seed's at a batch of m, the seed's at one sample
    "summed over the samples": (SCOPE, "m", "0.0"),
    # J = 1/(2 m n_L) sum (A - Y)^2 + lambda/(2m) sum ||W||^2, the penalty at the seed's scale
    "averaged over the outputs, l2 at the seed's scale": (PENALISED, "(1 / n)", "l2 / (2 * m)"),
    # the whole cost, penalty included, averaged over the outputs
    "averaged over the outputs, l2 with it": (PENALISED, "(1 / n)", "l2 / (2 * m * n)"),
}
WRONG_PENALTY = {
    "without its 1/m": (PENALISED, "(1 / n)", "l2 / 2"),
    "without its 1/2": (PENALISED, "(1 / n)", "l2 / m"),
}


_WRITTEN = itertools.count()


@pytest.fixture
def write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, case: tuple, planted: bool = False) -> str:
        name = f"{name}_{next(_WRITTEN)}"  # a module name per case: imports are cached
        supports, data, penalty = case
        source = textwrap.dedent(SOURCE).format(supports=supports, data=data, penalty=penalty)
        if planted:
            assert PLANTED[0] in source
            source = source.replace(*PLANTED)
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


def run(module: str, tmp_path) -> tuple[int, str, dict]:
    out = io.StringIO()
    path = tmp_path / "report.json"
    code = cli.main(["--in-process", "--impl", module, "--networks", "4", "--json", str(path)],
                    out=out)  # fmt: skip
    return code, out.getvalue(), json.loads(path.read_text())


@pytest.mark.parametrize("convention", sorted(CODE))
def test_code_right_by_its_convention_passes_every_check(write, tmp_path, convention):
    code, text, data = run(write("by_convention", CODE[convention]), tmp_path)
    assert code == 0, text
    assert "NOTE cost: the cost is" in text, text
    results = data["checks"]
    ran = {c["name"] for c in results if c["ok"] is not None}
    assert {"batch mean", "duplicated batch"} <= ran, results
    assert not [c for c in results if c["ok"] is False], text
    assert all(n["ok"] for n in data["networks"]), text
    if "l2" in convention:
        wide = [n for n in data["networks"]  # one output unit: the mean over it is the seed's
                if n["network"].get("l2") and n["network"]["sizes"][-1] > 1]  # fmt: skip
        assert wide and all(n["conventions"] for n in wide), text
        said = "L2 penalty with it" if convention.endswith("with it") else "at the seed's scale"
        assert all(said in n["conventions"][0] for n in wide), text


@pytest.mark.parametrize("convention", sorted(CODE))
def test_a_planted_mistake_under_the_convention_still_fails_where_it_is(
    write, tmp_path, convention
):
    code, text, data = run(write("by_convention_bad", CODE[convention], planted=True), tmp_path)
    assert code == 1, text
    failing = [n for n in data["networks"] if not n["ok"]]
    assert failing, text
    for network in failing:
        bad = {(row["layer"], row["param"]) for row in network["layers"] if not row["ok"]}
        assert bad == {(1, "W")}, network["summary"]


@pytest.mark.parametrize("wrong", sorted(WRONG_PENALTY))
def test_a_wrong_penalty_is_not_a_convention(write, tmp_path, wrong):
    code, text, data = run(write("wrong_penalty", WRONG_PENALTY[wrong]), tmp_path)
    assert code == 1, text
    penalised = [n for n in data["networks"] if n["network"].get("l2")]
    assert penalised and not any(n["ok"] for n in penalised), text
    assert all("the loss differs from the formulas" in n["summary"] for n in penalised), text
    unpenalised = [n for n in data["networks"] if not n["network"].get("l2")]
    assert unpenalised and all(n["ok"] for n in unpenalised), text


def _module(case: tuple, planted: bool = False) -> types.ModuleType:
    supports, data, penalty = case
    source = textwrap.dedent(SOURCE).format(supports=supports, data=data, penalty=penalty)
    if planted:
        source = source.replace(*PLANTED)
    module = types.ModuleType("written_here")
    exec(compile(source, "written_here.py", "exec"), module.__dict__)
    return module


def _problem(outputs: int = 3, m: int = 4, seed: int = 1):
    from reference.inputs.problems import Problem

    rng = np.random.default_rng(seed)
    sizes = [2, 3, outputs]
    params = [(rng.normal(size=(n, k)), rng.normal(size=(n, 1)))
              for k, n in itertools.pairwise(sizes)]  # fmt: skip
    X, Y = rng.normal(size=(2, m)), rng.normal(size=(outputs, m))
    return Problem(params, X, Y, ["tanh", "identity"], "mse")


@pytest.mark.parametrize("convention", sorted(CODE))
def test_batch_checks_read_each_call_in_its_convention(convention):
    impl, p = _module(CODE[convention]), _problem()
    for name in ("batch mean", "duplicated batch"):
        result = checks.PROBLEM_CHECKS[name](impl, p)
        assert result.ok is True, result.message
        if not convention.endswith("with it"):  # 1/n_L and m are named; so is the default
            assert "read in its loss's convention (the cost is" in result.message


def test_the_batch_checks_still_catch_a_sum_under_the_seed_s_loss():
    """Gradients summed over the samples while the loss is the seed's mean: m times off."""
    summed_grads = _module((SCOPE, "m", "0.0"))
    seed_loss = _module((SCOPE, "1", "0.0"))
    impl = types.SimpleNamespace(__name__="half", loss=seed_loss.loss,
                                 gradients=summed_grads.gradients)  # fmt: skip
    p = _problem()
    result = checks.batch_mean(impl, p)
    assert result.ok is False and result.message.startswith(
        f"the batch gradient is {p.m} times the mean of the per-sample gradients"
    ), result.message
    assert checks.duplicated_batch(impl, p).ok is False


def test_the_layer_view_follows_the_convention_the_table_follows():
    """Averaged over three outputs, with layer 1's dW planted wrong: the table passes the
    output layer, and so does the view's output delta; it blames layer 1's parameters."""
    impl, p = _module(CODE["averaged over the outputs, l2 at the seed's scale"], True), _problem()
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), layer_view=True)
    assert report.conventions and report.attribution == "backward", report.render()
    assert {(c.layer, c.param) for c in report.layers if not c.ok} == {(1, "W")}
    view = report.layer_view
    assert view["verdict"] == "parameters" and view["step"]["name"].startswith("dW^1"), view


def test_the_layer_view_of_a_mistake_in_the_output_delta_still_blames_it():
    """The same convention, with the output delta itself off by 2: the view says so."""
    impl = _module(CODE["averaged over the outputs, l2 at the seed's scale"])
    source_gradients = impl.gradients

    def gradients(params, X, Y, **kw):
        g = source_gradients(params, X, Y, **kw)
        return [(2 * dW, 2 * db) for dW, db in g]

    p = _problem()
    wrong = types.SimpleNamespace(__name__="doubled", loss=impl.loss, gradients=gradients)
    report = check_gradients(wrong, p.params, p.X, p.Y, **p.kwargs(), layer_view=True)
    assert report.layer_view["blamed"] == {"cost": "mse", "output_activation": "identity",
                                           "layer": 2}, report.render()  # fmt: skip


def test_every_candidate_is_detected_and_only_those():
    """Each constant of :func:`candidates` is named, with the penalty scaled with it or at
    the seed's scale; any other multiple, or another penalty scale, is not a convention."""
    m, outputs, data, penalty = 5, 3, 0.7, 0.2
    assert detect(data + penalty, data, penalty, m, outputs, "mse", l2=0.1) is SEED
    for c, names in candidates(m, outputs, "mse").items():
        for s in (c, 1.0):
            found = detect(c * data + s * penalty, data, penalty, m, outputs, "mse", l2=0.1)
            assert found is not None and (found.data, found.penalty) == (c, s)
            assert found.names == names
        assert detect(c * data + 3.7 * penalty, data, penalty, m, outputs, "mse", l2=0.1) is None
    assert detect(3.7 * data, data, 0.0, m, outputs, "mse") is None


def test_one_convention_on_networks_of_several_sizes_is_one_line():
    """A cost summed over the samples is 2 times the seed's on a batch of two and 5 times on
    one of five: the report says it once, with both factors, and counts both networks."""
    import dataclasses

    import backprop
    from reference.inputs.problems import seed_problem
    from reference.judging.outcome import Outcome
    from reference.report.text import print_outcome

    p = seed_problem()
    base = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    said = "the cost is {} times the seed's (summed over the m samples)"
    reports = [(p, dataclasses.replace(base, conventions=[said.format(k)])) for k in (5, 2)]
    out = io.StringIO()
    print_outcome(Outcome(True, reports), "summed", out, quiet=True, verbose=False)
    lines = [line for line in out.getvalue().splitlines() if "NOTE cost" in line]
    assert lines == [f"  NOTE cost: {said.format('2 or 5')} (2 networks)"], out.getvalue()
