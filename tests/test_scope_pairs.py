"""Declaring one shared hidden activation and the (output activation, cost) pairs.

Code built like scikit-learn's MLP takes one activation for every hidden layer and pairs
each output activation with one loss. ``SUPPORTS`` says so with ``shared_hidden`` and
``output_cost_pairs``; no network outside is drawn (by ``backprop-check``, by the seed
networks, by the hypothesis strategies), and where networks are refused anyway, the hint
names only what the declaration does not already say.
"""

from __future__ import annotations

import io
import json
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings

from reference.frontends import cli
from reference.inputs.problems import compatible_costs, table_activations
from reference.inputs.scope import KEYS, Scope, ScopeError, random_problem_in
from reference.inputs.strategies import architectures

SHARED = """
import backprop

SUPPORTS = {supports}
REFUSES = {refuses}


def _refuse(activations, cost):
    hidden = set(activations[:-1])
    if "mixed" in REFUSES and len(hidden) > 1:
        raise NotImplementedError("one activation for every hidden layer")
    if "pairs" in REFUSES and [activations[-1], cost] not in PAIRS:
        raise NotImplementedError(f"{{activations[-1]}} with {{cost}}")


PAIRS = {pairs}


def loss(params, X, Y, *, activations, cost):
    _refuse(activations, cost)
    return backprop.loss(params, X, Y, activations=activations, cost=cost)


def gradients(params, X, Y, *, activations, cost):
    _refuse(activations, cost)
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)
"""
"""The built-in behind a door that refuses mixed hidden layers and pairs outside ``PAIRS``."""


def _pairs() -> list[list[str]]:
    """One cost per output activation of the tables, the first each allows."""
    return [[out, compatible_costs(out)[0]] for out in sorted(table_activations())]


def _hidden() -> list[str]:
    from reference.inputs.problems import output_only

    return sorted(a for a in table_activations() if not output_only(a))


@pytest.fixture
def module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, supports: dict, refuses: tuple[str, ...]) -> str:
        source = SHARED.format(supports=supports, refuses=refuses, pairs=_pairs())
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def run(name: str, tmp_path) -> tuple[int, str, dict]:
    out = io.StringIO()
    path = tmp_path / "report.json"
    code = cli.main(["--in-process", "--impl", name, "--networks", "8", "--json", str(path)],
                    out=out)  # fmt: skip
    return code, out.getvalue(), json.loads(path.read_text())


def test_a_declaration_of_both_draws_nothing_the_code_refuses(module, tmp_path):
    supports = {"activations": "*", "output_activations": "*", "costs": "*",
                "shared_hidden": True, "output_cost_pairs": _pairs()}  # fmt: skip
    code, text, data = run(module("shared_declared", supports, ("mixed", "pairs")), tmp_path)
    assert code == 0, text
    assert data["not_in_scope"]["unsupported"] == [], text
    pairs = {tuple(p) for p in _pairs()}
    networks = data["networks"]
    assert len(networks) > 8, text  # the seed networks inside the scope, and the random ones
    for n in networks:
        acts = n["network"]["activations"]
        assert len(set(acts[:-1])) <= 1, n["name"]
        assert (acts[-1], n["network"]["cost"]) in pairs, n["name"]
    assert data["scope"]["shared_hidden"] is True
    assert sorted(map(tuple, data["scope"]["output_cost_pairs"])) == sorted(pairs)


def test_the_hint_names_only_what_is_not_declared(module, tmp_path):
    """Every name declared, neither the shared hidden layer nor the pairs: the hint adds
    those two and repeats none of the keys already there."""
    supports = {"activations": "*", "output_activations": "*", "costs": "*"}
    code, text, _ = run(module("names_declared", supports, ("mixed", "pairs")), tmp_path)
    assert code == 0, text
    hint = next(line for line in text.splitlines() if "raised NotImplementedError" in line)
    said = hint.partition("say so once with ")[2]
    assert "'shared_hidden': True" in said and "'output_cost_pairs': [[" in said, hint
    for key in supports:
        assert f"'{key}':" not in said, hint
    assert "added to the module's SUPPORTS" in said, hint


def test_the_hint_with_nothing_declared_is_a_whole_declaration(module, tmp_path):
    code, text, _ = run(module("nothing_declared", {}, ("mixed",)), tmp_path)
    assert code == 0, text
    hint = next(line for line in text.splitlines() if "raised NotImplementedError" in line)
    assert "SUPPORTS = {'shared_hidden': True} in the module" in hint, hint


SCOPE = Scope.read({"activations": "*", "output_activations": "*", "costs": "*",
                    "shared_hidden": True, "output_cost_pairs": _pairs()}, "test")  # fmt: skip


@settings(max_examples=60, derandomize=True, deadline=None)
@given(architectures(scope=SCOPE, max_depth=4))
def test_the_strategies_draw_inside_both(arch):
    assert len(set(arch.activations[:-1])) <= 1
    assert [arch.activations[-1], arch.cost] in _pairs()


def test_random_networks_and_the_scope_agree():
    rng = np.random.default_rng(0)
    for k in range(30):
        p = random_problem_in(rng, SCOPE, name=f"random #{k}")
        assert SCOPE.admits(p) and len(set(p.activations[:-1])) <= 1
        assert [p.activations[-1], p.cost] in _pairs()
    mixed = Scope.read({"activations": "*", "shared_hidden": True}, "test")
    a, b = _hidden()[:2]
    assert mixed.why_not(_problem([a, b, "sigmoid"], "bce")) == (
        f"hidden activations {a}, {b} in one network (SUPPORTS['shared_hidden'] admits one)"
    )
    extra = [(o, c) for o in sorted(table_activations()) for c in compatible_costs(o)
             if [o, c] not in _pairs()]  # fmt: skip
    assert extra  # the tables pair some output activation with a second cost
    out, cost = extra[0]
    assert SCOPE.why_not(_problem([a, out], cost)) == (
        f"output activation {out} with cost {cost} (not among SUPPORTS['output_cost_pairs'])"
    )


def _problem(activations, cost):
    from reference.inputs.problems import Problem

    rng = np.random.default_rng(0)
    widths = [2] * len(activations) + [2]
    params = [(rng.normal(size=(widths[k + 1], widths[k])), np.zeros((widths[k + 1], 1)))
              for k in range(len(activations))]  # fmt: skip
    Y = np.full((2, 3), 0.5)
    return Problem(params, rng.normal(size=(2, 3)), Y, list(activations), cost)


def test_the_pairs_name_the_outputs_and_costs_when_those_are_left_out():
    scope = Scope.read({"output_cost_pairs": [["softmax", "cce"]]}, "test")
    assert scope.names("output_activations") == {"softmax"}
    assert scope.names("costs") == {"cce"}
    assert scope.cost_choices("softmax") == ["cce"]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("shared_hidden", "yes", "shared_hidden must be True or False, got 'yes'"),
        (
            "output_cost_pairs",
            [["sigmoid"]],
            "must be a list of [output activation, cost] pairs, got ['sigmoid'] in it",
        ),
        ("output_cost_pairs", "sigmoid", "output_cost_pairs must be a list, got 'sigmoid'"),
    ],
)
def test_a_declaration_that_cannot_be_read_says_which_key(key, value, says):
    assert key in KEYS
    with pytest.raises(ScopeError) as raised:
        Scope.read({key: value}, "SUPPORTS")
    assert says in str(raised.value)


def test_the_declaration_round_trips_through_its_record():
    scope = Scope.read({"shared_hidden": True, "output_cost_pairs": _pairs()}, "test")
    assert Scope.read(json.loads(json.dumps(scope.to_dict())), "again") == scope
    assert Scope.read({"shared_hidden": False}, "test") == Scope()
