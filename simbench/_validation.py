"""Checks at the edge of the public functions: arrays and seeds, each message in one form.

Every message names what was wrong (the argument), the bad value (or its type or shape) and
what is accepted, as ``"<what> must be <accepted>; got <bad>"``.  The functions return the
value as the kernels take it (C-contiguous float64 arrays, a ``SeedSequence``).  Numbers and
choices of the sweep-file keys and configurations are checked by the specs of the vocabulary
(:mod:`simbench._domains`) and of :class:`simbench.fit.config.NetworkConfig`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ValidationError

__all__ = ["real_matrix", "real_vector", "seed_sequence"]


def _got(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"shape {shape}" if shape is not None else f"a {type(value).__name__}"


def real_matrix(X: Any, what: str = "X", columns: int | None = None) -> np.ndarray:
    """``X`` as a C-contiguous float64 matrix of finite numbers (rows x columns, no
    intercept column), with ``columns`` columns when given."""
    accepted = "2-D, rows x columns of real numbers without an intercept column"
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be {accepted}; got {_got(X)}") from None
    if arr.ndim != 2:
        raise ValidationError(f"{what} must be {accepted}; got shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise ValidationError(
            f"{what} has {arr.shape[1]} columns; the model has {columns} (its covariates)"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValidationError(f"{what} must be finite; got {arr[i, j]!r} at row {i}, column {j}")
    return np.ascontiguousarray(arr)


def real_vector(v: Any, n: int, what: str, scalar_ok: bool = False) -> np.ndarray:
    """``v`` as a C-contiguous float64 vector of ``n`` finite numbers (one per row of X); a
    scalar is repeated ``n`` times when ``scalar_ok``."""
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be an array of real numbers; got {_got(v)}") from None
    if arr.ndim == 0 and scalar_ok:
        arr = np.full(n, float(arr))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValidationError(
            f"{what} must have shape ({n},), one value per row of X ({n} rows); "
            f"got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"{what} must be finite; got {arr[i]!r} at index {i}")
    return np.ascontiguousarray(arr)


def seed_sequence(seed: Any, what: str = "seed") -> np.random.SeedSequence:
    """``seed`` as a ``SeedSequence`` (an integer >= 0, or a SeedSequence as it is)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        if seed >= 0:
            return np.random.SeedSequence(int(seed))
    raise ValidationError(f"{what} must be an integer >= 0 or a SeedSequence; got {seed!r}")
