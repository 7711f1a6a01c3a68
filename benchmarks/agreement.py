"""How closely backprop, the finite differences and the JAX model agree with an outside
autodiff system (HIPS autograd), on seeded random networks of every activation mix.

    python benchmarks/agreement.py [--problems 500]

Prints, per comparison, the largest, the 99th percentile and the median norm-wise relative
error over every layer's dW and db.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import autograd
import numpy as np

import backprop
from reference.inputs.problems import random_problem
from reference.oracles.finite_diff import numerical_gradients
from reference.oracles.jax_model import jax_gradients

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_oracles import autograd_loss, rel


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
        print(f"  {name:<20} vs autograd: max {max(errs):.2e}, "
              f"99th percentile {np.percentile(errs, 99):.2e}, median {np.median(errs):.2e} "
              f"over {len(errs)} arrays")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
