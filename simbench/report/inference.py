"""Inference on coefficients across replicates: bias, variance, MSE, efficiencies, coverage.

Per coefficient ``j`` (:func:`coefficients`), over the replicates whose ``β̂`` is finite
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
The per-configuration summaries (:func:`efficiency`, and the ``efficiency``,
``crb_efficiency`` and ``mse_efficiency`` columns of
:func:`~simbench.report.summary.aggregate`) are the means over the coefficients
(intercept included).

Coverage of the reference fit (:func:`coverage`)
------------------------------------------------
The reference MLE is shared by every configuration of a (scenario, replicate) group, so it
is counted once per group, over the groups whose ``mle_status`` is ``"ok"``.  The Wald
interval ``β_MLE,j ± z_{1−α/2} se_j`` (``z`` the exact normal quantile, 1.959964 for 95%)
covers when ``|β_MLE,j − β*_j| ≤ z se_j``; coverage is the fraction of groups that cover,
with binomial Monte Carlo standard error ``√(c (1 − c) / R)``; model-based ``se`` is
``mle_se`` and sandwich ``se`` is ``mle_se_sandwich``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from .frame import DERIVED_METRICS, check_results, group_codes, group_positions
from .labels import group_table, scenario_labels

__all__ = [
    "COEFFICIENT_COLUMNS",
    "coef_count",
    "coefficients",
    "coverage",
    "efficiency",
    "stack_vectors",
]

#: the columns :func:`coefficients` and :func:`efficiency` read besides the ids, the status
#: and what labels the groups (:func:`~simbench.report.labels.group_table`)
COEFFICIENT_COLUMNS = ("beta_hat", "beta_true", "beta_mle", "crb_var", "mle_status")


def stack_vectors(values: Iterable[Any], k: int) -> np.ndarray:
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


def coef_count(df: pd.DataFrame) -> dict[str, int]:
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
    df = check_results(df)
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
    k_of = coef_count(df)
    groups = group_table(df)
    ok_mask = (df["status"].astype(object) == "ok").to_numpy()
    ref_ok = _reference_ok(df)
    positions = group_positions(group_codes(df, groups), len(groups))
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
        hat = stack_vectors(g["beta_hat"], k)
        truth = stack_vectors(g["beta_true"], k)
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

        mle = stack_vectors(g["beta_mle"], k)
        crb = stack_vectors(g["crb_var"], k)
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

    df = check_results(df)
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
    k_of = coef_count(df)
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
        mle = stack_vectors(g["beta_mle"], k)
        truth = stack_vectors(g["beta_true"], k)
        se_m = stack_vectors(g["mle_se"], k)
        if "mle_se_sandwich" in g:
            se_s = stack_vectors(g["mle_se_sandwich"], k)
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
