"""Richardson-extrapolated finite differences: the steps, and estimates with error bounds.

For an entry theta, with u, v, w and x the changes of J at the steps +h, -h, +2h and -2h
(``FACTORS``), h = eps^(1/3) max(1, |theta|) (:func:`steps`):

    D(h)     = (u - v) / 2h                   = J' + c h^2 + O(h^4)
    D(2h)    = (w - 2 (u + v)) / 2h           = J' + 4 c h^2 + O(h^3)
    estimate = (4 D(h) - D(2h)) / 3           (Richardson: the h^2 term cancels)
    error    = |D(2h) - D(h)| + round-off     (a bound on the estimate's error)

and the one-sided differences likewise where one side crosses a kink (:func:`combine`).
Shared by the network's finite differences (:mod:`.finite_diff`) and any function's
(:mod:`.function_fd`).
"""

from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1 / 3)  # about 6.06e-6 (Numerical Recipes, 3rd ed., section 5.7)

FACTORS = (1.0, -1.0, 2.0, -2.0)
"""The steps, in units of h: every entry gets the first three, the last where it is needed."""

CENTRAL, FORWARD, BACKWARD, EXCLUDED = 0, 1, 2, 3
"""How each entry's estimate was formed (``FDGradients.method``)."""


def steps(theta: np.ndarray) -> np.ndarray:
    """The step for each entry: eps^(1/3) max(1, |theta|)."""
    return STEP * np.maximum(1.0, np.abs(theta))


def combine(
    dJ: np.ndarray, flipped: np.ndarray, h: np.ndarray, roundoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates, error bounds and methods from the perturbed losses of each entry.

    ``dJ`` and ``flipped`` have shape (4, P), one row per factor of ``FACTORS``:
    the steps +h, -h, +2h, -2h. The last row is read only for entries whose plus
    side crosses a kink (the backward difference); elsewhere it may be NaN.
    ``roundoff`` is the size of J's rounding error at theta, eps times the sum of |terms|.
    """
    up, down, up2, down2 = dJ
    plus_flips = flipped[0] | flipped[2]
    minus_flips = flipped[1] | flipped[3]
    method = np.full(h.shape, CENTRAL, dtype=np.int8)
    method[minus_flips & ~plus_flips] = FORWARD
    method[plus_flips & ~minus_flips] = BACKWARD
    method[plus_flips & minus_flips] = EXCLUDED

    with np.errstate(invalid="ignore"):
        d_h, d_2h = (up - down) / (2 * h), (up2 - 2 * (up + down)) / (2 * h)
        f_h, f_2h = up / h, up2 / (2 * h)
        b_h, b_2h = -down / h, -down2 / (2 * h)
    fine = np.choose(np.minimum(method, 2), [d_h, f_h, b_h])
    coarse = np.choose(np.minimum(method, 2), [d_2h, f_2h, b_2h])
    # Richardson: the leading error term is h^2 for central, h for one-sided differences.
    estimate = np.where(method == CENTRAL, (4 * fine - coarse) / 3, 2 * fine - coarse)
    # J's rounding at each point (eps times the size of the terms there) times the
    # estimate's gain on it, the sum of its |coefficients| on u, v, w in units of 1/h.
    gain = np.where(method == CENTRAL, 1.5, 2.5)
    error = np.abs(coarse - fine) + gain * (roundoff + EPS * np.nanmax(np.abs(dJ), axis=0)) / h
    estimate[method == EXCLUDED] = np.nan
    error[method == EXCLUDED] = np.nan
    return estimate, error, method
