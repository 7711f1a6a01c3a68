"""The oracles: finite differences and the JAX model, against each other, against an outside
autodiff system (HIPS autograd), at kinks, and on bad input."""

import itertools

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given

import backprop
from reference.boundary.loading import ImplementationError, load_impl
from reference.inputs.problems import Problem, random_problem
from reference.inputs.strategies import architectures, problems
from reference.oracles import finite_diff
from reference.oracles.finite_diff import STEP, directional_gradients, numerical_gradients
from reference.oracles.jax_model import MissingTwinError, jax_gradients, jax_model

TINY = np.finfo(np.float64).tiny


def autograd_loss(flat_params, X, Y, activations, cost):
    """The network once more, in autograd.numpy, for an outside opinion."""
    acts = {
        "sigmoid": lambda z: 1 / (1 + anp.exp(-z)),
        "tanh": anp.tanh,
        "relu": lambda z: anp.where(z >= 0, z, 0.0),
        "leaky_relu": lambda z: anp.where(z >= 0, z, 0.01 * z),
        "identity": lambda z: z,
        "softmax": lambda z: anp.exp(z - log_sum_exp(z)),
    }
    A, Z = X, None
    for (W, b), name in zip(flat_params, activations):
        Z = anp.dot(W, A) + b
        A = acts[name](Z)
    m = X.shape[1]
    if cost == "mse":
        return anp.sum((A - Y) ** 2) / (2 * m)
    if cost == "cce":  # on the softmax's logits
        return -anp.sum(Y * (Z - log_sum_exp(Z))) / m
    return anp.sum(anp.logaddexp(0.0, Z) - Y * Z) / m  # bce on the sigmoid's logits


def log_sum_exp(z):
    """log sum_k e^{z_k} over each column, shifted by the column's largest z."""
    c = anp.max(z, axis=0, keepdims=True)
    return c + anp.log(anp.sum(anp.exp(z - c), axis=0, keepdims=True))


def rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), TINY)


moderate = problems(
    min_scale=0.1, max_scale=2.0, architecture=architectures(max_depth=4, max_width=5)
)


@given(p=moderate)
def test_both_oracles_agree_with_autograd(p):
    want = autograd.grad(autograd_loss)(
        [(W, b) for W, b in p.params], p.X, p.Y, p.activations, p.cost
    )
    jax_result = jax_model(p.params, p.X, p.Y, **p.kwargs())
    fd = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    for l, (w, j, n, e, r) in enumerate(
        zip(want, jax_result.grads, fd.grads, fd.errors, jax_result.rounding)
    ):
        for k in range(2):
            denom = max(np.linalg.norm(w[k]) + np.linalg.norm(j[k]), TINY)
            assert rel(j[k], w[k]) <= max(1e-12, 4 * np.linalg.norm(r[k]) / denom), (l, k)
            assert rel(n[k], w[k]) <= max(1e-8, 10 * np.linalg.norm(e[k]) / denom), (l, k)


@pytest.mark.parametrize("size", ["padded", "exact"])
def test_the_jax_model_is_float64_and_leaves_the_process_setting_alone(size):
    """jax_enable_x64 is on only inside the oracle's own calls: with the process's flag off,
    results are float64 NumPy (float32 would miss backprop by ~1e-7, not ~1e-15) and the flag
    is still off after."""
    import jax

    rng = np.random.default_rng(0)
    width = 4 if size == "padded" else 70  # beyond the padded buckets: the per-shape path
    p = random_problem(rng, depth=(2, 2), width=(width, width), samples=(3, 3))
    before = jax.config.jax_enable_x64  # JAX_ENABLE_X64=1 in the environment turns it on
    jax.config.update("jax_enable_x64", False)
    try:
        result = jax_model(p.params, p.X, p.Y, **p.kwargs())
        assert jax.config.jax_enable_x64 is False
    finally:
        jax.config.update("jax_enable_x64", before)
    want = backprop.gradients(p.params, p.X, p.Y, **p.kwargs())
    for pair in result.grads + result.rounding:
        for got in pair:
            assert type(got) is np.ndarray and got.dtype == np.float64
    for (jW, jb), (W, b) in zip(result.grads, want):
        assert rel(jW, W) <= 1e-12 and rel(jb, b) <= 1e-12
    assert result.loss == pytest.approx(backprop.loss(p.params, p.X, p.Y, **p.kwargs()), rel=1e-12)


@given(p=moderate)
def test_fd_error_estimates_hold_entry_by_entry(p):
    """The per-entry error bound is honest: the estimate is within it of the JAX value."""
    fd = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    _, ref = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    for (nW, nb), (eW, eb), (jW, jb) in zip(fd.grads, fd.errors, ref):
        for n, e, j in ((nW, eW, jW), (nb, eb, jb)):
            # 1e-300: XLA flushes subnormal results to zero, NumPy does not
            assert np.all(np.abs(n - j) <= 10 * e + 1e-12 * np.abs(j) + 1e-300)


def test_fd_of_the_formulas_and_of_calls_agree():
    rng = np.random.default_rng(0)
    p = Problem(
        backprop.init_params([3, 4, 2], seed=1),
        rng.normal(size=(3, 5)),
        rng.uniform(size=(2, 5)),
        ["tanh", "sigmoid"],
        "bce",
    )
    batched = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), method="model")
    calls = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), method="calls")
    auto = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    assert "batched" in auto.source and "entry by entry" in calls.source
    for (a, b), (c, d) in zip(batched.grads, calls.grads):
        assert rel(a, c) < 1e-8 and rel(b, d) < 1e-8


class HalfLoss:
    """An implementation whose loss is not the formulas' (half of it): finite differences
    must call it rather than let the batched model stand in."""

    gradients = staticmethod(backprop.gradients)

    @staticmethod
    def loss(*args, **kwargs):
        return 0.5 * backprop.loss(*args, **kwargs)


def test_auto_falls_back_to_calls_when_the_loss_is_not_the_formulas():
    p = Problem(
        backprop.init_params([2, 2, 1], seed=0),
        np.ones((2, 3)),
        np.zeros((1, 3)),
        ["tanh", "sigmoid"],
        "mse",
    )
    fd = numerical_gradients(HalfLoss, p.params, p.X, p.Y, **p.kwargs())
    _, ref = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    assert "entry by entry" in fd.source
    assert rel(fd.grads[0][0], 0.5 * ref[0][0]) < 1e-8  # the derivative of *its* loss


def kinked_problem(z_offset):
    """One relu unit whose pre-activation for sample 0 is exactly z_offset."""
    W1 = np.array([[1.0, -1.0]])
    X = np.array([[0.5, 1.0, -2.0], [0.5, 0.0, 1.0]])
    b1 = np.array([[z_offset]])  # Z^1 = W X + b: sample 0 gives z_offset exactly
    W2, b2 = np.array([[1.5]]), np.array([[0.2]])
    return Problem([(W1, b1), (W2, b2)], X, np.array([[1.0, 0.0, 1.0]]), ["relu", "sigmoid"], "bce")


@pytest.mark.parametrize("z_offset", [0.0, 1e-9, -1e-9, 3e-6])
def test_kinks_are_handled_not_reported(z_offset):
    p = kinked_problem(z_offset)
    fd = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    methods = np.concatenate([m.ravel() for pair in fd.method for m in pair])
    assert (methods != finite_diff.CENTRAL).any(), "the kink went unnoticed"
    from reference import check_gradients

    report = check_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    assert report.ok, report.render()


def test_one_sided_estimates_follow_the_seed_convention_at_zero():
    """At Z = 0 exactly, mask(theta) is 'active' (relu'(0) = 1): the difference is taken on
    the side that stays active, so the estimate is the seed's derivative, JAX's twin agrees."""
    p = kinked_problem(0.0)
    fd = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs())
    _, ref = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    valid = np.isfinite(fd.grads[0][1])
    np.testing.assert_allclose(fd.grads[0][1][valid], ref[0][1][valid], rtol=1e-6)


@pytest.mark.parametrize(
    ("z_offset", "side"), [(-1e-9, finite_diff.BACKWARD), (1e-9, finite_diff.FORWARD)]
)
@pytest.mark.parametrize("method", ["model", "calls"])
def test_one_sided_estimates_are_the_derivative_on_the_unflipped_side(z_offset, side, method):
    """b^1 sits 1e-9 from relu's kink: the step towards it flips the mask, so the estimate is
    one-sided on the other side (the backward one needs the step -2h, taken only then)."""
    p = kinked_problem(z_offset)
    fd = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), method=method)
    _, ref = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    estimate, bound, truth = fd.grads[0][1].item(), fd.errors[0][1].item(), ref[0][1].item()
    assert fd.method[0][1].item() == side
    assert abs(estimate - truth) <= bound < 1e-5 * abs(truth)  # one-sided: an O(h) bound


@pytest.mark.parametrize(("impl", "factor"), [(backprop, 1.0), (HalfLoss, 0.5)])
@pytest.mark.parametrize("z_offset", [-1e-9, 1e-9, -1.5 * STEP, 1.5 * STEP])
def test_directional_estimates_stay_off_the_kink(impl, factor, z_offset):
    """Along any direction in b^1 (a single entry: d = +1 or -1) one side of the steps crosses
    relu's kink; the estimate is one-sided, on the model (backprop) and on calls of a loss the
    model cannot stand in for (HalfLoss), where the model still locates the kinks. At 1.5 h
    from the kink only the 2h step on one side crosses it."""
    p = kinked_problem(z_offset)
    fd = directional_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), directions=3)
    _, ref = jax_gradients(p.params, p.X, p.Y, **p.kwargs())
    d, value, bound = fd.directions[0][1], fd.values[0][1], fd.errors[0][1]
    truth = factor * np.sum(d * ref[0][1], axis=(1, 2))
    assert np.all(np.abs(value - truth) <= bound) and np.all(bound < 1e-5 * np.abs(truth))


def test_a_real_bug_next_to_a_kink_is_still_caught():
    from reference import check_gradients
    from reference.bugs import CATALOG

    p = kinked_problem(0.0)
    report = check_gradients(CATALOG["sign_flipped"], p.params, p.X, p.Y, **p.kwargs())
    assert not report.ok and "-1" in report.summary


def test_float32_is_refused_by_name():
    params = [(np.ones((1, 2), np.float32), np.zeros((1, 1)))]
    with pytest.raises(TypeError, match=r"layer 1: W is float32; finite differences need float64"):
        numerical_gradients(
            backprop, params, np.ones((2, 2)), np.ones((1, 2)), activations=["tanh"], cost="mse"
        )


def test_missing_numpy_twin_for_the_formulas_names_the_activation(monkeypatch):
    softsign = backprop.Activation(lambda z: z / (1 + abs(z)), lambda z, a: 1 / (1 + abs(z)) ** 2)
    monkeypatch.setitem(backprop.ACTIVATIONS, "softsign", softsign)
    params = backprop.init_params([2, 1], seed=0)
    with pytest.raises(MissingTwinError, match=r"^no NumPy twin for \['softsign'\]: add it to"):
        numerical_gradients(backprop, params, np.ones((2, 2)), np.ones((1, 2)),
                            activations=["softsign"], cost="mse", method="model")  # fmt: skip


def test_missing_jax_twin_says_what_to_add(monkeypatch):
    monkeypatch.setitem(
        backprop.ACTIVATIONS,
        "softsign",
        backprop.Activation(lambda z: z / (1 + abs(z)), lambda z, a: 1 / (1 + abs(z)) ** 2),
    )
    params = backprop.init_params([2, 1], seed=0)
    with pytest.raises(
        MissingTwinError,
        match=r"activation 'softsign' has no JAX twin.*ACTIVATION_SPECS in reference/formulas/specs.py.*reference\.register_activation",
    ):
        jax_gradients(
            params, np.ones((2, 2)), np.ones((1, 2)), activations=["softsign"], cost="mse"
        )
    from reference import check_gradients

    report = check_gradients(
        backprop, params, np.ones((2, 2)), np.ones((1, 2)), activations=["softsign"], cost="mse"
    )
    assert report.ok and any("no JAX comparison" in n for n in report.notes)
    assert "entry by entry" in report.fd_source


def test_wide_networks_take_the_unpadded_path_and_agree():
    params = backprop.init_params([70, 3, 1], seed=0)
    X = np.random.default_rng(0).normal(size=(70, 4))
    Y = np.zeros((1, 4))
    _, grads = jax_gradients(params, X, Y, activations=["relu", "sigmoid"], cost="bce")
    want = backprop.gradients(params, X, Y, activations=["relu", "sigmoid"], cost="bce")
    assert all(rel(a, b) < 1e-13 for g, w in zip(grads, want) for a, b in zip(g, w))


@pytest.mark.parametrize("name", ["X", "Y", "layer 1: b"])
def test_float32_data_is_refused_by_name(name):
    ((W, b),) = backprop.init_params([2, 1], seed=0)
    data = {"X": np.ones((2, 2)), "Y": np.ones((1, 2)), "layer 1: b": b}
    data[name] = data[name].astype(np.float32)
    with pytest.raises(TypeError, match=rf"^{name} is float32; finite differences need float64"):
        numerical_gradients(backprop, [(W, data["layer 1: b"])], data["X"], data["Y"],
                            activations=["tanh"], cost="mse")  # fmt: skip


def test_near_kink_may_be_given_as_zeros_and_ones():
    """``near_kink`` as 0/1 integers marks the same entries as booleans do; and the batched
    path says how closely the implementation's loss matched the formulas (within 1 allowance)."""
    from rounding_problems import within_rounding_of_the_kink

    p = within_rounding_of_the_kink()
    near = jax_model(p.params, p.X, p.Y, **p.kwargs()).near_kink
    flags = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), near_kink=near)
    ones = [n.astype(int) for n in near]
    counts = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), near_kink=ones)
    assert any((m == finite_diff.EXCLUDED).any() for pair in flags.method for m in pair)
    for a, b in zip(
        flags.grads + flags.errors + flags.method, counts.grads + counts.errors + counts.method
    ):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert 0.0 <= flags.details["loss_model_difference"] <= 1.0


def test_each_entrys_estimate_and_bound_depend_on_its_own_losses_only():
    """``combine`` works entry by entry: a neighbour whose loss moves a million times more
    changes neither the estimate nor the error bound of a small entry."""
    h = np.array([1e-5, 1e-5])
    steps = np.array(finite_diff.FACTORS)[:, None] * h  # +h, -h, +2h, -2h
    dJ = steps * np.array([1e6, 1e-3]) + steps**2 * np.array([3.0, 0.5])
    flipped = np.zeros_like(dJ, dtype=bool)
    both = finite_diff.combine(dJ, flipped, h, 1e-16)
    alone = finite_diff.combine(dJ[:, 1:], flipped[:, 1:], h[1:], 1e-16)
    for pair, single in zip(both, alone):
        np.testing.assert_array_equal(pair[1:], single)


@pytest.mark.parametrize(("chunk", "workers"), [(5, 1), (5, 2), (40, 2)])
def test_the_finite_differences_do_not_depend_on_how_they_are_chunked(monkeypatch, chunk, workers):
    """The perturbations go through in chunks of ``_CHUNK_ELEMENTS`` activations, spread over
    ``_WORKERS`` threads: chunks smaller than one row's perturbations (split), a few rows to a
    chunk (merged), one thread or two, the differences are the same numbers."""
    rng = np.random.default_rng(1)
    sizes = [6, 4, 3, 2]
    params = [
        (rng.normal(size=(n, k)), rng.normal(size=(n, 1))) for k, n in itertools.pairwise(sizes)
    ]
    p = Problem(params, rng.normal(size=(6, 3)), rng.uniform(size=(2, 3)),
                ["tanh", "tanh", "sigmoid"], "mse")  # fmt: skip
    whole = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), method="model")
    # about `chunk` perturbations to a chunk: fewer than layer 1's fan-in of 6 where chunk = 5
    monkeypatch.setattr(finite_diff, "_CHUNK_ELEMENTS", chunk * 3 * p.m)
    monkeypatch.setattr(finite_diff, "_WORKERS", workers)
    split = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), method="model")
    for l in range(len(p.params)):
        for k in range(2):
            np.testing.assert_array_equal(split.grads[l][k], whole.grads[l][k])
            np.testing.assert_array_equal(split.errors[l][k], whole.errors[l][k])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_anywhere", r"cannot import module 'no_such_module_anywhere'"),
        ("backprop:nothing_here", r"module 'backprop' has no attribute 'nothing_here'"),
        ("backprop:", r"write package.module or package.module:object"),
        ("reference.bugs.base", r"has no callable 'loss' or 'gradients'"),
    ],
)
def test_load_impl_errors_name_the_problem(spec, message):
    with pytest.raises(ImplementationError, match=message):
        load_impl(spec)


def test_load_impl_finds_modules_and_objects():
    assert load_impl("backprop") is backprop
    assert load_impl("reference.bugs:dW2_times_2").name == "dW2_times_2"
    assert load_impl(backprop) is backprop


@pytest.mark.parametrize("cost", ["mse", "cce"])
@pytest.mark.parametrize("width", [3, 70])
def test_softmax_output_in_both_oracles(cost, width):
    """A softmax output normalises each column: the JAX model's padded path (small networks)
    and its exact path (wide ones) must not let padded units into the sum, and a finite
    difference of one logit moves every output of its column. Both against autograd."""
    rng = np.random.default_rng(3)
    sizes = [3, width, 4]
    params = [(rng.normal(0, 1 / np.sqrt(p), (n, p)), rng.normal(0, 0.5, (n, 1)))
              for p, n in itertools.pairwise(sizes)]  # fmt: skip
    X, Y = rng.normal(size=(3, 5)), np.eye(4)[:, [0, 3, 1, 3, 2]]
    acts = ["tanh", "softmax"]
    want = autograd.grad(autograd_loss)(params, X, Y, acts, cost)
    result = jax_model(params, X, Y, activations=acts, cost=cost)
    fd = numerical_gradients(backprop, params, X, Y, activations=acts, cost=cost, method="model")
    for w, j, n in zip(want, result.grads, fd.grads):
        for k in range(2):
            assert rel(j[k], w[k]) <= 1e-12
            assert rel(n[k], w[k]) <= 1e-8
