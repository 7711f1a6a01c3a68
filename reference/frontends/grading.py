"""Grading: points for what the harness checks, in Gradescope's results format.

:func:`grade` runs ``backprop-check``'s checks on an implementation over the rubric's
networks (:mod:`.rubric`) and scores each item by the fraction of networks on which
it holds:

- ``layer l dW`` / ``layer l db``: points x (networks whose dJ/dW^l, dJ/db^l agree with
  finite differences and JAX) / (networks graded); a network the code crashed on, or
  raised ``NotImplementedError`` on, counts as wrong (the rubric, not the code, says what
  is graded);
- ``loss``: the same for the loss against the formulas;
- ``check: <name>``: for each check of :mod:`reference.judging.checks`, the fraction of
  the places it applies where it holds (0 points where it applies nowhere, say because
  the code has no ``update``); warnings and conventions cost nothing unless the rubric
  is ``strict``;
- ``hidden: <group>``: networks drawn from a secret seed, the fraction whose gradients
  and loss all hold; graded only when a seed is given, and never shown in the output.

Each item's ``output`` is what a student acts on: how many networks it fails on, the
checker's diagnosis (which layer, which parameter, what kind of mistake), an example
network and the attribution. :meth:`Grade.to_gradescope` gives the autograder's
``results.json`` (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
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
from ..judging.checker import ATTRIBUTIONS, Report, failed_report
from .jobs import InProcess, WithDtype, check_network
from .rubric import HiddenGroup, Rubric, load_rubric

HIDDEN_SEED_VARIABLE = "BACKPROP_HIDDEN_SEED"
"""The environment variable that gives the hidden networks' seed when no flag does."""

_NUMBER = re.compile(r"(?<!layer )(?<!\^)[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
"""A measured number in a diagnosis (layer numbers aside): failures that differ only in
these are one kind of failure."""


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

    def to_gradescope(self) -> dict[str, Any]:
        """One entry of results.json's ``tests``."""
        return {
            "name": self.name,
            "score": self.score,
            "max_score": self.max_score,
            "status": "passed" if self.passed else "failed",
            "output": self.output,
            "visibility": self.visibility,
        }


@dataclass
class Grade:
    """An implementation's grade: one :class:`Item` per rubric item."""

    impl: str
    items: list[Item]
    execution_time: float
    output: str
    error: str | None = None
    """Why nothing could be graded (the code could not be imported), or None."""
    printed: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    """Integrity findings: forbidden imports in the source, and what the worker's policy
    refused (:mod:`reference.boundary.policy`); empty for honest code."""

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

    def to_gradescope(self) -> dict[str, Any]:
        """The Gradescope autograder's results.json as a dict: ``score``, ``execution_time``
        (whole seconds), ``output`` and one test per item."""
        return {
            "score": self.score,
            "execution_time": round(self.execution_time),
            "output": self.output,
            "tests": [i.to_gradescope() for i in self.items],
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
    from ..inputs.penalties import penalty_problems
    from .cli import default_problems

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


class Deadline:
    """A runner with a wall-time limit on all its jobs together: a job started after the
    limit, or one running when it passes (the worker is killed), comes back
    :class:`~reference.boundary.isolation.Failed` with a ``timeout`` finding."""

    def __init__(self, runner: Any, seconds: float) -> None:
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
            "timeout",
            "the implementation",
            f"ran past the wall-time limit of {self.seconds:g} s for the whole grading; "
            "what was left was not graded",
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
    protocol's members and ``SUPPORTS``; anything else as it is."""
    if isinstance(impl, Mapping):
        keys = (*REQUIRED, *OPTIONAL, "SUPPORTS")
        return SimpleNamespace(**{k: impl[k] for k in keys if k in impl})
    return impl


# --- scoring -------------------------------------------------------------------------------


def _example(problem: Problem, report: Report) -> str:
    return f"{problem.name} ({problem.describe()})"


def _failures(wrong: list[tuple[Problem, Report, str]], total: int, what: str) -> str:
    """``what`` is wrong on len(wrong) of ``total`` networks, one paragraph per distinct
    diagnosis (measured numbers aside), the commonest first."""
    groups: dict[str, list[tuple[Problem, Report, str]]] = {}
    for problem, report, text in wrong:
        groups.setdefault(_NUMBER.sub("#", text), []).append((problem, report, text))
    ordered = sorted(groups.values(), key=len, reverse=True)
    first = ordered[0][0][2]
    lines = [f"{what} fails on {len(wrong)} of {total} networks: {first}"]
    for group in ordered[:3]:
        problem, report, text = group[0]
        lines.append("")
        lines.append(f"- {text}")
        more = f" (and {len(group) - 1} more like it)" if len(group) > 1 else ""
        lines.append(f"  on {_example(problem, report)}{more}")
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
    held = len(graded) - len(wrong)
    output = (
        _failures(wrong, len(graded), name)
        if wrong
        else f"{name} agrees with finite differences and JAX on all {len(graded)} networks"
    )
    return Item(name, _ratio(points, held, len(graded)), points, output, visibility)


def _loss_item(
    points: float, graded: list[tuple[Problem, Report]], strict: bool, visibility: str
) -> Item:
    wrong = []
    for problem, report in graded:
        if report.loss.get("ok") is not True:
            wrong.append((problem, report, report.summary))
        elif strict and (report.warnings or report.conventions):
            wrong.append((problem, report, (report.warnings + report.conventions)[0]))
    held = len(graded) - len(wrong)
    output = (
        _failures(wrong, len(graded), "the loss")
        if wrong
        else f"the loss agrees with the formulas on all {len(graded)} networks"
    )
    return Item("loss", _ratio(points, held, len(graded)), points, output, visibility)


def _check_item(
    name: str,
    points: float,
    results: list[tuple[str, checks.CheckResult]],
    strict: bool,
    visibility: str,
) -> Item:
    mine = [(where, c) for where, c in results if c.name == name]
    applicable = [(where, c) for where, c in mine if c.ok is not None]
    title = f"check: {name}"
    if not applicable:
        why = mine[0][1].message if mine else "no network could be checked"
        if why.startswith(checks.OUT_OF_SCOPE):  # the rubric's scope leaves it out: no points
            return Item(title, 0.0, 0.0, f"{name}: {why}", visibility)
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
    held = len(graded) - len(wrong)
    output = (
        _failures(wrong, len(graded), "the gradients or the loss")
        if wrong
        else f"the gradients and the loss hold on all {len(graded)} hidden networks"
    )
    return Item(name, _ratio(group.points, held, len(graded)), group.points, output,
                group.visibility)  # fmt: skip


def score(
    rubric: Rubric,
    outcome: dict[str, Any],
    hidden: list[tuple[HiddenGroup, list[tuple[Problem, Report]]]] = (),  # type: ignore[assignment]
) -> list[Item]:
    """The rubric's items from a ``run_checks`` outcome and the hidden groups' reports;
    items worth 0 points are left out."""
    graded = list(outcome["reports"]) + list(outcome.get("unsupported", []))
    vis = rubric.visibility
    items = []
    for l in range(1, rubric.depth + 1):
        for k, points in enumerate((rubric.W[l - 1], rubric.b[l - 1])):
            items.append(_param_item(l, k, points, graded, vis))
    items.append(_loss_item(rubric.loss, graded, rubric.strict, vis))
    for name, points in rubric.check_points.items():
        items.append(_check_item(name, points, outcome["checks"], rubric.strict, vis))
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
    runner: Any, rubric: Rubric, hidden_seed: int | None = None, name: str | None = None
) -> Grade:
    """Grade the implementation behind ``runner`` (a started
    :class:`~reference.boundary.isolation.Worker`, an :class:`~.jobs.InProcess` runner or a
    :class:`Deadline` around one) on ``rubric``'s networks, the hidden ones too when
    ``hidden_seed`` is given. The layout and precision the code declares in ``SUPPORTS``
    are honoured; which networks are graded is the rubric's to say."""
    from .cli import Progress, run_checks

    started = time.perf_counter()
    declared = getattr(runner, "declared", None) or Scope()
    if declared.layout not in (None, "columns"):
        runner.use_layout(declared.layout)
    if declared.dtype is not None:
        runner = WithDtype(runner, declared.dtype)
    # The fixed checks' hand-made networks have their own depths: only the rubric's
    # activations, costs and widths limit them.
    fixed_scope = rubric.scope if rubric.scope.declared else None
    outcome = run_checks(runner, public_problems(rubric), Progress(0, False), fixed_scope)
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
    printed = runner.printed()
    if printed:
        lines.append(f"the code printed {len(printed)} lines while it was graded (not shown)")
    warned = getattr(runner, "warnings", 0)
    if warned:
        lines.append(f"the code raised {warned} warnings while it was graded (counted, not shown)")
    return Grade(
        impl=label,
        items=items,
        execution_time=time.perf_counter() - started,
        output="\n".join(lines),
        printed=printed,
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
    allows). ``rubric``: a :class:`~reference.frontends.rubric.Rubric`, a TOML path, or None
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
    runner: Any
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
    try:
        graded = grade_with(runner, rubric, seed, name)
    finally:
        runner.close()
    if isinstance(impl, str):
        graded = _with_integrity(graded, found + worker.violations, rubric)
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
    else:
        graded.output += f"\n{text} (reported; the points stand)"
    return graded
