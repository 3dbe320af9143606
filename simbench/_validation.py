"""Checks at the edge of the public functions: arrays and seeds, each message in one form.

Every message names what was wrong (the argument or key, and where), the bad value (or its
type or shape) and what is accepted, as ``"<what> must be <accepted>; got <bad>"``: for the
keys of scenarios and network configurations ``"scenario key 'n' must be an integer >= 1;
got 0"``, ``"network config key 'lr' must be a number in (0, inf); got -1.0"``.  The array
functions return the value as the kernels take it (C-contiguous float64, a
``SeedSequence``).  The vocabulary's parameters are checked by their domains
(:mod:`simbench._domains`), in the same words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ValidationError

__all__ = [
    "boolean",
    "child_generator",
    "integer",
    "interval_text",
    "key_error",
    "number",
    "real_matrix",
    "real_vector",
    "seed_sequence",
]


# ---- keys of sweep files and configurations ------------------------------------------------


def key_error(where: str, key: str, value: Any, accepted: str) -> ValidationError:
    """``"<where> key '<key>' must be <accepted>; got <value>"``."""
    return ValidationError(f"{where} key {key!r} must be {accepted}; got {value!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def interval_text(low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    """``"a number in (0, inf)"``."""
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    return f"a number in {lo}{low:g}, {high:g}{hi}"


def integer(where: str, key: str, value: Any, low: int, high: int | None = None) -> int:
    """A whole number ``>= low`` (and ``<= high`` if given; an integral float such as
    ``3.0`` is taken as 3)."""
    accepted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high:,}"
    if not _is_real(value) or not np.isfinite(float(value)) or float(value) != int(value):
        raise key_error(where, key, value, accepted)
    if int(value) < low or (high is not None and int(value) > high):
        raise key_error(where, key, value, accepted)
    return int(value)


def number(
    where: str,
    key: str,
    value: Any,
    low: float = -np.inf,
    high: float = np.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    accepted: str | None = None,
) -> float:
    """A finite real number in the interval (``accepted`` words it; default the interval)."""
    text = accepted or interval_text(low, high, low_open, high_open)
    if not _is_real(value) or not np.isfinite(float(value)):
        raise key_error(where, key, value, text)
    x = float(value)
    if x < low or (low_open and x == low) or x > high or (high_open and x == high):
        raise key_error(where, key, value, text)
    return x


def boolean(where: str, key: str, value: Any) -> bool:
    """``true`` or ``false`` (no numbers or strings)."""
    if not isinstance(value, (bool, np.bool_)):
        raise key_error(where, key, value, "true or false")
    return bool(value)


# ---- arrays and seeds ----------------------------------------------------------------------


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


def child_generator(root: np.random.SeedSequence, k: int) -> np.random.Generator:
    """The generator of the ``k``-th child of ``root``: the stream of ``root.spawn(k + 1)[k]``
    for a sequence that has spawned nothing, built on its own and without advancing ``root``
    (as ``spawn`` would a caller's sequence)."""
    seq = np.random.SeedSequence(
        entropy=root.entropy, spawn_key=(*root.spawn_key, k), pool_size=root.pool_size
    )
    return np.random.Generator(np.random.PCG64(seq))


def check_seed(seed: Any, what: str = "seed") -> None:
    """Refuse anything but an integer >= 0 or a ``SeedSequence`` as a seed."""
    if isinstance(seed, np.random.SeedSequence):
        return
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        if seed >= 0:
            return
    raise ValidationError(f"{what} must be an integer >= 0 or a SeedSequence; got {seed!r}")


def seed_sequence(seed: Any, what: str = "seed") -> np.random.SeedSequence:
    """``seed`` as a ``SeedSequence`` (an integer >= 0, or a SeedSequence as it is)."""
    check_seed(seed, what)
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(int(seed))
