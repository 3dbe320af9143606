"""IRLS / Fisher-scoring kernels for the reference GLM.

Design
------
With ``x~ = (1, x)`` the design row, ``mu = h(eta)``, ``eta = x~'beta + offset``, prior weight
``w`` and unit variance ``V``, Fisher scoring for the log-likelihood solves at each step

    A delta = g,    A = sum_i W_i x~_i x~_i',    g = sum_i W_i r_i x~_i,
    W_i = w_i h'(eta_i)^2 / V(mu_i),    r_i = (y_i - mu_i) / h'(eta_i),

(``A`` is the expected information times the dispersion, ``g`` the score times the
dispersion).  This is IRLS written as a Newton-type update ``beta + delta``: the working
response ``z = eta - offset + r`` is never formed, so the right-hand side keeps its digits
when the fit is close to converged.  Only the first step, from the starting means ``mu_0``
where no ``beta`` exists yet, uses the regression form ``A beta_1 = sum_i W_i z_i x~_i``.

One pass over the rows (:func:`irls_pass`) does everything at a trial ``beta``: the linear
predictor, the domain checks, the deviance, ``A`` and ``g``.  Rows are processed in chunks of
:data:`CHUNK`: each chunk of ``sqrt(W_i) x~_i`` is written into a small buffer (the intercept
is its first column, so ``X`` never gets a column of ones) and its cross-product is added to
``A`` by a register-blocked rank-8 update (:func:`_syrk_rows`).  Chunks are combined in row
order, so results are bit-identical from run to run.

The iteration itself (:func:`simbench.fit.glm.fit_glm`) is a short Python loop over these
kernels, a handful of calls per iteration: a compiled caller of :func:`irls_pass` would
have to recompile it and every family and link kernel it inlines, doubling the first-use
compile time for a few microseconds per iteration.  It does

* step-halving: a trial point whose linear predictor leaves the link's domain, whose mean
  leaves the family's, or whose deviance rises is replaced by ``beta + delta / 2^k``;
* convergence: the relative deviance change between accepted iterates AND the Newton
  decrement ``g'A^-1 g`` (the predicted deviance decrease of the next step, in deviance
  units whatever the dispersion) are both below ``tol * (|D| + 0.1)``;
* the linear systems are solved by a Cholesky factorisation of the diagonally scaled
  information ``S = D A D`` (``D = diag(A)^-1/2``, :func:`newton_direction`).  A pivot of
  ``S`` below :data:`RANK_TOL` means ``1 - R^2 < RANK_TOL`` for that column regressed (with
  weights ``W``) on the earlier ones: the design is numerically rank deficient.

Detecting separation needs a linear program and a readable message, so it lives in
:mod:`simbench.fit.glm`, which runs it when the kernel's result shows the symptoms.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel
from simbench.kernels import codes
from simbench.kernels.families import fam_mu_valid, fam_unit_deviance, fam_variance
from simbench.kernels.links import link_eta_valid, link_g, link_h, link_h1, link_mu_valid

# rows per accumulation chunk: the chunk buffer stays in cache (256 x 51 doubles = 100 kB)
CHUNK = 256
# at most this many step-halvings per iteration (the last trial step is 2^-30 of the full one)
MAX_HALVINGS = 30
# a column whose weighted 1 - R^2 on the earlier columns is below this is collinear with them;
# X'WX holds squares, so nothing below about 1e-13 could be resolved in double precision
RANK_TOL = 1e-11
# a trial deviance may exceed the current one by this relative amount (rounding) and still be
# accepted, so that a fit at its rounding floor is not halved thirty times for nothing
DEV_SLACK = 1e-12

_LOG = codes.LINK_LOG
_BERNOULLI = codes.FAMILY_BERNOULLI
_BINOMIAL = codes.FAMILY_BINOMIAL


# ---- scalar helpers ---------------------------------------------------------------------


@kernel
def _mu_h1(lcode, lam, eta):
    """``(h(eta), h'(eta))``; the log link shares its one exponential."""
    if lcode == _LOG:
        m = math.exp(eta)
        return m, m
    return link_h(lcode, lam, eta), link_h1(lcode, lam, eta)


@kernel
def _mu_ok(fcode, a, lcode, lam, mu):
    """Whether ``mu`` is a mean of the family that the link can map back to a finite eta."""
    return fam_mu_valid(fcode, a, mu) and link_mu_valid(lcode, lam, mu)


# ---- starting values ------------------------------------------------------------------


@kernel
def irls_start_eta(fcode, a, lcode, lam, y, weights, eta_out):
    """Starting linear predictor ``eta_0 = g(mu_0)`` (offset included) and the weighted mean.

    ``mu_0 = (y + ybar) / 2`` (``ybar = sum w y / sum w``); binomial ``(w y + 1/2) / (w + 1)``
    with ``w`` the trials, Bernoulli ``(y + 1/2) / 2``; where that is outside the domain of
    the family or the link, ``ybar``.  Returns ``ybar``, or nan when no valid start exists.
    """
    n = y.shape[0]
    has_w = weights.shape[0] > 0
    sw = 0.0
    swy = 0.0
    for i in range(n):
        w = weights[i] if has_w else 1.0
        if w > 0.0:
            sw += w
            swy += w * y[i]
    ybar = swy / sw
    ybar_ok = _mu_ok(fcode, a, lcode, lam, ybar)
    for i in range(n):
        w = weights[i] if has_w else 1.0
        if fcode == _BINOMIAL:
            mu0 = (w * y[i] + 0.5) / (w + 1.0)
        elif fcode == _BERNOULLI:
            mu0 = 0.5 * (y[i] + 0.5)
        else:
            mu0 = 0.5 * (y[i] + ybar)
        if not _mu_ok(fcode, a, lcode, lam, mu0):
            if not ybar_ok:
                if w > 0.0:
                    return math.nan
                mu0 = 0.5  # an absent row: any value the link accepts
                if not _mu_ok(fcode, a, lcode, lam, mu0):
                    mu0 = 1.0
            else:
                mu0 = ybar
        e = link_g(lcode, lam, mu0)
        if w > 0.0 and not link_eta_valid(lcode, lam, e):
            return math.nan
        eta_out[i] = e
    return ybar


# ---- accumulation ---------------------------------------------------------------------


@kernel
def _syrk_rows(B, m, C):
    """``C += B[:m]' B[:m]`` on the lower triangle of ``C``, rows added in order.

    Eight rows per sweep over ``C`` keep the loads and stores of ``C`` few; the inner loop is
    elementwise, so it vectorises without reassociating any sum (no fastmath needed) and the
    result is the same on every run and thread count.  Faster than a BLAS call on chunks
    this small, and it never starts BLAS threads (which oversubscribe a busy machine).
    """
    r = B.shape[1]
    i = 0
    while i + 8 <= m:
        b0 = B[i]
        b1 = B[i + 1]
        b2 = B[i + 2]
        b3 = B[i + 3]
        b4 = B[i + 4]
        b5 = B[i + 5]
        b6 = B[i + 6]
        b7 = B[i + 7]
        for j in range(r):
            c0 = b0[j]
            c1 = b1[j]
            c2 = b2[j]
            c3 = b3[j]
            c4 = b4[j]
            c5 = b5[j]
            c6 = b6[j]
            c7 = b7[j]
            Cj = C[j]
            for k in range(j + 1):
                Cj[k] += (c0 * b0[k] + c1 * b1[k] + c2 * b2[k] + c3 * b3[k]) + (
                    c4 * b4[k] + c5 * b5[k] + c6 * b6[k] + c7 * b7[k]
                )
        i += 8
    while i < m:
        b0 = B[i]
        for j in range(r):
            c0 = b0[j]
            Cj = C[j]
            for k in range(j + 1):
                Cj[k] += c0 * b0[k]
        i += 1


@kernel
def _add_lower(C, T):
    """``T += C`` on the lower triangle; ``C = 0``."""
    r = C.shape[0]
    for j in range(r):
        for k in range(j + 1):
            T[j, k] += C[j, k]
            C[j, k] = 0.0


# ---- one pass over the rows -----------------------------------------------------------


@kernel
def irls_pass(
    X, icpt, beta, start, fcode, a, lcode, lam, y, weights, offset, eta, A, g, buf, acc
):
    """One pass over the rows: linear predictor, domain check, deviance, ``A`` and ``g``.

    Parameters
    ----------
    X : (n, p) C-contiguous float64
    icpt : int
        1 when the first coefficient is an intercept (``q = p + 1`` coefficients), else 0.
    beta : (q,) float64
        The trial coefficients; ignored when ``start`` is true.
    start : bool
        True: take ``eta`` as given (the starting values) and accumulate the regression
        right-hand side ``sum W z x~`` in ``g``; false: compute ``eta = X~ beta + offset`` and
        accumulate the score ``sum W r x~``.
    fcode, a, lcode, lam : family code and parameter, link code and power.
    y, weights, offset : (n,) float64; ``weights``/``offset`` may be empty (1 / 0).
    eta : (n,) float64
        Input when ``start``, else output.
    A : (q, q), g : (q,) float64
        Outputs (overwritten).
    buf : (CHUNK, q + 1), acc : (2, q + 1, q + 1) float64
        Work space.

    Returns
    -------
    float
        The deviance ``sum w d(y, mu)``; nan as soon as a row with positive weight has an
        invalid linear predictor or mean (the pass stops there and ``A``, ``g`` are garbage).

    Notes
    -----
    A chunk holds the rows ``(sqrt(W_i) x~_i, c_i)`` with ``c_i = sqrt(W_i) r_i``, so the lower
    triangle of its cross-product holds ``A`` and, in its last row, ``g``.  Each chunk's
    cross-product is formed apart and then added to the total (blocked summation: rounding
    grows with ``CHUNK + n / CHUNK``, not ``n``).
    """
    n, p = X.shape
    q = p + icpt
    has_w = weights.shape[0] > 0
    has_off = offset.shape[0] > 0
    b0 = beta[0] if icpt == 1 else 0.0
    chunk = acc[0]
    total = acc[1]
    chunk[:, :] = 0.0
    total[:, :] = 0.0
    dev = 0.0
    for i0 in range(0, n, CHUNK):
        m = min(CHUNK, n - i0)
        for k in range(m):
            i = i0 + k
            w = weights[i] if has_w else 1.0
            if start:
                e = eta[i]
            else:
                e = b0
                for j in range(p):
                    e += X[i, j] * beta[icpt + j]
                if has_off:
                    e += offset[i]
                eta[i] = e
            if not w > 0.0:
                buf[k, :] = 0.0
                continue
            if not link_eta_valid(lcode, lam, e):
                return math.nan
            mu, h1 = _mu_h1(lcode, lam, e)
            if not fam_mu_valid(fcode, a, mu):
                return math.nan
            yi = y[i]
            dev += w * fam_unit_deviance(fcode, a, yi, mu)
            root = math.sqrt(w / fam_variance(fcode, a, mu))
            s = root * abs(h1)
            # W r / sqrt(W) = sqrt(w / V) (y - mu) sign(h'): exact even where W underflows
            c = root * (yi - mu)
            if h1 < 0.0:
                c = -c
            if start:
                c += s * (e - offset[i] if has_off else e)
            if icpt == 1:
                buf[k, 0] = s
            for j in range(p):
                buf[k, icpt + j] = s * X[i, j]
            buf[k, q] = c
        _syrk_rows(buf, m, chunk)
        _add_lower(chunk, total)
    if not math.isfinite(dev):
        return math.nan
    for j in range(q):
        g[j] = total[q, j]
        for k in range(j + 1):
            A[j, k] = total[j, k]
            A[k, j] = total[j, k]
    return dev


@kernel
def irls_finish(X, icpt, fcode, a, lcode, lam, y, weights, eta, mu_out, meat_out, buf, acc):
    """Final pass: ``mu = h(eta)`` into ``mu_out`` and the "meat" of the sandwich,
    ``sum_i u_i^2 x~_i x~_i'`` with the score contributions
    ``u_i = w_i h'(eta_i) (y_i - mu_i) / V(mu_i)`` (HC0), into ``meat_out`` (q, q).
    ``buf`` and ``acc`` are work space as in :func:`irls_pass`.

    Returns ``(pearson, n_positive, sum_w)``: the Pearson statistic
    ``sum w (y - mu)^2 / V(mu)``, the number of rows of positive weight and their total weight.
    """
    n, p = X.shape
    q = p + icpt
    has_w = weights.shape[0] > 0
    chunk = acc[0]
    total = acc[1]
    chunk[:, :] = 0.0
    total[:, :] = 0.0
    pearson = 0.0
    npos = 0
    sw = 0.0
    for i0 in range(0, n, CHUNK):
        m = min(CHUNK, n - i0)
        for k in range(m):
            i = i0 + k
            w = weights[i] if has_w else 1.0
            mu, h1 = _mu_h1(lcode, lam, eta[i])
            mu_out[i] = mu
            u = 0.0
            if w > 0.0:
                r = y[i] - mu
                v = fam_variance(fcode, a, mu)
                pearson += w * r * r / v
                npos += 1
                sw += w
                u = w * h1 * r / v
            if icpt == 1:
                buf[k, 0] = u
            for j in range(p):
                buf[k, icpt + j] = u * X[i, j]
            buf[k, q] = 0.0
        _syrk_rows(buf, m, chunk)
        _add_lower(chunk, total)
    for j in range(q):
        for k in range(j + 1):
            meat_out[j, k] = total[j, k]
            meat_out[k, j] = total[j, k]
    return pearson, npos, sw


# ---- small dense linear algebra -----------------------------------------------------------


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
    """``A^-1`` from ``D A D = L L'``, into ``out`` (q, q)."""
    q = L.shape[0]
    e = np.zeros(q)
    col = np.empty(q)
    for j in range(q):
        e[:] = 0.0
        e[j] = 1.0
        cholesky_solve(L, d, e, col)
        for i in range(q):
            out[i, j] = col[i]
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
