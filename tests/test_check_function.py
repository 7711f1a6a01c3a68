"""check_function and check_vjp: the three per-layer examples (tests/layers.py) and their
planted mistakes, kinks, the boundary, bad input, the strategy that draws the arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from layers import LAYERS, MISTAKES, checks_args

import reference
from reference.boundary.guard import ImplementationFailed
from reference.inputs.strategies import function_arguments
from reference.oracles import function_fd
from reference.oracles.finite_diff import STEP


def _check(layer, backward, arrays, labels=None, **kw):
    f, grad, arrays = checks_args(layer, backward, arrays, labels)
    entry = reference.check_vjp if layer.kind == "vjp" else reference.check_function
    return entry(f, grad, *arrays, **kw)


def _fixed_arrays(layer, seed, side=3):
    """The layer's arrays at a fixed point: every named size ``side`` (square weights, so a
    transposed gradient has the right shape and must be told by its values)."""
    rng = np.random.default_rng(seed)
    arrays = tuple(
        rng.standard_normal([side if isinstance(d, str) else d for d in shape])
        for shape in layer.shapes
    )
    labels = rng.integers(0, side, size=side) if layer.kind == "function" else None
    return arrays, labels


@st.composite
def _layer_case(draw, name):
    layer = LAYERS[name]
    arrays = draw(function_arguments(*layer.shapes, max_side=5, min_scale=0.01, max_scale=20.0))
    labels = None
    if layer.kind == "function":
        n, c = arrays[0].shape
        labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return layer, arrays, labels


# --- the correct layers: silent ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LAYERS))
@given(data=st.data())
def test_correct_layers_pass(name, data):
    layer, arrays, labels = data.draw(_layer_case(name))
    report = _check(layer, layer.backward, arrays, labels, m=arrays[0].shape[0])
    assert report.ok, str(report)


@pytest.mark.parametrize("name", sorted(LAYERS))
@given(data=st.data())
def test_correct_layers_pass_batched(name, data):
    layer, arrays, labels = data.draw(_layer_case(name))
    report = _check(layer, layer.backward, arrays, labels, batched=True)
    assert report.ok, str(report)


# --- the planted mistakes: caught, with a diagnosis ------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_every_planted_mistake_is_caught_and_diagnosed(mistake, seed):
    m = MISTAKES[mistake]
    layer = LAYERS[m.layer]
    arrays, labels = _fixed_arrays(layer, seed)
    report = _check(layer, m.backward, arrays, labels, m=arrays[0].shape[0])
    assert not report.ok, str(report)
    assert any(m.diagnosis in a.diagnosis for a in report.failing()), str(report)
    assert "FAIL" in str(report) and 'class="fail"' in report._repr_html_()


def test_a_transpose_of_another_shape_is_named_by_its_shape():
    m = MISTAKES["affine: dw transposed"]
    rng = np.random.default_rng(0)
    arrays = (rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5))
    report = _check(LAYERS["affine"], m.backward, arrays)
    (row,) = report.failing()
    assert row.name == "w" and "transpose's shape" in row.diagnosis


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistakes_are_caught_by_jax_too(mistake):
    jnp = pytest.importorskip("jax.numpy")
    m = MISTAKES[mistake]
    layer = LAYERS[m.layer]
    arrays, labels = _fixed_arrays(layer, 0)
    jax_f = {
        "affine": lambda x, w, b: x @ w + b,
        "relu": lambda x: jnp.maximum(0.0, x),
        "softmax_loss": lambda x: (
            -jnp.mean(
                jnp.take_along_axis(
                    x - jnp.log(jnp.sum(jnp.exp(x), axis=1, keepdims=True)), labels[:, None], 1
                )
            )
        ),
    }[layer.name]
    right = _check(layer, layer.backward, arrays, labels, jax_f=jax_f)
    assert right.ok and all(a.jax_ok for a in right.arguments), str(right)
    wrong = _check(layer, m.backward, arrays, labels, jax_f=jax_f, m=3)
    assert not wrong.ok and any(a.jax_ok is False for a in wrong.arguments), str(wrong)


def test_a_jax_version_of_another_function_fails_the_report():
    pytest.importorskip("jax")
    layer = LAYERS["relu"]
    arrays, _ = _fixed_arrays(layer, 0)
    report = _check(layer, layer.backward, arrays, jax_f=lambda x: 2.0 * x)
    assert not report.ok and any("jax_f is not f" in f for f in report.findings)


# --- kinks: abs and max, no false alarms -------------------------------------------------------

KINKED = {
    "abs": (lambda x: np.sum(np.abs(x)), lambda x: np.sign(x)),
    "max": (
        lambda x, y: np.sum(np.maximum(x, y)),
        lambda x, y: ((x >= y).astype(float), (x < y).astype(float)),
    ),
    "relu sum": (lambda x: np.sum(np.maximum(0.0, x) ** 2), lambda x: 2 * np.maximum(0.0, x)),
}


@pytest.mark.parametrize("name", sorted(KINKED))
@given(data=st.data())
def test_kinked_functions_raise_no_false_alarm(name, data):
    f, grad = KINKED[name]
    count = f.__code__.co_argcount
    # small scales and shared values put entries on and next to the kinks
    x = data.draw(function_arguments(("N",), max_side=6, min_scale=1e-6, max_scale=1e-4))[0]
    arrays = (x,) if count == 1 else (x, data.draw(st.sampled_from([x, x[::-1].copy(), -x])))
    report = reference.check_function(f, grad, *arrays)
    assert report.ok, str(report)


def test_entries_at_and_next_to_a_kink_are_counted():
    h = STEP
    x = np.array([0.0, -0.3 * h, 0.3 * h, 1.5, -2.0])
    report = reference.check_function(lambda x: np.sum(np.abs(x)), np.sign, x)
    assert report.ok, str(report)
    assert report.on_kink == 1 and report.excluded == 0 and report.one_sided == 2, str(report)
    assert "next to a kink" in str(report) and "on a kink" in str(report)
    # the same points with a wrong derivative away from the kink: still caught
    wrong = reference.check_function(lambda x: np.sum(np.abs(x)), lambda x: np.sign(x) * 0.5, x)
    assert not wrong.ok


def test_next_to_a_kink_in_the_second_derivative_the_clean_side_is_chosen():
    """relu squared at x = 0.28 h (found by a 1,000-example run): the side that crosses 0
    looks flat (its own bound small), the clean side curved; the third differences tell."""
    f, grad = KINKED["relu sum"]
    x = np.array([1.69524706e-06])
    fd = function_fd.function_gradients(f, [x], scale=lambda x: 0.0)
    assert fd.method[0][0] == function_fd.FORWARD
    assert reference.check_function(f, grad, x).ok


def test_a_curved_side_next_to_a_kink_is_still_used():
    """|x| + 1000 x^3: the clean side's third difference is the curvature's, far above
    rounding but far below the crossing side's; the entry is one-sided, not excluded."""
    x = np.array([-0.3 * STEP, 0.3 * STEP])
    report = reference.check_function(
        lambda x: np.sum(np.abs(x) + 1e3 * x**3), lambda x: np.sign(x) + 3e3 * x**2, x
    )
    assert report.ok and report.one_sided == 2 and report.excluded == 0, str(report)


@pytest.mark.parametrize("offset", [-1.7, -1.2, -0.8, -0.5, -0.3, 0.3, 0.5, 0.8, 1.2, 1.7])
def test_a_kink_within_two_steps_never_spoils_an_estimate(offset):
    """Each side's bound covers the truth wherever the kink sits relative to the steps."""
    x = np.array([offset * STEP])
    fd = function_fd.function_gradients(lambda x: abs(x[0]), [x], scale=lambda x: 0.0)
    if fd.method[0][0] != function_fd.EXCLUDED:
        assert abs(fd.grads[0][0] - np.sign(offset)) <= fd.errors[0][0] + 1e-12


def test_smooth_functions_show_no_kinks():
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 30.0):
        x = rng.standard_normal(20) * scale
        for f in (
            lambda x: np.sum(np.sin(x) * x),
            lambda x, s=scale: np.log(np.sum(np.exp(x / s))),
        ):
            fd = function_fd.function_gradients(f, [x], scale=lambda x: 0.0)
            assert fd.one_sided == 0 and fd.excluded == 0


def test_a_sum_that_cancels_shows_no_kinks():
    """Terms that cancel round like their size, not like the small sum: the rounding allowed
    for comes from sum |x df/dx| too, or the rounding noise reads as kinks."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.standard_normal(10)
        x = np.concatenate([v, -v * (1 + 1e-9)])
        fd = function_fd.function_gradients(lambda x: np.sum(2 * x), [x], scale=lambda x: 0.0)
        assert fd.one_sided == 0 and fd.excluded == 0
        assert np.all(np.abs(fd.grads[0] - 2) <= fd.errors[0])


# --- the boundary ----------------------------------------------------------------------------


def test_the_callers_arrays_are_never_changed_and_writes_are_reported():
    x = np.array([[1.0, -2.0], [3.0, -4.0]])
    kept = x.copy()

    def relu_backward_in_place(dout, x):
        dout[x <= 0] = 0  # the classic: writes into the upstream gradient
        return dout

    upstream = np.ones_like(x)
    report = reference.check_vjp(
        lambda x: np.maximum(0.0, x), relu_backward_in_place, x, upstream=upstream
    )
    assert np.array_equal(x, kept) and np.array_equal(upstream, np.ones_like(x))
    assert not report.ok
    assert any("vjp_f changed upstream in place" in f for f in report.findings), str(report)


def test_an_exception_names_the_member_and_the_line():
    def grad(x):
        return x / undefined_name  # noqa: F821

    with pytest.raises(ImplementationFailed) as info:
        reference.check_function(lambda x: float(np.sum(x**2)), grad, np.ones(3))
    finding = info.value.finding
    assert finding.member == "grad_f" and finding.where["function"] == "grad"
    assert "undefined_name" in str(info.value)


def test_a_gradient_of_the_wrong_structure_is_named():
    with pytest.raises(ImplementationFailed, match="returned 1 gradients, not 2"):
        reference.check_function(lambda x, y: float(np.sum(x * y)), lambda x, y: [y], np.ones(2),
                                 np.ones(2))  # fmt: skip
    with pytest.raises(ImplementationFailed, match="not one number"):
        reference.check_function(lambda x: x, lambda x: x, np.ones(2))


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: reference.check_function(1, np.sign, np.ones(2)), TypeError, "f must be callable"),
        (lambda: reference.check_function(np.sum, None, np.ones(2)), TypeError, "grad_f"),
        (lambda: reference.check_function(np.sum, np.sign), TypeError, "at least one array"),
        (
            lambda: reference.check_function(np.sum, np.sign, np.ones(2, np.float32)),
            TypeError,
            "arrays[0]",
        ),
        (lambda: reference.check_function(np.sum, np.sign, np.ones(2, int)), TypeError, "int"),
        (
            lambda: reference.check_function(np.sum, np.sign, np.array([1.0, np.nan])),
            ValueError,
            "NaN",
        ),
        (lambda: reference.check_function(np.sum, np.sign, np.ones(2), m=0), ValueError, "m must"),
        (
            lambda: reference.check_function(np.sum, np.sign, np.ones(2), names=["a", "b"]),
            ValueError,
            "names",
        ),
        (
            lambda: reference.check_function(np.sum, np.sign, np.ones(2), batched="yes"),
            TypeError,
            "batched",
        ),
        (
            lambda: reference.check_vjp(np.sin, np.cos, np.ones(2), upstream=np.ones(3)),
            ValueError,
            "upstream has shape (3,)",
        ),
        (lambda: reference.check_vjp(np.sin, np.cos, np.ones(2), seed=1.5), TypeError, "seed"),
    ],
)
def test_bad_input_names_the_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


def test_batched_evaluation_calls_f_far_fewer_times():
    layer = LAYERS["affine"]
    arrays, _ = _fixed_arrays(layer, 0)
    plain = _check(layer, layer.backward, arrays)
    batched = _check(layer, layer.backward, arrays, batched=True)
    assert plain.ok and batched.ok
    assert batched.calls < plain.calls / 10
    assert [a.error_fd for a in batched.arguments] == pytest.approx(
        [a.error_fd for a in plain.arguments], abs=1e-9
    )


def test_a_batched_f_that_ignores_the_batch_is_refused():
    with pytest.raises(ImplementationFailed, match="returned shape"):
        reference.check_vjp(lambda x: np.sum(x, axis=0), lambda u, x: np.ones_like(x) * u,
                            np.ones((2, 3)), batched=True)  # fmt: skip
    with pytest.raises(ImplementationFailed, match="one value per point"):
        reference.check_function(lambda x: np.sum(x), lambda x: np.ones_like(x), np.ones(3),
                                 batched=True)  # fmt: skip


def test_the_report_reads_as_a_table():
    layer = LAYERS["affine"]
    arrays, _ = _fixed_arrays(layer, 0)
    report = _check(layer, MISTAKES["affine: db counted twice"].backward, arrays)
    text = str(report)
    assert text.splitlines()[0].startswith("check_vjp affine_forward / affine_db_doubled")
    assert [line.split()[0] for line in text.splitlines()[2:5]] == ["x", "w", "b"]
    assert report.to_dict()["arguments"][2]["ok"] is False
    worst = report.arguments[2].worst
    assert worst["yours"] == pytest.approx(2 * worst["fd"], rel=1e-6)  # db counted twice
    assert f"worst entry of db at {tuple(worst['index'])}" in text


# --- the strategy ----------------------------------------------------------------------------


@given(function_arguments(("N", "D"), ("D", 2), ("N",), min_side=2, max_side=3, kinks=(0.0,)))
def test_function_arguments_share_named_sizes_and_keep_off_kinks(arrays):
    x, w, v = arrays
    assert x.shape[1] == w.shape[0] and w.shape[1] == 2 and v.shape == (x.shape[0],)
    assert 2 <= x.shape[0] <= 3
    for a in arrays:
        assert a.dtype == np.float64 and (a != 0).all()


@pytest.mark.parametrize(
    "kwargs", [{"min_scale": 2.0, "max_scale": 1.0}, {"margin": 2.0}, {"min_side": -1}]
)
@given(data=st.data())
def test_function_arguments_refuses_bad_ranges(kwargs, data):
    with pytest.raises((InvalidArgument, ValueError, TypeError)):
        data.draw(function_arguments(("N",), **kwargs))


@pytest.mark.parametrize("shapes", [(), ("N",), ((1.5,),)])
@given(data=st.data())
def test_function_arguments_refuses_bad_shapes(shapes, data):
    with pytest.raises(InvalidArgument):
        data.draw(function_arguments(*shapes))
