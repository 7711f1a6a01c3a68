"""A fork declares an activation or a cost to the harness's oracles in one call, from outside
the package, and the CLI, the strategies, the suite and validation pick it up; bad
registrations are refused; and the code under test is never rewritten: its own table entry
is its own business (``backprop.register_activation``)."""

import contextlib
import io
import os
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from background import Command, once
from hypothesis import find, settings
from hypothesis.errors import InvalidArgument
from tiers import first_quick

import backprop
import reference
import reference.registry
from reference import registry
from reference.formulas import jax_twins, specs
from reference.formulas.jax_twins import JAX_ACTIVATIONS, JAX_COSTS
from reference.formulas.specs import NUMPY_ACTIVATIONS, NUMPY_COSTS
from reference.frontends.cli import main
from reference.inputs.combinations import seed_combinations
from reference.inputs.networks import default_problems
from reference.inputs.problems import compatible_costs, with_relu_margin
from reference.inputs.strategies import architectures

# softplus: g(z) = log(1 + e^z), g'(z) = sigmoid(z); no kinks. The harness's spec (its twins)
# and the implementation's own entry, apart: each side registers its own.
SOFTPLUS = {"numpy": lambda z: np.logaddexp(0.0, z), "jax": jax.nn.softplus}
SOFTPLUS_CODE = backprop.Activation(
    lambda z: np.logaddexp(0.0, z), lambda z, a: backprop.activations.sigmoid(z)
)

# A shifted relu, max(z, 1/2): a kink away from 0, which the margins must keep off.
SHIFTED = {
    "numpy": lambda z: np.maximum(z, 0.5),
    "jax": lambda z: jnp.where(z >= 0.5, z, 0.5),
    "kinks": (0.5,),
}

# J = 1/(2m) sum (A - Y)^4, a cost with no restriction on the output layer.
QUARTIC = {"numpy": lambda a, y: 0.5 * (a - y) ** 4, "jax": lambda a, y: 0.5 * (a - y) ** 4}
QUARTIC_CODE = backprop.Cost(
    lambda a, y: float(np.sum((a - y) ** 4)) / (2 * a.shape[1]),
    lambda a, y: 2 * (a - y) ** 3 / a.shape[1],
)


@contextlib.contextmanager
def in_backprop(kind, name, entry):
    """The implementation's own table entry for the block (what a fork's code adds)."""
    table = backprop.ACTIVATIONS if kind == "activation" else backprop.COSTS
    table[name] = entry
    try:
        yield
    finally:
        del table[name]


@contextlib.contextmanager
def both(kind, name, spec, entry):
    """The fork's code and the harness's spec of one name, for the block."""
    register = getattr(reference.registry, f"registered_{kind}")
    with in_backprop(kind, name, entry), register(name, **spec):
        yield


FAST = settings(max_examples=200, database=None)


def _seed_count() -> int:
    """Seed networks the default run has, from the tables: the activation triples with the
    costs their output activations allow (every one, or a pairwise covering set)."""
    return len(seed_combinations(sorted(registry.activation_names())))


def _penalised() -> int:
    """The networks with an L2 penalty the default run adds for the built-in, which declares
    the penalty."""
    from reference.inputs.penalties import penalty_problems
    from reference.inputs.scope import Scope

    return len(penalty_problems(0, Scope.read(backprop.SUPPORTS, "backprop.SUPPORTS")))


def test_one_call_reaches_every_oracle_table_and_unregister_removes_it():
    with reference.registry.registered_activation("softplus", **SOFTPLUS):
        for table in (NUMPY_ACTIVATIONS, JAX_ACTIVATIONS):
            assert "softplus" in table
        assert "softplus" in registry.activation_names()
        assert "softplus" not in backprop.ACTIVATIONS  # the code under test is not written
    for table in (NUMPY_ACTIVATIONS, JAX_ACTIVATIONS):
        assert "softplus" not in table
    assert "softplus" not in registry.activation_names()


def _tables_now():
    """Everything the checked code's tables hold, entry by entry (fused forms included)."""
    return (
        {name: (a.fn, a.grad, a.vjp) for name, a in backprop.ACTIVATIONS.items()},
        {name: (c.fn, c.grad, c.output_activations, dict(c.fused))
         for name, c in backprop.COSTS.items()},
    )  # fmt: skip


# label smoothing 0.1: the targets 0.05 and 0.95, a fork's changed bce formula
SMOOTHED_BCE = {
    "numpy": lambda a, y: -(0.9 * y + 0.05) * np.log(a) - (0.95 - 0.9 * y) * np.log1p(-a),
    "jax": lambda a, y: -(0.9 * y + 0.05) * jnp.log(a) - (0.95 - 0.9 * y) * jnp.log1p(-a),
}


def test_loading_the_entry_points_leaves_the_checked_codes_tables_as_they_were(monkeypatch):
    """A new name and a replaced formula through the entry points: the oracles take both, and
    backprop's tables (bce's fused form included) are what they were, entry by entry."""
    before = _tables_now()
    monkeypatch.setattr(
        registry.metadata, "entry_points",
        lambda group: [_entry_point("softplus", SOFTPLUS)] if group == registry.ACTIVATION_GROUP
        else [_entry_point("bce", {**SMOOTHED_BCE, "replace": True})],
    )  # fmt: skip
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        registry.load_entry_points()
        assert JAX_ACTIVATIONS["softplus"] is SOFTPLUS["jax"]
        assert NUMPY_COSTS["bce"].term is SMOOTHED_BCE["numpy"]
        assert registry.cost_output_activations("bce") == {"sigmoid"}  # kept from the table
        assert _tables_now() == before
        assert list(backprop.COSTS["bce"].fused) == ["sigmoid"]
    finally:
        registry.unregister_activation("softplus")
        registry.unregister_cost("bce")
    assert "sigmoid" in NUMPY_COSTS["bce"].from_logits


def test_the_implementations_own_members_are_refused_with_where_they_go():
    with pytest.raises(TypeError, match=r"fn, grad: the harness never writes into the code"):
        reference.register_activation("softplus", **SOFTPLUS, fn=np.exp, grad=np.exp)
    with pytest.raises(TypeError, match=r"backprop.register_cost\(name"):
        reference.register_cost("quartic", **QUARTIC, grad=np.exp)
    assert "softplus" not in NUMPY_ACTIVATIONS and "quartic" not in NUMPY_COSTS


def test_backprop_registers_its_own_entries():
    backprop.register_activation("softplus", *SOFTPLUS_CODE)
    try:
        assert backprop.ACTIVATIONS["softplus"] == SOFTPLUS_CODE
        with pytest.raises(ValueError, match="'softplus' is already in the table"):
            backprop.register_activation("softplus", *SOFTPLUS_CODE)
    finally:
        del backprop.ACTIVATIONS["softplus"]
    backprop.register_cost("quartic", *QUARTIC_CODE[:2], output_activations=["tanh"])
    try:
        assert backprop.COSTS["quartic"].output_activations == {"tanh"}
    finally:
        del backprop.COSTS["quartic"]
    for call, message in (
        (lambda: backprop.register_activation("soft plus", np.exp, np.exp), "identifier"),
        (lambda: backprop.register_activation("x", np.exp, 1.0), "grad must be callable"),
        (lambda: backprop.register_cost("x", np.exp, np.exp, output_activations="tanh"), "str"),
        (lambda: backprop.register_cost("x", np.exp, np.exp, fused={"sigmoid": 1}), "Fused"),
    ):
        with pytest.raises((TypeError, ValueError), match=message):
            call()
    assert "x" not in backprop.ACTIVATIONS and "x" not in backprop.COSTS


def test_a_registered_activation_is_checked_by_the_cli_and_drawn_by_the_strategies():
    before = len(default_problems(0, 0))
    with both("activation", "softplus", SOFTPLUS, SOFTPLUS_CODE):
        problems = default_problems(0, 0)
        assert len(problems) == _seed_count() > before
        assert any("softplus" in p.activations for p in problems)
        out = io.StringIO()
        status = main(["--in-process", "--networks", "2", "--quiet"], out=out)
        assert status == 0, out.getvalue()
        total = _seed_count() + 2 + _penalised()
        assert f"{total}/{total} networks" in out.getvalue()
        arch = find(architectures(), lambda a: "softplus" in a.activations, settings=FAST)
        assert "softplus" in arch.activations
        problem = reference.seed_problem(("softplus", "tanh", "sigmoid"), "bce")
        report = reference.check_gradients(
            backprop, problem.params, problem.X, problem.Y, **problem.kwargs()
        )
        assert report.ok, report
    assert len(default_problems(0, 0)) == before


def test_the_cli_refuses_a_worker_that_would_not_see_a_registration(capsys):
    with both("activation", "softplus", SOFTPLUS, SOFTPLUS_CODE):
        assert main(["--networks", "0", "--quiet"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "activation 'softplus' registered in this process only" in err
    assert "--in-process" in err
    assert registry.process_only() == []


def test_a_registered_cost_is_drawn_and_checked():
    with both("cost", "quartic", QUARTIC, QUARTIC_CODE):
        for table in (NUMPY_COSTS, JAX_COSTS):
            assert "quartic" in table
        assert "quartic" in compatible_costs("tanh")
        arch = find(architectures(), lambda a: a.cost == "quartic", settings=FAST)
        assert arch.cost == "quartic"
        problem = reference.seed_problem(("tanh", "tanh", "tanh"), "quartic")
        report = reference.check_gradients(
            backprop, problem.params, problem.X, problem.Y, **problem.kwargs()
        )
        assert report.ok, report
    assert "quartic" not in compatible_costs("tanh")


def test_a_wrong_derivative_is_caught():
    wrong = SOFTPLUS_CODE._replace(grad=lambda z, a: 1.1 * backprop.activations.sigmoid(z))
    with both("activation", "softplus", SOFTPLUS, wrong):
        problem = reference.seed_problem(("softplus", "tanh", "sigmoid"), "bce")
        report = reference.check_gradients(
            backprop, problem.params, problem.X, problem.Y, **problem.kwargs()
        )
        assert not report.ok


def _softmax_at(temperature, xp):
    def g(z):
        e = xp.exp((z - z.max(axis=0, keepdims=True)) / temperature)
        return e / e.sum(axis=0, keepdims=True)

    return g


# softmax(z / 2): not elementwise; dZ = A * (dA - sum over the column of dA * A) / 2
WARM = {"numpy": _softmax_at(2.0, np), "jax": _softmax_at(2.0, jnp), "elementwise": False}
WARM_CODE = backprop.Activation(
    _softmax_at(2.0, np),
    lambda z, a: a * (1 - a) / 2,
    lambda z, a, dA: a * (dA - np.sum(dA * a, axis=0, keepdims=True)) / 2,
)


def test_a_registered_activation_that_is_not_elementwise_goes_through_its_vjp():
    """One call with a vjp: backprop's backward pass uses it, the harness checks it, and it is
    kept to the output layer; a wrong vjp is caught."""
    from reference.inputs.problems import output_only
    from reference.inputs.validate import ProblemError

    with both("activation", "warm_softmax", WARM, WARM_CODE):
        assert output_only("warm_softmax")
        problem = reference.seed_problem(("tanh", "tanh", "warm_softmax"), "mse")
        assert problem.params[-1][0].shape[0] == 2
        report = reference.check_gradients(
            backprop, problem.params, problem.X, problem.Y, **problem.kwargs()
        )
        assert report.ok, report.summary
        with pytest.raises(ProblemError, match="must be an elementwise activation"):
            reference.check_gradients(
                backprop, problem.params, problem.X, problem.Y,
                activations=["tanh", "warm_softmax", "warm_softmax"], cost="mse",
            )  # fmt: skip
    wrong = WARM_CODE._replace(vjp=lambda z, a, dA: dA * a * (1 - a) / 2)
    with both("activation", "warm_softmax", WARM, wrong):
        report = reference.check_gradients(
            backprop, problem.params, problem.X, problem.Y, **problem.kwargs()
        )
        assert not report.ok


def test_margins_keep_off_a_registered_kink():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 50))
    params = [(rng.normal(size=(4, 3)), np.full((4, 1), 0.5))]
    with reference.registry.registered_activation("shifted", **SHIFTED):
        moved = with_relu_margin(params, X, ["shifted"], margin=0.1)
        Z = moved[0][0] @ X + moved[0][1]
        assert np.abs(Z - 0.5).min() >= 0.1 - 1e-12


@pytest.mark.parametrize(
    ("argument", "known"), [("activations", next(iter(backprop.ACTIVATIONS))), ("costs", "mse")]
)
def test_a_strategy_asked_for_an_unknown_name_refuses(argument, known):
    """Not a draw of the known name alone: the unknown one is an error."""
    with pytest.raises(InvalidArgument, match=r"\['no_such_name'\], not in the table"):
        find(architectures(**{argument: [known, "no_such_name"]}), lambda a: True)


def test_strategies_draw_every_name_of_the_tables():
    for name in backprop.ACTIVATIONS:
        find(architectures(), lambda a, name=name: name in a.activations, settings=FAST)
    for name in backprop.COSTS:
        find(architectures(), lambda a, name=name: a.cost == name, settings=FAST)


def test_strategies_keep_output_only_activations_on_the_output_with_one_hot_labels():
    """Softmax (and any activation whose twin is not elementwise) is never drawn for a hidden
    layer; its networks get two outputs or more and labels one-hot by columns."""
    from hypothesis.errors import NoSuchExample

    from reference.inputs.problems import output_only
    from reference.inputs.strategies import problems

    with pytest.raises(NoSuchExample):
        find(architectures(), lambda a: any(map(output_only, a.activations[:-1])), settings=FAST)
    p = find(problems(), lambda p: output_only(p.activations[-1]) and p.m > 1, settings=FAST)
    assert p.Y.shape[0] >= 2 and set(np.unique(p.Y)) <= {0.0, 1.0}
    assert (p.Y.sum(axis=0) == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"name": 3}, TypeError, "name must be a str"),
        ({"name": "soft plus"}, TypeError, "name must be a str that is a Python identifier"),
        ({"name": "relu"}, ValueError, "'relu' is already registered .*pass replace=True"),
        ({"numpy": "np.log"}, TypeError, "numpy must be callable"),
        ({"jax": None}, TypeError, "jax must be callable"),
        ({"kinks": 0.0}, TypeError, "kinks must be a sequence"),
        ({"kinks": (float("nan"),)}, ValueError, "kinks must hold finite numbers"),
        ({"kinks": (0.0, 0.0)}, ValueError, "kinks must not repeat"),
        ({"absolute_rounding": -1.0}, ValueError, "absolute_rounding must be a number >= 0"),
        ({"replace": "yes"}, TypeError, "replace must be True or False"),
        ({"elementwise": 0}, TypeError, "elementwise must be True or False"),
        ({"vjp": 2.0}, TypeError, "vjp: the harness never writes into the code it checks"),
        ({"slope": 2.0}, TypeError, r"unexpected keyword argument\(s\) slope"),
    ],
)
def test_a_bad_activation_is_refused_naming_the_argument(kwargs, exc, message):
    call = {"name": "softplus", **SOFTPLUS, **kwargs}
    with pytest.raises(exc, match=message):
        registry.register_activation(call.pop("name"), **call)
    assert "softplus" not in NUMPY_ACTIVATIONS


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"name": "mse"}, ValueError, "'mse' is already registered"),
        ({"output_activations": "sigmoid"}, TypeError, "output_activations must be a sequence"),
        ({"output_activations": ["softsign"]}, ValueError, r"unknown: \['softsign'\]"),
        ({"output_activations": []}, ValueError, "output_activations must name"),
    ],
)
def test_a_bad_cost_is_refused_naming_the_argument(kwargs, exc, message):
    call = {"name": "quartic", **QUARTIC, **kwargs}
    with pytest.raises(exc, match=message):
        registry.register_cost(call.pop("name"), **call)
    assert "quartic" not in NUMPY_COSTS


def test_replace_and_unregister_bring_the_original_back():
    original = (backprop.ACTIVATIONS["tanh"], NUMPY_ACTIVATIONS["tanh"], JAX_ACTIVATIONS["tanh"])
    with reference.registry.registered_activation("tanh", **SOFTPLUS, replace=True):
        assert backprop.ACTIVATIONS["tanh"] is original[0]  # the code under test keeps its own
        assert JAX_ACTIVATIONS["tanh"] is SOFTPLUS["jax"]
    assert (backprop.ACTIVATIONS["tanh"], NUMPY_ACTIVATIONS["tanh"], JAX_ACTIVATIONS["tanh"]) == (
        original
    )
    with pytest.raises(ValueError, match="'tanh' was not registered"):
        reference.unregister_activation("tanh")


# --- one spec per name: the twins' tables are views of it -------------------------------


ACTIVATION_VIEWS = (NUMPY_ACTIVATIONS, JAX_ACTIVATIONS, specs.ABSOLUTE_ROUNDING)
COST_VIEWS = (NUMPY_COSTS, JAX_COSTS, specs.COST_OUTPUTS)


def _activation_views(name):
    """What each view of the activation specs holds for ``name`` (None where it lacks it)."""
    return tuple(view[name] if name in view else None for view in ACTIVATION_VIEWS)


def _cost_views(name):
    """What each view of the cost specs holds for ``name`` (None where it lacks it)."""
    return tuple(view[name] if name in view else None for view in COST_VIEWS)


def _from_activation_spec(spec):
    """What the views must hold for an activation's spec: its own twins, read from it."""
    numpy = (spec.numpy, spec.kinks, spec.inplace, spec.elementwise)
    return numpy, jax_twins.twin(spec.jax), spec.absolute_rounding


def _from_cost_spec(spec):
    numpy = (spec.numpy, dict(spec.numpy_from_logits))
    logits = {g: jax_twins.twin(f) for g, f in spec.jax_from_logits.items()}
    return numpy, (jax_twins.twin(spec.jax), logits), spec.output_activations


def _activation_seen(name):
    """The views' records of ``name`` in the shape of :func:`_from_activation_spec`."""
    numpy, jax_twin, rounding = _activation_views(name)
    return (None if numpy is None else tuple(numpy)), jax_twin, rounding


def _cost_seen(name):
    numpy, jax_twin, outputs = _cost_views(name)
    return (
        None if numpy is None else (numpy.term, dict(numpy.from_logits)),
        None if jax_twin is None else (jax_twin.term, dict(jax_twin.from_logits)),
        outputs,
    )


def test_every_spec_is_in_every_view_with_its_own_twins():
    """Each view lists the spec table's names in its order, and reads each name's twins (the
    same objects: functions compare by identity), kinks and rounding from its spec; every
    spec of the tables has both twins."""
    kinds = (
        (specs.ACTIVATION_SPECS, ACTIVATION_VIEWS, _activation_seen, _from_activation_spec),
        (specs.COST_SPECS, COST_VIEWS, _cost_seen, _from_cost_spec),
    )
    for table, views, seen, expected in kinds:
        for view in views:
            assert list(view) == list(table) and len(view) == len(table), view
        for name, spec in table.items():
            assert spec.numpy is not None and spec.jax is not None, name
            assert seen(name) == expected(spec), name


def test_the_views_are_read_only_and_say_where_a_change_goes():
    before = {name: dict(view) for name, view in enumerate(ACTIVATION_VIEWS + COST_VIEWS)}
    for view in ACTIVATION_VIEWS + COST_VIEWS:
        name = next(iter(view))
        with pytest.raises(TypeError, match="register_activation / register_cost"):
            view[name] = None
        with pytest.raises(TypeError, match="read-only view of the specs"):
            del view[name]
    after = {name: dict(view) for name, view in enumerate(ACTIVATION_VIEWS + COST_VIEWS)}
    assert after == before


def test_every_name_of_the_built_in_tables_has_a_spec():
    """backprop's own names each have the harness's spec, and a cost's spec takes the output
    activations backprop's entry says it takes."""
    for name in backprop.ACTIVATIONS:
        assert name in specs.ACTIVATION_SPECS, f"give {name!r} a spec in ACTIVATION_SPECS"
    for name, cost in backprop.COSTS.items():
        assert name in specs.COST_SPECS, f"give {name!r} a spec in COST_SPECS"
        assert specs.COST_SPECS[name].output_activations == cost.output_activations, name


@contextlib.contextmanager
def _changes():
    """The number of times the registry told its listeners of a change, during the block."""
    count = [0]
    listener = lambda: count.__setitem__(0, count[0] + 1)  # noqa: E731
    registry.on_change(listener)
    try:
        yield count
    finally:
        registry._listeners.remove(listener)


def test_a_registration_reaches_every_view_at_once_and_unregister_takes_it_back():
    """A new name is in every view, read from its one spec, and leaves them all; a replaced
    one is the new spec in every view, in its place, and then the old spec again."""
    new = {**SOFTPLUS, "kinks": (1.0,), "absolute_rounding": 0.0}
    order = list(specs.ACTIVATION_SPECS)
    with _changes() as changes:
        registry.register_activation("softplus", **new)
        spec = specs.ACTIVATION_SPECS["softplus"]
        assert spec.numpy is new["numpy"] and spec.jax is new["jax"] and spec.kinks == (1.0,)
        assert _activation_seen("softplus") == _from_activation_spec(spec)
        registry.unregister_activation("softplus")
        assert _activation_views("softplus") == (None, None, None)
        assert "softplus" not in specs.ACTIVATION_SPECS
        original = specs.ACTIVATION_SPECS["tanh"]
        registry.register_activation("tanh", **SOFTPLUS, replace=True)
        assert _activation_seen("tanh") == _from_activation_spec(specs.ACTIVATION_SPECS["tanh"])
        assert JAX_ACTIVATIONS["tanh"] is SOFTPLUS["jax"]
        assert list(specs.ACTIVATION_SPECS) == order
        registry.unregister_activation("tanh")
        assert specs.ACTIVATION_SPECS["tanh"] is original
        assert _activation_seen("tanh") == _from_activation_spec(original)
        assert changes[0] == 4


def test_a_cost_registration_reaches_every_view_at_once_and_unregister_takes_it_back():
    logits = {"sigmoid": lambda z, y: z * y}
    forms = {"numpy_from_logits": logits, "jax_from_logits": logits}
    with _changes() as changes:
        registry.register_cost("quartic", **QUARTIC, **forms, output_activations=["tanh"])
        spec = specs.COST_SPECS["quartic"]
        assert spec.output_activations == {"tanh"} and spec.numpy is QUARTIC["numpy"]
        assert _cost_seen("quartic") == _from_cost_spec(spec)
        registry.unregister_cost("quartic")
        assert _cost_views("quartic") == (None, None, None)
        original = specs.COST_SPECS["bce"]
        registry.register_cost("bce", **SMOOTHED_BCE, replace=True)
        assert _cost_seen("bce") == _from_cost_spec(specs.COST_SPECS["bce"])
        assert specs.COST_OUTPUTS["bce"] == original.output_activations  # kept
        assert NUMPY_COSTS["bce"].from_logits == {}
        registry.unregister_cost("bce")
        assert specs.COST_SPECS["bce"] is original
        assert _cost_seen("bce") == _from_cost_spec(original)
        assert changes[0] == 4


def _entry_point(name, obj):
    return types.SimpleNamespace(name=name, value=f"fork.module:{name}", load=lambda: obj)


def test_entry_points_are_loaded_once(monkeypatch):
    calls = []

    def fake(group):
        calls.append(group)
        if group == registry.ACTIVATION_GROUP:
            return [_entry_point("softplus", SOFTPLUS)]
        return [_entry_point("quartic", lambda: registry.register_cost("quartic", **QUARTIC))]

    monkeypatch.setattr(registry.metadata, "entry_points", fake)
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        problems = default_problems(0, 0)  # the harness reads the tables: the group loads
        assert any("softplus" in p.activations for p in problems)
        assert any(p.cost == "quartic" for p in problems)
        default_problems(0, 0)
        assert calls == [registry.ACTIVATION_GROUP, registry.COST_GROUP]
    finally:
        for name, undo in (("softplus", "activation"), ("quartic", "cost")):
            if name in (NUMPY_ACTIVATIONS if undo == "activation" else NUMPY_COSTS):
                getattr(registry, f"unregister_{undo}")(name)


def test_a_broken_entry_point_says_which(monkeypatch):
    monkeypatch.setattr(
        registry.metadata,
        "entry_points",
        lambda group: [_entry_point("bad", 42)] if group == registry.ACTIVATION_GROUP else [],
    )
    monkeypatch.setattr(registry, "_loaded", False)
    with pytest.raises(RuntimeError, match=r"entry point 'bad' = 'fork.module:bad'.*got int"):
        registry.load_entry_points()


# --- a fork's package, installed beside the harness: its code, and an entry point -------

SPEC = """
import jax
import numpy as np

SOFTPLUS = {"numpy": lambda z: np.logaddexp(0.0, z), "jax": jax.nn.softplus}
"""

CODE = """
import numpy as np

import backprop
from backprop import SUPPORTS, forward, gradients, loss, update
from backprop.activations import sigmoid

backprop.register_activation(
    "softplus", lambda z: np.logaddexp(0.0, z), lambda z, a: SCALE * sigmoid(z)
)
"""


def _install_fork(where, scale: float) -> None:
    """The fork's code (``fork_softplus``: backprop with its own softplus) and, apart, the
    harness's spec, which the dist-info makes an entry point of the group."""
    (where / "fork_softplus.py").write_text(f"SCALE = {scale!r}\n{CODE}")
    (where / "fork_softplus_spec.py").write_text(SPEC)
    info = where / "fork_softplus-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fork-softplus\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[{registry.ACTIVATION_GROUP}]\nsoftplus = fork_softplus_spec:SOFTPLUS\n"
    )


def _env(cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    root = str(Path(reference.__file__).resolve().parents[1])
    env.update(PYTHONPATH=os.pathsep.join([str(cwd), root]), HYPOTHESIS_PROFILE="ci")
    return env


def _python(args, cwd):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(cwd), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def _fork_command(where, scale, *args):
    """``python *args`` in ``where``, where the fork (its softplus's derivative times
    ``scale``) is installed when the command starts."""

    def prepare():
        where.mkdir()
        _install_fork(where, scale)

    return Command((sys.executable, *args), where, _env(where), once(prepare))


def entry_point_run(item, root):
    argv = ["-m", "reference.frontends.cli", "--impl", "fork_softplus", "--networks", "0"]
    command = _fork_command(root / "registry-cli", 1.0, *argv, "--quiet")
    return {("registry", "cli"): command}


@pytest.mark.background(declare=entry_point_run)
def test_an_installed_entry_point_reaches_the_cli(background):
    """The default run: the fork's code in a spawned worker, its spec in the harness."""
    done = background.result(("registry", "cli"))
    with both("activation", "softplus", SOFTPLUS, SOFTPLUS_CODE):
        n = _seed_count() + _penalised()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{n}/{n} networks" in done.stdout, done.stdout[-3000:]


def shipped_suite_run(item, root):
    scale = item.callspec.params["scale"]
    plugin = "reference.frontends.pytest_plugin"  # -p unless the pytest11 entry point loads it
    installed = any(ep.value == plugin for ep in metadata.entry_points(group="pytest11"))
    args = ["-m", "pytest", "-p", "no:cacheprovider", *([] if installed else ["-p", plugin])]
    args += ["--pyargs", "reference.suite", "--backprop-impl", "fork_softplus", "-x"]
    command = _fork_command(root / f"registry-suite-{scale}", scale, *args)
    return {("registry", "suite", scale): command}


@pytest.mark.background(declare=shipped_suite_run)
@pytest.mark.parametrize("scale", first_quick([1.1, 1.0]))
def test_the_shipped_suite_draws_an_installed_activation(background, scale):
    """A fork's softplus passes the suite; with its derivative 10% off, the suite draws it and
    fails."""
    done = background.result(("registry", "suite", scale))
    assert done.returncode == (0 if scale == 1.0 else 1), done.stdout[-3000:]
    assert scale == 1.0 or "softplus" in done.stdout, done.stdout[-3000:]


def test_backprop_and_its_registration_import_nothing_of_the_harness(tmp_path):
    """backprop stays NumPy only (DESIGN.md), its own registration functions included."""
    code = (
        "import sys, numpy as np, backprop\n"
        "backprop.register_activation('softplus', np.exp, np.exp)\n"
        "backprop.register_cost('quartic', np.exp, np.exp, output_activations=['softplus'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jax', 'hypothesis', 'reference')))\n"
    )
    done = _python(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_explain_lists_a_name_only_the_harness_holds():
    from reference.report.formulas import explain_tables

    with reference.registry.registered_activation("shifted", **SHIFTED):
        out = io.StringIO()
        explain_tables(out)
    assert "Registered with the harness" in out.getvalue()
    assert "  activation shifted: kinks at z = 0.5" in out.getvalue()
    out = io.StringIO()
    explain_tables(out)
    assert "Registered with the harness" not in out.getvalue()
