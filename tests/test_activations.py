"""The activation table: values, derivatives against both oracles, stability, relu'(0).

Driven by the table: an activation a fork adds to ``backprop.ACTIVATIONS`` is
tested here with no new test code (its JAX and NumPy twins aside).
"""

import warnings

import jax
import numpy as np
import pytest
from hypothesis import given

import backprop
from reference.inputs.strategies import pre_activations
from reference.oracles.jax_model import JAX_ACTIVATIONS
from reference.oracles.jax_x64 import enable_x64
from reference.oracles.numpy_model import NUMPY_ACTIVATIONS

EPS = np.finfo(np.float64).eps
NAMES = sorted(backprop.ACTIVATIONS)


def kinks(name):
    return NUMPY_ACTIVATIONS[name].kinks


def fd_derivative(fn, z):
    """Central differences at h and h/2, Richardson-combined; returns (estimate, error bound)."""
    h = EPS ** (1 / 3) * np.maximum(1.0, np.abs(z))
    d1 = (fn(z + h) - fn(z - h)) / (2 * h)
    d2 = (fn(z + h / 2) - fn(z - h / 2)) / h
    roundoff = 8 * EPS * (1.0 + np.abs(fn(z))) / h
    return (4 * d2 - d1) / 3, np.abs(d1 - d2) + roundoff


@pytest.mark.parametrize("name", NAMES)
@given(data=pre_activations(min_value=-60, max_value=60, kinks=(0.0,)))
def test_derivative_matches_finite_differences(name, data):
    z = data
    entry = backprop.ACTIVATIONS[name]
    got = entry.grad(z, entry.fn(z))
    est, err = fd_derivative(entry.fn, z)
    assert np.all(np.abs(got - est) <= 10 * err + 1e-9 * np.abs(est)), (z, got, est)


@pytest.mark.parametrize("name", NAMES)
@given(z=pre_activations(min_value=-1e3, max_value=1e3, kinks=(0.0,)))
def test_derivative_matches_jax(name, z):
    entry = backprop.ACTIVATIONS[name]
    got = entry.grad(z, entry.fn(z))
    with enable_x64():
        want = np.asarray(jax.vmap(jax.grad(JAX_ACTIVATIONS[name]))(z))
        value = np.asarray(JAX_ACTIVATIONS[name](z))
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
            f"add {name!r} to JAX_ACTIVATIONS in reference/oracles/jax_model.py"
        )
        assert name in NUMPY_ACTIVATIONS, (
            f"add {name!r} to NUMPY_ACTIVATIONS in reference/oracles/numpy_model.py"
        )
