"""backprop-check --against: two implementations compared on the same networks, besides the
oracles; where they part is named by layer, parameter, size against the oracles' bounds, and
the kind of difference."""

import io
import json

import numpy as np
import pytest
from tiers import first_quick

import backprop
from reference import check_gradients
from reference.boundary.guard import guard
from reference.bugs import CATALOG
from reference.bugs.detect import _expected_blame, detection_problems
from reference.frontends import cli
from reference.judging.records import ParamCheck
from reference.run.against import compare_network, numbers_of, row_tolerance

# One network, the seed's tanh/tanh/sigmoid with its bce, keeps a run to a second or two.
SEED_ONLY = ["--activations", "tanh", "--output-activations", "sigmoid", "--costs", "bce",
             "--networks", "0"]  # fmt: skip


def check(*argv):
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def _numbers_and_report(impl, problem):
    report = check_gradients(impl, problem.params, problem.X, problem.Y, **problem.kwargs())
    return numbers_of(guard(impl), [problem])[0], report


# --- the command -----------------------------------------------------------------------------


def test_against_a_planted_mistake_names_the_layer_where_they_part(tmp_path):
    path = tmp_path / "r.json"
    code, text = check("--against", "reference.bugs:dW2_times_2", *SEED_ONLY, "--json", str(path))
    assert code == 1
    assert "backprop and reference.bugs:dW2_times_2 part at layer 2 dW" in text
    assert "dW2_times_2's dW is off by a constant factor of 2" in text
    assert "the oracles back backprop" in text
    found = [c for c in json.loads(path.read_text())["checks"] if c["name"].startswith("same as")]
    assert found and found[0]["where"].startswith("seed 2-3-2-1") and found[0]["ok"] is False


def test_the_fork_is_still_judged_by_the_oracles():
    code, text = check(
        "--impl", "reference.bugs:dW2_times_2", "--against", "backprop", *SEED_ONLY, "--in-process"
    )
    assert code == 1
    assert "only layer 2's dW is wrong" in text  # the fork's own report
    assert "dW2_times_2's dW is off by a constant factor of 2" in text
    assert "twice); the oracles back backprop" in text


def test_against_a_correct_outside_implementation_passes():
    code, text = check("--against", "tests.outside.rounded:AT_ZERO_1", "--output-activations",
                       "sigmoid", "--networks", "1")  # fmt: skip
    assert code == 0, text
    assert "FAIL" not in text and text.strip().splitlines()[-1].startswith("PASS")


def test_a_mistake_in_a_non_gradient_check_is_named():
    code, text = check("--against", "reference.bugs:update_wrong_sign", *SEED_ONLY, "--in-process")
    assert code == 1
    assert "FAIL same checks as reference.bugs:update_wrong_sign" in text
    assert "update fails for reference.bugs:update_wrong_sign and holds for backprop" in text
    assert "FAIL same as" not in text  # the gradients are the same


def test_a_check_that_warns_on_one_side_parts_them_as_a_warning():
    """A saturation warning (a numerical weakness, not an error) that only the upstream has:
    said as a warning, and the run passes unless --strict."""
    argv = ("--against", "reference.bugs:unstable_bce", *SEED_ONLY, "--in-process")
    code, text = check(*argv)
    assert code == 0, text
    assert "WARN same checks as reference.bugs:unstable_bce: fixed: saturation fails" in text
    assert check(*argv, "--strict")[0] == 1


def test_an_unloadable_upstream_is_a_usage_error(capsys):
    assert check("--against", "no.such.module", *SEED_ONLY)[0] == 2
    assert "no.such.module" in capsys.readouterr().err


# --- the comparison, on the catalog's table --------------------------------------------------


@pytest.mark.parametrize(
    "name", first_quick(sorted(n for n, m in CATALOG.items() if m.blame is not None))
)
def test_every_single_place_mistake_parts_where_the_catalog_blames_it(name):
    """On every detection problem where the checker fails the mistake layer by layer, the
    comparison with backprop parts, and first at the layer (and parameter) the catalog's
    table blames."""
    mistake = CATALOG[name]
    seen = 0
    for problem in detection_problems():
        theirs, report_theirs = _numbers_and_report(mistake, problem)
        if report_theirs.ok or not report_theirs.layers:
            continue  # not visible on this network, or a crash rather than a wrong array
        mine, report_mine = _numbers_and_report(backprop, problem)
        ok, text = compare_network(
            problem, mine, theirs, report_mine, report_theirs, ("backprop", name)
        )
        blame = _expected_blame(mistake, problem)
        param = "W" if blame["param"] == "delta" else blame["param"]
        assert ok is False, f"{name} on {problem.name}: {text}"
        assert f"part at layer {blame['layer']} d{param}:" in text, f"{problem.name}: {text}"
        assert "the oracles back backprop" in text
        seen += 1
    assert seen, f"{name} was caught on none of the detection problems"


def test_the_tolerance_is_the_sum_of_both_oracle_bounds():
    mine = ParamCheck(1, "W", (2, 2), bound_jax=3e-10, bound_fd=1e-6)
    theirs = ParamCheck(1, "W", (2, 2), bound_jax=5e-10, bound_fd=2e-6)
    assert row_tolerance(mine, theirs) == (pytest.approx(8e-10), "both JAX bounds")
    mine.bound_jax = theirs.bound_jax = None
    assert row_tolerance(mine, theirs) == (pytest.approx(3e-6), "both finite-difference bounds")


def test_a_difference_within_the_bounds_passes_and_one_beyond_them_parts():
    problem = detection_problems()[0]
    mine, report = _numbers_and_report(backprop, problem)
    grads, loss = mine
    tol, _ = row_tolerance(report.layers[0], report.layers[0])
    for factor, parts in ((0.25, False), (4.0, True)):
        # dW^1 scaled so that its relative difference is factor times the tolerance:
        # ||s a - a|| / (||s a|| + ||a||) = (s - 1) / (s + 1) = factor * tol
        r = factor * tol
        s = (1 + r) / (1 - r)
        moved = [(s * grads[0][0], grads[0][1]), *grads[1:]]
        ok, text = compare_network(
            problem, (moved, loss), mine, report, report, ("fork", "upstream")
        )
        assert ok is (not parts), text
        if parts:
            assert "part at layer 1 dW: relative difference" in text
    ok, text = compare_network(
        problem, (grads, loss * (1 + 1e-6)), mine, report, report, ("fork", "upstream")
    )
    assert ok is False and "part at loss" in text


def test_one_side_failing_is_a_parting_and_both_failing_is_not_compared():
    problem = detection_problems()[0]
    mine, report = _numbers_and_report(backprop, problem)
    ok, text = compare_network(problem, "gradients raised", mine, None, report, ("f", "u"))
    assert ok is False and "only the f fails here: gradients raised" in text
    ok, text = compare_network(problem, "x", "y", None, None, ("f", "u"))
    assert ok is None and text.startswith("not compared")


def test_a_transposed_gradient_is_named_so():
    problem = detection_problems()[2]  # the square network
    mine, report = _numbers_and_report(backprop, problem)
    grads, loss = mine
    swapped = [grads[0], (grads[1][0].T, grads[1][1]), grads[2]]
    assert not np.allclose(grads[1][0], grads[1][0].T)
    ok, text = compare_network(problem, (swapped, loss), mine, None, report, ("f", "u"))
    assert ok is False and "layer 2 dW" in text and "transpose" in text


# --- a fork's declared differences ------------------------------------------------------------


@pytest.mark.parametrize(
    "table, says",
    [
        ({"softplus": "new"}, "softplus must be a table"),
        ({"softplus": {"kind": "added", "reason": "x"}}, "softplus's kind must be one of new"),
        ({"softplus": {"kind": "new"}}, "softplus needs a reason"),
        ({"softplus": {"kind": "new", "reason": " "}}, "softplus needs a reason"),
        ({"softplus": {"kind": "new", "reason": "x", "why": "y"}}, r"unknown key\(s\) \['why'\]"),
        (["softplus"], "must be a table of names, got list"),
    ],
)
def test_a_declared_difference_that_cannot_be_read_names_the_entry(table, says):
    from reference.inputs.differences import Differences
    from reference.inputs.scope import ScopeError

    with pytest.raises(ScopeError, match=says):
        Differences.read(table, "[tool.backprop-check.differences] in here")


def test_declared_differences_sit_beside_the_scope_and_a_bad_one_stops_against_first(
    tmp_path, monkeypatch, capsys
):
    from reference.inputs.differences import KINDS, from_pyproject
    from reference.inputs.scope import from_pyproject as scope_from_pyproject

    rows = "\n".join(f'{n} = {{ kind = "{k}", reason = "r {n}" }}' for n, k in
                     zip(("bce", "mse", "softplus"), KINDS.__reversed__()))  # fmt: skip
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.backprop-check]\ncosts = ["mse"]\n\n[tool.backprop-check.differences]\n{rows}\n'
    )
    declared = from_pyproject(tmp_path)
    assert [(d.name, d.kind) for d in declared.entries] == list(
        zip(("bce", "mse", "softplus"), reversed(KINDS))
    )
    assert declared.used_by(["softplus", "tanh"], "mse") == [declared.get("softplus"),
                                                            declared.get("mse")]  # fmt: skip
    assert scope_from_pyproject(tmp_path).costs == {"mse"}
    (tmp_path / "pyproject.toml").write_text(
        '[tool.backprop-check.differences]\nsoftplus = { kind = "fresh", reason = "r" }\n'
    )
    monkeypatch.chdir(tmp_path)
    assert check("--against", "backprop", *SEED_ONLY, "--json", str(tmp_path / "r.json"))[0] == 2
    assert "softplus's kind must be one of" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    for row, says in (
        ('softplus = { kind = "new", reason = "r" }', "softplus is not an activation or a cost"),
        ('tanh = { kind = "convention", reason = "r" }', "tanh: a convention names a cost"),
    ):
        (tmp_path / "pyproject.toml").write_text(f"[tool.backprop-check.differences]\n{row}\n")
        assert check("--against", "backprop", *SEED_ONLY)[0] == 2
        assert says in capsys.readouterr().err
