"""Reference links: h, h', h'' and g in plain NumPy/SciPy, one function per quantity.

Written for clarity, with SciPy's special functions (``expit``, ``ndtr``, ``ndtri``,
``logaddexp``) and the stable formula only where the obvious one would lose the tail
(``-expm1(-e^eta)`` rather than ``1 - exp(-e^eta)``; the lower Cauchy tail through
``arctan2``).  Every function takes the canonical link name and the power ``lam`` (ignored
except by ``"power"``) and works elementwise on arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import special

LINK_NAMES = (
    "identity",
    "log",
    "logit",
    "probit",
    "cloglog",
    "loglog",
    "cauchit",
    "inverse",
    "inverse_squared",
    "sqrt",
    "power",
    "relu",
    "softplus",
)

_SQRT2PI = np.sqrt(2.0 * np.pi)


def _cauchy_cdf(eta):
    # arctan2(1, -eta) / pi = 1/2 + arctan(eta) / pi, with no cancellation for eta << 0
    return np.arctan2(1.0, -eta) / np.pi


def _cauchy_ppf(mu):
    mid = np.tan(np.pi * (mu - 0.5))
    low = -1.0 / np.tan(np.pi * mu)
    high = 1.0 / np.tan(np.pi * (1.0 - mu))
    return np.where(mu < 0.25, low, np.where(mu > 0.75, high, mid))


def h(name: str, eta, lam: float = 0.0):
    """Inverse link ``mu = h(eta)``."""
    eta = np.asarray(eta, dtype=float)
    with np.errstate(all="ignore"):
        if name == "identity":
            return eta.copy()
        if name == "log":
            return np.exp(eta)
        if name == "logit":
            return special.expit(eta)
        if name == "probit":
            return special.ndtr(eta)
        if name == "cloglog":
            return -np.expm1(-np.exp(eta))
        if name == "loglog":
            return np.exp(-np.exp(-eta))
        if name == "cauchit":
            return _cauchy_cdf(eta)
        if name == "inverse":
            return 1.0 / eta
        if name == "inverse_squared":
            return eta**-0.5
        if name == "sqrt":
            return eta**2
        if name == "power":
            return eta ** (1.0 / lam)
        if name == "relu":
            return np.maximum(eta, 0.0)
        if name == "softplus":
            return np.logaddexp(0.0, eta)
    raise KeyError(name)


def h1(name: str, eta, lam: float = 0.0):
    """First derivative ``h'(eta)``."""
    eta = np.asarray(eta, dtype=float)
    with np.errstate(all="ignore"):
        if name == "identity":
            return np.ones_like(eta)
        if name == "log":
            return np.exp(eta)
        if name == "logit":
            return special.expit(eta) * special.expit(-eta)
        if name == "probit":
            return np.exp(-0.5 * eta**2) / _SQRT2PI
        if name == "cloglog":
            return np.exp(eta - np.exp(eta))
        if name == "loglog":
            return np.exp(-eta - np.exp(-eta))
        if name == "cauchit":
            return 1.0 / (np.pi * (1.0 + eta**2))
        if name == "inverse":
            return -1.0 / eta**2
        if name == "inverse_squared":
            return -0.5 * eta**-1.5
        if name == "sqrt":
            return 2.0 * eta
        if name == "power":
            return (1.0 / lam) * eta ** (1.0 / lam - 1.0)
        if name == "relu":
            return (eta > 0).astype(float)
        if name == "softplus":
            return special.expit(eta)
    raise KeyError(name)


def h2(name: str, eta, lam: float = 0.0):
    """Second derivative ``h''(eta)``."""
    eta = np.asarray(eta, dtype=float)
    with np.errstate(all="ignore"):
        if name == "identity":
            return np.zeros_like(eta)
        if name == "log":
            return np.exp(eta)
        if name == "logit":
            s, t = special.expit(eta), special.expit(-eta)
            return s * t * (t - s)
        if name == "probit":
            return -eta * np.exp(-0.5 * eta**2) / _SQRT2PI
        if name == "cloglog":
            d1 = np.exp(eta - np.exp(eta))
            return np.where(d1 == 0.0, 0.0, d1 * -np.expm1(eta))
        if name == "loglog":
            d1 = np.exp(-eta - np.exp(-eta))
            return np.where(d1 == 0.0, 0.0, d1 * np.expm1(-eta))
        if name == "cauchit":
            return -2.0 * eta / (np.pi * (1.0 + eta**2) ** 2)
        if name == "inverse":
            return 2.0 / eta**3
        if name == "inverse_squared":
            return 0.75 * eta**-2.5
        if name == "sqrt":
            return np.full_like(eta, 2.0)
        if name == "power":
            r = 1.0 / lam
            return r * (r - 1.0) * eta ** (r - 2.0)
        if name == "relu":
            return np.zeros_like(eta)
        if name == "softplus":
            return special.expit(eta) * special.expit(-eta)
    raise KeyError(name)


def g(name: str, mu, lam: float = 0.0):
    """Link ``eta = g(mu)`` (relu: the right inverse ``mu``)."""
    mu = np.asarray(mu, dtype=float)
    with np.errstate(all="ignore"):
        if name in ("identity", "relu"):
            return mu.copy()
        if name == "log":
            return np.log(mu)
        if name == "logit":
            return special.logit(mu)
        if name == "probit":
            return special.ndtri(mu)
        if name == "cloglog":
            return np.log(-np.log1p(-mu))
        if name == "loglog":
            return -np.log(-np.log(mu))
        if name == "cauchit":
            return _cauchy_ppf(mu)
        if name == "inverse":
            return 1.0 / mu
        if name == "inverse_squared":
            return mu**-2.0
        if name == "sqrt":
            return np.sqrt(mu)
        if name == "power":
            return mu**lam
        if name == "softplus":
            # log(e^mu - 1) = mu + log(1 - e^-mu)
            return mu + np.log(-np.expm1(-mu))
    raise KeyError(name)


def eta_valid(name: str, eta, lam: float = 0.0):
    """Where ``h`` is defined and inverted by ``g`` (finite ``eta`` in the link's domain)."""
    eta = np.asarray(eta, dtype=float)
    finite = np.isfinite(eta)
    if name == "sqrt" or (name == "power" and lam > 0):
        return finite & (eta >= 0)
    if name == "inverse":
        return finite & (eta != 0)
    if name == "inverse_squared" or (name == "power" and lam < 0):
        return finite & (eta > 0)
    return finite


def mu_valid(name: str, mu, lam: float = 0.0):
    """Where ``g`` is finite: the valid means of the link."""
    mu = np.asarray(mu, dtype=float)
    finite = np.isfinite(mu)
    if name == "identity":
        return finite
    if name in ("logit", "probit", "cloglog", "loglog", "cauchit"):
        return finite & (mu > 0) & (mu < 1)
    if name == "inverse":
        return finite & (mu != 0)
    if name in ("sqrt", "relu") or (name == "power" and lam > 0):
        return finite & (mu >= 0)
    return finite & (mu > 0)
