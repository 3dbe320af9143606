"""Tests of simbench.data: exact samplers, designs, the truth, reproducibility, validation.

The sampler tests compare sample moments with the exact cumulants of each law (derived in
``_cumulants`` below, independently of the sampler): the mean within 5 standard errors,
the variance within 5 standard errors computed from the exact fourth cumulant, and the third
central moment within 5 empirical standard errors.  Seeds are fixed, so a pass is
reproducible; a wrong parameterisation moves a moment by many standard errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
from scipy import optimize, special

from simbench import families, links
from simbench.data import (
    DESIGNS,
    SCENARIO_KEYS,
    Dataset,
    Scenario,
    sample,
    simulate,
    true_beta,
)
from simbench.errors import UnknownNameError, ValidationError

SQRT3 = math.sqrt(3.0)
ARRAYS = ("X", "y", "weights", "offset", "eta", "mu")
TEST_ARRAYS = tuple(a + "_test" for a in ARRAYS)


# ---- exact cumulants of every family's law --------------------------------------------------


def _cumulants(fam: families.Family, mu: float, phi: float, w: float) -> tuple[float, ...]:
    """First four cumulants of ``y`` at mean ``mu``, dispersion ``phi``, prior weight ``w``."""
    name = fam.name
    if name == "gaussian":
        return mu, phi / w, 0.0, 0.0
    if name in ("bernoulli", "binomial"):
        q = mu * (1.0 - mu)
        c = (mu, q, q * (1.0 - 2.0 * mu), q * (1.0 - 6.0 * q))  # one trial
        return tuple(w * cr / w**r for r, cr in enumerate(c, start=1))  # proportion of w
    if name == "poisson":  # Poisson(w mu) / w
        return tuple(w * mu / w**r for r in range(1, 5))
    if name == "gamma":  # shape k = w / phi, scale theta = mu phi / w
        k, theta = w / phi, mu * phi / w
        return tuple(math.factorial(r - 1) * k * theta**r for r in range(1, 5))
    if name == "inverse_gaussian":  # IG(mu, lambda = w / phi)
        lam = w / phi
        return mu, mu**3 / lam, 3.0 * mu**5 / lam**2, 15.0 * mu**7 / lam**3
    if name == "negative_binomial":
        # N | L ~ Poisson(L), L ~ Gamma(w / alpha, alpha mu): the factorial cumulants of N are
        # the cumulants of L; cumulants follow with Stirling numbers of the second kind
        k, theta = w / fam.param, fam.param * mu
        f = [math.factorial(r - 1) * k * theta**r for r in range(1, 5)]
        c = (f[0], f[1] + f[0], f[2] + 3 * f[1] + f[0], f[3] + 6 * f[2] + 7 * f[1] + f[0])
        return tuple(cr / w**r for r, cr in enumerate(c, start=1))
    if name == "tweedie":  # compound Poisson: kappa_r = lambda E[X^r], X ~ Gamma(a, theta)
        p, ph = fam.param, phi / w
        lam = mu ** (2 - p) / (ph * (2 - p))
        a, theta = (2 - p) / (p - 1), ph * (p - 1) * mu ** (p - 1)
        return tuple(lam * theta**r * special.poch(a, r) for r in range(1, 5))
    raise AssertionError(name)


SAMPLER_CASES = [
    ("gaussian", 1.3, 2.0, None),
    ("gaussian", -0.7, 0.5, 3.0),
    ("bernoulli", 0.3, 1.0, None),
    ("binomial", 0.35, 1.0, 7.0),
    ("poisson", 3.5, 1.0, None),
    ("poisson", 0.8, 1.0, 4.0),
    ("gamma", 2.0, 0.5, None),
    ("gamma", 0.7, 2.0, 2.5),
    ("inverse_gaussian", 1.5, 0.7, None),
    ("inverse_gaussian", 0.6, 1.5, 2.0),
    ("negative_binomial(0.5)", 3.0, 1.0, None),
    ("negative_binomial(2.0)", 1.2, 1.0, 3.0),
    ("tweedie(1.2)", 2.0, 1.3, None),
    ("tweedie(1.5)", 0.8, 0.7, None),
    ("tweedie(1.8)", 3.0, 2.0, 2.0),
]


@pytest.mark.parametrize(("spec", "mu", "phi", "w"), SAMPLER_CASES)
def test_sampler_moments_at_constant_mu(spec, mu, phi, w):
    fam = families.get(spec)
    n = 200_000
    rng = np.random.default_rng(1234)
    y = sample(fam, np.full(n, mu), phi, rng, weights=None if w is None else np.full(n, w))
    k1, k2, k3, k4 = _cumulants(fam, mu, phi, 1.0 if w is None else w)
    assert y.dtype == np.float64 and y.shape == (n,)
    # mean: exact standard error sqrt(kappa2 / n)
    assert abs(y.mean() - k1) <= 5.0 * math.sqrt(k2 / n)
    # variance = phi V(mu) / w; Var(s^2) ~ (mu4 - sigma^4) / n = (kappa4 + 2 kappa2^2) / n
    assert k2 == pytest.approx(fam.variance(mu) * (phi if fam.has_dispersion else 1.0) / (w or 1))
    assert abs(y.var() - k2) <= 5.0 * math.sqrt((k4 + 2.0 * k2 * k2) / n)
    # third central moment (the shape of the law, not only its first two moments)
    c3 = (y - y.mean()) ** 3
    assert abs(c3.mean() - k3) <= 5.0 * c3.std() / math.sqrt(n) + 1e-12


@pytest.mark.parametrize(
    ("spec", "mu", "phi"),
    [("poisson", 1.7, 1.0), ("negative_binomial(0.8)", 2.5, 1.0), ("tweedie(1.4)", 1.1, 1.6)],
)
def test_sampler_mass_at_zero(spec, mu, phi):
    fam = families.get(spec)
    n = 200_000
    y = sample(fam, np.full(n, mu), phi, np.random.default_rng(99))
    if fam.name == "poisson":
        p0 = math.exp(-mu)
    elif fam.name == "negative_binomial":
        k = 1.0 / fam.param
        p0 = (k / (k + mu)) ** k
    else:  # no claims: N = 0 with probability exp(-lambda)
        p = fam.param
        p0 = math.exp(-(mu ** (2 - p)) / (phi * (2 - p)))
    assert abs(np.mean(y == 0.0) - p0) <= 5.0 * math.sqrt(p0 * (1 - p0) / n)


def _varying(fam: families.Family, rng, n):
    """Means across the family's domain and weights the family accepts."""
    if fam.is_binary:
        mu = rng.uniform(0.03, 0.97, n)
    elif fam.name == "gaussian":
        mu = rng.uniform(-3.0, 3.0, n)
    else:
        mu = np.exp(rng.uniform(-1.5, 2.0, n))
    if fam.name == "bernoulli":
        w = None
    elif fam.name in ("binomial", "poisson", "negative_binomial"):
        w = rng.integers(1, 11, n).astype(float)
    else:
        w = rng.uniform(0.3, 4.0, n)
    return mu, w


@pytest.mark.parametrize(
    "spec",
    [
        "gaussian",
        "bernoulli",
        "binomial",
        "poisson",
        "gamma",
        "inverse_gaussian",
        "negative_binomial(0.7)",
        "tweedie(1.35)",
        "tweedie(1.75)",
    ],
)
def test_sampler_standardised_residuals_at_varying_mu(spec):
    fam = families.get(spec)
    n = 200_000
    rng = np.random.default_rng(7)
    mu, w = _varying(fam, rng, n)
    phi = 1.7 if fam.has_dispersion else 1.0
    y = sample(fam, mu, phi, rng, weights=w)
    r = (y - mu) / np.sqrt(phi * fam.variance(mu) / (1.0 if w is None else w))
    assert abs(r.mean()) <= 5.0 / math.sqrt(n)
    r2 = r * r
    assert abs(r2.mean() - 1.0) <= 5.0 * r2.std() / math.sqrt(n)
    # the sampled values lie in the family's support (weighted counts: w y is the count)
    if fam.name in ("poisson", "negative_binomial", "binomial"):
        counts = y * (1.0 if w is None else w)
        assert np.abs(counts - np.round(counts)).max() < 1e-9 and counts.min() >= 0
    assert fam.y_valid(y, support=fam.name not in ("poisson", "negative_binomial")).all()


def test_sampler_supports_and_exact_laws():
    rng = np.random.default_rng(3)
    mu = np.full(20_000, 0.4)
    trials = np.full(20_000, 6.0)
    y = sample("binomial", mu, 1.0, rng, weights=trials)
    counts = y * trials
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0 and counts.max() <= 6
    assert set(np.unique(sample("bernoulli", mu, 1.0, rng))) == {0.0, 1.0}
    for spec in ("poisson", "negative_binomial"):
        yc = sample(spec, np.full(1000, 2.5), 1.0, rng)
        assert np.array_equal(yc, np.round(yc))
    assert (sample("gamma", np.full(1000, 2.0), 0.3, rng) > 0).all()
    assert (sample("inverse_gaussian", np.full(1000, 2.0), 0.3, rng) > 0).all()
    # phi is the dispersion only where the family has one
    a = sample("poisson", np.full(5, 3.0), 5.0, np.random.default_rng(0))
    b = sample("poisson", np.full(5, 3.0), 1.0, np.random.default_rng(0))
    assert np.array_equal(a, b)
    # the shape of mu is kept; an int seeds a generator
    assert sample("gamma", np.full((3, 4), 1.0), 1.0, 5).shape == (3, 4)
    assert np.array_equal(sample("gamma", np.ones(4), 1.0, 5), sample("gamma", np.ones(4), 1.0, 5))


def test_sampler_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValidationError, match="mu outside the domain of family 'poisson'"):
        sample("poisson", np.array([1.0, -1.0]), 1.0, rng)
    with pytest.raises(ValidationError, match="mu outside"):
        sample("bernoulli", np.array([0.5, 1.2]), 1.0, rng)
    with pytest.raises(ValidationError, match="binomial family with weights = trials"):
        sample("bernoulli", np.array([0.5]), 1.0, rng, weights=np.array([2.0]))
    with pytest.raises(ValidationError, match="trials: positive integers"):
        sample("binomial", np.array([0.5]), 1.0, rng, weights=np.array([2.5]))
    with pytest.raises(ValidationError, match="phi must be a number > 0; got 0"):
        sample("gamma", np.array([1.0]), 0, rng)
    with pytest.raises(ValidationError, match="weights must be finite and > 0"):
        sample("gamma", np.array([1.0]), 1.0, rng, weights=np.array([0.0]))
    with pytest.raises(ValidationError, match="seed must be an integer >= 0"):
        sample("gamma", np.array([1.0]), 1.0, -3)


# ---- designs --------------------------------------------------------------------------------


def _expected_moments(s: Scenario):
    p = s.p
    if s.design == "categorical":
        q = 1.0 / s.levels
        return np.full(p, q), np.diag(np.full(p, q)) - q * q
    if s.design == "correlated":
        j = np.arange(p)
        if s.correlation == "equi":
            return np.zeros(p), np.where(j[:, None] == j[None, :], 1.0, s.rho)
        return np.zeros(p), s.rho ** np.abs(j[:, None] - j[None, :])
    return np.zeros(p), np.eye(p)


DESIGN_CASES = [
    dict(design="gaussian", p=4),
    dict(design="correlated", p=5, rho=0.6, correlation="equi"),
    dict(design="correlated", p=5, rho=0.7, correlation="ar1"),
    dict(design="uniform", p=4),
    dict(design="binary", p=4),
    dict(design="mixed", p=5),
    dict(design="categorical", levels=5),
]


@pytest.mark.parametrize("kw", DESIGN_CASES, ids=lambda kw: "-".join(map(str, kw.values())))
def test_design_population_moments(kw):
    s = Scenario(n=200_000, n_test=10, **kw)
    X = simulate(s, 5).X
    mean, cov = _expected_moments(s)
    se = 5.0 / math.sqrt(s.n)  # every entry has variance <= 1 (<= 2 for products)
    np.testing.assert_allclose(X.mean(axis=0), mean, atol=se)
    np.testing.assert_allclose(np.cov(X, rowvar=False), cov, atol=1.5 * se)


def test_design_supports():
    X = simulate(Scenario(design="uniform", n=5000, n_test=1), 1).X
    assert X.min() >= -SQRT3 and X.max() <= SQRT3 and X.min() < -1.7 and X.max() > 1.7
    X = simulate(Scenario(design="binary", n=5000, n_test=1), 1).X
    assert set(np.unique(X)) == {-1.0, 1.0}
    X = simulate(Scenario(design="mixed", p=5, n=5000, n_test=1), 1).X
    assert all(np.unique(X[:, j]).size == 5000 for j in range(3))  # ceil(5/2) continuous
    assert all(set(np.unique(X[:, j])) == {-1.0, 1.0} for j in range(3, 5))
    X = simulate(Scenario(design="mixed", p=1, n=100, n_test=1), 1).X
    assert np.unique(X).size == 100


def test_categorical_one_hot():
    s = Scenario.from_dict({"design": "categorical", "levels": 6, "n": 60_000, "n_test": 10})
    assert s.p == 5
    d = simulate(s, 2)
    X = d.X
    assert X.shape == (60_000, 5)
    assert set(np.unique(X)) == {0.0, 1.0}
    assert X.sum(axis=1).max() == 1.0  # at most one dummy, none for the reference level
    freq = np.concatenate([[np.mean(X.sum(axis=1) == 0)], X.mean(axis=0)])
    np.testing.assert_allclose(freq, 1 / 6, atol=5 * math.sqrt((1 / 6) * (5 / 6) / 60_000))
    # one mean per level: eta takes exactly `levels` values b0 and b0 + beta_j
    level_eta = np.unique(d.eta)
    np.testing.assert_allclose(np.sort(level_eta), np.sort(d.beta[0] + np.r_[0.0, d.beta[1:]]))
    assert Scenario.from_dict({"design": "categorical", "p": 2}).levels == 3
    assert Scenario(design="categorical").p == 3  # default levels 4
    with pytest.raises(ValidationError, match="'p' and 'levels' disagree"):
        Scenario.from_dict({"design": "categorical", "p": 5, "levels": 4})


# ---- the truth ------------------------------------------------------------------------------


def test_truth_gaussian_log_closed_form():
    s = Scenario(family="poisson", design="gaussian", p=6, signal=0.8, mean=3.0)
    beta = true_beta(s)
    assert beta[0] == pytest.approx(math.log(3.0) - 0.8**2 / 2, abs=1e-14)
    j = np.arange(1, 7)
    d = (-1.0) ** (j - 1) / np.sqrt(j)
    np.testing.assert_allclose(beta[1:], 0.8 * d / np.linalg.norm(d), rtol=1e-14)


@pytest.mark.parametrize("correlation", ["equi", "ar1"])
def test_truth_signal_uses_population_covariance(correlation):
    s = Scenario(design="correlated", rho=0.8, correlation=correlation, p=7, signal=1.3)
    beta = true_beta(s)
    _, cov = _expected_moments(s)
    assert math.sqrt(beta[1:] @ cov @ beta[1:]) == pytest.approx(1.3, rel=1e-13)
    assert beta[0] == pytest.approx(math.log(2.0) - 1.3**2 / 2, rel=1e-13)


def test_truth_numerical_intercept_is_exact_on_atoms():
    # categorical design: E[h(eta)] is an exact average over the levels
    s = Scenario(family="poisson", link="sqrt", design="categorical", levels=4, mean=3.0)
    b = true_beta(s)
    assert np.mean((b[0] + np.r_[0.0, b[1:]]) ** 2) == pytest.approx(3.0, rel=1e-12)
    s = Scenario(family="gamma", link="inverse", design="binary", p=3, signal=0.2, mean=1.5)
    b = true_beta(s)
    signs = np.array([[a, c, e] for a in (-1, 1) for c in (-1, 1) for e in (-1, 1)], float)
    assert np.mean(1.0 / (b[0] + signs @ b[1:])) == pytest.approx(1.5, rel=1e-12)


TRUTH_CASES = [
    ("poisson", "log", "gaussian", 2.0, False),
    ("poisson", "log", "uniform", 3.0, True),
    ("poisson", "log", "categorical", 3.0, False),
    ("poisson", "identity", "uniform", 2.0, False),
    ("poisson", "sqrt", "binary", 3.0, False),
    ("gamma", "inverse", "uniform", 0.4, False),
    ("gamma", "power(0.3)", "uniform", 2.0, False),
    ("inverse_gaussian", "canonical", "uniform", 0.5, False),
    ("gaussian", "log", "mixed", 2.0, False),
    ("gaussian", "identity", "correlated", -1.0, False),
    ("negative_binomial(0.5)", "log", "correlated", 2.0, True),
    ("tweedie(1.3)", "log", "binary", 2.0, False),
]


@pytest.mark.parametrize(("family", "link", "design", "mean", "exposure"), TRUTH_CASES)
def test_achieved_signal_and_mean(family, link, design, mean, exposure):
    s = Scenario(
        family=family,
        link=link,
        design=design,
        mean=mean,
        signal=0.3,
        n=300_000,
        n_test=10,
        exposure=exposure,
    )
    d = simulate(s, 11)
    lin = d.eta - d.offset
    assert lin.std() == pytest.approx(0.3, rel=0.01)
    rate = d.mu / np.exp(d.offset)  # mean response per unit exposure
    assert rate.mean() == pytest.approx(mean, abs=5 * rate.std() / math.sqrt(s.n) + 1e-3)
    y_rate = d.y / np.exp(d.offset)
    assert y_rate.mean() == pytest.approx(mean, abs=5 * y_rate.std() / math.sqrt(s.n))


def test_truth_is_a_property_of_the_scenario():
    s = Scenario(family="gamma", link="sqrt", design="uniform", mean=5.0, dispersion=0.5)
    b1, b2 = simulate(s, 1).beta, simulate(s, 2).beta
    assert np.array_equal(b1, b2) and np.array_equal(b1, true_beta(s))
    # binary families: intercept 0, mean ignored
    b = true_beta(Scenario(family="bernoulli", mean=123.0, signal=1.0))
    assert b[0] == 0.0
    # explicit beta overrides signal and mean
    s = Scenario(family="poisson", p=2, beta=[0.2, 0.5, -0.3], signal=9.0, mean=50.0)
    d = simulate(s, 4)
    np.testing.assert_array_equal(d.beta, [0.2, 0.5, -0.3])
    np.testing.assert_allclose(d.eta, 0.2 + 0.5 * d.X[:, 0] - 0.3 * d.X[:, 1], rtol=0, atol=1e-14)
    # signal 0: constant mean
    assert np.all(true_beta(Scenario(signal=0.0, mean=4.0))[1:] == 0.0)
    assert true_beta(Scenario(signal=0.0, mean=4.0))[0] == pytest.approx(math.log(4.0))


def test_domain_violations_are_reported():
    # identity-link Poisson on a Gaussian design: P(eta <= 0) = Phi(-mean / signal) > 0
    s = Scenario(family="poisson", link="identity", design="gaussian", signal=0.5, mean=2.0)
    with pytest.raises(ValidationError) as err:
        true_beta(s)
    msg = str(err.value)
    assert "(0, inf)" in msg and "bounded design" in msg
    assert f"{special.ndtr(-4.0):.3g}" in msg  # the exact fraction of the population
    with pytest.raises(ValidationError, match="fraction"):
        simulate(s, 1)
    # the same on a bounded design works, with every mean positive
    d = simulate(dataclasses.replace(s, design="uniform"), 1)
    assert d.mu.min() > 0 and d.mu_test.min() > 0
    # identity-link Bernoulli needs an intercept inside (0, 1): give beta
    with pytest.raises(ValidationError, match=r"must lie in \(0, 1\).*explicit beta"):
        true_beta(Scenario(family="bernoulli", link="identity", design="uniform", p=2))
    d = simulate(
        Scenario(family="bernoulli", link="identity", design="uniform", p=2, beta=[0.5, 0.1, 0.1]),
        1,
    )
    assert 0 < d.mu.min() and d.mu.max() < 1
    # a mean out of reach of the valid intercepts
    with pytest.raises(ValidationError, match="target mean 2 is not reachable"):
        true_beta(Scenario(family="gamma", link="inverse", design="uniform", signal=0.3))


# ---- datasets: structure and reproducibility ----------------------------------------------


def test_dataset_structure():
    s = Scenario(family="binomial", trials=5, n=300, n_test=700, p=3, signal=1.0)
    d = simulate(s, 0)
    assert isinstance(d, Dataset) and d.n == 300 and d.p == 3
    assert d.X.shape == (300, 3) and d.X_test.shape == (700, 3)
    for name in ARRAYS + TEST_ARRAYS + ("beta",):
        a = getattr(d, name)
        assert a.dtype == np.float64 and a.flags.c_contiguous and not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 1.0
    assert d.beta.shape == (4,)
    for suffix in ("", "_test"):
        X, eta, mu = getattr(d, "X" + suffix), getattr(d, "eta" + suffix), getattr(d, "mu" + suffix)
        np.testing.assert_allclose(eta, d.beta[0] + X @ d.beta[1:], rtol=0, atol=1e-13)
        np.testing.assert_array_equal(mu, d.link.h(eta))
        np.testing.assert_array_equal(getattr(d, "weights" + suffix), 5.0)
        counts = getattr(d, "y" + suffix) * 5.0
        assert np.array_equal(counts, np.round(counts))
    assert d.family == families.get("binomial") and d.link == links.get("logit")
    assert d.phi == 1.0 and d.scenario is s
    assert "n=300" in repr(d) and s.id in repr(d)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.y = None  # type: ignore[misc]
    assert simulate(Scenario(family="gamma", link="log", dispersion=0.4), 0).phi == 0.4
    assert simulate(Scenario(family="negative_binomial", dispersion=0.4), 0).phi == 1.0


def _same(a: Dataset, b: Dataset, names) -> bool:
    return all(getattr(a, k).tobytes() == getattr(b, k).tobytes() for k in names)


REPRO_SCENARIOS = [
    Scenario(family="tweedie", dispersion=1.4, design="mixed", p=4, n=500, n_test=800),
    Scenario(family="poisson", exposure=True, design="correlated", correlation="ar1", n=400),
    Scenario(family="bernoulli", separable=True, signal=2.0, n=300, n_test=500),
]


@pytest.mark.parametrize("s", REPRO_SCENARIOS, ids=lambda s: s.family)
def test_bit_for_bit_reproducible(s):
    a, b = simulate(s, 2026), simulate(s, 2026)
    assert _same(a, b, ARRAYS + TEST_ARRAYS + ("beta",))
    ss = np.random.SeedSequence(2026)
    c = simulate(s, ss)
    assert _same(a, c, ARRAYS + TEST_ARRAYS)
    assert ss.n_children_spawned == 0  # the caller's sequence is not consumed
    assert _same(c, simulate(s, ss), ARRAYS)
    other = simulate(s, 2027)
    assert not np.array_equal(a.X, other.X) and not np.array_equal(a.y, other.y)
    assert not np.array_equal(a.X_test, other.X_test)
    # from a plain dict too
    assert _same(a, simulate(s.to_dict(), 2026), ARRAYS)


@pytest.mark.parametrize("s", REPRO_SCENARIOS, ids=lambda s: s.family)
def test_sample_sizes_do_not_couple_train_and_test(s):
    base = simulate(s, 8)
    more_test = simulate(dataclasses.replace(s, n_test=s.n_test + 137), 8)
    assert _same(base, more_test, ARRAYS)
    more_train = simulate(dataclasses.replace(s, n=s.n + 59), 8)
    assert _same(base, more_train, TEST_ARRAYS)


# ---- separable data -------------------------------------------------------------------------


def _lp_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Is there w with t_i (w0 + x_i' w) >= 1 for all i (t = 2y - 1)?  A feasibility LP."""
    t = 2.0 * y - 1.0
    A = -t[:, None] * np.column_stack([np.ones(len(y)), X])
    res = optimize.linprog(
        np.zeros(A.shape[1]),
        A_ub=A,
        b_ub=-np.ones(len(y)),
        bounds=[(None, None)] * A.shape[1],
        method="highs",
    )
    assert res.status in (0, 2), res.message
    return res.status == 0


@pytest.mark.parametrize("family", ["bernoulli", "binomial"])
def test_separable_option(family):
    s = Scenario(family=family, trials=3, separable=True, signal=1.5, p=3, n=400, n_test=1000)
    d = simulate(s, 3)
    for y, eta, X in ((d.y, d.eta, d.X), (d.y_test, d.eta_test, d.X_test)):
        np.testing.assert_array_equal(y, (eta > 0).astype(float))
        assert np.abs(eta).min() >= 0.1 * 1.5  # the removed band around the hyperplane
        assert 0.3 < y.mean() < 0.7
        assert _lp_separable(X, y)
    # the LP can fail: the same scenario without the option is not separable
    d = simulate(dataclasses.replace(s, separable=False), 3)
    assert not _lp_separable(d.X, d.y)


# ---- exposure -------------------------------------------------------------------------------


def test_exposure_offset():
    s = Scenario(family="poisson", exposure=True, n=50_000, n_test=100, mean=3.0)
    d = simulate(s, 6)
    exposure = np.exp(d.offset)
    assert exposure.min() >= 0.5 and exposure.max() <= 2.0
    assert exposure.min() < 0.51 and exposure.max() > 1.99
    # log-uniform: log exposure is uniform on [log 1/2, log 2]
    assert np.mean(d.offset < 0) == pytest.approx(0.5, abs=5 * 0.5 / math.sqrt(s.n))
    np.testing.assert_allclose(d.eta - d.offset, d.beta[0] + d.X @ d.beta[1:], atol=1e-13)
    np.testing.assert_array_equal(d.mu, d.link.h(d.eta))
    np.testing.assert_allclose(d.mu, np.exp(d.eta), rtol=1e-15)
    assert not np.array_equal(simulate(dataclasses.replace(s, exposure=False), 6).offset, d.offset)
    assert np.all(simulate(dataclasses.replace(s, exposure=False), 6).offset == 0.0)
    # the design and the truth do not depend on the exposure
    assert np.array_equal(simulate(dataclasses.replace(s, exposure=False), 6).X, d.X)
    with pytest.raises(ValidationError, match="'exposure' needs the log link"):
        Scenario(family="poisson", link="identity", exposure=True)
    with pytest.raises(ValidationError, match="exposure = false"):
        Scenario(family="bernoulli", exposure=True)


# ---- scenarios: validation, canonical form, id -----------------------------------------------


def test_unknown_key_suggests_the_closest():
    with pytest.raises(UnknownNameError) as err:
        Scenario.from_dict({"family": "poisson", "sigal": 1.0})
    msg = str(err.value)
    assert "'sigal'" in msg and "did you mean 'signal'?" in msg and "accepted:" in msg
    assert all(k in msg for k in SCENARIO_KEYS)
    assert isinstance(err.value, ValidationError)
    with pytest.raises(ValidationError, match="must be a table"):
        Scenario.from_dict([("n", 3)])


BAD_VALUES = [
    ({"n": 0}, "'n' must be an integer >= 1; got 0"),
    ({"n": 1.5}, "'n' must be an integer >= 1; got 1.5"),
    ({"n": "100"}, "'n' must be an integer >= 1; got '100'"),
    ({"n": True}, "'n' must be an integer >= 1; got True"),
    ({"n_test": -5}, "'n_test' must be an integer >= 1"),
    ({"p": 0}, "'p' must be an integer from 1 to 10,000; got 0"),
    ({"p": 10_001}, "'p' must be an integer from 1 to 10,000; got 10001"),
    ({"p": 1e18}, "'p' must be an integer from 1 to 10,000; got 1e\\+18"),
    ({"levels": 1, "design": "categorical"}, "'levels' must be an integer from 2 to 10,001"),
    ({"levels": 10**6, "design": "categorical"}, "'levels' must be an integer from 2 to 10,001"),
    ({"rho": 1.0}, r"'rho' must be a number with 0 <= rho < 1; got 1.0"),
    ({"rho": -0.2}, r"'rho' must be a number with 0 <= rho < 1; got -0.2"),
    ({"signal": -1}, r"'signal' must be a number >= 0; got -1"),
    ({"signal": float("nan")}, r"'signal' must be a number >= 0; got nan"),
    ({"mean": 0.0}, r"'mean' must be a number > 0 \(a mean of the poisson family\); got 0.0"),
    ({"dispersion": 0}, r"'dispersion' must be a number > 0; got 0"),
    ({"family": "nb", "alpha": 0.0}, r"'alpha' must be a number > 0; got 0.0"),
    ({"family": "tweedie", "power": 2.0}, r"'power' must be a number with 1 < power < 2"),
    ({"family": "tweedie", "power": "1.5"}, r"'power' must be a number; got '1.5'"),
    ({"trials": 0}, r"'trials' must be an integer >= 1; got 0"),
    ({"exposure": "yes"}, r"'exposure' must be true or false; got 'yes'"),
    ({"separable": 1}, r"'separable' must be true or false; got 1"),
    ({"beta": [1.0, 2.0]}, r"'beta' must be null or a list of p \+ 1 = 6 numbers"),
    ({"beta": "1,2"}, r"'beta' must be null or a list"),
    ({"p": 1, "beta": [0.0, float("inf")]}, r"'beta' must be null or a list of p \+ 1 = 2"),
    ({"design": "gausian"}, r"'design'.*'gausian'; did you mean 'gaussian'\?; accepted: gauss"),
    ({"correlation": "ar2"}, r"did you mean 'ar1'\?; accepted: equi, ar1"),
    ({"family": "poison"}, r"'family'.*unknown family 'poison'; did you mean 'poisson'\?"),
    ({"family": "poisson(2)"}, r"'family' must be 'poisson' without a parameter"),
    ({"family": "poisson", "link": "logit"}, r"'link'.*'poisson' does not accept.*accepted: log"),
    ({"family": "gamma", "link": "lgo"}, r"'link'.*unknown link 'lgo'; did you mean 'log'\?"),
    ({"family": "tweedie(1.7)", "power": 1.5}, r"'power' is 1.5 but family 'tweedie\(1.7\)'"),
    ({"family": "gamma", "separable": True}, r"'separable' applies to bernoulli and binomial"),
    ({"family": "bernoulli", "separable": True, "signal": 0.0}, r"needs a hyperplane"),
]


@pytest.mark.parametrize(("data", "message"), BAD_VALUES, ids=lambda v: str(v)[:40])
def test_bad_values(data, message):
    with pytest.raises(ValidationError, match=message):
        Scenario.from_dict(data)


def test_values_are_normalised():
    s = Scenario.from_dict({"n": 1e4, "signal": 1, "family": "Normal", "design": "Uniform"})
    assert s.n == 10_000 and isinstance(s.n, int)
    assert s.signal == 1.0 and isinstance(s.signal, float)
    assert s.family == "gaussian" and s.link == "identity" and s.design == "uniform"
    t = Scenario.from_dict({"family": "tweedie(1.7)"})
    assert (t.family, t.power, t.link) == ("tweedie", 1.7, "log")
    assert t.get_family() == families.get("tweedie", power=1.7)
    nb = Scenario.from_dict({"family": "nb(0.5)", "alpha": 0.5})
    assert (nb.family, nb.alpha, nb.link) == ("negative_binomial", 0.5, "log")
    assert Scenario(family="gamma").link == "inverse"
    assert Scenario(family="inverse_gaussian").link == "inverse_squared"
    assert Scenario(family="poisson", link="exp").link == "log"
    assert Scenario(family="gamma", link="power(0.3)").link == "power(0.3)"
    assert Scenario(family="gamma", link="power(0.5)").link == "sqrt"
    assert Scenario(family="gamma", link="power(0.3)").get_link() == links.get("power", power=0.3)
    assert Scenario(beta=np.arange(6.0)).beta == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


def test_canonical_dict_and_id():
    s = Scenario()
    assert s.to_dict() == {
        "family": "poisson",
        "link": "log",
        "n": 1000,
        "n_test": 20000,
        "p": 5,
        "design": "gaussian",
        "rho": 0.5,
        "correlation": "equi",
        "levels": 4,
        "signal": 0.5,
        "mean": 2.0,
        "dispersion": 1.0,
        "alpha": 1.0,
        "power": 1.5,
        "trials": 1,
        "exposure": False,
        "separable": False,
        "beta": None,
    }
    text = json.dumps(s.to_dict(), sort_keys=True, separators=(",", ":"))
    assert s.id == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert s.id == "90b02eff412b"  # stored results are keyed on it: a change breaks resume
    assert list(s.to_dict()) == SCENARIO_KEYS
    data = {"family": "gamma", "link": "log", "n": 300, "design": "binary", "beta": [1, 0.5] * 3}
    a = Scenario.from_dict(data)
    b = Scenario.from_dict(dict(reversed(list(data.items()))))
    assert a == b and a.id == b.id and hash(a) == hash(b)
    assert Scenario.from_dict(a.to_dict()) == a
    assert json.loads(json.dumps(a.to_dict())) == a.to_dict()
    # spelling does not matter, content does
    assert Scenario(link="canonical").id == Scenario(link="log").id == Scenario(link="exp").id
    assert Scenario(family="nb").id == Scenario(family="negative_binomial").id
    assert Scenario(n=1001).id != s.id
    corr = Scenario(design="correlated")
    assert Scenario(design="correlated", rho=0.25).id != corr.id
    # keys that cannot change the data are reset, so a grid over them makes one scenario
    assert Scenario(rho=0.25).id == s.id
    assert Scenario(alpha=3.0).id == s.id and Scenario(power=1.2).id == s.id
    assert Scenario(trials=5).id == s.id and Scenario(dispersion=2.0).id == s.id
    assert Scenario(levels=6).id == s.id
    assert Scenario(family="nb", alpha=3.0).id != Scenario(family="nb").id
    assert (
        Scenario(family="gamma", link="log", dispersion=2.0).id
        != Scenario(family="gamma", link="log").id
    )
    assert Scenario(family="bernoulli", mean=0.3).id == Scenario(family="bernoulli").id
    assert len({Scenario(family=f).id for f in families.names()}) == len(families.names())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n = 5  # type: ignore[misc]


def test_simulate_input_validation():
    with pytest.raises(ValidationError, match="seed must be an integer >= 0"):
        simulate(Scenario(), -1)
    with pytest.raises(ValidationError, match="seed must be an integer >= 0"):
        simulate(Scenario(), 1.5)
    with pytest.raises(ValidationError, match="expected a Scenario"):
        simulate("poisson", 1)
    with pytest.raises(UnknownNameError, match="did you mean 'n_test'"):
        simulate({"ntest": 5}, 1)
    assert set(DESIGNS) == {"gaussian", "correlated", "uniform", "binary", "mixed", "categorical"}


def test_cdf_links_accept_means_that_round_to_one():
    # cloglog: mu = 1 - exp(-e^eta) is 1.0 in float64 for eta > ~3.6, still a probability
    data = simulate({"family": "bernoulli", "link": "cloglog", "n": 2000, "p": 5, "signal": 1.0}, 3)
    assert (data.mu == 1.0).any()
    assert set(np.unique(data.y)) <= {0.0, 1.0}
    assert np.all(data.y[data.mu == 1.0] == 1.0)
