"""The checker's reports as HTML: a notebook's rich display and ``backprop-check --html``.

- :func:`report_html`: one :class:`~reference.judging.records.Report` as an HTML fragment
  (what ``Report._repr_html_`` returns, so a notebook shows the table): the per-layer table
  with the failing cells marked, the loss line, the notes, warnings, conventions and
  findings, the verdict with its summary and the attribution.
- :func:`page_html` / :func:`write_html`: a whole ``backprop-check`` run as one
  self-contained page (no external resources, no JavaScript): a header, every network's
  table (the passing ones folded in ``<details>``), the non-gradient checks, and heatmaps
  of the implementation's gradient, the reference and their difference for each failing
  parameter of the first failing networks, drawn as tables of coloured cells (no
  matplotlib needed), each cell's value in its ``title``.

A failing cell is marked three ways: the class :data:`FAIL_CLASS`, an inline background
:data:`FAIL_BACKGROUND` (inline, so a notebook viewer that drops ``<style>`` keeps it), and
a symbol and a word (:data:`FAIL_MARK`), so that it reads without colour too. Every piece
of text is escaped. The plain-text form stays ``Report.render()``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..boundary.layouts import describe_param
from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, ParamCheck, Report

FAIL_CLASS = "bp-fail"
"""The class of every failing cell and line."""
FAIL_BACKGROUND = "#f4b6b0"
"""The background of a failing cell (used for nothing else, so that a screenshot can find
it); the other severities have their own."""
FAIL_MARK = "\u2717 FAIL"
"""What a failing verdict says, in words and a symbol."""
WARN_BACKGROUND = "#fbe3a6"
NOTE_BACKGROUND = "#dbe8f6"
OK_MARK = "\u2713 ok"

HEATMAP_NETWORKS = 4
"""At most this many failing networks get heatmaps (one per distinct set of failing
parameters, in the run's order): enough to see each mistake, small enough to read."""
HEATMAP_CELLS = 48
"""Rows and columns shown of a larger gradient (the top-left corner; the page says so)."""

_FAIL_STYLE = f"background:{FAIL_BACKGROUND};font-weight:bold"
_CELL = "border:1px solid #bbb;padding:2px 6px"
_NUM = _CELL + ";text-align:right;font-family:monospace;white-space:nowrap"
_SEVERITY = {  # a failed check's severity: class, background, words
    "error": (FAIL_CLASS, FAIL_BACKGROUND, FAIL_MARK),
    "warning": ("bp-warn", WARN_BACKGROUND, "\u26a0 WARN"),
    "convention": ("bp-note", NOTE_BACKGROUND, "\u2139 NOTE"),
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}e}"


def _td(text: str, style: str = _CELL, failing: bool = False, mark: str = "") -> str:
    """One escaped cell; a failing one carries the class, the background and ``mark``."""
    if failing:
        body = _e(text) + (f" {_e(mark)}" if mark else "")
        return f'<td class="{FAIL_CLASS}" style="{style};{_FAIL_STYLE}">{body}</td>'
    return f'<td style="{style}">{_e(text)}</td>'


def _line(label: str, text: str, severity: str | None = None) -> str:
    """A paragraph ``label: text``; a severity marks it as a failed check of that kind."""
    if severity is None:
        return f'<p style="margin:2px 0">{_e(label)}: {_e(text)}</p>'
    cls, background, words = _SEVERITY[severity]
    return (
        f'<p class="{cls}" style="margin:2px 0;background:{background};padding:1px 4px">'
        f"<b>{_e(words)}</b> {_e(label)}: {_e(text)}</p>"
    )


def _row(c: ParamCheck, shape: str) -> str:
    fd_bad, jax_bad = c.fd_ok is False and not c.ok, c.jax_ok is False
    cells = [
        _td(str(c.layer), _NUM, not c.ok),
        _td(c.param, _CELL, not c.ok),
        _td(shape, _NUM),
        _td(_num(c.error_fd), _NUM, fd_bad, "\u2717"),
        _td(_num(c.bound_fd, 1), _NUM),
        _td(_num(c.error_jax), _NUM, jax_bad, "\u2717"),
        _td(_num(c.bound_jax, 1), _NUM),
        _td(FAIL_MARK if not c.ok else OK_MARK, _CELL, not c.ok),
        _td(c.diagnosis, _CELL, not c.ok),
    ]
    cls = f' class="{FAIL_CLASS}"' if not c.ok else ""
    return f"<tr{cls}>{''.join(cells)}</tr>"


def report_html(report: Report) -> str:
    """``report`` as an HTML fragment (a ``<div>``): the same content as ``render()``, with
    every failing cell marked by class, background and word (see the module docstring)."""
    net = report.network
    head = (
        f"{report.impl}: {'-'.join(map(str, net.get('sizes', [])))} "
        f"[{', '.join(net.get('activations', []))}] {net.get('cost', '')}, m = {net.get('m')}"
        + (f", l2 = {net['l2']:g}" if net.get("l2") else "")
    ) + ("" if report.layout == "columns" else f", {report.layout} layout")
    parts = [
        '<div class="bp-report" style="font-family:sans-serif;font-size:13px">',
        f'<p style="margin:2px 0"><b>{_e(head)}</b></p>',
    ]
    if report.layers:
        label = "shape" if report.layout == "columns" else "yours"
        names = ("layer", "param", label, "err FD", "bound", "err JAX", "bound")
        header = "".join(f'<th style="{_CELL}">{_e(n)}</th>' for n in names)
        header += f'<th style="{_CELL}">verdict</th><th style="{_CELL}">diagnosis</th>'
        rows = [
            _row(c, describe_param(report.layout, c.layer, c.param, c.shape)) for c in report.layers
        ]
        parts.append(
            '<table style="border-collapse:collapse;margin:4px 0">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    loss = report.loss
    if "jax" in loss:
        text = f"{loss['impl']:.12g} vs JAX {loss['jax']:.12g}"
        if loss["ok"]:
            parts.append(_line("loss", f"{text}: ok"))
        else:
            parts.append(_line("loss", text, "error"))
    if report.kinks_excluded:
        excluded = f"{report.kinks_excluded} entries next to a relu kink excluded"
        parts.append(_line("kinks", excluded + " from finite differences"))
    parts += [_line("note", note) for note in report.notes]
    parts += [_line("warning", text, "warning") for text in report.warnings]
    parts += [_line("convention", text, "convention") for text in report.conventions]
    parts += [_line("boundary", text, "error") for text in report.findings]
    if report.ok:
        parts.append(f'<p style="margin:2px 0"><b>{_e(OK_MARK)}</b>: {_e(report.summary)}</p>')
    else:
        parts.append(
            f'<p class="{FAIL_CLASS}" style="margin:2px 0;{_FAIL_STYLE};padding:1px 4px">'
            f"{_e(FAIL_MARK)}: {_e(report.summary)}</p>"
        )
    if report.finding and report.finding.get("where"):
        w = report.finding["where"]
        place = f"{w.get('file')}, line {w.get('line')}, in {w.get('function', '?')}"
        parts.append(_line("where", place + (f": {w['code']}" if w.get("code") else "")))
    if not report.ok or report.attribution == "check":
        parts.append(_line("attribution", ATTRIBUTIONS.get(report.attribution, "")))
    parts.append("</div>")
    return "".join(parts)


def check_result_html(result: Any) -> str:
    """One :class:`~reference.judging.checks.CheckResult` as a line of HTML (its
    ``_repr_html_``): a failed one marked by its severity."""
    if result.ok is False:
        return _line(result.name, result.message, result.severity)
    return _line(result.name, ("ok: " if result.ok else "not applicable: ") + result.message)


# --- heatmaps --------------------------------------------------------------------------------

_POSITIVE = np.array([178.0, 24.0, 43.0])
_NEGATIVE = np.array([33.0, 102.0, 172.0])
_WHITE = np.array([255.0, 255.0, 255.0])


def _colour(value: float, limit: float) -> str:
    """A diverging scale: white at 0, red at +limit, blue at -limit (clipped beyond)."""
    if not np.isfinite(value):
        return "#000000"
    t = float(np.clip(value / limit, -1.0, 1.0)) if limit > 0 else 0.0
    end = _POSITIVE if t >= 0 else _NEGATIVE
    rgb = np.rint(_WHITE + abs(t) * (end - _WHITE)).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _grid(title: str, data: np.ndarray, limit: float, name: str, others: dict) -> str:
    """One matrix as a table of coloured cells; each cell's ``title`` gives its value and
    the other matrices' at the same entry."""
    rows = []
    shown = data[:HEATMAP_CELLS, :HEATMAP_CELLS]
    for i, row in enumerate(shown):
        cells = []
        for j, v in enumerate(row):
            tip = f"{name}[{i},{j}] = {v:.6g}; " + "; ".join(
                f"{k} {m[i, j]:.6g}" for k, m in others.items()
            )
            cells.append(f'<td style="background:{_colour(v, limit)}" title="{_e(tip)}"></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    cut = data.shape != shown.shape
    note = f" (top-left {shown.shape[0]}x{shown.shape[1]} of {data.shape[0]}x{data.shape[1]})"
    return (
        f'<figure class="bp-grid"><figcaption>{_e(title + (note if cut else ""))}</figcaption>'
        f'<table class="bp-heat">{"".join(rows)}</table></figure>'
    )


def _legend(limit: float) -> str:
    """The colour scale from -limit to +limit, in seven steps with their values."""
    steps = np.linspace(-limit, limit, 7)
    cells = "".join(
        f'<td style="background:{_colour(v, limit)}">{_e(f"{v:.2g}")}</td>' for v in steps
    )
    return f'<table class="bp-legend"><tr>{cells}</tr></table>'


def heatmaps_html(
    report: Report,
    grads: Sequence[tuple[np.ndarray, np.ndarray]],
    reference: Sequence[tuple[np.ndarray, np.ndarray]],
) -> str:
    """For each failing parameter of ``report``: the implementation's gradient, the
    reference's and their difference, on one colour scale (the larger of the two gradients'
    largest magnitudes), so that rounding noise stays white and a wrong entry stands out."""
    parts = []
    for c in report.failing():
        k = "Wb".index(c.param)
        mine = np.atleast_2d(np.asarray(grads[c.layer - 1][k], dtype=float))
        truth = np.atleast_2d(np.asarray(reference[c.layer - 1][k], dtype=float))
        if mine.shape != truth.shape:
            continue
        diff = mine - truth
        finite = np.concatenate([mine[np.isfinite(mine)], truth[np.isfinite(truth)]])
        limit = float(np.abs(finite).max(initial=0.0)) or 1.0
        name = f"d{c.param}{c.layer}"
        values = {"implementation": mine, "reference": truth, "difference": diff}
        grids = "".join(
            _grid(
                f"{what}",
                data,
                limit,
                name,
                {k2: v for k2, v in values.items() if k2 != what},
            )
            for what, data in values.items()
        )
        largest = float(np.abs(diff).max(initial=0.0))
        parts.append(
            f'<div class="bp-heatmaps"><p>layer {c.layer} d{_e(c.param)} '
            f"({_e(describe_param('columns', c.layer, c.param, c.shape))}, the seed's layout): "
            f"largest difference {largest:.3g}; scale \u00b1{limit:.3g}</p>"
            f'<div class="bp-row">{grids}</div>{_legend(limit)}</div>'
        )
    return "".join(parts)


# --- the page --------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 16px; color: #111; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 14px 0 4px; }
table.bp-meta td { padding: 1px 8px 1px 0; vertical-align: top; }
table.bp-checks { border-collapse: collapse; }
table.bp-checks td, table.bp-checks th { border: 1px solid #bbb; padding: 2px 6px; }
.bp-row { display: flex; flex-wrap: wrap; gap: 16px; }
figure.bp-grid { margin: 4px 0; }
figure.bp-grid figcaption { font-size: 12px; }
table.bp-heat { border-collapse: collapse; }
table.bp-heat td { width: 22px; height: 22px; padding: 0; border: 1px solid #eee; }
table.bp-legend { border-collapse: collapse; font-size: 11px; margin: 4px 0 10px; }
table.bp-legend td { padding: 1px 6px; border: 1px solid #eee; }
details { margin: 6px 0; } summary { cursor: pointer; }
"""


def failing_sets(outcome: Outcome) -> list[str]:
    """The names of the failing networks that get heatmaps: the first with each distinct
    set of failing parameters, at most :data:`HEATMAP_NETWORKS`."""
    chosen, seen = [], set()
    for problem, report in outcome.reports:
        key = tuple((c.layer, c.param) for c in report.failing())
        if report.ok or not key or key in seen:
            continue
        seen.add(key)
        chosen.append(problem.name)
        if len(chosen) == HEATMAP_NETWORKS:
            break
    return chosen


def _checks_table(outcome: Outcome) -> str:
    rows = []
    for where, c in outcome.checks:
        if c.ok is False:
            cls, background, words = _SEVERITY[c.severity]
            verdict = (
                f'<td class="{cls}" style="background:{background};font-weight:bold">'
                f"{_e(words)}</td>"
            )
        else:
            verdict = f"<td>{_e(OK_MARK if c.ok else 'n/a')}</td>"
        rows.append(f"<tr><td>{_e(c.name)}</td><td>{_e(where)}</td>{verdict}"
                    f"<td>{_e(c.message)}</td></tr>")  # fmt: skip
    head = "<tr><th>check</th><th>on</th><th>verdict</th><th>message</th></tr>"
    return f'<table class="bp-checks"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _unprefixed(summary: str) -> str:
    """The summary line without its own PASS or FAIL word (the page's mark says it)."""
    head, sep, rest = summary.partition(": ")
    return rest if sep and head in ("PASS", "FAIL") else summary


def page_html(
    outcome: Outcome,
    impl: str,
    *,
    seed: int,
    summary: str,
    heatmaps: dict[str, str] | None = None,
) -> str:
    """A whole run (``outcome`` as ``backprop-check`` builds it: ``reports``, ``checks``,
    ``unsupported``, ``printed``) as one self-contained HTML document. ``heatmaps`` maps a
    network's name to its :func:`heatmaps_html`; ``summary`` is the run's summary line."""
    reports = outcome.reports
    failing = [(p, r) for p, r in reports if not r.ok]
    passing = [(p, r) for p, r in reports if r.ok]
    heatmaps = heatmaps or {}
    body = [
        *_head_html(outcome, impl, seed, summary, len(failing)),
        *_failing_html(failing, heatmaps),
        *_passing_html(passing, bool(failing)),
    ]
    unsupported = outcome.unsupported
    if unsupported:
        names = ", ".join(p.name for p, _ in unsupported)
        body.append(f"<h2>Not in scope ({len(unsupported)})</h2><p>{_e(names)}</p>")
    if outcome.checks:
        body.append(f"<h2>Other checks</h2>{_checks_table(outcome)}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>backprop-check: {_e(impl)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _head_html(outcome: Outcome, impl: str, seed: int, summary: str, failing: int) -> list[str]:
    """The page's heading, the run's facts (implementation, seed, networks, what was not in
    scope or printed) and the summary behind the verdict's mark."""
    verdict = (
        f'<b class="{FAIL_CLASS}" style="{_FAIL_STYLE};padding:1px 4px">{_e(FAIL_MARK)}</b>'
        if not outcome.ok
        else f"<b>{_e(OK_MARK)}</b>"
    )
    meta = [("implementation", impl), ("seed", str(seed)),
            ("networks", f"{len(outcome.reports)} in scope, {failing} failing")]  # fmt: skip
    unsupported = outcome.unsupported
    if unsupported:
        meta.append(("not in scope", f"{len(unsupported)} networks raised NotImplementedError"))
    printed = outcome.printed
    if printed:
        meta.append(("printed", f"the implementation printed {len(printed)} lines (not shown)"))
    return [
        f"<h1>backprop-check: {_e(impl)}</h1>",
        '<table class="bp-meta">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in meta)
        + "</table>",
        f'<p class="bp-summary">{verdict} {_e(_unprefixed(summary))}</p>',
    ]


def _failing_html(failing: list[tuple[Any, Report]], heatmaps: dict[str, str]) -> list[str]:
    """Each failing network's table, open, with its heatmaps where drawn."""
    if not failing:
        return []
    body = [f"<h2>Failing networks ({len(failing)})</h2>"]
    for problem, report in failing:
        maps = heatmaps.get(problem.name, "")
        body.append(
            f"<details open><summary>{_e(problem.name)}</summary>{report_html(report)}"
            + (f"<h3>Heatmaps: {_e(problem.name)}</h3>{maps}" if maps else "")
            + "</details>"
        )
    if len(failing) > len(heatmaps):
        body.append(
            f"<p>Heatmaps are drawn for {len(heatmaps)} of the failing networks: the first "
            "with each distinct set of failing parameters.</p>"
        )
    return body


def _passing_html(passing: list[tuple[Any, Report]], any_failing: bool) -> list[str]:
    """The passing networks' tables in one fold (the first one shown open when none
    failed, as the terminal does)."""
    if not passing:
        return []
    body = [f"<h2>Passing networks ({len(passing)})</h2>"]
    if not any_failing:  # as the terminal does: the first network's table when all holds
        (problem, report), passing = passing[0], passing[1:]
        body.append(f"<h3>{_e(problem.name)}</h3>{report_html(report)}")
    if passing:  # one fold for them all: a large run stays short
        tables = "".join(f"<h3>{_e(p.name)}</h3>{report_html(r)}" for p, r in passing)
        body.append(
            f"<details><summary>{'the other ' if not any_failing else ''}{len(passing)} "
            f"passing networks' tables</summary>{tables}</details>"
        )
    return body


def write_html(
    path: Path,
    outcome: Outcome,
    impl: str,
    *,
    seed: int,
    summary: str,
    gradients: Mapping[str, list[tuple[np.ndarray, np.ndarray]]],
) -> Path:
    """Write :func:`page_html` for the run to ``path``, with heatmaps for the failing
    networks :func:`failing_sets` picks whose ``gradients`` (the implementation's, by network
    name, as the run computed them; a network without them gets no heatmap) are given; the
    reference is ``jax.grad`` of the formulas."""
    from ..oracles.jax_model import jax_gradients

    problems = {p.name: (p, r) for p, r in outcome.reports}
    maps = {}
    for name in failing_sets(outcome):
        if name not in gradients or name not in problems:
            continue
        problem, report = problems[name]
        _, ref = jax_gradients(problem.params, problem.X, problem.Y, **problem.kwargs())
        maps[name] = heatmaps_html(report, gradients[name], ref)
    page = page_html(outcome, impl, seed=seed, summary=summary, heatmaps=maps)
    path.write_text(page, encoding="utf-8", errors="replace")  # a lone surrogate: "?"
    return path
