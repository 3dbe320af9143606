r"""Separation: when the maximum-likelihood estimate of a GLM does not exist.

For a binary response with a link onto (0, 1) (logit, probit, cloglog, loglog,
cauchit), and for counts (Poisson, negative binomial, Tweedie) with the log link, the MLE
does not exist when some direction :math:`d \ne 0` has :math:`\tilde x_i^\top d \ge 0` for
every :math:`y_i = 1`, :math:`\le 0` for every :math:`y_i = 0` (for counts: every zero count)
and :math:`= 0` for every response strictly inside, the likelihood then increasing for ever
along :math:`d` (Albert & Anderson 1984; Santos Silva & Tenreyro 2010 for counts).  When
a fit shows the symptoms (fitted means at the boundary for boundary responses, or no
convergence) a linear program searches for such a direction; a verified direction gives the
status ``"separation"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from simbench.families import Family
    from simbench.links import Link

# boundary responses fitted closer than this to the boundary of the mean space (relative to
# the mean response for counts) make the fit suspect of separation and trigger the LP check
_SEPARATION_SUSPECT = 1e-6
_SEPARABLE_BINARY_LINKS = frozenset({"logit", "probit", "cloglog", "loglog", "cauchit"})
_COUNT_FAMILIES = frozenset({"poisson", "negative_binomial", "tweedie"})


def separation_kind(family: Family, link: Link) -> str | None:
    if family.is_binary and link.name in _SEPARABLE_BINARY_LINKS:
        return "binary"
    if family.name in _COUNT_FAMILIES and link.name == "log":
        return "count"
    return None


def suspect_separation(kind: str, y, mu, wpos, ybar: float) -> bool:
    if kind == "binary":
        low = wpos & (y == 0.0) & (mu < _SEPARATION_SUSPECT)
        high = wpos & (y == 1.0) & (mu > 1.0 - _SEPARATION_SUSPECT)
        return bool(low.any() or high.any())
    return bool((wpos & (y == 0.0) & (mu < _SEPARATION_SUSPECT * max(ybar, 1.0))).any())


def find_separation(X: np.ndarray, icpt: int, y, wpos, kind: str):
    """A verified direction of separation, as ``(n_separated, n_boundary, complete)``, or None.

    Rows with ``y`` on the boundary of the mean space get a sign ``s`` (+1 for ``y = 1``, -1
    for ``y = 0``); the others must stay on the hyperplane.  Three linear programs, on columns
    scaled to unit max-norm:

    1. existence: maximise ``sum_b s_b x~_b'd`` subject to ``s_b x~_b'd >= 0``,
       ``x~_i'd = 0`` (interior rows) and ``-1 <= d <= 1``; a positive optimum whose direction
       survives a floating-point re-check is a certificate that the MLE does not exist;
    2. complete separation: maximise ``t`` subject to ``s_b x~_b'd >= t``, the same
       equalities, ``-1 <= d <= 1``, ``t <= 1``; ``t > 0`` iff every boundary row is strictly
       separated;
    3. otherwise the number of strictly separable rows: maximise ``sum_b t_b`` subject to
       ``0 <= t_b <= s_b x~_b'd``, ``t_b <= 1``, the same equalities, ``d`` free (the cone is
       invariant to scaling, so ``t_b = 1`` exactly for the rows some direction separates).
    """
    from scipy.optimize import linprog

    rows = np.flatnonzero(wpos)
    Xt = X[rows]
    if icpt:
        Xt = np.hstack([np.ones((rows.size, 1)), Xt])
    scale = np.abs(Xt).max(axis=0)
    Xt = Xt / np.where(scale > 0, scale, 1.0)
    yy = y[rows]
    if kind == "binary":
        sign = np.where(yy == 1.0, 1.0, np.where(yy == 0.0, -1.0, 0.0))
    else:
        sign = np.where(yy == 0.0, -1.0, 0.0)
    bnd = sign != 0.0
    if not bnd.any():
        return None
    Xb = Xt[bnd] * sign[bnd, None]
    inner = Xt[~bnd]
    nb, q = Xb.shape
    eq = {"A_eq": inner, "b_eq": np.zeros(inner.shape[0])} if inner.shape[0] else {}

    res = linprog(
        -Xb.sum(axis=0), A_ub=-Xb, b_ub=np.zeros(nb), bounds=(-1.0, 1.0), method="highs", **eq
    )
    if res.status != 0 or res.x is None or not -res.fun > 1e-9:
        return None
    dvec = res.x
    size = np.abs(Xt) @ np.abs(dvec) + 1e-300
    margin = (Xt @ dvec) / size
    sm = margin[bnd] * sign[bnd]
    if (sm < -1e-7).any() or (np.abs(margin[~bnd]) > 1e-7).any() or not (sm > 1e-5).any():
        return None  # the LP's answer does not survive the re-check: no evidence

    if not inner.shape[0]:
        c = np.zeros(q + 1)
        c[-1] = -1.0
        res = linprog(
            c,
            A_ub=np.hstack([-Xb, np.ones((nb, 1))]),
            b_ub=np.zeros(nb),
            bounds=[(-1.0, 1.0)] * q + [(None, 1.0)],
            method="highs",
        )
        if res.status == 0 and -res.fun > 1e-7:
            return nb, nb, True
    # rows some direction separates strictly: t_b = 1 exactly for those
    from scipy import sparse

    c = np.concatenate([np.zeros(q), -np.ones(nb)])
    Xs = sparse.csr_matrix(-Xb)
    A_ub = sparse.bmat([[Xs, sparse.identity(nb)], [Xs, None]], format="csr")
    eq3 = {}
    if eq:
        A_eq = sparse.hstack([sparse.csr_matrix(inner), sparse.csr_matrix((inner.shape[0], nb))])
        eq3 = {"A_eq": A_eq.tocsr(), "b_eq": eq["b_eq"]}
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(2 * nb),
        bounds=[(None, None)] * q + [(0.0, 1.0)] * nb,
        method="highs",
        **eq3,
    )
    n_sep = int((res.x[q:] > 0.5).sum()) if res.status == 0 else int((sm > 1e-5).sum())
    return max(n_sep, 1), nb, False


def separation_message(kind: str, n_sep: int, n_bnd: int, complete: bool, y, wpos) -> str:
    yb = y[wpos]
    tail = "; the maximum-likelihood estimate does not exist"
    if kind == "binary":
        if complete and (np.all(yb == 1.0) or np.all(yb == 0.0)):
            value = int(yb[0])
            return (
                f"complete separation: every response is y = {value}, so the fitted "
                f"probabilities tend to {value} and the intercept diverges" + tail
            )
        if complete:
            return (
                "complete separation: a hyperplane in the covariates separates y = 0 from y = 1 "
                f"(all {n_bnd} observations are fitted exactly in the limit)"
                + tail
                + " and the coefficients diverge along its normal"
            )
        return (
            f"quasi-complete separation: {n_sep} of the {n_bnd} observations with y = 0 or 1 "
            "lie strictly on one side of a hyperplane that the others touch, and are fitted "
            "with probability 0 or 1 in the limit" + tail + " and some coefficients diverge"
        )
    if np.all(yb == 0.0):
        return "separation: every count is zero, so the fitted means tend to 0" + tail
    return (
        f"separation: {n_sep} of the {n_bnd} zero counts can be fitted with mean 0 exactly "
        "(a direction in the covariates is <= 0 on all zero counts, < 0 on these, and 0 on all "
        "positive counts)" + tail + " and some coefficients diverge to -inf"
    )
