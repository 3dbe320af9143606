"""The explicit-SIMD kernels (simbench.kernels.simd) against plain NumPy and Python."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.errors import TypingError

from simbench.kernels import simd


def _triangle(X, i0, m, W, p, c0=0, C=None):
    """weighted_syrk with fresh buffers; C (default zeros) is updated and returned."""
    if C is None:
        C = np.zeros((p + c0 + 1, p + c0 + 1))
    pp = simd.padded_width(p)
    B, T = simd.aligned_zeros(max(m, 1), pp), simd.aligned_zeros(pp, pp)
    simd.weighted_syrk(X, i0, m, W, C, c0, B, T)
    return C


def test_padded_width_holds_whole_vectors_and_the_extra_row_of_an_odd_p():
    for p in range(0, 130):
        pp = simd.padded_width(p)
        assert pp % simd.LANES == 0 and pp >= simd.LANES
        assert pp >= p + (p & 1)  # rows j < 2 ceil(p / 2) exist
        assert pp < p + (p & 1) + simd.LANES or p == 0  # no more than one vector of padding


def test_aligned_zeros_are_zero_and_start_on_a_cache_line():
    for rows, cols in ((1, 8), (256, 56), (7, 16), (64, 64)):
        a = simd.aligned_zeros(rows, cols)
        assert a.shape == (rows, cols) and a.flags.c_contiguous
        assert a.ctypes.data % 64 == 0
        assert not a.any()


@pytest.mark.parametrize("p", [1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 24, 31, 50, 64])
@pytest.mark.parametrize("m", [1, 7, 8, 9, 16, 77, 256])
def test_weighted_syrk_is_the_lower_triangle_of_xtwx(p, m):
    rng = np.random.default_rng(1000 * p + m)
    X = rng.standard_normal((m + 11, p))
    W = rng.uniform(-1.0, 2.0, m)  # weights of either sign (observed information)
    i0 = 5
    Xc = X[i0 : i0 + m]
    ref = np.tril(Xc.T @ (W[:, None] * Xc))
    got = _triangle(X, i0, m, W, p)
    scale = np.abs(Xc).T @ (np.abs(W)[:, None] * np.abs(Xc))
    assert np.all(np.triu(got[:p, :p], 1) == 0.0)  # only the lower triangle is written
    assert np.all(np.abs(got[:p, :p] - ref) <= 1e-14 * np.tril(scale) + 1e-300)
    assert not got[p].any() and not got[:, p].any()


def test_weighted_syrk_adds_to_c_at_the_given_offset():
    rng = np.random.default_rng(3)
    p, m = 13, 40
    X = rng.standard_normal((m, p))
    W = rng.uniform(0.1, 1.0, m)
    C0 = rng.standard_normal((p + 2, p + 2))
    got = _triangle(X, 0, m, W, p, c0=1, C=C0.copy())
    expect = C0.copy()
    expect[1 : p + 1, 1 : p + 1] += np.tril(X.T @ (W[:, None] * X))
    np.testing.assert_allclose(got, expect, rtol=1e-13, atol=1e-13)
    # the border (the intercept's row and column, the score row) is untouched
    assert np.array_equal(got[0], C0[0]) and np.array_equal(got[:, 0], C0[:, 0])
    assert np.array_equal(got[p + 1], C0[p + 1])


def _same_order(X, i0, m, W, p):
    """weighted_syrk's sums written as plain Python loops in the order it documents."""
    T = np.zeros((p, p))
    r = 0
    while r + 8 <= m:
        for j in range(p):
            c = [W[r + s] * X[i0 + r + s, j] for s in range(8)]
            for k in range(j + 1):
                t = [c[s] * X[i0 + r + s, k] for s in range(8)]
                lo = ((t[0] + t[1]) + t[2]) + t[3]
                hi = ((t[4] + t[5]) + t[6]) + t[7]
                T[j, k] = T[j, k] + (lo + hi)
        r += 8
    while r < m:
        for j in range(p):
            c = W[r] * X[i0 + r, j]
            for k in range(j + 1):
                T[j, k] += c * X[i0 + r, k]
        r += 1
    return T


@settings(max_examples=40, deadline=None)
@given(
    p=st.integers(1, 20),
    m=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_weighted_syrk_sums_in_its_documented_order_bit_for_bit(p, m, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, p)) * rng.choice([1e-3, 1.0, 1e3], size=(m, p))
    W = rng.uniform(-2.0, 2.0, m)
    got = _triangle(X, 0, m, W, p)[:p, :p]
    assert np.array_equal(got, _same_order(X, 0, m, W, p))


def test_syrk8_refuses_arrays_it_cannot_vectorise():
    @njit
    def call(C, X, W):
        simd.syrk8(C, X, W, 0, 4)

    with pytest.raises(TypingError, match="syrk8 takes"):
        call(np.zeros((8, 8), dtype=np.float32), np.zeros((8, 8)), np.ones(8))
    with pytest.raises(TypingError, match="syrk8 takes"):
        call(np.zeros((8, 8)), np.zeros((8, 8)).T, np.ones(8))
