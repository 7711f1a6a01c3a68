"""The record of one check of an implementation, as the run engine hands it to the
reporters: every network's report, every other check's result, what was not in scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..inputs.problems import Problem
from .checks import CheckResult
from .records import Report


@dataclass
class Outcome:
    """One run's verdict and everything it rests on.

    ``reports``: (network, its gradient report), in the order checked. ``checks``: (where,
    result) of the non-gradient checks (where: a network's name, ``"fixed"``, ``"whole
    run"``). ``unsupported``: the networks the implementation answered with
    ``NotImplementedError``. ``printed``: the lines it printed. ``out_of_scope``: how many
    of the default run's seed networks the scope left undrawn. ``scope``: the scope as a
    dict (:meth:`~reference.inputs.scope.Scope.to_dict`). ``times``: seconds per network
    name, and for the other checks together."""

    ok: bool
    reports: list[tuple[Problem, Report]] = field(default_factory=list)
    checks: list[tuple[str, CheckResult]] = field(default_factory=list)
    unsupported: list[tuple[Problem, Report]] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    out_of_scope: int = 0
    scope: dict[str, Any] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)

    def judge_strictly(self) -> None:
        """``--strict``: a warning or a convention anywhere fails the run too."""
        if any(c.ok is False for _, c in self.checks) or any(
            r.conventions or r.warnings for _, r in self.reports
        ):
            self.ok = False
