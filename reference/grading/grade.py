"""Grading: points for what the harness checks, in Gradescope's results format.

:func:`grade` runs ``backprop-check``'s checks on an implementation over the rubric's
networks (:mod:`.rubric`) and scores each item by the fraction of networks on which
it holds, each network weighed by its family (:mod:`.families`: output activation and
cost, then depth, then hidden activations), so that twenty copies of one network shape
do not outweigh one network of another:

- ``layer l dW`` / ``layer l db``: points x (the weight of the networks whose dJ/dW^l,
  dJ/db^l agree with finite differences and JAX); a network the code crashed on, or
  raised ``NotImplementedError`` on, counts as wrong (the rubric, not the code, says what
  is graded);
- ``loss``: the same for the loss against the formulas;
- ``check: <name>``: for each check of :mod:`reference.judging.checks`, the fraction of
  the places it applies where it holds (0 points where it applies nowhere, say because
  no call returned); a check that needs an optional member the code does not have
  (``update``) is not charged unless the rubric's ``require`` names that member;
  warnings and conventions cost nothing unless the rubric is ``strict``;
- ``hidden: <group>``: networks drawn from a secret seed, the weight of those whose
  gradients and loss all hold; graded only when a seed is given, and never shown in the
  output.

Each item's ``output`` is what a student acts on: which families of networks it fails on
("every network with a sigmoid output and bce"), the checker's diagnosis (which layer,
which parameter, what kind of mistake), an example network and the attribution.
:meth:`Grade.to_gradescope` gives the autograder's ``results.json``
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): plain text throughout
(``output_format`` "text", so nothing the code printed or raised renders as HTML), no
absolute path of the grading machine, and a top-level ``output`` that speaks of the
items a student sees before the due date only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..boundary.guard import Finding
from ..boundary.isolation import Failed, LoadFailed, Worker
from ..boundary.loading import OPTIONAL, REQUIRED, ImplementationError, load_impl
from ..boundary.policy import Policy, scan
from ..inputs.problems import Problem
from ..inputs.scope import Scope, random_problem_in
from ..judging import checks
from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, Report, failed_report
from ..judging.results import OUT_OF_SCOPE
from ..run.jobs import check_network
from ..run.runner import InProcess, Runner, WithDtype
from . import families
from .rubric import HiddenGroup, Rubric, load_rubric

HIDDEN_SEED_VARIABLE = "BACKPROP_HIDDEN_SEED"
"""The environment variable that gives the hidden networks' seed when no flag does."""

NUMBER = re.compile(r"(?<!layer )(?<!\^)[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
"""A measured number in a diagnosis (layer numbers aside): failures that differ only in
these are one kind of failure."""


TEXT = "text"
"""The ``output_format`` of every text in the results file: Gradescope shows it as it is,
rendering no HTML, Markdown or ANSI (its specification, "Output String Formatting"; the
top-level ``output`` would otherwise be ``simple_format``, which renders HTML)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters (terminal escapes among them), newline and tab aside."""

_ABSOLUTE = re.compile(
    r"(?<![\w.)\]/~-])/(?:[^\s/:'\"(),;<>]+/)+([^\s/:'\"(),;<>]+)"
    r"|\b[A-Za-z]:\\(?:[^\s\\:'\"(),;<>]+\\)+([^\s\\:'\"(),;<>]+)"
)
"""An absolute path (POSIX, or Windows' drive-letter form) of two parts or more; its last
part is group 1 or 2. Not a ratio such as dJ/dA or (A - Y)/m: those follow a word or a
bracket."""


def safe_text(text: str, roots: tuple[str, ...] = ()) -> str:
    """``text`` as a student may see it: each of ``roots`` (folders, such as the submission's
    own) taken off the paths under it, any other absolute path cut to its last part (no
    path of the grading machine is shown), and control characters dropped."""
    for root in sorted((r.rstrip("/\\") for r in roots if r), key=len, reverse=True):
        text = text.replace(root + os.sep, "").replace(root + "/", "")
    text = _ABSOLUTE.sub(lambda m: m.group(1) or m.group(2), text)
    return _CONTROL.sub("", text)


@dataclass
class Item:
    """One rubric item's result: ``score`` of ``max_score`` points, and why."""

    name: str
    score: float
    max_score: float
    output: str
    visibility: str = "visible"

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score

    def to_gradescope(self, roots: tuple[str, ...] = ()) -> dict[str, Any]:
        """One entry of results.json's ``tests``, its text made safe (:func:`safe_text`)."""
        return {
            "name": safe_text(self.name),
            "name_format": TEXT,
            "score": self.score,
            "max_score": self.max_score,
            "status": "passed" if self.passed else "failed",
            "output": safe_text(self.output, roots),
            "output_format": TEXT,
            "visibility": self.visibility,
        }


@dataclass
class Grade:
    """An implementation's grade: one :class:`Item` per rubric item."""

    impl: str
    items: list[Item]
    execution_time: float
    output: str
    """The whole grade in a few lines, for the teacher: every item, hidden ones too."""
    error: str | None = None
    """Why nothing could be graded (the code could not be imported), or None."""
    printed: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    """Integrity findings, one line each: forbidden imports in the source, and what the
    worker's policy refused (:mod:`reference.boundary.policy`); the gradebook's ``integrity``
    column and the teacher's summary; empty for honest code."""
    roots: tuple[str, ...] = ()
    """Folders taken off the paths in what a student sees (the submission's own)."""
    notes: list[str] = field(default_factory=list)
    """Lines about the grading itself for the student too (the wall-time limit fired, the
    code printed or warned), shown after the score."""

    @property
    def score(self) -> float:
        return round(sum(i.score for i in self.items), 2)

    @property
    def max_score(self) -> float:
        return round(sum(i.max_score for i in self.items), 2)

    def scores(self) -> dict[str, float]:
        """Each item's score by name."""
        return {i.name: i.score for i in self.items}

    def first_error(self) -> str:
        """The load failure, or the first item short of its points and its first line;
        empty when every item has all its points."""
        if self.error:
            return self.error
        for item in self.items:
            if not item.passed:
                return f"{item.name}: {item.output.splitlines()[0] if item.output else ''}"
        return ""

    def student_output(self) -> str:
        """The top-level text a student sees at once: the score of the items visible before
        the due date only (no hidden item, its score, or a total that counts it), which of
        them fall short, and the notes; made safe (:func:`safe_text`)."""
        shown = [i for i in self.items if i.visibility == "visible"]
        score = round(sum(i.score for i in shown), 2)
        top = round(sum(i.max_score for i in shown), 2)
        lines = [f"{self.impl}: {score:.4g} of {top:g} points on the items shown now"]
        if len(shown) < len(self.items):
            lines[0] += " (the items shown later are not counted here)"
        short = [i.name for i in shown if not i.passed]
        if short:
            lines.append(f"short of full points: {', '.join(short)}")
        if self.error:
            lines.append(f"the code could not be graded: {self.error}")
        lines += self.notes
        return safe_text("\n".join(lines), self.roots)

    def to_gradescope(self) -> dict[str, Any]:
        """The Gradescope autograder's results.json as a dict: ``score``, ``execution_time``
        (whole seconds), the student's top-level ``output`` (:meth:`student_output`), plain
        text formats, the grader's own stdout kept from students, one test per item, and the
        integrity findings, when there are any, in ``extra_data`` (stored, not shown)."""
        extra = {"extra_data": {"integrity": list(self.integrity)}} if self.integrity else {}
        return {
            **extra,
            "score": self.score,
            "execution_time": round(self.execution_time),
            "output": self.student_output(),
            "output_format": TEXT,
            "test_output_format": TEXT,
            "test_name_format": TEXT,
            "stdout_visibility": "hidden",
            "tests": [i.to_gradescope(self.roots) for i in self.items],
        }


def write_gradescope(grade_: Grade, path: Path) -> None:
    """Write ``grade_`` as Gradescope's results.json to ``path``: to a temporary file beside
    it, renamed over it, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(grade_.to_gradescope(), indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def hidden_seed_from(value: int | None, environ: Mapping[str, str] | None = None) -> int | None:
    """The hidden networks' seed: ``value`` when given, else ``BACKPROP_HIDDEN_SEED``, else
    None. A variable that is not a whole number >= 0 is a ValueError naming it (not its
    value: it is a secret)."""
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"hidden_seed must be an integer >= 0, got {type(value).__name__}")
        return value
    text = (environ if environ is not None else os.environ).get(HIDDEN_SEED_VARIABLE, "")
    if not text.strip():
        return None
    try:
        seed = int(text.strip())
    except ValueError:
        raise ValueError(
            f"{HIDDEN_SEED_VARIABLE} must be a whole number >= 0 (its value is not shown)"
        ) from None
    if seed < 0:
        raise ValueError(f"{HIDDEN_SEED_VARIABLE} must be >= 0 (its value is not shown)")
    return seed


# --- networks ------------------------------------------------------------------------------


def public_problems(rubric: Rubric) -> list[Problem]:
    """The rubric's public networks: the seed network's activation/cost combinations (all
    of them, or its own only) when ``depth`` is 3, then ``random`` random networks, every
    one ``depth`` layers deep and inside the rubric's scope, and the networks with an L2
    penalty where the rubric's ``[scope]`` has ``penalties = ["l2"]``."""
    from ..inputs.networks import default_problems
    from ..inputs.penalties import penalty_problems

    problems = default_problems(rubric.seed, rubric.random, rubric.graded_scope)
    if not rubric.combinations:
        combos = [p for p in problems if p.name.startswith("seed ")]
        problems = combos[:1] + [p for p in problems if not p.name.startswith("seed ")]
    return problems + penalty_problems(rubric.seed, rubric.graded_scope)


def hidden_problems(rubric: Rubric, seed: int) -> list[tuple[HiddenGroup, list[Problem]]]:
    """Each hidden group's networks, drawn from ``seed`` and the group's place in the
    rubric, like the random ones (``depth`` layers, inside the scope)."""
    out = []
    for k, group in enumerate(rubric.hidden):
        rng = np.random.default_rng([seed, k])
        problems = [
            random_problem_in(rng, rubric.graded_scope, name=f"hidden #{j + 1}")
            for j in range(group.networks)
        ]
        out.append((group, problems))
    return out


# --- runners -------------------------------------------------------------------------------


WALL_LIMIT = "wall_limit"
"""The kind of finding a job cut by the submission's wall-time limit gets: not a
``timeout`` (a call's own limit), so that the cause a student reads is the limit that
fired, and the runs that follow are not taken for calls that hang."""


class Deadline:
    """A runner with a wall-time limit on all its jobs together: a job started after the
    limit, or one running when it passes (the worker is killed), comes back
    :class:`~reference.boundary.isolation.Failed` with a :data:`WALL_LIMIT` finding."""

    def __init__(self, runner: Runner, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"the wall-time limit must be > 0 seconds, got {seconds!r}")
        self.runner, self.seconds = runner, float(seconds)
        self.end = time.monotonic() + self.seconds
        self.expired = False
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        kill = getattr(self.runner, "kill", None)
        if kill is not None:
            kill()

    def finding(self) -> Finding:
        return Finding(
            WALL_LIMIT,
            "the implementation",
            f"ran past the wall-time limit of {self.seconds:g} s for the whole grading "
            "(all of its calls together); what was left was not graded",
        )

    def run(self, job: Any, *args: Any) -> Any:
        if self.expired or time.monotonic() >= self.end:
            self.expired = True
            return Failed(self.finding())
        done = self.runner.run(job, *args)
        if self.expired:
            return Failed(self.finding())
        return done

    def close(self) -> None:
        self._timer.cancel()
        self.runner.close()

    def __getattr__(self, name: str) -> Any:  # name, declared, printed, use_layout
        return getattr(self.runner, name)


def _namespace(impl: Any) -> Any:
    """A notebook's namespace (a dict such as ``globals()``) as an object with the
    protocol's members and ``SUPPORTS``; anything else as it is. A required member that is
    there but is no function (a float called ``loss``, as a notebook's variables often are)
    is an :class:`ImplementationError` saying so, in the notebook's terms."""
    if isinstance(impl, Mapping):
        for member in REQUIRED:
            if member in impl and not callable(impl[member]):
                raise ImplementationError(
                    f"the notebook's {member!r} is a {type(impl[member]).__name__}, not a "
                    f"function: define {member}(params, X, Y, *, activations, cost) (a variable "
                    f"of that name, set later in the notebook, replaces the function)"
                )
        keys = (*REQUIRED, *OPTIONAL, "SUPPORTS")
        return SimpleNamespace(**{k: impl[k] for k in keys if k in impl})
    return impl


# --- scoring -------------------------------------------------------------------------------


def _example(problem: Problem, report: Report) -> str:
    return f"{problem.name} ({problem.describe()})"


def _cause_first(group: list[tuple[Problem, Report, str]]) -> tuple[int, int]:
    """Sort key of a kind of failure: the wall-time limit first (when it fired, it is the
    cause of what follows it), then the commonest."""
    cut = any((r.finding or {}).get("kind") == WALL_LIMIT for _, r, _ in group)
    return (0 if cut else 1, -len(group))


def _failures(wrong: list[tuple[Problem, Report, str]], graded: list[Problem], what: str) -> str:
    """``what`` fails on the networks ``wrong`` names, out of ``graded``: which families
    (:func:`.families.describe`), then one paragraph per distinct diagnosis (measured numbers
    aside), each with its own families and one example network."""
    bad = {id(p) for p, _, _ in wrong}
    where = families.describe(graded, [id(p) in bad for p in graded])
    groups: dict[str, list[tuple[Problem, Report, str]]] = {}
    for problem, report, text in wrong:
        groups.setdefault(NUMBER.sub("#", text), []).append((problem, report, text))
    ordered = sorted(groups.values(), key=_cause_first)
    lines = [
        f"{what} fails on {len(wrong)} of {len(graded)} networks, {'; '.join(where)}: "
        f"{ordered[0][0][2]}"
    ]
    for group in ordered[:3]:
        problem, report, text = group[0]
        mine = {id(p) for p, _, _ in group}
        lines.append("")
        lines.append(f"- {text}")
        lines.append(
            f"  on {'; '.join(families.describe(graded, [id(p) in mine for p in graded]))}"
        )
        lines.append(f"  for example {_example(problem, report)}")
        if report.summary and report.summary != text:
            lines.append(f"  the network's verdict: {report.summary}")
        lines.append(f"  attribution: {_attribution(report)}")
    if len(ordered) > 3:
        lines.append(f"\n({len(ordered) - 3} more kinds of failure not shown)")
    return "\n".join(lines)


def _attribution(report: Report) -> str:
    """The report's attribution, in grading's terms: a network the code does not support is
    graded (the rubric sets the scope, not the code), so it counts as not holding."""
    if report.attribution == "unsupported":
        return ("the implementation does not support this network (NotImplementedError); "
                "the rubric's scope includes it, so it counts as not holding")  # fmt: skip
    return ATTRIBUTIONS.get(report.attribution, report.attribution)


def _ratio(points: float, held: int, total: int) -> float:
    """points x held / total, to the hundredth of a point (0 when there is nothing to hold)."""
    return round(points * held / total, 2) if total else 0.0


def _weighed(
    points: float, graded: list[Problem], wrong: list[tuple[Problem, Report, str]]
) -> float:
    """points x the weight of the networks that hold (:func:`.families.weighted_fraction`),
    to the hundredth of a point."""
    bad = {id(p) for p, _, _ in wrong}
    held = [id(p) not in bad for p in graded]
    return round(points * families.weighted_fraction(graded, held), 2)


def _param_item(
    l: int, k: int, points: float, graded: list[tuple[Problem, Report]], visibility: str
) -> Item:
    param = "dW" if k == 0 else "db"
    name = f"layer {l} {param}"
    wrong = []
    for problem, report in graded:
        if report.layers:
            c = report.layers[2 * (l - 1) + k]
            if not c.ok:
                wrong.append((problem, report, c.diagnosis or f"{param} differs from JAX"))
        else:
            wrong.append((problem, report, report.summary))
    networks = [p for p, _ in graded]
    output = (
        _failures(wrong, networks, name)
        if wrong
        else f"{name} agrees with finite differences and JAX on all {len(graded)} networks"
    )
    return Item(name, _weighed(points, networks, wrong), points, output, visibility)


def _loss_item(
    points: float, graded: list[tuple[Problem, Report]], strict: bool, visibility: str
) -> Item:
    wrong = []
    for problem, report in graded:
        if report.loss.get("ok") is not True:
            wrong.append((problem, report, report.summary))
        elif strict and (report.warnings or report.conventions):
            wrong.append((problem, report, (report.warnings + report.conventions)[0]))
    networks = [p for p, _ in graded]
    output = (
        _failures(wrong, networks, "the loss")
        if wrong
        else f"the loss agrees with the formulas on all {len(graded)} networks"
    )
    return Item("loss", _weighed(points, networks, wrong), points, output, visibility)


def _missing_member(results: list[tuple[str, checks.CheckResult]]) -> str | None:
    """The optional member (``update``, ``forward``) whose absence is why a check applies
    nowhere, or None."""
    for _, c in results:
        for member in OPTIONAL:
            if c.ok is None and c.message == f"the implementation has no {member}":
                return member
    return None


def _check_item(
    name: str,
    points: float,
    results: list[tuple[str, checks.CheckResult]],
    strict: bool,
    visibility: str,
    require: tuple[str, ...] = (),
) -> Item:
    mine = [(where, c) for where, c in results if c.name == name]
    applicable = [(where, c) for where, c in mine if c.ok is not None]
    title = f"check: {name}"
    if not applicable:
        why = mine[0][1].message if mine else "no network could be checked"
        if why.startswith(OUT_OF_SCOPE):  # the rubric's scope leaves it out: no points
            return Item(title, 0.0, 0.0, f"{name}: {why}", visibility)
        member = _missing_member(mine)
        if member is not None and member not in require:
            return Item(
                title, points, points,
                f"{name}: not charged: the code has no {member}, an optional member this "
                f'rubric does not ask for (require = ["{member}"] in the rubric would)',
                visibility,
            )  # fmt: skip
        return Item(title, 0.0, points, f"{name} does not apply: {why}", visibility)
    failed = [(w, c) for w, c in applicable if c.ok is False and (strict or c.is_error)]
    held = len(applicable) - len(failed)
    if failed:
        where, c = failed[0]
        label = "" if c.severity == "error" else f" ({c.severity})"
        output = (
            f"{name} fails{label} in {len(failed)} of {len(applicable)} places: "
            f"{where}: {c.message}"
        )
    else:
        notes = [(w, c) for w, c in applicable if c.ok is False]
        output = f"{name} holds in {len(applicable)} of {len(applicable)} places"
        if notes:
            where, c = notes[0]
            output += f" (a {c.severity}, not counted: {where}: {c.message})"
    return Item(title, _ratio(points, held, len(applicable)), points, output, visibility)


def _hidden_item(group: HiddenGroup, graded: list[tuple[Problem, Report]]) -> Item:
    name = f"hidden: {group.name}"
    wrong = [(p, r, r.summary) for p, r in graded if not r.ok]
    networks = [p for p, _ in graded]
    output = (
        _failures(wrong, networks, "the gradients or the loss")
        if wrong
        else f"the gradients and the loss hold on all {len(graded)} hidden networks"
    )
    return Item(name, _weighed(group.points, networks, wrong), group.points, output,
                group.visibility)  # fmt: skip


def score(
    rubric: Rubric,
    outcome: Outcome,
    hidden: list[tuple[HiddenGroup, list[tuple[Problem, Report]]]] = (),  # type: ignore[assignment]
) -> list[Item]:
    """The rubric's items from a ``run_checks`` outcome and the hidden groups' reports;
    items worth 0 points are left out."""
    graded = list(outcome.reports) + list(outcome.unsupported)
    vis = rubric.visibility
    items = []
    for l in range(1, rubric.depth + 1):
        for k, points in enumerate((rubric.W[l - 1], rubric.b[l - 1])):
            items.append(_param_item(l, k, points, graded, vis))
    items.append(_loss_item(rubric.loss, graded, rubric.strict, vis))
    for name, points in rubric.check_points.items():
        items.append(_check_item(name, points, outcome.checks, rubric.strict, vis, rubric.require))
    for group, reports in hidden:
        items.append(_hidden_item(group, reports))
    return [i for i in items if i.max_score > 0]


def _failed_items(rubric: Rubric, message: str, hidden: bool) -> list[Item]:
    """Every item at 0 points, each saying why: the code could not be graded at all.
    ``hidden``: the hidden groups' items too (a hidden seed was given)."""
    vis = rubric.visibility
    items = [
        Item(f"layer {l} {p}", 0.0, points, message, vis)
        for l in range(1, rubric.depth + 1)
        for p, points in (("dW", rubric.W[l - 1]), ("db", rubric.b[l - 1]))
    ]
    items.append(Item("loss", 0.0, rubric.loss, message, vis))
    items += [Item(f"check: {n}", 0.0, p, message, vis) for n, p in rubric.check_points.items()]
    if hidden:
        items += [
            Item(f"hidden: {g.name}", 0.0, g.points, message, g.visibility) for g in rubric.hidden
        ]
    return [i for i in items if i.max_score > 0]


# --- grading ------------------------------------------------------------------------------


def grade_with(
    runner: Runner, rubric: Rubric, hidden_seed: int | None = None, name: str | None = None
) -> Grade:
    """Grade the implementation behind ``runner`` (a started
    :class:`~reference.boundary.isolation.Worker`, an :class:`~.jobs.InProcess` runner or a
    :class:`Deadline` around one) on ``rubric``'s networks, the hidden ones too when
    ``hidden_seed`` is given. The layout and precision the code declares in ``SUPPORTS``
    are honoured; which networks are graded is the rubric's to say."""
    from ..run.session import Progress, run_checks

    started = time.perf_counter()
    limited = runner
    declared = getattr(runner, "declared", None) or Scope()
    if declared.layout not in (None, "columns"):
        runner.use_layout(declared.layout)
    if declared.dtype is not None:
        runner = WithDtype(runner, declared.dtype)
    # The fixed checks' hand-made networks have their own depths: only the rubric's
    # activations, costs and widths limit them. A rubric that declares none grades the
    # seed's names only, its fixed checks too (no softmax case for seed-only code).
    outcome = run_checks(runner, public_problems(rubric), Progress(0, False), rubric.scope)
    hidden = []
    if hidden_seed is not None:
        for group, problems in hidden_problems(rubric, hidden_seed):
            reports = []
            for problem in problems:
                done = runner.run(check_network, problem, False)
                if isinstance(done, Failed):
                    done.finding.network = problem.describe()
                    report = failed_report(done.finding, {}, runner.name)
                else:
                    report = done[0]
                reports.append((problem, report))
            hidden.append((group, reports))
    items = score(rubric, outcome, hidden)
    label = name or runner.name
    total, top = sum(i.score for i in items), sum(i.max_score for i in items)
    lines = [f"{label}: {total:.4g} of {top:g} points"]
    short = [i.name for i in items if not i.passed]
    if short:
        lines.append(f"short of full points: {', '.join(short)}")
    if rubric.hidden and hidden_seed is None:
        lines.append(
            f"hidden networks not graded here ({len(rubric.hidden)} group(s)): they are "
            f"drawn only with --hidden-seed or {HIDDEN_SEED_VARIABLE}"
        )
    notes = []
    seconds = getattr(limited, "seconds", None) or getattr(limited, "budget", None)
    if (isinstance(limited, Deadline) and limited.expired) or (
        isinstance(limited, Worker) and limited.spent()
    ):
        notes.append(
            f"grading stopped at the wall-time limit of {seconds:g} s for all of the "
            "code's calls together (not a limit on one call): what was left scores 0"
        )
    printed = runner.printed()
    if printed:
        notes.append(f"the code printed {len(printed)} lines while it was graded (not shown)")
    warned = getattr(runner, "warnings", 0)  # a worker's count (in this process: grade's own)
    if warned:
        notes.append(f"the code raised {warned} warnings while it was graded (counted, not shown)")
    return Grade(
        impl=label,
        items=items,
        execution_time=time.perf_counter() - started,
        output="\n".join(lines + notes),
        printed=printed,
        notes=notes,
    )


def failed_grade(
    rubric: Rubric, name: str, message: str, seconds: float = 0.0, hidden: bool = False
) -> Grade:
    """The grade of code that could not be loaded: every item at 0 (the hidden groups' too
    when ``hidden``, so that the maximum is the same as for code that loads), saying why."""
    text = f"the code could not be graded: {message}"
    return Grade(
        impl=name,
        items=_failed_items(rubric, text, hidden),
        execution_time=seconds,
        output=f"{name}: 0 points: {text}",
        error=message,
    )


def grade(
    impl: Any,
    *,
    rubric: Rubric | str | Path | None = None,
    hidden_seed: int | None = None,
    timeout: float = 60.0,
    wall_limit: float | None = None,
    name: str | None = None,
    policy: Policy | None = None,
    copy: str | Path | None = None,
    user: str | None = None,
    limits: dict[str, int | None] | None = None,
) -> Grade:
    """Grade an implementation on a rubric; returns a :class:`Grade` (``.score``,
    ``.max_score``, ``.scores()`` by item, ``.to_gradescope()``).

    ``impl``: a module path (``"mycourse.backprop"``, ``"path/to/backprop.py"``), run in a
    separate worker process with ``timeout`` seconds per call; or a module object, an object
    with ``loss`` and ``gradients``, or a namespace such as a notebook's ``globals()``, run
    in this process (each call still limited to ``timeout`` seconds where the platform
    allows). ``rubric``: a :class:`~reference.grading.rubric.Rubric`, a TOML path, or None
    for the default. ``hidden_seed``: the hidden networks' secret seed (None: read
    ``BACKPROP_HIDDEN_SEED``; neither: no hidden networks). ``wall_limit``: seconds for the
    whole grading (None: no limit); what is left when it passes scores 0. ``name``: what the
    output calls the code (default: ``impl`` or its ``__name__``).

    Code that cannot be imported, or lacks ``loss`` or ``gradients``, gets 0 on every
    item, each saying why; it does not raise.

    A path runs in a worker of its own (:mod:`reference.boundary.isolation`): a fresh
    temporary copy of ``copy`` (default: the package folder, or the module file's folder),
    an environment without the hidden seed, resource limits, and ``policy`` (default:
    :meth:`~reference.boundary.policy.Policy.grading` with the rubric's ``[integrity]
    forbid`` for a path, nothing forbidden for an installed module named by its name;
    ``limits`` over the default resource limits). A forbidden import, in the source or at run
    time, is an integrity finding (``Grade.integrity``), which zeroes the grade where the
    rubric says so. ``user``: the user the worker runs as, when this process
    runs as root.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    if wall_limit is not None and not wall_limit > 0:
        raise ValueError(f"wall_limit must be > 0 seconds or None, got {wall_limit!r}")
    if not isinstance(rubric, Rubric):
        rubric = load_rubric(rubric)
    seed = hidden_seed_from(hidden_seed)
    started = time.perf_counter()
    if name is None:
        if isinstance(impl, str):
            name = impl
        elif isinstance(impl, dict):  # a notebook's globals()
            name = "the notebook's functions"
        else:
            name = getattr(impl, "__name__", type(impl).__name__)
    runner: Runner
    if isinstance(impl, str):
        source = Path(copy) if copy is not None else _source_of(impl)
        if policy is None:
            rubric_file = [rubric.source] if Path(rubric.source).is_file() else []
            # a module by name is code installed where the grader runs, not an upload: its
            # imports are its own (the catalog's mistakes, reference.bugs:..., import backprop)
            forbid = rubric.forbid if source is not None else ()
            policy = Policy.grading(forbid, rubric_file, limits)
        found = scan(source, rubric.forbid) if source is not None else []
        try:
            # the wall limit counts the submission's own time, its calls in the worker
            worker = Worker(impl, timeout=timeout, policy=policy, copy=source, user=user,
                            budget=wall_limit)  # fmt: skip
        except LoadFailed as exc:
            graded = failed_grade(rubric, name, str(exc), 0.0, seed is not None)
            return _with_integrity(graded, found, rubric)
        runner = worker
        try:
            worker.start()
        except LoadFailed as exc:
            runner.close()
            message = str(exc)
            seconds = time.perf_counter() - started
            graded = failed_grade(rubric, name, message, seconds, seed is not None)
            return _with_integrity(graded, found + worker.violations, rubric)
    else:
        try:
            runner = InProcess(load_impl(_namespace(impl)), name)
        except ImplementationError as exc:
            seconds = time.perf_counter() - started
            return failed_grade(rubric, name, str(exc), seconds, seed is not None)
        runner.impl.time_limit = timeout
        if wall_limit is not None:
            runner = Deadline(runner, wall_limit)
    in_process = not isinstance(impl, str)
    with _counted_warnings() if in_process else contextlib.nullcontext([]) as warned:
        try:
            graded = grade_with(runner, rubric, seed, name)
        finally:
            runner.close()
    if in_process:
        extra = [SELF_CHECK, *([_warnings_note(warned)] if warned else [])]
        graded.notes = [SELF_CHECK, *graded.notes, *extra[1:]]
        graded.output = "\n".join([graded.output, *extra])
        return graded
    graded = _with_integrity(graded, found + worker.violations, rubric)
    if os.path.exists(impl):  # a file or a package: paths under its folder, shown without it
        graded.roots = (str(Path(impl).resolve().parent),)
    return graded


def _source_of(impl: str) -> Path | None:
    """What a graded path's worker runs in a copy of: a package folder, or the folder of a
    module file (the student's own files beside it); None for a module name."""
    from ..boundary.loading import is_path

    text = impl.partition(":")[0]
    if not is_path(text):
        return None
    path = Path(text).expanduser().resolve()
    return path if path.is_dir() else path.parent


def _with_integrity(graded: Grade, found: list[str], rubric: Rubric) -> Grade:
    """``graded`` with its integrity findings; when the rubric says so, every item at 0."""
    found = list(dict.fromkeys(found))
    if not found:
        return graded
    graded.integrity = found
    text = (
        "integrity: "
        + "; ".join(found[:5])
        + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")
    )
    if rubric.zero_on_finding:
        for item in graded.items:
            item.score = 0.0
            item.output = f"{text} (the rubric zeroes the grade)\n" + item.output
        graded.output = f"{graded.impl}: 0 points: {text}\n" + graded.output
        graded.notes.insert(0, f"{text} (the rubric zeroes the grade)")
    else:
        graded.output += f"\n{text} (reported; the points stand)"
        graded.notes.insert(0, f"{text} (reported; the points stand)")
    return graded


SELF_CHECK = (
    "graded in this process, as a self-check: the course's grade comes from a saved file "
    "graded in a separate worker process (backprop-check --gradescope or --submissions)"
)
"""What an in-process grade (a notebook's ``reference.grade(globals())``) says about itself."""


@contextlib.contextmanager
def _counted_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings raised meanwhile: the code under test's are kept in the list
    yielded (counted in the grade, not printed: a notebook cell is not flooded by a
    RuntimeWarning per call); the harness's own are shown as usual afterwards."""
    own = str(Path(__file__).resolve().parents[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept: list[warnings.WarningMessage] = []
        try:
            yield kept
        finally:
            seen = list(caught)
    for w in seen:
        harness = str(Path(w.filename).resolve()).startswith(own) or "site-packages" in w.filename
        if harness:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:
            kept.append(w)


def _warnings_note(warned: list[warnings.WarningMessage]) -> str:
    """One line: how many warnings the code raised, and the commonest (not each of them)."""
    kinds: dict[str, int] = {}
    for w in warned:
        first = str(w.message).splitlines()[0] if str(w.message) else ""
        key = f"{w.category.__name__}: {first}"
        kinds[key] = kinds.get(key, 0) + 1
    common, count = max(kinds.items(), key=lambda kv: kv[1])
    return (
        f"the code raised {len(warned)} warning(s) while it was graded (not shown); the "
        f"commonest, {count} times: {common}"
    )
