"""Layout adapters: code written with samples as rows, with dict parameters, or one sample at
a time is checked unchanged, and the report speaks its layout (reference/boundary/layouts.py).

Each implementation here is written for these tests from the formulas, small and independent
of ``backprop``: one per layout, declared in a different place each time (``SUPPORTS``, the
``--layout`` flag, ``[tool.backprop-check]`` in pyproject.toml).
"""

import io
import json
import textwrap

import numpy as np
import pytest
from background import once
from shipped import shipped_suite_command

import reference
from reference.boundary.guard import ImplementationFailed, guard
from reference.boundary.layouts import adapt
from reference.frontends import cli
from reference.inputs.layout import PRESETS
from reference.inputs.problems import seed_problem
from reference.inputs.scope import LAYOUTS

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
"""The implementations here meet saturated networks (the saturation check): not our concern."""

ACTIVATIONS = """
import numpy as np

G = {  # each activation and its derivative, written from the output a = g(z)
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a**2),
    "relu": (lambda z: np.maximum(z, 0), lambda a: 1.0 * (a > 0)),
}
"""

ROWS = (
    ACTIVATIONS
    + """
SUPPORTS = {"layout": "rows"}

def _forward(params, X, activations):  # X (m, n_0), W (n_in, n_out), b (1, n_out)
    As = [X]
    for (W, b), g in zip(params, activations):
        As.append(G[g][0](As[-1] @ W + b))
    return As

def loss(params, X, Y, *, activations, cost):
    A, m = _forward(params, X, activations)[-1], X.shape[0]
    if cost == "mse":
        return np.sum((A - Y) ** 2) / (2 * m)
    return -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m

def gradients(params, X, Y, *, activations, cost):
    As, m = _forward(params, X, activations), X.shape[0]
    dZ = (As[-1] - Y) / m * (1.0 if cost == "bce" else G[activations[-1]][1](As[-1]))
    grads = []
    for l in range(len(params), 0, -1):
        grads.append((As[l - 1].T @ dZ, dZ.sum(axis=0)))  # db as (n_out,)
        if l > 1:
            dZ = dZ @ params[l - 1][0].T * G[activations[l - 2]][1](As[l - 1])
    return grads[::-1]

def forward(params, X, *, activations):
    return _forward(params, X, activations)[-1]

def update(params, grads, learning_rate):
    return [(W - learning_rate * dW, b - learning_rate * db)
            for (W, b), (dW, db) in zip(params, grads)]
"""
)

DICTS = (
    ACTIVATIONS
    + """
def _forward(parameters, X, activations):
    A = [X]
    for l, g in enumerate(activations, start=1):
        A.append(G[g][0](parameters[f"W{l}"] @ A[-1] + parameters[f"b{l}"]))
    return A

def loss(parameters, X, Y, *, activations, cost):
    AL, m = _forward(parameters, X, activations)[-1], X.shape[1]
    if cost == "mse":
        return np.sum((AL - Y) ** 2) / (2 * m)
    return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m

def gradients(parameters, X, Y, *, activations, cost):
    A, L, m = _forward(parameters, X, activations), len(activations), X.shape[1]
    dZ = (A[L] - Y) / m * (1.0 if cost == "bce" else G[activations[-1]][1](A[L]))
    grads = {}
    for l in range(L, 0, -1):
        grads[f"dW{l}"] = dZ @ A[l - 1].T
        grads[f"db{l}"] = np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dZ = parameters[f"W{l}"].T @ dZ * G[activations[l - 2]][1](A[l - 1])
    return grads

def update(parameters, grads, learning_rate):
    for key in parameters:  # in place, the dict's entries replaced
        parameters[key] = parameters[key] - learning_rate * grads["d" + key]
"""
)

SAMPLES = (
    ACTIVATIONS
    + """
def _forward(params, x, activations):  # one sample: x (n_0, 1)
    activations_ = [x]
    for (W, b), g in zip(params, activations):
        activations_.append(G[g][0](W @ activations_[-1] + b))
    return activations_

def loss(params, x, y, *, activations, cost):  # this sample's term of the cost
    a = _forward(params, x, activations)[-1]
    if cost == "mse":
        return 0.5 * np.sum((a - y) ** 2)
    return -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))

def gradients(params, x, y, *, activations, cost):
    acts = _forward(params, x, activations)
    delta = (acts[-1] - y) * (1.0 if cost == "bce" else G[activations[-1]][1](acts[-1]))
    nabla = []
    for l in range(len(params), 0, -1):
        nabla.append((delta @ acts[l - 1].T, delta))
        if l > 1:
            delta = params[l - 1][0].T @ delta * G[activations[l - 2]][1](acts[l - 1])
    return nabla[::-1]
"""
)

DOUBLED_DW2 = {
    "rows": "g[1] = (2 * g[1][0], g[1][1])",
    "dicts": 'g["dW2"] = 2 * g["dW2"]',
    "samples": "g[1] = (2 * g[1][0], g[1][1])",
}
"""The planted mistake, layer 2's dW doubled, in each layout's terms."""


def mistaken(source: str, layout: str) -> str:
    return source + textwrap.dedent(f"""
        _right = gradients

        def gradients(params, X, Y, *, activations, cost):
            g = _right(params, X, Y, activations=activations, cost=cost)
            if len(activations) > 1:
                {DOUBLED_DW2[layout]}
            return g
        """)


SOURCES = {"rows": ROWS, "dicts": DICTS, "samples": SAMPLES}
DECLARED = {"rows": "module", "dicts": "flag", "samples": "pyproject"}
"""Where each layout is declared: every place is used once."""
SHOWN = {"rows": "W2 3x2 (W^T)", "dicts": "W2 2x3", "samples": "W2 2x3"}
"""How the report's table names layer 2's W of the seed network (2x3) in each layout."""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write a module into a fresh working directory and make it importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name, source):
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


def declared(module, tmp_path, layout: str, name: str, source: str) -> list[str]:
    """Write the module, declare its layout where DECLARED says; the flags to pass."""
    where = DECLARED[layout]
    if where == "pyproject":
        (tmp_path / "pyproject.toml").write_text(f'[tool.backprop-check]\nlayout = "{layout}"\n')
    if where == "module" and "SUPPORTS" not in source:
        source += f'\nSUPPORTS = {{"layout": "{layout}"}}\n'
    module(name, source)
    return ["--layout", layout] if where == "flag" else []


def check(*argv):
    out = io.StringIO()
    code = cli.main(["--in-process", "--networks", "2", *argv], out=out)
    return code, out.getvalue()


def test_every_named_layout_is_a_preset():
    assert set(PRESETS) == set(LAYOUTS)
    assert set(SOURCES) == set(LAYOUTS) - {"columns"}


@pytest.mark.parametrize("layout", sorted(SOURCES))
def test_correct_code_in_each_layout_passes_and_the_table_speaks_its_layout(
    module, tmp_path, layout
):
    argv = declared(module, tmp_path, layout, f"right_{layout}", SOURCES[layout])
    code, text = check("--impl", f"right_{layout}", *argv)
    assert code == 0, text
    seed_table = text.split("\n\n")[0]
    assert f", {layout} layout" in seed_table.splitlines()[1]
    assert f"2     W {SHOWN[layout]:>9}" in seed_table


@pytest.mark.parametrize("layout", sorted(SOURCES))
def test_a_doubled_dW2_in_each_layout_is_blamed_on_layer_2s_W(module, tmp_path, layout):
    source = mistaken(SOURCES[layout], layout)
    argv = declared(module, tmp_path, layout, f"wrong_{layout}", source)
    report = tmp_path / "r.json"
    code, text = check("--impl", f"wrong_{layout}", "--json", str(report), *argv)
    assert code == 1, text
    assert "only layer 2's dW is wrong: dW is off by a constant factor of 2" in text
    seed = json.loads(report.read_text())["networks"][0]
    assert seed["blame"] == {"layer": 2, "param": "W"}
    assert seed["attribution"] == "backward" and seed["layout"] == layout


def test_the_flag_wins_over_the_modules_declaration(module):
    module("rows_declared", ROWS)
    code, text = check("--impl", "rows_declared", "--layout", "columns", "--quiet")
    assert code == 1
    assert "(the columns layout's shape)" not in text  # no adapter: the guard's own words
    assert "structure" in text or "raised" in text


def test_the_worker_keeps_the_layout_in_a_worker_that_replaces_a_crashed_one(module, tmp_path):
    """One network ends the worker process; the next worker must still use the rows layout."""
    source = ROWS + textwrap.dedent("""
        import os, signal
        _right = gradients

        def gradients(params, X, Y, *, activations, cost):
            if list(activations) == ["relu", "relu", "relu"]:
                os.kill(os.getpid(), signal.SIGKILL)
            return _right(params, X, Y, activations=activations, cost=cost)
        """)
    module("rows_crashing", source)
    report = tmp_path / "r.json"
    out = io.StringIO()
    code = cli.main(["--impl", "rows_crashing", "--networks", "1", "--json", str(report)], out=out)
    assert code == 1, out.getvalue()
    networks = json.loads(report.read_text())["networks"]
    failed = [n for n in networks if not n["ok"]]
    assert [n["summary"] for n in failed] == ["gradients was killed by SIGKILL"], out.getvalue()
    assert len(networks) > 30 and networks.index(failed[0]) < 5  # most ran in a new worker


# --- structure errors in the user's terms ------------------------------------------------


def test_a_missing_dict_key_is_a_structure_finding_naming_the_key(module, tmp_path):
    source = DICTS + textwrap.dedent("""
        _right = gradients

        def gradients(parameters, X, Y, *, activations, cost):
            grads = _right(parameters, X, Y, activations=activations, cost=cost)
            del grads[f"db{len(activations)}"]
            return grads
        """)
    module("dicts_missing", source)
    report = tmp_path / "r.json"
    code, text = check("--impl", "dicts_missing", "--layout", "dicts", "--json", str(report))
    assert code == 1, text
    seed = json.loads(report.read_text())["networks"][0]
    assert seed["attribution"] == "structure"
    assert seed["summary"] == (
        "gradients returned no 'db3' (expected keys dW1, db1, dW2, db2, dW3, db3)"
    )


def test_gradients_keyed_like_the_parameters_are_named_as_such():
    impl = type("W_keyed", (), {
        "loss": staticmethod(lambda parameters, X, Y, **kw: 0.0),
        "gradients": staticmethod(lambda parameters, X, Y, **kw: parameters),  # W1, not dW1
    })  # fmt: skip
    p = seed_problem()
    with pytest.raises(ImplementationFailed) as failed:
        guard(adapt(impl, "dicts")).gradients(p.params, p.X, p.Y, **p.kwargs())
    assert failed.value.finding.kind == "structure"
    assert failed.value.finding.message.endswith(
        "it has 'W1', 'b1', 'W2', 'b2', 'W3', 'b3': they fit grads={}"
    )


def test_a_rows_gradient_in_the_columns_shape_is_a_structure_finding_naming_the_shapes(
    module, tmp_path
):
    source = ROWS + textwrap.dedent("""
        _right = gradients

        def gradients(params, X, Y, *, activations, cost):
            return [(dW.T, db) for dW, db in _right(params, X, Y, activations=activations,
                                                     cost=cost)]
        """)
    module("rows_transposed", source)
    report = tmp_path / "r.json"
    code, text = check("--impl", "rows_transposed", "--json", str(report))
    assert code == 1, text
    seed = json.loads(report.read_text())["networks"][0]
    assert seed["attribution"] == "structure"
    assert seed["summary"] == (
        "gradients returned dW1 of shape (3, 2); with W=in_out W1 is (2, 3) (n_in, n_out) "
        "(the shape of W=out_in)"
    )


def test_a_rows_bias_gradient_of_the_wrong_shape_names_both_accepted_shapes():
    p = seed_problem()
    impl = type("bad_db", (), {
        "loss": staticmethod(lambda params, X, Y, **kw: 0.0),
        "gradients": staticmethod(
            lambda params, X, Y, **kw: [(W, b.T) for W, b in params]  # db as (n_out, 1)
        ),
    })  # fmt: skip
    with pytest.raises(ImplementationFailed) as failed:
        guard(adapt(impl, "rows")).gradients(p.params, p.X, p.Y, **p.kwargs())
    assert failed.value.finding.message == (
        "returned db1 of shape (3, 1); with b=row b1 is (1, 3) (or 1-D, (3,)) (this fits b=column)"
    )


def test_an_exception_in_the_users_code_names_the_users_file_and_line(module, tmp_path):
    """The adapter's frames live in reference/, which the guard skips when it looks for the
    user's line: the finding points into the user's module, not into the adapter."""
    module("dicts_raising", DICTS.replace('parameters[f"W{l}"].T', 'parameters[f"W{l + 1}"].T'))
    import dicts_raising

    p = seed_problem()
    with pytest.raises(ImplementationFailed) as failed:
        guard(adapt(dicts_raising, "dicts")).gradients(p.params, p.X, p.Y, **p.kwargs())
    where = failed.value.finding.where
    assert failed.value.finding.kind == "raised"
    assert where["file"] == str(tmp_path / "dicts_raising.py")
    assert (
        where["code"] == 'dZ = parameters[f"W{l + 1}"].T @ dZ * G[activations[l - 2]][1](A[l - 1])'
    )


# --- what the adapters keep: exactness, purity, in-place updates -----------------------------


@pytest.mark.parametrize("layout", sorted(SOURCES))
def test_each_adapter_gives_the_seeds_gradients_and_loss(module, layout):
    import backprop

    impl = __import__(module(f"exact_{layout}", SOURCES[layout]))
    p = seed_problem(("tanh", "sigmoid", "sigmoid"), "mse")
    g = guard(adapt(impl, layout))
    ours = g.gradients(p.params, p.X, p.Y, **p.kwargs())
    for (dW, db), (eW, eb) in zip(ours, backprop.gradients(p.params, p.X, p.Y, **p.kwargs())):
        np.testing.assert_allclose(dW, eW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(db, eb, rtol=1e-12, atol=1e-15)
    expected = backprop.loss(p.params, p.X, p.Y, **p.kwargs())
    assert g.loss(p.params, p.X, p.Y, **p.kwargs()) == pytest.approx(expected, rel=1e-13)


def test_a_change_in_place_reaches_the_guard_through_the_rows_adapter(module):
    impl = __import__(module("rows_impure", ROWS + textwrap.dedent("""
        _right = gradients

        def gradients(params, X, Y, *, activations, cost):
            X *= 2  # the user's X is a view of the guard's copy
            return _right(params, X, Y, activations=activations, cost=cost)
        """)))  # fmt: skip
    p = seed_problem()
    g = guard(adapt(impl, "rows"))
    g.gradients(p.params, p.X, p.Y, **p.kwargs())
    assert [i.argument for i in g.impurities] == ["X"]


def test_an_update_in_place_through_the_dicts_adapter_is_read_back(module):
    impl = __import__(module("dicts_update", DICTS))
    p = seed_problem()
    g = guard(adapt(impl, "dicts"))
    grads = g.gradients(p.params, p.X, p.Y, **p.kwargs())
    new = g.update(p.params, grads, 0.5)
    assert g.update_in_place and not g.impurities
    for (W, b), (dW, db), (W_new, b_new) in zip(p.params, grads, new):
        np.testing.assert_array_equal(W_new, W - 0.5 * dW)
        np.testing.assert_array_equal(b_new, b - 0.5 * db)


def test_the_python_api_adapts_and_the_report_names_the_users_shapes(module):
    impl = __import__(module("rows_api", ROWS))
    p = seed_problem()
    report = reference.check_gradients(reference.adapt(impl, "rows"), p.params, p.X, p.Y,
                                       **p.kwargs())  # fmt: skip
    assert report.ok, report.render()
    assert report.layout == "rows" and report.to_dict()["layout"] == "rows"
    assert "W1 2x3 (W^T)" in report.render() and "b1 1x3 (b^T)" in report.render()
    assert reference.adapt(reference.adapt(impl, "rows"), "columns") is impl


# --- the shipped property suite ---------------------------------------------------------------


def shipped_runs(item, root):
    """The shipped suite on right rows-layout code and on its mistaken copy (``-x``)."""
    where = root / "layouts-rows"

    def prepare():
        where.mkdir()
        (where / "rows_right.py").write_text(ROWS)
        (where / "rows_wrong.py").write_text(mistaken(ROWS, "rows"))

    prepare = once(prepare)
    return {
        ("layouts", "right"): shipped_suite_command(where, "rows_right", prepare=prepare),
        ("layouts", "wrong"): shipped_suite_command(where, "rows_wrong", "-x", prepare=prepare),
    }


UNDECLARED = ROWS.replace('SUPPORTS = {"layout": "rows"}\n', "")


def detection_runs(item, root):
    """The shipped suite's first gradient test on the rows code with its declaration taken
    out, and the whole suite with the seed's layout declared for it on the command line."""
    where = root / "layouts-undeclared"

    def prepare():
        where.mkdir()
        (where / "rows_undeclared.py").write_text(UNDECLARED)

    prepare = once(prepare)
    first = ("-k", "test_gradients_match_both_oracles")
    return {
        ("layouts", "detected"): shipped_suite_command(
            where, "rows_undeclared", *first, prepare=prepare
        ),
        ("layouts", "declared wrong"): shipped_suite_command(
            where, "rows_undeclared", "--backprop-layout", "columns", prepare=prepare
        ),
    }


@pytest.mark.background(declare=detection_runs)
def test_the_plugin_detects_an_undeclared_layout_and_says_a_wrong_one_once(background):
    assert "SUPPORTS" not in UNDECLARED
    result = background.result(("layouts", "detected"))
    assert result.returncode == 0, result.stdout + result.stderr
    header = result.stdout.split("collected")[0]
    assert "implementation rows_undeclared (samples=rows" in header, header
    assert "NOTE layout: detected samples=rows" in header, header
    assert "1 passed" in result.stdout
    wrong = background.result(("layouts", "declared wrong"))
    assert wrong.returncode == pytest.ExitCode.USAGE_ERROR, wrong.stdout + wrong.stderr
    said = wrong.stderr
    assert said.count("FAIL layout: the declared layout columns does not fit") == 1, said
    assert "--backprop-layout samples=rows" in said, said


@pytest.mark.background(declare=shipped_runs)
def test_the_shipped_suite_passes_correct_rows_code_and_fails_its_mistaken_copy(background):
    result = background.result(("layouts", "right"))
    wrong = background.result(("layouts", "wrong"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "implementation rows_right (rows layout)" in result.stdout
    result = wrong
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "only layer 2's dW is wrong" in result.stdout
    assert "(W^T)" in result.stdout  # the table in the user's names and shapes
