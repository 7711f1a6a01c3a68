"""Grading: the rubric, each item's points and output, hidden networks, Gradescope's format."""

import io
import json
import re
from types import SimpleNamespace

import pytest

import backprop
import reference
from reference.bugs import CATALOG, Correct
from reference.frontends import cli
from reference.frontends.grading import (
    HIDDEN_SEED_VARIABLE,
    grade,
    hidden_problems,
    public_problems,
)
from reference.frontends.rubric import (
    VISIBILITIES,
    RubricError,
    check_names,
    load_rubric,
    parse_rubric,
)
from reference.judging import checks
from reference.judging.checker import ATTRIBUTIONS, check_gradients

SECRET = 918_273_645_501
"""A hidden seed long enough that finding it in a results file cannot be a coincidence."""


def small(**over):
    """A rubric with few networks (the seed network's own and two random), two hidden."""
    table = {
        "networks": {"combinations": False, "random": 2},
        "hidden": {"groups": [{"name": "hidden networks", "networks": 2, "points": 5}]},
    }
    for key, value in over.items():
        table[key] = {**table.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_rubric(table, "test")


def expected_names(rubric, hidden=True):
    """Every item name the rubric gives, from the rubric and the checks' tables."""
    names = [f"layer {l} {p}" for l in range(1, rubric.depth + 1) for p in ("dW", "db")]
    names += ["loss", *(f"check: {n}" for n in (*checks.PROBLEM_CHECKS, *checks.FIXED_CHECKS))]
    return names + ([f"hidden: {g.name}" for g in rubric.hidden] if hidden else [])


# --- Gradescope's results format -------------------------------------------------------------
# From Gradescope's autograder specification, "Output format" and what follows it
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/): every key is optional
# except a score, on the top level or on every test; status is "passed" or "failed";
# visibility one of hidden, after_due_date, after_published, visible.

_TOP = {"score": (int, float), "execution_time": (int, float), "output": str,
        "output_format": str, "test_output_format": str, "test_name_format": str,
        "visibility": str, "stdout_visibility": str, "extra_data": dict, "tests": list,
        "leaderboard": list}  # fmt: skip
_TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str,
         "name_format": str, "number": str, "output": str, "output_format": str,
         "tags": list, "visibility": str, "extra_data": dict}  # fmt: skip
_STATUS = ("passed", "failed")
_FORMATS = ("text", "simple_format", "html", "md", "ansi")


def format_problems(results):
    """What in ``results`` breaks the documented format, or what this harness promises on
    top of it (every test named, scored, with a status, an output and a visibility; the
    top-level score their sum). Empty when all holds."""
    bad = []

    def typed(where, table, spec):
        for key, value in table.items():
            if key not in spec:
                bad.append(f"{where}: unknown key {key!r}")
            elif isinstance(value, bool) or not isinstance(value, spec[key]):
                bad.append(f"{where}: {key} is {type(value).__name__}")

    if not isinstance(results, dict):
        return ["not an object"]
    typed("top level", results, _TOP)
    tests = results.get("tests", [])
    if "score" not in results and not all("score" in t for t in tests):
        bad.append("no score on the top level nor on every test")
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITIES:
            bad.append(f"top level: {key} {results[key]!r}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in _FORMATS:
            bad.append(f"top level: {key} {results[key]!r}")
    for k, test in enumerate(tests if isinstance(tests, list) else []):
        where = f"test {k}"
        if not isinstance(test, dict):
            bad.append(f"{where}: not an object")
            continue
        typed(where, test, _TEST)
        for key in ("name", "score", "max_score", "status", "output", "visibility"):
            if key not in test:
                bad.append(f"{where}: no {key}")
        if test.get("status", "passed") not in _STATUS:
            bad.append(f"{where}: status {test['status']!r}")
        if test.get("visibility", "visible") not in VISIBILITIES:
            bad.append(f"{where}: visibility {test['visibility']!r}")
        score, top = test.get("score", 0), test.get("max_score", float("inf"))
        numbers = all(isinstance(x, (int, float)) for x in (score, top))
        if numbers and not 0 <= score <= top:
            bad.append(f"{where}: score {test.get('score')} outside [0, {test.get('max_score')}]")
    scores = [t.get("score") for t in tests if isinstance(t, dict)]
    if (
        isinstance(results.get("score"), (int, float))
        and tests
        and all(isinstance(x, (int, float)) for x in scores)
    ):
        if abs(results["score"] - sum(scores)) > 1e-6:
            bad.append("the top-level score is not the tests' sum")
    return bad


def test_the_format_check_catches_what_the_format_forbids():
    good = {"score": 1.0, "execution_time": 3, "output": "",
            "tests": [{"name": "a", "score": 1.0, "max_score": 1.0, "status": "passed",
                       "output": "", "visibility": "visible"}]}  # fmt: skip
    assert format_problems(good) == []
    for breaking in (
        lambda r: r["tests"][0].update(status="ok"),
        lambda r: r["tests"][0].update(visibility="later"),
        lambda r: r["tests"][0].update(score="1"),
        lambda r: r["tests"][0].pop("max_score"),
        lambda r: r.update(score=2.0),
        lambda r: r.update(colour="red"),
        lambda r: r["tests"][0].update(score=1.5),
    ):
        broken = json.loads(json.dumps(good))
        breaking(broken)
        assert format_problems(broken), broken


# --- the rubric -------------------------------------------------------------------------------


def test_the_default_rubric_ships_and_gives_every_check_points():
    rubric = load_rubric()
    assert (
        list(rubric.check_points)
        == check_names()
        == [
            *checks.PROBLEM_CHECKS,
            *checks.FIXED_CHECKS,
        ]
    )
    assert all(p > 0 for p in rubric.check_points.values())
    assert len(rubric.W) == len(rubric.b) == rubric.depth and rubric.hidden
    assert all(g.visibility == "after_due_date" for g in rubric.hidden)


@pytest.mark.parametrize(
    "table, says",
    [
        (
            {"points": {"check": {"no such check": 1}}},
            "[points.check] has unknown key(s) 'no such check'",
        ),
        ({"points": {"loss": -1}}, "[points] loss must be finite and >= 0, got -1"),
        ({"points": {"W": "three"}}, "[points] W must be a number of points, got 'three' (str)"),
        ({"points": {"b": True}}, "[points] b must be a number of points, got True (bool)"),
        ({"points": {"W": [1, 2]}}, "[points] W gives 2 numbers; [networks] depth is 3"),
        ({"points": {"extra": 1}}, "[points] has unknown key(s) 'extra'"),
        ({"grade": 1}, "the top level has unknown key(s) 'grade'"),
        ({"networks": {"depth": 0}}, "[networks] depth must be >= 1, got 0"),
        ({"networks": {"random": 2.5}}, "[networks] random must be an integer, got 2.5 (float)"),
        ({"visibility": "soon"}, "visibility must be one of visible, hidden, after_due_date"),
        (
            {"hidden": {"groups": [{"name": "h", "points": 1}]}},
            "[[hidden.groups]] #1 has no 'networks'",
        ),
        (
            {"hidden": {"groups": [{"name": "h", "networks": 1, "points": -2}]}},
            "[[hidden.groups]] #1 points must be finite and >= 0",
        ),
        ({"hidden": {"groups": {"name": "h"}}}, "[hidden] groups must be an array of tables"),
        ({"scope": {"costs": "mse"}}, "[scope]: costs must be a list"),
        ({"strict": "yes"}, "strict must be true or false"),
    ],
)
def test_a_malformed_rubric_names_the_key(table, says):
    with pytest.raises(RubricError) as info:
        parse_rubric(table, "course.toml")
    assert "rubric course.toml" in str(info.value) and says in str(info.value)


def test_a_rubric_file_that_is_not_toml_or_not_there(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[points\nW = 1\n")
    with pytest.raises(RubricError, match="not valid TOML"):
        load_rubric(bad)
    with pytest.raises(RubricError, match="cannot read it"):
        load_rubric(tmp_path / "missing.toml")


def test_a_course_rubric_keeps_the_defaults_it_does_not_change(tmp_path):
    path = tmp_path / "course.toml"
    path.write_text('[points]\nW = [1, 2, 5]\n[points.check]\n"relu\'(0)" = 0\n')
    rubric, default = load_rubric(path), load_rubric()
    assert rubric.W == (1, 2, 5) and rubric.b == default.b and rubric.hidden == default.hidden
    assert rubric.check_points["relu'(0)"] == 0
    assert rubric.check_points["purity"] == default.check_points["purity"]


def test_a_malformed_rubric_on_the_command_line_exits_2(tmp_path, capsys):
    path = tmp_path / "course.toml"
    path.write_text("[points]\nloss = -3\n")
    code = cli.main(["--gradescope", str(tmp_path / "r.json"), "--rubric", str(path)],
                    out=io.StringIO())  # fmt: skip
    assert code == 2
    assert "[points] loss must be finite and >= 0" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


# --- grading ----------------------------------------------------------------------------------


def test_the_builtin_implementation_gets_every_point():
    rubric = small()
    graded = grade(backprop, rubric=rubric, hidden_seed=SECRET)
    assert [i.name for i in graded.items] == expected_names(rubric)
    assert [i.name for i in graded.items if not i.passed] == []
    assert graded.score == graded.max_score == pytest.approx(
        sum(rubric.W) + sum(rubric.b) + rubric.loss + sum(rubric.check_points.values())
        + sum(g.points for g in rubric.hidden)
    )  # fmt: skip


def _layer(blame, depth):
    layer, param = blame
    number = {"L": depth, "L-1": depth - 1}.get(layer, layer)
    return number, {"W": ["dW"], "b": ["db"], "delta": ["dW", "db"]}[param]


_MASK = re.compile(r"(?<!layer )(?<!\^)[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@pytest.mark.parametrize("name", [n for n, m in CATALOG.items() if m.blame is not None])
def test_a_mistake_loses_points_where_the_checker_blames_it(name):
    """Every catalogued mistake with a blamed place: the items of that layer's blamed
    parameters score below their maximum, and their output carries the checker's own
    diagnosis and attribution for one of the networks it fails on."""
    # random networks too: the seed's batch of 4 hides a stray 4/m
    mistake = CATALOG[name]
    # a mistake in the L2 penalty's gradient shows on penalised networks, where the rubric has them
    penalised = type(mistake).penalty_grads is not Correct.penalty_grads
    # every name of the tables ("*"): a rubric that declares nothing grades the seed's only
    names = {"activations": "*", "output_activations": "*", "costs": "*"}
    scope = {"scope": {**names, **({"penalties": ["l2"]} if penalised else {})}}
    rubric = parse_rubric({"networks": {"random": 4}, "hidden": {"groups": []}, **scope}, "test")
    graded = grade(mistake, rubric=rubric)
    items = {i.name: i for i in graded.items}
    layer, params = _layer(mistake.blame, rubric.depth)
    for param in params:
        item = items[f"layer {layer} {param}"]
        assert item.score < item.max_score, item.output
        assert item.output.startswith(f"layer {layer} {param} fails on ")
        said = []
        for p in public_problems(rubric):
            report = check_gradients(type(mistake)(), p.params, p.X, p.Y, **p.kwargs())
            if report.layers:
                c = report.layers[2 * (layer - 1) + (param == "db")]
                if not c.ok:
                    said.append((c.diagnosis, report.attribution))
            else:
                said.append((report.summary, report.attribution))
        assert said
        assert any(
            _MASK.sub("#", text) in _MASK.sub("#", item.output)
            and ATTRIBUTIONS[attribution] in item.output
            for text, attribution in said
        ), item.output
    assert graded.score < graded.max_score
    assert graded.first_error().startswith("layer ")


def test_partial_credit_is_the_fraction_of_networks():
    rubric = parse_rubric({"networks": {"random": 0}, "hidden": {"groups": []}}, "test")
    graded = grade(CATALOG["dW2_times_2"], rubric=rubric)
    item = next(i for i in graded.items if i.name == "layer 2 dW")
    problems = public_problems(rubric)
    held = sum(
        check_gradients(CATALOG["dW2_times_2"], p.params, p.X, p.Y, **p.kwargs()).layers[2].ok
        for p in problems
    )
    assert 0 < held < len(problems)  # dead relu units hide the factor on some networks
    assert item.score == pytest.approx(item.max_score * held / len(problems), abs=0.005)


def test_hidden_networks_are_their_own_group_with_their_visibility_and_no_seed():
    rubric = small(hidden={"visibility": "after_published"})
    graded = grade(CATALOG["dW2_times_2"], rubric=rubric, hidden_seed=SECRET)
    hidden = [i for i in graded.items if i.name.startswith("hidden: ")]
    assert [i.name for i in hidden] == [f"hidden: {g.name}" for g in rubric.hidden]
    assert all(i.visibility == "after_published" for i in hidden)
    assert all(i.visibility == rubric.visibility for i in graded.items if i not in hidden)
    assert all(i.score < i.max_score for i in hidden)
    text = json.dumps(graded.to_gradescope())
    assert str(SECRET) not in text and "hidden #1" in text
    assert format_problems(graded.to_gradescope()) == []


def test_the_hidden_networks_come_from_the_secret_seed():
    rubric = small()
    first, again, other = (hidden_problems(rubric, s) for s in (SECRET, SECRET, SECRET + 1))
    sizes = [[p.sizes for p in problems] for _, problems in first]
    assert sizes == [[p.sizes for p in problems] for _, problems in again]
    assert all((a.X == b.X).all() for (_, ps), (_, qs) in zip(first, again) for a, b in zip(ps, qs))
    assert any(
        a.X.shape != b.X.shape or not (a.X == b.X).all()
        for (_, ps), (_, qs) in zip(first, other)
        for a, b in zip(ps, qs)
    )
    assert all(len(p.params) == rubric.depth for _, ps in first for p in ps)


def test_the_hidden_seed_from_the_environment(monkeypatch):
    rubric = small()
    monkeypatch.setenv(HIDDEN_SEED_VARIABLE, str(SECRET))
    with_env = grade(backprop, rubric=rubric)
    assert [i.name for i in with_env.items] == expected_names(rubric)
    monkeypatch.delenv(HIDDEN_SEED_VARIABLE)
    without = grade(backprop, rubric=rubric)
    assert [i.name for i in without.items] == expected_names(rubric, hidden=False)
    assert HIDDEN_SEED_VARIABLE in without.output
    monkeypatch.setenv(HIDDEN_SEED_VARIABLE, "not a number")
    with pytest.raises(ValueError, match=f"{HIDDEN_SEED_VARIABLE} must be a whole number"):
        grade(backprop, rubric=rubric)


def test_backprop_check_gradescope_writes_a_valid_results_file(tmp_path):
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(
        "[networks]\ncombinations = false\nrandom = 1\n"
        '[[hidden.groups]]\nname = "secret networks"\nnetworks = 2\npoints = 6\n'
    )
    path = tmp_path / "results.json"
    out = io.StringIO()
    code = cli.main(
        ["--impl", "reference.bugs:dW2_times_2", "--gradescope", str(path), "--rubric",
         str(rubric), "--hidden-seed", str(SECRET), "--hidden-visibility", "hidden"],
        out=out,
    )  # fmt: skip
    assert code == 1
    results = json.loads(path.read_text())
    assert format_problems(results) == []
    tests = {t["name"]: t for t in results["tests"]}
    assert list(tests) == expected_names(load_rubric(rubric))
    assert results["score"] < sum(t["max_score"] for t in tests.values())
    failing = tests["layer 2 dW"]
    assert failing["status"] == "failed" and failing["score"] < failing["max_score"]
    assert "dW is off by a constant factor of 2" in failing["output"]
    assert ATTRIBUTIONS["backward"] in failing["output"]
    assert tests["layer 1 dW"]["status"] == "passed"
    assert tests["hidden: secret networks"]["visibility"] == "hidden"
    assert str(SECRET) not in path.read_text() and str(SECRET) not in out.getvalue()


def test_the_builtin_gets_full_marks_on_the_command_line(tmp_path):
    path = tmp_path / "results.json"
    code = cli.main(["--gradescope", str(path), "--rubric", str(_quick_rubric(tmp_path))],
                    out=io.StringIO())  # fmt: skip
    results = json.loads(path.read_text())
    assert code == 0 and format_problems(results) == []
    assert all(t["status"] == "passed" for t in results["tests"])
    assert results["score"] == sum(t["max_score"] for t in results["tests"])


def _quick_rubric(tmp_path):
    path = tmp_path / "quick.toml"
    path.write_text("[networks]\ncombinations = false\nrandom = 1\n")
    return path


def test_code_that_cannot_be_imported_scores_zero_with_the_reason(tmp_path):
    path = tmp_path / "results.json"
    code = cli.main(["--impl", "no.such.module", "--gradescope", str(path)], out=io.StringIO())
    results = json.loads(path.read_text())
    assert code == 2 and format_problems(results) == [] and results["score"] == 0
    assert all("cannot import module 'no.such.module'" in t["output"] for t in results["tests"])


def test_grade_takes_a_module_an_object_or_a_notebook_namespace():
    rubric = small(hidden={"groups": []})
    namespace = {"loss": backprop.loss, "gradients": backprop.gradients,
                 "update": backprop.update, "forward": backprop.forward, "np": None}  # fmt: skip
    for impl in (backprop, SimpleNamespace(**namespace), namespace):
        graded = grade(impl, rubric=rubric)
        assert graded.score == graded.max_score, graded.first_error()
    del namespace["gradients"]
    graded = grade(namespace, rubric=rubric)
    assert graded.score == 0 and "'gradients'" in graded.first_error()


def test_grade_is_public_and_lazy():
    assert "grade" in reference.__all__ and reference.grade is grade


def test_without_update_the_update_checks_score_nothing_and_say_why():
    rubric = small(hidden={"groups": []})
    graded = grade(SimpleNamespace(loss=backprop.loss, gradients=backprop.gradients), rubric=rubric)
    item = next(i for i in graded.items if i.name == "check: update")
    assert item.score == 0 and "does not apply" in item.output and "no update" in item.output
    assert next(i for i in graded.items if i.name == "layer 1 dW").passed


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="timeout must be > 0"):
        grade(backprop, timeout=0)
    with pytest.raises(ValueError, match="wall_limit must be > 0"):
        grade(backprop, wall_limit=-1)
    with pytest.raises(ValueError, match="hidden_seed must be an integer >= 0"):
        grade(backprop, hidden_seed=-5)


def test_checks_outside_the_rubrics_scope_are_not_graded():
    """A course without bce: the fixed checks whose networks need it cannot be earned, so they
    are left out of the items and of the maximum, and a correct implementation gets every
    point there is."""
    from reference.inputs.scope import Scope

    rubric = small(scope={"costs": ["mse"]}, hidden={"groups": []})
    graded = grade(backprop, rubric=rubric)
    outside = {
        f"check: {name}"
        for name, fn in checks.FIXED_CHECKS.items()
        if fn(backprop, Scope(costs=frozenset({"mse"}))).ok is None
    }
    assert outside  # relu'(0) and saturation are on bce networks
    names = [i.name for i in graded.items]
    assert names == [n for n in expected_names(rubric, hidden=False) if n not in outside]
    assert graded.score == graded.max_score > 0
    assert "not a failure" not in json.dumps(graded.to_gradescope())


def test_a_network_the_code_does_not_support_counts_against_it_and_says_so():
    """The rubric, not the code, sets what is graded: NotImplementedError costs the item, and
    the output does not tell the student it is "not a failure"."""
    from tests.outside.partial import MSE_ONLY

    graded = grade(MSE_ONLY, rubric=small(hidden={"groups": []}))
    text = json.dumps(graded.to_gradescope())
    assert graded.score < graded.max_score
    assert "counts as not holding" in text and "not a failure" not in text
