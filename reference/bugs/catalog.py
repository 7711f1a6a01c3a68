"""The mistakes people make when they write backprop by hand, each planted in ``Correct``.

Every class replaces one step of :class:`~reference.bugs.base.Correct`; its
docstring says the mistake as a student would make it and shows the line that
differs (``-`` the right line, ``+`` the mistaken one). ``blame`` says where the
checker must point, ``caught_by`` which checks must catch it.
"""

from __future__ import annotations

import numpy as np

from .base import LEAKY_SLOPE, Correct, sigmoid


class MissingTranspose(Correct):
    """The hidden delta multiplies by W^{l+1} instead of its transpose.

    Section 11's shorthand writes "w^{L+1} x dJ/dz^{L+1}"; taken literally it
    fails on a non-square layer (a shape error) and is silently wrong on a
    square one::

        - dZ = (W_next.T @ dZ_next) * g'(Z)
        + dZ = (W_next @ dZ_next) * g'(Z)
    """

    name = "missing_transpose"
    blame = ("L-1", "delta")
    caught_by = ("fd", "jax")

    def hidden_delta(self, W_next, dZ_next, dW_next, Z, A, name):
        return (W_next @ dZ_next) * self.act_grad(name, Z, A)


class SigmoidGradOfZ(Correct):
    """sigma'(z) computed as z (1 - z): the formula g (1 - g) applied to the wrong variable::

    - return a * (1 - a)
    + return z * (1 - z)
    """

    name = "sigmoid_grad_of_z"
    caught_by = ("fd", "jax")

    def act_grad(self, name, z, a):
        return z * (1 - z) if name == "sigmoid" else super().act_grad(name, z, a)


class TanhGradWrongCache(Correct):
    """tanh' read from the wrong cache: 1 - Z^2 instead of 1 - A^2::

    - return 1 - a**2
    + return 1 - z**2
    """

    name = "tanh_grad_wrong_cache"
    caught_by = ("fd", "jax")

    def act_grad(self, name, z, a):
        return 1 - z**2 if name == "tanh" else super().act_grad(name, z, a)


class ReluMaskFromA(Correct):
    """The relu mask taken from A with >=: A = relu(Z) is never negative, so the mask is all ones::

    - return (z >= 0).astype(float)
    + return (a >= 0).astype(float)
    """

    name = "relu_mask_from_a"
    caught_by = ("fd", "jax")

    def act_grad(self, name, z, a):
        return (a >= 0).astype(float) if name == "relu" else super().act_grad(name, z, a)


class DeltaUsesDW(Correct):
    """The wrong matrix in the hidden delta: the layer above's dW instead of its weights W::

    - dZ = (W_next.T @ dZ_next) * g'(Z)
    + dZ = (dW_next.T @ dZ_next) * g'(Z)
    """

    name = "delta_uses_dW"
    blame = ("L-1", "delta")
    caught_by = ("fd", "jax")

    def hidden_delta(self, W_next, dZ_next, dW_next, Z, A, name):
        return (dW_next.T @ dZ_next) * self.act_grad(name, Z, A)


class DeltaSkipsW(Correct):
    """W^T skipped in the hidden delta, as if the layers were connected one to one::

    - dZ = (W_next.T @ dZ_next) * g'(Z)
    + dZ = dZ_next.sum(axis=0) * g'(Z)
    """

    name = "delta_skips_W"
    blame = ("L-1", "delta")
    caught_by = ("fd", "jax")

    def hidden_delta(self, W_next, dZ_next, dW_next, Z, A, name):
        return dZ_next.sum(axis=0, keepdims=True) * self.act_grad(name, Z, A)


class MissingOneOverM(Correct):
    """The 1/m of the cost left out of the output delta (the gradient of the sum, not the mean)::

    - return (A - Y) / m
    + return (A - Y)
    """

    name = "missing_1_over_m"
    blame = ("L", "delta")
    caught_by = ("fd", "jax", "batch mean")

    def output_delta(self, cost, Z, A, Y, out):
        return super().output_delta(cost, Z, A, Y, out) * Y.shape[1]


class DoubleOneOverM(Correct):
    """The 1/m applied twice: once in the output delta and again in every dW and db::

    - dW = dZ @ A_prev.T
    + dW = dZ @ A_prev.T / m
    """

    name = "double_1_over_m"
    blame = ("L", "delta")
    caught_by = ("fd", "jax", "batch mean")

    def weight_grad(self, dZ, As, l):
        return super().weight_grad(dZ, As, l) / dZ.shape[1]

    def bias_grad(self, dZ):
        return super().bias_grad(dZ) / dZ.shape[1]


class BiasGradMean(Correct):
    """The bias gradient averaged over the samples instead of summed (the 1/m is already in dZ)::

    - db = dZ.sum(axis=1, keepdims=True)
    + db = dZ.mean(axis=1, keepdims=True)
    """

    name = "bias_grad_mean"
    blame = ("L", "b")
    caught_by = ("fd", "jax")

    def bias_grad(self, dZ):
        return dZ.mean(axis=1, keepdims=True)


class BiasGradWrongAxis(Correct):
    """The bias gradient summed over the units instead of the samples::

    - db = dZ.sum(axis=1, keepdims=True)
    + db = dZ.sum(axis=0, keepdims=True).T
    """

    name = "bias_grad_wrong_axis"
    caught_by = ("fd", "jax")

    def bias_grad(self, dZ):
        return dZ.sum(axis=0, keepdims=True).T


class DW2TimesTwo(Correct):
    """One parameter group scaled: layer 2's dW doubled (a factor 2 from d/dA (A - Y)^2 kept
    in one place only)::

        - grads[1] = (dW2, db2)
        + grads[1] = (2 * dW2, db2)
    """

    name = "dW2_times_2"
    blame = (2, "W")
    caught_by = ("fd", "jax")

    def finish(self, grads, params, activations):
        grads = list(grads)
        if len(grads) > 1:  # a network of one layer has no layer 2
            grads[1] = (2 * grads[1][0], grads[1][1])
        return grads


class Db1TimesFourOverM(Correct):
    """One parameter group scaled: layer 1's db multiplied by 4/m (a stray normalisation)::

    - grads[0] = (dW1, db1)
    + grads[0] = (dW1, db1 * 4 / m)
    """

    name = "db1_times_4_over_m"
    blame = (1, "b")
    caught_by = ("fd", "jax")

    def gradients(self, params, X, Y, *, activations, cost, l2=0.0):
        grads = super().gradients(params, X, Y, activations=activations, cost=cost, l2=l2)
        grads[0] = (grads[0][0], grads[0][1] * 4 / X.shape[1])
        return grads


class OutputDeltaIgnoresActivation(Correct):
    """The output delta A - Y used whatever the cost and output activation (right only for
    sigmoid + bce); with mse and a tanh output g'(Z) goes missing::

        - return (A - Y) / m * g'(Z)     # mse
        + return (A - Y) / m
    """

    name = "output_delta_ignores_activation"
    blame = ("L", "delta")
    caught_by = ("fd", "jax")

    def output_delta(self, cost, Z, A, Y, out):
        return (A - Y) / Y.shape[1]


class OffByOneLayer(Correct):
    """An off-by-one layer index: dW^l built from A^l instead of A^{l-1}::

    - dW = dZ @ As[l - 1].T
    + dW = dZ @ As[l].T
    """

    name = "off_by_one_layer"
    caught_by = ("fd", "jax")

    def weight_grad(self, dZ, As, l):
        return dZ @ As[l].T


class TransposedDW(Correct):
    """dW computed as A^{l-1} dZ^T: the transpose of the gradient (wrong shape unless square)::

    - dW = dZ @ A_prev.T
    + dW = A_prev @ dZ.T
    """

    name = "transposed_dW"
    caught_by = ("fd", "jax")

    def weight_grad(self, dZ, As, l):
        return As[l - 1] @ dZ.T


class SignFlipped(Correct):
    """The gradient of -J: the cost derivative written Y - A::

    - return (A - Y) / m
    + return (Y - A) / m
    """

    name = "sign_flipped"
    blame = ("L", "delta")
    caught_by = ("fd", "jax", "descent")

    def output_delta(self, cost, Z, A, Y, out):
        return -super().output_delta(cost, Z, A, Y, out)


class UpdatesInsideBackward(Correct):
    """Parameters updated inside the backward pass (W -= alpha dW in place), so computing a
    gradient changes the network::

        + W -= 0.1 * dW        # in gradients(), after each layer's dW
    """

    name = "updates_inside_backward"
    caught_by = ("purity",)

    def gradients(self, params, X, Y, *, activations, cost, l2=0.0):
        grads = super().gradients(params, X, Y, activations=activations, cost=cost, l2=l2)
        for (W, b), (dW, db) in zip(params, grads):
            W -= 0.1 * dW
            b -= 0.1 * db
        return grads


class AccumulatingGradients(Correct):
    """Gradients that accumulate across calls: a buffer kept between calls and added to,
    never reset (the classic missing zero_grad)::

        + self.buffer[l] += dW        # and returns the buffer
    """

    name = "accumulating_gradients"
    caught_by = ("repeatability",)

    def __init__(self) -> None:
        self.buffer: dict = {}

    def gradients(self, params, X, Y, *, activations, cost, l2=0.0):
        grads = super().gradients(params, X, Y, activations=activations, cost=cost, l2=l2)
        key = (*(W.shape for W, _ in params), X.shape[1])
        if key in self.buffer:
            grads = [(dW + bW, db + bb) for (dW, db), (bW, bb) in zip(grads, self.buffer[key])]
        self.buffer[key] = [(dW.copy(), db.copy()) for dW, db in grads]
        return grads


class UpdateWrongSign(Correct):
    """The update climbs the gradient::

    - W - alpha * dW
    + W + alpha * dW
    """

    name = "update_wrong_sign"
    caught_by = ("update", "descent")

    def update(self, params, grads, learning_rate):
        return [
            (W + learning_rate * dW, b + learning_rate * db)
            for (W, b), (dW, db) in zip(params, grads)
        ]


class UpdateSkipsBiases(Correct):
    """The update forgets the biases::

    - (W - alpha * dW, b - alpha * db)
    + (W - alpha * dW, b)
    """

    name = "update_skips_biases"
    caught_by = ("update",)

    def update(self, params, grads, learning_rate):
        return [(W - learning_rate * dW, b) for (W, b), (dW, _) in zip(params, grads)]


class SigmoidTwice(Correct):
    """The sigmoid applied twice in the forward pass (once in the layer, once more "to be
    sure"), with a backward pass that faithfully differentiates that wrong network::

        - A = sigmoid(Z)
        + A = sigmoid(sigmoid(Z))

    Finite differences of its own loss agree with its gradients; only a loss or gradient
    computed from the formulas (JAX) sees it.
    """

    name = "sigmoid_twice"
    caught_by = ("jax", "loss")

    def act(self, name, z):
        return sigmoid(sigmoid(z)) if name == "sigmoid" else super().act(name, z)

    def act_grad(self, name, z, a):
        if name != "sigmoid":
            return super().act_grad(name, z, a)
        s = sigmoid(z)
        return a * (1 - a) * s * (1 - s)

    def fused(self, cost, out):
        return False  # (A - Y)/m is the delta of sigmoid + bce, not of sigmoid twice


class BiasUnused(Correct):
    """The bias never added in the forward pass, and its gradient, consistently, zero::

    - Z = W @ A_prev + b
    + Z = W @ A_prev
    """

    name = "bias_unused"
    caught_by = ("jax", "loss")

    def layer_forward(self, W, b, A_prev, name):
        Z = W @ A_prev
        return Z, self.act(name, Z)

    def bias_grad(self, dZ):
        return np.zeros((dZ.shape[0], 1))


class UnstableBCE(Correct):
    """bce's derivative taken as the seed's table writes it, (1/m)(-Y/A + (1 - Y)/(1 - A)),
    times sigma'(Z), instead of the fused (A - Y)/m: right until the output saturates, then
    0 * inf = NaN::

        - return (A - Y) / m
        + return (-Y / A + (1 - Y) / (1 - A)) / m * A * (1 - A)
    """

    name = "unstable_bce"
    caught_by = ("saturation",)

    def output_delta(self, cost, Z, A, Y, out):
        if cost != "bce":
            return super().output_delta(cost, Z, A, Y, out)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (-Y / A + (1 - Y) / (1 - A)) / Y.shape[1] * self.act_grad(out, Z, A)


class ReluGradZeroAtZero(Correct):
    """relu'(0) = 0 (JAX's and PyTorch's choice) against the seed's 1::

    - return (z >= 0).astype(float)
    + return (z > 0).astype(float)
    """

    name = "relu_grad_zero_at_zero"
    caught_by = ("relu'(0)",)

    def act_grad(self, name, z, a):
        return (z > 0).astype(float) if name == "relu" else super().act_grad(name, z, a)


class LossWithoutHalf(Correct):
    """mse's loss computed without its 1/2, while the gradient keeps (A - Y)/m: the loss and
    the gradient describe different functions::

        - return np.sum((A - Y) ** 2) / (2 * m)
        + return np.sum((A - Y) ** 2) / m
    """

    name = "loss_without_half"
    caught_by = ("fd", "jax")  # a loss without the 1/2 is a convention; gradients must follow it

    def cost_value(self, cost, Z, A, Y, out):
        value = super().cost_value(cost, Z, A, Y, out)
        return 2 * value if cost == "mse" else value


class LeakySlopeWrongSide(Correct):
    """leaky relu's slope applied on the wrong side of the kink: 0.01 for z >= 0 and 1 below::

    - return np.where(z >= 0, 1.0, 0.01)
    + return np.where(z >= 0, 0.01, 1.0)
    """

    name = "leaky_slope_wrong_side"
    caught_by = ("fd", "jax")

    def act_grad(self, name, z, a):
        if name == "leaky_relu":
            return np.where(z >= 0, LEAKY_SLOPE, 1.0)
        return super().act_grad(name, z, a)


class SoftmaxGradElementwise(Correct):
    """softmax's derivative taken as elementwise, a (1 - a), the Jacobian's diagonal alone, as
    for a sigmoid; right only where the other outputs of the column do not move::

        - return A * (dA - np.sum(dA * A, axis=0))
        + return dA * A * (1 - A)

    Hidden behind the fused (A - Y)/m of softmax with cce; seen with mse.
    """

    name = "softmax_grad_elementwise"
    blame = ("L", "delta")
    caught_by = ("fd", "jax")

    def act_backward(self, name, z, a, dA):
        if name == "softmax":
            return dA * a * (1 - a)
        return super().act_backward(name, z, a, dA)


class SoftmaxWithoutShift(Correct):
    """softmax and cross-entropy written without the max shift, e^Z / sum e^Z and
    log sum e^Z: right for small logits, NaN once e^Z overflows (Z above about 709)::

        - e = np.exp(Z - Z.max(axis=0))
        + e = np.exp(Z)
    """

    name = "softmax_without_shift"
    caught_by = ("saturation",)

    def act(self, name, z):
        if name != "softmax":
            return super().act(name, z)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(z)
            return e / e.sum(axis=0, keepdims=True)

    def cost_value(self, cost, Z, A, Y, out):
        if not (cost == "cce" and self.fused(cost, out)):
            return super().cost_value(cost, Z, A, Y, out)
        with np.errstate(over="ignore", invalid="ignore"):
            log_a = Z - np.log(np.exp(Z).sum(axis=0, keepdims=True))
            return float(-np.sum(Y * log_a)) / Y.shape[1]


class PenaltyOnBiases(Correct):
    """The L2 penalty's gradient applied to the biases too, which the penalty (a sum over
    the weights alone) leaves out; the loss is right::

        - (dW + lambda / m * W, db)
        + (dW + lambda / m * W, db + lambda / m * b)
    """

    name = "penalty_on_biases"
    blame = ("L", "b")
    caught_by = ("fd", "jax")

    def penalty_grads(self, grads, params, l2, m):
        return [(dW + l2 / m * W, db + l2 / m * b) for (dW, db), (W, b) in zip(grads, params)]


class PenaltyMissingOneOverM(Correct):
    """The L2 penalty's gradient without its 1/m: lambda W where lambda/(2m) sum W^2 gives
    (lambda/m) W; the loss is right::

        - dW + lambda / m * W
        + dW + lambda * W
    """

    name = "penalty_missing_1_over_m"
    blame = ("L", "W")
    caught_by = ("fd", "jax")

    def penalty_grads(self, grads, params, l2, m):
        return [(dW + l2 * W, db) for (dW, db), (W, _) in zip(grads, params)]


MISTAKES: list[type[Correct]] = [
    MissingTranspose, SigmoidGradOfZ, TanhGradWrongCache, ReluMaskFromA, DeltaUsesDW,
    DeltaSkipsW, MissingOneOverM, DoubleOneOverM, BiasGradMean, BiasGradWrongAxis,
    DW2TimesTwo, Db1TimesFourOverM, OutputDeltaIgnoresActivation, OffByOneLayer, TransposedDW,
    SignFlipped, UpdatesInsideBackward, AccumulatingGradients, UpdateWrongSign,
    UpdateSkipsBiases, SigmoidTwice, BiasUnused, UnstableBCE, ReluGradZeroAtZero,
    LossWithoutHalf, LeakySlopeWrongSide, SoftmaxGradElementwise, SoftmaxWithoutShift,
    PenaltyOnBiases, PenaltyMissingOneOverM,
]  # fmt: skip
"""Every catalogued mistake, in the order the detection matrix lists them."""
