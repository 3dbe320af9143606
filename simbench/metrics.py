"""What "recovers the true GLM" means, as numbers.

Notation (SCIENCE.md): design row ``x̃ = (1, x)``, truth ``β*``, ``η* = x̃ᵀβ* (+ offset)``,
``μ* = h(η*)`` with ``h = g⁻¹`` the scenario's inverse link, unit variance ``V(μ)``,
dispersion ``φ``, prior weights ``w``, unit deviance ``d(y, μ)``.  ``β̂`` is a configuration's
estimate, ``β_MLE`` the IRLS fit on the same training data and ``I_n`` the Fisher information
of the training sample at ``β_MLE``.  The *reference sample* is the dataset's test sample: a
large fresh covariate sample from the same design where ``μ*`` is known exactly.

Every function below is pure (arrays in, numbers out).  :func:`glm_projection` and
:func:`calibration` fit a GLM: compiled from start to end over the IRLS row kernel
(:func:`simbench.kernels.metrics.glm_fit_small`), and through
:func:`simbench.fit.glm.fit_glm` where that iteration does not end cleanly.
:func:`cell_metrics` assembles the per-cell columns of a result row, with one compiled
pass over each sample for the mean-function metrics and what the cells of a dataset share
(the oracle AUC, the calibration's row constants) computed once per dataset;
:func:`reference_columns` gives the columns that every cell of a group shares.

Which coefficients
------------------
``β̂`` is always on the scale of the scenario's link.  A network without hidden layers (or a
deep linear one) whose output activation is the scenario's inverse link uses its own
coefficients.  Any other network (hidden layers, or an output activation that is not the
scenario's inverse link) is summarised by its *GLM projection*: the scenario's family and
link refitted by IRLS with the network's means ``μ̂`` on the reference sample as the
response (:func:`glm_projection`; exact for the first kind).  ``fit_glm`` accepts such
responses (non-integer counts, fractional binary responses), so no support check is
bypassed.  Margin losses, whose outputs are scores, use their own coefficients, or with
hidden layers the least-squares projection of the score (:func:`linear_projection`); only
their direction is compared.

When the truth is not a GLM
---------------------------
For a non-linear ``predictor`` (SCIENCE.md, claim 8) no coefficient vector is true.  The
coefficient metrics (``coef_*_truth``, the ``beta_true`` and ``crb_var`` columns) then
compare with the *pseudo-true* ``β``: the maximum-likelihood (KL) projection of the true
means onto the scenario's family and link, :func:`truth_projection`, computed once per
scenario on its population sample.  Everything about the mean function (``excess_deviance``,
``auc`` and ``auc_oracle``, calibration, balance, the deviances) still compares with the real
truth ``μ*``.  Two shared columns describe the misspecification: ``misspec_floor``, the
excess deviance of that best GLM, the level the GLM's ``excess_deviance`` tends to as n
grows (0 for a GLM truth), and ``nonlinear_share``, the share of ``Var(η*)`` no linear
predictor explains.

When a metric is NaN
--------------------
* ``auc``, ``auc_oracle``: the family is not binary (Bernoulli or binomial).
* ``coef_err_mle``, ``coef_z_mle``: the reference fit has no MLE (status other than "ok",
  e.g. separation), or the configuration has no coefficient vector.
* ``coef_err_truth``, ``coef_z_truth``: margin losses (their coefficients have no
  likelihood scale), or no coefficient vector.
* ``coef_*``: the configuration's coefficient vector could not be formed (its GLM projection
  failed, or the fit produced non-finite values).
* Deviance-based metrics (``excess_deviance``, ``dev_train``, ``dev_test``), ``eta_rmse`` and
  the calibration pair: some ``μ̂`` of the sample they use lies outside the family's mean
  domain (``Family.mu_valid``; e.g. ``μ̂ ≤ 0`` for Poisson, ``μ̂ ∉ (0, 1)`` for Bernoulli) or
  is not finite.  One invalid prediction makes the whole mean undefined; it is not dropped.
* Margin losses (hinge, squared hinge, logistic, perceptron): the network's output is a
  score, not a mean on the scale of any link, so only ``coef_cos_truth``, ``auc`` and
  ``auc_oracle`` are computed and every ``μ̂``-based metric is NaN.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simbench._jit import readonly
from simbench.kernels import metrics as _k

#: Scalar metric columns of a result row, in table order.
METRIC_COLUMNS: tuple[str, ...] = (
    "coef_err_truth",
    "coef_err_mle",
    "coef_z_mle",
    "coef_z_truth",
    "coef_cos_truth",
    "excess_deviance",
    "eta_rmse",
    "mu_rel_err",
    "dev_train",
    "dev_test",
    "balance",
    "balance_max",
    "calib_slope",
    "calib_intercept",
    "auc",
    "auc_oracle",
)

#: Scalar columns that describe the scenario's truth (the same in every cell of it).
TRUTH_COLUMNS: tuple[str, ...] = ("misspec_floor", "nonlinear_share")

#: List-valued per-cell columns used by the across-replicate tables.
LIST_COLUMNS: tuple[str, ...] = (
    "beta_hat",
    "beta_mle",
    "beta_true",
    "mle_se",
    "mle_se_sandwich",
    "crb_var",
)

#: One-line definitions, for ``simbench list metrics`` and the report legends.
METRIC_DESCRIPTIONS: Mapping[str, str] = {
    "coef_err_truth": "‖β̂ − β*‖₂ / ‖β*‖₂ (hidden layers: GLM projection of the network)",
    "coef_err_mle": "‖β̂ − β_MLE‖_∞",
    "coef_z_mle": "√((β̂ − β_MLE)ᵀ I_n (β̂ − β_MLE)), distance in standard-error units",
    "coef_z_truth": "√((β̂ − β*)ᵀ I_n(β*) (β̂ − β*)); for the MLE approximately χ with p+1 df",
    "coef_cos_truth": "cosine between the slope vectors of β̂ and β*",
    "excess_deviance": "mean over the reference sample of w d(μ*, μ̂) / φ",
    "eta_rmse": "RMSE of g(μ̂) − η* over the reference sample",
    "mu_rel_err": "mean |μ̂ − μ*| / |μ*| over the reference sample",
    "dev_train": "mean w d(y, μ̂) over the training sample",
    "dev_test": "mean w d(y, μ̂) over the test sample",
    "balance": "Σ w μ̂ / Σ w y − 1 on the training sample",
    "balance_max": "max_j |Σ w x̃_j (μ̂ − y)| / Σ w |x̃_j| |y| over the columns of x̃",
    "calib_slope": "slope b of the GLM y ~ a + b η̂ on the test sample (same family, link)",
    "calib_intercept": "intercept a of the GLM y ~ a + b η̂ on the test sample",
    "auc": "test AUC of μ̂ (binary families; ties count ½)",
    "auc_oracle": "test AUC of μ* (binary families)",
    "misspec_floor": "excess deviance of the best GLM: mean w d(μ*, μ_proj) / φ (GLM truth: 0)",
    "nonlinear_share": "share of Var(η*) that no linear predictor explains",
    "beta_hat": "the configuration's coefficients [intercept, x₁ … x_p]",
    "beta_mle": "the reference IRLS coefficients",
    "beta_true": "the true coefficients β* (a non-linear truth: the pseudo-true β)",
    "mle_se": "model-based standard errors of β_MLE",
    "mle_se_sandwich": "sandwich (robust) standard errors of β_MLE",
    "crb_var": "Cramér–Rao bound diag(I_n(β*)⁻¹) on the training design",
}

_EMPTY = np.empty(0, dtype=np.float64)
_EMPTY2 = np.empty((0, 0), dtype=np.float64)


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _weights_or_empty(weights) -> np.ndarray:
    return _EMPTY if weights is None else _f64(weights)


# ---------------------------------------------------------------------------------------
# coefficients
# ---------------------------------------------------------------------------------------


def _ro(a) -> np.ndarray:
    """``a`` as a read-only float64 C array: itself, a read-only view, or a converted copy.

    The metric kernels are always called with read-only arrays (outputs aside), whether
    they come from a dataset (read-only) or a fit (writable): Numba compiles one
    specialisation per read-only flag, and one is enough.
    """
    if (
        type(a) is np.ndarray
        and not a.flags.writeable
        and a.dtype == np.float64
        and a.flags.c_contiguous
    ):
        return a  # a dataset's arrays
    return readonly(_f64(a))


def _coef_errors(beta_hat, beta_true, beta_mle=None, info_mle=None, info_truth=None):
    return _k.coefficient_errors(
        _ro(beta_hat),
        _ro(beta_true),
        _ro(_EMPTY if beta_mle is None else beta_mle),
        _ro(_EMPTY2 if info_mle is None else info_mle),
        _ro(_EMPTY2 if info_truth is None else info_truth),
    )


def coef_err_truth(beta_hat, beta_true) -> float:
    """Relative Euclidean error against the truth.

    .. math:: \\lVert \\hat\\beta - \\beta^* \\rVert_2 / \\lVert \\beta^* \\rVert_2

    Both vectors are ``[intercept, x₁ … x_p]``.  NaN when ``β* = 0``.
    """
    return float(_coef_errors(beta_hat, beta_true)[0])


def coef_err_mle(beta_hat, beta_mle) -> float:
    """Largest absolute difference from the MLE.

    .. math:: \\lVert \\hat\\beta - \\hat\\beta_{MLE} \\rVert_\\infty
    """
    return float(_coef_errors(beta_hat, beta_mle, beta_mle)[1])


def coef_z_mle(beta_hat, beta_mle, fisher_information) -> float:
    """Distance from the MLE in standard-error units.

    .. math:: z = \\sqrt{(\\hat\\beta - \\hat\\beta_{MLE})^\\top I_n
              (\\hat\\beta - \\hat\\beta_{MLE})}

    with ``I_n = X̃ᵀ W X̃ / φ`` the Fisher information of the training sample at
    ``β_MLE``.  For scale: the MLE's own sampling error, measured the same way against the
    truth, is ``z² ≈ χ²_{p+1}``; a configuration at ``z ≪ 1`` from the MLE is therefore
    statistically indistinguishable from it.  NaN when the quadratic form is not finite.
    """
    return float(_coef_errors(beta_hat, beta_mle, beta_mle, fisher_information)[2])


def coef_z_truth(beta_hat, beta_true, fisher_truth) -> float:
    """Distance from the truth in standard-error units at the truth.

    .. math:: z^* = \\sqrt{(\\hat\\beta - \\beta^*)^\\top I_n(\\beta^*) (\\hat\\beta - \\beta^*)}

    with ``I_n(β*)`` the expected information of the training design at the truth (true
    ``φ``).  For the MLE, ``z*²`` is asymptotically ``χ²_{p+1}`` (claim 7 of SCIENCE.md):
    its Monte Carlo mean is ``p + 1`` at small ``p/n`` and larger where the MLE is biased.
    """
    return float(_coef_errors(beta_hat, beta_true, info_truth=fisher_truth)[3])


def coef_cos_truth(beta_hat, beta_true) -> float:
    """Cosine between the slope vectors (intercepts dropped).

    .. math:: \\cos\\angle = \\frac{\\hat\\beta_{1:p}\\cdot\\beta^*_{1:p}}
              {\\lVert\\hat\\beta_{1:p}\\rVert \\, \\lVert\\beta^*_{1:p}\\rVert}

    Scale-free, so it compares direction recovery of losses whose coefficients have no
    likelihood scale (hinge, perceptron, squared error on binary data).  NaN when either
    slope vector is zero.
    """
    return float(_coef_errors(beta_hat, beta_true)[4])


# ---------------------------------------------------------------------------------------
# mean function
# ---------------------------------------------------------------------------------------


def _all_valid(family, mu: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(mu)) and np.all(family.mu_valid(mu)))


def mean_deviance(family, y, mu, weights=None) -> float:
    """Mean deviance over a sample, :math:`\\frac1n \\sum_i w_i\\, d(y_i, \\hat\\mu_i)`.

    Not divided by ``φ``: the training/test gap estimates the optimism ``2φ(p+1)/n``.
    NaN when any ``μ̂`` is outside the family's mean domain.
    """
    mu = _f64(mu)
    if mu.size == 0 or not _all_valid(family, mu):
        return float("nan")
    return float(family.deviance(_f64(y), mu, weights=weights)) / mu.size


def excess_deviance(family, mu_true, mu_hat, phi: float, weights=None) -> float:
    """Exact excess risk of a mean function on the reference sample.

    .. math:: \\mathrm{ED} = \\frac{1}{n}\\sum_i \\frac{w_i\\, d(\\mu^*_i, \\hat\\mu_i)}{\\varphi}

    The unit deviance with ``y := μ*`` is twice the Kullback–Leibler divergence from the
    true to the fitted distribution (per unit of ``1/φ``), so no test noise enters.  For the
    MLE, ``n_train · ED`` is approximately ``χ²_{p+1}`` distributed.  The deviance is
    evaluated in its general form, so a fractional ``y = μ*`` of a binary family is exact.
    NaN when any ``μ̂`` is outside the family's mean domain.
    """
    mu_hat = _f64(mu_hat)
    if mu_hat.size == 0 or not _all_valid(family, mu_hat):
        return float("nan")
    return float(family.deviance(_f64(mu_true), mu_hat, weights=weights)) / (phi * mu_hat.size)


def eta_rmse(eta_hat, eta_true) -> float:
    """Root mean square error on the linear-predictor scale.

    .. math:: \\sqrt{\\tfrac1n \\textstyle\\sum_i (\\hat\\eta_i - \\eta^*_i)^2}
    """
    return float(_k.rmse_diff(_f64(eta_hat), _f64(eta_true)))


def mu_rel_err(mu_hat, mu_true) -> float:
    """Mean relative error of the mean, :math:`\\frac1n\\sum_i |\\hat\\mu_i-\\mu^*_i| / |\\mu^*_i|`.

    ``|μ*|`` in the denominator so a Gaussian mean that crosses zero still gives a number
    (a large one, near such points).
    """
    return float(_k.mean_abs_rel_diff(_f64(mu_hat), _f64(mu_true)))


def balance(y, mu_hat, weights=None) -> float:
    """Balance on the training data, :math:`\\sum_i w_i\\hat\\mu_i / \\sum_i w_i y_i - 1`.

    Zero (to rounding) for the MLE under the canonical link, whose intercept score equation
    is exactly ``Σ w (y − μ̂) = 0``.
    """
    return float(_k.weighted_sum_ratio(_f64(mu_hat), _f64(y), _weights_or_empty(weights))) - 1.0


def balance_max(X, y, mu_hat, weights=None) -> float:
    """Largest relative imbalance of the score equations over the columns of ``x̃ = (1, x)``.

    .. math:: \\max_j \\frac{|\\sum_i w_i \\tilde x_{ij} (\\hat\\mu_i - y_i)|}
              {\\sum_i w_i |\\tilde x_{ij}|\\, |y_i|}

    The intercept column gives ``|balance|``; a 0/1 dummy column gives the balance within
    its level, so for a dummy-coded factor this is the worst per-level balance.  Every term
    is zero (to rounding) for a canonical-link MLE, whose score equations are
    ``X̃ᵀ W (y − μ̂) = 0`` column by column.  Columns with a zero denominator are ignored.
    """
    return float(
        _k.max_column_imbalance(_f64(X), _f64(y), _f64(mu_hat), _weights_or_empty(weights))
    )


def auc(score, y, weights=None) -> float:
    """Area under the ROC curve (weighted Mann–Whitney; tied scores count ½).

    .. math:: \\mathrm{AUC} = \\frac{\\sum_{i,j} w_i y_i\\, w_j (1-y_j)
              \\left([s_i > s_j] + \\tfrac12 [s_i = s_j]\\right)}
              {\\sum_i w_i y_i \\sum_j w_j(1-y_j)}

    ``y`` is a 0/1 label or a binomial proportion (with ``w`` the trials).  O(n log n).
    NaN if a score is NaN or a class is empty.
    """
    return float(_k.auc_score(_ro(score), _ro(y), _ro(_weights_or_empty(weights))))


# ---------------------------------------------------------------------------------------
# GLM fits used by the metrics
# ---------------------------------------------------------------------------------------


def calibration(y, eta_hat, family, link, weights=None) -> tuple[float, float]:
    """Calibration slope and intercept: the GLM ``y ~ a + b η̂`` of the same family and link.

    .. math:: g(E[y \\mid \\hat\\eta]) = a + b\\,\\hat\\eta

    ``η̂`` is the prediction on the link scale (offset included, so no offset is fitted).
    A perfectly calibrated predictor has ``b = 1, a = 0``; ``b < 1`` means over-dispersed
    predictions (overfitting), ``b > 1`` shrunken ones.  Returns ``(b, a)``; NaN when the
    calibration GLM has no maximum-likelihood fit (``fit_glm``'s status is not "ok") or
    ``η̂`` is not finite.

    The fit starts from ``(a, b) = (0, 1)``, the predictor itself, and runs compiled
    (:func:`_small_fit`) to within about ``1e-13`` standard errors of the maximum; where
    that iteration does not converge cleanly, ``fit_glm`` decides (and stops within its
    ``1e-10``).
    """
    eta_hat = _f64(eta_hat)
    if eta_hat.size == 0 or not np.all(np.isfinite(eta_hat)):
        return float("nan"), float("nan")
    w = _EMPTY if weights is None else _f64(weights)
    fit = _small_fit(eta_hat[:, None], _f64(y), family, link, w, _EMPTY, np.array([0.0, 1.0]))
    if fit is not None:
        return float(fit[1]), float(fit[0])
    return _calibration_glm(y, eta_hat, family, link, weights)


def _calibration_glm(y, eta_hat, family, link, weights) -> tuple[float, float]:
    from simbench.fit.glm import fit_glm

    fit = fit_glm(eta_hat[:, None], _f64(y), family=family, link=link, weights=weights)
    if fit.status != "ok":
        return float("nan"), float("nan")
    return float(fit.coef[1]), float(fit.coef[0])


def glm_projection(X, mu_hat, family, link, weights=None, offset=None) -> np.ndarray | None:
    """Coefficients of the GLM closest to a mean function on a covariate sample.

    Solves the quasi-likelihood score equations of the scenario's family and link with the
    network's predictions as the response,

    .. math:: \\sum_i w_i \\frac{(\\hat\\mu_i - h(\\tilde x_i^\\top b))\\, h'(\\tilde x_i^\\top b)}
              {V(h(\\tilde x_i^\\top b))}\\, \\tilde x_i = 0,

    i.e. IRLS with ``y := μ̂`` (the minimiser of ``Σ w d(μ̂, h(x̃ᵀb))``, the KL projection of
    the network onto the GLM).  Exact for a network without hidden layers whose output is
    the scenario's inverse link: its own coefficients solve these equations.  Non-integer
    counts and fractional binary responses are accepted (only the deviance's domain is
    checked).  The fit runs compiled from ``fit_glm``'s starting values
    (:func:`_small_fit`), and through ``fit_glm`` where that iteration does not converge
    cleanly.  Returns None when ``μ̂`` is outside the mean domain or the fit does not
    converge.
    """
    mu_hat = _f64(mu_hat)
    if mu_hat.size == 0 or not _all_valid(family, mu_hat):
        return None
    X = _f64(X)
    w = _EMPTY if weights is None else _f64(weights)
    off = _EMPTY if offset is None else _f64(offset)
    with np.errstate(all="ignore"):
        beta = _small_fit(X, mu_hat, family, link, w, off, np.full(X.shape[1] + 1, np.nan))
    if beta is not None:
        return beta if np.all(np.isfinite(beta)) else None
    from simbench.fit.glm import fit_glm

    # an exact GLM mean gives a zero Pearson dispersion, hence an infinite information:
    # irrelevant here, only the coefficients are used
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = fit_glm(X, mu_hat, family=family, link=link, weights=weights, offset=offset)
    if fit.status != "ok" or not np.all(np.isfinite(fit.coef)):
        return None
    return np.asarray(fit.coef, dtype=np.float64)


# the compiled refits stop where the next step is below 1e-13 standard errors: tighter
# than fit_glm's default (1e-10), which can leave a few 1e-11 standard errors, and it costs
# no extra pass once Newton's method converges quadratically
_FIT_TOL = 1e-13
_FIT_MAX_ITER = 100


@dataclass(frozen=True)
class _FitSetup:
    """The arguments of a compiled refit that depend only on the family and link."""

    fcode: int
    fpar: float
    lcode: int
    lpar: float
    newton: bool  # the link is not canonical: Newton's method near the optimum
    separation: str | None  # fit_glm's separation check applies (its kind)


def _fit_setup(family, link) -> _FitSetup:
    from simbench.fit.separation import separation_kind

    return _FitSetup(
        int(family.code),
        float(family.param),
        int(link.code),
        float(link.param),
        family.canonical_link != link,
        separation_kind(family, link),
    )


def _small_fit(X, y, family, link, weights, offset, beta, ly=None, setup=None):
    """``fit_glm``'s estimate for a GLM with few coefficients, or None to ask ``fit_glm``.

    :func:`simbench.kernels.metrics.glm_fit_small` iterates from ``beta`` (a NaN first
    entry: from ``fit_glm``'s starting means) over ``fit_glm``'s row kernel.  Its estimate
    is returned only when the iteration converged and ``fit_glm``'s separation check would
    not look further (it looks when a fitted mean of a boundary response is near the
    boundary: the kernel reports the extreme such means); otherwise None, and ``fit_glm``
    gives the status with its reasons.  ``X`` holds no intercept column; ``y``,
    ``weights``, ``offset`` are float64 (empty: none); ``ly`` (``irls.row_constants`` of
    ``y``) and ``setup`` (:func:`_fit_setup`) may be given when already known.
    """
    from simbench.kernels.irls import row_constants

    if setup is None:
        setup = _fit_setup(family, link)
    if ly is None:
        ly = row_constants(setup.fcode, setup.lcode, y)
    bounds = np.empty(5)
    disp_rows = 0
    if family.has_dispersion:
        disp_rows = y.shape[0] if weights.size == 0 else int(np.count_nonzero(weights > 0.0))
    # the data read-only and ly writable, as fit_glm passes them to the row kernel: the
    # reference fit has compiled that specialisation of it already
    outcome, _ = _k.glm_fit_small(
        _ro(X), 1, setup.fcode, setup.fpar, setup.lcode, setup.lpar, _ro(y), _ro(weights),
        _ro(offset), ly, beta, _FIT_TOL, _FIT_MAX_ITER, disp_rows, setup.newton, bounds,
    )  # fmt: skip
    if outcome != _k.FIT_CONVERGED:
        return None
    if setup.separation is not None:
        from simbench.fit.separation import suspect_separation

        # the check on the two extreme means decides as it would on every row
        ybar, mu0, mu1, has0, has1 = bounds
        if suspect_separation(
            setup.separation,
            np.array([0.0, 1.0]),
            np.array([mu0, mu1]),
            np.array([has0 > 0.0, has1 > 0.0]),
            float(ybar),
        ):
            return None
    return beta


def linear_projection(X, score, weights=None, offset=None) -> np.ndarray | None:
    """Least-squares projection of a score onto ``x̃``.

    .. math:: \\arg\\min_b \\sum_i w_i (s_i - o_i - \\tilde x_i^\\top b)^2


    The coefficients of a margin-loss network with hidden layers, whose output is a score
    rather than a mean; only their direction (``coef_cos_truth``) is used.
    """
    s = _f64(score)
    if offset is not None:
        s = s - _f64(offset)
    if s.size == 0 or not np.all(np.isfinite(s)):
        return None
    X = _f64(X)
    Xt = np.column_stack([np.ones(X.shape[0]), X])
    if weights is not None:
        r = np.sqrt(_f64(weights))
        Xt, s = Xt * r[:, None], s * r
    coef, *_ = np.linalg.lstsq(Xt, s, rcond=None)
    return coef


def fisher_information(X, beta, family, link, phi: float, weights=None, offset=None) -> np.ndarray:
    """Expected (Fisher) information of a GLM at ``β`` on the design ``X``.

    .. math:: I_n(\\beta) = \\sum_i \\frac{w_i\\, h'(\\eta_i)^2}{\\varphi\\, V(\\mu_i)}\\,
              \\tilde x_i \\tilde x_i^\\top, \\qquad \\eta_i = \\tilde x_i^\\top\\beta + o_i,
              \\ \\mu_i = h(\\eta_i).
    """
    X = _f64(X)
    eta = X @ _f64(beta)[1:] + float(beta[0])
    if offset is not None:
        eta = eta + _f64(offset)
    mu = link.h(eta)
    c = link.h1(eta) ** 2 / (phi * family.variance(mu))
    if weights is not None:
        c = c * _f64(weights)
    out = np.empty((X.shape[1] + 1, X.shape[1] + 1), dtype=np.float64)
    return _k.gram_with_intercept(X, _f64(c), out)


def crb_var(X, beta_true, family, link, phi: float, weights=None, offset=None) -> np.ndarray:
    """Cramér–Rao bound of each coefficient: :math:`\\mathrm{diag}(I_n(\\beta^*)^{-1})`.

    The expected information at the truth on the training design (the bound for unbiased
    estimators given these covariates).  NaN where the information is singular.
    """
    info = fisher_information(X, beta_true, family, link, phi, weights=weights, offset=offset)
    return _diag_inverse(info)


# ---------------------------------------------------------------------------------------
# assembly of a result row
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What the per-cell metrics need from a group's reference quantities.

    ``coef`` and ``fisher_information`` (``I_n`` at ``β_MLE``) are None when the MLE does
    not exist or could not be computed (``status`` says why); the coefficient-vs-MLE
    metrics are then NaN.  ``fisher_truth`` is ``I_n(β*)``, the expected information of
    the training design at the truth (None only if it could not be formed).
    """

    status: str
    coef: np.ndarray | None = None
    fisher_information: np.ndarray | None = None
    fisher_truth: np.ndarray | None = None


def truth_information(data, beta=None) -> np.ndarray:
    """``I_n(β*)``: :func:`fisher_information` at the truth on the training design, true φ.

    ``beta`` defaults to :func:`coefficient_target` (``β*``, or the pseudo-true ``β`` of a
    non-linear truth).
    """
    return fisher_information(
        data.X,
        coefficient_target(data) if beta is None else beta,
        data.family,
        data.link,
        data.phi,
        weights=data.weights,
        offset=data.offset,
    )


def _diag_inverse(info: np.ndarray) -> np.ndarray:
    try:
        return np.diag(np.linalg.inv(info)).copy()
    except np.linalg.LinAlgError:
        return np.full(info.shape[0], np.nan)


def reference_columns(
    data, fit=None, status: str | None = None
) -> tuple[Reference, dict[str, Any]]:
    """The reference quantities of a group and the row columns every cell shares.

    Columns: ``beta_true`` (:func:`coefficient_target`: ``β*``, or the pseudo-true ``β``
    of a non-linear truth); ``crb_var``, the Cramér–Rao bound ``diag(I_n(β*)⁻¹)`` on the
    training design with the true ``φ``; ``misspec_floor`` and ``nonlinear_share``
    (:func:`truth_projection`); ``beta_mle``, ``mle_se`` (model-based,
    ``√diag(φ̂ I⁻¹)``) and ``mle_se_sandwich`` (``√diag(A⁻¹BA⁻¹)``) of the reference fit,
    recorded whatever its status (filter on ``mle_status`` when aggregating); and
    ``mle_status``.  ``fit`` None (the fit raised) gives empty reference lists and
    ``mle_status = status or "error"``.

    Returns
    -------
    (Reference, dict)
    """
    target = coefficient_target(data)
    info_truth = truth_information(data, target)
    floor, share = _truth_descriptors(data)
    cols: dict[str, Any] = {
        "beta_true": _f64(target).tolist(),
        "crb_var": _diag_inverse(info_truth).tolist(),
        "misspec_floor": floor,
        "nonlinear_share": share,
    }
    if fit is None:
        cols.update(beta_mle=[], mle_se=[], mle_se_sandwich=[], mle_status=status or "error")
        return Reference(status=cols["mle_status"], fisher_truth=info_truth), cols
    sandwich = np.sqrt(np.clip(np.diag(_f64(fit.covariance_sandwich)), 0.0, None))
    cols.update(
        beta_mle=_f64(fit.coef).tolist(),
        mle_se=_f64(fit.bse).tolist(),
        mle_se_sandwich=sandwich.tolist(),
        mle_status=fit.status,
    )
    if fit.status == "ok":
        ref = Reference(
            status="ok",
            coef=_f64(fit.coef).copy(),
            fisher_information=_f64(fit.fisher_information).copy(),
            fisher_truth=info_truth,
        )
    else:
        ref = Reference(status=fit.status, fisher_truth=info_truth)
    return ref, cols


def _nan_row() -> dict[str, float]:
    return dict.fromkeys(METRIC_COLUMNS, float("nan"))


def cell_metrics(
    data,
    mu_train,
    mu_test,
    *,
    coef=None,
    margin: bool = False,
    reference: Reference | None = None,
) -> dict[str, Any]:
    """Every scalar metric of one configuration on one dataset, plus ``beta_hat``.

    Parameters
    ----------
    data : Dataset
        The simulated dataset (training sample, reference/test sample, truth).
    mu_train, mu_test : ndarray
        The configuration's predictions (offsets included) on the training and test
        covariates: means for likelihood/squared-error losses, scores for margin losses.
    coef : ndarray, optional
        The configuration's own coefficients ``[intercept, x₁ … x_p]`` when they are on the
        scale of the scenario's link (no hidden layer and output = scenario inverse link),
        or, for margin losses, the coefficients of its score.  When None the coefficients
        are the GLM projection of ``mu_test`` (:func:`glm_projection`), or for margin losses
        the least-squares projection of the score (:func:`linear_projection`).
    margin : bool
        The loss is a margin loss: only ``coef_cos_truth``, ``auc``, ``auc_oracle``.
    reference : Reference, optional
        The reference MLE; None or without ``coef`` makes the ``coef_*_mle`` metrics NaN.

    The coefficient metrics against the truth compare with :func:`coefficient_target`
    (the pseudo-true ``β`` when the truth is not a GLM); the mean-function metrics with
    the true means.

    Returns
    -------
    dict
        The :data:`METRIC_COLUMNS` and ``beta_hat`` (a list; empty when unavailable).
    """
    family, link = data.family, data.link
    const = _sample_constants(data)
    mu_train, mu_test = _f64(mu_train), _f64(mu_test)
    row: dict[str, Any] = _nan_row()

    if family.is_binary:
        row["auc"] = auc(mu_test, data.y_test, data.weights_test)
        row["auc_oracle"] = const.auc_oracle

    if coef is not None:
        beta_hat = _f64(coef)
    elif margin:
        beta_hat = linear_projection(data.X_test, mu_test, data.weights_test, data.offset_test)
    else:
        beta_hat = glm_projection(
            data.X_test, mu_test, family, link, data.weights_test, data.offset_test
        )
    if beta_hat is not None and not np.all(np.isfinite(beta_hat)):
        beta_hat = None
    row["beta_hat"] = [] if beta_hat is None else beta_hat.tolist()

    if beta_hat is not None:
        has_mle = reference is not None and reference.coef is not None
        truth_info = None if reference is None else reference.fisher_truth
        err_truth, err_mle, z_mle, z_truth, cos_truth = _coef_errors(
            beta_hat,
            coefficient_target(data),
            reference.coef if has_mle else None,
            reference.fisher_information if has_mle else None,
            truth_info,
        )
        row["coef_cos_truth"] = cos_truth
        if not margin:
            row["coef_err_truth"] = err_truth
            if truth_info is not None:
                row["coef_z_truth"] = z_truth
            if has_mle:
                row["coef_err_mle"] = err_mle
                row["coef_z_mle"] = z_mle
    if margin:
        return row

    # one pass over each sample; the sums are those of mean_deviance, excess_deviance,
    # eta_rmse, mu_rel_err, balance and balance_max, bit for bit
    n, n_test = mu_train.shape[0], mu_test.shape[0]
    eta_hat = np.empty(n_test)
    (valid, dev, excess, eta_sq, rel, train_valid, train_dev, bal, bal_max) = (
        _k.mean_function_passes(
            const.fcode, const.fpar, const.lcode, const.lpar, _ro(mu_test),
            _ro(data.mu_test), _ro(data.eta_test), _ro(data.y_test), _ro(data.weights_test),
            eta_hat, _ro(data.X), _ro(data.y), _ro(mu_train), _ro(data.weights),
        )
    )  # fmt: skip
    row["mu_rel_err"] = rel / n_test
    row["balance"] = bal
    row["balance_max"] = bal_max
    if train_valid and n > 0:
        row["dev_train"] = train_dev / n
    if valid and n_test > 0:
        row["dev_test"] = dev / n_test
        row["excess_deviance"] = excess / (data.phi * n_test)
        row["eta_rmse"] = math.sqrt(eta_sq / n_test)
        if np.all(np.isfinite(eta_hat)):
            fit = _small_fit(
                eta_hat[:, None], data.y_test, family, link, data.weights_test, _EMPTY,
                np.array([0.0, 1.0]), const.ly_test, const.setup,
            )  # fmt: skip
            if fit is not None:
                row["calib_slope"], row["calib_intercept"] = float(fit[1]), float(fit[0])
            else:
                row["calib_slope"], row["calib_intercept"] = _calibration_glm(
                    data.y_test, eta_hat, family, link, data.weights_test
                )
    return row


@dataclass(frozen=True)
class _SampleConstants:
    """What the metrics of every configuration on one dataset share: the kernel codes,
    the oracle AUC and, for the calibration refit, its setup and the IRLS row constants
    of the test responses."""

    fcode: int
    fpar: float
    lcode: int
    lpar: float
    auc_oracle: float
    ly_test: np.ndarray
    setup: _FitSetup


# per dataset, for as long as the dataset lives (the cells of a group share one)
_CONSTANTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sample_constants(data) -> _SampleConstants:
    try:
        return _CONSTANTS[data]
    except (KeyError, TypeError):
        pass
    from simbench.kernels.irls import row_constants

    family, link = data.family, data.link
    fcode, lcode = int(family.code), int(link.code)
    const = _SampleConstants(
        fcode=fcode,
        fpar=float(family.param),
        lcode=lcode,
        lpar=float(link.param),
        auc_oracle=auc(data.mu_test, data.y_test, data.weights_test)
        if family.is_binary
        else float("nan"),
        ly_test=row_constants(fcode, lcode, _f64(data.y_test)),
        setup=_fit_setup(family, link),
    )
    with contextlib.suppress(TypeError):  # a dataset that cannot be weakly referenced
        _CONSTANTS[data] = const
    return const


# ---------------------------------------------------------------------------------------
# the best GLM of a truth that is not one
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Projection:
    """The GLM closest to a scenario's truth: its KL (maximum-likelihood) projection.

    Attributes
    ----------
    beta : numpy.ndarray
        ``[intercept, x₁ … x_p]``: the pseudo-true coefficients, the limit of the GLM's
        maximum-likelihood estimate as n grows (``β*`` itself for a GLM truth).
    misspec_floor : float
        Excess deviance of that GLM against the true means, on the footing of the
        ``excess_deviance`` metric: ``mean w d(μ*, μ_proj) / φ`` (0 for a GLM truth).
    nonlinear_share : float
        Share of ``Var(η*)`` that no linear predictor explains (0 for a GLM truth).
    sample_size : int
        Rows of the population sample it was computed on (0: exact, a GLM truth).
    """

    beta: np.ndarray
    misspec_floor: float
    nonlinear_share: float
    sample_size: int


def kl_projection(X, mu, family, link, weights=None, offset=None, phi: float = 1.0):
    """The GLM of a family and link closest to given means: ``(beta, excess deviance)``.

    Fits the GLM by IRLS with the means as the response (:func:`glm_projection`): the
    minimiser of the Kullback–Leibler divergence from the distribution with means ``μ`` to
    the GLM's, ``Σ w d(μ, h(x̃ᵀb + o))``.  Returns the coefficients
    ``[intercept, x₁ … x_p]`` and their excess deviance ``mean w d(μ, μ_proj) / φ``.

    Raises
    ------
    ValidationError
        If the means are outside the family's domain or the fit does not converge.
    """
    from simbench.errors import ValidationError
    from simbench.truth import rowdot

    beta = glm_projection(X, mu, family, link, weights, offset)
    if beta is None:
        raise ValidationError(
            f"the GLM projection ({family.name}, link {link.name}) of the means did not "
            f"converge, or the means leave the family's domain"
        )
    eta = beta[0] + rowdot(_f64(X), beta[1:])
    if offset is not None:
        eta = eta + _f64(offset)
    with np.errstate(all="ignore"):
        mu_proj = np.asarray(link.h(eta), dtype=np.float64)
        floor = excess_deviance(family, mu, mu_proj, phi, weights)
    return beta, floor


_PROJECTIONS: dict[tuple, Projection] = {}


def truth_projection(scenario) -> Projection:
    """The best GLM of a scenario's truth, computed once per process and scenario.

    For a GLM truth, ``β*`` with floor 0 (exactly, with no fit).  Otherwise
    :func:`kl_projection` of the true means on the scenario's population sample
    (:func:`simbench.data.population_sample`: fixed, 2^18 rows for up to 16 covariates),
    with the scenario's weights (binomial trials), offsets (exposures) and dispersion.

    Raises
    ------
    ValidationError
        For an invalid scenario or a projection that cannot be computed.
    """
    from simbench.data import _as_scenario, population_sample
    from simbench.truth import _truth_key, true_predictor

    s = _as_scenario(scenario)
    key = _truth_key(s)
    hit = _PROJECTIONS.get(key)
    if hit is not None:
        return hit
    tp = true_predictor(s)
    if tp.is_linear:
        hit = Projection(beta=tp.beta, misspec_floor=0.0, nonlinear_share=0.0, sample_size=0)
    else:
        family, link = s.get_family(), s.get_link()
        X, offset = population_sample(s)
        with np.errstate(all="ignore"):
            mu = np.asarray(link.h(tp.eta(X) + offset), dtype=np.float64)
        weights = np.full(X.shape[0], float(s.trials)) if s.family == "binomial" else None
        phi = float(s.dispersion) if family.has_dispersion else 1.0
        beta, floor = kl_projection(X, mu, family, link, weights, offset, phi)
        beta = _f64(beta).copy()
        beta.setflags(write=False)
        hit = Projection(
            beta=beta,
            misspec_floor=float(floor),
            nonlinear_share=tp.nonlinear_share,
            sample_size=X.shape[0],
        )
    if len(_PROJECTIONS) >= 256:
        _PROJECTIONS.clear()
    _PROJECTIONS[key] = hit
    return hit


def _nonlinear_scenario(data):
    """The scenario of a dataset whose truth is not a GLM, else None."""
    s = getattr(data, "scenario", None)
    if s is None or getattr(s, "predictor", "linear") == "linear" or s.nonlinearity == 0.0:
        return None
    return s


def coefficient_target(data) -> np.ndarray:
    """What a configuration's coefficients are compared with: the true ``β*`` of a GLM
    truth (``data.beta``), the pseudo-true ``β`` (:func:`truth_projection`) otherwise."""
    s = _nonlinear_scenario(data)
    return data.beta if s is None else truth_projection(s).beta


def _truth_descriptors(data) -> tuple[float, float]:
    """``(misspec_floor, nonlinear_share)`` of a dataset's truth."""
    s = _nonlinear_scenario(data)
    if s is None:
        return 0.0, 0.0
    proj = truth_projection(s)
    return proj.misspec_floor, proj.nonlinear_share
