"""Covariate designs: drawing the design matrix of a scenario, and its population sample.

The designs are described in :mod:`simbench.data`'s notes.  This module draws them, for a
scenario that :class:`simbench.data.Scenario` has validated (it reads ``design``, ``p``,
``rho``, ``correlation``, ``levels``, ``column_list`` and ``exposure``), so that both the
data (:mod:`simbench.data`) and the truth (:mod:`simbench.truth`, whose non-linear
predictors are scaled on the population sample) import it from below.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import child_generator as child
from .columns import draw_columns

__all__ = [
    "COLUMNS_DESIGN",
    "EXPOSURE_RANGE",
    "POPULATION_SEED",
    "UNIFORM_HALF_WIDTH",
    "draw_design",
    "population_sample",
    "population_size",
]

COLUMNS_DESIGN = "columns"  # the design of a scenario that gives ``columns``
UNIFORM_HALF_WIDTH = math.sqrt(3.0)  # the uniform design is U(-sqrt 3, sqrt 3): variance 1
EXPOSURE_RANGE = (0.5, 2.0)  # exposure is log-uniform on this interval
POPULATION_SEED = 20260102  # fixed: the population sample belongs to the scenario
_POPULATION_CELLS = 1 << 22  # about 32 MB of design


def draw_design(s: Any, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rows of the design of the validated scenario ``s`` (no intercept column)."""
    p = s.p
    if s.design == "gaussian":
        return rng.standard_normal((n, p))
    if s.design == "correlated":
        if s.correlation == "equi":
            z = rng.standard_normal((n, p + 1))
            return math.sqrt(s.rho) * z[:, :1] + math.sqrt(1.0 - s.rho) * z[:, 1:]
        z = rng.standard_normal((n, p))
        X = np.empty((n, p))
        X[:, 0] = z[:, 0]
        scale = math.sqrt(1.0 - s.rho * s.rho)
        for j in range(1, p):
            X[:, j] = s.rho * X[:, j - 1] + scale * z[:, j]
        return X
    if s.design == "uniform":
        return rng.uniform(-UNIFORM_HALF_WIDTH, UNIFORM_HALF_WIDTH, size=(n, p))
    if s.design == "binary":
        return 2.0 * rng.integers(0, 2, size=(n, p)) - 1.0
    if s.design == "mixed":
        pc = (p + 1) // 2
        X = np.empty((n, p))
        X[:, :pc] = rng.standard_normal((n, pc))
        X[:, pc:] = 2.0 * rng.integers(0, 2, size=(n, p - pc)) - 1.0
        return X
    if s.design == COLUMNS_DESIGN:
        return draw_columns(s.column_list, rng, n)
    level = rng.integers(0, s.levels, size=n)
    return (level[:, None] == np.arange(1, s.levels)[None, :]).astype(np.float64)


def population_size(p: int) -> int:
    """Rows of a scenario's population sample: 2^18, fewer for wide designs (at least
    2^15), so that the sample's design stays near 32 MB."""
    return int(min(1 << 18, max(1 << 15, _POPULATION_CELLS // max(int(p), 1))))


def population_sample(s: Any) -> tuple[np.ndarray, np.ndarray]:
    """The population sample ``(X, offset)`` of the validated scenario ``s`` (see
    :func:`simbench.data.population_sample`, which also takes a mapping)."""
    root = np.random.SeedSequence(POPULATION_SEED)
    size = population_size(s.p)
    X = np.ascontiguousarray(draw_design(s, child(root, 0), size), dtype=np.float64)
    if s.exposure:
        low, high = math.log(EXPOSURE_RANGE[0]), math.log(EXPOSURE_RANGE[1])
        offset = child(root, 1).uniform(low, high, size)
    else:
        offset = np.zeros(size)
    return X, offset
