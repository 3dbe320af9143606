"""Exact samplers for every family at (mu, phi).

:func:`sample` draws ``y`` with ``E[y] = mu`` and ``Var[y] = phi V(mu) / w`` from a
:class:`numpy.random.Generator` (never inside a kernel, so results do not depend on threads):

==================  =====================================================================
family              draw
==================  =====================================================================
gaussian            ``Normal(mu, sqrt(phi / w))``
bernoulli           ``Bernoulli(mu)``
binomial            ``Binomial(w, mu) / w`` (``w`` = trials, ``y`` a proportion)
poisson             ``Poisson(mu)``
gamma               ``Gamma(shape = w / phi, scale = mu phi / w)``
inverse_gaussian    ``Wald(mu, w / phi)`` (numpy's ``wald(mean, scale)``: variance mean^3/scale)
negative_binomial   ``Poisson(Gamma(shape = 1/alpha, scale = alpha mu))`` (NB2)
tweedie             compound Poisson-gamma: ``N ~ Poisson(mu^(2-p) / (phi (2-p)))``, ``y`` the
                    sum of ``N`` gammas of shape ``(2-p)/(p-1)`` and scale ``phi (p-1) mu^(p-1)``
==================  =====================================================================

The scenario machinery lives in :mod:`simbench.data`, which re-exports :func:`sample`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import families
from ._validation import seed_sequence
from .errors import ValidationError
from .kernels import codes


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.Generator(np.random.PCG64(seed_sequence(rng)))


def sample(
    family: families.Family | str,
    mu: Any,
    phi: float = 1.0,
    rng: np.random.Generator | int | np.random.SeedSequence | None = None,
    weights: Any = None,
) -> np.ndarray:
    """Draw responses exactly from a family at means ``mu``.

    With prior weights ``w`` (default 1), ``E y = mu`` and ``Var y = phi V(mu) / w``
    exactly, for every family:

    ================  ==================================================================
    gaussian          ``N(mu, phi / w)``
    bernoulli         ``Bernoulli(mu)`` (weights must be 1)
    binomial          ``Binomial(w, mu) / w``: ``w`` = trials (positive integers), ``y`` a
                      proportion
    poisson           ``Poisson(w mu) / w`` (the mean of ``w`` unit observations)
    gamma             ``Gamma(shape = w / phi, scale = mu phi / w)``
    inverse_gaussian  ``IG(mu, lambda = w / phi)`` = ``rng.wald(mu, w / phi)``, variance
                      ``phi mu^3 / w``
    negative_binomial ``Poisson(L) / w``, ``L ~ Gamma(shape = w / alpha, scale = alpha mu)``
                      (gamma-Poisson mixture, NB2: ``V = mu + alpha mu^2``)
    tweedie           compound Poisson-gamma: ``N ~ Poisson(lambda)``,
                      ``lambda = mu^(2-p) / (phi' (2-p))``, ``y | N ~ Gamma(N a, theta)``
                      with ``a = (2-p)/(p-1)``, ``theta = phi' (p-1) mu^(p-1)``,
                      ``phi' = phi / w`` (``y = 0`` when ``N = 0``)
    ================  ==================================================================

    ``phi`` is ignored by the families without dispersion (phi = 1).

    Parameters
    ----------
    family : Family or str
        A :class:`~simbench.families.Family` or a name (``"tweedie(1.5)"``).
    mu : array_like
        Means, inside the family's domain.
    phi : float
        Dispersion (> 0).
    rng : numpy.random.Generator, int or SeedSequence
        Source of randomness (an int or SeedSequence seeds a PCG64 generator).
    weights : array_like, optional
        Prior weights broadcastable to ``mu``.

    Returns
    -------
    numpy.ndarray
        float64 responses with the shape of ``mu``.
    """
    fam = families.get(family) if isinstance(family, str) else family
    rng = _as_generator(rng)
    mu = np.asarray(mu, dtype=np.float64)
    if not _is_real(phi) or not (math.isfinite(float(phi)) and phi > 0.0):
        raise ValidationError(f"phi must be a number > 0; got {phi!r}")
    phi = float(phi) if fam.has_dispersion else 1.0
    if fam.is_binary:  # a probability of exactly 0 or 1 (a rounded tail) is still sampled
        valid = (mu.ravel() >= 0.0) & (mu.ravel() <= 1.0)
    else:
        valid = np.asarray(fam.mu_valid(mu.ravel()), dtype=bool)
    if not valid.all():
        bad = mu.ravel()[~valid]
        raise ValidationError(
            f"mu outside the domain of family {fam.name!r}: {bad.size} of {mu.size} values "
            f"(e.g. {bad[0]!r})"
        )
    if weights is None:
        w = np.ones_like(mu)
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), mu.shape)
        if not (np.all(np.isfinite(w)) and np.all(w > 0.0)):
            raise ValidationError("weights must be finite and > 0")
    if fam.code == codes.FAMILY_BERNOULLI and weights is not None and not np.all(w == 1.0):
        raise ValidationError(
            "bernoulli data take no weights; use the binomial family with weights = trials"
        )
    if fam.code == codes.FAMILY_BINOMIAL and not np.all(w == np.round(w)):
        raise ValidationError("binomial weights are the trials: positive integers")
    return draw(fam, mu, phi, rng, w)


def draw(fam: families.Family, mu: np.ndarray, phi: float, rng: np.random.Generator, w):
    """The draws of :func:`sample` on input as it has checked it: a Family, float64 means
    in its domain, the dispersion (1.0 for families without one), a Generator, and
    weights of ``mu``'s shape (1 for bernoulli, whole numbers of trials for binomial)."""
    code = fam.code
    if code == codes.FAMILY_GAUSSIAN:
        y = rng.normal(mu, np.sqrt(phi / w))
    elif code == codes.FAMILY_BERNOULLI:
        y = rng.binomial(1, mu).astype(np.float64)
    elif code == codes.FAMILY_BINOMIAL:
        y = rng.binomial(w.astype(np.int64), mu) / w
    elif code == codes.FAMILY_POISSON:
        lam = mu * w
        _check_poisson_rate(lam)
        y = rng.poisson(lam) / w
    elif code == codes.FAMILY_GAMMA:
        y = rng.gamma(w / phi, mu * phi / w)
    elif code == codes.FAMILY_INVERSE_GAUSSIAN:
        y = rng.wald(mu, w / phi)
    elif code == codes.FAMILY_NEGATIVE_BINOMIAL:
        alpha = float(fam.param)
        lam = rng.gamma(w / alpha, alpha * mu)
        _check_poisson_rate(lam)
        y = rng.poisson(lam) / w
    elif code == codes.FAMILY_TWEEDIE:
        pw = float(fam.param)
        phi_w = phi / w
        lam = mu ** (2.0 - pw) / (phi_w * (2.0 - pw))
        _check_poisson_rate(lam)
        count = rng.poisson(lam)
        shape = count * ((2.0 - pw) / (pw - 1.0))
        y = np.where(count > 0, rng.gamma(shape, phi_w * (pw - 1.0) * mu ** (pw - 1.0)), 0.0)
    else:  # pragma: no cover - every family code is handled above
        raise ValidationError(f"no sampler for family {fam.name!r}")
    return np.asarray(y, dtype=np.float64).reshape(mu.shape)


def _check_poisson_rate(lam: np.ndarray) -> None:
    # numpy's Poisson sampler refuses rates near 2^63; far beyond any sensible simulation
    if lam.size and not float(np.max(lam)) < 1e15:
        raise ValidationError(f"Poisson rate {float(np.max(lam)):.3g} too large to sample")
