"""The activation table: values, derivatives against both oracles, stability, relu'(0).

Driven by the table: an activation a fork adds to ``backprop.ACTIVATIONS`` is
tested here with no new test code (its JAX and NumPy twins aside).
"""

import functools
import warnings

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backprop
from reference.formulas.jax_twins import JAX_ACTIVATIONS
from reference.formulas.specs import NUMPY_ACTIVATIONS
from reference.inputs.strategies import pre_activations
from reference.oracles.jax_x64 import enable_x64

EPS = np.finfo(np.float64).eps
NAMES = sorted(backprop.ACTIVATIONS)
ELEMENTWISE = [n for n in NAMES if backprop.ACTIVATIONS[n].vjp is None]
"""The activations whose ``grad`` is g' itself; the others (softmax) go through ``vjp``."""
BY_COLUMNS = [n for n in NAMES if backprop.ACTIVATIONS[n].vjp is not None]


def kinks(name):
    return NUMPY_ACTIVATIONS[name].kinks


def fd_derivative(fn, z):
    """Central differences at h and h/2, Richardson-combined; returns (estimate, error bound)."""
    h = EPS ** (1 / 3) * np.maximum(1.0, np.abs(z))
    d1 = (fn(z + h) - fn(z - h)) / (2 * h)
    d2 = (fn(z + h / 2) - fn(z - h / 2)) / h
    roundoff = 8 * EPS * (1.0 + np.abs(fn(z))) / h
    return (4 * d2 - d1) / 3, np.abs(d1 - d2) + roundoff


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(data=pre_activations(min_value=-60, max_value=60, kinks=(0.0,)))
def test_derivative_matches_finite_differences(name, data):
    z = data
    entry = backprop.ACTIVATIONS[name]
    got = entry.grad(z, entry.fn(z))
    est, err = fd_derivative(entry.fn, z)
    assert np.all(np.abs(got - est) <= 10 * err + 1e-9 * np.abs(est)), (z, got, est)


@functools.cache
def jax_derivative(g):
    """``z -> (g'(z), g(z))`` for the JAX twin ``g``, elementwise, jitted: one program per
    shape, where eager JAX compiles each operation for each new shape."""
    return jax.jit(lambda z: (jax.vmap(jax.grad(g))(z), g(z)))


@functools.cache
def jax_vjp(g):
    """``(z, dA) -> (g(z), dA^T dg/dz)`` for the JAX twin ``g``, jitted (:func:`jax_derivative`)."""

    def vjp(z, dA):
        value, pullback = jax.vjp(g, z)
        return value, pullback(dA)[0]

    return jax.jit(vjp)


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(z=pre_activations(min_value=-1e3, max_value=1e3, kinks=(0.0,)))
def test_derivative_matches_jax(name, z):
    entry = backprop.ACTIVATIONS[name]
    got = entry.grad(z, entry.fn(z))
    with enable_x64():
        want, value = map(np.asarray, jax_derivative(JAX_ACTIVATIONS[name])(z))
    np.testing.assert_allclose(entry.fn(z), value, rtol=1e-14, atol=4 * EPS)
    # g' computed from a rounded g (1 - a^2, a (1 - a)) is off by a few eps absolute.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=16 * EPS)


@pytest.mark.parametrize("name", NAMES)
def test_stable_and_quiet_up_to_1e4(name):
    z = np.array([-1e4, -1e3, -40.0, -1.0, 0.0, 1.0, 40.0, 1e3, 1e4])
    entry = backprop.ACTIVATIONS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = entry.fn(z)
        g = entry.grad(z, a)
    assert np.isfinite(a).all() and np.isfinite(g).all()


@pytest.mark.parametrize("name", NAMES)
def test_keeps_float32_and_leaves_input_alone(name):
    z = np.linspace(-3, 3, 7, dtype=np.float32)
    before = z.copy()
    entry = backprop.ACTIVATIONS[name]
    a = entry.fn(z)
    assert a.dtype == np.float32 and entry.grad(z, a).dtype == np.float32
    np.testing.assert_array_equal(z, before)


def test_sigmoid_values_by_hand():
    z = np.array([0.0, np.log(3.0), -np.log(3.0), -40.0])
    # 1/(1+1) = 1/2; 1/(1 + 1/3) = 3/4; 1/(1 + 3) = 1/4; e^-40 / (1 + e^-40)
    want = np.array([0.5, 0.75, 0.25, np.exp(-40.0) / (1 + np.exp(-40.0))])
    np.testing.assert_allclose(backprop.ACTIVATIONS["sigmoid"].fn(z), want, rtol=1e-15)


def test_tanh_equals_the_seed_formula_where_representable():
    z = np.linspace(-300, 300, 6001)
    seed_form = 2.0 / (1.0 + np.exp(-2.0 * z)) - 1.0
    np.testing.assert_allclose(backprop.ACTIVATIONS["tanh"].fn(z), seed_form, rtol=0, atol=4 * EPS)


def test_relu_derivative_at_zero_is_one_as_the_seed_defines():
    relu = backprop.ACTIVATIONS["relu"]
    z = np.array([-1e-300, 0.0, -0.0, 1e-300])
    np.testing.assert_array_equal(relu.grad(z, relu.fn(z)), [0.0, 1.0, 1.0, 1.0])


def test_every_activation_has_both_twins():
    """A fork's new activation fails here first, with the place to add its twins."""
    for name in NAMES:
        assert name in JAX_ACTIVATIONS, (
            f"give {name!r} a JAX twin in its spec in reference/formulas/specs.py"
        )
        assert name in NUMPY_ACTIVATIONS, (
            f"give {name!r} a NumPy twin in its spec in reference/formulas/specs.py"
        )


def test_leaky_relu_derivative_at_zero_is_one_like_relus():
    leaky = backprop.ACTIVATIONS["leaky_relu"]
    z = np.array([-1e-300, 0.0, -0.0, 1e-300])
    np.testing.assert_array_equal(leaky.grad(z, leaky.fn(z)), [0.01, 1.0, 1.0, 1.0])


def test_leaky_relu_slope_by_hand_and_the_factory():
    z = np.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_array_equal(backprop.ACTIVATIONS["leaky_relu"].fn(z), [-0.02, -0.005, 0, 3])
    steep = backprop.activations.leaky_relu_activation(0.2)
    np.testing.assert_allclose(steep.fn(z), [-0.4, -0.1, 0.0, 3.0], rtol=1e-15)
    np.testing.assert_array_equal(steep.grad(z, steep.fn(z)), [0.2, 0.2, 1.0, 1.0])
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="slope must be a number in"):
            backprop.activations.leaky_relu_activation(bad)


def test_identity_returns_a_copy():
    z = np.array([[1.0, -2.0]])
    a = backprop.ACTIVATIONS["identity"].fn(z)
    np.testing.assert_array_equal(a, z)
    assert a is not z and not np.shares_memory(a, z)


# --- activations that are not elementwise (softmax): the Jacobian by columns -----------------


@st.composite
def logits_and_upstream(draw, scale=30.0):
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    z = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(-scale, scale)))
    dA = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(-2.0, 2.0)))
    return z, dA


@pytest.mark.parametrize("name", BY_COLUMNS)
@given(data=logits_and_upstream())
def test_vjp_matches_jax(name, data):
    z, dA = data
    entry = backprop.ACTIVATIONS[name]
    a = entry.fn(z)
    with enable_x64():
        value, want = map(np.asarray, jax_vjp(JAX_ACTIVATIONS[name])(z, dA))
    np.testing.assert_allclose(a, np.asarray(value), rtol=1e-13, atol=4 * EPS)
    # a_i (dA_i - sum a_k dA_k) cancels to a few eps of its terms
    slack = 8 * EPS * np.abs(a) * (np.abs(dA) + np.sum(np.abs(a * dA), axis=0))
    # XLA on the CPU flushes subnormal results to zero (logits 18 apart and dA = 1e-300 give
    # NumPy -1.5e-308 where JAX gives 0): a difference below the smallest normal number is that
    tiny = np.finfo(np.float64).tiny
    assert np.all(np.abs(entry.vjp(z, a, dA) - want) <= 1e-12 * np.abs(want) + slack + tiny)


@pytest.mark.parametrize("name", BY_COLUMNS)
@given(data=logits_and_upstream())
def test_vjp_matches_finite_differences(name, data):
    """dZ_i = d/dz_i of sum(dA * g(z)), by central differences entry by entry."""
    z, dA = data
    entry = backprop.ACTIVATIONS[name]
    got = entry.vjp(z, entry.fn(z), dA)
    for idx in np.ndindex(z.shape):
        h = EPS ** (1 / 3) * max(1.0, abs(z[idx]))
        e = np.zeros_like(z)
        e[idx] = h
        d1 = (np.sum(dA * entry.fn(z + e)) - np.sum(dA * entry.fn(z - e))) / (2 * h)
        d2 = (np.sum(dA * entry.fn(z + e / 2)) - np.sum(dA * entry.fn(z - e / 2))) / h
        est = (4 * d2 - d1) / 3
        bound = 10 * abs(d1 - d2) + 16 * EPS * (1 + np.sum(np.abs(dA))) / h
        assert abs(got[idx] - est) <= bound, (idx, got[idx], est)


@pytest.mark.parametrize("name", BY_COLUMNS)
def test_vjp_is_not_grad_times_upstream(name):
    """The Jacobian's off-diagonal matters: dA * grad(z, a), the elementwise product, differs."""
    entry = backprop.ACTIVATIONS[name]
    z, dA = np.array([[0.0], [1.0], [-1.0]]), np.array([[1.0], [0.0], [0.0]])
    a = entry.fn(z)
    assert not np.allclose(entry.vjp(z, a, dA), dA * entry.grad(z, a))


def test_softmax_by_hand_and_with_logits_of_1e4():
    softmax = backprop.ACTIVATIONS["softmax"].fn
    # e^0 : e^{log 3} = 1 : 3 in each column, whatever the shift
    z = np.array([[0.0, 1e4], [np.log(3.0), 1e4 + np.log(3.0)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = softmax(z)
    np.testing.assert_allclose(a, [[0.25, 0.25], [0.75, 0.75]], rtol=1e-12)


def test_hidden_softmax_is_refused_naming_the_argument():
    params = backprop.init_params([2, 3, 2], seed=0)
    X, Y = np.zeros((2, 1)), np.array([[1.0], [0.0]])
    with pytest.raises(ValueError, match=r"activations\[0\] \(layer 1 of 2\) is 'softmax'"):
        backprop.gradients(params, X, Y, activations=["softmax", "softmax"], cost="cce")
