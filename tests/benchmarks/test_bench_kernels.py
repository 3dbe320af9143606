"""Micro-benchmarks of the loss kernels (value, gradient and Hessian in eta for n = 1e6 rows)
and of the IRLS cross-product ``[X~' W X~, X~' f]`` (n = 1e5, p = 10 and 50).

For the four canonical pairs, three implementations of the same one-pass job:
``dispatch`` (``loss_grad_hess``, which takes the fused loop), ``generic``
(``loss_grad_hess_generic``: h, then the family's deviance and variance) and ``numpy``
(a straightforward vectorised NumPy/SciPy version of the same stable formulas).  One
non-canonical pair (Tweedie with log link) shows the generic path where no fused loop exists.

The default test run passes ``--benchmark-disable``, so each benchmark runs once as a smoke
test; ``pytest tests/benchmarks --benchmark-enable`` times them.  Kernels are compiled before
timing, outputs are preallocated for the kernels (they write into ``out`` buffers), and every
benchmark checks its result against the plain reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import losses as ref
from scipy import special

from simbench.kernels import codes as C
from simbench.kernels import irls as IRLS
from simbench.kernels import losses as K

N = 1_000_000
EMPTY = np.empty(0)
TWEEDIE_POWER = 1.5


def _numpy_poisson_log(y, eta):
    mu = np.exp(eta)
    value = np.sum(mu - y * eta + special.xlogy(y, y) - y)
    return value, mu - y, mu


def _numpy_bernoulli_logit(y, eta):
    mu = special.expit(eta)
    value = np.sum(np.logaddexp(0.0, eta) - y * eta)
    return value, mu - y, mu * (1.0 - mu)


def _numpy_gaussian_identity(y, eta):
    r = eta - y
    return 0.5 * np.dot(r, r), r, np.ones_like(r)


def _numpy_gamma_log(y, eta):
    q = y * np.exp(-eta)
    return np.sum(q - 1.0 - np.log(q)), 1.0 - q, q


def _numpy_tweedie_log(y, eta, p=TWEEDIE_POWER):
    m1 = np.exp((1.0 - p) * eta)  # mu^(1-p)
    m2 = np.exp((2.0 - p) * eta)  # mu^(2-p)
    value = np.sum(y ** (2.0 - p) / ((1.0 - p) * (2.0 - p)) - y * m1 / (1.0 - p) + m2 / (2.0 - p))
    return value, m2 - y * m1, (2.0 - p) * m2 - (1.0 - p) * y * m1


# name -> (loss code, output activation code, family parameter, response sampler, numpy version)
CASES = {
    "poisson-log": (
        C.FAMILY_POISSON,
        C.LINK_LOG,
        0.0,
        lambda rng, mu: rng.poisson(mu).astype(float),
        _numpy_poisson_log,
    ),
    "bernoulli-logit": (
        C.FAMILY_BERNOULLI,
        C.LINK_LOGIT,
        0.0,
        lambda rng, mu: (rng.random(mu.size) < mu).astype(float),
        _numpy_bernoulli_logit,
    ),
    "gaussian-identity": (
        C.FAMILY_GAUSSIAN,
        C.LINK_IDENTITY,
        0.0,
        lambda rng, mu: rng.normal(mu, 1.0),
        _numpy_gaussian_identity,
    ),
    "gamma-log": (
        C.FAMILY_GAMMA,
        C.LINK_LOG,
        0.0,
        lambda rng, mu: rng.gamma(2.0, mu / 2.0),
        _numpy_gamma_log,
    ),
    "tweedie-log": (
        C.FAMILY_TWEEDIE,
        C.LINK_LOG,
        TWEEDIE_POWER,
        # compound Poisson-gamma draws: exact zeros and a continuous positive part
        lambda rng, mu: np.where(rng.random(mu.size) < 0.3, 0.0, rng.gamma(2.0, mu / 2.0)),
        _numpy_tweedie_log,
    ),
}


@pytest.fixture(scope="module")
def problems():
    """Per case: y, eta, and the reference (total, grad[:1000], hess[:1000])."""
    rng = np.random.default_rng(20260101)
    eta = rng.normal(0.3, 0.7, N)
    out = {}
    for name, (lc, hc, a, sampler, _np_fn) in CASES.items():
        mu = ref.link_h012(hc, 0.0, eta)[0]
        y = sampler(rng, mu)
        total, grad, hess = ref.loss_grad_hess(lc, a, 1.0, hc, 0.0, y, eta)
        out[name] = (y, eta, (total, grad[:1000], hess[:1000]))
    return out


def _kernel_runner(fn, lc, hc, a, y, eta):
    grad = np.empty(N)
    hess = np.empty(N)

    def run():
        total = fn(lc, a, 1.0, hc, 0.0, C.HESS_OBSERVED, y, eta, EMPTY, EMPTY, grad, hess)
        return total, grad, hess

    return run


@pytest.mark.parametrize("impl", ["dispatch", "generic", "numpy"])
@pytest.mark.parametrize("case", list(CASES))
def test_loss_grad_hess(benchmark, problems, case, impl):
    lc, hc, a, _sampler, np_fn = CASES[case]
    y, eta, (ref_total, ref_grad, ref_hess) = problems[case]
    benchmark.group = f"loss_grad_hess {case} n=1e6"
    if impl == "numpy":

        def run():
            return np_fn(y, eta)

    else:
        fn = K.loss_grad_hess if impl == "dispatch" else K.loss_grad_hess_generic
        run = _kernel_runner(fn, lc, hc, a, y, eta)
    run()  # compile (or load from the cache) outside the timing
    total, grad, hess = benchmark(run)
    # the numpy versions drop no constants here, so all three agree with the reference sum
    assert total == pytest.approx(ref_total, rel=1e-9, abs=0.0)
    np.testing.assert_allclose(grad[:1000], ref_grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hess[:1000], ref_hess, rtol=1e-9, atol=1e-12)


# ---- the IRLS cross-product -------------------------------------------------------------------

CROSS_N = 100_000


@pytest.mark.parametrize("impl", ["simbench", "numpy"])
@pytest.mark.parametrize("p", [10, 50])
def test_cross_product(benchmark, p, impl):
    """The bordered cross-product of one IRLS pass over all rows: ``irls_accumulate`` (the
    SIMD rank-8 updates of :mod:`simbench.kernels.simd`, one thread) against NumPy's
    ``X~' (W X~)`` and ``X~' f`` (BLAS, its default threads)."""
    benchmark.group = f"cross-product n=1e5 p={p}"
    rng = np.random.default_rng(7)
    X = rng.standard_normal((CROSS_N, p))
    W = rng.uniform(0.5, 2.0, CROSS_N)
    f = rng.standard_normal(CROSS_N)
    Xt = np.column_stack([np.ones(CROSS_N), X])
    expect_A, expect_g = Xt.T @ (W[:, None] * Xt), Xt.T @ f
    q1 = p + 2
    out = np.empty((q1, q1))
    work = np.empty((IRLS.n_blocks(CROSS_N), q1, q1))

    if impl == "simbench":

        def run():
            IRLS.irls_accumulate(X, 1, W, f, out, work)
            return np.tril(out[: p + 1, : p + 1]), out[p + 1, : p + 1]

    else:

        def run():
            return Xt.T @ (W[:, None] * Xt), Xt.T @ f

    run()  # compile (or load from the cache) outside the timing
    A, g = benchmark(run)
    np.testing.assert_allclose(np.tril(A), np.tril(expect_A), rtol=1e-11, atol=1e-8)
    np.testing.assert_allclose(g, expect_g, rtol=1e-11, atol=1e-8)
