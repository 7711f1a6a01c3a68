"""A grade nobody can fake: each way a motivated student could cheat, written as a graded
submission, gets what its own code earns or an integrity finding.

One class folder holds honest students and the attacks; it is graded once
(``grade_class``, one worker per submission, the default grading policy) and each test
reads its own row, the results files and what the worker printed. The honest submission
is ``tests/submissions/honest.py`` (NumPy only, written from the formulas); the attacks are
copies of it with a few lines added.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference.boundary.policy import FORBIDDEN, scan
from reference.grading.grade import grade
from reference.grading.rubric import load_rubric
from reference.grading.submissions import GRADEBOOK, grade_class

HONEST = (Path(__file__).parent / "submissions" / "honest.py").read_text()
SEED = 90210417
"""The hidden networks' seed: a number that appears nowhere else, so a leak is findable."""
TIMEOUT = 1.0
"""The per-call limit the class is graded with (the honest code takes milliseconds)."""
WALL = 8.0
"""The limit on all of one submission's calls (a safety net far above honest code's need)."""
RUBRIC = """
[networks]
random = 1
combinations = false
[scope]  # the seed's names, whatever else an entry point of the test run's sys.path registers
activations = ["sigmoid", "tanh", "relu"]
output_activations = ["sigmoid", "tanh", "relu"]
costs = ["mse", "bce"]
[[hidden.groups]]
name = "hidden networks"
networks = 2
points = 4
"""

# Each attack: the lines put before (at import) or in place of the honest code.
SPY = """
import json, os, sys
seen = {"modules": sorted(sys.modules), "environ": dict(os.environ), "reads": {}}
for path in ["/proc/self/environ", f"/proc/{os.getppid()}/cmdline",
             f"/proc/{os.getppid()}/environ", "../victim.py", CLASS + "/victim.py", RUBRIC]:
    try:
        with open(path, "rb") as fh:
            seen["reads"][path] = fh.read().decode(errors="replace")
    except Exception as exc:
        seen["reads"][path] = "refused: " + type(exc).__name__
try:
    seen["listing"] = os.listdir(CLASS)
except Exception as exc:
    seen["listing"] = "refused: " + type(exc).__name__
print("SEEN " + json.dumps(seen))
"""
STACK_READER = """
import sys
_calls = [0]
def _look():
    _calls[0] += 1
    if _calls[0] <= 40:
        frame, text = sys._getframe(1), []
        while frame is not None:
            text.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name} {frame.f_locals!r}"[:3000])
            frame = frame.f_back
        print("STACK " + " | ".join(text))
"""
VANDAL = """
import os, subprocess, sys
for attempt in (
    lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); "
                              f"open({MARK!r} + '.popen', 'w').write('x')"],
                             start_new_session=True),
    lambda: os.fork(),
    lambda: os.system(f"sleep 3; echo x > {MARK}.system &"),
):
    try:
        pid = attempt()
        if pid == 0:
            import time; time.sleep(3); open(MARK + ".fork", "w").write("x"); os._exit(0)
    except Exception:
        pass
"""
CTYPES_FORK = """
import ctypes, os, time
_libc = ctypes.CDLL(None)
if _libc.fork() == 0:  # past the audit hook, and out of the worker's process group
    _libc.setsid()
    _parent = os.getppid()
    while os.getppid() == _parent:  # until the worker is gone: then it would outlive it
        time.sleep(0.1)
    time.sleep(1)
    with open(MARK + ".ctypes", "w") as fh:
        fh.write("still alive after grading")
    _libc._exit(0)
"""
PATCHER = """
import sys
for name, module in list(sys.modules.items()):
    if name.startswith("reference"):
        for attr in dir(module):
            if attr.startswith(("_call", "check", "score", "grade", "serve")):
                try:
                    setattr(module, attr, lambda *a, **k: {"ok": True, "value": 0.0})
                except Exception:
                    pass
"""
THIEF = """
import sys
import numpy as np
def gradients(params, X, Y, **kw):  # the answers from whoever called, if they are on the stack
    frame = sys._getframe(1)
    while frame is not None:
        for value in frame.f_locals.values():
            if (isinstance(value, list) and value and isinstance(value[0], tuple)
                    and all(isinstance(a, np.ndarray) for pair in value for a in pair)
                    and value is not params):
                return value
        frame = frame.f_back
    return [(W + 1.0, b + 1.0) for W, b in params]  # found nothing: wrong on every network
"""
DISARM = """
import signal
signal.setitimer(signal.ITIMER_REAL, 0)
signal.signal(signal.SIGALRM, signal.SIG_IGN)
"""


def _submission(prefix: str = "", suffix: str = "") -> str:
    return prefix + "\n" + HONEST + "\n" + suffix


def _class_folder(root: Path) -> tuple[Path, Path]:
    folder, marks = root / "class", root / "marks"
    folder.mkdir()
    marks.mkdir()
    consts = f"CLASS = {str(folder)!r}\nRUBRIC = {str(root / 'rubric.toml')!r}\n"
    mark = f"MARK = {str(marks / 'mark')!r}\n"
    files = {
        "victim.py": HONEST,
        "honest.py": HONEST,
        "reexport.py": "from backprop import forward, gradients, loss, update\n",
        "oracle.py": _submission(
            suffix=(
                "from reference.oracles.jax_model import jax_gradients\n"
                "def gradients(params, X, Y, *, activations, cost, l2=0.0):\n"
                "    return jax_gradients(params, X, Y, activations=activations, cost=cost).grads\n"
            )
        ),
        "hidden_import.py": _submission(
            suffix=(
                "def gradients(params, X, Y, *, activations, cost, l2=0.0):\n"
                "    m = __import__('ref' + 'erence.oracles.jax_model', fromlist=['x'])\n"
                "    return m.jax_gradients(params, X, Y, activations=activations, cost=cost).grads\n"
            )
        ),
        "patcher.py": _submission(
            PATCHER,
            (
                "def gradients(params, X, Y, *, activations, cost, l2=0.0):\n"
                "    return [(0 * W, 0 * b) for W, b in params]\n"
            ),
        ),
        "spy.py": _submission(consts + SPY),
        "stack_reader.py": _submission(
            STACK_READER,
            (
                "_loss, _gradients = loss, gradients\n"
                "def loss(*a, **k):\n    _look()\n    return _loss(*a, **k)\n"
                "def gradients(*a, **k):\n    _look()\n    return _gradients(*a, **k)\n"
            ),
        ),
        "thief.py": _submission(suffix=THIEF),
        "vandal.py": _submission(mark + VANDAL),
        "ctypes_fork.py": _submission(mark + CTYPES_FORK),
        "sleeper.py": _submission(
            suffix=(
                "import time\n_gradients = gradients\n"
                f"def gradients(*a, **k):\n    time.sleep({0.8 * TIMEOUT})\n    return _gradients(*a, **k)\n"
            )
        ),
        "disarm.py": _submission(
            DISARM, ("def gradients(*a, **k):\n    while True:\n        pass\n")
        ),
        # a module named after a library the harness uses, in the class folder
        "jax.py": "import os\nos._exit(1)\n",
        "numpy.py": "raise SystemExit('numpy.py shadows numpy')\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    (root / "rubric.toml").write_text(RUBRIC)
    return folder, marks


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once from inside its folder; the rows by submission, the output
    folder, the marks folder, and the victim's file and gradebook row as graded."""
    root = tmp_path_factory.mktemp("integrity")
    folder, marks = _class_folder(root)
    out = root / "grades"
    rubric = load_rubric(root / "rubric.toml")
    cwd = os.getcwd()
    os.chdir(folder)  # graded from inside the class folder, beside jax.py and numpy.py
    try:
        rows = grade_class(folder, out, rubric=rubric, hidden_seed=SEED, jobs=2,
                           timeout=TIMEOUT, wall_limit=WALL)  # fmt: skip
    finally:
        os.chdir(cwd)
    by_name = {row.submission: row for row in rows}
    book = (out / GRADEBOOK).read_text()
    return {"rows": by_name, "out": out, "marks": marks, "folder": folder, "book": book,
            "victim": (folder / "victim.py").read_text(), "root": root}  # fmt: skip


def _full(row) -> bool:
    return row.grade.score == row.grade.max_score and row.grade.max_score > 0


def test_honest_students_get_full_marks_beside_the_attacks(graded):
    for name in ("honest.py", "victim.py"):
        row = graded["rows"][name]
        assert _full(row), (name, row.grade.first_error())
        assert row.grade.integrity == []


@pytest.mark.parametrize("name", ["reexport.py", "oracle.py", "hidden_import.py"])
def test_delegating_to_the_harness_or_the_builtin_is_an_integrity_finding(graded, name):
    row = graded["rows"][name]
    assert row.grade.integrity, row.grade.output
    assert row.grade.score == 0, row.grade.output  # the default rubric zeroes it
    said = " ".join(row.grade.integrity)
    assert "backprop" in said or "reference" in said
    results = json.loads(row.results.read_text())
    assert "integrity" in results["output"]


def test_the_static_scan_names_written_imports_and_leaves_built_names_to_the_hook(graded):
    folder = graded["folder"]
    assert scan(folder / "reexport.py") == ["reexport.py:1 imports backprop"]
    assert any("reference.oracles.jax_model" in f for f in scan(folder / "oracle.py"))
    assert scan(folder / "hidden_import.py") == []  # built at run time: the hook names it
    assert "imported reference" in " ".join(graded["rows"]["hidden_import.py"].grade.integrity)
    assert scan(folder / "honest.py") == []


def test_the_scan_of_a_folder_passes_over_a_file_it_cannot_parse(tmp_path):
    (tmp_path / "draft.py").write_text("def loss(params, X, Y\n    import backprop\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "net.py").write_text("x = 1\nfrom backprop.network import loss\n")
    assert scan(tmp_path) == ["pkg/net.py:2 imports backprop.network"]  # the worker names the other


def test_patching_the_harness_in_the_worker_changes_no_verdict(graded):
    row = graded["rows"]["patcher.py"]
    scores = row.grade.scores()
    gradient_items = [k for k in scores if k.startswith("layer ")]
    # the worker's replies are the code's answers, whatever it patched to make them: its zero
    # gradients are judged here, and fail
    assert gradient_items and all(scores[k] == 0 for k in gradient_items), scores
    assert not row.grade.integrity


def test_the_worker_holds_no_judge_and_no_secret(graded):
    row = graded["rows"]["spy.py"]
    line = next(x for x in row.grade.printed if x.startswith("SEEN "))
    seen = json.loads(line[5:])
    modules = set(seen["modules"])
    judges = ("oracles", "formulas", "registry", "judging", "run", "report", "grading", "frontends")
    for judge in (*(f"reference.{j}" for j in judges), "jax", "backprop", "hypothesis"):
        assert not any(m == judge or m.startswith(judge + ".") for m in modules), judge
    assert "BACKPROP_HIDDEN_SEED" not in seen["environ"]
    assert str(SEED) not in json.dumps(seen["environ"])
    for path, text in seen["reads"].items():
        assert str(SEED) not in text, path
        if "victim" in path or "rubric" in path or f"/proc/{os.getpid()}" in path:
            assert text.startswith("refused"), (path, text[:200])
    assert str(seen["listing"]).startswith("refused")
    assert _full(row) or row.grade.integrity  # it read nothing it may not: graded on its code


def test_the_hidden_seed_reaches_nothing_anyone_sees(graded):
    texts = [graded["book"]]
    for row in graded["rows"].values():
        texts += [row.results.read_text(), row.grade.output, *row.grade.printed]
    assert not any(str(SEED) in t for t in texts)


def test_no_answer_can_be_taken_from_the_callers_frames(graded):
    scores = graded["rows"]["thief.py"].grade.scores()
    assert all(v == 0 for k, v in scores.items() if k.startswith("layer ")), scores


def test_hidden_networks_look_like_any_other_call_from_inside(graded):
    row = graded["rows"]["stack_reader.py"]
    stacks = [x for x in row.grade.printed if x.startswith("STACK ")]
    assert stacks, row.grade.printed[:5]
    for text in stacks:
        assert "hidden" not in text.lower() and str(SEED) not in text
        assert "rubric" not in text.lower()
    assert _full(row), row.grade.first_error()


def test_no_process_outlives_the_grading_and_no_file_is_touched(graded):
    time.sleep(4)  # past the 3 s the vandals' children would wait, and the 1 s of ctypes_fork
    assert sorted(p.name for p in graded["marks"].iterdir()) == []
    assert (graded["folder"] / "victim.py").read_text() == graded["victim"]
    assert (graded["out"] / GRADEBOOK).read_text() == graded["book"]
    vandal = graded["rows"]["vandal.py"].grade
    assert any("subprocess.Popen" in f or "os.fork" in f for f in vandal.integrity)
    assert _full(graded["rows"]["ctypes_fork.py"])  # its own code is right


@pytest.mark.parametrize("name", ["sleeper.py", "disarm.py"])
def test_slow_and_watchdog_disarming_code_ends_within_its_wall_limit(graded, name):
    row = graded["rows"][name]
    assert row.results.is_file()
    results = json.loads(row.results.read_text())
    assert results["score"] < sum(t["max_score"] for t in results["tests"])
    assert row.grade.execution_time < WALL + 10 * TIMEOUT + 30  # a safety net, not a speed test


def test_a_module_named_jax_or_numpy_in_the_class_folder_harms_only_its_author(graded):
    assert graded["rows"]["jax.py"].grade.score == 0
    assert graded["rows"]["numpy.py"].grade.score == 0
    assert _full(graded["rows"]["honest.py"])


def test_the_gradebook_has_every_submission(graded):
    with open(graded["out"] / GRADEBOOK, newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = [r["submission"] for r in rows]
    flagged = {r["submission"] for r in rows if r["integrity"]}
    assert flagged == {n for n, row in graded["rows"].items() if row.grade.integrity}
    assert sorted(names) == sorted(graded["rows"])


def test_a_rubric_can_allow_what_the_default_forbids(tmp_path):
    (tmp_path / "course.toml").write_text(RUBRIC + '\n[integrity]\nforbid = ["torch"]\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "mine.py").write_text(_submission(suffix="import json as _unused_json\n"))
    graded = grade(str(sub / "mine.py"), rubric=tmp_path / "course.toml", timeout=30)
    assert graded.integrity == [] and _full_grade(graded)
    assert set(load_rubric().forbid) == set(FORBIDDEN)


def _full_grade(g) -> bool:
    return g.score == g.max_score


def test_gradescope_writes_its_results_file_when_stopped_by_sigterm(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    started = tmp_path / "started"
    (sub / "slow.py").write_text(_submission(f"open({str(started)!r}, 'w').close()\n", (
        "import time\n_g = gradients\n"
        "def gradients(*a, **k):\n    time.sleep(0.5)\n    return _g(*a, **k)\n"
    )))  # fmt: skip
    results = tmp_path / "results" / "results.json"
    command = [sys.executable, "-m", "reference.frontends.cli", "--impl", str(sub / "slow.py"),
               "--gradescope", str(results), "--timeout", "30"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300  # a safety net for a loaded machine
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # its worker has imported it: the grading is under way
    proc.terminate()
    output, _ = proc.communicate(timeout=300)
    data = json.loads(results.read_text())
    assert "SIGTERM" in data["output"], output[-2000:]
    assert data["score"] == 0


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="dropping to another user needs root"
)
def test_user_runs_the_worker_as_a_less_privileged_user(tmp_path):
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    import numpy

    import reference

    # the interpreter (a venv's links followed), NumPy and the harness must be reachable
    for needed in (sys.executable, numpy.__file__, reference.__file__):
        real = Path(needed).resolve()
        for path in real.parents:
            if not path.stat().st_mode & 0o001:
                pytest.skip(f"{path} is closed to other users: {real} cannot be used as nobody")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "whoami.py").write_text(_submission("import os\nprint('UID', os.getuid())\n"))
    os.chmod(tmp_path, 0o755)
    graded = grade(str(sub / "whoami.py"), rubric=_written(tmp_path), timeout=30, user="nobody")
    assert f"UID {nobody.pw_uid}" in graded.printed, graded.printed[:5]
    assert _full_grade(graded), graded.first_error()


def _written(tmp_path: Path) -> Path:
    path = tmp_path / "rubric.toml"
    path.write_text(RUBRIC)
    return path
