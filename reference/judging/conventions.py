"""Cost conventions: a loss that is the seed's cost times a constant common texts use.

Texts differ from the seed's J = (1/m) sum term(A, Y) by a constant: a cost summed over the
m samples (c = m), without mse's 1/2 (c = 2), averaged over the n_L outputs as well
(c = 1/n_L), or a product of these. Such code is right by its own convention, and every
check must hold it to that convention (DESIGN.md, "Checking other people's code": fair):

    J_impl = c J_data + s P,     P = lambda/(2m) sum_l ||W^l||^2 (the L2 penalty, if any)

with s = c (the penalty inside the scaled cost: Nielsen's lambda/2 sum ||W||^2 with a sum
over the samples) or s = 1 (the penalty at the seed's scale, added to a scaled cost: a cost
averaged over the outputs plus lambda/(2m) sum ||W||^2). Any other s (a penalty missing its
1/m or its 1/2) is a wrong penalty, not a convention. Its gradients are then

    dJ_impl/dW^l = c dJ_data/dW^l + s (lambda/m) W^l,    dJ_impl/db^l = c dJ_data/db^l.

:func:`detect` reads (c, s) off the loss against the formulas' own loss; :func:`measure`
does so for one call of an implementation (the checks' and the layer view's networks);
:meth:`CostScale.to_seed` and :meth:`CostScale.of_seed` turn gradients from one convention
to the other, so that a relation the seed's gradients obey (the batch is the mean of its
samples) is checked on the implementation's, whatever convention each call follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tolerances import COST_SCALE_RTOL

TINY = float(np.finfo(np.float64).tiny)

Params = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CostScale:
    """J_impl = ``data`` J_data + ``penalty`` P (see the module docstring); ``names`` says
    which conventions give ``data`` (two where they coincide: mse summed over m = 2 samples
    is mse without its 1/2)."""

    data: float = 1.0
    penalty: float = 1.0
    names: tuple[str, ...] = ()
    l2: float = 0.0
    """The lambda of the call it was measured on (0: no penalty, ``penalty`` says nothing)."""

    @property
    def is_seed(self) -> bool:
        return self.data == 1.0 and (self.penalty == 1.0 or not self.l2)

    def describe(self) -> str:
        """The convention in words: "the cost is 4 times the seed's (summed over the m
        samples)", and where a penalty is on, at which scale it is added."""
        if self.is_seed:
            return "the seed's cost"
        text = f"the cost is {self.data:.6g} times the seed's ({' or '.join(self.names)})"
        if self.l2 and self.penalty == self.data:
            text += ", the L2 penalty with it"
        elif self.l2:
            text += ", with the L2 penalty lambda/(2m) sum ||W^l||^2 added at the seed's scale"
        return text

    def to_seed(self, grads: Params, params: Params, m: int) -> list[tuple[np.ndarray, ...]]:
        """Gradients in this convention as the seed's: dW^l -> (dW^l - s (lambda/m) W^l)/c
        + (lambda/m) W^l, db^l -> db^l / c. ``m``: the batch size they were computed at."""
        k = self.l2 / m
        return [
            (
                (np.asarray(dW) - self.penalty * k * W) / self.data + k * W,
                np.asarray(db) / self.data,
            )
            for (dW, db), (W, _) in zip(grads, params)
        ]

    def of_seed(self, grads: Params, params: Params, m: int) -> list[tuple[np.ndarray, ...]]:
        """The seed's gradients in this convention: dW^l -> c (dW^l - (lambda/m) W^l)
        + s (lambda/m) W^l, db^l -> c db^l (the inverse of :meth:`to_seed`)."""
        k = self.l2 / m
        return [
            (
                self.data * (np.asarray(dW) - k * W) + self.penalty * k * W,
                self.data * np.asarray(db),
            )
            for (dW, db), (W, _) in zip(grads, params)
        ]

    @property
    def largest(self) -> float:
        """The larger of the two factors: what the references' rounding bounds are scaled by."""
        return max(abs(self.data), abs(self.penalty) if self.l2 else 0.0)


SEED = CostScale()
"""The seed's own convention."""


def candidates(m: int, outputs: int, cost: str) -> dict[float, tuple[str, ...]]:
    """The constants c that common conventions put on the seed's cost, for a batch of ``m``
    and ``outputs`` output units, each with the names of the conventions that give it."""
    out: dict[float, list[str]] = {}
    for by_m in (False, True):
        for by_2 in (False, True):
            for by_n in (False, True):
                if not (by_m or by_2 or by_n) or (by_n and outputs == 1):
                    continue
                if by_2 and (cost != "mse" or (by_n and outputs == 2)):
                    continue  # bce has no 1/2; with two outputs the 2 and the 1/2 cancel
                value = (m if by_m else 1) * (2 if by_2 else 1) / (outputs if by_n else 1)
                parts = (
                    ("summed over the m samples", by_m),
                    ("without the 1/2", by_2),
                    ("averaged over the outputs", by_n),
                )
                out.setdefault(value, []).append(" and ".join(w for w, on in parts if on))
    return {value: tuple(names) for value, names in out.items()}


def detect(
    impl_loss: float,
    data_loss: float,
    penalty_loss: float,
    m: int,
    outputs: int,
    cost: str,
    rtol: float = COST_SCALE_RTOL,
    l2: float = 0.0,
) -> CostScale | None:
    """The convention (c, s) under which ``impl_loss`` = c ``data_loss`` + s ``penalty_loss``
    (the formulas' J_data and P), c one of :func:`candidates` and s = c or 1 (s = c first);
    :data:`SEED` when it is the seed's cost itself; None when it is none of them."""
    if not np.isfinite(impl_loss) or abs(data_loss) + abs(penalty_loss) <= TINY:
        return None

    def fits(c: float, s: float) -> bool:
        want = c * data_loss + s * penalty_loss
        return abs(impl_loss - want) <= rtol * max(abs(want), TINY)

    if fits(1.0, 1.0):
        return SEED
    for c, names in candidates(m, outputs, cost).items():
        for s in (c, 1.0) if l2 else (c,):
            if fits(c, s):
                return CostScale(c, s, names, l2)
    return None


def measure(
    impl: Any,
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    l2: float = 0.0,
    rtol: float = COST_SCALE_RTOL,
) -> CostScale:
    """The convention of ``impl``'s loss on this network and batch: its ``loss`` (through the
    boundary: a failure raises :class:`~reference.boundary.guard.ImplementationFailed`)
    against the formulas' NumPy twins (:mod:`reference.oracles.numpy_model`). The seed's
    (:data:`SEED`) where the loss is no known multiple of the formulas' or a twin is missing:
    the checks then hold the code to the seed's convention, as before any was detected."""
    from ..oracles import numpy_model

    if not numpy_model.has_twins(activations, cost):
        return SEED
    J = impl.loss(params, X, Y, activations=list(activations), cost=cost, l2=l2)
    m = np.shape(X)[1]
    with np.errstate(all="ignore"):
        model = numpy_model.build(params, X, Y, activations, cost)
        data = model.loss()
    penalty = numpy_model.penalty(params, l2, m)
    found = detect(J, data, penalty, m, np.shape(Y)[0], cost, rtol, l2)
    return found if found is not None else SEED
