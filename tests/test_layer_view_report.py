"""The layer view where the verdicts are read: ``check_gradients(..., layer_view=True)``'s
report and ``backprop-check``'s text and JSON.

The expectations come from the catalog and from the direct call: a mistake whose report blames
the backward pass must carry the verdict ``reference.layer_view`` gives on the same network,
and no other report carries one. Implementations that fail only inside the view (found by
their own stack) show that a failure there is the view's finding, never a traceback.
"""

import io
import json
import os
import sys

import pytest
from background import Command
from tiers import first_quick

from reference import check_gradients, layer_view
from reference.bugs import CATALOG, CORRECT
from reference.bugs.detect import detection_problems
from reference.formulas import specs
from reference.frontends import cli
from reference.inputs import networks as default_networks
from reference.judging.layer_view import VERDICTS, view_summary
from reference.run.layer_views import MAX_VIEWS

SEED = detection_problems()[0]
"""The seed's network, on which each catalogued mistake is judged here."""

SCOPE = ["--activations", "tanh", "--output-activations", "sigmoid", "--networks", "0"]
"""A small run of ``backprop-check``: the seed networks with tanh hidden layers and a
sigmoid output, one per cost that fits it."""


def _fresh(name):
    """The mistake on a fresh instance (some keep state between calls, as detect.py says)."""
    return type(CATALOG[name])()


def _report(bug, problem=SEED, **kw):
    return check_gradients(bug, problem.params, problem.X, problem.Y, **problem.kwargs(), **kw)


def _direct(bug, problem=SEED):
    return layer_view(bug, problem.params, problem.X, problem.Y, **problem.kwargs())


ATTRIBUTION = {name: _report(_fresh(name)).attribution for name in CATALOG}
"""Each mistake's attribution on the seed's network, without the view."""
BACKWARD = [name for name, a in ATTRIBUTION.items() if a == "backward"]
ELSEWHERE = [name for name, a in ATTRIBUTION.items() if a != "backward"]
BY_VERDICT = {}
for _name in BACKWARD:
    BY_VERDICT.setdefault(_direct(_fresh(_name)).verdict, _name)
"""The first backward mistake of each verdict the direct call gives on the seed's network."""


def test_the_catalog_gives_each_side_something_to_show():
    assert BACKWARD and ELSEWHERE
    assert {"local", "chaining", "parameters"} <= set(BY_VERDICT), BY_VERDICT


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_a_report_carries_the_direct_verdict_exactly_where_it_blames_the_backward_pass(name):
    report = _report(_fresh(name), layer_view=True)
    if ATTRIBUTION[name] != "backward":
        assert report.layer_view is None and "layer view" not in report.render()
        return
    direct = _direct(_fresh(name))
    view = report.layer_view
    assert view["verdict"] == direct.verdict and view["sample"] == direct.sample
    assert view["lines"][0] == f"layer view: {direct.explanation}"
    assert "\n".join(f"  {line}" for line in view["lines"]) in report.render()
    step = direct.failing_step()
    assert view["step"] == (None if step is None else {"name": step.name,
                                                       "summary": step.report.summary})  # fmt: skip
    assert json.loads(json.dumps(report.to_dict()))["layer_view"] == view


def test_the_view_is_asked_for():
    assert _report(_fresh(BACKWARD[0])).layer_view is None
    with pytest.raises(TypeError, match="layer_view must be True or False, got 'yes'"):
        _report(CORRECT, layer_view="yes")


@pytest.mark.parametrize("index", range(len(detection_problems())))
def test_a_correct_implementation_never_carries_one(index):
    problem = detection_problems()[index]
    report = _report(CORRECT, problem, layer_view=True)
    assert report.ok and report.layer_view is None and "layer view" not in report.render()


def test_a_hidden_activation_that_is_not_elementwise_is_not_available(monkeypatch):
    """A softmax-like twin (each entry divided by the column's sum of exponentials): the view
    says it cannot read g' there, and calls nothing."""
    import dataclasses

    import numpy as np

    name = SEED.activations[0]
    mixing = dataclasses.replace(
        specs.ACTIVATION_SPECS[name],
        numpy=lambda z: np.exp(z) / np.sum(np.exp(z), axis=0, keepdims=True),
        inplace=None,
    )
    monkeypatch.setitem(specs.ACTIVATION_SPECS, name, mixing)
    calls = []

    class Counting:
        def loss(self, *a, **k):
            calls.append("loss")

        def gradients(self, *a, **k):
            calls.append("gradients")

    view = _direct(Counting())
    assert view.verdict == "unavailable" and view.sample is None and not calls
    assert str(view).startswith(f"layer view not available for {name} at layer 1")
    assert "not elementwise" in str(view)
    summary = view_summary(Counting(), SEED.params, SEED.X, SEED.Y, **SEED.kwargs())
    assert summary["lines"] == [f"layer view: {VERDICTS['unavailable'].format(where=view.where)}"]


def test_without_twins_or_below_float64_the_view_says_why():
    kw = {**SEED.kwargs(), "activations": ["no-such-activation", *SEED.activations[1:]]}
    missing = view_summary(CORRECT, SEED.params, SEED.X, SEED.Y, **kw)
    assert missing["verdict"] == "unavailable"
    assert missing["lines"][0].startswith("layer view: not available for no-such-activation")
    low = view_summary(CORRECT, SEED.params, SEED.X, SEED.Y, **SEED.kwargs(), precision="float32")
    assert low["verdict"] == "unavailable" and "float32" in low["lines"][0]


def test_gradients_that_are_not_finite_at_one_sample_are_said_so():
    """A mistake that is finite on the batch, NaN and inf on one sample: not a traceback."""
    import numpy as np

    bug = _fresh(BACKWARD[0])

    class NotFiniteAlone:
        loss = staticmethod(bug.loss)

        @staticmethod
        def gradients(params, X, Y, **kw):
            g = bug.gradients(params, X, Y, **kw)
            if X.shape[1] > 1:
                return g
            return [(np.full_like(W, np.nan), np.full_like(b, np.inf)) for W, b in g]

    report = _report(NotFiniteAlone(), layer_view=True)
    assert report.attribution == "backward"
    assert report.layer_view["verdict"] == "unavailable"
    assert "gradients there are not finite" in report.layer_view["lines"][0]


def test_a_failure_of_the_views_own_code_is_said_not_raised(monkeypatch):
    from reference.judging import layer_view as module

    def broken(*args, **kwargs):
        raise ArithmeticError("planted")

    monkeypatch.setattr(module, "check_vjp", broken)
    view = view_summary(_fresh(BACKWARD[0]), SEED.params, SEED.X, SEED.Y, **SEED.kwargs())
    assert view["verdict"] == "failed"
    assert "the layer view's own code raised ArithmeticError: planted" in view["lines"][0]


# --- backprop-check -----------------------------------------------------------------------------


def _cli(tmp_path, impl, *extra):
    out, path = io.StringIO(), tmp_path / "r.json"
    status = cli.main(["--impl", impl, "--in-process", *SCOPE, "--json", str(path), *extra], out)
    return status, out.getvalue(), json.loads(path.read_text())["networks"]


@pytest.mark.parametrize("verdict", first_quick(sorted(BY_VERDICT)))
def test_the_cli_shows_the_direct_verdict_in_text_and_json(tmp_path, verdict):
    name = BY_VERDICT[verdict]
    status, text, networks = _cli(tmp_path, f"reference.bugs:{name}")
    assert status == 1
    from reference.inputs.penalties import penalty_problems
    from reference.inputs.scope import Scope

    declared = Scope.read(getattr(_fresh(name), "SUPPORTS", None), "the mistake's SUPPORTS")
    problems = {
        p.name: p for p in default_networks.default_problems(0, 0) + penalty_problems(0, declared)
    }
    viewed = [n for n in networks if n["layer_view"] is not None]
    assert 1 <= len(viewed) <= MAX_VIEWS, networks
    for network in viewed:
        assert network["attribution"] == "backward"
        direct = _direct(_fresh(name), problems[network["name"]])
        assert network["layer_view"]["verdict"] == direct.verdict
        assert f"  layer view: {direct.explanation}\n" in text
    assert all(n["layer_view"] is None for n in networks if n["attribution"] != "backward")


@pytest.mark.parametrize("impl", ["backprop", f"reference.bugs:{ELSEWHERE[0]}"])
def test_the_cli_shows_none_on_a_correct_one_or_a_mistake_elsewhere(tmp_path, impl):
    _, text, networks = _cli(tmp_path, impl)
    assert "layer view" not in text and all(n["layer_view"] is None for n in networks)


def test_no_layer_view_leaves_it_out(tmp_path):
    _, text, networks = _cli(tmp_path, f"reference.bugs:{BACKWARD[0]}", "--no-layer-view")
    assert "layer view" not in text and all(n["layer_view"] is None for n in networks)


# --- a failure inside the view ------------------------------------------------------------------

FAILS_IN_THE_VIEW = """
import os
import time

from reference.bugs import CATALOG

_bug = CATALOG[{name!r}]
loss = _bug.loss


_seen = set()


def gradients(params, X, Y, **kw):
    # The worker cannot see who asks. The view asks about one sample the check has asked
    # about already (the batch-mean check takes each sample once): act on the second time.
    if X.shape[1] == 1:
        key = (X.tobytes(), params[0][0].tobytes())
        if key in _seen:
            {action}
        _seen.add(key)
    return _bug.gradients(params, X, Y, **kw)
"""
ACTIONS = {
    "raise": ('raise RuntimeError("only in the view")', "raised RuntimeError: only in the view"),
    "exit": ("os._exit(3)", "gradients called os._exit(3)"),
    "kill": ("os.kill(os.getpid(), 9)", "was killed by SIGKILL"),
    "hang": ("time.sleep(60)", "did not return within 2 s"),
}
"""What the implementation does when the view calls it, and what the view must say."""


def view_failure_run(item, root):
    """The test's ``backprop-check`` run on code that fails (``action``) inside the view."""
    action = item.callspec.params["action"]
    code, _ = ACTIONS[action]
    where = root / f"view-{action}"
    source = FAILS_IN_THE_VIEW.format(name=BY_VERDICT["chaining"], action=code)

    def prepare():
        where.mkdir()
        (where / "fails_in_view.py").write_text(source)

    # a short limit only where the call must hang; elsewhere it would time the machine
    isolation = {"raise": ["--in-process"], "hang": ["--timeout", "2"]}.get(action, [])
    argv = (sys.executable, "-m", "reference.frontends.cli", "--impl", "fails_in_view", *SCOPE,
            *isolation, "--json", "r.json")  # fmt: skip
    return {("view", action): Command(argv, where, dict(os.environ), prepare)}


@pytest.mark.background(declare=view_failure_run)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_failure_inside_the_view_is_its_finding(background, action):
    _, says = ACTIONS[action]
    done = background.result(("view", action))
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in text, text[-3000:]
    networks = json.loads((background.root / f"view-{action}" / "r.json").read_text())["networks"]
    viewed = [n for n in networks if n["layer_view"] is not None]
    assert viewed and all(n["attribution"] == "backward" for n in viewed), networks
    for network in viewed:
        view = network["layer_view"]
        assert view["verdict"] == "failed" and says in view["explanation"], view
        assert "layer view: not available: the implementation failed in it:" in text
