"""A student's backprop for the seed's network alone, NumPy only: sigmoid, tanh and relu;
mse and bce (fused with a sigmoid output); relu'(0) = 1; an ``update``; no ``SUPPORTS``.

Grading tests copy this file into a class folder, some with one line changed (the lines
marked ``# MISTAKE:`` say how), so that each submission differs from a correct one by a
line, as a student's would.
"""

import numpy as np

_G = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.where(z >= 0, z, 0.0),
}


def _grad(name, z, a):
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a**2
    if name == "relu":
        return (z >= 0).astype(float)
    raise ValueError(f"unknown activation {name!r}")


def _forward(params, X, activations):
    Zs, As = [], [X]
    for (W, b), name in zip(params, activations):
        if name not in _G:
            raise ValueError(f"unknown activation {name!r}")
        Zs.append(W @ As[-1] + b)
        As.append(_G[name](Zs[-1]))
    return Zs, As


def forward(params, X, *, activations):
    return _forward(params, X, activations)[1][-1]


def loss(params, X, Y, *, activations, cost):
    Zs, As = _forward(params, X, activations)
    m = X.shape[1]
    if cost == "mse":
        return float(np.sum((As[-1] - Y) ** 2)) / (2 * m)
    if cost == "bce":
        if activations[-1] == "sigmoid":
            Z = Zs[-1]
            return float(np.sum(np.logaddexp(0, Z) - Y * Z)) / m
        A = As[-1]
        return float(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))) / m
    raise ValueError(f"unknown cost {cost!r}")


def gradients(params, X, Y, *, activations, cost):
    Zs, As = _forward(params, X, activations)
    m = X.shape[1]
    A, Z = As[-1], Zs[-1]
    if cost == "bce" and activations[-1] == "sigmoid":
        dZ = (A - Y) / m  # MISTAKE: bce sign: (Y - A) / m
    elif cost == "bce":
        dZ = (-Y / A + (1 - Y) / (1 - A)) / m * _grad(activations[-1], Z, A)
    elif cost == "mse":
        dZ = (A - Y) / m * _grad(activations[-1], Z, A)
    else:
        raise ValueError(f"unknown cost {cost!r}")
    grads = [None] * len(params)
    for l in range(len(params), 0, -1):
        dW = dZ @ As[l - 1].T  # MISTAKE: transposed dW: As[l - 1] @ dZ.T
        grads[l - 1] = (dW, dZ.sum(axis=1, keepdims=True))
        if l > 1:
            dZ = (params[l - 1][0].T @ dZ) * _grad(activations[l - 2], Zs[l - 2], As[l - 1])
    return grads


def update(params, grads, learning_rate):
    return [
        (W - learning_rate * dW, b - learning_rate * db) for (W, b), (dW, db) in zip(params, grads)
    ]
