"""``backprop-check``'s layer view: for the first network of each mistake whose report blames
the backward pass, where it goes wrong (a local derivative, the chaining of the deltas, the
parameter gradients, the combining of the samples), in that network's report.

The view (:func:`~reference.judging.layer_view.view_summary`) is one more job through the run's
runner, so it calls the implementation behind the same boundary, in the same worker with the
same time limit as the network's check: a hang or a crash in it is the view's finding
(``"failed"``), and the network's report and the rest of the run stand. It costs some
milliseconds a network in this process (``README.md``, the layer view), so it runs by default,
on :data:`MAX_VIEWS` networks at most, each as its report comes, before it is written;
``--no-layer-view`` leaves it out.
"""

from __future__ import annotations

from typing import Any

from ..boundary.guard import Guarded
from ..boundary.isolation import Failed
from ..inputs.problems import Problem
from ..judging.layer_view import failed_view, view_summary
from ..judging.outcome import Outcome
from ..judging.records import Report
from .runner import Runner

MAX_VIEWS = 10
"""Mistakes (groups of failing networks, :func:`~reference.report.text.mistake_groups`)
whose first network is viewed, in the order the run meets them. The reports are written as
they come (``streaming.py``), before the run knows which mistakes will be the largest, so
the first ten are viewed: the text report prints the tables of the three largest, and a
mistake that is among them and not among the first ten met is rare."""


def view_job(impl: Guarded, problem: Problem, precision: str) -> dict[str, Any]:
    """The job run in the worker: the layer view of ``problem`` as plain data. A failure of
    the view's own code is said in the view (``"failed"``), never a crash of the worker."""
    try:
        return view_summary(impl, problem.params, problem.X, problem.Y,
                            **problem.kwargs(), precision=precision)  # fmt: skip
    except Exception as exc:  # the harness's own code; the implementation's is caught inside
        return failed_view(
            f"the layer view's own code raised {type(exc).__name__}: {exc} (a problem in the "
            "harness, not in the implementation)"
        )


def wanted(reports: list[tuple[Problem, Report]]) -> list[tuple[Problem, Report]]:
    """The networks to view: the first of each of the :data:`MAX_VIEWS` largest mistakes
    whose reports blame the backward pass (attribution ``"backward"``: not the loss, not a
    crash), as the text report orders them."""
    from ..report.text import mistake_groups

    failing = [(p, r) for p, r in reports if not r.ok and r.attribution == "backward"]
    return [group[0] for group in mistake_groups(failing)[:MAX_VIEWS]]


class Viewer:
    """``backprop-check``'s view of each report as it comes, before it is written
    (:class:`~reference.run.streaming.Stream` calls it): the first network of each
    new mistake that blames the backward pass, up to :data:`MAX_VIEWS` of them, gets
    ``Report.layer_view``, computed through ``runner``."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, problem: Problem, report: Report) -> None:
        if report.ok or report.attribution != "backward" or len(self.seen) >= MAX_VIEWS:
            return
        from ..report.text import mistake_key

        key = mistake_key(report)  # one view per mistake, as the report groups them
        if key in self.seen:
            return
        self.seen.add(key)
        report.layer_view = _view(self.runner, problem, report)


def _view(runner: Runner, problem: Problem, report: Report) -> dict[str, Any]:
    done = runner.run(view_job, problem, report.precision)
    if isinstance(done, Failed):
        done = failed_view(f"the implementation failed in it: {done.finding.describe()}")
    return done


def attach_layer_views(runner: Runner, outcome: Outcome) -> None:
    """Set ``Report.layer_view`` on the :func:`wanted` networks of ``outcome``
    (``run_checks``' result, every report kept), each computed through ``runner``, after the
    run (``benchmarks/layer_view.py`` times it so); ``backprop-check`` views the reports as
    they come instead (:class:`Viewer`)."""
    for problem, report in wanted(outcome.reports):
        report.layer_view = _view(runner, problem, report)
