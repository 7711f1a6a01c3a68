"""The JAX model's rounding analysis: first-order bounds on what rounding does to J and its
gradients in any correct implementation, and the pre-activations within rounding of a kink.

It runs in NumPy on the JAX model's intermediate values, after the jitted call
(:func:`~reference.oracles.jax_model.jax_model`): written in jax.numpy it would be compiled
into every network's function, doubling the compile time for a few microseconds of
arithmetic. Every bound is linear in the unit roundoff ``eps`` the implementation is assumed
to compute at (float64's by default).
"""

from __future__ import annotations

import numpy as np

from ..tolerances import JAX_KINK_SAFETY as KINK_SAFETY

EPS = float(np.finfo(np.float64).eps)


def forward_rounding(params, As, gps, gaps, one_sided, scales, eps=EPS):
    """First-order bounds on the rounding error of a forward pass at unit roundoff ``eps``
    (float64's by default), per entry, and the pre-activations within rounding of a kink.

    With eps = 2^-52 (float64), |.| entrywise and n_{l-1} + 1 the terms of each sum,
        dZ^l = |W^l| dA^{l-1} + (n_{l-1} + 1) eps (|W^l| |A^{l-1}| + |b^l|),
        dA^l = |g'_l(Z^l)| dZ^l + 4 eps (|A^l| + s_l),
        dA^0 = 0 in float64, eps |X| at a lower precision (the implementation rounds its
        float64 X, or was given X rounded)
    (s_l: the spec's ``absolute_rounding``). Z^l is near a kink of g_l where its distance to it,
    ``gaps[l]``, is at most KINK_SAFETY dZ^l; there |g'_l| is the larger of the one-sided
    derivatives ``one_sided[l]`` (g' just left and right of the kink). Returns
    (dZ, dA, near, (low, high, own)) per layer: low and high the one-sided derivatives in
    order, own g's derivative at Z^l, all three NaN away from kinks; dA[0] is X's, zero.
    """
    dA = np.zeros_like(As[0]) if eps <= EPS else eps * np.abs(As[0])
    dZs, dAs, nears, slopes = [], [dA], [], []
    for l, (W, b) in enumerate(params):
        absW = np.abs(W)
        dZ = absW @ dA + (W.shape[1] + 1) * eps * (absW @ np.abs(As[l]) + np.abs(b))
        near = gaps[l] <= KINK_SAFETY * dZ
        left, right = one_sided[l]
        low, high = np.minimum(left, right), np.maximum(left, right)
        slope = np.where(near, np.maximum(np.abs(low), np.abs(high)), np.abs(gps[l]))
        dA = slope * dZ + 4 * eps * (np.abs(As[l + 1]) + scales[l])
        dZs.append(dZ)
        dAs.append(dA)
        nears.append(near)
        slopes.append(tuple(np.where(near, x, np.nan) for x in (low, high, gps[l])))
    return dZs, dAs, nears, slopes


def rounding_bounds(params, As, dZs, dAs, gps, gpps, Y, m, forward, scales, eps=EPS):
    """First-order bounds on the rounding error of a backward pass at unit roundoff ``eps``
    (float64's by default), per entry; every term is linear in eps.

    ``forward`` is :func:`forward_rounding`'s (dZ, dA, near, slopes), written here
    delta Z^l and delta A^l. With eps = 2^-52, |.| entrywise and |g'_l| the larger
    one-sided derivative at a pre-activation near a kink, g' evaluated at a rounded Z^l by a
    formula of its own is off by at most
        e'_l = |g''_l| delta Z^l + 4 eps (|g'_l| + 4 s_l)
    (g' from a rounded A, as A(1 - A) or 1 - A^2, is off by a few times A's absolute
    rounding); the cost's A - Y cancels to eps (|A| + |Y|) plus A's own error. The error E^l
    in dZ^l is then at most
        E^L = (eps (|A^L| + |Y|) + delta A^L) / m (1 + |g'_L|) + |dA^L| e'_L + eps |dZ^L|
        E^l = |g'_l| (|W^{l+1}|^T E^{l+1} + n_{l+1} eps |W^{l+1}|^T |dZ^{l+1}|)
              + |dA^l| e'_l + eps |dZ^l|
    and the gradients' errors at most
        dW^l: E^l |A^{l-1}|^T + |dZ^l| (delta A^{l-1})^T + m eps |dZ^l| |A^{l-1}|^T,
        db^l: sum E^l + m eps sum |dZ^l|.
    A gradient far below the terms it is computed from (saturation, cancellation, an input
    A^{l-1} far below its activation's absolute rounding) can differ between two correct
    implementations by that much, and no more.
    """
    L = len(params)
    fw_dZ, fw_dA, near, one_sided = forward
    slope = [
        np.where(n, np.maximum(np.abs(lo), np.abs(hi)), np.abs(g))
        for n, (lo, hi, _), g in zip(near, one_sided, gps)
    ]
    g_err = [
        np.where(n, 0.0, np.abs(gpp)) * dz + 4 * eps * (s + 4 * scale)
        for n, gpp, dz, s, scale in zip(near, gpps, fw_dZ, slope, scales)
    ]
    out = (eps * (np.abs(As[L]) + np.abs(Y)) + fw_dA[L]) / m * (1 + slope[L - 1])
    E = out + np.abs(dAs[L - 1]) * g_err[L - 1] + eps * np.abs(dZs[L - 1])
    bounds = [None] * L
    for l in range(L - 1, -1, -1):
        absA = np.abs(As[l])
        absdZ = np.abs(dZs[l])
        bounds[l] = (
            E @ absA.T + absdZ @ fw_dA[l].T + m * eps * absdZ @ absA.T,
            np.sum(E, axis=1, keepdims=True) + m * eps * np.sum(absdZ, axis=1, keepdims=True),
        )
        if l > 0:
            absW = np.abs(params[l][0])
            n = params[l][0].shape[0]
            E = (
                slope[l - 1] * (absW.T @ E + n * eps * absW.T @ absdZ)
                + np.abs(dAs[l - 1]) * g_err[l - 1]
                + eps * np.abs(dZs[l - 1])
            )
    return bounds


def loss_rounding(params, As, dZs, dAs, scales, eps):
    """First-order bound on J's error from the forward pass's roundings at unit roundoff eps.

    Each rounding of Z^l and A^l moves J by its size times dJ/dZ^l or dJ/dA^l (which carry
    it through the layers above), so with the local roundings of :func:`forward_rounding`
        |dJ| <= sum_l  |dJ/dZ^l| . (n_{l-1} + 1) eps (|W^l| |A^{l-1}| + |b^l|)
                     + |dJ/dA^l| . 4 eps (|A^l| + s_l)
                     [+ |(W^1)^T dJ/dZ^1| . eps |X| below float64: X itself rounded]
    (. summing the entrywise products). The cost's terms and their sum round on top of it.
    """
    total = 0.0
    for l, (W, b) in enumerate(params):
        local_Z = (W.shape[1] + 1) * eps * (np.abs(W) @ np.abs(As[l]) + np.abs(b))
        local_A = 4 * eps * (np.abs(As[l + 1]) + scales[l])
        total += float(np.sum(np.abs(dZs[l]) * local_Z) + np.sum(np.abs(dAs[l]) * local_A))
    if eps > EPS:
        total += float(np.sum(np.abs(params[0][0].T @ dZs[0]) * eps * np.abs(As[0])))
    return total
