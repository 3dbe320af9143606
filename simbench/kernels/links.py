"""Link kernels: the inverse link ``h`` (a network's output activation), its first two
derivatives, and the link ``g = h^-1``, for every link code of :mod:`simbench.kernels.codes`.

Design
------
Each quantity is one scalar kernel dispatching on the integer ``code`` (``lam`` is the
exponent of the power link and is ignored by every other code), and one array loop that
writes into an ``out`` buffer.  Everything is float64 and evaluated in eta-space with
formulas that stay finite and accurate where the true value is finite:

* logistic: ``expit`` by the sign of eta; ``h' = e^{-|eta|} / (1 + e^{-|eta|})^2`` and
  ``h'' = -h' tanh(eta / 2)``, so no ``1 - h`` is ever formed near ``h = 1``;
* probit: ``Phi(eta) = erfc(-eta / sqrt 2) / 2``; the density splits ``eta^2`` so the large
  part of the exponent is exact; ``Phi^-1`` is an approximation refined by Halley steps on
  ``erf``/``erfc`` (Numba has no ``ndtri``);
* cloglog ``h = -expm1(-e^eta)``, ``h' = exp(eta - e^eta)``; loglog its mirror image;
* cauchit: ``atan(-1/eta)/pi`` in the lower tail instead of ``1/2 + atan(eta)/pi``, which would
  cancel; ``g`` uses ``cot`` near 0 and 1 for the same reason;
* softplus: ``log(1 + e^eta)`` piecewise, and ``g(mu) = mu + log1p(-e^-mu)`` for large ``mu``.

Power links follow ``eta = mu^lam``, ``mu = eta^(1/lam)``; the named powers (inverse,
inverse_squared, sqrt) have their own codes and closed forms.  ``relu`` and ``softplus`` are
output activations rather than links; ``g`` of relu is the right inverse ``g(mu) = mu``.
"""

from __future__ import annotations

import math

from simbench._jit import kernel
from simbench.kernels import codes

_IDENTITY = codes.LINK_IDENTITY
_LOG = codes.LINK_LOG
_LOGIT = codes.LINK_LOGIT
_PROBIT = codes.LINK_PROBIT
_CLOGLOG = codes.LINK_CLOGLOG
_LOGLOG = codes.LINK_LOGLOG
_CAUCHIT = codes.LINK_CAUCHIT
_INVERSE = codes.LINK_INVERSE
_INVERSE_SQUARED = codes.LINK_INVERSE_SQUARED
_SQRT = codes.LINK_SQRT
_POWER = codes.LINK_POWER
_RELU = codes.LINK_RELU
_SOFTPLUS = codes.LINK_SOFTPLUS

_INV_SQRT2 = 0.7071067811865476  # 1 / sqrt(2), rounded
_INV_SQRT2_LO = -4.833646656726457e-17  # 1 / sqrt(2) - _INV_SQRT2
_INV_SQRT2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
_SQRT2PI = 2.5066282746310002  # sqrt(2 pi)
_INV_PI = 0.3183098861837907  # 1 / pi


# ---- scalar helpers --------------------------------------------------------------------


@kernel
def _expit(x):
    """Logistic sigmoid ``1 / (1 + e^-x)``, branching on the sign so nothing overflows."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@kernel
def _expit_d(x):
    """Derivative of the sigmoid, ``e^{-|x|} / (1 + e^{-|x|})^2`` (even in ``x``)."""
    z = math.exp(-abs(x))
    t = 1.0 + z
    return z / (t * t)


@kernel(inline=True)
def _log1pexp(x):
    """Softplus ``log(1 + e^x)``: ``x + log1p(e^-x)`` for positive ``x`` avoids overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@kernel(inline=True)
def _two_prod_err(a, b, p):
    """Rounding error of ``p = fl(a * b)``: ``a b - p`` exactly (Dekker's product)."""
    t = 134217729.0 * a  # 2^27 + 1 splits a into two 26-bit halves
    ah = t - (t - a)
    al = a - ah
    t = 134217729.0 * b
    bh = t - (t - b)
    bl = b - bh
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


@kernel
def _norm_cdf(x):
    """Standard normal CDF ``Phi(x) = erfc(-x / sqrt 2) / 2``.

    In the lower tail the rounding of ``z = -x / sqrt 2`` would cost ``2 z^2`` ulps of
    relative accuracy (about 1e-13 at ``x = -37``), because ``erfc'(z) / erfc(z) ~ -2 z``;
    carrying the low part ``dz`` of the product and using ``erfc(z + dz) ~ erfc(z)(1 - 2 z dz)``
    restores full accuracy.
    """
    if x < -1.0:
        a = -x
        z = a * _INV_SQRT2
        dz = _two_prod_err(a, _INV_SQRT2, z) + a * _INV_SQRT2_LO
        return 0.5 * math.erfc(z) * (1.0 - 2.0 * z * dz)
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@kernel
def _norm_pdf(x):
    """Standard normal density.

    ``x^2 / 2`` is split as ``a^2 / 2 + (a b + b^2 / 2)`` with ``a`` a multiple of 1/16 and
    ``b = x - a`` both exact, so the large part of the exponent carries no rounding error; the
    plain formula loses ``x^2 / 2`` ulps (about 1e-13 relative at ``|x| = 38``).
    """
    if not abs(x) < 38.0:
        # beyond 38 the density is subnormal or zero, and nan/inf pass through
        return _INV_SQRT2PI * math.exp(-0.5 * x * x)
    a = math.floor(x * 16.0 + 0.5) * 0.0625
    b = x - a
    return _INV_SQRT2PI * math.exp(-0.5 * a * a) * math.exp(-(a * b + 0.5 * b * b))


@kernel
def _norm_ppf_lower(p):
    """``Phi^-1(p)`` for ``0 < p <= 1/2``, from the lower tail (``Phi(x) - p`` via erfc)."""
    # starting value: Abramowitz & Stegun 26.2.23 (absolute error below 4.5e-4)
    t = math.sqrt(-2.0 * math.log(p))
    num = 2.515517 + t * (0.802853 + t * 0.010328)
    den = 1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))
    x = num / den - t
    # Halley steps on f(x) = Phi(x) - p cube the error (times about x^2): 4.5e-4 -> 1e-7
    # -> below rounding, so two steps suffice even at p = 1e-300 (x = -37).  Near p = 1/2
    # the residual is formed from erf and the exact p - 1/2; in the tail _norm_cdf keeps it
    # relatively accurate.
    q = p - 0.5
    for _ in range(2):
        if q > -0.25:
            r = 0.5 * math.erf(x * _INV_SQRT2) - q
        else:
            r = _norm_cdf(x) - p
        u = r / _norm_pdf(x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


@kernel(inline=True)
def _norm_ppf(p):
    """Standard normal quantile ``Phi^-1(p)`` (scipy's ``ndtri``) to a few ulp.

    ``p > 1/2`` is reflected to ``1 - p``, which is exact there, so the upper tail is as
    accurate as the lower one.  ``p = 0, 1`` give ``-inf, +inf``; outside [0, 1] nan.
    """
    if not (p > 0.0 and p < 1.0):
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        return math.nan
    if p > 0.5:
        return -_norm_ppf_lower(1.0 - p)
    return _norm_ppf_lower(p)


@kernel(inline=True)
def _logit(mu):
    """``log(mu / (1 - mu))`` with no cancellation anywhere in (0, 1)."""
    if mu >= 0.25 and mu <= 0.75:
        # 2 mu - 1 is exact here, so log1p sees the small ratio without rounding loss
        return math.log1p((2.0 * mu - 1.0) / (1.0 - mu))
    return math.log(mu) - math.log1p(-mu)


@kernel(inline=True)
def _cauchy_cdf(x):
    """``1/2 + atan(x)/pi``; in the lower tail ``atan(-1/x)/pi``, which does not cancel."""
    if x < -1.0:
        return math.atan(-1.0 / x) * _INV_PI
    return 0.5 + math.atan(x) * _INV_PI


@kernel(inline=True)
def _cauchy_ppf(mu):
    """``tan(pi (mu - 1/2))``, through ``cot`` near 0 and 1 where ``mu - 1/2`` would round."""
    if mu < 0.25:
        return -1.0 / math.tan(math.pi * mu)
    if mu > 0.75:
        return 1.0 / math.tan(math.pi * (1.0 - mu))
    return math.tan(math.pi * (mu - 0.5))


@kernel(inline=True)
def _softplus_inv(mu):
    """Inverse of softplus, ``log(expm1(mu))``; ``mu + log1p(-e^-mu)`` for large ``mu``."""
    if mu > 1.0:
        return mu + math.log1p(-math.exp(-mu))
    return math.log(math.expm1(mu))


# ---- scalar kernels ---------------------------------------------------------------------


@kernel
def link_h(code, lam, eta):
    """Inverse link ``mu = h(eta)``."""
    if code == _IDENTITY:
        return eta
    elif code == _LOG:
        return math.exp(eta)
    elif code == _LOGIT:
        return _expit(eta)
    elif code == _PROBIT:
        return _norm_cdf(eta)
    elif code == _CLOGLOG:
        return -math.expm1(-math.exp(eta))
    elif code == _LOGLOG:
        return math.exp(-math.exp(-eta))
    elif code == _CAUCHIT:
        return _cauchy_cdf(eta)
    elif code == _INVERSE:
        return 1.0 / eta
    elif code == _INVERSE_SQUARED:
        return 1.0 / math.sqrt(eta)
    elif code == _SQRT:
        return eta * eta
    elif code == _POWER:
        return math.pow(eta, 1.0 / lam)
    elif code == _RELU:
        return eta if eta > 0.0 else 0.0
    elif code == _SOFTPLUS:
        return _log1pexp(eta)
    return math.nan


@kernel
def link_h1(code, lam, eta):
    """First derivative ``h'(eta) = d mu / d eta``."""
    if code == _IDENTITY:
        return 1.0
    elif code == _LOG:
        return math.exp(eta)
    elif code == _LOGIT:
        return _expit_d(eta)
    elif code == _PROBIT:
        return _norm_pdf(eta)
    elif code == _CLOGLOG:
        # exp(eta - e^eta): the factors e^eta and exp(-e^eta) would give inf * 0
        return math.exp(eta - math.exp(eta))
    elif code == _LOGLOG:
        return math.exp(-eta - math.exp(-eta))
    elif code == _CAUCHIT:
        return _INV_PI / (1.0 + eta * eta)
    elif code == _INVERSE:
        m = 1.0 / eta
        return -m * m
    elif code == _INVERSE_SQUARED:
        return -0.5 / (eta * math.sqrt(eta))
    elif code == _SQRT:
        return 2.0 * eta
    elif code == _POWER:
        r = 1.0 / lam
        return r * math.pow(eta, r - 1.0)
    elif code == _RELU:
        return 1.0 if eta > 0.0 else 0.0
    elif code == _SOFTPLUS:
        return _expit(eta)
    return math.nan


@kernel
def link_h2(code, lam, eta):
    """Second derivative ``h''(eta)``."""
    if code == _IDENTITY:
        return 0.0
    elif code == _LOG:
        return math.exp(eta)
    elif code == _LOGIT:
        return -_expit_d(eta) * math.tanh(0.5 * eta)
    elif code == _PROBIT:
        return -eta * _norm_pdf(eta)
    elif code == _CLOGLOG:
        t = math.exp(eta)
        if t == math.inf:
            return 0.0
        # 1 - e^eta as -expm1(eta): no cancellation near eta = 0
        return -math.expm1(eta) * math.exp(eta - t)
    elif code == _LOGLOG:
        t = math.exp(-eta)
        if t == math.inf:
            return 0.0
        return math.expm1(-eta) * math.exp(-eta - t)
    elif code == _CAUCHIT:
        d = 1.0 + eta * eta
        return -2.0 * _INV_PI * eta / (d * d)
    elif code == _INVERSE:
        m = 1.0 / eta
        return 2.0 * m * m * m
    elif code == _INVERSE_SQUARED:
        return 0.75 / (eta * eta * math.sqrt(eta))
    elif code == _SQRT:
        return 2.0
    elif code == _POWER:
        r = 1.0 / lam
        return r * (r - 1.0) * math.pow(eta, r - 2.0)
    elif code == _RELU:
        return 0.0
    elif code == _SOFTPLUS:
        return _expit_d(eta)
    return math.nan


@kernel
def link_h012(code, lam, eta):
    """``(h, h', h'')`` at ``eta`` in one call, sharing the exponentials where they coincide."""
    if code == _LOG:
        m = math.exp(eta)
        return m, m, m
    elif code == _LOGIT:
        d = _expit_d(eta)
        return _expit(eta), d, -d * math.tanh(0.5 * eta)
    elif code == _PROBIT:
        d = _norm_pdf(eta)
        return _norm_cdf(eta), d, -eta * d
    elif code == _CLOGLOG:
        t = math.exp(eta)
        d = math.exp(eta - t)
        return -math.expm1(-t), d, 0.0 if t == math.inf else -math.expm1(eta) * d
    elif code == _LOGLOG:
        t = math.exp(-eta)
        d = math.exp(-eta - t)
        return math.exp(-t), d, 0.0 if t == math.inf else math.expm1(-eta) * d
    elif code == _INVERSE:
        m = 1.0 / eta
        return m, -m * m, 2.0 * m * m * m
    elif code == _POWER:
        r = 1.0 / lam
        return math.pow(eta, r), r * math.pow(eta, r - 1.0), r * (r - 1.0) * math.pow(eta, r - 2.0)
    return link_h(code, lam, eta), link_h1(code, lam, eta), link_h2(code, lam, eta)


@kernel
def link_g(code, lam, mu):
    """Link ``eta = g(mu)``; for relu the right inverse ``g(mu) = mu``."""
    if code == _IDENTITY:
        return mu
    elif code == _LOG:
        return math.log(mu)
    elif code == _LOGIT:
        return _logit(mu)
    elif code == _PROBIT:
        return _norm_ppf(mu)
    elif code == _CLOGLOG:
        return math.log(-math.log1p(-mu))
    elif code == _LOGLOG:
        return -math.log(-math.log(mu))
    elif code == _CAUCHIT:
        return _cauchy_ppf(mu)
    elif code == _INVERSE:
        return 1.0 / mu
    elif code == _INVERSE_SQUARED:
        return 1.0 / (mu * mu)
    elif code == _SQRT:
        return math.sqrt(mu)
    elif code == _POWER:
        return math.pow(mu, lam)
    elif code == _RELU:
        return mu
    elif code == _SOFTPLUS:
        return _softplus_inv(mu)
    return math.nan


@kernel
def link_eta_valid(code, lam, eta):
    """Whether ``eta`` lies where ``h`` is defined and inverted by ``g``.

    All finite ``eta`` for identity, log, the binary links, relu and softplus; ``eta >= 0``
    for sqrt (and power with ``lam > 0``); ``eta != 0`` for inverse; ``eta > 0`` for
    inverse_squared (and power with ``lam < 0``).  Whether ``h(eta)`` is a valid mean of a
    family (e.g. ``mu > 0``) is the family's check, not the link's.
    """
    if not math.isfinite(eta):
        return False
    if code == _SQRT:
        return eta >= 0.0
    elif code == _INVERSE:
        return eta != 0.0
    elif code == _INVERSE_SQUARED:
        return eta > 0.0
    elif code == _POWER:
        if lam > 0.0:
            return eta >= 0.0
        return eta > 0.0
    return True


@kernel
def link_mu_valid(code, lam, mu):
    """Whether ``mu`` is finite and in the domain where ``g`` is finite.

    Any finite ``mu`` for identity; ``mu > 0`` for log, inverse_squared, softplus and power
    with ``lam < 0``; ``0 < mu < 1`` for the binary links; ``mu != 0`` for inverse;
    ``mu >= 0`` for sqrt, relu and power with ``lam > 0``.
    """
    if not math.isfinite(mu):
        return False
    if code == _IDENTITY:
        return True
    elif (
        code == _LOGIT or code == _PROBIT or code == _CLOGLOG or code == _LOGLOG or code == _CAUCHIT
    ):
        return mu > 0.0 and mu < 1.0
    elif code == _INVERSE:
        return mu != 0.0
    elif code == _SQRT or code == _RELU:
        return mu >= 0.0
    elif code == _POWER:
        if lam > 0.0:
            return mu >= 0.0
        return mu > 0.0
    return mu > 0.0


# ---- array loops ------------------------------------------------------------------------
# The dispatch on ``code`` inside the row loop costs little next to the transcendental
# functions, except for the log link, whose branch-free exp/log loops LLVM vectorises
# (about 3x faster); those get a loop of their own.


@kernel
def _exp_arr(x, out):
    for i in range(x.shape[0]):
        out[i] = math.exp(x[i])


@kernel(inline=True)
def _log_arr(x, out):
    for i in range(x.shape[0]):
        out[i] = math.log(x[i])


@kernel
def link_h_arr(code, lam, eta, out):
    """``out[i] = h(eta[i])``."""
    if code == _LOG:
        _exp_arr(eta, out)
        return
    for i in range(eta.shape[0]):
        out[i] = link_h(code, lam, eta[i])


@kernel
def link_h1_arr(code, lam, eta, out):
    """``out[i] = h'(eta[i])``."""
    if code == _LOG:
        _exp_arr(eta, out)
        return
    for i in range(eta.shape[0]):
        out[i] = link_h1(code, lam, eta[i])


@kernel
def link_h2_arr(code, lam, eta, out):
    """``out[i] = h''(eta[i])``."""
    if code == _LOG:
        _exp_arr(eta, out)
        return
    for i in range(eta.shape[0]):
        out[i] = link_h2(code, lam, eta[i])


@kernel
def link_h012_arr(code, lam, eta, mu_out, h1_out, h2_out):
    """``mu_out[i], h1_out[i], h2_out[i] = h(eta[i]), h'(eta[i]), h''(eta[i])``."""
    for i in range(eta.shape[0]):
        mu_out[i], h1_out[i], h2_out[i] = link_h012(code, lam, eta[i])


@kernel
def link_g_arr(code, lam, mu, out):
    """``out[i] = g(mu[i])``."""
    if code == _LOG:
        _log_arr(mu, out)
        return
    for i in range(mu.shape[0]):
        out[i] = link_g(code, lam, mu[i])


@kernel
def link_mu_valid_arr(code, lam, mu, out):
    """``out[i] = link_mu_valid(code, lam, mu[i])`` (``out`` is a boolean array)."""
    for i in range(mu.shape[0]):
        out[i] = link_mu_valid(code, lam, mu[i])


@kernel
def link_eta_valid_arr(code, lam, eta, out):
    """``out[i] = link_eta_valid(code, lam, eta[i])`` (``out`` is a boolean array)."""
    for i in range(eta.shape[0]):
        out[i] = link_eta_valid(code, lam, eta[i])
