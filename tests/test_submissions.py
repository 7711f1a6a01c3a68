"""A class at once: every submission in a folder, each in its own worker, one gradebook."""

import csv
import io
import json
import sys
import threading

import pytest

import backprop
from reference.boundary.isolation import Failed
from reference.boundary.loading import ImplementationError, import_path, load_impl
from reference.bugs import CATALOG
from reference.frontends import cli
from reference.frontends.grading import WALL_LIMIT, Deadline
from reference.frontends.rubric import load_rubric
from reference.frontends.submissions import COLUMNS, GRADEBOOK, find_submissions

MEMBERS = (
    "loss, gradients = _impl.loss, _impl.gradients\nforward, update = _impl.forward, _impl.update\n"
)


def from_catalog(name):
    return f"from reference.bugs import {name} as _impl\n\n{MEMBERS}"


BUILTIN = "from backprop import forward, gradients, loss, update\n"
CORRECT = f"from reference.bugs import CORRECT as _impl\n\n{MEMBERS}"
HANGS = (
    "from backprop import forward, loss, update\n\n\n"
    "def gradients(params, X, Y, *, activations, cost):\n    while True:\n        pass\n"
)
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
    for name, mistake in CATALOG.items():
        if mistake.blame is not None and name not in ("dW2_times_2", "sign_flipped"):
            put(f"{name}.py", from_catalog(name), "mistake", name)
    # a hang: each call stops at TIMEOUT, the submission at WALL, whichever shows most
    put("hangs.py", HANGS, "short", ("did not return within", "wall-time limit"), False)
    put("hangs_at_import.py", "while True:\n    pass\n", "short", "did not return within", True)
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


def test_a_class_is_graded_one_row_each(tmp_path):
    expect = write_class(tmp_path / "class")
    assert len(expect) >= 20
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(
        "[networks]\ncombinations = false\nrandom = 2\n"
        '[[hidden.groups]]\nname = "hidden"\nnetworks = 1\npoints = 4\n'
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
    assert tuple(rows[0]) == COLUMNS
    book = {r[0]: r for r in rows[1:]}
    assert sorted(book) == sorted(expect)
    top = float(book["builtin.py"][2])
    assert all(float(r[2]) == top for r in book.values())
    for name, want in expect.items():
        _, score, _, error = book[name]
        score = float(score)
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
    from reference.frontends.grading import hidden_problems, public_problems

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
    for name in ("b.py", "a.py", ".hidden.py", "_private.py", "data.csv"):
        (tmp_path / name).write_text("")
    (tmp_path / "pkg").mkdir()
    assert [p.name for p in find_submissions(tmp_path)] == ["a.py", "b.py", "pkg"]
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
