r"""The reference GLM: maximum likelihood by Fisher scoring (IRLS) with step-halving.

For a family with unit variance :math:`V`, link :math:`g = h^{-1}`, prior weights
:math:`w_i` and design rows :math:`\tilde x_i = (1, x_i)`, :func:`fit_glm` maximises the
log-likelihood in :math:`\beta`, :math:`\eta_i = \tilde x_i^\top\beta + o_i`,
:math:`\mu_i = h(\eta_i)`, by the iteration

.. math::

    \beta \leftarrow \beta + t\,A^{-1} g,\qquad
    A = \sum_i W_i \tilde x_i\tilde x_i^\top,\qquad
    g = \sum_i w_i\,\frac{h'(\eta_i)(y_i - \mu_i)}{V(\mu_i)}\,\tilde x_i,\qquad
    W_i = \frac{w_i\,h'(\eta_i)^2}{V(\mu_i)},

with :math:`t = 1, 1/2, 1/4, \dots` until the step stays in the domain and does not raise
the deviance :math:`D = \sum_i w_i d(y_i, \mu_i)`.  For non-canonical links, where this
Fisher scoring converges only linearly (at a rate that can approach 1), the iteration turns
to Newton's method (:math:`A` the observed information) once a step is shorter than a
standard error, and back if the observed information is not positive definite.  The passes
over the rows are compiled kernels (:mod:`simbench.kernels.irls`, one call per trial point);
this module runs the iteration, validates the input, interprets the outcome (rank
deficiency, separation, domain problems) and computes the inference quantities.

Conventions (statsmodels' where it has one): prior weights are variance weights
(``var_weights``; binomial: numbers of trials, ``y`` the proportions); rows of weight 0 are
absent (``nobs`` counts the others); the dispersion is Pearson's; the log-likelihood is
evaluated at it (Gaussian-identity: at the maximum-likelihood :math:`\sum w(y-\mu)^2/n`);
AIC counts the coefficients only; the null deviance is that of the intercept-only model with
the offset, also without ``fit_intercept``.

Separation (no MLE) is detected by :mod:`simbench.fit.separation`; the iteration itself
(chord steps, subsampled passes) is :mod:`simbench.fit.scoring`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from simbench import families as _families
from simbench._jit import readonly
from simbench._validation import real_matrix, real_vector
from simbench.errors import ValidationError
from simbench.fit.scoring import (
    CONVERGED,
    MAX_ITER,
    NO_START,
    NONFINITE,
    RANK_DEFICIENT,
    SINGULAR,
    STALLED,
    fisher_scoring,
)
from simbench.fit.separation import (
    Separation,
    Undecided,
    check_separation,
    lp_seconds,
    separation_kind,
    separation_message,
    suspect_separation,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from simbench.families import Family
    from simbench.links import Link

__all__ = ["STATUSES", "GLMFit", "fit_glm"]

STATUSES = ("ok", "not_converged", "separation", "rank_deficient", "domain_error")


def _irls():
    # compiled kernels are loaded on first use, never at import
    from simbench.kernels import irls

    return irls


# ---- the result -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _FitData:
    """The training data a fit keeps for its lazily computed attributes."""

    y: np.ndarray
    mu: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    wpos: np.ndarray
    ybar: float
    tol: float
    # for the covariances: the design (a reference, not a copy) and, per row at the fit,
    # the weight W_i of the expected information and the score contribution u_i (the sandwich)
    X: np.ndarray
    icpt: int
    W_row: np.ndarray
    u_row: np.ndarray


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class GLMFit:
    r"""A fitted generalized linear model (the result of :func:`fit_glm`).

    Coefficient vectors and matrices are ordered ``[intercept, x1, ..., xp]`` (without the
    intercept when ``fit_intercept=False``).  Arrays are read-only.

    Attributes
    ----------
    coef : ndarray (q,)
        :math:`\hat\beta` (the last iterate when ``status`` is not ``"ok"``; nan when no
        iterate exists: ``"rank_deficient"``, ``"domain_error"`` without a valid start).
    covariance : ndarray (q, q)
        :math:`\hat\phi\,(\tilde X^\top W \tilde X)^{-1}`, the inverse expected information.
        This, ``covariance_sandwich``, ``bse`` and ``fisher_information`` are computed on
        first access (a pass over ``X`` for the information, one more for the sandwich; the
        fit keeps a reference to ``X``, as statsmodels' results do: do not modify ``X`` in
        place before reading them).
    covariance_sandwich : ndarray (q, q)
        :math:`A^{-1} B A^{-1}` with :math:`A = \tilde X^\top W\tilde X` and
        :math:`B = \sum_i u_i^2 \tilde x_i\tilde x_i^\top`,
        :math:`u_i = w_i h'(\eta_i)(y_i-\mu_i)/V(\mu_i)` (HC0; valid under a misspecified
        variance function).
    bse : ndarray (q,)
        Standard errors, the square roots of the diagonal of ``covariance``.
    dispersion : float
        Pearson estimate :math:`\hat\phi = \sum_i w_i (y_i-\hat\mu_i)^2/V(\hat\mu_i) /
        (n - q)` for families with a dispersion parameter, 1 otherwise.
    dispersion_deviance : float
        :math:`D/(n - q)` for families with a dispersion parameter, 1 otherwise.
    deviance, null_deviance : float
        :math:`D(\hat\beta)` and the deviance of the intercept-only model (with the offset;
        statsmodels' convention, also when ``fit_intercept=False``).
    loglik, aic : float
        Log-likelihood at :math:`\hat\phi` (the Gaussian identity model uses the maximum
        likelihood :math:`\sum w (y-\hat\mu)^2/n`; statsmodels' convention) and
        :math:`-2\ell + 2q`.  nan when ``y`` is outside the support of the distribution
        (non-integer counts, fractional binary responses: a quasi-likelihood fit).
    pearson_chi2 : float
        The Pearson statistic :math:`\sum_i w_i (y_i-\hat\mu_i)^2/V(\hat\mu_i)`.
    nobs : int
        Rows with positive weight (rows of weight 0 are absent from the likelihood).
    df_resid : int
        ``nobs - q``.
    iterations : int
        Accepted iterates (Fisher-scoring or Newton steps, and chord steps: see
        :func:`fit_glm`).
    deviance_history : ndarray
        The deviance of each accepted iterate.
    converged : bool
        Both convergence criteria met and ``status == "ok"``.
    status : str
        ``"ok"``, ``"not_converged"``, ``"separation"``, ``"rank_deficient"`` or
        ``"domain_error"``.  A fit that looks separated but whose separation check ran out of
        time is ``"not_converged"`` (its message starts with "separation undecided").
    message : str
        What happened, in words ("" when ``status == "ok"``).
    fisher_information : ndarray (q, q)
        :math:`I_n = \tilde X^\top W \tilde X/\hat\phi` at :math:`\hat\beta`.
    grad_norm : float
        :math:`\lVert\nabla_\beta \tfrac{1}{2}D/\sum_i w_i\rVert_2`, the gradient of the mean
        half-deviance per unit weight (the network's loss scale) at :math:`\hat\beta`.
    decrement : float
        Newton decrement :math:`g^\top A^{-1} g`: the deviance a further step would gain.
    family, link : Family, Link
    fit_intercept : bool
    feature_names : tuple of str
        Names of the coefficients (``"intercept"``, then the columns of ``X``).
    """

    coef: np.ndarray
    dispersion: float
    dispersion_deviance: float
    deviance: float
    pearson_chi2: float
    nobs: int
    df_resid: int
    iterations: int
    deviance_history: np.ndarray
    converged: bool
    status: str
    message: str
    grad_norm: float
    decrement: float
    family: Family
    link: Link
    fit_intercept: bool
    feature_names: tuple[str, ...]
    # what the lazily computed attributes need (None for failed fits)
    _data: _FitData | None = field(default=None, repr=False)

    def _cross_product(self, W: np.ndarray) -> np.ndarray:
        """``X~' diag(W) X~`` over the fitted design (one pass over ``X``)."""
        d = self._data
        k = _irls()
        q = len(self.coef)
        n = d.X.shape[0]
        bordered = np.empty((q + 1, q + 1))
        work = np.empty((k.n_blocks(n), q + 1, q + 1))
        out = np.empty((q, q))
        k.irls_accumulate(d.X, d.icpt, W, np.zeros(n), bordered, work)
        k.unpack_bordered(bordered, out, np.empty(0))
        return out

    @cached_property
    def _information(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, A^-1)``, ``A = X~' W X~`` at the final iterate: one pass over ``X``, made on
        the first access to ``covariance``, ``bse`` or ``fisher_information`` (many uses need
        only the coefficients)."""
        q = len(self.coef)
        if self._data is None:
            nan_m = np.full((q, q), math.nan)
            return nan_m, nan_m
        k = _irls()
        A = self._cross_product(self._data.W_row)
        L, dsc = np.zeros((q, q)), np.empty(q)
        Ainv = np.full((q, q), math.nan)
        if k.scaled_cholesky(A, L, dsc, 0.0) < 0:
            k.cholesky_inverse(L, dsc, Ainv)
        return A, Ainv

    @cached_property
    def covariance(self) -> np.ndarray:
        r""":math:`\hat\phi\,(\tilde X^\top W \tilde X)^{-1}` (computed on first access)."""
        return _readonly(self.dispersion * self._information[1])

    @cached_property
    def fisher_information(self) -> np.ndarray:
        r""":math:`I_n = \tilde X^\top W \tilde X/\hat\phi` (computed on first access)."""
        return _readonly(self._information[0] / self.dispersion)

    @cached_property
    def covariance_sandwich(self) -> np.ndarray:
        """The sandwich (HC0) covariance (computed on first access: one more pass over ``X``,
        for the meat)."""
        q = len(self.coef)
        if self._data is None:
            return _readonly(np.full((q, q), math.nan))
        Ainv = self._information[1]
        u = self._data.u_row
        cov = Ainv @ self._cross_product(u * u) @ Ainv
        return _readonly(0.5 * (cov + cov.T))

    @cached_property
    def bse(self) -> np.ndarray:
        """Standard errors, the square roots of the diagonal of ``covariance``."""
        return _readonly(np.sqrt(np.diag(self.covariance)))

    def __repr__(self) -> str:
        head = f"GLMFit({self.family!r}, {self.link!r}, status={self.status!r}"
        return head + f", deviance={self.deviance:.6g}, iterations={self.iterations})"

    @property
    def n_features(self) -> int:
        """Number of columns of ``X`` (the intercept not counted)."""
        return len(self.coef) - int(self.fit_intercept)

    @cached_property
    def loglik(self) -> float:
        """Log-likelihood at the estimated dispersion (computed on first access)."""
        d = self._data
        if d is None:
            return math.nan
        fam, y, mu, w = self.family, d.y[d.wpos], d.mu[d.wpos], d.weights
        w = None if w.size == 0 else w[d.wpos]
        if fam.name == "gaussian" and self.link.name == "identity":
            r2 = (y - mu) ** 2
            phi = float(np.sum(r2 if w is None else r2 * w)) / self.nobs
        else:
            phi = self.dispersion
        if not (math.isfinite(phi) and phi > 0):
            return math.nan
        try:
            return float(fam.loglik(y, mu, phi=phi, weights=w))
        except ValidationError:
            return math.nan  # y outside the support: a quasi-likelihood fit

    @cached_property
    def aic(self) -> float:
        r""":math:`-2\ell + 2q` (computed on first access)."""
        return -2.0 * self.loglik + 2.0 * len(self.coef)

    @cached_property
    def null_deviance(self) -> float:
        """Deviance of the intercept-only model with the offset (computed on first access)."""
        d = self._data
        if d is None:
            return math.nan
        return _null_deviance(
            _irls(), self.family, self.link, d.y, d.weights, d.offset, d.ybar, d.tol
        )

    @cached_property
    def bse_sandwich(self) -> np.ndarray:
        """Sandwich (HC0) standard errors."""
        return _readonly(np.sqrt(np.diag(self.covariance_sandwich)))

    def _check_X(self, X) -> np.ndarray:
        return real_matrix(X, columns=self.n_features)

    def linear_predictor(self, X, offset=None) -> np.ndarray:
        r""":math:`\eta = \tilde X\hat\beta + o` for new rows ``X`` (n, p)."""
        arr = self._check_X(X)
        eta = arr @ self.coef[int(self.fit_intercept) :]
        if self.fit_intercept:
            eta = eta + self.coef[0]
        if offset is not None:
            eta = eta + real_vector(offset, arr.shape[0], "offset", scalar_ok=True)
        return eta

    def predict(self, X, offset=None) -> np.ndarray:
        r"""Fitted means :math:`\hat\mu = h(\tilde X\hat\beta + o)` for new rows ``X``."""
        return self.link.h(self.linear_predictor(X, offset=offset))

    def summary(self) -> pd.DataFrame:
        """Coefficient table: estimate, standard error, Wald z, two-sided p-value (normal
        reference), sandwich standard error; one row per coefficient."""
        import pandas as pd

        z = self.coef / self.bse
        pval = np.array([math.erfc(abs(v) / math.sqrt(2.0)) for v in z])
        return pd.DataFrame(
            {
                "coef": self.coef,
                "se": self.bse,
                "z": z,
                "p_value": pval,
                "se_sandwich": self.bse_sandwich,
            },
            index=pd.Index(self.feature_names, name="term"),
        )


# ---- input validation -------------------------------------------------------------------------


def _check_nonfinite_X(X: np.ndarray) -> None:
    """Raise the ValidationError that explains a non-finite X'WX."""
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValidationError(f"X must be finite; got {X[i, j]!r} at row {i}, column {j}")
    raise ValidationError(
        "X'WX overflows at the starting values: the columns of X are too large "
        f"(max |X| = {np.abs(X).max():.3g}); rescale them"
    )


# ---- diagnostics ------------------------------------------------------------------------------


def _collinearity_message(A: np.ndarray, names: tuple[str, ...], tol: float) -> str:
    """Name the columns that are (weighted) linear combinations of earlier ones."""
    d = np.diag(A).copy()
    info = d > 0
    root = np.sqrt(np.where(info, d, 1.0))
    S = A / np.outer(root, root)
    kept: list[int] = []
    parts = []
    for j in range(A.shape[0]):
        if not info[j]:
            parts.append(f"{names[j]!r} is zero on every row with positive weight")
            continue
        if kept:
            c = np.linalg.solve(S[np.ix_(kept, kept)], S[kept, j])
            resid = 1.0 - float(S[kept, j] @ c)
        else:
            c = np.zeros(0)
            resid = 1.0
        if resid > tol:
            kept.append(j)
            continue
        big = np.abs(c) > 1e-6 * max(np.abs(c).max(initial=0.0), 1e-300)
        combo = ", ".join(repr(names[kept[i]]) for i in np.flatnonzero(big))
        parts.append(f"{names[j]!r} is a linear combination of {combo} (1 - R^2 = {resid:.1e})")
    return (
        "rank-deficient design: "
        + "; ".join(parts)
        + ". The coefficients are not identifiable: remove or combine these columns."
    )


# ---- the fit ------------------------------------------------------------------------------------


# fit_glm's convergence tolerance (its ``tol``)
DEFAULT_TOL = 1e-10


def resolve(family, link):
    """``(Family, Link)`` of a family and a link it accepts (None: its default link)."""
    try:
        return _resolve(family, link)
    except TypeError:  # unhashable arguments: resolve without the cache
        return _resolve.__wrapped__(family, link)


@lru_cache(maxsize=256)
def _resolve(family, link):
    fam = _families.get(family)
    lnk = fam.default_link if link is None else fam.check_link(link)
    return fam, lnk


def coefficient_names(p: int, icpt: int = 1, columns=None) -> tuple[str, ...]:
    """The names of a GLM's coefficients: ``intercept`` (when fitted), then the columns'
    names when ``columns`` names all ``p``, else ``x1 … xp``."""
    names = (
        tuple(str(c) for c in columns)
        if columns is not None and len(columns) == p
        else tuple(f"x{j + 1}" for j in range(p))
    )
    return (("intercept",) if icpt else ()) + names


def fit_glm(
    X,
    y,
    family: str | Family = "poisson",
    link: str | Link | None = None,
    weights=None,
    offset=None,
    fit_intercept: bool = True,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100,
) -> GLMFit:
    r"""Fit a GLM by maximum likelihood (Fisher scoring / IRLS with step-halving).

    Parameters
    ----------
    X : array-like (n, p)
        Covariates, without an intercept column (a pandas DataFrame's column names are kept).
    y : array-like (n,)
        Responses, in the domain of the family's deviance: binomial proportions (with the
        trials as ``weights``), non-integer counts and fractional binary responses are
        accepted (quasi-likelihood; the log-likelihood is then nan).
    family : str or Family
        A family name (``"poisson"``, ``"tweedie(1.5)"``, ...) or a Family.
    link : str, Link or None
        A link the family accepts; None or ``"canonical"``: the family's default link.
    weights : array-like (n,), optional
        Prior weights :math:`w_i \ge 0` (statsmodels' ``var_weights``; binomial: trials).
        Integer weights give the same coefficients, deviance and Pearson statistic as
        repeating rows; rows of weight 0 are absent.
    offset : array-like (n,) or float, optional
        Known part of the linear predictor, :math:`\eta = \tilde x^\top\beta + o`.
    fit_intercept : bool
        Whether to fit an intercept (the first coefficient).
    tol : float
        Convergence tolerance.  The fit has converged when the relative deviance change
        between iterates is below ``tol`` (``|D_k - D_{k-1}| <= tol (|D_k| + 0.1)``) and the
        next Newton step would be shorter than ``tol`` standard errors (Newton decrement
        ``g'A^-1 g <= tol^2 phi``, with ``phi`` estimated by the deviance per row); where
        rounding stops the decrement from falling, a step below ``sqrt(tol)`` standard errors
        suffices.  The default leaves the coefficients within about 1e-10 standard errors of
        the MLE.
    max_iter : int
        Maximal number of iterates.

    Returns
    -------
    GLMFit
        Its ``status`` says whether the fit is the MLE (``"ok"``) or why not: no convergence,
        separation (no MLE), a rank-deficient design, or means that leave the domain.

    Raises
    ------
    ValidationError
        Malformed input: shapes, non-finite values, ``y`` outside the family's domain,
        negative weights, an unknown or unaccepted link.

    Notes
    -----
    Each iterate is one pass over the rows.  A full pass accumulates the information
    ``X~'WX~`` (O(q^2) per row).  For larger problems (q >= 8 and n q^2 >= 1e6), once the
    Newton step is within about three standard errors, the iteration takes chord steps:
    passes that accumulate only the score (O(q) per row) and reuse the last factorisation,
    as long as each shrinks the step at least threefold (else a full pass follows).  Farther
    from the optimum, with at least 100 rows per coefficient, the passes (the start's too)
    estimate the information from every s-th chunk of 256 rows (s <= 8, at least 50 rows per
    coefficient); the score and the deviance always use every row, and the factor the chord
    steps reuse is exact.  A singular estimate is redone over all rows, and the first pass
    over all rows decides whether the design is rank deficient.  Chord steps converge
    linearly, fast this close to the optimum, to the same fixed point; a fit that ends on one
    meets a 1e4 times stricter decrement criterion, so it ends as close to the optimum as a
    final Newton step would.  The
    covariances are computed at the final iterate when first read.
    """
    fam, lnk = resolve(family, link)
    names_in = getattr(X, "columns", None)
    Xa = real_matrix(X)
    n, p = Xa.shape
    if n == 0:
        raise ValidationError("X has no rows")
    ya = real_vector(y, n, "y")
    fam.check_y(ya, support=False)
    if weights is None:
        wa = np.empty(0)
        wpos_count_ok = True
    else:
        wa = real_vector(weights, n, "weights")
        if (wa < 0).any():
            i = int(np.flatnonzero(wa < 0)[0])
            raise ValidationError(f"weights must be >= 0; got {wa[i]!r} at index {i}")
        wpos_count_ok = bool((wa > 0).any())
    if not wpos_count_ok:
        raise ValidationError("weights are all zero: there is nothing to fit")
    oa = np.empty(0) if offset is None else real_vector(offset, n, "offset", scalar_ok=True)
    try:
        tol_f = float(tol)
    except (TypeError, ValueError):
        tol_f = math.nan
    if not (math.isfinite(tol_f) and tol_f > 0):
        raise ValidationError(f"tol must be a finite number > 0; got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValidationError(f"max_iter must be an integer >= 1; got {max_iter!r}")
    icpt = 1 if fit_intercept else 0
    q = p + icpt
    if q == 0:
        raise ValidationError("no coefficients to fit: X has no columns and fit_intercept=False")
    names = coefficient_names(p, icpt, names_in)
    return fit_checked(Xa, ya, wa, oa, fam, lnk, icpt, names, tol_f, int(max_iter))


def fit_checked(Xa, ya, wa, oa, fam, lnk, icpt, names, tol_f, max_iter) -> GLMFit:
    """:func:`fit_glm` on input it has checked (or that was checked as it checks it):
    float64 C-contiguous ``Xa`` (n, p) and ``ya``; ``wa`` and ``oa`` of n values or empty
    for none (weights >= 0, not all 0); a Family and a Link it accepts; the intercept
    flag (0 or 1); the coefficient names; the tolerance and the iteration limit."""
    n, p = Xa.shape
    q = p + icpt
    canonical = fam.canonical_link == lnk
    # read-only views: the kernels then compile once for users' arrays and data sets alike
    Xa, ya, wa, oa = readonly(Xa), readonly(ya), readonly(wa), readonly(oa)
    k = _irls()
    fcode, fpar = int(fam.code), float(fam.param)
    lcode, lpar = int(lnk.code), float(lnk.param)
    wpos = np.ones(n, dtype=bool) if wa.size == 0 else wa > 0
    nw = int(wpos.sum())
    started = time.perf_counter()  # the separation check's time bound scales with the fit's
    res = fisher_scoring(
        k, Xa, icpt, fcode, fpar, lcode, lpar, ya, wa, oa, tol_f, max_iter,
        nw if fam.has_dispersion else 0, not canonical,
    )  # fmt: skip
    irls_seconds = time.perf_counter() - started
    common: dict[str, Any] = {
        "family": fam,
        "link": lnk,
        "fit_intercept": bool(icpt),
        "feature_names": names,
    }
    sep_kind = separation_kind(fam, lnk)

    if res.outcome == NONFINITE:
        _check_nonfinite_X(Xa)
    if res.outcome == RANK_DEFICIENT:
        msg = _collinearity_message(res.A, names, k.RANK_TOL)
        return _failed(q, "rank_deficient", msg, common, n=nw)
    if res.outcome == NO_START:
        if sep_kind is not None:
            found = check_separation(sep_kind, Xa, icpt, ya, wpos, seconds=lp_seconds(irls_seconds))
            if isinstance(found, Separation):
                msg = separation_message(sep_kind, found, ya, wpos)
                return _failed(q, "separation", msg, common, n=nw)
        return _failed(
            q,
            "domain_error",
            f"no valid starting point: neither the standard starting means nor the "
            f"intercept-only model give a linear predictor and means inside the domain of the "
            f"{lnk.name} link and the {fam.name} family ({fam.mu_domain})",
            common,
            n=nw,
        )

    # ---- inference at the final iterate --------------------------------------------------
    # (the covariances are computed from these rows on first access: GLMFit._inference)
    dev, decrement, iters, g = res.deviance, res.decrement, res.iterations, res.g
    mu, u_row, W_row = np.empty(n), np.empty(n), np.empty(n)
    pearson, npos, sw = k.irls_finish(fcode, fpar, lcode, lpar, ya, wa, res.eta, mu, u_row, W_row)
    npos = int(npos)
    df_resid = npos - q
    if fam.has_dispersion:
        phi = pearson / df_resid if df_resid > 0 else math.nan
        phi_dev = dev / df_resid if df_resid > 0 else math.nan
    else:
        phi = phi_dev = 1.0
    history = res.history

    # ---- status ---------------------------------------------------------------------------------
    status, message = "ok", ""
    ybar = res.ybar
    if res.outcome == MAX_ITER:
        status = "not_converged"
        scale = abs(dev) + 0.1
        phi_t = scale / nw if fam.has_dispersion else 1.0
        change = abs(history[-1] - history[-2]) / scale if iters >= 2 else math.nan
        message = (
            f"no convergence in {max_iter} iterations: relative deviance change {change:.2e}, "
            f"next step {math.sqrt(max(decrement, 0.0) / phi_t):.2e} standard errors "
            f"(tol {tol_f:g})"
        )
    elif res.outcome == STALLED:
        status = "not_converged"
        message = (
            "step-halving failed: no step along the Fisher-scoring direction lowers the "
            f"deviance, though a full step would gain {decrement:.3g}"
        )
    elif res.outcome == SINGULAR:
        status = "not_converged"
        message = (
            f"the information matrix became singular at column {names[res.column]!r} during "
            "the iterations (working weights vanished or exploded)"
        )
    undecided = False
    if sep_kind is not None and (
        status != "ok" or suspect_separation(sep_kind, ya, mu, wpos, ybar)
    ):
        # the final iterate proves overlap in most suspect fits (near-boundary means are
        # common when p/n is large); linear programs only where it does not
        found = check_separation(
            sep_kind, Xa, icpt, ya, wpos, seconds=lp_seconds(irls_seconds),
            beta=res.beta, u=u_row, W=W_row,
        )  # fmt: skip
        if isinstance(found, Separation):
            status = "separation"
            message = separation_message(sep_kind, found, ya, wpos)
        elif isinstance(found, Undecided):
            # not shown to be the MLE, nor to lie on the boundary: say only that it is undecided
            status, undecided = "not_converged", True
            message = found.message + (f". {message[0].upper()}{message[1:]}" if message else "")
    if status == "not_converged" and not undecided and _at_boundary(fam, lnk, mu[wpos]):
        status = "domain_error"
        message = (
            f"the fitted means run into the boundary of the mean space ({fam.mu_domain}, "
            f"{lnk.name} link): the likelihood is largest on the boundary, where the model "
            f"is not a GLM fit in the interior; the last iterate ({iters} iterations) is "
            "returned. " + message[0].upper() + message[1:]
        )

    return GLMFit(
        coef=_readonly(res.beta),
        dispersion=float(phi),
        dispersion_deviance=float(phi_dev),
        deviance=float(dev),
        pearson_chi2=float(pearson),
        nobs=npos,
        df_resid=int(df_resid),
        iterations=iters,
        deviance_history=_readonly(history),
        converged=status == "ok" and res.outcome == CONVERGED,
        status=status,
        message=message,
        grad_norm=float(np.linalg.norm(g) / sw),
        decrement=float(decrement),
        _data=_FitData(ya, mu, wa, oa, wpos, ybar, tol_f, Xa, icpt, W_row, u_row),
        **common,
    )


def _at_boundary(fam: Family, lnk: Link, mu: np.ndarray) -> bool:
    """Whether some fitted mean sits at the edge of the mean space (to 1e-7, relatively)."""
    if mu.size == 0:
        return False
    scale = max(float(np.abs(mu).max()), 1e-300)
    positive = fam.name != "gaussian" or lnk.name not in ("identity",)
    if positive and (np.abs(mu) <= 1e-7 * scale).any():
        return True
    return bool(fam.is_binary and (mu >= 1.0 - 1e-7).any())


def _null_deviance(k, fam, lnk, y, w, offset, ybar, tol) -> float:
    """Deviance of the intercept-only model (with the offset)."""
    if offset.size == 0:
        if not (fam.mu_valid(np.array([ybar]))[0] and lnk.mu_valid(np.array([ybar]))[0]):
            return math.nan
        return float(
            _irls_fam().fam_deviance_sum(
                int(fam.code), float(fam.param), y, np.full(y.shape[0], ybar), w
            )
        )
    res = fisher_scoring(
        k, np.empty((y.shape[0], 0)), 1, int(fam.code), float(fam.param), int(lnk.code),
        float(lnk.param), y, w, offset, tol, 100,
        (int(np.sum(w > 0)) if w.size else y.shape[0]) if fam.has_dispersion else 0,
        fam.canonical_link != lnk,
    )  # fmt: skip
    return float(res.deviance) if res.outcome == CONVERGED else math.nan


def _irls_fam():
    from simbench.kernels import families

    return families


def _failed(q: int, status: str, message: str, common: dict, n: int) -> GLMFit:
    nan_v = _readonly(np.full(q, math.nan))
    return GLMFit(
        coef=nan_v,
        dispersion=math.nan,
        dispersion_deviance=math.nan,
        deviance=math.nan,
        pearson_chi2=math.nan,
        nobs=n,
        df_resid=n - q,
        iterations=0,
        deviance_history=_readonly(np.empty(0)),
        converged=False,
        status=status,
        message=message,
        grad_norm=math.nan,
        decrement=math.nan,
        **common,
    )
