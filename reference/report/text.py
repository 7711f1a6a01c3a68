"""The terminal report of a run: failing networks grouped by mistake, the other checks by
name, the summary line; and the run as JSON."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any, TextIO

from ..inputs.problems import Problem
from ..inputs.scope import Scope, ScopeError
from ..judging import checks, diagnosis
from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, Report

_LABELS = {"error": "FAIL", "warning": "WARN", "convention": "NOTE"}
"""How each severity of a failed check is marked in the terminal."""


def summary_line(outcome: Outcome, impl: str) -> str:
    reports, results = outcome.reports, outcome.checks
    bad_nets = sum(not r.ok for _, r in reports)
    bad_checks = [c for _, c in results if c.is_error]
    notes = sorted({f"{c.severity} {c.name}" for _, c in results
                    if c.ok is False and not c.is_error})  # fmt: skip
    if any(r.conventions for _, r in reports):
        notes.append("convention cost scale")
    if any(r.warnings for _, r in reports):
        notes.append("warning saturated loss")
    verdict = "PASS" if outcome.ok else "FAIL"
    applicable = [c for _, c in results if c.ok is not None]
    outside = outcome.out_of_scope + len(outcome.unsupported)
    return (
        f"{verdict}: {impl}: {len(reports) - bad_nets}/{len(reports)} networks' gradients and "
        f"losses agree with finite differences and JAX"
        + (f" ({outside} not in scope)" if outside else "")
        + f"; {len(applicable) - len(bad_checks)}/{len(applicable)} other checks hold"
        + (f" (failed: {', '.join(sorted({c.name for c in bad_checks}))})" if bad_checks else "")
        + (f"; {', '.join(notes)} (not errors; --strict fails them)" if notes else "")
    )


def suggest_scope(
    supported: list[tuple[Problem, Report]],
    unsupported: list[tuple[Problem, Report]],
    declared: Scope | None = None,
) -> str:
    """The declaration that admits the networks that ran and none that raised
    NotImplementedError (as far as their activations, costs, output widths and depths tell),
    naming only what ``declared`` (the run's scope) does not already say
    (:meth:`~reference.inputs.scope.Scope.suggest`)."""
    declared = declared if declared is not None else Scope()
    if not supported:
        return "SUPPORTS = {...} in the module (see the README's scope section)"
    keys = declared.suggest([p for p, _ in supported], [p for p, _ in unsupported])
    if not keys:
        return ("nothing SUPPORTS can say: the networks that ran and those that raised differ "
                "in no key of it")  # fmt: skip
    if not declared.to_dict():  # nothing declared anywhere
        return f"SUPPORTS = {keys!r} in the module"
    return f"{keys!r} added to the module's SUPPORTS (what it declares already stays)"


def _run_scope(outcome: Outcome) -> Scope:
    """The scope the run was drawn in, as its outcome records it (nothing: none declared)."""
    try:
        return Scope.read(outcome.scope or None, "the run's scope")
    except ScopeError:
        return Scope()


NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?|[-+]?\d+e[-+]?\d+")

_INDEX = re.compile(r"(?<=layers)\[\d+\]")
"""An index into a model's list of layer objects (``layers[4]``): which instance of a class
showed a mistake first, not where in the code it is."""


def mistake_key(report: Report) -> tuple[str, str]:
    """What makes two failing reports one mistake: the attribution and the summary, its
    measured numbers and layer-object indices aside (``Dense.backward`` wrong at
    ``layers[2]`` on one network and ``layers[4]`` on another is one mistake)."""
    return report.attribution, NUMBER.sub("#", _INDEX.sub("[#]", report.summary))


def mistake_groups(
    failing: list[tuple[Problem, Report]],
) -> list[list[tuple[Problem, Report]]]:
    """Failing networks grouped by what their reports say, measured numbers aside: one
    mistake shows once, with the networks it affects; the largest group first."""
    groups: dict[tuple[str, str], list[tuple[Problem, Report]]] = {}
    for problem, report in failing:
        groups.setdefault(mistake_key(report), []).append((problem, report))
    return sorted(groups.values(), key=len, reverse=True)


def print_outcome(outcome: Outcome, impl: str, out: TextIO, quiet: bool, verbose: bool) -> None:
    """Failing networks first, one group per mistake (its first network's table and the
    networks it affects), then a line counting the passing ones (with the seed network's
    table when nothing failed), what is not in scope, the non-gradient checks grouped by
    name, and the summary. ``verbose`` prints every table and every check."""
    _write_networks(outcome.reports, out, quiet, verbose)
    _write_loss_notes(outcome.reports, out)
    _write_unsupported(outcome, out)
    _write_checks(outcome.checks, out, verbose)
    _write_printed(outcome.printed, out, verbose)
    out.write(summary_line(outcome, impl) + "\n")


def _count(items: list[Any]) -> str:
    return f"{len(items)} network{'s' if len(items) > 1 else ''}"


def _write_networks(
    reports: list[tuple[Problem, Report]], out: TextIO, quiet: bool, verbose: bool
) -> None:
    """The tables (every one when ``verbose``; the seed network's when nothing failed; the
    first three mistakes' otherwise, unless ``quiet``), a line per mistake, what the
    failing networks' factors say together, and how many passed."""
    failing = [(p, r) for p, r in reports if not r.ok]
    if verbose:
        shown = reports
    else:
        shown = reports[:1] if not quiet and not failing else []
    for problem, report in shown:
        out.write(f"{problem.name}\n{report.render()}\n\n")
    for k, group in enumerate(mistake_groups(failing)):
        problem, report = group[0]
        if not quiet and not verbose and k < 3:
            out.write(f"{problem.name}\n{report.render()}\n\n")
        names = ", ".join(p.name for p, _ in group[:4]) + (", ..." if len(group) > 4 else "")
        out.write(f"  FAIL ({_count(group)}: {names}): {report.summary[:400]}\n")
    across = diagnosis.across_networks([getattr(r, "factor", None) for _, r in failing])
    if across:  # a factor that equals several causes on one network, told apart by the rest
        out.write(f"  {across}\n")
    if reports:
        hint = "" if verbose or quiet else "; --verbose shows every table"
        passed = len(reports) - len(failing)
        out.write(f"  {passed} of {len(reports)} networks in scope passed{hint}\n")


def _write_loss_notes(reports: list[tuple[Problem, Report]], out: TextIO) -> None:
    """The loss's warnings and the cost's conventions: one line each, measured numbers
    aside, with how many networks say it."""
    notes: dict[tuple[str, str], list[str]] = {}
    for _, report in reports:
        for label, texts in (("WARN loss", report.warnings), ("NOTE cost", report.conventions)):
            for text in texts:
                notes.setdefault((label, _ANY_NUMBER.sub("#", text)), []).append(text)
    for (label, _), texts in notes.items():
        out.write(f"  {label}: {_merged(texts)} ({_count(texts)})\n")


_ANY_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _merged(texts: list[str]) -> str:
    """Texts that differ in their numbers only, as one: each number that differs given as its
    values ("the cost is 2, 3 or 5 times the seed's")."""
    parts = [_ANY_NUMBER.split(text) for text in texts]
    values = [_ANY_NUMBER.findall(text) for text in texts]
    words = parts[0]
    out = [words[0]]
    for k, rest in enumerate(words[1:]):
        seen = sorted({v[k] for v in values}, key=float)
        out.append(seen[0] if len(seen) == 1 else f"{', '.join(seen[:-1])} or {seen[-1]}")
        out.append(rest)
    return "".join(out)


def _write_unsupported(outcome: Outcome, out: TextIO) -> None:
    """The networks that raised NotImplementedError, and the scope that says so once."""
    unsupported = outcome.unsupported
    if not unsupported:
        return
    _, example = unsupported[0]
    out.write(
        f"  not in scope: {len(unsupported)} networks raised NotImplementedError "
        f"(first: {unsupported[0][0].name}: {example.summary[:200]}); "
        f"say so once with {suggest_scope(outcome.reports, unsupported, _run_scope(outcome))}\n"
    )


def _write_checks(
    results: list[tuple[str, checks.CheckResult]], out: TextIO, verbose: bool
) -> None:
    """The other checks, by name: the first failure of each (and how many more), or with
    ``verbose`` every place each holds or does not apply."""
    by_name: dict[str, list[tuple[str, checks.CheckResult]]] = {}
    for where, c in results:
        by_name.setdefault(c.name, []).append((where, c))
    for name, mine in by_name.items():
        failed = [(w, c) for w, c in mine if c.ok is False]
        if failed:
            where, c = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            label = _LABELS[c.severity]
            out.write(f"  {label} {name}: {where}: {c.message[:300]}{more}\n")
        elif verbose:
            for where, c in mine:
                mark = "ok" if c.ok else "n/a"
                out.write(f"  {mark:<4} {name}: {where}: {c.message}\n")


def _write_printed(printed: list[str], out: TextIO, verbose: bool) -> None:
    """How many lines the implementation printed (the first 20 with ``verbose``)."""
    if not printed:
        return
    out.write(
        f"note: the implementation printed {len(printed)} lines (not shown"
        + ("; the first 20 follow)\n" if verbose else "; --verbose shows the first 20)\n")
    )
    if verbose:
        out.writelines(f"  | {line[:200]}\n" for line in printed[:20])


def outcome_json(outcome: Outcome, impl: str) -> dict[str, Any]:
    return {
        "ok": outcome.ok,
        "impl": impl,
        "networks": [{"name": p.name, **r.to_dict()} for p, r in outcome.reports],
        "checks": [{"where": where, **asdict(c)} for where, c in outcome.checks],
        "scope": outcome.scope,
        "not_in_scope": {
            "undrawn": outcome.out_of_scope,
            "unsupported": [{"name": p.name, **r.to_dict()} for p, r in outcome.unsupported],
        },
        "attributions": ATTRIBUTIONS,
    }
