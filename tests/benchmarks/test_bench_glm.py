"""The reference GLM fit against statsmodels, scikit-learn and glum.

Off by default (``--benchmark-disable`` runs each benchmark once, on the smallest sizes only,
as a smoke test).  The full grid and the ratio report::

    python scripts/bench_glm.py                      # all peers, their default threading
    python scripts/bench_glm.py --threads 1          # every library on one thread

or ``SIMBENCH_BENCH_FULL=1 python -m pytest tests/benchmarks/test_bench_glm.py
--benchmark-enable --benchmark-json=out.json`` and ``python scripts/bench_glm.py out.json``.

One group per (family, n, p): Poisson (log link), Bernoulli (logit) and Gamma (log link),
``n`` in {1e3, 1e4, 1e5} (only 1e3 unless ``SIMBENCH_BENCH_FULL=1``), ``p`` in {10, 50}.
Every implementation fits the same unpenalised model with an intercept to the same data, at
the same nominal tolerance 1e-8 (each in its own criterion: statsmodels' relative deviance
change, scikit-learn's and glum's gradient norm, simbench's deviance change and Newton
decrement), from its own starting values.  Each benchmark first fits once untimed (compile,
caches), then checks that the coefficients agree with simbench's (1e-4 relative: the same
problem was solved), then times ``ROUNDS`` fits.  Each peer is compared with the same work:
scikit-learn and glum compute the coefficients only, as does ``simbench`` (``fit_glm``; its
covariances are computed on first access); statsmodels also computes the covariance of the
coefficients and their standard errors, as does ``simbench+cov`` (``fit_glm`` and then
``bse``, which adds the pass for the Fisher information).  Targets: geometric mean of the
speed-ups >= 10x statsmodels and >= 3x scikit-learn and glum.
"""

from __future__ import annotations

import functools
import os
import time
import warnings

import numpy as np
import pytest

from simbench.fit.glm import fit_glm

TOL = 1e-8
FULL = os.environ.get("SIMBENCH_BENCH_FULL", "") not in ("", "0")
NS = (1_000, 10_000, 100_000) if FULL else (1_000,)
PS = (10, 50)
FAMILIES = ("poisson", "bernoulli", "gamma")
LINK = {"poisson": "log", "bernoulli": "logit", "gamma": "log"}
GRID = [(f, n, p) for f in FAMILIES for n in NS for p in PS]
IDS = [f"{f}-n{n}-p{p}" for f, n, p in GRID]


@functools.cache
def _data(family: str, n: int, p: int):
    """Standard normal covariates, true slopes of total sd 0.5, intercept 1 (Bernoulli 0)."""
    rng = np.random.default_rng(20_000 + 100 * p + n % 97)
    X = rng.standard_normal((n, p))
    beta = rng.standard_normal(p) * 0.5 / np.sqrt(p)
    eta = X @ beta
    if family == "poisson":
        y = rng.poisson(np.exp(1.0 + eta)).astype(np.float64)
    elif family == "bernoulli":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    else:
        y = rng.gamma(2.0, np.exp(1.0 + eta) / 2.0)
    return X, y


@functools.cache
def _reference_coef(family: str, n: int, p: int) -> np.ndarray:
    X, y = _data(family, n, p)
    fit = fit_glm(X, y, family, link=LINK[family], tol=TOL)
    assert fit.status == "ok"
    return fit.coef


def _run(benchmark, family, n, p, impl, fit, coef_of):
    benchmark.group = f"glm-{family}-n{n}-p{p}"
    benchmark.extra_info.update(impl=impl, family=family, n=n, p=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peers' convergence chatter; checked below instead
        t0 = time.perf_counter()
        result = fit()  # untimed: compilation, imports, caches
        elapsed = time.perf_counter() - t0
        ref = _reference_coef(family, n, p)
        np.testing.assert_allclose(coef_of(result), ref, rtol=1e-4, atol=1e-6)
        rounds = int(np.clip(1.0 / max(elapsed, 1e-6), 3, 30))
        benchmark.pedantic(fit, rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize(("family", "n", "p"), GRID, ids=IDS)
def test_simbench(benchmark, family, n, p):
    X, y = _data(family, n, p)
    _run(
        benchmark,
        family,
        n,
        p,
        "simbench",
        lambda: fit_glm(X, y, family, link=LINK[family], tol=TOL),
        lambda fit: fit.coef,
    )


@pytest.mark.parametrize(("family", "n", "p"), GRID, ids=IDS)
def test_simbench_with_covariance(benchmark, family, n, p):
    X, y = _data(family, n, p)

    def fit():
        res = fit_glm(X, y, family, link=LINK[family], tol=TOL)
        res.bse  # noqa: B018 (computed on first access)
        return res

    _run(benchmark, family, n, p, "simbench+cov", fit, lambda res: res.coef)


@pytest.mark.peers
@pytest.mark.parametrize(("family", "n", "p"), GRID, ids=IDS)
def test_statsmodels(benchmark, family, n, p):
    sm = pytest.importorskip("statsmodels.api")
    X, y = _data(family, n, p)
    Xc = sm.add_constant(X)
    fam = {
        "poisson": lambda: sm.families.Poisson(),
        "bernoulli": lambda: sm.families.Binomial(),
        "gamma": lambda: sm.families.Gamma(sm.families.links.Log()),
    }[family]
    _run(
        benchmark,
        family,
        n,
        p,
        "statsmodels",
        lambda: sm.GLM(y, Xc, family=fam()).fit(tol=TOL),
        lambda res: res.params,
    )


@pytest.mark.peers
@pytest.mark.parametrize(("family", "n", "p"), GRID, ids=IDS)
def test_sklearn(benchmark, family, n, p):
    lm = pytest.importorskip("sklearn.linear_model")
    X, y = _data(family, n, p)
    if family == "poisson":
        model = lm.PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=TOL, max_iter=100)
    elif family == "gamma":
        model = lm.GammaRegressor(alpha=0.0, solver="newton-cholesky", tol=TOL, max_iter=100)
    else:
        model = lm.LogisticRegression(C=np.inf, solver="newton-cholesky", tol=TOL, max_iter=100)

    def coef(m):
        return np.r_[np.ravel(m.intercept_), np.ravel(m.coef_)]

    _run(benchmark, family, n, p, "sklearn", lambda: model.fit(X, y), coef)


@pytest.mark.peers
@pytest.mark.parametrize(("family", "n", "p"), GRID, ids=IDS)
def test_glum(benchmark, family, n, p):
    glum = pytest.importorskip("glum")
    X, y = _data(family, n, p)
    model = glum.GeneralizedLinearRegressor(
        family={"poisson": "poisson", "bernoulli": "binomial", "gamma": "gamma"}[family],
        link=LINK[family],
        alpha=0.0,
        gradient_tol=TOL,
    )

    def coef(m):
        return np.r_[m.intercept_, m.coef_]

    _run(benchmark, family, n, p, "glum", lambda: model.fit(X, y), coef)
