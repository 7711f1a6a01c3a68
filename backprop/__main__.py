"""``python -m backprop``: train the seed's 2-3-2-1 network on XOR and show what it computed."""

from __future__ import annotations

import numpy as np

from . import datasets, forward, gradients, init_params, loss, train


def main() -> int:
    X, Y = datasets.xor()
    activations, cost = ["tanh", "tanh", "sigmoid"], "bce"
    params = init_params([2, 3, 2, 1], seed=0)
    print("The seed's network: 2 inputs, hidden layers of 3 and 2 units, 1 output; XOR, m = 4")
    for l, (dW, db) in enumerate(gradients(params, X, Y, activations=activations, cost=cost), 1):
        print(
            f"  layer {l}: dJ/dW^{l} is {dW.shape[0]}x{dW.shape[1]}, dJ/db^{l} is {db.shape[0]}x1"
        )
    params, history = train(
        params,
        X,
        Y,
        activations=activations,
        cost=cost,
        learning_rate=0.5,
        max_iterations=20_000,
        tolerance=1e-3,
    )
    final = loss(params, X, Y, activations=activations, cost=cost)
    predictions = forward(params, X, activations=activations)[0]
    print(f"training stopped: {history.stop_reason} after {history.iterations} updates")
    print(f"loss {history.loss[0]:.4f} -> {final:.6f}")
    print(f"predictions {np.round(predictions, 3).tolist()} for labels {Y[0].tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
