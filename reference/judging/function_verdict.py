"""The verdict on a function's gradient: measure each argument, decide, then word it.

:func:`judge` turns what :func:`~reference.judging.functions.check_function` and
:func:`~reference.judging.functions.check_vjp` measured (the finite differences, the JAX
reference, the kink groups of :mod:`.subgradients`, the guarded calls' findings) into a
:class:`~reference.judging.function_report.FunctionReport`; :func:`compare` judges one
argument's gradient: norm-wise against the finite differences and JAX (a bound of ten times
the differences' error bounds, no fixed floor), and at entries on a kink against the interval
between the one-sided slopes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..boundary.functions import GuardedFunction
from ..oracles import function_fd
from ..oracles.richardson import EXCLUDED
from ..tolerances import FD_ROUNDING, VALUE_RTOL
from ..tolerances import FUNCTION_FD_SAFETY as FD_SAFETY
from ..tolerances import FUNCTION_JAX_BOUND as JAX_BOUND
from . import diagnosis
from .function_report import ArgumentCheck, FunctionReport
from .subgradients import KinkGroup, Together, outside_diagnosis, outside_slopes

UPSTREAM_HINT = (
    ": the caller may use dout again (another branch, a residual connection); "
    "copy it first, dx = dout.copy()"
)
"""Appended to the finding of a backward pass that writes into the upstream gradient."""


def _bound_fd(err: np.ndarray, denom: float) -> float:
    """The norm-wise bound from the entries' error bounds: FD_SAFETY ||err|| / denom."""
    if denom == 0.0:
        return FD_ROUNDING
    return min(1.0, max(FD_ROUNDING, FD_SAFETY * float(np.linalg.norm(err)) / denom))


# --- one argument -----------------------------------------------------------------------------


def compare(
    name: str,
    x: np.ndarray,
    a: np.ndarray,
    fd: function_fd.FunctionFD,
    k: int,
    jax_grad: np.ndarray | None,
    m: int,
    kinked: np.ndarray,
) -> ArgumentCheck:
    """One argument's hand-written gradient ``a`` against the finite differences and JAX;
    at the entries on a kink that ``kinked`` marks (those of a judged group,
    :func:`~reference.judging.subgradients.kink_groups`), against the interval between the
    one-sided slopes."""
    c = ArgumentCheck(name, tuple(x.shape))
    method = fd.method[k]
    c.one_sided = int(((method != 0) & (method != EXCLUDED)).sum())
    c.on_kink = int(kinked.sum())
    c.excluded = int((method == EXCLUDED).sum()) - c.on_kink
    if a.shape != x.shape:
        c.diagnosis = diagnosis.shape_mismatch(name, a.shape, x.shape)
        return c
    valid = method != EXCLUDED
    truth = _measure(c, a, fd.grads[k], fd.errors[k], jax_grad, valid)
    c.ok = bool(c.jax_ok) if c.jax_ok is not None else c.fd_ok is not False
    if not np.isfinite(a).all():
        c.ok = False
    slopes = fd.slopes[k] if fd.slopes else None
    outside, beyond = outside_slopes(a, slopes, kinked)
    c.outside = int(outside.sum())
    c.worst = _worst(c, a, fd.grads[k], truth, jax_grad, beyond, kinked, slopes)
    if c.outside:
        was_ok, c.ok, c.fd_ok = c.ok, False, False
        if was_ok:
            c.diagnosis = outside_diagnosis(name, a, slopes, outside, c.on_kink)
            return c
    c.diagnosis = _wording(c, a, truth, valid, outside, slopes, m)
    return c


def _measure(
    c: ArgumentCheck,
    a: np.ndarray,
    n: np.ndarray,
    errors: np.ndarray,
    jax_grad: np.ndarray | None,
    valid: np.ndarray,
) -> np.ndarray:
    """Fill ``c``'s errors, bounds and verdicts against the finite differences ``n`` and JAX
    at the ``valid`` entries; return the reference the diagnosis reads (JAX's gradient where
    there is one, else the differences; ``a`` itself at the entries not compared)."""
    denom = float(np.linalg.norm(a[valid]) + np.linalg.norm(n[valid]))
    if valid.any():
        c.error_fd = diagnosis.relative_error(a[valid], n[valid])
        c.bound_fd = _bound_fd(errors[valid], denom)
        c.fd_ok = bool(c.error_fd <= c.bound_fd)
    truth = np.where(valid, n, a)
    if jax_grad is not None:
        if jax_grad.shape != a.shape:
            raise ValueError(
                f"jax_f's gradient of {c.name} has shape {jax_grad.shape}, not {a.shape}"
            )
        c.error_jax = diagnosis.relative_error(a[valid], jax_grad[valid])
        c.bound_jax = JAX_BOUND
        c.jax_ok = bool(c.error_jax <= c.bound_jax)
        truth = np.where(valid, jax_grad, a)
    return truth


def _worst(
    c: ArgumentCheck,
    a: np.ndarray,
    n: np.ndarray,
    truth: np.ndarray,
    jax_grad: np.ndarray | None,
    beyond: np.ndarray,
    kinked: np.ndarray,
    slopes: np.ndarray | None,
) -> dict[str, Any] | None:
    """The entry furthest from the reference (from its slopes' interval, where a kink is
    what fails), with yours, the differences', JAX's and, on a kink, the one-sided slopes."""
    gap = np.abs(a - truth)
    gap[~np.isfinite(gap)] = np.inf
    if c.outside and (c.ok or not np.any(gap > 0)):
        gap = beyond  # the kink is what fails: show its worst entry
    if not a.size:
        return None
    idx = np.unravel_index(int(np.argmax(gap)), a.shape)
    worst = {
        "index": [int(i) for i in idx],
        "yours": float(a[idx]),
        "fd": float(n[idx]),
        "jax": None if jax_grad is None else float(jax_grad[idx]),
    }
    if kinked[idx]:
        at = slopes[(slice(None), *idx)]
        worst["right"], worst["left"] = float(at[0]), float(at[2])
    return worst


def _wording(
    c: ArgumentCheck,
    a: np.ndarray,
    truth: np.ndarray,
    valid: np.ndarray,
    outside: np.ndarray,
    slopes: np.ndarray | None,
    m: int,
) -> str:
    """The diagnosis of an argument judged (``c.ok``, ``c.fd_ok``, ``c.jax_ok`` decided)."""
    if not c.ok and not np.isfinite(truth[~np.isfinite(a)]).any() and not valid.any():
        return f"d{c.name} holds NaN or inf, and f is not finite near the point either"
    if not c.ok:
        if c.outside:  # against the steeper slope there: a sign or a factor shows whole
            right, left = slopes[0], slopes[2]
            steep = np.where(np.abs(right) >= np.abs(left), right, left)
            truth = np.where(outside, steep, truth)
        text = diagnosis.diagnose(a, truth, m, c.name, within="function")
        if c.outside:
            text += f"; and {c.outside} entries on a kink lie outside their one-sided slopes"
        return text
    if c.fd_ok is False:
        return "agrees with JAX; finite differences disagree (kink or precision)"
    if c.fd_ok is None and c.jax_ok is None:
        return (
            "ok (every entry on a kink, each within its one-sided slopes)"
            if c.on_kink
            else "ok (no entry could be compared: between kinks, or f not finite nearby)"
        )
    if c.bound_fd == 1.0:
        return "ok (inconclusive: the gradient is below the differences' noise)"
    return "ok"


# --- the report -------------------------------------------------------------------------------


def judge(
    kind: str,
    name: str,
    xs: list[np.ndarray],
    names: list[str],
    grads: list[np.ndarray],
    value: float,
    fd: function_fd.FunctionFD,
    reference: tuple[float, list[np.ndarray]] | None,
    m: int | None,
    guarded: list[GuardedFunction],
    together: list[Together],
    groups: list[KinkGroup],
) -> FunctionReport:
    """The report: every argument compared (:func:`compare`), the entries on kinks that do
    not add up failed (:func:`~reference.judging.subgradients.kinks_together`), the guarded
    calls' findings and notes, the value against ``jax_f``'s, and one summary."""
    jax_value, jax_grads = reference if reference is not None else (None, None)
    judged = _judged_masks(xs, groups)
    rows = [
        compare(n, x, a, fd, k, None if jax_grads is None else jax_grads[k], m or 1, judged[k])
        for k, (n, x, a) in enumerate(zip(names, xs, grads))
    ]
    _fail_together(rows, together, fd, grads)
    value_ok = jax_value is None or _same_value(value, jax_value)
    findings = _findings(guarded, value) + ([] if value_ok else [_not_f(value, jax_value)])
    notes = [line for g in guarded for line in g.warning_lines()]
    if fd.calls and kind == "check_vjp":
        notes.append("value is sum(upstream * f): the loss whose gradient the backward pass gives")
    ok = all(r.ok for r in rows) and not findings and value_ok
    return FunctionReport(
        ok=ok,
        kind=kind,
        name=name,
        arguments=rows,
        value=value,
        summary=_summary(rows, findings, value, value_ok, jax_grads is not None),
        one_sided=fd.one_sided,
        on_kink=sum(r.on_kink for r in rows),
        excluded=fd.excluded + fd.kinks - sum(r.on_kink for r in rows),
        calls=sum(g.calls for g in guarded),
        jax_value=jax_value,
        findings=findings,
        notes=notes,
    )


def _judged_masks(xs: list[np.ndarray], groups: list[KinkGroup]) -> list[np.ndarray]:
    """Per argument, the entries on a kink held to their one-sided slopes: those of every
    judged group."""
    judged = [np.zeros(x.shape, dtype=bool) for x in xs]
    for group in groups:
        if group.judged:
            judged = [j | mk for j, mk in zip(judged, group.masks)]
    return judged


def _fail_together(
    rows: list[ArgumentCheck],
    together: list[Together],
    fd: function_fd.FunctionFD,
    grads: list[np.ndarray],
) -> None:
    """Entries on a kink that do not add up: their arguments fail, and one that passed alone
    takes the group's diagnosis and its first entry as the worst."""
    for group in together:
        for k, (row, mask) in enumerate(zip(rows, group.masks)):
            if not mask.any():
                continue
            if row.ok:
                row.diagnosis = group.diagnosis
                idx = tuple(int(i) for i in np.argwhere(mask)[0])
                at = fd.slopes[k][(slice(None), *idx)]
                row.worst = {"index": list(idx), "yours": float(grads[k][idx]),
                             "fd": float("nan"), "jax": None, "right": float(at[0]),
                             "left": float(at[2])}  # fmt: skip
            row.ok, row.fd_ok = False, False


def _findings(guarded: list[GuardedFunction], value: float) -> list[str]:
    """What fails the report whatever the gradients: a value that is not finite (first),
    then every argument the user's code changed in place."""
    findings = [
        i.describe() + (UPSTREAM_HINT if i.argument == "upstream" else "")
        for g in guarded
        for i in g.impurities
    ]
    if not np.isfinite(value):
        findings.insert(0, (
            f"f is not finite at the given point (the checked value is {value}): no gradient "
            "can be checked there. An overflow (exp of a large number: subtract the row's "
            "maximum first) or a log of 0?"
        ))  # fmt: skip
    return findings


def _same_value(value: float, jax_value: float) -> bool:
    """Whether ``jax_f``'s value is ``f``'s, to VALUE_RTOL."""
    return abs(jax_value - value) <= VALUE_RTOL * max(abs(value), abs(jax_value)) + 1e-300


def _not_f(value: float, jax_value: float) -> str:
    return (
        f"jax_f is not f: {jax_value:.12g} vs {value:.12g} at the given point; the JAX "
        "comparison is of another function's gradient"
    )


def _summary(
    rows: list[ArgumentCheck],
    findings: list[str],
    value: float,
    value_ok: bool,
    with_jax: bool,
) -> str:
    """The report's one line: the first thing that fails it, or what agrees."""
    failing = [r for r in rows if not r.ok]
    if not np.isfinite(value):
        return findings[0]
    if not value_ok and all(r.fd_ok is not False for r in rows):
        return (
            "f and jax_f are different functions, and your gradients are those of f (finite "
            "differences agree): the backward pass matches the forward pass. If jax_f is the "
            "function you meant, the mistake is in f, the forward pass"
        )
    if failing:
        wrong = ", ".join(r.name for r in failing)
        return f"the gradient of {wrong} is wrong: {failing[0].diagnosis}"
    if findings:
        return findings[0]
    summary = "the gradient agrees" if len(rows) == 1 else f"all {len(rows)} gradients agree"
    return summary + " with finite differences" + (" and JAX" if with_jax else "")
