"""A correct implementation of the protocol that computes in float32 (or float16) throughout.

Written from DESIGN.md's formulas, not from ``backprop``: every array is converted to the
chosen dtype on the way in, every operation stays in it, and the gradients and the loss come
back in it.

    Z^l = W^l A^{l-1} + b^l,  A^l = g_l(Z^l);  sigmoid 1/(1 + e^-z), tanh, relu max(z, 0)
    mse: J = 1/(2m) sum (A - Y)^2,   dZ^L = (A - Y) g'_L(Z^L) / m
    bce: J = 1/m sum logaddexp(0, Z^L) - Y Z^L,   dZ^L = (A - Y) / m (a sigmoid output)
    dZ^l = (W^{l+1})^T dZ^{l+1} * g'_l(Z^l),  dW^l = dZ^l (A^{l-1})^T,  db^l = sum_cols dZ^l

``mistake`` plants one bug, for the tests that the harness still sees it at this precision:
``"dW2 x 2"`` doubles layer 2's dW, ``"no transpose"`` uses W^2 for (W^2)^T (square W^2
only: elsewhere the shapes refuse it), ``"no 1/m"`` leaves the 1/m out of dZ^L.
``strict`` refuses arrays of any other dtype (an implementation that asks for float32).
"""

from __future__ import annotations

import numpy as np

_G = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z >= 0).astype(z.dtype)),
}


class LowPrecision:
    """The protocol in ``dtype``, with an optional planted ``mistake`` (see the module)."""

    def __init__(self, dtype: str, mistake: str | None = None, strict: bool = False) -> None:
        self.dtype, self.mistake, self.strict = np.dtype(dtype), mistake, strict
        self.__name__ = f"lowprecision ({dtype}{', ' + mistake if mistake else ''})"

    def _in(self, a):
        if self.strict and np.asarray(a).dtype != self.dtype:
            raise TypeError(f"expected {self.dtype} arrays, got {np.asarray(a).dtype}")
        return np.asarray(a).astype(self.dtype)

    def _forward(self, params, X, activations):
        As, Zs = [self._in(X)], []
        with np.errstate(over="ignore"):
            for (W, b), g in zip(params, activations):
                Zs.append(self._in(W) @ As[-1] + self._in(b))
                As.append(_G[g][0](Zs[-1]))
        return As, Zs

    def loss(self, params, X, Y, *, activations, cost):
        As, Zs = self._forward(params, X, activations)
        Y, m = self._in(Y), self.dtype.type(X.shape[1])
        if cost == "bce":
            return np.sum(np.logaddexp(self.dtype.type(0), Zs[-1]) - Y * Zs[-1]) / m
        return np.sum((As[-1] - Y) ** 2) / (2 * m)

    def gradients(self, params, X, Y, *, activations, cost):
        As, Zs = self._forward(params, X, activations)
        m = self.dtype.type(1 if self.mistake == "no 1/m" else X.shape[1])
        dZ = (As[-1] - self._in(Y)) / m
        if cost != "bce":
            dZ = dZ * _G[activations[-1]][1](Zs[-1], As[-1])
        grads = []
        for l in range(len(params), 0, -1):
            grads.insert(0, (dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True)))
            if l > 1:
                W = self._in(params[l - 1][0])
                back = W if self.mistake == "no transpose" and l == 2 else W.T
                dZ = (back @ dZ) * _G[activations[l - 2]][1](Zs[l - 2], As[l - 1])
        if self.mistake == "dW2 x 2" and len(grads) >= 2:
            grads[1] = (2 * grads[1][0], grads[1][1])
        return grads


FLOAT32 = LowPrecision("float32")
FLOAT16 = LowPrecision("float16")
STRICT32 = LowPrecision("float32", strict=True)
STRICT32.SUPPORTS = {"dtype": "float32"}
FLOAT16_DW2_TIMES_2 = LowPrecision("float16", "dW2 x 2")
