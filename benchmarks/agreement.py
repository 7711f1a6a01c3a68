"""How closely backprop, the finite differences and the JAX model agree with an outside
autodiff system (HIPS autograd), on seeded random networks of every activation mix.

    python benchmarks/agreement.py [--problems 500]

Prints, per comparison, the largest and the median norm-wise relative error over every
layer's dW and db.
"""

from __future__ import annotations

import argparse

import autograd
import autograd.numpy as anp
import numpy as np

import backprop
from reference import numerical_gradients
from reference.jax_model import jax_gradients
from reference.problems import random_problem


def autograd_loss(params, X, Y, activations, cost):
    acts = {"sigmoid": lambda z: 1 / (1 + anp.exp(-z)), "tanh": anp.tanh,
            "relu": lambda z: anp.where(z >= 0, z, 0.0)}  # fmt: skip
    A, Z = X, None
    for (W, b), name in zip(params, activations):
        Z = anp.dot(W, A) + b
        A = acts[name](Z)
    m = X.shape[1]
    if cost == "mse":
        return anp.sum((A - Y) ** 2) / (2 * m)
    return anp.sum(anp.logaddexp(0.0, Z) - Y * Z) / m


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    errors: dict[str, list[float]] = {"backprop": [], "finite differences": [], "JAX model": []}
    for _ in range(args.problems):
        p = random_problem(rng, depth=(1, 5), width=(1, 8), samples=(1, 8))
        want = autograd.grad(autograd_loss)(p.params, p.X, p.Y, p.activations, p.cost)
        got = {
            "backprop": backprop.gradients(p.params, p.X, p.Y, **p.kwargs()),
            "finite differences": numerical_gradients(
                backprop, p.params, p.X, p.Y, **p.kwargs()
            ).grads,
            "JAX model": jax_gradients(p.params, p.X, p.Y, **p.kwargs())[1],
        }
        for name, grads in got.items():
            for (a, b), (wa, wb) in zip(grads, want):
                for x, w in ((a, wa), (b, wb)):
                    if (
                        np.linalg.norm(w) > 1e-8
                    ):  # below that, relative error measures rounding alone
                        errors[name].append(rel(x, w))
    print(f"{args.problems} random networks (depth 1-5, widths 1-8, m 1-8, every mix, both costs)")
    for name, errs in errors.items():
        print(f"  {name:<20} vs autograd: max {max(errs):.2e}, median {np.median(errs):.2e} "
              f"over {len(errs)} arrays")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
