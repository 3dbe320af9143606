"""Summaries across replicates, one row per (scenario, configuration).

Across replicates, for ``R`` finite values ``x_1 … x_R`` of an ``ok`` cell's metric
(which rows count: :mod:`~simbench.report.frame`):

* mean ``x̄``; standard deviation ``s`` with ``ddof = 1``;
* Monte Carlo standard error of the mean ``s / √R`` (NaN for ``R < 2``);
* median;

beside the cell counts per status (:func:`cell_counts`) and the coefficient-based
efficiencies (:mod:`~simbench.report.inference`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..errors import ValidationError
from .frame import (
    DERIVED_METRICS,
    FAILED_STATUSES,
    STATUS_ORDER,
    check_results,
    group_codes,
    group_positions,
    metric_columns,
    numeric_values,
    unknown_metric_message,
)
from .inference import efficiency
from .labels import group_table

__all__ = ["aggregate", "cell_counts"]


def cell_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Cells per status for every (scenario, configuration).

    Columns ``n_cells``, ``n_ok``, ``n_error``, ``n_diverged``, ``n_timeout``,
    ``n_skipped``, ``n_failed`` (error + timeout) and ``n_not_converged``
    (``ok`` rows whose optimiser did not meet its tolerance), after the label columns.
    """
    df = check_results(df)
    out = group_table(df)
    status = df["status"].astype(object).fillna("error").astype(str)
    table = pd.crosstab([df["scenario_id"], df["config_id"]], status)
    idx = pd.MultiIndex.from_frame(out[["scenario_id", "config_id"]])
    table = table.reindex(idx, fill_value=0)
    for s in STATUS_ORDER:
        out[f"n_{s}"] = table[s].to_numpy() if s in table.columns else 0
    other = [s for s in table.columns if s not in STATUS_ORDER]
    if other:  # a status outside the vocabulary counts as an error
        out["n_error"] = out["n_error"] + table[other].sum(axis=1).to_numpy()
    out["n_cells"] = table.sum(axis=1).to_numpy()
    out["n_failed"] = out[[f"n_{s}" for s in FAILED_STATUSES]].sum(axis=1)
    if "converged" in df.columns:
        flag = (status == "ok").to_numpy() & (numeric_values(df["converged"]) == 0)
        codes = group_codes(df, out)
        out["n_not_converged"] = np.bincount(codes[flag], minlength=len(out))
    else:
        out["n_not_converged"] = 0
    return out


def _summaries(values: np.ndarray, positions: list[np.ndarray]) -> dict[str, np.ndarray]:
    """n, mean, sd (ddof 1), se, median of the finite values of each group."""
    n_groups = len(positions)
    n = np.zeros(n_groups, dtype=int)
    mean = np.full(n_groups, np.nan)
    sd = np.full(n_groups, np.nan)
    med = np.full(n_groups, np.nan)
    for g, pos in enumerate(positions):
        x = values[pos]
        x = x[np.isfinite(x)]
        n[g] = x.size
        if x.size:
            mean[g] = x.mean()
            med[g] = np.median(x)
        if x.size > 1:
            sd[g] = x.std(ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = sd / np.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "se": se, "median": med}


def aggregate(df: pd.DataFrame, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Summaries across replicates, one row per (scenario, configuration).

    Parameters
    ----------
    df : pandas.DataFrame
        Result rows as returned by :func:`simbench.load`.
    metrics : iterable of str, optional
        Metric columns to summarise; default every metric, timing and optimiser column
        present (:func:`metric_columns`).

    Returns
    -------
    pandas.DataFrame
        In sweep order, with ``scenario_id``, ``config_id``, readable ``scenario`` and
        ``config`` labels, every ``s_*`` / ``c_*`` parameter, the status counts of
        :func:`cell_counts`, and per metric ``m``: ``m_n`` (finite values of ok rows),
        ``m_nan`` (ok rows where it is undefined), ``m_mean``, ``m_sd`` (ddof 1),
        ``m_se`` (Monte Carlo standard error ``sd/√n``) and ``m_median``; then the
        coefficient-based summaries ``efficiency``, ``crb_efficiency`` and
        ``mse_efficiency`` (means over coefficients, see :func:`efficiency`).

    Examples
    --------
    >>> agg = aggregate(simbench.load("results/quickstart"))          # doctest: +SKIP
    >>> agg[["scenario", "config", "coef_z_mle_mean", "coef_z_mle_se"]]  # doctest: +SKIP
    """
    df = check_results(df)
    metrics = metric_columns(df) if metrics is None else list(metrics)
    unknown = [m for m in metrics if m not in df.columns and m not in DERIVED_METRICS]
    if unknown:
        raise ValidationError(unknown_metric_message(unknown[0], df))
    out = cell_counts(df)
    ok = df[(df["status"].astype(object) == "ok").to_numpy()]
    positions = group_positions(group_codes(ok, out), len(out))
    n_ok = out["n_ok"].to_numpy()
    new: dict[str, np.ndarray] = {}
    for m in metrics:
        if m in DERIVED_METRICS:
            continue
        s = _summaries(numeric_values(ok[m]), positions)
        new[f"{m}_n"] = s["n"]
        new[f"{m}_nan"] = n_ok - s["n"]
        for stat in ("mean", "sd", "se", "median"):
            new[f"{m}_{stat}"] = s[stat]
    out = pd.concat([out, pd.DataFrame(new, index=out.index)], axis=1)
    eff = efficiency(df)
    if len(eff):
        out = out.merge(
            eff[["scenario_id", "config_id", *DERIVED_METRICS, "n_coef_replicates"]],
            on=["scenario_id", "config_id"],
            how="left",
        )
    else:
        for m in (*DERIVED_METRICS, "n_coef_replicates"):
            out[m] = np.nan
    return out
