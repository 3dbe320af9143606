"""Exponential families: kernels against plain SciPy, exact arithmetic and statsmodels;
normalisation and moments of every law; deviance identities; the vocabulary objects.

Tolerances (relative unless said otherwise):

* variance, V':                           1e-15
* unit deviance vs 60-digit closed form:  8 ulp (4 ulp typical), including y ~ mu
* unit deviance vs double closed form:    1e-12, away from y ~ mu where the form is exact
* log-likelihood vs scipy.stats:          1e-12 (Tweedie vs the compound sum: 1e-11)
* against statsmodels:                    1e-10 (its closed forms lose digits near y ~ mu)
* normalisation: discrete sums 1e-12, quadrature 1e-9 (quad's own accuracy)
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import families as ref
from scipy import integrate

from simbench import families
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes
from simbench.kernels import families as K

EPS = np.finfo(float).eps

# (spec, code, a) for every family and a spread of parameters
FAMILIES = [
    ("gaussian", codes.FAMILY_GAUSSIAN, 0.0),
    ("bernoulli", codes.FAMILY_BERNOULLI, 0.0),
    ("binomial", codes.FAMILY_BINOMIAL, 0.0),
    ("poisson", codes.FAMILY_POISSON, 0.0),
    ("gamma", codes.FAMILY_GAMMA, 0.0),
    ("inverse_gaussian", codes.FAMILY_INVERSE_GAUSSIAN, 0.0),
    ("negative_binomial(0.05)", codes.FAMILY_NEGATIVE_BINOMIAL, 0.05),
    ("negative_binomial(0.7)", codes.FAMILY_NEGATIVE_BINOMIAL, 0.7),
    ("negative_binomial(30)", codes.FAMILY_NEGATIVE_BINOMIAL, 30.0),
    ("tweedie(1.02)", codes.FAMILY_TWEEDIE, 1.02),
    ("tweedie(1.5)", codes.FAMILY_TWEEDIE, 1.5),
    ("tweedie(1.97)", codes.FAMILY_TWEEDIE, 1.97),
]
IDS = [f[0] for f in FAMILIES]

_Y = {
    codes.FAMILY_GAUSSIAN: [-7.5, -1.0, 0.0, 0.3, 2.0, 40.0],
    codes.FAMILY_BERNOULLI: [0.0, 1.0],
    codes.FAMILY_BINOMIAL: [0.0, 0.1, 0.25, 0.5, 0.8, 1.0],
    codes.FAMILY_POISSON: [0.0, 1.0, 2.0, 5.0, 17.0, 100.0, 1000.0],
    codes.FAMILY_GAMMA: [1e-3, 0.3, 1.0, 2.5, 40.0],
    codes.FAMILY_INVERSE_GAUSSIAN: [1e-3, 0.3, 1.0, 2.5, 40.0],
    codes.FAMILY_NEGATIVE_BINOMIAL: [0.0, 1.0, 2.0, 5.0, 17.0, 100.0, 1000.0],
    codes.FAMILY_TWEEDIE: [0.0, 1e-3, 0.3, 1.0, 2.5, 40.0],
}
_MU = {
    codes.FAMILY_GAUSSIAN: [-3.0, 0.0, 0.5, 2.0, 25.0],
    codes.FAMILY_BERNOULLI: [1e-9, 0.01, 0.3, 0.5, 0.9, 0.999],
    codes.FAMILY_BINOMIAL: [1e-9, 0.01, 0.3, 0.5, 0.9, 0.999],
    codes.FAMILY_POISSON: [1e-3, 0.5, 3.0, 40.0, 1200.0],
    codes.FAMILY_GAMMA: [0.01, 0.5, 1.0, 3.0, 100.0],
    codes.FAMILY_INVERSE_GAUSSIAN: [0.01, 0.5, 1.0, 3.0, 100.0],
    codes.FAMILY_NEGATIVE_BINOMIAL: [1e-3, 0.5, 3.0, 40.0, 1200.0],
    codes.FAMILY_TWEEDIE: [0.01, 0.5, 1.0, 3.0, 100.0],
}


def grid(code):
    """Every (y, mu) pair of the family's test values, as two flat arrays."""
    y, mu = np.meshgrid(_Y[code], _MU[code], indexing="ij")
    return y.ravel().copy(), mu.ravel().copy()


def near_grid(code):
    """Pairs with y close to mu (relative gaps 1e-1 ... 1e-9), where closed forms cancel."""
    mus = [m for m in _MU[code] if m > 0 and (code not in (1, 2) or 0.0 < m < 1.0)]
    ys, ms = [], []
    for m in mus:
        for gap in (0.3, 1e-1, 1e-3, 1e-5, 1e-7, 1e-9):
            for sign in (1.0, -1.0):
                y = m * (1.0 + sign * gap)
                if code in (1, 2) and not 0.0 < y < 1.0:
                    continue
                ys.append(y)
                ms.append(m)
    return np.array(ys), np.array(ms)


def deviance_codes():
    return [(c, a) for _, c, a in FAMILIES if c != codes.FAMILY_BERNOULLI]


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Compile every kernel once before any test (hypothesis runs must not pay for it)."""
    y = np.array([1.0, 0.0])
    mu = np.array([0.5, 0.5])
    out = np.empty(2)
    ok = np.empty(2, dtype=np.bool_)
    empty = np.empty(0)
    K.fam_unit_deviance(3, 0.0, 1.0, 0.5)
    K.fam_loglik(3, 0.0, 1.0, 0.5, 1.0, 1.0)
    K.fam_variance(3, 0.0, 0.5)
    K.fam_variance_d1(3, 0.0, 0.5)
    K.fam_variance_arr(3, 0.0, mu, out)
    K.fam_variance_d1_arr(3, 0.0, mu, out)
    K.fam_unit_deviance_arr(3, 0.0, y, mu, out)
    K.fam_loglik_arr(3, 0.0, y, mu, 1.0, empty, out)
    K.fam_deviance_sum(3, 0.0, y, mu, empty)
    K.fam_pearson_sum(3, 0.0, y, mu, empty)
    K.fam_mu_valid_arr(3, 0.0, mu, ok)
    K.fam_y_valid_arr(3, 0.0, y, ok)
    K.fam_y_deviance_valid_arr(3, 0.0, y, ok)


def kernel_deviance(code, a, y, mu):
    out = np.empty(np.size(y))
    return K.fam_unit_deviance_arr(code, a, np.asarray(y, float), np.asarray(mu, float), out)


def kernel_loglik(code, a, y, mu, phi=1.0, w=None):
    y = np.asarray(y, float)
    mu = np.broadcast_to(np.asarray(mu, float), y.shape).copy()
    w = np.empty(0) if w is None else np.broadcast_to(np.asarray(w, float), y.shape).copy()
    out = np.empty(y.size)
    return K.fam_loglik_arr(code, a, y, mu, phi, w, out)


# ---- variance -------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_variance_and_derivative_match_reference(spec, code, a):
    _, mu = grid(code)
    out = np.empty(mu.size)
    np.testing.assert_allclose(
        K.fam_variance_arr(code, a, mu, out), ref.variance(code, a, mu), rtol=1e-15
    )
    np.testing.assert_allclose(
        K.fam_variance_d1_arr(code, a, mu, out),
        ref.variance_d1(code, a, mu),
        rtol=1e-15,
        atol=1e-300,
    )
    fam = families.get(spec)
    np.testing.assert_allclose(fam.variance(mu), ref.variance(code, a, mu), rtol=1e-15)
    assert isinstance(fam.variance(2.0 if code not in (1, 2) else 0.25), float)


# ---- unit deviance --------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "a"), deviance_codes(), ids=[i for i in IDS if i != "bernoulli"])
def test_unit_deviance_to_the_last_digits(code, a):
    # against the closed form in 60-digit arithmetic: far from and close to y = mu
    y1, m1 = grid(code)
    y2, m2 = near_grid(code)
    y, mu = np.concatenate([y1, y2]), np.concatenate([m1, m2])
    got = kernel_deviance(code, a, y, mu)
    exact = np.array(
        [ref.unit_deviance_exact(code, a, yi, mi) for yi, mi in zip(y, mu, strict=True)]
    )
    # atol only absorbs the decimal reference's 1e-58 residue where the deviance is exactly 0
    np.testing.assert_allclose(got, exact, rtol=8 * EPS, atol=1e-50)


def test_closed_forms_would_fail_the_digit_test():
    # guards the previous test: the naive double formula misses 8 ulp near y = mu
    for code, a in [(3, 0.0), (6, 0.7), (7, 1.5), (4, 0.0)]:
        y, mu = near_grid(code)
        naive = ref.unit_deviance(code, a, y, mu)
        exact = np.array(
            [ref.unit_deviance_exact(code, a, yi, mi) for yi, mi in zip(y, mu, strict=True)]
        )
        assert np.max(np.abs(naive / exact - 1)) > 1e-6


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_unit_deviance_matches_double_reference(spec, code, a):
    y, mu = grid(code)
    far = np.abs(y - mu) > 0.2 * np.maximum(np.abs(mu), 1e-3)
    y, mu = y[far], mu[far]
    np.testing.assert_allclose(
        kernel_deviance(code, a, y, mu), ref.unit_deviance(code, a, y, mu), rtol=1e-12
    )
    np.testing.assert_allclose(
        families.get(spec).unit_deviance(y, mu), ref.unit_deviance(code, a, y, mu), rtol=1e-12
    )


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_deviance_zero_at_y_equals_mu_and_positive(spec, code, a):
    y, mu = grid(code)
    valid = (mu > 0) | (code == codes.FAMILY_GAUSSIAN)
    m = mu[valid]
    if code in (codes.FAMILY_BERNOULLI,):
        assert np.all(kernel_deviance(code, a, np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0)
    else:
        assert np.all(kernel_deviance(code, a, m, m) == 0.0)
    d = kernel_deviance(code, a, y, mu)
    assert np.all(d >= 0) and np.all(np.isfinite(d))


def _mpmath():
    return pytest.importorskip("mpmath")


@pytest.mark.parametrize(
    ("code", "a", "y", "mu", "expected"),
    [
        # closed-form limits, exact
        (codes.FAMILY_POISSON, 0.0, 0.0, 1e-300, 2e-300),
        (codes.FAMILY_POISSON, 0.0, 0.0, 1e300, 2e300),
        (codes.FAMILY_BERNOULLI, 0.0, 1.0, 1e-300, -2 * math.log(1e-300)),
        (codes.FAMILY_BERNOULLI, 0.0, 0.0, 1e-300, 2e-300),
        (codes.FAMILY_BERNOULLI, 0.0, 0.0, 1 - 2**-53, -2 * math.log(2**-53)),
        (codes.FAMILY_BERNOULLI, 0.0, 1.0, 1.0, 0.0),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 0.5, 0.0, 1e-20, 2e-20),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 2.0, 0.0, 3.0, math.log1p(6.0)),
        (codes.FAMILY_TWEEDIE, 1.5, 0.0, 4.0, 8.0),
        (codes.FAMILY_GAUSSIAN, 0.0, 1e200, -1e200, math.inf),
    ],
)
def test_deviance_edge_values(code, a, y, mu, expected):
    got = K.fam_unit_deviance(code, a, y, mu)
    if math.isinf(expected):
        assert got == expected
    else:
        assert got == pytest.approx(expected, rel=4 * EPS, abs=0)


@pytest.mark.parametrize(
    ("code", "a", "y", "mu"),
    [
        (codes.FAMILY_BINOMIAL, 0.0, 0.5, 1e-200),
        (codes.FAMILY_BINOMIAL, 0.0, 1e-300, 0.5),
        (codes.FAMILY_BINOMIAL, 0.0, 0.3, 0.3 * (1 + 1e-12)),
        (codes.FAMILY_GAMMA, 0.0, 1e-300, 1e300),
        (codes.FAMILY_GAMMA, 0.0, 1e150, 1e-150),
        (codes.FAMILY_INVERSE_GAUSSIAN, 0.0, 1e-150, 1e150),
        (codes.FAMILY_POISSON, 0.0, 1e15, 1e15 + 1.0),
        (codes.FAMILY_POISSON, 0.0, 1.0, 1e-300),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 1e-8, 1e6, 1e6 + 3.0),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 1e4, 1e6, 3e6),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 1e-3, 1e7, 1.0),
        (codes.FAMILY_TWEEDIE, 1.5, 1e-200, 1e100),
        (codes.FAMILY_TWEEDIE, 1.0001, 1e6, 1e6 * (1 + 1e-10)),
        (codes.FAMILY_TWEEDIE, 1.9999, 3.0, 300.0),
    ],
)
def test_deviance_extremes_are_finite_and_exact(code, a, y, mu):
    got = K.fam_unit_deviance(code, a, y, mu)
    exact = ref.unit_deviance_exact(code, a, y, mu)
    assert math.isfinite(got)
    assert got == pytest.approx(exact, rel=16 * EPS, abs=0)


def _domain(code, a):
    """Hypothesis strategy of (y, mu) inside the deviance domain of a family."""

    def logu(lo, hi):
        return st.floats(math.log(lo), math.log(hi)).map(math.exp)

    if code == codes.FAMILY_GAUSSIAN:
        return st.tuples(st.floats(-50, 50), st.floats(-50, 50))
    if code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL):
        y = st.sampled_from([0.0, 1.0]) if code == codes.FAMILY_BERNOULLI else st.floats(0, 1)
        return st.tuples(y, st.floats(1e-6, 1 - 1e-6))
    if code in (codes.FAMILY_POISSON, codes.FAMILY_NEGATIVE_BINOMIAL):
        return st.tuples(st.integers(0, 2000).map(float), logu(1e-3, 1e3))
    if code == codes.FAMILY_TWEEDIE:
        return st.tuples(st.one_of(st.just(0.0), logu(1e-3, 1e3)), logu(1e-3, 1e3))
    return st.tuples(logu(1e-3, 1e3), logu(1e-3, 1e3))


def _fd(f, x, h):
    """4th-order central difference."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _step(code, mu):
    if code == codes.FAMILY_GAUSSIAN:
        return 1e-3
    if code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL):
        return 1e-3 * min(mu, 1 - mu)
    return 1e-3 * mu


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_deviance_derivative_is_minus_2_residual_over_variance(spec, code, a):
    @settings(deadline=None)
    @given(_domain(code, a))
    def check(pair):
        y, mu = pair
        h = _step(code, mu)
        fd = _fd(lambda m: K.fam_unit_deviance(code, a, y, m), mu, h)
        exact = -2 * (y - mu) / K.fam_variance(code, a, mu)
        scale = 2 * (abs(y) + abs(mu)) / K.fam_variance(code, a, mu)
        fmax = max(abs(K.fam_unit_deviance(code, a, y, mu + k * h)) for k in (-2, -1, 0, 1, 2))
        # truncation, rounding of f, and the rounding of mu + k h itself
        tol = (1e-8 + 4 * np.spacing(abs(mu)) / h) * abs(exact) + 1e-11 * scale
        tol += 100 * EPS * fmax / h
        assert abs(fd - exact) <= tol, (y, mu, fd, exact)

    check()


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_loglik_score_is_weighted_residual_over_phi_variance(spec, code, a):
    # d loglik / d mu = w (y - mu) / (phi V(mu)): the mean is mu and the dispersion phi / w
    phi = 1.0 if code in (1, 2, 3, 6) else 0.7
    w = 3.0

    @settings(deadline=None)
    @given(_domain(code, a))
    def check(pair):
        y, mu = pair
        if code == codes.FAMILY_BINOMIAL:
            y = round(y * w) / w
        h = _step(code, mu)
        fd = _fd(lambda m: K.fam_loglik(code, a, y, m, phi, w), mu, h)
        exact = w * (y - mu) / (phi * K.fam_variance(code, a, mu))
        scale = w * (abs(y) + abs(mu)) / (phi * K.fam_variance(code, a, mu))
        fmax = max(abs(K.fam_loglik(code, a, y, mu + k * h, phi, w)) for k in (-2, -1, 0, 1, 2))
        tol = (1e-8 + 4 * np.spacing(abs(mu)) / h) * abs(exact) + 1e-11 * scale
        tol += 100 * EPS * fmax / h
        assert abs(fd - exact) <= tol, (y, mu, fd, exact)

    check()


# ---- sums -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_deviance_and_pearson_sums(spec, code, a):
    y, mu = grid(code)
    keep = (mu > 0) | (code == codes.FAMILY_GAUSSIAN)
    y, mu = y[keep], mu[keep]
    w = np.linspace(0.5, 3.0, y.size)
    dev = kernel_deviance(code, a, y, mu)
    # fixed-order sums: equal to the plain left-to-right loop exactly
    total, wsum = 0.0, 0.0
    for wi, di in zip(w.tolist(), dev.tolist(), strict=True):
        total += di
        wsum += wi * di
    assert K.fam_deviance_sum(code, a, y, mu, np.empty(0)) == total
    assert K.fam_deviance_sum(code, a, y, mu, w) == wsum
    fam = families.get(spec)
    assert fam.deviance(y, mu, weights=w) == pytest.approx(
        ref.deviance_sum(code, a, y, mu, w), rel=1e-12
    )
    assert fam.pearson(y, mu) == pytest.approx(ref.pearson_sum(code, a, y, mu), rel=1e-13)
    assert fam.pearson(y, mu, weights=w) == pytest.approx(
        ref.pearson_sum(code, a, y, mu, w), rel=1e-13
    )
    assert fam.deviance(y, mu) == K.fam_deviance_sum(code, a, y, mu, np.ones(y.size))


# ---- log-likelihood -------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
@pytest.mark.parametrize("phi", [0.5, 2.0])
def test_loglik_matches_scipy(spec, code, a, phi):
    y, mu = grid(code)
    keep = (mu > 0) | (code == codes.FAMILY_GAUSSIAN)
    y, mu = y[keep], mu[keep]
    if code in (1, 2, 3, 6):
        phi = 1.0
    if code == codes.FAMILY_BINOMIAL:
        w = np.full(y.size, 20.0)  # y in multiples of 1/20
    else:
        w = np.linspace(0.5, 3.0, y.size)
    rtol = 1e-11 if code == codes.FAMILY_TWEEDIE else 1e-12
    expected = ref.loglik(code, a, y, mu, phi, w)
    np.testing.assert_allclose(
        kernel_loglik(code, a, y, mu, phi, w), expected, rtol=rtol, atol=1e-13
    )
    fam = families.get(spec)
    np.testing.assert_allclose(
        fam.loglik_obs(y, mu, phi=phi, weights=w), expected, rtol=rtol, atol=1e-13
    )
    assert fam.loglik(y, mu, phi=phi, weights=w) == pytest.approx(expected.sum(), rel=1e-12)
    if code != codes.FAMILY_BINOMIAL:
        np.testing.assert_allclose(
            kernel_loglik(code, a, y, mu, phi),
            ref.loglik(code, a, y, mu, phi, 1.0),
            rtol=rtol,
            atol=1e-13,
        )


def test_loglik_zero_weight_contributes_nothing():
    for _, code, a in FAMILIES:
        y = 1.0 if code != codes.FAMILY_BINOMIAL else 0.5
        assert K.fam_loglik(code, a, y, 0.4, 1.0, 0.0) == 0.0


def test_loglik_large_counts_keep_their_digits():
    # lgamma-based formulas (scipy's among them) lose ~6 digits here
    mp = _mpmath()
    mp.mp.dps = 50

    def exact_poisson(y, mu):
        y, mu = mp.mpf(y), mp.mpf(mu)
        return float(y * mp.log(mu) - mu - mp.loggamma(y + 1))

    def exact_nb(y, mu, alpha):
        y, mu, k = mp.mpf(y), mp.mpf(mu), 1 / mp.mpf(alpha)
        return float(
            mp.loggamma(y + k)
            - mp.loggamma(k)
            - mp.loggamma(y + 1)
            + k * mp.log(k / (k + mu))
            + y * mp.log(mu / (k + mu))
        )

    def exact_binom(k, n, mu):
        k, n, mu = mp.mpf(k), mp.mpf(n), mp.mpf(mu)
        return float(
            mp.loggamma(n + 1)
            - mp.loggamma(k + 1)
            - mp.loggamma(n - k + 1)
            + k * mp.log(mu)
            + (n - k) * mp.log(1 - mu)
        )

    def exact_gamma(y, mu, phi):
        y, mu, nu = mp.mpf(y), mp.mpf(mu), 1 / mp.mpf(phi)
        return float(nu * mp.log(nu * y / mu) - nu * y / mu - mp.loggamma(nu) - mp.log(y))

    cases = [
        (K.fam_loglik(3, 0.0, 1e6, 1e6 + 3.0, 1.0, 1.0), exact_poisson(1e6, 1e6 + 3.0)),
        (K.fam_loglik(3, 0.0, 7.0, 2.5, 1.0, 1.0), exact_poisson(7.0, 2.5)),
        (K.fam_loglik(6, 1e-3, 1e5, 1e5 - 40.0, 1.0, 1.0), exact_nb(1e5, 1e5 - 40.0, 1e-3)),
        (K.fam_loglik(6, 50.0, 3.0, 0.7, 1.0, 1.0), exact_nb(3.0, 0.7, 50.0)),
        (K.fam_loglik(2, 0.0, 0.3, 0.2999, 1.0, 1e6), exact_binom(3e5, 1e6, 0.2999)),
        (K.fam_loglik(4, 0.0, 2.0, 2.001, 1e-5, 1.0), exact_gamma(2.0, 2.001, 1e-5)),
        (K.fam_loglik(4, 0.0, 2.0, 3.0, 7.0, 1.0), exact_gamma(2.0, 3.0, 7.0)),
    ]
    for got, exact in cases:
        assert got == pytest.approx(exact, rel=1e-13, abs=1e-14)


def test_loglik_outside_support_is_minus_inf():
    assert K.fam_loglik(3, 0.0, -1.0, 2.0, 1.0, 1.0) == -math.inf
    assert K.fam_loglik(4, 0.0, 0.0, 2.0, 1.0, 1.0) == -math.inf
    assert K.fam_loglik(5, 0.0, -2.0, 2.0, 1.0, 1.0) == -math.inf
    assert K.fam_loglik(1, 0.0, 1.5, 0.5, 1.0, 1.0) == -math.inf
    assert K.fam_loglik(7, 1.5, -0.1, 2.0, 1.0, 1.0) == -math.inf
    assert K.fam_loglik(3, 0.0, 2.0, 0.0, 1.0, 1.0) == -math.inf
    assert K.fam_loglik(3, 0.0, 0.0, 0.0, 1.0, 1.0) == 0.0


# ---- against statsmodels --------------------------------------------------------------------


def _statsmodels_family(code, a):
    smf = pytest.importorskip("statsmodels.genmod.families")
    return {
        codes.FAMILY_GAUSSIAN: lambda: smf.Gaussian(),
        codes.FAMILY_BERNOULLI: lambda: smf.Binomial(),
        codes.FAMILY_BINOMIAL: lambda: smf.Binomial(),
        codes.FAMILY_POISSON: lambda: smf.Poisson(),
        codes.FAMILY_GAMMA: lambda: smf.Gamma(),
        codes.FAMILY_INVERSE_GAUSSIAN: lambda: smf.InverseGaussian(),
        codes.FAMILY_NEGATIVE_BINOMIAL: lambda: smf.NegativeBinomial(alpha=a),
        codes.FAMILY_TWEEDIE: lambda: smf.Tweedie(var_power=a, eql=False),
    }[code]()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize(("spec", "code", "a"), FAMILIES, ids=IDS)
def test_against_statsmodels(spec, code, a):
    sm = _statsmodels_family(code, a)
    y, mu = grid(code)
    keep = ((mu > 1e-6) | (code == codes.FAMILY_GAUSSIAN)) & (np.abs(y - mu) > 0.05 * np.abs(mu))
    if code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL):
        keep &= mu < 0.99
    y, mu = y[keep], mu[keep]
    fam = families.get(spec)
    np.testing.assert_allclose(fam.variance(mu), sm.variance(mu), rtol=1e-15)
    # statsmodels evaluates the closed forms, whose terms cancel down to the size of d (for NB
    # by a factor 1 + alpha mu): allow 1e-13 of the size of those terms on top of rtol
    ours, theirs = fam.unit_deviance(y, mu), sm.resid_dev(y, mu) ** 2
    tol = 1e-10 * np.abs(theirs)
    if code == codes.FAMILY_NEGATIVE_BINOMIAL:
        tol += 1e-13 * (y + mu + 1) * (1 + np.abs(np.log((y + 1) / (mu + 1))))
    assert np.all(np.abs(ours - theirs) <= tol), np.max(np.abs(ours - theirs) / tol)
    w = np.linspace(0.5, 3.0, y.size)
    scale = 1.0 if not fam.has_dispersion else 1.7
    if code == codes.FAMILY_BINOMIAL:
        trials = np.full(y.size, 20.0)
        sm_n = _statsmodels_family(code, a)
        sm_n.n = trials  # statsmodels takes the trials from the family; weights multiply
        expected = sm_n.loglike_obs(y, mu, var_weights=1.0, scale=1.0)
        got = fam.loglik_obs(y, mu, weights=trials)
    else:
        expected = sm.loglike_obs(y, mu, var_weights=w, scale=scale)
        got = fam.loglik_obs(y, mu, phi=scale, weights=w)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        fam.deviance(y, mu, weights=w), sm.deviance(y, mu, var_weights=w), rtol=1e-10
    )


# ---- normalisation and moments --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "a", "mu"),
    [
        (codes.FAMILY_POISSON, 0.0, 0.03),
        (codes.FAMILY_POISSON, 0.0, 7.5),
        (codes.FAMILY_POISSON, 0.0, 300.0),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 0.2, 4.0),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 1.0, 25.0),
        (codes.FAMILY_NEGATIVE_BINOMIAL, 3.0, 0.5),
    ],
)
def test_count_pmfs_sum_to_one_with_the_right_moments(code, a, mu):
    var = mu + a * mu * mu
    top = int(mu + 60 * math.sqrt(var) + 200)
    y = np.arange(top + 1, dtype=float)
    p = np.exp(kernel_loglik(code, a, y, mu))
    assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
    mean = math.fsum(p * y)
    assert mean == pytest.approx(mu, rel=1e-12)
    assert math.fsum(p * (y - mean) ** 2) == pytest.approx(var, rel=1e-10)


@pytest.mark.parametrize("n", [1, 7, 40, 1000])
@pytest.mark.parametrize("mu", [0.001, 0.3, 0.95])
def test_binomial_pmf_sums_to_one_with_the_right_moments(n, mu):
    y = np.arange(n + 1) / n
    p = np.exp(kernel_loglik(codes.FAMILY_BINOMIAL, 0.0, y, mu, 1.0, float(n)))
    assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
    assert math.fsum(p * y) == pytest.approx(mu, rel=1e-12)
    assert math.fsum(p * (y - mu) ** 2) == pytest.approx(mu * (1 - mu) / n, rel=1e-10)


def _moments(logpdf, mu, p0=0.0):
    """(mass, mean, variance) of a law on [0, inf): density exp(logpdf), mass p0 at 0."""

    def integral(g):
        parts = [(0.0, mu / 4), (mu / 4, mu), (mu, 4 * mu), (4 * mu, math.inf)]
        return sum(
            integrate.quad(
                lambda t: g(t) * math.exp(logpdf(t)), lo, hi, epsabs=1e-14, epsrel=1e-12, limit=400
            )[0]
            for lo, hi in parts
        )

    mass = p0 + integral(lambda t: 1.0)
    mean = integral(lambda t: t)
    second = integral(lambda t: t * t)
    return mass, mean, second - mean * mean


@pytest.mark.parametrize(
    ("code", "a", "mu", "phi"),
    [
        (codes.FAMILY_GAMMA, 0.0, 2.0, 0.3),
        (codes.FAMILY_GAMMA, 0.0, 0.5, 1.5),
        (codes.FAMILY_INVERSE_GAUSSIAN, 0.0, 1.0, 0.2),
        (codes.FAMILY_INVERSE_GAUSSIAN, 0.0, 3.0, 0.05),
        (codes.FAMILY_TWEEDIE, 1.5, 2.0, 1.0),
        (codes.FAMILY_TWEEDIE, 1.2, 0.7, 0.5),
        (codes.FAMILY_TWEEDIE, 1.8, 5.0, 2.0),
    ],
)
def test_densities_integrate_to_one_with_the_right_moments(code, a, mu, phi):
    def logpdf(t):
        return K.fam_loglik(code, a, t, mu, phi, 1.0)

    p0 = math.exp(K.fam_loglik(code, a, 0.0, mu, phi, 1.0)) if code == codes.FAMILY_TWEEDIE else 0.0
    mass, mean, var = _moments(logpdf, mu, p0)
    assert mass == pytest.approx(1.0, abs=1e-9)
    assert mean == pytest.approx(mu, rel=1e-8)
    assert var == pytest.approx(phi * K.fam_variance(code, a, mu), rel=1e-7)


def test_tweedie_point_mass_and_weights():
    # P(Y = 0) = exp(-mu^(2-p) / (phi (2-p))); the weight divides the dispersion
    mu, phi, p = 2.0, 0.8, 1.4
    assert K.fam_loglik(7, p, 0.0, mu, phi, 1.0) == pytest.approx(
        -(mu ** (2 - p)) / (phi * (2 - p)), rel=1e-15
    )
    assert K.fam_loglik(7, p, 1.3, mu, phi, 2.0) == K.fam_loglik(7, p, 1.3, mu, phi / 2.0, 1.0)
    assert math.exp(K.fam_loglik(7, p, 0.0, mu, phi, 1.0)) == pytest.approx(
        ref.tweedie_p0(mu, phi, p), rel=1e-14
    )


def test_tweedie_series_over_a_wide_range():
    for p in (1.01, 1.3, 1.7, 1.99):
        for phi in (0.1, 1.0, 10.0):
            for y in (1e-4, 0.5, 3.0, 60.0):
                for mu in (0.05, 2.0, 50.0):
                    got = K.fam_loglik(7, p, y, mu, phi, 1.0)
                    want = ref.tweedie_logpdf(y, mu, phi, p)
                    assert got == pytest.approx(want, rel=1e-11, abs=1e-11), (p, phi, y, mu)


# ---- kernels: domains and buffers ---------------------------------------------------------


def test_domain_kernels():
    y = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, math.inf, math.nan])
    out = np.empty(y.size, dtype=np.bool_)
    support = {
        codes.FAMILY_GAUSSIAN: [1, 1, 1, 1, 1, 0, 0],
        codes.FAMILY_BERNOULLI: [0, 1, 0, 1, 0, 0, 0],
        codes.FAMILY_BINOMIAL: [0, 1, 1, 1, 0, 0, 0],
        codes.FAMILY_POISSON: [0, 1, 0, 1, 1, 0, 0],
        codes.FAMILY_GAMMA: [0, 0, 1, 1, 1, 0, 0],
        codes.FAMILY_INVERSE_GAUSSIAN: [0, 0, 1, 1, 1, 0, 0],
        codes.FAMILY_NEGATIVE_BINOMIAL: [0, 1, 0, 1, 1, 0, 0],
        codes.FAMILY_TWEEDIE: [0, 1, 1, 1, 1, 0, 0],
    }
    deviance = dict(support)
    deviance[codes.FAMILY_BERNOULLI] = [0, 1, 1, 1, 0, 0, 0]
    deviance[codes.FAMILY_POISSON] = deviance[codes.FAMILY_NEGATIVE_BINOMIAL] = [
        0,
        1,
        1,
        1,
        1,
        0,
        0,
    ]
    for code, expected in support.items():
        assert K.fam_y_valid_arr(code, 1.5, y, out).tolist() == [bool(e) for e in expected], code
        got = K.fam_y_deviance_valid_arr(code, 1.5, y, out).tolist()
        assert got == [bool(e) for e in deviance[code]], code
    mu = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, math.inf, math.nan])
    assert K.fam_mu_valid_arr(0, 0.0, mu, out).tolist() == [1, 1, 1, 1, 1, 0, 0]
    assert K.fam_mu_valid_arr(1, 0.0, mu, out).tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert K.fam_mu_valid_arr(3, 0.0, mu, out).tolist() == [0, 0, 1, 1, 1, 0, 0]


def test_array_loops_equal_scalar_kernels():
    for _, code, a in FAMILIES:
        y, mu = grid(code)
        out = np.empty(y.size)
        arr = K.fam_unit_deviance_arr(code, a, y, mu, out)
        assert arr is out
        assert arr.tolist() == [
            K.fam_unit_deviance(code, a, yi, mi) for yi, mi in zip(y, mu, strict=True)
        ]
        ll = K.fam_loglik_arr(code, a, y, mu, 1.3, np.empty(0), np.empty(y.size))
        assert ll.tolist() == [
            K.fam_loglik(code, a, yi, mi, 1.3, 1.0) for yi, mi in zip(y, mu, strict=True)
        ]


# ---- vocabulary -----------------------------------------------------------------------------


def test_registry_names_and_aliases():
    assert families.names() == [
        "gaussian",
        "bernoulli",
        "binomial",
        "poisson",
        "gamma",
        "inverse_gaussian",
        "negative_binomial",
        "tweedie",
    ]
    for alias, name in [
        ("normal", "gaussian"),
        ("Gauss", "gaussian"),
        ("nb", "negative_binomial"),
        ("NB2", "negative_binomial"),
        ("negbin", "negative_binomial"),
        ("negative-binomial", "negative_binomial"),
        ("ig", "inverse_gaussian"),
        ("inverse_normal", "inverse_gaussian"),
        ("wald", "inverse_gaussian"),
    ]:
        assert families.get(alias).name == name
    for f in families.REGISTRY:
        assert families.get(f.name) is f
        assert f.code == getattr(codes, "FAMILY_" + f.name.upper())
        assert families.descriptions()[f.name]
        assert f.description.startswith(families.descriptions()[f.name])


def test_parameters_strings_defaults_and_identity():
    assert families.get("negative_binomial").param == 1.0
    assert families.get("tweedie").param == 1.5
    nb = families.get("nb2", alpha=0.5)
    assert nb == families.get("negative_binomial(0.5)") == families.get("NB(0.5)", alpha=0.5)
    assert nb == families.Family("negative_binomial", codes.FAMILY_NEGATIVE_BINOMIAL, 0.5)
    assert hash(nb) == hash(families.get("negbin", alpha="0.5"))
    assert nb != families.get("nb", alpha=0.6)
    assert repr(nb) == "Family('negative_binomial', 0.5)"
    assert repr(families.get("poisson")) == "Family('poisson')"
    tw = families.get("tweedie( 1.3 )")
    assert tw.param == 1.3 and tw.parameter_name == "power"
    assert families.get(tw.spec) == tw and families.get("poisson").spec == "poisson"
    assert families.get(nb) is nb
    assert pickle.loads(pickle.dumps(tw)) == tw
    # a parameter of another family is ignored (a scenario passes both)
    assert families.get("poisson", alpha=2.0, power=1.5) is families.get("poisson")
    assert families.get("tweedie", alpha=3.0).param == 1.5
    with pytest.raises(AttributeError):
        tw.param = 1.4  # frozen


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: families.get("poison"), ["'poison'", "did you mean 'poisson'", "gaussian"]),
        (lambda: families.get("tweedie", power=2.0), ["2.0", "1 < p < 2"]),
        (lambda: families.get("tweedie", power=1.0), ["1.0", "1 < p < 2"]),
        (lambda: families.get("tweedie(abc)"), ["abc", "1 < p < 2"]),
        (lambda: families.get("nb", alpha=0.0), ["0.0", "alpha > 0"]),
        (lambda: families.get("nb", alpha=math.inf), ["inf", "alpha > 0"]),
        (lambda: families.get("nb(-1)"), ["-1", "alpha > 0"]),
        (lambda: families.get("poisson(2)"), ["poisson", "takes no parameter"]),
        (lambda: families.get("tweedie(1.3)", power=1.4), ["tweedie(1.3)", "1.4"]),
        (lambda: families.get(3), ["3", "gaussian"]),
    ],
)
def test_get_errors_name_the_value_and_the_accepted(call, fragments):
    with pytest.raises(ValidationError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_name_is_a_key_and_value_error():
    with pytest.raises(KeyError):
        families.get("nope")
    with pytest.raises(ValueError):
        families.get("nope")
    assert isinstance(UnknownNameError("x"), ValidationError)


CONTRACT_LINKS = {
    "gaussian": ("identity", "log", "inverse", "inverse_squared", "sqrt", "power"),
    "bernoulli": ("logit", "probit", "cloglog", "loglog", "cauchit", "log", "identity"),
    "binomial": ("logit", "probit", "cloglog", "loglog", "cauchit", "log", "identity"),
    "poisson": ("log", "identity", "sqrt", "power", "inverse"),
    "gamma": ("inverse", "log", "identity", "inverse_squared", "power", "sqrt"),
    "inverse_gaussian": ("inverse_squared", "inverse", "log", "identity", "power"),
    "negative_binomial": ("log", "identity", "sqrt", "power"),
    "tweedie": ("log", "power", "identity", "sqrt", "inverse"),
}


def test_links_canonical_and_default():
    from simbench import links

    canonical = {
        "gaussian": "identity",
        "bernoulli": "logit",
        "binomial": "logit",
        "poisson": "log",
        "gamma": "inverse",
        "inverse_gaussian": "inverse_squared",
    }
    for f in families.REGISTRY:
        assert f.links == CONTRACT_LINKS[f.name]
        if f.name in canonical:
            assert f.canonical_link == links.get(canonical[f.name])
            assert f.default_link == f.canonical_link
        for name in f.links:
            link = f.check_link("power(0.3)" if name == "power" else name)
            assert link.name == name
        assert f.check_link("canonical") == f.default_link
    assert families.get("negative_binomial").canonical_link is None
    assert families.get("negative_binomial").default_link == links.get("log")
    tw = families.get("tweedie", power=1.7)
    assert tw.canonical_link == links.get("power", power=1.0 - 1.7)
    assert tw.default_link == links.get("log")
    # the canonical parameter theta = mu^(1-p)/(1-p) has d theta / d mu = 1/V; the power link
    # mu^(1-p) is (1-p) theta: g'(mu) V(mu) = 1 - p
    mu = np.array([0.3, 1.0, 4.0])
    g = tw.canonical_link.g
    slope = (g(mu * (1 + 1e-6)) - g(mu * (1 - 1e-6))) / (2e-6 * mu)
    np.testing.assert_allclose(slope * tw.variance(mu), 1.0 - 1.7, rtol=1e-8)
    # aliases and link objects are accepted; "power" admits every power link
    pois = families.get("poisson")
    assert pois.check_link("exp") == links.get("log")
    assert pois.check_link(links.get("sqrt")) == links.get("sqrt")
    assert pois.check_link("power(-2)") == links.get("inverse_squared")


@pytest.mark.parametrize(
    ("family", "link", "fragments"),
    [
        ("bernoulli", "sqrt", ["bernoulli", "'sqrt'", "logit, probit"]),
        ("binomial", "power(0.3)", ["binomial", "power", "cloglog"]),
        ("poisson", "logit", ["poisson", "'logit'", "log, identity, sqrt, power, inverse"]),
        ("negative_binomial", "logit", ["negative_binomial(1.0)", "'logit'", "log, identity"]),
        ("gaussian", "lgo", ["gaussian", "'lgo'", "did you mean 'log'", "identity, log"]),
        ("gamma", "relu", ["gamma", "'relu'", "inverse, log"]),
    ],
)
def test_check_link_errors(family, link, fragments):
    with pytest.raises(ValidationError) as info:
        families.get(family).check_link(link)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_flags():
    dispersion = {f.name for f in families.REGISTRY if f.has_dispersion}
    assert dispersion == {"gaussian", "gamma", "inverse_gaussian", "tweedie"}
    assert {f.name for f in families.REGISTRY if f.is_binary} == {"bernoulli", "binomial"}


def test_check_y_and_mu_valid():
    pois = families.get("poisson")
    with pytest.raises(
        ValidationError, match=r"non-negative integer count; got 1\.5 at index 2 \(1 of 3"
    ):
        pois.check_y([0.0, 1.0, 1.5])
    pois.check_y([1.5, 2.0], support=False)  # quasi-likelihood use of the deviance
    assert pois.y_valid([0.0, 2.5, -1.0]).tolist() == [True, False, False]
    with pytest.raises(ValidationError, match=r"0 or 1; got 0\.5"):
        families.get("bernoulli").check_y(0.5)
    with pytest.raises(ValidationError, match=r"> 0; got 0\.0"):
        families.get("gamma").check_y([1.0, 0.0])
    assert families.get("bernoulli").mu_valid([0.0, 0.5, 1.0]).tolist() == [False, True, False]
    assert families.get("gaussian").mu_valid(-3.0)
    with pytest.raises(ValidationError, match=r"mu must be 0 <= mu <= 1; got 1\.5"):
        families.get("binomial").unit_deviance([0.5], [1.5])
    with pytest.raises(ValidationError, match=r"mu must be a finite number mu >= 0; got -1\.0"):
        families.get("gamma").deviance([0.5], [-1.0])
    # saturated means on the boundary are accepted and give the true (possibly infinite) value
    bern = families.get("bernoulli")
    assert bern.unit_deviance([1.0, 0.0, 0.0], [1.0, 0.0, 1.0]).tolist() == [0.0, 0.0, math.inf]
    assert bern.loglik_obs([1.0, 0.0], [1.0, 1.0]).tolist() == [0.0, -math.inf]
    # the deviance takes non-integer counts, the likelihood does not
    assert pois.unit_deviance(1.5, 1.5) == 0.0
    with pytest.raises(ValidationError):
        pois.loglik_obs(1.5, 1.5)


def test_loglik_argument_checks():
    gam = families.get("gamma")
    with pytest.raises(ValidationError, match="phi must be a finite number > 0; got -1"):
        gam.loglik_obs([1.0], [1.0], phi=-1)
    with pytest.raises(ValidationError, match="no dispersion parameter: phi must be 1; got 2"):
        families.get("poisson").loglik_obs([1.0], [1.0], phi=2)
    with pytest.raises(ValidationError, match=r"weights must be finite and >= 0; got -1\.0"):
        gam.loglik_obs([1.0, 2.0], [1.0, 1.0], weights=[1.0, -1.0])
    with pytest.raises(ValidationError, match="do not match"):
        gam.deviance([1.0, 2.0], [1.0, 1.0], weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValidationError, match="whole numbers"):
        families.get("binomial").loglik_obs([0.5], [0.3], weights=[3.0])
    ll = families.get("binomial").loglik_obs([0.5, 2 / 3], [0.3, 0.3], weights=[4.0, 3.0])
    np.testing.assert_allclose(
        ll, ref.loglik(2, 0.0, [0.5, 2 / 3], 0.3, 1.0, [4.0, 3.0]), rtol=1e-13
    )
    # shapes are kept, scalars give 0-d results
    assert families.get("poisson").unit_deviance(np.ones((2, 3)), 2.0).shape == (2, 3)
    assert families.get("poisson").loglik_obs(1.0, 2.0).shape == ()
