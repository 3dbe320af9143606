"""Readable labels of scenarios and configurations, and the table of (scenario, config) groups.

A scenario is named by the parameters that vary across the results (``"poisson, n=1000"``),
leaving out those that do not apply to it (the dispersion of a Poisson scenario, ``rho`` of
an iid design: the same keys :class:`simbench.data.Scenario` resets); a configuration by
the sweep's own label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import families
from .frame import check_results, first_per, order_keys

__all__ = [
    "config_labels",
    "format_param",
    "group_table",
    "hashable",
    "scenario_labels",
    "unique_labels",
    "varying_params",
]


def hashable(v: Any) -> Any:
    """A hashable, comparable stand-in for a cell value (lists and arrays become tuples)."""
    if isinstance(v, np.ndarray):
        return tuple(hashable(x) for x in v.tolist())
    if isinstance(v, (list, tuple)):
        return tuple(hashable(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def format_param(v: Any) -> str:
    """A scenario/config parameter value as a short readable string."""
    v = hashable(v)
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
        values = {hashable(v) for v in first[c]}
        if len(values) > 1:
            out.append(c)
    return out


# the scenario keys that do not need "key=" in front of their value


# the scenario keys that do not need "key=" in front of their value
_BARE_SCENARIO_KEYS = ("s_family",)


def _family(row: Any) -> families.FamilySpec | None:
    """The vocabulary entry of a row's ``s_family``, or None when it names no family."""
    try:
        return families.get(str(row.get("s_family"))).entry
    except (ValueError, KeyError):
        return None


def _holds_parameter(name: str) -> Callable[[Any], bool]:
    def applies(row: Any) -> bool:
        fam = _family(row)
        return fam is not None and fam.parameter is not None and fam.parameter.name == name

    return applies


def _has_dispersion(row: Any) -> bool:
    fam = _family(row)
    return True if fam is None else fam.has_dispersion


def _reads_mean(row: Any) -> bool:
    fam = _family(row)
    return fam is None or not fam.is_binary or row.get("s_beta") is not None


# when a scenario key reads at all (mirrors Scenario's reset of inapplicable keys): a label
# does not mention the dispersion of a Poisson scenario even if other scenarios vary it
_APPLIES: dict[str, Callable[[Any], bool]] = {
    **{f"s_{p.name}": _holds_parameter(p.name) for p in families.PARAMETERS},
    "s_trials": lambda r: r.get("s_family") == "binomial",
    "s_dispersion": _has_dispersion,
    "s_mean": _reads_mean,
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
    df = check_results(df)
    varying = [c for c in varying_params(df, "s_") if c not in exclude]
    first = df.drop_duplicates("scenario_id").set_index("scenario_id")
    if "s_link" in varying and "s_family" in varying:
        # the link adds nothing when each family comes with one link (e.g. canonical)
        pairs = {
            (hashable(f), hashable(lk))
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
    return labels if exclude else unique_labels(labels)


def config_labels(df: pd.DataFrame) -> pd.Series:
    """Readable configuration labels indexed by ``config_id``.

    The sweep's own label (``config_label``: the name, plus grid values where names
    repeat), else ``c_name``, else the id.
    """
    df = check_results(df)
    first = df.drop_duplicates("config_id").set_index("config_id")
    for col in ("config_label", "c_name"):
        if col in first.columns:
            labels = first[col].astype(object)
            labels = labels.where(labels.notna() & (labels.astype(str) != ""), None)
            fallback = pd.Series(first.index.astype(str), index=first.index, dtype=object)
            return unique_labels(labels.fillna(fallback).astype(str).astype(object))
    return pd.Series(first.index.astype(str), index=first.index, dtype=object)


def unique_labels(labels: pd.Series) -> pd.Series:
    """Disambiguate repeated labels with ``#2``, ``#3`` (never two columns with one name)."""
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    return pd.Series(out, index=labels.index, dtype=object)


def group_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario_id, config_id) in sweep order, with labels and parameters."""
    order = order_keys(df)
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
    s_first = first_per(df, "scenario_id", ["scenario_index", *s_cols])
    c_first = first_per(df, "config_id", ["config_index", *c_cols])
    for c in s_first.columns:
        out[c] = s_first[c].reindex(keys["scenario_id"]).to_numpy()
    for c in c_first.columns:
        out[c] = c_first[c].reindex(keys["config_id"]).to_numpy()
    return out
