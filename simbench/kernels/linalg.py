"""Small dense linear algebra for the IRLS and Newton steps: a Cholesky factorisation of
the diagonally scaled information that reports the first (numerically) dependent column,
solves and the inverse.  q x q with q the number of coefficients, so plain loops (no LAPACK
call overhead, no BLAS threads)."""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel


@kernel
def scaled_cholesky(A, L, d, tol):
    """Factor ``D A D = L L'`` with ``D = diag(d)``, ``d_j = A_jj^-1/2``.

    Returns -1 on success, else the first column ``j`` whose pivot (its ``1 - R^2`` on the
    columns before it, in the metric of ``A``) is not above ``tol``; ``L`` is then partial.
    """
    q = A.shape[0]
    for j in range(q):
        ajj = A[j, j]
        if not (ajj > 0.0 and ajj < math.inf):
            return j
        d[j] = 1.0 / math.sqrt(ajj)
    for j in range(q):
        s = A[j, j] * d[j] * d[j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > tol:
            return j
        ljj = math.sqrt(s)
        L[j, j] = ljj
        for i in range(j + 1, q):
            t = A[i, j] * d[i] * d[j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / ljj
        for i in range(j):
            L[i, j] = 0.0
    return -1


@kernel
def cholesky_solve(L, d, g, out):
    """Solve ``A x = g`` given ``D A D = L L'``: ``x = D L'^-1 L^-1 D g``, into ``out``."""
    q = L.shape[0]
    for i in range(q):
        t = d[i] * g[i]
        for k in range(i):
            t -= L[i, k] * out[k]
        out[i] = t / L[i, i]
    for i in range(q - 1, -1, -1):
        t = out[i]
        for k in range(i + 1, q):
            t -= L[k, i] * out[k]
        out[i] = t / L[i, i]
    for i in range(q):
        out[i] *= d[i]


@kernel
def cholesky_inverse(L, d, out):
    """``A^-1`` from ``D A D = L L'``, into ``out`` (q, q).

    Column ``j`` is :func:`cholesky_solve` of the ``j``-th unit vector, every operation as
    there and in the same order.  Four columns are solved side by side: each substitution
    is a chain of dependent subtractions, and four independent chains keep the processor
    busy where one leaves it waiting (about 4x faster at q = 200).
    """
    q = L.shape[0]
    Y = np.empty((q, 4))
    for j0 in range(0, q, 4):
        j1 = j0 + 1
        j2 = j0 + 2
        j3 = j0 + 3
        for i in range(q):  # forward: L y = D e_j
            di = d[i]
            t0 = di * (1.0 if i == j0 else 0.0)
            t1 = di * (1.0 if i == j1 else 0.0)
            t2 = di * (1.0 if i == j2 else 0.0)
            t3 = di * (1.0 if i == j3 else 0.0)
            for k in range(i):
                lik = L[i, k]
                t0 -= lik * Y[k, 0]
                t1 -= lik * Y[k, 1]
                t2 -= lik * Y[k, 2]
                t3 -= lik * Y[k, 3]
            lii = L[i, i]
            Y[i, 0] = t0 / lii
            Y[i, 1] = t1 / lii
            Y[i, 2] = t2 / lii
            Y[i, 3] = t3 / lii
        for i in range(q - 1, -1, -1):  # backward: L' x = y
            t0 = Y[i, 0]
            t1 = Y[i, 1]
            t2 = Y[i, 2]
            t3 = Y[i, 3]
            for k in range(i + 1, q):
                lki = L[k, i]
                t0 -= lki * Y[k, 0]
                t1 -= lki * Y[k, 1]
                t2 -= lki * Y[k, 2]
                t3 -= lki * Y[k, 3]
            lii = L[i, i]
            Y[i, 0] = t0 / lii
            Y[i, 1] = t1 / lii
            Y[i, 2] = t2 / lii
            Y[i, 3] = t3 / lii
        for c in range(min(4, q - j0)):
            for i in range(q):
                out[i, j0 + c] = Y[i, c] * d[i]
    for j in range(q):
        for k in range(j + 1, q):
            v = 0.5 * (out[j, k] + out[k, j])
            out[j, k] = v
            out[k, j] = v


@kernel
def newton_direction(A, g, L, d, delta, tol):
    """Solve ``A delta = g`` by the scaled Cholesky factorisation.

    Returns ``(column, decrement)``: ``column`` -1 on success, else the first column whose
    pivot is not above ``tol`` (``delta`` is then garbage); ``decrement = g' delta``.
    """
    bad = scaled_cholesky(A, L, d, tol)
    if bad >= 0:
        return bad, math.nan
    cholesky_solve(L, d, g, delta)
    dec = 0.0
    for j in range(g.shape[0]):
        dec += g[j] * delta[j]
    return -1, dec
