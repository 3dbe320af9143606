"""``simbench report DIR``: a Markdown report with tables and figures.

:func:`write_report` reads a results directory and writes ``DIR/report.md`` plus PNG
figures in ``DIR/figures/`` (PDF copies with ``pdf=True``): the sweep's description and
provenance, cell counts with the commonest error messages, one table per main metric
(mean ± Monte Carlo SE, best per row in bold, failures shown), efficiency against the MLE
and the Cramér–Rao bound, Wald coverage of the reference fit, fit times, and the figures of
:mod:`simbench.report.figures` that the results support.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ValidationError
from . import figures as _fig
from .frame import metric_columns
from .inference import coverage
from .labels import config_labels, varying_params
from .markdown import md_table
from .summary import cell_counts
from .tables import make_table, render

__all__ = ["MAIN_METRICS", "Report", "write_report"]

#: metrics with a table in the report, when the results define them
MAIN_METRICS = (
    "coef_z_mle",
    "coef_err_truth",
    "coef_cos_truth",
    "excess_deviance",
    "dev_test",
    "balance",
    "calib_slope",
    "auc",
)
_TITLES = {
    "coef_z_mle": "Distance to the MLE in standard errors",
    "coef_err_truth": "Relative coefficient error",
    "coef_cos_truth": "Direction of the slopes",
    "excess_deviance": "Excess deviance (KL excess risk)",
    "dev_test": "Test deviance",
    "balance": "Balance",
    "calib_slope": "Calibration slope",
    "auc": "Test AUC",
}


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    path: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


def _runs(manifest: dict, df: pd.DataFrame) -> list[dict]:
    runs = manifest.get("runs") or []
    if "run_id" in df.columns:
        used = set(df["run_id"].dropna().astype(str))
        picked = [r for r in runs if str(r.get("run_id")) in used]
        if picked:
            return picked
    return runs


def _sweep_section(directory: Path, df: pd.DataFrame, manifest: dict) -> list[str]:
    status = df["status"].astype(object).fillna("error").astype(str)
    counts = status.value_counts()
    order = [s for s in ("ok", "error", "diverged", "timeout", "skipped") if s in counts]
    order += [s for s in counts.index if s not in order]
    n_sc = df["scenario_id"].nunique()
    configs = list(dict.fromkeys(config_labels(df).to_numpy()))
    varying = [c[2:] for c in varying_params(df, "s_")]
    reps = df["replicate"].nunique() if "replicate" in df.columns else 0
    runs = _runs(manifest, df)
    rows: list[list[object]] = [
        ["scenarios", f"{n_sc}" + (f" (varying: {', '.join(varying)})" if varying else "")],
        ["configurations", f"{len(configs)}: {', '.join(configs)}"],
        ["replicates", reps],
        ["cells", f"{len(df)}: " + ", ".join(f"{s} {counts[s]}" for s in order)],
    ]
    if runs:
        first, last = runs[0], runs[-1]
        rows.append(
            [
                "runs",
                f"{len(runs)} (from {str(first.get('started_at', '?'))[:19]} "
                f"to {str(last.get('finished_at') or last.get('started_at', '?'))[:19]} UTC)",
            ]
        )
        machines = []
        for r in runs:
            p = r.get("provenance") or {}
            text = (
                f"{p.get('cpu', '?')}, {p.get('cpu_count', '?')} CPUs, "
                f"{p.get('numba_num_threads', '?')} Numba threads, {p.get('platform', '?')}"
            )
            if text not in machines:
                machines.append(text)
        rows.append(["machine", "; ".join(machines)])
        p = last.get("provenance") or {}
        versions = ", ".join(
            f"{k} {p[k]}" for k in ("simbench", "numba", "numpy", "python") if p.get(k)
        )
        rows.append(["versions", versions or "?"])
        if p.get("git_commit"):
            dirty = " (uncommitted changes)" if p.get("git_dirty") else ""
            rows.append(["git commit", f"{str(p['git_commit'])[:10]}{dirty}"])
        opts = last.get("options") or {}
        if opts:
            rows.append(["backend", f"{opts.get('backend', '?')}, {opts.get('jobs', 1)} job(s)"])
    out = ["## Sweep", "", md_table(["", ""], rows, "ll")]
    text = manifest.get("sweep_text")
    if text:
        out += [
            "<details><summary>Sweep file "
            f"(<code>{manifest.get('sweep_source', '')}</code>)</summary>",
            "",
            "```toml",
            text.rstrip(),
            "```",
            "",
            "</details>",
            "",
        ]
    return out


def _cells_section(df: pd.DataFrame) -> list[str]:
    counts = cell_counts(df)
    by_config = counts.groupby("config", sort=False)[
        ["n_cells", "n_ok", "n_not_converged", "n_error", "n_diverged", "n_timeout", "n_skipped"]
    ].sum()
    header = ["configuration", "cells", "ok", "not converged", "error", "diverged", "timeout"]
    header.append("skipped")
    rows = [[cfg, *map(int, vals)] for cfg, vals in by_config.iterrows()]
    out = [
        "## Cells",
        "",
        "Every cell is a row: failures are counted here and next to each table entry, and "
        "never averaged.  *Not converged* cells are ok (they finished their epoch budget "
        "without meeting the tolerance) and are included in the tables.",
        "",
        md_table(header, rows),
    ]
    failed = df[~df["status"].astype(object).isin(["ok"])]
    if len(failed) and "error" in failed.columns:
        labels = config_labels(df)
        failed = failed.assign(_config=labels.reindex(failed["config_id"]).to_numpy())
        lines = []
        for cfg, group in failed.groupby("_config", sort=False):
            messages = group["error"].astype(object).fillna("(no message)").astype(str)
            messages = messages.map(lambda m: m.strip().splitlines()[0][:160] if m.strip() else m)
            status = group["status"].astype(str)
            for (msg, st), n in (
                pd.DataFrame({"m": messages, "s": status}).value_counts().head(3).items()
            ):
                lines.append(f"- **{cfg}** — {n} × {st}: `{msg}`")
        if lines:
            out += ["Commonest messages of the cells that did not finish ok:", "", *lines, ""]
    return out


def _has_values(df: pd.DataFrame, metric: str) -> bool:
    if metric not in df.columns:
        return False
    ok = df[df["status"].astype(object) == "ok"]
    values = pd.to_numeric(ok[metric], errors="coerce")
    return bool(np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)).any())


def _coverage_section(df: pd.DataFrame) -> list[str]:
    cov = coverage(df)
    if cov.empty:
        return []
    rows = []
    for (_, label), g in cov.groupby(["scenario_id", "scenario"], sort=False):
        n = int(g["n"].iloc[0])
        m, ms = g["coverage_model"].mean(), np.sqrt((g["coverage_model_se"] ** 2).mean())
        s, ss = g["coverage_sandwich"].mean(), np.sqrt((g["coverage_sandwich_se"] ** 2).mean())
        rows.append(
            [
                label,
                n,
                f"{m:.3f} ± {ms:.3f}",
                f"{g['coverage_model'].min():.3f}",
                f"{s:.3f} ± {ss:.3f}" if np.isfinite(s) else "—",
                f"{g['coverage_sandwich'].min():.3f}" if np.isfinite(s) else "—",
                f"{(g['se_model'] / g['sd_mle']).mean():.3f}",
            ]
        )
    header = [
        "scenario",
        "groups",
        "model-based (mean over β_j)",
        "worst β_j",
        "sandwich (mean over β_j)",
        "worst β_j",
        "mean se / sd(β_MLE)",
    ]
    return [
        "## Wald coverage of the reference fit",
        "",
        "Fraction of (scenario, replicate) groups whose 95% Wald interval "
        "β_MLE,j ± 1.96 se_j covers β*_j, averaged over the coefficients, ± the binomial "
        "Monte Carlo SE √(c(1−c)/R) (root-mean-square over coefficients).  The last column "
        "compares the mean model-based SE with the Monte Carlo SD of β_MLE (1 when the "
        "standard errors are right).",
        "",
        md_table(header, rows),
    ]


def _crossover_section(df: pd.DataFrame) -> list[str]:
    """When the GLM meets networks over several n: from which n each network beats it."""
    from .crossover import crossover, crossover_markdown, glm_config

    if not _has_values(df, "excess_deviance"):
        return []
    table = crossover(df, "excess_deviance")
    if table.empty:
        return []
    verdicts = [f"- {p}: {v}." for p, v in zip(table["panel"], table["verdict"], strict=True)]
    return [
        "## Crossover: networks against the GLM",
        "",
        "Where the truth is not a GLM, the GLM's excess deviance levels off at its floor "
        "(`misspec_floor`, dotted in the figure above) while a network's can keep falling.",
        "",
        *verdicts,
        "",
        crossover_markdown(table, "excess_deviance", config_labels(df)[glm_config(df)]),
    ]


def write_report(
    directory: str | Path,
    out: str | Path | None = None,
    pdf: bool = False,
    metrics: Sequence[str] | None = None,
) -> Report:
    """Write the report of a results directory.

    Parameters
    ----------
    directory : str or Path
        A results directory (``simbench run``).
    out : str or Path, optional
        The Markdown file; default ``DIR/report.md``.  Figures go to ``figures/`` next to it.
    pdf : bool
        Also write every figure as PDF.
    metrics : sequence of str, optional
        Metrics given a table; default those of :data:`MAIN_METRICS` that the results define.

    Returns
    -------
    Report
    """
    from .._version import __version__
    from ..metrics import METRIC_DESCRIPTIONS
    from ..sweep.store import load

    directory = Path(directory)
    df = load(directory)
    manifest = df.attrs.get("manifest") or {}
    if df.empty:
        raise ValidationError(f"{directory}: no results stored yet; run the sweep first")
    df = df.copy(deep=False)
    df.attrs = {}
    path = Path(out) if out is not None else directory / "report.md"
    fig_dir = path.parent / "figures"
    report = Report(path=path)
    if metrics is None:
        metrics = [m for m in MAIN_METRICS if _has_values(df, m)]
    else:
        known = metric_columns(df)
        for m in metrics:
            if m not in known:
                make_table(df, m)  # raises the helpful unknown-metric error

    name = manifest.get("sweep_name") or directory.name
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {name}: simulation report", ""]
    if manifest.get("description"):
        lines += [f"> {str(manifest['description']).strip()}", ""]
    lines += [
        f"Generated {now} by simbench {__version__} from `{directory.name}`.  Entries are "
        "mean ± Monte Carlo standard error (sd/√R) over the R replicates whose cell finished "
        "ok; the best entry of each row is in **bold**; failed replicates are counted next "
        "to the entry, never averaged.",
        "",
    ]
    lines += _sweep_section(directory, df, manifest)
    lines += _cells_section(df)

    def figure(fig, stem: str, caption: str) -> list[str]:
        if fig is None:
            return []
        paths = _fig.save_figure(fig, fig_dir / stem, pdf=pdf)
        report.figures.extend(paths)
        rel = paths[0].relative_to(path.parent).as_posix()
        # a short alt text: brackets in the caption ([I⁻¹]_jj) would end it early
        alt = stem.replace("_vs_n", " against n").replace("_", " ")
        return [f"![{alt}]({rel})", "", f"*{caption}*", ""]

    lines += ["## Accuracy", ""]
    n_values = pd.to_numeric(df["s_n"], errors="coerce").nunique() if "s_n" in df else 0
    if n_values < 2:
        lines += [
            "*No figures against n: the sweep has a single training sample size (a grid "
            "such as `n = [250, 1000, 4000]` in `[[scenarios]]` draws them).*",
            "",
        ]
    for m in metrics:
        table = make_table(df, m)
        report.tables.append(m)
        desc = METRIC_DESCRIPTIONS.get(m, "")
        lines += [f"### {_TITLES.get(m, m)} (`{m}`)", ""]
        if desc:
            lines += [f"{desc}; {table.direction.describe()}.", ""]
        lines += [render(table, "md", caption=False)]
        if m == "excess_deviance":
            lines += figure(
                _fig.metric_vs_n_figure(df, "excess_deviance"),
                "excess_deviance_vs_n",
                "Excess deviance against n (log–log), mean ± MC SE; dashed: the MLE's "
                "(p+1)/n, p+1 coefficients including the intercept.",
            )
        if m == "coef_err_truth":
            lines += figure(
                _fig.metric_vs_n_figure(df, "coef_err_truth"),
                "coef_err_truth_vs_n",
                "Relative coefficient error against n (log–log); dashed: the Cramér–Rao "
                "value √(Σ_j [I_n(β*)⁻¹]_jj)/‖β*‖.",
            )

    lines += _crossover_section(df)

    eff_table = make_table(df, "efficiency")
    if any(c.present and np.isfinite(c.mean) for row in eff_table.cells for c in row):
        lines += [
            "## Efficiency",
            "",
            "Var_MC(β_MLE,j) / Var_MC(β̂_j) over the replicates where both fits are usable, "
            "averaged over the coefficients (1: as efficient as the MLE; above 1 only by "
            "bias, e.g. shrinkage — compare the MSE efficiency).",
            "",
            render(eff_table, "md", caption=False),
            "Against the Cramér–Rao bound, mean_r [I_n(β*)⁻¹]_jj / Var_MC(β̂_j):",
            "",
            render(make_table(df, "crb_efficiency"), "md", caption=False),
            "MSE efficiency, MSE(β_MLE,j) / MSE(β̂_j):",
            "",
            render(make_table(df, "mse_efficiency"), "md", caption=False),
        ]
        report.tables += ["efficiency", "crb_efficiency", "mse_efficiency"]
        lines += figure(
            _fig.efficiency_figure(df),
            "efficiency",
            "Efficiency per configuration, one marker per scenario (log scale).",
        )

    lines += _coverage_section(df)

    conv = _fig.convergence_figure(df)
    lines += ["## Convergence", ""]
    if conv is None:
        lines += [
            "*No convergence curves: no per-epoch distances to the MLE were recorded "
            "(`record_history = true` in `[sweep]` records them for networks without "
            "hidden layers).*",
            "",
        ]
    else:
        lines += figure(
            conv,
            "convergence",
            "Distance to β_MLE in standard-error units against the epoch: median over "
            "replicates and 25–75% band; dotted: one standard error.",
        )

    if _has_values(df, "balance"):
        lines += ["## Balance", ""]
        lines += figure(
            _fig.balance_figure(df),
            "balance",
            "Σ w μ̂ / Σ w y − 1 on the training data, every ok replicate; the canonical-link "
            "MLE balances exactly.",
        )

    if _has_values(df, "fit_seconds"):
        table = make_table(df, "fit_seconds", stat="median")
        report.tables.append("fit_seconds")
        lines += [
            "## Speed",
            "",
            "Median fit time in seconds over the ok replicates (compile time excluded; "
            "timings compare only between runs on the same machine).",
            "",
            render(table, "md", caption=False),
        ]
        lines += figure(
            _fig.metric_vs_n_figure(df, "fit_seconds"),
            "fit_seconds_vs_n",
            "Fit time against n (log–log), mean ± MC SE.",
        )

    from ..sweep.store import atomic_write_bytes, ensure_directory

    ensure_directory(path.parent)
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return report
