"""What ``backprop-check`` asks of the implementation, as jobs a runner carries out.

Each job is a module-level function ``job(impl, *args)`` taking the guarded
implementation (:class:`~reference.boundary.guard.Guarded`), so that it runs
the same in this process (:class:`InProcess`) or in an isolated worker
(:class:`~reference.boundary.isolation.Worker`), whose ``run`` has the same
signature. Their results are plain data: they travel back by pickle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..boundary.guard import Guarded, ImplementationFailed, guard
from ..inputs.problems import Problem
from ..judging import checks
from ..judging.checker import Report, check_gradients
from ..report.junit import CHECKS_SUITE


def check_network(
    impl: Guarded, problem: Problem, with_checks: bool
) -> tuple[Report, list[checks.CheckResult]]:
    """The gradient report for one network and, when asked, the problem checks on it."""
    report = check_gradients(impl, problem.params, problem.X, problem.Y, **problem.kwargs())
    results = [fn(impl, problem) for fn in checks.PROBLEM_CHECKS.values()] if with_checks else []
    return report, results


def fixed_checks(
    impl: Guarded, scope: Any = None, relu_at_zero: float | None = None
) -> list[checks.CheckResult]:
    """The checks on fixed, hand-computed problems, those of their networks the scope admits;
    ``relu_at_zero`` requires that relu'(0)."""
    return [
        checks.relu_at_zero(impl, scope, relu_at_zero) if name == "relu'(0)" else fn(impl, scope)
        for name, fn in checks.FIXED_CHECKS.items()
    ]


def gradients_of(impl: Guarded, problems: list[Problem]) -> list[Any]:
    """Each problem's gradients, or the failure's one-line description."""
    out: list[Any] = []
    for p in problems:
        try:
            out.append(impl.gradients(p.params, p.X, p.Y, **p.kwargs()))
        except ImplementationFailed as failed:
            out.append(failed.finding.describe())
    return out


def whole_run_consistency(impl: Guarded, first: Problem) -> list[str]:
    """Every call the boundary saw that returned something else for inputs it had seen,
    after one more call on the run's first problem: its gradients at the end of the run
    must be what they were at the start."""
    try:
        impl.gradients(first.params, first.X, first.Y, **first.kwargs())
    except ImplementationFailed as failed:
        return [failed.finding.describe()]
    return [i.describe() for i in impl.inconsistencies]


class InProcess:
    """A runner that calls jobs in this process (no isolation, no time limit)."""

    def __init__(self, impl: Any, name: str | None = None) -> None:
        from ..inputs.scope import Scope

        self.impl = guard(impl, name)
        self.name = self.impl.name
        self.declared = Scope.read(
            getattr(self.impl.impl, "SUPPORTS", None), f"{self.name}.SUPPORTS"
        )
        self.restarts = 0

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        return job(self.impl, *args)

    def use_layout(self, layout: str) -> None:
        """Check the implementation as written in ``layout`` (``reference/boundary/layouts.py``)."""
        self.impl.use_layout(layout)

    def printed(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def with_dtype(impl: Guarded, dtype: str | None, job: Callable[..., Any], *args: Any) -> Any:
    """``job(impl, *args)`` with the implementation given its arrays in ``dtype`` (None or
    "float64": as they are): set before every job, so a worker started afresh after a crash
    or a time-out gets it too."""
    impl.dtype = None if dtype in (None, "float64") else dtype
    return job(impl, *args)


class WithDtype:
    """A runner (:class:`InProcess` or a :class:`~reference.boundary.isolation.Worker`) whose
    every job runs with the implementation given its arrays in ``dtype`` (:func:`with_dtype`);
    the precision is known only once the worker has read the module's ``SUPPORTS``."""

    def __init__(self, runner: Any, dtype: str | None) -> None:
        self.runner, self.dtype = runner, dtype

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        return self.runner.run(with_dtype, self.dtype, job, *args)

    def __getattr__(self, name: str) -> Any:  # name, declared, restarts, printed, close
        return getattr(self.runner, name)


def as_arrays(grads: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Gradients from :func:`gradients_of` as arrays, or None for a failure."""
    return None if isinstance(grads, str) else grads


class Timed:
    """A runner (:class:`~reference.run.jobs.InProcess`, a
    :class:`~reference.boundary.isolation.Worker`, or a wrapper of one) that records how long
    each job took: ``times[problem name]`` for one network's check
    (:func:`~reference.run.jobs.check_network`), ``times[CHECKS_SUITE]`` summed over
    the other jobs. Seconds, wall clock."""

    def __init__(self, runner: Any, times: dict[str, float] | None = None) -> None:
        self.runner = runner
        self.times: dict[str, float] = {} if times is None else times
        """Shared by the runners of one run (``--jobs``: one per worker, one dictionary)."""

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.runner.run(job, *args)
        finally:
            key = args[0].name if job is check_network else CHECKS_SUITE
            self.times[key] = self.times.get(key, 0.0) + time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:  # name, declared, restarts, printed, close, ...
        return getattr(self.runner, name)
