"""Aggregation of result rows across replicates.

Every number a table, a figure or a comparison shows is computed here, from the rows of
:func:`simbench.load` (one row per cell = scenario × configuration × replicate).

Which rows count
----------------
Metric summaries use the rows whose ``status`` is ``"ok"`` and whose value is finite.
Rows that failed (``error``, ``diverged``, ``timeout``) and rows that do not apply
(``skipped``) are *counted* (``n_failed``, ``n_skipped``; shown next to every table entry)
but never averaged: a mean over the surviving replicates of a configuration that fails half
the time is biased towards its good runs, which is why the failure count always travels
with it.  An ``ok`` row whose metric is NaN (say ``auc`` on Poisson data, or a deviance
whose ``μ̂`` left the family's domain) is counted in ``<metric>_nan``.

Across replicates, for ``R`` finite values ``x_1 … x_R``
----------------------------------------------------------
* mean ``x̄``; standard deviation ``s`` with ``ddof = 1``;
* Monte Carlo standard error of the mean ``s / √R`` (NaN for ``R < 2``);
* median.

Per coefficient ``j`` (``coefficients``), over the replicates whose ``β̂`` is finite
------------------------------------------------------------------------------------
* bias ``b_j = mean_r(β̂_rj − β*_j)`` with MC SE ``sd_r(β̂_rj) / √R``;
* variance ``v_j = Var_MC(β̂_j)`` with ``ddof = 1``;
* MSE ``= mean_r (β̂_rj − β*_j)²``, the empirical mean squared error, an unbiased estimate
  of ``E(β̂_j − β*_j)²`` (it equals ``b_j² + v_j (R−1)/R``; the tempting ``b_j² + v_j`` is
  biased upwards by ``v_j / R`` because ``b_j²`` already carries the variance of the mean),
  with MC SE ``sd_r((β̂_rj − β*_j)²) / √R``;
* efficiency against the MLE ``Var_MC(β_MLE,j) / Var_MC(β̂_j)``, both variances over the
  *same* replicates (those where the configuration and the reference fit are both
  usable), so the common random numbers of a group cancel as far as they can;
* efficiency against the Cramér–Rao bound ``mean_r [I_n(β*)⁻¹]_jj / Var_MC(β̂_j)`` (the
  ``crb_var`` column; the bound depends on the replicate's design, hence the mean);
* MSE efficiency ``MSE(β_MLE,j) / MSE(β̂_j)``, the fair comparison for a biased estimator.

Efficiencies above 1 are possible: a shrunken or early-stopped estimator can have less
variance than the MLE while being biased, which is why bias and MSE are reported with it.
The per-configuration summaries in :func:`aggregate` (``efficiency``,
``crb_efficiency``, ``mse_efficiency``) are the means over the coefficients
(intercept included).

Coverage of the reference fit (``coverage``)
--------------------------------------------
The reference MLE is shared by every configuration of a (scenario, replicate) group, so it
is counted once per group, over the groups whose ``mle_status`` is ``"ok"``.  The Wald
interval ``β_MLE,j ± z_{1−α/2} se_j`` (``z`` the exact normal quantile, 1.959964 for 95%)
covers when ``|β_MLE,j − β*_j| ≤ z se_j``; coverage is the fraction of groups that cover,
with binomial Monte Carlo standard error ``√(c (1 − c) / R)``; model-based ``se`` is
``mle_se`` and sandwich ``se`` is ``mle_se_sandwich``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError

__all__ = [
    "DERIVED_METRICS",
    "FAILED_STATUSES",
    "Direction",
    "aggregate",
    "cell_counts",
    "coefficients",
    "config_labels",
    "coverage",
    "direction",
    "efficiency",
    "metric_columns",
    "numeric_values",
    "scenario_labels",
    "varying_params",
]

#: statuses counted as failures in tables and comparisons (``skipped`` is "not applicable")
FAILED_STATUSES = ("error", "diverged", "timeout")
STATUS_ORDER = ("ok", "error", "diverged", "timeout", "skipped")

#: metric-like columns that are not metrics of a fit's quality (timing and optimiser state)
TIMING_COLUMNS = ("fit_seconds", "compile_seconds", "epochs_run", "grad_norm", "converged")

#: per-(scenario, config) summaries computed from the coefficient vectors, not from a column
DERIVED_METRICS = ("efficiency", "crb_efficiency", "mse_efficiency")

# columns never treated as metrics even when numeric
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


# --------------------------------------------------------------------------- directions


@dataclass(frozen=True)
class Direction:
    """Which way a metric improves.

    ``kind`` is ``"lower"``, ``"higher"``, ``"target"`` (closest to ``target`` is best) or
    ``"none"`` (no better side, e.g. the training deviance, where lower is overfitting).
    """

    kind: str
    target: float = 0.0

    def badness(self, x):
        """A transform of ``x`` that is smaller when better (NaN when there is no order)."""
        x = np.asarray(x, dtype=float)
        if self.kind == "lower":
            return x
        if self.kind == "higher":
            return -x
        if self.kind == "target":
            return np.abs(x - self.target)
        return np.full_like(x, np.nan)

    @property
    def ordered(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        if self.kind == "lower":
            return "lower is better"
        if self.kind == "higher":
            return "higher is better"
        if self.kind == "target":
            return f"closer to {self.target:g} is better"
        return "no better direction"


_LOWER, _HIGHER = Direction("lower"), Direction("higher")
_DIRECTIONS: dict[str, Direction] = {
    "coef_err_truth": _LOWER,
    "coef_err_mle": _LOWER,
    "coef_z_mle": _LOWER,
    "coef_z_truth": _LOWER,
    "coef_cos_truth": _HIGHER,
    "excess_deviance": _LOWER,
    "eta_rmse": _LOWER,
    "mu_rel_err": _LOWER,
    "dev_train": Direction("none"),
    "dev_test": _LOWER,
    "balance": Direction("target", 0.0),
    "calib_slope": Direction("target", 1.0),
    "calib_intercept": Direction("target", 0.0),
    "auc": _HIGHER,
    # the oracle AUC depends on the data only: a change means the data changed
    "auc_oracle": Direction("none"),
    "fit_seconds": _LOWER,
    "compile_seconds": _LOWER,
    "epochs_run": Direction("none"),
    "grad_norm": _LOWER,
    "converged": _HIGHER,
    # above 1 only through bias (shrinkage): more is not better, so no best is marked
    "efficiency": Direction("none"),
    "crb_efficiency": Direction("none"),
    "mse_efficiency": _HIGHER,
}


def direction(metric: str) -> Direction:
    """The :class:`Direction` of a metric column (``"none"`` for unknown columns)."""
    if metric in _DIRECTIONS:
        return _DIRECTIONS[metric]
    if metric.endswith("_seconds"):
        return _LOWER
    return Direction("none")


# --------------------------------------------------------------------------- helpers


def numeric_values(series: pd.Series) -> np.ndarray:
    """float64 values of a column: bools as 0/1, anything unparsable or infinite as NaN."""
    if series.dtype == bool:
        return series.to_numpy(dtype=float, copy=True)
    values = pd.to_numeric(series, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan, copy=True
    )
    values[~np.isfinite(values)] = np.nan
    return values


def _hashable(v: Any) -> Any:
    """A hashable, comparable stand-in for a cell value (lists and arrays become tuples)."""
    if isinstance(v, np.ndarray):
        return tuple(_hashable(x) for x in v.tolist())
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def format_param(v: Any) -> str:
    """A scenario/config parameter value as a short readable string."""
    v = _hashable(v)
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:g}"
    if isinstance(v, tuple):
        return "[" + ", ".join(format_param(x) for x in v) + "]"
    return str(v)


def _first_per(df: pd.DataFrame, key: str, columns: Sequence[str]) -> pd.DataFrame:
    present = [c for c in columns if c in df.columns and c != key]
    return df.drop_duplicates(key).set_index(key)[present]


def _order_keys(df: pd.DataFrame) -> list[str]:
    return [c for c in ("scenario_index", "config_index", "replicate") if c in df.columns]


def _check_results(df: pd.DataFrame) -> pd.DataFrame:
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


def varying_params(df: pd.DataFrame, prefix: str) -> list[str]:
    """The ``s_`` (or ``c_``) columns that take more than one value across the table.

    Compared per scenario (or configuration), so a column varies when two scenarios differ
    in it.
    """
    key = "scenario_id" if prefix == "s_" else "config_id"
    cols = [c for c in df.columns if c.startswith(prefix)]
    if not cols or key not in df.columns:
        return []
    first = df.drop_duplicates(key)
    out = []
    for c in cols:
        values = {_hashable(v) for v in first[c]}
        if len(values) > 1:
            out.append(c)
    return out


# the scenario keys that do not need "key=" in front of their value
_BARE_SCENARIO_KEYS = ("s_family",)
_BINARY = ("bernoulli", "binomial")


def _has_dispersion(family: Any) -> bool:
    try:
        from .. import families

        return bool(families.get(str(family)).has_dispersion)
    except (ImportError, ValueError, KeyError):
        return True


# when a scenario key reads at all (mirrors Scenario's reset of inapplicable keys): a label
# does not mention the dispersion of a Poisson scenario even if other scenarios vary it
_APPLIES = {
    "s_alpha": lambda r: r.get("s_family") == "negative_binomial",
    "s_power": lambda r: r.get("s_family") == "tweedie",
    "s_trials": lambda r: r.get("s_family") == "binomial",
    "s_dispersion": lambda r: _has_dispersion(r.get("s_family")),
    "s_mean": lambda r: r.get("s_family") not in _BINARY or r.get("s_beta") is not None,
    "s_rho": lambda r: r.get("s_design", "correlated") == "correlated",
    "s_correlation": lambda r: r.get("s_design", "correlated") == "correlated",
    "s_levels": lambda r: r.get("s_design", "categorical") == "categorical",
}
# scenario keys tried, in order, to name a sweep with a single scenario
_SINGLE_SCENARIO_KEYS = ("s_family", "s_n")


def scenario_labels(df: pd.DataFrame, exclude: Sequence[str] = ()) -> pd.Series:
    """Readable scenario labels indexed by ``scenario_id``, e.g. ``"poisson, n=1000"``.

    Built from the scenario parameters that vary across the table (the family alone, the
    others as ``key=value``), leaving out in each label the parameters that do not apply
    to that scenario (the dispersion of a Poisson scenario, ``rho`` of an iid design); a
    single scenario is named by its family and ``n``.
    ``exclude`` leaves parameters out (e.g. ``("s_n",)`` to label the panels of a plot
    against ``n``); labels are then not unique.
    """
    df = _check_results(df)
    varying = [c for c in varying_params(df, "s_") if c not in exclude]
    first = df.drop_duplicates("scenario_id").set_index("scenario_id")
    if "s_link" in varying and "s_family" in varying:
        # the link adds nothing when each family comes with one link (e.g. canonical)
        pairs = {
            (_hashable(f), _hashable(lk))
            for f, lk in zip(first["s_family"], first["s_link"], strict=True)
        }
        if len(pairs) == len({f for f, _ in pairs}):
            varying.remove("s_link")
    if not varying:
        varying = [c for c in _SINGLE_SCENARIO_KEYS if c in df.columns and c not in exclude]
    if not varying:
        return pd.Series(first.index.astype(str), index=first.index, dtype=object)
    labels = []
    for _, row in first.iterrows():
        parts = []
        for c in varying:
            if c in _APPLIES and "s_family" in row and not _APPLIES[c](row):
                continue
            value = format_param(row[c])
            parts.append(value if c in _BARE_SCENARIO_KEYS else f"{c[2:]}={value}")
        labels.append(", ".join(parts) or format_param(row.get("s_family", row.name)))
    labels = pd.Series(labels, index=first.index, dtype=object)
    return labels if exclude else _unique(labels)


def config_labels(df: pd.DataFrame) -> pd.Series:
    """Readable configuration labels indexed by ``config_id``.

    The sweep's own label (``config_label``: the name, plus grid values where names
    repeat), else ``c_name``, else the id.
    """
    df = _check_results(df)
    first = df.drop_duplicates("config_id").set_index("config_id")
    for col in ("config_label", "c_name"):
        if col in first.columns:
            labels = first[col].astype(object)
            labels = labels.where(labels.notna() & (labels.astype(str) != ""), None)
            fallback = pd.Series(first.index.astype(str), index=first.index, dtype=object)
            return _unique(labels.fillna(fallback).astype(str).astype(object))
    return pd.Series(first.index.astype(str), index=first.index, dtype=object)


def _unique(labels: pd.Series) -> pd.Series:
    """Disambiguate repeated labels with ``#2``, ``#3`` (never two columns with one name)."""
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    return pd.Series(out, index=labels.index, dtype=object)


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


def _groups(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario_id, config_id) in sweep order, with labels and parameters."""
    order = _order_keys(df)
    base = df.sort_values(order, kind="stable") if order else df
    keys = base.drop_duplicates(["scenario_id", "config_id"])[["scenario_id", "config_id"]]
    keys = keys.reset_index(drop=True)
    s_lab = scenario_labels(df)
    c_lab = config_labels(df)
    out = keys.copy()
    out["scenario"] = s_lab.reindex(keys["scenario_id"]).to_numpy()
    out["config"] = c_lab.reindex(keys["config_id"]).to_numpy()
    s_cols = [c for c in df.columns if c.startswith("s_")]
    c_cols = [c for c in df.columns if c.startswith("c_")]
    s_first = _first_per(df, "scenario_id", ["scenario_index", *s_cols])
    c_first = _first_per(df, "config_id", ["config_index", *c_cols])
    for c in s_first.columns:
        out[c] = s_first[c].reindex(keys["scenario_id"]).to_numpy()
    for c in c_first.columns:
        out[c] = c_first[c].reindex(keys["config_id"]).to_numpy()
    return out


# --------------------------------------------------------------------------- counts


def cell_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Cells per status for every (scenario, configuration).

    Columns ``n_cells``, ``n_ok``, ``n_error``, ``n_diverged``, ``n_timeout``,
    ``n_skipped``, ``n_failed`` (error + diverged + timeout) and ``n_not_converged``
    (``ok`` rows whose optimiser did not meet its tolerance), after the label columns.
    """
    df = _check_results(df)
    out = _groups(df)
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
        codes = _group_codes(df, out)
        out["n_not_converged"] = np.bincount(codes[flag], minlength=len(out))
    else:
        out["n_not_converged"] = 0
    return out


# --------------------------------------------------------------------------- metrics


def _positions(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row positions of each group code (codes < 0 belong to no group), in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


def _group_codes(df: pd.DataFrame, groups: pd.DataFrame) -> np.ndarray:
    idx = pd.MultiIndex.from_frame(groups[["scenario_id", "config_id"]])
    return idx.get_indexer(pd.MultiIndex.from_frame(df[["scenario_id", "config_id"]]))


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
    df = _check_results(df)
    metrics = metric_columns(df) if metrics is None else list(metrics)
    unknown = [m for m in metrics if m not in df.columns and m not in DERIVED_METRICS]
    if unknown:
        raise ValidationError(_unknown_metric_message(unknown[0], df))
    out = cell_counts(df)
    ok = df[(df["status"].astype(object) == "ok").to_numpy()]
    positions = _positions(_group_codes(ok, out), len(out))
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


def _unknown_metric_message(name: str, df: pd.DataFrame) -> str:
    from .._registry import closest

    accepted = [*metric_columns(df), *DERIVED_METRICS]
    text = f"unknown metric {name!r}"
    guess = closest(name, accepted)
    if guess is not None:
        text += f"; did you mean {guess!r}?"
    return text + "; accepted: " + ", ".join(accepted)


# --------------------------------------------------------------------------- coefficients


def _stack(values: Iterable[Any], k: int) -> np.ndarray:
    """Rows of length-``k`` float vectors; anything else (missing, wrong length) is NaN."""
    values = list(values)
    out = np.full((len(values), k), np.nan)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        try:
            a = np.asarray(v, dtype=float).ravel()
        except (TypeError, ValueError):
            continue
        if a.size == k:
            out[i] = a
    return out


def _coef_count(df: pd.DataFrame) -> dict[str, int]:
    """Number of coefficients (intercept included) per scenario, from ``beta_true``."""
    counts: dict[str, int] = {}
    if "beta_true" not in df.columns:
        return counts
    for sid, v in zip(df["scenario_id"].to_numpy(), df["beta_true"].to_numpy(), strict=True):
        if sid not in counts and v is not None and np.ndim(v) == 1 and np.size(v) > 0:
            counts[sid] = int(np.size(v))
    return counts


def _reference_ok(df: pd.DataFrame) -> np.ndarray:
    if "mle_status" in df.columns:
        return (df["mle_status"].astype(object) == "ok").to_numpy()
    return np.ones(len(df), dtype=bool)


def _var(a: np.ndarray) -> np.ndarray:
    if a.shape[0] < 2:
        return np.full(a.shape[1], np.nan)
    return a.var(axis=0, ddof=1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[~np.isfinite(r)] = np.nan
    return r


def coefficients(df: pd.DataFrame) -> pd.DataFrame:
    """Per-coefficient bias, variance, MSE and efficiencies, one row per (scenario, config, j).

    Returns
    -------
    pandas.DataFrame
        Columns ``scenario_id``, ``config_id``, ``scenario``, ``config``, ``coef`` (index
        ``j``: 0 the intercept), ``name`` (``"intercept"``, ``"x1"``, …), ``n`` (replicates
        with a finite ``β̂``), ``beta_true``, ``mean``, ``bias``, ``bias_se``, ``var``,
        ``sd``, ``mse``, ``mse_se``; then over the ``n_paired`` replicates where the
        reference fit is also usable: ``var_mle``, ``mse_mle``, ``efficiency``,
        ``crb_var`` (mean bound), ``crb_efficiency``, ``mse_efficiency``.  Definitions in
        the module docstring.
    """
    df = _check_results(df)
    df = df.reset_index(drop=True)
    columns = [
        "scenario_id",
        "config_id",
        "scenario",
        "config",
        "coef",
        "name",
        "n",
        "beta_true",
        "mean",
        "bias",
        "bias_se",
        "var",
        "sd",
        "mse",
        "mse_se",
        "n_paired",
        "var_mle",
        "mse_mle",
        "efficiency",
        "crb_var",
        "crb_efficiency",
        "mse_efficiency",
    ]
    if "beta_hat" not in df.columns or "beta_true" not in df.columns:
        return pd.DataFrame(columns=columns)
    k_of = _coef_count(df)
    groups = _groups(df)
    ok_mask = (df["status"].astype(object) == "ok").to_numpy()
    ref_ok = _reference_ok(df)
    positions = _positions(_group_codes(df, groups), len(groups))
    lists = {
        c: df[c].to_numpy(dtype=object) if c in df.columns else np.full(len(df), None)
        for c in ("beta_hat", "beta_true", "beta_mle", "crb_var")
    }
    records = []
    for gi, grow in groups.iterrows():
        key = (grow["scenario_id"], grow["config_id"])
        k = int(k_of.get(grow["scenario_id"], 0))
        pos = positions[gi]
        pos = pos[ok_mask[pos]]
        if k == 0 or pos.size == 0:
            continue
        ref = ref_ok[pos]
        g = {c: v[pos] for c, v in lists.items()}
        hat = _stack(g["beta_hat"], k)
        truth = _stack(g["beta_true"], k)
        use = np.isfinite(hat).all(axis=1) & np.isfinite(truth).all(axis=1)
        err = hat[use] - truth[use]
        n = int(use.sum())
        sq = err**2
        bias = err.mean(axis=0) if n else np.full(k, np.nan)
        var = _var(hat[use])
        mse = sq.mean(axis=0) if n else np.full(k, np.nan)
        root_n = math.sqrt(n) if n else np.nan
        bias_se = np.sqrt(var) / root_n
        mse_se = (sq.std(axis=0, ddof=1) if n > 1 else np.full(k, np.nan)) / root_n

        mle = _stack(g["beta_mle"], k)
        crb = _stack(g["crb_var"], k)
        paired = use & ref & np.isfinite(mle).all(axis=1)
        n_paired = int(paired.sum())
        var_hat_p = _var(hat[paired])
        var_mle = _var(mle[paired])
        mse_mle = ((mle[paired] - truth[paired]) ** 2).mean(axis=0) if n_paired else np.nan
        mse_hat_p = ((hat[paired] - truth[paired]) ** 2).mean(axis=0) if n_paired else np.nan
        crb_ok = paired & np.isfinite(crb).all(axis=1)
        crb_mean = crb[crb_ok].mean(axis=0) if crb_ok.any() else np.full(k, np.nan)
        eff = _ratio(np.broadcast_to(var_mle, (k,)).copy(), var_hat_p)
        crb_eff = _ratio(crb_mean.copy(), var_hat_p)
        mse_eff = _ratio(
            np.broadcast_to(mse_mle, (k,)).astype(float), np.broadcast_to(mse_hat_p, (k,))
        )
        beta_true = truth[use][0] if n else _first_finite(truth)
        for j in range(k):
            records.append(
                {
                    "scenario_id": key[0],
                    "config_id": key[1],
                    "scenario": grow["scenario"],
                    "config": grow["config"],
                    "coef": j,
                    "name": "intercept" if j == 0 else f"x{j}",
                    "n": n,
                    "beta_true": beta_true[j],
                    "mean": hat[use][:, j].mean() if n else np.nan,
                    "bias": bias[j],
                    "bias_se": bias_se[j],
                    "var": var[j],
                    "sd": math.sqrt(var[j]) if np.isfinite(var[j]) else np.nan,
                    "mse": mse[j],
                    "mse_se": mse_se[j],
                    "n_paired": n_paired,
                    "var_mle": np.broadcast_to(var_mle, (k,))[j],
                    "mse_mle": np.broadcast_to(mse_mle, (k,))[j],
                    "efficiency": eff[j],
                    "crb_var": crb_mean[j],
                    "crb_efficiency": crb_eff[j],
                    "mse_efficiency": mse_eff[j],
                }
            )
    return pd.DataFrame.from_records(records, columns=columns)


def _first_finite(a: np.ndarray) -> np.ndarray:
    rows = np.isfinite(a).all(axis=1)
    return a[rows][0] if rows.any() else np.full(a.shape[1], np.nan)


def efficiency(df: pd.DataFrame) -> pd.DataFrame:
    """Efficiency summaries per (scenario, configuration): means over the coefficients.

    Columns ``scenario_id``, ``config_id``, ``scenario``, ``config``, ``efficiency``,
    ``crb_efficiency``, ``mse_efficiency`` (each the mean over ``j`` of the per-coefficient
    value of :func:`coefficients`, NaN if any coefficient's is undefined),
    ``efficiency_min`` (the worst coefficient) and ``n_coef_replicates``.
    """
    coef = coefficients(df)
    cols = [
        "scenario_id",
        "config_id",
        "scenario",
        "config",
        *DERIVED_METRICS,
        "efficiency_min",
        "n_coef_replicates",
    ]
    if coef.empty:
        return pd.DataFrame(columns=cols)
    keys = ["scenario_id", "config_id", "scenario", "config"]
    g = coef.groupby(keys, sort=False)
    # mean(skipna=False): a coefficient without an efficiency makes the summary undefined
    out = g[list(DERIVED_METRICS)].agg(lambda s: s.mean(skipna=False)).reset_index()
    out["efficiency_min"] = g["efficiency"].agg(lambda s: s.min(skipna=False)).to_numpy()
    out["n_coef_replicates"] = g["n_paired"].first().to_numpy()
    return out[cols]


# --------------------------------------------------------------------------- coverage


def coverage(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Coverage of the reference fit's Wald intervals, per (scenario, coefficient).

    Parameters
    ----------
    df : pandas.DataFrame
        Result rows.
    level : float
        Nominal coverage of the intervals ``β_MLE,j ± z se_j``, ``z = Φ⁻¹((1 + level)/2)``.

    Returns
    -------
    pandas.DataFrame
        Columns ``scenario_id``, ``scenario``, ``coef``, ``name``, ``n`` (groups with a usable
        reference fit), ``coverage_model``, ``coverage_model_se``, ``coverage_sandwich``,
        ``coverage_sandwich_se`` (binomial MC SE ``√(c(1−c)/n)``), ``sd_mle`` (Monte Carlo
        sd of ``β_MLE,j``), ``se_model`` and ``se_sandwich`` (mean reported standard
        errors, to compare with ``sd_mle``).
    """
    from scipy.stats import norm

    df = _check_results(df)
    if not 0.0 < level < 1.0:
        raise ValidationError(f"coverage level must be in (0, 1), got {level!r}")
    cols = [
        "scenario_id",
        "scenario",
        "coef",
        "name",
        "n",
        "coverage_model",
        "coverage_model_se",
        "coverage_sandwich",
        "coverage_sandwich_se",
        "sd_mle",
        "se_model",
        "se_sandwich",
    ]
    need = ("beta_mle", "beta_true", "mle_se")
    if any(c not in df.columns for c in need):
        return pd.DataFrame(columns=cols)
    z = float(norm.ppf(0.5 + level / 2.0))
    k_of = _coef_count(df)
    labels = scenario_labels(df)
    ref_ok = _reference_ok(df)
    records = []
    usable = df[ref_ok]
    rep = "replicate" if "replicate" in df.columns else None
    for sid in labels.index:
        k = int(k_of.get(sid, 0))
        g = usable[usable["scenario_id"] == sid]
        if k == 0 or g.empty:
            continue
        mle = _stack(g["beta_mle"], k)
        truth = _stack(g["beta_true"], k)
        se_m = _stack(g["mle_se"], k)
        if "mle_se_sandwich" in g:
            se_s = _stack(g["mle_se_sandwich"], k)
        else:
            se_s = np.full((len(g), k), np.nan)
        good = np.isfinite(mle).all(axis=1) & np.isfinite(truth).all(axis=1)
        good &= np.isfinite(se_m).all(axis=1)
        # one row per group: the reference fit is shared by the cells of a replicate
        groups_of = g[rep].to_numpy() if rep is not None else np.arange(len(g))
        seen: set = set()
        for i, r in enumerate(groups_of):
            if good[i]:
                if r in seen:
                    good[i] = False
                else:
                    seen.add(r)
        mle, truth, se_m, se_s = mle[good], truth[good], se_m[good], se_s[good]
        n = mle.shape[0]
        if n == 0:
            continue
        dev = np.abs(mle - truth)
        cov_m = (dev <= z * se_m).mean(axis=0)
        s_ok = np.isfinite(se_s).all(axis=1)
        n_s = int(s_ok.sum())
        cov_s = (dev[s_ok] <= z * se_s[s_ok]).mean(axis=0) if n_s else np.full(k, np.nan)
        sd_mle = mle.std(axis=0, ddof=1) if n > 1 else np.full(k, np.nan)
        for j in range(k):
            records.append(
                {
                    "scenario_id": sid,
                    "scenario": labels[sid],
                    "coef": j,
                    "name": "intercept" if j == 0 else f"x{j}",
                    "n": n,
                    "coverage_model": cov_m[j],
                    "coverage_model_se": math.sqrt(cov_m[j] * (1 - cov_m[j]) / n),
                    "coverage_sandwich": cov_s[j],
                    "coverage_sandwich_se": (
                        math.sqrt(cov_s[j] * (1 - cov_s[j]) / n_s) if n_s else np.nan
                    ),
                    "sd_mle": sd_mle[j],
                    "se_model": se_m[:, j].mean(),
                    "se_sandwich": se_s[s_ok][:, j].mean() if n_s else np.nan,
                }
            )
    return pd.DataFrame.from_records(records, columns=cols)
