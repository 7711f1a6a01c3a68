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

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..boundary.loading import check_protocol, impl_name
from ..oracles import finite_diff
from ..oracles.jax_model import MissingTwinError, fit_kinks, jax_model, kink_note
from . import diagnosis

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)

FD_FLOOR = 1e-6
"""The finite-difference bound never drops below this. A correct implementation
measures 1e-11 to 1e-9 against the Richardson estimates (tests/test_checker.py
measures it over random networks); the mistakes in the catalog measure 1e-2 and
above. The bound rises above the floor only where the entries' own error
estimates say the differences are that noisy (a saturated network)."""
FD_SAFETY = 10.0
"""How many times the estimated finite-difference error the bound allows."""

JAX_FLOOR = 1e-10
"""The JAX bound's floor: both sides compute in float64, so a correct
implementation agrees to 1e-16..1e-13 relative; 1e-10 leaves room for
ill-conditioned arrays while staying far tighter than finite differences."""
JAX_SAFETY = 4.0
"""Above the floor the bound allows this many times the JAX model's rounding
bound (``JaxResult.rounding``): two correct implementations differ by at most
twice it. It only matters where a gradient is far smaller than the terms it is
computed from (saturation, cancellation)."""

LOSS_RTOL = 1e-10
"""The loss against JAX's: the same formula in float64, relative."""

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
    "crash": "the implementation raised an exception",
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
    kinks_judged: int = 0
    """Pre-activation entries within rounding of a kink, where JAX's derivative is the
    subgradient nearest the implementation's (``jax_model.fit_kinks``)."""

    def failing(self) -> list[ParamCheck]:
        return [p for p in self.layers if not p.ok]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = [{**asdict(p), "shape": list(p.shape)} for p in self.layers]
        return _jsonable(d)

    def render(self) -> str:
        return render(self)

    def __str__(self) -> str:
        return render(self)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
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


def _bound_jax(rounding: np.ndarray, denom: float) -> float:
    if denom == 0.0:
        return JAX_FLOOR
    return min(1.0, max(JAX_FLOOR, JAX_SAFETY * float(np.linalg.norm(rounding)) / max(denom, TINY)))


def _structure_problem(
    grads: Any, params: Sequence[tuple[np.ndarray, np.ndarray]]
) -> list[str] | None:
    """What is wrong with the returned structure, or None when it is a list of (dW, db) pairs."""
    if not isinstance(grads, Sequence) or isinstance(grads, (str, np.ndarray)):
        return [f"gradients returned {type(grads).__name__}, not a list of (dW, db) pairs"]
    if len(grads) != len(params):
        return [f"gradients returned {len(grads)} entries for a network of {len(params)} layers"]
    problems = []
    for l, pair in enumerate(grads, start=1):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            problems.append(f"layer {l}: expected a (dW, db) pair, got {type(pair).__name__}")
    return problems or None


def check_gradients(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    fd: str = "auto",
) -> Report:
    """Check ``impl.gradients`` (and ``impl.loss``) on one problem; returns a :class:`Report`.

    ``fd``: ``"auto"`` (finite differences of the implementation's loss, batched
    when that loss is the formulas'), ``"calls"`` (always call ``impl.loss``),
    ``"model"`` (differentiate the formulas), ``"directional"`` (two random
    directions per layer and parameter, for networks too large for every entry;
    then ``error_fd`` compares projections), or ``"none"`` (JAX only).
    The implementation gets copies of the inputs, so a mutating implementation
    cannot corrupt the references.
    """
    check_protocol(impl)
    activations = list(activations)
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    L, m = len(params), X.shape[1]
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    network = {"sizes": sizes, "activations": activations, "cost": cost, "m": m}
    name = impl_name(impl)
    notes: list[str] = []

    def fail(attribution: str, summary: str, checks: list[ParamCheck] | None = None) -> Report:
        return Report(
            False, attribution, checks or [], {}, 0, summary, network, name, error=summary
        )

    # 1. The implementation's own numbers, on copies.
    try:
        raw = impl.gradients(
            copy.deepcopy(params), X.copy(), Y.copy(), activations=list(activations), cost=cost
        )
    except Exception as exc:  # the implementation's failure is the report's subject
        hint = ""
        if isinstance(exc, ValueError) and ("mismatch" in str(exc) or "shape" in str(exc)):
            hint = " (a shape error: check each matrix product; a missing transpose?)"
        return fail("crash", f"gradients raised {type(exc).__name__}: {exc}{hint}")
    problems = _structure_problem(raw, params)
    if problems:
        return fail("structure", "; ".join(problems))
    grads: list[tuple[np.ndarray, np.ndarray]] = []
    shape_checks: list[ParamCheck] = []
    for l, ((W, b), pair) in enumerate(zip(params, raw), start=1):
        arrays = []
        for pname, param, g in (("W", W, pair[0]), ("b", b, pair[1])):
            try:
                g = np.asarray(g, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                g = None
                msg = f"d{pname} is not a numeric array ({exc})"
            if g is not None and g.shape != param.shape:
                msg = f"d{pname} has shape {g.shape} but {pname} has shape {param.shape}"
                if g.shape == param.shape[::-1]:
                    msg += " (the transpose's shape)"
                g = None
            if g is None:
                shape_checks.append(ParamCheck(l, pname, param.shape, ok=False, diagnosis=msg))
            arrays.append(g)
        grads.append((arrays[0], arrays[1]))
    if shape_checks:
        return fail(
            "structure",
            "; ".join(f"layer {c.layer}: {c.diagnosis}" for c in shape_checks),
            shape_checks,
        )
    try:
        impl_loss = float(
            impl.loss(
                copy.deepcopy(params), X.copy(), Y.copy(), activations=list(activations), cost=cost
            )
        )
    except Exception as exc:
        return fail("crash", f"loss raised {type(exc).__name__}: {exc}")

    # 2. The references.
    try:
        ref = jax_model(params, X, Y, activations=activations, cost=cost)
    except MissingTwinError as exc:
        ref = None
        notes.append(f"no JAX comparison: {exc}")
    fd_result = None
    directional = None
    near = ref.near_kink if ref is not None else None
    if fd == "directional":
        directional = finite_diff.directional_gradients(
            impl, params, X, Y, activations=activations, cost=cost, near_kink=near
        )
    elif fd != "none":
        try:
            fd_result = finite_diff.numerical_gradients(
                impl, params, X, Y, activations=activations, cost=cost, method=fd, near_kink=near
            )
        except LookupError as exc:
            notes.append(f"no finite differences: {exc}")
    if ref is None and fd_result is None:
        raise MissingTwinError("; ".join(notes))
    if ref is not None and ref.kinks:  # near a kink, any subgradient is right: the nearest
        ref = fit_kinks(ref, grads, params, X, Y, activations=activations, cost=cost)
        notes.append(kink_note(ref))

    # 3. Compare, layer by layer.
    checks: list[ParamCheck] = []
    for l in range(1, L + 1):
        for k, pname in enumerate(("W", "b")):
            a = grads[l - 1][k]
            c = ParamCheck(l, pname, a.shape)
            truth = None
            if fd_result is not None:
                n = fd_result.grads[l - 1][k]
                valid = np.isfinite(n)
                c.kinks_excluded = int((~valid).sum())
                denom = float(np.linalg.norm(a[valid]) + np.linalg.norm(n[valid]))
                c.error_fd = diagnosis.relative_error(a[valid], n[valid])
                c.bound_fd = _bound_fd(fd_result.errors[l - 1][k][valid], denom)
                c.fd_ok = bool(c.error_fd <= c.bound_fd) if valid.any() else None
                truth = np.where(valid, n, a)
            if directional is not None:
                d = directional.directions[l - 1][k]
                n = directional.values[l - 1][k]
                valid = np.isfinite(n)  # directions that straddled a kink are excluded
                c.kinks_excluded = int((~valid).sum())
                projected = np.tensordot(d, a, axes=a.ndim)[valid]  # the implementation along d
                n = n[valid]
                denom = float(np.linalg.norm(projected) + np.linalg.norm(n))
                c.error_fd = diagnosis.relative_error(projected, n)
                c.bound_fd = _bound_fd(directional.errors[l - 1][k][valid], denom)
                c.fd_ok = bool(c.error_fd <= c.bound_fd) if valid.any() else None
            if ref is not None:
                j = ref.grads[l - 1][k]
                denom = float(np.linalg.norm(a) + np.linalg.norm(j))
                c.error_jax = diagnosis.relative_error(a, j)
                c.bound_jax = _bound_jax(ref.rounding[l - 1][k], denom)
                c.jax_ok = bool(c.error_jax <= c.bound_jax)
                truth = j
            c.ok = bool(c.jax_ok) if c.jax_ok is not None else c.fd_ok is not False
            if not np.isfinite(a).all():
                c.ok = False
            gap = np.abs(a - truth)
            gap[~np.isfinite(gap)] = np.inf  # a NaN or inf entry is the worst there is
            idx = np.unravel_index(int(np.argmax(gap)), a.shape) if a.size else ()
            c.worst = {
                "index": [int(i) for i in idx],
                "impl": float(a[idx]),
                "fd": None if fd_result is None else float(fd_result.grads[l - 1][k][idx]),
                "jax": None if ref is None else float(ref.grads[l - 1][k][idx]),
            }
            if not c.ok:
                c.diagnosis = diagnosis.diagnose(a, truth, m, pname)
            elif c.fd_ok is False:
                c.diagnosis = "agrees with JAX; finite differences disagree (kink or precision)"
            elif c.bound_jax == 1.0 and float(np.abs(truth).max(initial=0.0)) > 0.0:
                c.diagnosis = "ok (inconclusive: the gradient is below the rounding of its terms)"
            else:
                c.diagnosis = "ok"
            checks.append(c)

    # 4. The loss, attribution, and where to look.
    loss_info: dict[str, Any] = {"impl": impl_loss}
    loss_ok = True
    if ref is not None:
        err = abs(impl_loss - ref.loss)
        bound = LOSS_RTOL * abs(ref.loss) + 1e-15
        loss_ok = bool(np.isfinite(impl_loss) and err <= bound)
        loss_info.update({"jax": ref.loss, "error": err, "bound": bound, "ok": loss_ok})
    grads_ok = all(c.ok for c in checks)
    fd_agrees = all(c.fd_ok is not False for c in checks)
    if not loss_ok:
        attribution = "loss" if grads_ok else "forward" if fd_agrees else "forward+backward"
    elif not grads_ok:
        attribution = "backward" if _fd_confirms(checks) else "jax"
    elif not fd_agrees:
        attribution = "check"
    else:
        attribution = "none"
    ok = loss_ok and grads_ok
    blame, summary = _blame(checks, grads, ref, L, m, loss_ok, loss_info)
    if attribution in ("forward", "forward+backward") and "jax" in loss_info:
        summary = (
            f"the loss differs from the formulas ({impl_loss:.10g} vs JAX's "
            f"{loss_info['jax']:.10g}) and so do the gradients: {summary}"
        )
    kinks = fd_result.excluded if fd_result is not None else 0
    return Report(
        ok, attribution, checks, loss_info, kinks, summary, network, name, blame,
        fd_result.source if fd_result is not None else (
            "the implementation's loss, along random directions" if directional is not None else ""
        ), None, notes, ref.kinks if ref is not None else 0,
    )  # fmt: skip


def _fd_confirms(checks: list[ParamCheck]) -> bool:
    """Whether finite differences back JAX's verdict on the failing arrays: one of them
    fails against finite differences too, or none of them had finite differences to ask."""
    failing = [c for c in checks if not c.ok]
    return any(c.fd_ok is False for c in failing) or all(c.fd_ok is None for c in failing)


def _blame(checks, grads, ref, L, m, loss_ok, loss_info) -> tuple[dict | None, str]:
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
            name = diagnosis.factor_name(c, m) or f"{c:.6g}"
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
    )
    lines = [head]
    if report.layers:
        lines.append(
            f"  {'layer':>5} {'param':>5} {'shape':>9} {'err FD':>9} {'bound':>8} "
            f"{'err JAX':>9} {'bound':>8}  verdict  diagnosis"
        )
        for c in report.layers:
            lines.append(
                f"  {c.layer:>5} {c.param:>5} {'x'.join(map(str, c.shape)):>9} "
                f"{_num(c.error_fd):>9} {_num(c.bound_fd, 1):>8} {_num(c.error_jax):>9} "
                f"{_num(c.bound_jax, 1):>8}  {'ok' if c.ok else 'FAIL':<7}  {c.diagnosis}"
            )
    loss = report.loss
    if "jax" in loss:
        lines.append(
            f"  loss {loss['impl']:.12g} vs JAX {loss['jax']:.12g}: "
            + ("ok" if loss["ok"] else "FAIL")
        )
    if report.kinks_excluded:
        lines.append(
            f"  {report.kinks_excluded} entries next to a relu kink excluded "
            "from finite differences"
        )
    for note in report.notes:
        lines.append(f"  note: {note}")
    verdict = "PASS" if report.ok else "FAIL"
    lines.append(f"  {verdict}: {report.summary}")
    if not report.ok or report.attribution == "check":
        lines.append(f"  attribution: {ATTRIBUTIONS[report.attribution]}")
    return "\n".join(lines)


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}e}"
