"""Reference hidden activations: ``f`` and ``f'`` in plain NumPy/SciPy."""

from __future__ import annotations

import numpy as np
from scipy import special

ACTIVATION_NAMES = ("identity", "relu", "tanh", "sigmoid", "softplus")


def f(name: str, x):
    """Activation ``f(x)``."""
    x = np.asarray(x, dtype=float)
    if name == "identity":
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return special.expit(x)
    if name == "softplus":
        return np.logaddexp(0.0, x)
    raise KeyError(name)


def d(name: str, x):
    """Derivative ``f'(x)`` (ReLU: 0 at 0)."""
    x = np.asarray(x, dtype=float)
    if name == "identity":
        return np.ones_like(x)
    if name == "relu":
        return (x > 0).astype(float)
    if name == "tanh":
        with np.errstate(over="ignore"):
            return 1.0 / np.cosh(x) ** 2
    if name == "sigmoid":
        return special.expit(x) * special.expit(-x)
    if name == "softplus":
        return special.expit(x)
    raise KeyError(name)
