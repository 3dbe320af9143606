"""Link kernels and the Link vocabulary.

Tolerances (eps = 2.2e-16, the float64 machine epsilon):

* kernels vs the NumPy/SciPy reference: relative ``16 eps`` (3.6e-15), widened only where the
  reference itself is known to lose digits or the quantity is ill-conditioned, each named in
  :func:`_tolerance`;
* kernels vs mpmath at 40 digits (golden values, tails included): a few ulp, per link;
* ``Phi^-1`` vs ``scipy.special.ndtri``: relative 2e-15 over (1e-300, 1 - 1e-16);
* vs statsmodels (naive formulas, moderate arguments): relative 1e-12 (1e-9 where statsmodels
  computes ``h''`` as ``-g''/g'^3``);
* round trip ``g(h(eta)) = eta``: ``16 eps (|eta| + |h/h'|)``, the error that rounding ``mu`` to
  float64 forces on any implementation;
* derivatives vs 4th-order central differences: relative 1e-8 plus the differencing round-off.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import links as ref

from simbench import links
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes
from simbench.kernels import links as k

EPS = np.finfo(float).eps
NAMES = ref.LINK_NAMES
CODE = {name: getattr(codes, "LINK_" + name.upper()) for name in NAMES}
POWERS = (0.3, -0.7, 2.5, -1.5, 1.0 / 3.0, 3.0)
# every (name, lambda) pair tested; lambda matters only for "power"
CASES = [(n, 0.0) for n in NAMES if n != "power"] + [("power", lam) for lam in POWERS]
CASE_IDS = [n if n != "power" else f"power({lam:.3g})" for n, lam in CASES]
BINARY = ("logit", "probit", "cloglog", "loglog", "cauchit")


@pytest.fixture(scope="module", autouse=True)
def _warm_kernels():
    """Compile every kernel once so hypothesis examples time the maths, not Numba."""
    x = np.array([0.5, 1.5])
    out = np.empty(2)
    flags = np.empty(2, dtype=np.bool_)
    # one call per signature is enough: the code is a runtime argument, not a type
    for code, lam in ((CODE["logit"], 0.0),):
        k.link_h(code, lam, 0.5)
        k.link_h1(code, lam, 0.5)
        k.link_h2(code, lam, 0.5)
        k.link_h012(code, lam, 0.5)
        k.link_g(code, lam, 0.5)
        k.link_eta_valid(code, lam, 0.5)
        k.link_mu_valid(code, lam, 0.5)
        for arr in (k.link_h_arr, k.link_h1_arr, k.link_h2_arr, k.link_g_arr):
            arr(code, lam, x, out)
        k.link_h012_arr(code, lam, x, out, out.copy(), out.copy())
        k.link_eta_valid_arr(code, lam, x, flags)
        k.link_mu_valid_arr(code, lam, x, flags)


def _scalar(fn, name, lam, x):
    code = CODE[name]
    return np.array([fn(code, lam, float(v)) for v in np.ravel(x)])


def _eta_grid(name, lam):
    """Arguments from 1e-8 to 1e3 in magnitude, both signs, kept where eta is valid."""
    mag = np.logspace(-8, 3, 89)
    eta = np.concatenate([-mag[::-1], [0.0], mag, [0.25, 0.5, 1.0, 2.0, -0.5, -2.0]])
    return eta[ref.eta_valid(name, eta, lam)]


def _mu_grid(name, lam):
    """Means in the domain of g: the images of the eta grid plus a uniform grid on (0, 1)."""
    with np.errstate(all="ignore"):
        mu = ref.h(name, _eta_grid(name, lam), lam)
    if name in BINARY:
        mu = np.concatenate([mu, np.linspace(0.01, 0.99, 99), [1e-300, 1e-100, 1 - 2**-52]])
    mu = mu[ref.mu_valid(name, mu, lam)]
    return np.unique(mu)


def _tolerance(name, quantity, eta, lam):
    """Relative tolerance per point for kernel vs reference (see the module docstring)."""
    rtol = np.full(np.shape(eta), 16 * EPS)
    if name == "probit":
        # scipy's ndtr and exp(-eta^2/2) round eta/sqrt(2) resp. eta^2 first: 2 z^2 ulps lost
        rtol = rtol * (1.0 + eta**2)
    elif name == "cloglog" and quantity in ("h1", "h2"):
        # exp(eta - e^eta): one ulp of e^eta moves the exponent by e^eta ulps
        rtol = rtol * (1.0 + np.exp(np.minimum(eta, 700)))
    elif name == "loglog":
        rtol = rtol * (1.0 + np.exp(np.minimum(-eta, 700)))
    elif name == "power":
        # 1/lambda is rounded: eta^(1/lambda) carries |log eta / lambda| ulps of that rounding
        log_eta = np.log(np.maximum(np.abs(eta), np.finfo(float).tiny))
        rtol = rtol * (1.0 + 3.0 * np.abs(log_eta) * max(1.0, abs(1.0 / lam)))
    return rtol


@pytest.mark.parametrize(("name", "lam"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("quantity", ["h", "h1", "h2"])
def test_h_and_derivatives_match_reference(name, lam, quantity):
    eta = _eta_grid(name, lam)
    kern = {"h": k.link_h, "h1": k.link_h1, "h2": k.link_h2}[quantity]
    got = _scalar(kern, name, lam, eta)
    want = getattr(ref, quantity)(name, eta, lam)
    rtol = _tolerance(name, quantity, eta, lam)
    # near an inflection point the reference's h'' cancels: allow eps times the scale |h'|
    atol = 16 * EPS * np.abs(ref.h1(name, eta, lam)) if quantity == "h2" else np.zeros_like(eta)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    err = np.abs(got[finite] - want[finite])
    bad = err > rtol[finite] * np.abs(want[finite]) + atol[finite]
    assert not bad.any(), list(
        zip(eta[finite][bad], got[finite][bad], want[finite][bad], strict=True)
    )


@pytest.mark.parametrize(("name", "lam"), CASES, ids=CASE_IDS)
def test_g_matches_reference(name, lam):
    mu = _mu_grid(name, lam)
    got = _scalar(k.link_g, name, lam, mu)
    want = ref.g(name, mu, lam)
    assert np.isfinite(want).all()
    # absolute error allowed: eps times the condition |mu g'(mu)| = |mu / h'(g(mu))|
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.abs(mu / ref.h1(name, want, lam))
    cond = np.where(np.isfinite(cond), cond, 0.0)  # 0/0 at mu = 0: g is exact there
    bound = 16 * EPS * (np.abs(want) + cond)
    if name == "power":
        # 1/lambda is rounded, so g carries a relative error of about |log mu| ulp
        log_mu = np.log(mu, out=np.zeros_like(mu), where=mu > 0)
        bound *= 1.0 + np.abs(log_mu)
    bad = np.abs(got - want) > bound
    assert not bad.any(), list(zip(mu[bad], got[bad], want[bad], strict=True))


def test_probit_inverse_matches_scipy_ndtri():
    from scipy.special import ndtri

    p = np.concatenate(
        [
            np.logspace(-300, -1, 3000),
            np.linspace(0.001, 0.999, 3001),
            1.0 - np.logspace(-16, -1, 1000),
            0.5 + np.array([-1e-12, -1e-8, 1e-8, 1e-12, 0.0]),
        ]
    )
    got = _scalar(k.link_g, "probit", 0.0, p)
    want = ndtri(p)
    rel = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)
    assert rel.max() < 2e-15, p[np.argmax(rel)]
    assert k.link_g(CODE["probit"], 0.0, 0.5) == 0.0
    assert k.link_g(CODE["probit"], 0.0, 0.0) == -np.inf
    assert k.link_g(CODE["probit"], 0.0, 1.0) == np.inf
    assert np.isnan(k.link_g(CODE["probit"], 0.0, 1.5))


def test_probit_inverse_is_odd_about_one_half():
    # 1 - p is exact for p in [1/2, 1], so the reflection must hold to the last bit
    p = np.linspace(0.5, 1.0, 1001)[1:-1]
    up = _scalar(k.link_g, "probit", 0.0, p)
    down = _scalar(k.link_g, "probit", 0.0, 1.0 - p)
    np.testing.assert_array_equal(up, -down)


# ---- golden values: mpmath at 40 digits, tails included ------------------------------------


def _mp_h012(mp, name, eta, lam):
    e = mp.mpf(eta)
    if name == "identity":
        return e, mp.mpf(1), mp.mpf(0)
    if name == "log":
        x = mp.exp(e)
        return x, x, x
    if name in ("logit", "softplus"):
        z = mp.exp(-abs(e))
        s = 1 / (1 + mp.exp(-e))
        d = z / (1 + z) ** 2
        if name == "logit":
            return s, d, -d * mp.tanh(e / 2)
        return mp.log1p(mp.exp(e)), s, d
    if name == "probit":
        p = mp.npdf(e)
        return mp.ncdf(e), p, -e * p
    if name == "cloglog":
        t = mp.exp(e)
        d = mp.exp(e - t)
        return -mp.expm1(-t), d, d * (1 - t)
    if name == "loglog":
        t = mp.exp(-e)
        d = mp.exp(-e - t)
        return mp.exp(-t), d, d * (t - 1)
    if name == "cauchit":
        return (
            mp.mpf(1) / 2 + mp.atan(e) / mp.pi,
            1 / (mp.pi * (1 + e**2)),
            -2 * e / (mp.pi * (1 + e**2) ** 2),
        )
    if name == "inverse":
        return 1 / e, -1 / e**2, 2 / e**3
    if name == "inverse_squared":
        return e**-0.5, -(e**-1.5) / 2, 3 * e**-2.5 / 4
    if name == "sqrt":
        return e**2, 2 * e, mp.mpf(2)
    if name == "power":
        r = 1 / mp.mpf(lam)
        return e**r, r * e ** (r - 1), r * (r - 1) * e ** (r - 2)
    raise KeyError(name)


# the largest error in ulp allowed against mpmath, per link, over the golden grid
_GOLDEN_ULPS = {
    "identity": 0,
    "log": 1,
    "logit": 3,
    "probit": 3,
    "cauchit": 3,
    "inverse": 3,
    "inverse_squared": 3,
    "sqrt": 1,
    "softplus": 3,
}


@pytest.mark.parametrize("name", sorted(_GOLDEN_ULPS))
def test_h_and_derivatives_to_a_few_ulp_against_mpmath(name):
    mp = pytest.importorskip("mpmath")
    mag = np.logspace(-8, 3, 45)
    eta = np.concatenate([-mag, [0.0], mag, [-37.5, -20.1, -5.3, 5.3, 30.0]])
    eta = eta[ref.eta_valid(name, eta)]
    worst = 0.0
    for e in eta:
        code = CODE[name]
        got = (k.link_h(code, 0.0, e), k.link_h1(code, 0.0, e), k.link_h2(code, 0.0, e))
        with mp.workdps(40):
            exact3 = [float(v) for v in _mp_h012(mp, name, e, 0.0)]
        for value, exact in zip(got, exact3, strict=True):
            if exact == 0.0 or not np.isfinite(exact) or abs(exact) < 1e-300:
                assert value == exact or abs(value) < 1e-300
                continue
            worst = max(worst, abs(value - exact) / np.spacing(abs(exact)))
    assert worst <= _GOLDEN_ULPS[name]


def test_tails_where_a_naive_formula_loses_digits():
    """Values checked to 4 ulp against mpmath where the obvious formula cancels or rounds."""
    mp = pytest.importorskip("mpmath")
    checks = [
        # (link, eta, quantity): naive formula that would fail
        ("cauchit", -1e3, 0),  # 1/2 + atan(eta)/pi cancels
        ("cauchit", -1e8, 0),
        ("probit", -37.0, 0),  # erfc(-eta / sqrt 2) with a rounded argument: ~1e-13
        ("probit", -30.0, 1),  # exp(-eta^2 / 2) with a rounded square
        ("cloglog", 1e-8, 2),  # (1 - e^eta) cancels
        ("loglog", -1e-8, 2),
        ("logit", 30.0, 1),  # sigma (1 - sigma) rounds to 0
        ("logit", 30.0, 2),
        ("softplus", 40.0, 2),
        ("cloglog", -30.0, 0),  # 1 - exp(-e^eta) rounds to 0
    ]
    for name, eta, j in checks:
        value = k.link_h012(CODE[name], 0.0, eta)[j]
        with mp.workdps(40):
            exact = float(_mp_h012(mp, name, eta, 0.0)[j])
        assert abs(value - exact) <= 4 * np.spacing(abs(exact)), (name, eta, j, value, exact)


def test_g_to_a_few_ulp_against_mpmath_in_the_tails():
    mp = pytest.importorskip("mpmath")
    cases = [
        ("logit", 1e-300, lambda m: mp.log(m / (1 - m))),
        ("logit", 1 - 2**-40, lambda m: mp.log(m / (1 - m))),
        ("logit", 0.5 + 2**-30, lambda m: mp.log(m / (1 - m))),
        ("cauchit", 1e-10, lambda m: mp.tan(mp.pi * (m - mp.mpf(1) / 2))),
        ("cauchit", 1 - 2**-40, lambda m: mp.tan(mp.pi * (m - mp.mpf(1) / 2))),
        ("cloglog", 1e-200, lambda m: mp.log(-mp.log1p(-m))),
        ("loglog", 1 - 2**-45, lambda m: -mp.log(-mp.log(m))),
        ("softplus", 1e-300, lambda m: mp.log(mp.expm1(m))),
        ("softplus", 50.0, lambda m: mp.log(mp.expm1(m))),
        ("probit", 1e-300, lambda m: mp.findroot(lambda x: mp.ncdf(x) - m, -37.0)),
        ("probit", 0.5 + 2**-40, lambda m: mp.findroot(lambda x: mp.ncdf(x) - m, 0.0)),
    ]
    for name, mu, exact_fn in cases:
        value = k.link_g(CODE[name], 0.0, mu)
        with mp.workdps(60):
            exact = float(exact_fn(mp.mpf(mu)))
        assert abs(value - exact) <= 4 * np.spacing(abs(exact)), (name, mu, value, exact)


# ---- statsmodels ---------------------------------------------------------------------------


def _statsmodels_links():
    sm = pytest.importorskip("statsmodels.genmod.families.links")
    return {
        ("identity", 0.0): sm.Identity(),
        ("log", 0.0): sm.Log(),
        ("logit", 0.0): sm.Logit(),
        ("probit", 0.0): sm.Probit(),
        ("cloglog", 0.0): sm.CLogLog(),
        ("loglog", 0.0): sm.LogLog(),
        ("cauchit", 0.0): sm.Cauchy(),
        ("inverse", 0.0): sm.InversePower(),
        ("inverse_squared", 0.0): sm.InverseSquared(),
        ("sqrt", 0.0): sm.Sqrt(),
        ("power", 0.3): sm.Power(0.3),
        ("power", -0.7): sm.Power(-0.7),
        ("power", 2.5): sm.Power(2.5),
    }


@pytest.mark.parametrize(
    ("name", "lam"),
    [
        ("identity", 0.0),
        ("log", 0.0),
        ("logit", 0.0),
        ("probit", 0.0),
        ("cloglog", 0.0),
        ("loglog", 0.0),
        ("cauchit", 0.0),
        ("inverse", 0.0),
        ("inverse_squared", 0.0),
        ("sqrt", 0.0),
        ("power", 0.3),
        ("power", -0.7),
        ("power", 2.5),
    ],
)
def test_agrees_with_statsmodels(name, lam):
    sm_link = _statsmodels_links()[(name, lam)]
    if name in BINARY or name == "identity":
        eta = np.linspace(-3.0, 3.0, 61)
    else:
        eta = np.linspace(0.2, 5.0, 49)
    link = links.get("power", power=lam) if name == "power" else links.get(name)
    np.testing.assert_allclose(link.h(eta), sm_link.inverse(eta), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(link.h1(eta), sm_link.inverse_deriv(eta), rtol=1e-12)
    # statsmodels falls back to -g''(mu) / g'(mu)^3 for some links: looser, and absolute
    # near the inflection points where h'' crosses zero
    np.testing.assert_allclose(link.h2(eta), sm_link.inverse_deriv2(eta), rtol=1e-9, atol=1e-12)
    mu = link.h(eta)
    np.testing.assert_allclose(link.g(mu), sm_link(mu), rtol=1e-12, atol=1e-13)


# ---- properties ----------------------------------------------------------------------------

# eta ranges for the round trip: h(eta) stays representable (not 0 or 1 in the binary links)
_ROUND_TRIP = {
    "identity": (-1e3, 1e3),
    "log": (-700.0, 700.0),
    "logit": (-700.0, 36.0),
    "probit": (-37.0, 8.0),
    "cloglog": (-700.0, 3.5),
    "loglog": (-6.5, 36.0),
    "cauchit": (-1e3, 1e3),
    "inverse": (1e-3, 1e3),  # both signs drawn
    "inverse_squared": (1e-3, 1e3),
    "sqrt": (1e-100, 1e3),  # not below: eta^2 would underflow
    "power": (1e-2, 1e2),
    "softplus": (-700.0, 700.0),
}

_lam = st.floats(0.1, 3.0).flatmap(lambda a: st.sampled_from([a, -a]))


@pytest.mark.parametrize("name", sorted(_ROUND_TRIP))
@given(u=st.floats(0.0, 1.0), negative=st.booleans(), lam=_lam)
def test_g_inverts_h(name, u, negative, lam):
    lo, hi = _ROUND_TRIP[name]
    if name in ("inverse", "inverse_squared", "sqrt", "power"):
        # log-uniform over magnitudes
        eta = lo * (hi / lo) ** u
    else:
        eta = lo + u * (hi - lo)
    if name == "inverse" and negative:
        eta = -eta
    lam = lam if name == "power" else 0.0
    code = CODE[name]
    assert k.link_eta_valid(code, lam, eta)
    mu, d1, _ = k.link_h012(code, lam, eta)
    assert k.link_mu_valid(code, lam, mu)
    back = k.link_g(code, lam, mu)
    cond = abs(mu / d1) if d1 != 0.0 else 0.0
    tol = 16 * EPS * (abs(eta) + cond)
    if name == "power":
        tol *= 1.0 + abs(math.log(eta)) * max(1.0, abs(1.0 / lam))
    assert abs(back - eta) <= tol, (eta, mu, back)


@given(mu=st.floats(0.0, 1e6))
def test_relu_g_is_a_right_inverse(mu):
    code = CODE["relu"]
    assert k.link_h(code, 0.0, k.link_g(code, 0.0, mu)) == mu


# eta ranges for the finite-difference checks: where h' is not negligible against h
_FD_RANGE = {
    "identity": (-50.0, 50.0),
    "log": (-30.0, 30.0),
    "logit": (-20.0, 20.0),
    "probit": (-8.0, 8.0),
    "cloglog": (-20.0, 3.0),
    "loglog": (-3.0, 20.0),
    "cauchit": (-50.0, 50.0),
    "inverse": (0.05, 50.0),  # both signs drawn
    "inverse_squared": (0.05, 50.0),
    "sqrt": (-50.0, 50.0),
    "power": (0.05, 20.0),
    "relu": (0.01, 50.0),  # both signs, away from the kink
    "softplus": (-30.0, 30.0),
}


def _fd4(f, x, d):
    """4th-order central difference and a bound on its rounding error."""
    vals = [f(x - 2 * d), f(x - d), f(x + d), f(x + 2 * d)]
    deriv = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * d)
    roundoff = 4 * EPS * max(abs(v) for v in vals) / d
    return deriv, roundoff


@pytest.mark.parametrize("name", NAMES)
@given(u=st.floats(0.0, 1.0), negative=st.booleans(), lam=_lam)
def test_derivatives_match_finite_differences(name, u, negative, lam):
    lo, hi = _FD_RANGE[name]
    eta = lo + u * (hi - lo)
    if name in ("inverse", "relu") and negative:
        eta = -eta
    lam = lam if name == "power" else 0.0
    code = CODE[name]
    d = 1e-3 * min(1.0, abs(eta) / 4) if name in ("inverse", "inverse_squared", "power") else 1e-3
    if name == "relu":
        d = min(1e-3, abs(eta) / 4)
    for value, fn in ((k.link_h1, k.link_h), (k.link_h2, k.link_h1)):
        analytic = value(code, lam, eta)
        numeric, roundoff = _fd4(lambda x, fn=fn: fn(code, lam, x), eta, d)
        assert abs(analytic - numeric) <= 1e-8 * abs(analytic) + 10 * roundoff, (
            eta,
            analytic,
            numeric,
        )


# ---- extremes ------------------------------------------------------------------------------

_EXTREME = np.array([-1e3, -745.0, -700.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 700.0, 745.0, 1e3])


@pytest.mark.parametrize(("name", "lam"), CASES, ids=CASE_IDS)
def test_extreme_arguments_give_no_nan(name, lam):
    eta = _EXTREME[ref.eta_valid(name, _EXTREME, lam)]
    for fn in (k.link_h, k.link_h1, k.link_h2):
        values = _scalar(fn, name, lam, eta)
        assert not np.isnan(values).any(), (fn, eta[np.isnan(values)])
    for j, fn in enumerate((k.link_h, k.link_h1, k.link_h2)):
        joint = np.array([k.link_h012(CODE[name], lam, e)[j] for e in eta])
        np.testing.assert_array_equal(joint, _scalar(fn, name, lam, eta))


@pytest.mark.parametrize(
    ("name", "eta", "want"),
    [
        ("logit", -1e3, (0.0, 0.0, 0.0)),
        ("logit", 1e3, (1.0, 0.0, 0.0)),
        ("probit", -1e3, (0.0, 0.0, 0.0)),
        ("probit", 1e3, (1.0, 0.0, 0.0)),
        ("cloglog", -1e3, (0.0, 0.0, 0.0)),
        ("cloglog", 1e3, (1.0, 0.0, 0.0)),
        ("loglog", -1e3, (0.0, 0.0, 0.0)),
        ("loglog", 1e3, (1.0, 0.0, 0.0)),
        ("log", 1e3, (np.inf, np.inf, np.inf)),
        ("log", -1e3, (0.0, 0.0, 0.0)),
        ("softplus", 1e3, (1e3, 1.0, 0.0)),
        ("softplus", -1e3, (0.0, 0.0, 0.0)),
        ("relu", -1e3, (0.0, 0.0, 0.0)),
        ("relu", 1e3, (1e3, 1.0, 0.0)),
        ("inverse", 1e3, (1e-3, -1e-6, 2e-9)),
        ("cauchit", 1e3, (1.0 - math.atan(1e-3) / math.pi, 1 / (math.pi * (1 + 1e6)), None)),
        ("cauchit", -1e3, (math.atan(1e-3) / math.pi, 1 / (math.pi * (1 + 1e6)), None)),
    ],
)
def test_extreme_values(name, eta, want):
    got = k.link_h012(CODE[name], 0.0, eta)
    for g_, w_ in zip(got, want, strict=True):
        if w_ is not None:
            assert g_ == pytest.approx(w_, rel=8 * EPS, abs=0.0)


@pytest.mark.parametrize(
    ("name", "mu", "want"),
    [
        ("logit", 0.0, -np.inf),
        ("logit", 1.0, np.inf),
        ("probit", 0.0, -np.inf),
        ("probit", 1.0, np.inf),
        ("cloglog", 0.0, -np.inf),
        ("cloglog", 1.0, np.inf),
        ("loglog", 0.0, -np.inf),
        ("loglog", 1.0, np.inf),
        ("cauchit", 0.0, -np.inf),
        ("cauchit", 1.0, np.inf),
        ("cauchit", 0.5, 0.0),
        ("log", 0.0, -np.inf),
        ("softplus", 0.0, -np.inf),
        ("logit", 1e-300, math.log(1e-300)),
        ("cloglog", 1e-300, math.log(1e-300)),
    ],
)
def test_g_at_the_edges(name, mu, want):
    assert k.link_g(CODE[name], 0.0, mu) == pytest.approx(want, rel=4 * EPS, abs=0.0)


@pytest.mark.parametrize(("name", "lam"), CASES, ids=CASE_IDS)
def test_domains_match_reference(name, lam):
    x = np.array([-np.inf, -1e3, -1.0, -1e-300, 0.0, 1e-300, 0.3, 1.0, 1.5, 1e3, np.inf, np.nan])
    code = CODE[name]
    eta_ok = np.array([k.link_eta_valid(code, lam, v) for v in x])
    mu_ok = np.array([k.link_mu_valid(code, lam, v) for v in x])
    np.testing.assert_array_equal(eta_ok, ref.eta_valid(name, x, lam))
    np.testing.assert_array_equal(mu_ok, ref.mu_valid(name, x, lam))
    # where eta is valid, h(eta) is a valid mean, away from saturation (cloglog: 1 at 3.6)
    eta = _eta_grid(name, lam)
    mu = _scalar(k.link_h, name, lam, eta)
    unsaturated = np.abs(eta) < 3
    assert ref.mu_valid(name, mu[unsaturated], lam).all()


# ---- array kernels ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "lam"), CASES, ids=CASE_IDS)
def test_array_loops_equal_scalar_kernels(name, lam):
    code = CODE[name]
    eta = _eta_grid(name, lam)
    out = np.empty_like(eta)
    for arr_fn, fn in ((k.link_h_arr, k.link_h), (k.link_h1_arr, k.link_h1)):
        arr_fn(code, lam, eta, out)
        np.testing.assert_array_equal(out, _scalar(fn, name, lam, eta))
    k.link_h2_arr(code, lam, eta, out)
    np.testing.assert_array_equal(out, _scalar(k.link_h2, name, lam, eta))
    mus, d1, d2 = np.empty_like(eta), np.empty_like(eta), np.empty_like(eta)
    k.link_h012_arr(code, lam, eta, mus, d1, d2)
    np.testing.assert_array_equal(mus, _scalar(k.link_h, name, lam, eta))
    np.testing.assert_array_equal(d1, _scalar(k.link_h1, name, lam, eta))
    np.testing.assert_array_equal(d2, _scalar(k.link_h2, name, lam, eta))
    mu = _mu_grid(name, lam)
    out = np.empty_like(mu)
    k.link_g_arr(code, lam, mu, out)
    np.testing.assert_array_equal(out, _scalar(k.link_g, name, lam, mu))


# ---- vocabulary --------------------------------------------------------------------------------


def test_canonical_names_and_codes():
    assert links.names() == list(NAMES)
    for name in NAMES:
        obj = links.REGISTRY.get(name)
        assert obj.name == name
        assert obj.code == CODE[name]
    assert set(links.descriptions()) == set(NAMES)
    assert all("mu = " in text for text in links.descriptions().values())


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("exp", "log"),
        ("exponential", "log"),
        ("sigmoid", "logit"),
        ("expit", "logit"),
        ("logistic", "logit"),
        ("normal_cdf", "probit"),
        ("Normal-CDF", "probit"),
        ("phi", "probit"),
        ("reciprocal", "inverse"),
        ("inverse_power", "inverse"),
        ("cauchy", "cauchit"),
        ("linear", "identity"),
        ("square", "sqrt"),
        ("rsqrt", "inverse_squared"),
        ("complementary_log_log", "cloglog"),
        ("LOGIT", "logit"),
    ],
)
def test_aliases(alias, canonical):
    link = links.get(alias)
    assert link.name == canonical
    assert link is links.get(canonical)
    assert links.REGISTRY.canonical(alias) == canonical


def test_inverse_names_are_aliases_of_their_link():
    for name in NAMES:
        if name == "power":
            continue
        link = links.get(name)
        assert links.get(link.inverse_name) == link
    assert links.get("log").inverse_name == "exp"
    assert links.get("logit").inverse_name == "sigmoid"
    assert links.get("power", power=0.25).inverse_name == "power(4)"


def test_unknown_name_names_the_closest_and_the_accepted():
    with pytest.raises(UnknownNameError) as err:
        links.get("lgoit")
    text = str(err.value)
    assert "'lgoit'" in text
    assert "did you mean 'logit'" in text
    for name in NAMES:
        assert name in text
    with pytest.raises(ValueError, match="accepted"):
        links.get("no-such-link")
    with pytest.raises(UnknownNameError):
        links.get(3)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (("power", 1.0), "identity"),
        (("power", 1), "identity"),
        (("power", -1.0), "inverse"),
        (("power", -2.0), "inverse_squared"),
        (("power", 0.5), "sqrt"),
        (("power", 0.0), "log"),
        (("power", -0.0), "log"),
        (("power(1)", None), "identity"),
        (("power(-1)", None), "inverse"),
        (("Power( -2 )", None), "inverse_squared"),
        (("power(0.5)", None), "sqrt"),
        (("power(0)", None), "log"),
        (("power(1e-1)", None), "power"),
    ],
)
def test_power_normalisation(spec, expected):
    name, power = spec
    link = links.get(name, power=power)
    assert link.name == expected
    if expected == "power":
        assert link.param == 0.1
        assert link.code == codes.LINK_POWER
    else:
        assert link is links.get(expected)
        assert link.param == 0.0


def test_power_link_object():
    link = links.get("power", power=0.3)
    assert link == links.get("power(0.3)") == links.Link("power", codes.LINK_POWER, 0.3)
    assert repr(link) == "Link('power', 0.3)"
    assert repr(links.get("logit")) == "Link('logit')"
    assert link.param == 0.3
    assert link != links.get("power", power=0.30000000000000004)
    assert link.eta_valid(np.array([-1.0, 0.0, 1.0])).tolist() == [False, True, True]
    assert links.get("power(-0.3)").eta_valid(np.array([0.0, 1.0])).tolist() == [False, True]
    np.testing.assert_allclose(link.g(np.array([8.0])), [8.0**0.3], rtol=EPS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "power"},
        {"name": "power", "power": np.inf},
        {"name": "power", "power": np.nan},
        {"name": "power", "power": "abc"},
        {"name": "power", "power": True},
        {"name": "power(x)"},
        {"name": "power(inf)"},
        {"name": "power()"},
        {"name": "power(2)", "power": 3.0},
        {"name": "log", "power": 2.0},
        {"name": links.get("log"), "power": 2.0},
    ],
)
def test_power_errors_say_what_is_accepted(kwargs):
    with pytest.raises(ValidationError) as err:
        links.get(**kwargs)
    assert "power" in str(err.value)


def test_power_error_lists_the_named_powers():
    with pytest.raises(ValidationError, match=r"power\(0.3\)") as err:
        links.get("power", power=float("nan"))
    assert "nan" in str(err.value)
    assert "inverse_squared" in str(err.value)


def test_objects_are_immutable_hashable_and_comparable():
    a, b = links.get("logit"), links.get("sigmoid")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, links.get("probit"), links.get("power(0.3)"), links.get("power(0.3)")}) == 3
    assert a != links.get("probit")
    with pytest.raises(AttributeError):
        a.name = "probit"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(links.get("power(0.3)"))) == links.get("power(0.3)")
    assert links.get(a) is a


def test_flags():
    assert [n for n in NAMES if not links.REGISTRY.get(n).invertible] == ["relu"]
    assert [n for n in NAMES if links.REGISTRY.get(n).output_only] == ["relu", "softplus"]


@pytest.mark.parametrize(("name", "lam"), CASES, ids=CASE_IDS)
def test_methods_call_the_kernels(name, lam):
    link = links.get("power", power=lam) if name == "power" else links.get(name)
    eta = _eta_grid(name, lam)
    np.testing.assert_array_equal(link.h(eta), _scalar(k.link_h, name, lam, eta))
    np.testing.assert_array_equal(link.h1(eta), _scalar(k.link_h1, name, lam, eta))
    np.testing.assert_array_equal(link.h2(eta), _scalar(k.link_h2, name, lam, eta))
    mu = _mu_grid(name, lam)
    np.testing.assert_array_equal(link.g(mu), _scalar(k.link_g, name, lam, mu))
    np.testing.assert_array_equal(link.eta_valid(eta), ref.eta_valid(name, eta, lam))
    np.testing.assert_array_equal(link.mu_valid(mu), ref.mu_valid(name, mu, lam))


def test_methods_keep_shape_and_accept_scalars_and_integers():
    link = links.get("log")
    x = np.arange(6.0).reshape(2, 3)
    assert link.h(x).shape == (2, 3)
    np.testing.assert_array_equal(link.h(x), np.exp(x))
    # non-contiguous input
    np.testing.assert_array_equal(link.h(x.T), np.exp(x.T))
    assert link.h(1) == math.e
    assert np.ndim(link.h(1.0)) == 0
    assert link.h([0, 1]).tolist() == [1.0, math.e]
    assert link.eta_valid(np.array([[np.nan, 1.0]])).shape == (1, 2)


def test_methods_reject_non_finite_and_non_numeric_input():
    link = links.get("logit")
    with pytest.raises(ValidationError, match=r"finite.*nan"):
        link.h(np.array([0.0, np.nan]))
    with pytest.raises(ValidationError, match="eta must be finite"):
        link.h1(np.array([np.inf]))
    with pytest.raises(ValidationError, match="mu must be finite"):
        link.g(np.array([0.5, -np.inf]))
    with pytest.raises(ValidationError, match="real numbers"):
        link.h("abc")
    # domain checks do not raise: they report
    assert link.eta_valid(np.array([np.nan, 0.0])).tolist() == [False, True]
    assert link.mu_valid(np.array([np.nan, 0.5, 1.0])).tolist() == [False, True, False]


_MAX_DENSITY = {
    "logit": 0.25,
    "probit": 1.0 / math.sqrt(2.0 * math.pi),
    "cloglog": math.exp(-1.0),
    "loglog": math.exp(-1.0),
    "cauchit": 1.0 / math.pi,
}


@pytest.mark.parametrize("name", BINARY)
@given(eta=st.floats(-1e3, 1e3))
def test_binary_links_are_distribution_functions(name, eta):
    code = CODE[name]
    mu, d1, _ = k.link_h012(code, 0.0, eta)
    assert 0.0 <= mu <= 1.0
    assert 0.0 <= d1 <= _MAX_DENSITY[name] * (1.0 + 2 * EPS)
    assert k.link_h(code, 0.0, math.nextafter(eta, math.inf)) >= mu
