"""Plain functions as the implementation: what a notebook cell defines, checked with no module."""

import inspect
import json
import linecache
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import backprop
import reference
import reference.boundary.guard
import reference.boundary.isolation
from reference.boundary.loading import OPTIONAL, REQUIRED, ProtocolError
from reference.judging import checks

PROBLEM = reference.seed_problem()
DOUBLED = (len(PROBLEM.params), "W")
"""The parameter the wrong pair below gets wrong: the output layer's dW, doubled."""


def loss(params, X, Y, *, activations, cost):
    """J from the seed's formulas (samples as columns), through backprop's tables; bce on a
    sigmoid from the logits, J = mean(logaddexp(0, Z) - Y Z), so that it saturates well."""
    A = X
    for (W, b), name in zip(params, activations):
        Z = W @ A + b
        A = backprop.ACTIVATIONS[name].fn(Z)
    if cost == "bce" and activations[-1] == "sigmoid":
        return float(np.sum(np.logaddexp(0.0, Z) - Y * Z) / X.shape[1])
    return float(backprop.COSTS[cost].fn(A, Y))


def gradients(params, X, Y, *, activations, cost):
    """The seed's backward pass: dZ^L = dJ/dA^L * g'(Z^L), dZ^l = W^(l+1)^T dZ^(l+1) * g'(Z^l),
    dW^l = dZ^l A^(l-1)^T, db^l = the sum of dZ^l over the columns."""
    As, Zs = [X], []
    for (W, b), name in zip(params, activations):
        Zs.append(W @ As[-1] + b)
        As.append(backprop.ACTIVATIONS[name].fn(Zs[-1]))
    g = [backprop.ACTIVATIONS[n].grad(z, a) for n, z, a in zip(activations, Zs, As[1:])]
    if cost == "bce" and activations[-1] == "sigmoid":  # the fused form: finite when saturated
        dZ = (As[-1] - Y) / X.shape[1]
    else:
        dZ = backprop.COSTS[cost].grad(As[-1], Y) * g[-1]
    grads = []
    for l in range(len(params), 0, -1):
        grads.insert(0, (dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
        if l > 1:
            dZ = params[l - 1][0].T @ dZ * g[l - 2]
    return grads


def doubled_gradients(params, X, Y, *, activations, cost):
    """``gradients`` with the output layer's dW doubled."""
    grads = gradients(params, X, Y, activations=activations, cost=cost)
    dW, db = grads[-1]
    return [*grads[:-1], (2 * dW, db)]


def transpose_forgotten(params, X, Y, *, activations, cost):
    """The hidden delta without W's transpose: a shape error in a non-square layer."""
    dZ = np.ones((params[-1][0].shape[0], X.shape[1]))
    return params[-1][0] @ dZ  # the mistake: (W^L)^T dZ^L was meant


def check(impl):
    return reference.check_gradients(impl, PROBLEM.params, PROBLEM.X, PROBLEM.Y, **PROBLEM.kwargs())


FORMS = {
    "pair": lambda lo, gr: (lo, gr),
    "list": lambda lo, gr: [lo, gr],
    "dict": lambda lo, gr: {"loss": lo, "gradients": gr},
    "namespace": lambda lo, gr: SimpleNamespace(loss=lo, gradients=gr),
}


@pytest.mark.parametrize("form", FORMS)
def test_correct_functions_pass_in_every_form(form):
    report = check(FORMS[form](loss, gradients))
    assert report.ok, report.render()
    assert report.layers  # the table was made: the functions were called, not skipped


@pytest.mark.parametrize("form", FORMS)
def test_a_wrong_gradient_fails_at_the_parameter_it_gets_wrong(form):
    report = check(FORMS[form](loss, doubled_gradients))
    assert not report.ok
    assert [(c.layer, c.param) for c in report.failing()] == [DOUBLED]
    assert report.attribution == "backward"


def test_the_report_is_named_after_the_functions():
    assert check((loss, gradients)).impl == "functions loss, gradients"


def test_a_mistake_that_raises_points_at_the_line_in_this_file():
    report = check((loss, transpose_forgotten))
    lines, first = inspect.getsourcelines(transpose_forgotten)
    line = first + next(k for k, text in enumerate(lines) if "the mistake" in text)
    where = report.finding["where"]
    assert (where["file"], where["line"]) == (__file__, line)
    assert where["function"] == "transpose_forgotten"
    assert f"{__file__}:{line}" in report.summary
    assert "a missing transpose?" in report.summary


def test_a_dict_gives_the_optional_members_to_every_check():
    impl = {"loss": loss, "gradients": gradients, "update": backprop.update,
            "forward": backprop.forward}  # fmt: skip
    guarded = reference.boundary.guard.guard(impl)
    assert all(guarded.has(m) for m in (*REQUIRED, *OPTIONAL))
    results = checks.run_all(impl, PROBLEM)
    name = next(k for k, fn in checks.PROBLEM_CHECKS.items() if fn is checks.update_rule)
    update_rule = next(r for r in results if r.name == name)
    assert update_rule.ok is True, update_rule.message
    assert not [r for r in results if r.is_error], [r.message for r in results if r.is_error]


def test_a_wrong_update_given_in_a_dict_is_caught():
    def update(params, grads, learning_rate):
        return [(W + learning_rate * dW, b + learning_rate * db)
                for (W, b), (dW, db) in zip(params, grads)]  # fmt: skip

    impl = {"loss": loss, "gradients": gradients, "update": update}
    assert checks.update_rule(impl, PROBLEM).ok is False


@pytest.mark.parametrize("missing", REQUIRED)
@pytest.mark.parametrize("form", ["dict", "namespace"])
def test_a_missing_member_is_a_type_error_naming_it(form, missing):
    members = {"loss": loss, "gradients": gradients}
    del members[missing]
    impl = members if form == "dict" else SimpleNamespace(**members)
    with pytest.raises(TypeError, match=repr(missing)):
        check(impl)


@pytest.mark.parametrize(
    "impl, says",
    [
        ((loss,), "must be the pair (loss, gradients), got 1 item"),
        ((loss, gradients, gradients), "got 3 items"),
        ((loss, 3), "gradients is of type int, not a function"),
        ({"loss": loss, "gradient": gradients}, "'gradient', which the protocol does not know"),
        ({"loss": loss, "gradients": gradients, "update": "sgd"}, "update is of type str"),
        ("mycourse.backprop", "load a module path with load_impl('mycourse.backprop')"),
        (None, "the NoneType given as the implementation"),
    ],
)
def test_anything_else_is_a_type_error_saying_what_is_wrong(impl, says):
    with pytest.raises(ProtocolError) as info:
        check(impl)
    assert isinstance(info.value, TypeError)
    assert says in str(info.value)


def test_the_worker_needs_a_module_path_and_says_so():
    with pytest.raises(TypeError, match="cannot travel there; check them in this process"):
        reference.boundary.isolation.Worker((loss, gradients))


def test_exec_compiled_code_is_named_by_its_function_and_line():
    """Code with no file on disk (``exec``, ``python -c``) names the function beside the
    line; the line's text comes from linecache when the compiler registered it there."""
    source = (
        "def gradients(params, X, Y, *, activations, cost):\n"
        "    raise ValueError('not yet written')\n"
    )
    name = "<notebook cell>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    try:
        namespace = {}
        exec(compile(source, name, "exec"), namespace)
        report = check((loss, namespace["gradients"]))
    finally:
        del linecache.cache[name]
    where = report.finding["where"]
    assert (where["file"], where["line"], where["function"]) == (name, 2, "gradients")
    assert f"(at {name}:2, in gradients: raise ValueError('not yet written'))" in report.summary


_CELL = """
import json, reference
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell('x = 1')
shell.run_cell('''def gradients(params, X, Y, *, activations, cost):
    raise ValueError("not yet written")
''')
p = reference.seed_problem()
impl = (lambda params, X, Y, *, activations, cost: 0.0, shell.user_ns["gradients"])
report = reference.check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())
print(json.dumps({"where": report.finding["where"], "summary": report.summary}))
"""


def test_a_notebook_cell_is_named_as_ipython_names_it():
    """Run in a fresh interpreter, so that the IPython shell stays out of this one."""
    pytest.importorskip("IPython")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(  # timeout: a safety net, generous enough for a machine at load 8
        [sys.executable, "-c", _CELL], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["where"]["cell"] is True
    assert seen["where"]["file"].startswith("In[")  # not IPython's made-up file name
    assert seen["where"]["line"] == 2
    assert seen["where"]["code"] == 'raise ValueError("not yet written")'
    assert f"in cell {seen['where']['file']}, line 2, in gradients" in seen["summary"]
