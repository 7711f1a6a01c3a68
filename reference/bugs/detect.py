"""Run the harness on every catalogued mistake: which checks catch it, and what they say.

:func:`detection_matrix` checks each mistake on :func:`detection_problems`
(the seed's network with a bce and an mse head, a fully square network, a deeper
non-square one, the seed's network with softmax and identity heads and leaky relu
layers, and two networks with an L2 penalty) with :func:`reference.check_gradients` and
every check of :mod:`reference.judging.checks`, and returns one :class:`Detection` per mistake.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..inputs.problems import Problem, seed_problem, with_relu_margin
from ..judging import checks
from ..judging.checker import check_gradients
from . import CATALOG, CORRECT
from .base import Correct

GRADIENT_COLUMNS = ("fd", "jax", "loss")
COLUMNS = GRADIENT_COLUMNS + tuple(checks.PROBLEM_CHECKS) + tuple(checks.FIXED_CHECKS)
"""The detection matrix's columns: the gradient check's three comparisons, then the
non-gradient checks."""


def detection_problems() -> list[Problem]:
    """The fixed problems every mistake is run on."""
    rng = np.random.default_rng(2024)
    square_acts = ["tanh", "sigmoid", "tanh"]
    square = [(rng.normal(0, 0.8, (3, 3)), rng.normal(0, 0.5, (3, 1))) for _ in range(3)]
    Xs, Ys = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    deep_acts = ["sigmoid", "relu", "tanh", "sigmoid"]
    sizes = [4, 5, 3, 2, 1]
    deep = [
        (rng.normal(0, 1, (n, p)), rng.normal(0, 0.5, (n, 1))) for p, n in itertools.pairwise(sizes)
    ]
    Xd = rng.normal(size=(4, 3))
    Yd = rng.uniform(size=(1, 3))
    penalised = seed_problem(("tanh", "tanh", "sigmoid"), "bce")
    penalised.l2, penalised.name = 0.5, penalised.name + ", l2 = 0.5"
    return [
        seed_problem(("tanh", "tanh", "sigmoid"), "bce"),
        seed_problem(("relu", "tanh", "sigmoid"), "mse"),
        Problem(square, Xs, Ys, square_acts, "mse", name="square 3-3-3-3 tanh/sigmoid/tanh mse"),
        Problem(with_relu_margin(deep, Xd, deep_acts), Xd, Yd, deep_acts, "bce",
                name="4-5-3-2-1 sigmoid/relu/tanh/sigmoid bce"),
        seed_problem(("leaky_relu", "tanh", "softmax"), "mse"),
        seed_problem(("tanh", "leaky_relu", "softmax"), "cce"),
        seed_problem(("tanh", "leaky_relu", "identity"), "mse"),
        penalised,
        Problem(square, Xs, Ys, square_acts, "mse", name="square 3-3-3-3 mse, l2 = 2",
                l2=2.0),
    ]  # fmt: skip


@dataclass
class Detection:
    """One mistake's row of the matrix."""

    name: str
    detected: bool
    caught_by: list[str]
    diagnosis: str
    blame: dict[str, Any] | None
    expected_blame: dict[str, Any] | None
    blame_ok: bool | None
    expected_checks: list[str]
    missed_expected: list[str]
    doc: str = ""
    cells: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _expected_blame(mistake: Correct, problem: Problem) -> dict[str, Any] | None:
    if mistake.blame is None:
        return None
    layer, param = mistake.blame
    L = len(problem.params)
    number = {"L": L, "L-1": L - 1}.get(layer, layer)  # type: ignore[arg-type]
    return {"layer": number, "param": param}


@dataclass
class _Found:
    """What :func:`detect` has read so far: the first diagnosis, and the blame it compares
    (the first mismatch with the expected one, if any)."""

    diagnosis: str = ""
    blame: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None
    blame_ok: bool | None = None

    def say(self, diagnosis: str) -> None:
        self.diagnosis = self.diagnosis or diagnosis

    def compare_blame(self, mistake: Correct, problem: Problem, report: Any) -> None:
        want = _expected_blame(mistake, problem)
        if want is not None and report.attribution not in ("crash", "structure"):
            if self.blame_ok is None or self.blame_ok:  # keep the first mismatch if any
                self.blame, self.expected = report.blame, want
                self.blame_ok = report.blame == want


def _mark_gradients(cells: dict[str, bool], report: Any) -> None:
    """Mark the gradient check's columns a failing report shows (all of them on a crash)."""
    crashed = report.attribution in ("crash", "structure")
    cells["fd"] |= crashed or any(c.fd_ok is False for c in report.layers)
    cells["jax"] |= crashed or any(c.jax_ok is False for c in report.layers)
    cells["loss"] |= report.loss.get("ok") is False


def _mark_check(cells: dict[str, bool], found: _Found, result: Any, where: str) -> None:
    """Mark a failing non-gradient check's column, its message the diagnosis if the first."""
    if result.ok is False:
        cells[result.name] = True
        found.say(f"{where}{result.name}: {result.message}")


def detect(mistake: Correct, problems: list[Problem] | None = None) -> Detection:
    """Run every check on one implementation; which caught it and what they said."""
    problems = problems if problems is not None else detection_problems()
    cells = dict.fromkeys(COLUMNS, False)
    found = _Found()
    for problem in problems:
        report = check_gradients(mistake, problem.params, problem.X, problem.Y, **problem.kwargs())
        if not report.ok:
            _mark_gradients(cells, report)
            found.say(f"{problem.name}: {report.summary}")
            found.compare_blame(mistake, problem, report)
        for fn in checks.PROBLEM_CHECKS.values():
            _mark_check(cells, found, fn(mistake, problem), f"{problem.name}: ")
    for fn in checks.FIXED_CHECKS.values():
        _mark_check(cells, found, fn(mistake), "")
    caught = [c for c in COLUMNS if cells[c]]
    return Detection(
        name=mistake.name,
        detected=bool(caught),
        caught_by=caught,
        diagnosis=found.diagnosis or "nothing caught it",
        blame=found.blame,
        expected_blame=found.expected,
        blame_ok=found.blame_ok,
        expected_checks=list(mistake.caught_by),
        missed_expected=[c for c in mistake.caught_by if not cells.get(c, False)],
        doc=(type(mistake).__doc__ or "").strip().splitlines()[0],
        cells=cells,
    )


def detection_matrix() -> list[Detection]:
    """:func:`detect` for every catalogued mistake, each on a fresh instance."""
    problems = detection_problems()
    return [detect(type(m)(), problems) for m in CATALOG.values()]


def correct_passes() -> list[str]:
    """What any check says against the shared correct code (an empty list when all pass)."""
    d = detect(type(CORRECT)())
    return [] if not d.detected else [d.diagnosis]


def render_matrix(rows: list[Detection]) -> str:
    """The matrix as a table: a row per mistake, a column per check (x: caught)."""
    short = {"fd": "FD", "jax": "JAX", "loss": "loss", "purity": "pure", "repeatability": "rep",
             "update": "upd", "descent": "desc", "batch mean": "mean", "duplicated batch": "dup",
             "permuted units": "perm", "relu'(0)": "kink", "saturation": "sat"}  # fmt: skip
    width = max(len(r.name) for r in rows) + 2
    head = (
        "mistake".ljust(width) + " ".join(f"{short[c]:>4}" for c in COLUMNS) + "  blame  diagnosis"
    )
    lines = [head]
    for r in rows:
        marks = " ".join(f"{'x' if r.cells[c] else '.':>4}" for c in COLUMNS)
        blame = "-" if r.blame_ok is None else ("ok" if r.blame_ok else "WRONG")
        lines.append(f"{r.name.ljust(width)}{marks}  {blame:>5}  {r.diagnosis[:110]}")
    detected = sum(r.detected for r in rows)
    lines.append(f"{detected} of {len(rows)} mistakes detected")
    return "\n".join(lines)
