"""``backprop-train``: train a network with the built-in implementation on a generated problem.

    backprop-train                          # XOR on the seed's 2-3-2-1 network
    backprop-train --dataset moons --hidden 8,8 --activations tanh,tanh,sigmoid --plot moons.png

Prints which of the seed's stopping criteria fired, the final loss and the accuracy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from . import datasets, forward, init_params, loss, train


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backprop-train", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dataset",
        choices=sorted(datasets.DATASETS),
        default="xor",
        help="generated problem (default xor)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="data set size (default: 4 for xor, 200 otherwise)",
    )
    p.add_argument("--noise", type=float, default=None, help="noise added to the inputs")
    p.add_argument(
        "--hidden",
        type=_int_list,
        default=[3, 2],
        help="hidden widths, e.g. 8,8 (default 3,2: the seed's)",
    )
    p.add_argument(
        "--activations",
        type=_name_list,
        default=None,
        help="one per layer, e.g. tanh,tanh,sigmoid (default: tanh hidden, sigmoid output)",
    )
    p.add_argument("--cost", default="bce", help="mse or bce (default bce)")
    p.add_argument("--learning-rate", type=float, default=0.5, help="alpha (default 0.5)")
    p.add_argument(
        "--batch-size", type=int, default=None, help="mini-batch size (default: the full batch)"
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="passes over the data before 'no more batches'"
    )
    p.add_argument("--max-iterations", type=int, default=20_000, help="default 20000")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="stop when ||grad|| falls below (default 1e-3)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for the data, the weights and the shuffling"
    )
    p.add_argument(
        "--plot", metavar="PATH", help="write the loss curve and the decision boundary as a PNG"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    make = datasets.DATASETS[args.dataset]
    kwargs = {"seed": args.seed}
    if args.noise is not None:
        kwargs["noise"] = args.noise
    m = args.samples or (4 if args.dataset == "xor" else 200)
    try:
        X, Y = make(m, **kwargs)
        sizes = [X.shape[0], *args.hidden, 1]
        acts = args.activations or ["tanh"] * len(args.hidden) + ["sigmoid"]
        params = init_params(sizes, seed=args.seed)
        result = train(
            params, X, Y, activations=acts, cost=args.cost, learning_rate=args.learning_rate,
            max_iterations=args.max_iterations, tolerance=args.tolerance,
            batch_size=args.batch_size,
            epochs=args.epochs, seed=args.seed, progress=not args.quiet and sys.stderr.isatty(),
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"backprop-train: error: {exc}\n")
        return 2
    h = result.history
    final = loss(result.params, X, Y, activations=acts, cost=args.cost)
    accuracy = float(np.mean((forward(result.params, X, activations=acts) > 0.5) == (Y > 0.5)))
    reasons = {
        "max_iterations": "the maximum number of iterations was reached",
        "converged": f"the gradient's norm fell below {args.tolerance:g} (optimum found)",
        "no_more_batches": "no more batches of data",
        "diverged": "the loss stopped being finite (diverged); the last finite parameters are kept",
    }
    out.write(
        f"{args.dataset}: {'-'.join(map(str, sizes))} [{', '.join(acts)}] {args.cost}, m = {m}\n"
    )
    out.write(f"stopped after {h.iterations} updates: {reasons[h.stop_reason]} ({h.stop_reason})\n")
    out.write(f"loss {h.loss[0]:.6g} -> {final:.6g}; accuracy {accuracy:.1%}\n")
    if args.plot:
        try:
            _plot(args.plot, result, X, Y, acts, h)
        except ImportError:
            sys.stderr.write(
                "backprop-train: --plot needs matplotlib: pip install 'backprop-harness[plot]'\n"
            )
            return 2
        out.write(f"wrote {args.plot}\n")
    return 0


def _plot(path, result, X, Y, acts, history) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.semilogy(history.loss)
    left.set_xlabel("iteration")
    left.set_ylabel("loss")
    left.set_title(f"loss ({history.stop_reason})")
    pad = 0.5
    xs = np.linspace(X[0].min() - pad, X[0].max() + pad, 200)
    ys = np.linspace(X[1].min() - pad, X[1].max() + pad, 200)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.vstack([gx.ravel(), gy.ravel()])
    out = forward(result.params, grid, activations=acts).reshape(gx.shape)
    right.contourf(gx, gy, out, levels=20, cmap="RdBu_r", alpha=0.7)
    right.contour(gx, gy, out, levels=[0.5], colors="k")
    right.scatter(X[0], X[1], c=Y[0], cmap="RdBu_r", edgecolors="k", s=20)
    right.set_title("decision boundary (output = 0.5)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
