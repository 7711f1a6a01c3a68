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
which parameter, what kind of mistake), an example network and the attribution
(:mod:`.scoring`). :meth:`Grade.to_gradescope` (:mod:`.results`) gives the autograder's
``results.json``
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): plain text throughout
(``output_format`` "text", so nothing the code printed or raised renders as HTML), no
absolute path of the grading machine, and a top-level ``output`` that speaks of the
items a student sees before the due date only.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..boundary.isolation import Failed, LoadFailed, Worker
from ..boundary.loading import OPTIONAL, REQUIRED, ImplementationError, load_impl
from ..boundary.policy import Policy, scan
from ..inputs.problems import Problem
from ..inputs.scope import Scope, random_problem_in
from ..judging.records import Report, failed_report
from ..run.jobs import check_network
from ..run.runner import InProcess, Runner, WithDtype, settle_layout
from .deadline import WALL_LIMIT, Deadline
from .results import TEXT, Grade, Item, safe_text, write_gradescope
from .rubric import HiddenGroup, Rubric, load_rubric
from .scoring import NUMBER, _failed_items, score

__all__ = [
    "HIDDEN_SEED_VARIABLE",
    "NUMBER",
    "SELF_CHECK",
    "TEXT",
    "WALL_LIMIT",
    "Deadline",
    "Grade",
    "Item",
    "failed_grade",
    "grade",
    "grade_with",
    "hidden_problems",
    "hidden_seed_from",
    "public_problems",
    "safe_text",
    "score",
    "write_gradescope",
]
"""The names importable from here: this module's, and those of :mod:`.results` (the
results format), :mod:`.scoring` and :mod:`.deadline` it grades with, where they were
before those were split from it."""

HIDDEN_SEED_VARIABLE = "BACKPROP_HIDDEN_SEED"
"""The environment variable that gives the hidden networks' seed when no flag does."""


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
    runner, layout_note = _as_declared(runner)
    # The fixed checks' hand-made networks have their own depths: only the rubric's
    # activations, costs and widths limit them. A rubric that declares none grades the
    # seed's names only, its fixed checks too (no softmax case for seed-only code).
    outcome = run_checks(runner, public_problems(rubric), Progress(0, False), rubric.scope)
    hidden = _hidden_reports(runner, rubric, hidden_seed) if hidden_seed is not None else []
    items = score(rubric, outcome, hidden)
    label = name or runner.name
    lines = _summary_lines(label, items, rubric, hidden_seed)
    printed = runner.printed()
    notes = _grading_notes(limited, printed, getattr(runner, "warnings", 0))
    notes = [*([layout_note] if layout_note else []), *notes]
    return Grade(
        impl=label,
        items=items,
        execution_time=time.perf_counter() - started,
        output="\n".join(lines + notes),
        printed=printed,
        notes=notes,
    )


def _as_declared(runner: Runner) -> tuple[Runner, str | None]:
    """``runner`` in the layout the code declares in ``SUPPORTS`` (or, where it declares
    none and the seed's does not fit, the one detected, as ``backprop-check`` detects it)
    and in the precision it declares; and the line that says what was detected or that
    the declared layout does not fit (None: nothing to say)."""
    declared = getattr(runner, "declared", None) or Scope()
    found = settle_layout(runner, declared, None)
    said = None
    if found.error is not None:
        said = f"layout: {found.error}"  # the checks fail in the declared layout, and say why
    elif found.note:
        said = found.note
    if declared.dtype is not None:
        runner = WithDtype(runner, declared.dtype)
    return runner, said


def _hidden_reports(
    runner: Runner, rubric: Rubric, hidden_seed: int
) -> list[tuple[HiddenGroup, list[tuple[Problem, Report]]]]:
    """Each hidden group's networks (:func:`hidden_problems`) with their reports; a job that
    did not return gets a failing report naming why."""
    hidden = []
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
    return hidden


def _summary_lines(
    label: str, items: list[Item], rubric: Rubric, hidden_seed: int | None
) -> list[str]:
    """The grade's first lines for the teacher: the points, the items short of full points,
    and hidden groups left ungraded for want of a seed."""
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
    return lines


def _grading_notes(limited: Runner, printed: list[str], warned: int) -> list[str]:
    """Lines about the grading itself: the wall-time limit fired (``limited``: the runner
    as given, a :class:`Deadline` or a worker with a budget), the code printed or warned
    (``warned``: a worker's count; in this process, :func:`grade` counts its own)."""
    notes = []
    seconds = getattr(limited, "seconds", None) or getattr(limited, "budget", None)
    if (isinstance(limited, Deadline) and limited.expired) or (
        isinstance(limited, Worker) and limited.spent()
    ):
        notes.append(
            f"grading stopped at the wall-time limit of {seconds:g} s for all of the "
            "code's calls together (not a limit on one call): what was left scores 0"
        )
    if printed:
        notes.append(f"the code printed {len(printed)} lines while it was graded (not shown)")
    if warned:
        notes.append(f"the code raised {warned} warnings while it was graded (counted, not shown)")
    return notes


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
    name = name if name is not None else _name_of(impl)
    if isinstance(impl, str):
        return _grade_path(
            impl, rubric, seed, name, started,
            timeout=timeout, wall_limit=wall_limit, policy=policy, copy=copy, user=user,
            limits=limits,
        )  # fmt: skip
    return _grade_in_process(impl, rubric, seed, name, started, timeout, wall_limit)


def _name_of(impl: Any) -> str:
    """What the output calls the code: its path or module name, or its ``__name__``."""
    if isinstance(impl, str):
        return impl
    if isinstance(impl, dict):  # a notebook's globals()
        return "the notebook's functions"
    return getattr(impl, "__name__", type(impl).__name__)


def _grade_path(
    impl: str,
    rubric: Rubric,
    seed: int | None,
    name: str,
    started: float,
    *,
    timeout: float,
    wall_limit: float | None,
    policy: Policy | None,
    copy: str | Path | None,
    user: str | None,
    limits: dict[str, int | None] | None,
) -> Grade:
    """:func:`grade` of a path or module name: in a worker of its own, under ``policy``,
    its integrity findings added."""
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
    try:
        worker.start()
    except LoadFailed as exc:
        worker.close()
        seconds = time.perf_counter() - started
        graded = failed_grade(rubric, name, str(exc), seconds, seed is not None)
        return _with_integrity(graded, found + worker.violations, rubric)
    try:
        graded = grade_with(worker, rubric, seed, name)
    finally:
        worker.close()
    graded = _with_integrity(graded, found + worker.violations, rubric)
    if os.path.exists(impl):  # a file or a package: paths under its folder, shown without it
        graded.roots = (str(Path(impl).resolve().parent),)
    return graded


def _grade_in_process(
    impl: Any,
    rubric: Rubric,
    seed: int | None,
    name: str,
    started: float,
    timeout: float,
    wall_limit: float | None,
) -> Grade:
    """:func:`grade` of a module, an object or a notebook's namespace, in this process, as a
    self-check (:data:`SELF_CHECK`), the warnings it raised counted."""
    try:
        runner: Runner = InProcess(load_impl(_namespace(impl)), name)
    except ImplementationError as exc:
        seconds = time.perf_counter() - started
        return failed_grade(rubric, name, str(exc), seconds, seed is not None)
    runner.impl.time_limit = timeout
    if wall_limit is not None:
        runner = Deadline(runner, wall_limit)
    with _counted_warnings() as warned:
        try:
            graded = grade_with(runner, rubric, seed, name)
        finally:
            runner.close()
    extra = [SELF_CHECK, *([_warnings_note(warned)] if warned else [])]
    graded.notes = [SELF_CHECK, *graded.notes, *extra[1:]]
    graded.output = "\n".join([graded.output, *extra])
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
