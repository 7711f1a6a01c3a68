"""A class at once: every submission in a folder, each in its own worker, one gradebook."""

import csv
import io
import json
import sys
import threading

import pytest
from tiers import slow

import backprop
from reference.boundary.isolation import Failed
from reference.boundary.loading import ImplementationError, import_path, load_impl
from reference.bugs import CATALOG
from reference.frontends import cli
from reference.grading.grade import WALL_LIMIT, Deadline
from reference.grading.rubric import load_rubric
from reference.grading.submissions import (
    GRADEBOOK,
    LEADING,
    TRAILING,
    Row,
    columns,
    export_notebook,
    find_submissions,
    read_roster,
)
from reference.judging import checks
from tests import students

MEMBERS = (
    "loss, gradients = _impl.loss, _impl.gradients\nforward, update = _impl.forward, _impl.update\n"
)


def from_catalog(name):
    return f"from reference.bugs import {name} as _impl\n\n{MEMBERS}"


BUILTIN = "from backprop import forward, gradients, loss, update\n"
CORRECT = f"from reference.bugs import CORRECT as _impl\n\n{MEMBERS}"
# The hangs of the class sleep: a busy loop would take a core from the rest of the suite for
# the whole wall-time limit, twice. The limits stop a busy loop the same way (a worker that does
# not answer is killed): tests/test_worker.py and tests/test_grading.py hang in busy loops.
HANGS = (
    "import time\n\nfrom backprop import forward, loss, update\n\n\n"
    "def gradients(params, X, Y, *, activations, cost):\n    time.sleep(3600)\n"
)
HANGS_AT_IMPORT = "import time\n\ntime.sleep(3600)\n"
EXITS_IN_CALL = (
    "import os\n\nfrom backprop import forward, loss, update\n\n\n"
    "def gradients(params, X, Y, *, activations, cost):\n    os._exit(3)\n"
)
RAISES_IN_CALL = (
    "from backprop import forward, loss, update\n\n\n"
    "def gradients(params, X, Y, *, activations, cost):\n"
    "    raise RuntimeError('not written yet')\n"
)
TIMEOUT, WALL = 5, 30
"""Seconds per call and per submission: a correct submission takes a few seconds, a hang
runs into both."""


def expected_items(rubric):
    """The gradebook's item columns, from the rubric and the checks' tables."""
    names = [f"layer {l} {p}" for l in range(1, rubric.depth + 1) for p in ("dW", "db")]
    names += ["loss", *(f"check: {n}" for n in (*checks.PROBLEM_CHECKS, *checks.FIXED_CHECKS))]
    return names + [f"hidden: {g.name}" for g in rubric.hidden]


def by_blame():
    """The catalog's first mistake for each place it blames: ``{blame: name}``."""
    first = {}
    for name, mistake in CATALOG.items():
        if mistake.blame is not None:
            first.setdefault(mistake.blame, name)
    return first


def write_class(root):
    """The generated class: ``{submission: what its row must say}``. A row is ``("full",)``,
    ``("mistake", catalog name)`` or ``("short", text(s) its first error holds, zero?)``."""
    root.mkdir()
    expect = {}

    def put(name, source, *row):
        (root / name).write_text(source)
        expect[name] = row

    put("builtin.py", BUILTIN, "full")
    put("shared_correct.py", CORRECT, "full")
    package = root / "carol"  # a package with a relative import
    package.mkdir()
    (package / "__init__.py").write_text("from .net import forward, gradients, loss, update\n")
    (package / "net.py").write_text(BUILTIN)
    expect["carol"] = ("full",)
    own = root / "dave"  # a package with its own module called backprop
    own.mkdir()
    (own / "__init__.py").write_text("from .backprop import forward, gradients, loss, update\n")
    (own / "backprop.py").write_text(from_catalog("sign_flipped"))
    expect["dave"] = ("mistake", "sign_flipped")
    # a file called backprop.py: the built-in package must not stand in for it
    put("backprop.py", from_catalog("dW2_times_2"), "mistake", "dW2_times_2")
    # one mistake per place the checker blames (test_grading grades every catalogued one
    # in-process; here each is one more worker beside the others)
    for name in by_blame().values():
        if name not in ("dW2_times_2", "sign_flipped"):
            put(f"{name}.py", from_catalog(name), "mistake", name)
    # a hang: each call stops at TIMEOUT, the submission at WALL, whichever shows most
    put("hangs.py", HANGS, "short", ("did not return within", "wall-time limit"), False)
    # WALL < IMPORT_TIME: the wall limit stops the import
    put("hangs_at_import.py", HANGS_AT_IMPORT, "short", "wall-time limit", True)
    put("syntax.py", "def loss(params, X, Y, *, activations, cost)\n    return 0.0\n",
        "short", "syntax error", True)  # fmt: skip
    put("exits.py", "import sys\n\nsys.exit('no submission yet')\n", "short", "sys.exit", True)
    put("needs_torch_nightly.py", "import no_such_module_for_grading\n" + BUILTIN,
        "short", "No module named 'no_such_module_for_grading'", True)  # fmt: skip
    put("exits_in_call.py", EXITS_IN_CALL, "short", "os._exit(3)", False)
    put("raises.py", RAISES_IN_CALL, "short", "not written yet", False)
    (root / "no_init").mkdir()
    (root / "no_init" / "main.py").write_text(BUILTIN)
    expect["no_init"] = ("short", "no __init__.py", True)
    (root / "notes.txt").write_text("not a submission")
    (root / "_helpers.py").write_text("raise SystemExit('skipped: starts with _')\n")
    return expect


@slow
def test_a_class_is_graded_one_row_each(tmp_path):
    expect = write_class(tmp_path / "class")
    mistakes = {CATALOG[want[1]].blame for want in expect.values() if want[0] == "mistake"}
    assert mistakes == set(by_blame())  # every place the checker blames, in one class
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(  # the "students" are the catalog's mistakes: the course allows imports
        "[networks]\ncombinations = false\nrandom = 2\n"
        '[[hidden.groups]]\nname = "hidden"\nnetworks = 1\npoints = 4\n'
        "[integrity]\nforbid = []\n"
        # the seed's names, whatever else an entry point of the test run's sys.path registers
        '[scope]\nactivations = ["sigmoid", "tanh", "relu"]\n'
        'output_activations = ["sigmoid", "tanh", "relu"]\ncosts = ["mse", "bce"]\n'
    )
    grades = tmp_path / "grades"
    out = io.StringIO()
    code = cli.main(
        ["--submissions", str(tmp_path / "class"), "--grades", str(grades), "--rubric",
         str(rubric), "--timeout", str(TIMEOUT), "--submission-timeout", str(WALL),
         "--jobs", "2", "--hidden-seed", "4242"],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    with open(grades / GRADEBOOK, newline="") as fh:
        rows = list(csv.reader(fh))
    items = expected_items(load_rubric(rubric))
    assert rows[0] == [*LEADING, *items, *TRAILING]
    book = {r["submission"]: r for r in (dict(zip(rows[0], row)) for row in rows[1:])}
    assert sorted(book) == sorted(expect)
    top = float(book["builtin.py"]["max"])
    assert all(float(r["max"]) == top for r in book.values())
    for name, want in expect.items():
        row = book[name]
        score, error = float(row["score"]), row["first error"]
        assert row["id"] == name.removesuffix(".py") and row["integrity"] == ""
        assert sum(float(row[i]) for i in items) == pytest.approx(score, abs=0.02), name
        stem = name[:-3] if name.endswith(".py") else name
        results = json.loads((grades / f"{stem}.json").read_text())
        tests = {t["name"]: t for t in results["tests"]}
        assert results["score"] == pytest.approx(score, abs=1e-3), name
        if want[0] == "full":
            assert all(t["status"] == "passed" for t in tests.values()), name
            assert score == top and error == "", (name, error)
        elif want[0] == "mistake" and not _shows(want[1], load_rubric(rubric), 4242):
            # its networks (a softmax output, say) are none of the few this rubric grades
            assert score == top, (name, score)
        elif want[0] == "mistake":
            blame = CATALOG[want[1]].blame
            layer = {"L": 3, "L-1": 2}.get(blame[0], blame[0])
            params = {"W": ["dW"], "b": ["db"], "delta": ["dW", "db"]}[blame[1]]
            assert 0 < score < top, (name, score)
            for param in params:
                item = tests[f"layer {layer} {param}"]
                assert item["score"] < item["max_score"], (name, item)
            assert error, name
            late = ("did not return within", "wall-time limit")
            assert not any(w in t["output"] for t in tests.values() for w in late), name
        else:
            _, says, zero = want
            assert any(text in error for text in ([says] if isinstance(says, str) else says)), (
                name,
                error,
            )
            assert score == 0 if zero else score < top, (name, score)


def _shows(mistake: str, rubric, hidden_seed: int) -> bool:
    """Whether ``mistake``'s gradients fail on any network ``rubric`` grades (in-process)."""
    from reference import check_gradients
    from reference.grading.grade import hidden_problems, public_problems

    graded = public_problems(rubric) + [
        p for _, group in hidden_problems(rubric, hidden_seed) for p in group
    ]
    return any(
        not check_gradients(CATALOG[mistake], p.params, p.X, p.Y, **p.kwargs()).ok for p in graded
    )


class Hangs:
    """A runner whose job with argument "hang" runs until the runner is killed."""

    name, declared = "hangs", None

    def __init__(self):
        self.killed, self.closed = threading.Event(), False

    def run(self, job, arg):
        if arg == "hang":
            self.killed.wait(60)
        return "done"

    def kill(self):
        self.killed.set()

    def close(self):
        self.closed = True


def test_the_wall_time_limit_kills_the_job_that_runs_past_it_and_runs_nothing_after():
    runner = Hangs()
    limited = Deadline(runner, 0.5)
    assert limited.run(None, "quick") == "done"
    late = limited.run(None, "hang")
    assert runner.killed.is_set()
    assert isinstance(late, Failed) and late.finding.kind == WALL_LIMIT
    assert "ran past the wall-time limit of 0.5 s" in late.finding.describe()
    after = limited.run(None, "quick")
    assert isinstance(after, Failed) and "wall-time limit" in after.finding.message
    limited.close()
    assert runner.closed
    with pytest.raises(ValueError, match="wall-time limit must be > 0"):
        Deadline(Hangs(), 0)


def test_find_submissions_takes_files_and_directories_only(tmp_path):
    for name in ("b.py", "a.py", "c.ipynb", ".hidden.py", "_private.py", "data.csv"):
        (tmp_path / name).write_text("")
    (tmp_path / "pkg").mkdir()
    assert [p.name for p in find_submissions(tmp_path)] == ["a.py", "b.py", "c.ipynb", "pkg"]
    with pytest.raises(ValueError, match="is not a directory"):
        find_submissions(tmp_path / "a.py")


def test_a_file_called_backprop_is_the_students_not_the_builtin(tmp_path):
    for k, mistake in enumerate(("dW2_times_2", "sign_flipped")):
        (tmp_path / f"s{k}").mkdir()
        (tmp_path / f"s{k}" / "backprop.py").write_text(
            from_catalog(mistake) + f"WHO = {mistake!r}\n"
        )
    first = load_impl(str(tmp_path / "s0" / "backprop.py"))
    second = load_impl(str(tmp_path / "s1" / "backprop.py"))
    assert (first.WHO, second.WHO) == ("dW2_times_2", "sign_flipped")
    assert first.__name__ != second.__name__ and "backprop" not in (first.__name__, second.__name__)
    assert sys.modules["backprop"] is backprop and not hasattr(backprop, "WHO")
    assert str(tmp_path / "s0") == sys.path[-2] and str(tmp_path / "s1") == sys.path[-1]
    sys.path.remove(str(tmp_path / "s0"))
    sys.path.remove(str(tmp_path / "s1"))


def test_a_path_that_is_not_a_module_says_so(tmp_path):
    with pytest.raises(ImplementationError, match="no such file or directory"):
        import_path(tmp_path / "missing.py")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ImplementationError, match=r"has no __init__\.py"):
        import_path(tmp_path / "folder")


def test_bad_submission_flags_are_usage_errors(tmp_path, capsys):
    def run(*argv):
        return cli.main(list(argv), out=io.StringIO())

    assert run("--submissions", str(tmp_path / "none")) == 2
    assert "not a directory" in capsys.readouterr().err
    assert run("--submissions", str(tmp_path), "--jobs", "0") == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
    assert run("--submissions", str(tmp_path), "--submission-timeout", "0") == 2
    assert "--submission-timeout must be > 0" in capsys.readouterr().err
    assert run("--submissions", str(tmp_path), "--gradescope", str(tmp_path / "r.json")) == 2
    assert "give one of the two" in capsys.readouterr().err
    assert run("--rubric", str(load_rubric().source)) == 2
    assert "go with --gradescope PATH or --submissions DIR" in capsys.readouterr().err


def test_a_correct_file_called_backprop_passes_from_its_own_folder(tmp_path):
    """A student's correct backprop.py, checked from another folder as a teacher would: the
    harness's own use of the built-in package (its tables) must not pick up the student's
    file, which joins sys.path ahead of an editable install's finder."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    student = tmp_path / "student"
    student.mkdir()
    shutil.copy(Path(__file__).parent / "outside" / "rounded.py", student / "backprop.py")
    done = subprocess.run(
        [sys.executable, "-m", "reference.frontends.cli", "--impl",
         f"{student / 'backprop.py'}:AT_ZERO_1", "--networks", "0", "--quiet",
         "--activations", "tanh", "--output-activations", "sigmoid"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# --- the gradebook a teacher imports, notebooks --------------------------------------------------


def _notebook(path, cells):
    """A notebook file: a markdown cell first, then ``cells`` (source texts) as code cells."""
    data = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Homework 3\n"]}]
        + [
            {"cell_type": "code", "metadata": {}, "execution_count": k, "outputs": [],
             "source": text.splitlines(keepends=True)}
            for k, text in enumerate(cells, start=1)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(data))


RAISES_ON_BCE = (
    "_gradients = gradients\n\n\n"
    "def gradients(params, X, Y, *, activations, cost):\n"
    "    if cost == 'bce':\n"
    "        raise ValueError('bce is for next week')\n"
    "    return _gradients(params, X, Y, activations=activations, cost=cost)\n"
)
"""A notebook cell that raises on every bce network."""


def test_a_notebook_is_exported_cell_by_cell(tmp_path):
    _notebook(tmp_path / "hw.ipynb", ["%matplotlib inline\nimport numpy as np\n", "x = 1\ny = 2\n"])
    exported = export_notebook(tmp_path / "hw.ipynb", tmp_path / "out")
    text = exported.path.read_text()
    assert exported.path.name == "hw.py" and "# %matplotlib inline" in text
    compile(text, str(exported.path), "exec")  # valid Python, the magic left out
    lines = text.splitlines()
    assert exported.where(lines.index("y = 2") + 1) == "cell 3, line 2"
    said = f"raised ValueError (at {exported.path}:{lines.index('x = 1') + 1}: x = 1)"
    assert exported.translate(said) == "raised ValueError (at hw.ipynb, cell 3, line 1: x = 1)"
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match=r"notebook bad\.ipynb: not a readable notebook"):
        export_notebook(tmp_path / "bad.ipynb", tmp_path / "out")


def test_a_class_with_a_notebook_and_a_roster_gives_an_importable_gradebook(tmp_path):
    """A notebook graded through the worker like a file, its messages naming its cells; the
    roster's ids in the gradebook, one column per item, and the integrity column there."""
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(students.source())
    _notebook(folder / "bob.ipynb", [students.source(), RAISES_ON_BCE])
    (folder / "carol.py").write_text(students.source("bce sign"))
    roster = tmp_path / "roster.csv"
    roster.write_text("name,submission,id\nAlice,alice.py,s1\nBob,bob,s2\nDan,dan.py,s4\n")
    rubric = tmp_path / "rubric.toml"
    rubric.write_text("[networks]\ncombinations = false\nrandom = 1\n[hidden]\ngroups = []\n")
    grades, out = tmp_path / "grades", io.StringIO()
    code = cli.main(["--submissions", str(folder), "--grades", str(grades), "--rubric",
                     str(rubric), "--roster", str(roster), "--jobs", "1"], out=out)  # fmt: skip
    assert code == 0, out.getvalue()
    with open(grades / GRADEBOOK, newline="") as fh:
        book = list(csv.DictReader(fh))
    items = expected_items(load_rubric(rubric))
    assert list(book[0]) == [*LEADING, *items, *TRAILING]
    assert [(r["id"], r["submission"]) for r in book] == [
        ("s1", "alice.py"),
        ("s2", "bob.ipynb"),
        ("carol", "carol.py"),
    ]
    alice, bob, carol = book
    assert float(alice["score"]) == float(alice["max"]) and alice["first error"] == ""
    assert 0 < float(bob["score"]) < float(bob["max"])
    assert 0 < float(carol["score"]) < float(carol["max"])
    line = RAISES_ON_BCE.splitlines().index("        raise ValueError('bce is for next week')")
    where = f"bob.ipynb, cell 3, line {line + 1}"
    assert where in bob["first error"], bob["first error"]
    results = json.dumps(json.loads((grades / "bob.json").read_text()))
    assert where in results and "bob.py" not in results
    assert all(r["integrity"] == "" for r in book)
    for r in book:
        assert sum(float(r[i]) for i in items) == pytest.approx(float(r["score"]), abs=0.02)
    said = out.getvalue()
    assert "not in the roster (their id is their name): carol.py" in said
    assert "in the roster with no submission: dan" in said


def test_integrity_findings_fill_their_column():
    from reference.grading.grade import Grade, Item

    graded = Grade("eve.py", [Item("loss", 4.0, 4.0, "")], 0.0, "",
                   integrity=["imports backprop (forbidden)", "reads\nthe rubric"])  # fmt: skip
    row = Row("eve.py", graded, None, id="s5")
    header = columns([row])
    cells = dict(zip(header, row.cells(header[len(LEADING) : -len(TRAILING)])))
    assert cells["integrity"] == "imports backprop (forbidden); reads the rubric"
    assert cells["id"] == "s5" and cells["loss"] == "4"
    results = graded.to_gradescope()
    assert results["extra_data"]["integrity"] == graded.integrity
    assert "extra_data" not in Grade("ok.py", [], 0.0, "").to_gradescope()


@pytest.mark.parametrize(
    "text, says",
    [
        ("submission,name\na.py,Ann\n", "has no 'id' column"),
        ("student,email\n", "has no 'submission' or 'id' column"),
        ("submission,id\na.py,1\na,2\n", "line 3: submission 'a' is listed twice"),
        ("submission,id\n,1\n", "line 2: the submission is empty"),
    ],
)
def test_a_roster_without_what_it_needs_is_a_value_error_naming_it(tmp_path, text, says):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="roster") as info:
        read_roster(path)
    assert str(path) in str(info.value) and says in str(info.value)
    with pytest.raises(ValueError, match="cannot read it"):
        read_roster(tmp_path / "none.csv")
    assert read_roster_ok(tmp_path) == {"a": "s1", "pkg": "s2"}


def read_roster_ok(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text("\ufeffid , submission\ns1,a.ipynb\ns2,pkg\n")
    return read_roster(path)


def test_roster_flag_misuse_is_a_usage_error(tmp_path, capsys):
    roster = tmp_path / "r.csv"
    roster.write_text("submission\n")
    assert cli.main(["--roster", str(roster)], out=io.StringIO()) == 2
    assert "--roster goes with --submissions DIR" in capsys.readouterr().err
    code = cli.main(["--submissions", str(tmp_path), "--grades", str(tmp_path / "g"),
                     "--roster", str(roster)], out=io.StringIO())  # fmt: skip
    assert code == 2 and "has no 'id' column" in capsys.readouterr().err
