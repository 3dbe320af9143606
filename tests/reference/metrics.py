"""Plain NumPy/SciPy reference for ``simbench.metrics`` and ``simbench.kernels.metrics``.

Written for clarity: every quantity by its textbook formula, quadratic-time AUC, explicit
design matrices with an intercept column, unit deviances written out per family.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def unit_deviance(family: str, y, mu, param: float = 0.0) -> np.ndarray:
    """Unit deviance d(y, μ) of a family given by name (``param``: NB α or Tweedie power)."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    if family == "gaussian":
        return (y - mu) ** 2
    if family in ("bernoulli", "binomial"):
        return 2.0 * (special.xlogy(y, y / mu) + special.xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))
    if family == "poisson":
        return 2.0 * (special.xlogy(y, y / mu) - (y - mu))
    if family == "gamma":
        return 2.0 * (-np.log(y / mu) + (y - mu) / mu)
    if family == "inverse_gaussian":
        return (y - mu) ** 2 / (mu**2 * y)
    if family == "negative_binomial":
        a = param
        return 2.0 * (
            special.xlogy(y, y / mu) - (y + 1.0 / a) * np.log((1.0 + a * y) / (1.0 + a * mu))
        )
    if family == "tweedie":
        p = param
        return 2.0 * (
            np.power(y, 2.0 - p) / ((1.0 - p) * (2.0 - p))
            - y * np.power(mu, 1.0 - p) / (1.0 - p)
            + np.power(mu, 2.0 - p) / (2.0 - p)
        )
    raise ValueError(family)


def variance(family: str, mu, param: float = 0.0) -> np.ndarray:
    mu = np.asarray(mu, dtype=float)
    return {
        "gaussian": lambda: np.ones_like(mu),
        "bernoulli": lambda: mu * (1.0 - mu),
        "binomial": lambda: mu * (1.0 - mu),
        "poisson": lambda: mu,
        "gamma": lambda: mu**2,
        "inverse_gaussian": lambda: mu**3,
        "negative_binomial": lambda: mu + param * mu**2,
        "tweedie": lambda: mu**param,
    }[family]()


# inverse link h, its derivative h', and the link g
LINKS = {
    "identity": (lambda e: e, lambda e: np.ones_like(e), lambda m: m),
    "log": (np.exp, np.exp, np.log),
    "logit": (special.expit, lambda e: special.expit(e) * special.expit(-e), special.logit),
    "probit": (special.ndtr, lambda e: np.exp(-0.5 * e**2) / np.sqrt(2 * np.pi), special.ndtri),
    "inverse": (lambda e: 1.0 / e, lambda e: -1.0 / e**2, lambda m: 1.0 / m),
    "sqrt": (lambda e: e**2, lambda e: 2.0 * e, np.sqrt),
}


def design(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    return np.column_stack([np.ones(X.shape[0]), X])


def coef_err_truth(b, t) -> float:
    b, t = np.asarray(b, float), np.asarray(t, float)
    return float(np.sqrt(np.sum((b - t) ** 2)) / np.sqrt(np.sum(t**2)))


def coef_err_mle(b, m) -> float:
    return float(max(abs(x - y) for x, y in zip(b, m, strict=True)))


def coef_z_mle(b, m, info) -> float:
    d = np.asarray(b, float) - np.asarray(m, float)
    return float(np.sqrt(np.einsum("i,ij,j->", d, info, d)))


def coef_cos_truth(b, t) -> float:
    b, t = np.asarray(b, float)[1:], np.asarray(t, float)[1:]
    return float(np.sum(b * t) / np.sqrt(np.sum(b * b) * np.sum(t * t)))


def mean_deviance(family, y, mu, weights=None, param=0.0) -> float:
    d = unit_deviance(family, y, mu, param)
    w = np.ones_like(d) if weights is None else np.asarray(weights, float)
    return float(np.mean(w * d))


def excess_deviance(family, mu_true, mu_hat, phi, weights=None, param=0.0) -> float:
    return mean_deviance(family, mu_true, mu_hat, weights, param) / phi


def eta_rmse(eta_hat, eta_true) -> float:
    return float(np.sqrt(np.mean((np.asarray(eta_hat) - np.asarray(eta_true)) ** 2)))


def mu_rel_err(mu_hat, mu_true) -> float:
    mu_hat, mu_true = np.asarray(mu_hat, float), np.asarray(mu_true, float)
    return float(np.mean(np.abs(mu_hat - mu_true) / np.abs(mu_true)))


def balance(y, mu_hat, weights=None) -> float:
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    return float(np.sum(w * np.asarray(mu_hat)) / np.sum(w * np.asarray(y)) - 1.0)


def auc(score, y, weights=None) -> float:
    """Quadratic-time weighted Mann–Whitney: every (positive, negative) pair, ties ½."""
    s = np.asarray(score, float)
    y = np.asarray(y, float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, float)
    pos, neg = w * y, w * (1.0 - y)
    gt = (s[:, None] > s[None, :]).astype(float) + 0.5 * (s[:, None] == s[None, :])
    return float(pos @ gt @ neg / (pos.sum() * neg.sum()))


def fisher_information(X, beta, family, link, phi, weights=None, param=0.0, offset=None):
    """X̃ᵀ diag(w h'(η)² / (φ V(μ))) X̃ with an explicit design matrix."""
    Xt = design(X)
    eta = Xt @ np.asarray(beta, float)
    if offset is not None:
        eta = eta + offset
    h, h1, _ = LINKS[link]
    c = h1(eta) ** 2 / (phi * variance(family, h(eta), param))
    if weights is not None:
        c = c * weights
    return Xt.T @ (c[:, None] * Xt)


def crb_var(X, beta, family, link, phi, weights=None, param=0.0, offset=None):
    info = fisher_information(X, beta, family, link, phi, weights, param, offset)
    return np.diag(np.linalg.inv(info))


def gram_with_intercept(X, c):
    Xt = design(X)
    return Xt.T @ (np.asarray(c, float)[:, None] * Xt)


def linear_projection(X, s, weights=None):
    Xt = design(X)
    w = np.ones(Xt.shape[0]) if weights is None else np.asarray(weights, float)
    return np.linalg.solve(Xt.T @ (w[:, None] * Xt), Xt.T @ (w * s))


def irls(X, y, family, link, weights=None, param=0.0, offset=None, iters=100):
    """Textbook IRLS (Fisher scoring) with an intercept; no safeguards."""
    Xt = design(X)
    y = np.asarray(y, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    o = np.zeros_like(y) if offset is None else np.asarray(offset, float)
    h, h1, g = LINKS[link]
    ybar = np.sum(w * y) / np.sum(w)
    beta = np.zeros(Xt.shape[1])
    beta[0] = g(np.asarray(ybar)) - np.mean(o)
    for _ in range(iters):
        eta = Xt @ beta + o
        mu, d = h(eta), h1(eta)
        W = w * d**2 / variance(family, mu, param)
        z = eta - o + (y - mu) / d
        new = np.linalg.solve(Xt.T @ (W[:, None] * Xt), Xt.T @ (W * z))
        if np.max(np.abs(new - beta)) < 1e-13 * (1 + np.max(np.abs(beta))):
            return new
        beta = new
    return beta


def balance_max(X, y, mu, weights=None) -> float:
    """Largest over the columns of [1, X] of |Σ w x (μ − y)| / Σ w |x| |y| (0/0 skipped)."""
    Xt = design(X)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    vals = []
    for j in range(Xt.shape[1]):
        den = np.sum(w * np.abs(Xt[:, j]) * np.abs(y))
        if den > 0:
            vals.append(abs(np.sum(w * Xt[:, j] * (mu - y))) / den)
    return float(max(vals))
