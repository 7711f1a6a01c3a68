"""Models made of layer objects (reference/boundary/layer_objects.py): a ``LAYERS`` declaration
of at most three lines, no adapter code, and every check of the harness runs on them.

Each implementation here is written for these tests from the formulas, in one of the three
styles of ``backward`` that courses use: the gradients kept on the layer (samples as rows, W
(n_in, n_out)); the step applied inside ``backward(grad, learning_rate)`` (one sample as a
column, W (n_out, n_in)); the gradients handed to an optimizer object. Each is then broken
in one place, and the report must name the place.
"""

import io
import json

import numpy as np
import pytest

import backprop
from reference import check_gradients
from reference.boundary.guard import guard
from reference.boundary.layer_objects import LEARNING_RATES, serve_layers
from reference.boundary.loading import load_impl
from reference.frontends import cli
from reference.inputs.problems import Problem, random_problem, seed_problem
from reference.report.text import mistake_groups

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

KEEPS = """
import numpy as np

class Dense:  # samples as rows: x (m, n_in), W (n_in, n_out), b (1, n_out)
    def __init__(self, n_in, n_out):
        self.W = np.random.randn(n_in, n_out) * 0.1
        self.b = np.zeros((1, n_out))
    def forward(self, x):
        self.x = x
        return x @ self.W + self.b
    def backward(self, grad):
        self.dW = self.x.T @ grad
        self.db = grad.sum(axis=0, keepdims=True)
        return grad @ self.W.T

class Sigmoid:
    def forward(self, z):
        self.a = 1 / (1 + np.exp(-z))
        return self.a
    def backward(self, grad):
        return grad * self.a * (1 - self.a)

class Tanh:
    def forward(self, z):
        self.a = np.tanh(z)
        return self.a
    def backward(self, grad):
        return grad * (1 - self.a ** 2)

class ReLU:
    def forward(self, z):
        self.z = z
        return np.maximum(z, 0)
    def backward(self, grad):
        return grad * (self.z >= 0)

class MSE:
    def loss(self, y_pred, y_true):
        return np.sum((y_pred - y_true) ** 2) / (2 * len(y_true))
    def grad(self, y_pred, y_true):
        return (y_pred - y_true) / len(y_true)

class BCE:
    def loss(self, y_pred, y_true):
        return -np.sum(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)) / len(y_true)
    def grad(self, y_pred, y_true):
        return (-y_true / y_pred + (1 - y_true) / (1 - y_pred)) / len(y_true)

LAYERS = {"dense": Dense, "activations": {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU},
          "cost": {"mse": MSE, "bce": BCE}}
"""

STEPS = """
import numpy as np

class Dense:  # one sample as a column: x (n_in, 1), weights (n_out, n_in), bias (n_out, 1)
    def __init__(self, input_size, output_size):
        self.weights = np.random.randn(output_size, input_size)
        self.bias = np.random.randn(output_size, 1)
    def forward(self, input):
        self.input = input
        return np.dot(self.weights, self.input) + self.bias
    def backward(self, output_gradient, learning_rate):
        weights_gradient = np.dot(output_gradient, self.input.T)
        input_gradient = np.dot(self.weights.T, output_gradient)
        self.weights -= learning_rate * weights_gradient
        self.bias -= learning_rate * output_gradient
        return input_gradient

class Activation:
    def __init__(self, activation, activation_prime):
        self.activation, self.activation_prime = activation, activation_prime
    def forward(self, input):
        self.input = input
        return self.activation(input)
    def backward(self, output_gradient, learning_rate):
        return np.multiply(output_gradient, self.activation_prime(self.input))

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))

class Sigmoid(Activation):
    def __init__(self):
        super().__init__(_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x)))

class Tanh(Activation):
    def __init__(self):
        super().__init__(np.tanh, lambda x: 1 - np.tanh(x) ** 2)

def mse(y_true, y_pred):
    return np.mean(np.power(y_true - y_pred, 2))

def mse_prime(y_true, y_pred):
    return 2 * (y_pred - y_true) / np.size(y_true)

LAYERS = {"dense": Dense, "activations": {"sigmoid": Sigmoid, "tanh": Tanh},
          "cost": {"mse": (mse, mse_prime)}}
"""

OPTIMIZER = """
import copy
import numpy as np

class Dense:  # samples as rows, W (n_in, n_out), w0 (1, n_out); one optimizer per parameter
    def __init__(self, n_units, input_shape):
        self.n_units, self.input_shape = n_units, input_shape
    def initialize(self, optimizer):
        self.W = np.random.uniform(-1, 1, (self.input_shape[0], self.n_units))
        self.w0 = np.zeros((1, self.n_units))
        self.W_opt, self.w0_opt = copy.copy(optimizer), copy.copy(optimizer)
    def forward_pass(self, X):
        self.layer_input = X
        return X.dot(self.W) + self.w0
    def backward_pass(self, accum_grad):
        W = self.W
        grad_w = self.layer_input.T.dot(accum_grad)
        grad_w0 = np.sum(accum_grad, axis=0, keepdims=True)
        self.W = self.W_opt.update(self.W, grad_w)
        self.w0 = self.w0_opt.update(self.w0, grad_w0)
        return accum_grad.dot(W.T)

class Sigmoid:
    def forward_pass(self, X):
        self.a = 1 / (1 + np.exp(-X))
        return self.a
    def backward_pass(self, accum_grad):
        return accum_grad * self.a * (1 - self.a)

class SquareLoss:
    def loss(self, y, y_pred):
        return 0.5 * np.power(y - y_pred, 2)
    def gradient(self, y, y_pred):
        return -(y - y_pred)  # of the summed terms

LAYERS = {"dense": lambda n_in, n_out: Dense(n_out, (n_in,)), "optimizer": "initialize",
          "methods": ("forward_pass", "backward_pass"), "activations": {"sigmoid": Sigmoid},
          "cost": {"mse": SquareLoss}}
"""
SOURCES = {"keeps": KEEPS, "steps": STEPS, "optimizer": OPTIMIZER}


def declaration_lines(source: str) -> int:
    """The lines the declaration takes: from ``LAYERS =`` to the end of the module."""
    lines = source.strip().splitlines()
    return len(lines) - next(k for k, t in enumerate(lines) if t.startswith("LAYERS ="))


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write a module and return a loaded implementation of it (served from LAYERS)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str):
        (tmp_path / f"{name}.py").write_text(source)
        return load_impl(name)

    return write


def problems(impl, count: int = 6):
    """The seed's network and random ones inside the implementation's declared scope."""
    scope = impl.SUPPORTS
    rng = np.random.default_rng(1)
    out = []
    while len(out) < count:
        p = random_problem(rng, depth=(1, 3), width=(1, 4), samples=(2, 5))
        if p.cost in scope["costs"] and all(a in scope["activations"] for a in p.activations):
            out.append(p)
    return out


def check(impl, p):
    return check_gradients(
        impl, p.params, p.X, p.Y, activations=p.activations, cost=p.cost, layer_view=True
    )


@pytest.mark.parametrize("style", SOURCES)
def test_each_style_passes_with_a_declaration_of_at_most_three_lines(module, style):
    assert declaration_lines(SOURCES[style]) <= 3
    impl = module(f"right_{style}", SOURCES[style])
    for p in problems(impl):
        report = check(impl, p)
        assert report.ok, (style, p.name, report.summary, report.finding)


def test_the_scope_is_what_the_declaration_names(module):
    impl = module("scoped", KEEPS)
    assert set(impl.SUPPORTS["activations"]) == {"sigmoid", "tanh", "relu"}
    assert set(impl.SUPPORTS["costs"]) <= set(backprop.COSTS)


def test_what_the_probe_detects_in_each_style(module):
    found = {s: module(f"probed_{s}", src).probe() for s, src in SOURCES.items()}
    assert found["keeps"]["orientation"] == "in_out"
    assert found["keeps"]["samples"] == "rows"
    assert found["keeps"]["grads"] == (("dW",), ("db",))
    assert found["steps"]["orientation"] == "out_in"
    assert found["steps"]["samples"] == "column"  # its bias step takes one column at a time
    assert found["steps"]["grads"] == "step"
    assert found["optimizer"]["grads"] == "optimizer"


def test_the_cli_checks_a_layer_module_in_its_worker(module, tmp_path):
    module("cli_keeps", KEEPS)
    report = tmp_path / "r.json"
    out = io.StringIO()
    code = cli.main(["--impl", "cli_keeps", "--networks", "2", "--json", str(report)], out=out)
    assert code == 0, out.getvalue()
    assert "cli_keeps (layer objects)" in out.getvalue()


# -- planted mistakes ---------------------------------------------------------------------


def test_a_wrong_activation_derivative_in_one_class_is_blamed_on_its_layers(module):
    broken = KEEPS.replace("grad * (1 - self.a ** 2)", "grad * (1 - self.a)")
    impl = module("wrong_tanh", broken)
    p = seed_problem(("tanh", "sigmoid", "sigmoid"), "mse")
    report = check(impl, p)
    assert not report.ok and report.attribution == "backward"
    tanh_layers = [l for l, g in enumerate(p.activations, start=1) if g == "tanh"]
    failing = {c.layer for c in report.layers if not c.ok}
    assert failing and max(failing) == max(tanh_layers)  # wrong from the tanh layer down


def test_a_missing_transpose_names_the_layer_object_and_its_attribute(module):
    broken = KEEPS.replace("self.dW = self.x.T @ grad", "self.dW = grad.T @ self.x")
    impl = module("no_transpose", broken)
    p = seed_problem(("tanh", "tanh", "sigmoid"), "mse")
    report = check(impl, p)
    assert not report.ok
    message = report.finding["message"]
    assert "layers[0] (Dense).dW has shape (3, 2), W is (2, 3)" in message
    assert "missing transpose" in message


@pytest.mark.parametrize("style", ["steps", "optimizer"])
def test_reading_the_weights_after_updating_them_is_diagnosed_in_those_words(module, style):
    if style == "steps":
        broken = STEPS.replace(
            "        input_gradient = np.dot(self.weights.T, output_gradient)\n", ""
        ).replace(
            "        return input_gradient",
            "        return np.dot(self.weights.T, output_gradient)",
        )
    else:
        broken = OPTIMIZER.replace("return accum_grad.dot(W.T)", "return accum_grad.dot(self.W.T)")
    assert broken != SOURCES[style]
    impl = module(f"stale_{style}", broken)
    p = seed_problem(("sigmoid", "sigmoid", "sigmoid"), "mse")
    report = check(impl, p)
    assert not report.ok
    message = report.finding["message"]
    L = len(p.params)
    top = 2 * (L - 1)  # the output layer's Dense: the first, from the top, to pass a gradient down
    assert "reads the weights after updating them" in message
    assert f"layers[{top}] (Dense)" in message
    assert f"{LEARNING_RATES[1]:g}" in message


def test_one_class_s_mistake_at_different_layers_is_one_mistake_in_the_report(module):
    """The stale read shows first at the output layer's Dense, whose index is 2 (L - 1): the
    networks of two depths name two indices, and the report groups them as one mistake."""
    broken = OPTIMIZER.replace("return accum_grad.dot(W.T)", "return accum_grad.dot(self.W.T)")
    impl = module("stale_depths", broken)
    rng = np.random.default_rng(0)
    two = Problem(
        [(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
         (rng.normal(size=(1, 3)), rng.normal(size=(1, 1)))],
        rng.normal(size=(2, 4)), rng.uniform(size=(1, 4)), ["sigmoid", "sigmoid"], "mse",
    )  # fmt: skip
    problems = [two, seed_problem(("sigmoid",) * 3, "mse")]
    failing = [(p, check(impl, p)) for p in problems]
    summaries = {r.summary for _, r in failing}
    assert len(summaries) == 2 and all("layers[" in s for s in summaries), summaries
    assert [len(group) for group in mistake_groups(failing)] == [2]


def test_a_step_with_the_wrong_sign_is_a_wrong_gradient(module):
    broken = STEPS.replace("self.weights -= learning_rate", "self.weights += learning_rate")
    impl = module("wrong_sign", broken)
    report = check(impl, seed_problem(("tanh", "tanh", "sigmoid"), "mse"))
    failing = [c for c in report.layers if not c.ok]
    assert not report.ok and failing and all(c.param == "W" for c in failing)


def test_the_guard_sees_the_served_protocol_unchanged(module):
    impl = module("guarded", KEEPS)
    p = seed_problem(("tanh", "tanh", "sigmoid"), "bce")
    g = guard(impl)
    A = g.forward(p.params, p.X, activations=p.activations)
    assert A.shape == p.Y.shape
    grads = g.gradients(p.params, p.X, p.Y, activations=p.activations, cost=p.cost)
    assert [dW.shape for dW, _ in grads] == [W.shape for W, _ in p.params]
    assert json.dumps(impl.SUPPORTS)  # plain data, as the worker sends it


# -- bad declarations ---------------------------------------------------------------------


def test_a_declaration_naming_a_missing_class_says_which_key(module):
    with pytest.raises(ValueError, match=r"LAYERS\['dense'\] names 'nowhere.Dense'"):
        serve_layers({"dense": "nowhere.Dense", "activations": {}, "cost": {}})


def test_an_unknown_or_missing_key_is_named():
    with pytest.raises(ValueError, match=r"unknown keys 'dens'.*lacks 'dense'"):
        serve_layers({"dens": object, "activations": {"tanh": object}, "cost": {"mse": 0}})


def test_a_layer_class_without_forward_is_a_type_error_naming_it():
    class Dense:
        def backward(self, grad):
            return grad

    with pytest.raises(TypeError, match=r"LAYERS\['dense'\] is the class Dense, which has no "
                                        r"forward\(\)"):  # fmt: skip
        serve_layers({"dense": Dense, "activations": {"tanh": Dense}, "cost": {"mse": (0, 0)}})


def test_an_activation_name_outside_the_tables_is_refused():
    class Layer:
        def forward(self, x):
            return x

        def backward(self, g):
            return g

    with pytest.raises(ValueError, match=r"LAYERS\['activations'\] has 'sigmod'"):
        serve_layers({"dense": Layer, "activations": {"sigmod": Layer}, "cost": {"mse": (0, 0)}})


def test_a_cost_whose_argument_order_cannot_be_read_asks_for_it(module):
    source = KEEPS.replace("def loss(self, y_pred, y_true)", "def loss(self, u, v)").replace(
        "def grad(self, y_pred, y_true)", "def grad(self, u, v)"
    )
    impl = module("unordered", source)
    p = seed_problem(("tanh", "tanh", "sigmoid"), "mse")
    report = check(impl, p)
    assert not report.ok
    assert "cost_args" in str(report.finding)
