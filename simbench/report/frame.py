"""What a results table holds: its statuses, its metric columns and its groups.

The other reporting modules read result rows (:func:`simbench.load`, one row per cell =
scenario × configuration × replicate) through these helpers: :func:`check_results` (is it
a results table), :func:`metric_columns` (which columns are metrics), :func:`numeric_values`
(a column as floats) and the positions of each (scenario, configuration) group's rows.

Which rows count
----------------
Metric summaries use the rows whose ``status`` is ``"ok"`` and whose value is finite.
Rows that failed (``error``, ``timeout``: :data:`simbench.sweep.status.FAILED_STATUSES`, the
same set ``simbench status`` counts), rows that diverged and rows that do not apply
(``skipped``) are *counted* (``n_failed``, ``n_diverged``, ``n_skipped``; shown next to every
table entry) but never averaged: a mean over the surviving replicates of a configuration that
fails or diverges half the time is biased towards its good runs, which is why those counts
always travel with it.  An ``ok`` row whose metric is NaN (say ``auc`` on Poisson data, or
a deviance whose ``μ̂`` left the family's domain) is counted in ``<metric>_nan``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._registry import closest
from ..errors import ValidationError
from ..sweep.status import FAILED_STATUSES as _FAILED
from ..sweep.status import STATUSES

__all__ = [
    "DERIVED_METRICS",
    "FAILED_STATUSES",
    "STATUS_ORDER",
    "TIMING_COLUMNS",
    "check_results",
    "first_per",
    "group_codes",
    "group_positions",
    "metric_columns",
    "numeric_values",
    "order_keys",
    "unknown_metric_message",
]

#: the statuses in their order of display, and those counted as failures (one vocabulary
#: with the runner and ``simbench status``: :mod:`simbench.sweep.status`)
STATUS_ORDER = STATUSES
FAILED_STATUSES = tuple(s for s in STATUSES if s in _FAILED)

#: metric-like columns that are not metrics of a fit's quality (timing and optimiser state)
TIMING_COLUMNS = ("fit_seconds", "compile_seconds", "epochs_run", "grad_norm", "converged")

#: per-(scenario, config) summaries computed from the coefficient vectors, not from a column
DERIVED_METRICS = ("efficiency", "crb_efficiency", "mse_efficiency")

_NOT_METRICS = frozenset(
    {
        "replicate",
        "scenario_index",
        "config_index",
        "data_seed",
        "init_seed",
        "sweep_seed",
        "cell_seconds",
    }
)


def check_results(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` checked, as a shallow copy without ``attrs``.

    pandas deep-copies ``attrs`` (the manifest, with the sweep text) into the result of
    every operation; dropping them once makes aggregation many times faster.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(f"expected a results DataFrame, got {type(df).__name__}")
    missing = [c for c in ("scenario_id", "config_id", "status") if c not in df.columns]
    if missing:
        raise ValidationError(
            f"not a simbench results table: missing column(s) {', '.join(missing)}"
        )
    if not df.attrs:
        return df
    out = df.copy(deep=False)
    out.attrs = {}
    return out


def numeric_values(series: pd.Series) -> np.ndarray:
    """float64 values of a column: bools as 0/1, anything unparsable or infinite as NaN."""
    if series.dtype == bool:
        return series.to_numpy(dtype=float, copy=True)
    values = pd.to_numeric(series, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan, copy=True
    )
    values[~np.isfinite(values)] = np.nan
    return values


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a results table, in the order of :mod:`simbench.metrics`.

    Scalar metrics first (known ones in their canonical order, then any other numeric
    column), then the timing and optimiser columns.
    """
    from ..metrics import METRIC_COLUMNS

    known = [m for m in METRIC_COLUMNS if m in df.columns]
    identity = {c for c in df.columns if c.startswith(("s_", "c_"))}
    others = []
    for c in df.columns:
        if c in known or c in TIMING_COLUMNS or c in identity or c in _NOT_METRICS:
            continue
        if c.endswith("_id") or c in ("status", "error"):
            continue
        if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool:
            others.append(c)
    timing = [c for c in TIMING_COLUMNS if c in df.columns]
    return known + others + timing


def unknown_metric_message(name: str, df: pd.DataFrame) -> str:
    accepted = [*metric_columns(df), *DERIVED_METRICS]
    text = f"unknown metric {name!r}"
    guess = closest(name, accepted)
    if guess is not None:
        text += f"; did you mean {guess!r}?"
    return text + "; accepted: " + ", ".join(accepted)


def first_per(df: pd.DataFrame, key: str, columns: Sequence[str]) -> pd.DataFrame:
    present = [c for c in columns if c in df.columns and c != key]
    return df.drop_duplicates(key).set_index(key)[present]


def order_keys(df: pd.DataFrame) -> list[str]:
    return [c for c in ("scenario_index", "config_index", "replicate") if c in df.columns]


def group_positions(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row positions of each group code (codes < 0 belong to no group), in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


def group_codes(df: pd.DataFrame, groups: pd.DataFrame) -> np.ndarray:
    idx = pd.MultiIndex.from_frame(groups[["scenario_id", "config_id"]])
    return idx.get_indexer(pd.MultiIndex.from_frame(df[["scenario_id", "config_id"]]))
