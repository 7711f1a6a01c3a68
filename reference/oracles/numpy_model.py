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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01
"""leaky relu's slope below 0 (Maas, Hannun and Ng, ICML 2013; PyTorch's and JAX's default)."""


class MissingTwinError(LookupError):
    """A name in the implementation's tables has no twin in an oracle; the message says what
    to add."""


class NumpyActivation(NamedTuple):
    """g(z), elementwise; ``kinks``: the points where g is not differentiable.

    ``inplace(z)``, where given, computes the same values into z and returns it:
    finite differences evaluate g on millions of entries, and a temporary fewer
    is time saved.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    kinks: tuple[float, ...] = ()
    inplace: Callable[[np.ndarray], np.ndarray] | None = None
    elementwise: bool = True
    """False for g whose outputs each depend on a whole column (softmax): ``fn`` then
    works along axis 0 of an array of any rank, (n_L, m) or (n_L, P, m); such a g is
    taken on the output layer only."""


class NumpyCost(NamedTuple):
    """J = (1/m) sum term(A, Y); ``from_logits[g](z, y)``: the same terms from Z^L."""

    term: Callable[[np.ndarray, np.ndarray], np.ndarray]
    from_logits: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}


def _sigmoid_inplace(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^{-z}), written into z.

    The formula as it stands is accurate in floating point: for z < 0, 1 + e^{-z}
    is large and its reciprocal keeps full relative precision; below z of about
    -709, e^{-z} overflows to inf and the result is 0, where the true value is
    under 1e-308. Four passes and no mask (a masked pass is several times slower).
    """
    np.negative(z, out=z)
    with np.errstate(over="ignore"):
        np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def _tanh_inplace(z: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=z)


def _relu_inplace(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=z)


def _leaky_relu_inplace(z: np.ndarray) -> np.ndarray:
    # max(z, s z) is z for z >= 0 and s z below, for any slope s in [0, 1)
    return np.maximum(z, LEAKY_SLOPE * z, out=z)


def _identity_inplace(z: np.ndarray) -> np.ndarray:
    return z


def _softmax_inplace(z: np.ndarray) -> np.ndarray:
    """e^{z_i - c} / sum_k e^{z_k - c} along axis 0, c the largest z of the column, into z."""
    z -= z.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) along axis 0, shifted by the column's largest z (finite for finite z)."""
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def _cce_term(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -y * np.log(a)
    return np.where(y == 0, 0.0, t)  # 0 log 0 = 0


def _copied(inplace: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The out-of-place form of an in-place twin: the same code, so the same bits."""
    return lambda z: inplace(np.array(z, dtype=np.float64, copy=True))


def _bce_term(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -y * np.log(a) - (1.0 - y) * np.log1p(-a)
    # 0 log 0 = 0: a label of exactly 0 or 1 at a saturated output costs nothing.
    return np.where(((y == 0) & (a == 0)) | ((y == 1) & (a == 1)), 0.0, t)


NUMPY_ACTIVATIONS: dict[str, NumpyActivation] = {
    "sigmoid": NumpyActivation(_copied(_sigmoid_inplace), inplace=_sigmoid_inplace),
    "tanh": NumpyActivation(_copied(_tanh_inplace), inplace=_tanh_inplace),
    # max(z, 0): z for z >= 0 and 0 below; the kink at 0 is listed for finite differences.
    "relu": NumpyActivation(_copied(_relu_inplace), kinks=(0.0,), inplace=_relu_inplace),
    # z for z >= 0, 0.01 z below (the slope is LEAKY_SLOPE); the same kink as relu's.
    "leaky_relu": NumpyActivation(
        _copied(_leaky_relu_inplace), kinks=(0.0,), inplace=_leaky_relu_inplace
    ),
    "identity": NumpyActivation(_copied(_identity_inplace), inplace=_identity_inplace),
    # e^{z_i} / sum_k e^{z_k} over each column: not elementwise.
    "softmax": NumpyActivation(
        _copied(_softmax_inplace), inplace=_softmax_inplace, elementwise=False
    ),
}
"""NumPy twins of ``backprop.ACTIVATIONS``, by name."""

NUMPY_COSTS: dict[str, NumpyCost] = {
    "mse": NumpyCost(lambda a, y: 0.5 * (a - y) ** 2),
    "bce": NumpyCost(_bce_term, {"sigmoid": lambda z, y: np.logaddexp(0.0, z) - y * z}),
    # -Y log A; from the logits of a softmax output, -Y log softmax(Z) by columns
    "cce": NumpyCost(_cce_term, {"softmax": lambda z, y: -y * _log_softmax(z)}),
}
"""NumPy twins of ``backprop.COSTS``, by name."""


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
