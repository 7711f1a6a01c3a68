"""``backprop-check --format github``: the verdict where a GitHub pull request shows it.

GitHub Actions reads *workflow commands* from a step's output: a line
``::error file=F,line=N,title=T::MESSAGE`` becomes an annotation on line N of file F (in the
job's page and in the pull request's diff), and ``::warning`` and ``::notice`` likewise. A
step may also append Markdown to the file ``$GITHUB_STEP_SUMMARY`` names, shown on the run's
summary page. Both are documented in GitHub's "Workflow commands for GitHub Actions".

What is printed:

- the usual terminal report, folded in a ``::group::`` and fenced by ``::stop-commands::``,
  so that nothing the implementation put into a message can pass for a workflow command;
- one ``::error`` per distinct mistake (:func:`~reference.report.text.
  mistake_groups`: the same mistake on many networks is one annotation that counts them),
  and one per failed check, pointing at the file and line where the implementation failed
  (a crash's own frame), at the ``def`` line of the derivative the layer view blames (a
  hidden layer's activation, or at the output the cost or activation a fork registered,
  wherever its module is: ``ACTIVATIONS``/``COSTS`` entries), or else at the ``def`` line
  of the member at fault (``gradients`` for a wrong gradient, ``loss`` for a wrong loss),
  found with :mod:`inspect` where the implementation was loaded
  (:func:`~reference.report.provenance.member_locations`); each titled by what the
  report blames (the loss, the forward pass, a layer's parameter, a derivative);
- ``::warning`` for numerical weaknesses and ``::notice`` for conventions (both ``::error``
  under ``--strict``, which fails them);
- at most :data:`PER_STEP` of each level: GitHub shows no more per step, so where there
  are more, the last one shown says how many more there are and names them;
- the summary line last.

Paths are relative to ``$GITHUB_WORKSPACE`` (the checkout), else to the current directory; a
file outside it gets no ``file=`` (GitHub could not show it) and is named in the message.
"""

from __future__ import annotations

import html
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..boundary.guard import KINDS, MEMBERS
from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, Report
from .provenance import relative_to
from .terminal import terminal_text

LEVELS = {"error": "error", "warning": "warning", "convention": "notice"}
"""The workflow command for each severity (:data:`reference.judging.checks.SEVERITIES`)."""

PER_STEP = 10
"""Annotations of one level GitHub shows per step: "10 warning annotations, 10 error
annotations, and 10 notice annotations per step" (actions/toolkit, docs/problem-matchers.md,
"Limitations"; 50 per job). More are dropped without a word, so :func:`annotations` writes
``PER_STEP - 1`` of a level and one that names the rest."""

NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?|[-+]?\d+e[-+]?\d+")


def escape_data(text: str) -> str:
    """A workflow command's message: ``%`` as ``%25``, carriage return as ``%0D``, line
    feed as ``%0A`` (``%`` first, so that an escape already in the text stays literal)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: :func:`escape_data`, and ``:`` as ``%3A`` and
    ``,`` as ``%2C``, which would otherwise end the value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    title: str | None = None,
) -> str:
    """One workflow command line: ``::level file=...,line=...,title=...::message``."""
    if level not in ("error", "warning", "notice"):
        raise ValueError(f"level must be 'error', 'warning' or 'notice', got {level!r}")
    props = []
    if file is not None:
        props.append(f"file={escape_property(file)}")
        if line is not None:
            props.append(f"line={int(line)}")
    if title:
        props.append(f"title={escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{escape_data(message)}"


def workspace() -> str:
    """Where GitHub's paths start: ``$GITHUB_WORKSPACE``, else the current directory."""
    return os.environ.get("GITHUB_WORKSPACE") or os.getcwd()


def _count(n: int, total: int) -> str:
    return f"{n} of {total} network{'s' if total != 1 else ''}"


def culprit(report: Report) -> str:
    """The protocol member a failing report blames: the member that failed, ``loss`` for a
    wrong loss with right gradients or a wrong forward pass, else ``gradients``."""
    if report.finding and report.finding.get("member") in MEMBERS:
        return report.finding["member"]
    if report.attribution in ("forward", "loss"):
        return "loss"
    if report.attribution == "boundary" and report.findings:
        first = report.findings[0].split(" ", 1)[0]
        return first if first in MEMBERS else "gradients"
    return "gradients"


def failing_part(report: Report) -> str:
    """What a report fails on, in a few words: ``layer 2 dW, layer 1 db``, ``loss``, or the
    member that crashed."""
    if report.finding:
        return report.finding.get("member") or "gradients"
    parts = [f"layer {c.layer} d{c.param}" for c in report.failing()]
    if report.loss and report.loss.get("ok") is False:
        parts.append("loss")
    if report.findings and not parts:
        parts.append(culprit(report))
    return ", ".join(parts)


def blamed_entry(report: Report, locations: dict[str, dict[str, Any]]) -> str | None:
    """The table entry (``"activation NAME"`` or ``"cost NAME"``, a key of ``locations``)
    whose derivative the report's layer view blames: a hidden layer's activation; at the
    output, where the cost's derivative and the output activation's are one step, the one
    of the two a fork registered, if only one was. None where it blames no entry, or the
    entry has no known location."""
    blamed = (getattr(report, "layer_view", None) or {}).get("blamed") or {}
    if "activation" in blamed:
        key = f"activation {blamed['activation']}"
        return key if key in locations else None
    if "cost" in blamed:
        keys = [f"cost {blamed['cost']}", f"activation {blamed['output_activation']}"]
        registered = [k for k in keys if (locations.get(k) or {}).get("registered")]
        return registered[0] if len(registered) == 1 else None
    return None


def _inferred_entry(problem: Any, report: Report, blamed: dict[str, str]) -> str | None:
    """For a network whose own layer view blames no entry (not viewed, or unavailable: an
    L2 penalty), an entry the layer view of another network of the run blamed (``blamed``:
    entry -> network), where this network goes wrong from the layer that uses it: the
    activation at its highest wrong layer, or at the output its cost or output activation."""
    layer = (report.blame or {}).get("layer")
    acts = list(getattr(problem, "activations", ()) or ())
    if not layer or not acts or not 1 <= layer <= len(acts):
        return None
    keys = [f"activation {acts[layer - 1]}"]
    if layer == len(acts):
        keys.append(f"cost {getattr(problem, 'cost', '')}")
    found = [k for k in keys if k in blamed]
    return found[0] if len(found) == 1 else None


def _title(report: Report, entry: str | None = None) -> str:
    """What the report blames, in a few words: the member that failed, the loss or the
    forward pass (as the attribution says), a derivative (``entry``), or a layer's
    parameter."""
    if report.finding:
        member, kind = report.finding.get("member", "gradients"), report.finding.get("kind")
        return f"{member} {KINDS.get(kind, 'failed')}"
    attribution = report.attribution
    if attribution == "loss":
        return "the loss is wrong (the gradients are right)"
    if attribution == "forward":
        return "the loss or the forward pass is wrong (the gradients follow it)"
    if attribution == "boundary":
        return "arguments changed in place, or results that differ between calls"
    blame = report.blame or {}
    if entry is not None:
        kind, name = entry.split(" ", 1)
        part = f"{kind} {name}'s derivative is wrong"
    elif blame.get("param") == "loss":
        part = "the loss is wrong"
    elif blame.get("param") == "delta":
        part = f"layer {blame['layer']}'s delta dZ is wrong"
    elif blame.get("layer") is not None:
        part = f"layer {blame['layer']}'s d{blame['param']} is wrong"
    else:
        return ATTRIBUTIONS[attribution].split(":")[0]
    if attribution == "forward+backward":
        return f"the loss or the forward pass is wrong, and the gradients too: {part}"
    return part


class _Locator:
    """Turns a frame or a member into ``file=``/``line=`` for the workspace."""

    def __init__(self, locations: dict[str, dict[str, Any]], root: str) -> None:
        self.locations, self.root = locations, root

    def __call__(self, where: dict[str, Any] | None, member: str) -> tuple[dict[str, Any], str]:
        """Keyword arguments for :func:`command` and a note for the message (a file outside
        the workspace is named there instead)."""
        where = where or self.locations.get(member)
        if not where or not where.get("file"):
            return {}, ""
        rel = relative_to(where["file"], self.root)
        if rel is None:
            return {}, f"\n(at {where['file']}:{where.get('line')}, outside the workspace)"
        return {"file": rel, "line": where.get("line")}, ""


def annotations(
    outcome: Outcome,
    impl: str,
    locations: dict[str, dict[str, Any]] | None = None,
    *,
    root: str | None = None,
    strict: bool = False,
) -> list[str]:
    """The workflow commands for a run's ``outcome`` (:func:`~reference.run.session.
    run_checks`' dictionary): one per distinct mistake, failed check, warning and
    convention (see the module docstring). ``locations``: each member's definition
    (:func:`~reference.report.provenance.member_locations`); ``root``: the workspace
    (default :func:`workspace`)."""
    locations = locations or {}
    locate = _Locator(locations, root if root is not None else workspace())
    lines = [  # level, message, title, place
        *_mistake_lines(outcome.reports, impl, locations, locate),
        *_check_lines(outcome.checks, impl, locate, strict),
        *_note_lines(outcome.reports, impl, locate, strict),
    ]
    return [command(level, message, title=title, **props)
            for level, message, title, props in _within_limits(lines, impl)]  # fmt: skip


_Line = tuple[str, str, str, dict[str, Any]]
"""An annotation before it is written: its level, message, title and place."""


def _mistake_lines(
    reports: list[tuple[Any, Report]],
    impl: str,
    locations: dict[str, dict[str, Any]],
    locate: _Locator,
) -> list[_Line]:
    """One error per distinct mistake of the failing networks, placed on the frame that
    raised, the entry the layer view blames (or one inferred from another network's), or
    the member at fault."""
    from .text import mistake_groups

    failing = [(p, r) for p, r in reports if not r.ok]
    blamed: dict[str, str] = {}  # entry -> the first network whose layer view blames it
    for problem, report in failing:
        entry = blamed_entry(report, locations)
        if entry is not None and not report.finding:
            blamed.setdefault(entry, problem.name)
    lines: list[_Line] = []
    for group in mistake_groups(failing):
        problem, report = group[0]
        names = ", ".join(p.name for p, _ in group[:8]) + (", ..." if len(group) > 8 else "")
        frame = (report.finding or {}).get("where")
        entry = None if frame else blamed_entry(report, locations)
        if entry is None and not frame and not report.finding:
            entry = _inferred_entry(problem, report, blamed)
            if entry is not None:
                names += f"\n(placed on {entry}'s derivative, which the layer view of "
                names += f"{blamed[entry]} blames)"
        props, note = locate(frame, entry or culprit(report))
        message = (
            f"{report.summary}\nattribution: {ATTRIBUTIONS[report.attribution]}\n"
            f"networks: {names}{note}\n\n{report.render()}"
        )
        count = _count(len(group), len(reports))
        title = f"backprop-check {impl}: {_title(report, entry)} ({count})"
        lines.append(("error", message, title, props))
    return lines


def _check_lines(
    results: list[tuple[str, Any]], impl: str, locate: _Locator, strict: bool
) -> list[_Line]:
    """One annotation per failed check, at its severity's level (an error when ``strict``),
    on the member its finding names."""
    by_name: dict[str, list[tuple[str, Any]]] = {}
    for where, c in results:
        if c.ok is False:
            by_name.setdefault(c.name, []).append((where, c))
    lines: list[_Line] = []
    for name, failed in by_name.items():
        where, c = failed[0]
        found = c.finding or {}
        member = found.get("member") or name
        props, note = locate(found.get("where"), member if member in MEMBERS else "gradients")
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        level = "error" if strict else LEVELS[c.severity]
        title = f"backprop-check {impl}: {name} ({c.severity})"
        lines.append((level, f"{where}: {c.message}{more}{note}", title, props))
    return lines


def _note_lines(
    reports: list[tuple[Any, Report]], impl: str, locate: _Locator, strict: bool
) -> list[_Line]:
    """One annotation per distinct warning and convention (measured numbers aside), on
    ``loss``."""
    notes: dict[tuple[str, str], list[str]] = {}
    for _, report in reports:
        for severity, texts in (("warning", report.warnings), ("convention", report.conventions)):
            for text in texts:
                notes.setdefault((severity, NUMBER.sub("#", text)), []).append(text)
    lines: list[_Line] = []
    for (severity, _), texts in notes.items():
        props, note = locate(None, "loss")
        level = "error" if strict else LEVELS[severity]
        title = f"backprop-check {impl}: {severity} ({_count(len(texts), len(reports))})"
        lines.append((level, texts[0] + note, title, props))
    return lines


def _within_limits(
    lines: list[tuple[str, str, str, dict[str, Any]]], impl: str
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """At most :data:`PER_STEP` annotations of each level, in their order: where a level
    has more, its first ``PER_STEP - 1`` and one that counts and names the rest."""
    total: dict[str, int] = {}
    for level, *_ in lines:
        total[level] = total.get(level, 0) + 1
    kept: list[tuple[str, str, str, dict[str, Any]]] = []
    shown: dict[str, int] = {}
    rest: dict[str, list[str]] = {}
    for line in lines:
        level, title = line[0], line[2]
        if total[level] <= PER_STEP or shown.get(level, 0) < PER_STEP - 1:
            kept.append(line)
            shown[level] = shown.get(level, 0) + 1
        else:
            rest.setdefault(level, []).append(title.removeprefix(f"backprop-check {impl}: "))
    for level, titles in rest.items():
        message = (
            f"{len(titles)} more {level} annotations, not shown as annotations (GitHub shows "
            f"{PER_STEP} of a level per step); the report above has them all:\n"
            + "\n".join(f"- {t}" for t in titles)
        )
        kept.append((level, message, f"backprop-check {impl}: {len(titles)} more {level}s", {}))
    return kept


# --- the step summary ----------------------------------------------------------------------


def _cell(text: str, limit: int = 300) -> str:
    """Text for one Markdown table cell: HTML escaped, one line, ``|`` escaped."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return html.escape(text, quote=False).replace("|", "\\|")


def _verdict(report: Report) -> str:
    if report.ok:
        return "PASS"
    if report.attribution == "unsupported":
        return "not in scope"
    return "ERROR" if report.attribution in ("crash", "structure") else "FAIL"


def step_summary(outcome: Outcome, impl: str) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``: a heading with the verdict, a
    table of the networks (failing ones first: network, verdict, the failing layer and
    parameter, the diagnosis), the failed checks, and the totals."""
    from .text import summary_line

    reports = outcome.reports
    unsupported = list(outcome.unsupported)
    rows = sorted(reports, key=lambda pr: pr[1].ok) + unsupported
    verdict = "PASS" if outcome.ok else "FAIL"
    out = [f"### backprop-check: {verdict} `{_cell(impl)}`", ""]
    if rows:
        out += ["| network | verdict | failing | diagnosis |", "| --- | --- | --- | --- |"]
        for problem, report in rows:
            what = "" if report.ok else failing_part(report)
            why = "" if report.ok and not report.warnings else report.summary
            out.append(
                f"| {_cell(problem.name)} | {_verdict(report)} | {_cell(what)} | {_cell(why)} |"
            )
        out.append("")
    failed = [(w, c) for w, c in outcome.checks if c.ok is False]
    if failed:
        out += ["| check | where | severity | message |", "| --- | --- | --- | --- |"]
        out += [f"| {_cell(c.name)} | {_cell(w)} | {c.severity} | {_cell(c.message)} |"
                for w, c in failed]  # fmt: skip
        out.append("")
    passed = sum(r.ok for _, r in reports)
    errors = sum(_verdict(r) == "ERROR" for _, r in reports)
    outside = outcome.out_of_scope + len(unsupported)
    # counted as the summary line counts them: a warning or a note is not a failure
    applicable = [c for _, c in outcome.checks if c.ok is not None]
    noted = sum(c.ok is False and not c.is_error for c in applicable)
    out.append(
        f"**Totals:** {passed} passed, {len(reports) - passed - errors} failed, {errors} "
        f"errors, {outside} not in scope; "
        f"{sum(not c.is_error for c in applicable)} of {len(applicable)} other checks hold"
        + (f" ({noted} with a warning or a note)" if noted else "")
        + "."
    )
    out += ["", _cell(summary_line(outcome, impl), 2000), ""]
    return "\n".join(out) + "\n"


def print_github(
    outcome: Outcome,
    impl: str,
    out: TextIO,
    text_report: Callable[[TextIO], None],
    locations: dict[str, dict[str, Any]] | None = None,
    *,
    strict: bool = False,
) -> None:
    """The ``--format github`` output on ``out`` (the module docstring says what), and, when
    ``$GITHUB_STEP_SUMMARY`` names a file, :func:`step_summary` appended to it.
    ``text_report(stream)`` writes the terminal report; its lines are shown folded, with
    workflow commands off while they pass."""
    import io

    from .text import summary_line

    buffer = io.StringIO()
    text_report(buffer)
    token = secrets.token_hex(16)
    out.write("::group::backprop-check report\n")
    out.write(f"::stop-commands::{token}\n")
    out.write(buffer.getvalue())
    out.write(f"::{token}::\n::endgroup::\n")
    for line in annotations(outcome, impl, locations, strict=strict):
        out.write(line + "\n")
    out.write(summary_line(outcome, impl) + "\n")
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(Path(path), "a", encoding="utf-8") as fh:  # the implementation's text made safe
            fh.write(terminal_text(step_summary(outcome, impl)))
