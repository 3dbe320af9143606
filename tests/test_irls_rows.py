"""The vectorised IRLS rows (Poisson-log, Gamma-log, logit given per-row constants) against the
scalar rows of the fused loss kernels, and the branch-free elementary functions they use."""

from __future__ import annotations

import numpy as np
import pytest

from simbench.kernels import codes
from simbench.kernels import irls as k
from simbench.kernels.vecmath import exp_fast, log1p_unit

EMPTY = np.empty(0)
PAIRS = {
    "poisson-log": (codes.FAMILY_POISSON, codes.LINK_LOG),
    "gamma-log": (codes.FAMILY_GAMMA, codes.LINK_LOG),
    "bernoulli-logit": (codes.FAMILY_BERNOULLI, codes.LINK_LOGIT),
    "binomial-logit": (codes.FAMILY_BINOMIAL, codes.LINK_LOGIT),
}


def _data(name, rng, n):
    eta = rng.normal(0.3, 1.5, n)
    if name == "poisson-log":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif name == "gamma-log":
        y = rng.gamma(2.0, np.exp(eta) / 2.0)
    elif name == "bernoulli-logit":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:  # proportions of trials, some strictly inside (0, 1)
        trials = rng.integers(1, 6, n)
        y = rng.binomial(trials, 1 / (1 + np.exp(-eta))) / trials
    return eta, y


def _rows(name, X, beta, y, w, mode, constants):
    fcode, lcode = PAIRS[name]
    n = X.shape[0]
    eta, W, f, v = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    if mode == k.MODE_START:  # the start takes eta as given
        eta[:] = X @ beta[1:] + beta[0]
    dev = k.irls_rows(
        X, 1, beta, mode, fcode, 0.0, lcode, 0.0, y, w, EMPTY, 0, n, eta, W, f, constants, v
    )
    return dev, W, f


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("weighted", [False, True])
def test_fast_rows_equal_the_scalar_rows(name, weighted):
    rng = np.random.default_rng(sum(map(ord, name)) + weighted)
    n, p = 600, 3
    X = rng.normal(0, 1, (n, p))
    beta = rng.normal(0, 0.5, p + 1)
    _, y = _data(name, rng, n)
    w = rng.uniform(0.5, 3.0, n) if weighted else EMPTY
    if weighted:
        w[::9] = 0.0
    fcode, lcode = PAIRS[name]
    constants = k.row_constants(fcode, lcode, y)
    assert constants.size == n
    modes = [k.MODE_START, k.MODE_FISHER] + ([k.MODE_NEWTON] if name == "gamma-log" else [])
    for mode in modes:
        dev_s, W_s, f_s = _rows(name, X, beta, y, w, mode, EMPTY)
        dev_f, W_f, f_f = _rows(name, X, beta, y, w, mode, constants)
        assert np.isfinite(dev_s)
        np.testing.assert_allclose(dev_f, dev_s, rtol=1e-13)
        np.testing.assert_allclose(W_f, W_s, rtol=1e-14, atol=0)
        np.testing.assert_allclose(f_f, f_s, rtol=1e-13, atol=1e-15)
        if weighted:
            assert np.all(W_f[::9] == 0.0) and np.all(f_f[::9] == 0.0)


@pytest.mark.parametrize("name", ["poisson-log", "gamma-log"])
def test_fast_rows_reject_a_mean_outside_the_domain(name):
    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (40, 1))
    _, y = _data(name, rng, 40)
    fcode, lcode = PAIRS[name]
    beta = np.array([0.0, 900.0])  # e^eta overflows (Poisson) or underflows (Gamma) on some rows
    dev, _, _ = _rows(name, X, beta, y, EMPTY, k.MODE_FISHER, k.row_constants(fcode, lcode, y))
    assert np.isnan(dev)


def test_row_constants_only_for_the_fast_pairs():
    y = np.array([0.0, 0.5, 1.0])
    assert k.row_constants(codes.FAMILY_GAUSSIAN, codes.LINK_IDENTITY, y).size == 0
    assert k.row_constants(codes.FAMILY_POISSON, codes.LINK_SQRT, y).size == 0
    np.testing.assert_array_equal(
        k.row_constants(codes.FAMILY_POISSON, codes.LINK_LOG, y), [0.0, np.log(0.5), 0.0]
    )
    # log y within an ulp of libm, subnormal and huge y included
    counts = np.concatenate(
        [np.random.default_rng(6).gamma(0.5, 4.0, 20_000), [5e-324, 1e-310, 1e300, 0.0]]
    )
    got = k.row_constants(codes.FAMILY_GAMMA, codes.LINK_LOG, counts)
    with np.errstate(divide="ignore"):
        ref = np.where(counts > 0, np.log(counts), 0.0)
    nz = ref != 0
    assert np.all(got[~nz] == 0.0)
    assert np.max(np.abs(got[nz] - ref[nz]) / np.spacing(np.abs(ref[nz]))) <= 1.0
    np.testing.assert_allclose(
        k.row_constants(codes.FAMILY_BERNOULLI, codes.LINK_LOGIT, y), [0.0, np.log(0.5), 0.0]
    )


def test_log1p_unit_is_within_an_ulp_of_libm():
    rng = np.random.default_rng(4)
    t = np.concatenate(
        [
            rng.uniform(0.0, 1.0, 200_000),
            np.exp(-rng.uniform(0.0, 745.0, 200_000)),  # e^-|eta|, as the logit rows use it
            np.linspace(0.414, 0.4143, 3001),  # around the sqrt(2) split
            [0.0, 1.0, 5e-324, 2.0**-52, 0.4142135623730951],
        ]
    )
    got = np.array([log1p_unit(x) for x in t])
    ref = np.log1p(t)
    pos = ref > 0
    assert np.all(got[~pos] == 0.0)
    assert np.max(np.abs(got[pos] - ref[pos]) / np.spacing(ref[pos])) <= 1.0


def test_exp_fast_lives_in_vecmath_and_matches_libm_on_typical_arguments():
    x = np.random.default_rng(5).normal(0.0, 5.0, 50_000)
    got = np.array([exp_fast(v) for v in x])
    assert np.max(np.abs(got - np.exp(x)) / np.spacing(np.exp(x))) <= 1.0


@pytest.mark.parametrize("name", list(PAIRS))
def test_fast_start_and_finish_match_their_formulas(name):
    rng = np.random.default_rng(sum(map(ord, name)) + 7)
    n = 500
    eta, y = _data(name, rng, n)
    fcode, lcode = PAIRS[name]
    w = rng.integers(1, 6, n).astype(float) if name == "binomial-logit" else EMPTY
    ww = np.ones(n) if w.size == 0 else w
    eta0 = np.empty(n)
    ybar = k.irls_start_eta(fcode, 0.0, lcode, 0.0, y, w, eta0)
    np.testing.assert_allclose(ybar, np.sum(ww * y) / np.sum(ww), rtol=1e-14)
    if name == "binomial-logit":
        mu0 = (w * y + 0.5) / (w + 1.0)
    elif name == "bernoulli-logit":
        mu0 = 0.5 * (y + 0.5)
    else:
        mu0 = 0.5 * (y + ybar)
    ref0 = np.log(mu0 / (1 - mu0)) if "logit" in name else np.log(mu0)
    np.testing.assert_allclose(eta0, ref0, rtol=1e-14, atol=1e-15)

    mu, u, W = np.empty(n), np.empty(n), np.empty(n)
    pearson, npos, sw = k.irls_finish(fcode, 0.0, lcode, 0.0, y, w, eta, mu, u, W)
    h = 1 / (1 + np.exp(-eta)) if "logit" in name else np.exp(eta)
    V = {"poisson-log": h, "gamma-log": h**2}.get(name, h * (1 - h))
    h1 = h * (1 - h) if "logit" in name else h
    np.testing.assert_allclose(mu, h, rtol=1e-14)
    np.testing.assert_allclose(u, ww * h1 * (y - h) / V, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W, ww * h1**2 / V, rtol=1e-13)
    np.testing.assert_allclose(pearson, np.sum(ww * (y - h) ** 2 / V), rtol=1e-12)
    assert npos == n and sw == pytest.approx(ww.sum())


def test_log_fast_is_within_an_ulp_of_libm():
    from simbench.kernels.vecmath import log_fast

    rng = np.random.default_rng(9)
    x = np.concatenate(
        [
            np.exp(rng.uniform(-700.0, 700.0, 200_000)),
            rng.uniform(0.5, 2.0, 200_000),  # around 1, where log x is small
            [1.0, 2.0, 0.5, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 0), 2.2250738585072014e-308],
        ]
    )
    got = np.array([log_fast(v) for v in x])
    ref = np.log(x)
    assert np.all(got[ref == 0] == 0)
    nz = ref != 0
    assert np.max(np.abs(got[nz] - ref[nz]) / np.spacing(np.abs(ref[nz]))) <= 1.0
