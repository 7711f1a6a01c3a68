"""Golden files: recorded inside the declared scope, compared with a tolerance
(--golden-rtol) so that a fork's intended numerical change is not a regression, the
comparison naming the worst entry."""

import io
import json

import numpy as np
import pytest

from reference.frontends import cli
from reference.inputs.scope import Scope
from reference.run import golden as golden_files
from tests.outside.nudged import NUDGE

NUDGED = "tests.outside.nudged:NUDGED"
MSE_ONLY = "tests.outside.partial:MSE_ONLY"


def check(*argv):
    out = io.StringIO()
    code = cli.main([*argv, "--in-process"], out=out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "backprop.npz"
    code, text = check("--golden", "save", str(path))
    assert code == 0, text
    return path


def test_an_intended_change_passes_within_the_tolerance_and_fails_outside_it(golden):
    code, text = check("--impl", NUDGED, "--golden", "compare", str(golden))
    assert code == 1 and "gradients DRIFTED" in text  # the default tolerance, 1e-10
    code, text = check("--impl", NUDGED, "--golden", "compare", str(golden),
                       "--golden-rtol", str(10 * NUDGE))  # fmt: skip
    assert code == 0 and "DRIFT " not in text and "same gradients as" in text
    code, text = check("--impl", NUDGED, "--golden", "compare", str(golden),
                       "--golden-rtol", str(NUDGE / 10))  # fmt: skip
    assert code == 1 and "gradients DRIFTED" in text


def test_the_comparison_names_the_worst_entry_and_its_relative_difference(golden):
    code, text = check("--impl", "reference.bugs:dW2_times_2", "--golden", "compare", str(golden))
    worst = [line for line in text.splitlines() if line.strip().startswith("worst:")]
    assert code == 1 and len(worst) == 1
    assert "layer 2 dW, entry (" in worst[0] and "relative difference 1.00e+00" in worst[0]
    now, then = (float(x) for x in
                 worst[0].split("entry (")[1].split("): ")[1].split(" recorded")[0]
                 .replace(" now", "").split(", "))  # fmt: skip
    assert now == pytest.approx(2 * then)
    code, text = check("--golden", "compare", str(golden))
    assert code == 0 and "relative difference 0.00e+00" in text


def test_the_golden_file_holds_the_networks_inside_the_declared_scope(tmp_path):
    path = tmp_path / "mse.npz"
    # Every network drawn: MSE_ONLY raises NotImplementedError on bce, which golden cannot skip.
    assert check("--impl", MSE_ONLY, "--golden", "save", str(path))[0] == 2
    code, text = check("--impl", MSE_ONLY, "--costs", "mse", "--golden", "save", str(path))
    assert code == 0, text
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
    from tests.outside.partial import MSE_ONLY as impl

    declared = Scope.read(getattr(impl, "SUPPORTS", None), "MSE_ONLY.SUPPORTS")
    scope = Scope.read({"costs": ["mse"]}, "test").over(declared)
    assert meta["networks"] == [p.name for p in golden_files.golden_problems(scope)]
    assert all(scope.admits(p) for p in golden_files.golden_problems(scope))
    assert len(meta["networks"]) > 4
    code, text = check("--impl", MSE_ONLY, "--costs", "mse", "--golden", "compare", str(path))
    assert code == 0 and "same gradients as" in text


def test_a_golden_file_of_another_scope_is_a_usage_error(tmp_path, golden, capsys):
    assert check("--costs", "mse", "--golden", "compare", str(golden))[0] == 2
    err = capsys.readouterr().err
    import backprop

    saved = Scope.read(backprop.SUPPORTS, "backprop.SUPPORTS").describe()  # the fixture's
    assert f"saved for the scope {saved}" in err and "'costs': ['mse']" in err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--golden", "compare", "x.npz", "--golden-rtol", "0"], "--golden-rtol must be"),
        (["--golden", "compare", "x.npz", "--golden-rtol=-1e-3"], "--golden-rtol must be"),
        (["--golden", "compare", "x.npz", "--golden-rtol", "nan"], "--golden-rtol must be"),
        (["--golden-rtol", "1e-6"], "applies to --golden compare"),
        (["--golden", "save", "{tmp}/g.npz", "--golden-rtol", "1e-6"], "applies to --golden"),
    ],
)
def test_bad_golden_tolerances_are_usage_errors(tmp_path, capsys, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert check(*argv)[0] == 2
    assert says in capsys.readouterr().err


def test_golden_compare_rejects_a_tolerance_that_is_not_positive(golden):
    with pytest.raises(ValueError, match="tolerance must be a number > 0"):
        golden_files.golden_compare(None, golden, 0.0)


# --- the families a golden file covers, and what a comparison writes -------------------------


def _widths(scope):
    """Every (output activation, cost) pair the tables allow inside ``scope``, with the output
    widths a golden file records it at: one and several, 2 at least where the output needs
    it (softmax, one-hot labels), those the scope declares where it does."""
    from reference.inputs.problems import compatible_costs, output_only
    from reference.registry import activation_names

    outs = [a for a in activation_names() if a in scope.names("output_activations")]
    out = {}
    for o in outs:
        for c in compatible_costs(o):
            least = 2 if output_only(o) or c == "cce" else 1
            if scope.outputs is None:
                widths = {max(w, least) for w in golden_files.GOLDEN_OUTPUTS}
            else:
                widths = {w for w in scope.outputs if w >= least}
            if c in scope.names("costs") and widths:
                out[o, c] = widths
    return out


@pytest.mark.parametrize(
    "declared",
    [{}, {"costs": ["mse"]}, {"outputs": [1]}, {"max_depth": 2}, {"activations": ["relu"]},
     {"output_activations": ["sigmoid", "softmax"], "min_depth": 3}],
)  # fmt: skip
def test_golden_networks_cover_every_pair_width_and_depth_of_the_scope(declared):
    from reference.inputs.problems import output_only

    scope = Scope.read(declared, "test").over(Scope.everything())
    problems = golden_files.golden_problems(scope)
    names = [p.name for p in problems]
    assert len(names) == len(set(names))  # no network twice
    assert all(scope.admits(p) for p in problems)
    pairs = _widths(scope)
    assert {(p.activations[-1], p.cost) for p in problems} == set(pairs)
    for pair, widths in pairs.items():  # one output and several, where the scope has them
        assert {p.Y.shape[0] for p in problems if (p.activations[-1], p.cost) == pair} == widths
    lo = max(golden_files.GOLDEN_DEPTHS[0], scope.min_depth or 0)
    hi = min(golden_files.GOLDEN_DEPTHS[1], scope.max_depth or golden_files.GOLDEN_DEPTHS[1])
    assert {len(p.params) for p in problems} == set(range(lo, hi + 1))
    hidden = {a for p in problems for a in p.activations[:-1]}
    assert hidden == {a for a in scope.names("activations") if not output_only(a)} or hi == 1


def test_golden_networks_do_not_depend_on_the_names_a_scope_leaves_out():
    """A network's data are its name's: the networks of a narrower scope are the same arrays."""
    every = {p.name: p for p in golden_files.golden_problems(Scope.everything())}
    for p in golden_files.golden_problems(
        Scope.read({"costs": ["mse"]}, "t").over(Scope.everything())
    ):
        if p.name in every:
            np.testing.assert_array_equal(p.X, every[p.name].X)


def test_the_default_tolerance_follows_the_precision():
    assert golden_files.golden_rtol("float64") == golden_files.GOLDEN_RTOL
    assert (
        golden_files.golden_rtol(np.float32)
        == golden_files.GOLDEN_EPS_FACTOR * np.finfo(np.float32).eps
    )
    assert (
        golden_files.golden_rtol("float16")
        > golden_files.golden_rtol("float32")
        > golden_files.golden_rtol("float64")
    )
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        golden_files.golden_rtol("int64")


def test_golden_compare_writes_the_json_junit_and_annotations_of_a_check(golden, tmp_path):
    """Drift found by --golden compare reaches every CI output, and --golden is in the JSON's
    reproducing command (it changes the exit status)."""
    paths = {"--json": tmp_path / "r.json", "--junit-xml": tmp_path / "r.xml"}
    argv = ["--impl", "reference.bugs:dW2_times_2", "--golden", "compare", str(golden)]
    code, text = check(*argv, "--format", "github", *(w for kv in paths.items()
                                                       for w in map(str, kv)))  # fmt: skip
    assert code == 1
    annotated = [line for line in text.splitlines() if line.startswith("::error ")]
    assert annotated and f"same as {golden.name} (error)::golden " in annotated[0]
    report = json.loads(paths["--json"].read_text())
    assert report["command"].startswith(f"backprop-check golden compare {golden} ")
    assert report["ok"] is False
    drifted = [c for c in report["checks"] if c["ok"] is False]
    import backprop

    deep = {p.name for p in golden_files.golden_problems() if len(p.params) >= 2  # a dW^2 not all 0
            and np.any(backprop.gradients(p.params, p.X, p.Y, **p.kwargs())[1][0])}  # fmt: skip
    assert {c["where"] for c in drifted} == deep
    assert all("layer 2 dW" in c["message"] for c in drifted)
    xml = paths["--junit-xml"].read_text()
    assert f'failures="{len(deep)}"' in xml
