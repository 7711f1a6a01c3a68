"""A student's backprop written from the seed's formulas alone, as a graded submission would
be: NumPy only, nothing of the harness or the built-in package. The grading tests copy this
file into a class folder (and plant mistakes or attacks in copies of it)."""

import numpy as np

SUPPORTS = {"penalties": ["l2"]}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACT = {
    "sigmoid": (_sigmoid, lambda z, a: a * (1.0 - a)),
    "tanh": (np.tanh, lambda z, a: 1.0 - a**2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z >= 0).astype(float)),
}


def _forward(params, X, activations):
    A, cache = X, []
    for (W, b), name in zip(params, activations):
        Z = W @ A + b
        A_prev, A = A, ACT[name][0](Z)
        cache.append((A_prev, Z, A))
    return A, cache


def forward(params, X, *, activations):
    return _forward(params, X, activations)[0]


def loss(params, X, Y, *, activations, cost, l2=0.0):
    A, _ = _forward(params, X, activations)
    m = X.shape[1]
    if cost == "mse":
        J = np.sum((A - Y) ** 2) / (2 * m)
    else:
        J = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
    return J + l2 / (2 * m) * sum(np.sum(W**2) for W, _ in params)


def gradients(params, X, Y, *, activations, cost, l2=0.0):
    A, cache = _forward(params, X, activations)
    m = X.shape[1]
    if cost == "bce" and activations[-1] == "sigmoid":
        dZ = (A - Y) / m
    else:
        dA = (A - Y) / m if cost == "mse" else (-Y / A + (1 - Y) / (1 - A)) / m
        dZ = dA * ACT[activations[-1]][1](cache[-1][1], A)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        A_prev, _, _ = cache[l]
        W = params[l][0]
        grads.append((dZ @ A_prev.T + l2 / m * W, dZ.sum(axis=1, keepdims=True)))
        if l:
            _, Z, A_l = cache[l - 1]
            dZ = (W.T @ dZ) * ACT[activations[l - 1]][1](Z, A_l)
    return grads[::-1]


def update(params, grads, learning_rate):
    return [
        (W - learning_rate * dW, b - learning_rate * db) for (W, b), (dW, db) in zip(params, grads)
    ]
