"""``--plot``: PNG heatmaps of failing gradients against the reference, and the finite
difference's error against its step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..boundary.isolation import Failed
from ..judging.outcome import Outcome
from .jobs import as_arrays, gradients_of
from .runner import Runner
from .session import UsageError


def write_plots(runner: Runner, outcome: Outcome, directory: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib: pip install 'backprop-harness[plot]' "
            "(or pip install matplotlib)"
        ) from None
    from ..oracles import finite_diff, numpy_model
    from ..oracles.jax_model import jax_gradients

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    chosen = [pr for pr in outcome.reports if not pr[1].ok][:3] or outcome.reports[:1]
    chosen = [(p, r) for p, r in chosen if r.attribution not in ("crash", "structure")]
    computed = runner.run(gradients_of, [p for p, _ in chosen]) if chosen else []
    if isinstance(computed, Failed):
        computed = [None] * len(chosen)
    for (problem, report), grads in zip(chosen, computed):
        grads = as_arrays(grads)
        if grads is None:
            continue
        _, ref = jax_gradients(problem.params, problem.X, problem.Y, **problem.kwargs())
        L = len(grads)
        fig, axes = plt.subplots(L, 3, figsize=(11, 2.6 * L), squeeze=False)
        for l in range(L):
            mine = np.hstack([grads[l][0], grads[l][1]])
            truth = np.hstack(ref[l])
            lim = max(np.abs(mine).max(), np.abs(truth).max(), 1e-300)
            for ax, data, title, cmap, vlim in (
                (axes[l][0], mine, f"layer {l + 1}: implementation [dW | db]", "RdBu_r", lim),
                (axes[l][1], truth, f"layer {l + 1}: reference (JAX)", "RdBu_r", lim),
                (
                    axes[l][2],
                    mine - truth,
                    f"difference (largest {np.abs(mine - truth).max():.1e})",
                    "PuOr_r",
                    lim,  # on the gradient's scale: rounding noise stays white
                ),
            ):
                im = ax.imshow(data, cmap=cmap, vmin=-vlim, vmax=vlim, aspect="auto")
                ax.set_title(title, fontsize=9)
                ax.axvline(data.shape[1] - 1.5, color="k", lw=0.8)
                fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(
            f"{problem.name}: {'PASS' if report.ok else 'FAIL: ' + report.summary[:90]}", fontsize=9
        )
        fig.tight_layout()
        path = directory / f"gradients_{len(written) + 1}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # The V curve: error of a central difference against its step, on the first network.
    problem = outcome.reports[0][0]
    model = numpy_model.build(
        problem.params, problem.X, problem.Y, problem.activations, problem.cost, problem.l2
    )
    _, ref = jax_gradients(problem.params, problem.X, problem.Y, **problem.kwargs())
    direction = np.random.default_rng(0).normal(size=problem.params[0][0].shape)
    direction /= np.linalg.norm(direction)
    exact = float(np.sum(direction * ref[0][0]))  # the directional derivative along it
    steps = np.logspace(-13, -1, 49)
    errors = []
    for h in steps:
        up = [(problem.params[0][0] + h * direction, problem.params[0][1]), *problem.params[1:]]
        down = [(problem.params[0][0] - h * direction, problem.params[0][1]), *problem.params[1:]]
        d = (numpy_model.loss_at(model, up) - numpy_model.loss_at(model, down)) / (2 * h)
        errors.append(abs(d - exact) + 1e-300)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(steps, errors, "o-", ms=3)
    ax.axvline(
        finite_diff.STEP, color="r", ls="--", label=f"chosen h = eps^(1/3) = {finite_diff.STEP:.1e}"
    )
    ax.set_xlabel("step h")
    ax.set_ylabel("|central difference - JAX|")
    ax.set_title("Truncation (right, ~h^2) against round-off (left, ~eps/h)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = directory / "fd_error_vs_step.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def heatmap_gradients(
    runner: Runner, outcome: Outcome, names: list[str]
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The implementation's gradients on the networks ``names`` (``--html``'s heatmaps),
    through ``runner``; a network whose call fails, hangs or returns no arrays is left out."""
    problems = {p.name: (p, r) for p, r in outcome.reports}
    chosen = [problems[n][0] for n in names if n in problems and problems[n][1].layers]
    computed = runner.run(gradients_of, chosen) if chosen else []
    if not isinstance(computed, list):  # the worker hung or died on them
        return {}
    found = {}
    for problem, grads in zip(chosen, computed):
        arrays = as_arrays(grads) if grads is not None else None
        if arrays is not None:
            found[problem.name] = arrays
    return found
