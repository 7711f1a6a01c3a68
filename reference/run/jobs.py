"""What ``backprop-check`` asks of the implementation, as jobs a runner carries out.

Each job is a module-level function ``job(impl, *args)`` taking the guarded
implementation (:class:`~reference.boundary.guard.Guarded`), so that it runs
the same in this process (:class:`InProcess`) or in an isolated worker
(:class:`~reference.boundary.isolation.Worker`), whose ``run`` has the same
signature. Their results are plain data: they travel back by pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..boundary.guard import Guarded, ImplementationFailed
from ..inputs.problems import Problem
from ..judging import checks
from ..judging.checker import check_gradients
from ..judging.records import Report


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


def as_arrays(grads: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Gradients from :func:`gradients_of` as arrays, or None for a failure."""
    return None if isinstance(grads, str) else grads
