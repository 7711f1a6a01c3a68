"""Cost functions and their derivatives with respect to the output A, in one table.

Every cost is a pair ``fn(a, y) -> J`` / ``grad(a, y) -> dJ/dA``, with A and Y
of shape (n_L, m) and m the number of samples (columns); the 1/m of the seed's
table is part of both.

A cost may also carry *fused* forms for particular output activations: the
loss computed from the pre-activation Z^L and the output delta
dZ^L = dJ/dA * g'(Z^L) simplified by hand. ``bce`` with a sigmoid output and
``cce`` with a softmax output use them, so a saturated output (A exactly 0 or 1
in float64) still gives a finite loss and finite, correct gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


class Fused(NamedTuple):
    """A cost's closed forms for one output activation.

    ``fn(z, y) -> J`` from the output pre-activation Z^L, and
    ``delta(a, y) -> dZ^L``, both for Z^L, A^L, Y of shape (n_L, m).
    """

    fn: Callable[[Array, Array], float]
    delta: Callable[[Array, Array], Array]


class Cost(NamedTuple):
    """A cost J(A, Y), its derivative dJ/dA, and what it needs of the output layer.

    ``output_activations``: the output activations the cost accepts (None: any).
    ``fused``: closed forms keyed by output activation name (see :class:`Fused`).
    """

    fn: Callable[[Array, Array], float]
    grad: Callable[[Array, Array], Array]
    output_activations: frozenset[str] | None = None
    fused: Mapping[str, Fused] = MappingProxyType({})


# --- mse ---------------------------------------------------------------------


def mse(a: Array, y: Array) -> float:
    """J = 1/(2m) sum (A - Y)^2."""
    m = a.shape[1]
    diff = a - y
    return float(np.vdot(diff, diff)) / (2 * m)


def mse_grad(a: Array, y: Array) -> Array:
    """dJ/dA = (A - Y) / m."""
    d = np.subtract(a, y)
    d /= a.shape[1]  # in place: a Python int keeps float32 float32
    return d


# --- bce ---------------------------------------------------------------------


def _xlogx(weight: Array, p: Array) -> Array:
    """weight * log(p), with 0 * log(0) taken as 0 (its limit)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = weight * np.log(p)
    return np.where(weight == 0, 0.0, out)


def bce(a: Array, y: Array) -> float:
    """J = 1/m sum -Y log A - (1 - Y) log(1 - A).

    From A alone this is infinite where A has rounded to 0 or 1 against the
    label; :func:`bce_from_logits` (the fused form used with a sigmoid output)
    is not.
    """
    m = a.shape[1]
    return float(-np.sum(_xlogx(y, a) + _xlogx(1.0 - y, 1.0 - a))) / m


def bce_grad(a: Array, y: Array) -> Array:
    """dJ/dA = (1/m) (-Y/A + (1 - Y)/(1 - A)), the seed's form.

    Unbounded as A approaches 0 or 1; backprop uses :func:`bce_sigmoid_delta`
    instead whenever the output is a sigmoid.
    """
    return (-y / a + (1.0 - y) / (1.0 - a)) / a.shape[1]


def bce_from_logits(z: Array, y: Array) -> float:
    """J = 1/m sum softplus(Z) - Y Z, which is bce(sigmoid(Z), Y).

    -Y log s(Z) - (1 - Y) log(1 - s(Z)) = Y softplus(-Z) + (1 - Y) softplus(Z)
    and softplus(-Z) = softplus(Z) - Z; softplus(Z) = log(1 + e^Z) is computed
    as logaddexp(0, Z), finite for every finite Z.
    """
    m = z.shape[1]
    terms = np.multiply(y, z)  # of the promoted dtype, which the difference keeps
    np.subtract(np.logaddexp(0.0, z), terms, out=terms)
    return float(np.add.reduce(terms, axis=None)) / m


def bce_sigmoid_delta(a: Array, y: Array) -> Array:
    """dZ^L = dJ/dA * A(1 - A) = (A - Y) / m for a sigmoid output."""
    d = np.subtract(a, y)
    d /= a.shape[1]
    return d


# --- cce (categorical cross-entropy) ------------------------------------------


def cce(a: Array, y: Array) -> float:
    """J = -(1/m) sum Y log A, Y one-hot by columns (each column a class).

    From A alone this is infinite where A has rounded to 0 on a column's label;
    :func:`cce_from_logits` (the fused form used with a softmax output) is not.
    """
    m = a.shape[1]
    return float(-np.sum(_xlogx(y, a))) / m


def cce_grad(a: Array, y: Array) -> Array:
    """dJ/dA = -(1/m) Y / A (0 where Y is 0).

    Unbounded as A approaches 0 on a label; backprop uses :func:`cce_softmax_delta`
    whenever the output is a softmax."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = -y / a
    return np.where(y == 0, 0.0, out) / a.shape[1]


def _log_softmax(z: Array) -> Array:
    """log softmax(Z) by columns: Z - c - log sum_k e^{Z_k - c}, c the column's largest Z
    (no exponent is positive, and the sum is at least 1, so its log is finite)."""
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def cce_from_logits(z: Array, y: Array) -> float:
    """J = -(1/m) sum Y log softmax(Z), which is cce(softmax(Z), Y).

    From the logits with the max shift (:func:`_log_softmax`): finite for every finite Z,
    logits of 1e4 included."""
    m = z.shape[1]
    return float(-np.sum(y * _log_softmax(z))) / m


def cce_softmax_delta(a: Array, y: Array) -> Array:
    """dZ^L = dJ/dA times softmax's Jacobian = (A - Y) / m for a softmax output.

    sum_k (-y_k / (m a_k)) a_k (delta_ik - a_i) = (a_i sum_k y_k - y_i) / m, and
    sum_k y_k = 1 for a one-hot column."""
    return (a - y) / a.shape[1]


COSTS: dict[str, Cost] = {
    "mse": Cost(mse, mse_grad),
    "bce": Cost(
        bce,
        bce_grad,
        output_activations=frozenset({"sigmoid"}),
        fused=MappingProxyType({"sigmoid": Fused(bce_from_logits, bce_sigmoid_delta)}),
    ),
    "cce": Cost(
        cce,
        cce_grad,
        output_activations=frozenset({"softmax"}),
        fused=MappingProxyType({"softmax": Fused(cce_from_logits, cce_softmax_delta)}),
    ),
}
"""The cost table, keyed by name: ``COSTS["mse"].grad(a, y)``."""


def register_cost(
    name: str,
    fn: Callable[[Array, Array], float],
    grad: Callable[[Array, Array], Array],
    *,
    output_activations: Iterable[str] | None = None,
    fused: Mapping[str, Fused] | None = None,
    replace: bool = False,
) -> None:
    """Add ``name`` to :data:`COSTS` as a :class:`Cost`, for a fork that keeps its cost in its
    own module: ``fn(a, y) -> J`` and ``grad(a, y) -> dJ/dA`` (the 1/m included),
    ``output_activations`` it takes (None: any; each must be in ``ACTIVATIONS``) and its
    ``fused`` forms by output activation. ``replace=True`` overwrites an entry already there.
    """
    from .activations import ACTIVATIONS, _check_entry

    _check_entry("cost", name, COSTS, replace)
    for argument, value in (("fn", fn), ("grad", grad)):
        if not callable(value):
            raise TypeError(f"{argument} must be callable, got {type(value).__name__}")
    allowed = None
    if output_activations is not None:
        if isinstance(output_activations, str):
            raise TypeError(
                f"output_activations must be names, not one str: {output_activations!r}"
            )
        allowed = frozenset(output_activations)
        unknown = sorted(allowed - set(ACTIVATIONS))
        if not allowed or unknown:
            raise ValueError(
                f"output_activations must name activations of ACTIVATIONS, got {sorted(allowed)}"
            )
    forms = dict(fused or {})
    for activation, form in forms.items():
        if not isinstance(form, Fused):
            raise TypeError(f"fused[{activation!r}] must be a Fused, got {type(form).__name__}")
    COSTS[name] = Cost(fn, grad, output_activations=allowed, fused=MappingProxyType(forms))
