"""Scoring: a rubric's items from a run's outcome (:func:`score`), each with the points it
earns and the text a student acts on.

Each item is scored by the fraction of networks on which it holds, each network weighed by
its family (:mod:`.families`), and says which families of networks it fails on, the
checker's diagnosis, an example network and the attribution (:func:`_failures`). The
module docstring of :mod:`.grade` lists the items.
"""

from __future__ import annotations

import re

from ..boundary.loading import OPTIONAL
from ..inputs.problems import Problem
from ..judging import checks
from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, Report
from ..judging.results import OUT_OF_SCOPE
from . import families
from .deadline import WALL_LIMIT
from .results import Item
from .rubric import HiddenGroup, Rubric

NUMBER = re.compile(r"(?<!layer )(?<!\^)[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
"""A measured number in a diagnosis (layer numbers aside): failures that differ only in
these are one kind of failure."""


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
