"""The diagnosis, function by function: each kind of mistake named exactly as a user reads it.

The expected names come from the factors' definitions (m, 1/m, 2m, 1/(2m), 2, 1/2, -1, 4,
1/4), computed here from m, never read back from the function under test.
"""

import numpy as np
import pytest

from reference.judging.diagnosis import (
    across_networks,
    common_factor,
    diagnose,
    factor_hint,
    factor_name,
    locate,
    relative_error,
)

RNG = np.random.default_rng(7)
T = RNG.normal(size=(3, 4))


def test_relative_error_is_normwise_zero_for_zeros_and_at_most_one():
    a, t = np.array([3.0, 4.0]), np.array([0.0, 0.0])
    assert relative_error(a, t) == 1.0  # ||a - 0|| / (||a|| + 0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(
        1.0 / (np.sqrt(2) + np.sqrt(5))
    )
    x = np.array([1e-100, 0.0])  # one nonzero entry: every norm is exact (sqrt(x*x) = |x|)
    assert relative_error(x, -x) == 1.0
    # a = -c t is 1 up to rounding, and never above it. How far the norms round depends on
    # the BLAS kernel (an FMA or not in the dot product), so the bound is rounding's own:
    # the entries of a - t (u = eps/2), each norm's dot and sqrt ((n/2 + 1) u), the sum of
    # the norms and the quotient (u each): at most (n + 5) u below 1.
    rng = np.random.default_rng(7)
    for n in (2, 3, 12):
        for _ in range(50):
            t = rng.normal(size=n)
            a = -rng.uniform(0.01, 10.0) * t
            assert 1.0 - (n + 5) * np.finfo(np.float64).eps / 2 <= relative_error(a, t) <= 1.0
    assert 1.0 - 17 * np.finfo(np.float64).eps / 2 <= relative_error(-3.0 * T, T) <= 1.0
    # where this machine's norms round the quotient above 1 (about one draw in five with
    # OpenBLAS's Haswell and Prescott kernels), the error is still 1: found, not written down
    for _ in range(1000):
        t = rng.normal(size=2)
        a = -rng.uniform(0.01, 10.0) * t
        if np.linalg.norm(a - t) / (np.linalg.norm(a) + np.linalg.norm(t)) > 1.0:
            break
    else:
        pytest.skip("no a = -c t in 1000 draws whose quotient rounds above 1 on this machine")
    assert relative_error(a, t) == 1.0


@pytest.mark.parametrize("m", [3, 5])
def test_factor_names_from_their_definitions(m):
    table = {m: "m", 1 / m: "1/m", 2 * m: "2m", 1 / (2 * m): "1/(2m)", 2.0: "2", 0.5: "1/2",
             -1.0: "-1", 4.0: "4", 0.25: "1/4"}  # fmt: skip
    for value, name in table.items():
        assert factor_name(value, m) == name
        assert factor_name(value * (1 + 5e-7), m) == name  # within the 1e-6 fit
        assert factor_name(value * (1 + 5e-6), m) is None
    assert factor_name(1.37, m) is None


def test_a_factor_with_two_names_gives_both_the_batch_one_first():
    assert factor_name(2.0, 2) == "m = 2"
    assert factor_name(0.5, 2) == "1/m = 1/2"
    assert factor_name(4.0, 2) == "2m = 4"
    assert factor_name(0.25, 2) == "1/(2m) = 1/4"
    assert factor_name(1.0, 1) is None  # m = 1 names no batch factor
    assert factor_name(2.0, 1) == "2"


@pytest.mark.parametrize(
    "name, hint",
    [
        ("m", "the 1/m of the cost is missing"),
        ("1/m", "the 1/m is applied twice"),
        ("-1", "the sign is flipped"),
        ("2", "a factor 2 too many (mse's 1/2, or a term counted twice)"),
        ("1/2", "a factor 1/2 too many"),
        ("m = 2", "the 1/m of the cost is missing or a factor 2 too many (mse's 1/2, or a "
         "term counted twice)"),
        ("4", None),
        ("1/(2m)", None),
    ],
)  # fmt: skip
def test_factor_hints(name, hint):
    assert factor_hint(name) == hint


@pytest.mark.parametrize("param", ["W", "b"])
def test_diagnose_names_each_kind_of_mistake(param):
    m = 3
    assert diagnose(T.copy(), T, m, param).startswith(f"d{param} differs")  # equal: no pattern
    assert diagnose(2 * T, T, m, param) == (
        f"d{param} is off by a constant factor of 2: a factor 2 too many (mse's 1/2, or a term "
        "counted twice)"
    )
    assert diagnose(m * T, T, m, param) == (
        f"d{param} is off by a constant factor of m: the 1/m of the cost is missing"
    )
    assert (
        diagnose(-T, T, m, param)
        == f"d{param} is off by a constant factor of -1: the sign is flipped"
    )
    assert diagnose(4 * T, T, m, param) == f"d{param} is off by a constant factor of 4"
    assert diagnose(1.37 * T, T, m, param) == f"d{param} is off by a constant factor of 1.37"
    for small in (T, 1e-3 * T):  # a zero gradient is named whatever the reference's size
        assert diagnose(np.zeros_like(T), small, m, param) == (
            f"d{param} is all zeros where the reference is not (never computed, or overwritten)"
        )
    assert diagnose(T, np.zeros_like(T), m, param) == (
        f"d{param} should be exactly zero here, but is not (norm {np.linalg.norm(T):.3g})"
    )
    bad = T.copy()
    bad[1, 2] = np.nan
    assert diagnose(bad, T, m, param) == f"d{param} holds NaN or inf where the reference is finite"
    bad[1, 2] = np.inf
    assert diagnose(bad, T, m, param).startswith(f"d{param} holds NaN or inf")


def test_diagnose_finds_a_transpose_on_square_arrays_only():
    S = RNG.normal(size=(3, 3))
    assert diagnose(S.T, S, 2, "W") == "dW is the transpose of the right gradient"
    S2 = RNG.normal(size=(2, 2))
    assert diagnose(S2.T, S2, 2, "W") == "dW is the transpose of the right gradient"
    symmetric = S + S.T  # its transpose is itself: not a transpose mistake
    assert "transpose" not in diagnose(2 * symmetric, symmetric, 2, "W")
    one = RNG.normal(size=(1, 1))
    assert "transpose" not in diagnose(2 * one, one, 2, "W")


def test_diagnose_points_at_the_worst_entry():
    wrong = T.copy()
    wrong[2, 1] += 10.0
    text = diagnose(wrong, T, 3, "W")
    err = relative_error(wrong, T)
    assert text == (
        f"dW differs from the reference (relative error {err:.3g}); worst entry (2, 1): "
        f"{wrong[2, 1]:.6g} vs {T[2, 1]:.6g}"
    )
    wrong = T.copy()  # the worst entry has its sign flipped: a + t is 0 there, a - t largest
    k = np.unravel_index(np.argmax(np.abs(T)), T.shape)
    wrong[k] = -T[k]
    text = diagnose(wrong, T, 3, "W")
    err = relative_error(wrong, T)
    assert text == (
        f"dW differs from the reference (relative error {err:.3g}); worst entry "
        f"{tuple(int(i) for i in k)}: {wrong[k]:.6g} vs {T[k]:.6g}"
    )


def test_common_factor_over_all_pairs():
    U = RNG.normal(size=(2, 1))
    assert common_factor([(2 * T, T), (2 * U, U)]) == pytest.approx(2.0)
    assert common_factor([(2 * T, T), (3 * U, U)]) is None
    assert common_factor([(T, T), (U, U)]) is None  # factor 1: nothing wrong
    assert common_factor([(np.zeros(2), np.zeros(2))]) is None  # no reference to scale
    bad = 2 * T
    bad[0, 0] = np.nan
    assert common_factor([(bad, T)]) is None
    assert common_factor([((1 + 1e-7) * T, T)]) is None  # within the fit of 1
    assert common_factor([((1 + 1e-5) * T, T)]) == pytest.approx(1 + 1e-5)


@pytest.mark.parametrize(
    "failing, layers, k",
    [([1], 3, 1), ([1, 2], 3, 2), ([2, 1, 2], 4, 2), ([1, 2, 3], 3, None), ([2], 3, None),
     ([1, 3], 3, None), ([], 3, None)],
)  # fmt: skip
def test_locate_the_first_wrong_delta(failing, layers, k):
    assert locate(failing, layers) == k


# --- factors that fit several causes, and factors that are not constant ------------------------


def test_a_factor_equal_to_several_causes_names_each():
    assert factor_name(2.0, 2, outputs=2) == "m = n_L = 2"
    assert factor_name(3.0, 2, outputs=3) == "n_L"
    assert factor_name(1 / 3, 5, outputs=3) == "1/n_L"
    assert factor_name(3.0, 2, outputs=1) is None  # one output names no output factor
    hint = factor_hint("m = n_L = 2")
    for part in ("m", "n_L", "2"):
        assert factor_hint(part) in hint
    assert "the 1/m of the cost is missing" in diagnose(2 * T, T, 2, "W", outputs=2)
    assert "a 1/n_L is missing" in diagnose(2 * T, T, 2, "W", outputs=2)


def test_which_causes_the_other_networks_rule_out():
    m_equals_nl = {"value": 2.0, "m": 2, "outputs": 2}
    follows_nl = {"value": 3.0, "m": 2, "outputs": 3}
    text = across_networks([m_equals_nl, follows_nl])
    assert "it follows n_L in each" in text and "a 1/n_L is missing" in text
    assert "m is ruled out (the factor is 3 at m = 2, n_L = 3)" in text
    assert "2 is ruled out" in text
    follows_m = {"value": 3.0, "m": 3, "outputs": 1}
    text = across_networks([m_equals_nl, follows_m])
    assert "it follows m in each" in text and "n_L is ruled out" in text
    assert across_networks([m_equals_nl]) is None  # one network rules nothing out
    assert across_networks([m_equals_nl, dict(m_equals_nl)]) is None
    assert across_networks([None, m_equals_nl]) is None
    wild = across_networks([m_equals_nl, {"value": 7.0, "m": 2, "outputs": 2}])
    assert "no one named cause fits every network" in wild


def test_one_entry_is_not_called_a_constant_factor():
    """A planted relu' that returns relu makes a one-unit layer's db 0.52 times the right one:
    one entry has a ratio to anything, and "a constant factor" would be a guess."""
    one = np.array([[1.7]])
    text = diagnose(0.52 * one, one, 3, "b")
    assert "off by a constant factor" not in text and "one entry" in text and "0.52" in text
    # a named factor is still named: a coincidence of one entry with m or -1 is unlikely
    assert diagnose(3 * one, one, 3, "b").startswith("db is off by a constant factor of m")
    assert "the sign is flipped" in diagnose(-one, one, 3, "b")


def test_a_small_error_everywhere_is_not_a_constant_factor_of_one():
    """A few 1e-6 off, by a factor that varies from row to row (a missing epsilon, eps / var
    per row), is within 1e-6 of a constant factor but not explained by one."""
    bent = T * (1 + 2e-6 * np.arange(1, 4)[:, None])
    text = diagnose(bent, T, 3, "W")
    assert "off by a constant factor" not in text and text.startswith("dW differs")


@pytest.mark.parametrize(
    ("factor", "says"),
    [(2.0, "of 2: "), (1 / 3, "(= 1/m)"), (3.0, "(= m, the batch size given)"),
     (np.sqrt(8), "(= sqrt(8))"), (1 / np.sqrt(8), "(= 1/sqrt(8))")],
)  # fmt: skip
def test_inside_a_function_a_factor_is_the_functions(factor, says):
    """Per-layer checks have no network cost: a factor is a constant inside the function,
    never "mse's 1/2" or "the 1/m applied twice"."""
    text = diagnose(factor * T, T, 3, "q", within="function")
    assert says in text and "a constant factor inside this function" in text
    for network_word in ("mse's", "the 1/m is applied twice", "of the cost"):
        assert network_word not in text
    assert "the sign is flipped" in diagnose(-T, T, 3, "x", within="function")
    with pytest.raises(ValueError, match="within"):
        diagnose(T, T, 3, "x", within="layer")
