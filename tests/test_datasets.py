"""The generated data sets: shapes, labels, and the geometry each promises."""

import numpy as np
import pytest

from backprop import datasets


def test_xor_is_the_truth_table():
    X, Y = datasets.xor()
    np.testing.assert_array_equal(X, [[0, 0, 1, 1], [0, 1, 0, 1]])
    np.testing.assert_array_equal(Y, [[0, 1, 1, 0]])
    assert X.dtype == Y.dtype == np.float64


def test_xor_repeats_the_corners_and_adds_seeded_noise():
    X, Y = datasets.xor(10, noise=0.1, seed=3)
    assert X.shape == (2, 10) and Y.shape == (1, 10)
    corners = np.array([[0, 0, 1, 1], [0, 1, 0, 1]], float)
    clean = np.tile(corners, (1, 3))[:, :10]
    np.testing.assert_array_equal(Y[0], clean[0] != clean[1])
    assert 0 < np.abs(X - clean).max() < 0.6
    np.testing.assert_array_equal(X, datasets.xor(10, noise=0.1, seed=3)[0])
    assert not np.array_equal(X, datasets.xor(10, noise=0.1, seed=4)[0])


@pytest.mark.parametrize("m", [7, 200])
def test_moons_two_labelled_half_circles(m):
    X, Y = datasets.moons(m, noise=0.0, seed=0)
    assert X.shape == (2, m) and Y.shape == (1, m)
    upper, lower = X[:, Y[0] == 0], X[:, Y[0] == 1]
    assert upper.shape[1] == m // 2 and lower.shape[1] == m - m // 2
    np.testing.assert_allclose(np.hypot(*upper), 1.0)  # radius 1 around (0, 0)
    np.testing.assert_allclose(np.hypot(lower[0] - 1, lower[1] - 0.5), 1.0)  # around (1, 0.5)
    assert (upper[1] >= -1e-12).all() and (lower[1] <= 0.5 + 1e-12).all()
    noisy = datasets.moons(m, noise=0.1, seed=0)[0]
    assert 0 < np.abs(noisy - X).max() < 1.0


def test_circles_two_radii():
    X, Y = datasets.circles(100, noise=0.0, factor=0.3, seed=0)
    r = np.hypot(*X)
    np.testing.assert_allclose(r[Y[0] == 0], 1.0)
    np.testing.assert_allclose(r[Y[0] == 1], 0.3)
    assert (Y[0] == 0).sum() == 50
    noisy = datasets.circles(100, seed=0)[0]
    assert 0 < np.abs(np.hypot(*noisy) - np.hypot(*datasets.circles(100, noise=0.0)[0])).max() < 0.5


@pytest.mark.parametrize("make", [datasets.xor, datasets.moons, datasets.circles])
def test_sizes_are_validated(make):
    with pytest.raises(ValueError, match="m must be a positive whole number"):
        make(0)
