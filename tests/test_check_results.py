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
    """Returns the new params, and also writes them into the ones it was given."""

    loss, gradients = staticmethod(backprop.loss), staticmethod(backprop.gradients)

    @staticmethod
    def update(params, grads, alpha):
        new = backprop.update(params, grads, alpha)
        for (W, b), (W1, b1) in zip(params, new):
            W[...], b[...] = W1, b1
        return new


def test_an_update_that_returns_new_params_and_writes_the_old_ones_fails():
    result = checks.update_rule(UpdatesAndWrites, seed_problem())
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
