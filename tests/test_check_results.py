"""Every non-gradient check, on every kind of implementation, gives a well-formed result under
its own name, and each catalogued mistake fails (ok False, not "does not apply") the checks the
catalog says catch it. The checks and the mistakes come from their tables
(``checks.PROBLEM_CHECKS``, ``checks.FIXED_CHECKS``, ``reference.bugs.CATALOG``)."""

from __future__ import annotations

import numpy as np
import pytest

import backprop
from reference.bugs import CATALOG
from reference.bugs.detect import detection_problems
from reference.inputs.problems import seed_problem
from reference.judging import checks

CHECKS = {**checks.PROBLEM_CHECKS, **checks.FIXED_CHECKS}
SEVERITIES = ("error", "warning", "convention")


class InPlaceUpdate:
    """Right, with an update that writes into params and returns None."""

    loss, gradients = staticmethod(backprop.loss), staticmethod(backprop.gradients)

    @staticmethod
    def update(params, grads, alpha):
        for (W, b), (dW, db) in zip(params, grads):
            W -= alpha * dW
            b -= alpha * db


class NoUpdate:
    loss, gradients = staticmethod(backprop.loss), staticmethod(backprop.gradients)


class Mutates:
    """Right numbers, but gradients scales X in place."""

    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        g = backprop.gradients(params, X, Y, **kwargs)
        X *= 2.0
        return g


class Noisy:
    """A gradient that changes from call to call."""

    loss = staticmethod(backprop.loss)
    rng = np.random.default_rng(0)

    @classmethod
    def gradients(cls, params, X, Y, **kwargs):
        g = backprop.gradients(params, X, Y, **kwargs)
        return [(dW + 1e-3 * cls.rng.normal(size=dW.shape), db) for dW, db in g]


class Unsupported:
    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        raise NotImplementedError("only mse")


IMPLS = {
    "built-in": backprop,
    "in-place update": InPlaceUpdate,
    "no update": NoUpdate,
    "mutates": Mutates,
    "noisy": Noisy,
    "unsupported": Unsupported,
    **CATALOG,
}


def results(impl) -> list[tuple[str, checks.CheckResult]]:
    """Every check on the seed network (and the fixed ones), under its table name."""
    p = seed_problem()
    found = [(name, fn(impl, p)) for name, fn in checks.PROBLEM_CHECKS.items()]
    return found + [(name, fn(impl)) for name, fn in checks.FIXED_CHECKS.items()]


@pytest.mark.parametrize("which", list(IMPLS))
def test_every_result_is_well_formed_under_its_own_name(which):
    for name, r in results(IMPLS[which]):
        assert r.name == name, (name, r)
        assert isinstance(r.message, str) and r.message.strip(), (name, r)
        assert r.ok in (True, False, None) and r.severity in SEVERITIES, (name, r)
        assert r.is_error == (r.ok is False and r.severity == "error"), (name, r)


@pytest.mark.parametrize("name", [n for n, m in CATALOG.items() if set(m.caught_by) & set(CHECKS)])
def test_a_mistake_fails_the_checks_that_catch_it(name):
    """ok False on at least one detection problem (not None: "does not apply" catches
    nothing)."""
    mistake = CATALOG[name]
    for check in set(mistake.caught_by) & set(CHECKS):
        fn = CHECKS[check]
        found = (
            [fn(mistake)]
            if check in checks.FIXED_CHECKS
            else [fn(mistake, p) for p in [seed_problem(), *detection_problems()]]
        )
        assert any(r.ok is False for r in found), (check, found)


def test_an_update_in_place_is_a_convention_and_a_missing_one_does_not_apply():
    update = checks.update_rule(InPlaceUpdate, seed_problem())
    assert (update.ok, update.severity) == (False, "convention")
    assert "update returns None" in update.message
    missing = checks.update_rule(NoUpdate, seed_problem())
    assert (missing.ok, missing.message) == (None, "the implementation has no update")


def test_purity_and_repeatability_say_what_they_saw():
    purity = checks.purity(Mutates, seed_problem())
    assert purity.ok is False and "changed X in place" in purity.message
    again = checks.repeatability(Noisy, seed_problem())
    assert again.ok is False and "gradients" in again.message


def test_a_check_on_unsupported_code_does_not_apply_and_says_why():
    for name, r in results(Unsupported):
        if r.ok is None:
            assert r.message.startswith(
                ("not supported: ", "not applicable", "the implementation has no ")
            ), (name, r)
    assert any(r.message.startswith("not supported: ") for _, r in results(Unsupported))


class UpdatesAndWrites:
    """Returns the new params, and also writes them into the ones it was given (an
    optimizer's ``W += -alpha * dW`` on the caller's arrays, then those arrays returned)."""

    loss, gradients = staticmethod(backprop.loss), staticmethod(backprop.gradients)

    @staticmethod
    def update(params, grads, alpha):
        new = backprop.update(params, grads, alpha)
        for (W, b), (W1, b1) in zip(params, new):
            W[...], b[...] = W1, b1
        return new


class WritesOtherValues(UpdatesAndWrites):
    """Returns the new params, and writes something else into the ones it was given."""

    @staticmethod
    def update(params, grads, alpha):
        new = backprop.update(params, grads, alpha)
        for W, _ in params:
            W *= 0.5
        return new


def test_an_update_that_writes_and_returns_the_new_params_is_the_in_place_convention():
    result = checks.update_rule(UpdatesAndWrites, seed_problem())
    assert (result.name, result.ok, result.severity) == ("update", False, "convention")
    assert "in place" in result.message
    assert checks.purity(UpdatesAndWrites, seed_problem()).ok


def test_an_update_that_writes_other_values_than_it_returns_fails():
    result = checks.update_rule(WritesOtherValues, seed_problem())
    assert (result.name, result.ok, result.message) == (
        "update",
        False,
        "update changed params in place",
    )


def test_checks_that_need_more_than_the_problem_has_do_not_apply_and_say_why():
    from reference.inputs.problems import Problem

    rng = np.random.default_rng(3)
    one_sample = seed_problem()
    one_sample = Problem(one_sample.params, one_sample.X[:, :1], one_sample.Y[:, :1],
                         one_sample.activations, one_sample.cost)  # fmt: skip
    result = checks.batch_mean(backprop, one_sample)
    assert (result.name, result.ok, result.message) == ("batch mean", None, "needs m >= 2")
    narrow = Problem([(rng.normal(size=(1, 2)), rng.normal(size=(1, 1))),
                      (rng.normal(size=(1, 1)), rng.normal(size=(1, 1)))],
                     rng.normal(size=(2, 3)), rng.uniform(size=(1, 3)), ["tanh", "sigmoid"], "mse")  # fmt: skip
    result = checks.permuted_units(backprop, narrow)
    assert (result.name, result.ok) == ("permuted units", None)
    assert result.message == "no hidden layer with two units or more"
    two = Problem([(rng.normal(size=(2, 2)), rng.normal(size=(2, 1))),
                   (rng.normal(size=(1, 2)), rng.normal(size=(1, 1)))],
                  narrow.X, narrow.Y, ["tanh", "sigmoid"], "mse")  # fmt: skip
    assert checks.permuted_units(backprop, two).ok is True  # two units are enough


def test_a_gradient_that_counts_samples_twice_fails_the_duplicated_batch():
    result = checks.duplicated_batch(CATALOG["missing_1_over_m"], seed_problem())
    assert (result.name, result.ok) == ("duplicated batch", False)
    assert result.message.startswith("duplicating every sample changed the gradient")


def near_a_minimum(residual: float):
    """One tanh layer with mse whose targets are its own outputs plus ``residual`` noise: the
    gradient is about ``residual`` in size, the curvature about 1."""
    from reference.inputs.problems import Problem

    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(2, 3)), rng.normal(size=(2, 1)))]
    X = rng.normal(size=(3, 6))
    A = backprop.forward(params, X, activations=["tanh"])
    return Problem(params, X, A + residual * rng.normal(size=A.shape), ["tanh"], "mse")


class Negated:
    """The gradients with the wrong sign, and no update (the check steps W - alpha dW)."""

    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        return [(-dW, -db) for dW, db in backprop.gradients(params, X, Y, **kwargs)]


def test_descent_near_a_minimum_extrapolates_past_the_curvature():
    """A gradient of 1e-7 under a curvature of 1: every step that rounding allows is ruled by
    the curvature, so the decrease is extrapolated to small steps; the right sign passes,
    the wrong one fails."""
    p = near_a_minimum(1e-6)
    result = checks.descent(backprop, p)
    assert (result.name, result.ok) == ("descent", True), result.message
    assert "(extrapolated to small steps past the curvature)" in result.message
    assert checks.descent(Negated, p).ok is False


def test_descent_with_a_gradient_within_the_losss_rounding_does_not_apply():
    result = checks.descent(backprop, near_a_minimum(1e-12))
    assert (result.name, result.ok) == ("descent", None)
    assert result.message.endswith("is within J's rounding")


@pytest.mark.parametrize(
    ("impl", "how"), [(Negated, "W - alpha dW"), (CATALOG["sign_flipped"], "update")]
)
def test_descent_says_how_it_stepped(impl, how):
    """With an update of its own the implementation takes the steps; without, the check."""
    result = checks.descent(impl, seed_problem())
    assert (result.name, result.ok) == ("descent", False)
    assert result.message.startswith(f"steps of {how} with alpha from ")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_an_update_below_float64_is_judged_at_its_own_precision(dtype):
    """W - alpha dW computed in float32 (float16) is off by its rounding, not float64's."""
    from outside.lowprecision import LowPrecision

    class WithUpdate(LowPrecision):
        def update(self, params, grads, learning_rate):
            lr = self.dtype.type(learning_rate)
            return [(self._in(W) - lr * self._in(dW), self._in(b) - lr * self._in(db))
                    for (W, b), (dW, db) in zip(params, grads)]  # fmt: skip

    result = checks.update_rule(WithUpdate(dtype), seed_problem())
    assert (result.name, result.ok) == ("update", True), result.message


class FirstUpdateWrites:
    """An update that writes into params on its first call only (then returns new ones)."""

    loss, gradients = staticmethod(backprop.loss), staticmethod(backprop.gradients)

    def __init__(self):
        self.calls = 0

    def update(self, params, grads, alpha):
        self.calls += 1
        if self.calls == 1:
            params[0][0][...] = 0.0
        return backprop.update(params, grads, alpha)


def test_the_update_check_judges_its_own_call():
    """The boundary remembers the first call's write (purity's business); the update check
    reports what its own call did."""
    from reference.boundary.guard import guard

    impl = guard(FirstUpdateWrites())
    p = seed_problem()
    impl.update(p.params, [(np.ones_like(W), np.ones_like(b)) for W, b in p.params], 0.1)
    assert [i.member for i in impl.impurities] == ["update"]
    result = checks.update_rule(impl, p)
    assert (result.name, result.ok) == ("update", True), result.message


class WarmsUp:
    """Gradients off by 10% on the first call, right from then on."""

    loss = staticmethod(backprop.loss)

    def __init__(self):
        self.calls = 0

    def gradients(self, params, X, Y, **kwargs):
        self.calls += 1
        g = backprop.gradients(params, X, Y, **kwargs)
        return [(1.1 * dW, db) for dW, db in g] if self.calls == 1 else g


def test_repeatability_fails_on_an_earlier_call_that_disagreed():
    """Two calls of the check agree, but the boundary saw an earlier call on the same inputs
    return something else: that is a failure, said with the calls compared."""
    from reference.boundary.guard import guard

    impl, p = guard(WarmsUp()), seed_problem()
    impl.gradients(p.params, p.X, p.Y, **p.kwargs())
    result = checks.repeatability(impl, p)
    assert (result.name, result.ok) == ("repeatability", False)
    assert result.message == impl.inconsistencies[0].describe()


class FirstUnitsBias:
    """db^1 only for the first unit of layer 1 (the others left 0)."""

    loss = staticmethod(backprop.loss)

    @staticmethod
    def gradients(params, X, Y, **kwargs):
        g = backprop.gradients(params, X, Y, **kwargs)
        db = np.zeros_like(g[0][1])
        db[0] = g[0][1][0]
        return [(g[0][0], db), *g[1:]]


def test_permuted_units_names_the_layer_it_permuted():
    """With one hidden layer, layer 1 is the one permuted, and the failure names it."""
    from reference.inputs.problems import Problem

    rng = np.random.default_rng(0)
    p = Problem([(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
                 (rng.normal(size=(1, 3)), rng.normal(size=(1, 1)))],
                rng.normal(size=(2, 4)), rng.uniform(size=(1, 4)), ["tanh", "sigmoid"], "mse")  # fmt: skip
    result = checks.permuted_units(FirstUnitsBias, p)
    assert (result.name, result.ok) == ("permuted units", False)
    assert result.message.startswith("permuting layer 1's units did not permute its gradients")
