"""What the boundary sees besides the arrays: the containers the arguments come in, and the
precision of results that are not NumPy arrays.

The purity check compares every argument before and after a call. An argument is more than
its arrays: the ``params`` list (an entry appended, an entry replaced) and the keywords
(``activations``, a list the caller keeps) are the caller's too. And an implementation that
computes in float32 is judged at float32 whatever array type it returns: JAX arrays carry a
NumPy dtype the guard reads without importing JAX.
"""

from __future__ import annotations

import textwrap
import types

import numpy as np
import pytest

import backprop
from reference.boundary.guard import PRECISIONS, guard, result_precision
from reference.boundary.isolation import Worker
from reference.inputs.problems import seed_problem
from reference.judging import checks
from reference.judging.checker import check_gradients

MUTATIONS = {
    "appends to params": "params.append(params[-1])",
    "removes a layer of params": "params.pop()",
    "replaces an entry of params": "params[0] = (params[0][0] * 2, params[0][1])",
    "swaps an entry of params for a list": "params[0] = list(params[0])",
    "overwrites an entry of activations": "activations[0] = 'relu'",
    "appends to activations": "activations.append('sigmoid')",
}
"""What a ``gradients`` does to the caller's containers, with the line that does it."""

SAYS = {
    "appends to params": "gradients changed params in place (the list of 3 layers it was given "
    "now holds 4: an entry appended)",
    "removes a layer of params": "now holds 2: an entry removed",
    "replaces an entry of params": "gradients changed layer 1's W in place",
    "swaps an entry of params for a list": "gradients changed layer 1's entry of params in "
    "place (a tuple of 2 replaced by a list of 2)",
    "overwrites an entry of activations": "gradients changed activations in place (['tanh', "
    "'tanh', 'sigmoid'] became ['relu', 'tanh', 'sigmoid'])",
    "appends to activations": "gradients changed activations in place",
}


def _source(line: str) -> str:
    return textwrap.dedent(f"""
        import backprop

        def loss(params, X, Y, *, activations, cost):
            return backprop.loss(params, X, Y, activations=activations, cost=cost)

        def gradients(params, X, Y, *, activations, cost):
            grads = backprop.gradients(params, X, Y, activations=activations, cost=cost)
            {line}
            return grads
        """)


def _module(line: str) -> types.ModuleType:
    module = types.ModuleType("mutating")
    exec(compile(_source(line), "mutating.py", "exec"), module.__dict__)
    return module


def _problem():
    return seed_problem(("tanh", "tanh", "sigmoid"), "bce")


@pytest.mark.parametrize("what", sorted(MUTATIONS))
def test_a_gradients_that_changes_a_container_fails_purity(what):
    result = checks.purity(_module(MUTATIONS[what]), _problem())
    assert (result.name, result.ok, result.severity) == ("purity", False, "error")
    assert SAYS[what] in result.message, result.message


def test_the_network_check_names_the_change_too():
    p = _problem()
    report = check_gradients(_module(MUTATIONS["appends to params"]), p.params, p.X, p.Y,
                             **p.kwargs())  # fmt: skip
    assert not report.ok and report.attribution == "boundary", report.render()
    assert any("an entry appended" in f for f in report.findings), report.findings


def test_an_honest_gradients_passes_purity():
    assert checks.purity(_module("pass"), _problem()).ok is True
    assert checks.purity(backprop, _problem()).ok is True


@pytest.mark.parametrize("what", ["appends to params", "overwrites an entry of activations"])
def test_the_worker_sees_the_same_changes(tmp_path, what):
    """The worker sends back what the member did to its copies of the positional arguments
    and of the keywords; the guard here compares them as it does in one process."""
    path = tmp_path / "mutating_in_worker.py"
    path.write_text(_source(MUTATIONS[what]))
    with Worker(str(path)) as worker:
        result = worker.run(checks.purity, _problem())
    assert result.ok is False and SAYS[what] in result.message, result.message
    honest = tmp_path / "honest_in_worker.py"
    honest.write_text(_source("pass"))
    with Worker(str(honest)) as worker:
        assert worker.run(checks.purity, _problem()).ok is True


# --- float32 results that are not NumPy arrays ---------------------------------------------


class _Carrier:
    """An array type of its own that carries a NumPy dtype (as JAX's arrays do)."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.dtype = a.dtype
        self.shape = a.shape

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_precision_of_any_array_with_a_numpy_dtype_is_read(precision):
    one = _Carrier(np.ones((2, 2), dtype=precision))
    assert result_precision([(one, one)]) == precision
    assert result_precision(_Carrier(np.float32(1.0))) in ("float32",)
    assert result_precision([(np.ones(2), object())]) == "float64"


def _jax_float32():
    """A correct implementation computing in float32 and returning JAX arrays."""
    jnp = pytest.importorskip("jax.numpy")

    def loss(params, X, Y, *, activations, cost):
        p32 = [(W.astype(np.float32), b.astype(np.float32)) for W, b in params]
        J = backprop.loss(p32, X.astype(np.float32), Y.astype(np.float32),
                          activations=activations, cost=cost)  # fmt: skip
        return jnp.asarray(J, dtype=jnp.float32)

    def gradients(params, X, Y, *, activations, cost):
        g = backprop.gradients(params, X, Y, activations=activations, cost=cost)
        return [(jnp.asarray(dW, jnp.float32), jnp.asarray(db, jnp.float32)) for dW, db in g]

    return types.SimpleNamespace(__name__="jax_float32", loss=loss, gradients=gradients)


def test_float32_jax_arrays_are_judged_at_float32():
    impl = _jax_float32()
    p = _problem()
    report = check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok and report.precision == "float32", report.render()
    guarded = guard(impl)
    guarded.gradients(p.params, p.X, p.Y, **p.kwargs())
    assert guarded.last_precision == "float32"
    assert checks.batch_mean(guarded, p).ok is True


JAX_FLOAT32_SOURCE = """
import numpy as np
import jax.numpy as jnp
import backprop

def loss(params, X, Y, *, activations, cost):
    return jnp.asarray(backprop.loss(params, X, Y, activations=activations, cost=cost),
                       dtype=jnp.float32)

def gradients(params, X, Y, *, activations, cost):
    g = backprop.gradients(params, X, Y, activations=activations, cost=cost)
    return [(jnp.asarray(dW, jnp.float32), jnp.asarray(db, jnp.float32)) for dW, db in g]
"""


def test_float32_jax_arrays_are_judged_at_float32_through_the_worker(tmp_path):
    pytest.importorskip("jax")
    path = tmp_path / "jax_float32_in_worker.py"
    path.write_text(JAX_FLOAT32_SOURCE)
    p = _problem()
    with Worker(str(path)) as worker:
        report = worker.run(lambda impl: check_gradients(impl, p.params, p.X, p.Y,
                                                         **p.kwargs()))  # fmt: skip
    assert report.ok and report.precision == "float32", report.render()
