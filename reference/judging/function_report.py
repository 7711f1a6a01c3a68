"""The verdict on one function's gradient or one backward pass, as a record a person reads.

:class:`FunctionReport` (one row per argument, :class:`ArgumentCheck`) is what
:func:`~reference.judging.functions.check_function` and
:func:`~reference.judging.functions.check_vjp` return: ``str()`` is the terminal table,
``to_dict()`` the JSON form, and a notebook shows :meth:`FunctionReport._repr_html_`.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any

from .records import _jsonable, _num


@dataclass
class ArgumentCheck:
    """One argument's gradient: errors, bounds, worst entry, verdict, diagnosis."""

    name: str
    shape: tuple[int, ...]
    error_fd: float | None = None
    bound_fd: float | None = None
    error_jax: float | None = None
    bound_jax: float | None = None
    ok: bool = False
    diagnosis: str = ""
    worst: dict[str, Any] | None = None
    one_sided: int = 0
    """Entries next to a kink, estimated from the side that does not cross it."""
    on_kink: int = 0
    """Entries on a kink: held to the interval between their one-sided slopes."""
    outside: int = 0
    """Of those, how many lie outside it (each one fails the argument)."""
    excluded: int = 0
    """Entries between two kinks, on kinks of both kinds at once, or where f is not finite
    nearby: not compared."""
    fd_ok: bool | None = None
    jax_ok: bool | None = None


@dataclass
class FunctionReport:
    """The verdict on one function's gradient (:func:`check_function`) or one backward pass
    (:func:`check_vjp`). ``str()`` (or :meth:`render`) is the terminal form, ``to_dict()``
    the JSON-serializable one; a notebook shows :meth:`_repr_html_`."""

    ok: bool
    kind: str
    name: str
    arguments: list[ArgumentCheck]
    value: float
    summary: str
    one_sided: int = 0
    on_kink: int = 0
    excluded: int = 0
    calls: int = 0
    jax_value: float | None = None
    findings: list[str] = field(default_factory=list)
    """Arguments the user's code changed in place; any of them fails the report."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What looks wrong but does not fail the report (``WARN``)."""

    def failing(self) -> list[ArgumentCheck]:
        return [a for a in self.arguments if not a.ok]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def render(self) -> str:
        """The report as a table a person reads in a terminal."""
        lines = [f"{self.kind} {self.name}: value {self.value:.12g}"]
        w = max(8, *(len(a.name) for a in self.arguments))
        s = max(9, *(len(str(a.shape)) for a in self.arguments))
        lines.append(
            f"  {'argument':<{w}} {'shape':>{s}} {'err FD':>9} {'bound':>8} "
            f"{'err JAX':>9} {'bound':>8}  verdict  diagnosis"
        )
        for a in self.arguments:
            lines.append(
                f"  {a.name:<{w}} {a.shape!s:>{s}} {_num(a.error_fd):>9} {_num(a.bound_fd, 1):>8} "
                f"{_num(a.error_jax):>9} {_num(a.bound_jax, 1):>8}  "
                f"{'ok' if a.ok else 'FAIL':<7}  {a.diagnosis}"
            )
        for a in self.failing():
            if a.worst is not None:
                lines.append(f"  {_worst_line(a)}")
        if self.jax_value is not None:
            lines.append(f"  value {self.value:.12g} vs JAX {self.jax_value:.12g}")
        lines += [f"  {line}" for line in self._kink_lines()]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  WARN: {warning}" for warning in self.warnings]
        lines += [f"  FAIL: {finding}" for finding in self.findings if finding != self.summary]
        lines.append(f"  {'PASS' if self.ok else 'FAIL'}: {self.summary}")
        return "\n".join(lines)

    def _kink_lines(self) -> list[str]:
        lines = []
        if self.one_sided:
            lines.append(
                f"{self.one_sided} entries next to a kink: estimated from the side that does "
                "not cross it"
            )
        if self.on_kink:
            outside = sum(a.outside for a in self.arguments)
            lines.append(
                f"{self.on_kink} entries on a kink: held to the interval between their "
                "one-sided slopes (any value in it is a subgradient)"
                + (f", {outside} outside it" if outside else "")
            )
        if self.excluded:
            lines.append(
                f"{self.excluded} entries between two kinks, on kinks of both kinds at once "
                "(f neither convex nor concave in them), or where f is not finite nearby: "
                "not compared"
            )
        return lines

    def __str__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        """The same content as :meth:`render`, as an HTML table with failing rows marked."""
        e = html.escape
        cell = "padding:2px 6px;border:1px solid #ccc;text-align:left"
        head = ("argument", "shape", "err FD", "bound", "err JAX", "bound", "verdict", "diagnosis")
        rows = []
        for a in self.arguments:
            style = "" if a.ok else ' style="background:#fdd"'
            values = (a.name, str(a.shape), _num(a.error_fd), _num(a.bound_fd, 1),
                      _num(a.error_jax), _num(a.bound_jax, 1), "ok" if a.ok else "FAIL",
                      a.diagnosis)  # fmt: skip
            rows.append(
                f'<tr class="{"ok" if a.ok else "fail"}"{style}>'
                + "".join(f'<td style="{cell}">{e(v)}</td>' for v in values)
                + "</tr>"
            )
        extra = [_worst_line(a) for a in self.failing() if a.worst is not None]
        extra += self._kink_lines() + [f"note: {n}" for n in self.notes]
        extra += [f"WARN: {w}" for w in self.warnings]
        extra += [f"FAIL: {f}" for f in self.findings if f != self.summary]
        verdict = "PASS" if self.ok else "FAIL"
        return (
            '<div class="bp-function-report" style="font-family:sans-serif;font-size:13px">'
            f"<p><b>{e(self.kind)} {e(self.name)}</b>: value {self.value:.12g}</p>"
            '<table style="border-collapse:collapse">'
            + "<thead><tr>"
            + "".join(f'<th style="{cell}">{e(h)}</th>' for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + "".join(f"<p>{e(x)}</p>" for x in extra)
            + f"<p><b>{verdict}</b>: {e(self.summary)}</p></div>"
        )


def _worst_line(a: ArgumentCheck) -> str:
    """The worst entry of a failing argument: its index, yours, and the references'."""
    w = a.worst or {}
    text = f"worst entry of d{a.name} at {tuple(w['index'])}"
    if w.get("left") is not None:
        return text + (
            f", on a kink: yours {w['yours']:.6g}, one-sided slopes {w['left']:.6g} (from the "
            f"left) and {w['right']:.6g} (from the right)"
        )
    text += f": yours {w['yours']:.6g}, finite differences {w['fd']:.6g}"
    return text + ("" if w.get("jax") is None else f", JAX {w['jax']:.6g}")
