"""``backprop-check`` in memory that does not grow with ``--networks``: each network's
result is written out and summarized as it comes, then dropped.

- The networks are drawn as they are checked (:class:`ProblemStream`), not all at first.
- ``--json PATH`` stays one JSON document, written piece by piece: the provenance and
  ``impl`` first, then ``"networks": [`` with one record per line as each network is
  checked, then ``ok``, ``checks``, ``scope``, ``not_in_scope``, ``attributions`` and
  ``complete`` when the run ends. A run stopped by an exception (Ctrl-C included) still
  closes the document, with ``"complete": false`` and ``"stopped"`` saying why; so does
  ``SIGTERM``, what CI sends on a time-out or a cancel (raised as :class:`Terminated` while
  the files are open); a process killed outright (``SIGKILL``) leaves the networks so far
  and no closing bracket.
- ``--junit-xml PATH`` writes one ``testsuite`` per network as it completes; the root's
  totals are filled in at the end, in room left for them inside its start tag. A stopped
  run still gets its closing tag and totals, with a suite that says why it stopped.
- What the rest of the run reads from the outcome (:class:`Stream`'s ``reports`` and
  ``unsupported``, run_checks' lists) keeps, per network, a compact pair
  (:class:`BriefProblem`, :class:`BriefReport`: the name, the verdict, the attribution,
  the summary, the warnings and conventions, the failing parameters), and the full pair
  only for the first network and for the first network of each of the first
  :data:`FULL_GROUPS` mistakes: the terminal report, ``--format github``'s annotations and
  step summary, the exit status and ``--strict`` need no more. ``--verbose`` (every
  table), ``--html`` (every table on the page), ``--plot`` (the failing networks' data)
  and ``--against`` (both runs, compared network by network) keep every full pair, as
  before; their files are still written as the run goes.
- The non-gradient checks' results (seven short ones per random network) are kept as
  before, for the summary, the JSON's ``checks`` and the JUnit file's last suite, written at
  the end; identical passing results share one object.
- ``--jobs N`` holds at most a chunk of results ahead of the run's order
  (:data:`~reference.run.scaling.AHEAD` per worker); ``--shard K/N`` draws only its
  slice's networks. Grading (``--gradescope``, ``--submissions``) checks its rubric's fixed
  networks and keeps their reports, as before.
- ``--progress`` (or a terminal on stderr) shows networks done / total, the rate and the
  time left on stderr; never with ``--quiet``, never in the JSON.

The JSON and JUnit writers are in :mod:`reference.run.stream_files`, the progress line in
:mod:`reference.run.progress`; this module draws the networks and holds the sink.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs.problems import Problem, random_problem
from ..inputs.scope import Scope, random_problem_in
from ..judging.outcome import Outcome
from ..judging.records import Report
from .progress import RunProgress as RunProgress  # its own module now, still importable here
from .progress import progress_for as progress_for
from .stream_files import JsonStream, JunitStream

FULL_GROUPS = 50
"""How many distinct mistakes keep their first network's full report (its table), in the
order they are met; a run's later mistakes are still counted and named."""


# --- the networks, drawn as they are checked -----------------------------------------------


class ProblemStream:
    """The networks of ``backprop-check``'s run in :func:`~reference.inputs.networks.
    default_problems`' order (the seed's combinations inside ``scope``, then ``networks``
    random ones drawn from ``default_rng(seed)``), drawn one at a time as they are iterated,
    so that they are not all held at once. ``len()`` is the number of networks;
    :meth:`shard` the K-th of N slices, as :func:`~reference.run.scaling.shard`."""

    def __init__(
        self, seed: int, networks: int, scope: Scope | None = None, k: int = 1, n: int = 1
    ) -> None:
        from ..inputs.networks import default_problems

        if not (isinstance(networks, int) and networks >= 0):
            raise ValueError(f"networks must be an int >= 0, got {networks!r}")
        self.seed, self.networks, self.scope, self.k, self.n = seed, networks, scope, k, n
        self.seeds = default_problems(seed, 0, scope)
        self.extra: list[Problem] = []
        """Networks checked after the random ones (the L2-penalised ones where the scope
        declares the penalty: ``reference/inputs/penalties.py``)."""
        first = self.seeds[0].name if self.seeds else "random #1"
        self.first_name = first
        """The first network of the whole (unsharded) run: the one run_checks gives the
        non-gradient checks besides the random ones."""

    def _all(self) -> Iterator[Problem]:
        yield from self.seeds
        rng = np.random.default_rng(self.seed)
        for i in range(self.networks):
            name = f"random #{i + 1}"
            if self.scope is None:
                yield random_problem(rng, depth=(1, 4), width=(1, 6), samples=(2, 6), name=name)
            else:
                yield random_problem_in(rng, self.scope, name=name)
        yield from self.extra

    def __iter__(self) -> Iterator[Problem]:
        return itertools.islice(self._all(), self.k - 1, None, self.n)

    def __len__(self) -> int:
        return len(range(self.k - 1, len(self.seeds) + self.networks + len(self.extra), self.n))

    def shard(self, k: int, n: int) -> ProblemStream:
        """The K-th of ``n`` disjoint slices (``k`` from 1): every ``n``-th network, from
        index ``k - 1`` of the whole run (a stream that is a slice already cannot be sliced)."""
        if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
            raise ValueError(f"shard must be K/N with 1 <= K <= N, got {k!r}/{n!r}")
        if self.n != 1:
            raise ValueError(f"this stream is shard {self.k}/{self.n} already")
        part = ProblemStream.__new__(ProblemStream)
        part.__dict__.update(self.__dict__, k=k, n=n)
        return part

    def wants_checks(self, problem: Problem) -> bool:
        """Whether the whole run gives ``problem`` its non-gradient checks: the first network
        and every random one (run_checks' rule, which a slice cannot see on its own)."""
        return problem.name == self.first_name or problem.name.startswith("random")


# --- compact per-network summaries ---------------------------------------------------------


_SHARED: dict[Any, Any] = {}
"""One object for each activation list and loss verdict the compact summaries hold."""


def _shared(value: Any) -> Any:
    return _SHARED.setdefault(value, value)


class BriefProblem:
    """What the run's summaries read of a :class:`~reference.inputs.problems.Problem`:
    its name, activations, cost and output width; no arrays."""

    __slots__ = ("activations", "cost", "name", "outputs")

    def __init__(self, problem: Problem) -> None:
        self.name = problem.name
        self.activations = _shared(tuple(problem.activations))
        self.cost = problem.cost
        self.outputs = int(problem.params[-1][0].shape[0]) if problem.params else 0

    @property
    def params(self) -> list[tuple[np.ndarray, None]]:
        """Stand-in parameters of the right output width, shape ``(n_L, 0)``, for the code
        that reads the width off ``params[-1][0].shape[0]``."""
        return [(np.empty((self.outputs, 0)), None)]


_LOSS: dict[Any, dict[str, Any]] = {True: {"ok": True}, False: {"ok": False}, None: {}}
"""The loss verdicts a :class:`BriefReport` holds, one object each (read, never changed)."""

_NONE: tuple[str, ...] = ()
"""No warnings, conventions or findings: one object for every report that has none."""


class BriefReport:
    """What the run's summaries read of a :class:`~reference.judging.records.Report`: the
    verdict, attribution, summary, warnings, conventions, the boundary's findings, the
    failing parameters' checks and the loss's verdict. :meth:`render` gives the summary,
    not the table (the table of each mistake's first network is kept in full)."""

    __slots__ = (
        "attribution",
        "blame",
        "conventions",
        "factor",
        "finding",
        "findings",
        "layers",
        "loss",
        "ok",
        "summary",
        "warnings",
    )  # fmt: skip

    def __init__(self, report: Report) -> None:
        self.ok = report.ok
        self.attribution = report.attribution
        self.summary = sys.intern(report.summary) if report.ok else report.summary
        self.warnings = report.warnings or _NONE
        self.conventions = report.conventions or _NONE
        self.finding, self.findings = report.finding, report.findings or _NONE
        self.layers = [c for c in report.layers if not c.ok]
        self.loss = _LOSS[report.loss["ok"]] if "ok" in report.loss else _LOSS[None]
        self.blame = None
        self.factor = report.factor  # across networks, which causes of a factor fit (cli)

    def failing(self) -> list[Any]:
        return list(self.layers)

    def render(self) -> str:
        return self.summary


# --- the sink run_checks writes into -------------------------------------------------------


class _Into(list):
    """A list whose ``append`` hands each ``(problem, report)`` to ``take`` and keeps what
    it returns."""

    def __init__(self, take: Any) -> None:
        super().__init__()
        self.take = take

    def append(self, pair: Any) -> None:
        super().append(self.take(*pair))


class _Shared(list):
    """A list of ``(where, CheckResult)`` whose identical passing results are one object."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple[Any, ...], Any] = {}

    def extend(self, pairs: Any) -> None:
        for where, c in pairs:
            if c.ok is not False and c.finding is None:
                c = self.seen.setdefault((c.name, c.ok, c.message, c.severity), c)
            super().append((where, c))


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` arrived: what CI sends a step it times out or cancels. Raised where the
    run is, as Ctrl-C raises :class:`KeyboardInterrupt`, and a kind of it, so that whatever
    lets Ctrl-C through (the boundary's guard around an in-process call) lets it through
    too, and the files are closed as after Ctrl-C. ``backprop-check`` then exits with
    :data:`TERMINATED_STATUS`."""


TERMINATED_STATUS = 128 + signal.SIGTERM
"""The exit status after ``SIGTERM`` (the shell's convention for a signal's end: 143)."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"{signal.Signals(signum).name}: the run was terminated (a CI time-out "
                     "or cancel)")  # fmt: skip


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside, ``SIGTERM`` raises :class:`Terminated` (in the main thread; elsewhere the
    signal is left as it is); the handler before is put back after. A whole check runs in
    it, so that a call stalled before the files are open (the layout's probe, a golden file's
    networks) ends with the same status as one stalled after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:  # None: a handler not set from Python, which the default is
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class Stream:
    """Where ``run_checks`` puts each network as it is checked (its ``sink``): written to
    the JSON and JUnit files when asked for, and kept as the module docstring says.
    ``times``: the :class:`~reference.run.runner.Timed` runner's; each network's time
    is taken out of it as the network's suite is written. Use as a context manager: a run
    that raises still leaves valid files, and inside it ``SIGTERM`` raises
    :class:`Terminated` (in the main thread; elsewhere the signal is left as it is)."""

    def __init__(
        self,
        args: argparse.Namespace,
        impl_name: str,
        times: dict[str, float],
        head: dict[str, Any] | None = None,
        viewer: Any = None,
    ) -> None:
        self.times = times
        self.viewer = viewer
        """Called with each checked network's problem and report before it is written
        (``layer_views.Viewer``: sets the report's layer view), or None."""
        self.full = bool(args.verbose or args.html or args.plot or getattr(args, "against", None))
        self.reports: list[Any] = _Into(self._checked)
        self.unsupported: list[Any] = _Into(self._unsupported)
        self.groups: set[tuple[str, str]] = set()
        self.results: list[Any] = _Shared()
        self.json: JsonStream | None = None
        if args.json:
            self.json = JsonStream(args.json, {**(head or {}), "impl": impl_name})
        self.junit: JunitStream | None = None
        if args.junit_xml:
            from ..report.provenance import harness_version

            self.junit = JunitStream(args.junit_xml, args.impl, seed=args.seed,
                                     version=harness_version(), strict=args.strict,
                                     shard=getattr(args, "shard", None))  # fmt: skip

    def _keep(self, problem: Any, report: Report, first: bool) -> tuple[Any, Any]:
        if self.full:
            return problem, report
        if not report.ok:  # the first network of each mistake stays whole
            from ..report.text import mistake_key

            key = mistake_key(report)
            if key not in self.groups and len(self.groups) < FULL_GROUPS:
                self.groups.add(key)
                return problem, report
        if first:
            return problem, report
        return BriefProblem(problem), BriefReport(report)

    def _written(self, problem: Any, report: Report) -> None:
        seconds = self.times.pop(problem.name, 0.0)
        if self.junit is not None:
            self.junit.network(problem, report, seconds)

    def _checked(self, problem: Any, report: Report) -> tuple[Any, Any]:
        if self.viewer is not None:
            self.viewer(problem, report)
        if self.json is not None:
            self.json.network(problem, report)
        self._written(problem, report)
        return self._keep(problem, report, first=not self.reports)

    def _unsupported(self, problem: Any, report: Report) -> tuple[Any, Any]:
        if self.json is not None:
            self.json.unsupported(problem, report)
        self._written(problem, report)
        return (problem, report) if self.full else (BriefProblem(problem), BriefReport(report))

    def finish(self, outcome: Outcome) -> None:
        """Close the files with what only the end of the run knows."""
        if self.json is not None:
            tail = {"ok": outcome.ok, "scope": outcome.scope, "complete": True}
            self.json.finish(tail, outcome.out_of_scope, outcome.checks)
            self.json = None
        if self.junit is not None:
            self.junit.finish(outcome)
            self.junit = None

    def __enter__(self) -> Stream:
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGTERM, _terminated)
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self._installed:  # None: a handler not set from Python, which the default is
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGTERM, previous)
            self._installed = False
        if exc is None:
            return
        from .session import UsageError

        if isinstance(exc, UsageError):  # the run did not start: no file, as before
            for written in (self.json, self.junit):
                if written is not None:
                    written.close()
                    Path(written.path).unlink(missing_ok=True)
            return
        stopped = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if self.json is not None:
            self.json.finish({"ok": False, "scope": {}, "complete": False, "stopped": stopped}, 0)
        if self.junit is not None:
            self.junit.finish(None, stopped)
