"""A correct implementation of the protocol, rounded differently from ``backprop``.

The same formulas (DESIGN.md, "Mathematical conventions"), computed another way:

    sigmoid(z) = (1 + tanh(z/2)) / 2,      sigmoid'(z) = (1 - tanh(z/2)^2) / 4
    tanh'(z)   = (1 - tanh z)(1 + tanh z)
    relu(z)    = z * [z > 0],               relu'(z) = [z > 0] + r [z = 0]
    Z^l        = (A^{l-1}^T W^l^T)^T + b^l  (the product in the other order)
    mse:  J = 1/(2m) sum (A - Y)^2,         dZ^L = (A - Y) g'_L(Z^L) / m
    bce:  J = 1/m sum softplus(Z^L) - Y Z^L with softplus(z) = max(z, 0) + log1p(e^{-|z|}),
          dZ^L = (A - Y) / m (a sigmoid output; bce needs one here)
    dZ^l = (dZ^{l+1}^T W^{l+1})^T * g'_l(Z^l),  dW^l = (A^{l-1} dZ^l^T)^T,
    db^l = dZ^l 1 (a product with a column of ones, not a sum)

``r`` is relu'(0), a choice of subgradient: :data:`AT_ZERO_0` takes 0 (JAX's and
PyTorch's), :data:`AT_ZERO_1` takes 1 (the seed's). Every result is right to
rounding; only the rounding differs from the harness's models, so a pre-activation
within rounding of 0 may land on the other side of the kink here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """(1 + tanh(z/2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _sigmoid_grad(z: np.ndarray) -> np.ndarray:
    """(1 - tanh(z/2)^2) / 4, from z."""
    t = np.tanh(0.5 * z)
    return 0.25 * (1.0 - t * t)


def _tanh_grad(z: np.ndarray) -> np.ndarray:
    """(1 - tanh z)(1 + tanh z), from z."""
    t = np.tanh(z)
    return (1.0 - t) * (1.0 + t)


class Rounded:
    """The protocol with relu'(0) = ``relu_at_zero`` (0 or 1, or anything in [0, 1])."""

    def __init__(self, relu_at_zero: float) -> None:
        self.relu_at_zero = float(relu_at_zero)
        self.__name__ = f"rounded (relu'(0) = {relu_at_zero:g})"

    def _g(self, name: str, z: np.ndarray) -> np.ndarray:
        if name == "sigmoid":
            return _sigmoid(z)
        if name == "tanh":
            return np.tanh(z)
        if name == "relu":
            return z * (z > 0)
        raise NotImplementedError(name)

    def _g_prime(self, name: str, z: np.ndarray) -> np.ndarray:
        if name == "sigmoid":
            return _sigmoid_grad(z)
        if name == "tanh":
            return _tanh_grad(z)
        if name == "relu":
            return (z > 0) + self.relu_at_zero * (z == 0)
        raise NotImplementedError(name)

    def _forward(self, params: Params, X: np.ndarray, activations: Sequence[str]):
        Zs, As = [], [np.asarray(X, np.float64)]
        for (W, b), name in zip(params, activations):
            Z = (As[-1].T @ W.T).T + b
            Zs.append(Z)
            As.append(self._g(name, Z))
        return Zs, As

    def loss(self, params, X, Y, *, activations, cost) -> float:
        """J: mse from A^L, bce from the logits Z^L."""
        Zs, As = self._forward(params, X, activations)
        m = X.shape[1]
        if cost == "mse":
            D = As[-1] - Y
            return float(0.5 * np.sum(D * D) / m)
        if cost == "bce" and activations[-1] == "sigmoid":
            Z = Zs[-1]
            softplus = np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z)))
            return float(np.sum(softplus - Y * Z) / m)
        raise NotImplementedError(f"{cost} on a {activations[-1]} output")

    def gradients(self, params, X, Y, *, activations, cost) -> Params:
        """[(dW^1, db^1), ..., (dW^L, db^L)] by the formulas in the module docstring."""
        Zs, As = self._forward(params, X, activations)
        m = X.shape[1]
        L = len(params)
        if cost == "bce" and activations[-1] == "sigmoid":
            dZ = (As[-1] - Y) / m
        elif cost == "mse":
            dZ = (As[-1] - Y) * self._g_prime(activations[-1], Zs[-1]) / m
        else:
            raise NotImplementedError(f"{cost} on a {activations[-1]} output")
        grads: Params = [None] * L  # type: ignore[list-item]
        ones = np.ones((m, 1))
        for l in range(L, 0, -1):
            grads[l - 1] = ((As[l - 1] @ dZ.T).T, dZ @ ones)
            if l > 1:
                dZ = (dZ.T @ params[l - 1][0]).T * self._g_prime(activations[l - 2], Zs[l - 2])
        return grads


ACTIVATIONS = ("sigmoid", "tanh", "relu")
"""The activations this implementation computes (any other raises NotImplementedError), in
the order of the seed's table."""

AT_ZERO_0 = Rounded(0.0)
"""relu'(0) = 0."""
AT_ZERO_1 = Rounded(1.0)
"""relu'(0) = 1."""
