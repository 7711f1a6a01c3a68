"""The finite-difference oracle's own forward model: the formulas again, in NumPy float64.

Written from DESIGN.md's conventions, not from ``backprop``: finite differences
need a function they can evaluate thousands of times cheaply, in batches, and
whose relu masks they can see.

    Z^l = W^l A^{l-1} + b^l,   A^l = g_l(Z^l),   J = (1/m) sum term(A^L, Y)

Each activation twin lists its kinks (the z where g' jumps), which is all the
finite differences need to know to stay off them, and says whether it is
elementwise (softmax is not: it normalises each column, axis 0).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..formulas.numpy_twins import NumpyActivation
from ..formulas.specs import NUMPY_ACTIVATIONS, NUMPY_COSTS


def has_twins(activations: Sequence[str], cost: str) -> bool:
    """Whether this model can evaluate the network (a fork's new name may have no twin yet)."""
    from ..registry import load_entry_points

    load_entry_points()
    return cost in NUMPY_COSTS and all(a in NUMPY_ACTIVATIONS for a in activations)


@dataclass(eq=False)
class Model:
    """One problem bound to the twins: the network, its data and its base forward pass."""

    params: list[tuple[np.ndarray, np.ndarray]]
    X: np.ndarray
    Y: np.ndarray
    g: list[NumpyActivation]
    terms: Callable[[np.ndarray, np.ndarray], np.ndarray]
    on_logits: bool
    Z: list[np.ndarray]
    A: list[np.ndarray]
    l2: float = 0.0
    """The L2 penalty's lambda: J gains lambda/(2m) sum_l ||W^l||^2 (:func:`penalty`)."""
    near: list[np.ndarray] | None = None
    """Per layer, (n_l, m): the pre-activations within rounding of a kink, where a correct
    implementation may land on either side (the JAX model finds them: ``JaxResult.near_kink``).
    A finite difference that moves one of them is not evaluated on a known side of the kink:
    :mod:`finite_diff` excludes it. None: none known."""

    @property
    def m(self) -> int:
        return self.X.shape[1]

    def loss(self) -> float:
        """J at the base point."""
        J = float(np.sum(self.terms(self.output(self.Z[-1], self.A[-1]), self.Y))) / self.m
        return J + penalty(self.params, self.l2, self.m)

    def output(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """What the cost terms read: Z^L for a cost on logits, else A^L."""
        return Z if self.on_logits else A

    @functools.cached_property
    def rounding(self) -> float:
        """:func:`rounding_sensitivity` at the base point, computed once."""
        return rounding_sensitivity(self)


def penalty(params: Sequence[tuple[np.ndarray, np.ndarray]], l2: float, m: int) -> float:
    """The L2 penalty lambda/(2m) sum_l sum(W^l ** 2), biases excluded, written from its
    definition (Nielsen, "Neural Networks and Deep Learning", ch. 3, "Regularization",
    eq. 87: C = C_0 + lambda/(2n) sum_w w^2); its gradient is (lambda/m) W^l."""
    if not l2:
        return 0.0
    return l2 / (2 * m) * sum(float(np.sum(np.square(W))) for W, _ in params)


def build(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    activations: Sequence[str],
    cost: str,
    l2: float = 0.0,
) -> Model:
    """Bind a problem to the twins and run its forward pass once (float64); ``l2``: the
    penalty's lambda."""
    p = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    g = [NUMPY_ACTIVATIONS[a] for a in activations]
    twin = NUMPY_COSTS[cost]
    logits = twin.from_logits.get(activations[-1])
    Z, A = [], [X]
    for (W, b), act in zip(p, g):
        Z.append(W @ A[-1] + b)
        A.append(act.fn(Z[-1]))
    return Model(
        p, X, Y, g, logits if logits is not None else twin.term, logits is not None, Z, A, l2
    )


def loss_at(model: Model, params: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """J of the model's network at other parameters (same data, same twins)."""
    A = model.X
    for (W, b), act in zip(params, model.g):
        Z = W @ A + b
        A = act.fn(Z)
    J = float(np.sum(model.terms(model.output(Z, A), model.Y))) / model.m
    return J + penalty(params, model.l2, model.m)


def rounding_sensitivity(model: Model, draws: int = 3, seed: int = 0) -> float:
    """How much J moves when every intermediate value is off by one rounding.

    Every Z^l and A^l is multiplied by 1 +/- eps (random signs) on its way
    through the network; the largest change of J over a few draws measures the
    rounding noise of an evaluation of J, which a finite difference divides by h.
    (The rounding of J's own sum is much smaller wherever J is a small
    difference of large terms, and this is where it matters.)
    """
    eps = np.finfo(np.float64).eps
    rng = np.random.default_rng(seed)
    J0 = model.loss()
    worst = 0.0
    for _ in range(draws):
        A = model.X
        for (W, b), act in zip(model.params, model.g):
            Z = (W @ A + b) * (1 + eps * rng.choice([-1.0, 1.0], size=(W.shape[0], A.shape[1])))
            A = act.fn(Z) * (1 + eps * rng.choice([-1.0, 1.0], size=Z.shape))
        J = float(np.sum(model.terms(model.output(Z, A), model.Y))) / model.m
        worst = max(worst, abs(J + penalty(model.params, model.l2, model.m) - J0))
    # the penalty's sum of squares rounds by at most (count + 2) eps times itself
    count = sum(W.size for W, _ in model.params)
    return worst + (count + 2) * eps * penalty(model.params, model.l2, model.m)


def loss_in(model: Model, dtype: str) -> float:
    """J from the same twins with every array and operation in ``dtype`` (float32, float16):
    one correct implementation at that precision, rounding its float64 inputs first.

    The in-place twins keep their argument's dtype; a twin without one computes in float64
    and is rounded back, which is as if its own function were exact.
    """
    A = model.X.astype(dtype)
    Z = A
    for (W, b), act in zip(model.params, model.g):
        Z = W.astype(dtype) @ A + b.astype(dtype)
        A = act.inplace(Z.copy()) if act.inplace is not None else act.fn(Z).astype(dtype)
    with np.errstate(all="ignore"):
        terms = model.terms(model.output(Z, A), model.Y.astype(dtype)).astype(dtype)
        J = np.sum(terms, dtype=dtype) / np.asarray(model.m, dtype)
        if model.l2:
            squares = sum(np.sum(np.square(W.astype(dtype)), dtype=dtype) for W, _ in model.params)
            J = J + np.asarray(model.l2, dtype) / np.asarray(2 * model.m, dtype) * squares
        return float(J)


def kink_side(act: NumpyActivation, Z: np.ndarray) -> np.ndarray | None:
    """For each entry, which piece of g it lies on (an integer code), or None if g has no kinks."""
    if not act.kinks:
        return None
    if len(act.kinks) == 1:
        return Z >= act.kinks[0]
    side = np.zeros(Z.shape, dtype=np.int8)
    for k in act.kinks:
        side += Z >= k
    return side
