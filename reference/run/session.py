"""One check of an implementation: every network's gradient report, the non-gradient checks,
the fixed checks and the whole run's consistency, each job through a runner."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..boundary.guard import Finding
from ..boundary.isolation import Failed
from ..inputs.problems import Problem
from ..inputs.scope import Scope, ScopeError
from ..judging import checks
from ..judging.outcome import Outcome
from ..judging.records import Report, failed_report
from .jobs import (
    check_network,
    fixed_checks,
    whole_run_consistency,
)
from .runner import Runner


class UsageError(Exception):
    """A mistake on the command line; exit status 2."""


class Progress:
    """A progress bar on stderr, shown only on a terminal and only once a run passes a second."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr  # as it is now, not at import
        self.enabled = enabled and self.stream.isatty()
        self.start = time.perf_counter()
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled or time.perf_counter() - self.start < 1.0:
            return
        filled = int(30 * done / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} checks")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


WHOLE_RUN = "whole run"
"""Where the run's own check (repeatability over every call the boundary saw) is reported;
a shard names its own (:func:`~reference.run.scaling.whole_run_label`)."""

HANGS_IN_A_ROW = 3
"""Networks in a row whose check ran past the time limit before the rest of the run is not
waited on: code that hangs on every network would otherwise cost the limit on each (38
networks at the default 60 s is 38 minutes)."""


def _timed_out(done: Any) -> bool:
    return isinstance(done, Failed) and done.finding.kind == "timeout"


def _not_run(last: Finding) -> Finding:
    """The finding of a job left out after :data:`HANGS_IN_A_ROW` time-outs in a row."""
    return Finding(
        "timeout", last.member,
        f"not run: {last.member} ran past the time limit on the {HANGS_IN_A_ROW} networks "
        "before this one, so the rest of the run was not waited on",
        exception=last.exception, where=last.where,
    )  # fmt: skip


def run_checks(
    runner: Runner,
    problems: list[Problem],
    progress: Progress,
    scope: Scope | None = None,
    relu_at_zero: float | None = None,
    sink: Any = None,
) -> Outcome:
    """Gradient reports for every problem, non-gradient checks on the seed network and on the
    random ones, the fixed checks, and the whole run's consistency; each through ``runner``
    (a :class:`~reference.boundary.isolation.Worker` or an in-process runner). A network whose
    job hung or ended the worker gets a failing report naming the member, and the run goes on.
    ``problems`` may be any iterable. A ``sink`` (:class:`~reference.run.streaming.
    Stream`) supplies the lists the networks and checks go into: it writes each network out
    as it comes and keeps it compact."""
    reports: list[tuple[Problem, Report]] = [] if sink is None else sink.reports
    unsupported: list[tuple[Problem, Report]] = [] if sink is None else sink.unsupported
    results: list[tuple[str, checks.CheckResult]] = [] if sink is None else sink.results
    checked_one = False
    hung: list[Finding] = []  # the time-outs in a row, up to the last network
    returned: Problem | None = None  # the first network whose check the code answered
    for k, problem in enumerate(problems):
        with_checks = not checked_one or problem.name.startswith("random")
        done, hung = _network_job(runner, problem, with_checks, hung)
        if isinstance(done, Failed):
            reports.append((problem, _failed_network(problem, done, runner.name)))
        elif done[0].attribution == "unsupported":
            unsupported.append((problem, done[0]))
        else:
            report, found = done
            reports.append((problem, report))
            if returned is None and report.finding is None:
                returned = problem
            results.extend((problem.name, c) for c in found)
            checked_one |= with_checks and bool(found)
        progress.update(k + 1)
    stopped = len(hung) >= HANGS_IN_A_ROW
    results.extend(_fixed_results(runner, hung[-1] if stopped else None, scope, relu_at_zero))
    repeatability = _whole_run(runner, returned, hung[-1] if stopped else None)
    if repeatability is not None:  # appended, not extended: a sink shares passing results
        results.append(repeatability)
    progress.close()
    ok = all(r.ok for _, r in reports) and not any(c.is_error for _, c in results)
    return Outcome(ok, reports, results, unsupported, runner.printed())


def _network_job(
    runner: Runner, problem: Problem, with_checks: bool, hung: list[Finding]
) -> tuple[Any, list[Finding]]:
    """The network's check through ``runner`` (not run after :data:`HANGS_IN_A_ROW`
    time-outs in a row: code that hangs on every network is not waited on), and the
    time-outs in a row after it."""
    if len(hung) >= HANGS_IN_A_ROW:
        return Failed(_not_run(hung[-1])), hung
    done = runner.run(check_network, problem, with_checks)
    return done, [*hung, done.finding] if _timed_out(done) else []


def _failed_network(problem: Problem, done: Failed, name: str) -> Report:
    """The failing report of a network whose job hung or ended the worker, naming why."""
    network = {"sizes": problem.sizes, "activations": problem.activations,
               "cost": problem.cost, "m": problem.m}  # fmt: skip
    done.finding.network = problem.describe()
    return failed_report(done.finding, network, name)


def _fixed_results(
    runner: Runner, stopped: Finding | None, scope: Scope | None, relu_at_zero: float | None
) -> list[tuple[str, checks.CheckResult]]:
    """The fixed checks' results (``stopped``: the last time-out, when the run stopped
    waiting; then, as when their job fails, each fixed check fails naming why)."""
    fixed = Failed(_not_run(stopped)) if stopped else runner.run(fixed_checks, scope, relu_at_zero)
    if isinstance(fixed, Failed):
        found = fixed.finding
        return [
            ("fixed", checks.CheckResult(name, False, found.describe(), found.to_dict()))
            for name in checks.FIXED_CHECKS
        ]
    return [("fixed", c) for c in fixed]


def _whole_run(
    runner: Runner, returned: Problem | None, stopped: Finding | None
) -> tuple[str, checks.CheckResult] | None:
    """The whole run's repeatability, on the first network whose check the code answered;
    not run when none did or the run stopped waiting; None when its own job fails."""
    if returned is None or stopped:  # no call came back: nothing was repeated to compare
        why = (
            f"{stopped.member} ran past the time limit on {HANGS_IN_A_ROW} networks in a row"
            if stopped else "no call into the implementation returned"
        )  # fmt: skip
        return (WHOLE_RUN, checks.CheckResult("repeatability", None, f"not run: {why}"))
    seen = runner.run(whole_run_consistency, returned)
    if isinstance(seen, Failed):
        return None
    return (
        WHOLE_RUN,
        checks.CheckResult("repeatability", not seen, seen[0] if seen else
                           "every repeated call returned what it did before"),
    )  # fmt: skip


def writable(path: Path, option: str, directory: bool = False) -> None:
    """Fail before the run, not after it, when an output cannot be written."""
    if directory:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path}: not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"{option} {path}: cannot create the directory ({exc.strerror})"
            ) from None
        if not os.access(path, os.W_OK):
            raise UsageError(f"{option} {path}: the directory is not writable")
        return
    if path.is_dir():
        raise UsageError(f"{option} {path}: a directory, not a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror})") from None


def session(
    args: argparse.Namespace,
    runner: Runner,
    name: str,
    scope: Scope,
    head: dict[str, Any] | None = None,
    golden: tuple[bool, list[str], list[Any]] | None = None,
) -> Outcome:
    """One check, start to end: the networks drawn inside ``scope`` as they are checked
    (:class:`~reference.run.streaming.ProblemStream`, and the L2-penalised ones where the
    scope declares the penalty), run through ``runner`` on ``--shard``'s slice over
    ``--jobs`` workers and beside ``--against``'s upstream
    (:func:`~reference.run.scaling.run_networks`), each written out to the JSON and JUnit
    files as it comes (:class:`~reference.run.streaming.Stream`, which closes them even on a
    stopped run); a ``golden`` comparison's results stand for the networks' instead. The
    outcome is judged strictly under ``--strict``. ``head``: the JSON file's first fields."""
    from ..inputs.networks import undrawn
    from ..inputs.penalties import penalty_problems
    from . import streaming
    from .scaling import run_networks

    try:
        problems = streaming.ProblemStream(args.seed, args.networks, scope)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None
    problems.extra = penalty_problems(args.seed, scope)  # L2-penalised, where declared
    progress = streaming.progress_for(args, len(problems))
    viewer = None
    if args.layer_view:  # where the backward pass goes wrong, in failing reports
        from .layer_views import Viewer

        viewer = Viewer(runner)
    times = getattr(runner, "times", {})
    with streaming.Stream(args, name, times, head, viewer) as stream:  # a stopped run, too
        if golden is not None:  # golden compare: the drift per network, no network judged
            outcome = Outcome(golden[0], checks=golden[2])
        else:
            outcome = run_networks(args, runner, problems, progress, scope, sink=stream)
        if args.strict:
            outcome.judge_strictly()
        outcome.out_of_scope = undrawn(args.seed, scope) if golden is None else 0
        outcome.scope = scope.to_dict()
        outcome.times = dict(times)
        stream.finish(outcome)  # the JSON and JUnit files' ends
    return outcome


def refused(
    args: argparse.Namespace,
    name: str,
    scope: Scope,
    check: checks.CheckResult,
    head: dict[str, Any] | None = None,
) -> Outcome:
    """A run that checks no network because ``check`` failed before the first (a declared
    layout that does not fit where another does, or several layouts that fit undeclared
    code): its outcome, with the JSON and JUnit files written as any run's are, holding that
    one failed check of the whole run (of this shard's, under ``--shard``)."""
    from ..inputs.networks import undrawn
    from . import streaming
    from .scaling import whole_run_label

    k, n = getattr(args, "shard", None) or (1, 1)
    outcome = Outcome(False, checks=[(whole_run_label(k, n), check)], scope=scope.to_dict())
    outcome.out_of_scope = undrawn(args.seed, scope)  # skipped, as in any run of this scope
    with streaming.Stream(args, name, {}, head) as stream:
        stream.finish(outcome)
    return outcome
