"""The cost table: values by hand, derivatives against both oracles, the fused bce form."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backprop
from reference.formulas.jax_twins import JAX_COSTS
from reference.oracles.jax_x64 import enable_x64

EPS = np.finfo(np.float64).eps
NAMES = sorted(backprop.COSTS)


def test_mse_by_hand():
    A, Y = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    # 1/(2m) sum (A - Y)^2 = (1 + 4) / 4
    assert backprop.COSTS["mse"].fn(A, Y) == pytest.approx(1.25, rel=1e-15)
    np.testing.assert_allclose(backprop.COSTS["mse"].grad(A, Y), [[0.5, 1.0]], rtol=1e-15)


def test_bce_by_hand():
    A, Y = np.array([[0.5, 0.25]]), np.array([[1.0, 0.0]])
    # 1/m (-log 0.5 - log(1 - 0.25)) = (log 2 + log 4/3) / 2
    want = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert backprop.COSTS["bce"].fn(A, Y) == pytest.approx(want, rel=1e-15)
    # 1/m (-y/a + (1 - y)/(1 - a)) = (-2, 4/3) / 2
    np.testing.assert_allclose(backprop.COSTS["bce"].grad(A, Y), [[-1.0, 2.0 / 3.0]], rtol=1e-15)


def test_bce_fused_form_by_hand():
    fused = backprop.COSTS["bce"].fused["sigmoid"]
    Z, Y = np.array([[0.0, 1000.0, -1000.0]]), np.array([[1.0, 0.0, 0.0]])
    # softplus(Z) - Y Z: log 2 - 0, 1000 - 0, ~0; over m = 3
    assert fused.fn(Z, Y) == pytest.approx((math.log(2.0) + 1000.0) / 3, rel=1e-15)
    A = np.array([[0.5, 1.0, 0.0]])
    np.testing.assert_allclose(fused.delta(A, Y), [[-0.5 / 3, 1 / 3, 0.0]], rtol=1e-15)


@functools.cache
def jax_cost_and_grad(term):
    """``(a, y) -> (J, dJ/da)`` for the JAX cost terms ``term``, jitted: one program per
    shape, where eager JAX compiles each operation for each new shape."""
    return jax.jit(jax.value_and_grad(lambda a, y: jnp.sum(term(a, y)) / a.shape[1]))


@st.composite
def predictions_and_labels(draw, name):
    n = draw(st.integers(1, 3))
    m = draw(st.integers(1, 4))
    if name == "bce":  # predictions across (0, 1), some within 1e-4 of 0 or 1
        a = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(1e-4, 1 - 1e-4)))
        y = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(0.0, 1.0)))
    elif name == "cce":  # predictions in (0, 1), labels one-hot by columns
        a = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(1e-4, 1 - 1e-4)))
        y = np.eye(n)[:, draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))]
    else:
        a = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(-5.0, 5.0)))
        y = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(-5.0, 5.0)))
    return a, y


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_cost_derivative_matches_both_oracles(name, data):
    a, y = data.draw(predictions_and_labels(name))
    cost = backprop.COSTS[name]
    got = cost.grad(a, y)
    with enable_x64():
        value, want = jax_cost_and_grad(JAX_COSTS[name].term)(a, y)
        value, want = float(value), np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert cost.fn(a, y) == pytest.approx(value, rel=1e-12, abs=1e-15)
    # finite differences entry by entry, the step kept inside (0, 1) for bce and cce
    room = np.minimum(a, 1 - a) / 4 if name in ("bce", "cce") else np.inf
    h = np.minimum(EPS ** (1 / 3) * np.maximum(1.0, np.abs(a)), room)
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = h[idx]
        d1 = (cost.fn(a + e, y) - cost.fn(a - e, y)) / (2 * h[idx])
        d2 = (cost.fn(a + e / 2, y) - cost.fn(a - e / 2, y)) / h[idx]
        est = (4 * d2 - d1) / 3
        bound = 10 * abs(d1 - d2) + 1e-7 * abs(est) + 16 * EPS * (1 + abs(cost.fn(a, y))) / h[idx]
        assert abs(got[idx] - est) <= bound, (idx, got[idx], est)


@given(
    z=hnp.arrays(np.float64, (2, 3), elements=st.floats(-1e3, 1e3)),
    y=hnp.arrays(np.float64, (2, 3), elements=st.floats(0.0, 1.0)),
)
def test_fused_bce_matches_jax_through_the_sigmoid(z, y):
    """dZ = (A - Y)/m is d/dZ of bce(sigmoid(Z)), finite at any saturation."""
    fused = backprop.COSTS["bce"].fused["sigmoid"]
    a = backprop.ACTIVATIONS["sigmoid"].fn(z)
    logits = JAX_COSTS["bce"].from_logits["sigmoid"]
    with enable_x64():
        J, dz = jax.value_and_grad(lambda z_: jnp.sum(logits(z_, y)) / z_.shape[1])(z)
        J, dz = float(J), np.asarray(dz)
    # A - Y cancels where A is near Y: allow the rounding of its inputs, eps (|A| + |Y|) / m
    # (and XLA on the CPU flushes subnormal results to zero: allow 1e-300 absolute).
    slack = 1e-12 * np.abs(dz) + 4 * EPS * (np.abs(a) + np.abs(y)) / z.shape[1] + 1e-300
    assert np.all(np.abs(fused.delta(a, y) - np.asarray(dz)) <= slack)
    assert fused.fn(z, y) == pytest.approx(float(J), rel=1e-12)


def test_every_cost_has_a_jax_twin():
    for name in NAMES:
        assert name in JAX_COSTS, (
            f"give {name!r} a spec in COST_SPECS in reference/formulas/specs.py"
        )


def test_bce_of_a_saturated_but_right_prediction_is_zero_and_quiet():
    import warnings

    A, Y = np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backprop.COSTS["bce"].fn(A, Y) == 0.0


def test_cce_by_hand():
    A, Y = np.array([[0.5, 0.25], [0.5, 0.75]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    # -1/m (log 0.5 + log 0.75); dJ/dA = -Y / (m A): -1 and -2/3 over m = 2, 0 off the labels
    want = -(math.log(0.5) + math.log(0.75)) / 2
    assert backprop.COSTS["cce"].fn(A, Y) == pytest.approx(want, rel=1e-15)
    np.testing.assert_allclose(
        backprop.COSTS["cce"].grad(A, Y), [[-1.0, 0.0], [0.0, -2.0 / 3.0]], rtol=1e-15
    )


@given(
    z=hnp.arrays(np.float64, (3, 2), elements=st.floats(-1e3, 1e3)),
    labels=st.lists(st.integers(0, 2), min_size=2, max_size=2),
)
def test_fused_cce_matches_jax_through_the_softmax(z, labels):
    """dZ = (A - Y)/m is d/dZ of cce(softmax(Z)), finite for logits up to 1e3."""
    y = np.eye(3)[:, labels]
    fused = backprop.COSTS["cce"].fused["softmax"]
    a = backprop.ACTIVATIONS["softmax"].fn(z)
    logits = JAX_COSTS["cce"].from_logits["softmax"]
    with enable_x64():
        J, dz = jax.value_and_grad(lambda z_: jnp.sum(logits(z_, y)) / z_.shape[1])(z)
        J, dz = float(J), np.asarray(dz)
    slack = 1e-12 * np.abs(dz) + 4 * EPS * (np.abs(a) + np.abs(y)) / z.shape[1] + 1e-300
    assert np.all(np.abs(fused.delta(a, y) - dz) <= slack)
    assert fused.fn(z, y) == pytest.approx(J, rel=1e-12, abs=1e-300)


def test_cce_without_the_max_shift_overflows_where_the_fused_form_does_not():
    """Logits of 1000: e^1000 is inf in float64, so softmax and cce written without the
    shift give NaN; the table's fused form gives the exact loss, 2000 for a wrong label."""
    from reference.bugs import CATALOG

    Z = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    fused = backprop.COSTS["cce"].fused["softmax"]
    assert fused.fn(Z, Y) == pytest.approx(1000.0, rel=1e-15)  # (0 + 2000) / 2
    A = backprop.ACTIVATIONS["softmax"].fn(Z)
    assert np.isfinite(fused.delta(A, Y)).all()
    naive = CATALOG["softmax_without_shift"]
    assert not np.isfinite(naive.cost_value("cce", Z, naive.act("softmax", Z), Y, "softmax"))
    assert not np.isfinite(naive.act("softmax", Z)).all()


def test_cce_refuses_labels_that_are_not_one_hot():
    params = backprop.init_params([2, 3], seed=0)
    X = np.zeros((2, 2))
    for Y in (np.array([[0.5, 1.0], [0.5, 0.0], [0.0, 0.0]]), np.zeros((3, 2))):
        with pytest.raises(ValueError, match=r"one-hot by columns for cost 'cce'.*column 0"):
            backprop.loss(params, X, Y, activations=["softmax"], cost="cce")
