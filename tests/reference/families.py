"""Plain NumPy/SciPy reference for ``simbench.kernels.families``.

Written from the textbook formulas, not from the kernels:

* unit variances and their derivatives, restated;
* unit deviances as the closed forms (``scipy.special.xlogy`` for ``0 log 0 = 0``), in double
  precision (:func:`unit_deviance`) and in 60-digit decimal arithmetic
  (:func:`unit_deviance_exact`), the latter immune to the cancellation near ``y = mu`` that the
  closed forms suffer in floating point;
* log-likelihoods from ``scipy.stats`` (``norm``, ``bernoulli``, ``binom``, ``poisson``,
  ``gamma``, ``invgauss``, ``nbinom``), and the Tweedie law through its definition as a
  compound Poisson-gamma sum, ``sum_N Poisson(N; lam) Gamma(y; N g, theta)``, with
  ``lam = mu^(2-p) / (phi (2-p))``, ``g = (2-p)/(p-1)``, ``theta = phi (p-1) mu^(p-1)``.

Weights follow statsmodels' ``var_weights``: binomial ``w`` = trials and ``y`` a proportion;
dispersion ``phi / w`` for gaussian, gamma, inverse Gaussian and Tweedie; ``w * log f`` for
bernoulli, poisson and negative binomial.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import numpy as np
from scipy import special, stats

from simbench.kernels import codes

GAUSSIAN = codes.FAMILY_GAUSSIAN
BERNOULLI = codes.FAMILY_BERNOULLI
BINOMIAL = codes.FAMILY_BINOMIAL
POISSON = codes.FAMILY_POISSON
GAMMA = codes.FAMILY_GAMMA
INVERSE_GAUSSIAN = codes.FAMILY_INVERSE_GAUSSIAN
NEGATIVE_BINOMIAL = codes.FAMILY_NEGATIVE_BINOMIAL
TWEEDIE = codes.FAMILY_TWEEDIE


def variance(code: int, a: float, mu):
    mu = np.asarray(mu, dtype=float)
    if code == GAUSSIAN:
        return np.ones_like(mu)
    if code in (BERNOULLI, BINOMIAL):
        return mu * (1 - mu)
    if code == POISSON:
        return mu.copy()
    if code == GAMMA:
        return mu**2
    if code == INVERSE_GAUSSIAN:
        return mu**3
    if code == NEGATIVE_BINOMIAL:
        return mu + a * mu**2
    if code == TWEEDIE:
        return mu**a
    raise ValueError(code)


def variance_d1(code: int, a: float, mu):
    mu = np.asarray(mu, dtype=float)
    if code == GAUSSIAN:
        return np.zeros_like(mu)
    if code in (BERNOULLI, BINOMIAL):
        return 1 - 2 * mu
    if code == POISSON:
        return np.ones_like(mu)
    if code == GAMMA:
        return 2 * mu
    if code == INVERSE_GAUSSIAN:
        return 3 * mu**2
    if code == NEGATIVE_BINOMIAL:
        return 1 + 2 * a * mu
    if code == TWEEDIE:
        return a * mu ** (a - 1)
    raise ValueError(code)


def unit_deviance(code: int, a: float, y, mu):
    """The closed forms, evaluated as written (double precision)."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    xlogy = special.xlogy
    if code == GAUSSIAN:
        return (y - mu) ** 2
    if code in (BERNOULLI, BINOMIAL):
        return 2 * (xlogy(y, y / mu) + xlogy(1 - y, (1 - y) / (1 - mu)))
    if code == POISSON:
        return 2 * (xlogy(y, y / mu) - (y - mu))
    if code == GAMMA:
        return 2 * (-np.log(y / mu) + (y - mu) / mu)
    if code == INVERSE_GAUSSIAN:
        return (y - mu) ** 2 / (y * mu**2)
    if code == NEGATIVE_BINOMIAL:
        k = 1 / a
        return 2 * (xlogy(y, y / mu) - (y + k) * (np.log1p(a * y) - np.log1p(a * mu)))
    if code == TWEEDIE:
        p = a
        return 2 * (
            y ** (2 - p) / ((1 - p) * (2 - p))
            - y * mu ** (1 - p) / (1 - p)
            + mu ** (2 - p) / (2 - p)
        )
    raise ValueError(code)


def unit_deviance_exact(code: int, a: float, y: float, mu: float) -> float:
    """The closed form of the unit deviance in 60-digit decimal arithmetic, rounded to float.

    The float inputs convert to Decimal exactly, so the only error is the final rounding.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        Y, M, A = Decimal(float(y)), Decimal(float(mu)), Decimal(float(a))
        zero, one, two = Decimal(0), Decimal(1), Decimal(2)

        def xlog(u, v):  # u log(u / v) with 0 log 0 = 0
            return zero if u == 0 else u * (u / v).ln()

        if code == GAUSSIAN:
            d = (Y - M) ** 2
        elif code in (BERNOULLI, BINOMIAL):
            d = two * (xlog(Y, M) + xlog(one - Y, one - M))
        elif code == POISSON:
            d = two * (xlog(Y, M) - (Y - M))
        elif code == GAMMA:
            d = two * (-(Y / M).ln() + (Y - M) / M)
        elif code == INVERSE_GAUSSIAN:
            d = (Y - M) ** 2 / (Y * M * M)
        elif code == NEGATIVE_BINOMIAL:
            k = one / A
            d = two * (xlog(Y, M) - (Y + k) * ((one + A * Y) / (one + A * M)).ln())
        elif code == TWEEDIE:
            P = A

            def pw(base, e):
                return zero if base == 0 else (e * base.ln()).exp()

            d = two * (
                pw(Y, two - P) / ((one - P) * (two - P))
                - Y * pw(M, one - P) / (one - P)
                + pw(M, two - P) / (two - P)
            )
        else:
            raise ValueError(code)
        return float(d)


def loglik(code: int, a: float, y, mu, phi: float = 1.0, w=1.0):
    """Log-likelihood of each observation from ``scipy.stats`` (arrays broadcast)."""
    y, mu, w = np.broadcast_arrays(
        np.asarray(y, dtype=float), np.asarray(mu, dtype=float), np.asarray(w, dtype=float)
    )
    if code == GAUSSIAN:
        return stats.norm.logpdf(y, loc=mu, scale=np.sqrt(phi / w))
    if code == BERNOULLI:
        return w * stats.bernoulli.logpmf(y, mu)
    if code == BINOMIAL:
        return stats.binom.logpmf(np.round(w * y), np.round(w), mu)
    if code == POISSON:
        return w * stats.poisson.logpmf(y, mu)
    if code == GAMMA:
        shape = w / phi
        return stats.gamma.logpdf(y, shape, scale=mu / shape)
    if code == INVERSE_GAUSSIAN:
        lam = w / phi
        return stats.invgauss.logpdf(y, mu / lam, scale=lam)
    if code == NEGATIVE_BINOMIAL:
        k = 1 / a
        return w * stats.nbinom.logpmf(y, k, k / (k + mu))
    if code == TWEEDIE:
        return np.array(
            [
                tweedie_logpdf(yi, mi, phi / wi, a)
                for yi, mi, wi in zip(y.ravel(), mu.ravel(), w.ravel(), strict=True)
            ]
        ).reshape(y.shape)
    raise ValueError(code)


def tweedie_parameters(mu: float, phi: float, p: float) -> tuple[float, float, float]:
    """(Poisson rate, gamma shape, gamma scale) of the compound Poisson-gamma law."""
    lam = mu ** (2 - p) / (phi * (2 - p))
    shape = (2 - p) / (p - 1)
    scale = phi * (p - 1) * mu ** (p - 1)
    return lam, shape, scale


def tweedie_logpdf(y: float, mu: float, phi: float, p: float) -> float:
    """log P(Y = 0) at 0, log density for y > 0: ``log sum_N Poisson(N) Gamma(y; N g, theta)``."""
    lam, shape, scale = tweedie_parameters(mu, phi, p)
    if y == 0:
        return -lam
    # N beyond mean + 12 sd of the Poisson count and of the count that explains y is negligible
    n_y = y / (shape * scale)
    hi = int(max(lam, n_y) + 12 * np.sqrt(max(lam, n_y)) + 60)
    n = np.arange(1, hi + 1)
    terms = stats.poisson.logpmf(n, lam) + stats.gamma.logpdf(y, n * shape, scale=scale)
    return float(special.logsumexp(terms))


def tweedie_pdf(y: float, mu: float, phi: float, p: float) -> float:
    return float(np.exp(tweedie_logpdf(y, mu, phi, p))) if y > 0 else 0.0


def tweedie_p0(mu: float, phi: float, p: float) -> float:
    return float(np.exp(-tweedie_parameters(mu, phi, p)[0]))


def deviance_sum(code: int, a: float, y, mu, weights=None) -> float:
    d = unit_deviance(code, a, y, mu)
    return float(np.sum(d if weights is None else np.asarray(weights) * d))


def pearson_sum(code: int, a: float, y, mu, weights=None) -> float:
    y, mu = np.asarray(y, dtype=float), np.asarray(mu, dtype=float)
    r = (y - mu) ** 2 / variance(code, a, mu)
    return float(np.sum(r if weights is None else np.asarray(weights) * r))
