"""Small generated classification problems (NumPy only, no downloads).

Each returns ``(X, Y)`` with samples as columns: X of shape (2, m), Y of shape
(1, m) with labels 0.0 or 1.0.
"""

from __future__ import annotations

import numpy as np

from . import _validate


def xor(
    m: int = 4, *, noise: float = 0.0, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: label 1 where exactly one coordinate is 1.

    ``m = 4`` gives the four corners once each; a larger m repeats them with
    Gaussian ``noise`` added to X. No single layer separates it.
    """
    m = _validate.check_positive_int(m, "m")
    corners = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    X = np.tile(corners, (1, -(-m // 4)))[:, :m]
    Y = (X[0] != X[1]).astype(np.float64)[None, :]
    if noise:
        X = X + np.random.default_rng(seed).normal(0.0, noise, X.shape)
    return X, Y


def moons(
    m: int = 200, *, noise: float = 0.1, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles: m // 2 points on the upper (label 0), the rest below (1)."""
    m = _validate.check_positive_int(m, "m")
    rng = np.random.default_rng(seed)
    n0 = m // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, m - n0)
    X = np.hstack([[np.cos(t0), np.sin(t0)], [1 - np.cos(t1), 0.5 - np.sin(t1)]])
    Y = np.hstack([np.zeros(n0), np.ones(m - n0)])[None, :]
    return X + rng.normal(0.0, noise, X.shape), Y


def circles(
    m: int = 200, *, noise: float = 0.05, factor: float = 0.5, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles: radius 1 (label 0) and radius ``factor`` (label 1)."""
    m = _validate.check_positive_int(m, "m")
    rng = np.random.default_rng(seed)
    n0 = m // 2
    t0 = np.linspace(0, 2 * np.pi, n0, endpoint=False)
    t1 = np.linspace(0, 2 * np.pi, m - n0, endpoint=False)
    X = np.hstack([[np.cos(t0), np.sin(t0)], factor * np.array([np.cos(t1), np.sin(t1)])])
    Y = np.hstack([np.zeros(n0), np.ones(m - n0)])[None, :]
    return X + rng.normal(0.0, noise, X.shape), Y


DATASETS = {"xor": xor, "moons": moons, "circles": circles}
"""The generators by name."""
