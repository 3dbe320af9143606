"""Plain NumPy/SciPy reference for ``simbench.kernels.losses``.

Written from the formulas, not from the kernels: the inverse links and their derivatives, the
variance functions and the unit deviances are restated here (with ``scipy.special``), and the
loss derivatives come from the textbook chain rule.  Speed and extreme-value stability are
not goals; clarity is.

Family NLL (codes 0..7)::

    ℓ = d(y, μ) / (2φ),  dℓ/dη = −(y − μ) h′/(φV),
    observed d²ℓ/dη² = [h′²/V + (y − μ)(h′² V′/V² − h″/V)]/φ,  expected h′²/(φV).

Other losses L(y, μ): dℓ/dη = L_μ h′, observed L_μμ h′² + L_μ h″, expected L_μμ h′².
"""

from __future__ import annotations

import numpy as np
from scipy import special

from simbench.kernels import codes

# ---- inverse links h and derivatives ---------------------------------------------------------


def link_h012(code: int, lam: float, eta):
    """(h, h′, h″) of the output activation ``code`` at ``eta`` (arrays)."""
    x = np.asarray(eta, dtype=float)
    one, zero = np.ones_like(x), np.zeros_like(x)
    if code == codes.LINK_IDENTITY:
        return x.copy(), one, zero
    if code == codes.LINK_LOG:
        m = np.exp(x)
        return m, m, m
    if code == codes.LINK_LOGIT:
        s = special.expit(x)
        return s, s * (1 - s), s * (1 - s) * (1 - 2 * s)
    if code == codes.LINK_PROBIT:
        pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        return special.ndtr(x), pdf, -x * pdf
    if code == codes.LINK_CLOGLOG:
        # mu = 1 - exp(-e^x)
        ex = np.exp(x)
        d = ex * np.exp(-ex)
        return -np.expm1(-ex), d, d * (1 - ex)
    if code == codes.LINK_LOGLOG:
        # mu = exp(-e^-x)
        emx = np.exp(-x)
        d = emx * np.exp(-emx)
        return np.exp(-emx), d, d * (emx - 1)
    if code == codes.LINK_CAUCHIT:
        return (
            0.5 + np.arctan(x) / np.pi,
            1 / (np.pi * (1 + x**2)),
            -2 * x / (np.pi * (1 + x**2) ** 2),
        )
    if code == codes.LINK_INVERSE:
        return 1 / x, -1 / x**2, 2 / x**3
    if code == codes.LINK_INVERSE_SQUARED:
        return x**-0.5, -0.5 * x**-1.5, 0.75 * x**-2.5
    if code == codes.LINK_SQRT:
        return x**2, 2 * x, 2 * one
    if code == codes.LINK_POWER:
        r = 1 / lam
        return x**r, r * x ** (r - 1), r * (r - 1) * x ** (r - 2)
    if code == codes.LINK_RELU:
        return np.maximum(x, 0), (x > 0).astype(float), zero
    if code == codes.LINK_SOFTPLUS:
        s = special.expit(x)
        return np.logaddexp(0, x), s, s * (1 - s)
    raise ValueError(f"unknown link code {code}")


def link_g(code: int, lam: float, mu):
    """The link η = g(μ) (right inverse μ for relu); used to place η inside a domain."""
    m = np.asarray(mu, dtype=float)
    table = {
        codes.LINK_IDENTITY: lambda: m.copy(),
        codes.LINK_LOG: lambda: np.log(m),
        codes.LINK_LOGIT: lambda: special.logit(m),
        codes.LINK_PROBIT: lambda: special.ndtri(m),
        codes.LINK_CLOGLOG: lambda: np.log(-np.log1p(-m)),
        codes.LINK_LOGLOG: lambda: -np.log(-np.log(m)),
        codes.LINK_CAUCHIT: lambda: np.tan(np.pi * (m - 0.5)),
        codes.LINK_INVERSE: lambda: 1 / m,
        codes.LINK_INVERSE_SQUARED: lambda: 1 / m**2,
        codes.LINK_SQRT: lambda: np.sqrt(m),
        codes.LINK_POWER: lambda: m**lam,
        codes.LINK_RELU: lambda: m.copy(),
        codes.LINK_SOFTPLUS: lambda: np.log(np.expm1(m)),
    }
    return table[code]()


# ---- families: variance, its derivative, unit deviance --------------------------------------


def variance(code: int, a: float, mu):
    mu = np.asarray(mu, dtype=float)
    if code == codes.FAMILY_GAUSSIAN:
        return np.ones_like(mu)
    if code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL):
        return mu * (1 - mu)
    if code == codes.FAMILY_POISSON:
        return mu.copy()
    if code == codes.FAMILY_GAMMA:
        return mu**2
    if code == codes.FAMILY_INVERSE_GAUSSIAN:
        return mu**3
    if code == codes.FAMILY_NEGATIVE_BINOMIAL:
        return mu + a * mu**2
    if code == codes.FAMILY_TWEEDIE:
        return mu**a
    raise ValueError(f"unknown family code {code}")


def variance_d1(code: int, a: float, mu):
    mu = np.asarray(mu, dtype=float)
    if code == codes.FAMILY_GAUSSIAN:
        return np.zeros_like(mu)
    if code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL):
        return 1 - 2 * mu
    if code == codes.FAMILY_POISSON:
        return np.ones_like(mu)
    if code == codes.FAMILY_GAMMA:
        return 2 * mu
    if code == codes.FAMILY_INVERSE_GAUSSIAN:
        return 3 * mu**2
    if code == codes.FAMILY_NEGATIVE_BINOMIAL:
        return 1 + 2 * a * mu
    if code == codes.FAMILY_TWEEDIE:
        return a * mu ** (a - 1)
    raise ValueError(f"unknown family code {code}")


def unit_deviance(code: int, a: float, y, mu):
    """d(y, μ) = 2 ∫_μ^y (y − t)/V(t) dt, in the usual closed forms."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    xlogy = special.xlogy
    if code == codes.FAMILY_GAUSSIAN:
        return (y - mu) ** 2
    if code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL):
        return 2 * (xlogy(y, y / mu) + xlogy(1 - y, (1 - y) / (1 - mu)))
    if code == codes.FAMILY_POISSON:
        return 2 * (xlogy(y, y / mu) - (y - mu))
    if code == codes.FAMILY_GAMMA:
        return 2 * (-np.log(y / mu) + (y - mu) / mu)
    if code == codes.FAMILY_INVERSE_GAUSSIAN:
        return (y - mu) ** 2 / (y * mu**2)
    if code == codes.FAMILY_NEGATIVE_BINOMIAL:
        return 2 * (xlogy(y, y / mu) - (y + 1 / a) * np.log((1 + a * y) / (1 + a * mu)))
    if code == codes.FAMILY_TWEEDIE:
        p = a
        return 2 * (
            np.maximum(y, 0) ** (2 - p) / ((1 - p) * (2 - p))
            - y * mu ** (1 - p) / (1 - p)
            + mu ** (2 - p) / (2 - p)
        )
    raise ValueError(f"unknown family code {code}")


# ---- losses with no family: (L, L_μ, L_μμ) as functions of μ -------------------------------


def plain_terms(code: int, y, mu):
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    t = 2 * y - 1
    z = t * mu
    if code == codes.LOSS_SQUARED_ERROR:
        return 0.5 * (y - mu) ** 2, mu - y, np.ones_like(mu)
    if code == codes.LOSS_HINGE:
        active = 1 - z > 0
        return np.maximum(0, 1 - z), np.where(active, -t, 0.0), np.zeros_like(mu)
    if code == codes.LOSS_SQUARED_HINGE:
        m = np.maximum(0, 1 - z)
        return m**2, -2 * t * m, np.where(m > 0, 2 * t**2, 0.0)
    if code == codes.LOSS_LOGISTIC:
        s = special.expit(-z)
        return np.logaddexp(0, -z), -t * s, t**2 * s * (1 - s)
    if code == codes.LOSS_PERCEPTRON:
        active = z < 0
        return np.maximum(0, -z), np.where(active, -t, 0.0), np.zeros_like(mu)
    raise ValueError(f"unknown loss code {code}")


def loss(lcode, a, phi, hcode, lam, y, eta, expected=False):
    """(ℓ, dℓ/dη, d²ℓ/dη²) per observation, per unit weight (arrays)."""
    y = np.asarray(y, dtype=float)
    mu, h1, h2 = link_h012(hcode, lam, eta)
    if lcode < 20:
        v = variance(lcode, a, mu)
        value = unit_deviance(lcode, a, y, mu) / (2 * phi)
        d1 = -(y - mu) * h1 / (phi * v)
        if expected:
            d2 = h1**2 / (phi * v)
        else:
            vd = variance_d1(lcode, a, mu)
            d2 = (h1**2 / v + (y - mu) * (h1**2 * vd / v**2 - h2 / v)) / phi
        return value, d1, d2
    value, l1, l2 = plain_terms(lcode, y, mu)
    d2 = l2 * h1**2 if expected else l2 * h1**2 + l1 * h2
    return value, l1 * h1, d2


def loss_grad_hess(lcode, a, phi, hcode, lam, y, eta, weights=None, offset=None, expected=False):
    """(Σ w ℓ, w dℓ/dη, w d²ℓ/dη²) with η = eta + offset."""
    eta = np.asarray(eta, dtype=float)
    if offset is not None:
        eta = eta + offset
    w = np.ones_like(eta) if weights is None else np.asarray(weights, dtype=float)
    value, d1, d2 = loss(lcode, a, phi, hcode, lam, y, eta, expected)
    return float(np.sum(w * value)), w * d1, w * d2


# ---- binary CDF links at high precision (mpmath) ------------------------------------------------


def bernoulli_cdf_mp(hcode: int, y: float, eta: float, expected: bool = False, dps: int = 60):
    """(ℓ, dℓ/dη, d²ℓ/dη²) of the Bernoulli/binomial NLL (deviance / 2, φ = 1) at one point,
    in ``dps`` (+ |η|) decimal digits, as mpmath numbers.

    μ and ν = 1 − μ are each formed from their own closed form (never as 1 − the other), and
    the log of the one above 1/2 as log1p of minus the other, so the extreme tails keep their
    digits; mpmath's exponent range holds e.g. exp(−e^40).  The chain rule is the textbook
    one, with V = μν, V′ = ν − μ and y − μ = yν − (1 − y)μ.  Its observed Hessian cancels
    terms up to e^{2|η|} (cloglog/loglog) down to e^{|η|}: the extra |η| digits cover that.
    """
    import mpmath as mp

    with mp.workdps(dps + int(abs(eta))):
        x = mp.mpf(eta)
        y = mp.mpf(y)
        if hcode == codes.LINK_PROBIT:
            mu, nu = mp.ncdf(x), mp.ncdf(-x)
            h1 = mp.npdf(x)
            h2 = -x * h1
        elif hcode == codes.LINK_CLOGLOG:
            t = mp.exp(x)
            mu, nu = -mp.expm1(-t), mp.exp(-t)
            h1 = t * nu
            h2 = (1 - t) * h1
        elif hcode == codes.LINK_LOGLOG:
            t = mp.exp(-x)
            mu, nu = mp.exp(-t), -mp.expm1(-t)
            h1 = t * mu
            h2 = (t - 1) * h1
        elif hcode == codes.LINK_CAUCHIT:
            mu, nu = mp.atan2(1, -x) / mp.pi, mp.atan2(1, x) / mp.pi
            h1 = 1 / (mp.pi * (1 + x * x))
            h2 = -2 * x * h1 / (1 + x * x)
        else:
            raise ValueError(f"not a binary CDF link code: {hcode}")
        log_mu = mp.log(mu) if mu < 0.5 else mp.log1p(-nu)
        log_nu = mp.log(nu) if nu < 0.5 else mp.log1p(-mu)
        value = mp.mpf(0)
        if y != 0:
            value += y * (mp.log(y) - log_mu)
        if y != 1:
            value += (1 - y) * (mp.log1p(-y) - log_nu)
        v = mu * nu
        r = y * nu - (1 - y) * mu  # y - mu
        d1 = -r * h1 / v
        if expected:
            d2 = h1 * h1 / v
        else:
            d2 = h1 * h1 / v + r * (h1 * h1 * (nu - mu) / (v * v) - h2 / v)
        return value, d1, d2
