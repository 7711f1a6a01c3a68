"""The per-layer gradient checker: the implementation against finite differences and JAX.

:func:`check_gradients` compares, for every layer and parameter, the
implementation's gradient with

- finite differences of the implementation's own loss (does ``gradients``
  differentiate what ``loss`` computes?), and
- ``jax.grad`` of the JAX model written from the formulas (is it the right
  function's gradient?),

compares the loss with the JAX model's, and attributes a failure (DESIGN.md,
"Three-way attribution"):

============  ==========  =========================================
hand vs FD    hand vs JAX  verdict
============  ==========  =========================================
agree         agree        correct
differ        differ       the backward pass (FD and JAX agree)
agree         differ       the forward pass or cost (the loss too)
differ        agree        the check itself: a kink or precision
============  ==========  =========================================

With the loss agreeing, hand agreeing with FD but not with JAX is "jax": JAX alone sees it.

An implementation that raises or returns the wrong structure is reported as
failing, with the exception or the shapes; the checker itself does not crash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..boundary.guard import Finding, Guarded, ImplementationFailed, PartlyWrongShapes, guard
from ..boundary.layouts import adapt_declared, describe_param
from ..formulas.numpy_twins import MissingTwinError
from ..inputs.validate import validate_l2, validate_problem
from ..oracles import finite_diff, numpy_model
from ..tolerances import FD_FLOOR, FD_SAFETY, JAX_FLOOR, JAX_SAFETY, LOSS_RTOL
from ..tolerances import LOG_A_SAFETY as _LOG_A_SAFETY
from . import diagnosis, precision
from .conventions import COST_SCALE_RTOL, CostScale, detect
from .penalty import penalty_blame, with_penalty_rounding

if TYPE_CHECKING:  # the JAX model (and JAX) are imported by the first check, not with this module
    from ..oracles.jax_model import JaxResult

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)


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


# A norm-wise relative error is at most 1, so a bound of 1 passes anything: it is
# what the bounds become where the gradient is smaller than its own noise (the
# report then says the comparison could not tell).


def _bound_fd(err: np.ndarray, denom: float) -> float:
    if denom == 0.0:  # both exactly zero: nothing to allow for
        return FD_FLOOR
    return min(1.0, max(FD_FLOOR, FD_SAFETY * float(np.linalg.norm(err)) / max(denom, TINY)))


def _bound_jax(rounding: np.ndarray, denom: float, floor: float = JAX_FLOOR) -> float:
    if denom == 0.0:
        return floor
    return min(1.0, max(floor, JAX_SAFETY * float(np.linalg.norm(rounding)) / max(denom, TINY)))


def check_gradients(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    fd: str = "auto",
    dtype: str | None = None,
    layer_view: bool = False,
    l2: float = 0.0,
) -> Report:
    """Check ``impl.gradients`` (and ``impl.loss``) on one problem; returns a :class:`Report`.

    ``fd``: ``"auto"`` (finite differences of the implementation's loss, batched
    when that loss is the formulas'), ``"calls"`` (always call ``impl.loss``),
    ``"model"`` (differentiate the formulas), ``"directional"`` (two random
    directions per layer and parameter, for networks too large for every entry;
    then ``error_fd`` compares projections), or ``"none"`` (JAX only).

    ``l2``: the L2 penalty's lambda (J gains lambda/(2m) sum_l ||W^l||^2, biases excluded),
    passed to the implementation as the keyword ``l2`` when not 0; the oracles add the same
    penalty (:mod:`reference.judging.penalty`).

    ``dtype`` (``"float32"``, ``"float16"``): give the implementation its arrays in that
    precision and judge it at that precision's unit roundoff; an implementation whose
    results come back in float32 or float16 is judged so without asking
    (:mod:`reference.judging.precision`; ``Report.precision`` and a note say which).

    ``layer_view``: where the report blames the backward pass (attribution ``"backward"``),
    also check each step of it alone (:func:`~reference.judging.layer_view.layer_view`) and
    put the verdict in ``Report.layer_view``, which ``render()`` prints: a local derivative,
    the chaining of the deltas, the parameter gradients, or how the samples are combined.

    The problem is validated first: a wrong one raises
    :class:`~reference.inputs.validate.ProblemError` and blames nobody. Every call
    into ``impl`` goes through the boundary (:mod:`reference.boundary.guard`):
    it gets copies, and whatever it raises, returns or changes in place becomes a
    failing report that says so, never a crash of the checker.
    """
    if not isinstance(layer_view, bool):
        raise TypeError(f"layer_view must be True or False, got {layer_view!r}")
    if fd not in ("auto", "calls", "model", "directional", "none"):
        raise ValueError(
            f"fd must be 'auto', 'calls', 'model', 'directional' or 'none', got {fd!r}"
        )
    params, X, Y, acts, cost = validate_problem(params, X, Y, activations, cost)
    l2 = validate_l2(l2)
    guarded = guard(adapt_declared(impl))  # SUPPORTS['layout'], when declared
    asked = precision.requested(guarded, precision.check_dtype(dtype))
    if asked is not None:  # the oracles judge the values the implementation is given
        params, X, Y = precision.representable(params, X, Y, asked)
    network = _network(params, X, acts, cost, l2)
    seen = len(guarded.impurities), len(guarded.inconsistencies)
    # 1. measure: the implementation's numbers, then the references
    try:
        grads, impl_loss, seen_in, wrong = _implementation_numbers(
            guarded, params, X, Y, acts, cost, l2
        )
        judged = precision.lowest_precision(asked or "float64", seen_in)
        refs = _references(guarded, params, X, Y, acts, cost, fd, impl_loss, grads, judged, l2)
    except ImplementationFailed as failed:
        report = failed_report(failed.finding, network, guarded.name)
        if failed.finding.kind == "structure" and failed.finding.member == "gradients":
            report.loss = _loss_alone(guarded, params, X, Y, acts, cost, l2)
        return report
    scale = _judged_at_its_scale(refs, impl_loss, params, X, Y, cost, judged, l2)
    # 2. compare: every array, and the loss
    checks = [
        _compare(l, k, grads[l - 1][k], refs, X.shape[1])
        for l in range(1, len(params) + 1)
        for k in (0, 1)
    ]
    if wrong is not None:  # an array of the wrong shape fails with its own message
        _fail_wrong_shapes(checks, wrong)
    loss_info, loss_ok = _compare_loss(impl_loss, refs.jax, refs.loss_rounding)
    warnings: list[str] = []
    if cost == "bce" and acts[-1] == "sigmoid" and refs.jax is not None:
        loss_ok = _saturation(impl_loss, loss_info, loss_ok, checks, params, X, Y, acts, warnings)
    findings = [i.describe() for i in guarded.impurities[seen[0] :]] + [
        i.describe() for i in guarded.inconsistencies[seen[1] :]
    ]
    # 3. decide and word it, from those facts alone
    facts = _Facts(checks, grads, refs, params, X.shape[1], acts, l2, impl_loss, loss_info,
                   loss_ok, warnings, scale, findings, wrong)  # fmt: skip
    verdict = _verdict(facts)
    view = None
    if layer_view and verdict.attribution == "backward":
        from .layer_view import view_summary

        view = view_summary(
            guarded, params, X, Y, activations=acts, cost=cost, precision=judged, l2=l2
        )
    return Report(
        ok=verdict.ok,
        attribution=verdict.attribution,
        layers=checks,
        loss=loss_info,
        kinks_excluded=sum(c.kinks_excluded for c in checks),
        summary=verdict.summary,
        network=network,
        impl=guarded.name,
        blame=verdict.blame,
        factor=verdict.factor,
        fd_source=refs.fd_source,
        notes=refs.notes,
        findings=findings,
        kinks_judged=refs.jax.kinks if refs.jax is not None else 0,
        conventions=[verdict.convention] if verdict.convention else [],
        warnings=warnings,
        layout=guarded.layout,
        precision=judged,
        layer_view=view,
        finding=verdict.finding,
    )


def _network(params, X, acts: list[str], cost: str, l2: float) -> dict[str, Any]:
    """The network as a report describes it: sizes, activations, cost, m (and l2)."""
    network: dict[str, Any] = {
        "sizes": [params[0][0].shape[1]] + [W.shape[0] for W, _ in params],
        "activations": acts,
        "cost": cost,
        "m": X.shape[1],
    }
    if l2:
        network["l2"] = l2
    return network


def _judged_at_its_scale(refs, impl_loss, params, X, Y, cost, judged, l2) -> Any:
    """The cost's convention the implementation's loss shows (the seed's cost times a
    constant, :mod:`.conventions`), or None; the references are scaled to it, so that the
    gradients are judged as the derivative of that loss."""
    rtol = max(COST_SCALE_RTOL, 64 * float(np.finfo(judged).eps))
    scale = _cost_scale(impl_loss, refs.jax, params, X.shape[1], Y.shape[0], cost, rtol, l2)
    if scale is not None:
        refs.loss_rounding = scale.largest * refs.loss_rounding
        penalty = numpy_model.penalty(params, l2, X.shape[1])
        refs.jax = refs.jax._replace(
            loss=scale.data * (refs.jax.loss - penalty) + scale.penalty * penalty,
            grads=scale.of_seed(refs.jax.grads, params, X.shape[1]),
            rounding=[(scale.largest * rW, scale.largest * rb) for rW, rb in refs.jax.rounding],
        )
    return scale


def _fail_wrong_shapes(checks: list[ParamCheck], wrong: PartlyWrongShapes) -> None:
    for check in checks:
        message = wrong.wrong.get((check.layer, check.param))
        if message is not None:
            check.ok, check.fd_ok, check.jax_ok = False, False, False
            check.error_fd = check.error_jax = None
            check.worst, check.diagnosis = None, message


@dataclass
class _Facts:
    """What was measured on one problem: everything the verdict is chosen from."""

    checks: list[ParamCheck]
    grads: list[tuple[np.ndarray, np.ndarray]]
    refs: _References
    params: Sequence[tuple[np.ndarray, np.ndarray]]
    m: int
    acts: list[str]
    l2: float
    impl_loss: float
    loss_info: dict[str, Any]
    loss_ok: bool
    warnings: list[str]
    scale: Any
    findings: list[str]
    wrong: PartlyWrongShapes | None


@dataclass
class _Verdict:
    ok: bool
    attribution: str
    summary: str
    blame: dict[str, Any] | None
    factor: float | None
    finding: dict[str, Any] | None
    convention: str


def _verdict(f: _Facts) -> _Verdict:
    """The report's verdict, attribution and summary, chosen in one place from the measured
    facts: the arrays' comparisons give the attribution (:func:`_attribute`) and the blame
    (:func:`_blame`, or the L2 penalty's, :func:`penalty_blame`); what the loss, a cost
    convention, a saturation warning, an impurity or a wrong shape add is said here."""
    n_L = f.params[-1][0].shape[0]  # a factor every gradient shares may be a 1/n_L (_blame)
    jax = f.refs.jax
    arrays_ok = all(c.ok for c in f.checks)
    attribution = _attribute(f.checks, f.loss_ok)
    blame, summary = _blame(f.checks, f.grads, jax, len(f.params), f.m, f.loss_ok, f.loss_info,
                            n_L)  # fmt: skip
    factor = _every_factor(f.checks, f.grads, jax, f.m, n_L)
    named = penalty_blame(f.checks, f.grads, jax, f.params, f.l2, f.m) if f.loss_ok else None
    if named is not None:  # a mistake in the L2 penalty's gradient (penalty.py)
        blame, summary = named
    summary += _not_elementwise_hint(summary, f.acts[-1], n_L)
    if attribution == "none" and f.warnings:  # passed, but not clean: say what was let through
        excused = any(c.diagnosis == SATURATED_ROW for c in f.checks)
        summary = (
            "the gradients and the loss agree wherever they are finite"
            if excused
            else "all gradients agree, and the loss within its rounding where the sigmoid saturates"
        ) + " (see the warning)"
    if attribution in ("forward", "forward+backward") and "jax" in f.loss_info:
        summary = (
            f"the loss differs from the formulas ({f.impl_loss:.10g} vs JAX's "
            f"{f.loss_info['jax']:.10g}) and so do the gradients: {summary}"
        )
    convention = ""
    if f.scale is not None:  # the seed's cost times a constant: judged as that, and named
        convention = (
            f"{f.scale.describe()}: the gradients are judged against the same multiple of the "
            "reference"
        )
        if not arrays_ok:
            summary += f" ({f.scale.describe()}, and the gradients must be the derivative of "
            summary += "that loss)"
    ok = f.loss_ok and arrays_ok and not f.findings
    if f.findings and attribution == "none":
        attribution, summary = "boundary", "; ".join(f.findings)
    finding = None
    if f.wrong is not None:  # a structure failure, with the right arrays and the loss judged
        ok, attribution, finding = False, "structure", f.wrong.finding.to_dict()
        others = [c for c in f.checks if (c.layer, c.param) not in f.wrong.wrong]
        summary = f"{f.wrong.finding.describe()}; " + (
            "the other arrays agree" if all(c.ok for c in others) else f"and {summary}"
        )
    return _Verdict(ok, attribution, summary, blame, factor, finding, convention)


def _implementation_numbers(
    guarded: Guarded, params, X, Y, acts: list[str], cost: str, l2: float = 0.0
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float, str, PartlyWrongShapes | None]:
    """Step 1: the implementation's gradients and loss, through the boundary, the lowest
    precision they came back in, and None, or the failure of gradients of the right structure
    with some arrays of the wrong shape (:class:`PartlyWrongShapes`; the gradients then hold
    NaN in those arrays' places, so that the arrays and the loss that are right are judged)."""
    wrong = None
    try:
        grads = guarded.gradients(params, X, Y, activations=acts, cost=cost, l2=l2)
    except PartlyWrongShapes as failed:
        if len(failed.wrong) == 2 * len(params):  # nothing right to judge array by array
            raise
        grads, wrong = failed.partial, failed
    seen_in = guarded.last_precision
    loss = guarded.loss(params, X, Y, activations=acts, cost=cost, l2=l2)
    return grads, loss, precision.lowest_precision(seen_in, guarded.last_precision), wrong


@dataclass
class _References:
    """Step 2's result: what the implementation is compared with."""

    jax: JaxResult | None
    fd: finite_diff.FDGradients | None
    directional: finite_diff.DirectionalFD | None
    notes: list[str]
    precision: str = "float64"
    loss_rounding: float = 0.0
    """Below float64: how far a correct implementation's loss may be from JAX's."""

    @property
    def fd_source(self) -> str:
        if self.fd is not None:
            return self.fd.source
        if self.directional is not None:
            return "the implementation's loss, along random directions"
        return ""


def _references(
    guarded, params, X, Y, acts, cost, fd, impl_loss, grads, judged="float64", l2=0.0
) -> _References:
    """Step 2: the JAX model's numbers and finite differences of the implementation's loss
    (below float64, of the formulas: :mod:`.precision` says why)."""
    from ..oracles.jax_model import fit_kinks, jax_model, kink_note

    notes: list[str] = []
    eps = precision.unit_roundoff(judged)
    if judged != "float64":
        fd = "none" if fd == "none" else "model"
        notes.append(precision.note(judged, guarded.dtype, fd))
    try:
        ref = jax_model(params, X, Y, activations=acts, cost=cost, eps=eps, l2=l2)
    except MissingTwinError as exc:
        ref = None
        notes.append(f"no JAX comparison: {exc}")
    near = ref.near_kink if ref is not None else None
    fd_result = directional = None
    if not np.isfinite(impl_loss):
        notes.append(f"no finite differences: the implementation's loss is {impl_loss}")
    elif fd == "directional":
        directional = finite_diff.directional_gradients(
            guarded, params, X, Y, activations=acts, cost=cost, near_kink=near, l2=l2
        )
    elif fd != "none":
        try:
            fd_result = finite_diff.numerical_gradients(
                guarded, params, X, Y, activations=acts, cost=cost, method=fd, near_kink=near,
                l2=l2,
            )  # fmt: skip
        except MissingTwinError as exc:
            notes.append(f"no finite differences: {exc}")
    if ref is None and fd_result is None and directional is None:
        raise MissingTwinError("; ".join(notes))
    if ref is not None and ref.kinks:  # near a kink, any subgradient is right: the nearest
        ref = fit_kinks(ref, grads, params, X, Y, activations=acts, cost=cost, eps=eps, l2=l2)
        notes.append(kink_note(ref))
    if ref is not None and l2:
        ref = with_penalty_rounding(ref, params, l2, X.shape[1], eps)
    rounding = 0.0
    if judged != "float64" and ref is not None:
        ref = precision.with_underflow(ref, judged, X.shape[1])
        rounding = precision.loss_rounding(ref, params, X, Y, acts, cost, judged, l2)
    return _References(ref, fd_result, directional, notes, judged, rounding)


def _compare(l: int, k: int, a: np.ndarray, refs: _References, m: int) -> ParamCheck:
    """Step 3: one layer's dW (k = 0) or db (k = 1) against each reference."""
    pname = "Wb"[k]
    c = ParamCheck(l, pname, a.shape)
    truth = None
    if refs.fd is not None:
        n = refs.fd.grads[l - 1][k]
        valid = refs.fd.method[l - 1][k] != finite_diff.EXCLUDED
        c.kinks_excluded = int((~valid).sum())
        denom = float(np.linalg.norm(a[valid]) + np.linalg.norm(n[valid]))
        c.error_fd = diagnosis.relative_error(a[valid], n[valid])
        c.bound_fd = _bound_fd(refs.fd.errors[l - 1][k][valid], denom)
        if refs.precision != "float64" and refs.jax is not None:  # the implementation's rounding
            floor = precision.TOLERANCES[refs.precision].jax_floor
            rounding = refs.jax.rounding[l - 1][k][valid]
            c.bound_fd = max(c.bound_fd, _bound_jax(rounding, denom, floor))
        c.fd_ok = bool(c.error_fd <= c.bound_fd) if valid.any() else None
        truth = np.where(valid, n, a)
    if refs.directional is not None:
        d = refs.directional.directions[l - 1][k]
        n = refs.directional.values[l - 1][k]
        valid = np.isfinite(n)  # directions that straddled a kink are excluded
        c.kinks_excluded = int((~valid).sum())
        projected = np.tensordot(d, a, axes=a.ndim)[valid]  # the implementation along d
        n = n[valid]
        denom = float(np.linalg.norm(projected) + np.linalg.norm(n))
        c.error_fd = diagnosis.relative_error(projected, n)
        c.bound_fd = _bound_fd(refs.directional.errors[l - 1][k][valid], denom)
        c.fd_ok = bool(c.error_fd <= c.bound_fd) if valid.any() else None
    if refs.jax is not None:
        j = refs.jax.grads[l - 1][k]
        denom = float(np.linalg.norm(a) + np.linalg.norm(j))
        c.error_jax = diagnosis.relative_error(a, j)
        floor = precision.TOLERANCES[refs.precision].jax_floor
        c.bound_jax = _bound_jax(refs.jax.rounding[l - 1][k], denom, floor)
        c.jax_ok = bool(c.error_jax <= c.bound_jax)
        truth = j
    c.ok = bool(c.jax_ok) if c.jax_ok is not None else c.fd_ok is not False
    if not np.isfinite(a).all():
        c.ok = False
    if truth is None:  # directional differences alone: no entrywise reference
        truth = a
    gap = np.abs(a - truth)
    gap[~np.isfinite(gap)] = np.inf  # a NaN or inf entry is the worst there is
    idx = np.unravel_index(int(np.argmax(gap)), a.shape) if a.size else ()
    c.worst = {
        "index": [int(i) for i in idx],
        "impl": float(a[idx]),
        "fd": None if refs.fd is None else float(refs.fd.grads[l - 1][k][idx]),
        "jax": None if refs.jax is None else float(refs.jax.grads[l - 1][k][idx]),
    }
    if not c.ok:
        c.diagnosis = diagnosis.diagnose(a, truth, m, pname)
    elif c.fd_ok is False:
        c.diagnosis = "agrees with JAX; finite differences disagree (kink or precision)"
    elif c.bound_jax == 1.0 and float(np.abs(truth).max(initial=0.0)) > 0.0:
        c.diagnosis = "ok (inconclusive: the gradient is below the rounding of its terms)"
    else:
        c.diagnosis = "ok"
    return c


def _cost_scale(
    impl_loss: float,
    ref: JaxResult | None,
    params,
    m: int,
    outputs: int,
    cost: str,
    rtol: float = COST_SCALE_RTOL,
    l2: float = 0.0,
) -> CostScale | None:
    """The convention (:mod:`.conventions`) when the implementation's loss is c times the
    seed's cost for a c that common texts use: a sum over samples (c = m), no 1/2 (c = 2), a
    mean over the outputs (c = 1/n_L), or a product of them, with an L2 penalty scaled with
    it or added at the seed's scale; None when it is the seed's cost or anything else.

    With m = 2 (or n_L = 2) two conventions give the same c; both are named."""
    if ref is None:
        return None
    penalty = numpy_model.penalty(params, l2, m)
    found = detect(impl_loss, ref.loss - penalty, penalty, m, outputs, cost, rtol, l2)
    return None if found is None or found.is_seed else found


SATURATED_ROW = "not finite where the sigmoid saturates (a warning)"
"""The diagnosis of a gradient row passed with the saturation warning (:func:`_saturation`)."""


def _saturation(impl_loss, loss_info, loss_ok, checks, params, X, Y, acts, warnings) -> bool:
    """Step 4b, for bce on a sigmoid output: what a cross-entropy taken as log(A) and
    log(1 - A) loses where the sigmoid saturates is a warning, not a wrong loss.

    Rounding A by eps (relative) moves log(A) by eps and log(1 - A) by eps A / (1 - A): the
    loss may be off by up to (eps/m) sum [Y (1 + (1 - A)/A) + (1 - Y)(1 + A/(1 - A))],
    infinite where A rounds to exactly 0 or 1 (the loss and the gradients then turn inf or
    NaN). Returns whether the loss now counts as right; rows whose only fault is NaN or inf
    there are passed with the warning."""
    from ..oracles.numpy_model import build

    A = build(params, X, Y, acts, "bce").A[-1]
    eps, m = float(np.finfo(np.float64).eps), X.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = Y * (1 + (1 - A) / A) + (1 - Y) * (1 + A / (1 - A))
    allowance = _LOG_A_SAFETY * eps * float(np.sum(terms)) / m
    if not np.isfinite(allowance) or np.isnan(allowance):
        allowance = np.inf
    fix = "compute bce from the logits, J = mean(logaddexp(0, Z) - Y Z), and dZ = (A - Y)/m"
    if not loss_ok and "jax" in loss_info and allowance > loss_info["bound"]:
        finite = np.isfinite(impl_loss)
        if (finite and loss_info["error"] <= allowance) or (not finite and allowance == np.inf):
            warnings.append(f"the loss is {impl_loss:.10g} where the formulas give "
                            f"{loss_info['jax']:.10g}: it loses precision where the sigmoid "
                            f"saturates; {fix}")  # fmt: skip
            loss_info["warning"] = True
            loss_ok = True
    if allowance == np.inf:
        nonfinite = f"gradients are NaN or inf where the sigmoid rounds to 0 or 1; {fix}"
        for c in checks:
            if not c.ok and c.worst is not None and not np.isfinite(c.worst["impl"]):
                c.ok, c.diagnosis = True, SATURATED_ROW
                c.fd_ok = None  # no verdict of either oracle stands on a NaN: not "the check"
                if nonfinite not in warnings:  # one warning, however many rows
                    warnings.append(nonfinite)
    return loss_ok


def _loss_alone(guarded: Guarded, params, X, Y, acts, cost, l2: float) -> dict[str, Any]:
    """The loss judged on its own where ``gradients`` came back malformed (a dW of the wrong
    shape): the loss is another member, and a right one stays right. Empty where the loss
    cannot be judged (it fails too, or the model has no twin for the network)."""
    from ..oracles.jax_model import jax_model

    try:
        impl_loss = guarded.loss(params, X, Y, activations=acts, cost=cost, l2=l2)
        ref = jax_model(params, X, Y, activations=acts, cost=cost, l2=l2)
    except (ImplementationFailed, MissingTwinError):
        return {}
    return _compare_loss(impl_loss, ref)[0]


def _compare_loss(
    impl_loss: float, ref: JaxResult | None, rounding: float = 0.0
) -> tuple[dict[str, Any], bool]:
    """Step 4: the implementation's loss against the JAX model's; ``rounding``: what a
    correct implementation below float64 may add (``precision.loss_rounding``)."""

    info: dict[str, Any] = {"impl": impl_loss}
    if ref is None:
        ok = bool(np.isfinite(impl_loss))
        return info, ok
    err = abs(impl_loss - ref.loss)
    bound = LOSS_RTOL * abs(ref.loss) + 1e-15 + rounding
    ok = bool(np.isfinite(impl_loss) and err <= bound)
    info.update({"jax": ref.loss, "error": err, "bound": bound, "ok": ok})
    return info, ok


def _attribute(checks: list[ParamCheck], loss_ok: bool) -> str:
    """Step 5: which part of the implementation is at fault (see the module docstring)."""
    grads_ok = all(c.ok for c in checks)
    fd_agrees = all(c.fd_ok is not False for c in checks)
    if not loss_ok:
        return "loss" if grads_ok else "forward" if fd_agrees else "forward+backward"
    if not grads_ok:
        return "backward" if _fd_confirms(checks) else "jax"
    if not fd_agrees:
        return "check"
    return "none"


def _fd_confirms(checks: list[ParamCheck]) -> bool:
    """Whether finite differences back JAX's verdict on the failing arrays: one of them
    fails against finite differences too, or none of them had finite differences to ask."""
    failing = [c for c in checks if not c.ok]
    return any(c.fd_ok is False for c in failing) or all(c.fd_ok is None for c in failing)


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


def _not_elementwise_hint(summary: str, output: str, units: int) -> str:
    """Where every gradient is off by 1/2 and the output activation is not elementwise with
    two units (softmax over two classes), the usual cause: its derivative taken as the
    diagonal a(1 - a) of its Jacobian, exactly half of the full product there (the two
    columns of dJ/dA are opposite for mse against one-hot labels, and cce is fused)."""
    from ..formulas.numpy_twins import NUMPY_ACTIVATIONS

    twin = NUMPY_ACTIVATIONS.get(output)
    if twin is None or twin.elementwise or units != 2:
        return ""
    # the factor is 1/2 however it is named ("1/2", "1/n_L = 1/2", ...)
    if not re.match(r"every gradient is off by the same factor (?:[^:]*= )?1/2:", summary):
        return ""
    return (
        f"; or {output}'s derivative taken elementwise: with two units, its Jacobian's "
        "diagonal a(1 - a) gives exactly half of the full product"
    )


def _every_factor(checks, grads, ref, m: int, outputs: int) -> dict[str, Any] | None:
    """The one constant factor every layer's gradients are off by, with the sizes it was
    measured at (:attr:`Report.factor`); None where there is none."""
    if ref is None or all(c.ok for c in checks):
        return None
    pairs = [
        (a, j) for (ga, gb), (ja, jb) in zip(grads, ref.grads) for a, j in ((ga, ja), (gb, jb))
    ]
    c = diagnosis.common_factor(pairs)
    return None if c is None else {"value": c, "m": m, "outputs": outputs}


def _blame(
    checks, grads, ref, L, m, loss_ok, loss_info, outputs: int | None = None
) -> tuple[dict | None, str]:
    """Which layer and parameter to look at first, and a one-line summary."""
    failing = [c for c in checks if not c.ok]
    if not failing:
        if not loss_ok:
            return {"layer": None, "param": "loss"}, (
                f"the loss differs from the formula: {loss_info['impl']:.10g} vs JAX's "
                f"{loss_info['jax']:.10g}"
            )
        return None, "all gradients and the loss agree"
    layers = sorted({c.layer for c in failing})
    top = layers[-1]
    at_top = [c.param for c in failing if c.layer == top]
    param = at_top[0] if len(at_top) == 1 else "delta"
    blame = {"layer": top, "param": param}
    k = diagnosis.locate(layers, L)
    if ref is not None and len(layers) == L:
        c = diagnosis.common_factor(
            [
                (a, j)
                for (ga, gb), (ja, jb) in zip(grads, ref.grads)
                for a, j in ((ga, ja), (gb, jb))
            ]
        )
        if c is not None:
            name = diagnosis.factor_name(c, m, outputs) or f"{c:.6g}"
            hint = diagnosis.factor_hint(name)
            blame = {"layer": L, "param": "delta"}
            return blame, (
                f"every gradient is off by the same factor {name}: look at the cost derivative "
                f"or the output delta dZ^{L}" + (f" ({hint})" if hint else "")
            )
    if len(failing) == 1:
        c = failing[0]
        return blame, f"only layer {c.layer}'s d{c.param} is wrong: {c.diagnosis}"
    if ref is not None:
        index = {(c.layer, c.param): k for k, c in enumerate(checks)}
        pairs = [
            (
                grads[c.layer - 1][index[(c.layer, c.param)] % 2],
                ref.grads[c.layer - 1][index[(c.layer, c.param)] % 2],
            )
            for c in failing
        ]
        c = diagnosis.common_factor(pairs)
        if c is not None:
            name = diagnosis.factor_name(c, m) or f"{c:.6g}"
            which = ", ".join(f"d{f.param}^{f.layer}" for f in failing)
            return blame, f"{which} are all off by the same factor {name}; the rest agree"
    if k is not None and k > 0:
        return blame, (
            f"right at the output, wrong from layer {k} down: look at layer {k}'s delta "
            f"dZ^{k} or its activation derivative g'_{k}"
        )
    if layers == list(range(1, L + 1)) and len(at_top) == 2:
        return blame, (
            f"wrong from the output down: look at the output delta dZ^{L} (the cost's "
            f"derivative, or the output activation's derivative g'_{L})"
        )
    return blame, f"layers {', '.join(map(str, layers))} are wrong; the highest is layer {top}"


def render(report: Report) -> str:
    """The report as a table a person reads in a terminal."""
    net = report.network
    head = (
        f"{report.impl}: {'-'.join(map(str, net['sizes']))} "
        f"[{', '.join(net['activations'])}] {net['cost']}, m = {net['m']}"
        + (f", l2 = {net['l2']:g}" if net.get("l2") else "")
    ) + ("" if report.layout == "columns" else f", {report.layout} layout")
    lines = [head]
    if report.layers:
        shapes = [describe_param(report.layout, c.layer, c.param, c.shape) for c in report.layers]
        w = max(9, *map(len, shapes))
        label = "shape" if report.layout == "columns" else "yours"
        lines.append(
            f"  {'layer':>5} {'param':>5} {label:>{w}} {'err FD':>9} {'bound':>8} "
            f"{'err JAX':>9} {'bound':>8}  verdict  diagnosis"
        )
        for c, shape in zip(report.layers, shapes):
            lines.append(
                f"  {c.layer:>5} {c.param:>5} {shape:>{w}} "
                f"{_num(c.error_fd):>9} {_num(c.bound_fd, 1):>8} {_num(c.error_jax):>9} "
                f"{_num(c.bound_jax, 1):>8}  {'ok' if c.ok else 'FAIL':<7}  {c.diagnosis}"
            )
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
    for note in report.notes:
        lines.append(f"  note: {note}")
    for warning in report.warnings:
        lines.append(f"  warning: {warning}")
    for convention in report.conventions:
        lines.append(f"  convention: {convention}")
    for finding in report.findings:
        lines.append(f"  FAIL: {finding}")
    verdict = "PASS" if report.ok else "FAIL"
    lines.append(f"  {verdict}: {report.summary}")
    if not report.ok or report.attribution == "check":
        lines.append(f"  attribution: {ATTRIBUTIONS[report.attribution]}")
    if report.layer_view is not None:
        lines.extend(f"  {line}" for line in report.layer_view["lines"])
    return "\n".join(lines)


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}e}"
