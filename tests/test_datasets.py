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


def test_noise_moves_every_point_differently():
    for make in (datasets.moons, datasets.circles):
        X = make(50, noise=0.1, seed=1)[0]
        clean = make(50, noise=0.0, seed=1)[0]
        offsets = X - clean
        assert np.unique(np.round(offsets, 12), axis=1).shape[1] == 50
    X = datasets.xor(8, noise=0.1, seed=1)[0] - datasets.xor(8)[0]
    assert np.unique(np.round(X, 12), axis=1).shape[1] == 8


def test_defaults_are_the_documented_ones():
    np.testing.assert_array_equal(
        datasets.moons(seed=0)[0], datasets.moons(200, noise=0.1, seed=0)[0]
    )
    np.testing.assert_array_equal(
        datasets.circles(seed=0)[0], datasets.circles(200, noise=0.05, factor=0.5, seed=0)[0]
    )
    assert datasets.moons()[0].shape == datasets.circles()[0].shape == (2, 200)


def test_seeds_make_data_reproducible():
    for make in (datasets.moons, datasets.circles):
        np.testing.assert_array_equal(make(seed=5)[0], make(seed=5)[0])
        assert not np.array_equal(make(seed=5)[0], make(seed=6)[0])


def test_moons_start_and_end_where_the_half_circles_do():
    X, _ = datasets.moons(10, noise=0.0)
    np.testing.assert_allclose(X[:, 0], [1.0, 0.0], atol=1e-15)  # upper: angle 0
    np.testing.assert_allclose(X[:, 4], [-1.0, 0.0], atol=1e-15)  # upper: angle pi
    np.testing.assert_allclose(X[:, 5], [0.0, 0.5], atol=1e-15)  # lower: 1 - cos 0, 0.5 - sin 0
    np.testing.assert_allclose(X[:, 9], [2.0, 0.5], atol=1e-15)


def test_circles_are_evenly_spaced_without_repeating_a_point():
    X, _ = datasets.circles(12, noise=0.0, factor=0.5)
    angles = 2 * np.pi * np.arange(6) / 6
    np.testing.assert_allclose(X[:, :6], [np.cos(angles), np.sin(angles)], atol=1e-15)
    np.testing.assert_allclose(
        X[:, 6:], 0.5 * np.array([np.cos(angles), np.sin(angles)]), atol=1e-15
    )
