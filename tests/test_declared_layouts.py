"""Layouts by declaration (reference/inputs/layout.py, reference/boundary/layouts.py and
detect.py): code in each common style passes with a declaration of at most three lines and
no adapter code, a planted mistake is blamed on the layer and parameter in the code's own
names, the detection names the layout it found, and a layout declared wrong is said once,
with the declaration that fits.

Each implementation is written for these tests from the formulas, independent of
``backprop``: all share one forward and backward pass (``CORE``, samples as columns, the
seed's shapes), reached through a few lines that put the style's arrays into it and its
gradients back, as each style's own code would hold them.
"""

import html
import io
import json
import xml.etree.ElementTree as ET

import junit_schemas
import pytest
from tiers import first_quick

import reference
from reference.boundary.detect import candidates, detect_layout, probe_problem
from reference.boundary.guard import guard
from reference.boundary.layouts import describe_param
from reference.frontends import cli
from reference.inputs.layout import PRESETS, Layout, LayoutError, read_layout
from reference.inputs.problems import seed_problem
from reference.inputs.scope import Scope

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

CORE = """
import numpy as np
from types import SimpleNamespace

G = {  # each activation and its derivative, written from the output a = g(z)
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a**2),
    "relu": (lambda z: np.maximum(z, 0), lambda a: 1.0 * (a > 0)),
}
SUPPORTS = {"activations": ["tanh", "sigmoid", "relu"], "output_activations": ["sigmoid"],
            "costs": ["mse", "bce"]}

def _core_forward(Ws, bs, X, activations):  # seed shapes: W (n_out, n_in), b (n_out, 1)
    A = [X]
    for W, b, g in zip(Ws, bs, activations):
        A.append(G[g][0](W @ A[-1] + b))
    return A

def _core_loss(Ws, bs, X, Y, activations, cost):
    A, m = _core_forward(Ws, bs, X, activations)[-1], X.shape[1]
    if cost == "mse":
        return np.sum((A - Y) ** 2) / (2 * m)
    return -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m

def _core_gradients(Ws, bs, X, Y, activations, cost):
    A, L, m = _core_forward(Ws, bs, X, activations), len(Ws), X.shape[1]
    dZ = (A[L] - Y) / m * (1.0 if cost == "bce" else G[activations[-1]][1](A[L]))
    dWs, dbs = [None] * L, [None] * L
    for l in range(L, 0, -1):
        dWs[l - 1] = dZ @ A[l - 1].T
        dbs[l - 1] = dZ.sum(axis=1, keepdims=True)
        if l > 1:
            dZ = Ws[l - 1].T @ dZ * G[activations[l - 2]][1](A[l - 1])
    return dWs, dbs
"""

STYLES = {
    # W (n_out, n_in), samples as rows, 1-D biases (Raschka's NeuralNetMLP)
    "raschka": (
        {"samples": "rows", "b": "flat"},
        """
def _unpack(params):
    return [W for W, _ in params], [b[:, None] for _, b in params]

def loss(params, X, Y, *, activations, cost):
    return _core_loss(*_unpack(params), X.T, Y.T, activations, cost)

def gradients(params, X, Y, *, activations, cost):
    dWs, dbs = _core_gradients(*_unpack(params), X.T, Y.T, activations, cost)
    return [(dW, db[:, 0]) for dW, db in zip(dWs, dbs)]
""",
    ),
    # a dict with lower-case keys, W (n_in, n_out), row biases, samples as rows, gradients
    # named like the parameters (a CS229 nn.py)
    "cs229": (
        {"samples": "rows", "W": "in_out", "b": "row", "container": "dict", "W_key": "w{l}"},
        """
def _unpack(params, L):
    return ([params[f"w{l}"].T for l in range(1, L + 1)],
            [params[f"b{l}"].T for l in range(1, L + 1)])

def loss(params, X, Y, *, activations, cost):
    return _core_loss(*_unpack(params, len(activations)), X.T, Y.T, activations, cost)

def gradients(params, X, Y, *, activations, cost):
    dWs, dbs = _core_gradients(*_unpack(params, len(activations)), X.T, Y.T, activations, cost)
    grads = {}
    for l, (dW, db) in enumerate(zip(dWs, dbs), start=1):
        grads[f"w{l}"], grads[f"b{l}"] = dW.T, db.T
    return grads
""",
    ),
    # W (n_in, n_out) with 1-D biases, samples as columns
    "in_out_flat": (
        {"W": "in_out", "b": "flat"},
        """
def _unpack(params):
    return [W.T for W, _ in params], [b[:, None] for _, b in params]

def loss(params, X, Y, *, activations, cost):
    return _core_loss(*_unpack(params), X, Y, activations, cost)

def gradients(params, X, Y, *, activations, cost):
    dWs, dbs = _core_gradients(*_unpack(params), X, Y, activations, cost)
    return [(dW.T, db[:, 0]) for dW, db in zip(dWs, dbs)]
""",
    ),
    # separate lists of weights and biases, the seed's shapes
    "lists": (
        {"container": "lists"},
        """
def loss(params, X, Y, *, activations, cost):
    weights, biases = params
    return _core_loss(weights, biases, X, Y, activations, cost)

def gradients(params, X, Y, *, activations, cost):
    weights, biases = params
    return _core_gradients(weights, biases, X, Y, activations, cost)
""",
    ),
    # an object with attributes W1, b1, ... and gradients dW1, db1, ... as attributes
    "object": (
        {"container": "object"},
        """
def _unpack(net, L):
    return ([getattr(net, f"W{l}") for l in range(1, L + 1)],
            [getattr(net, f"b{l}") for l in range(1, L + 1)])

def loss(net, X, Y, *, activations, cost):
    return _core_loss(*_unpack(net, len(activations)), X, Y, activations, cost)

def gradients(net, X, Y, *, activations, cost):
    dWs, dbs = _core_gradients(*_unpack(net, len(activations)), X, Y, activations, cost)
    grads = SimpleNamespace()
    for l, (dW, db) in enumerate(zip(dWs, dbs), start=1):
        setattr(grads, f"dW{l}", dW)
        setattr(grads, f"db{l}", db)
    return grads
""",
    ),
}
"""Each style: its declaration (the keys that differ from the seed's) and its code."""

PLANTED = (
    "dWs[l - 1] = dZ @ A[l - 1].T",
    "dWs[l - 1] = dZ @ A[l - 1].T * (m if l == len(Ws) else 1)",
)
"""The planted mistake: the output layer's dW without its 1/m."""


def declaration(keys: dict[str, str]) -> str:
    """The module's declaration of ``keys``: one line, ``key=value`` pairs joined."""
    return f'SUPPORTS["layout"] = "{",".join(f"{k}={v}" for k, v in keys.items())}"\n'


def source(style: str, *, declared: bool = True, mistaken: bool = False) -> str:
    keys, code = STYLES[style]
    text = CORE + code + (declaration(keys) if declared else "")
    return text.replace(*PLANTED) if mistaken else text


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write a module into a fresh working directory and make it importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, text: str) -> str:
        (tmp_path / f"{name}.py").write_text(text)
        return name

    return write


def check(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["--in-process", "--networks", "2", *argv], out=out)
    return code, out.getvalue()


# --- the declaration ---------------------------------------------------------------------------


def test_each_preset_reads_back_as_its_name_and_each_style_in_one_line():
    for name, preset in PRESETS.items():
        assert read_layout(name) == preset and str(preset) == name
    for keys, _ in STYLES.values():
        line = declaration(keys)
        assert line.count("\n") == 1 and len(line) <= 99  # one line of the module
        assert read_layout(dict(keys)) == read_layout(line.split('"')[3])


def test_a_preset_name_may_lead_a_declaration_and_a_mapping_reads_the_same():
    assert read_layout("rows,b=flat") == Layout(samples="rows", W="in_out", b="flat")
    assert read_layout({"samples": "rows", "b": "flat"}) == Layout(samples="rows", b="flat")
    assert str(Layout(samples="rows", b="flat")) == "samples=rows,b=flat"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("W=sideways", "layout key 'W' must be one of out_in, in_out, got 'sideways'"),
        ("colour=red", "unknown layout key(s) 'colour'"),
        ("container=dict,W_key=W", "layout key 'W_key' must be a name holding {l}"),
        ("grads=gradient", "layout key 'grads' must be 'auto' or a pattern holding {}"),
        ("diagonal", "unknown layout 'diagonal'"),
        (3, "must be a preset (columns, rows, dicts, samples)"),
    ],
)
def test_a_bad_declaration_names_the_key_what_it_takes_and_what_came(value, words):
    with pytest.raises(LayoutError, match=None) as raised:
        read_layout(value, "SUPPORTS['layout']")
    assert words in str(raised.value) and str(raised.value).startswith("SUPPORTS['layout']")
    assert isinstance(raised.value, ValueError)


def test_the_scope_keeps_a_declaration_as_its_canonical_text():
    scope = Scope.read({"layout": {"b": "flat", "samples": "rows"}}, "SUPPORTS")
    assert scope.layout == "samples=rows,b=flat"


# --- each style passes with its declaration, and fails with the right blame -------------------


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_style_passes_check_gradients_with_its_one_line_declaration(module, style):
    impl = __import__(module(f"api_{style}", source(style)))
    p = seed_problem(("tanh", "tanh", "sigmoid"), "bce")
    report = reference.check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, report.render()
    assert report.layout == str(read_layout(STYLES[style][0]))


@pytest.mark.parametrize("style", first_quick(sorted(STYLES)))
def test_each_style_passes_the_cli_and_its_mistake_is_blamed_in_its_names(module, tmp_path, style):
    module(f"right_{style}", source(style))
    code, text = check("--impl", f"right_{style}")
    assert code == 0, text
    assert "NOTE layout" not in text  # declared: nothing detected

    module(f"wrong_{style}", source(style, mistaken=True))
    report = tmp_path / "r.json"
    code, text = check("--impl", f"wrong_{style}", "--json", str(report))
    assert code == 1, text
    seed = json.loads(report.read_text())["networks"][0]
    L = len(seed_problem().params)
    assert seed["blame"] == {"layer": L, "param": "W"}, text
    assert seed["layout"] == str(read_layout(STYLES[style][0]))
    shape = seed_problem().params[-1][0].shape
    mine = describe_param(seed["layout"], L, "W", shape)
    row = next(line for line in text.splitlines() if mine in line)
    assert "FAIL" in row or "wrong" in row, row


def test_the_worker_carries_an_object_container_both_ways(module):
    module("worker_object", source("object"))
    out = io.StringIO()
    code = cli.main(["--impl", "worker_object", "--networks", "1"], out=out)
    assert code == 0, out.getvalue()


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize("style", sorted(STYLES))
def test_an_undeclared_style_is_detected_and_named(module, style):
    impl = __import__(module(f"bare_{style}", source(style, declared=False)))
    probe = probe_problem(Scope.read(impl.SUPPORTS, "SUPPORTS"))
    found = detect_layout(guard(impl), None, probe)
    keys = STYLES[style][0]
    declared = read_layout(keys)
    assert found.error is None and read_layout(found.layout) == declared
    assert f"NOTE layout: detected {declared} ({declared.describe()})" in found.note
    assert declared.declaration() in found.note


def test_the_cli_checks_detected_code_in_the_layout_it_names(module):
    module("bare_raschka", source("raschka", declared=False))
    code, text = check("--impl", "bare_raschka")
    assert code == 0, text
    assert text.startswith("NOTE layout: detected samples=rows,b=flat")


@pytest.mark.parametrize("style", sorted(STYLES))
def test_check_gradients_checks_undeclared_code_in_the_layout_its_shapes_say(module, style):
    """In Python, as a notebook calls it: where the seed's layout fails and another fits, the
    report is the check in that layout, its first note saying which; a planted mistake is
    still blamed there."""
    fits = read_layout(STYLES[style][0])
    p = seed_problem()
    for mistaken in (False, True):
        name = module(f"plain_{style}_{mistaken}", source(style, declared=False, mistaken=mistaken))
        report = reference.check_gradients(__import__(name), p.params, p.X, p.Y, **p.kwargs())
        assert read_layout(report.layout) == fits, report.render()
        assert report.notes[0].startswith(f"NOTE layout: detected {fits}"), report.notes
        assert report.ok is not mistaken, report.render()
    assert report.attribution == "backward"
    assert report.blame == {"layer": len(p.params), "param": "W"}


class Raises:
    """Code that raises ``kind`` on every call, counting its calls."""

    def __init__(self, kind, supports=None):
        self.kind, self.calls = kind, 0
        if supports is not None:
            self.SUPPORTS = supports

    def loss(self, params, X, Y, *, activations, cost):
        return 0.0

    def gradients(self, params, X, Y, *, activations, cost):
        self.calls += 1
        raise self.kind("operands could not be broadcast together with shapes (3,2) (2,3)")


@pytest.mark.parametrize(
    "kind, supports, probed",
    [
        (RuntimeError, None, False),  # not what a layout causes: the code's own failure
        (ValueError, {"layout": "columns"}, False),  # declared: the declaration stands
        (ValueError, None, True),  # a shape error, undeclared: probed, and no layout fits
    ],
)
def test_check_gradients_probes_only_undeclared_code_that_fails_as_a_layout_would(
    kind, supports, probed
):
    impl, p = Raises(kind, supports), seed_problem()
    report = reference.check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert not report.ok and report.attribution == "crash"
    assert not any("layout" in n for n in report.notes), report.notes
    assert (impl.calls > 1) is probed, impl.calls


SEED_CODE = """
def loss(params, X, Y, *, activations, cost):
    return _core_loss(*zip(*params), X, Y, activations, cost)

def gradients(params, X, Y, *, activations, cost):
    return list(zip(*_core_gradients(*zip(*params), X, Y, activations, cost)))
"""


def test_seed_layout_code_is_not_probed_further(module):
    impl = __import__(module("seed_code", CORE + SEED_CODE))
    g = guard(impl)
    found = detect_layout(g, None, probe_problem(Scope()))
    assert found.layout is None and found.error is None and found.note is None
    assert g.calls == 1


def test_every_candidate_is_a_different_layout():
    every = candidates(Layout())
    assert len(set(every)) == len(every)
    assert Layout(samples="rows", b="flat") in every


# --- a structure error said once, with the declaration that fits -------------------------------


@pytest.mark.parametrize("style", ["raschka", "cs229", "in_out_flat"])
def test_a_wrong_declaration_fails_once_naming_the_one_that_fits(module, style):
    text = source(style, declared=False) + 'SUPPORTS["layout"] = "rows"\n'
    if style == "cs229":  # a dict declared as pairs with the wrong names: the keys decide
        text = text.replace('"rows"', '"rows,container=dict"')
    module(f"misdeclared_{style}", text)
    code, out = check("--impl", f"misdeclared_{style}")
    assert code == 1
    fits = read_layout(STYLES[style][0])
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAIL layout: the declared layout "), out
    assert f"fit {fits} ({fits.describe()}): declare {fits.declaration()}" in out


def test_a_wrong_declaration_still_writes_its_json_and_junit_files(module, tmp_path):
    """CI reads the files, not the terminal: a run the layout stops before its first network
    writes them, holding that one failure and no network."""
    module("misdeclared_rows", source("raschka", declared=False) + 'SUPPORTS["layout"] = "rows"\n')
    (tmp_path / "r.html").write_text("a page from an earlier run that passed")
    code, out = check("--impl", "misdeclared_rows", "--json", "r.json", "--junit-xml", "r.xml",
                      "--html", "r.html")  # fmt: skip
    assert code == 1 and len(out.splitlines()) == 1, out
    data = json.loads((tmp_path / "r.json").read_text())
    assert (data["ok"], data["complete"], data["networks"]) == (False, True, [])
    [layout] = data["checks"]
    assert (layout["where"], layout["name"], layout["ok"]) == ("whole run", "layout", False)
    assert out == f"FAIL layout: {layout['message']}\n"
    junit_schemas.validate(tmp_path / "r.xml")
    cases = [
        (c.get("name"), [f.tag for f in c]) for c in ET.parse(tmp_path / "r.xml").iter("testcase")
    ]
    # the one failure; the networks the scope leaves out are skipped, as in any run of it
    assert [c for c in cases if c[1] != ["skipped"]] == [("layout", ["failure"])]
    assert len(cases) == 1 + data["not_in_scope"]["undrawn"]
    page = (tmp_path / "r.html").read_text()
    assert "earlier run" not in page and html.escape(layout["message"]) in page


def test_code_whose_mistake_no_layout_fits_is_left_to_the_checks(module):
    """A transposed dW in non-square layers fits no layout: the checks report it as the
    code's own structure error, not as a layout to declare."""
    text = source("lists").replace("dWs[l - 1] = dZ @ A[l - 1].T", "dWs[l - 1] = A[l - 1] @ dZ.T")
    module("transposed_lists", text)
    code, out = check("--impl", "transposed_lists")
    assert code == 1
    assert "FAIL layout" not in out and "NOTE layout" not in out
    assert "(the shape of W=in_out)" in out


def test_where_any_bias_shape_runs_the_shape_of_the_bias_gradient_decides(module):
    """Code that reshapes b whatever it gets runs with every declared shape of b; it hands
    back db 1-D, so b=flat is what it is written for."""
    code = STYLES["in_out_flat"][1].replace("b[:, None]", "b.reshape(-1, 1)")
    impl = __import__(module("any_b", CORE + code))
    found = detect_layout(guard(impl), None, probe_problem(Scope()))
    assert found.layout == "W=in_out,b=flat", found
