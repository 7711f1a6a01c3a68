"""Gradient descent: the update rule and the training loop (the seed's section 12).

    W := W - alpha dJ/dW        b := b - alpha dJ/db

Training repeats forward pass, cost, backward pass and update, and stops at the
first of the seed's criteria:

- ``"max_iterations"``: the maximum number of iterations (updates) is reached;
- ``"converged"``: the gradient's norm fell below the tolerance (optimum found);
- ``"no_more_batches"``: the data ran out (a finite iterable, or ``epochs``);

and one the seed does not need but a user does: ``"diverged"``, the loss is no
longer finite; the parameters returned are then the last ones whose loss was.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TextIO

import numpy as np

from . import _validate
from .costs import Cost
from .network import Grads, Params, backward, cost_value, forward_pass, l2_penalty, with_l2

STOP_REASONS = ("max_iterations", "converged", "no_more_batches", "diverged")


@dataclass
class History:
    """Per iteration: the loss and the gradient's norm at the parameters used; why it stopped.

    ``loss[k]`` and ``grad_norm[k]`` are measured on the k-th batch before the
    k-th update; ``iterations`` counts the updates made.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    stop_reason: str = ""
    iterations: int = 0


class TrainResult(NamedTuple):
    """The trained parameters and the run's :class:`History`."""

    params: Params
    history: History


def update(params: Params, grads: Grads, learning_rate: float) -> Params:
    """New parameters ``[(W - alpha dW, b - alpha db), ...]``; the inputs are left unchanged."""
    p = _validate.check_params(params)
    alpha = _validate.check_positive_real(learning_rate, "learning_rate")
    if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence) or len(grads) != len(p):
        n = len(grads) if isinstance(grads, Sequence) else type(grads).__name__
        raise ValueError(f"grads must hold one (dW, db) pair per layer ({len(p)}), got {n}")
    for l, ((W, b), pair) in enumerate(zip(p, grads), start=1):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"layer {l}: grads[{l - 1}] must be a (dW, db) pair")
        for name, param, g in (("W", W, pair[0]), ("b", b, pair[1])):
            if np.shape(g) != param.shape:
                raise ValueError(
                    f"layer {l}: d{name} has shape {np.shape(g)} but {name} has shape {param.shape}"
                )
            _validate.check_finite_real(g, f"layer {l}: d{name}")
    with np.errstate(over="ignore", invalid="ignore"):
        new = _step(p, grads, alpha)
    for l, (W, b) in enumerate(new, start=1):
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(
                f"layer {l}: W - learning_rate * dW overflows float64 "
                f"(learning_rate {alpha:g} times gradients up to "
                f"{max(float(np.max(np.abs(g))) for g in grads[l - 1]):.3g})"
            )
    return new


def _step(params: Params, grads: Grads, alpha: float) -> Params:
    return [(W - alpha * dW, b - alpha * db) for (W, b), (dW, db) in zip(params, grads)]


def _grad_norm(grads: Grads) -> float:
    """sqrt of the sum of every squared entry of every dW and db."""
    return math.sqrt(sum(float(np.vdot(dW, dW)) + float(np.vdot(db, db)) for dW, db in grads))


def _minibatches(
    X: np.ndarray, Y: np.ndarray, batch_size: int, epochs: int | None, seed: object
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled batches of ``batch_size`` columns (the last one of an epoch may be smaller)."""
    rng = np.random.default_rng(seed)  # type: ignore[arg-type]
    m = X.shape[1]
    epoch = 0
    while epochs is None or epoch < epochs:
        order = rng.permutation(m)
        for start in range(0, m, batch_size):
            cols = order[start : start + batch_size]
            yield X[:, cols], Y[:, cols]
        epoch += 1


class _Progress:
    """A one-line progress bar on a stream, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.last = total, stream, 0.0

    def show(self, k: int, loss: float, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < 0.1:
            return
        self.last = now
        done = int(30 * k / self.total)
        self.stream.write(f"\r[{'#' * done}{'.' * (30 - done)}] {k}/{self.total} loss {loss:.6g}")
        if final:
            self.stream.write("\n")
        self.stream.flush()


def train(
    params: Params,
    X: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    *,
    activations: Sequence[str],
    cost: str,
    learning_rate: float = 0.1,
    max_iterations: int = 1000,
    tolerance: float = 1e-6,
    batch_size: int | None = None,
    epochs: int | None = None,
    batches: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
    seed: int | None = None,
    progress: bool | TextIO = False,
    l2: float = 0.0,
) -> TrainResult:
    """Gradient descent from ``params`` until the first stopping criterion fires.

    Data comes either as ``X`` (n_0, m) and ``Y`` (n_L, m), used whole
    (``batch_size=None``) or in shuffled mini-batches of ``batch_size`` columns
    (``seed`` fixes the shuffling; ``epochs`` limits the passes, after which the
    run stops with ``"no_more_batches"``), or as ``batches``, any iterable of
    ``(X, Y)`` pairs, each checked as it comes.

    Each iteration: forward pass, J, backward pass; stop if J is not finite
    (``"diverged"``, returning the previous parameters) or if ||grad|| <
    ``tolerance`` (``"converged"``); otherwise W := W - alpha dW,
    b := b - alpha db; stop after ``max_iterations`` updates. ``progress``
    (True for stderr, or a stream) draws a bar. ``l2`` = lambda > 0 adds the L2 penalty
    lambda/(2m) sum ||W^l||^2 of each batch of m columns to J and (lambda/m) W^l to dW
    (:func:`~backprop.network.l2_penalty`). Returns ``(params, history)``.
    """
    p = _validate.check_params(params)
    acts = _validate.check_activations(activations, len(p))
    entry = _validate.check_cost(cost, acts)
    alpha = _validate.check_positive_real(learning_rate, "learning_rate")
    lam = _validate.check_l2(l2)
    max_iterations = _validate.check_positive_int(max_iterations, "max_iterations")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
    if epochs is not None:
        epochs = _validate.check_positive_int(epochs, "epochs")

    source, checked = _data_source(p, X, Y, cost, batches, batch_size, epochs, seed)
    bar = _progress_bar(progress, max_iterations)
    history = History()
    previous = p
    history.stop_reason = "no_more_batches"
    for k, batch in enumerate(source):
        Xb, Yb = batch if checked else _checked_batch(k, batch, p, cost)
        J, grads, norm = _evaluate(p, Xb, Yb, acts, entry, lam)
        history.loss.append(J)
        if not math.isfinite(J):
            history.grad_norm.append(math.nan)
            history.stop_reason = "diverged"
            p = previous
            break
        history.grad_norm.append(norm)
        if norm < tolerance:
            history.stop_reason = "converged"
            break
        previous, p = p, _step(p, grads, alpha)
        history.iterations += 1
        if bar is not None:
            bar.show(history.iterations, J)
        if history.iterations >= max_iterations:
            history.stop_reason = "max_iterations"
            break
    if bar is not None:
        bar.show(history.iterations, history.loss[-1] if history.loss else math.nan, final=True)
    return TrainResult(p, history)


def _data_source(
    p: Params,
    X: np.ndarray | None,
    Y: np.ndarray | None,
    cost: str,
    batches: Iterable[tuple[np.ndarray, np.ndarray]] | None,
    batch_size: int | None,
    epochs: int | None,
    seed: int | None,
) -> tuple[Iterable[tuple[np.ndarray, np.ndarray]], bool]:
    """Where :func:`train`'s batches come from, and whether they are checked already:
    ``batches`` as they come (each checked when it arrives), or X (n_0, m) and Y (n_L, m),
    checked once, whole or in shuffled mini-batches of ``batch_size`` columns."""
    if batches is not None:
        if X is not None or Y is not None:
            raise ValueError("give either X and Y or batches, not both")
        if batch_size is not None or epochs is not None:
            raise ValueError(
                "batch_size and epochs apply to X and Y; batches are used as they come"
            )
        return batches, False
    if X is None or Y is None:
        raise ValueError("train needs X and Y, or batches")
    Xc = _validate.check_X(X, p)
    Yc = _validate.check_Y(Y, Xc, p, cost)
    if batch_size is None:
        return _repeat(Xc, Yc, epochs), True
    batch_size = _validate.check_positive_int(batch_size, "batch_size")
    return _minibatches(Xc, Yc, batch_size, epochs, seed), True


def _progress_bar(progress: bool | TextIO, total: int) -> _Progress | None:
    """The bar ``progress`` asks for (True: on stderr; a stream: on it), or None."""
    if not isinstance(progress, bool) and not callable(getattr(progress, "write", None)):
        raise TypeError(
            f"progress must be True, False or a writable stream, got {type(progress).__name__} "
            f"{progress!r}"
        )
    if progress:
        return _Progress(total, sys.stderr if progress is True else progress)
    return None


def _checked_batch(k: int, batch: object, p: Params, cost: str) -> tuple[np.ndarray, np.ndarray]:
    """Item ``k`` of ``batches`` as a checked (X (n_0, m), Y (n_L, m)) pair."""
    if not isinstance(batch, Sequence) or len(batch) != 2:
        raise TypeError(f"batch {k}: each item of batches must be an (X, Y) pair")
    Xb = _validate.check_X(batch[0], p)
    return Xb, _validate.check_Y(batch[1], Xb, p, cost)


def _evaluate(
    p: Params, X: np.ndarray, Y: np.ndarray, acts: Sequence[str], entry: Cost, lam: float
) -> tuple[float, Grads | None, float]:
    """J = cost + lambda/(2m) sum ||W^l||^2 on the batch (m = X.shape[1]), and, where J is
    finite, the gradients dW^l (n_l, n_{l-1}), db^l (n_l, 1) with (lambda/m) W^l added and
    their norm; ``(J, None, nan)`` otherwise."""
    # A diverging run overflows on its way to a non-finite loss; that is
    # reported as the stop reason, not as warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        cache = forward_pass(p, X, acts)
        J = cost_value(cache, Y, acts, entry) + l2_penalty(p, lam, X.shape[1])
        if not math.isfinite(J):
            return J, None, math.nan
        grads = with_l2(backward(p, cache, Y, acts, entry), p, lam, X.shape[1])
        return J, grads, _grad_norm(grads)


def _repeat(
    X: np.ndarray, Y: np.ndarray, epochs: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The full batch, ``epochs`` times (forever when None)."""
    k = 0
    while epochs is None or k < epochs:
        yield X, Y
        k += 1
