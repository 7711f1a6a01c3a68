"""Judging an implementation that computes in float32 or float16 against the float64 oracles.

The oracles stay float64; what changes is how far a correct implementation may be from them.
The precision an implementation is judged at is the lowest of

- the one it asked for (``dtype`` in its scope, ``--dtype``, ``check_gradients(dtype=...)``):
  the boundary then hands it its arrays in that precision
  (:attr:`~reference.boundary.guard.Guarded.dtype`), and the oracles compute at exactly the
  rounded values it was given;
- the one its results come back in (:attr:`~reference.boundary.guard.Guarded.precision`):
  gradients or a loss in float32 mean a float32 computation, whatever it was given.

At a precision with unit roundoff eps_p (NumPy's ``finfo(dtype).eps``: 2^-52, 2^-23, 2^-10):

- **gradients against JAX**: the JAX model's first-order rounding analysis is linear in eps,
  so it is run at eps_p (``jax_model(..., eps=eps_p)``): its per-entry bound scales by
  eps_p / eps_64 (2^29 for float32), and so does the band around a relu kink within which a
  correct implementation may land on either side. The bound is, as in float64,
  max(floor, JAX_SAFETY ||rounding|| / (||a|| + ||j||)), with the floor from
  :data:`TOLERANCES`;
- **gradients against finite differences**: differences of a float32 loss at the float64
  step h ~ 6e-6 are its rounding (~1e-7 |J|) over h, noise of order 1e-2 relative; at a
  step suited to float32, eps_32^(1/3) ~ 5e-3 (0.1 for float16), Richardson's estimate keeps
  ~1e-4 (float16: ~1e-2) and the step crosses relu kinks at most entries of a network with
  small pre-activations. So below float64 the finite differences are those of the
  formulas (the NumPy model, ``fd="model"``), in float64, and the implementation is held to
  them within the same rounding bound as to JAX. They no longer tell whether ``gradients``
  follows the implementation's own ``loss``: the loss is compared with the formulas'
  directly (next point), and a report names which was done;
- **the loss against JAX's**: within LOSS_SAFETY times a first-order bound on a correct
  implementation's rounding of J,

      |dJ| <= loss_rounding + (n_L m + 4) eps_p sum |terms| / m + |J_p - J|

  where ``loss_rounding`` carries the forward pass's roundings to J through dJ/dZ^l and
  dJ/dA^l (``JaxResult.loss_rounding``), the second term is the rounding of the cost's terms
  and their sum, and the last one is what the same formulas lose when run in that precision
  (:func:`~reference.oracles.numpy_model.loss_in`: it covers a cost that cancels inside a
  term, such as softplus(z) - y z at a saturated z).

The attribution is unchanged: rounding inside these bounds is no finding, so float32's
rounding never reads as "the forward pass or the cost".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..boundary.guard import PRECISIONS, Guarded, lowest_precision
from ..oracles import numpy_model
from ..tolerances import LOSS_SAFETY, TOLERANCES, Tolerances

if TYPE_CHECKING:
    from ..oracles.jax_model import JaxResult


def unit_roundoff(dtype: str) -> float:
    """NumPy's eps of ``dtype``: 2^-52 (float64), 2^-23 (float32), 2^-10 (float16)."""
    return float(np.finfo(dtype).eps)


def check_dtype(dtype: Any) -> str | None:
    """``dtype`` validated: None or one of :data:`PRECISIONS`; a ValueError otherwise."""
    if dtype is not None and dtype not in PRECISIONS:
        raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)} or None, got {dtype!r}")
    return dtype


def requested(guarded: Guarded, dtype: str | None) -> str | None:
    """The precision the implementation is given its arrays in: ``dtype`` when given (set on
    the guard for the calls that follow), else the guard's own; None for float64."""
    if dtype is not None:
        guarded.dtype = None if dtype == "float64" else dtype
    return guarded.dtype


def representable(
    params: Sequence[tuple[np.ndarray, np.ndarray]], X: np.ndarray, Y: np.ndarray, dtype: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """The problem rounded to ``dtype`` and back: float64 arrays holding exactly what an
    implementation given ``dtype`` arrays sees, so the oracles judge it at its own point."""

    def r(a: np.ndarray) -> np.ndarray:
        return np.asarray(a).astype(dtype).astype(np.float64)

    return [(r(W), r(b)) for W, b in params], r(X), r(Y)


def judged_at(guarded: Guarded) -> str:
    """The precision the checks judge ``guarded`` at: the lowest of what it asked for and
    what it returned so far."""
    return lowest_precision(guarded.dtype or "float64", guarded.precision)


def tolerances(guarded: Guarded) -> Tolerances:
    """:data:`TOLERANCES` at :func:`judged_at`'s precision."""
    return TOLERANCES[judged_at(guarded)]


def underflow(dtype: str) -> float:
    """The absolute rounding of ``dtype`` below its normal range: half its smallest subnormal
    (3e-8 for float16, 7e-46 for float32). A value smaller than that flushes to zero, whatever
    the relative eps says (an input of 1e-12 is 0 in float16)."""
    return float(np.finfo(dtype).smallest_subnormal) / 2


def with_underflow(ref: JaxResult, dtype: str, m: int) -> JaxResult:
    """``ref`` with every gradient entry's rounding bound raised by the underflow of the
    operations it is computed from: each entry sums m products along a chain of at most
    L (n_max + 1) products and sums, each of which may flush up to :func:`underflow`:

        rounding += m L (n_max + 1) underflow(dtype)

    (about 1e-5 absolute for float16's networks here, 1e-44 for float32: it matters only where
    a gradient is itself that small, and there the comparison is inconclusive)."""
    widths = [W.shape[0] for W, _ in ref.grads] + [ref.grads[0][0].shape[1]]
    extra = m * len(ref.grads) * (max(widths) + 1) * underflow(dtype)
    return ref._replace(rounding=[(rW + extra, rb + extra) for rW, rb in ref.rounding])


def loss_rounding(
    ref: JaxResult,
    params,
    X: np.ndarray,
    Y: np.ndarray,
    activations,
    cost: str,
    dtype: str,
    l2: float = 0.0,
) -> float:
    """LOSS_SAFETY times the first-order bound on a ``dtype`` implementation's error in J (the
    module docstring's |dJ|); 0 where the NumPy model has no twin for a name (the loss is
    then held to float64's bound). ``l2``: the L2 penalty's lambda, in J and its rounding."""
    if not numpy_model.has_twins(activations, cost):
        return 0.0
    model = numpy_model.build(params, X, Y, activations, cost, l2)
    eps = unit_roundoff(dtype)
    with np.errstate(all="ignore"):
        terms = model.terms(model.output(model.Z[-1], model.A[-1]), model.Y)
        own = float(np.sum(np.abs(terms))) / model.m
        lost = abs(numpy_model.loss_in(model, dtype) - model.loss())
    n = terms.size
    flushed = (n + 4) * underflow(dtype) / model.m  # terms below the normal range
    squares = (
        (sum(W.size for W, _ in model.params) + 4)
        * eps
        * numpy_model.penalty(model.params, l2, model.m)
    )
    bound = LOSS_SAFETY * (ref.loss_rounding + (n + 4) * eps * own + lost + flushed + squares)
    return bound if np.isfinite(bound) else float("inf")


def note(precision: str, asked: str | None, fd: str) -> str:
    """The report's line on how a reduced-precision implementation was judged."""
    how = (
        f"it was given {asked} arrays (as it asked)"
        if asked is not None and asked != "float64"
        else f"its results came back in {precision}"
    )
    text = (
        f"the implementation computes in {precision} ({how}): judged against {precision}'s "
        f"unit roundoff ({unit_roundoff(precision):.3g}): the JAX rounding bounds at that eps, "
        f"the loss within a {precision} rounding bound"
    )
    if fd == "model":
        text += (
            "; finite differences of the formulas in float64 (the NumPy model), not of the "
            f"implementation's {precision} loss, whose rounding over the step would swamp them"
        )
    return text
