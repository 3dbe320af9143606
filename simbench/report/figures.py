"""Figures of a results table (matplotlib, drawn off-screen).

Every function takes the result rows of :func:`simbench.load` and returns a
:class:`matplotlib.figure.Figure`, or ``None`` when the results hold nothing to draw (a
single ``n``, no recorded histories, no coefficients).  Figures are built with the
object-oriented API on an Agg canvas, never through :mod:`matplotlib.pyplot`, so drawing a
report neither needs a display nor changes the backend of an interactive session.

Reference line of the excess deviance
-------------------------------------
``excess_deviance`` is the mean over the reference sample of ``w d(μ*, μ̂)/φ``.  A second-
order expansion of the unit deviance around ``μ*`` gives ``d(μ*, μ̂)/φ ≈ w (μ̂ − μ*)² /
(φ V(μ*)) = w h′(η*)² (η̂ − η*)² / (φ V(μ*))``, and with ``η̂ − η* = x̃ᵀ(β̂ − β*)`` its
mean over the population of covariates is ``(β̂ − β*)ᵀ (I_n/n) (β̂ − β*)``, ``I_n`` the
Fisher information of ``n`` observations.  For the MLE ``(β̂ − β*)ᵀ I_n (β̂ − β*) → χ²_k``
with ``k = p + 1`` coefficients (intercept included), so ``E[excess_deviance] ≈ (p+1)/n``
— SCIENCE.md's "≈ p/n" with ``p`` counting every coefficient.  The figure draws
``k/n`` with ``k`` read from the length of ``beta_true``.

For ``coef_err_truth = ‖β̂ − β*‖/‖β*‖`` the reference is the Cramér–Rao value
``√(Σ_j [I_n(β*)⁻¹]_jj) / ‖β*‖`` (the ``crb_var`` column, averaged over replicates): the
root-mean-square error of an efficient estimator, relative to ‖β*‖.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .frame import numeric_values
from .inference import coef_count, efficiency, stack_vectors
from .labels import config_labels, scenario_labels
from .summary import aggregate

__all__ = [
    "balance_figure",
    "convergence_figure",
    "efficiency_figure",
    "metric_vs_n_figure",
    "save_figure",
]

_MAX_PANELS = 9
_PANEL_W, _PANEL_H = 4.0, 3.2
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_METRIC_TITLES = {
    "excess_deviance": "excess deviance (mean d(μ*, μ̂)/φ)",
    "coef_err_truth": "‖β̂ − β*‖ / ‖β*‖",
    "coef_z_mle": "distance to β_MLE (SE units)",
    "fit_seconds": "fit time (s)",
}


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", dpi=110)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _grid(fig, n: int, sharey: bool = False):
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return flat[:n], nrows, ncols


def _plain_log_ticks(axis, values: Sequence[float] | None = None) -> None:
    """Readable ticks on a log axis: at ``values`` if given, else at 1-2-5 steps.

    Matplotlib's default minor labels (``3×10², 4×10², …``) collide on short ranges.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    if values is not None:
        axis.set_major_locator(FixedLocator(sorted(set(values))))
    else:
        axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def _steps_125(top: float) -> list[float]:
    """1, 2, 5, 10, 20, … up to ``top``."""
    out, base = [], 1.0
    while base <= top:
        out += [v for v in (base, 2 * base, 5 * base) if v <= top]
        base *= 10
    return out


def _tidy_log_y(ax) -> None:
    """1-2-5 plain labels on a log y axis spanning less than two decades."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 100:
        _plain_log_ticks(ax.yaxis)
        ax.set_ylim(lo, hi)


def _ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    out = df[(df["status"].astype(object) == "ok").to_numpy()]
    out = out.copy(deep=False)
    out.attrs = {}
    return out


def _config_order(df: pd.DataFrame) -> list[str]:
    labels = config_labels(df)
    return list(dict.fromkeys(labels.to_numpy()))


def save_figure(fig, path: str | Path, pdf: bool = False) -> list[Path]:
    """Write ``fig`` as PNG at ``path`` (``.png`` added), and as PDF next to it if asked.

    Each file is written to a temporary name and renamed into place, so a full or
    read-only disk leaves the previous file (or none), never an empty or half-written one,
    and raises :class:`~simbench.sweep.store.DiskError` naming the path.
    """
    from ..sweep.store import atomic_write_with, ensure_directory

    path = Path(path).with_suffix(".png")
    ensure_directory(path.parent)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=fig.dpi, format="png"))
    out = [path]
    if pdf:
        pdf_path = path.with_suffix(".pdf")
        atomic_write_with(pdf_path, lambda tmp: fig.savefig(tmp, format="pdf"))
        out.append(pdf_path)
    return out


# --------------------------------------------------------------------------- metric vs n


def _panels_without_n(df: pd.DataFrame) -> pd.Series:
    """Panel label per scenario_id: the scenario label without ``n``."""
    if "s_n" not in df.columns:
        return pd.Series(dtype=object)
    cols = [c for c in df.columns if c in ("s_n_test",)]
    return scenario_labels(df, exclude=("s_n", *cols))


def _reference_line(ok: pd.DataFrame, metric: str, sids: Sequence[str]):
    """``(n values, reference values, label)`` for the panel's scenarios, or None."""
    k_of = coef_count(ok)
    ns, refs = [], []
    for sid in sids:
        rows = ok[ok["scenario_id"] == sid]
        if rows.empty or sid not in k_of:
            continue
        n = float(rows["s_n"].iloc[0])
        k = k_of[sid]
        if metric == "excess_deviance":
            refs.append(k / n)
        elif metric == "coef_err_truth" and "crb_var" in rows:
            crb = stack_vectors(rows["crb_var"], k)
            truth = stack_vectors(rows["beta_true"], k)
            good = np.isfinite(crb).all(axis=1) & np.isfinite(truth).all(axis=1)
            if not good.any():
                continue
            norm = np.linalg.norm(truth[good][0])
            if norm == 0:
                continue
            refs.append(math.sqrt(crb[good].mean(axis=0).sum()) / norm)
        else:
            return None
        ns.append(n)
    if len(ns) < 2:
        return None
    order = np.argsort(ns)
    label = {
        "excess_deviance": "MLE theory (p+1)/n",
        "coef_err_truth": "Cramér–Rao √tr I⁻¹ / ‖β*‖",
    }[metric]
    return np.asarray(ns)[order], np.asarray(refs)[order], label


def _floor_line(ok: pd.DataFrame, sids: Sequence[str]):
    """``(n values, mean misspec_floor, label)`` for the panel's scenarios where the GLM
    cannot reach the truth (a positive floor), or None."""
    if "misspec_floor" not in ok.columns:
        return None
    ns, floors = [], []
    for sid in sids:
        rows = ok[ok["scenario_id"] == sid]
        values = numeric_values(rows["misspec_floor"]) if not rows.empty else np.array([])
        values = values[np.isfinite(values)]
        if values.size:
            ns.append(float(rows["s_n"].iloc[0]))
            floors.append(float(values.mean()))
    if len(ns) < 2 or not max(floors) > 0:
        return None
    order = np.argsort(ns)
    return np.asarray(ns)[order], np.asarray(floors)[order], "GLM floor (misspec_floor)"


def metric_vs_n_figure(df: pd.DataFrame, metric: str = "excess_deviance"):
    """``metric`` (mean ± MC SE over replicates) against ``n`` on log–log axes.

    One panel per scenario without ``n`` (family, design, …), one line per configuration,
    and the MLE's reference line where there is one (``excess_deviance``: ``(p+1)/n``;
    ``coef_err_truth``: the Cramér–Rao value; see the module docstring).  ``None`` when
    ``n`` takes fewer than two values or nothing positive is left to draw.
    """
    if "s_n" not in df.columns or metric not in df.columns:
        return None
    agg = aggregate(df, metrics=[metric])
    agg = agg[np.isfinite(agg[f"{metric}_mean"]) & (agg[f"{metric}_mean"] > 0)]
    if agg.empty or pd.to_numeric(agg["s_n"]).nunique() < 2:
        return None
    panel_of = _panels_without_n(df)
    agg = agg.assign(panel=panel_of.reindex(agg["scenario_id"]).to_numpy())
    panels = list(dict.fromkeys(agg["panel"]))[:_MAX_PANELS]
    configs = _config_order(df)
    colors = dict(zip(configs, _colors(len(configs)), strict=True))
    markers = {c: _MARKERS[i % len(_MARKERS)] for i, c in enumerate(configs)}
    ok = _ok_rows(df)

    fig = _new_figure(_PANEL_W * min(3, len(panels)) + 2.2, _PANEL_H * math.ceil(len(panels) / 3))
    axes, _, _ = _grid(fig, len(panels))
    handles: dict[str, object] = {}
    for ax, panel in zip(axes, panels, strict=True):
        sub = agg[agg["panel"] == panel]
        for config in configs:
            line = sub[sub["config"] == config].sort_values("s_n")
            if line.empty:
                continue
            n = pd.to_numeric(line["s_n"]).to_numpy(dtype=float)
            mean = line[f"{metric}_mean"].to_numpy(dtype=float)
            se = np.nan_to_num(line[f"{metric}_se"].to_numpy(dtype=float))
            lower = np.minimum(se, mean * 0.95)  # keep error bars above 0 on a log axis
            h = ax.errorbar(
                n,
                mean,
                yerr=[lower, se],
                color=colors[config],
                marker=markers[config],
                markersize=5,
                linewidth=1.5,
                capsize=2,
                label=config,
            )
            handles.setdefault(config, h)
        sids = list(dict.fromkeys(sub["scenario_id"]))
        floor = _floor_line(ok, sids) if metric == "excess_deviance" else None
        if floor is not None:
            (h,) = ax.plot(floor[0], floor[1], "k:", linewidth=1.4, label=floor[2], zorder=1)
            handles.setdefault(floor[2], h)
        ref = _reference_line(ok, metric, sids)
        if ref is not None and floor is None:  # (p+1)/n is the MLE's only when the GLM is true
            (h,) = ax.plot(ref[0], ref[1], "k--", linewidth=1.2, label=ref[2], zorder=1)
            handles.setdefault(ref[2], h)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis, pd.to_numeric(sub["s_n"]).astype(float).tolist())
        _tidy_log_y(ax)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("n (training observations)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[:: min(3, len(panels))]:
        ax.set_ylabel(metric)
    title = _METRIC_TITLES.get(metric, metric)
    fig.suptitle(f"{title} against n (mean ± Monte Carlo SE)", fontsize=11)
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside right upper", fontsize=9)
    return fig


# --------------------------------------------------------------------------- convergence


def _histories(values: Sequence, floor: float) -> np.ndarray | None:
    """Histories as rows of one matrix, each carried forward past its last epoch."""
    rows = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        a = np.asarray(v, dtype=float).ravel()
        a = a[np.isfinite(a)]
        if a.size:
            rows.append(a)
    if not rows:
        return None
    length = max(r.size for r in rows)
    out = np.empty((len(rows), length))
    for i, r in enumerate(rows):
        out[i, : r.size] = r
        out[i, r.size :] = r[-1]  # a run that stopped early stays where it stopped
    return np.maximum(out, floor)


def convergence_figure(df: pd.DataFrame, floor: float = 1e-10):
    """Distance to the MLE in standard-error units against the epoch.

    From the ``history_dist`` column (recorded when the sweep sets ``record_history``),
    whose entry ``e`` is the distance after epoch ``e`` (entry 0: the initial weights):
    per configuration the median over replicates with the 25–75% band; a history that
    ended early (converged, early stopping) is carried forward at its last value; a
    history of one entry (a closed-form fit such as ``irls``) has no curve.  The epoch axis
    is linear from 0 to 1 and logarithmic beyond ("symlog"), so epoch 0 is shown.  One
    panel per scenario (the largest ``n`` of each scenario family when there are many).
    The dotted line at 1 is one standard error: below it the optimiser is closer to the
    MLE than the MLE is to the truth.  ``None`` without histories.
    """
    if "history_dist" not in df.columns:
        return None
    ok = _ok_rows(df)
    has = ok["history_dist"].map(lambda v: v is not None and np.size(v) > 1)
    ok = ok[has.to_numpy(dtype=bool)]
    if ok.empty:
        return None
    labels = scenario_labels(df)
    sids = list(dict.fromkeys(ok["scenario_id"]))
    if len(sids) > _MAX_PANELS and "s_n" in ok.columns:
        panel_of = _panels_without_n(df)
        largest: dict[str, tuple[float, str]] = {}
        for sid in sids:
            n = float(ok.loc[ok["scenario_id"] == sid, "s_n"].iloc[0])
            p = panel_of.get(sid, sid)
            if p not in largest or n > largest[p][0]:
                largest[p] = (n, sid)
        sids = [sid for sid in sids if any(sid == v[1] for v in largest.values())]
    sids = sids[:_MAX_PANELS]
    configs = _config_order(df)
    colors = dict(zip(configs, _colors(len(configs)), strict=True))
    c_lab = config_labels(df)
    ok = ok.assign(_config=c_lab.reindex(ok["config_id"]).to_numpy())

    fig = _new_figure(_PANEL_W * min(3, len(sids)) + 2.2, _PANEL_H * math.ceil(len(sids) / 3))
    axes, _, ncols = _grid(fig, len(sids))
    handles: dict[str, object] = {}
    for ax, sid in zip(axes, sids, strict=True):
        sub = ok[ok["scenario_id"] == sid]
        longest = 0
        for config in configs:
            h = _histories(sub.loc[sub["_config"] == config, "history_dist"], floor)
            if h is None or h.shape[1] < 2:
                continue
            epochs = np.arange(h.shape[1])
            longest = max(longest, h.shape[1] - 1)
            q25, med, q75 = np.quantile(h, [0.25, 0.5, 0.75], axis=0)
            (line,) = ax.plot(epochs, med, color=colors[config], linewidth=1.6, label=config)
            ax.fill_between(epochs, q25, q75, color=colors[config], alpha=0.2, linewidth=0)
            handles.setdefault(config, line)
        ref = ax.axhline(1.0, color="k", linestyle=":", linewidth=1.0, label="1 standard error")
        handles.setdefault("1 standard error", ref)
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
        ax.set_yscale("log")
        ax.set_xlim(0, max(longest, 1) * 1.05)
        # a few epochs: every epoch is a tick; more: 0 and 1-2-5 steps
        ticks = [0, *_steps_125(longest)] if longest > 12 else list(range(longest + 1))
        _plain_log_ticks(ax.xaxis, ticks)
        _tidy_log_y(ax)
        ax.set_title(labels.get(sid, sid), fontsize=10)
        ax.set_xlabel("epoch (0: initial weights)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[::ncols]:
        ax.set_ylabel("distance to β_MLE (SE units)")
    fig.suptitle("Convergence to the MLE: median over replicates, 25–75% band", fontsize=11)
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside right upper", fontsize=9)
    return fig


# --------------------------------------------------------------------------- efficiency


def efficiency_figure(df: pd.DataFrame):
    """Efficiency per configuration, one marker per scenario, log scale.

    Left: against the MLE, ``Var_MC(β_MLE,j) / Var_MC(β̂_j)``; right: against the
    Cramér–Rao bound, ``[I_n(β*)⁻¹]_jj / Var_MC(β̂_j)``; both averaged over the
    coefficients (:func:`~simbench.report.aggregate.efficiency`).  The line at 1 is the
    MLE (left) and the bound (right).  ``None`` when no efficiency is defined.
    """
    eff = efficiency(df)
    if eff.empty:
        return None
    eff = eff[np.isfinite(eff["efficiency"]) | np.isfinite(eff["crb_efficiency"])]
    if eff.empty:
        return None
    configs = [c for c in _config_order(df) if c in set(eff["config"])]
    scenarios = list(dict.fromkeys(eff["scenario"]))
    colors = dict(zip(scenarios, _colors(len(scenarios)), strict=True))
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(scenarios)}
    y_of = {c: i for i, c in enumerate(configs)}
    spread = 0.6
    offset = {
        s: (i - (len(scenarios) - 1) / 2) * (spread / max(len(scenarios), 1))
        for i, s in enumerate(scenarios)
    }

    height = max(2.6, 0.45 * len(configs) + 1.4)
    fig = _new_figure(10.5, height)
    axes = fig.subplots(1, 2, sharey=True)
    handles: dict[str, object] = {}
    titles = ("against the MLE: Var(β_MLE) / Var(β̂)", "against the Cramér–Rao bound")
    for ax, col, title in zip(axes, ("efficiency", "crb_efficiency"), titles, strict=True):
        values = eff[col].to_numpy(dtype=float)
        finite = values[np.isfinite(values) & (values > 0)]
        for s in scenarios:
            sub = eff[eff["scenario"] == s]
            v = sub[col].to_numpy(dtype=float)
            good = np.isfinite(v) & (v > 0)
            y = np.array([y_of[c] + offset[s] for c in sub["config"]])
            h = ax.scatter(
                v[good],
                y[good],
                color=colors[s],
                marker=markers[s],
                s=30,
                label=s,
                zorder=3,
            )
            handles.setdefault(s, h)
        ax.axvline(1.0, color="k", linestyle="--", linewidth=1.0, zorder=1)
        ax.set_xscale("log")
        if finite.size:
            lo, hi = finite.min(), finite.max()
            ax.set_xlim(min(lo, 0.8) / 1.3, max(hi, 1.25) * 1.3)
        _plain_log_ticks(ax.xaxis)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("efficiency (mean over coefficients)")
        ax.grid(True, axis="x", which="major", alpha=0.3)
    axes[0].set_yticks(range(len(configs)), configs)
    axes[0].set_ylim(len(configs) - 0.5, -0.5)
    fig.suptitle("Efficiency per configuration (1 = as efficient as the reference)", fontsize=11)
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside right upper",
        fontsize=8,
        title="scenario",
        title_fontsize=9,
    )
    return fig


# --------------------------------------------------------------------------- balance


def balance_figure(df: pd.DataFrame, seed: int = 0):
    """Distribution of the balance ``Σ w μ̂ / Σ w y − 1`` per configuration.

    Horizontal box plots over the ok replicates of every scenario, with each replicate as a
    point coloured by scenario (jittered vertically; the jitter is seeded so the figure is
    reproducible).  The canonical-link MLE has balance 0 exactly.  ``None`` without
    finite balances.
    """
    if "balance" not in df.columns:
        return None
    ok = _ok_rows(df)
    values = numeric_values(ok["balance"])
    good = np.isfinite(values)
    if not good.any():
        return None
    ok = ok[good]
    values = values[good]
    c_lab = config_labels(df).reindex(ok["config_id"]).to_numpy()
    s_lab = scenario_labels(df).reindex(ok["scenario_id"]).to_numpy()
    configs = [c for c in _config_order(df) if c in set(c_lab)]
    scenarios = list(dict.fromkeys(s_lab))
    colors = dict(zip(scenarios, _colors(len(scenarios)), strict=True))
    rng = np.random.default_rng(seed)

    height = max(2.6, 0.5 * len(configs) + 1.4)
    fig = _new_figure(9.0, height)
    ax = fig.subplots()
    data = [values[c_lab == c] for c in configs]
    ax.boxplot(
        data,
        positions=range(len(configs)),
        orientation="horizontal",
        widths=0.55,
        showfliers=False,
        medianprops={"color": "k"},
        boxprops={"color": "0.35"},
        whiskerprops={"color": "0.35"},
        capprops={"color": "0.35"},
    )
    handles: dict[str, object] = {}
    for s in scenarios:
        mask = s_lab == s
        y = np.array([configs.index(c) for c in c_lab[mask]], dtype=float)
        y += rng.uniform(-0.2, 0.2, size=y.size)
        h = ax.scatter(values[mask], y, s=10, color=colors[s], alpha=0.6, label=s, zorder=3)
        handles.setdefault(s, h)
    ax.axvline(0.0, color="k", linestyle="--", linewidth=1.0, zorder=1)
    ax.set_yticks(range(len(configs)), configs)
    ax.set_ylim(len(configs) - 0.5, -0.5)
    ax.set_xlabel("balance  Σ w μ̂ / Σ w y − 1  (training data; 0 for the canonical MLE)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Balance per configuration (every ok replicate)", fontsize=11)
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside right upper",
        fontsize=8,
        title="scenario",
        title_fontsize=9,
        markerscale=1.5,
    )
    return fig
