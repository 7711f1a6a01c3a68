"""The records a gradient check produces: one :class:`ParamCheck` per layer and parameter, the
:class:`Report` for a network (its verdict, attribution and summary), what each attribution
means (:data:`ATTRIBUTIONS`), and the table a person reads (:func:`render`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..boundary.guard import Finding
from ..boundary.layouts import describe_param

ATTRIBUTIONS = {
    "none": "the gradients and the loss agree with both references",
    "backward": "the backward pass: finite differences and JAX agree, the implementation differs",
    "forward": "the forward pass or the cost: the loss differs from the formulas, "
    "and the gradients follow the implementation's own loss",
    "forward+backward": "the forward pass or the cost, and the backward pass: the loss differs "
    "from the formulas and the gradients do not follow it either",
    "loss": "the loss alone: it differs from the formulas while the gradients are right",
    "check": "the check itself (a kink or precision problem): the implementation agrees with JAX "
    "but not with finite differences; not a bug in the implementation",
    "jax": "JAX alone: the gradients agree with finite differences of the implementation's own "
    "loss (within their coarser bound), not with JAX's, while the loss agrees here: a forward "
    "pass that leaves the formulas only away from this point (an unused parameter), a "
    "backward mistake too small for finite differences, or a precision problem in the check",
    "boundary": "the numbers agree, but the implementation changed its arguments in place or "
    "returned different results for the same inputs",
    "unsupported": "the implementation does not support this network (NotImplementedError): "
    "not a failure; declare its scope so that such networks are not drawn",
    "crash": "the implementation raised an exception, ended its process or did not return",
    "structure": "the implementation returned the wrong structure or shapes",
}
"""What each value of ``Report.attribution`` means."""


@dataclass
class ParamCheck:
    """One layer's W or b: errors, bounds, worst entry, verdict, diagnosis."""

    layer: int
    param: str
    shape: tuple[int, ...]
    error_fd: float | None = None
    bound_fd: float | None = None
    error_jax: float | None = None
    bound_jax: float | None = None
    ok: bool = False
    diagnosis: str = ""
    worst: dict[str, Any] | None = None
    kinks_excluded: int = 0
    fd_ok: bool | None = None
    jax_ok: bool | None = None


@dataclass
class Report:
    """The checker's verdict on one network (see the module docstring).

    ``to_dict()`` gives the JSON-serializable form; ``render()`` the terminal form.
    """

    ok: bool
    attribution: str
    layers: list[ParamCheck]
    loss: dict[str, Any]
    kinks_excluded: int
    summary: str
    network: dict[str, Any]
    impl: str
    blame: dict[str, Any] | None = None
    fd_source: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """What the boundary saw during the check: arguments changed in place, results that
    changed between calls with the same inputs. Any of them fails the report."""
    finding: dict[str, Any] | None = None
    """Where a crashed or malformed call failed (:class:`~reference.boundary.guard.Finding`)."""
    warnings: list[str] = field(default_factory=list)
    """Numerical weaknesses the check allowed for (a cross-entropy that loses precision, or
    turns NaN, where the sigmoid saturates); not failures, except under ``--strict``."""
    conventions: list[str] = field(default_factory=list)
    """Deliberate differences from the seed the check allowed for (a cost scaled by a
    constant: summed over samples, without the 1/2, averaged over outputs); not failures,
    except under ``--strict``."""
    kinks_judged: int = 0
    """Pre-activation entries within rounding of a kink, where JAX's derivative is the
    subgradient nearest the implementation's (``jax_model.fit_kinks``)."""
    layout: str = "columns"
    """The layout the implementation is written in; the table names its parameters and
    shapes as that layout has them (``reference/boundary/layouts.py``)."""
    precision: str = "float64"
    """The precision the implementation was judged at (:mod:`reference.judging.precision`)."""
    factor: dict[str, Any] | None = None
    """Where every gradient is off by one constant factor: its ``value`` and the batch size
    ``m`` and output count ``outputs`` it was measured at, so that a run over several
    networks can tell which of the causes it equals (m, n_L, 2...) follows it
    (:func:`~reference.judging.diagnosis.across_networks`); None otherwise."""
    layer_view: dict[str, Any] | None = None
    """Where the backward pass goes wrong, step by step at one sample
    (:func:`~reference.judging.layer_view.view_summary`): set only on a report that blames
    the backward pass, when asked (``check_gradients(..., layer_view=True)``, and
    ``backprop-check`` for the first network of each mistake); None otherwise."""

    def failing(self) -> list[ParamCheck]:
        return [p for p in self.layers if not p.ok]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def render(self) -> str:
        return render(self)

    def __str__(self) -> str:
        return render(self)

    def _repr_html_(self) -> str:
        """The report as an HTML table with the failing cells marked: what a notebook shows
        (``reference/report/html.py``; the plain text stays :meth:`render`)."""
        from ..report.html import report_html

        return report_html(self)


def _jsonable(value: Any) -> Any:
    """``value`` in JSON's terms: tuples and arrays' scalars as lists and Python numbers, NaN
    as null, infinities as the strings "inf" and "-inf" (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def failed_report(finding: Finding, network: dict[str, Any], name: str) -> Report:
    """The report of a check the implementation cut short: it raised, returned the wrong
    structure, or its process ended or hung."""
    summary = finding.describe()
    if (
        finding.kind == "raised"
        and finding.exception == "ValueError"
        and ("shape" in finding.message or "mismatch" in finding.message)
    ):
        summary += " (a shape error: check each matrix product; a missing transpose?)"
    attribution = {"structure": "structure", "unsupported": "unsupported"}.get(
        finding.kind, "crash"
    )
    return Report(
        ok=False,
        attribution=attribution,
        layers=[],
        loss={},
        kinks_excluded=0,
        summary=summary,
        network=network,
        impl=name,
        error=summary,
        finding=finding.to_dict(),
    )


def render(report: Report) -> str:
    """The report as a table a person reads in a terminal."""
    lines = [_head(report), *_table(report), *_loss_lines(report)]
    remarks = (
        ("note", report.notes),
        ("warning", report.warnings),
        ("convention", report.conventions),
        ("FAIL", report.findings),
    )
    for prefix, items in remarks:
        lines.extend(f"  {prefix}: {item}" for item in items)
    verdict = "PASS" if report.ok else "FAIL"
    lines.append(f"  {verdict}: {report.summary}")
    if not report.ok or report.attribution == "check":
        lines.append(f"  attribution: {ATTRIBUTIONS[report.attribution]}")
    if report.layer_view is not None:
        lines.extend(f"  {line}" for line in report.layer_view["lines"])
    return "\n".join(lines)


def _head(report: Report) -> str:
    """The table's first line: the implementation and the network."""
    net = report.network
    return (
        f"{report.impl}: {'-'.join(map(str, net['sizes']))} "
        f"[{', '.join(net['activations'])}] {net['cost']}, m = {net['m']}"
        + (f", l2 = {net['l2']:g}" if net.get("l2") else "")
    ) + ("" if report.layout == "columns" else f", {report.layout} layout")


def _table(report: Report) -> list[str]:
    """A row per layer and parameter under a header (none where no array was checked)."""
    if not report.layers:
        return []
    shapes = [describe_param(report.layout, c.layer, c.param, c.shape) for c in report.layers]
    w = max(9, *map(len, shapes))
    label = "shape" if report.layout == "columns" else "yours"
    lines = [
        f"  {'layer':>5} {'param':>5} {label:>{w}} {'err FD':>9} {'bound':>8} "
        f"{'err JAX':>9} {'bound':>8}  verdict  diagnosis"
    ]
    for c, shape in zip(report.layers, shapes):
        lines.append(
            f"  {c.layer:>5} {c.param:>5} {shape:>{w}} "
            f"{_num(c.error_fd):>9} {_num(c.bound_fd, 1):>8} {_num(c.error_jax):>9} "
            f"{_num(c.bound_jax, 1):>8}  {'ok' if c.ok else 'FAIL':<7}  {c.diagnosis}"
        )
    return lines


def _loss_lines(report: Report) -> list[str]:
    """The loss against JAX's, and how many entries next to a kink were excluded."""
    lines = []
    loss = report.loss
    if "jax" in loss:
        lines.append(
            f"  loss {loss['impl']:.12g} vs JAX {loss['jax']:.12g}: "
            + ("ok" if loss["ok"] else "warning" if loss.get("warning") else "FAIL")
        )
    if report.kinks_excluded:
        lines.append(
            f"  {report.kinks_excluded} entries next to a relu kink excluded "
            "from finite differences"
        )
    return lines


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}e}"
