"""The NumPy twin of every built-in activation and cost: the formulas the finite-difference
oracle evaluates (:mod:`reference.oracles.numpy_model`), written from DESIGN.md's conventions,
not from ``backprop``, and the records the oracle reads them as (:class:`NumpyActivation`,
:class:`NumpyCost`).

The tables that name them live in :mod:`.specs`: one :class:`~.specs.ActivationSpec` or
:class:`~.specs.CostSpec` per name holds its NumPy twin beside its JAX twin, its kinks and its
rounding, and :data:`.specs.NUMPY_ACTIVATIONS` / :data:`.specs.NUMPY_COSTS` are the views of
those specs the oracle reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def sigmoid_inplace(z: np.ndarray) -> np.ndarray:
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


def tanh_inplace(z: np.ndarray) -> np.ndarray:
    """tanh(z), written into z."""
    return np.tanh(z, out=z)


def relu_inplace(z: np.ndarray) -> np.ndarray:
    """max(z, 0): z for z >= 0 and 0 below, written into z."""
    return np.maximum(z, 0.0, out=z)


def leaky_relu_inplace(z: np.ndarray) -> np.ndarray:
    """z for z >= 0 and :data:`LEAKY_SLOPE` z below, written into z."""
    # max(z, s z) is z for z >= 0 and s z below, for any slope s in [0, 1)
    return np.maximum(z, LEAKY_SLOPE * z, out=z)


def identity_inplace(z: np.ndarray) -> np.ndarray:
    """z itself."""
    return z


def softmax_inplace(z: np.ndarray) -> np.ndarray:
    """e^{z_i - c} / sum_k e^{z_k - c} along axis 0, c the largest z of the column, into z."""
    z -= z.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) along axis 0, shifted by the column's largest z (finite for finite z)."""
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def cce_term(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-Y log A: cce's J = -1/m sum Y log A, Y one-hot by columns."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -y * np.log(a)
    return np.where(y == 0, 0.0, t)  # 0 log 0 = 0


def copied(inplace: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The out-of-place form of an in-place twin: the same code, so the same bits."""
    return lambda z: inplace(np.array(z, dtype=np.float64, copy=True))


def bce_term(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-Y log A - (1 - Y) log(1 - A): bce's J = 1/m sum of them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -y * np.log(a) - (1.0 - y) * np.log1p(-a)
    # 0 log 0 = 0: a label of exactly 0 or 1 at a saturated output costs nothing.
    return np.where(((y == 0) & (a == 0)) | ((y == 1) & (a == 1)), 0.0, t)


def mse_term(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(A - Y)^2 / 2: mse's J = 1/(2m) sum (A - Y)^2."""
    return 0.5 * (a - y) ** 2


def bce_term_from_sigmoid(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """bce's terms from the logits of a sigmoid output: softplus(Z) - Y Z, finite however
    saturated Z is."""
    return np.logaddexp(0.0, z) - y * z


def cce_term_from_softmax(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """cce's terms from the logits of a softmax output: -Y log softmax(Z) by columns."""
    return -y * log_softmax(z)
