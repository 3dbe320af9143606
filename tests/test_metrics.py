"""Metrics against the plain NumPy reference, plus their known special values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import metrics as ref
from sklearn.metrics import roc_auc_score

from simbench import metrics as M
from simbench.kernels import metrics as K

RNG_SEED = 20260


def _rng(k: int = 0) -> np.random.Generator:
    return np.random.default_rng(RNG_SEED + k)


# ---------------------------------------------------------------------------------------
# coefficients
# ---------------------------------------------------------------------------------------


def test_coefficient_metrics_match_reference():
    rng = _rng()
    for _ in range(20):
        p = int(rng.integers(1, 8))
        b, t, m = rng.normal(size=(3, p + 1))
        A = rng.normal(size=(p + 1, p + 1))
        info = A @ A.T + np.eye(p + 1)
        assert M.coef_err_truth(b, t) == pytest.approx(ref.coef_err_truth(b, t), rel=1e-14)
        assert M.coef_err_mle(b, m) == ref.coef_err_mle(b, m)
        assert M.coef_z_mle(b, m, info) == pytest.approx(ref.coef_z_mle(b, m, info), rel=1e-12)
        assert M.coef_cos_truth(b, t) == pytest.approx(ref.coef_cos_truth(b, t), rel=1e-13)


def test_coefficient_metrics_special_values():
    b = np.array([0.3, -1.0, 2.0, 0.5])
    info = np.diag([4.0, 1.0, 2.0, 3.0])
    assert M.coef_err_mle(b, b) == 0.0
    assert M.coef_z_mle(b, b, info) == 0.0
    assert M.coef_err_truth(b, b) == 0.0
    # direction only: scaling the slopes (and any intercept) keeps the cosine at 1
    assert M.coef_cos_truth(np.r_[5.0, 3.0 * b[1:]], b) == pytest.approx(1.0, abs=1e-15)
    assert M.coef_cos_truth(np.r_[0.0, -b[1:]], b) == pytest.approx(-1.0, abs=1e-15)
    # one standard error along a coordinate is z = 1
    e = np.zeros(4)
    e[2] = 1.0 / np.sqrt(info[2, 2])
    assert M.coef_z_mle(b + e, b, info) == pytest.approx(1.0, rel=1e-15)
    assert np.isnan(M.coef_err_truth(b, np.zeros(4)))
    assert np.isnan(M.coef_cos_truth(np.r_[1.0, 0, 0, 0], b))


# ---------------------------------------------------------------------------------------
# AUC
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn_and_pairwise_reference(ties):
    rng = _rng(1)
    for n in (2, 7, 50, 800):
        s = rng.normal(size=n)
        if ties:
            s = np.round(s, 1)  # many tied scores, across both classes
        y = (rng.random(n) < 0.4).astype(float)
        y[0], y[-1] = 0.0, 1.0
        got = M.auc(s, y)
        assert got == pytest.approx(roc_auc_score(y, s), abs=1e-14)
        assert got == pytest.approx(ref.auc(s, y), abs=1e-14)


def test_auc_weighted_matches_sklearn_sample_weight():
    rng = _rng(2)
    s = np.round(rng.normal(size=300), 1)
    y = (rng.random(300) < 0.5).astype(float)
    w = rng.uniform(0.1, 3.0, size=300)
    assert M.auc(s, y, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-13)


def test_auc_binomial_proportions_equal_expanded_bernoulli():
    # a row with m trials and proportion y counts as m*y positives and m*(1-y) negatives
    rng = _rng(3)
    m = rng.integers(1, 6, size=60)
    k = rng.binomial(m, 0.4)
    s = np.round(rng.normal(size=60), 1)
    s_long = np.repeat(s, m)
    y_long = np.concatenate(
        [np.r_[np.ones(ki), np.zeros(mi - ki)] for ki, mi in zip(k, m, strict=True)]
    )
    got = M.auc(s, k / m, m.astype(float))
    assert got == pytest.approx(roc_auc_score(y_long, s_long), abs=1e-13)


def test_auc_special_cases():
    y = np.array([0.0, 0.0, 1.0, 1.0])
    assert M.auc(np.array([0.1, 0.2, 0.3, 0.4]), y) == 1.0
    assert M.auc(np.array([0.4, 0.3, 0.2, 0.1]), y) == 0.0
    assert M.auc(np.ones(4), y) == 0.5
    assert np.isnan(M.auc(np.array([0.1, np.nan, 0.3, 0.4]), y))
    assert np.isnan(M.auc(np.arange(4.0), np.ones(4)))
    # extreme scores stay exact
    assert M.auc(np.array([-1e300, -1e-300, 1e-300, np.inf]), y) == 1.0


@given(
    st.lists(
        st.tuples(st.integers(-5, 5), st.booleans()),
        min_size=2,
        max_size=60,
    )
)
def test_auc_property_against_pairwise_reference(rows):
    s = np.array([float(r[0]) for r in rows])
    y = np.array([float(r[1]) for r in rows])
    got = M.auc(s, y)
    if y.min() == y.max():
        assert np.isnan(got)
    else:
        assert got == pytest.approx(ref.auc(s, y), abs=1e-14)


def test_auc_is_invariant_to_row_order_and_monotone_maps():
    rng = _rng(4)
    s = np.round(rng.normal(size=500), 2)
    y = (rng.random(500) < 0.3).astype(float)
    perm = rng.permutation(500)
    assert M.auc(s[perm], y[perm]) == pytest.approx(M.auc(s, y), abs=1e-15)
    assert M.auc(np.exp(s), y) == M.auc(s, y)


def test_the_auc_sort_is_a_stable_sort():
    rng = _rng(8)
    pool = np.array([-np.inf, np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-300, 1.0, -1.0, 1e308])
    for trial in range(200):
        n = int(rng.integers(1, 3000))
        x = [
            rng.normal(size=n),
            np.round(rng.normal(size=n), 1),  # ties, and -0.0 next to 0.0
            rng.choice(pool, size=n),
            1.0 / (1.0 + np.exp(-3.0 * rng.normal(size=n))),
        ][trial % 4]
        np.testing.assert_array_equal(K.stable_argsort(x), np.argsort(x, kind="stable"))


# ---------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------


def test_error_reductions_match_reference():
    rng = _rng(5)
    a, b = rng.normal(size=(2, 1000))
    mu_true = rng.uniform(0.5, 5.0, 1000)
    mu_hat = mu_true * np.exp(rng.normal(scale=0.1, size=1000))
    w = rng.uniform(0.5, 2.0, 1000)
    assert M.eta_rmse(a, b) == pytest.approx(ref.eta_rmse(a, b), rel=1e-13)
    assert M.mu_rel_err(mu_hat, mu_true) == pytest.approx(
        ref.mu_rel_err(mu_hat, mu_true), rel=1e-13
    )
    assert M.balance(mu_true, mu_hat, w) == pytest.approx(
        ref.balance(mu_true, mu_hat, w), abs=1e-14
    )
    assert M.balance(mu_true, mu_hat) == pytest.approx(ref.balance(mu_true, mu_hat), abs=1e-14)
    X = rng.normal(size=(1000, 3))
    X[:, 2] = rng.random(1000) < 0.3  # a dummy column
    assert M.balance_max(X, mu_true, mu_hat, w) == pytest.approx(
        ref.balance_max(X, mu_true, mu_hat, w), rel=1e-12
    )
    assert M.balance_max(X, mu_true, mu_true) == 0.0
    assert M.balance_max(X, mu_true, mu_hat) >= abs(M.balance(mu_true, mu_hat))
    assert M.eta_rmse(a, a) == 0.0
    assert M.mu_rel_err(mu_true, mu_true) == 0.0
    assert M.balance(mu_true, mu_true, w) == 0.0


def test_gram_with_intercept_matches_explicit_design():
    rng = _rng(6)
    X = rng.normal(size=(300, 4))
    c = rng.uniform(0.1, 2.0, 300)
    got = K.gram_with_intercept(X, c, np.empty((5, 5)))
    np.testing.assert_allclose(got, ref.gram_with_intercept(X, c), rtol=1e-12, atol=1e-12)
    assert np.array_equal(got, got.T)


@pytest.mark.parametrize("n, p", [(1, 1), (37, 3), (300, 17), (250, 130)])
def test_gram_with_intercept_sums_every_entry_in_row_order(n, p):
    """Blocked for the cache, the kernel still adds ``(c_i x_ia) x_ib`` to each entry in row
    order, as a row-by-row loop does: the same bits at any number of columns (130 columns
    span several blocks of rows)."""
    rng = _rng(60 + p)
    X = rng.normal(size=(n, p))
    c = rng.uniform(0.1, 2.0, n)
    expected = np.zeros((p + 1, p + 1))
    for i in range(n):  # the definition, one row at a time
        expected[0, 0] += c[i]
        cx = c[i] * X[i]
        expected[0, 1:] += cx
        for a in range(p):
            expected[a + 1, a + 1 :] += cx[a] * X[i, a:]
    expected = np.triu(expected) + np.triu(expected, 1).T
    assert np.array_equal(K.gram_with_intercept(X, c, np.empty((p + 1, p + 1))), expected)


def test_linear_projection_matches_normal_equations():
    rng = _rng(7)
    X = rng.normal(size=(400, 3))
    s = 0.5 + X @ np.array([1.0, -2.0, 0.3]) + rng.normal(size=400)
    w = rng.uniform(0.5, 2.0, 400)
    np.testing.assert_allclose(
        M.linear_projection(X, s, w), ref.linear_projection(X, s, w), rtol=1e-10
    )
    # an exactly linear score projects onto its own coefficients
    b = np.array([0.2, 1.0, -1.0, 0.5])
    np.testing.assert_allclose(M.linear_projection(X, b[0] + X @ b[1:]), b, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# mean-function metrics with real families
# ---------------------------------------------------------------------------------------

FAMILY_CASES = [
    ("gaussian", {}, 0.0, "identity"),
    ("bernoulli", {}, 0.0, "logit"),
    ("binomial", {}, 0.0, "logit"),
    ("poisson", {}, 0.0, "log"),
    ("gamma", {}, 0.0, "log"),
    ("inverse_gaussian", {}, 0.0, "log"),
    ("negative_binomial", {"alpha": 0.7}, 0.7, "log"),
    ("tweedie", {"power": 1.4}, 1.4, "log"),
]


def _family(name, kw):
    from simbench import families

    return families.get(name, **kw)


def _means(name, n, rng):
    """(mu_true, mu_hat, y) inside the family's domains; y is a mean-like response."""
    if name in ("bernoulli", "binomial"):
        mu = rng.uniform(0.05, 0.95, n)
        mu_hat = np.clip(mu + rng.normal(scale=0.05, size=n), 0.01, 0.99)
        y = (rng.random(n) < mu).astype(float)
    else:
        mu = rng.uniform(0.5, 4.0, n)
        mu_hat = mu * np.exp(rng.normal(scale=0.1, size=n))
        y = rng.gamma(2.0, mu / 2.0)
        if name in ("poisson", "negative_binomial", "tweedie"):
            y = np.floor(y)
    return mu, mu_hat, y


@pytest.mark.parametrize(("name", "kw", "param", "link"), FAMILY_CASES)
def test_deviance_metrics_match_reference(name, kw, param, link):
    rng = _rng(10)
    fam = _family(name, kw)
    mu, mu_hat, y = _means(name, 2000, rng)
    w = rng.uniform(0.5, 2.0, 2000)
    phi = 1.7 if fam.has_dispersion else 1.0
    got = M.mean_deviance(fam, y, mu_hat, w)
    assert got == pytest.approx(ref.mean_deviance(name, y, mu_hat, w, param), rel=1e-12)
    got = M.excess_deviance(fam, mu, mu_hat, phi, w)
    # y := mu*: a fractional response, so binary families use the general binomial form
    assert got == pytest.approx(ref.excess_deviance(name, mu, mu_hat, phi, w, param), rel=1e-12)
    assert M.excess_deviance(fam, mu, mu, phi, w) == 0.0
    assert M.excess_deviance(fam, mu, mu_hat, phi) == pytest.approx(
        ref.excess_deviance(name, mu, mu_hat, phi, None, param), rel=1e-12
    )


def test_deviance_metrics_are_nan_outside_the_mean_domain():
    rng = _rng(11)
    pois = _family("poisson", {})
    mu, mu_hat, y = _means("poisson", 100, rng)
    bad = mu_hat.copy()
    bad[7] = -0.1
    assert np.isnan(M.mean_deviance(pois, y, bad))
    assert np.isnan(M.excess_deviance(pois, mu, bad, 1.0))
    bad[7] = np.nan
    assert np.isnan(M.mean_deviance(pois, y, bad))
    bern = _family("bernoulli", {})
    mu, mu_hat, y = _means("bernoulli", 100, rng)
    mu_hat[3] = 1.0  # a saturated prediction: the deviance is infinite or undefined
    assert np.isnan(M.excess_deviance(bern, mu, mu_hat, 1.0))


@pytest.mark.parametrize(
    ("name", "kw", "param", "link"),
    [
        ("poisson", {}, 0.0, "log"),
        ("bernoulli", {}, 0.0, "logit"),
        ("bernoulli", {}, 0.0, "probit"),
        ("gamma", {}, 0.0, "inverse"),
        ("gaussian", {}, 0.0, "identity"),
        ("negative_binomial", {"alpha": 0.5}, 0.5, "log"),
        ("tweedie", {"power": 1.5}, 1.5, "log"),
        ("poisson", {}, 0.0, "sqrt"),
    ],
)
def test_fisher_information_and_crb_match_reference(name, kw, param, link):
    from simbench import links

    rng = _rng(12)
    fam, lnk = _family(name, kw), links.get(link)
    X = rng.normal(size=(500, 3))
    beta = np.array([0.5, 0.2, -0.3, 0.1])
    if link == "inverse":
        beta = np.array([1.0, 0.1, -0.1, 0.05])
    if link == "sqrt":
        beta = np.array([2.0, 0.2, -0.3, 0.1])
    w = rng.uniform(0.5, 2.0, 500)
    off = rng.normal(scale=0.1, size=500) if link == "log" else None
    phi = 1.3 if fam.has_dispersion else 1.0
    got = M.fisher_information(X, beta, fam, lnk, phi, weights=w, offset=off)
    want = ref.fisher_information(X, beta, name, link, phi, w, param, off)
    np.testing.assert_allclose(got, want, rtol=1e-11)
    np.testing.assert_allclose(
        M.crb_var(X, beta, fam, lnk, phi, weights=w, offset=off),
        ref.crb_var(X, beta, name, link, phi, w, param, off),
        rtol=1e-10,
    )


# ---------------------------------------------------------------------------------------
# metrics that fit a GLM, and the assembled row
# ---------------------------------------------------------------------------------------


def _glm_data(family, link, beta, n, rng, kw=None):
    from simbench import families, links

    fam, lnk = families.get(family, **(kw or {})), links.get(link)
    X = rng.normal(size=(n, len(beta) - 1))
    eta = beta[0] + X @ beta[1:]
    mu = lnk.h(eta)
    if family == "poisson":
        y = rng.poisson(mu).astype(float)
    elif family == "bernoulli":
        y = (rng.random(n) < mu).astype(float)
    elif family == "gamma":
        y = rng.gamma(2.0, mu / 2.0)
    else:
        y = mu + rng.normal(size=n)
    return fam, lnk, X, y, mu


@pytest.mark.parametrize(
    ("family", "link", "beta"),
    [
        ("poisson", "log", [0.7, 0.3, -0.2, 0.1]),
        ("bernoulli", "logit", [-0.3, 0.8, -0.5, 0.2]),
        ("gaussian", "identity", [1.0, 0.5, -0.5, 0.0]),
        ("gamma", "inverse", [0.5, 0.05, -0.05, 0.02]),
    ],
)
def test_canonical_link_mle_is_balanced(family, link, beta):
    from simbench.fit.glm import fit_glm

    fam, lnk, X, y, _ = _glm_data(family, link, np.array(beta), 3000, _rng(20))
    fit = fit_glm(X, y, family=fam, link=lnk)
    assert fit.status == "ok"
    assert abs(M.balance(y, fit.predict(X))) < 1e-10
    # and the MLE is at distance zero from itself
    assert M.coef_err_mle(fit.coef, fit.coef) == 0.0
    assert M.coef_z_mle(fit.coef, fit.coef, fit.fisher_information) == 0.0


def test_canonical_mle_is_balanced_within_every_level_of_a_factor():
    from simbench.fit.glm import fit_glm

    data = _dataset("poisson", design="categorical", levels=4, n=2000)
    fit = fit_glm(data.X, data.y, family=data.family, link=data.link)
    assert fit.status == "ok"
    assert M.balance_max(data.X, data.y, fit.predict(data.X)) < 1e-10
    # the per-level balance, computed directly for each dummy column
    mu = fit.predict(data.X)
    for j in range(data.X.shape[1]):
        level = data.X[:, j] == 1.0
        assert abs(mu[level].sum() / data.y[level].sum() - 1.0) < 1e-10


def test_non_canonical_mle_is_not_balanced():
    from simbench.fit.glm import fit_glm

    fam, lnk, X, y, _ = _glm_data("gamma", "log", np.array([0.5, 0.6, -0.4]), 3000, _rng(21))
    fit = fit_glm(X, y, family=fam, link=lnk)
    assert abs(M.balance(y, fit.predict(X))) > 1e-4


def test_calibration_matches_statsmodels_and_is_one_for_the_truth():
    import statsmodels.api as sm

    fam, lnk, _, y, mu = _glm_data(
        "bernoulli", "logit", np.array([-0.2, 1.0, -0.6]), 50_000, _rng(22)
    )
    eta = lnk.g(mu)
    slope, intercept = M.calibration(y, eta, fam, lnk)
    sm_fit = sm.GLM(y, sm.add_constant(eta), family=sm.families.Binomial()).fit(tol=1e-12)
    assert slope == pytest.approx(sm_fit.params[1], rel=1e-8)
    assert intercept == pytest.approx(sm_fit.params[0], abs=1e-8)
    # the true linear predictor is calibrated: slope within 5 standard errors of 1
    assert abs(slope - 1.0) < 5 * sm_fit.bse[1]
    assert abs(intercept) < 5 * sm_fit.bse[0]
    # a linear predictor blown up by 2 has slope 1/2
    slope2, _ = M.calibration(y, 2.0 * eta, fam, lnk)
    assert slope2 == pytest.approx(slope / 2.0, rel=1e-8)
    # poisson: against statsmodels too
    fam, lnk, _, y, mu = _glm_data("poisson", "log", np.array([0.5, 0.4, 0.2]), 5000, _rng(23))
    eta_hat = lnk.g(mu) * 1.1 - 0.1
    slope, intercept = M.calibration(y, eta_hat, fam, lnk)
    sm_fit = sm.GLM(y, sm.add_constant(eta_hat), family=sm.families.Poisson()).fit(tol=1e-12)
    np.testing.assert_allclose([intercept, slope], sm_fit.params, rtol=1e-7)
    assert np.isnan(M.calibration(y, np.r_[np.inf, eta_hat[1:]], fam, lnk)[0])


def test_glm_projection_recovers_a_glm_mean_exactly():
    rng = _rng(24)
    for family, link, beta in [
        ("poisson", "log", np.array([0.7, 0.3, -0.2, 0.1])),
        ("bernoulli", "probit", np.array([-0.3, 0.8, -0.5, 0.2])),
        ("gamma", "log", np.array([0.5, 0.2, -0.3, 0.1])),
    ]:
        fam, lnk, X, _, mu = _glm_data(family, link, beta, 2000, rng)
        np.testing.assert_allclose(M.glm_projection(X, mu, fam, lnk), beta, rtol=1e-8, atol=1e-10)


def test_glm_projection_of_a_non_glm_mean_matches_reference_irls():
    import statsmodels.api as sm

    rng = _rng(25)
    fam, lnk, X, _, _ = _glm_data("poisson", "log", np.array([0.0, 0.0, 0.0]), 3000, rng)
    mu_net = np.log1p(np.exp(1.0 + X[:, 0] - 0.5 * X[:, 1] ** 2))  # a softplus network-like mean
    w = rng.uniform(0.5, 2.0, 3000)
    off = rng.normal(scale=0.1, size=3000)
    got = M.glm_projection(X, mu_net, fam, lnk, weights=w, offset=off)
    want = ref.irls(X, mu_net, "poisson", "log", weights=w, offset=off)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    sm_fit = sm.GLM(
        mu_net, sm.add_constant(X), family=sm.families.Poisson(), var_weights=w, offset=off
    ).fit(tol=1e-13)
    np.testing.assert_allclose(got, sm_fit.params, rtol=1e-7, atol=1e-9)
    # fractional binary responses (a bernoulli network's probabilities)
    fam_b, lnk_b = _family("bernoulli", {}), __import__("simbench").links.get("logit")
    p_net = 1.0 / (1.0 + np.exp(-(X[:, 0] + 0.3 * np.sin(3 * X[:, 1]))))
    np.testing.assert_allclose(
        M.glm_projection(X, p_net, fam_b, lnk_b),
        ref.irls(X, p_net, "bernoulli", "logit"),
        rtol=1e-8,
        atol=1e-10,
    )
    assert M.glm_projection(X, np.r_[-1.0, mu_net[1:]], fam, lnk) is None


# ---------------------------------------------------------------------------------------
# the assembled row on simulated data
# ---------------------------------------------------------------------------------------


def _dataset(family="poisson", **kw):
    from simbench.data import Scenario, simulate

    scenario = Scenario.from_dict({"family": family, "n": 800, "n_test": 4000, "p": 3, **kw})
    return simulate(scenario, 7)


def _reference(data):
    from simbench.fit.glm import fit_glm

    fit = fit_glm(
        data.X, data.y, family=data.family, link=data.link, weights=data.weights, offset=data.offset
    )
    return fit, *M.reference_columns(data, fit)


@pytest.mark.parametrize("family", ["poisson", "bernoulli", "gamma", "binomial"])
def test_cell_metrics_of_the_mle_and_of_the_truth(family):
    kw = {"trials": 4} if family == "binomial" else {}
    if family == "gamma":  # the canonical (inverse) link needs a bounded design
        kw = {"design": "uniform", "mean": 1.0, "signal": 0.3}
    data = _dataset(family, **kw)
    fit, reference, cols = _reference(data)
    assert cols["mle_status"] == "ok"
    np.testing.assert_allclose(cols["beta_mle"], fit.coef)
    np.testing.assert_allclose(cols["mle_se"], fit.bse)
    np.testing.assert_allclose(cols["mle_se_sandwich"], np.sqrt(np.diag(fit.covariance_sandwich)))
    assert cols["beta_true"] == data.beta.tolist()

    mu_train = fit.predict(data.X, offset=data.offset)
    mu_test = fit.predict(data.X_test, offset=data.offset_test)
    row = M.cell_metrics(data, mu_train, mu_test, coef=fit.coef, reference=reference)
    assert set(M.METRIC_COLUMNS) <= set(row)
    assert row["coef_err_mle"] == 0.0
    assert row["coef_z_mle"] == 0.0
    assert row["coef_err_truth"] == pytest.approx(ref.coef_err_truth(fit.coef, data.beta))
    assert row["coef_z_truth"] == pytest.approx(
        ref.coef_z_mle(fit.coef, data.beta, reference.fisher_truth), rel=1e-10
    )
    assert abs(row["balance"]) < 1e-10  # canonical links
    name = data.family.name
    assert row["excess_deviance"] == pytest.approx(
        ref.excess_deviance(name, data.mu_test, mu_test, data.phi, data.weights_test), rel=1e-10
    )
    assert row["dev_train"] == pytest.approx(
        ref.mean_deviance(name, data.y, mu_train, data.weights), rel=1e-10
    )
    assert row["dev_test"] == pytest.approx(
        ref.mean_deviance(name, data.y_test, mu_test, data.weights_test), rel=1e-10
    )
    assert row["eta_rmse"] == pytest.approx(
        ref.eta_rmse(data.link.g(mu_test), data.eta_test), rel=1e-10
    )
    assert row["mu_rel_err"] == pytest.approx(ref.mu_rel_err(mu_test, data.mu_test), rel=1e-12)
    assert 0.5 < row["calib_slope"] < 1.5
    if data.family.is_binary:
        assert row["auc"] == pytest.approx(ref.auc(mu_test, data.y_test, data.weights_test))
        assert 0.5 < row["auc_oracle"] < 1.0
    else:
        assert np.isnan(row["auc"]) and np.isnan(row["auc_oracle"])
    # without coefficients, the GLM projection on the reference sample gives the same ones
    row2 = M.cell_metrics(data, mu_train, mu_test, coef=None, reference=reference)
    np.testing.assert_allclose(row2["beta_hat"], fit.coef, rtol=1e-7, atol=1e-9)
    # the truth itself: no excess deviance, no eta error
    truth = M.cell_metrics(data, data.mu, data.mu_test, coef=data.beta, reference=reference)
    assert truth["excess_deviance"] == 0.0
    assert truth["eta_rmse"] < 1e-14  # g(h(eta)) round trip
    assert truth["mu_rel_err"] == 0.0
    assert truth["coef_err_truth"] == 0.0


def test_cell_metrics_margin_loss_and_failed_reference():
    data = _dataset("bernoulli")
    fit, reference, _ = _reference(data)
    score_train = data.X @ data.beta[1:] * 3.0
    score_test = data.X_test @ data.beta[1:] * 3.0
    row = M.cell_metrics(
        data,
        score_train,
        score_test,
        coef=np.r_[0.0, 3 * data.beta[1:]],
        margin=True,
        reference=reference,
    )
    assert row["coef_cos_truth"] == pytest.approx(1.0, abs=1e-14)
    assert row["auc"] == pytest.approx(roc_auc_score(data.y_test, score_test), abs=1e-14)
    computed = {"coef_cos_truth", "auc", "auc_oracle"}
    assert all(np.isnan(row[k]) for k in M.METRIC_COLUMNS if k not in computed)
    # hidden-layer margin network: the score's least-squares projection keeps the direction
    row = M.cell_metrics(data, score_train, score_test + 1.0, margin=True, reference=reference)
    assert row["coef_cos_truth"] == pytest.approx(1.0, abs=1e-12)
    # no MLE: the metrics against it are NaN, the others are computed
    mu_test = fit.predict(data.X_test)
    row = M.cell_metrics(
        data, fit.predict(data.X), mu_test, coef=fit.coef, reference=M.Reference("separation")
    )
    assert np.isnan(row["coef_err_mle"]) and np.isnan(row["coef_z_mle"])
    assert np.isfinite(row["coef_err_truth"]) and np.isfinite(row["excess_deviance"])
    # a prediction outside (0, 1): deviance-based metrics are NaN, the rest are not
    bad = mu_test.copy()
    bad[0] = 1.2
    row = M.cell_metrics(data, fit.predict(data.X), bad, coef=fit.coef, reference=reference)
    for k in ("excess_deviance", "dev_test", "eta_rmse", "calib_slope", "calib_intercept"):
        assert np.isnan(row[k]), k
    for k in ("dev_train", "balance", "mu_rel_err", "auc", "coef_z_mle"):
        assert np.isfinite(row[k]), k


# ---------------------------------------------------------------------------------------
# the fused passes and the compiled refits against the separate functions and fit_glm
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "kw"),
    [
        ("poisson", {}),
        ("bernoulli", {}),
        ("binomial", {"trials": 3}),
        ("gamma", {"link": "log"}),
        ("gaussian", {"link": "log", "mean": 3.0}),
        ("negative_binomial", {"alpha": 0.5}),
        ("poisson", {"exposure": True}),
    ],
)
def test_cell_metrics_fused_passes_equal_the_separate_metrics(family, kw):
    # the fused passes sum the same terms in the same order: equal bit for bit
    data = _dataset(family, **kw)
    fit, reference, _ = _reference(data)
    rng = _rng(30)
    mu_train = fit.predict(data.X, offset=data.offset) * np.exp(rng.normal(0, 0.01, data.n))
    mu_test = fit.predict(data.X_test, offset=data.offset_test)
    if data.family.is_binary:
        mu_train = np.clip(mu_train, 1e-3, 1 - 1e-3)
    row = M.cell_metrics(data, mu_train, mu_test, coef=fit.coef, reference=reference)
    fam, w, wt = data.family, data.weights, data.weights_test
    assert row["dev_train"] == M.mean_deviance(fam, data.y, mu_train, w)
    assert row["dev_test"] == M.mean_deviance(fam, data.y_test, mu_test, wt)
    assert row["excess_deviance"] == M.excess_deviance(fam, data.mu_test, mu_test, data.phi, wt)
    assert row["eta_rmse"] == M.eta_rmse(data.link.g(mu_test), data.eta_test)
    assert row["mu_rel_err"] == M.mu_rel_err(mu_test, data.mu_test)
    assert row["balance"] == M.balance(data.y, mu_train, w)
    assert row["balance_max"] == M.balance_max(data.X, data.y, mu_train, w)
    assert row["coef_err_truth"] == M.coef_err_truth(fit.coef, data.beta)
    assert row["coef_z_truth"] == M.coef_z_truth(fit.coef, data.beta, reference.fisher_truth)
    # an invalid training mean makes only the training deviance NaN
    bad = mu_train.copy()
    bad[3] = -1.0 if fam.name != "gaussian" else np.nan
    row = M.cell_metrics(data, bad, mu_test, coef=fit.coef, reference=reference)
    assert np.isnan(row["dev_train"]) and np.isfinite(row["dev_test"])


def _fit_glm_calibration(y, eta, fam, lnk, w=None):
    from simbench.fit.glm import fit_glm

    fit = fit_glm(eta[:, None], y, family=fam, link=lnk, weights=w, tol=1e-15, max_iter=300)
    return fit


@pytest.mark.parametrize(
    ("family", "link", "beta"),
    [
        ("poisson", "log", [0.5, 0.4, 0.2]),
        ("poisson", "sqrt", [2.0, 0.3, -0.2]),
        ("bernoulli", "logit", [-0.2, 1.0, -0.6]),
        ("bernoulli", "probit", [-0.2, 0.6, -0.4]),
        ("bernoulli", "cloglog", [-0.5, 0.5, -0.3]),
        ("gamma", "log", [0.5, 0.3, 0.2]),
        ("gamma", "inverse", [0.5, 0.05, -0.05]),
        ("gaussian", "identity", [1.0, 0.5, -0.5]),
    ],
)
def test_compiled_calibration_is_the_maximum_likelihood_fit(family, link, beta):
    # the compiled refit stops within rounding of the optimum that fit_glm reaches at a
    # tolerance tighter than its default
    fam, lnk, _, y, mu = _glm_data(family, link, np.array(beta), 3000, _rng(31))
    eta = lnk.g(mu) * 1.1 - 0.05
    slope, intercept = M.calibration(y, eta, fam, lnk)
    tight = _fit_glm_calibration(y, eta, fam, lnk)
    assert tight.status == "ok"
    se = np.sqrt(np.diag(tight.covariance))
    assert abs(intercept - tight.coef[0]) < 1e-9 * se[0]
    assert abs(slope - tight.coef[1]) < 1e-9 * se[1]
    # weights: integer weights give the fit of repeated rows
    w = _rng(32).integers(1, 3, size=y.size).astype(float)
    got = M.calibration(y, eta, fam, lnk, w)
    tight = _fit_glm_calibration(
        np.repeat(y, w.astype(int)), np.repeat(eta, w.astype(int)), fam, lnk
    )
    np.testing.assert_allclose(got, tight.coef[::-1], rtol=1e-9, atol=1e-12)


def test_compiled_refits_hand_failures_to_fit_glm():
    from simbench import families, links

    bern, logit = families.get("bernoulli"), links.get("logit")
    rng = _rng(33)
    eta = rng.normal(size=400)
    # y separated by eta: fit_glm's status is "separation", so no calibration
    y = (eta > 0.0).astype(float)
    assert all(np.isnan(M.calibration(y, eta, bern, logit)))
    # a constant predictor: the calibration design is singular
    y = (rng.random(400) < 0.4).astype(float)
    assert all(np.isnan(M.calibration(y, np.full(400, 0.3), bern, logit)))
    # an overflowing predictor is fit_glm's input error, as before
    from simbench.errors import ValidationError

    with pytest.raises(ValidationError):
        M.calibration(y, np.r_[1e300, eta[1:]], bern, logit)
    # a projection whose response leaves the mean space: None
    X = rng.normal(size=(400, 2))
    assert M.glm_projection(X, np.r_[1.5, np.full(399, 0.5)], bern, logit) is None


def test_compiled_refit_matches_fit_glm_on_a_quasi_separated_calibration():
    # boundary responses fitted near the boundary: the separation check decides, as in
    # fit_glm (here the classes overlap, so the fit stands)
    from simbench import families, links
    from simbench.fit.glm import fit_glm

    bern, logit = families.get("bernoulli"), links.get("logit")
    rng = _rng(34)
    eta = rng.normal(scale=6.0, size=2000)
    y = (rng.random(2000) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    slope, intercept = M.calibration(y, eta, bern, logit)
    fit = fit_glm(eta[:, None], y, family=bern, link=logit)
    assert fit.status == "ok"
    np.testing.assert_allclose([intercept, slope], fit.coef, rtol=1e-9, atol=1e-12)
