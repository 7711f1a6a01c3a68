"""Every tolerance the harness judges with, in one table: the value, and why it is that.

A tolerance is a number a correct implementation stays inside and a mistake does not: the
tests in ``tests/`` measure both sides of each (``tests/test_checker.py``,
``tests/test_false_alarms.py``, ``tests/test_kinks.py``, the catalog's detection matrix).
Most bounds are not fixed numbers but a safety factor times an error estimate computed for
the problem at hand (a finite difference's own truncation and rounding, the JAX model's
rounding analysis); the floors and factors those use are here too. The modules that judge
import them from here under the names they always had.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = float(np.finfo(np.float64).eps)
"""float64's unit roundoff, 2^-52 (about 2.2e-16)."""

# --- the network checker (judging/checker.py) -------------------------------------------------

FD_FLOOR = 1e-6
"""The network checker's finite-difference bound never drops below this. A correct
implementation measures 1e-11 to 1e-9 against the Richardson estimates (tests/test_checker.py
measures it over random networks); the mistakes in the catalog measure 1e-2 and above. The
bound rises above the floor only where the entries' own error estimates say the differences
are that noisy (a saturated network). (A single function or layer, :data:`FUNCTION_FD_SAFETY`,
has no such floor: its bound is its own error estimate.)"""

FD_SAFETY = 10.0
"""How many times the estimated finite-difference error the bound allows."""

JAX_FLOOR = 1e-10
"""The JAX bound's floor: both sides compute in float64, so a correct implementation agrees
to 1e-16..1e-13 relative; 1e-10 leaves room for ill-conditioned arrays while staying far
tighter than finite differences."""

JAX_SAFETY = 4.0
"""Above the floor the bound allows this many times the JAX model's rounding bound
(``JaxResult.rounding``): two correct implementations differ by at most twice it. It only
matters where a gradient is far smaller than the terms it is computed from (saturation,
cancellation)."""

LOSS_RTOL = 1e-10
"""The loss against JAX's: the same formula in float64, relative."""

LOSS_SAFETY = 4.0
"""Times the loss's first-order rounding bound a correct implementation may differ by (two
correct evaluations differ by up to twice it; twice again for the first-order bound)."""

LOG_A_SAFETY = 8.0
"""How many times the first-order rounding of log(A) and log(1 - A) a saturated loss may be
off before it is a wrong loss rather than an imprecise one."""

COST_SCALE_RTOL = 1e-9
"""How closely the implementation's loss must equal c J_data + s P for a cost convention to
be named: both are float64 evaluations of the same terms, summed differently (an
implementation judged in float32 or float16 gets 64 of its own eps instead)."""

PENALTY_ROUNDING = 4.0
"""How many roundings of each term the L2 penalty's gradient may carry: (lambda/m) W^l takes
a division and a product, and adding it to dZ^l (A^(l-1))^T one sum, each off by eps of its
result; 4 leaves one to spare."""

PROPORTION_RTOL = 1e-6
"""How closely the gradients' error must be a multiple of the parameters (relative to the
error's norm) for the penalty to be named as the mistake."""

# --- kinks ------------------------------------------------------------------------------------

JAX_KINK_SAFETY = 4.0
"""A pre-activation within this many times its rounding bound of a kink may lie on either
side of it in a correct implementation (two float64 evaluations of Z differ by up to twice
the bound; twice that again for the bound's first-order approximation)."""

FD_KINK_SAFETY = 2.0
"""Two finite-difference estimates disagree (a kink between them) when they differ by more
than this many times the sum of their error bounds. The bounds already cover a smooth
function's truncation and rounding; the factor keeps higher-order terms from reading as a
kink."""

SUBGRADIENT_SAFETY = 2.0
"""How many error bounds a gradient at a kink may lie outside its one-sided slopes (the same
margin as :data:`FD_KINK_SAFETY`'s, for the same reason)."""

CLEAN_SIDE = 8.0
"""Next to a kink, a side whose third difference is this many times smaller than the other
side's (or within rounding) is clean: its steps stayed on one side of the kink."""

# --- any function or layer (judging/functions.py) ----------------------------------------------

FUNCTION_JAX_BOUND = 1e-9
"""The hand-written gradient against JAX's, norm-wise relative. Both are float64; the network
check derives its JAX bound from a rounding analysis of the formulas, which a user's function
does not come with, so this is a fixed bound, a thousand times tighter than the finite
differences' floor and far above float64 rounding of a well-conditioned gradient."""

VALUE_RTOL = 1e-10
"""``f`` and ``jax_f`` at the given point, relative: the same formula in float64."""

FUNCTION_FD_SAFETY = 10.0
"""How many times the finite differences' own error bound the norm-wise error may reach (as
:data:`FD_SAFETY`)."""

FD_ROUNDING = 64 * EPS
"""The function checks' finite-difference bound's only floor: the rounding of the gradient
itself, relative (about 1.4e-14). There is no fixed 1e-6 here: the bound is ten times the
differences' own error estimate (truncation, from D(h) against D(2h), and f's rounding, eps
times the size of its terms, divided by the step), so a layer whose differences are good to
1e-11 is held to about 1e-10, and a 1e-6 mistake (layernorm's epsilon left out of the std)
shows."""

SUM_ROUNDING = 64 * EPS
"""The rounding of a gradient's own entries added up, relative to the sum of their sizes."""

DETERMINISM_RTOL = 1e-12
"""``f`` called twice at the given point: the two results may differ by this much, relative
(the same float64 operations repeated; a random draw differs by far more)."""

# --- the same computation twice (boundary/guard.py, judging/checks.py, judging/layer_view.py) --

REPEAT_RTOL = 1e-12
"""Two results for the same inputs differ when their norm-wise relative error exceeds this:
the same float64 computation on the same inputs reorders nothing, so it agrees to the bit (the
margin only forgives a BLAS that splits a product differently from call to call)."""

SAME = 1e-12
"""Relative error under which two float64 gradients of the same problem count as equal: the
metamorphic relations reorder sums, which costs a few ulps, never 1e-12. An implementation in
float32 or float16 gets ``TOLERANCES[...].same`` instead."""

BATCH_RTOL = 1e-9
"""The layer view: a batch's gradients against the mean of its samples' (the same float64
sums, reordered)."""

RATIO_RTOL = 1e-6
"""The layer view: how closely dZ^l / ((W^{l+1})^T dZ^{l+1}) must agree at the two weights
for the chaining to count as right (both are float64 quotients of the implementation's own
numbers)."""

# --- golden files (run/golden.py) ---------------------------------------------------------------

GOLDEN_RTOL = 1e-10
"""The drift ``golden compare`` allows per array in float64 unless ``--golden-rtol`` says
otherwise: float64 gradients recomputed by the same code agree to rounding."""

GOLDEN_EPS_FACTOR = 2.0**10
"""Below float64, the default drift is this many units of the gradients' own roundoff: a
float32 network's gradients are off the float64 ones by tens of its eps (3.8e-6, 32 eps, on
the default float32 file), and a regression by far more."""

# --- per precision (judging/precision.py) -------------------------------------------------------


@dataclass(frozen=True)
class Tolerances:
    """What a correct implementation at one precision may differ by, beyond the rounding
    analysis' per-problem bounds."""

    jax_floor: float
    """The gradient bound's floor, norm-wise relative (:data:`JAX_FLOOR` in float64)."""
    same: float
    """Two results that a metamorphic relation makes equal (a batch and the mean of its
    samples, a duplicated batch, permuted units), norm-wise relative (:data:`SAME`)."""
    saturation: float
    """The saturated sigmoid + bce loss and gradients against JAX's, relative."""


TOLERANCES: dict[str, Tolerances] = {
    # float64: the values the checker and the checks use.
    "float64": Tolerances(jax_floor=JAX_FLOOR, same=SAME, saturation=LOSS_RTOL),
    # float32, eps = 1.19e-7: the floor at ~100 eps leaves the per-problem rounding bound in
    # charge (correct code measures up to ~2e-7 on the property tests' networks); the
    # metamorphic relations reorder sums of m terms whose parts may cancel: 1e-4 is ~800
    # eps, a missing or doubled 1/m is off by 1/3 or more.
    "float32": Tolerances(jax_floor=1e-5, same=1e-4, saturation=1e-5),
    # float16, eps = 9.8e-4: ten eps for the floor; a factor 2 (relative error 1/3) and a
    # missing 1/m stay far outside.
    "float16": Tolerances(jax_floor=1e-2, same=3e-2, saturation=1e-2),
}
"""Per precision, keyed like ``scope.DTYPES``."""
