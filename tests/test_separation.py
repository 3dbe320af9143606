"""Separation decided cheaply (:mod:`simbench.fit.separation`): the overlap certificate and the
fit's own direction spare the linear programs, which keep the last word and a time bound.

The cases of ``tests/test_glm.py`` (complete, quasi-complete, constant response, Poisson zero
group, strong but overlapping signal) stay there; here: high-dimensional fits, the
certificate against the linear programs, and the time bound.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from simbench.fit import separation as S
from simbench.fit.glm import fit_glm


@pytest.fixture
def lp_calls(monkeypatch):
    """The ``options`` of every call to ``scipy.optimize.linprog`` (which still runs)."""
    calls = []
    real = scipy.optimize.linprog

    def counting(*args, **kwargs):
        calls.append(kwargs.get("options", {}))
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "linprog", counting)
    return calls


def high_dimensional_logistic(n, p, seed, signal=10.0):
    """Claim 7's design: x ~ N(0, I), half the slopes sqrt(signal / p), the rest 0."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    beta = np.zeros(p)
    beta[: p // 2] = np.sqrt(signal / p)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(float)
    return X, y


def quasi_complete(seed=16, n=100):
    """Rows with x1 = 0 carry both responses; the others are separated by x1 > 0."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    X[: n // 5, 0] = 0.0
    y = (X[:, 0] > 0).astype(float)
    y[: n // 5] = rng.integers(0, 2, n // 5)
    return X, y


def _signs(fit, y):
    return S.boundary_signs("binary", y, fit._data.wpos)


# ---- high-dimensional fits ----------------------------------------------------------------------


def test_high_dimensional_overlap_fits_without_linear_program(lp_calls):
    X, y = high_dimensional_logistic(1000, 200, seed=0)
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "ok" and fit.converged, fit.message
    d = fit._data
    # the symptom is there (fitted means within 1e-6 of 0 or 1), so the check ran ...
    assert S.suspect_separation("binary", y, d.mu, d.wpos, d.ybar)
    # ... and the final iterate proved overlap without a linear program
    assert S.overlap_certified(X, 1, _signs(fit, y), d.u_row, d.W_row)
    assert lp_calls == []


def test_without_the_certificate_the_linear_program_decides(monkeypatch, lp_calls):
    monkeypatch.setattr(S, "overlap_certified", lambda *args: False)
    X, y = high_dimensional_logistic(1000, 200, seed=0)
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "ok" and fit.converged, fit.message
    assert len(lp_calls) == 1  # the existence program finds no direction
    limit = lp_calls[0]["time_limit"]
    assert 0.0 < limit <= S.lp_seconds(10.0)  # bounded (the fit itself takes well under 10 s)


def test_high_dimensional_complete_separation_is_reported_without_linear_program(lp_calls):
    X, y = high_dimensional_logistic(200, 150, seed=1, signal=0.0)  # p/n > 1/2: separable
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "separation" and not fit.converged
    assert fit.message.startswith("complete separation: a hyperplane"), fit.message
    assert lp_calls == []
    # the linear programs agree
    found = S.find_separation(X, 1, y, np.ones(200, dtype=bool), "binary")
    assert found == S.Separation(200, 200, True)


def test_means_rounded_onto_the_boundary_are_left_out_of_the_certificate(lp_calls):
    # probit means round to 1.0 beyond eta = 8.3: u_i and W_i are not finite on those rows
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (400, 2))
    eta = 14.0 * X[:, 0] + X[:, 1]
    y = (rng.standard_normal(400) < eta).astype(float)
    fit = fit_glm(X, y, "bernoulli", link="probit")
    assert fit.status == "ok" and fit.converged, fit.message
    assert (fit._data.mu == 1.0).any()
    assert lp_calls == []


def test_rows_of_negligible_weight_are_left_out_of_the_certificate(lp_calls):
    # an outlier fitted at mu = 1e-90 (W 1e-90 of the largest): no margin for rounding could
    # be verified on it, and the other rows prove overlap without it
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (300, 2))
    X[0] = [-40.0, 0.3]
    y = (rng.random(300) < 1 / (1 + np.exp(-(5 * X[:, 0] + X[:, 1])))).astype(float)
    y[0] = 0.0
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "ok" and fit.converged, fit.message
    assert fit._data.mu[0] < 1e-80
    assert lp_calls == []


# ---- the certificate never clears separated data ------------------------------------------------


def test_certificate_fails_on_quasi_complete_separation():
    X, y = quasi_complete()
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "separation"
    assert not S.overlap_certified(X, 1, _signs(fit, y), fit._data.u_row, fit._data.W_row)


def test_certificate_fails_on_a_zero_count_group():
    rng = np.random.default_rng(18)
    n = 150
    x = rng.uniform(-1, 1, n)
    group = (rng.random(n) < 0.3).astype(float)
    y = rng.poisson(np.exp(0.5 + 0.3 * x)).astype(float)
    y[group == 1] = 0.0
    X = np.column_stack([x, group])
    fit = fit_glm(X, y, "poisson")
    assert fit.status == "separation"
    sign = S.boundary_signs("count", y, fit._data.wpos)
    assert not S.overlap_certified(X, 1, sign, fit._data.u_row, fit._data.W_row)


def _one_row_separated(delta):
    """A converged fit's ``u``, ``W`` on 300 rows where ``x3 = x1 + x2``, and one more row,
    ``y = 1``, off that plane, fitted at ``mu = 1 - delta``: ``d = (0, -1, -1, 1)`` separates
    it (``x~'d = 0`` on the others), so no certificate may hold, however small ``delta``."""
    rng = np.random.default_rng(3)
    X2 = rng.uniform(-1, 1, (300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-(1.5 * X2[:, 0] - X2[:, 1])))).astype(float)
    fit = fit_glm(X2, y, "bernoulli")
    assert fit.status == "ok"
    X = np.vstack([np.column_stack([X2, X2.sum(axis=1)]), [[0.3, -0.2, 1.1]]])
    y = np.append(y, 1.0)
    u = np.append(fit._data.u_row, delta)  # logit: u = y - mu, W = mu (1 - mu)
    W = np.append(fit._data.W_row, delta * (1.0 - delta))
    return X, S.boundary_signs("binary", y, np.ones(301, dtype=bool)), u, W


@pytest.mark.parametrize("delta", [1e-3, 1e-9, 1e-13, 1e-15, 3e-16, 1e-16, 1e-25])
def test_certificate_fails_when_rows_of_tiny_weight_are_separated(delta):
    # delta near 1e-15: the Cholesky factor goes through on rounding and the step looks
    # short; only the rank check sees that the other rows do not span
    X, sign, u, W = _one_row_separated(delta)
    assert not S.overlap_certified(X, 1, sign, u, W)


def test_certificate_does_not_trust_its_solve(monkeypatch):
    # a solve that returns 0 would make every step look short; the residual it leaves
    # (e = X~'u, measured in M^-1) must widen the margin enough to refuse
    X, sign, u, W = _one_row_separated(1e-9)
    real, first = S._cholesky_solve, [True]

    def wrong_once(*args, **kwargs):
        out = real(*args, **kwargs)
        if first.pop() if first else False:
            return np.zeros_like(out)
        return out

    monkeypatch.setattr(S, "_cholesky_solve", wrong_once)
    assert not S.overlap_certified(X, 1, sign, u, W)
    assert not first  # the wrong solve was used


@pytest.mark.parametrize("q", [1, 2, 3, 7, 40, 250])
def test_cholesky_solve_matches_scipy(q):
    from scipy import linalg

    rng = np.random.default_rng(q)
    B = rng.standard_normal((q + 5, q))
    A = B.T @ B + 1e-3 * np.eye(q)
    b = rng.standard_normal(q)
    L = np.linalg.cholesky(A)
    x = S._cholesky_solve(L, b)
    np.testing.assert_allclose(x, linalg.cho_solve((L, True), b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(A @ x, b, rtol=1e-8, atol=1e-10)


def test_the_certificate_needs_no_scipy_linear_algebra():
    """Most fits never make the check; SciPy's linear algebra takes 0.15 s to import.  With
    the kernels in the cache (compiling imports it, through Numba's linear algebra)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import numpy as np\n"
        "from simbench.fit import separation as S\n"
        "from simbench.fit.glm import fit_glm\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((1000, 200))\n"
        "beta = np.zeros(200)\n"
        "beta[:100] = np.sqrt(10.0 / 200)\n"
        "y = (rng.random(1000) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(float)\n"
        "seen = []\n"
        "real = S.overlap_certified\n"
        "S.overlap_certified = lambda *a: seen.append(real(*a)) or seen[-1]\n"
        "fit = fit_glm(X, y, 'bernoulli')\n"
        "print(fit.status, seen, 'scipy.linalg' in sys.modules)\n"
    )
    for _ in range(2):  # the first process fills the cache where it was empty
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "[True]", "False"]


def _random_problem(seed):
    """Small binary and count problems, separated or not, continuous or discrete covariates."""
    rng = np.random.default_rng(seed)
    n, p = int(rng.integers(15, 200)), int(rng.integers(1, 5))
    X = rng.uniform(-1, 1, (n, p)) if seed % 2 else rng.integers(0, 3, (n, p)).astype(float)
    eta = rng.choice([1.0, 5.0, 30.0]) * (X @ rng.standard_normal(p)) + rng.normal()
    if seed % 5 == 0:
        y = rng.poisson(np.exp(np.clip(eta / 10.0, -6.0, 3.0))).astype(float)
        if seed % 3:
            y[X[:, 0] > 0.5] = 0.0  # a zero-count region: often separated
        return X, y, "poisson", "log"
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-np.clip(eta, -40, 40)))).astype(float)
    if seed % 7 == 0:
        X[: n // 5, 0] = 0.0
        y[n // 5 :] = (X[n // 5 :, 0] > 0).astype(float)
    return X, y, "bernoulli", ["logit", "probit", "cloglog", "loglog", "cauchit"][seed % 5]


@pytest.mark.parametrize("seed", range(60))
def test_cheap_steps_give_the_linear_programs_answer(monkeypatch, seed):
    X, y, family, link = _random_problem(seed)
    fast = fit_glm(X, y, family, link=link)

    def programs_only(kind, X, icpt, y, wpos, *, seconds, **fit):
        return S.find_separation(X, icpt, y, wpos, kind, seconds=60.0)

    monkeypatch.setattr("simbench.fit.glm.check_separation", programs_only)
    slow = fit_glm(X, y, family, link=link)
    assert (fast.status, fast.message) == (slow.status, slow.message)


# ---- the time bound -----------------------------------------------------------------------------


def _time_limit_reached(*args, **kwargs):
    return scipy.optimize.OptimizeResult(
        status=1, x=None, fun=None, message="Time limit reached. (HiGHS Status 13)"
    )


def test_existence_program_out_of_time_leaves_the_fit_undecided(monkeypatch):
    monkeypatch.setattr(scipy.optimize, "linprog", _time_limit_reached)
    X, y = quasi_complete()
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "not_converged" and not fit.converged
    assert fit.message.startswith("separation undecided"), fit.message
    assert np.isfinite(fit.coef).all()  # the last iterate is returned


def test_highs_time_limit_is_read_as_undecided(monkeypatch):
    # a real HiGHS run stopped by its time limit (a millisecond for a 1000 x 201 program that
    # takes some hundred times longer), not a simulated one
    monkeypatch.setattr(S, "overlap_certified", lambda *args: False)
    monkeypatch.setattr(S, "LP_MIN_SECONDS", 1e-3)
    monkeypatch.setattr(S, "LP_IRLS_MULTIPLE", 0.0)
    X, y = high_dimensional_logistic(1000, 200, seed=0)
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "not_converged" and fit.message.startswith("separation undecided")


def test_classification_out_of_time_still_reports_the_verified_separation(monkeypatch):
    real = scipy.optimize.linprog
    calls = []

    def first_only(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs) if len(calls) == 1 else _time_limit_reached()

    monkeypatch.setattr(scipy.optimize, "linprog", first_only)
    X, y = quasi_complete()
    fit = fit_glm(X, y, "bernoulli")
    assert fit.status == "separation" and not fit.converged
    assert fit.message.startswith("separation: at least "), fit.message
    assert len(calls) == 3  # existence, complete?, count


def test_complete_separation_is_classified_by_the_count_when_its_program_runs_out(monkeypatch):
    real = scipy.optimize.linprog
    calls = []

    def second_out_of_time(*args, **kwargs):
        calls.append(1)
        return _time_limit_reached() if len(calls) == 2 else real(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "linprog", second_out_of_time)
    rng = np.random.default_rng(15)
    X = rng.uniform(-1, 1, (80, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
    found = S.find_separation(X, 1, y, np.ones(80, dtype=bool), "binary")
    assert found == S.Separation(80, 80, True) and len(calls) == 3


def test_time_bound_scales_with_the_fit():
    assert S.lp_seconds(0.0) == S.LP_MIN_SECONDS
    assert S.lp_seconds(100.0) == pytest.approx(100.0 * S.LP_IRLS_MULTIPLE)
