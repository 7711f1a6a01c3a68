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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..boundary.detect import Detection, detect_layout, may_be_layout, probe_problem
from ..boundary.guard import Guarded, ImplementationFailed, PartlyWrongShapes, guard
from ..boundary.layouts import Adapter, adapt, adapt_declared
from ..formulas.numpy_twins import MissingTwinError
from ..inputs.problems import Problem
from ..inputs.scope import Scope, ScopeError
from ..inputs.validate import validate_l2, validate_problem
from ..oracles import finite_diff, numpy_model
from ..tolerances import FD_FLOOR, FD_SAFETY, JAX_FLOOR, JAX_SAFETY, LOSS_RTOL
from ..tolerances import LOG_A_SAFETY as _LOG_A_SAFETY
from . import diagnosis, precision
from .conventions import COST_SCALE_RTOL, CostScale, detect
from .penalty import with_penalty_rounding
from .records import ParamCheck, Report, failed_report
from .verdict import SATURATED_ROW, _Facts, _verdict

if TYPE_CHECKING:  # the JAX model (and JAX) are imported by the first check, not with this module
    from ..oracles.jax_model import JaxResult

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)


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

    The arguments are in the seed's layout; the code is called in the layout its
    ``SUPPORTS["layout"]`` declares. Where nothing declares one and the code fails in the
    seed's layout (a shape error, a wrong structure), the layout its shapes say is detected
    (:mod:`reference.boundary.detect`) and the report is the check in that layout, its first
    note saying which.

    The problem is validated first: a wrong one raises
    :class:`~reference.inputs.validate.ProblemError` and blames nobody. Every call
    into ``impl`` goes through the boundary (:mod:`reference.boundary.guard`):
    it gets copies, and whatever it raises, returns or changes in place becomes a
    failing report that says so, never a crash of the checker.
    """
    _check_options(fd, layer_view)
    params, X, Y, acts, cost = validate_problem(params, X, Y, activations, cost)
    l2 = validate_l2(l2)
    problem = Problem(params, X, Y, acts, cost, l2=l2)
    options = {"fd": fd, "dtype": dtype, "layer_view": layer_view}
    report = _check(guard(adapt_declared(impl)), problem, **options)
    if not report.ok and may_be_layout(report.finding) and _undeclared(impl):
        found = _detected(impl)  # the seed's layout failed: the shapes may say another
        if found.layout is not None:
            report = _check(guard(adapt(impl, found.layout)), problem, **options)
            report.notes.insert(0, found.note)
        elif found.error is not None:  # several layouts fit: which one, only a declaration says
            report.notes.insert(0, f"NOTE layout: {found.error}")
    return report


def _undeclared(impl: Any) -> bool:
    """Whether nothing says ``impl``'s layout: not an adapter, not an implementation already
    behind the boundary (whose layout its caller set), no ``SUPPORTS["layout"]``."""
    if isinstance(impl, (Adapter, Guarded)):
        return False
    supports = getattr(impl, "SUPPORTS", None)
    return not (isinstance(supports, Mapping) and supports.get("layout"))


def _detected(impl: Any) -> Detection:
    """The layout ``impl``'s shapes say (``boundary/detect.py``), probed in its own scope; no
    layout where the scope cannot be read or none fits."""
    try:
        scope = Scope.read(getattr(impl, "SUPPORTS", None), "SUPPORTS")
    except ScopeError:
        return Detection()
    return detect_layout(guard(impl), None, probe_problem(scope))


def _check(
    guarded: Guarded, problem: Problem, fd: str, dtype: str | None, layer_view: bool
) -> Report:
    """:func:`check_gradients` on a validated ``problem``, through ``guarded``."""
    params, X, Y, acts, cost, l2 = (problem.params, problem.X, problem.Y, problem.activations,
                                    problem.cost, problem.l2)  # fmt: skip
    asked = precision.requested(guarded, precision.check_dtype(dtype))
    if asked is not None:  # the oracles judge the values the implementation is given
        params, X, Y = precision.representable(params, X, Y, asked)
        problem = Problem(params, X, Y, acts, cost, l2=l2)
    network = _network(problem)
    seen = len(guarded.impurities), len(guarded.inconsistencies)
    # 1. measure: the implementation's numbers, then the references
    try:
        grads, impl_loss, seen_in, wrong = _implementation_numbers(guarded, problem)
        judged = precision.lowest_precision(asked or "float64", seen_in)
        refs = _references(guarded, problem, fd, impl_loss, grads, judged)
    except ImplementationFailed as failed:
        report = failed_report(failed.finding, network, guarded.name)
        if failed.finding.kind == "structure" and failed.finding.member == "gradients":
            report.loss = _loss_alone(guarded, problem)
        return report
    scale = _judged_at_its_scale(refs, impl_loss, problem, judged)
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
        loss_ok = _saturation(impl_loss, loss_info, loss_ok, checks, problem, warnings)
    findings = _boundary_findings(guarded, seen)
    # 3. decide and word it, from those facts alone
    facts = _Facts(checks, grads, refs, params, X.shape[1], acts, l2, impl_loss, loss_info,
                   loss_ok, warnings, scale, findings, wrong)  # fmt: skip
    verdict = _verdict(facts)
    view = None
    if layer_view and verdict.attribution == "backward":
        view = _layer_view(guarded, problem, judged)
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


def _check_options(fd: str, layer_view: bool) -> None:
    """Raise where :func:`check_gradients`'s ``fd`` or ``layer_view`` is not one it takes."""
    if not isinstance(layer_view, bool):
        raise TypeError(f"layer_view must be True or False, got {layer_view!r}")
    if fd not in ("auto", "calls", "model", "directional", "none"):
        raise ValueError(
            f"fd must be 'auto', 'calls', 'model', 'directional' or 'none', got {fd!r}"
        )


def _boundary_findings(guarded: Guarded, seen: tuple[int, int]) -> list[str]:
    """What the boundary saw since ``seen`` (its counts of impurities and inconsistencies)."""
    return [i.describe() for i in guarded.impurities[seen[0] :]] + [
        i.describe() for i in guarded.inconsistencies[seen[1] :]
    ]


def _layer_view(guarded: Guarded, p: Problem, judged: str) -> dict[str, Any]:
    """The layer view's summary of a report that blames the backward pass."""
    from .layer_view import view_summary

    return view_summary(guarded, p.params, p.X, p.Y, activations=p.activations, cost=p.cost,
                        precision=judged, l2=p.l2)  # fmt: skip


def _network(p: Problem) -> dict[str, Any]:
    """The network as a report describes it: sizes, activations, cost, m (and l2)."""
    network: dict[str, Any] = {"sizes": p.sizes, "activations": p.activations, "cost": p.cost,
                               "m": p.m}  # fmt: skip
    if p.l2:
        network["l2"] = p.l2
    return network


def _judged_at_its_scale(refs: _References, impl_loss: float, p: Problem, judged: str) -> Any:
    """The cost's convention the implementation's loss shows (the seed's cost times a
    constant, :mod:`.conventions`), or None; the references are scaled to it, so that the
    gradients are judged as the derivative of that loss."""
    rtol = max(COST_SCALE_RTOL, 64 * float(np.finfo(judged).eps))
    scale = _cost_scale(impl_loss, refs.jax, p.params, p.m, p.Y.shape[0], p.cost, rtol, p.l2)
    if scale is not None:
        refs.loss_rounding = scale.largest * refs.loss_rounding
        penalty = numpy_model.penalty(p.params, p.l2, p.m)
        refs.jax = refs.jax._replace(
            loss=scale.data * (refs.jax.loss - penalty) + scale.penalty * penalty,
            grads=scale.of_seed(refs.jax.grads, p.params, p.m),
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


def _implementation_numbers(
    guarded: Guarded, p: Problem
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float, str, PartlyWrongShapes | None]:
    """Step 1: the implementation's gradients and loss, through the boundary, the lowest
    precision they came back in, and None, or the failure of gradients of the right structure
    with some arrays of the wrong shape (:class:`PartlyWrongShapes`; the gradients then hold
    NaN in those arrays' places, so that the arrays and the loss that are right are judged)."""
    wrong = None
    params, X, Y, acts, cost, l2 = p.params, p.X, p.Y, p.activations, p.cost, p.l2
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
    guarded: Guarded, p: Problem, fd: str, impl_loss: float, grads, judged: str = "float64"
) -> _References:
    """Step 2: the JAX model's numbers and finite differences of the implementation's loss
    (below float64, of the formulas: :mod:`.precision` says why)."""
    from ..oracles.jax_model import fit_kinks, jax_model, kink_note

    params, X, Y, acts, cost, l2 = p.params, p.X, p.Y, p.activations, p.cost, p.l2
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


def _saturation(
    impl_loss: float, loss_info: dict[str, Any], loss_ok: bool, checks: list[ParamCheck],
    p: Problem, warnings: list[str],
) -> bool:  # fmt: skip
    """Step 4b, for bce on a sigmoid output: what a cross-entropy taken as log(A) and
    log(1 - A) loses where the sigmoid saturates is a warning, not a wrong loss.

    Rounding A by eps (relative) moves log(A) by eps and log(1 - A) by eps A / (1 - A): the
    loss may be off by up to (eps/m) sum [Y (1 + (1 - A)/A) + (1 - Y)(1 + A/(1 - A))],
    infinite where A rounds to exactly 0 or 1 (the loss and the gradients then turn inf or
    NaN). Returns whether the loss now counts as right; rows whose only fault is NaN or inf
    there are passed with the warning."""
    from ..oracles.numpy_model import build

    A, Y = build(p.params, p.X, p.Y, p.activations, "bce").A[-1], p.Y
    eps, m = float(np.finfo(np.float64).eps), p.m
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


def _loss_alone(guarded: Guarded, p: Problem) -> dict[str, Any]:
    """The loss judged on its own where ``gradients`` came back malformed (a dW of the wrong
    shape): the loss is another member, and a right one stays right. Empty where the loss
    cannot be judged (it fails too, or the model has no twin for the network)."""
    from ..oracles.jax_model import jax_model

    try:
        impl_loss = guarded.loss(p.params, p.X, p.Y, activations=p.activations, cost=p.cost,
                                 l2=p.l2)  # fmt: skip
        ref = jax_model(p.params, p.X, p.Y, activations=p.activations, cost=p.cost, l2=p.l2)
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
