"""What CI reads: GitHub annotations and the step summary, the JUnit file against its schema,
the JSON's provenance, and the example workflow in CONTRIBUTING.md, run."""

import io
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import junit_schemas
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tiers import first_quick

import backprop
from reference.frontends import cli, options
from reference.inputs.problems import seed_problem
from reference.judging.checker import check_gradients
from reference.judging.checks import SEVERITIES, CheckResult
from reference.judging.outcome import Outcome
from reference.report import github, junit, provenance
from reference.report import text as text_report
from reference.report.terminal import SafeWriter, terminal_text

ROOT = Path(__file__).resolve().parents[1]

CORRECT = """
import backprop


def loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, Y, activations=activations, cost=cost)


def gradients(params, X, Y, *, activations, cost):
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)
"""

DOUBLED = """
import functools

import backprop


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, Y, activations=activations, cost=cost)


@logged
def gradients(params, X, Y, *, activations, cost):
    grads = backprop.gradients(params, X, Y, activations=activations, cost=cost)
    return grads[:-1] + [(2 * grads[-1][0], grads[-1][1])]
"""
"""The output layer's dW doubled: a wrong gradient with no traceback to point at, behind a
decorator (the annotation still points at the ``def`` line)."""

RAISES = CORRECT.replace(
    "    return backprop.gradients(params, X, Y, activations=activations, cost=cost)",
    "    raise ValueError('50% done:\\n::error file=evil.py,line=1::forged, by the code')",
)
"""A crash whose message tries to pass for a workflow command."""

PARTIAL = CORRECT.replace(
    "def gradients(params, X, Y, *, activations, cost):\n",
    "def gradients(params, X, Y, *, activations, cost):\n"
    "    if cost == 'mse':\n"
    "        raise NotImplementedError('mse')\n",
)
"""Correct, but without mse: those networks are not in scope."""

SMALL = ["--networks", "0", "--activations", "tanh", "--output-activations", "sigmoid"]
"""A small run: the seed networks with tanh hidden layers and a sigmoid output."""


def line_of(source: str, text: str) -> int:
    """The 1-based line of ``source`` that contains ``text``."""
    return next(k for k, line in enumerate(source.splitlines(), 1) if text in line)


def run_cli(tmp_path, monkeypatch, name, source, *argv, summary=True):
    """``backprop-check --impl name`` on ``source`` written to ``tmp_path/name.py``, from
    ``tmp_path`` as the GitHub workspace; returns (status, stdout, summary text)."""
    if source is not None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    path = tmp_path / "summary.md"
    if summary:
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    else:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = io.StringIO()
    code = cli.main(["--impl", name, *argv], out=out)
    return code, out.getvalue(), path.read_text() if path.exists() else ""


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command read back as GitHub's runner reads it: ``::name props::message``,
    properties split at ``,`` and ``=``, then every escape undone."""

    def unescape(text: str) -> str:
        for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","),
                             ("%25", "%")):  # fmt: skip
            text = text.replace(escaped, raw)
        return text

    match = re.fullmatch(r"::(\w+)(?: ([^:]*))?::(.*)", line)
    assert match, line
    level, props, message = match.groups()
    pairs = dict(p.split("=", 1) for p in props.split(",")) if props else {}
    return level, {k: unescape(v) for k, v in pairs.items()}, unescape(message)


def commands(text: str) -> list[tuple[str, dict[str, str], str]]:
    """The annotations GitHub would make of ``text``: lines between ``::stop-commands::T``
    and ``::T::`` are not commands."""
    found, stopped = [], None
    for line in text.splitlines():
        if stopped is not None:
            stopped = None if line == f"::{stopped}::" else stopped
            continue
        if line.startswith("::stop-commands::"):
            stopped = line.split("::")[2]
        elif re.match(r"::(error|warning|notice)\b", line):
            found.append(parse_command(line))
    return found


# --- escaping --------------------------------------------------------------------------------


def test_escaping_follows_the_workflow_command_rules():
    assert github.escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = github.command("error", "x", file="dir/a,b:c.py", line=7, title="t: 1, 2")
    assert line == "::error file=dir/a%2Cb%3Ac.py,line=7,title=t%3A 1%2C 2::x"
    with pytest.raises(ValueError, match="level must be"):
        github.command("fatal", "x")


@given(st.text(), st.text(), st.text(), st.integers(1, 10**6))
@example("50%0A, %25: done\r\n", "a,b:c%2C.py", "t: %3A", 1)
def test_any_text_round_trips_through_a_command(message, file, title, line):
    level, props, got = parse_command(
        github.command("warning", message, file=file, line=line, title=title or None)
    )
    assert level == "warning" and got == message
    assert props["file"] == file and props["line"] == str(line)
    assert props.get("title", "") == (title or "")


# --- annotations and the step summary --------------------------------------------------------


@pytest.mark.parametrize("isolated", [True, False], ids=["worker", "in-process"])
def test_a_wrong_gradient_points_at_the_def_line_of_gradients(tmp_path, monkeypatch, isolated):
    name = f"doubled_{'worker' if isolated else 'inproc'}"
    argv = [*SMALL, "--format", "github", "--json", "r.json"]
    code, text, summary = run_cli(tmp_path, monkeypatch, name, DOUBLED,
                                  *argv, *([] if isolated else ["--in-process"]))  # fmt: skip
    data = json.loads((tmp_path / "r.json").read_text())
    failing = [n for n in data["networks"] if not n["ok"]]
    errors = [c for c in commands(text) if c[0] == "error" and "networks)" in c[1]["title"]]
    checks = [c for c in commands(text) if c[0] == "error" and "networks)" not in c[1]["title"]]
    assert code == 1 and failing
    mistakes = {(n["attribution"], text_report.NUMBER.sub("#", n["summary"])) for n in failing}
    assert len(errors) == len(mistakes)  # one annotation per distinct mistake
    assert len(checks) == len({c["name"] for c in data["checks"] if c["ok"] is False})
    for _, props, message in errors:
        assert props["file"] == f"{name}.py"
        assert props["line"] == str(line_of(DOUBLED, "def gradients"))
        assert "only layer" in message and "dW is wrong" in message
    last = len(data["networks"][0]["network"]["sizes"]) - 1
    assert f"layer {last}'s dW is wrong" in errors[0][1]["title"]
    assert f"({len(failing)} of {len(data['networks'])} networks)" in errors[0][1]["title"]
    assert summary.startswith("### backprop-check: FAIL")
    rows = [r for r in summary.splitlines() if r.startswith("| ") and "---" not in r]
    table = rows[1 : 1 + len(data["networks"])]
    passing = [n["name"] for n in data["networks"] if n["ok"]]
    assert [r.split(" | ")[0][2:] for r in table] == [n["name"] for n in failing] + passing
    for row in table[: len(failing)]:
        assert f"| FAIL | layer {last} dW |" in row
    assert f"{len(data['networks']) - len(failing)} passed, {len(failing)} failed" in summary
    # the totals count the other checks as the summary line does (a warning is not a failure)
    totals = re.search(r"(\d+) of (\d+) other checks hold", summary).groups()
    assert totals == re.search(r"(\d+)/(\d+) other checks hold", summary).groups()


def test_a_crash_points_at_the_line_that_raised_and_cannot_forge_a_command(tmp_path, monkeypatch):
    code, text, _ = run_cli(tmp_path, monkeypatch, "raises_here", RAISES,
                            *SMALL, "--format", "github", "--in-process")  # fmt: skip
    found = commands(text)
    assert code == 1 and "evil.py" in text  # the message is shown, folded, as text
    assert all(props.get("file") != "evil.py" for _, props, _ in found)
    crash = [c for c in found if c[0] == "error" and "raised" in c[1]["title"]]
    assert len(crash) == 1
    _, props, message = crash[0]
    assert props["file"] == "raises_here.py"
    assert props["line"] == str(line_of(RAISES, "raise ValueError"))
    assert "50% done:\n::error file=evil.py" in message  # carried whole, escaped


def test_a_correct_implementation_gets_no_error_annotation(tmp_path, monkeypatch):
    (tmp_path / "summary.md").write_text("earlier step\n")
    code, text, summary = run_cli(tmp_path, monkeypatch, "fine", CORRECT,
                                  *SMALL, "--format", "github", "--in-process")  # fmt: skip
    assert code == 0
    assert [c for c in commands(text) if c[0] == "error"] == []
    assert text.strip().splitlines()[-1].startswith("PASS: fine")
    assert summary.startswith("earlier step\n### backprop-check: PASS")  # appended
    assert "| FAIL |" not in summary and "| PASS |" in summary


def test_a_file_outside_the_workspace_is_named_not_linked(tmp_path, monkeypatch):
    work = tmp_path / "workspace"
    work.mkdir()
    (tmp_path / "elsewhere.py").write_text(DOUBLED)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, text, _ = run_cli(work, monkeypatch, "elsewhere", None,
                            *SMALL, "--format", "github", "--in-process", summary=False)  # fmt: skip
    errors = [c for c in commands(text) if c[0] == "error"]
    assert code == 1 and errors and not (work / "summary.md").exists()
    assert all("file" not in props for _, props, _ in errors)
    assert all("elsewhere.py:" in message and "outside the workspace" in message
               for _, _, message in errors)  # fmt: skip


FORK_ACTIVATION = """
import numpy as np

import backprop


def softplus(z):
    return np.logaddexp(0.0, z)


def softplus_grad(z, a):
    return 1.1 * backprop.activations.sigmoid(z)  # should be sigmoid(z)
"""
"""A fork's activation, registered into backprop's table, with a wrong derivative."""


def test_a_wrong_registered_activation_is_annotated_on_its_own_derivative(tmp_path, monkeypatch):
    """Not on ``def gradients`` in backprop/network.py: on the fork's ``def softplus_grad``,
    titled by what is blamed."""
    import importlib

    import jax

    import reference.registry

    (tmp_path / "forkacts.py").write_text(FORK_ACTIVATION)
    monkeypatch.syspath_prepend(str(tmp_path))
    acts = importlib.import_module("forkacts")
    # the fork's code in backprop's table (its own business), the harness's spec apart
    backprop.register_activation("softplus", acts.softplus, acts.softplus_grad)
    try:
        with reference.registry.registered_activation("softplus", numpy=acts.softplus,
                                             jax=jax.nn.softplus):  # fmt: skip
            code, text, _ = run_cli(tmp_path, monkeypatch, "backprop", None, "--activations",
                                    "softplus", "--output-activations", "sigmoid", "--networks",
                                    "0", "--in-process", "--format", "github")  # fmt: skip
    finally:
        del backprop.ACTIVATIONS["softplus"]
    errors = [c for c in commands(text) if c[0] == "error" and "networks)" in c[1]["title"]]
    assert code == 1 and errors
    for _, props, _ in errors:
        assert props["file"] == "forkacts.py"
        assert props["line"] == str(line_of(FORK_ACTIVATION, "def softplus_grad"))
        assert "activation softplus's derivative is wrong" in props["title"]


SMOOTHED = """
import backprop


def _smooth(Y):
    return 0.9 * Y + 0.05


def loss(params, X, Y, *, activations, cost):
    return backprop.loss(params, X, _smooth(Y), activations=activations, cost=cost)


def gradients(params, X, Y, *, activations, cost):
    return backprop.gradients(params, X, _smooth(Y), activations=activations, cost=cost)
"""
"""Label smoothing, undeclared: the loss is the one at fault; the gradients follow it."""


def test_a_wrong_loss_is_titled_and_placed_as_the_loss(tmp_path, monkeypatch):
    code, text, _ = run_cli(tmp_path, monkeypatch, "smoothed", SMOOTHED, *SMALL, "--in-process",
                            "--format", "github", "--json", "r.json")  # fmt: skip
    data = json.loads((tmp_path / "r.json").read_text())
    errors = [c for c in commands(text) if c[0] == "error" and "networks)" in c[1]["title"]]
    assert code == 1 and errors
    attributions = {n["attribution"] for n in data["networks"] if not n["ok"]}
    assert attributions == {"forward"}
    for _, props, _ in errors:
        assert "the loss or the forward pass is wrong" in props["title"]
        assert "dW is wrong" not in props["title"] and "db is wrong" not in props["title"]
        assert props["line"] == str(line_of(SMOOTHED, "def loss"))


def test_annotations_keep_to_githubs_limit_per_level_and_name_the_rest():
    """GitHub shows PER_STEP annotations of a level per step: no more are written, and the
    last one shown names every one left out."""
    p = seed_problem()
    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    many = github.PER_STEP + 3
    results = [("fixed", CheckResult(f"{s} check {k}", False, f"wrong {k}", severity=s))
               for s in SEVERITIES for k in range(many)]  # fmt: skip
    outcome = Outcome(False, [(p, report)], results)
    found = commands("\n".join(github.annotations(outcome, "x", {}, root="/w")))
    for severity, level in github.LEVELS.items():
        mine = [c for c in found if c[0] == level]
        assert len(mine) == github.PER_STEP
        assert f"{many - github.PER_STEP + 1} more {level}" in mine[-1][2]
        named = [
            t
            for _, props, _ in mine[:-1]
            for t in re.findall(rf"{severity} check \d+", props["title"])
        ]
        rest = re.findall(rf"{severity} check \d+", mine[-1][2])
        assert sorted(named + rest, key=lambda t: int(t.split()[-1])) == [
            f"{severity} check {k}" for k in range(many)
        ]
    few = [("fixed", CheckResult(f"check {k}", False, "wrong", severity="error"))
           for k in range(github.PER_STEP)]  # fmt: skip
    outcome = Outcome(False, [(p, report)], few)
    assert len(github.annotations(outcome, "x", {}, root="/w")) == github.PER_STEP


def test_warnings_and_conventions_are_annotated_at_their_level():
    p = seed_problem()
    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    results = [("fixed", CheckResult(f"check {s}", False, f"a {s}", severity=s))
               for s in SEVERITIES]  # fmt: skip
    outcome = Outcome(False, [(p, report)], results)
    where = {"gradients": {"file": "/w/impl.py", "line": 3}}
    levels = [c[0] for c in commands("\n".join(github.annotations(outcome, "x", where, root="/w")))]
    # GitHub's three commands, one per severity (its "Workflow commands" page)
    assert dict(zip(SEVERITIES, levels)) == {
        "error": "error", "warning": "warning", "convention": "notice"
    }  # fmt: skip
    strict = github.annotations(outcome, "x", where, root="/w", strict=True)
    assert [c[0] for c in commands("\n".join(strict))] == ["error"] * len(SEVERITIES)


# --- the JUnit file --------------------------------------------------------------------------


def schema():
    """The project's JUnit schema, read by xmlschema (in the test extra)."""
    return junit_schemas.schemas()["backprop-check"]


def junit_run(tmp_path, monkeypatch, name, source, *argv):
    """``argv`` with ``--json`` and ``--junit-xml``, in this process unless ``argv`` sets a
    ``--timeout`` (a time limit needs the worker)."""
    where = [] if "--timeout" in argv else ["--in-process"]
    code, _, _ = run_cli(tmp_path, monkeypatch, name, source, *argv, *where, "--quiet",
                         "--json", "r.json", "--junit-xml", "r.xml", summary=False)  # fmt: skip
    return code, json.loads((tmp_path / "r.json").read_text()), tmp_path / "r.xml"


HANGS = CORRECT.replace(
    "    return backprop.gradients(params, X, Y, activations=activations, cost=cost)",
    "    import time\n\n    time.sleep(3600)",
)
"""Every call to gradients hangs (asleep: a busy loop would take a core from the rest of the
suite while the time limits run out; tests/test_hostile.py's hangs are busy loops)."""

RUNS = {
    "passing": ("fine_junit", CORRECT, SMALL, 0),
    "failing": ("reference.bugs:dW2_times_2", None, SMALL, 1),
    "crashing": ("raises_junit", RAISES, SMALL, 1),
    "hanging": ("hangs_junit", HANGS, [*SMALL, "--timeout", "1"], 1),
    "out of scope": ("partial", PARTIAL, ["--networks", "1", "--activations", "tanh"], 0),
}


@pytest.mark.parametrize(  # the hang waits out its limit: the slow tier
    "run", first_quick(sorted(RUNS, key=lambda run: run == "hanging"), quick=len(RUNS) - 1)
)
def test_junit_validates_and_its_counts_are_the_runs(tmp_path, monkeypatch, run):
    name, source, argv, status = RUNS[run]
    code, data, path = junit_run(tmp_path, monkeypatch, name, source, *argv)
    assert code == status
    junit_schemas.validate(path)
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    cases = root.findall("testsuite/testcase")
    for key, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        found = len(root.findall(f"testsuite/testcase/{tag}"))
        assert found == sum(int(s.get(key)) for s in suites)
        assert int(root.get(key, found)) == found
    assert int(root.get("tests")) == len(cases) == sum(int(s.get("tests")) for s in suites)
    networks = {s.get("name"): s for s in suites if s.get("name") != junit.CHECKS_SUITE}
    checked = {n["name"]: n for n in data["networks"]}
    unsupported = {n["name"] for n in data["not_in_scope"]["unsupported"]}
    assert len(networks) == len(checked) + len(unsupported) + data["not_in_scope"]["undrawn"]
    for name_, suite in networks.items():
        bad = int(suite.get("failures")) + int(suite.get("errors"))
        if name_ in checked:
            assert (bad == 0) is checked[name_]["ok"]
            assert (suite.find("testcase/error") is not None) is (
                checked[name_]["attribution"] in ("crash", "structure")
            )
            layers = len(checked[name_]["layers"])
            assert len(suite.findall("testcase")) == (layers + 2 if layers else 1)
        else:
            assert int(suite.get("skipped")) == int(suite.get("tests")) == 1
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["seed"] == str(data["seed"])
        assert props["harness version"] == data["harness"]["version"]
    other = root.find(f"testsuite[@name='{junit.CHECKS_SUITE}']")
    assert int(other.get("tests")) == len(data["checks"])
    assert int(other.get("skipped")) == sum(c["ok"] is None for c in data["checks"])
    assert int(other.get("failures")) + int(other.get("errors")) == sum(
        c["ok"] is False and c["severity"] == "error" for c in data["checks"]
    )
    assert int(other.get("errors")) == sum(
        c["ok"] is False and (c["finding"] or {}).get("kind", "unsupported") != "unsupported"
        for c in data["checks"]
    )  # a check cut short by a crash is an error, not a failure
    assert all(c.get("classname").startswith("backprop_check.") for c in cases)
    if run == "out of scope":
        assert unsupported and data["not_in_scope"]["undrawn"] > 0
    if run == "crashing":
        assert root.findall("testsuite/testcase/error")
    if run == "hanging":  # nothing came back: no case passes, no check holds
        assert not any(c["ok"] for c in data["checks"])
        assert all(c.find("failure") is not None or c.find("error") is not None
                   or c.find("skipped") is not None for c in cases)  # fmt: skip


def test_the_schema_rejects_what_ci_servers_would_misread(tmp_path, monkeypatch):
    """The schema is not a formality: a file without times, with a case both failed and
    skipped, or with a classname that has a space fails it."""
    _, _, path = junit_run(tmp_path, monkeypatch, "reference.bugs:dW2_times_2", None, *SMALL)
    xsd = schema()
    for breaking in (
        lambda r: r.find("testsuite/testcase").attrib.pop("time"),
        lambda r: ET.SubElement(r.find(".//failure/.."), "skipped", message="x"),
        lambda r: r.find("testsuite/testcase").set("classname", "a b.c"),
        lambda r: r.set("errors", "-1"),
    ):
        root = ET.parse(path).getroot()
        breaking(root)
        assert not xsd.is_valid(ET.tostring(root, encoding="unicode"))


# What each reader refuses, and which schemas say so: the project's own refuses everything
# either published one does (jenkins-junit-4.xsd and xunit-junit-10.xsd cite where).
_ALL = set(junit.SCHEMAS)
BREAKINGS = {
    "a skipped total on testsuites": (lambda r: r.set("skipped", "1"), _ALL),
    "a message on skipped": (
        lambda r: r.find(".//skipped").set("message", "x"),
        {"backprop-check", "jenkins junit-4"},
    ),
    "a file on a testcase": (lambda r: r.find(".//testcase").set("file", "x.py"), _ALL),
    "a time with an exponent": (
        lambda r: r.find("testsuite").set("time", "1e-05"),
        {"backprop-check", "xunit junit-10"},
    ),
    "a suite without an errors count": (
        lambda r: r.find("testsuite").attrib.pop("errors"),
        {"backprop-check", "xunit junit-10"},
    ),
    "properties without a property": (
        lambda r: [p.remove(c) for p in r.iter("properties") for c in list(p)],
        {"backprop-check", "jenkins junit-4"},
    ),
    "two skipped in one case": (
        lambda r: ET.SubElement(r.find(".//skipped/.."), "skipped"),
        {"backprop-check", "jenkins junit-4"},
    ),
}


@pytest.mark.parametrize("breaking", sorted(BREAKINGS))
def test_each_schema_rejects_what_its_reader_refuses(tmp_path, monkeypatch, breaking):
    """The published schemas' constraints, written out, bite: the unbroken file meets all
    three; each breaking fails exactly the schemas that forbid it."""
    name, source, argv, _ = RUNS["out of scope"]
    _, _, path = junit_run(tmp_path, monkeypatch, name, source, *argv)
    assert junit_schemas.rejected_by(path.read_text()) == []
    change, rejecting = BREAKINGS[breaking]
    root = ET.parse(path).getroot()
    change(root)
    assert junit_schemas.rejected_by(ET.tostring(root, encoding="unicode")) == sorted(rejecting)


def test_junit_text_survives_what_xml_cannot_hold():
    assert junit.xml_text("\x1b[31mred\x1b[0m \x00 \ud800") == "red \ufffd \ufffd"
    assert junit.class_part("seed 2-3-2-1 tanh/tanh/sigmoid bce") == (
        "seed_2-3-2-1_tanh_tanh_sigmoid_bce"
    )
    assert junit.class_part("reference.bugs:dW2") == "reference_bugs_dW2"


# --- what the terminal shows ----------------------------------------------------------------

HOSTILE_TEXT = CORRECT.replace(
    "    return backprop.gradients(params, X, Y, activations=activations, cost=cost)",
    "    raise ValueError('lone \\udcff, \\x1b[31mred\\x1b[0m, back\\rover')",
)
"""A crash whose message holds a lone surrogate, a colour code and a carriage return."""


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_text_the_implementation_made_is_printed_safely(tmp_path, monkeypatch, fmt):
    """Everything printed passes terminal_text: a stream that encodes strictly (a real
    stdout) takes it, and no control character but tab and line feed reaches it."""
    (tmp_path / "hostile_text.py").write_text(textwrap.dedent(HOSTILE_TEXT))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
    code = cli.main(["--impl", "hostile_text", *SMALL, "--in-process", "--format", fmt,
                     "--html", "r.html"], out=out)  # fmt: skip
    out.flush()
    text = raw.getvalue().decode("utf-8")
    assert code == 1 and "lone \ufffd" in text and "red" in text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    if fmt == "github":
        assert "lone \ufffd" in (tmp_path / "summary.md").read_text(encoding="utf-8")


@given(st.text())
def test_terminal_text_leaves_nothing_a_terminal_or_an_encoder_refuses(text):
    safe = terminal_text(text)
    safe.encode("utf-8")  # no lone surrogate
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", safe)
    assert terminal_text(safe) == safe
    assert terminal_text("a\tb\nc \x1b[1mbold\x1b[0m") == "a\tb\nc bold"


def test_terminal_text_wants_a_str():
    with pytest.raises(TypeError, match="text must be a str"):
        terminal_text(b"bytes")
    with pytest.raises(TypeError, match="stream must have a write method"):
        SafeWriter(object())


# --- the JSON's provenance -------------------------------------------------------------------


def test_the_reproducing_command_keeps_what_changes_the_verdict_only():
    parser = options.legacy_parser()  # every option of every subcommand
    argv = ["--impl", "m:o b", "--seed", "4", "--activations", "tanh,relu", "--strict",
            "--relu-at-zero", "0", "--timeout", "5", "--json", "x.json", "--quiet",
            "--format", "github", "--max-depth", "3"]  # fmt: skip
    args = parser.parse_args(argv)
    command = provenance.reproduce_command(args, parser)
    words = shlex.split(command)
    assert words[0] == "backprop-check"
    again = parser.parse_args(words[1:])
    for action in parser._actions:
        if action.dest in provenance.OUTPUT_ONLY or action.dest == "help":
            assert action.option_strings[-1] not in words
        else:
            assert getattr(again, action.dest) == getattr(args, action.dest), action.dest
    defaults = provenance.reproduce_command(parser.parse_args([]), parser)
    assert shlex.split(defaults) == ["backprop-check", "--impl", "backprop", "--seed", "0",
                                     "--networks", "8"]  # fmt: skip
    with pytest.raises(TypeError, match=r"args must be an argparse\.Namespace"):
        provenance.reproduce_command({"seed": 0}, parser)


def test_json_carries_provenance_and_its_command_reproduces_the_verdict(tmp_path):
    def run(argv, where):
        done = subprocess.run(
            [sys.executable, "-m", "reference.frontends.cli", *argv, "--json", where],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        return done.returncode, json.loads(Path(where).read_text())

    first = str(tmp_path / "first.json")
    code, data = run(["--impl", "reference.bugs:dW2_times_2", "--seed", "3", *SMALL[2:],
                      "--networks", "1", "--strict", "--quiet"], first)  # fmt: skip
    assert data["schema_version"] == provenance.SCHEMA_VERSION
    assert data["harness"] == {"name": "backprop-harness", "version": provenance.harness_version()}
    assert data["seed"] == 3
    words = shlex.split(data["command"])
    assert words[0] == "backprop-check" and "--strict" in words and "--quiet" not in words
    code_again, again = run(words[1:], str(tmp_path / "again.json"))

    def verdicts(d):
        return [(n["name"], n["ok"], n["attribution"], n["summary"]) for n in d["networks"]]

    assert code == code_again == 1
    assert verdicts(again) == verdicts(data) and again["ok"] is data["ok"] is False
    assert again["command"] == data["command"]


# --- the example workflow --------------------------------------------------------------------


def workflow_block() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1, "CONTRIBUTING.md should hold one yaml block: the workflow"
    return blocks[0]


def run_steps(block: str) -> list[str]:
    """The ``run:`` commands of the workflow, read without a YAML library: one line each."""
    runs = [m.strip() for m in re.findall(r"^\s+run:\s*(.+)$", block, re.M)]
    return [r[1:-1] if len(r) > 1 and r[0] == r[-1] and r[0] in "'\"" else r for r in runs]


def test_the_workflow_parses_and_names_the_steps_it_needs():
    block = workflow_block()
    runs = run_steps(block)
    assert any("pip install" in r for r in runs)
    assert any(r.startswith("backprop-check ") and "--format github" in r for r in runs)
    assert any("pytest" in r for r in runs)
    try:
        import yaml
    except ImportError:
        pytest.skip("PyYAML is not installed: the block was read line by line only")
    workflow = yaml.safe_load(block)
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert [s["run"] for s in steps if "run" in s] == runs
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert {"actions/checkout", "actions/setup-python"} <= set(uses)


@pytest.mark.parametrize(
    "impl, status", first_quick([("reference.bugs:dW2_times_2", 1), (None, 0)], unpack=True)
)
def test_the_workflow_commands_run(tmp_path, impl, status):
    """Each ``run:`` step as GitHub would run it, from a checkout: the install step left out
    (the package is importable already), the check on a few networks (and on a catalogued
    mistake as well as on the built-in), the test suite on one of its files."""
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_WORKSPACE": str(ROOT),
           "GITHUB_STEP_SUMMARY": str(summary), "CI": "true"}  # fmt: skip
    env.pop("HYPOTHESIS_PROFILE", None)
    ran = 0
    for step in run_steps(workflow_block()):
        words = shlex.split(step)
        if "pip" in words and "install" in words:
            continue
        if words[0] == "backprop-check":
            junit_path = Path(words[words.index("--junit-xml") + 1])
            words[words.index("--junit-xml") + 1] = str(tmp_path / junit_path)
            if impl is not None:
                words[words.index("--impl") + 1] = impl
            words = [sys.executable, "-m", "reference.frontends.cli", *words[1:], *SMALL]
            done = subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            errors = [c for c in commands(done.stdout) if c[0] == "error"]
            assert done.returncode == status, done.stdout[-2000:] + done.stderr[-2000:]
            assert bool(errors) is bool(status)
            assert all(props["file"].startswith("reference/bugs/") for _, props, _ in errors)
            if status:  # the mistake's annotation, at the def line of the catalog's gradients
                base = (ROOT / "reference/bugs/base.py").read_text()
                mistake = [p for _, p, _ in errors if "networks)" in p["title"]]
                assert mistake and all(p["file"] == "reference/bugs/base.py" for p in mistake)
                assert {p["line"] for p in mistake} == {str(line_of(base, "def gradients("))}
            schema().validate(str(tmp_path / junit_path))
            assert summary.read_text().startswith("### backprop-check: " +
                                                  ("FAIL" if status else "PASS"))  # fmt: skip
        elif impl is None:  # the test suite does not depend on the implementation checked
            assert words[:3] == ["python", "-m", "pytest"], step
            # one quick file (1 to 2 s): the step is what is checked, not that file's tests
            words = [sys.executable, *words[1:], "tests/test_diagnosis.py", "-q",
                     "-p", "no:cacheprovider"]  # fmt: skip
            done = subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stdout[-2000:]
        else:
            continue
        ran += 1
    assert ran == len(run_steps(workflow_block())) - (1 if impl is None else 2)


@pytest.mark.parametrize(
    "argv",
    [
        ["--shard", "2/3", "--networks", "4"],
        ["--activations", "tanh,relu", "--output-activations", "sigmoid", "--shard", "1/2"],
        ["--impl", "reference.bugs:dW2_times_2", "--against", "backprop", "--jobs", "2"],
        ["--strict", "--relu-at-zero", "0", "--timeout", "5", "--dtype", "float32"],
    ],
)
def test_the_reproducing_command_parses_back_to_the_same_options(argv):
    """Every option the command keeps is written as it is typed: parsed again it gives the
    same values (``--shard`` is parsed into a pair, and must be written back as K/N)."""
    import shlex

    from reference.frontends.options import legacy_parser, parse
    from reference.report.provenance import OUTPUT_ONLY, reproduce_command

    args = parse(argv)
    again = parse(shlex.split(reproduce_command(args, legacy_parser()))[1:])
    kept = {k: v for k, v in vars(args).items() if k not in OUTPUT_ONLY}
    assert kept == {k: v for k, v in vars(again).items() if k not in OUTPUT_ONLY}


def test_the_summary_totals_count_a_warning_as_the_summary_line_does(tmp_path, monkeypatch):
    """A saturation warning (not an error) is a check that holds, in the totals as in the
    final line."""
    code, _, summary = run_cli(tmp_path, monkeypatch, "reference.bugs:unstable_bce", None,
                               *SMALL, "--format", "github", "--in-process")  # fmt: skip
    totals = re.search(r"(\d+) of (\d+) other checks hold \(1 with a warning", summary)
    line = re.search(r"(\d+)/(\d+) other checks hold", summary)
    assert code == 0 and totals and line and totals.groups() == line.groups(), summary
