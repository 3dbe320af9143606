"""The reference GLM, ``simbench.fit_glm``: against statsmodels, against a plain NumPy IRLS
(``reference.glm``), and against exact properties (noise-free recovery, frequency weights,
offsets, the chi-square law of the MLE), plus separation, rank deficiency and domain trouble.

Test data are drawn here with NumPy from a known GLM on covariates uniform on [-1, 1], with
the linear predictor kept well inside each link's domain (``make_data``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
import zlib

import numpy as np
import pytest
from reference.glm import irls as reference_irls

from simbench import families, links
from simbench.errors import ValidationError
from simbench.fit.glm import GLMFit, fit_glm


class _Statsmodels:
    """``statsmodels.api``, imported when a test first uses it: without statsmodels the
    comparisons with it are skipped and every other test of ``fit_glm`` still runs."""

    def __getattr__(self, name):
        if name.startswith("_") or name.startswith("pytest"):
            raise AttributeError(name)  # what pytest looks up on every object it collects
        return getattr(pytest.importorskip("statsmodels.api"), name)


sm = _Statsmodels()

POWER = 1.0 / 3.0  # the exponent used for "power" links
PHI = {"gaussian": 0.25, "gamma": 0.5, "inverse_gaussian": 0.2, "tweedie": 1.0}


def _link(name: str):
    return links.get("power", power=POWER) if name == "power" else links.get(name)


PAIRS = [(fam.name, name) for fam in families.REGISTRY for name in fam.links]
CANONICAL = [
    ("gaussian", "identity"),
    ("bernoulli", "logit"),
    ("binomial", "logit"),
    ("poisson", "log"),
    ("gamma", "inverse"),
    ("inverse_gaussian", "inverse_squared"),
]


def sample(fam, mu, phi, rng, trials=None):
    """Exact draws from ``fam`` at means ``mu`` (binomial: proportions out of ``trials``)."""
    name = fam.name
    if name == "gaussian":
        return rng.normal(mu, math.sqrt(phi))
    if name == "bernoulli":
        return (rng.random(mu.size) < mu).astype(float)
    if name == "binomial":
        return rng.binomial(trials.astype(np.int64), mu) / trials
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "gamma":
        return rng.gamma(1.0 / phi, mu * phi)
    if name == "inverse_gaussian":
        return rng.wald(mu, 1.0 / phi)
    if name == "negative_binomial":
        k = 1.0 / fam.param
        return rng.poisson(rng.gamma(k, mu / k)).astype(float)
    if name == "tweedie":
        p = fam.param
        counts = rng.poisson(mu ** (2 - p) / (phi * (2 - p)))
        shape = (2 - p) / (p - 1)
        scale = phi * (p - 1) * mu ** (p - 1)
        return np.where(counts > 0, rng.gamma(np.maximum(counts, 1) * shape, scale), 0.0)
    raise AssertionError(name)


def make_data(family, link, n, p, rng, spread=0.4):
    """``(X, y, weights, beta, mu)`` from a GLM whose means stay within about ``spread`` (in
    relative terms; binary: +-0.2) of a centre well inside the domain."""
    fam = families.get(family)
    lnk = _link(link) if isinstance(link, str) else link
    center = 0.4 if fam.is_binary else 2.0
    eta_c = float(lnk.g(np.array([center]))[0])
    slope = (0.2 if fam.is_binary else spread * center) / abs(float(lnk.h1(np.array([eta_c]))[0]))
    X = rng.uniform(-1.0, 1.0, (n, p))
    beta = np.r_[eta_c, slope * np.array([(-1.0) ** j for j in range(p)]) / p]
    eta = beta[0] + X @ beta[1:]
    mu = lnk.h(eta)
    assert fam.mu_valid(mu).all() and lnk.eta_valid(eta).all()
    trials = rng.integers(1, 11, n).astype(float) if fam.name == "binomial" else None
    y = sample(fam, mu, PHI.get(fam.name, 1.0), rng, trials)
    return X, y, trials, beta, mu


def sm_family(fam, lnk):
    L = sm.families.links
    table = {
        "identity": L.Identity,
        "log": L.Log,
        "logit": L.Logit,
        "probit": L.Probit,
        "cloglog": L.CLogLog,
        "loglog": L.LogLog,
        "cauchit": L.Cauchy,
        "inverse": L.InversePower,
        "inverse_squared": L.InverseSquared,
        "sqrt": L.Sqrt,
    }
    link = L.Power(lnk.param) if lnk.name == "power" else table[lnk.name]()
    F = sm.families
    kw = {"check_link": False}
    if fam.name == "gaussian":
        return F.Gaussian(link, **kw)
    if fam.is_binary:
        return F.Binomial(link, **kw)
    if fam.name == "poisson":
        return F.Poisson(link, **kw)
    if fam.name == "gamma":
        return F.Gamma(link, **kw)
    if fam.name == "inverse_gaussian":
        return F.InverseGaussian(link, **kw)
    if fam.name == "negative_binomial":
        return F.NegativeBinomial(link, alpha=fam.param, **kw)
    return F.Tweedie(link, var_power=fam.param, **kw)


def sm_fit(X, y, fam, lnk, weights=None, offset=None, constant=True):
    """statsmodels' IRLS fit, and a Newton polish from it (statsmodels' IRLS stalls about
    1e-8 short of the optimum for some non-canonical links, where Fisher scoring is slow)."""
    exog = sm.add_constant(X, has_constant="add") if constant else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y, exog, family=sm_family(fam, lnk), var_weights=weights, offset=offset)
        irls = model.fit(tol=1e-14, maxiter=1000)
        newton = model.fit(start_params=irls.params, method="newton", tol=1e-14, maxiter=100)
    return irls, newton


# ---- agreement with statsmodels and the NumPy reference --------------------------------------


@pytest.mark.parametrize(("family", "link"), PAIRS)
def test_matches_statsmodels_and_reference(family, link):
    rng = np.random.default_rng(zlib.crc32(f"{family}-{link}".encode()))
    fam, lnk = families.get(family), _link(link)
    X, y, w, _beta, _mu = make_data(fam, lnk, 400, 3, rng)
    fit = fit_glm(X, y, fam, lnk, weights=w)
    assert fit.status == "ok" and fit.converged, fit.message
    ref = reference_irls(X, y, fam.code, fam.param, lnk.name, lnk.param, weights=w)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fit.deviance, ref.deviance, rtol=1e-10)
    np.testing.assert_allclose(fit.pearson_chi2, ref.pearson, rtol=1e-8)
    np.testing.assert_allclose(fit.covariance, fit.dispersion * ref.cov_unscaled, rtol=1e-7)
    np.testing.assert_allclose(fit.covariance_sandwich, ref.cov_sandwich, rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(
        fit.fisher_information, np.linalg.inv(ref.cov_unscaled) / fit.dispersion, rtol=1e-7
    )
    try:
        irls, newton = sm_fit(X, y, fam, lnk, weights=w)
    except ValueError as exc:  # statsmodels' own IRLS leaves the domain (gamma-inverse_squared)
        assert "invalid value" in str(exc)
        return
    assert irls.converged and newton.mle_retvals["converged"]
    np.testing.assert_allclose(fit.coef, newton.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fit.deviance, irls.deviance, rtol=1e-10)
    np.testing.assert_allclose(fit.pearson_chi2, irls.pearson_chi2, rtol=1e-8)
    np.testing.assert_allclose(fit.dispersion, irls.scale, rtol=1e-8)
    np.testing.assert_allclose(fit.bse, irls.bse, rtol=1e-7)
    np.testing.assert_allclose(fit.null_deviance, irls.null_deviance, rtol=1e-9)
    assert fit.df_resid == irls.df_resid
    if family not in ("binomial", "tweedie"):
        # statsmodels' binomial var_weights loglik drops the binomial coefficients and its
        # Tweedie loglik is a different series; binomial is checked in its own test
        np.testing.assert_allclose(fit.loglik, irls.llf, rtol=1e-10)
        np.testing.assert_allclose(fit.aic, irls.aic, rtol=1e-10)


@pytest.mark.parametrize(("family", "link"), CANONICAL)
def test_sandwich_matches_statsmodels_hc0(family, link):
    # for canonical links the observed and expected information coincide, so statsmodels'
    # HC0 bread is ours too
    rng = np.random.default_rng(7)
    fam, lnk = families.get(family), _link(link)
    X, y, w, _beta, _mu = make_data(fam, lnk, 300, 2, rng)
    fit = fit_glm(X, y, fam, lnk, weights=w)
    exog = sm.add_constant(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' DomainWarning for gamma-inverse
        model = sm.GLM(y, exog, family=sm_family(fam, lnk), var_weights=w)
        res = model.fit(cov_type="HC0", tol=1e-14)
    np.testing.assert_allclose(fit.bse_sandwich, res.bse, rtol=1e-7)


def test_binomial_loglik_matches_statsmodels_successes_failures():
    rng = np.random.default_rng(3)
    X, y, trials, _beta, _mu = make_data("binomial", "logit", 300, 2, rng)
    fit = fit_glm(X, y, "binomial", weights=trials)
    k = np.round(y * trials)
    res = sm.GLM(
        np.column_stack([k, trials - k]), sm.add_constant(X), family=sm.families.Binomial()
    ).fit(tol=1e-14)
    np.testing.assert_allclose(fit.coef, res.params, rtol=1e-9)
    np.testing.assert_allclose(fit.loglik, res.llf, rtol=1e-12)
    np.testing.assert_allclose(fit.aic, res.aic, rtol=1e-12)


def test_binomial_trials_equal_bernoulli_rows():
    rng = np.random.default_rng(4)
    X, y, trials, _beta, _mu = make_data("binomial", "probit", 120, 2, rng)
    k = np.round(y * trials).astype(int)
    rows = np.repeat(np.arange(y.size), trials.astype(int))
    yb = np.concatenate(
        [
            np.r_[np.ones(ki), np.zeros(ti - ki)]
            for ki, ti in zip(k, trials.astype(int), strict=True)
        ]
    )
    grouped = fit_glm(X, y, "binomial", link="probit", weights=trials)
    ungrouped = fit_glm(X[rows], yb, "bernoulli", link="probit")
    np.testing.assert_allclose(grouped.coef, ungrouped.coef, rtol=1e-9)
    np.testing.assert_allclose(grouped.covariance, ungrouped.covariance, rtol=1e-8)


# ---- exact properties -----------------------------------------------------------------------


@pytest.mark.parametrize(("family", "link"), PAIRS)
def test_noise_free_response_recovers_truth(family, link):
    # y = mu* exactly (non-integer counts, fractional binary responses: quasi-likelihood)
    rng = np.random.default_rng(11)
    X, _y, w, beta, mu = make_data(family, link, 200, 3, rng)
    fit = fit_glm(X, mu, family, _link(link), weights=w)
    assert fit.status == "ok", fit.message
    np.testing.assert_allclose(fit.coef, beta, rtol=1e-9, atol=1e-12)
    assert fit.deviance <= 1e-13 * mu.size  # zero up to the rounding of the deviance terms


@pytest.mark.parametrize("family", [f.name for f in families.REGISTRY if f.name != "binomial"])
def test_weights_equal_duplicated_rows(family):
    rng = np.random.default_rng(5)
    fam = families.get(family)
    X, y, _w, _beta, _mu = make_data(fam, fam.default_link, 150, 3, rng)
    counts = rng.integers(1, 4, y.size)
    rows = np.repeat(np.arange(y.size), counts)
    weighted = fit_glm(X, y, fam, weights=counts.astype(float))
    repeated = fit_glm(X[rows], y[rows], fam)
    np.testing.assert_allclose(weighted.coef, repeated.coef, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(weighted.deviance, repeated.deviance, rtol=1e-11)
    np.testing.assert_allclose(weighted.pearson_chi2, repeated.pearson_chi2, rtol=1e-10)
    np.testing.assert_allclose(weighted.null_deviance, repeated.null_deviance, rtol=1e-11)
    if not fam.has_dispersion:
        # prior weights are variance weights: only the residual degrees of freedom differ,
        # and they matter only through the dispersion
        np.testing.assert_allclose(weighted.covariance, repeated.covariance, rtol=1e-9)
        np.testing.assert_allclose(weighted.loglik, repeated.loglik, rtol=1e-11)
    # (the sandwich is not invariant: for variance weights Var(u_i) carries w_i^2, not w_i)


def test_zero_weight_rows_are_absent():
    rng = np.random.default_rng(6)
    X, y, _w, _beta, _mu = make_data("gamma", "log", 200, 3, rng)
    w = np.ones(y.size)
    w[::7] = 0.0
    X_bad = X.copy()
    X_bad[::7] = 1e3  # values in absent rows cannot matter
    dropped = fit_glm(X[w > 0], y[w > 0], "gamma", link="log")
    zeroed = fit_glm(X_bad, y, "gamma", link="log", weights=w)
    np.testing.assert_allclose(zeroed.coef, dropped.coef, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(zeroed.covariance, dropped.covariance, rtol=1e-10)
    assert zeroed.nobs == dropped.nobs and zeroed.df_resid == dropped.df_resid
    np.testing.assert_allclose(zeroed.loglik, dropped.loglik, rtol=1e-12)


def test_offset_matches_statsmodels_and_shifts_intercept():
    rng = np.random.default_rng(8)
    n = 300
    X = rng.uniform(-1, 1, (n, 2))
    exposure = rng.uniform(0.5, 3.0, n)
    y = rng.poisson(exposure * np.exp(0.3 + X @ [0.4, -0.2])).astype(float)
    fit = fit_glm(X, y, "poisson", offset=np.log(exposure))
    res = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(), offset=np.log(exposure)).fit(
        tol=1e-14
    )
    np.testing.assert_allclose(fit.coef, res.params, rtol=1e-10)
    np.testing.assert_allclose(fit.deviance, res.deviance, rtol=1e-12)
    np.testing.assert_allclose(fit.null_deviance, res.null_deviance, rtol=1e-9)
    np.testing.assert_allclose(fit.bse, res.bse, rtol=1e-9)
    # a constant offset c moves the log-link intercept by -c and nothing else
    base = fit_glm(X, y, "poisson")
    shifted = fit_glm(X, y, "poisson", offset=0.75)
    np.testing.assert_allclose(shifted.coef, base.coef - [0.75, 0, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shifted.deviance, base.deviance, rtol=1e-12)
    # predictions use the offset they are given
    np.testing.assert_allclose(
        fit.predict(X, offset=np.log(exposure)), exposure * fit.predict(X), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("family", "link"), [("poisson", "log"), ("gamma", "inverse"), ("bernoulli", "cloglog")]
)
def test_without_intercept_matches_statsmodels(family, link):
    rng = np.random.default_rng(9)
    fam, lnk = families.get(family), _link(link)
    X, y, _w, _beta, _mu = make_data(fam, lnk, 300, 2, rng)
    X = np.column_stack([np.ones(y.size) + 0.1 * X[:, 0], X[:, 1]])  # no separate intercept
    fit = fit_glm(X, y, fam, lnk, fit_intercept=False)
    assert fit.status == "ok" and fit.coef.shape == (2,) and not fit.fit_intercept
    irls, newton = sm_fit(X, y, fam, lnk, constant=False)
    np.testing.assert_allclose(fit.coef, newton.params, rtol=1e-8)
    np.testing.assert_allclose(fit.deviance, irls.deviance, rtol=1e-10)
    np.testing.assert_allclose(fit.bse, irls.bse, rtol=1e-7)
    np.testing.assert_allclose(fit.null_deviance, irls.null_deviance, rtol=1e-9)
    assert fit.feature_names == ("x1", "x2")


def test_gaussian_identity_is_least_squares():
    rng = np.random.default_rng(10)
    X, y, _w, _beta, _mu = make_data("gaussian", "identity", 100, 4, rng)
    Xt = np.column_stack([np.ones(y.size), X])
    coef, rss, *_ = np.linalg.lstsq(Xt, y, rcond=None)
    fit = fit_glm(X, y, "gaussian")
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-12, atol=1e-14)
    sigma2 = rss[0] / (y.size - 5)
    np.testing.assert_allclose(fit.dispersion, sigma2, rtol=1e-12)
    np.testing.assert_allclose(fit.covariance, sigma2 * np.linalg.inv(Xt.T @ Xt), rtol=1e-10)


@pytest.mark.parametrize(("family", "link"), [*CANONICAL, ("tweedie", "power")])
def test_canonical_links_balance(family, link):
    # the intercept's score equation of a canonical link: sum w mu_hat = sum w y
    rng = np.random.default_rng(12)
    fam = families.get(family)
    lnk = fam.canonical_link if family == "tweedie" else _link(link)
    X, y, w, _beta, _mu = make_data(fam, fam.default_link, 300, 3, rng, spread=0.2)
    fit = fit_glm(X, y, fam, lnk, weights=w)
    ww = np.ones(y.size) if w is None else w
    np.testing.assert_allclose(np.sum(ww * fit.predict(X)), np.sum(ww * y), rtol=1e-12)


def test_deviance_history_decreases_and_fit_is_deterministic():
    rng = np.random.default_rng(13)
    X, y, _w, _beta, _mu = make_data("inverse_gaussian", "log", 2000, 6, rng)
    a = fit_glm(X, y, "inverse_gaussian", link="log")
    b = fit_glm(X, y, "inverse_gaussian", link="log")
    assert a.iterations == len(a.deviance_history) >= 2
    assert np.all(np.diff(a.deviance_history) <= 1e-12 * a.deviance)
    assert a.deviance_history[-1] == a.deviance
    for name in ("coef", "covariance", "covariance_sandwich"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.grad_norm < 1e-10 and a.decrement < 1e-18


# ---- the chi-square law of the MLE -----------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "link"), [("poisson", "log"), ("bernoulli", "probit"), ("gamma", "log")]
)
def test_mle_quadratic_form_has_chi2_mean(family, link):
    # (beta_hat - beta*)' I_n(beta*) (beta_hat - beta*) ~ chi2_q; I_n with the true dispersion
    fam, lnk = families.get(family), _link(link)
    rng = np.random.default_rng(14)
    n, p, reps = 400, 3, 1000
    phi = PHI.get(family, 1.0)
    X, _y, _w, beta, mu = make_data(fam, lnk, n, p, rng)
    Xt = np.column_stack([np.ones(n), X])
    eta = Xt @ beta
    W = lnk.h1(eta) ** 2 / fam.variance(mu)
    info = (Xt * W[:, None]).T @ Xt / phi
    stats = np.empty(reps)
    for r in range(reps):
        y = sample(fam, mu, phi, rng)
        fit = fit_glm(X, y, fam, lnk)
        assert fit.status == "ok"
        d = fit.coef - beta
        stats[r] = d @ info @ d
    q = p + 1
    se = stats.std(ddof=1) / math.sqrt(reps)
    assert abs(stats.mean() - q) < 4 * se, (stats.mean(), se)
    assert 0.5 * 2 * q < stats.var(ddof=1) < 1.5 * 2 * q  # chi2_q variance 2q, loosely


# ---- separation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog", "loglog", "cauchit"])
def test_complete_separation_is_reported(link):
    rng = np.random.default_rng(15)
    X = rng.uniform(-1, 1, (80, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
    fit = fit_glm(X, y, "bernoulli", link=link)
    assert fit.status == "separation" and not fit.converged
    assert fit.message.startswith("complete separation")
    assert fit.iterations <= 100


def test_quasi_complete_separation_is_reported():
    rng = np.random.default_rng(16)
    X = rng.uniform(-1, 1, (100, 2))
    X[:20, 0] = 0.0
    y = (X[:, 0] > 0).astype(float)
    y[:20] = rng.integers(0, 2, 20)
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "separation" and not fit.converged
    assert fit.message.startswith("quasi-complete separation: 80 of the 100")
    # statsmodels returns a "converged" fit with an absurd coefficient
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit()
            assert abs(res.params[1]) > 100
        except Exception as exc:  # newer statsmodels may raise instead
            assert "separation" in type(exc).__name__.lower()


def test_constant_binary_response_is_separation():
    X = np.random.default_rng(17).uniform(-1, 1, (50, 2))
    fit = fit_glm(X, np.ones(50), "bernoulli")
    assert fit.status == "separation" and "every response is y = 1" in fit.message


def test_poisson_zero_group_is_separation():
    rng = np.random.default_rng(18)
    n = 150
    x = rng.uniform(-1, 1, n)
    group = (rng.random(n) < 0.3).astype(float)
    y = rng.poisson(np.exp(0.5 + 0.3 * x)).astype(float)
    y[group == 1] = 0.0  # the group's mean -> 0: its coefficient diverges
    fit = fit_glm(np.column_stack([x, group]), y, "poisson")
    assert fit.status == "separation" and "zero counts" in fit.message
    zeros = fit_glm(np.column_stack([x, group]), np.zeros(n), "poisson")
    assert zeros.status == "separation" and "every count is zero" in zeros.message


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_strong_but_overlapping_signal_is_not_separation(family):
    rng = np.random.default_rng(19)
    X = rng.uniform(-1, 1, (400, 2))
    eta = 12.0 * X[:, 0]  # fitted means reach 1e-5 of the boundary: the separation check runs
    y = (
        (rng.random(400) < 1 / (1 + np.exp(-eta))).astype(float)
        if family == "bernoulli"
        else (rng.poisson(np.exp(eta)).astype(float))
    )
    fit = fit_glm(X, y, family)
    assert fit.status == "ok" and fit.converged, fit.message


# ---- rank deficiency --------------------------------------------------------------------------


def test_rank_deficient_designs_name_the_columns():
    rng = np.random.default_rng(20)
    n = 100
    X = rng.uniform(-1, 1, (n, 3))
    y = rng.poisson(2.0, n).astype(float)
    dup = np.column_stack([X, X[:, 1]])
    fit = fit_glm(dup, y, "poisson")
    assert fit.status == "rank_deficient" and not fit.converged
    assert "'x4' is a linear combination of 'x2'" in fit.message
    assert np.isnan(fit.coef).all() and np.isnan(fit.covariance).all()
    combo = np.column_stack([X, X[:, 0] - 2 * X[:, 2] + 3.0])
    fit = fit_glm(combo, y, "poisson")
    assert "'x4' is a linear combination of 'intercept', 'x1', 'x3'" in fit.message
    const = np.column_stack([X, np.full(n, 5.0)])
    assert "'x4' is a linear combination of 'intercept'" in fit_glm(const, y, "poisson").message
    zero = np.column_stack([X, np.zeros(n)])
    assert "'x4' is zero on every row" in fit_glm(zero, y, "poisson").message
    wide = rng.uniform(-1, 1, (5, 8))
    assert fit_glm(wide, y[:5], "poisson").status == "rank_deficient"
    # a column of ones is fine without an intercept
    assert fit_glm(const, y, "poisson", fit_intercept=False).status == "ok"


def test_rank_message_uses_dataframe_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(21)
    df = pd.DataFrame({"age": rng.uniform(20, 60, 50), "dose": rng.uniform(0, 1, 50)})
    df["age_months"] = 12 * df["age"]
    y = rng.poisson(3.0, 50).astype(float)
    fit = fit_glm(df, y, "poisson")
    assert fit.status == "rank_deficient"
    assert "'age_months' is a linear combination of 'age'" in fit.message
    ok = fit_glm(df[["age", "dose"]], y, "poisson")
    assert list(ok.summary().index) == ["intercept", "age", "dose"]


def test_nearly_collinear_but_identifiable_design_is_fitted():
    rng = np.random.default_rng(22)
    x = rng.uniform(-1, 1, 500)
    X = np.column_stack([x, x + 1e-4 * rng.standard_normal(500)])  # 1 - R^2 ~ 3e-8
    y = rng.poisson(np.exp(0.5 + 0.3 * x)).astype(float)
    fit = fit_glm(X, y, "poisson")
    assert fit.status == "ok"
    res = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit(tol=1e-14)
    np.testing.assert_allclose(fit.coef, res.params, rtol=1e-6)


# ---- step-halving out of domain trouble ----------------------------------------------------------


def _first_irls_step_invalid(x, y, fam, lnk) -> bool:
    """Whether the plain (undamped) first IRLS step from mu_0 = (y + ybar)/2 leaves the domain."""
    mu = (y + y.mean()) / 2
    eta = lnk.g(mu)
    h1 = lnk.h1(eta)
    W = h1**2 / fam.variance(mu)
    z = eta + (y - mu) / h1
    Xt = np.column_stack([np.ones(y.size), x])
    b = np.linalg.lstsq(Xt * np.sqrt(W)[:, None], np.sqrt(W) * z, rcond=None)[0]
    eta1 = Xt @ b
    valid = lnk.eta_valid(eta1)
    return not (valid.all() and fam.mu_valid(lnk.h(eta1)).all())


@pytest.mark.parametrize(
    ("family", "link", "mean", "draw"),
    [
        ("gamma", "identity", lambda x: 0.05 + 2 * x, lambda mu, rng: rng.gamma(1.0, mu)),
        (
            "inverse_gaussian",
            "inverse_squared",
            lambda x: 1 / np.sqrt(0.02 + 2 * x),
            lambda mu, rng: rng.wald(mu, 2.0),
        ),
    ],
)
def test_step_halving_recovers_from_leaving_the_domain(family, link, mean, draw):
    fam, lnk = families.get(family), links.get(link)
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1, 40)
        y = draw(mean(x), rng)
        if _first_irls_step_invalid(x, y, fam, lnk):
            break
    else:
        pytest.fail("no data set where the plain IRLS step leaves the domain")
    fit = fit_glm(x[:, None], y, family, link=link)
    assert fit.status == "ok" and fit.converged, fit.message
    ref = reference_irls(x[:, None], y, fam.code, 0.0, link)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-9)
    np.testing.assert_allclose(fit.deviance, ref.deviance, rtol=1e-12)


def test_slow_fisher_scoring_case_converges():
    # 60 exponential responses on a Gamma-identity model: Fisher scoring contracts at a rate
    # near 0.9 here (statsmodels stops at maxiter); the Newton phase converges
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, 60)
    y = rng.gamma(1.0, 0.02 + 3 * x)
    fit = fit_glm(x[:, None], y, "gamma", link="identity")
    assert fit.status == "ok" and fit.iterations < 20
    ref = reference_irls(x[:, None], y, 4, 0.0, "identity", max_iter=2000)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-9)


@pytest.mark.parametrize(
    ("family", "link"), [("bernoulli", "identity"), ("bernoulli", "log"), ("poisson", "identity")]
)
def test_mle_on_the_boundary_is_a_domain_error(family, link):
    # the likelihood is largest where a fitted mean reaches the edge of the mean space: y = 1
    # for every x > 1/2 (mu -> 1 at x = 1), or zero counts where the identity-link mean can
    # reach 0 at x = 0
    x = np.linspace(0, 1, 60)
    rng = np.random.default_rng(26)
    if family == "bernoulli":
        y = np.where(x > 0.5, 1.0, (rng.random(60) < 0.3).astype(float))
    else:
        y = rng.poisson(np.maximum(0.0, 2 * x - 0.5)).astype(float)
    fit = fit_glm(x[:, None], y, family, link=link)
    assert fit.status == "domain_error" and not fit.converged
    assert "boundary of the mean space" in fit.message
    assert np.isfinite(fit.coef).all()


def test_no_valid_start_is_a_domain_error():
    # inverse link without intercept, x of both signs: mu = 1 / (b x) cannot be positive on
    # every row, the first IRLS step leaves the domain and beta = 0 is eta = 0, outside it
    x = np.r_[-np.linspace(1, 2, 15), np.linspace(1, 2, 15)]
    y = np.linspace(1, 2, 30)
    fit = fit_glm(x[:, None], y, "gamma", link="inverse", fit_intercept=False)
    assert fit.status == "domain_error" and "no valid starting point" in fit.message
    assert np.isnan(fit.coef).all() and not fit.converged


# ---- status, attributes, validation ---------------------------------------------------------


def test_max_iter_gives_not_converged():
    rng = np.random.default_rng(23)
    X, y, _w, _beta, _mu = make_data("negative_binomial", "sqrt", 300, 3, rng)
    fit = fit_glm(X, y, "negative_binomial", link="sqrt", max_iter=2)
    assert fit.status == "not_converged" and not fit.converged and fit.iterations == 2
    assert "no convergence in 2 iterations" in fit.message
    assert np.isfinite(fit.coef).all()


def test_fit_object_is_immutable_and_predicts():
    rng = np.random.default_rng(24)
    X, y, _w, _beta, _mu = make_data("poisson", "sqrt", 200, 2, rng)
    fit = fit_glm(X, y, "poisson", link="sqrt")
    assert isinstance(fit, GLMFit) and "poisson" in repr(fit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.status = "ok"  # type: ignore[misc]
    with pytest.raises(ValueError):
        fit.coef[0] = 1.0
    eta = fit.coef[0] + X @ fit.coef[1:]
    np.testing.assert_allclose(fit.linear_predictor(X), eta, rtol=1e-14)
    np.testing.assert_allclose(fit.predict(X), eta**2, rtol=1e-14)
    table = fit.summary()
    np.testing.assert_allclose(table["se"].to_numpy(), fit.bse)
    np.testing.assert_allclose(table["z"].to_numpy(), fit.coef / fit.bse)
    assert fit.n_features == 2 and fit.nobs == 200 and fit.df_resid == 197
    with pytest.raises(ValidationError, match="3 columns"):
        fit.predict(np.ones((4, 3)))


def test_quasi_likelihood_response_has_nan_loglik():
    rng = np.random.default_rng(25)
    X, _y, _w, _beta, mu = make_data("poisson", "log", 100, 2, rng)
    fit = fit_glm(X, mu * 1.1, "poisson")
    assert fit.status == "ok" and math.isnan(fit.loglik) and math.isnan(fit.aic)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": np.ones(5)}, "must be 2-D"),
        ({"X": np.ones((5, 2, 1))}, "must be 2-D"),
        ({"y": np.ones(4)}, r"shape \(5,\)"),
        ({"y": np.array([1.0, 2.0, np.nan, 1.0, 0.0])}, "y must be finite"),
        ({"y": np.array([1.0, 2.0, -1.0, 1.0, 0.0])}, "poisson"),
        ({"weights": np.array([1.0, -1.0, 1.0, 1.0, 1.0])}, "weights must be >= 0"),
        ({"weights": np.zeros(5)}, "all zero"),
        ({"offset": np.array([0.0, np.inf, 0.0, 0.0, 0.0])}, "offset must be finite"),
        ({"link": "logit"}, "does not accept the link 'logit'"),
        ({"link": "lgo"}, "unknown link"),
        ({"family": "poison"}, "unknown family"),
        ({"tol": 0.0}, "tol must be"),
        ({"max_iter": 0}, "max_iter must be"),
        ({"X": np.full((5, 2), np.nan)}, "X must be finite"),
        ({"X": np.array([[1e200, 0.0]] * 5)}, "overflows"),
    ],
)
def test_invalid_input_raises(kwargs, match):
    args = {
        "X": np.arange(10.0).reshape(5, 2) / 10,
        "y": np.array([1.0, 2.0, 0.0, 1.0, 3.0]),
        "family": "poisson",
    }
    args.update(kwargs)
    with pytest.raises(ValidationError, match=match):
        fit_glm(**args)


@pytest.mark.parametrize("p", [0, 1, 7, 13])
@pytest.mark.parametrize("icpt", [0, 1])
def test_linear_predictor_equals_the_row_by_row_sum(p, icpt):
    # eight rows at a time must not change any row's sum: bit-identical to the plain loop
    # (row counts that are not multiples of 8, sub-ranges, with and without an offset)
    from simbench.kernels.irls import linear_predictor

    rng = np.random.default_rng(100 + p)
    n = 29
    X = rng.standard_normal((n, p))
    beta = rng.standard_normal(p + icpt)
    offset = rng.standard_normal(n)
    for off in (np.empty(0), offset):
        for r0, r1 in ((0, n), (3, 20), (5, 6)):
            eta = np.full(n, np.nan)
            linear_predictor(X, icpt, beta, off, r0, r1, eta)
            for i in range(r0, r1):
                e = beta[0] if icpt else 0.0
                for j in range(p):
                    e += X[i, j] * beta[icpt + j]
                if off.size:
                    e += off[i]
                assert eta[i] == e, (i, eta[i], e)
            assert np.isnan(eta[:r0]).all() and np.isnan(eta[r1:]).all()


@pytest.mark.parametrize(
    ("family", "link"),
    [
        ("poisson", "log"),
        ("bernoulli", "logit"),
        ("binomial", "logit"),
        ("gamma", "log"),
        ("gaussian", "identity"),
        ("gamma", "inverse"),
        ("bernoulli", "probit"),
    ],
)
@pytest.mark.parametrize("n", [3000, 8000])
def test_chord_steps_reach_the_same_fit(family, link, n, monkeypatch):
    """With many coefficients the iteration ends on score-only (chord) passes, and with many
    rows per coefficient its early passes estimate A from a subsample of the rows; the fit
    is the one a Newton iteration finds: coefficients, deviance and covariances."""
    from simbench.kernels import irls

    rng = np.random.default_rng(zlib.crc32(f"chord-{family}-{link}-{n}".encode()))
    fam, lnk = families.get(family), _link(link)
    X, y, w, _beta, _mu = make_data(fam, lnk, n, 30, rng)
    passes = {"full": 0, "chord": 0, "subsample": 0}
    original = irls.irls_pass

    def counting(*args):
        stride = args[-2]
        passes["chord" if stride == 0 else "full" if stride == 1 else "subsample"] += 1
        return original(*args)

    monkeypatch.setattr(irls, "irls_pass", counting)
    fit = fit_glm(X, y, fam, lnk, weights=w)
    assert fit.status == "ok" and fit.converged, fit.message
    # (least squares: the start's regression step is the solution, nothing to chord)
    assert passes["chord"] >= 1 or family == "gaussian", passes
    assert (passes["subsample"] >= 1) == (n == 8000), passes
    ref = reference_irls(X, y, fam.code, fam.param, lnk.name, lnk.param, weights=w)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fit.deviance, ref.deviance, rtol=1e-10)
    np.testing.assert_allclose(fit.covariance, fit.dispersion * ref.cov_unscaled, rtol=1e-7)
    np.testing.assert_allclose(fit.covariance_sandwich, ref.cov_sandwich, rtol=1e-6, atol=1e-14)
    if lnk == fam.canonical_link:  # the score equation of the intercept: balance to rounding
        ww = np.ones(y.size) if w is None else w
        np.testing.assert_allclose(np.sum(ww * fit.predict(X)), np.sum(ww * y), rtol=1e-12)


def test_a_level_missing_from_the_subsample_falls_back_to_all_rows():
    """A rare dummy whose ones all lie in chunks the subsampled passes skip makes their A
    singular; the iteration then takes the exact A and reaches the MLE (no false rank
    deficiency)."""
    rng = np.random.default_rng(21)
    n, p = 8000, 30
    X = rng.uniform(-1.0, 1.0, (n, p))
    X[:, -1] = 0.0
    X[300:330, -1] = 1.0  # rows of chunk 1 only (chunks of 256 rows; stride > 1 skips it)
    beta = np.r_[0.5, rng.normal(0, 0.3 / np.sqrt(p), p)]
    y = rng.poisson(np.exp(beta[0] + X @ beta[1:])).astype(float)
    fit = fit_glm(X, y, "poisson")
    assert fit.status == "ok" and fit.converged, fit.message
    ref = reference_irls(X, y, families.get("poisson").code, 0.0, "log", 0.0)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-8, atol=1e-12)


def test_rank_deficiency_is_found_when_the_passes_subsample_rows():
    """A large design (subsampled passes) with an exactly collinear column is rank deficient,
    with the columns named, as on a small one."""
    rng = np.random.default_rng(23)
    n, p = 20_000, 12
    X = rng.normal(0.0, 1.0, (n, p))
    X[:, -1] = X[:, 0] - 2.0 * X[:, 1]
    y = rng.poisson(np.exp(0.3 + 0.1 * X[:, 2])).astype(float)
    fit = fit_glm(X, y, "poisson")
    assert fit.status == "rank_deficient"
    assert "x12" in fit.message and "x1" in fit.message and "x2" in fit.message
    assert np.isnan(fit.coef).all()


@pytest.mark.parametrize(("family", "link"), PAIRS)
def test_large_fits_match_the_reference_on_every_pair(family, link):
    """Every family x link pair at a size where the iteration subsamples its early passes and
    ends on chord steps, with zero weights and an offset: the NumPy reference IRLS's fit."""
    rng = np.random.default_rng(zlib.crc32(f"large-{family}-{link}".encode()))
    fam, lnk = families.get(family), _link(link)
    n, p = 8000, 24
    X, y, w, _beta, _mu = make_data(fam, lnk, n, p, rng)
    if w is None:
        w = rng.uniform(0.5, 2.0, n)
        w[::11] = 0.0
    off = rng.normal(0.0, 0.02, n) if lnk.name in ("log", "logit") else None
    fit = fit_glm(X, y, fam, lnk, weights=w, offset=off)
    assert fit.status == "ok" and fit.converged, fit.message
    ref = reference_irls(X, y, fam.code, fam.param, lnk.name, lnk.param, weights=w, offset=off)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.deviance, ref.deviance, rtol=1e-10)
    np.testing.assert_allclose(fit.covariance, fit.dispersion * ref.cov_unscaled, rtol=1e-7)
