"""Golden files: recorded inside the declared scope, compared with a tolerance
(--golden-rtol) so that a fork's intended numerical change is not a regression, the
comparison naming the worst entry."""

import io
import json

import numpy as np
import pytest

from reference.frontends import cli
from reference.inputs.scope import Scope
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
    assert meta["networks"] == [p.name for p in cli.golden_problems(scope)]
    assert all(scope.admits(p) for p in cli.golden_problems(scope))
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
        cli.golden_compare(None, golden, 0.0)
