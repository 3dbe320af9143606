"""Fisher-scoring (IRLS) and Newton kernels for the reference GLM.

Design
------
With ``x~ = (1, x)`` the design row, ``eta = x~'beta + offset``, ``mu = h(eta)``, prior weight
``w`` and unit variance ``V``, Fisher scoring for the log-likelihood solves at each step

    A delta = g,    A = sum_i W_i x~_i x~_i',    g = sum_i W_i r_i x~_i,
    W_i = w_i h'(eta_i)^2 / V(mu_i),    r_i = (y_i - mu_i) / h'(eta_i)

(``A`` is the expected information times the dispersion, ``g`` the score times the
dispersion).  This is IRLS written as an update ``beta + delta``: the working response
``z = eta - offset + r`` is never formed, so the right-hand side keeps its digits when the fit
is close to converged.  Only the first step, from the starting means ``mu_0`` where no
``beta`` exists yet, uses the regression form ``A beta_1 = sum_i W_i z_i x~_i``.  Newton's
method replaces ``W`` by the observed weights
``W_obs = W - w (y - mu) (h'' V - h'^2 V') / V^2`` (equal for canonical links).

:func:`irls_pass` evaluates one trial ``beta`` in a single call:

* :func:`irls_rows`, one pass over the rows: the linear predictor, the domain checks, the
  deviance and two numbers per row, the weight ``W_i`` and the score factor
  ``f_i = W_i r_i``.  The pairs fused by :mod:`simbench.kernels.losses` take its fused
  kernel, the others the link and family kernels;
* chunk by chunk (:data:`CHUNK` rows, still in cache), the cross-product ``A`` (the
  intercept's column and the score ``g = sum f_i x~_i`` by :func:`_vector_rows`, which
  reads ``X`` in place; the covariate block by explicit SIMD rank-8 updates,
  :func:`simbench.kernels.simd.weighted_syrk`, on an aligned copy of the chunk, forming
  ``W_i x_ij`` in registers, so ``X`` never gets a column of ones nor a scaled copy).
  Chunks and blocks are added in row order, so results are bit-identical from run to run
  and independent of any thread count.  A chord step accumulates only ``g``;
* the direction ``delta`` by a Cholesky factorisation of the diagonally scaled information
  ``D A D`` (``D = diag(A)^-1/2``, :func:`newton_direction`).  A pivot below
  :data:`RANK_TOL` is a column whose ``1 - R^2``, regressed (with weights ``W``) on the
  earlier columns, is below it: the design is numerically rank deficient.

The iteration (step-halving, convergence, the switch to Newton's method, the starting point
when the first step leaves the domain, chord steps, subsampled passes) is a short Python
loop in :mod:`simbench.fit.scoring`, one kernel call per trial point: a compiled caller of
:func:`irls_pass` would recompile it and every family and link kernel it inlines, doubling
the first-use compile time to save a few microseconds per iteration.  Separation needs a
linear program and readable messages: :mod:`simbench.fit.separation`.

No kernel here runs BLAS or threads: the chunks are too small for BLAS to pay off, and BLAS
or OpenMP threads oversubscribe a machine whose cores are busy with other sweep workers.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel, readonly
from simbench.kernels import codes
from simbench.kernels.families import (
    fam_mu_valid,
    fam_unit_deviance,
    fam_variance,
    fam_variance_d1,
)
from simbench.kernels.linalg import (  # noqa: F401 (part of this module's interface)
    cholesky_inverse,
    cholesky_solve,
    newton_direction,
    scaled_cholesky,
)
from simbench.kernels.links import (
    link_eta_valid,
    link_g,
    link_h,
    link_h012,
    link_h1,
    link_mu_valid,
)
from simbench.kernels.losses import (
    PAIR_BERNOULLI_LOGIT,
    PAIR_GAMMA_LOG,
    PAIR_NONE,
    PAIR_POISSON_LOG,
    fused_pair,
    gamma_log_row,
    logit_row,
    loss_eval,
    poisson_log_row,
)
from simbench.kernels.simd import aligned_zeros, padded_width, weighted_syrk
from simbench.kernels.vecmath import exp_fast, log_fast, log_y_or_zero

HESS_EXPECTED = codes.HESS_EXPECTED
HESS_OBSERVED = codes.HESS_OBSERVED

# rows per accumulation chunk: its rows of X stay in cache between the row pass and the
# cross-product (256 rows of 50 columns = 100 kB)
CHUNK = 256
# rows per block of irls_accumulate's two-level (blocked) summation
BLOCK = 8192
# at most this many step-halvings per iteration (the last trial step is 2^-30 of the full one)
MAX_HALVINGS = 30
# a column whose weighted 1 - R^2 on the earlier columns is below this is collinear with them;
# X'WX holds squares, so nothing below about 1e-13 could be resolved in double precision
RANK_TOL = 1e-11
# a trial deviance may exceed the current one by this relative amount (rounding) and still be
# accepted, so that a fit at its rounding floor is not halved thirty times for nothing
DEV_SLACK = 1e-12

# chord steps (score-only passes reusing the last factor of A) start once the Newton
# decrement is below CHORD_DECREMENT dispersions (the step is within about three standard
# errors, where A changes little) and continue while each decrement is at most
# CHORD_CONTRACTION times the last (the step shrinks at least 3x per pass); otherwise the
# next pass is a full one
CHORD_DECREMENT = 10.0
CHORD_CONTRACTION = 0.1
# a fit that ends on a chord step needs a decrement this much below tol^2 phi
CHORD_POLISH = 1e-4
# passes after the start estimate A from every s-th chunk of rows when that leaves at least
# SUBSAMPLE_ROWS_PER_COEF rows per coefficient (s at most SUBSAMPLE_MAX_STRIDE): a sampling
# error of about sqrt(q / m) <= 15% in A, which costs a few chord steps and saves most of the
# O(q^2) work; the score, the deviance and the final covariances use every row
SUBSAMPLE_ROWS_PER_COEF = 50
SUBSAMPLE_MAX_STRIDE = 8
# chord steps only for designs with at least CHORD_MIN_COLUMNS coefficients and n q^2 of at
# least CHORD_MIN_WORK: on smaller problems a pass costs little next to the per-iteration
# overhead, and full Newton steps, converging quadratically, need fewer of them (measured at
# q = 11 and 51, n = 1e3 to 1e5, Poisson, Bernoulli and Gamma: without chord steps, fits
# took up to 1.3x as long at q = 11 from n = 1e4 on, and 1.1-1.8x at q = 51)
CHORD_MIN_COLUMNS = 8
CHORD_MIN_WORK = 1_000_000

# what irls_pass accumulates
MODE_START = 0  # regression step from the starting means (expected information)
MODE_FISHER = 1  # expected information: Fisher scoring
MODE_NEWTON = 2  # observed information: Newton-Raphson

_LOG = codes.LINK_LOG
# starting means closer than this to 0 (or 1) take the general start's checks
_TINY_MU = 1e-300
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


@kernel(inline=True)
def _start_eta_fast(pair, binomial, y, weights, ybar, eta_out):
    """:func:`irls_start_eta`'s loop for Poisson-log, Gamma-log and Bernoulli/binomial-logit,
    branch-free (:func:`~simbench.kernels.vecmath.log_fast`), so it vectorises.  Returns
    False, leaving the general loop to decide, if some starting mean is not inside the
    domain (a zero count with ``ybar`` = 0, say)."""
    n = y.shape[0]
    has_w = weights.shape[0] > 0
    bad = 0
    if pair == PAIR_BERNOULLI_LOGIT:
        for i in range(n):
            w = weights[i] if has_w else 1.0
            mu0 = (w * y[i] + 0.5) / (w + 1.0) if binomial else 0.5 * (y[i] + 0.5)
            ok = mu0 > _TINY_MU and mu0 < 1.0 - _TINY_MU
            bad += 0 if ok else 1
            eta_out[i] = log_fast(mu0 if ok else 0.5) - log_fast(1.0 - mu0 if ok else 0.5)
    else:
        for i in range(n):
            mu0 = 0.5 * (y[i] + ybar)
            ok = mu0 > _TINY_MU and mu0 < math.inf
            bad += 0 if ok else 1
            eta_out[i] = log_fast(mu0 if ok else 1.0)
    return bad == 0


@kernel(inline=True)
def _finish_row(pair, y, e):
    """(mu, W, f) of a row for unit weight, ``f = W r`` (see :func:`_finish_fast`)."""
    if pair == PAIR_POISSON_LOG:
        mu = exp_fast(e)
        return mu, mu, y - mu
    if pair == PAIR_GAMMA_LOG:
        em = exp_fast(-e)
        return 1.0 / em, 1.0, y * em - 1.0
    ex = exp_fast(-abs(e))
    t = ex / (1.0 + ex)
    mu = 1.0 - t if e > 0.0 else t
    return mu, t / (1.0 + ex), -((1.0 - y) - t if e > 0.0 else t - y)


@kernel(inline=True)
def _finish_fast(pair, y, weights, eta, mu_out, u_out, W_out):
    """:func:`irls_finish` for Poisson-log, Gamma-log and Bernoulli/binomial-logit: ``mu``, the
    rows of :func:`_fast_rows` (``W``, ``f = W r``) and the Pearson terms ``w f^2 / W`` in a
    branch-free loop per pair (which vectorises), the sums in row order after it."""
    n = y.shape[0]
    has_w = weights.shape[0] > 0
    terms = np.empty(n)
    if pair == PAIR_POISSON_LOG:
        for i in range(n):
            mu, Wu, fu = _finish_row(PAIR_POISSON_LOG, y[i], eta[i])
            _put_finish(i, weights[i] if has_w else 1.0, mu, Wu, fu, mu_out, u_out, W_out, terms)
    elif pair == PAIR_GAMMA_LOG:
        for i in range(n):
            mu, Wu, fu = _finish_row(PAIR_GAMMA_LOG, y[i], eta[i])
            _put_finish(i, weights[i] if has_w else 1.0, mu, Wu, fu, mu_out, u_out, W_out, terms)
    else:
        for i in range(n):
            mu, Wu, fu = _finish_row(PAIR_BERNOULLI_LOGIT, y[i], eta[i])
            _put_finish(i, weights[i] if has_w else 1.0, mu, Wu, fu, mu_out, u_out, W_out, terms)
    pearson = 0.0
    npos = 0
    sw = 0.0
    for i in range(n):
        w = weights[i] if has_w else 1.0
        if w > 0.0:
            pearson += terms[i]
            npos += 1
            sw += w
    return pearson, npos, sw


@kernel(inline=True)
def _put_finish(i, w, mu, Wu, fu, mu_out, u_out, W_out, terms):
    pos = w > 0.0
    mu_out[i] = mu
    u_out[i] = w * fu if pos else 0.0
    W_out[i] = w * Wu if pos else 0.0
    terms[i] = w * fu * fu / Wu if pos else 0.0


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
    pair = fused_pair(fcode, lcode)
    if ybar_ok and pair in (PAIR_POISSON_LOG, PAIR_GAMMA_LOG, PAIR_BERNOULLI_LOGIT):
        if _start_eta_fast(pair, fcode == _BINOMIAL, y, weights, ybar, eta_out):
            return ybar
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
def _vector_rows(X, icpt, i0, m, W, f, C, with_a):
    """The O(q) part of the bordered cross-product over rows ``i0 .. i0 + m``: the score
    ``C[q, :q] += sum_r f_r x~_r`` and, ``with_a`` and an intercept, the intercept's column
    ``C[:q, 0] += sum_r W_r x~_r``.  Four rows at a time, vectorised over the columns."""
    p = X.shape[1]
    q = p + icpt
    with_a = with_a and icpt == 1
    accf = np.zeros(p)
    accw = np.zeros(p)
    sf = 0.0
    sw = 0.0
    r = 0
    while r + 4 <= m:
        f0 = f[r]
        f1 = f[r + 1]
        f2 = f[r + 2]
        f3 = f[r + 3]
        i = i0 + r
        x0 = X[i]
        x1 = X[i + 1]
        x2 = X[i + 2]
        x3 = X[i + 3]
        sf += (f0 + f1) + (f2 + f3)
        for j in range(p):
            accf[j] += (f0 * x0[j] + f1 * x1[j]) + (f2 * x2[j] + f3 * x3[j])
        if with_a:
            w0 = W[r]
            w1 = W[r + 1]
            w2 = W[r + 2]
            w3 = W[r + 3]
            sw += (w0 + w1) + (w2 + w3)
            for j in range(p):
                accw[j] += (w0 * x0[j] + w1 * x1[j]) + (w2 * x2[j] + w3 * x3[j])
        r += 4
    while r < m:
        f0 = f[r]
        x0 = X[i0 + r]
        sf += f0
        for j in range(p):
            accf[j] += f0 * x0[j]
        if with_a:
            w0 = W[r]
            sw += w0
            for j in range(p):
                accw[j] += w0 * x0[j]
        r += 1
    if icpt == 1:
        C[q, 0] += sf
    for j in range(p):
        C[q, icpt + j] += accf[j]
    if with_a:
        C[0, 0] += sw
        for j in range(p):
            C[1 + j, 0] += accw[j]


@kernel(inline=True)
def _accumulate_rows(X, icpt, W, f, r0, r1, C, with_a, B, T):
    """``C`` (zeroed first) = lower triangle of the bordered cross-product over rows
    ``r0 .. r1`` (only its score row unless ``with_a``), chunk by chunk in row order
    (``B``, ``T``: :func:`syrk_buffers`)."""
    C[:, :] = 0.0
    for i0 in range(r0, r1, CHUNK):
        m = min(CHUNK, r1 - i0)
        _vector_rows(X, icpt, i0, m, W[i0 : i0 + m], f[i0 : i0 + m], C, with_a)
        if with_a:
            weighted_syrk(X, i0, m, W[i0 : i0 + m], C, icpt, B, T)


@kernel
def syrk_buffers(n, p):
    """Work space of :func:`~simbench.kernels.simd.weighted_syrk` for chunks of an ``(n, p)``
    ``X``: the aligned, zero-padded copy of a chunk and the triangle it sums to."""
    pp = padded_width(p)
    return aligned_zeros(min(n, CHUNK), pp), aligned_zeros(pp, pp)


@kernel
def irls_accumulate(X, icpt, W, f, out, work):
    """The bordered cross-product ``out = [[X~' W X~], [f' X~]]`` (``(q + 1, q + 1)``, lower
    triangle: ``A = X~' diag(W) X~`` in the leading ``q x q`` block, the score ``X~' f`` in
    the last row), for row weights ``W`` of either sign.

    Rows are summed in blocks of :data:`BLOCK`, each chunk by chunk in row order, and the
    blocks are added in order (``work`` is ``(n_blocks, q + 1, q + 1)``): rounding grows
    with the block and chunk sizes rather than with ``n``, and the result is the same on
    every run.

    Serial on purpose: a ``parallel=True`` version ran 2x faster alone, but once scikit-learn,
    statsmodels or torch is imported (each loads its own OpenMP runtime) every parallel region
    of Numba's default "omp" threading layer took 16-24 ms.
    """
    n, p = X.shape
    q1 = p + icpt + 1
    nblocks = work.shape[0]
    B, T = syrk_buffers(n, p)
    for b in range(nblocks):
        r0 = b * BLOCK
        r1 = min(n, r0 + BLOCK)
        _accumulate_rows(X, icpt, W, f, r0, r1, work[b], True, B, T)
    out[:, :] = 0.0
    for b in range(nblocks):
        for j in range(q1):
            for k in range(j + 1):
                out[j, k] += work[b, j, k]


def n_blocks(n: int) -> int:
    """Number of row blocks :func:`irls_accumulate` uses for ``n`` rows."""
    return max(1, -(-n // BLOCK))


# ---- the rows ---------------------------------------------------------------------------------


@kernel(inline=True)
def linear_predictor(X, icpt, beta, offset, r0, r1, eta):
    """``eta[i] = x~_i' beta + offset_i`` for rows ``r0 .. r1`` (``offset`` may be empty).

    Each row is summed in column order, ``beta_0`` first, so the result is that of the plain
    loop; eight rows at a time keep eight independent addition chains in flight (one row
    alone waits on the latency of every addition: the pass over ``X`` ran 4x slower).
    """
    p = X.shape[1]
    has_off = offset.shape[0] > 0
    b0 = beta[0] if icpt == 1 else 0.0
    i = r0
    while i + 8 <= r1:
        x0 = X[i]
        x1 = X[i + 1]
        x2 = X[i + 2]
        x3 = X[i + 3]
        x4 = X[i + 4]
        x5 = X[i + 5]
        x6 = X[i + 6]
        x7 = X[i + 7]
        e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = b0
        for j in range(p):
            bj = beta[icpt + j]
            e0 += x0[j] * bj
            e1 += x1[j] * bj
            e2 += x2[j] * bj
            e3 += x3[j] * bj
            e4 += x4[j] * bj
            e5 += x5[j] * bj
            e6 += x6[j] * bj
            e7 += x7[j] * bj
        eta[i] = e0
        eta[i + 1] = e1
        eta[i + 2] = e2
        eta[i + 3] = e3
        eta[i + 4] = e4
        eta[i + 5] = e5
        eta[i + 6] = e6
        eta[i + 7] = e7
        i += 8
    while i < r1:
        e = b0
        for j in range(p):
            e += X[i, j] * beta[icpt + j]
        eta[i] = e
        i += 1
    if has_off:
        for i in range(r0, r1):
            eta[i] += offset[i]


def row_constants(fcode: int, lcode: int, y: np.ndarray) -> np.ndarray:
    """The per-row constants of the deviance for the pairs whose rows :func:`irls_rows`
    evaluates without a logarithm per row: ``log y`` (0 where ``y = 0``) for Poisson-log and
    Gamma-log, ``y log y + (1 - y) log(1 - y)`` for Bernoulli/binomial-logit; an empty array
    for the other pairs.  Computed once per fit."""
    pair = fused_pair(fcode, lcode)
    if pair in (PAIR_POISSON_LOG, PAIR_GAMMA_LOG):
        out = np.empty(y.shape[0])
        log_y_or_zero(readonly(y), out)  # one compiled kind for every caller
        return out
    if pair == PAIR_BERNOULLI_LOGIT:
        out = np.zeros(y.shape[0])
        inner = (y > 0.0) & (y < 1.0)  # 0 and 1 (all of them for binary data) give 0
        if inner.any():
            yy = y[inner]
            out[inner] = yy * np.log(yy) + (1.0 - yy) * np.log1p(-yy)
        return out
    return np.empty(0)


@kernel(inline=True)
def _put(o, w, v, W, f, ok, W_out, f_out, vbuf):
    """Store a row's weighted factors (zeros for a row of weight 0); 1 if it is a row of
    positive weight outside the domain, else 0."""
    pos = w > 0.0
    W_out[o] = w * W if pos else 0.0
    f_out[o] = w * f if pos else 0.0
    vbuf[o] = w * v if pos else 0.0
    return 1 if pos and not ok else 0


@kernel(inline=True)
def _fast_rows(pair, newton, y, weights, cy, r0, r1, eta, W_out, f_out, vbuf):
    """:func:`irls_rows` for Poisson-log, Gamma-log and Bernoulli/binomial-logit given the
    row constants ``cy`` (:func:`row_constants`): branch-free, so the loop vectorises
    (:func:`~simbench.kernels.vecmath.exp_fast` and ``log1p_unit``, no libm call).

    Poisson: ``d/2 = (mu - y) - y (eta - log y)``, ``W = w mu``, ``f = w (y - mu)``.  Gamma
    (``q = y e^-eta``): ``d/2 = (q - 1) - (log y - eta)``, ``W = w`` (observed: ``w q``),
    ``f = w (q - 1)``.  Logit (``e = e^-|eta|``, ``t = e / (1 + e)``): ``d/2 = max(eta, 0) -
    y eta + log1p(e) + y log y + (1 - y) log(1 - y)``, ``W = w t (1 - t)``, ``f = w (y - mu)``
    (as the losses' fused kernel).  Near the optimum the Poisson and Gamma deviances cancel
    as ``q - 1 - log q`` does; with ``log q`` formed as a difference a row carries an
    absolute error of a few ulp of ``y (|eta| + |log y|)`` rather than of ``y |log q|``.
    Returns the deviance, or nan when a row of positive weight leaves the domain (a mean or
    weight that is not positive and finite).
    """
    has_w = weights.shape[0] > 0
    bad = 0
    # one loop per pair (the dispatch outside the loops, which then vectorise)
    if pair == PAIR_POISSON_LOG:
        for i in range(r0, r1):
            w = weights[i] if has_w else 1.0
            v, Wi, fi, ok = poisson_log_row(y[i], eta[i], cy[i])
            bad += _put(i - r0, w, v, Wi, fi, ok, W_out, f_out, vbuf)
    elif pair == PAIR_GAMMA_LOG:
        for i in range(r0, r1):
            w = weights[i] if has_w else 1.0
            v, Wi, fi, ok = gamma_log_row(y[i], eta[i], cy[i], newton)
            bad += _put(i - r0, w, v, Wi, fi, ok, W_out, f_out, vbuf)
    else:
        for i in range(r0, r1):
            w = weights[i] if has_w else 1.0
            v, Wi, fi, ok = logit_row(y[i], eta[i], cy[i])
            bad += _put(i - r0, w, v, Wi, fi, ok, W_out, f_out, vbuf)
    if bad > 0:
        return math.nan
    dev = 0.0
    for o in range(r1 - r0):
        dev += vbuf[o]
    dev *= 2.0
    if not math.isfinite(dev):
        return math.nan
    return dev


@kernel
def irls_rows(
    X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, r0, r1, eta, W_out, f_out,
    ly, vbuf,
):  # fmt: skip
    """Rows ``r0 .. r1``: linear predictor, domain check, deviance and the row factors that
    :func:`irls_accumulate` turns into ``A`` and ``g`` (``W_out[i - r0]``, ``f_out[i - r0]``).

    Parameters
    ----------
    X : (n, p) C-contiguous float64
    icpt : int
        1 when the first coefficient is an intercept (``q = p + 1`` coefficients), else 0.
    beta : (q,) float64
        The trial coefficients; ignored when ``mode`` is :data:`MODE_START`.
    mode : int
        :data:`MODE_START`: take ``eta`` as given (the starting values); row factors of the
        expected information and of the regression right-hand side ``sum W z x~``.
        :data:`MODE_FISHER`: compute ``eta = X~ beta + offset``; expected information and
        score.  :data:`MODE_NEWTON`: the same with the observed information
        ``W_obs = W - w (y - mu) (h'' V - h'^2 V') / V^2``.
    fcode, a, lcode, lam : family code and parameter, link code and power.
    y, weights, offset : (n,) float64; ``weights``/``offset`` may be empty (1 / 0).
    eta : (n,) float64
        Input for :data:`MODE_START`, else output.
    r0, r1 : int
        The rows to process.
    W_out, f_out : (r1 - r0,) float64
        Output row factors: the weight ``W_i`` (Newton: ``W_obs,i``) and the score
        contribution ``f_i = W_i r_i = w_i h'_i (y_i - mu_i) / V_i`` (``r = (y - mu) / h'``;
        start: ``W_i z_i``).  Rows of weight 0 get zeros.
    ly : (n,) float64 or empty
        :func:`row_constants`: Poisson-log, Gamma-log and logit rows then take the
        vectorised :func:`_fast_rows`.
    vbuf : (r1 - r0,) float64
        Work space of :func:`_fast_rows`.

    Returns
    -------
    float
        The deviance ``sum w d(y, mu)`` of these rows; nan as soon as a row with positive
        weight is outside the domain (the pass stops there; the outputs are then incomplete).

    Notes
    -----
    A row is inside the domain when its linear predictor is in the link's domain, its mean
    in the family's open mean space, and its deviance and weights are finite.  The pairs that
    :mod:`simbench.kernels.losses` fuses (Poisson-log, Gaussian-identity, Gamma-log, and
    Bernoulli/binomial with the logit, probit, cloglog, loglog and cauchit links) take its
    fused kernel: the deviance in eta-space, which keeps its digits near ``mu = y`` and stays
    finite where the mean rounds to 0 or 1, so the domain is "finite deviance and positive
    finite weight" there (a cloglog mean that rounds to 1 is still a valid point).
    """
    has_w = weights.shape[0] > 0
    has_off = offset.shape[0] > 0
    start = mode == MODE_START
    newton = mode == MODE_NEWTON
    fused = fused_pair(fcode, lcode) != PAIR_NONE
    hess_kind = HESS_OBSERVED if newton else HESS_EXPECTED
    if not start:
        linear_predictor(X, icpt, beta, offset, r0, r1, eta)
    if ly.shape[0] > 0:
        pair = fused_pair(fcode, lcode)
        dev = _fast_rows(pair, newton, y, weights, ly, r0, r1, eta, W_out, f_out, vbuf)
        if start:
            # the regression form: sum W z x~ with the working response z = eta - o + r
            for i in range(r0, r1):
                f_out[i - r0] += W_out[i - r0] * (eta[i] - offset[i] if has_off else eta[i])
        return dev
    dev = 0.0
    for i in range(r0, r1):
        o = i - r0
        w = weights[i] if has_w else 1.0
        e = eta[i]
        if not w > 0.0:
            W_out[o] = 0.0
            f_out[o] = 0.0
            continue
        if not link_eta_valid(lcode, lam, e):
            return math.nan
        yi = y[i]
        if fused:
            value, d1, d2 = loss_eval(fcode, a, 1.0, lcode, lam, yi, e, hess_kind)
            if not (math.isfinite(value) and math.isfinite(d2)):
                return math.nan
            dev += 2.0 * w * value
            if not (newton or d2 > 0.0):
                return math.nan
            Wi = w * d2
            fi = -w * d1
        else:
            if newton:
                mu, h1, h2 = link_h012(lcode, lam, e)
            else:
                mu, h1 = _mu_h1(lcode, lam, e)
                h2 = 0.0
            if not fam_mu_valid(fcode, a, mu):
                return math.nan
            dev += w * fam_unit_deviance(fcode, a, yi, mu)
            v = fam_variance(fcode, a, mu)
            Wi = w * h1 * h1 / v
            if newton:
                Wi -= (w * (yi - mu) / v) * ((h2 * v - h1 * h1 * fam_variance_d1(fcode, a, mu)) / v)
            fi = w * h1 * (yi - mu) / v
        if start:
            # the regression form: sum W z x~ with the working response z = eta - o + r
            fi += Wi * (e - offset[i] if has_off else e)
        W_out[o] = Wi
        f_out[o] = fi
    if not math.isfinite(dev):
        return math.nan
    return dev


@kernel
def irls_pass(
    X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, dev_max, rank_tol,
    eta, A, g, delta, L, dsc, bordered, work, stride, ly,
):  # fmt: skip
    """One trial point of the iteration, in a single call and a single pass over ``X``.

    Chunk by chunk, :func:`irls_rows` (stopping at the first row outside the domain) and
    the chunk's bordered cross-product (as :func:`irls_accumulate`, whose blocks and order it
    shares).  If the point is valid and its deviance at most ``dev_max``, ``A`` and ``g`` are
    unpacked and the Newton direction ``A delta = g`` solved (:func:`newton_direction`);
    otherwise ``A``, ``g`` and ``delta`` are left as they were.

    ``eta`` (n,) is an output (an input in :data:`MODE_START`); ``A`` (q, q), ``g``,
    ``delta`` (q,) outputs; ``L``, ``dsc``, ``bordered``, ``work`` work space as in
    :func:`newton_direction` and :func:`irls_accumulate`.

    Returns ``(deviance, column, decrement)``: the deviance (nan outside the domain); for an
    accepted point ``column`` -1 and ``decrement = g' delta``, or the first column whose
    Cholesky pivot is not above ``rank_tol`` (and a nan decrement); for a rejected one -2.

    ``ly`` is :func:`row_constants` (or empty): the rows of Poisson-log, Gamma-log and logit
    then need no libm call.  ``stride`` 1 accumulates ``A`` over all rows.  ``stride`` 0 (a
    chord step) accumulates only the score ``g``, O(q) per row instead of O(q^2), and solves
    ``delta`` with the factor ``L``, ``dsc`` of the last pass that had one; ``A`` and ``L``
    are left as they were.  ``stride`` s > 1 estimates ``A`` from every s-th chunk of rows
    (times s), a preconditioner for large n (the score is always over all rows).
    """
    n, p = X.shape
    q = p + icpt
    W_chunk = np.empty(CHUNK)
    f_chunk = np.empty(CHUNK)
    v_chunk = np.empty(CHUNK)
    B, T = syrk_buffers(n, p)
    dev = 0.0
    for b in range(work.shape[0]):
        C = work[b]
        C[:, :] = 0.0
        r1 = min(n, (b + 1) * BLOCK)
        for i0 in range(b * BLOCK, r1, CHUNK):
            m = min(CHUNK, r1 - i0)
            d = irls_rows(
                X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, i0, i0 + m,
                eta, W_chunk, f_chunk, ly, v_chunk,
            )  # fmt: skip
            if not math.isfinite(d):
                return math.nan, -2, math.nan
            dev += d
            sampled = stride > 0 and (i0 // CHUNK) % stride == 0
            _vector_rows(X, icpt, i0, m, W_chunk, f_chunk, C, sampled)
            if sampled:
                weighted_syrk(X, i0, m, W_chunk, C, icpt, B, T)
    if not (math.isfinite(dev) and dev <= dev_max):
        return dev, -2, math.nan
    if stride == 0:
        for j in range(q):
            g[j] = 0.0
        for b in range(work.shape[0]):
            for j in range(q):
                g[j] += work[b, q, j]
        cholesky_solve(L, dsc, g, delta)
        dec = 0.0
        for j in range(q):
            dec += g[j] * delta[j]
        return dev, -1, dec
    bordered[:, :] = 0.0
    for b in range(work.shape[0]):
        for j in range(q + 1):
            for k in range(j + 1):
                bordered[j, k] += work[b, j, k]
    unpack_bordered(bordered, A, g)
    if stride > 1:
        for j in range(q):
            for k in range(q):
                A[j, k] *= stride
    column, dec = newton_direction(A, g, L, dsc, delta, rank_tol)
    return dev, column, dec


@kernel
def irls_finish(fcode, a, lcode, lam, y, weights, eta, mu_out, u_out, W_out):
    """Final pass at the fitted ``eta``: ``mu = h(eta)`` into ``mu_out``, the score
    contributions ``u_i = w_i h'(eta_i) (y_i - mu_i) / V(mu_i)`` (the sandwich's "meat" is
    ``sum u_i^2 x~_i x~_i'``: :func:`irls_accumulate` with ``W = u^2``) into ``u_out``, and
    the weights ``W_i`` of the expected information into ``W_out``.

    Returns ``(pearson, n_positive, sum_w)``: the Pearson statistic
    ``sum w (y - mu)^2 / V(mu)``, the number of rows of positive weight and their total weight.
    """
    pair = fused_pair(fcode, lcode)
    if pair in (PAIR_POISSON_LOG, PAIR_GAMMA_LOG, PAIR_BERNOULLI_LOGIT):
        return _finish_fast(pair, y, weights, eta, mu_out, u_out, W_out)
    n = y.shape[0]
    has_w = weights.shape[0] > 0
    pearson = 0.0
    npos = 0
    sw = 0.0
    for i in range(n):
        w = weights[i] if has_w else 1.0
        mu, h1 = _mu_h1(lcode, lam, eta[i])
        mu_out[i] = mu
        if w > 0.0:
            r = y[i] - mu
            v = fam_variance(fcode, a, mu)
            pearson += w * r * r / v
            npos += 1
            sw += w
            u_out[i] = w * h1 * r / v
            W_out[i] = w * h1 * h1 / v
        else:
            u_out[i] = 0.0
            W_out[i] = 0.0
    return pearson, npos, sw


@kernel(inline=True)
def unpack_bordered(T, A, g):
    """``A`` (q, q, both triangles) and ``g`` (q,; skipped when empty) from the lower triangle
    of the bordered ``T`` (q + 1, q + 1)."""
    q = A.shape[0]
    for j in range(q):
        if g.shape[0] > 0:
            g[j] = T[q, j]
        for k in range(j + 1):
            A[j, k] = T[j, k]
            A[k, j] = T[j, k]
