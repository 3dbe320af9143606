"""The crossover: from which training size on a network beats the GLM.

When the truth is not a GLM, the GLM's excess deviance levels off at its floor (the
``misspec_floor`` of its best approximation) while a flexible network's keeps falling, so
beyond some sample size the network wins.  Per panel (a scenario without ``n``: family,
link, non-linearity, design, ...) and per network, :func:`crossover` finds the smallest ``n``
at which the network's metric is below the GLM's by more than the Monte Carlo error.

The comparison is paired: a network and the GLM of one replicate were fitted to the same
data, so the difference is taken replicate by replicate, and "by more than the Monte Carlo
error" means that the mean difference plus ``Z`` times its standard error (sd/sqrt(R)) is
still below 0 (one-sided, about 97.5 %).  Only replicates where both cells finished ok count.

The GLM is the configuration fitted by ``irls`` (the reference fit as a network), else the
first configuration without hidden layers whose output and loss are the matched ones; the
networks are the configurations with hidden layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ValidationError

__all__ = ["Z", "crossover", "crossover_columns", "glm_config"]

# the mean paired difference must be below 0 by this many standard errors
Z = 1.96

# what the crossover reads besides its metric and the scenario parameters (panels are
# labelled by those that vary): the ids, pairs, statuses and what finds the GLM
_CROSSOVER_COLUMNS = frozenset(
    {
        "scenario_id",
        "config_id",
        "config_label",
        "scenario_index",
        "config_index",
        "replicate",
        "status",
        "misspec_floor",
        "c_name",
        "c_optimizer",
        "c_hidden",
        "c_output",
        "c_loss",
    }
)


def crossover_columns(columns: Sequence[str], metric: str) -> list[str]:
    """The names among ``columns`` that :func:`crossover` reads for ``metric``, in order.

    ``crossover(df[crossover_columns(df.columns, metric)], metric)`` is
    ``crossover(df, metric)``: a command loads only these columns.
    """
    return [c for c in columns if c in _CROSSOVER_COLUMNS or c == metric or c.startswith("s_")]


def _hidden(value) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return len(list(value)) > 0


def _by_config(df: pd.DataFrame, column: str) -> dict[str, object]:
    return df.groupby("config_id", sort=False)[column].first().to_dict()


def glm_config(df: pd.DataFrame, reference: str | None = None) -> str | None:
    """The ``config_id`` of the GLM to compare with (see the module notes), or None.

    ``reference`` names it instead (a configuration name or id)."""
    from .labels import config_labels

    labels = config_labels(df)
    if reference is not None:
        for cid, label in labels.items():
            if reference in (cid, label) or reference == _by_config(df, "c_name").get(cid):
                return cid
        raise ValidationError(
            f"no configuration {reference!r} to compare with; the configurations are: "
            + ", ".join(labels.tolist())
        )
    if "c_optimizer" not in df.columns:
        return None
    optim = _by_config(df, "c_optimizer")
    for cid in labels.index:
        if optim.get(cid) == "irls":
            return cid
    hidden = _by_config(df, "c_hidden") if "c_hidden" in df.columns else {}
    output = _by_config(df, "c_output") if "c_output" in df.columns else {}
    loss = _by_config(df, "c_loss") if "c_loss" in df.columns else {}
    for cid in labels.index:
        if not _hidden(hidden.get(cid)) and output.get(cid, "matched") == "matched":
            if loss.get(cid, "matched") == "matched":
                return cid
    return None


def crossover(
    df: pd.DataFrame, metric: str = "excess_deviance", reference: str | None = None
) -> pd.DataFrame:
    """Per panel and network: the smallest ``n`` at which it beats the GLM on ``metric``.

    Parameters
    ----------
    df : pandas.DataFrame
        Results (:func:`simbench.load`) with ``s_n``.
    metric : str
        A metric where lower is better (default ``excess_deviance``).
    reference : str, optional
        The configuration to compare with (name or id); default :func:`glm_config`.

    Returns
    -------
    pandas.DataFrame
        One row per (panel, network): ``panel``, ``config``, ``crossover_n`` (NaN when the
        network does not beat the GLM at any ``n`` studied), ``verdict`` (a sentence),
        ``n_max``, ``difference`` and ``difference_se`` (network minus GLM at ``n_max``,
        mean and standard error over the paired replicates), ``replicates`` (pairs at
        ``n_max``), ``glm_floor`` (mean ``misspec_floor`` at ``n_max``, NaN without it).
        Empty when there is no GLM, no network or fewer than two values of ``n``.
    """
    from .figures import _panels_without_n
    from .frame import numeric_values
    from .labels import config_labels

    columns = ["panel", "config", "crossover_n", "verdict", "n_max", "difference",
               "difference_se", "replicates", "glm_floor"]  # fmt: skip
    empty = pd.DataFrame(columns=columns)
    if metric not in df.columns:
        raise ValidationError(f"no column {metric!r} in these results")
    if "s_n" not in df.columns or pd.to_numeric(df["s_n"], errors="coerce").nunique() < 2:
        return empty
    glm = glm_config(df, reference)
    if glm is None:
        return empty
    hidden = _by_config(df, "c_hidden") if "c_hidden" in df.columns else {}
    labels = config_labels(df)
    networks = [cid for cid in labels.index if cid != glm and _hidden(hidden.get(cid))]
    if not networks:
        return empty

    ok = df[(df["status"].astype(object) == "ok").to_numpy()]
    frame = pd.DataFrame(
        {
            "scenario_id": ok["scenario_id"].to_numpy(),
            "config_id": ok["config_id"].to_numpy(),
            "replicate": ok["replicate"].to_numpy(),
            "n": pd.to_numeric(ok["s_n"]).to_numpy(dtype=float),
            "v": numeric_values(ok[metric]),
        }
    )
    if "misspec_floor" in ok.columns:
        frame["floor"] = numeric_values(ok["misspec_floor"])
    else:
        frame["floor"] = np.nan
    frame = frame[np.isfinite(frame["v"].to_numpy())]
    panel_of = _panels_without_n(df)
    frame["panel"] = panel_of.reindex(frame["scenario_id"]).to_numpy()
    base = frame[frame["config_id"] == glm][["scenario_id", "replicate", "v", "floor"]]

    rows = []
    for panel in dict.fromkeys(panel_of.reindex(df["scenario_id"].unique()).tolist()):
        sub = frame[frame["panel"] == panel]
        for cid in networks:
            net = sub[sub["config_id"] == cid]
            pairs = net.merge(base, on=["scenario_id", "replicate"], suffixes=("", "_glm"))
            if pairs.empty:
                continue
            pairs["d"] = pairs["v"] - pairs["v_glm"]
            per_n = pairs.groupby("n").agg(
                mean=("d", "mean"), sd=("d", "std"), k=("d", "size"), floor=("floor_glm", "mean")
            )
            per_n = per_n.sort_index()
            se = per_n["sd"] / np.sqrt(per_n["k"])
            wins = (per_n["k"] >= 2) & (per_n["mean"] + Z * se < 0)
            n_max = float(per_n.index[-1])
            first = float(per_n.index[wins.to_numpy()][0]) if wins.any() else math.nan
            lo, hi = float(per_n.index[0]), n_max
            name = labels[cid]
            if math.isnan(first):
                verdict = f"{name}: not within the n studied ({lo:g} to {hi:g})"
            else:
                verdict = f"{name} beats the GLM from n = {first:g}"
            rows.append(
                {
                    "panel": panel,
                    "config": name,
                    "crossover_n": first,
                    "verdict": verdict,
                    "n_max": n_max,
                    "difference": float(per_n["mean"].iloc[-1]),
                    "difference_se": float(se.iloc[-1]),
                    "replicates": int(per_n["k"].iloc[-1]),
                    "glm_floor": float(per_n["floor"].iloc[-1]),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def crossover_markdown(table: pd.DataFrame, metric: str, glm_label: str) -> str:
    """The crossover table in Markdown, with a one-line caption."""
    from .markdown import md_table
    from .tables import format_number

    def number(x: float, err: float | None = None) -> str:
        if not math.isfinite(x):
            return "—"
        num = format_number(x, err if err is not None and math.isfinite(err) else None)
        body = num.value if num.error is None else f"{num.value} ± {num.error}"
        return body if num.exponent is None else f"({body})e{num.exponent}"

    head = [
        f"{metric}: the smallest n at which each network is below the GLM ({glm_label}) by "
        f"more than {Z:g} Monte Carlo standard errors of the paired difference (ok replicates "
        "of both).",
        "",
    ]
    rows: list[Sequence[object]] = []
    for rec in table.to_dict(orient="records"):
        n = rec["crossover_n"]
        rows.append(
            [
                rec["panel"],
                rec["config"],
                f"{n:g}" if math.isfinite(n) else f"not within the n studied (to {rec['n_max']:g})",
                number(rec["difference"], rec["difference_se"]),
                number(rec["glm_floor"]),
            ]
        )
    header = ["scenario", "network", "crossover n", "network − GLM at the largest n",
              "GLM floor (misspec_floor)"]  # fmt: skip
    return "\n".join(head) + md_table(header, rows, align="llrrr")
