"""Hostile and unusual implementations: each gets the verdict and the message it must get.

``CLI_CATALOG`` is run through ``backprop-check`` as a user would (a module in the current
directory, an isolated worker): 0 for correct ones, 1 for broken ones, 2 where the module
cannot be loaded; never a traceback, never silence, never a hang. The API cases below it go
through ``reference.check_gradients`` and the checks directly.
"""

import inspect
import json
import os
import re
import sys
import textwrap
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from background import Command, once

import backprop
from reference import check_gradients
from reference.frontends import cli
from reference.inputs import networks as default_networks
from reference.inputs.problems import seed_problem
from reference.inputs.validate import ProblemError
from reference.judging import checks
from reference.judging.outcome import Outcome
from reference.report import junit
from reference.run import golden

CORRECT = """
import numpy as np
import backprop

def loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, Y, activations=activations, cost=cost)

def gradients(params, X, Y, *, activations, cost):
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)
"""

HANG_ON = "activations == ['relu', 'relu', 'relu'] and cost == 'mse'"


def _impl(body: str) -> str:
    return CORRECT + textwrap.dedent(body)


CLI_CATALOG = {
    # name: (module source, exit status, what the output must say)
    "exits_zero": (
        _impl("""
        import sys
        def gradients(params, X, Y, *, activations, cost):
            sys.exit(0)
        """),
        1,
        r"gradients called sys\.exit\(0\) \(at .*exits_zero\.py:\d+: sys\.exit\(0\)\)",
    ),
    "os_exit": (
        _impl("""
        import os
        def gradients(params, X, Y, *, activations, cost):
            os._exit(0)
        """),
        1,
        r"gradients called os\._exit\(0\)",
    ),
    "segfault": (
        _impl("""
        import ctypes
        def gradients(params, X, Y, *, activations, cost):
            ctypes.string_at(0)
        """),
        1,
        r"gradients was killed by SIGSEGV",
    ),
    "hangs_once": (
        _impl(f"""
        _correct = gradients
        def gradients(params, X, Y, *, activations, cost):
            while {HANG_ON}:
                pass
            return _correct(params, X, Y, activations=activations, cost=cost)
        """),
        1,
        r"gradients did not return within 2 s .*\(at .*hangs_once\.py:\d+: while ",
    ),
    "syntax_error": ("def gradients(:\n", 2, r"syntax error at .*syntax_error\.py:1"),
    "raises_at_import": (
        "raise RuntimeError('no GPU found')\n",
        2,
        r"the module raised RuntimeError: no GPU found at import",
    ),
    "exits_at_import": ("import sys\nsys.exit(3)\n", 2, r"called sys\.exit\(3\) at import"),
    "chatty": (
        _impl("""
        _correct = gradients
        def gradients(params, X, Y, *, activations, cost):
            for _ in range(200):
                print("epoch", 1, "loss", 0.5)
            return _correct(params, X, Y, activations=activations, cost=cost)
        print("imported!")
        """),
        0,
        r"note: the implementation printed \d{4,} lines",
    ),
    "seterr_raise_at_import": (
        "import numpy as np\nnp.seterr(all='raise')\n" + CORRECT,
        0,
        r"^PASS",
    ),
    "warnings_are_errors": (
        "import warnings\nwarnings.simplefilter('error')\n" + CORRECT,
        0,
        r"^PASS",
    ),
    "jax_float32_at_import": (
        "import jax\njax.config.update('jax_enable_x64', False)\n" + CORRECT,
        0,
        r"^PASS",
    ),
    "wrong_after_40_calls": (
        _impl("""
        _correct, _calls = gradients, [0]
        def gradients(params, X, Y, *, activations, cost):
            _calls[0] += 1
            g = _correct(params, X, Y, activations=activations, cost=cost)
            return g if _calls[0] <= 40 else [(1.0001 * dW, db) for dW, db in g]
        """),
        1,
        # the first network's first call: call 2, after the layout's probe (call 1)
        r"FAIL repeatability: whole run: gradients returned a different result at call \d+ "
        r"than at call 2\b",
    ),
    "lists_and_matrices": (
        _impl("""
        _correct = gradients
        def gradients(params, X, Y, *, activations, cost):
            g = _correct(params, X, Y, activations=activations, cost=cost)
            return tuple((np.asmatrix(dW), db.tolist()) for dW, db in g)
        _loss = loss
        def loss(params, X, Y, *, activations, cost):
            return np.array([[_loss(params, X, Y, activations=activations, cost=cost)]])
        """),
        0,
        r"^PASS",
    ),
    "jax_arrays": (
        _impl("""
        import jax
        jax.config.update("jax_enable_x64", True)  # float64 JAX arrays (float32: issue of precision)
        import jax.numpy as jnp
        _correct = gradients
        def gradients(params, X, Y, *, activations, cost):
            g = _correct(params, X, Y, activations=activations, cost=cost)
            return [(jnp.asarray(dW), jnp.asarray(db)) for dW, db in g]
        """),
        0,
        r"^PASS",
    ),
    "slow": (
        _impl("""
        import time
        _correct = gradients
        def gradients(params, X, Y, *, activations, cost):
            time.sleep(0.02)
            return _correct(params, X, Y, activations=activations, cost=cost)
        """),
        0,
        r"^PASS",
    ),
    "complex_gradients": (
        _impl("""
        _correct = gradients
        def gradients(params, X, Y, *, activations, cost):
            g = _correct(params, X, Y, activations=activations, cost=cost)
            return [(dW + 0j, db) for dW, db in g]
        """),
        1,
        r"layer 1's dW is complex",
    ),
    "nan_loss": (
        _impl("""
        def loss(params, X, Y, *, activations, cost):
            return float("nan")
        """),
        1,
        r"the loss differs from the formula: nan vs JAX's",
    ),
}


def _cli_command(where, name, *extra):
    """``backprop-check --impl name --networks 0 *extra`` in ``where``, which holds the
    module ``name`` of the catalog (written when the command starts)."""
    source, _, _ = CLI_CATALOG[name]

    def prepare():
        where.mkdir()
        (where / f"{name}.py").write_text(source)

    argv = [sys.executable, "-m", "reference.frontends.cli", "--impl", name, "--networks", "0"]
    return Command((*argv, *extra), where, dict(os.environ), once(prepare))


def catalog_runs(item, root):
    """The catalog's implementation of the test, through ``backprop-check`` with its reports;
    a short limit only where a call must hang: elsewhere it would time the machine (an
    implementation's JAX import and first JAX call, the harness's own start-up)."""
    name = item.callspec.params["name"] if hasattr(item, "callspec") else "hangs_once"
    status = CLI_CATALOG[name][1]
    extra = ["--quiet", *(["--timeout", "2"] if name == "hangs_once" else [])]
    where = root / f"hostile-{name}"
    if status != 2:
        extra += [
            "--json",
            str(where / "out" / "r.json"),
            "--junit-xml",
            str(where / "out" / "r.xml"),
        ]
    return {("hostile", name): _cli_command(where, name, *extra)}


@pytest.mark.background(declare=catalog_runs)
@pytest.mark.parametrize("name", sorted(CLI_CATALOG))
def test_cli_verdict_on_a_hostile_implementation(background, name):
    _, status, says = CLI_CATALOG[name]
    done = background.result(("hostile", name))
    out = background.root / f"hostile-{name}" / "out"
    json_path, junit = out / "r.json", out / "r.xml"
    text = done.stdout + done.stderr
    assert done.returncode == status, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert re.search(says, text, re.M), text[-3000:]
    if status != 2:  # the run finished and wrote its reports, whatever the implementation did
        assert json.loads(json_path.read_text())["ok"] is (status == 0)
        ET.parse(junit)
        assert len(text.splitlines()) < 60  # the implementation's own output stays out


@pytest.mark.background(declare=catalog_runs)
def test_a_hang_costs_its_network_only(background):
    """The catalog's run of hangs_once (--timeout 2 --quiet)."""
    done = background.result(("hostile", "hangs_once"))
    assert done.returncode == 1
    from reference.inputs.scope import Scope

    n = len(
        default_networks.default_problems(0, 0, Scope())
    )  # it declares nothing: the seed's names
    assert f"{n - 1}/{n} networks" in done.stdout  # every other network was checked


HANGS_ALWAYS = """
import backprop
loss = backprop.loss


def gradients(params, X, Y, *, activations, cost):
    while True:
        pass
"""


def hangs_always_run(item, root):
    where = root / "hostile-hangs-always"

    def prepare():
        where.mkdir()
        (where / "hangs_always.py").write_text(HANGS_ALWAYS)

    argv = (sys.executable, "-m", "reference.frontends.cli", "--impl", "hangs_always",
            "--networks", "2", "--activations", "tanh", "--output-activations", "sigmoid",
            "--timeout", "1", "--quiet", "--json", "r.json")  # fmt: skip
    return {("hostile", "hangs_always"): Command(argv, where, dict(os.environ), prepare)}


@pytest.mark.background(declare=hangs_always_run)
def test_code_that_hangs_on_every_network_is_not_waited_on_past_a_few(background):
    """After HANGS_IN_A_ROW time-outs in a row the rest of the run is not waited on: each
    remaining network (and the fixed checks) fails saying why, and the reports are written."""
    from reference.run.session import HANGS_IN_A_ROW

    done = background.result(("hostile", "hangs_always"))
    assert done.returncode == 1, done.stdout + done.stderr
    report = background.root / "hostile-hangs-always" / "r.json"
    networks = json.loads(report.read_text())["networks"]
    said = [n["summary"] for n in networks]
    assert len(networks) > HANGS_IN_A_ROW and not any(n["ok"] for n in networks)
    assert all("did not return within 1 s" in t for t in said[:HANGS_IN_A_ROW]), said
    assert all(
        f"not run: gradients ran past the time limit on the {HANGS_IN_A_ROW} networks" in t
        for t in said[HANGS_IN_A_ROW:]
    ), said


# --- the Python API ---------------------------------------------------------------------------


def ns(**members):
    return types.SimpleNamespace(__name__="hostile", **{"loss": backprop.loss, **members})


def check(impl, p=None):
    p = p or seed_problem()
    return check_gradients(impl, p.params, p.X, p.Y, **p.kwargs())


def test_a_loss_that_halves_w_in_place_on_its_second_call_fails_and_harms_nothing():
    calls = [0]

    def loss(params, X, Y, **kw):
        calls[0] += 1
        value = backprop.loss(params, X, Y, **kw)
        if calls[0] == 2:
            params[0][0][...] *= 0.5
        return value

    p = seed_problem()
    before = [W.copy() for W, _ in p.params]
    report = check(ns(loss=loss, gradients=backprop.gradients), p)
    assert not report.ok and "loss changed layer 1's W in place" in report.render()
    assert all(c.ok for c in report.layers)  # the references saw unchanged parameters
    assert all(np.array_equal(W, W0) for (W, _), W0 in zip(p.params, before))
    assert checks.purity(ns(loss=loss, gradients=backprop.gradients), p).ok in (True, False)


@pytest.mark.parametrize("error", [IndexError, RuntimeError, KeyError, AssertionError])
def test_a_loss_that_raises_during_the_differences_fails_naming_member_file_and_line(error):
    calls = [0]

    def loss(params, X, Y, **kw):
        calls[0] += 1
        if calls[0] > 3:
            raise error()
        return backprop.loss(params, X, Y, **kw)

    report = check(ns(loss=loss, gradients=backprop.gradients))
    assert not report.ok and report.attribution == "crash"
    assert report.finding["member"] == "loss" and report.finding["where"]["file"] == __file__
    assert report.finding["where"]["code"] == "raise error()"
    assert f"loss raised {error.__name__}" in report.summary


def test_forward_and_update_that_change_their_arguments_fail_purity():
    def forward(params, X, *, activations):
        X *= 2
        return backprop.forward(params, X, activations=activations)

    def update(params, grads, learning_rate):
        new = backprop.update(params, grads, learning_rate)
        grads[0][0][...] = 0
        return new

    p = seed_problem()
    impl = ns(gradients=backprop.gradients, forward=forward, update=update)
    result = checks.purity(impl, p)
    assert result.ok is False
    assert "forward changed X in place" in result.message
    assert "update changed layer 1's dW in place" in result.message


def test_a_caller_mistake_is_a_problem_error_and_blames_nobody():
    p = seed_problem()
    with pytest.raises(ProblemError, match=r"activations names 2 layers but params has 3"):
        check_gradients(backprop, p.params, p.X, p.Y, activations=["tanh", "sigmoid"], cost="bce")
    with pytest.raises(ProblemError, match=r"cost 'bce' needs a sigmoid output layer"):
        check_gradients(backprop, p.params, p.X, p.Y, activations=["tanh"] * 3, cost="bce")
    with pytest.raises(ProblemError, match=r"X must be finite"):
        check_gradients(backprop, p.params, p.X * np.nan, p.Y, **p.kwargs())


def test_os_exit_in_process_is_a_finding_not_the_end_of_the_run():
    import os

    report = check(ns(gradients=lambda *a, **k: os._exit(0)))
    assert not report.ok and "gradients called os._exit(0)" in report.summary


def test_wrong_shapes_are_structure_findings_in_every_check():
    def gradients(params, X, Y, **kw):
        grads = backprop.gradients(params, X, Y, **kw)
        return [(np.zeros((dW.shape[0] + 1, dW.shape[1])), db) for dW, db in grads]

    impl = ns(gradients=gradients)
    for result in (checks.relu_at_zero(impl), checks.descent(impl, seed_problem())):
        assert result.ok is False and "has shape" in result.message
        assert result.finding["kind"] == "structure"


def test_a_loss_of_the_wrong_shape_is_named():
    report = check(ns(loss=lambda *a, **k: np.ones(3), gradients=backprop.gradients))
    assert not report.ok and "loss returned an array of shape (3,)" in report.summary


def test_junit_survives_escape_codes_nul_and_lone_surrogates(tmp_path):
    p = seed_problem()
    report = check(ns(gradients=lambda *a, **k: (_ for _ in ()).throw(
        ValueError("\x1b[31mred\x1b[0m \x00 \ud800")
    )))  # fmt: skip
    outcome = Outcome(False, [(p, report)])
    path = tmp_path / "r.xml"
    junit.write_junit(outcome, "hostile", path)
    text = ET.parse(path).getroot().find("testsuite/testcase/error").get("message")
    assert "red" in text and "\x1b" not in text and "\x00" not in text


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--seed", "-5"], "--seed must be >= 0"),
        (["--json", "{dir}"], "a directory, not a file name"),
        (["--junit-xml", "/proc/nope/r.xml"], "cannot write there"),
        (["--plot", "{file}"], "not a directory"),
        (["--timeout", "0"], "--timeout must be > 0"),
    ],
)
def test_bad_output_paths_and_values_are_usage_errors_before_the_run(tmp_path, capsys, argv, says):
    (tmp_path / "f").write_text("")
    argv = [a.format(dir=tmp_path, file=tmp_path / "f") for a in argv]
    assert cli.main(argv, out=__import__("io").StringIO()) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, says",
    [(b"", "is not a golden file"), (b"PK\x03\x04trunc", "is not a golden file"),
     (b"hello", "is not a golden file")],
)  # fmt: skip
def test_broken_golden_files_are_usage_errors(tmp_path, capsys, content, says):
    path = tmp_path / "g.npz"
    path.write_bytes(content)
    assert cli.main(["--in-process", "--golden", "compare", str(path)]) == 2
    assert says in capsys.readouterr().err


def test_a_golden_file_with_an_extra_layer_is_not_the_same(tmp_path, capsys):
    path = tmp_path / "g.npz"
    assert cli.main(["--in-process", "--golden", "save", str(path)]) == 0
    with np.load(path) as saved:
        arrays = dict(saved)
    L = len(golden.golden_problems()[0].params)  # the first network's layers, one more saved
    arrays[f"0/layer{L + 1}/W"] = np.zeros((1, 1))
    arrays[f"0/layer{L + 1}/b"] = np.zeros((1, 1))
    np.savez(path, **arrays)
    assert cli.main(["--in-process", "--golden", "compare", str(path)]) == 2
    assert f"records {L + 1} layers" in capsys.readouterr().err


def test_backprop_update_refuses_nan_complex_and_overflowing_gradients():
    p = backprop.init_params([2, 2, 1], seed=0)
    for grads, says in (
        ([(np.full_like(W, np.nan), b) for W, b in p], "must be finite"),
        ([(W * 1j, b) for W, b in p], "real floating-point"),
        ([(W * 1e308, b) for W, b in p], "overflows float64"),
    ):
        with pytest.raises((ValueError, TypeError), match=says):
            backprop.update(p, grads, 10.0)


def test_backprop_names_bad_progress_and_nested_activation_names():
    p = backprop.init_params([2, 2, 1], seed=0)
    X, Y = backprop.datasets.xor()
    kw = {"activations": ["tanh", "sigmoid"], "cost": "mse"}
    with pytest.raises(TypeError, match="progress must be True, False or a writable stream"):
        backprop.train(p, X, Y, **kw, learning_rate=0.1, max_iterations=2, progress="yes")
    with pytest.raises(ValueError, match=r"unknown activation \['tanh'\]"):
        backprop.gradients(p, X, Y, activations=[["tanh"], "sigmoid"], cost="mse")


def test_the_in_process_time_limit_ends_a_loop_that_swallows_the_first_alarm(monkeypatch):
    """(Code that swallows every alarm can only be ended from outside: backprop-check's
    worker does that.)"""
    import signal

    from reference.boundary.guard import guard

    swallowed, armed, setitimer = [], [], signal.setitimer

    def spy(which, seconds, interval=0.0):
        armed.append((seconds, interval))
        return setitimer(which, seconds, interval)

    monkeypatch.setattr(signal, "setitimer", spy)

    def gradients(*args, **kwargs):
        try:
            while True:
                pass
        except BaseException as exc:  # a bare except, as some code has it
            swallowed.append(type(exc).__name__)
        while True:
            pass

    impl = guard(ns(gradients=gradients))
    impl.time_limit = 0.3
    report = check(impl)
    assert not report.ok and report.finding["kind"] == "timeout"
    assert "did not return within 0.3 s" in report.summary
    assert swallowed == ["_TimeLimit"]  # the first alarm, caught by the bare except
    assert armed and all(0 < every <= 0.3 for first, every in armed if first)  # then the next
    lines, first = inspect.getsourcelines(gradients)  # a later alarm ended the second loop:
    assert report.finding["where"]["line"] == first + lines.index("        while True:\n")
