"""Exponential-family kernels: unit variance, unit deviance, full log-likelihood, domains.

Design
------
Every quantity is a scalar kernel dispatching on the family ``code`` of
:mod:`simbench.kernels.codes` (``a`` is the negative-binomial ``alpha`` or the Tweedie power
``p``, ignored by the other families), an array loop writing into ``out``, and fixed-order
reductions (``fam_deviance_sum``, ``fam_pearson_sum``).  Weights passed as an empty array
mean 1.  All arithmetic is float64; the aim is a relative error of a few ulp wherever the
true value is finite, including the domain edges.

Unit deviances ``d(y, mu) = 2 int_mu^y (y - t) / V(t) dt`` are second order in ``y - mu``,
so every textbook closed form cancels catastrophically near ``y = mu``.  Three devices avoid
that:

* ``bd0(x, M) = x log(x / M) + M - x >= 0`` (after Loader, 2000): a series in
  ``v = (x - M) / (x + M)`` for ``|v| < 1/2``, the closed form otherwise.  The Poisson
  deviance is ``2 bd0(y, mu)``, the Gamma deviance ``2 bd0(mu, y) / mu`` and the binomial
  deviance ``2 [bd0(y, mu) + bd0(1 - y, 1 - mu)]``: sums of non-negative terms.
* Negative binomial and Tweedie, for ``|y - mu| <= min(y, mu)``: the integral itself,
  ``d = 2 (y - mu)^2 int_0^1 (1 - s) / V(mu + s (y - mu)) ds``, by 16-point Gauss-Legendre.
  The integrand is positive and analytic on a Bernstein ellipse of parameter > 5 around
  [0, 1] (the singularities of ``1/V`` lie at ``t <= 0``), so the rule is exact to rounding.
* Away from ``y = mu``: for NB, the better conditioned of ``bd0(y, mu) - bd0(y + k, mu + k)``
  (good for ``alpha mu`` small) and a Gamma-like split (good for ``alpha mu`` large),
  ``k = 1/alpha``; for Tweedie, ``expm1`` forms that stay exact as ``p -> 1`` or ``p -> 2``.

Log-likelihoods follow statsmodels' ``var_weights`` convention: binomial ``w`` is the number
of trials with ``y`` a proportion; Gaussian, Gamma, inverse Gaussian and Tweedie use the
dispersion ``phi / w``; Poisson, Bernoulli and NB return ``w`` times the log-pmf.  ``w = 0``
gives 0 (the observation is absent).  Counts use Loader's saddle-point form
``-bd0(y, mu) - log(2 pi y) / 2 - stirlerr(y)``, which keeps the digits that
``y log mu - mu - lgamma(y + 1)`` loses for large counts; Gamma does the same for its shape.
Tweedie (1 < p < 2) sums the compound Poisson-gamma series of Dunn & Smyth (2005) in log
space around its largest term ``j_max = y^(2-p) / (phi (2-p))``; its absolute error grows
like ``eps * j_max log j_max`` (small ``phi``, large ``y``), as for any series evaluation.
The kernels evaluate the analytic continuation in ``y`` (non-integer counts, fractional
Bernoulli responses) and ``-inf`` outside the closed support; the Python layer
(:mod:`simbench.families`) checks the support before calling them.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel
from simbench.kernels import codes

_GAUSSIAN = codes.FAMILY_GAUSSIAN
_BERNOULLI = codes.FAMILY_BERNOULLI
_BINOMIAL = codes.FAMILY_BINOMIAL
_POISSON = codes.FAMILY_POISSON
_GAMMA = codes.FAMILY_GAMMA
_INVERSE_GAUSSIAN = codes.FAMILY_INVERSE_GAUSSIAN
_NEGATIVE_BINOMIAL = codes.FAMILY_NEGATIVE_BINOMIAL
_TWEEDIE = codes.FAMILY_TWEEDIE

_LOG_2PI = 1.8378770664093453  # log(2 pi)
_HALF_LOG_2PI = 0.9189385332046727  # log(2 pi) / 2

# 16-point Gauss-Legendre rule mapped to [0, 1]; module-level arrays are frozen into the
# compiled code as constants, so the cached kernels stay valid.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_GL_S = np.ascontiguousarray(0.5 * (_GL_X + 1.0))
_GL_WS = np.ascontiguousarray(0.5 * _GL_W)

# Stirling series coefficients B_2k / (2k (2k - 1)), k = 1..7.
_S1 = 1.0 / 12.0
_S2 = 1.0 / 360.0
_S3 = 1.0 / 1260.0
_S4 = 1.0 / 1680.0
_S5 = 1.0 / 1188.0
_S6 = 691.0 / 360360.0
_S7 = 1.0 / 156.0

# Tweedie series: terms below exp(-_TW_CUT) of the reference term are negligible.
_TW_CUT = 40.0


# ---- special functions -------------------------------------------------------------------


@kernel
def _bd0d(x, M, d):
    """``x log(x / M) + M - x`` (>= 0) without cancellation for ``x`` near ``M``.

    ``d = x - M`` is passed separately so that callers who know the difference more exactly
    than ``x`` and ``M`` (e.g. ``(1 - y) - (1 - mu) = mu - y``) keep its digits.  Near
    ``x = M`` the series ``d v + 2 x sum_j v^(2j+1) / (2j+1)``, ``v = d / (x + M)``, whose
    leading term carries the whole second-order size.
    """
    if x == 0.0:
        return M
    if M == 0.0:
        return math.inf
    s = x + M
    # the closed form cancels for x > M up to a factor ~ 1/v; the series needs ~25 terms at
    # |v| = 1/2, where the closed form has lost less than half a digit
    if abs(d) < 0.5 * s:
        v = d / s
        v2 = v * v
        total = d * v
        ej = 2.0 * x * v
        j = 1
        while True:
            ej *= v2
            new = total + ej / (2 * j + 1)
            if new == total:
                return new
            total = new
            j += 1
    r = x / M
    if r > 0.0 and r < math.inf:
        lr = math.log(r)
    else:  # the ratio over- or underflows; the logs of the parts do not
        lr = math.log(x) - math.log(M)
    return x * lr + M - x


@kernel
def _bd0(x, M):
    """``x log(x / M) + M - x`` (>= 0), Loader's (2000) deviance term; see :func:`_bd0d`."""
    return _bd0d(x, M, x - M)


@kernel(inline=True)
def _log1pmx(x):
    """``x - log(1 + x)`` (>= 0) for ``x > -1``, exact to rounding near 0."""
    if abs(x) > 0.5:
        return x - math.log1p(x)
    # log1p(x) = 2 atanh(w), w = x / (2 + x); x - 2w = w x exactly.
    w = x / (2.0 + x)
    w2 = w * w
    total = w * x
    wj = w
    j = 1
    while True:
        wj *= w2
        new = total - 2.0 * wj / (2 * j + 1)
        if new == total:
            return new
        total = new
        j += 1


@kernel
def _stirlerr(x):
    """Stirling remainder ``lgamma(x) - (x - 1/2) log x + x - log(2 pi) / 2`` for ``x > 0``.

    Asymptotic series for ``x >= 15``; below, the recurrence
    ``stirlerr(x) = stirlerr(x + 1) + z^2/3 + z^4/5 + ...`` with ``z = 1/(2x + 1)``, whose
    terms are all positive; for ``x < 1`` the definition (which loses at most a digit there).
    """
    if x < 1.0:
        return math.lgamma(x) - (x - 0.5) * math.log(x) + x - _HALF_LOG_2PI
    acc = 0.0
    while x < 15.0:
        z = 1.0 / (2.0 * x + 1.0)
        z2 = z * z
        zj = z2
        part = 0.0
        j = 1
        while True:
            new = part + zj / (2 * j + 1)
            if new == part:
                break
            part = new
            zj *= z2
            j += 1
        acc += part
        x += 1.0
    x2 = 1.0 / (x * x)
    series = (_S1 - x2 * (_S2 - x2 * (_S3 - x2 * (_S4 - x2 * (_S5 - x2 * (_S6 - x2 * _S7)))))) / x
    return acc + series


# ---- unit variance -----------------------------------------------------------------------


@kernel
def fam_variance(code, a, mu):
    """Unit variance ``V(mu)``."""
    if code == _GAUSSIAN:
        return 1.0
    if code == _BERNOULLI or code == _BINOMIAL:
        return mu * (1.0 - mu)
    if code == _POISSON:
        return mu
    if code == _GAMMA:
        return mu * mu
    if code == _INVERSE_GAUSSIAN:
        return mu * mu * mu
    if code == _NEGATIVE_BINOMIAL:
        return mu * (1.0 + a * mu)
    if code == _TWEEDIE:
        return mu**a
    return math.nan


@kernel
def fam_variance_d1(code, a, mu):
    """Derivative of the unit variance, ``V'(mu)``."""
    if code == _GAUSSIAN:
        return 0.0
    if code == _BERNOULLI or code == _BINOMIAL:
        return 1.0 - 2.0 * mu
    if code == _POISSON:
        return 1.0
    if code == _GAMMA:
        return 2.0 * mu
    if code == _INVERSE_GAUSSIAN:
        return 3.0 * mu * mu
    if code == _NEGATIVE_BINOMIAL:
        return 1.0 + 2.0 * a * mu
    if code == _TWEEDIE:
        return a * mu ** (a - 1.0)
    return math.nan


# ---- unit deviances ------------------------------------------------------------------------


@kernel
def _gaussian_deviance(y, mu):
    d = y - mu
    return d * d


@kernel
def _binomial_deviance(y, mu):
    """``2 [y log(y/mu) + (1-y) log((1-y)/(1-mu))]`` for ``0 <= y <= 1`` (a proportion)."""
    if y == 0.0:
        return -2.0 * math.log1p(-mu)
    if y == 1.0:
        return -2.0 * math.log(mu)
    return 2.0 * (_bd0(y, mu) + _bd0d(1.0 - y, 1.0 - mu, mu - y))


@kernel
def _poisson_deviance(y, mu):
    """``2 [y log(y/mu) - (y - mu)]``."""
    return 2.0 * _bd0(y, mu)


@kernel
def _gamma_deviance(y, mu):
    """``2 [-log(y/mu) + (y - mu)/mu]`` = ``2 bd0(mu, y) / mu``."""
    return 2.0 * _bd0(mu, y) / mu


@kernel
def _inverse_gaussian_deviance(y, mu):
    """``(y - mu)^2 / (y mu^2)``, formed so that ``mu^2`` cannot overflow."""
    r = (y - mu) / mu
    return r * r / y


@kernel
def _deviance_quadrature(code, a, y, mu):
    """``2 (y - mu)^2 int_0^1 (1 - s) / V(mu + s (y - mu)) ds`` by Gauss-Legendre.

    Accurate to rounding when ``|y - mu| <= min(y, mu)`` (see the module notes).
    """
    u = y - mu
    total = 0.0
    for i in range(_GL_S.size):
        s = _GL_S[i]
        total += _GL_WS[i] * (1.0 - s) / fam_variance(code, a, mu + s * u)
    return 2.0 * u * u * total


@kernel(inline=True)
def _negative_binomial_deviance(y, mu, alpha):
    """``2 [y log(y/mu) - (y + 1/alpha) log((1 + alpha y)/(1 + alpha mu))]``."""
    if y == 0.0:
        return 2.0 * math.log1p(alpha * mu) / alpha
    if mu == 0.0:
        return math.inf
    u = y - mu
    if abs(u) <= min(y, mu):
        return _deviance_quadrature(_NEGATIVE_BINOMIAL, alpha, y, mu)
    k = 1.0 / alpha
    # A: Poisson part minus its shift by k; the two nearly cancel when alpha mu is large.
    a1 = _bd0(y, mu)
    a2 = _bd0(y + k, mu + k)
    da = a1 - a2
    # C: k * Gamma deviance / 2 plus two corrections that vanish as alpha mu -> infinity.
    delta = (mu - y) * k / (y * (mu + k))
    c1 = k * _bd0(mu, y) / mu
    c2 = (y + k) * _log1pmx(delta)
    c3 = (k * u / mu) * (k * u / (y * (mu + k)))
    dc = c1 + c2 - c3
    # pick the form with the smaller condition number (sum of magnitudes / result)
    if (a1 + a2) * abs(dc) <= (c1 + c2 + c3) * abs(da):
        out = da
    else:
        out = dc
    return 2.0 * max(out, 0.0)


@kernel
def _tweedie_deviance(y, mu, p):
    """``2 [y^(2-p)/((1-p)(2-p)) - y mu^(1-p)/(1-p) + mu^(2-p)/(2-p)]``, 1 < p < 2."""
    s = 2.0 - p
    if y == 0.0:
        return 2.0 * mu**s / s
    if mu == 0.0:
        return math.inf
    if abs(y - mu) <= min(y, mu):
        return _deviance_quadrature(_TWEEDIE, p, y, mu)
    q = 1.0 - p
    lr = math.log(y) - math.log(mu) if y > 1e300 or mu < 1e-300 else math.log(y / mu)
    r = math.exp(lr)
    # f(r) = d / (2 mu^(2-p)) written with expm1 so that neither 1/(1-p) nor 1/(2-p)
    # multiplies a cancelling difference: the first form is exact as p -> 1, the second as p -> 2
    if p < 1.5:
        f = (r * (math.expm1(q * lr) / q) - (r - 1.0)) / s
    else:
        f = (math.expm1(s * lr) / s - (r - 1.0)) / q
    return 2.0 * mu**s * max(f, 0.0)


@kernel
def fam_unit_deviance(code, a, y, mu):
    """Unit deviance ``d(y, mu) >= 0``, 0 at ``y = mu``, ``inf`` where the truth is infinite."""
    if code == _GAUSSIAN:
        return _gaussian_deviance(y, mu)
    if code == _BERNOULLI or code == _BINOMIAL:
        return _binomial_deviance(y, mu)
    if code == _POISSON:
        return _poisson_deviance(y, mu)
    if code == _GAMMA:
        return _gamma_deviance(y, mu)
    if code == _INVERSE_GAUSSIAN:
        return _inverse_gaussian_deviance(y, mu)
    if code == _NEGATIVE_BINOMIAL:
        return _negative_binomial_deviance(y, mu, a)
    if code == _TWEEDIE:
        return _tweedie_deviance(y, mu, a)
    return math.nan


# ---- log-likelihoods ------------------------------------------------------------------------


@kernel(inline=True)
def _poisson_logpmf(y, mu):
    if y < 0.0:
        return -math.inf
    if y == 0.0:
        return -mu
    if mu == 0.0:
        return -math.inf
    return -_bd0(y, mu) - 0.5 * (_LOG_2PI + math.log(y)) - _stirlerr(y)


@kernel(inline=True)
def _binomial_logpmf(y, n, mu):
    """log of ``C(n, k) mu^k (1 - mu)^(n - k)``, ``k = n y``, for real ``0 <= y <= 1``
    (Loader's form; the proportion ``y`` gives the differences ``k - n mu = n (y - mu)``
    to full precision)."""
    if y < 0.0 or y > 1.0:
        return -math.inf
    if y == 0.0:
        return n * math.log1p(-mu)
    if y == 1.0:
        return n * math.log(mu)
    if mu == 0.0 or mu == 1.0:
        return -math.inf
    k = n * y
    nk = n * (1.0 - y)
    lc = (
        _stirlerr(n)
        - _stirlerr(k)
        - _stirlerr(nk)
        - _bd0d(k, n * mu, n * (y - mu))
        - _bd0d(nk, n * (1.0 - mu), n * (mu - y))
    )
    return lc + 0.5 * (math.log(n / (k * nk)) - _LOG_2PI)


@kernel(inline=True)
def _negative_binomial_logpmf(y, mu, alpha):
    """NB2 log-pmf, ``Gamma(y + k) / (Gamma(k) y!) (k/(k+mu))^k (mu/(k+mu))^y``, ``k = 1/alpha``.

    Written as ``k / (k + y)`` times a binomial pmf of ``k`` successes in ``k + y`` trials,
    evaluated in Loader's saddle-point form.
    """
    if y < 0.0:
        return -math.inf
    if y == 0.0:
        return -math.log1p(alpha * mu) / alpha
    if mu == 0.0:
        return -math.inf
    k = 1.0 / alpha
    n = k + y
    lc = (
        _stirlerr(n)
        - _stirlerr(k)
        - _stirlerr(y)
        - _bd0d(k, n * (k / (k + mu)), k * ((mu - y) / (k + mu)))
        - _bd0d(y, n * (mu / (k + mu)), k * ((y - mu) / (k + mu)))
    )
    return math.log(k / n) + lc + 0.5 * (math.log(n / (k * y)) - _LOG_2PI)


@kernel(inline=True)
def _gamma_logpdf(y, mu, phi):
    """Gamma with mean ``mu`` and shape ``nu = 1/phi``:
    ``-nu bd0(mu, y)/mu + log(nu / 2pi)/2 - stirlerr(nu) - log y``."""
    if y <= 0.0:
        return -math.inf
    nu = 1.0 / phi
    return -nu * _bd0(mu, y) / mu + 0.5 * (math.log(nu) - _LOG_2PI) - _stirlerr(nu) - math.log(y)


@kernel(inline=True)
def _inverse_gaussian_logpdf(y, mu, phi):
    """Inverse Gaussian with mean ``mu`` and shape ``lambda = 1/phi``."""
    if y <= 0.0:
        return -math.inf
    return -0.5 * (
        _inverse_gaussian_deviance(y, mu) / phi + _LOG_2PI + math.log(phi) + 3.0 * math.log(y)
    )


@kernel(inline=True)
def _tweedie_log_series(y, phi, p):
    """``log sum_{j>=1} W_j`` of the compound Poisson-gamma density, ``y > 0``.

    ``log W_j = j c - lgamma(j + 1) - lgamma(j g)`` with ``g = (2-p)/(p-1)`` the gamma shape
    and ``c = g log y - log(phi (2-p)) - g log(phi (p-1))``; the mean cancels out of ``c``.
    ``log W_j`` is concave in ``j``, so the sum runs outward from ``j_max`` until the terms
    fall below ``exp(-40)`` of the reference term.
    """
    s = 2.0 - p
    g = s / (p - 1.0)
    c = g * math.log(y) - math.log(phi * s) - g * math.log(phi * (p - 1.0))
    jmax = math.floor(math.exp(s * math.log(y) - math.log(phi * s)) + 0.5)
    if jmax < 1.0:
        jmax = 1.0
    ref = jmax * c - math.lgamma(jmax + 1.0) - math.lgamma(jmax * g)
    total = 1.0
    prev = ref
    j = jmax + 1.0
    while True:
        lw = j * c - math.lgamma(j + 1.0) - math.lgamma(j * g)
        total += math.exp(lw - ref)
        if lw < prev and lw - ref < -_TW_CUT:
            break
        prev = lw
        j += 1.0
    prev = ref
    j = jmax - 1.0
    while j >= 1.0:
        lw = j * c - math.lgamma(j + 1.0) - math.lgamma(j * g)
        total += math.exp(lw - ref)
        if lw < prev and lw - ref < -_TW_CUT:
            break
        prev = lw
        j -= 1.0
    return ref + math.log(total)


@kernel(inline=True)
def _tweedie_logpdf(y, mu, phi, p):
    """Tweedie ``1 < p < 2``: point mass ``exp(-mu^(2-p)/(phi (2-p)))`` at 0, density for y > 0.

    For ``y > 0``, ``log f(y; mu) = log f(y; y) - d(y, mu) / (2 phi)`` with
    ``log f(y; y) = y^(2-p) / (phi (1-p)(2-p)) - log y + log sum_j W_j``.
    """
    if y < 0.0:
        return -math.inf
    s = 2.0 - p
    if y == 0.0:
        return -(mu**s) / (phi * s)
    if mu == 0.0:
        return -math.inf
    saturated = y**s / (phi * (1.0 - p) * s) - math.log(y) + _tweedie_log_series(y, phi, p)
    return saturated - 0.5 * _tweedie_deviance(y, mu, p) / phi


@kernel
def fam_loglik(code, a, y, mu, phi, w):
    """Full log-likelihood of one observation with prior weight ``w`` (statsmodels'
    ``var_weights`` convention; see the module notes).  ``w = 0`` contributes 0."""
    if w == 0.0:
        return 0.0
    if code == _GAUSSIAN:
        d = y - mu
        return -0.5 * (w * d * d / phi + _LOG_2PI + math.log(phi / w))
    if code == _BERNOULLI:
        if y < 0.0 or y > 1.0:
            return -math.inf
        if y == 1.0:
            return w * math.log(mu)
        if y == 0.0:
            return w * math.log1p(-mu)
        return w * (y * math.log(mu) + (1.0 - y) * math.log1p(-mu))
    if code == _BINOMIAL:
        return _binomial_logpmf(y, w, mu)
    if code == _POISSON:
        return w * _poisson_logpmf(y, mu)
    if code == _GAMMA:
        return _gamma_logpdf(y, mu, phi / w)
    if code == _INVERSE_GAUSSIAN:
        return _inverse_gaussian_logpdf(y, mu, phi / w)
    if code == _NEGATIVE_BINOMIAL:
        return w * _negative_binomial_logpmf(y, mu, a)
    if code == _TWEEDIE:
        return _tweedie_logpdf(y, mu, phi / w, a)
    return math.nan


# ---- domains -------------------------------------------------------------------------------


@kernel
def fam_mu_valid(code, a, mu):
    """Whether ``mu`` is in the open mean space: R (Gaussian), (0, 1) (binary), (0, inf)."""
    if code == _GAUSSIAN:
        return math.isfinite(mu)
    if code == _BERNOULLI or code == _BINOMIAL:
        return mu > 0.0 and mu < 1.0
    return mu > 0.0 and mu < math.inf


@kernel(inline=True)
def fam_y_valid(code, a, y):
    """Whether ``y`` is in the support of the distribution (binomial: a proportion in [0, 1])."""
    if code == _GAUSSIAN:
        return math.isfinite(y)
    if code == _BERNOULLI:
        return y == 0.0 or y == 1.0
    if code == _BINOMIAL:
        return y >= 0.0 and y <= 1.0
    if code == _POISSON or code == _NEGATIVE_BINOMIAL:
        return y >= 0.0 and y < math.inf and y == math.floor(y)
    if code == _GAMMA or code == _INVERSE_GAUSSIAN:
        return y > 0.0 and y < math.inf
    if code == _TWEEDIE:
        return y >= 0.0 and y < math.inf
    return False


@kernel(inline=True)
def fam_y_deviance_valid(code, a, y):
    """Whether the deviance ``d(y, mu)`` is finite for some valid ``mu``: the support's closed
    convex hull (non-integer counts and fractional binary responses allowed: quasi-likelihood)."""
    if code == _GAUSSIAN:
        return math.isfinite(y)
    if code == _BERNOULLI or code == _BINOMIAL:
        return y >= 0.0 and y <= 1.0
    if code == _GAMMA or code == _INVERSE_GAUSSIAN:
        return y > 0.0 and y < math.inf
    return y >= 0.0 and y < math.inf


# ---- array loops -----------------------------------------------------------------------------


@kernel
def fam_variance_arr(code, a, mu, out):
    for i in range(mu.size):
        out[i] = fam_variance(code, a, mu[i])
    return out


@kernel
def fam_variance_d1_arr(code, a, mu, out):
    for i in range(mu.size):
        out[i] = fam_variance_d1(code, a, mu[i])
    return out


@kernel
def fam_unit_deviance_arr(code, a, y, mu, out):
    # the cheap families get their own loops so the dispatch is outside the row loop
    n = y.size
    if code == _GAUSSIAN:
        for i in range(n):
            out[i] = _gaussian_deviance(y[i], mu[i])
    elif code == _POISSON:
        for i in range(n):
            out[i] = _poisson_deviance(y[i], mu[i])
    elif code == _BERNOULLI or code == _BINOMIAL:
        for i in range(n):
            out[i] = _binomial_deviance(y[i], mu[i])
    elif code == _GAMMA:
        for i in range(n):
            out[i] = _gamma_deviance(y[i], mu[i])
    else:
        for i in range(n):
            out[i] = fam_unit_deviance(code, a, y[i], mu[i])
    return out


@kernel
def fam_deviance_sum(code, a, y, mu, weights):
    """``sum_i w_i d(y_i, mu_i)`` in index order (empty ``weights``: all 1)."""
    n = y.size
    total = 0.0
    if weights.size == 0:
        for i in range(n):
            total += fam_unit_deviance(code, a, y[i], mu[i])
    else:
        for i in range(n):
            total += weights[i] * fam_unit_deviance(code, a, y[i], mu[i])
    return total


@kernel
def fam_pearson_sum(code, a, y, mu, weights):
    """``sum_i w_i (y_i - mu_i)^2 / V(mu_i)`` in index order (empty ``weights``: all 1)."""
    n = y.size
    total = 0.0
    has_w = weights.size > 0
    for i in range(n):
        r = y[i] - mu[i]
        term = r * r / fam_variance(code, a, mu[i])
        if has_w:
            term *= weights[i]
        total += term
    return total


@kernel
def fam_loglik_arr(code, a, y, mu, phi, weights, out):
    """``out[i] = loglik(y_i, mu_i; phi, w_i)`` (empty ``weights``: all 1)."""
    if weights.size == 0:
        for i in range(y.size):
            out[i] = fam_loglik(code, a, y[i], mu[i], phi, 1.0)
    else:
        for i in range(y.size):
            out[i] = fam_loglik(code, a, y[i], mu[i], phi, weights[i])
    return out


@kernel
def fam_mu_valid_arr(code, a, mu, out):
    for i in range(mu.size):
        out[i] = fam_mu_valid(code, a, mu[i])
    return out


@kernel
def fam_y_valid_arr(code, a, y, out):
    for i in range(y.size):
        out[i] = fam_y_valid(code, a, y[i])
    return out


@kernel
def fam_y_deviance_valid_arr(code, a, y, out):
    for i in range(y.size):
        out[i] = fam_y_deviance_valid(code, a, y[i])
    return out
