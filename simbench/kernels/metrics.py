"""Metric reductions: AUC, error summaries, the weighted Gram matrix, the fused per-cell
passes over the training and reference samples, and small GLM refits.

Every function here is a serial loop in a fixed order, so a metric never depends on the
number of threads or on the worker that computed it (the sweep's determinism contract).
"No weights" is an EMPTY float64 array meaning 1.0 for every row, as in every simbench kernel.

The AUC is the weighted Mann–Whitney statistic.  Each row ``i`` carries positive mass
``w_i y_i`` and negative mass ``w_i (1 - y_i)`` (so a binomial proportion ``y`` with ``w``
trials counts as ``w y`` successes and ``w (1 - y)`` failures; a Bernoulli row is one or the
other).  With ``P = Σ w y`` and ``N = Σ w (1 - y)``,

    AUC = (1 / (P N)) Σ_i Σ_j w_i y_i w_j (1 - y_j) ([s_i > s_j] + ½ [s_i = s_j]),

computed in O(n log n) by sorting the scores once and walking the groups of tied scores:
a group with positive mass ``g⁺`` and negative mass ``g⁻`` contributes
``g⁺ (negative mass below the group) + ½ g⁺ g⁻``.

The per-cell passes (:func:`mean_function_passes`) compute several metrics in one pass over
each sample, each sum with the same scalar kernels and in the same order as its separate
reduction, so they agree with those bit for bit.  :func:`glm_fit_small` runs
the whole Fisher-scoring iteration of a GLM with a few coefficients (calibration, GLM
projection) in one call, over the row kernel of :mod:`simbench.kernels.irls`.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel
from simbench.kernels import codes
from simbench.kernels.families import fam_mu_valid, fam_unit_deviance
from simbench.kernels.irls import (
    CHUNK,
    MODE_FISHER,
    MODE_NEWTON,
    MODE_START,
    irls_rows,
    irls_start_eta,
)
from simbench.kernels.linalg import newton_direction
from simbench.kernels.links import link_g, link_h

_LOG = codes.LINK_LOG


@kernel
def auc_score(score, y, weights):
    """Weighted Mann–Whitney AUC of ``score`` for the labels ``y`` (ties count ½).

    Returns NaN when a score is NaN or when either class has zero mass.
    """
    n = score.size
    has_w = weights.size > 0
    pos_total = 0.0
    neg_total = 0.0
    for i in range(n):
        if np.isnan(score[i]):
            return np.nan
        w = weights[i] if has_w else 1.0
        pos_total += w * y[i]
        neg_total += w * (1.0 - y[i])
    if not (pos_total > 0.0 and neg_total > 0.0):
        return np.nan
    # a stable sort keeps rows of equal score in input order, so the sums below are
    # accumulated in an order fixed by the data alone
    order = stable_argsort(score)
    acc = 0.0
    neg_below = 0.0
    i = 0
    while i < n:
        s = score[order[i]]
        group_pos = 0.0
        group_neg = 0.0
        j = i
        while j < n and score[order[j]] == s:
            k = order[j]
            w = weights[k] if has_w else 1.0
            group_pos += w * y[k]
            group_neg += w * (1.0 - y[k])
            j += 1
        acc += group_pos * neg_below + 0.5 * group_pos * group_neg
        neg_below += group_neg
        i = j
    return acc / (pos_total * neg_total)


_SIGN = np.uint64(0x8000000000000000)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_RADIX_BITS = 11
_RADIX_MASK = np.uint64((1 << _RADIX_BITS) - 1)


@kernel(inline=True)
def stable_argsort(x):
    """The permutation that sorts ``x`` (no NaN), equal values kept in input order.

    A least-significant-digit radix sort of the IEEE bit patterns, mapped to unsigned
    integers that order as the numbers do (negatives: every bit flipped; others: the sign
    bit set), in digits of 11 bits; a digit that every key shares (the sign and exponent
    bits, mostly) costs a count and no pass.  Linear in ``n`` and free of data-dependent
    branches: on fresh scores a comparison sort (``np.argsort``) mispredicts its branches
    and ran 4-5x slower at n = 2000.  The order is that of a stable comparison sort
    (``-0.0`` and ``0.0`` are one key).
    """
    n = x.shape[0]
    bits = x.view(np.uint64)
    keys = np.empty(n, dtype=np.uint64)
    spare_keys = np.empty(n, dtype=np.uint64)
    order = np.empty(n, dtype=np.int64)
    spare = np.empty(n, dtype=np.int64)
    for i in range(n):
        b = bits[i]
        if b == _SIGN:  # -0.0 is 0.0
            b = np.uint64(0)
        keys[i] = (b ^ _ALL) if (b & _SIGN) else (b | _SIGN)
        order[i] = i
    size = 1 << _RADIX_BITS
    count = np.empty(size + 1, dtype=np.int64)
    for shift in range(0, 64, _RADIX_BITS):
        s = np.uint64(shift)
        count[:] = 0
        for i in range(n):
            count[((keys[i] >> s) & _RADIX_MASK) + 1] += 1
        if count[((keys[0] >> s) & _RADIX_MASK) + 1] == n:
            continue  # every key has this digit: the order stands
        for k in range(size):
            count[k + 1] += count[k]
        for i in range(n):
            d = (keys[i] >> s) & _RADIX_MASK
            at = count[d]
            count[d] = at + 1
            spare_keys[at] = keys[i]
            spare[at] = order[i]
        keys, spare_keys = spare_keys, keys
        order, spare = spare, order
    return order


@kernel
def rmse_diff(a, b):
    """Root mean square of ``a - b`` (NaN for empty input)."""
    n = a.size
    if n == 0:
        return np.nan
    acc = 0.0
    for i in range(n):
        d = a[i] - b[i]
        acc += d * d
    return np.sqrt(acc / n)


@kernel
def mean_abs_rel_diff(a, ref):
    """Mean of ``|a - ref| / |ref|`` (NaN for empty input)."""
    n = a.size
    if n == 0:
        return np.nan
    acc = 0.0
    for i in range(n):
        acc += abs(a[i] - ref[i]) / abs(ref[i])
    return acc / n


@kernel
def weighted_sum_ratio(a, b, weights):
    """``Σ w a / Σ w b``; ``weights`` empty means all ones."""
    has_w = weights.size > 0
    num = 0.0
    den = 0.0
    for i in range(a.size):
        w = weights[i] if has_w else 1.0
        num += w * a[i]
        den += w * b[i]
    return num / den


# rows of X per block of gram_with_intercept: about 32 kB of X, which stays in cache while
# every row of the triangle is updated from it
_GRAM_BLOCK_ELEMENTS = 4096


@kernel
def gram_with_intercept(X, c, out):
    """``out = X̃ᵀ diag(c) X̃`` with ``X̃ = [1, X]``, without forming ``X̃``.

    ``X`` is (n, p), ``c`` (n,), ``out`` (p + 1, p + 1); the upper triangle is accumulated
    and mirrored, so the result is exactly symmetric.  Every entry is the sum over the rows
    in row order of ``(c_i x_ia) x_ib``; the rows are taken a block at a time and the
    triangle row by row within a block, so that with many columns the triangle is not
    streamed through memory once per row (the same additions in the same order: the
    result does not depend on the block size).
    """
    n, p = X.shape
    q = p + 1
    for a in range(q):
        for b in range(q):
            out[a, b] = 0.0
    rows = max(1, _GRAM_BLOCK_ELEMENTS // max(p, 1))
    # a row of the triangle is updated in a buffer of its own, which the compiler can see
    # overlaps nothing else, so the update is vectorised over the columns
    acc = np.empty(p)
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        for i in range(i0, i1):
            ci = c[i]
            out[0, 0] += ci
            for a in range(p):
                out[0, a + 1] += ci * X[i, a]
        for a in range(p):
            m = p - a
            for k in range(m):
                acc[k] = out[a + 1, a + 1 + k]
            for i in range(i0, i1):
                cx = c[i] * X[i, a]
                xr = X[i, a:]
                for k in range(m):
                    acc[k] += cx * xr[k]
            for k in range(m):
                out[a + 1, a + 1 + k] = acc[k]
    for a in range(q):
        for b in range(a + 1, q):
            out[b, a] = out[a, b]
    return out


@kernel
def max_column_imbalance(X, y, mu, weights):
    """Largest relative score imbalance over the columns of ``X̃ = [1, X]``.

    ``max_j |Σ_i w_i x̃_ij (μ_i − y_i)| / Σ_i w_i |x̃_ij| |y_i|``; for the intercept this is
    the overall balance, for a 0/1 dummy column the balance within its level.  A column
    whose denominator is 0 (no response in a level) is ignored.
    """
    n, p = X.shape
    has_w = weights.size > 0
    num = np.zeros(p + 1)
    den = np.zeros(p + 1)
    for i in range(n):
        w = weights[i] if has_w else 1.0
        r = w * (mu[i] - y[i])
        a = w * abs(y[i])
        num[0] += r
        den[0] += a
        for j in range(p):
            x = X[i, j]
            num[j + 1] += r * x
            den[j + 1] += a * abs(x)
    out = 0.0
    for j in range(p + 1):
        if den[j] > 0.0:
            v = abs(num[j]) / den[j]
            if not v <= out:  # also propagates NaN
                out = v
    return out


# ---------------------------------------------------------------------------------------
# fused passes of the per-cell metrics
# ---------------------------------------------------------------------------------------


@kernel
def mean_function_passes(fcode, a, lcode, lam, mu_test, mu_true, eta_true, y_test, w_test,
                         eta_out, X, y, mu, weights):  # fmt: skip
    """One pass over the reference (test) sample and one over the training sample, for the
    metrics of a configuration's mean function.

    Reference sample (``mu_test`` the predictions, ``mu_true``/``eta_true`` the truth):
    whether every ``μ̂`` is finite and in the family's open mean space, ``Σ w d(y, μ̂)``,
    ``Σ w d(μ*, μ̂)``, ``Σ (g(μ̂) − η*)²`` (``eta_out`` receives ``g(μ̂)``) and
    ``Σ |μ̂ − μ*| / |μ*|``.  Training sample (``mu`` the predictions): the validity flag
    and ``Σ w d(y, μ̂)`` again, ``Σ w μ̂ / Σ w y − 1`` and :func:`max_column_imbalance`.

    Each sum uses the scalar kernels and the order of its separate reduction
    (``fam_deviance_sum``, ``link_g_arr``, :func:`rmse_diff`, :func:`mean_abs_rel_diff`,
    :func:`weighted_sum_ratio`, :func:`max_column_imbalance`), so the values are theirs bit
    for bit.  The sums that need valid means are meaningless (and the caller discards them)
    when a validity flag is False; the relative error and the balances are always summed.
    One kernel for both samples, so its family and link dispatch is compiled once.

    Returns ``(valid_test, dev_test, excess, eta_sq, rel, valid_train, dev_train, balance,
    balance_max)``.
    """
    n_test = mu_test.shape[0]
    has_wt = w_test.shape[0] > 0
    valid_test = True
    dev_test = 0.0
    excess = 0.0
    eta_sq = 0.0
    rel = 0.0
    for i in range(n_test):
        m = mu_test[i]
        rel += abs(m - mu_true[i]) / abs(mu_true[i])
        if not valid_test:
            continue
        if not (math.isfinite(m) and fam_mu_valid(fcode, a, m)):
            valid_test = False
            continue
        d_y = fam_unit_deviance(fcode, a, y_test[i], m)
        d_t = fam_unit_deviance(fcode, a, mu_true[i], m)
        if has_wt:
            dev_test += w_test[i] * d_y
            excess += w_test[i] * d_t
        else:
            dev_test += d_y
            excess += d_t
        # link_g_arr takes the same libm logarithm for the log link
        e = math.log(m) if lcode == _LOG else link_g(lcode, lam, m)
        eta_out[i] = e
        diff = e - eta_true[i]
        eta_sq += diff * diff

    n, p = X.shape
    has_w = weights.shape[0] > 0
    valid = True
    dev = 0.0
    s_mu = 0.0
    s_y = 0.0
    num = np.zeros(p + 1)
    den = np.zeros(p + 1)
    for i in range(n):
        w = weights[i] if has_w else 1.0
        m = mu[i]
        yi = y[i]
        s_mu += w * m
        s_y += w * yi
        r = w * (m - yi)
        ay = w * abs(yi)
        num[0] += r
        den[0] += ay
        for j in range(p):
            x = X[i, j]
            num[j + 1] += r * x
            den[j + 1] += ay * abs(x)
        if valid:
            if math.isfinite(m) and fam_mu_valid(fcode, a, m):
                d = fam_unit_deviance(fcode, a, yi, m)
                dev += weights[i] * d if has_w else d
            else:
                valid = False
    worst = 0.0
    for j in range(p + 1):
        if den[j] > 0.0:
            v = abs(num[j]) / den[j]
            if not v <= worst:  # also propagates NaN
                worst = v
    return (
        valid_test, dev_test, excess, eta_sq, rel, valid, dev, s_mu / s_y - 1.0, worst
    )  # fmt: skip


@kernel
def coefficient_errors(beta_hat, beta_true, beta_mle, info_mle, info_truth):
    """The coefficient metrics of one estimate, in one call.

    Returns ``(err_truth, err_mle, z_mle, z_truth, cos_truth)``:
    ``‖β̂ − β*‖₂ / ‖β*‖₂``, ``‖β̂ − β_MLE‖_∞``, ``√(d' I_n d)`` with ``d = β̂ − β_MLE``,
    the same at the truth with ``I_n(β*)``, and the cosine between the slope vectors.
    An empty ``beta_mle`` / ``info_mle`` / ``info_truth`` gives NaN for the metrics that
    need it.  Sums run in index order (quadratic forms row by row).
    """
    q = beta_hat.shape[0]
    sq_t = 0.0
    sq_d = 0.0
    dot = 0.0
    nb = 0.0
    nt = 0.0
    for j in range(q):
        t = beta_true[j]
        d = beta_hat[j] - t
        sq_d += d * d
        sq_t += t * t
        if j > 0:
            dot += beta_hat[j] * t
            nb += beta_hat[j] * beta_hat[j]
            nt += t * t
    err_truth = math.sqrt(sq_d) / math.sqrt(sq_t) if sq_t > 0.0 else math.nan
    den = math.sqrt(nb) * math.sqrt(nt)
    cos_truth = dot / den if den > 0.0 else math.nan
    err_mle = math.nan
    z_mle = math.nan
    if beta_mle.shape[0] == q:
        err_mle = 0.0
        for j in range(q):
            v = abs(beta_hat[j] - beta_mle[j])
            if math.isnan(v):
                err_mle = v
                break
            err_mle = max(err_mle, v)
        if info_mle.shape[0] == q:
            z_mle = _z_distance(beta_hat, beta_mle, info_mle)
    z_truth = math.nan
    if info_truth.shape[0] == q:
        z_truth = _z_distance(beta_hat, beta_true, info_truth)
    return err_truth, err_mle, z_mle, z_truth, cos_truth


@kernel
def _z_distance(b, m, info):
    """``√((b − m)' I (b − m))``, NaN when the form is not finite, 0 when it rounds below 0."""
    q = b.shape[0]
    quad = 0.0
    for j in range(q):
        row = 0.0
        for k in range(q):
            row += info[j, k] * (b[k] - m[k])
        quad += (b[j] - m[j]) * row
    if not math.isfinite(quad):
        return math.nan
    return math.sqrt(max(quad, 0.0))


# ---------------------------------------------------------------------------------------
# small GLM fits (calibration, GLM projection) without Python per iteration
# ---------------------------------------------------------------------------------------

# outcomes of glm_fit_small: only a converged fit is a result; for every other outcome the
# caller asks simbench.fit.glm.fit_glm, which says what went wrong
FIT_CONVERGED = 0
FIT_OTHER = 1

# as in simbench.kernels.irls: a pivot of the diagonally scaled information below this is a
# (numerically) collinear column; a trial deviance may exceed the current one by this
# relative amount (rounding); at most this many halvings of a step
_RANK_TOL = 1e-11
_DEV_SLACK = 1e-12
_MAX_HALVINGS = 30


@kernel
def _small_pass(X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, ly, eta,
                W, f, vbuf, A, g):  # fmt: skip
    """One pass over the rows at ``beta`` (``mode`` as :func:`~simbench.kernels.irls.irls_rows`,
    whose chunks of rows it evaluates): the deviance, the lower triangle of
    ``A = Σ W x̃ x̃'`` and ``g = Σ f x̃``, summed row by row (cheap for a few
    coefficients).  NaN when a row of positive weight leaves the domain."""
    n, p = X.shape
    q = p + icpt
    for j in range(q):
        g[j] = 0.0
        for k in range(j + 1):
            A[j, k] = 0.0
    dev = 0.0
    for r0 in range(0, n, CHUNK):
        r1 = min(n, r0 + CHUNK)
        d = irls_rows(
            X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, r0, r1, eta, W, f,
            ly, vbuf,
        )  # fmt: skip
        if not math.isfinite(d):
            return math.nan
        dev += d
        if p == 1 and icpt:
            # one covariate and the intercept (calibration): the five sums in registers
            a00 = A[0, 0]
            a10 = A[1, 0]
            a11 = A[1, 1]
            g0 = g[0]
            g1 = g[1]
            for i in range(r0, r1):
                Wi = W[i - r0]
                fi = f[i - r0]
                x = X[i, 0]
                wx = Wi * x
                a00 += Wi
                g0 += fi
                a10 += wx
                g1 += fi * x
                a11 += wx * x
            A[0, 0] = a00
            A[1, 0] = a10
            A[1, 1] = a11
            g[0] = g0
            g[1] = g1
            continue
        for i in range(r0, r1):
            Wi = W[i - r0]
            fi = f[i - r0]
            if icpt:
                A[0, 0] += Wi
                g[0] += fi
            for j in range(p):
                xj = X[i, j]
                wx = Wi * xj
                r = j + icpt
                g[r] += fi * xj
                if icpt:
                    A[r, 0] += wx
                for k in range(j + 1):
                    A[r, k + icpt] += wx * X[i, k]
    return dev


@kernel
def _small_solve(A, g, L, scale, delta):
    """Solve ``A delta = g`` by the scaled Cholesky factorisation of
    :func:`simbench.kernels.linalg.newton_direction` (lower triangle of ``A``).  Returns
    ``(ok, g' delta)``; not ok when ``A`` is not positive definite or a scaled pivot is below
    the collinearity tolerance."""
    column, dec = newton_direction(A, g, L, scale, delta, _RANK_TOL)
    return column < 0, dec


@kernel
def glm_fit_small(X, icpt, fcode, a, lcode, lam, y, weights, offset, ly, beta, tol, max_iter,
                  disp_rows, newton, bounds):  # fmt: skip
    """Maximum likelihood for a GLM with few coefficients, the whole iteration compiled.

    The iteration of :func:`simbench.fit.glm.fit_glm` over the same row kernel
    (:func:`~simbench.kernels.irls.irls_rows`, its fused canonical pairs included): Fisher
    scoring with step-halving on the deviance, turning to Newton's method for
    non-canonical links once a step is within a standard error and back where the observed
    information is not positive definite, with the same convergence rule (relative
    deviance change below ``tol``, next step shorter than ``tol`` standard errors).  No
    chord steps, subsampled passes or diagnostics, and the cross-product is summed row by
    row: for the GLMs that the metrics refit on every cell (calibration, GLM projection),
    where ``fit_glm``'s Python between passes costs more than the passes.

    Parameters
    ----------
    X, icpt, fcode, a, lcode, lam, y, weights, offset, ly
        As :func:`~simbench.kernels.irls.irls_rows` (``ly``: ``irls.row_constants``).
    beta : (q,) float64
        The starting point, replaced by the estimate; a NaN first entry starts instead
        from ``fit_glm``'s starting means
        (:func:`~simbench.kernels.irls.irls_start_eta`).
    tol, max_iter
        As ``fit_glm``.
    disp_rows : int
        Rows of positive weight for families with a dispersion, else 0.
    newton : bool
        Whether the link is not the family's canonical one.
    bounds : (5,) float64
        Receives what the separation check of ``fit_glm`` looks at, without a pass over
        the means: ``Σ w y / Σ w`` over the rows of positive weight; among those rows the
        smallest fitted mean where ``y = 0`` and the largest where ``y = 1``; and whether
        there are such rows (1.0 or 0.0).

    Returns
    -------
    (outcome, iterations)
        :data:`FIT_CONVERGED`, or :data:`FIT_OTHER` for no valid start, a singular
        information, no convergence within ``max_iter`` iterations, or a step that no
        halving makes acceptable.
    """
    n, p = X.shape
    q = p + icpt
    m = min(n, CHUNK)
    W = np.empty(m)
    f = np.empty(m)
    vbuf = np.empty(m)
    A = np.empty((q, q))
    g = np.empty(q)
    A_t = np.empty((q, q))
    g_t = np.empty(q)
    L = np.empty((q, q))
    scale = np.empty(q)
    delta = np.empty(q)
    cand = np.empty(q)
    eta = np.empty(n)
    eta_t = np.empty(n)
    if math.isnan(beta[0]):
        if not math.isfinite(irls_start_eta(fcode, a, lcode, lam, y, weights, eta)):
            return FIT_OTHER, 0
        # the regression step from the starting means: A beta = sum W z x~
        dev = _small_pass(
            X, icpt, beta, MODE_START, fcode, a, lcode, lam, y, weights, offset, ly, eta,
            W, f, vbuf, A, g,
        )  # fmt: skip
        if not math.isfinite(dev):
            return FIT_OTHER, 0
        ok, _ = _small_solve(A, g, L, scale, beta)
        if not ok:
            return FIT_OTHER, 0
    mode = MODE_FISHER
    dev = _small_pass(
        X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, ly, eta, W, f, vbuf,
        A, g,
    )  # fmt: skip
    if not math.isfinite(dev):
        return FIT_OTHER, 0
    ok, dec = _small_solve(A, g, L, scale, delta)
    if not ok:
        return FIT_OTHER, 0
    dev_prev = math.inf
    dec_prev = math.inf
    it = 1
    while True:
        dscale = abs(dev) + 0.1
        phi = dscale / disp_rows if disp_rows > 0 else 1.0
        if abs(dev - dev_prev) <= tol * dscale and (
            dec <= tol * tol * phi or (dec <= tol * phi and dec > 0.5 * dec_prev)
        ):
            break
        if it >= max_iter:
            return FIT_OTHER, it
        if newton and mode == MODE_FISHER and dec <= phi:
            mode = MODE_NEWTON  # the passes from the next point on
        t = 1.0
        accepted = False
        dev_c = math.nan
        for _ in range(_MAX_HALVINGS + 1):
            for j in range(q):
                cand[j] = beta[j] + t * delta[j]
            dev_c = _small_pass(
                X, icpt, cand, mode, fcode, a, lcode, lam, y, weights, offset, ly, eta_t,
                W, f, vbuf, A_t, g_t,
            )  # fmt: skip
            if math.isfinite(dev_c) and dev_c <= dev + _DEV_SLACK * dscale:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            if dec <= tol * phi:
                break  # at the rounding floor of the deviance
            if mode == MODE_NEWTON:
                # no Newton step lowers the deviance: Fisher scoring for good, from here
                mode = MODE_FISHER
                newton = False
                _small_pass(
                    X, icpt, beta, mode, fcode, a, lcode, lam, y, weights, offset, ly, eta,
                    W, f, vbuf, A, g,
                )  # fmt: skip
                ok, dec = _small_solve(A, g, L, scale, delta)
                if not ok:
                    return FIT_OTHER, it
                continue
            return FIT_OTHER, it
        ok, dec_c = _small_solve(A_t, g_t, L, scale, delta)
        if not ok and mode == MODE_NEWTON:
            # the observed information is not positive definite here: Fisher scoring
            mode = MODE_FISHER
            newton = False
            dev_c = _small_pass(
                X, icpt, cand, mode, fcode, a, lcode, lam, y, weights, offset, ly, eta_t,
                W, f, vbuf, A_t, g_t,
            )  # fmt: skip
            ok, dec_c = _small_solve(A_t, g_t, L, scale, delta)
        if not ok:
            return FIT_OTHER, it
        for j in range(q):
            beta[j] = cand[j]
        A, A_t = A_t, A
        g, g_t = g_t, g
        eta, eta_t = eta_t, eta
        dev_prev, dev = dev, dev_c
        dec_prev, dec = dec, dec_c
        it += 1
    has_w = weights.shape[0] > 0
    sw = 0.0
    swy = 0.0
    lo0 = math.inf
    hi0 = -math.inf
    lo1 = math.inf
    hi1 = -math.inf
    for i in range(n):
        w = weights[i] if has_w else 1.0
        if not w > 0.0:
            continue
        sw += w
        swy += w * y[i]
        e = eta[i]
        if y[i] == 0.0:
            lo0 = min(lo0, e)
            hi0 = max(hi0, e)
        elif y[i] == 1.0:
            lo1 = min(lo1, e)
            hi1 = max(hi1, e)
    bounds[0] = swy / sw
    # h is monotone: the extreme means are those of the extreme linear predictors
    bounds[1] = min(link_h(lcode, lam, lo0), link_h(lcode, lam, hi0)) if lo0 <= hi0 else 1.0
    bounds[2] = max(link_h(lcode, lam, lo1), link_h(lcode, lam, hi1)) if lo1 <= hi1 else 0.0
    bounds[3] = 1.0 if lo0 <= hi0 else 0.0
    bounds[4] = 1.0 if lo1 <= hi1 else 0.0
    return FIT_CONVERGED, it
