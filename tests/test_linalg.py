"""The small dense linear algebra of the IRLS and Newton steps (simbench.kernels.linalg)."""

from __future__ import annotations

import numpy as np
import pytest

from simbench.kernels.linalg import cholesky_inverse, cholesky_solve, scaled_cholesky


def _factor(q: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3 * q + 2, q)) * rng.uniform(0.1, 10.0, q)  # unequal scales
    A = X.T @ X
    L, d = np.zeros((q, q)), np.empty(q)
    assert scaled_cholesky(A, L, d, 1e-11) == -1
    return A, L, d


@pytest.mark.parametrize("q", [1, 2, 3, 4, 5, 7, 8, 9, 21, 50])
def test_the_inverse_is_the_solve_of_each_unit_vector_bit_for_bit(q):
    """Column j is ``cholesky_solve`` of the j-th unit vector, the same operations in the
    same order (the columns are solved four at a time), then made exactly symmetric."""
    _, L, d = _factor(q, q)
    expected = np.empty((q, q))
    for j in range(q):
        e = np.zeros(q)
        e[j] = 1.0
        col = np.empty(q)
        cholesky_solve(L, d, e, col)
        expected[:, j] = col
    sym = 0.5 * (expected + expected.T)
    expected = np.triu(sym) + np.triu(sym, 1).T
    got = np.empty((q, q))
    cholesky_inverse(L, d, got)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("q", [1, 6, 40])
def test_the_inverse_inverts(q):
    A, L, d = _factor(q, 100 + q)
    got = np.empty((q, q))
    cholesky_inverse(L, d, got)
    np.testing.assert_allclose(got, np.linalg.inv(A), rtol=1e-9, atol=1e-12 * np.abs(got).max())
    assert np.array_equal(got, got.T)
