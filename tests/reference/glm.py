"""Plain NumPy reference for the GLM fit of ``simbench.fit.glm``.

Textbook IRLS on an explicit design matrix with a column of ones: the working response
``z = eta - offset + (y - mu) / h'(eta)`` and weights ``W = w h'^2 / V`` are formed as written
and each step is a weighted least-squares problem solved by ``numpy.linalg.lstsq`` (an SVD of
``sqrt(W) X~``, so no normal equations).  Step-halving keeps the means in the domain and the
deviance from rising.  It iterates until the coefficients stop changing to rounding (no
tolerance to tune), which makes it slow and exact: the reference the compiled fit is checked
against, independently of statsmodels.  Link and family quantities come from the reference
modules ``reference.links`` and ``reference.families``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference import families as rfam
from reference import links as rlink


@dataclass
class ReferenceFit:
    coef: np.ndarray
    deviance: float
    pearson: float
    cov_unscaled: np.ndarray  # (X~' W X~)^-1
    cov_sandwich: np.ndarray  # A^-1 B A^-1, HC0
    mu: np.ndarray
    iterations: int


def _mu_valid(code: int, mu: np.ndarray) -> np.ndarray:
    if code == rfam.GAUSSIAN:
        return np.isfinite(mu)
    if code in (rfam.BERNOULLI, rfam.BINOMIAL):
        return (mu > 0) & (mu < 1)
    return (mu > 0) & np.isfinite(mu)


def irls(
    X,
    y,
    code: int,
    a: float,
    link: str,
    lam: float = 0.0,
    weights=None,
    offset=None,
    fit_intercept: bool = True,
    max_iter: int = 500,
) -> ReferenceFit:
    """Maximum-likelihood fit by textbook IRLS; see the module notes.

    ``code``/``a`` are the family code and parameter of ``simbench.kernels.codes``, ``link``
    a canonical link name and ``lam`` its power.  The starting means are ``(y + mean y)/2``
    (binomial: ``(w y + 1/2)/(w + 1)``), the usual IRLS choice.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = y.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    Xt = np.column_stack([np.ones(n), X]) if fit_intercept else X
    keep = w > 0

    def deviance(mu):
        return float(np.sum((w * rfam.unit_deviance(code, a, y, mu))[keep]))

    if code in (rfam.BERNOULLI, rfam.BINOMIAL):
        mu = (w * y + 0.5) / (w + 1) if code == rfam.BINOMIAL else (y + 0.5) / 2
    else:
        mu = (y + np.average(y, weights=w)) / 2
    eta = rlink.g(link, mu, lam)

    def evaluate(b):
        eta_b = Xt @ b + off
        mu_b = rlink.h(link, eta_b, lam)
        ok = _mu_valid(code, mu_b[keep]).all() and rlink.eta_valid(link, eta_b[keep], lam).all()
        return eta_b, mu_b, (deviance(mu_b) if ok else np.nan)

    beta = None
    dev = np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported below)
        h1 = rlink.h1(link, eta, lam)
        W = w * h1**2 / rfam.variance(code, a, mu)
        z = eta - off + (y - mu) / h1
        sw = np.sqrt(W)
        target, *_ = np.linalg.lstsq(Xt[keep] * sw[keep, None], (sw * z)[keep], rcond=None)
        if beta is None:
            eta_c, mu_c, dev_c = evaluate(target)
            if np.isfinite(dev_c):
                beta, eta, mu, dev = target, eta_c, mu_c, dev_c
                continue
            # the first step leaves the domain: start from the intercept-only model
            beta = np.zeros_like(target)
            beta[0] = rlink.g(link, np.array([np.average(y, weights=w)]), lam)[0]
            eta, mu, dev = evaluate(beta)
            assert np.isfinite(dev), "no valid start"
        step = target - beta
        t = 1.0
        for _ in range(60):
            cand = beta + t * step
            eta_c, mu_c, dev_c = evaluate(cand)
            if np.isfinite(dev_c) and dev_c <= dev * (1 + 1e-13) + 1e-300:
                break
            t *= 0.5
        else:
            break
        change = np.max(np.abs(cand - beta))
        beta, eta, mu, dev = cand, eta_c, mu_c, dev_c
        if change <= 4e-16 * max(1.0, np.max(np.abs(beta))):
            break
    h1 = rlink.h1(link, eta, lam)
    V = rfam.variance(code, a, mu)
    W = np.where(keep, w * h1**2 / V, 0.0)
    A = (Xt * W[:, None]).T @ Xt
    Ainv = np.linalg.inv(A)
    u = np.where(keep, w * h1 * (y - mu) / V, 0.0)
    B = (Xt * (u**2)[:, None]).T @ Xt
    pearson = float(np.sum(np.where(keep, w * (y - mu) ** 2 / V, 0.0)))
    return ReferenceFit(beta, dev, pearson, Ainv, Ainv @ B @ Ainv, mu, iterations)
