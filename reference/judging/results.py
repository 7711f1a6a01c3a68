"""A non-gradient check's result (:class:`CheckResult`), its severities, and what every check
shares: the gradients of a problem through the guard, a check run so that the code's own
failure becomes the check's finding, and the wording of a check the scope leaves out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..boundary.guard import Guarded, ImplementationFailed
from ..inputs.problems import Problem


@dataclass
class CheckResult:
    """One check's verdict: ``ok`` is None when the check does not apply.

    ``severity`` says what a failed check (``ok`` False) means (DESIGN.md, "Severity"):
    ``"error"`` (a wrong result: exit status 1), ``"warning"`` (numerical robustness, such
    as a loss that is NaN, infinite or clipped where the sigmoid saturates) or
    ``"convention"`` (a deliberate difference from the seed, such as relu'(0) = 0 or an
    update in place). Warnings and conventions fail a run only under ``--strict``.
    """

    name: str
    ok: bool | None
    message: str
    finding: dict[str, Any] | None = None
    """Where a failed call failed (:class:`~reference.boundary.guard.Finding`), if one did."""
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.ok is False and self.severity == "error"

    def _repr_html_(self) -> str:
        """One line of HTML for a notebook, a failed check marked by its severity."""
        from ..report.html import check_result_html

        return check_result_html(self)


SEVERITIES = ("error", "warning", "convention")


def _grads(impl: Guarded, p: Problem, params=None, X=None, Y=None, l2_scale: float = 1.0):
    """``p``'s gradients, or those of other params or data; ``l2_scale`` multiplies the
    problem's penalty (lambda/(2m) changes with m: see :func:`batch_mean`)."""
    kwargs = p.kwargs()
    if "l2" in kwargs:
        kwargs["l2"] = p.l2 * l2_scale
    return impl.gradients(
        params if params is not None else p.params,
        X if X is not None else p.X,
        Y if Y is not None else p.Y,
        **kwargs,
    )


def _flat(grads) -> np.ndarray:
    return np.concatenate([np.ravel(a) for pair in grads for a in pair])


def _guard(name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except ImplementationFailed as failed:  # the implementation's failure is the verdict
        found = failed.finding
        if found.kind == "unsupported":  # outside what it supports: the check does not apply
            return CheckResult(name, None, f"not supported: {found.describe()}", found.to_dict())
        return CheckResult(name, False, found.describe(), found.to_dict())


OUT_OF_SCOPE = "not applicable: the declared scope has no "
"""How the message of a fixed check whose network the scope does not admit begins."""


def _outside(scope, activations: list[str], cost: str, outputs: int = 1) -> bool:
    return scope is not None and not scope.admits_network(activations, cost, outputs)
