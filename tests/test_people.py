"""Code as people write it, checked as they would check it.

One small implementation per situation, each written here independently (none calls
``backprop``), each declared in a few lines: a sigmoid-only one of a single sample with a
quadratic cost without the 1/2, a relu/sigmoid one with dict parameters, one output unit and
relu'(0) = 0, a rows-layout one with mse averaged over everything and an in-place update, a
cross-entropy taken as log(A), and a float32 one. Each right one exits 0 from
``backprop-check`` with its conventions and warnings listed, and 1 under ``--strict`` where it
has any; each with one planted gradient mistake exits 1 with the right layer and parameter
blamed; and the shipped property suite agrees with the command on both.
"""

import json
import textwrap

import pytest
from background import once
from shipped import shipped_suite_command
from tiers import first_quick

from reference.frontends import cli

PEOPLE = {
    "per_sample_sigmoid": dict(
        source="""
        import numpy as np

        SUPPORTS = {"layout": "samples", "activations": ["sigmoid"],
                    "output_activations": ["sigmoid"], "costs": ["mse"]}

        def _sigmoid(z):
            return 1.0 / (1.0 + np.exp(-z))

        def _forward(params, x):
            activations = [x]
            for W, b in params:
                activations.append(_sigmoid(W @ activations[-1] + b))
            return activations

        def loss(params, x, y, *, activations, cost):
            return float(np.sum((_forward(params, x)[-1] - y) ** 2))  # no 1/2

        def gradients(params, x, y, *, activations, cost):
            a = _forward(params, x)
            delta = 2 * (a[-1] - y) * a[-1] * (1 - a[-1])
            nabla = []
            for l in range(len(params), 0, -1):
                nabla.insert(0, (delta @ a[l - 1].T, delta))
                if l > 1:
                    delta = (params[l - 1][0].T @ delta) * a[l - 1] * (1 - a[l - 1])
            return nabla
        """,
        says=["NOTE cost: the cost is 2 times the seed's (without the 1/2)"],
        mistake=("nabla.insert(0, (delta @ a[l - 1].T, delta))",
                 "nabla.insert(0, (delta @ a[l - 1].T, delta if l != 2 else 2 * delta))"),
        blamed=(2, "b"),
    ),
    "dict_relu_sigmoid": dict(
        source="""
        import numpy as np

        SUPPORTS = {"layout": "dicts", "activations": ["relu"], "output_activations": ["sigmoid"],
                    "costs": ["bce"], "outputs": [1]}

        def _forward(parameters, X):
            L = len(parameters) // 2
            cache = {"A0": X}
            for l in range(1, L + 1):
                Z = parameters[f"W{l}"] @ cache[f"A{l - 1}"] + parameters[f"b{l}"]
                cache[f"Z{l}"] = Z
                cache[f"A{l}"] = 1 / (1 + np.exp(-Z)) if l == L else np.maximum(0, Z)
            return cache, L

        def loss(parameters, X, Y, *, activations, cost):
            cache, L = _forward(parameters, X)
            Z = cache[f"Z{L}"]
            return float(np.sum(np.logaddexp(0, Z) - Y * Z) / X.shape[1])

        def gradients(parameters, X, Y, *, activations, cost):
            cache, L = _forward(parameters, X)
            m = X.shape[1]
            grads, dZ = {}, (cache[f"A{L}"] - Y) / m
            for l in range(L, 0, -1):
                grads[f"dW{l}"] = dZ @ cache[f"A{l - 1}"].T
                grads[f"db{l}"] = np.sum(dZ, axis=1, keepdims=True)
                if l > 1:
                    dZ = (parameters[f"W{l}"].T @ dZ) * (cache[f"Z{l - 1}"] > 0)
            return grads
        """,
        says=["NOTE relu'(0): fixed: relu'(0) = 0 (JAX's and PyTorch's choice)"],
        mistake=('grads[f"dW{l}"] = dZ @ cache[f"A{l - 1}"].T',
                 'grads[f"dW{l}"] = dZ @ cache[f"A{l - 1}"].T * (2 if l == 1 else 1)'),
        blamed=(1, "W"),
    ),
    "rows_mse_in_place": dict(
        source="""
        import numpy as np

        SUPPORTS = {"layout": "rows", "costs": ["mse"], "activations": ["tanh"],
                    "output_activations": ["tanh", "sigmoid"]}

        _G = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z))}
        _DG = {"tanh": lambda a: 1 - a * a, "sigmoid": lambda a: a * (1 - a)}

        def _forward(params, X, activations):
            outs = [X]
            for (W, b), g in zip(params, activations):
                outs.append(_G[g](outs[-1] @ W + b))
            return outs

        def loss(params, X, Y, *, activations, cost):
            return float(np.mean((_forward(params, X, activations)[-1] - Y) ** 2))

        def gradients(params, X, Y, *, activations, cost):
            outs = _forward(params, X, activations)
            d = 2 * (outs[-1] - Y) / Y.size * _DG[activations[-1]](outs[-1])
            grads = []
            for l in range(len(params), 0, -1):
                grads.insert(0, (outs[l - 1].T @ d, d.sum(axis=0, keepdims=True)))
                if l > 1:
                    d = (d @ params[l - 1][0].T) * _DG[activations[l - 2]](outs[l - 1])
            return grads

        def update(params, grads, learning_rate):
            for (W, b), (dW, db) in zip(params, grads):
                W -= learning_rate * dW
                b -= learning_rate * db
        """,
        says=["NOTE cost: the cost is", "averaged over the outputs", "NOTE update:"],
        mistake=("d.sum(axis=0, keepdims=True)))", "d.sum(axis=0, keepdims=True) * 3))"),
        blamed=(None, "b"),
    ),
    "log_a_cross_entropy": dict(
        source="""
        import numpy as np

        SUPPORTS = {"activations": ["tanh"], "output_activations": ["sigmoid"], "costs": ["bce"]}

        def _forward(params, X):
            As = [X]
            for l, (W, b) in enumerate(params, start=1):
                Z = W @ As[-1] + b
                As.append(1 / (1 + np.exp(-Z)) if l == len(params) else np.tanh(Z))
            return As

        def loss(params, X, Y, *, activations, cost):
            A = _forward(params, X)[-1]
            return float(-np.mean(np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A), axis=0)))

        def gradients(params, X, Y, *, activations, cost):
            As = _forward(params, X)
            A, m = As[-1], X.shape[1]
            dA = (-Y / A + (1 - Y) / (1 - A)) / m
            dZ = dA * A * (1 - A)
            out = []
            for l in range(len(params), 0, -1):
                out.append((dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
                if l > 1:
                    dZ = (params[l - 1][0].T @ dZ) * (1 - As[l - 1] ** 2)
            return out[::-1]
        """,
        says=["WARN saturation:", "logaddexp(0, Z) - Y Z"],
        mistake=("dZ = dA * A * (1 - A)", "dZ = dA * A * (1 - A) * A * (1 - A)"),
        blamed=(None, None),
    ),
    "float32": dict(
        source="""
        import numpy as np

        SUPPORTS = {"dtype": "float32", "activations": ["tanh", "relu"],
                    "output_activations": ["tanh", "sigmoid"], "costs": ["mse"]}
        _G = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, np.float32(0)),
              "sigmoid": lambda z: np.float32(1) / (np.float32(1) + np.exp(-z))}

        def _derivative(name, z, a):
            if name == "tanh":
                return np.float32(1) - a * a
            if name == "relu":
                return (z >= 0).astype(np.float32)
            return a * (np.float32(1) - a)

        def _forward(params, X, activations):
            Zs, As = [], [X.astype(np.float32)]
            for (W, b), g in zip(params, activations):
                Zs.append(W.astype(np.float32) @ As[-1] + b.astype(np.float32))
                As.append(_G[g](Zs[-1]))
            return Zs, As

        def loss(params, X, Y, *, activations, cost):
            A = _forward(params, X, activations)[1][-1]
            return np.float32(0.5) * np.sum((A - Y.astype(np.float32)) ** 2) / np.float32(X.shape[1])

        def gradients(params, X, Y, *, activations, cost):
            Zs, As = _forward(params, X, activations)
            m = np.float32(X.shape[1])
            dZ = (As[-1] - Y.astype(np.float32)) / m * _derivative(activations[-1], Zs[-1], As[-1])
            out = []
            for l in range(len(params), 0, -1):
                out.append((dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
                if l > 1:
                    W = params[l - 1][0].astype(np.float32)
                    dZ = (W.T @ dZ) * _derivative(activations[l - 2], Zs[l - 2], As[l - 1])
            return out[::-1]
        """,
        says=["float32"],
        mistake=("out.append((dZ @ As[l - 1].T,", "out.append((dZ @ As[l - 1].T * (1 + (l == 1)),"),
        blamed=(1, "W"),
    ),
}  # fmt: skip


def write(folder, name):
    """Write a person's module (and its mistaken copy) into ``folder``."""
    case = PEOPLE[name]
    source = textwrap.dedent(case["source"])
    (folder / f"{name}_ok.py").write_text(source)
    old, new = case["mistake"]
    assert old in source, "the planted mistake must change the code"
    (folder / f"{name}_bad.py").write_text(source.replace(old, new))
    return case


@pytest.fixture
def person(tmp_path, monkeypatch):
    """Write a person's module (and its mistaken copy) into a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return lambda name: write(tmp_path, name)


def check(*argv, tmp_path):
    import io

    out = io.StringIO()
    report = tmp_path / "r.json"
    code = cli.main(["--networks", "4", "--json", str(report), *argv], out=out)
    return code, out.getvalue(), json.loads(report.read_text())


@pytest.mark.parametrize("name", first_quick(sorted(PEOPLE)))
def test_right_by_its_own_conventions_it_passes_and_says_how(person, tmp_path, name):
    case = person(name)
    code, text, data = check("--in-process", "--impl", f"{name}_ok", tmp_path=tmp_path)
    assert code == 0, text
    for phrase in case["says"]:
        assert phrase in text or phrase in json.dumps(data), (phrase, text)
    assert len(data["networks"]) >= 4  # the random networks were drawn inside its scope
    if name != "float32":  # float32 is a precision, not a convention
        assert check("--in-process", "--impl", f"{name}_ok", "--strict", tmp_path=tmp_path)[0] == 1
    else:
        assert all(n["precision"] == "float32" for n in data["networks"])


@pytest.mark.parametrize("name", first_quick(sorted(PEOPLE)))
def test_with_one_planted_mistake_it_fails_and_the_right_place_is_blamed(person, tmp_path, name):
    case = person(name)
    code, text, data = check("--in-process", "--impl", f"{name}_bad", tmp_path=tmp_path)
    assert code == 1, text
    layer, param = case["blamed"]
    failing = [n for n in data["networks"] if not n["ok"]]
    assert failing, text
    for network in failing:
        bad = {(row["layer"], row["param"]) for row in network["layers"] if not row["ok"]}
        if layer is not None:
            assert (layer, param) in bad, network["summary"]
        elif param is not None:
            assert {p for _, p in bad} == {param}, network["summary"]


def test_the_worker_gives_the_same_verdicts(person, tmp_path):
    """One of them through the isolated worker, as a user runs it."""
    person("dict_relu_sigmoid")
    assert check("--impl", "dict_relu_sigmoid_ok", tmp_path=tmp_path)[0] == 0
    assert check("--impl", "dict_relu_sigmoid_bad", tmp_path=tmp_path)[0] == 1


def shipped_runs(item, root):
    """The shipped suite on a person's right code and on its mistaken copy (``-x``), in a
    folder that holds the two, outside the clone."""
    name = item.callspec.params["name"]
    where = root / f"people-{name}"
    prepare = once(lambda: (where.mkdir(), write(where, name)))
    return {
        ("people", name, "ok"): shipped_suite_command(where, f"{name}_ok", prepare=prepare),
        ("people", name, "bad"): shipped_suite_command(where, f"{name}_bad", "-x", prepare=prepare),
    }


@pytest.mark.background(declare=shipped_runs)
@pytest.mark.parametrize("name", first_quick(sorted(PEOPLE)))
def test_the_shipped_suite_agrees_with_the_command(background, name):
    good, bad = (
        background.result(("people", name, "ok")),
        background.result(("people", name, "bad")),
    )
    assert good.returncode == 0, good.stdout[-3000:]
    assert bad.returncode == 1, bad.stdout[-3000:]
