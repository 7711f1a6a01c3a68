"""Spreading ``backprop-check``'s networks: ``--shard K/N`` and ``--jobs N``.

- ``--shard K/N`` checks the K-th of N disjoint slices of the networks (network i, counted
  from 0 in the unsharded run's order, belongs to shard i mod N + 1): every network lies in
  exactly one shard, and each is checked exactly as in the unsharded run, its non-gradient
  checks included. The fixed checks (hand-computed problems, not networks) and the networks
  the declared scope leaves out (skipped cases in the JUnit file) belong to shard 1. The
  whole-run check (repeatability over every call a worker saw) is each shard's own, named
  for it (:func:`whole_run_label`: "whole run, shard 2/3"): N shards hold N - 1 cases more
  than the unsharded run, and no two hold a case of the same name.
  Each shard is a run of its own, with its own exit status: a CI matrix of N entries covers
  the whole run.
- ``--jobs N`` checks the networks in N worker processes at once, each holding its own copy
  of the implementation behind the boundary (:class:`~reference.boundary.isolation.Worker`);
  the report is the one a single worker gives (the same verdicts, the same JSON), because
  the networks are checked in parallel a chunk at a time (:data:`AHEAD` per worker) and
  then read back in the run's own order: what waits to be read is bounded by the chunk.

:func:`run_networks` is ``backprop-check``'s one entry here: it also runs ``--against``
(:mod:`.against`) on the same networks and the same slice.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..boundary.isolation import Failed, Worker
from ..inputs.problems import Problem
from ..judging.outcome import Outcome
from .jobs import check_network, fixed_checks, whole_run_consistency
from .runner import InProcess, Runner, Timed, WithDtype


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)`` with 1 <= K <= N; argparse's ``type`` for ``--shard``."""
    k, slash, n = text.partition("/")
    try:
        if not slash:
            raise ValueError
        shard = int(k), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/4, got {text!r}") from None
    if not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return shard


def whole_run_label(k: int, n: int) -> str:
    """Where shard ``k`` of ``n`` reports its own whole-run check (repeatability over the
    calls its worker saw): ``"whole run, shard 2/3"``, so that no two shards' files hold a
    case of the same name; the unsharded run's ``"whole run"``."""
    from .session import WHOLE_RUN

    return WHOLE_RUN if n == 1 else f"{WHOLE_RUN}, shard {k}/{n}"


def shard(problems: list[Problem], k: int, n: int) -> list[Problem]:
    """The K-th of ``n`` disjoint slices of ``problems`` (``k`` from 1): every ``n``-th one,
    starting at index ``k - 1``, so that each slice mixes seed and random networks."""
    if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
        raise ValueError(f"shard must be K/N with 1 <= K <= N, got {k!r}/{n!r}")
    return problems[k - 1 :: n]


AHEAD = 16
"""Networks per worker checked in parallel before run_checks reads them back: more keeps
the workers busier across a chunk's slowest network, fewer keeps less waiting in memory."""

DEFAULT_JOBS = 1
"""``--jobs`` when it is not given, measured (``benchmarks/scaling.py``): each worker imports
JAX and compiles the JAX model for every network shape it meets, so two workers spend about
twice the CPU time of one (9 s against 18 s of user time on 84 networks), and on a two-core
machine shared with other work ``--jobs 2`` took 1.2 to 2 times the wall time of ``--jobs 1``.
More workers pay where cores are idle."""


def run_networks(
    args: argparse.Namespace,
    runner: Runner,
    problems: Iterable[Problem],
    progress: Any,
    scope: Any,
    sink: Any = None,
) -> Outcome:
    """``run_checks`` (``reference/run/session.py``) on ``args.shard``'s slice of
    ``problems``, spread over ``args.jobs`` workers, and, with ``args.against``, the
    comparison with that implementation appended to the outcome's checks. ``problems``: a
    list, or a :class:`~reference.run.streaming.ProblemStream` drawn as it is checked
    (with ``--against`` it is drawn whole: both runs need the same networks); ``sink``:
    run_checks' (:class:`~reference.run.streaming.Stream`)."""
    from .session import UsageError, run_checks

    k, n = getattr(args, "shard", None) or (1, 1)
    if isinstance(problems, list):
        mine: Any = shard(problems, k, n)
        first = problems[0].name if problems else ""
        plan = lambda p: p.name == first or p.name.startswith("random")  # noqa: E731
    else:
        mine, plan = problems.shard(k, n), problems.wants_checks
    if getattr(args, "against", None):
        mine = list(mine)
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    if isinstance(_innermost(runner), InProcess):
        if jobs not in (None, 1):
            raise UsageError(f"--jobs {jobs} needs worker processes; --in-process runs one")
        jobs = 1
    jobs = DEFAULT_JOBS if jobs is None else min(jobs, max(1, len(mine)))
    # ``plan``: the unsharded run's choice of networks that get the non-gradient checks: the
    # first and the random ones (run_checks' own rule, which a slice cannot see on its own).
    progress.total = max(1, len(mine))
    relu_at_zero = getattr(args, "relu_at_zero", None)  # the flag, else the declared one
    if relu_at_zero is None and scope is not None:
        relu_at_zero = getattr(scope, "relu_at_zero", None)
    spread = Spread(runner, jobs, plan if n > 1 else None, fixed=k == 1)
    try:
        outcome = run_checks(spread, spread.ahead(mine), progress, scope, relu_at_zero, sink)
    finally:
        spread.close_extra()
    if n > 1:  # each shard checks the calls its own worker saw: named per shard
        from .session import WHOLE_RUN

        found = outcome.checks
        for i, (where, c) in enumerate(found):
            if where == WHOLE_RUN:
                found[i] = (whole_run_label(k, n), c)
    against = getattr(args, "against", None)
    if against:
        from . import against as compare

        outcome = compare.run_against(
            args, outcome, runner, mine, scope, lambda up: Spread(up, jobs, spread.plan, k == 1)
        )
    return outcome


def _innermost(runner: Runner) -> Any:
    while isinstance(runner, (WithDtype, Timed)):
        runner = runner.runner
    return runner


def _clone(runner: Runner) -> Any:
    """A runner like ``runner`` (a Worker, maybe behind WithDtype and Timed) in a process of
    its own, started on its first job, with the same layout, precision and time limit."""
    if isinstance(runner, WithDtype):
        return WithDtype(_clone(runner.runner), runner.dtype)
    if isinstance(runner, Timed):  # the twin's times go where the first's do
        return Timed(_clone(runner.runner), runner.times)
    if not isinstance(runner, Worker):
        raise TypeError(f"runner must be a Worker (or WithDtype), got {type(runner).__name__}")
    twin = Worker(runner.spec, timeout=runner.timeout)
    twin.layout = runner.layout
    return twin


class Spread:
    """A runner over ``jobs`` workers that looks like one to ``run_checks``.

    :meth:`prefetch` checks every network in parallel; ``run(check_network, ...)`` then
    hands back the result computed for that network and request, or computes it on the
    first worker when run_checks asks for something else (the non-gradient checks moved to
    the next network because the first raised NotImplementedError). With a ``plan`` (a
    shard), whether a network gets its non-gradient checks is the unsharded run's choice.
    Other jobs run on the first worker; the whole-run consistency on every worker that
    checked networks, their findings merged. ``fixed`` False skips the fixed checks.
    """

    def __init__(
        self,
        first: Any,
        jobs: int,
        plan: Callable[[Problem], bool] | None = None,
        fixed: bool = True,
    ) -> None:
        self.first = first
        self.runners = [first] + [_clone(first) for _ in range(jobs - 1)]
        self.plan, self.fixed = plan, fixed
        self.done: dict[tuple[int, bool], Any] = {}
        self.used: set[int] = {0}

    def __getattr__(self, name: str) -> Any:  # name, declared, spec, timeout, layout
        return getattr(self.first, name)

    def _wanted(self, problem: Problem, with_checks: bool) -> bool:
        return self.plan(problem) if self.plan is not None else with_checks

    def ahead(self, problems: Iterable[Problem]) -> Iterator[Problem]:
        """``problems`` one by one, each chunk of :data:`AHEAD` per worker checked in
        parallel (:meth:`prefetch`) before its first is handed on; with one worker, as
        they come."""
        if len(self.runners) == 1:
            yield from problems
            return
        todo, first = iter(problems), True
        while chunk := list(itertools.islice(todo, AHEAD * len(self.runners))):
            self.done.clear()  # what run_checks asked for otherwise (it ran on the first)
            self.prefetch(chunk, first=first)
            first = False
            yield from chunk
            del chunk

    def prefetch(self, problems: list[Problem], progress: Any = None, first: bool = True) -> None:
        """Check every problem, spread over the workers (nothing to do with one worker);
        ``first``: whether ``problems`` start the run (its first gets the non-gradient
        checks, as run_checks' rule guesses ahead of the results)."""
        if len(self.runners) == 1:
            return
        todo: queue.Queue[tuple[int, Problem, bool]] = queue.Queue()
        for k, p in enumerate(problems):  # run_checks' rule, guessed ahead of the results
            todo.put((k, p, self._wanted(p, first or p.name.startswith("random"))))
            first = False
        lock, count = threading.Lock(), [0]

        def serve(index: int) -> None:
            runner = self.runners[index]
            while True:
                try:
                    _, p, with_checks = todo.get_nowait()
                except queue.Empty:
                    return
                done = runner.run(check_network, p, with_checks)
                with lock:
                    self.done[(id(p), with_checks)] = done
                    self.used.add(index)
                    count[0] += 1
                    if progress is not None:
                        progress.update(count[0])

        threads = [
            threading.Thread(target=serve, args=(i,), daemon=True) for i in range(len(self.runners))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        if job is check_network:
            problem, with_checks = args
            with_checks = self._wanted(problem, with_checks)
            key = (id(problem), with_checks)
            if key in self.done:
                return self.done.pop(key)
            return self.first.run(check_network, problem, with_checks)
        if job is fixed_checks and not self.fixed:
            return []
        if job is whole_run_consistency:
            seen = [self.runners[i].run(job, *args) for i in sorted(self.used)]
            found = [s for s in seen if not isinstance(s, Failed)]
            return [line for s in found for line in s] if found else seen[0]
        return self.first.run(job, *args)

    def use_layout(self, layout: str) -> None:
        for runner in self.runners:
            runner.use_layout(layout)

    def printed(self) -> list[str]:
        return [line for runner in self.runners for line in runner.printed()]

    def close_extra(self) -> None:
        """End every worker but the first (which belongs to the caller)."""
        for runner in self.runners[1:]:
            runner.close()
        self.runners = self.runners[:1]

    def close(self) -> None:
        self.close_extra()
        self.first.close()
