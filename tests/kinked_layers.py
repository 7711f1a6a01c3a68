"""Course-style layers with kinks, ties and tiny constants, for :func:`reference.check_vjp`
and :func:`reference.check_function`: what ``tests/test_kinks.py`` and
``benchmarks/functions.py`` check.

Samples are rows (x is (N, D)), as in the per-layer assignments: ``forward`` returns the
output and a cache, ``backward(dout, cache)`` the gradients; a loss takes integer labels and
returns (loss, dx). Beside each correct backward pass, the mistakes that hide at a kink (a
term left out where every row sits on a margin, every tied maximum given the full gradient)
or below a fixed bound (layernorm's epsilon left out of the std), and the constant factors
that a diagnosis has to name as constants of the layer, not of a network's cost.

``POINTS`` makes each layer's inputs of a kind: exactly on its kinks, a fraction of a step
next to them, or with entries near 1e4 or near 1e-4. ``CORRECT`` pairs every layer with
every kind of point: the sweep of correct cases that must raise no alarm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from layers import checks_args

from reference.oracles.finite_diff import STEP

# --- the multiclass SVM (hinge) loss: L = (1/N) sum_i sum_{j != y_i} max(0, x_ij - x_iy + 1) ---


def svm_loss(x, y):
    """Scores x (N, C), labels y (N,): the loss and dL/dx (a margin of exactly 0 counts as
    inactive, the subgradient 0 of that term)."""
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0.0, x - x[rows, y][:, None] + 1.0)
    margins[rows, y] = 0.0
    active = (margins > 0).astype(np.float64)
    active[rows, y] = -active.sum(axis=1)
    return margins.sum() / N, active / N


def svm_loss_without_correct_class(x, y):
    """The correct class's term left out: dL/dx_iy stays 0 instead of -(active margins)/N."""
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0.0, x - x[rows, y][:, None] + 1.0)
    margins[rows, y] = 0.0
    return margins.sum() / N, (margins > 0) / N


# --- max-pooling over 2x2 windows, stride 2: x (N, H, W) -> (N, H/2, W/2) ---------------------


def _windows(x):
    N, H, W = x.shape
    return x.reshape(N, H // 2, 2, W // 2, 2).transpose(0, 1, 3, 2, 4).reshape(N, H // 2, W // 2, 4)


def _unwindow(g, shape):
    N, H, W = shape
    return g.reshape(N, H // 2, W // 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(N, H, W)


def max_pool_forward(x):
    return _windows(x).max(axis=-1), x


def max_pool_backward(dout, cache):
    """The upstream gradient to the first maximum of each window (np.argmax's choice)."""
    x = cache
    w = _windows(x)
    route = np.zeros_like(w)
    np.put_along_axis(route, np.argmax(w, axis=-1)[..., None], 1.0, axis=-1)
    return _unwindow(route * dout[..., None], x.shape)


def max_pool_backward_shared(dout, cache):
    """The upstream gradient shared equally among a window's tied maxima."""
    x = cache
    w = _windows(x)
    tied = (w == w.max(axis=-1, keepdims=True)).astype(np.float64)
    return _unwindow(tied / tied.sum(axis=-1, keepdims=True) * dout[..., None], x.shape)


def max_pool_backward_to_every_tie(dout, cache):
    """The classic mask ``x == max``: every tied maximum gets the full upstream gradient."""
    x = cache
    w = _windows(x)
    return _unwindow((w == w.max(axis=-1, keepdims=True)) * dout[..., None], x.shape)


# --- max-pooling over overlapping windows of 3, stride 1, along the last axis: x (N, D) ---------


def overlapping_pool_forward(x):
    D = x.shape[-1]
    return np.stack([x[..., i : i + 3].max(axis=-1) for i in range(D - 2)], axis=-1), x


def overlapping_pool_backward(dout, cache):
    """Each window's upstream gradient to its first maximum; an entry tied in several
    windows collects from each window that chose it."""
    x = cache
    dx = np.zeros_like(x)
    rows = np.arange(x.shape[0])
    for i in range(x.shape[-1] - 2):
        np.add.at(dx, (rows, i + np.argmax(x[:, i : i + 3], axis=-1)), dout[:, i])
    return dx


def _overlap(rng, point):
    return (_near(rng, (3, 7), point) if point != "on" else
            rng.integers(-1, 2, size=(3, 7)).astype(np.float64),), None  # fmt: skip


# --- leaky relu (slope 0.01) and hardtanh (clip to [-1, 1]) --------------------------------------


def leaky_relu_forward(x):
    return np.where(x > 0, x, 0.01 * x), x


def leaky_relu_backward(dout, cache):
    return dout * np.where(cache > 0, 1.0, 0.01)


def hardtanh_forward(x):
    return np.clip(x, -1.0, 1.0), x


def hardtanh_backward(dout, cache):
    return dout * ((cache > -1.0) & (cache < 1.0))


def relu_forward(x):
    return np.maximum(0.0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


# --- L1 loss: L = (1/N) sum |x - t| ----------------------------------------------------------


def l1_loss(x, t):
    """Predictions x (N, D), targets t (N, D), closed over like labels."""
    return np.abs(x - t).sum() / x.shape[0], np.sign(x - t) / x.shape[0]


# --- layer normalisation over the last axis: x (N, D), gamma, beta (D,) ---------------------

LN_EPS = 1e-5


def layernorm_forward(x, gamma, beta):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    std = np.sqrt((xc**2).mean(axis=-1, keepdims=True) + LN_EPS)
    xhat = xc / std
    return gamma * xhat + beta, (xhat, std, gamma)


def layernorm_backward(dout, cache):
    xhat, std, gamma = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / std  # fmt: skip
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def layernorm_backward_without_eps(dout, cache):
    """The std recomputed without its epsilon: off by about eps / (2 var), near 1e-6."""
    xhat, std, gamma = cache
    xc = xhat * std
    bare = np.sqrt((xc**2).mean(axis=-1, keepdims=True))
    xhat_bare = xc / bare
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - xhat_bare * (dxhat * xhat_bare).mean(axis=-1, keepdims=True)) / bare  # fmt: skip
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


# --- one attention head: softmax(q k^T / sqrt(d)) v, q (T, d), k (S, d), v (S, e) -------------


def attention_forward(q, k, v):
    d = q.shape[-1]
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v, (q, k, v, p)


def attention_backward(dout, cache):
    q, k, v, p = cache
    d = q.shape[-1]
    dp = dout @ v.T
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / np.sqrt(d)
    return ds @ k, ds.T @ q, p.T @ dout


def attention_backward_without_scale(dout, cache):
    """The 1/sqrt(d) of the scores left out of the backward pass."""
    q, k, v, p = cache
    dp = dout @ v.T
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return ds @ k, ds.T @ q, p.T @ dout


# --- centring over the batch: out = x - mean over the rows ------------------------------------


def centre_forward(x):
    return x - x.mean(axis=-2, keepdims=True), x


def centre_backward(dout, cache):
    return dout - dout.mean(axis=-2, keepdims=True)


def centre_backward_extra_mean(dout, cache):
    """A /N too many inside the layer: the whole gradient divided by the batch size."""
    return (dout - dout.mean(axis=-2, keepdims=True)) / dout.shape[-2]


# --- a layer with two outputs of different shapes: (x w, row sums of x w) ----------------------


def two_outputs_forward(x, w):
    out = x @ w
    return (out, out.sum(axis=-1)), (x, w)


def two_outputs_backward(douts, cache):
    dout, dsum = douts
    x, w = cache
    g = dout + dsum[..., None]
    return g @ w.T, x.T @ g


def two_outputs_backward_ignores_second(douts, cache):
    dout, _ = douts
    x, w = cache
    return dout @ w.T, x.T @ dout


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer as the checks take it: ``kind`` "vjp" (forward(*arrays) -> (out, cache)) or
    "function" (forward(x, labels) -> (loss, dx)); ``make(rng, point)`` its arrays (and
    labels, or None) at a point of the kind ``point`` (see :data:`POINTS`)."""

    name: str
    kind: str
    forward: Callable
    backward: Callable
    make: Callable
    kinked: bool = True
    """Whether its "on" point puts entries on a kink (False: a smooth layer)."""


def _near(rng, shape, point, kinks=(0.0,)):
    """Values of the kind ``point`` around the layer's kinks."""
    if point == "on":  # integers and ties: many entries exactly on a kink
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if point == "next":  # a fraction of a step beside a kink
        base = rng.choice(np.array(kinks), size=shape)
        return base + rng.choice([-1, 1], size=shape) * rng.uniform(0.2, 1.8, size=shape) * STEP
    if point == "large":  # near 1e4, spread about 1
        return 1e4 + rng.standard_normal(shape)
    if point == "small":  # within a few steps of 0
        return 1e-4 * rng.standard_normal(shape)
    return rng.standard_normal(shape)  # "plain"


def _svm(rng, point):
    y = rng.integers(0, 3, size=4)
    if point != "on":
        return (_near(rng, (4, 3), point, kinks=(-1.0, 0.0, 1.0)),), y
    # integer scores: in every row one wrong class exactly on its margin (x_ij = x_iy - 1)
    # and one beyond it, so the correct class's entry sits on a kink with one active term
    x = np.zeros((4, 3))
    for i, label in enumerate(y):
        wrong = [j for j in range(3) if j != label]
        x[i, label] = rng.integers(-2, 3)
        x[i, wrong[0]] = x[i, label] - 1
        x[i, wrong[1]] = x[i, label] + rng.integers(0, 2)
    return (x,), y


def _pool(rng, point):
    x = _near(rng, (2, 4, 4), point)
    if point == "on":
        x = np.maximum(0.0, x)  # windows of zeros after a relu, and ties of 1 and 2
    return (x,), None


def _elementwise(kinks):
    def make(rng, point):
        return (_near(rng, (3, 4), point, kinks),), None

    return make


def _l1(rng, point):
    t = rng.integers(-2, 3, size=(3, 4)).astype(np.float64)
    x = t + (_near(rng, (3, 4), point) if point != "large" else rng.standard_normal((3, 4)))
    if point == "large":
        x, t = x + 1e4, t + 1e4
    return (x,), t


def _layernorm(rng, point):
    x = _near(rng, (3, 5), point)
    if point == "on":
        x[0] = 0.5  # a constant row: its variance is 0, and only the epsilon keeps it finite
    return (x, 1 + 0.1 * rng.standard_normal(5), 0.1 * rng.standard_normal(5)), None


def _attention(rng, point):
    scale = {"large": 1e2, "small": 1e-4}.get(point, 1.0)  # 1e4 scores would saturate
    q, k = scale * rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    if point == "on":
        k[1] = k[0]  # tied scores
    return (q, k, rng.standard_normal((5, 2))), None


def _two(rng, point):
    x = _near(rng, (3, 4), point)
    return (x, rng.standard_normal((4, 2))), None


LAYERS = {
    "svm_loss": Layer("svm_loss", "function", svm_loss, svm_loss, _svm),
    "max_pool": Layer("max_pool", "vjp", max_pool_forward, max_pool_backward, _pool),
    "max_pool shared": Layer("max_pool shared", "vjp", max_pool_forward,
                             max_pool_backward_shared, _pool),
    "overlapping pool": Layer("overlapping pool", "vjp", overlapping_pool_forward,
                              overlapping_pool_backward, _overlap),
    "relu": Layer("relu", "vjp", relu_forward, relu_backward, _elementwise((0.0,))),
    "leaky_relu": Layer("leaky_relu", "vjp", leaky_relu_forward, leaky_relu_backward,
                        _elementwise((0.0,))),
    "hardtanh": Layer("hardtanh", "vjp", hardtanh_forward, hardtanh_backward,
                      _elementwise((-1.0, 1.0))),
    "l1_loss": Layer("l1_loss", "function", l1_loss, l1_loss, _l1),
    "layernorm": Layer("layernorm", "vjp", layernorm_forward, layernorm_backward, _layernorm,
                       kinked=False),
    "attention": Layer("attention", "vjp", attention_forward, attention_backward, _attention,
                       kinked=False),
    "centre": Layer("centre", "vjp", centre_forward, centre_backward, _elementwise((0.0,)),
                    kinked=False),
    "two outputs": Layer("two outputs", "vjp", two_outputs_forward, two_outputs_backward, _two,
                         kinked=False),
}  # fmt: skip

POINTS = ("on", "next", "large", "small", "plain")
"""The kinds of point every layer is checked at."""


@dataclass(frozen=True)
class Case:
    """One check: a layer, a backward pass (its own or a mistaken one), a kind of point and a
    seed; ``wrong`` whether the backward pass is mistaken, ``says`` words its diagnosis
    must hold."""

    layer: str
    backward: Callable
    point: str
    seed: int
    wrong: bool = False
    says: str = ""

    @property
    def label(self) -> str:
        name = self.layer if not self.wrong else f"{self.layer}: {self.backward.__name__}"
        return f"{name} at {self.point} #{self.seed}"


def correct_cases(seeds: int = 1) -> list[Case]:
    """Every layer's own backward pass at every kind of point: none may fail."""
    return [
        Case(name, layer.backward, point, seed)
        for seed in range(seeds)
        for point in POINTS
        for name, layer in LAYERS.items()
    ]


MISTAKES = {
    "svm_loss without the correct class's term": Case(
        "svm_loss", svm_loss_without_correct_class, "on", 0, True, "outside the interval"),
    "max_pool to every tied maximum": Case(
        "max_pool", max_pool_backward_to_every_tie, "on", 0, True,
        "every tied maximum got the full gradient"),
    "layernorm without its epsilon in the std": Case(
        "layernorm", layernorm_backward_without_eps, "plain", 0, True, "differs"),
    "attention without its 1/sqrt(d)": Case(
        "attention", attention_backward_without_scale, "next", 0, True,
        "a constant factor inside this function"),
    "centre: a /N too many": Case(
        "centre", centre_backward_extra_mean, "next", 0, True,
        "a constant factor inside this function"),
    "two outputs: the second one ignored": Case(
        "two outputs", two_outputs_backward_ignores_second, "next", 0, True, "differs"),
}  # fmt: skip
"""The mistakes of this file, each at a point where it shows; the first three passed before
kinks were judged and the bound lost its fixed floor."""


def arguments(case: Case) -> tuple[Callable, Callable, tuple[np.ndarray, ...], str]:
    """``(f, gradient, arrays, entry)`` for the case: ``entry`` "check_vjp" or
    "check_function", the labels or targets of a loss closed over."""
    layer = LAYERS[case.layer]
    rng = np.random.default_rng([POINTS.index(case.point), case.seed, len(case.layer)])
    arrays, labels = layer.make(rng, case.point)
    f, gradient, arrays = checks_args(layer, case.backward, arrays, labels)
    return f, gradient, arrays, "check_vjp" if layer.kind == "vjp" else "check_function"
