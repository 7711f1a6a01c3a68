"""The checks finite differences cannot make (DESIGN.md lists why), through the protocol.

Each takes an implementation and a :class:`~reference.inputs.problems.Problem` and
returns a :class:`CheckResult`: ``ok`` True or False, or None where the check
does not apply (an implementation without ``update``, a gradient too small to
step along). Expected values are computed here, by hand or from the JAX model,
never from the implementation under test.

Every call goes through the boundary (:func:`reference.boundary.guard.guard`):
a call that raises, hangs up or returns the wrong structure fails the check with
the member, file and line; the harness's own errors are not caught here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..boundary.guard import Guarded, ImplementationFailed, guard
from ..inputs.problems import Problem
from ..tolerances import SAME
from .conventions import COST_SCALE_RTOL, SEED, CostScale, detect, measure
from .diagnosis import relative_error
from .precision import judged_at, tolerances, unit_roundoff


@dataclass
class CheckResult:
    """One check's verdict: ``ok`` is None when the check does not apply.

    ``severity`` says what a failed check (``ok`` False) means (DESIGN.md, "Severity"):
    ``"error"`` (a wrong result: exit status 1), ``"warning"`` (numerical robustness, such
    as a loss that is NaN, infinite or clipped where the sigmoid saturates) or
    ``"convention"`` (a deliberate difference from the seed, such as relu'(0) = 0 or an
    update in place). Warnings and conventions fail a run only under ``--strict``.
    """

    name: str
    ok: bool | None
    message: str
    finding: dict[str, Any] | None = None
    """Where a failed call failed (:class:`~reference.boundary.guard.Finding`), if one did."""
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.ok is False and self.severity == "error"

    def _repr_html_(self) -> str:
        """One line of HTML for a notebook, a failed check marked by its severity."""
        from ..report.html import check_result_html

        return check_result_html(self)


SEVERITIES = ("error", "warning", "convention")


def _grads(impl: Guarded, p: Problem, params=None, X=None, Y=None, l2_scale: float = 1.0):
    """``p``'s gradients, or those of other params or data; ``l2_scale`` multiplies the
    problem's penalty (lambda/(2m) changes with m: see :func:`batch_mean`)."""
    kwargs = p.kwargs()
    if "l2" in kwargs:
        kwargs["l2"] = p.l2 * l2_scale
    return impl.gradients(
        params if params is not None else p.params,
        X if X is not None else p.X,
        Y if Y is not None else p.Y,
        **kwargs,
    )


def _flat(grads) -> np.ndarray:
    return np.concatenate([np.ravel(a) for pair in grads for a in pair])


def _guard(name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except ImplementationFailed as failed:  # the implementation's failure is the verdict
        found = failed.finding
        if found.kind == "unsupported":  # outside what it supports: the check does not apply
            return CheckResult(name, None, f"not supported: {found.describe()}", found.to_dict())
        return CheckResult(name, False, found.describe(), found.to_dict())


def purity(impl, p: Problem) -> CheckResult:
    """``loss``, ``gradients``, ``forward`` and ``update`` leave their arguments unchanged
    (the boundary compares every argument with a copy after each call)."""
    impl = guard(impl)

    def run() -> CheckResult:
        seen = len(impl.impurities)
        impl.gradients(p.params, p.X, p.Y, **p.kwargs())
        impl.loss(p.params, p.X, p.Y, **p.kwargs())
        if impl.has("forward"):
            impl.forward(p.params, p.X, activations=list(p.activations))
        if impl.has("update"):
            grads = [(np.ones_like(W), np.ones_like(b)) for W, b in p.params]
            impl.update(p.params, grads, 0.1)
        changed = impl.impurities[seen:]
        if changed:
            return CheckResult("purity", False, "; ".join(c.describe() for c in changed[:3]))
        return CheckResult("purity", True, "no argument changed")

    return _guard("purity", run)


def repeatability(impl, p: Problem) -> CheckResult:
    """Two calls on the same inputs give the same gradients (nothing accumulates across calls),
    and so has every call the boundary has seen so far with inputs it had seen before."""
    impl = guard(impl)

    def run() -> CheckResult:
        first, second = _flat(_grads(impl, p)), _flat(_grads(impl, p))
        err = relative_error(second, first)
        if err > tolerances(impl).same:
            ratio = float(np.vdot(second, first) / max(np.vdot(first, first), 1e-300))
            return CheckResult(
                "repeatability",
                False,
                f"a second call returned different gradients (relative error {err:.3g}, "
                f"{ratio:.3g} times the first): state carried across calls",
            )
        if impl.inconsistencies:
            return CheckResult("repeatability", False, impl.inconsistencies[0].describe())
        return CheckResult("repeatability", True, "two calls agree")

    return _guard("repeatability", run)


def update_rule(impl, p: Problem, learning_rate: float = 0.1) -> CheckResult:
    """``update(params, grads, alpha)`` is exactly W - alpha dW, b - alpha db, for every layer."""
    impl = guard(impl)
    if not impl.has("update"):
        return CheckResult("update", None, "the implementation has no update")

    def run() -> CheckResult:
        rng = np.random.default_rng(0)
        grads = [(rng.normal(size=W.shape), rng.normal(size=b.shape)) for W, b in p.params]
        seen = len(impl.impurities)
        new = impl.update(p.params, grads, learning_rate)
        for l, ((W, b), (dW, db), pair) in enumerate(zip(p.params, grads, new), start=1):
            for pname, theta, g, got in (("W", W, dW, pair[0]), ("b", b, db, pair[1])):
                want = theta - learning_rate * g
                if not _updated(impl, got, want, theta, learning_rate * g):
                    if np.array_equal(got, theta):
                        what = "unchanged"
                    elif np.allclose(got, theta + learning_rate * g):
                        what = "moved up the gradient (W + alpha dW)"
                    else:
                        what = "not W - alpha dW"
                    return CheckResult("update", False, f"layer {l}'s {pname} is {what}")
        if any(i.member == "update" for i in impl.impurities[seen:]):
            return CheckResult("update", False, "update changed params in place")
        if impl.update_in_place:
            return CheckResult(
                "update", False, "W - alpha dW and b - alpha db in every layer, written into "
                "params in place (update returns "
                + ("the arrays it wrote into" if impl.update_returned else "None")
                + "; the seed returns new params and leaves its arguments alone)",
                severity="convention",
            )  # fmt: skip
        return CheckResult("update", True, "W - alpha dW and b - alpha db in every layer")

    return _guard("update", run)


def _updated(impl: Guarded, got, want, theta, step) -> bool:
    """Whether ``got`` is ``want`` = theta - step: to 1e-14 relative in float64; below it, to
    4 eps (|theta| + |step|) entrywise (the inputs' rounding to that precision, the product
    and the difference)."""
    at = judged_at(impl)
    if at == "float64":
        return bool(np.allclose(got, want, rtol=1e-14, atol=1e-300))
    allowed = 4 * unit_roundoff(at) * (np.abs(theta) + np.abs(step))
    return bool(np.all(np.abs(got - want) <= allowed))


def descent(impl, p: Problem) -> CheckResult:
    """A small step against the gradient lowers the loss by about alpha ||g||^2.

    First order: J(theta - alpha g) = J(theta) - alpha ||g||^2 + O(alpha^2). Step
    sizes are tried from a step of length 1e-3 (1 + ||theta||) down to where the
    predicted decrease is 1e4 times J's rounding; the check passes when, at
    any of them, the decrease is within [0.8, 1.25] of the prediction (curvature
    and relu kinks spoil the largest steps); near a stationary point, where
    curvature rules every step rounding allows, the ratio is extrapolated to
    alpha = 0. A gradient with the wrong sign, or an update that does not step
    downhill, fails either way.
    """

    impl = guard(impl)

    def run() -> CheckResult:
        grads = _grads(impl, p)
        g = _flat(grads)
        norm = float(np.linalg.norm(g))
        J0 = impl.loss(p.params, p.X, p.Y, **p.kwargs())
        theta = float(np.linalg.norm(_flat(p.params)))
        eps = unit_roundoff(judged_at(impl))  # J's rounding: float64's, or the implementation's
        if not np.isfinite(norm) or norm == 0.0:
            return CheckResult("descent", None, f"gradient norm {norm:.3g}: no direction to test")
        alpha_max = 1e-3 * (1 + theta) / norm
        alpha_min = 1e4 * eps * (1 + abs(J0)) / norm**2
        if alpha_min >= alpha_max:
            return CheckResult("descent", None, f"gradient norm {norm:.3g} is within J's rounding")
        has_update = impl.has("update")
        how = "update" if has_update else "W - alpha dW"
        ratios = []
        alphas = [*np.geomspace(alpha_max, 2 * alpha_min, 7), alpha_min]
        for alpha in alphas:
            if has_update:
                stepped = impl.update(p.params, grads, float(alpha))
            else:
                stepped = [
                    (W - alpha * dW, b - alpha * db) for (W, b), (dW, db) in zip(p.params, grads)
                ]
            J1 = impl.loss(stepped, p.X, p.Y, **p.kwargs())
            ratio = (J0 - J1) / (alpha * norm**2)
            if 0.8 <= ratio <= 1.25:
                return CheckResult("descent", True, f"the loss fell by {ratio:.4f} alpha ||g||^2")
            ratios.append(ratio)
        # Near a stationary point curvature rules every step that rounding allows: the ratio
        # is 1 - alpha g'Hg / (2 ||g||^2) + O(alpha^2), so extrapolate its last two values
        # (alpha_min and 2 alpha_min) to alpha = 0.
        at_zero = 2 * ratios[-1] - ratios[-2]
        if 0.8 <= at_zero <= 1.25:
            return CheckResult("descent", True, f"the loss fell by {at_zero:.4f} alpha ||g||^2 "
                               "(extrapolated to small steps past the curvature)")  # fmt: skip
        return CheckResult(
            "descent",
            False,
            f"steps of {how} with alpha from {alpha_max:.3g} down to {alpha_min:.3g} changed the "
            f"loss by {at_zero:.3g} times the -alpha ||g||^2 expected (extrapolated to small "
            "steps): the gradient does not point uphill or the update does not step downhill",
        )

    return _guard("descent", run)


OUT_OF_SCOPE = "not applicable: the declared scope has no "
"""How the message of a fixed check whose network the scope does not admit begins."""


def _outside(scope, activations: list[str], cost: str, outputs: int = 1) -> bool:
    return scope is not None and not scope.admits_network(activations, cost, outputs)


def relu_at_zero(impl, scope=None, expect: float | None = None) -> CheckResult:
    """relu'(0) at pre-activations that are exactly zero: 1 is the seed's convention, any
    value in [0, 1] a valid subgradient (a convention note); ``expect`` requires one.

    Network: relu hidden layer with W^1 = 0, b^1 = 0 (so Z^1 = 0 exactly), sigmoid
    output with W^2 = 1, b^2 = 0, bce, X = 1, Y = 0. By hand: A^2 = 1/2,
    dZ^2 = (1/2 - 0)/1, dZ^1 = W^2 dZ^2 relu'(0) = 1/2, so db^1 = 1/2 and dW^1 = 1/2.
    """

    impl = guard(impl)
    if _outside(scope, ["relu", "sigmoid"], "bce"):
        return CheckResult("relu'(0)", None, f"{OUT_OF_SCOPE}relu "
                           "hidden layer under a sigmoid output with bce")  # fmt: skip

    def run() -> CheckResult:
        params = [(np.zeros((1, 1)), np.zeros((1, 1))), (np.ones((1, 1)), np.zeros((1, 1)))]
        grads = impl.gradients(
            params, np.ones((1, 1)), np.zeros((1, 1)), activations=["relu", "sigmoid"], cost="bce"
        )
        used = 2 * float(grads[0][1][0, 0])  # db^1 = relu'(0) / 2
        delta = float(grads[1][1][0, 0])  # db^2 = dZ^2 = A^2 - Y = 1/2
        read = ""
        if delta != 0.5 and delta != 0.0 and np.isfinite(delta):
            # the output delta is wrong (a cost's sign, a factor): that is the gradient
            # checks' to name; relu'(0) is what multiplies it on the way down, db^1 / db^2
            used = float(grads[0][1][0, 0]) / delta
            read = (
                f" (read as db^1 / db^2: the output delta db^2 is {delta:g} here, not 1/2, "
                "a mistake above relu that the gradient checks name)"
            )
        if expect is not None and used != expect:
            return CheckResult(
                "relu'(0)", False, f"relu'(0) = {used:g}, and {expect:g} is required "
                f"(--relu-at-zero){read}"
            )  # fmt: skip
        if expect is not None:  # the slope required, whatever the seed's convention
            return CheckResult("relu'(0)", True, f"relu'(0) = {used:g} as required{read}")
        if used == 1.0:
            return CheckResult("relu'(0)", True, f"relu'(0) = 1 as the seed defines it{read}")
        if 0.0 <= used <= 1.0:
            return CheckResult(
                "relu'(0)",
                False,
                f"relu'(0) = {used:g}"
                + (" (JAX's and PyTorch's choice)" if used == 0.0 else "")
                + f", a valid subgradient; the seed uses 1{read}",
                severity="convention",
            )
        return CheckResult(
            "relu'(0)", False, f"relu'(0) = {used:g} at Z^1 = 0: not a subgradient of relu "
            f"(any value in [0, 1] is; the seed uses 1){read}"
        )  # fmt: skip

    return _guard("relu'(0)", run)


_LOGITS_FIX = (
    "compute bce from the logits, J = mean(logaddexp(0, Z) - Y Z), which stays finite "
    "where the sigmoid rounds to 0 or 1"
)
_DELTA_FIX = "use the fused output delta dZ = (A - Y)/m for a sigmoid output with bce"


_SHIFT_FIX = (
    "shift each column of Z by its largest entry before exponentiating: softmax(Z) = "
    "e^(Z - c) / sum e^(Z - c), c = max Z"
)
_SOFTMAX_FIX = f"{_SHIFT_FIX}, and log softmax(Z) = Z - c - log sum e^(Z - c), then dZ = (A - Y)/m"


def _bounded_fix(names: list[str]) -> str:
    return (
        f"evaluate {' and '.join(names)} in a form that does not overflow at large |z| (the "
        "sigmoid as 1/(1 + e^-z) for z >= 0 and e^z/(1 + e^z) below, tanh with np.tanh, not "
        "(e^z - e^-z)/(e^z + e^-z))"
    )


SATURATION_Z = np.array([[40.0, -40.0, 60.0, -60.0, 1000.0, -1000.0]])
"""The logits of the saturation networks' samples: where the sigmoid rounds to 0 or 1
(|z| > 37), and where e^z overflows (|z| > 709)."""
SATURATION_LABELS = np.array([[0.0, 1.0, 1.0, 0.0, 0.0, 1.0]])
"""Each sample's label, on the wrong side of its logit half the time."""


def saturates(name: str) -> bool:
    """Whether activation ``name`` flattens out at both ends, as its NumPy twin says: the
    same values at z = +-999 and +-1000 (by columns (z, -z) for one that is not
    elementwise, a softmax), and not a constant. Such a g is bounded and computed from
    e^z: a formula that is not guarded overflows there (the sigmoid, tanh, softmax; relu,
    leaky relu and identity do not flatten)."""
    from ..formulas.numpy_twins import NUMPY_ACTIVATIONS

    twin = NUMPY_ACTIVATIONS.get(name)
    if twin is None:
        return False
    with np.errstate(all="ignore"):
        far = twin.fn(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]]))
        near = twin.fn(np.array([[999.0, -999.0], [-999.0, 999.0]]))
        middle = twin.fn(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    return bool(np.allclose(far, near, rtol=0.0, atol=1e-12)
                and not np.allclose(middle, middle[:, ::-1]))  # fmt: skip


Case = tuple[list, np.ndarray, np.ndarray, list[str], str, int]
"""(params, X, Y, activations, cost, outputs) of a saturation network."""


def _saturation_network(hidden: list[str], out: str, cost: str, outputs: int) -> Case | None:
    """One input z = :data:`SATURATION_Z`; hidden layers of two units, the first
    W = (1/2, -1/2)^T, the next ones the identity matrix; an output layer whose rows are
    +-w (1, -1) (or +-1 on z itself, with no hidden layer), w chosen so that the largest
    logit is 1000. Labels: :data:`SATURATION_LABELS` and their complements by rows, one-hot
    by columns under an output that is not elementwise. None where the hidden layers
    cannot tell the samples apart (their outputs equal)."""
    from ..formulas.numpy_twins import NUMPY_ACTIVATIONS
    from ..inputs.problems import output_only

    params: list[tuple[np.ndarray, np.ndarray]] = []
    A = SATURATION_Z
    for k, name in enumerate(hidden):
        W = np.array([[0.5], [-0.5]]) if k == 0 else np.eye(2)
        params.append((W, np.zeros((2, 1))))
        with np.errstate(all="ignore"):
            A = NUMPY_ACTIVATIONS[name].fn(W @ A)
    row = np.array([[1.0, -1.0]]) if hidden else np.ones((1, 1))
    spread = float(np.max(np.abs(row @ A)))
    if not np.isfinite(spread) or spread == 0.0:
        return None
    signs = np.where(np.arange(outputs) % 2 == 0, 1.0, -1.0)[:, None]
    params.append((signs * (1000.0 / spread) * row, np.zeros((outputs, 1))))
    y = SATURATION_LABELS
    if output_only(out):
        Y = np.zeros((outputs, y.shape[1]))
        Y[0], Y[1] = y[0], 1.0 - y[0]
    else:
        Y = np.where(signs > 0, y, 1.0 - y)
    return params, SATURATION_Z.copy(), Y, [*hidden, out], cost, outputs


def _saturation_cases(scope=None) -> list[Case]:
    """The saturation networks of the declared scope (:class:`~reference.inputs.scope.
    Scope`; None: every name of the tables), built from the tables.

    Every admitted (output activation, cost) pair whose output saturates (:func:`saturates`)
    gets a network of one layer, or, where the scope wants more layers, with hidden layers
    of an admitted activation (one that saturates first). Every admitted hidden activation
    that saturates gets a network of two layers (or the fewest the scope admits) under one
    of those pairs, in turn, or under any admitted pair where no output saturates. Only the
    networks the scope admits are kept, each once."""
    from ..formulas.numpy_twins import NUMPY_ACTIVATIONS, NUMPY_COSTS
    from ..inputs.problems import output_only, table_activations
    from ..inputs.scope import Scope

    scope = scope if scope is not None else Scope.everything()
    table = table_activations()
    hidden = [a for a in scope.hidden_choices(table)
              if a in NUMPY_ACTIVATIONS and not output_only(a)]  # fmt: skip
    bounded = [a for a in hidden if saturates(a)]
    pairs = [(out, cost) for out in scope.output_choices(table) if out in NUMPY_ACTIVATIONS
             for cost in scope.cost_choices(out) if cost in NUMPY_COSTS]  # fmt: skip
    saturating = [(out, cost) for out, cost in pairs if saturates(out)]
    lo = max(1, scope.min_depth or 1)
    deep = max(2, lo)
    if scope.max_depth is not None and deep > scope.max_depth:
        deep = 0  # no hidden layer admitted

    def width(out: str) -> int:
        need = 2 if output_only(out) else 1
        admitted = sorted(n for n in (scope.outputs or [need]) if n >= need)
        return admitted[0] if admitted else 0

    wanted: list[tuple[list[str], str, str]] = []
    for out, cost in saturating:
        if lo == 1:
            wanted.append(([], out, cost))
        elif deep and hidden:
            wanted.append(([(bounded or hidden)[0]] * (deep - 1), out, cost))
    under = saturating or pairs
    for k, name in enumerate(bounded if deep and under else []):
        out, cost = under[k % len(under)]
        wanted.append(([name] * (deep - 1), out, cost))
    cases, seen = [], set()
    for acts, out, cost in wanted:
        n = width(out)
        key = (tuple(acts), out, cost)
        if not n or key in seen or not scope.admits_network([*acts, out], cost, n):
            continue
        seen.add(key)
        case = _saturation_network(acts, out, cost, n)
        if case is not None:
            cases.append(case)
    return cases


def _saturated_bound(got: np.ndarray, want: np.ndarray, rounding: np.ndarray, rtol: float) -> float:
    """The relative error a saturated gradient may show: ``rtol``, or, where the gradient
    is far below the terms it is computed from (a sigmoid' of 4e-18 at z = 40, which
    a(1 - a) or a tanh-based form rounds to 0), four times the JAX model's rounding bound
    relative to the two gradients, as the network check allows (at most 1: such a
    gradient is below what rounding can tell)."""
    denom = float(np.linalg.norm(got) + np.linalg.norm(want))
    if denom == 0.0:
        return rtol
    return min(1.0, max(rtol, 4.0 * float(np.linalg.norm(rounding)) / denom))


def _saturation_fix(acts: list[str], cost: str) -> tuple[str, str]:
    """(the fix for a wrong loss, the fix for gradients that are not finite)."""
    from ..inputs.problems import output_only

    if acts[-1] == "sigmoid" and cost == "bce":
        return _LOGITS_FIX, _DELTA_FIX
    if output_only(acts[-1]):
        fix = _SOFTMAX_FIX if cost == "cce" else _SHIFT_FIX
        return fix, fix
    fix = _bounded_fix(sorted({a for a in acts if saturates(a)}))
    return fix, fix


def saturation(impl, scope=None) -> CheckResult:
    """Every network of the declared scope whose activations saturate (:func:`saturates`),
    at logits of +-40, +-60 and +-1000 (:func:`_saturation_cases`): a finite loss and
    finite gradients equal to JAX's, in the cost's convention where the loss follows one
    (:mod:`.conventions`).

    A sigmoid output rounds to exactly 0 or 1 there, so under bce only the fused
    dZ = (A - Y)/m stays finite; a softmax's e^1000 overflows unless each column is shifted
    by its largest logit, under any cost; a bounded activation written from e^z (tanh as
    (e^z - e^-z)/(e^z + e^-z)) turns inf/inf into NaN. Hidden layers of a saturating
    activation check the same through the chain.
    """

    impl = guard(impl)

    def run() -> CheckResult:
        cases = _saturation_cases(scope)
        if not cases:
            from ..inputs.problems import table_activations

            names = ", ".join(a for a in table_activations() if saturates(a))
            return CheckResult("saturation", None, f"{OUT_OF_SCOPE}network whose activations "
                               f"saturate ({names}: bounded, computed from e^z)")  # fmt: skip
        from ..oracles.jax_model import jax_model  # imports JAX: on first use

        rtol = tolerances(impl).saturation
        exact = max(COST_SCALE_RTOL, 64 * unit_roundoff(judged_at(impl)))
        for params, X, Y, acts, cost, outputs in cases:
            logits_fix, delta_fix = _saturation_fix(acts, cost)
            J = impl.loss(params, X, Y, activations=acts, cost=cost)
            grads = impl.gradients(params, X, Y, activations=acts, cost=cost)
            ref = jax_model(params, X, Y, activations=acts, cost=cost)
            scale = detect(J, ref.loss, 0.0, X.shape[1], outputs, cost, exact) or SEED
            want_loss = scale.data * ref.loss
            want_grads = scale.of_seed(ref.grads, params, X.shape[1])
            where = f"{'/'.join(acts)} {cost}"
            if not np.isfinite(J) or abs(J - want_loss) > rtol * abs(want_loss):
                return CheckResult(
                    "saturation", False, f"{where}: loss {J:.6g} at |z| up to "
                    f"1000, expected {want_loss:.6g}: {logits_fix}", severity="warning",
                )  # fmt: skip
            bounds = [(scale.largest * rW, scale.largest * rb) for rW, rb in ref.rounding]
            for l, (pair, want, r) in enumerate(zip(grads, want_grads, bounds), start=1):
                for pname, got, w, rounding in (("W", pair[0], want[0], r[0]),
                                                ("b", pair[1], want[1], r[1])):  # fmt: skip
                    if not np.isfinite(got).all():
                        return CheckResult(
                            "saturation",
                            False,
                            f"{where}: layer {l}'s d{pname} is not finite at "
                            f"|z| up to 1000: {delta_fix}",
                            severity="warning",
                        )
                    if relative_error(got, w) > _saturated_bound(got, w, rounding, rtol):
                        return CheckResult(
                            "saturation",
                            False,
                            f"{where}: layer {l}'s d{pname} at |z| up to 1000 "
                            f"is {got.ravel()}, "
                            f"expected {w.ravel()}",
                        )
        names = ", ".join(f"{'/'.join(c[3])} {c[4]}" for c in cases)
        return CheckResult("saturation", True, "finite and right at |z| of 40, 60 and 1000 "
                           f"({len(cases)} networks: {names})")  # fmt: skip

    return _guard("saturation", run)


def _compare(name: str, got, want, what: str, same: float = SAME) -> CheckResult:
    err = relative_error(_flat(got), _flat(want))
    if not err <= same:
        return CheckResult(name, False, f"{what} (relative error {err:.3g})")
    return CheckResult(name, True, f"holds (relative error {err:.1e})")


def _as_seed(impl: Guarded, p: Problem, X=None, Y=None, l2_scale: float = 1.0):
    """``p``'s gradients (or those of other data, the penalty's lambda times ``l2_scale``)
    turned into the seed's convention, and the convention (:class:`~.conventions.CostScale`)
    the implementation's own loss follows on that batch (:func:`~.conventions.measure`): a
    cost summed over the samples is m times the seed's at a batch of m and the seed's at
    one sample, and the relations below are the seed's."""
    X = X if X is not None else p.X
    Y = Y if Y is not None else p.Y
    grads = _grads(impl, p, X=X, Y=Y, l2_scale=l2_scale)
    rtol = max(COST_SCALE_RTOL, 64 * unit_roundoff(judged_at(impl)))
    scale = measure(impl, p.params, X, Y, activations=p.activations, cost=p.cost,
                    l2=p.l2 * l2_scale, rtol=rtol)  # fmt: skip
    return _flat(scale.to_seed(grads, p.params, X.shape[1])), scale


def _in_convention(scales: list[CostScale]) -> str:
    """ ", in the cost's own convention (...)" where any call followed one, else ""."""
    named = next((s for s in scales if not s.is_seed), None)
    if named is None:
        return ""
    return f", each call's gradients read in its loss's convention ({named.describe()})"


def batch_mean(impl, p: Problem) -> CheckResult:
    """A batch's gradient is the mean of its samples' gradients: the 1/m, neither missing
    nor doubled. With an L2 penalty each sample is given lambda/m, so that the mean of their
    (lambda/m) W is the batch's (lambda/m) W. A cost in another convention (summed over the
    samples: m times the seed's at m, the seed's at one sample) is read in it: each call's
    gradients are turned into the seed's by the constant its own loss shows
    (:mod:`.conventions`), so that the relation is the seed's whatever the convention."""

    impl = guard(impl)

    def run() -> CheckResult:
        if p.m < 2:
            return CheckResult("batch mean", None, "needs m >= 2")
        alone = [
            _as_seed(impl, p, X=p.X[:, [s]], Y=p.Y[:, [s]], l2_scale=1 / p.m) for s in range(p.m)
        ]
        batch, scale = _as_seed(impl, p)
        mean = np.mean([g for g, _ in alone], axis=0)
        err = relative_error(batch, mean)
        read = _in_convention([scale, *(s for _, s in alone)])
        if not err <= tolerances(impl).same:
            ratio = float(np.vdot(batch, mean) / max(np.vdot(mean, mean), 1e-300))
            return CheckResult(
                "batch mean",
                False,
                f"the batch gradient is {ratio:.4g} times the mean of the per-sample gradients "
                f"(m = {p.m}; relative error {err:.3g}){read}",
            )
        return CheckResult("batch mean", True, f"holds (relative error {err:.1e}){read}")

    return _guard("batch mean", run)


def duplicated_batch(impl, p: Problem) -> CheckResult:
    """Repeating every sample twice leaves the gradient unchanged (with an L2 penalty, given
    twice the lambda: 2 lambda / (2 m) is the batch's lambda/m); a cost in another convention
    is read in it, as in :func:`batch_mean`."""

    impl = guard(impl)

    def run() -> CheckResult:
        twice, scale2 = _as_seed(impl, p, X=np.hstack([p.X, p.X]), Y=np.hstack([p.Y, p.Y]),
                                 l2_scale=2.0)  # fmt: skip
        once, scale = _as_seed(impl, p)
        err = relative_error(twice, once)
        read = _in_convention([scale, scale2])
        if not err <= tolerances(impl).same:
            return CheckResult("duplicated batch", False, "duplicating every sample changed the "
                               f"gradient (relative error {err:.3g}){read}")  # fmt: skip
        return CheckResult("duplicated batch", True, f"holds (relative error {err:.1e}){read}")

    return _guard("duplicated batch", run)


def permuted_units(impl, p: Problem, seed: int = 0) -> CheckResult:
    """Permuting the units of a hidden layer permutes its gradients the same way.

    With a permutation P of layer l's units: W^l -> P W^l, b^l -> P b^l,
    W^{l+1} -> W^{l+1} P^T; then dW^l -> P dW^l, db^l -> P db^l,
    dW^{l+1} -> dW^{l+1} P^T, and every other gradient is unchanged.
    """

    impl = guard(impl)

    def run() -> CheckResult:
        hidden = [l for l in range(len(p.params) - 1) if p.params[l][0].shape[0] > 1]
        if not hidden:
            return CheckResult("permuted units", None, "no hidden layer with two units or more")
        rng = np.random.default_rng(seed)
        l = int(rng.choice(hidden))
        perm = rng.permutation(p.params[l][0].shape[0])
        if (perm == np.arange(perm.size)).all():
            perm = np.roll(perm, 1)
        params = copy.deepcopy(p.params)
        W, b = params[l]
        params[l] = (W[perm], b[perm])
        W2, b2 = params[l + 1]
        params[l + 1] = (W2[:, perm], b2)
        want = _grads(impl, p)
        want[l] = (want[l][0][perm], want[l][1][perm])
        want[l + 1] = (want[l + 1][0][:, perm], want[l + 1][1])
        got = _grads(impl, p, params=params)
        return _compare(
            "permuted units",
            got,
            want,
            f"permuting layer {l + 1}'s units did not permute its gradients",
            tolerances(impl).same,
        )

    return _guard("permuted units", run)


PROBLEM_CHECKS: dict[str, Callable[..., CheckResult]] = {
    "purity": purity,
    "repeatability": repeatability,
    "update": update_rule,
    "descent": descent,
    "batch mean": batch_mean,
    "duplicated batch": duplicated_batch,
    "permuted units": permuted_units,
}
"""Checks that take (impl, problem)."""

FIXED_CHECKS: dict[str, Callable[..., CheckResult]] = {
    "relu'(0)": relu_at_zero,
    "saturation": saturation,
}
"""Checks on fixed, hand-computed problems: take (impl, scope=None); a scope
(:class:`~reference.inputs.scope.Scope`) skips the networks it does not admit."""


def run_all(impl, problem: Problem) -> list[CheckResult]:
    """Every non-gradient check on one problem, then the fixed ones."""
    return [fn(impl, problem) for fn in PROBLEM_CHECKS.values()] + [
        fn(impl) for fn in FIXED_CHECKS.values()
    ]
