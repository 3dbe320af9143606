"""Metric reductions: AUC, error summaries and the weighted Gram matrix.

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
"""

from __future__ import annotations

import numpy as np

from simbench._jit import kernel


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
    order = np.argsort(score, kind="mergesort")
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


@kernel
def gram_with_intercept(X, c, out):
    """``out = X̃ᵀ diag(c) X̃`` with ``X̃ = [1, X]``, without forming ``X̃``.

    ``X`` is (n, p), ``c`` (n,), ``out`` (p + 1, p + 1); the upper triangle is accumulated
    row by row and mirrored, so the result is exactly symmetric.
    """
    n, p = X.shape
    q = p + 1
    for a in range(q):
        for b in range(q):
            out[a, b] = 0.0
    for i in range(n):
        ci = c[i]
        out[0, 0] += ci
        for a in range(p):
            cx = ci * X[i, a]
            out[0, a + 1] += cx
            for b in range(a, p):
                out[a + 1, b + 1] += cx * X[i, b]
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
