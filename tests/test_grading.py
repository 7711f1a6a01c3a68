"""Grading: the rubric, each item's points and output, hidden networks, Gradescope's format."""

import io
import json
import re
import warnings
from types import SimpleNamespace

import pytest
from tiers import first_quick, slow

import backprop
import reference
from reference.boundary.loading import OPTIONAL
from reference.bugs import CATALOG, Correct
from reference.frontends import cli
from reference.grading import families
from reference.grading.grade import (
    HIDDEN_SEED_VARIABLE,
    SELF_CHECK,
    grade,
    hidden_problems,
    public_problems,
    safe_text,
)
from reference.grading.rubric import (
    VISIBILITIES,
    RubricError,
    check_names,
    load_rubric,
    parse_rubric,
)
from reference.judging import checks
from reference.judging.checker import check_gradients
from reference.judging.records import ATTRIBUTIONS
from tests import students

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
        for key in ("output_format", "name_format"):
            if key in test and test[key] not in _FORMATS:
                bad.append(f"{where}: {key} {test[key]!r}")
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
        lambda r: r["tests"][0].update(output_format="rich"),
        lambda r: r.update(stdout_visibility="students"),
    ):
        broken = json.loads(json.dumps(good))
        breaking(broken)
        assert format_problems(broken), broken


_RENDERED = ("simple_format", "html", "md", "ansi")
"""The formats in which Gradescope renders markup (its specification, "Output String
Formatting"): ``simple_format`` is the top-level output's default, ``text`` the tests'."""


def before_due_date(results):
    """What a student sees of ``results`` before the due date, as Gradescope's specification
    says ("Controlling test case visibility", "Controlling standard output visibility"): the
    top-level output; each test whose visibility (its own, else the top level's, else
    visible) is visible, with its name, score and output; the total score only when every
    test is visible; stdout only when stdout_visibility is visible. One text, each part with
    the format it is rendered in: ``[(text, format)]``."""
    top_vis = results.get("visibility", "visible")
    parts = [(results.get("output", ""), results.get("output_format", "simple_format"))]
    shown = [t for t in results.get("tests", []) if t.get("visibility", top_vis) == "visible"]
    name_format = results.get("test_name_format", "text")
    output_format = results.get("test_output_format", "text")
    for t in shown:
        parts.append((t.get("name", ""), t.get("name_format", name_format)))
        parts.append((f"{t.get('score')} / {t.get('max_score')}", "text"))
        parts.append((t.get("output", ""), t.get("output_format", output_format)))
    if len(shown) == len(results.get("tests", [])):
        parts.append((str(results.get("score")), "text"))
    if results.get("stdout_visibility", "hidden") == "visible":
        parts.append(("<the grader's stdout>", "ansi"))
    return parts


def test_before_due_date_reads_the_results_as_the_specification_shows_them():
    results = {"score": 3, "output": "top", "tests": [
        {"name": "a", "score": 1, "max_score": 1, "output": "seen"},
        {"name": "b", "score": 2, "max_score": 5, "output": "later", "visibility": "after_due_date"},
    ]}  # fmt: skip
    text = " ".join(t for t, _ in before_due_date(results))
    assert "seen" in text and "later" not in text and " b " not in f" {text} "
    assert "3" not in text.split()  # a hidden test hides the total
    assert ("top", "simple_format") in before_due_date(results)
    results["visibility"] = "after_due_date"
    assert "seen" not in " ".join(t for t, _ in before_due_date(results))


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


@pytest.mark.parametrize("name", first_quick(n for n, m in CATALOG.items() if m.blame is not None))
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
    # the checker's own reports of the same networks, once each (not once per parameter)
    reports = [
        check_gradients(type(mistake)(), p.params, p.X, p.Y, **p.kwargs())
        for p in public_problems(rubric)
    ]
    for param in params:
        item = items[f"layer {layer} {param}"]
        assert item.score < item.max_score, item.output
        assert item.output.startswith(f"layer {layer} {param} fails on ")
        said = []
        for report in reports:
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


def test_partial_credit_is_the_weight_of_the_networks_that_hold():
    rubric = parse_rubric({"networks": {"random": 0}, "hidden": {"groups": []}}, "test")
    graded = grade(CATALOG["dW2_times_2"], rubric=rubric)
    item = next(i for i in graded.items if i.name == "layer 2 dW")
    problems = public_problems(rubric)
    held = [
        check_gradients(CATALOG["dW2_times_2"], p.params, p.X, p.Y, **p.kwargs()).layers[2].ok
        for p in problems
    ]
    assert 0 < sum(held) < len(problems)  # dead relu units hide the factor on some networks
    weight = families.weighted_fraction(problems, held)
    assert item.score == pytest.approx(item.max_score * weight, abs=0.005)


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
    graded = grade({**namespace, "loss": 0.25}, rubric=rubric)
    assert graded.score == 0
    assert "the notebook's 'loss' is a float, not a function" in graded.first_error()
    del namespace["gradients"]
    graded = grade(namespace, rubric=rubric)
    assert graded.score == 0 and "'gradients'" in graded.first_error()


def test_grade_is_public_and_lazy():
    assert "grade" in reference.__all__ and reference.grade is grade


def test_an_optional_member_left_out_is_charged_only_where_the_rubric_requires_it():
    """Without ``update``: its check is not charged (full points, saying why) unless the
    rubric's ``require`` names it; then it scores 0 and says it does not apply."""
    bare = SimpleNamespace(loss=backprop.loss, gradients=backprop.gradients)
    for member in OPTIONAL:
        rubric = small(hidden={"groups": []}, require=[member])
        assert rubric.require == (member,)
    graded = grade(bare, rubric=small(hidden={"groups": []}))
    assert graded.score == graded.max_score, graded.first_error()
    item = next(i for i in graded.items if i.name == "check: update")
    assert "not charged" in item.output and "no update" in item.output
    required = grade(bare, rubric=small(hidden={"groups": []}, require=["update"]))
    item = next(i for i in required.items if i.name == "check: update")
    assert item.score == 0 and "does not apply" in item.output and "no update" in item.output
    assert required.max_score == graded.max_score
    assert next(i for i in required.items if i.name == "layer 1 dW").passed
    with pytest.raises(RubricError, match="require names 'gradients'; the optional members"):
        parse_rubric({"require": ["gradients"]}, "test")


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
    assert outside  # relu'(0)'s network is a bce one
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


# --- fair scoring --------------------------------------------------------------------------------


def _family_shares(problems, level):
    """{family key up to ``level``: its share of the weight}."""
    shares = {}
    for w, p in zip(families.weights(problems), problems):
        key = families.family(p)[:level]
        shares[key] = shares.get(key, 0.0) + w
    return shares


def test_each_family_gets_an_equal_share_at_each_level():
    """Output activation and cost first, then depth, then hidden activations: every family
    present at a level shares its parent's weight equally, whatever its number of networks."""
    problems = public_problems(load_rubric())
    assert sum(families.weights(problems)) == pytest.approx(1.0)
    keys = [families.family(p) for p in problems]
    for level in range(1, len(keys[0]) + 1):
        shares = _family_shares(problems, level)
        parents = _family_shares(problems, level - 1)
        for key, share in shares.items():
            siblings = [k for k in shares if k[: level - 1] == key[: level - 1]]
            assert share == pytest.approx(parents[key[: level - 1]] / len(siblings)), key
    sizes = {k: sum(f[0] == k for f in keys) for k in {f[0] for f in keys}}
    assert len(set(sizes.values())) > 1  # unequal families: counting networks would differ


def test_a_correct_seed_only_submission_gets_every_point():
    """A correct implementation of the seed's names alone, with no SUPPORTS, on the default
    rubric: no softmax case of the saturation check, nothing for its optional members."""
    graded = grade(students.module(), rubric=load_rubric(), hidden_seed=SECRET)
    assert graded.score == graded.max_score, graded.first_error()
    graded = grade(students.module(update=False), rubric=load_rubric())
    assert graded.score == graded.max_score, graded.first_error()


ROWS = """

_forward_columns, _loss_columns, _gradients_columns = forward, loss, gradients


def _columns(params):
    return [(W.T, b.reshape(-1, 1)) for W, b in params]


# the same code with one sample per row: X (m, n_0), W (n_in, n_out), b (n_out,), no SUPPORTS
def forward(params, X, *, activations):
    return _forward_columns(_columns(params), X.T, activations=activations).T


def loss(params, X, Y, *, activations, cost):
    return _loss_columns(_columns(params), X.T, Y.T, activations=activations, cost=cost)


def gradients(params, X, Y, *, activations, cost):
    grads = _gradients_columns(_columns(params), X.T, Y.T, activations=activations, cost=cost)
    return [(dW.T, db.ravel()) for dW, db in grads]
"""
"""The correct student's code in another layout, declared nowhere: what ``backprop-check``
detects."""


@pytest.mark.parametrize("mistake", [None, "bce sign"])
def test_code_in_an_undeclared_layout_is_graded_in_the_layout_detected(tmp_path, mistake):
    """As ``backprop-check`` checks it: the layout the probe detects, said in the output; a
    mistake in that code still costs its points."""
    path = tmp_path / "rows.py"
    path.write_text(students.source(mistake, extra=ROWS))
    graded = grade(str(path), rubric=small(hidden={"groups": []}))
    assert "NOTE layout: detected samples=rows,W=in_out,b=flat" in graded.output
    if mistake is None:
        assert graded.score == graded.max_score, graded.first_error()
    else:
        assert graded.score < graded.max_score
        assert "bce" in graded.first_error(), graded.first_error()


def test_a_mistake_in_one_family_costs_its_share_and_the_feedback_names_the_family():
    rubric = parse_rubric({"hidden": {"groups": []}}, "test")
    problems = public_problems(rubric)
    graded = grade(students.module("bce sign"), rubric=rubric)
    fused = ("sigmoid", "bce")
    in_family = [families.family(p)[0] == fused for p in problems]
    item = next(i for i in graded.items if i.name == f"layer {rubric.depth} db")
    share = 1 / len({families.family(p)[0] for p in problems})  # one output/cost family's
    assert item.score == pytest.approx(item.max_score * (1 - share), abs=0.005)
    assert f"every network with a sigmoid output and bce (all {sum(in_family)})" in item.output
    for other in graded.items:
        if other.name.startswith("layer ") and not other.passed:
            first = other.output.splitlines()[0]
            assert "with a sigmoid output and bce" in first, first
            assert "mse" not in first, first


@slow
def test_code_that_never_returns_earns_nothing(tmp_path):
    """Every call hangs: no item, repeatability included, has anything to give."""
    path = tmp_path / "hangs.py"
    hang = "    while True:\n        pass\n"
    path.write_text(
        students.source()
        + f"\n\ndef loss(params, X, Y, *, activations, cost):\n{hang}"
        + f"\n\ndef gradients(params, X, Y, *, activations, cost):\n{hang}"
    )
    graded = grade(str(path), rubric=small(hidden={"groups": []}), timeout=1)
    assert graded.score == 0, {i.name: i.score for i in graded.items if i.score}
    repeat = next(i for i in graded.items if i.name == "check: repeatability")
    assert any(why in repeat.output for why in ("no call", "no network", "not run"))


def test_the_wall_time_limit_that_fired_is_the_cause_given(tmp_path):
    """Each call slow but far inside its own limit, the submission's limit short: what the
    student reads names the wall-time limit for all the calls together, not a call's."""
    path = tmp_path / "slow.py"
    path.write_text(
        students.source(
            extra="\n\nimport time\n_loss, _gradients = loss, gradients\n\n\n"
            "def loss(*args, **kwargs):\n    time.sleep(0.5)\n    return _loss(*args, **kwargs)\n"
            "\n\ndef gradients(*args, **kwargs):\n    time.sleep(0.5)\n"
            "    return _gradients(*args, **kwargs)\n"
        )
    )
    graded = grade(str(path), rubric=small(hidden={"groups": []}), timeout=60, wall_limit=2)
    seen = " ".join(t for t, _ in before_due_date(graded.to_gradescope()))
    assert "wall-time limit of 2 s" in graded.student_output()
    assert "did not return within" not in seen and "ran past the time limit on" not in seen
    for item in graded.items:
        if not item.passed and item.name.startswith(("layer", "loss")):
            assert "wall-time limit" in item.output.split("\n- ")[1].splitlines()[0], item.output


# --- what the student sees ------------------------------------------------------------------------

_PATH = re.compile(r"(?<![\w.)\]])/(?:[\w.@+-]+/)+[\w.@+-]+|\b[A-Za-z]:\\")
"""An absolute path, as a student would spot one."""


def test_safe_text_cuts_paths_and_control_characters_and_keeps_ratios():
    text = "at /home/grader/class/alice.py:4, C:\\Users\\g\\bob.py:3; dJ/dA = (A - Y)/m, 1/m\x1b[0m"
    assert safe_text(text) == "at alice.py:4, bob.py:3; dJ/dA = (A - Y)/m, 1/m[0m"
    assert safe_text("in /srv/class/carol/net.py:3", ("/srv/class",)) == "in carol/net.py:3"


def test_before_the_due_date_a_student_sees_nothing_hidden_and_only_plain_text(tmp_path):
    """A submission whose assert message carries HTML, graded with a hidden group: the
    results file is valid, and what a student sees before the due date names no hidden
    item, group or network, no total that counts them, no path of the grading machine,
    and renders none of the student's text as markup."""
    folder = tmp_path / "class"
    folder.mkdir()
    shout = "<b>only mse</b> <script>x()</script>"
    (folder / "alice.py").write_text(
        students.source(
            extra="\n\n_gradients = gradients\n\n\ndef gradients(params, X, Y, *, activations, "
            f"cost):\n    assert cost == 'mse', {shout!r}\n"
            "    return _gradients(params, X, Y, activations=activations, cost=cost)\n"
        )
    )
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(
        "[networks]\ncombinations = false\nrandom = 2\n"
        '[[hidden.groups]]\nname = "secret networks"\nnetworks = 2\npoints = 6\n'
    )
    path = tmp_path / "results.json"
    cli.main(["--impl", str(folder / "alice.py"), "--gradescope", str(path), "--rubric",
              str(rubric), "--hidden-seed", str(SECRET)], out=io.StringIO())  # fmt: skip
    results = json.loads(path.read_text())
    assert format_problems(results) == []
    seen = before_due_date(results)
    text = "\n".join(t for t, _ in seen)
    assert shout in text  # the student's own message, shown to the student
    for part, fmt in seen:
        assert fmt not in _RENDERED or "<" not in part, (fmt, part[:200])
    hidden = [t for t in results["tests"] if t["visibility"] != "visible"]
    assert hidden and all(t["name"].startswith("hidden: ") for t in hidden)
    for t in hidden:
        assert t["name"] not in text and t["name"].removeprefix("hidden: ") not in text
    assert "hidden #" not in text and str(SECRET) not in path.read_text()
    visible = [t for t in results["tests"] if t["visibility"] == "visible"]
    said = re.search(r"([\d.]+) of ([\d.]+) points", results["output"])
    assert float(said[1]) == pytest.approx(sum(t["score"] for t in visible), abs=0.01)
    assert float(said[2]) == pytest.approx(sum(t["max_score"] for t in visible))
    assert not _PATH.search(text), _PATH.search(text)
    assert str(tmp_path) not in path.read_text()


def test_grading_in_this_process_says_it_is_a_self_check_and_counts_the_codes_warnings():
    noisy = students.module(
        extra="\n\nimport warnings as _warnings\n_gradients = gradients\n\n\n"
        "def gradients(*args, **kwargs):\n    _warnings.warn('noisy student', RuntimeWarning)\n"
        "    return _gradients(*args, **kwargs)\n"
    )
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        graded = grade(noisy, rubric=small(hidden={"groups": []}))
    assert not [w for w in shown if "noisy student" in str(w.message)]
    assert graded.score == graded.max_score, graded.first_error()
    assert graded.output.count(SELF_CHECK) == 1
    assert re.search(r"raised \d+ warning\(s\).*RuntimeWarning: noisy student", graded.output)


def test_a_load_failure_reaches_the_student_as_plain_text_without_paths(tmp_path):
    """The top-level output carries what the module raised on import: plain text, its
    markup shown as it is, and the folder it was graded from left out."""
    path = tmp_path / "bob.py"
    path.write_text("raise ImportError('<i>not yet</i>')\n")
    results = grade(str(path), rubric=small(hidden={"groups": []})).to_gradescope()
    assert format_problems(results) == []
    seen = before_due_date(results)
    assert "<i>not yet</i>" in seen[0][0] and seen[0][1] == "text"
    text = "\n".join(t for t, _ in seen)
    assert str(tmp_path) not in text and not _PATH.search(text), text


def test_a_wrong_shape_in_one_array_leaves_a_right_loss_its_points():
    """A transposed dW fails every network's gradients with a shape error; the loss, another
    member and right, keeps its points."""
    graded = grade(students.module("transposed dW"), rubric=small(hidden={"groups": []}))
    items = {i.name: i for i in graded.items}
    assert items["loss"].passed, items["loss"].output
    assert not items["layer 1 dW"].passed
    assert "the transpose's shape" in items["layer 1 dW"].output
