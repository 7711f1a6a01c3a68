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

import numpy as np

from ..boundary.guard import Guarded, guard
from ..inputs.problems import Problem
from ..tolerances import SAME
from .conventions import COST_SCALE_RTOL, CostScale, measure
from .diagnosis import relative_error
from .fixed_checks import relu_at_zero, saturation
from .precision import judged_at, tolerances, unit_roundoff
from .results import SEVERITIES, CheckResult, _flat, _grads, _guard  # noqa: F401 (the result type, read from here too)


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
