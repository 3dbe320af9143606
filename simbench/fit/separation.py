r"""Separation: when the maximum-likelihood estimate of a GLM does not exist.

For a binary response with a link onto (0, 1) (logit, probit, cloglog, loglog,
cauchit), and for counts (Poisson, negative binomial, Tweedie) with the log link, the MLE
does not exist when some direction :math:`d \ne 0` has :math:`\tilde x_i^\top d \ge 0` for
every :math:`y_i = 1`, :math:`\le 0` for every :math:`y_i = 0` (for counts: every zero count)
and :math:`= 0` for every response strictly inside, the likelihood then increasing for ever
along :math:`d` (Albert & Anderson 1984; Santos Silva & Tenreyro 2010 for counts).  Write
:math:`s_i` for the sign of a boundary response (+1 for ``y = 1``, -1 for ``y = 0`` or a zero
count) and 0 for the others.

Deciding it (:func:`check_separation`), cheapest first, for a fit that shows the symptoms
(fitted means at the boundary for boundary responses, or no convergence):

1. **The fit's own direction.**  If :math:`s_i \tilde x_i^\top \hat\beta > 0` on every row,
   :math:`\hat\beta` is a direction of complete separation, verified in floating point (so
   is the intercept alone, :math:`\pm e_0`, for a constant response).  Under complete separation
   the iterates run off along such a direction, so no linear program is needed.  O(nq).
2. **Overlap certificate** (:func:`overlap_certified`).  By Stiemke's alternative no
   direction of separation exists if there are multipliers :math:`c` with
   :math:`s_i c_i > 0` on the boundary rows (any sign elsewhere) and
   :math:`\sum_i c_i \tilde x_i = 0`.  The score contributions
   :math:`u_i = w_i h'(\eta_i)(y_i - \mu_i)/V(\mu_i)` have exactly these signs (the links are
   increasing and :math:`\mu` lies strictly inside) and sum to the score :math:`g`.  One
   scoring step :math:`v = (\tilde X^\top W \tilde X)^{-1} g` corrects them to
   :math:`c = u - W \tilde X v`, which sums to zero; the signs survive while
   :math:`s_i \tilde x_i^\top v < |u_i| / W_i` (the step in the linear predictor stays short
   of the row's linearised distance to its boundary).  At the MLE :math:`g = 0` and the step
   vanishes, so a converged fit with overlap proves it, however close to 0 or 1 its fitted
   means (they are, legitimately, when p/n is large).  Under separation no certificate
   exists: the step keeps moving the separated rows by O(1) in :math:`\eta`, or their
   weights are too small to resolve and the other rows do not span.  One pass of
   :math:`O(nq^2)` and a Cholesky factor, about one iteration of the fit.
3. **Linear programs** (:func:`find_separation`, HiGHS) for the rest: quasi-complete
   separation, fits that stopped far from an optimum.  They are bounded in time
   (:func:`lp_seconds`: a multiple of the time of the fit's iterations, at least a second);
   if the first does not finish, the answer is :class:`Undecided` and the fit is not
   reported as the MLE.

Only a direction verified in floating point (step 1, or the linear program's re-checked)
gives the status ``"separation"``; only the certificate or a linear program that finds no
direction clears a suspect fit.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from simbench.families import Family
    from simbench.links import Link

# boundary responses fitted closer than this to the boundary of the mean space (relative to
# the mean response for counts) make the fit suspect of separation and trigger the check
_SEPARATION_SUSPECT = 1e-6

# the certificate asks the scoring step to use at most this share of each boundary row's
# distance to its boundary in the linear predictor, |u_i| / W_i, so that rounding cannot flip
# a multiplier's sign (a converged fit with overlap uses about 1e-12 of it, a separated one
# all of it or more)
_OVERLAP_SHARE = 0.5
# boundary rows whose weight is below this share of the largest are left out of the
# certificate: the margin that covers rounding in its solve, sqrt(e'M^-1 e / W_i), cannot be
# met on them (fitted means of 1e-40 and less are common with probit or loglog links); leaving
# a row out is always sound, the others must then span without it
_TINY_WEIGHT = 1e-10
# relative margin s_i x_i'd / (|x_i| |d|) a direction needs on every row to count as a
# verified complete separation (the linear programs' re-check uses the same 1e-7)
_STRICT_MARGIN = 1e-7
# time bound of the linear programs: this multiple of the seconds the fit's iterations took,
# and never less than the floor (small problems finish in milliseconds; the floor keeps
# their answer independent of the machine's speed)
LP_IRLS_MULTIPLE = 5.0
LP_MIN_SECONDS = 1.0


class Separation(NamedTuple):
    """A verified direction of separation.

    Attributes
    ----------
    n_separated : int
        Boundary rows that some direction separates strictly (fitted at 0 or 1, or with
        mean 0, in the limit).  A lower bound when ``counted`` is False.
    n_boundary : int
        Rows whose response is on the boundary of the mean space.
    complete : bool
        Whether one direction separates every boundary row strictly (and there are no
        interior rows).
    counted : bool
        False when the linear programs that classify the separation ran out of time after
        its existence was verified: ``n_separated`` is then a lower bound.
    """

    n_separated: int
    n_boundary: int
    complete: bool
    counted: bool = True


@dataclass(frozen=True)
class Undecided:
    """The fit shows the symptoms of separation, no certificate of overlap was found, and
    the linear program that would decide did not finish within ``seconds``."""

    seconds: float

    @property
    def message(self) -> str:
        return (
            "separation undecided: the fit shows its symptoms (fitted means at the boundary "
            "for boundary responses, or no convergence) and no certificate of overlap holds, "
            f"but the linear program that decides did not finish within {self.seconds:.3g} s; "
            "the last iterate is returned and may not be the maximum-likelihood estimate"
        )


# memoised: a fit asks once per call, and the answer depends only on the two vocabulary objects
@functools.lru_cache(maxsize=256)
def separation_kind(family: Family, link: Link) -> str | None:
    """``"binary"``, ``"count"``, or None where the MLE cannot fail to exist this way.

    Read from the vocabulary's domains: a binary family with a link whose means are the
    open (0, 1) (the distribution-function links: logit, probit, cloglog, loglog, cauchit),
    and the log link with a family whose responses reach the lower end of its mean space
    (counts and Tweedie: ``y = 0`` where ``mu > 0``).
    """
    if family.is_binary and link.entry.cdf:
        return "binary"
    means = family.entry.mu_domain
    if link.name == "log" and not family.is_binary and means.low in family.entry.y_support:
        return "count"
    return None


def suspect_separation(kind: str, y, mu, wpos, ybar: float) -> bool:
    """Whether some boundary response is fitted at the boundary (to ``_SEPARATION_SUSPECT``)."""
    if kind == "binary":
        low = wpos & (y == 0.0) & (mu < _SEPARATION_SUSPECT)
        high = wpos & (y == 1.0) & (mu > 1.0 - _SEPARATION_SUSPECT)
        return bool(low.any() or high.any())
    return bool((wpos & (y == 0.0) & (mu < _SEPARATION_SUSPECT * max(ybar, 1.0))).any())


def lp_seconds(irls_seconds: float) -> float:
    """Time bound of the linear programs for a fit whose iterations took ``irls_seconds``."""
    return max(LP_MIN_SECONDS, LP_IRLS_MULTIPLE * irls_seconds)


def boundary_signs(kind: str, y: np.ndarray, wpos: np.ndarray) -> np.ndarray:
    """``s_i``: +1 for ``y = 1`` (binary), -1 for ``y = 0``, 0 elsewhere and on rows of weight 0."""
    if kind == "binary":
        sign = np.where(y == 1.0, 1.0, np.where(y == 0.0, -1.0, 0.0))
    else:
        sign = np.where(y == 0.0, -1.0, 0.0)
    sign[~wpos] = 0.0
    return sign


def check_separation(
    kind: str,
    X: np.ndarray,
    icpt: int,
    y: np.ndarray,
    wpos: np.ndarray,
    *,
    seconds: float,
    beta: np.ndarray | None = None,
    u: np.ndarray | None = None,
    W: np.ndarray | None = None,
) -> Separation | Undecided | None:
    """Whether the data of a suspect fit are separated (see the module notes for the steps).

    Parameters
    ----------
    kind : str
        ``"binary"`` or ``"count"`` (:func:`separation_kind`).
    X, icpt, y, wpos
        Design (without the intercept column), whether there is an intercept, response and
        the mask of rows with positive weight.
    seconds : float
        Time bound of all the linear programs together (:func:`lp_seconds`).
    beta, u, W : ndarray, optional
        The fit's final iterate: coefficients, score contributions ``u_i`` and expected-
        information weights ``W_i``.  Without them only the linear programs decide.

    Returns
    -------
    Separation, Undecided or None
        None when the data are not separated (proved by the certificate or by the linear
        program finding no direction that survives the re-check).
    """
    sign = boundary_signs(kind, y, wpos)
    if not sign.any():
        return None
    nb = int(np.count_nonzero(sign))
    candidates = [beta] if beta is not None and np.isfinite(beta).all() else []
    if icpt:  # the intercept alone separates a constant response
        e0 = np.eye(X.shape[1] + 1)[0]
        candidates += [e0, -e0]
    for d in candidates:
        if separates_all(X, icpt, sign, wpos, d):
            return Separation(nb, nb, True)
    if u is not None and W is not None and overlap_certified(X, icpt, sign, u, W):
        return None
    return find_separation(X, icpt, y, wpos, kind, seconds=seconds)


def _xdot(X: np.ndarray, icpt: int, v: np.ndarray) -> np.ndarray:
    """``X~ v`` without forming ``X~ = [1, X]``."""
    out = X @ v[icpt:]
    if icpt:
        out += v[0]
    return out


def _xtdot(X: np.ndarray, icpt: int, r: np.ndarray) -> np.ndarray:
    """``X~' r`` without forming ``X~``."""
    g = X.T @ r
    return np.concatenate([[r.sum()], g]) if icpt else g


def overlap_certified(X, icpt, sign, u, W) -> bool:
    """Whether the fit proves overlap (no direction of separation), from its final iterate.

    Boundary rows of tiny weight (``W_i <= _TINY_WEIGHT max W``, or a mean rounded onto the
    boundary: ``u_i`` or ``W_i`` not finite, or ``u_i`` without its sign) are left out:
    their multipliers are 0.  The rows kept must span the coefficient space robustly: every
    column's weighted ``1 - R^2`` on the earlier ones at least the rank tolerance of the
    IRLS passes.  That also rejects rows whose weights are too small next to the others' to
    be resolved, as a quasi-separated fit's are.  On the rows kept, with ``M = X~'WX~``
    (exact, by Cholesky) and ``v = M^-1 X~'u``, the multipliers ``c = u - W X~ v`` sum to
    ``e = X~'c``, zero up to rounding.  The exact solution's linear predictor differs from
    the computed one on row ``i`` by at most ``sqrt(e'M^-1 e / W_i)`` (a leverage is at
    most 1); with twice that margin, the check is
    ``s_i x~_i'v <= _OVERLAP_SHARE |u_i| / W_i`` on every boundary row kept, so that
    ``s_i c_i > 0``.  A direction of separation ``d`` would then give
    ``0 = d'X~'c = sum_i |c_i| s_i x~_i'd``, a sum of terms >= 0, so ``x~_i'd = 0`` on every
    row kept and ``d = 0``.  False means no proof, not a proof of separation.
    """
    from simbench.kernels.irls import RANK_TOL

    bnd = sign != 0.0
    finite = np.isfinite(u) & np.isfinite(W)
    if not finite[~bnd].all():
        return False
    w_max = float(W[finite].max(initial=0.0))
    kept = bnd & finite & (W > _TINY_WEIGHT * w_max) & (u * sign > 0.0)
    use = kept | ~bnd
    D = np.where(use, W, 0.0)
    Du = np.where(use, u, 0.0)

    sw = np.sqrt(D)
    Xw = X * sw[:, None]
    M = Xw.T @ Xw
    if icpt:
        col = Xw.T @ sw
        M = np.block([[np.array([[D.sum()]]), col[None, :]], [col[:, None], M]])
    diag = np.diag(M).copy()
    if not (np.isfinite(M).all() and np.all(diag > 0.0)):
        return False
    scale = 1.0 / np.sqrt(diag)
    try:
        L = np.linalg.cholesky(M * scale[:, None] * scale[None, :])
    except np.linalg.LinAlgError:
        return False
    if np.min(np.diag(L)) ** 2 < RANK_TOL:  # the rows kept do not span: no proof
        return False

    def solve(b):
        return scale * _cholesky_solve(L, scale * b)

    g = _xtdot(X, icpt, Du)
    v = solve(g)
    deta = _xdot(X, icpt, v)
    e = g - _xtdot(X, icpt, D * deta)
    slack = float(e @ solve(e))
    if not slack >= 0.0:
        return False
    k = np.flatnonzero(kept)
    reach = sign[k] * deta[k] + 2.0 * np.sqrt(slack / W[k])
    return bool(np.all(reach <= _OVERLAP_SHARE * np.abs(u[k]) / W[k]))


def _cholesky_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x`` with ``L L' x = b``, ``L`` lower triangular: forward, then back substitution.

    Row by row with NumPy's dot products (a few milliseconds at a thousand coefficients),
    so that the certificate needs NumPy's linear algebra only, not SciPy's (0.15 s to
    import, for a check that most fits never make)."""
    q = b.shape[0]
    y = np.empty(q)
    for i in range(q):
        y[i] = (b[i] - L[i, :i] @ y[:i]) / L[i, i]
    x = np.empty(q)
    for i in range(q - 1, -1, -1):
        x[i] = (y[i] - L[i + 1 :, i] @ x[i + 1 :]) / L[i, i]
    return x


def separates_all(X, icpt, sign, wpos, d) -> bool:
    """Whether ``d`` separates every row strictly: complete separation, verified.

    Every row of positive weight must be a boundary row with
    ``s_i x~_i'd > _STRICT_MARGIN |x~_i| |d|``: with Euclidean norms, at least as strict as
    the linear programs' re-check, which divides by ``sum_j |x~_ij d_j|``.
    """
    if np.any(sign[wpos] == 0.0):
        return False
    dn = float(np.linalg.norm(d))
    if not dn > 0.0:
        return False
    rows = np.flatnonzero(wpos)
    Xr = X[rows]
    m = sign[rows] * _xdot(Xr, icpt, d)
    size = np.sqrt(np.einsum("ij,ij->i", Xr, Xr) + icpt) * dn
    return bool(np.all(m > _STRICT_MARGIN * size))


def find_separation(
    X: np.ndarray, icpt: int, y, wpos, kind: str, *, seconds: float = LP_MIN_SECONDS
) -> Separation | Undecided | None:
    """A verified direction of separation by linear programs, within ``seconds`` in all.

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

    HiGHS stops each at the time left (``time_limit``).  If the first does not finish, the
    answer is :class:`Undecided`; if the last gives no answer, the separation stands with
    the rows the first direction separates as a lower bound (``counted=False``).
    """
    from scipy.optimize import linprog

    deadline = time.perf_counter() + seconds

    def solve(*args, **kwargs):
        """HiGHS within the time left; None once none is left."""
        left = deadline - time.perf_counter()
        if left <= 0.0:
            return None
        return linprog(*args, method="highs", options={"time_limit": left}, **kwargs)

    rows = np.flatnonzero(wpos)
    Xt = X[rows]
    if icpt:
        Xt = np.hstack([np.ones((rows.size, 1)), Xt])
    scale = np.abs(Xt).max(axis=0)
    Xt = Xt / np.where(scale > 0, scale, 1.0)
    sign = boundary_signs(kind, y[rows], np.ones(rows.size, dtype=bool))
    bnd = sign != 0.0
    if not bnd.any():
        return None
    Xb = Xt[bnd] * sign[bnd, None]
    inner = Xt[~bnd]
    nb, q = Xb.shape
    eq = {"A_eq": inner, "b_eq": np.zeros(inner.shape[0])} if inner.shape[0] else {}

    res = solve(-Xb.sum(axis=0), A_ub=-Xb, b_ub=np.zeros(nb), bounds=(-1.0, 1.0), **eq)
    if res is None or res.status == 1:  # HiGHS's time limit (no iteration limit is set)
        return Undecided(seconds)
    if res.status != 0 or res.x is None or not -res.fun > 1e-9:
        return None
    dvec = res.x
    size = np.abs(Xt) @ np.abs(dvec) + 1e-300
    margin = (Xt @ dvec) / size
    sm = margin[bnd] * sign[bnd]
    if (sm < -1e-7).any() or (np.abs(margin[~bnd]) > 1e-7).any() or not (sm > 1e-5).any():
        return None  # the LP's answer does not survive the re-check: no evidence

    classified = bool(inner.shape[0])  # interior rows: not complete, without a program
    if not inner.shape[0]:
        c = np.zeros(q + 1)
        c[-1] = -1.0
        res = solve(
            c,
            A_ub=np.hstack([-Xb, np.ones((nb, 1))]),
            b_ub=np.zeros(nb),
            bounds=[(-1.0, 1.0)] * q + [(None, 1.0)],
        )
        classified = res is not None and res.status == 0
        if classified and -res.fun > 1e-7:
            return Separation(nb, nb, True)
    # rows some direction separates strictly: t_b = 1 exactly for those
    from scipy import sparse

    c = np.concatenate([np.zeros(q), -np.ones(nb)])
    Xs = sparse.csr_matrix(-Xb)
    A_ub = sparse.bmat([[Xs, sparse.identity(nb)], [Xs, None]], format="csr")
    eq3 = {}
    if eq:
        A_eq = sparse.hstack([sparse.csr_matrix(inner), sparse.csr_matrix((inner.shape[0], nb))])
        eq3 = {"A_eq": A_eq.tocsr(), "b_eq": eq["b_eq"]}
    res = solve(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(2 * nb),
        bounds=[(None, None)] * q + [(0.0, 1.0)] * nb,
        **eq3,
    )
    if res is None or res.status != 0 or res.x is None:
        # the existence is verified; the first direction's rows are a lower bound
        return Separation(max(int((sm > 1e-5).sum()), 1), nb, False, counted=False)
    n_sep = max(int((res.x[q:] > 0.5).sum()), 1)
    if n_sep == nb and not classified:
        # every row separable on its own: the sum of their directions separates them all
        return Separation(nb, nb, True)
    return Separation(n_sep, nb, False)


def separation_message(kind: str, found: Separation, y, wpos) -> str:
    """The fit's message for a verified separation."""
    n_sep, n_bnd, complete, counted = found
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
        if not counted:
            return (
                f"separation: at least {n_sep} of the {n_bnd} observations with y = 0 or 1 lie "
                "strictly on one side of a hyperplane that no observation crosses, and are "
                "fitted with probability 0 or 1 in the limit (their exact number is not settled: "
                "the linear program that counts them ran out of time or failed)" + tail + " and "
                "some coefficients diverge"
            )
        return (
            f"quasi-complete separation: {n_sep} of the {n_bnd} observations with y = 0 or 1 "
            "lie strictly on one side of a hyperplane that the others touch, and are fitted "
            "with probability 0 or 1 in the limit" + tail + " and some coefficients diverge"
        )
    if np.all(yb == 0.0):
        return "separation: every count is zero, so the fitted means tend to 0" + tail
    at_least = "" if counted else "at least "
    return (
        f"separation: {at_least}{n_sep} of the {n_bnd} zero counts can be fitted with mean 0 "
        "exactly (a direction in the covariates is <= 0 on all zero counts, < 0 on these, and 0 "
        "on all positive counts)" + tail + " and some coefficients diverge to -inf"
    )
