"""The verdict of a gradient check, chosen in one place from what was measured: the
attribution (DESIGN.md's three-way table), the blame (which layer and parameter, and what
kind of mistake), a factor every gradient shares, and the summary a person reads."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..boundary.guard import PartlyWrongShapes
from . import diagnosis
from .penalty import penalty_blame
from .records import ParamCheck

if TYPE_CHECKING:
    from .checker import _References

SATURATED_ROW = "not finite where the sigmoid saturates (a warning)"
"""The diagnosis of a gradient row passed with the saturation warning
(:func:`reference.judging.checker._saturation`)."""


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
    summary = _worded(f, attribution, summary)
    convention, summary = _convention(f, arrays_ok, summary)
    ok = f.loss_ok and arrays_ok and not f.findings
    if f.findings and attribution == "none":
        attribution, summary = "boundary", "; ".join(f.findings)
    finding = None
    if f.wrong is not None:  # a structure failure, with the right arrays and the loss judged
        ok, attribution, finding = False, "structure", f.wrong.finding.to_dict()
        summary = _structure_summary(f, f.wrong, summary)
    return _Verdict(ok, attribution, summary, blame, factor, finding, convention)


def _worded(f: _Facts, attribution: str, summary: str) -> str:
    """The summary with what a pass let through (a warning), or the loss that differs from
    the formulas where the forward pass is at fault."""
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
    return summary


def _convention(f: _Facts, arrays_ok: bool, summary: str) -> tuple[str, str]:
    """(the cost convention the gradients were judged in, or ""; the summary, naming it where
    an array fails)."""
    if f.scale is None:
        return "", summary
    # the seed's cost times a constant: judged as that, and named
    convention = (
        f"{f.scale.describe()}: the gradients are judged against the same multiple of the reference"
    )
    if not arrays_ok:
        summary += f" ({f.scale.describe()}, and the gradients must be the derivative of "
        summary += "that loss)"
    return convention, summary


def _structure_summary(f: _Facts, wrong: PartlyWrongShapes, summary: str) -> str:
    """The summary of a structure failure: the finding, then whether the other arrays agree."""
    others = [c for c in f.checks if (c.layer, c.param) not in wrong.wrong]
    return f"{wrong.finding.describe()}; " + (
        "the other arrays agree" if all(c.ok for c in others) else f"and {summary}"
    )


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


def _not_elementwise_hint(summary: str, output: str, units: int) -> str:
    """Where every gradient is off by 1/2 and the output activation is not elementwise with
    two units (softmax over two classes), the usual cause: its derivative taken as the
    diagonal a(1 - a) of its Jacobian, exactly half of the full product there (the two
    columns of dJ/dA are opposite for mse against one-hot labels, and cce is fused)."""
    from ..formulas.specs import ACTIVATION_SPECS

    spec = ACTIVATION_SPECS.get(output)
    if spec is None or spec.elementwise or units != 2:
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
    c = diagnosis.common_factor(_all_pairs(grads, ref))
    return None if c is None else {"value": c, "m": m, "outputs": outputs}


def _all_pairs(grads, ref) -> list[tuple[np.ndarray, np.ndarray]]:
    """(the implementation's array, the reference's) for every W and b, layer by layer."""
    return [(a, j) for (ga, gb), (ja, jb) in zip(grads, ref.grads) for a, j in ((ga, ja), (gb, jb))]


def _blame(
    checks, grads, ref, L, m, loss_ok, loss_info, outputs: int | None = None
) -> tuple[dict | None, str]:
    """Which layer and parameter to look at first, and a one-line summary."""
    failing = [c for c in checks if not c.ok]
    if not failing:
        return _blame_passing(loss_ok, loss_info)
    layers = sorted({c.layer for c in failing})
    top = layers[-1]
    at_top = [c.param for c in failing if c.layer == top]
    param = at_top[0] if len(at_top) == 1 else "delta"
    blame = {"layer": top, "param": param}
    k = diagnosis.locate(layers, L)
    if ref is not None and len(layers) == L:
        summary = _every_factor_summary(grads, ref, L, m, outputs)
        if summary is not None:
            return {"layer": L, "param": "delta"}, summary
    if len(failing) == 1:
        c = failing[0]
        return blame, f"only layer {c.layer}'s d{c.param} is wrong: {c.diagnosis}"
    summary = None if ref is None else _failing_factor_summary(checks, failing, grads, ref, m)
    if summary is not None:
        return blame, summary
    return blame, _pattern_summary(layers, L, k, len(at_top))


def _blame_passing(loss_ok: bool, loss_info: dict[str, Any]) -> tuple[dict | None, str]:
    """The blame and summary where every array agrees: the loss's, or none."""
    if not loss_ok:
        return {"layer": None, "param": "loss"}, (
            f"the loss differs from the formula: {loss_info['impl']:.10g} vs JAX's "
            f"{loss_info['jax']:.10g}"
        )
    return None, "all gradients and the loss agree"


def _every_factor_summary(grads, ref, L: int, m: int, outputs: int | None) -> str | None:
    """The summary where every gradient is off by one constant factor (None: none is)."""
    c = diagnosis.common_factor(_all_pairs(grads, ref))
    if c is None:
        return None
    name = diagnosis.factor_name(c, m, outputs) or f"{c:.6g}"
    hint = diagnosis.factor_hint(name)
    return (
        f"every gradient is off by the same factor {name}: look at the cost derivative "
        f"or the output delta dZ^{L}" + (f" ({hint})" if hint else "")
    )


def _failing_factor_summary(checks, failing, grads, ref, m: int) -> str | None:
    """The summary where the failing arrays are all off by one constant factor (None: they
    are not)."""
    index = {(c.layer, c.param): k for k, c in enumerate(checks)}
    pairs = [
        (
            grads[c.layer - 1][index[(c.layer, c.param)] % 2],
            ref.grads[c.layer - 1][index[(c.layer, c.param)] % 2],
        )
        for c in failing
    ]
    c = diagnosis.common_factor(pairs)
    if c is None:
        return None
    name = diagnosis.factor_name(c, m) or f"{c:.6g}"
    which = ", ".join(f"d{f.param}^{f.layer}" for f in failing)
    return f"{which} are all off by the same factor {name}; the rest agree"


def _pattern_summary(layers: list[int], L: int, k: int | None, at_top: int) -> str:
    """The summary from which layers fail (``at_top``: how many arrays of the highest)."""
    if k is not None and k > 0:
        return (
            f"right at the output, wrong from layer {k} down: look at layer {k}'s delta "
            f"dZ^{k} or its activation derivative g'_{k}"
        )
    if layers == list(range(1, L + 1)) and at_top == 2:
        return (
            f"wrong from the output down: look at the output delta dZ^{L} (the cost's "
            f"derivative, or the output activation's derivative g'_{L})"
        )
    return f"layers {', '.join(map(str, layers))} are wrong; the highest is layer {layers[-1]}"
