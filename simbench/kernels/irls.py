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
is its first column, so ``X`` never gets a column of ones) and ``A += B'B`` is one BLAS call
per chunk.  Chunks are combined in row order, so results do not depend on thread counts.

The iteration (:func:`irls_solve`) runs entirely in compiled code:

* step-halving: a trial point whose linear predictor leaves the link's domain, whose mean
  leaves the family's, or whose deviance rises is replaced by ``beta + delta / 2^k``;
* convergence: the relative deviance change between accepted iterates AND the Newton
  decrement ``g'A^-1 g`` (the predicted deviance decrease of the next step, in deviance
  units whatever the dispersion) are both below ``tol * (|D| + 0.1)``;
* the linear systems are solved by a Cholesky factorisation of the diagonally scaled
  information ``S = D A D`` (``D = diag(A)^-1/2``).  A pivot of ``S`` below :data:`RANK_TOL`
  means ``1 - R^2 < RANK_TOL`` for that column regressed (with weights ``W``) on the earlier
  ones: the design is numerically rank deficient and the iteration stops with that column.

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

# rows per accumulation chunk: large enough for BLAS to run at speed, small enough that the
# chunk buffer stays in cache (512 x 51 doubles = 200 kB)
CHUNK = 512
# at most this many step-halvings per iteration (the last trial step is 2^-30 of the full one)
MAX_HALVINGS = 30
# a column whose weighted 1 - R^2 on the earlier columns is below this is collinear with them;
# X'WX holds squares, so nothing below about 1e-13 could be resolved in double precision
RANK_TOL = 1e-11
# a trial deviance may exceed the current one by this relative amount (rounding) and still be
# accepted, so that a fit at its rounding floor is not halved thirty times for nothing
DEV_SLACK = 1e-12

# status codes returned by irls_solve (mapped to names by simbench.fit.glm)
IRLS_CONVERGED = 0
IRLS_MAX_ITER = 1
IRLS_RANK_DEFICIENT = 2
IRLS_NO_START = 3  # neither the first IRLS step nor the null model gives valid means
IRLS_STALLED = 4  # step-halving could not decrease the deviance away from an optimum
IRLS_SINGULAR = 5  # the information lost rank during the iterations (weights vanished)
IRLS_NONFINITE = 6  # X'WX is not finite: non-finite or overflowing entries in X

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


# ---- one pass over the rows -----------------------------------------------------------


@kernel
def irls_pass(
    X, icpt, beta, start, fcode, a, lcode, lam, y, weights, offset, eta, A, g, buf, cbuf
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
    buf : (CHUNK, q), cbuf : (CHUNK,) float64
        Work space.

    Returns
    -------
    float
        The deviance ``sum w d(y, mu)``; nan as soon as a row with positive weight has an
        invalid linear predictor or mean (the pass stops there and ``A``, ``g`` are garbage).
    """
    n, p = X.shape
    q = p + icpt
    has_w = weights.shape[0] > 0
    has_off = offset.shape[0] > 0
    b0 = beta[0] if icpt == 1 else 0.0
    slopes = beta[icpt:]
    A[:, :] = 0.0
    g[:] = 0.0
    dev = 0.0
    for i0 in range(0, n, CHUNK):
        m = min(CHUNK, n - i0)
        i1 = i0 + m
        if not start:
            if p > 0:
                np.dot(X[i0:i1], slopes, eta[i0:i1])
            else:
                eta[i0:i1] = 0.0
            for i in range(i0, i1):
                eta[i] += b0
                if has_off:
                    eta[i] += offset[i]
        for k in range(m):
            i = i0 + k
            w = weights[i] if has_w else 1.0
            if not w > 0.0:
                for j in range(q):
                    buf[k, j] = 0.0
                cbuf[k] = 0.0
                continue
            e = eta[i]
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
                z0 = e - offset[i] if has_off else e
                c += s * z0
            if icpt == 1:
                buf[k, 0] = s
            for j in range(p):
                buf[k, icpt + j] = s * X[i, j]
            cbuf[k] = c
        if q > 0:
            B = buf[:m]
            A += np.dot(B.T, B)
            g += np.dot(B.T, cbuf[:m])
    # BLAS fills both triangles, not necessarily bit-identically: keep the lower one
    for j in range(q):
        for k in range(j + 1, q):
            A[j, k] = A[k, j]
    if not math.isfinite(dev):
        return math.nan
    return dev


@kernel
def irls_meat(X, icpt, fcode, a, lcode, lam, y, weights, eta, out, buf):
    """The "meat" of the sandwich, ``sum_i u_i^2 x~_i x~_i'`` with the score contributions
    ``u_i = w_i h'(eta_i) (y_i - mu_i) / V(mu_i)`` (HC0), into ``out`` (q, q)."""
    n, p = X.shape
    q = p + icpt
    has_w = weights.shape[0] > 0
    out[:, :] = 0.0
    for i0 in range(0, n, CHUNK):
        m = min(CHUNK, n - i0)
        for k in range(m):
            i = i0 + k
            w = weights[i] if has_w else 1.0
            u = 0.0
            if w > 0.0:
                mu, h1 = _mu_h1(lcode, lam, eta[i])
                u = w * h1 * (y[i] - mu) / fam_variance(fcode, a, mu)
            if icpt == 1:
                buf[k, 0] = u
            for j in range(p):
                buf[k, icpt + j] = u * X[i, j]
        if q > 0:
            B = buf[:m]
            out += np.dot(B.T, B)
    for j in range(q):
        for k in range(j + 1, q):
            out[j, k] = out[k, j]


@kernel
def irls_summaries(fcode, a, lcode, lam, y, weights, eta, mu_out):
    """``mu = h(eta)`` into ``mu_out``; returns ``(pearson, n_positive, sum_w)`` with the Pearson
    statistic ``sum w (y - mu)^2 / V(mu)`` over rows of positive weight."""
    n = y.shape[0]
    has_w = weights.shape[0] > 0
    pearson = 0.0
    npos = 0
    sw = 0.0
    for i in range(n):
        mu = link_h(lcode, lam, eta[i])
        mu_out[i] = mu
        w = weights[i] if has_w else 1.0
        if w > 0.0:
            r = y[i] - mu
            pearson += w * r * r / fam_variance(fcode, a, mu)
            npos += 1
            sw += w
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
        # solve with D^-1 e_j on the right so that the D factors cancel: A^-1 e_j
        e[j] = 1.0 / d[j]
        cholesky_solve(L, d, e, col)
        for i in range(q):
            out[i, j] = col[i]
    for j in range(q):
        for k in range(j + 1, q):
            v = 0.5 * (out[j, k] + out[k, j])
            out[j, k] = v
            out[k, j] = v


# ---- the iteration ---------------------------------------------------------------------------


@kernel
def irls_solve(
    X, icpt, fcode, a, lcode, lam, y, weights, offset, tol, max_iter, beta, eta, A, g, history
):
    """Fisher scoring with step-halving from the standard starting values.

    Parameters
    ----------
    X, icpt, fcode, a, lcode, lam, y, weights, offset : as in :func:`irls_pass`.
    tol : float
        Convergence tolerance (relative deviance change and Newton decrement, see module).
    max_iter : int
        Maximal number of accepted updates of ``beta``.
    beta : (q,) float64
        Output: the final coefficients.
    eta : (n,) float64
        Output: the final linear predictor (offset included).
    A : (q, q), g : (q,) float64
        Output: ``X~'WX~`` and the score at the final ``beta`` (at the start for rank
        deficiency, where ``beta`` is nan).
    history : (max_iter + 1,) float64
        Output: the deviance of each accepted iterate, in order.

    Returns
    -------
    (status, iterations, deviance, decrement, column)
        ``status`` one of the ``IRLS_*`` codes; ``iterations`` the number of accepted
        iterates; ``decrement`` the Newton decrement at the final ``beta``; ``column`` the
        first collinear column (``IRLS_RANK_DEFICIENT``) or the column where the information
        lost rank (``IRLS_SINGULAR``), else -1.
    """
    n, p = X.shape
    q = p + icpt
    buf = np.empty((CHUNK, q))
    cbuf = np.empty(CHUNK)
    L = np.zeros((q, q))
    dsc = np.empty(q)
    delta = np.empty(q)
    beta_try = np.empty(q)
    beta[:] = math.nan

    ybar = irls_start_eta(fcode, a, lcode, lam, y, weights, eta)
    if not math.isfinite(ybar):
        return IRLS_NO_START, 0, math.nan, math.nan, -1
    irls_pass(X, icpt, beta, True, fcode, a, lcode, lam, y, weights, offset, eta, A, g, buf, cbuf)
    for j in range(q):
        if not math.isfinite(g[j]):
            return IRLS_NONFINITE, 0, math.nan, math.nan, -1
        for k in range(q):
            if not math.isfinite(A[j, k]):
                return IRLS_NONFINITE, 0, math.nan, math.nan, -1
    bad = scaled_cholesky(A, L, dsc, RANK_TOL)
    if bad >= 0:
        return IRLS_RANK_DEFICIENT, 0, math.nan, math.nan, bad
    cholesky_solve(L, dsc, g, beta_try)

    # Two sets of buffers: "cur" holds the pass at the accepted beta, "try" the trial pass;
    # accepting a trial swaps the references.  `flipped` tracks whether cur is the caller's.
    eta_cur, A_cur, g_cur = eta, A, g
    eta_try = np.empty(n)
    A_try = np.empty((q, q))
    g_try = np.empty(q)
    flipped = False

    # first point: the regression step from mu_0; else the null model, halving towards the step
    dev = irls_pass(
        X, icpt, beta_try, False, fcode, a, lcode, lam, y, weights, offset, eta_try, A_try,
        g_try, buf, cbuf,
    )
    if math.isfinite(dev):
        beta[:] = beta_try
        eta_cur, eta_try = eta_try, eta_cur
        A_cur, A_try = A_try, A_cur
        g_cur, g_try = g_try, g_cur
        flipped = True
    else:
        target = beta_try.copy()
        beta[:] = 0.0
        if icpt == 1:
            beta[0] = link_g(lcode, lam, ybar)
        dev = irls_pass(
            X, icpt, beta, False, fcode, a, lcode, lam, y, weights, offset, eta_cur, A_cur,
            g_cur, buf, cbuf,
        )
        if not math.isfinite(dev):
            beta[:] = math.nan
            return IRLS_NO_START, 0, math.nan, math.nan, -1
        t = 0.5
        for _ in range(MAX_HALVINGS):
            for j in range(q):
                beta_try[j] = beta[j] + t * (target[j] - beta[j])
            dev_t = irls_pass(
                X, icpt, beta_try, False, fcode, a, lcode, lam, y, weights, offset, eta_try,
                A_try, g_try, buf, cbuf,
            )
            if math.isfinite(dev_t) and dev_t <= dev:
                beta[:] = beta_try
                dev = dev_t
                eta_cur, eta_try = eta_try, eta_cur
                A_cur, A_try = A_try, A_cur
                g_cur, g_try = g_try, g_cur
                flipped = not flipped
                break
            t *= 0.5
    history[0] = dev
    dev_prev = math.inf
    it = 1
    status = IRLS_MAX_ITER
    decrement = math.nan
    column = -1
    while True:
        bad = scaled_cholesky(A_cur, L, dsc, RANK_TOL)
        if bad >= 0:
            status = IRLS_SINGULAR
            column = bad
            break
        cholesky_solve(L, dsc, g_cur, delta)
        decrement = 0.0
        for j in range(q):
            decrement += g_cur[j] * delta[j]
        scale = abs(dev) + 0.1
        if decrement <= tol * scale and abs(dev - dev_prev) <= tol * scale:
            status = IRLS_CONVERGED
            break
        if it >= max_iter:
            break
        t = 1.0
        accepted = False
        dev_t = math.nan
        for _ in range(MAX_HALVINGS + 1):
            for j in range(q):
                beta_try[j] = beta[j] + t * delta[j]
            dev_t = irls_pass(
                X, icpt, beta_try, False, fcode, a, lcode, lam, y, weights, offset, eta_try,
                A_try, g_try, buf, cbuf,
            )
            if math.isfinite(dev_t) and dev_t <= dev + DEV_SLACK * scale:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            # at the rounding floor of the deviance the predicted gain is negligible
            if decrement <= math.sqrt(tol) * scale:
                status = IRLS_CONVERGED
            else:
                status = IRLS_STALLED
            break
        beta[:] = beta_try
        eta_cur, eta_try = eta_try, eta_cur
        A_cur, A_try = A_try, A_cur
        g_cur, g_try = g_try, g_cur
        flipped = not flipped
        dev_prev = dev
        dev = dev_t
        history[it] = dev
        it += 1
    if flipped:
        # the current pass lives in the work buffers, which now hold the caller's arrays
        eta_try[:] = eta_cur
        A_try[:, :] = A_cur
        g_try[:] = g_cur
    return status, it, dev, decrement, column
