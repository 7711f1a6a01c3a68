"""A correct implementation of the protocol, one overridable method per step.

The catalog's mistakes (``reference.bugs.catalog``) each replace one method;
everything else is this code, so each differs from a correct implementation by
exactly the lines its docstring shows. This is an implementation under test,
written for the catalog; the oracles never use it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


LEAKY_SLOPE = 0.01


def softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def log_softmax(z):
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


class Correct:
    """Backprop done right: the seed's sections 10-12 with DESIGN.md's conventions."""

    name = "correct"
    SUPPORTS: ClassVar[dict] = {
        "activations": "*",
        "output_activations": "*",
        "costs": "*",
        "penalties": ["l2"],
    }
    """Every activation and cost of the tables, and the optional ``l2`` keyword
    (reference/inputs/scope.py)."""
    blame: tuple[str | int, str] | None = None
    """Where the checker should point: (layer, param); layer "L" is the output, "L-1" the
    layer below it; param "W", "b" or "delta" (both). None: not a one-place mistake."""
    caught_by: tuple[str, ...] = ()
    """The checks that must catch it (the detection test enforces them)."""

    # --- activations --------------------------------------------------------
    def act(self, name: str, z: np.ndarray) -> np.ndarray:
        if name == "sigmoid":
            return sigmoid(z)
        if name == "tanh":
            return np.tanh(z)
        if name == "relu":
            return np.where(z >= 0, z, 0.0)
        if name == "leaky_relu":
            return np.where(z >= 0, z, LEAKY_SLOPE * z)
        if name == "identity":
            return z.copy()
        if name == "softmax":
            return softmax(z)
        raise ValueError(f"unknown activation {name!r}")

    def act_grad(self, name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        if name == "sigmoid":
            return a * (1 - a)
        if name == "tanh":
            return 1 - a**2
        if name == "relu":
            return (z >= 0).astype(float)
        if name == "leaky_relu":
            return np.where(z >= 0, 1.0, LEAKY_SLOPE)
        if name == "identity":
            return np.ones_like(z)
        raise ValueError(f"unknown activation {name!r}")

    def act_backward(self, name: str, z: np.ndarray, a: np.ndarray, dA: np.ndarray):
        """dZ from dA = dJ/dA: dA * g'(Z) for an elementwise g; softmax's Jacobian by columns,
        A * (dA - sum over the column of dA * A)."""
        if name == "softmax":
            return a * (dA - np.sum(dA * a, axis=0, keepdims=True))
        return dA * self.act_grad(name, z, a)

    # --- forward and cost ---------------------------------------------------
    def layer_forward(self, W, b, A_prev, name):
        Z = W @ A_prev + b
        return Z, self.act(name, Z)

    def run_forward(self, params, X, activations):
        Zs, As = [], [X]
        for (W, b), name in zip(params, activations):
            Z, A = self.layer_forward(W, b, As[-1], name)
            Zs.append(Z)
            As.append(A)
        return Zs, As

    def fused(self, cost, out) -> bool:
        """bce on a sigmoid output and cce on a softmax output go through the logits (finite
        at any saturation)."""
        return (cost, out) in (("bce", "sigmoid"), ("cce", "softmax"))

    def cost_value(self, cost, Z, A, Y, out):
        m = Y.shape[1]
        if cost == "mse":
            return float(np.sum((A - Y) ** 2)) / (2 * m)
        if cost == "cce":
            if self.fused(cost, out):
                return float(-np.sum(Y * log_softmax(Z))) / m
            return float(-np.sum(Y * np.log(A))) / m
        if self.fused(cost, out):
            return float(np.sum(np.logaddexp(0.0, Z) - Y * Z)) / m
        return float(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))) / m

    # --- backward -----------------------------------------------------------
    def output_delta(self, cost, Z, A, Y, out):
        m = Y.shape[1]
        if self.fused(cost, out):
            return (A - Y) / m
        if cost == "mse":
            dA = (A - Y) / m
        elif cost == "cce":
            dA = -Y / A / m
        else:
            dA = (-Y / A + (1 - Y) / (1 - A)) / m
        return self.act_backward(out, Z, A, dA)

    def hidden_delta(self, W_next, dZ_next, dW_next, Z, A, name):
        return (W_next.T @ dZ_next) * self.act_grad(name, Z, A)

    def weight_grad(self, dZ, As, l):
        """dW^l = dZ^l (A^{l-1})^T; ``As[l - 1]`` is A^{l-1}."""
        return dZ @ As[l - 1].T

    def bias_grad(self, dZ):
        return dZ.sum(axis=1, keepdims=True)

    # --- the L2 penalty -----------------------------------------------------
    def penalty_value(self, params, l2, m):
        """lambda/(2m) sum_l sum(W^l ** 2), biases excluded (Nielsen, "Neural Networks and
        Deep Learning", ch. 3, "Regularization", eq. 87)."""
        return l2 / (2 * m) * sum(float(np.sum(W**2)) for W, _ in params)

    def penalty_grads(self, grads, params, l2, m):
        """dW^l += (lambda/m) W^l; db^l unchanged."""
        return [(dW + l2 / m * W, db) for (dW, db), (W, _) in zip(grads, params)]

    def finish(self, grads, params, activations):
        """A hook on the finished list (the correct code returns it as it is)."""
        return grads

    # --- the protocol -------------------------------------------------------
    def loss(self, params, X, Y, *, activations, cost, l2=0.0):
        Zs, As = self.run_forward(params, X, activations)
        J = self.cost_value(cost, Zs[-1], As[-1], Y, activations[-1])
        return J + self.penalty_value(params, l2, X.shape[1]) if l2 else J

    def forward(self, params, X, *, activations):
        return self.run_forward(params, X, activations)[1][-1]

    def gradients(self, params, X, Y, *, activations, cost, l2=0.0):
        Zs, As = self.run_forward(params, X, activations)
        L = len(params)
        grads = [None] * L
        dZ = self.output_delta(cost, Zs[-1], As[-1], Y, activations[-1])
        for l in range(L, 0, -1):
            dW, db = self.weight_grad(dZ, As, l), self.bias_grad(dZ)
            grads[l - 1] = (dW, db)
            if l > 1:
                dZ = self.hidden_delta(
                    params[l - 1][0], dZ, dW, Zs[l - 2], As[l - 1], activations[l - 2]
                )
        if l2:
            grads = self.penalty_grads(grads, params, l2, X.shape[1])
        return self.finish(grads, params, activations)

    def update(self, params, grads, learning_rate):
        return [
            (W - learning_rate * dW, b - learning_rate * db)
            for (W, b), (dW, db) in zip(params, grads)
        ]

    def __repr__(self) -> str:
        return f"<backprop mistake {self.name!r}>"

    @property
    def __name__(self) -> str:  # reports name implementations by __name__
        return self.name
