"""The optional L2 penalty in the judging: what it adds to the rounding bounds.

The penalty (Nielsen, "Neural Networks and Deep Learning", ch. 3, "Regularization",
eq. 87) adds lambda/(2m) sum_l sum(W^l ** 2) to J, biases excluded, and (lambda/m) W^l to
dJ/dW^l. An implementation declares it (``SUPPORTS = {"penalties": ["l2"]}``,
:mod:`reference.inputs.scope`) and is then called with ``l2=lambda``; one that does not is
never called with the keyword.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..tolerances import PENALTY_ROUNDING, PROPORTION_RTOL

if TYPE_CHECKING:
    from ..oracles.jax_model import JaxResult


def with_penalty_rounding(
    ref: JaxResult, params, l2: float, m: int, eps: float = float(np.finfo(np.float64).eps)
) -> JaxResult:
    """``ref`` with each dW^l entry's rounding bound raised by what the penalty's gradient adds
    at unit roundoff ``eps``:

        rounding(dW^l) += PENALTY_ROUNDING eps (|(lambda/m) W^l| + |dJ/dW^l|)

    the product (lambda/m) W^l's own rounding and that of the sum it joins. The biases'
    bounds are unchanged (the penalty leaves db alone). ``l2`` = 0 returns ``ref``."""
    if not l2:
        return ref
    rounding = [
        (rW + PENALTY_ROUNDING * eps * (np.abs(l2 / m * np.asarray(W)) + np.abs(gW)), rb)
        for (rW, rb), (W, _), (gW, _) in zip(ref.rounding, params, ref.grads)
    ]
    squares = sum(float(np.sum(np.square(W))) for W, _ in params)
    count = sum(np.size(W) for W, _ in params)
    loss_rounding = ref.loss_rounding + (count + 2) * eps * l2 / (2 * m) * squares
    return ref._replace(rounding=rounding, loss_rounding=loss_rounding)


def penalty_blame(checks, grads, ref: JaxResult | None, params, l2: float, m: int):
    """``(blame, summary)`` when every failing array is a dW (or every one a db) and the error
    is c (lambda/m) times the parameters themselves, W^l (or b^l), the same c in every
    layer: a mistake in the penalty's gradient, named; None otherwise.

    c = m - 1 on the dW is lambda W for (lambda/m) W (the 1/m missing); c = 1 on the db is the
    penalty's gradient applied to the biases, which the penalty leaves out."""
    failing = [c for c in checks if not c.ok]
    kinds = {c.param for c in failing}
    if not l2 or ref is None or len(kinds) != 1:
        return None
    k = "Wb".index(next(iter(kinds)))
    error = np.concatenate([np.ravel(g[k] - r[k]) for g, r in zip(grads, ref.grads)])
    theta = np.concatenate([np.ravel(p[k]) for p in params])
    size = float(np.vdot(theta, theta))
    if size == 0.0 or not np.isfinite(error).all():
        return None
    c = float(np.vdot(error, theta)) / size
    if not np.linalg.norm(error - c * theta) <= PROPORTION_RTOL * np.linalg.norm(error):
        return None
    times = c / (l2 / m)
    p = "Wb"[k]
    blame = {"layer": max(ch.layer for ch in failing), "param": p}
    if k == 1 and abs(times - 1) <= 1e-6:
        return blame, (
            "every db^l is off by (lambda/m) b^l: the L2 penalty's gradient is applied to the "
            "biases, which the penalty (a sum over the weights) leaves out"
        )
    if k == 0 and m > 1 and abs(times - (m - 1)) <= 1e-6 * m:
        return blame, (
            "every dW^l is off by (m - 1)(lambda/m) W^l: the L2 penalty's gradient is lambda W "
            "instead of (lambda/m) W (its 1/m is missing)"
        )
    return blame, (
        f"every d{p}^l is off by {times:.6g} times (lambda/m) {p}^l: look at the L2 penalty's "
        f"gradient (lambda/m) W^l, which is added to dW alone"
    )
