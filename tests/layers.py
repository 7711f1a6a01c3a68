"""Three layers in the per-layer style of the course assignments (``forward`` returns the
output and a cache, ``backward`` takes the upstream gradient and the cache), and the mistakes
people make in them: what ``tests/test_check_function.py`` and ``benchmarks/functions.py``
check with :func:`reference.check_vjp` and :func:`reference.check_function`.

Samples are rows here (x is (N, D)), as in those assignments. Every forward pass also accepts
a batch of points (a leading axis on every argument): ``batched=True`` in the checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# --- affine: out = x w + b, x (N, D), w (D, M), b (M,) --------------------------------------


def affine_forward(x, w, b):
    out = x @ w + b[..., None, :]
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def affine_dw_transposed(dout, cache):
    x, w, _ = cache
    return dout @ w.T, dout.T @ x, dout.sum(axis=0)


def affine_dx_sign(dout, cache):
    x, w, _ = cache
    return -(dout @ w.T), x.T @ dout, dout.sum(axis=0)


def affine_db_doubled(dout, cache):
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, 2 * dout.sum(axis=0)


def affine_dx_never_computed(dout, cache):
    x, _, _ = cache
    return np.zeros_like(x), x.T @ dout, dout.sum(axis=0)


# --- relu: out = max(0, x) -----------------------------------------------------------------


def relu_forward(x):
    return np.maximum(0.0, x), x


def relu_backward(dout, cache):
    x = cache
    return dout * (x > 0)


def relu_mask_from_upstream(dout, cache):
    """The mask taken from the gradient flowing in instead of the layer's input."""
    return dout * (dout > 0)


def relu_sign(dout, cache):
    x = cache
    return -dout * (x > 0)


def relu_no_mask(dout, cache):
    return dout.copy()


# --- softmax with cross-entropy: L = -(1/N) sum_i log softmax(x_i)[y_i] ----------------------


def softmax_loss(x, y):
    """The loss and dL/dx for scores x (N, C) and integer labels y (N,)."""
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    N = x.shape[-2]
    picked = np.take_along_axis(log_p, np.broadcast_to(y[:, None], (*x.shape[:-1], 1)), axis=-1)
    loss = -picked.sum(axis=(-2, -1)) / N
    onehot = np.eye(x.shape[-1])[y]
    return loss, (np.exp(log_p) - onehot) / N


def softmax_loss_missing_1_over_n(x, y):
    loss, dx = softmax_loss(x, y)
    return loss, dx * x.shape[0]


def softmax_loss_sign(x, y):
    loss, dx = softmax_loss(x, y)
    return loss, -dx


def softmax_loss_elementwise(x, y):
    """dL/dp = -onehot / (N p), then softmax's derivative taken as elementwise: p (1 - p)."""
    loss, _ = softmax_loss(x, y)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(x.shape[1])[y]
    return loss, -onehot / (x.shape[0] * p) * p * (1 - p)


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer as the checks take it.

    ``kind`` is "vjp" (``f(*arrays)`` -> out; ``vjp(dout, *arrays)`` -> one gradient per
    input) or "function" (``f(x, y)`` -> loss; ``grad(x, y)`` -> dL/dx, with the labels y
    not differentiated). ``shapes`` are :func:`reference.inputs.strategies.function_arguments`
    shapes; ``kinks`` the input values where the layer is not differentiable.
    """

    name: str
    kind: str
    forward: Callable
    backward: Callable
    shapes: tuple[tuple[int | str, ...], ...]
    kinks: tuple[float, ...] = ()


LAYERS = {
    "affine": Layer("affine", "vjp", affine_forward, affine_backward,
                    (("N", "D"), ("D", "M"), ("M",))),
    "relu": Layer("relu", "vjp", relu_forward, relu_backward, (("N", "D"),), kinks=(0.0,)),
    "softmax_loss": Layer("softmax_loss", "function", softmax_loss, softmax_loss,
                          (("N", "C"),)),
}  # fmt: skip


@dataclass(frozen=True)
class Mistake:
    """A planted mistake: the layer, the wrong backward pass, and a word its diagnosis must
    hold (what a person should be told)."""

    layer: str
    backward: Callable
    diagnosis: str


MISTAKES = {
    "affine: dw transposed": Mistake("affine", affine_dw_transposed, "transpose"),
    "affine: dx with the wrong sign": Mistake("affine", affine_dx_sign, "sign is flipped"),
    "affine: db counted twice": Mistake("affine", affine_db_doubled, "factor of 2"),
    "affine: dx never computed": Mistake("affine", affine_dx_never_computed, "all zeros"),
    "relu: mask from the upstream gradient": Mistake("relu", relu_mask_from_upstream, "differs"),
    "relu: wrong sign": Mistake("relu", relu_sign, "sign is flipped"),
    "relu: no mask": Mistake("relu", relu_no_mask, "differs"),
    "softmax_loss: missing 1/N": Mistake(
        "softmax_loss", softmax_loss_missing_1_over_n, "= m, the batch size given"
    ),
    "softmax_loss: wrong sign": Mistake("softmax_loss", softmax_loss_sign, "sign is flipped"),
    "softmax_loss: softmax's derivative taken as elementwise": Mistake(
        "softmax_loss", softmax_loss_elementwise, "differs"
    ),
}


def checks_args(
    layer: Layer, backward: Callable, arrays: tuple[np.ndarray, ...], labels: np.ndarray | None
) -> tuple[Callable, Callable, tuple[np.ndarray, ...]]:
    """``(f, gradient, arrays)`` for :func:`reference.check_vjp` (a "vjp" layer) or
    :func:`reference.check_function` (a "function" layer, ``labels`` closed over)."""
    if layer.kind == "vjp":

        @functools.wraps(layer.forward)  # its name, and its parameters' names for the report
        def f(*xs):
            return layer.forward(*xs)[0]

        def vjp(dout, *xs):
            return backward(dout, layer.forward(*xs)[1])

        vjp.__qualname__ = getattr(backward, "__name__", "backward")
        return f, vjp, arrays

    def loss(x):
        return layer.forward(x, labels)[0]

    def grad(x):
        return backward(x, labels)[1]

    loss.__qualname__ = f"{layer.name}"
    grad.__qualname__ = getattr(backward, "__name__", "grad")
    return loss, grad, arrays
