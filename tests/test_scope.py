"""Declared scope and severity: code that is right by its own conventions passes, and says how.

Each implementation here is written for the tests, small and independent; each is checked
through ``backprop-check`` in-process (the worker is tested in tests/test_hostile.py).
"""

import io
import json
import re
import textwrap

import numpy as np
import pytest
from background import once
from shipped import shipped_suite_command

from reference.frontends import cli
from reference.inputs.problems import seed_problem
from reference.inputs.scope import Scope, ScopeError

SIGMOID_ONLY = """
import numpy as np

def _check(activations):
    if any(a != "sigmoid" for a in activations):
        raise NotImplementedError("sigmoid layers only")

def _forward(params, X):
    As = [X]
    for W, b in params:
        As.append(1 / (1 + np.exp(-(W @ As[-1] + b))))
    return As

def loss(params, X, Y, *, activations, cost):
    _check(activations)
    A = _forward(params, X)[-1]
    m = X.shape[1]
    if cost == "mse":
        return float(np.sum((A - Y) ** 2) / (2 * m))
    return float(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m)

def gradients(params, X, Y, *, activations, cost):
    _check(activations)
    As = _forward(params, X)
    m = X.shape[1]
    A = As[-1]
    dZ = (A - Y) / m * (A * (1 - A) if cost == "mse" else 1.0)
    grads = []
    for l in range(len(params), 0, -1):
        grads.append((dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
        if l > 1:
            dZ = (params[l - 1][0].T @ dZ) * As[l - 1] * (1 - As[l - 1])
    return grads[::-1]
"""

RELU_ZERO_IN_PLACE = """
import numpy as np

SUPPORTS = {"activations": ["relu"], "output_activations": ["sigmoid"], "costs": ["bce"],
            "outputs": [1]}

def _forward(params, X):
    Zs, As = [], [X]
    for l, (W, b) in enumerate(params):
        Z = W @ As[-1] + b
        Zs.append(Z)
        As.append(1 / (1 + np.exp(-Z)) if l == len(params) - 1 else np.maximum(Z, 0))
    return Zs, As

def loss(params, X, Y, *, activations, cost):
    Z = _forward(params, X)[0][-1]
    return float(np.mean(np.logaddexp(0, Z) - Y * Z) * Y.shape[0])

def gradients(params, X, Y, *, activations, cost):
    Zs, As = _forward(params, X)
    dZ = (As[-1] - Y) / X.shape[1]
    grads = []
    for l in range(len(params), 0, -1):
        grads.append((dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
        if l > 1:
            dZ = (params[l - 1][0].T @ dZ) * (Zs[l - 2] > 0)  # relu'(0) = 0
    return grads[::-1]

def update(params, grads, learning_rate):
    for (W, b), (dW, db) in zip(params, grads):
        W -= learning_rate * dW
        b -= learning_rate * db
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write a module into a fresh directory, make it the working directory and importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name, source, **extra_files):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        for filename, text in extra_files.items():
            (tmp_path / filename).write_text(text)
        return name

    return write


def check(*argv):
    out = io.StringIO()
    code = cli.main(["--in-process", "--networks", "3", *argv], out=out)
    return code, out.getvalue()


def test_undeclared_not_implemented_is_not_in_scope_and_the_declaration_is_suggested(module):
    name = module("sigmoid_only", SIGMOID_ONLY)
    code, text = check("--impl", name, "--quiet")
    assert code == 0, text
    assert "raised NotImplementedError" in text and "sigmoid layers only" in text
    assert "SUPPORTS = {'activations': ['sigmoid'], 'output_activations': ['sigmoid']" in text
    assert "not in scope" in text.splitlines()[-1]


@pytest.mark.parametrize("where", ["flags", "pyproject", "module"])
def test_a_declared_scope_draws_only_networks_inside_it(module, tmp_path, where):
    source, extra, argv = SIGMOID_ONLY, {}, []
    if where == "flags":
        argv = ["--activations", "sigmoid", "--output-activations", "sigmoid"]
    elif where == "pyproject":
        extra = {"pyproject.toml": '[tool.backprop-check]\nactivations = ["sigmoid"]\n'
                 'output_activations = ["sigmoid"]\n'}  # fmt: skip
    else:
        source += '\nSUPPORTS = {"activations": ["sigmoid"], "output_activations": ["sigmoid"]}\n'
    name = module(f"declared_in_{where}", source, **extra)
    report = tmp_path / "r.json"
    code, text = check("--impl", name, "--quiet", "--json", str(report), *argv)
    assert code == 0, text
    data = json.loads(report.read_text())
    assert data["scope"] == {"activations": ["sigmoid"], "output_activations": ["sigmoid"]}
    assert data["not_in_scope"]["unsupported"] == []  # nothing outside was even drawn
    assert all(set(n["network"]["activations"]) == {"sigmoid"} for n in data["networks"])
    assert sum(n["name"].startswith("random") for n in data["networks"]) == 3


def test_flags_win_over_pyproject_over_the_module():
    module_scope = Scope.read({"costs": ["mse"], "outputs": [1]}, "SUPPORTS")
    project = Scope.read({"costs": ["bce"]}, "pyproject")
    flags = Scope.read({"outputs": [2]}, "flags")
    assert flags.over(project.over(module_scope)).to_dict() == {"costs": ["bce"], "outputs": [2]}


@pytest.mark.parametrize(
    "declared, says",
    [
        ({"activation": ["relu"]}, "unknown key(s) 'activation'"),
        ({"outputs": [0]}, "outputs must be widths >= 1"),
        ({"costs": "mse"}, "costs must be a list"),
        ({"max_depth": 0}, "max_depth must be an integer >= 1"),
    ],
)
def test_a_bad_declaration_names_the_key(declared, says):
    with pytest.raises(ScopeError, match=re.escape(says)):
        Scope.read(declared, "SUPPORTS")


def test_why_not_says_what_is_outside():
    scope = Scope.read({"activations": ["sigmoid"], "costs": ["mse"]}, "SUPPORTS")
    assert scope.why_not(seed_problem(("tanh", "tanh", "sigmoid"), "bce")) == (
        "hidden activation tanh"
    )
    assert scope.why_not(seed_problem(("sigmoid",) * 3, "bce")) == "cost bce"
    assert scope.why_not(seed_problem(("sigmoid",) * 3, "mse")) is None


def test_relu_prime_zero_and_an_in_place_update_are_conventions(module):
    name = module("relu_zero", RELU_ZERO_IN_PLACE)
    code, text = check("--impl", name, "--quiet")
    assert code == 0, text
    assert "NOTE relu'(0): fixed: relu'(0) = 0 (JAX's and PyTorch's choice)" in text
    assert "NOTE update:" in text and "written into params in place" in text
    assert "FAIL" not in text
    assert check("--impl", name, "--quiet", "--strict")[0] == 1
    code, text = check("--impl", name, "--quiet", "--relu-at-zero", "1")
    assert code == 1 and "relu'(0) = 0, and 1 is required" in text


@pytest.mark.parametrize("where", ["SUPPORTS", "pyproject"])
def test_a_declared_relu_at_zero_is_required_as_the_flag_requires_it(module, where):
    """relu_at_zero declared (SUPPORTS, or [tool.backprop-check]) is what the check holds the
    code to: kept, it passes with no note, even with --strict; broken, it fails; the flag
    still wins over it."""

    def run(value, *argv):
        source, files = RELU_ZERO_IN_PLACE, {}
        if where == "SUPPORTS":
            source += f'\nSUPPORTS["relu_at_zero"] = {value}\n'
        else:
            files["pyproject.toml"] = f"[tool.backprop-check]\nrelu_at_zero = {value}\n"
        name = module(f"relu_zero_{where}_{value}", source, **files)
        return check("--impl", name, "--quiet", *argv)

    code, text = run(0)
    assert code == 0 and "relu'(0)" not in text, text
    assert run(0, "--strict")[0] == 1  # the in-place update is still an undeclared convention
    code, text = run(1)
    assert code == 1 and "relu'(0) = 0, and 1 is required" in text
    assert run(1, "--relu-at-zero", "0")[0] == 0


@pytest.mark.parametrize("value", [0.5, True, "1", -1])
def test_a_bad_relu_at_zero_names_the_key(value):
    with pytest.raises(ScopeError, match="relu_at_zero must be 0 or 1"):
        Scope.read({"relu_at_zero": value}, "SUPPORTS")


def test_a_log_a_cross_entropy_is_a_warning_with_the_fix(module):
    source = SIGMOID_ONLY + '\nSUPPORTS = {"activations": ["sigmoid"]}\n'
    name = module("log_a", source)
    code, text = check("--impl", name, "--quiet")
    assert code == 0, text
    assert "WARN saturation:" in text and "logaddexp(0, Z) - Y Z" in text
    assert check("--impl", name, "--quiet", "--strict")[0] == 1


def test_a_planted_mistake_in_scope_still_fails(module):
    source = (
        SIGMOID_ONLY.replace(
            "grads.append((dZ @ As[l - 1].T,", "grads.append((2 * dZ @ As[l - 1].T,"
        )
        + '\nSUPPORTS = {"activations": ["sigmoid"]}\n'
    )
    name = module("doubled", source)
    code, text = check("--impl", name, "--quiet")
    assert code == 1
    assert "off by the same factor 2" in text or "constant factor of 2" in text


def declared_scope_runs(item, root):
    """The shipped suite on a sigmoid-only implementation that declares so, and on its
    mistaken copy (``-x``)."""
    where = root / "scope-sigmoid-only"
    source = (
        SIGMOID_ONLY
        + '\nSUPPORTS = {"activations": ["sigmoid"], "output_activations": ["sigmoid"]}\n'
    )
    broken = source.replace(
        "grads.append((dZ @ As[l - 1].T,", "grads.append((2 * dZ @ As[l - 1].T,"
    )

    def prepare():
        assert broken != source, "the planted mistake must change the code"
        where.mkdir()
        (where / "declared.py").write_text(source)
        (where / "doubled.py").write_text(broken)

    prepare = once(prepare)
    return {
        ("scope", "declared"): shipped_suite_command(where, "declared", prepare=prepare),
        ("scope", "doubled"): shipped_suite_command(where, "doubled", "-x", prepare=prepare),
    }


@pytest.mark.background(declare=declared_scope_runs)
def test_the_shipped_suite_draws_inside_the_declared_scope(background):
    """A sigmoid-only implementation that declares so passes the whole suite (the checks
    that cannot apply are skipped), and its mistaken copy fails it: the CLI's verdicts."""
    result = background.result(("scope", "declared"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 skipped" in result.stdout  # relu'(0): no relu in the scope
    result = background.result(("scope", "doubled"))
    assert result.returncode == 1, result.stdout[-3000:]
    assert "constant factor of 2" in result.stdout or "same factor 2" in result.stdout


SEED_ONLY = """
import backprop
from reference.inputs.scope import SEED_NAMES

def _known(activations, cost):
    for name in [*activations, cost]:  # a dict of the seed's functions, as public code has
        if name not in SEED_NAMES["activations"] | SEED_NAMES["costs"]:
            raise KeyError(name)

def loss(params, X, Y, *, activations, cost):
    _known(activations, cost)
    return backprop.loss(params, X, Y, activations=activations, cost=cost)

def gradients(params, X, Y, *, activations, cost):
    _known(activations, cost)
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)

forward, update = backprop.forward, backprop.update
"""


def _beyond_the_seed() -> list[str]:
    """The tables' names that the seed's notes do not have (identity, softmax, cce, ...)."""
    from reference.inputs.scope import SEED_NAMES, table_names

    return sorted(
        (table_names("activations") - SEED_NAMES["activations"])
        | (table_names("costs") - SEED_NAMES["costs"])
    )


def test_code_written_to_the_seed_is_not_checked_on_names_beyond_it(module):
    """Nothing declared: the networks are the seed's names (and registered ones), never the
    tables' extensions, which code written to the seed's notes cannot know."""
    assert _beyond_the_seed(), "the tables have nothing beyond the seed's names"
    name = module("seed_only", SEED_ONLY)
    code, text = check("--impl", name, "--quiet", "--networks", "5")
    assert code == 0, text
    last = text.splitlines()[-1]
    assert last.startswith("PASS") and "not in scope" in last, last
    assert "KeyError" not in text


def test_every_name_is_admitted_by_star_and_the_extensions_reach_the_run(module):
    """``"*"`` admits every name of the tables: the seed-only code then fails on them."""
    name = module("seed_only_star", SEED_ONLY + '\nSUPPORTS = {"activations": "*", '
                  '"output_activations": "*", "costs": "*"}\n')  # fmt: skip
    code, text = check("--impl", name, "--quiet", "--networks", "0")
    assert code == 1, text
    assert "KeyError" in text
    assert any(n in text for n in _beyond_the_seed()), text


def test_a_left_out_name_key_admits_the_seed_and_registered_names():
    from reference.inputs.scope import SEED_NAMES, table_names
    from reference.registry import registered_activation

    undeclared = Scope()
    for key, seed in SEED_NAMES.items():
        assert undeclared.names(key) == table_names(key) & seed
    assert Scope.read({"costs": "*"}, "here").names("costs") == table_names("costs")
    with registered_activation(
        "softsign_test", numpy=lambda z: z / (1 + np.abs(z)), jax=lambda z: z / (1 + abs(z))
    ):
        assert "softsign_test" in Scope().names("activations")
    assert "softsign_test" not in Scope().names("activations")
