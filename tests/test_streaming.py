"""backprop-check streams (reference/run/streaming.py): the networks are drawn, written
to --json and --junit-xml and summarized as they come; the files are valid and complete, a
stopped run still leaves valid ones, and progress shows only where it should. Memory is
measured in benchmarks/memory.py, never asserted here."""

import argparse
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import junit_schemas
import numpy as np
import pytest
from tiers import first_quick

from reference.boundary.guard import Finding
from reference.frontends import cli
from reference.inputs import networks as default_networks
from reference.inputs.scope import Scope
from reference.judging.records import Report, failed_report
from reference.report import junit
from reference.report import text as text_report
from reference.run import scaling, streaming
from reference.run.jobs import check_network
from reference.run.runner import InProcess
from reference.run.scaling import shard


def check(*argv):
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def schema():
    """Every schema the JUnit file must meet (tests/junit_schemas.py)."""
    return junit_schemas


def suites(path):
    return ET.parse(path).getroot().findall("testsuite")


# --- the networks, drawn as they are checked -----------------------------------------------


@pytest.mark.parametrize("scope", [None, {"activations": ["relu"], "costs": ["mse"]}])
@pytest.mark.parametrize("seed,networks", [(0, 0), (3, 7)])
def test_the_stream_draws_the_networks_default_problems_lists(seed, networks, scope):
    within = Scope.read(scope, "test") if scope else None
    whole = default_networks.default_problems(seed, networks, within)
    drawn = list(streaming.ProblemStream(seed, networks, within))
    assert [p.name for p in drawn] == [p.name for p in whole] and len(drawn) == len(whole)
    for a, b in zip(drawn, whole):
        assert (a.activations, a.cost) == (b.activations, b.cost)
        assert np.array_equal(a.X, b.X) and np.array_equal(a.Y, b.Y)
        for (Wa, ba), (Wb, bb) in zip(a.params, b.params):
            assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
    for n in (1, 3):
        for k in range(1, n + 1):
            part = streaming.ProblemStream(seed, networks, within).shard(k, n)
            assert [p.name for p in part] == [p.name for p in shard(whole, k, n)]
            assert len(part) == len(shard(whole, k, n))


# --- what is kept --------------------------------------------------------------------------


def _args(tmp_path, **flags):
    base = {"json": tmp_path / "r.json", "junit_xml": tmp_path / "r.xml", "verbose": False,
            "html": None, "plot": None, "against": None, "impl": "fake", "seed": 0,
            "strict": False}  # fmt: skip
    return argparse.Namespace(**{**base, **flags})


def _crashes(count, distinct):
    """``count`` failing (problem, report) pairs of ``distinct`` mistakes (told apart by a
    word, not a number: the grouping sets numbers aside)."""
    problems = list(streaming.ProblemStream(0, count))[-count:]
    words = [f"member{'x' * (i % distinct)}" for i in range(count)]
    return [
        (p, failed_report(Finding("raised", "gradients", f"boom in {w}"), _network(p), "fake"))
        for p, w in zip(problems, words)
    ]


def _network(p):
    return {"sizes": p.sizes, "activations": p.activations, "cost": p.cost, "m": p.m}


def test_only_the_first_network_and_each_mistakes_first_stay_whole(tmp_path):
    pairs = _crashes(40, 3)
    stream = streaming.Stream(_args(tmp_path), "fake", {})
    for pair in pairs:
        stream.reports.append(pair)
    full = [r for _, r in stream.reports if isinstance(r, Report)]
    assert len(stream.reports) == len(pairs) and len(full) == 3
    assert [p.name for p, r in stream.reports if isinstance(r, Report)] == [
        p.name for p, _ in pairs[:3]
    ]
    brief = stream.reports[5][1]
    assert isinstance(brief, streaming.BriefReport)
    assert (brief.ok, brief.attribution, brief.summary) == (
        pairs[5][1].ok, pairs[5][1].attribution, pairs[5][1].summary,
    )  # fmt: skip
    groups = text_report.mistake_groups(list(stream.reports))  # the terminal report's grouping
    assert [len(g) for g in groups] == [len(pairs[k::3]) for k in range(3)]
    assert all(isinstance(g[0][1], Report) for g in groups)


def test_the_number_of_whole_reports_is_bounded(tmp_path):
    pairs = _crashes(streaming.FULL_GROUPS + 10, streaming.FULL_GROUPS + 10)
    stream = streaming.Stream(_args(tmp_path, json=None, junit_xml=None), "fake", {})
    for pair in pairs:
        stream.reports.append(pair)
    assert sum(isinstance(r, Report) for _, r in stream.reports) == streaming.FULL_GROUPS


@pytest.mark.parametrize("flag", ["verbose", "html", "plot", "against"])
def test_what_needs_every_table_keeps_every_report(tmp_path, flag):
    stream = streaming.Stream(_args(tmp_path, json=None, junit_xml=None, **{flag: "x"}), "f", {})
    for pair in _crashes(10, 1):
        stream.reports.append(pair)
    assert all(isinstance(r, Report) for _, r in stream.reports)


# --- a large-ish run's files ---------------------------------------------------------------

NETWORKS = 60


def run_names() -> list[str]:
    """The networks of the large run, in order: the default run's, then the L2-penalised
    ones where the implementation declares the penalty."""
    from reference.bugs import CATALOG
    from reference.inputs.penalties import penalty_problems
    from reference.inputs.scope import Scope

    scope = Scope.read(getattr(CATALOG["dW2_times_2"], "SUPPORTS", None), "the mistake's")
    names = [p.name for p in default_networks.default_problems(0, NETWORKS)]
    return names + [p.name for p in penalty_problems(0, scope)]


@pytest.fixture(scope="module")
def large_run(tmp_path_factory):
    """A failing implementation on ``NETWORKS`` random networks, in this process, with
    --json, --junit-xml and --progress: (exit status, stdout, stderr, json, junit path)."""
    tmp = tmp_path_factory.mktemp("large")
    err = io.StringIO()
    saved, sys.stderr = sys.stderr, err
    try:
        code, text = check("--impl", "reference.bugs:dW2_times_2", "--networks", str(NETWORKS),
                           "--in-process", "--progress", "--json", str(tmp / "r.json"),
                           "--junit-xml", str(tmp / "r.xml"))  # fmt: skip
    finally:
        sys.stderr = saved
    return code, text, err.getvalue(), json.loads((tmp / "r.json").read_text()), tmp / "r.xml"


def test_a_large_runs_json_has_every_network_once_and_counts_that_match(large_run):
    code, text, _, data, _ = large_run
    names = run_names()
    assert [n["name"] for n in data["networks"]] == names
    assert data["complete"] is True and data["ok"] is False and code == 1
    passed = sum(n["ok"] for n in data["networks"])
    assert f"{passed}/{len(names)} networks' gradients" in text.strip().splitlines()[-1]
    assert passed < len(names)
    applicable = [c for c in data["checks"] if c["ok"] is not None]
    held = sum(c["ok"] for c in applicable)
    assert f"; {held}/{len(applicable)} other checks hold" in text
    assert {"schema_version", "command", "scope", "not_in_scope", "attributions"} <= set(data)


def test_a_large_runs_junit_is_valid_with_one_suite_per_network(large_run):
    _, _, _, data, path = large_run
    schema().validate(str(path))
    root = ET.parse(path).getroot()
    found = suites(path)
    names = run_names()
    assert [s.get("name") for s in found] == [*names, junit.CHECKS_SUITE]
    for key in junit.ROOT_TOTALS:
        assert int(root.get(key)) == sum(int(s.get(key)) for s in found)
    failing = {n["name"] for n in data["networks"] if not n["ok"]}
    assert {s.get("name") for s in found[:-1] if int(s.get("failures"))} == failing


def test_progress_shows_when_asked_and_never_in_the_json(large_run):
    _, _, said, data, _ = large_run
    total = len(run_names())
    assert re.search(rf"^{total}/{total} networks, [\d.]+/s", said, re.M), said
    assert "networks, " not in json.dumps(data)


def test_no_progress_unless_asked_or_on_a_terminal(tmp_path, capsys):
    code, _ = check("--networks", "0", "--in-process", "--activations", "tanh",
                    "--output-activations", "sigmoid")  # fmt: skip
    assert code == 0 and "networks, " not in capsys.readouterr().err
    code, _ = check("--networks", "0", "--in-process", "--progress", "--quiet")
    assert code == 2 and "--progress and --quiet contradict" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    "stream,quiet,asked,shows",
    [(io.StringIO, False, False, False), (io.StringIO, False, True, True),
     (_Terminal, False, False, True), (_Terminal, True, False, False),
     (io.StringIO, True, True, False)],
)  # fmt: skip
def test_progress_shows_on_a_terminal_or_when_asked_never_when_quiet(stream, quiet, asked, shows):
    out = stream()
    progress = streaming.RunProgress(1000, quiet=quiet, asked=asked, stream=out, every=0,
                                     every_line=0)  # fmt: skip
    progress.start -= 10  # ten seconds into the run
    progress.update(250)
    progress.close()
    said = out.getvalue()
    assert bool(said) is shows
    if shows and stream is io.StringIO:
        assert "250/1000 networks, 25.0/s, about 30 s left" in said
    if shows and stream is _Terminal:
        assert said.startswith("\r250/1000 networks") and said.endswith("\r")


# --- --jobs streams a chunk at a time ----------------------------------------------------


@pytest.mark.parametrize(
    "impl", first_quick(["tests.outside.partial:MSE_ONLY", "reference.bugs:dW2_times_2"])
)
def test_two_jobs_a_chunk_at_a_time_give_the_report_of_one(tmp_path, monkeypatch, impl):
    """Chunks of one network per worker: the report is still the one a single worker gives,
    the first network unsupported (its checks move on to the next chunk) included."""
    monkeypatch.setattr(scaling, "AHEAD", 1)
    argv = ["--impl", impl, "--networks", "3", "--activations", "tanh",
            "--output-activations", "sigmoid", "--quiet"]  # fmt: skip
    found = []
    for jobs in ("1", "2"):
        code, _ = check(*argv, "--jobs", jobs, "--json", str(tmp_path / f"{jobs}.json"))
        data = json.loads((tmp_path / f"{jobs}.json").read_text())
        data.pop("command")
        found.append((code, data))
    assert found[0] == found[1]
    within = Scope.read({"activations": ["tanh"], "output_activations": ["sigmoid"]}, "test")
    assert (
        len(default_networks.default_problems(0, 3, within)) > 2 * scaling.AHEAD
    )  # more than one chunk


# --- a stopped run still leaves valid files ------------------------------------------------


def test_a_run_stopped_by_an_exception_leaves_valid_files(tmp_path, monkeypatch):
    stop_after = 5
    calls = []
    run = InProcess.run

    def interrupted(self, job, *args):
        if job is check_network:
            calls.append(args[0].name)
            if len(calls) > stop_after:
                raise KeyboardInterrupt
        return run(self, job, *args)

    monkeypatch.setattr(InProcess, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        check("--networks", "3", "--in-process", "--json", str(tmp_path / "r.json"),
              "--junit-xml", str(tmp_path / "r.xml"))  # fmt: skip
    data = json.loads((tmp_path / "r.json").read_text())
    assert [n["name"] for n in data["networks"]] == calls[:stop_after]
    assert data["complete"] is False and data["ok"] is False
    assert data["stopped"].startswith("KeyboardInterrupt")
    schema().validate(str(tmp_path / "r.xml"))
    names = [s.get("name") for s in suites(tmp_path / "r.xml")]
    assert names == [*calls[:stop_after], "run stopped"]


STALLS = """
import pathlib
import time

import backprop

loss = backprop.loss


def gradients(params, X, Y, *, activations, cost):
    # the second network (a seed network of four samples; the layout's probe, the first call,
    # has five): say so, then stall until the run is terminated
    if cost == "mse" and X.shape[1] == 4:
        pathlib.Path(MARKER).touch()
        time.sleep(600)
    return backprop.gradients(params, X, Y, activations=activations, cost=cost)
"""


def test_sigterm_leaves_valid_files_as_ctrl_c_does(tmp_path):
    """What CI sends on a time-out or a cancel: the run stops with 128 + SIGTERM, both files
    parse, the JSON says it is not complete and why, the JUnit file meets every schema."""
    import signal
    import time

    marker = tmp_path / "stalled"
    (tmp_path / "stalls.py").write_text(f"MARKER = {str(marker)!r}\n" + STALLS)
    argv = ["--impl", "stalls", "--networks", "0", "--activations", "tanh",
            "--output-activations", "sigmoid", "--timeout", "600", "--quiet",
            "--json", "r.json", "--junit-xml", "r.xml"]  # fmt: skip
    log = tmp_path / "log.txt"
    with open(log, "w") as out:  # a file, not a pipe: a child left behind cannot hold it open
        proc = subprocess.Popen([sys.executable, "-m", "reference.frontends.cli", *argv],
                                cwd=tmp_path, stdout=out, stderr=out)  # fmt: skip
    try:
        for _ in range(3000):  # until the second network's call stalls (or the run ended)
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), log.read_text()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    said = log.read_text()
    assert proc.returncode == streaming.TERMINATED_STATUS == 128 + signal.SIGTERM, said
    assert "SIGTERM" in said
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["complete"] is False and data["ok"] is False
    assert "SIGTERM" in data["stopped"]
    first = default_networks.default_problems(0, 0, Scope.read({"activations": ["tanh"],
                                 "output_activations": ["sigmoid"]}, "test"))[0]  # fmt: skip
    assert [n["name"] for n in data["networks"]] == [first.name]
    schema().validate(tmp_path / "r.xml")
    assert [s.get("name") for s in suites(tmp_path / "r.xml")] == [first.name, "run stopped"]


def test_the_sigterm_handler_is_the_runs_only_while_the_files_are_open(tmp_path, monkeypatch):
    """Inside the stream SIGTERM raises Terminated; before and after, the process's own
    handler is in place."""
    import signal

    seen = []
    run = InProcess.run

    def watching(self, job, *args):
        seen.append(signal.getsignal(signal.SIGTERM))
        return run(self, job, *args)

    monkeypatch.setattr(InProcess, "run", watching)
    before = signal.getsignal(signal.SIGTERM)
    code, _ = check("--networks", "0", "--activations", "tanh", "--output-activations",
                    "sigmoid", "--in-process", "--quiet", "--json", str(tmp_path / "r.json"))  # fmt: skip
    assert code == 0 and seen
    assert all(handler is streaming._terminated for handler in seen)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_usage_error_found_at_the_start_leaves_no_file(tmp_path):
    code, _ = check("--networks", "0", "--in-process", "--jobs", "2", "--json",
                    str(tmp_path / "r.json"), "--junit-xml", str(tmp_path / "r.xml"))  # fmt: skip
    assert code == 2 and not list(tmp_path.iterdir())


HANGS_ALWAYS = """
import time

import backprop
loss = backprop.loss


def gradients(params, X, Y, *, activations, cost):
    time.sleep(3600)
"""
"""Every call to gradients hangs (asleep: a busy loop would take a core from the rest of the
suite while the time limits run out; tests/test_hostile.py's hangs are busy loops)."""

CRASHES = """
import os
import backprop
loss = backprop.loss


def gradients(params, X, Y, *, activations, cost):
    os._exit(3)
"""


@pytest.mark.parametrize(
    "source",
    first_quick([pytest.param(CRASHES, id="crashes"), pytest.param(HANGS_ALWAYS, id="hangs")]),
)
def test_a_run_cut_short_by_the_implementation_leaves_complete_files(tmp_path, source):
    """Code that hangs (the run stops waiting after HANGS_IN_A_ROW) or ends its worker on
    every network: every network is in both files once, failing, and both are valid."""
    (tmp_path / "bad.py").write_text(source)
    argv = ["--impl", "bad", "--networks", "2", "--activations", "tanh",
            "--output-activations", "sigmoid", "--timeout", "1", "--quiet"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "reference.frontends.cli", *argv, "--json", "r.json",
         "--junit-xml", "r.xml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    within = Scope.read({"activations": ["tanh"], "output_activations": ["sigmoid"]}, "test")
    names = [p.name for p in default_networks.default_problems(0, 2, within)]
    assert [n["name"] for n in data["networks"]] == names and data["complete"] is True
    assert not any(n["ok"] for n in data["networks"])
    schema().validate(str(tmp_path / "r.xml"))
    assert [s.get("name") for s in suites(tmp_path / "r.xml")][: len(names)] == names
