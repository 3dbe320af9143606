"""``simbench compare DIR_A DIR_B``: what changed from run A to run B, beyond Monte Carlo noise.

Matching
--------
Scenarios are matched by ``scenario_id`` (the hash of their canonical parameters), then
configurations by ``config_id``; a configuration whose parameters changed (so its id did)
is matched by its label (the sweep's name for it) when that label is unique on both sides,
and the changed parameters are listed.  Cells are paired by (scenario, configuration,
replicate).  Anything present on one side only is reported, not compared.

Accuracy
--------
For every matched (scenario, configuration) and metric, over the ok replicates of each run:
``Δ = mean_B − mean_A`` with standard error ``SE = √(SE_A² + SE_B²)`` (each ``SE = sd/√R``;
the runs are treated as independent, which is conservative when they share seeds and hence
data).  A change is *significant* when ``|Δ| > k·SE`` (``k = 3`` by default) and ``|Δ|``
exceeds a floating-point floor (``atol + rtol·|mean_A|``, so that bit-level noise of a metric
whose SE is 0 is not a change).  Its kind follows the metric's direction
(:func:`~simbench.report.aggregate.direction`): a significant move to the worse side (larger
error; lower AUC; further from the target of ``balance``, ``calib_slope``,
``calib_intercept``) is a **regression**, to the better side an **improvement**, and a metric
without a better side (``dev_train``, ``epochs_run``, ``auc_oracle``) is a **change**.
With fewer than two ok replicates on a side there is no SE and nothing is tested.

Speed
-----
Per matched (scenario, configuration), the ``fit_seconds`` of the ok replicates:
``ratio = median_B / median_A``.  A **regression** needs ``ratio > factor`` (1.2 by default)
*and* a one-sided Mann–Whitney test (B slower) with ``p < α`` (0.01); an improvement is the
mirror image.  An exact one-sided Mann–Whitney p-value cannot go below ``1 / C(R_A + R_B,
R_A)``, so with fewer than 5 replicates per side at ``α = 0.01`` no speed change can be
flagged; the output says so.  Timings compare only between runs on the same machine:
a warning is given when the manifests' machine fields differ.

Failures
--------
A cell ok in A and not ok in B (``error``, ``diverged``, ``timeout``, ``skipped``) is a
**new failure** (a regression); the reverse is a fixed cell (an improvement).

Exit code 3 when anything regressed, 0 otherwise; two runs with no (scenario,
configuration) in common are refused (:class:`~simbench.errors.ValidationError`, exit code 2):
"no regression" would be an answer about nothing.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from .directions import direction
from .frame import (
    FAILED_STATUSES,
    TIMING_COLUMNS,
    metric_columns,
    numeric_values,
    unknown_metric_message,
)
from .labels import config_labels, format_param, scenario_labels
from .markdown import md_table
from .summary import aggregate
from .tables import _plain_number, format_number

__all__ = ["MACHINE_FIELDS", "Change", "Comparison", "compare", "machine_differences"]

#: provenance fields that identify the machine a run's timings come from
MACHINE_FIELDS = ("hostname", "cpu", "cpu_count", "platform", "numba_num_threads")
_VERSION_FIELDS = ("simbench", "numba", "numpy", "python", "git_commit")
_EXIT_OK, _EXIT_REGRESSED = 0, 3
# metrics compared by default besides the quality metrics (timings have their own test)
_EXTRA_DEFAULT = ("converged", "epochs_run")


@dataclass
class Change:
    """One flagged difference between the runs."""

    kind: str  # "regression", "improvement" or "change"
    aspect: str  # "accuracy", "speed" or "failures"
    scenario: str
    config: str
    metric: str
    a: str
    b: str
    why: str


@dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    changes : list of Change
        Everything flagged, regressions first.
    accuracy : pandas.DataFrame
        Every (scenario, configuration, metric) compared, flagged or not: means, SEs,
        ``delta``, ``se``, ``z``, ``kind`` (empty when not significant).
    speed : pandas.DataFrame
        Every (scenario, configuration) timed: medians, ``ratio``, ``p``, ``kind``.
    warnings : list of str
        Machine mismatch and other conditions that make the comparison doubtful.
    notes : list of str
        Matching details (renamed configurations, cells on one side only, versions).
    """

    a: str
    b: str
    changes: list[Change] = field(default_factory=list)
    accuracy: pd.DataFrame = field(default_factory=pd.DataFrame)
    speed: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    matched_cells: int = 0
    matched_groups: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "regression"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "improvement"]

    @property
    def exit_code(self) -> int:
        """3 when anything regressed, else 0."""
        return _EXIT_REGRESSED if self.regressions else _EXIT_OK

    def summary(self) -> str:
        count = Counter(c.aspect for c in self.regressions)
        if not self.regressions:
            extra = f"; {len(self.improvements)} improvement(s)" if self.improvements else ""
            return f"no regression beyond Monte Carlo noise{extra}."
        parts = [
            f"{count.get('accuracy', 0)} accuracy",
            f"{count.get('speed', 0)} speed",
            f"{count.get('failures', 0)} new-failure",
        ]
        return f"REGRESSED: {', '.join(parts)} regression(s); exit code 3."

    def format(self, fmt: str = "md", show_all: bool = False) -> str:
        """The comparison as Markdown (``md``) or CSV (``csv``, every comparison made)."""
        if fmt == "csv":
            return _format_csv(self)
        if fmt != "md":
            raise ValidationError(f"unknown compare format {fmt!r}; accepted: md, csv")
        return _format_md(self, show_all)


# --------------------------------------------------------------------------- loading


def _load(side: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, dict, str]:
    if isinstance(side, pd.DataFrame):
        manifest = side.attrs.get("manifest") or {}
        name = str(manifest.get("sweep_name") or "results")
        df = side
    else:
        from ..sweep.store import load

        df = load(side)
        manifest = df.attrs.get("manifest") or {}
        name = str(side)
    if df.empty:
        raise ValidationError(f"{name}: no results stored")
    df = df.copy(deep=False)
    df.attrs = {}
    return df, manifest, name


def _provenances(manifest: dict, df: pd.DataFrame) -> list[dict]:
    runs = manifest.get("runs") or []
    if "run_id" in df.columns:
        used = set(df["run_id"].dropna().astype(str))
        picked = [r for r in runs if str(r.get("run_id")) in used]
        runs = picked or runs
    return [r.get("provenance") or {} for r in runs]


def machine_differences(manifest_a: dict, manifest_b: dict, df_a=None, df_b=None) -> list[str]:
    """``field: A value vs B value`` for every machine field where the runs differ."""
    pa = _provenances(manifest_a, df_a if df_a is not None else pd.DataFrame())
    pb = _provenances(manifest_b, df_b if df_b is not None else pd.DataFrame())
    out = []
    for key in MACHINE_FIELDS:
        va = sorted({str(p.get(key)) for p in pa if p.get(key) is not None})
        vb = sorted({str(p.get(key)) for p in pb if p.get(key) is not None})
        if va and vb and (va != vb or len(va) > 1):
            out.append(f"{key}: {' / '.join(va)} vs {' / '.join(vb)}")
    return out


def _version_notes(manifest_a, manifest_b, df_a, df_b) -> list[str]:
    pa = _provenances(manifest_a, df_a)
    pb = _provenances(manifest_b, df_b)
    notes = []
    for key in _VERSION_FIELDS:
        va = sorted({str(p.get(key)) for p in pa if p.get(key) is not None})
        vb = sorted({str(p.get(key)) for p in pb if p.get(key) is not None})
        if va and vb and va != vb:
            short = (lambda v: v[:10]) if key == "git_commit" else (lambda v: v)
            notes.append(f"{key}: {', '.join(map(short, va))} → {', '.join(map(short, vb))}")
    return notes


# --------------------------------------------------------------------------- matching


def _match_configs(df_a: pd.DataFrame, df_b: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """Map B's config ids to A's: by id, then by a label unique on both sides."""
    lab_a, lab_b = config_labels(df_a), config_labels(df_b)
    mapping = {cid: cid for cid in lab_b.index if cid in lab_a.index}
    notes = []
    rest_a = lab_a[~lab_a.index.isin(list(mapping))]
    rest_b = lab_b[~lab_b.index.isin(list(mapping))]
    count_a, count_b = Counter(rest_a), Counter(rest_b)
    first_a = df_a.drop_duplicates("config_id").set_index("config_id")
    first_b = df_b.drop_duplicates("config_id").set_index("config_id")
    for cid_b, label in rest_b.items():
        if count_b[label] == 1 and count_a.get(label) == 1:
            cid_a = rest_a.index[rest_a == label][0]
            mapping[cid_b] = cid_a
            diffs = []
            for col in sorted(
                {c for c in first_a.columns if c.startswith("c_")}
                | {c for c in first_b.columns if c.startswith("c_")}
            ):
                va = format_param(first_a.at[cid_a, col]) if col in first_a else "—"
                vb = format_param(first_b.at[cid_b, col]) if col in first_b else "—"
                if va != vb:
                    diffs.append(f"{col[2:]} {va} → {vb}")
            notes.append(
                f"configuration {label!r} changed between the runs (matched by name): "
                + (", ".join(diffs) if diffs else "parameters differ")
            )
    unmatched_a = [lab for cid, lab in lab_a.items() if cid not in set(mapping.values())]
    unmatched_b = [lab for cid, lab in lab_b.items() if cid not in mapping]
    if unmatched_a:
        notes.append(f"configurations only in A (not compared): {', '.join(unmatched_a)}")
    if unmatched_b:
        notes.append(f"configurations only in B (not compared): {', '.join(unmatched_b)}")
    return mapping, notes


# --------------------------------------------------------------------------- the comparison


def _fmt(mean: float, se: float) -> str:
    if not math.isfinite(mean):
        return "—"
    return _plain_number(format_number(mean, se if math.isfinite(se) else None))


def _fmt_seconds(x: float) -> str:
    if not math.isfinite(x):
        return "—"
    if x >= 1:
        return f"{x:.3g} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3g} ms"
    return f"{x * 1e6:.3g} µs"


def compare(
    a: str | Path | pd.DataFrame,
    b: str | Path | pd.DataFrame,
    metrics: Sequence[str] | None = None,
    sigma: float = 3.0,
    speed_factor: float = 1.2,
    alpha: float = 0.01,
    atol: float = 1e-12,
    rtol: float = 1e-9,
    timing: str = "fit_seconds",
) -> Comparison:
    """Compare run B against run A (see the module docstring for the rules).

    Parameters
    ----------
    a, b : str, Path or DataFrame
        Results directories (or loaded result tables); A is the baseline.
    metrics : sequence of str, optional
        Metrics whose means are compared; default every quality metric present plus
        ``converged`` (the converged fraction) and ``epochs_run``.
    sigma : float
        Accuracy threshold in standard errors of the difference.
    speed_factor : float
        Median time ratio beyond which a speed change is considered (> 1).
    alpha : float
        Level of the one-sided Mann–Whitney test that must agree.
    atol, rtol : float
        Floating-point floor below which a difference is no change at all.
    timing : str
        The timing column.

    Returns
    -------
    Comparison
    """
    if not sigma > 0:
        raise ValidationError(f"sigma must be > 0, got {sigma!r}")
    if not speed_factor > 1:
        raise ValidationError(f"speed factor must be > 1, got {speed_factor!r}")
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must be in (0, 1), got {alpha!r}")
    df_a, man_a, name_a = _load(a)
    df_b, man_b, name_b = _load(b)
    out = Comparison(
        a=name_a,
        b=name_b,
        settings={"sigma": sigma, "speed_factor": speed_factor, "alpha": alpha, "timing": timing},
    )
    machine = machine_differences(man_a, man_b, df_a, df_b)
    if machine:
        out.warnings.append(
            "the runs come from different machines (or machine settings); timings are "
            "comparable only on the same machine: " + "; ".join(machine)
        )
    versions = _version_notes(man_a, man_b, df_a, df_b)
    if versions:
        out.notes.append("versions differ: " + "; ".join(versions))
    if man_a.get("sweep_hash") and man_b.get("sweep_hash") != man_a.get("sweep_hash"):
        out.notes.append(
            "the runs are of different sweep files; cells are matched by scenario and configuration"
        )

    # -- matching
    common_s = set(df_a["scenario_id"]) & set(df_b["scenario_id"])
    only_a = df_a.loc[~df_a["scenario_id"].isin(common_s), "scenario_id"].nunique()
    only_b = df_b.loc[~df_b["scenario_id"].isin(common_s), "scenario_id"].nunique()
    if only_a:
        out.notes.append(f"{only_a} scenario(s) only in A (not compared)")
    if only_b:
        out.notes.append(f"{only_b} scenario(s) only in B (not compared)")
    mapping, notes = _match_configs(df_a, df_b)
    out.notes += notes
    df_b = df_b[df_b["config_id"].isin(list(mapping))].copy()
    df_b["config_id"] = df_b["config_id"].map(mapping)
    df_a = df_a[df_a["scenario_id"].isin(common_s) & df_a["config_id"].isin(set(mapping.values()))]
    df_b = df_b[df_b["scenario_id"].isin(common_s)]
    if df_a.empty or df_b.empty:
        # "no regression" about two unrelated sweeps would be a wrong answer: bad input
        raise ValidationError(
            f"{name_a} and {name_b} have no (scenario, configuration) in common "
            f"({len(common_s)} scenario(s) and {len(mapping)} configuration(s) shared): "
            "nothing to compare. compare needs two runs of the same sweep, or of sweeps "
            "sharing scenarios and configurations"
        )
    # labels from A (B's were mapped onto A's ids); scenario labels over both runs
    s_lab = scenario_labels(pd.concat([df_a, df_b], ignore_index=True))
    c_lab = config_labels(df_a)

    _compare_failures(out, df_a, df_b, s_lab, c_lab)
    _compare_accuracy(out, df_a, df_b, metrics, sigma, atol, rtol, s_lab, c_lab)
    _compare_speed(out, df_a, df_b, timing, speed_factor, alpha, s_lab, c_lab)
    order = {"regression": 0, "improvement": 1, "change": 2}
    aspect = {"failures": 0, "accuracy": 1, "speed": 2}
    out.changes.sort(key=lambda c: (order[c.kind], aspect[c.aspect]))
    return out


def _compare_failures(out, df_a, df_b, s_lab, c_lab) -> None:
    key = ["scenario_id", "config_id", "replicate"]
    seeds = ["data_seed"] if "data_seed" in df_a.columns and "data_seed" in df_b.columns else []
    cols = [*key, "status", *seeds] + (["error"] if "error" in df_b.columns else [])
    pair = df_a[[*key, "status", *seeds]].merge(df_b[cols], on=key, suffixes=("_a", "_b"))
    out.settings["same_data"] = bool(
        seeds and len(pair) and (pair["data_seed_a"] == pair["data_seed_b"]).all()
    )
    out.matched_cells = len(pair)
    out.matched_groups = len(pair.drop_duplicates(["scenario_id", "config_id"]))
    missing = len(df_a) - len(pair)
    if missing > 0:
        out.notes.append(f"{missing} cell(s) of A have no counterpart in B (not compared)")
    extra = len(df_b) - len(pair)
    if extra > 0:
        out.notes.append(f"{extra} cell(s) of B have no counterpart in A (not compared)")
    pair["status_a"] = pair["status_a"].astype(object).fillna("error").astype(str)
    pair["status_b"] = pair["status_b"].astype(object).fillna("error").astype(str)
    pair["ok_a"] = pair["status_a"] == "ok"
    pair["ok_b"] = pair["status_b"] == "ok"
    for (sid, cid), g in pair.groupby(["scenario_id", "config_id"], sort=False):
        for kind, mask in (
            ("regression", g["ok_a"] & ~g["ok_b"]),
            ("improvement", ~g["ok_a"] & g["ok_b"]),
        ):
            moved = g[mask.to_numpy()]
            if moved.empty:
                continue
            moves = Counter(zip(moved["status_a"], moved["status_b"], strict=True))
            text = _moves_text(moves, kind)
            if kind == "regression" and "error" in moved.columns:
                msgs = moved["error"].dropna().astype(str)
                msgs = msgs[msgs.str.strip() != ""]
                if len(msgs):
                    text += f" ({msgs.iloc[0].strip().splitlines()[0][:120]})"
            out.changes.append(
                Change(
                    kind=kind,
                    aspect="failures",
                    scenario=s_lab.get(sid, sid),
                    config=c_lab.get(cid, cid),
                    metric="status",
                    a=f"{int(g['ok_a'].sum())}/{len(g)} ok",
                    b=f"{int(g['ok_b'].sum())}/{len(g)} ok",
                    why=text,
                )
            )


def _moves_text(moves: Counter, kind: str) -> str:
    """``"new failures: 1 × ok → error; newly diverged: 2 × ok → diverged"``: the moves of
    cells between statuses, grouped as ``simbench status`` and the tables count them (failed:
    :data:`FAILED_STATUSES`; diverged and skipped apart)."""
    if kind != "regression":
        return "fixed: " + ", ".join(f"{n} × {x} → {y}" for (x, y), n in moves.items())
    groups: dict[str, list[str]] = {}
    for (x, y), n in moves.items():
        what = "new failures" if y in FAILED_STATUSES else f"newly {y}"
        groups.setdefault(what, []).append(f"{n} × {x} → {y}")
    return "; ".join(f"{what}: {', '.join(items)}" for what, items in groups.items())


def _default_metrics(df_a, df_b) -> list[str]:
    both = [m for m in metric_columns(df_a) if m in set(metric_columns(df_b))]
    quality = [m for m in both if m not in TIMING_COLUMNS]
    return quality + [m for m in _EXTRA_DEFAULT if m in both]


def _compare_accuracy(out, df_a, df_b, metrics, sigma, atol, rtol, s_lab, c_lab) -> None:
    metrics = _default_metrics(df_a, df_b) if metrics is None else list(metrics)
    for m in metrics:
        if m not in df_a.columns or m not in df_b.columns:
            raise ValidationError(unknown_metric_message(m, df_a if m not in df_a else df_b))
    agg_a = aggregate(df_a, metrics=metrics)
    agg_b = aggregate(df_b, metrics=metrics)
    keys = ["scenario_id", "config_id"]
    both = agg_a.merge(agg_b, on=keys, suffixes=("_A", "_B"))
    records = []
    untested = 0
    for rec in both.to_dict(orient="records"):
        sid, cid = rec["scenario_id"], rec["config_id"]
        for m in metrics:
            ma, mb = rec[f"{m}_mean_A"], rec[f"{m}_mean_B"]
            na, nb = int(rec[f"{m}_n_A"]), int(rec[f"{m}_n_B"])
            if na == 0 or nb == 0 or not (math.isfinite(ma) and math.isfinite(mb)):
                continue
            sea, seb = rec[f"{m}_se_A"], rec[f"{m}_se_B"]
            delta = mb - ma
            floor = atol + rtol * abs(ma)
            if na < 2 or nb < 2:
                se, z, kind = math.nan, math.nan, ""
                if abs(delta) > floor:
                    untested += 1
            else:
                se = math.sqrt(sea**2 + seb**2)
                z = delta / se if se > 0 else (math.inf if abs(delta) > floor else 0.0)
                kind = ""
                if abs(delta) > floor and abs(delta) > sigma * se:
                    kind = _kind(m, ma, mb, sigma * se)
            records.append(
                {
                    "scenario": s_lab.get(sid, sid),
                    "config": c_lab.get(cid, cid),
                    "metric": m,
                    "mean_a": ma,
                    "se_a": sea,
                    "n_a": na,
                    "mean_b": mb,
                    "se_b": seb,
                    "n_b": nb,
                    "delta": delta,
                    "se": se,
                    "z": z,
                    "kind": kind,
                }
            )
            if kind:
                d = direction(m)
                why = f"Δ = {delta:+.3g} = {_z_text(z)} SE (> {sigma:g}); {d.describe()}"
                out.changes.append(
                    Change(
                        kind=kind,
                        aspect="accuracy",
                        scenario=s_lab.get(sid, sid),
                        config=c_lab.get(cid, cid),
                        metric=m,
                        a=_fmt(ma, sea),
                        b=_fmt(mb, seb),
                        why=why,
                    )
                )
    out.accuracy = pd.DataFrame.from_records(records)
    tested = int(np.isfinite(out.accuracy["se"]).sum()) if records else 0
    if tested and not out.settings.get("same_data"):
        from scipy.stats import norm

        expected = tested * float(norm.sf(sigma))
        out.notes.append(
            f"{tested} accuracy tests on independent data (different seeds): about "
            f"{expected:.2g} would cross {sigma:g} SE towards the worse side by chance alone"
        )
    elif tested:
        out.notes.append(
            "the runs share their data seeds: metric columns are deterministic, so a "
            "difference means the computation changed"
        )
    if untested:
        out.notes.append(
            f"{untested} metric difference(s) not tested: fewer than 2 ok replicates on a side "
            "(no Monte Carlo SE)"
        )


def _z_text(z: float) -> str:
    return "∞" if math.isinf(z) else f"{abs(z):.1f}"


def _kind(metric: str, ma: float, mb: float, threshold: float) -> str:
    d = direction(metric)
    if not d.ordered:
        return "change"
    worse = float(d.badness(mb) - d.badness(ma))
    if abs(worse) <= threshold:
        # significant move that is no better or worse (e.g. balance from -x to +x)
        return "change"
    return "regression" if worse > 0 else "improvement"


def _min_p(na: int, nb: int) -> float:
    return 1.0 / math.comb(na + nb, na)


def _compare_speed(out, df_a, df_b, timing, factor, alpha, s_lab, c_lab) -> None:
    from scipy.stats import mannwhitneyu

    if timing not in df_a.columns or timing not in df_b.columns:
        out.notes.append(f"no {timing!r} column on both sides: speed not compared")
        return
    ok_a = df_a[(df_a["status"].astype(object) == "ok").to_numpy()]
    ok_b = df_b[(df_b["status"].astype(object) == "ok").to_numpy()]
    ta = {k: numeric_values(g[timing]) for k, g in ok_a.groupby(["scenario_id", "config_id"])}
    tb = {k: numeric_values(g[timing]) for k, g in ok_b.groupby(["scenario_id", "config_id"])}
    records = []
    weak = 0
    log_ratios: dict[str, list[float]] = {}
    for key in (k for k in ta if k in tb):
        xa, xb = ta[key], tb[key]
        xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
        if xa.size < 1 or xb.size < 1:
            continue
        med_a, med_b = float(np.median(xa)), float(np.median(xb))
        ratio = med_b / med_a if med_a > 0 else math.nan
        p, kind = math.nan, ""
        testable = xa.size >= 2 and xb.size >= 2 and _min_p(xa.size, xb.size) < alpha
        if math.isfinite(ratio) and (ratio > factor or ratio < 1 / factor):
            if not testable:
                weak += 1
            else:
                slower = ratio > factor
                p = float(mannwhitneyu(xb, xa, alternative="greater" if slower else "less").pvalue)
                if p < alpha:
                    kind = "regression" if slower else "improvement"
        sid, cid = key
        cfg = c_lab.get(cid, cid)
        if math.isfinite(ratio) and ratio > 0:
            log_ratios.setdefault(cfg, []).append(math.log(ratio))
        records.append(
            {
                "scenario": s_lab.get(sid, sid),
                "config": cfg,
                "median_a": med_a,
                "median_b": med_b,
                "n_a": xa.size,
                "n_b": xb.size,
                "ratio": ratio,
                "p": p,
                "kind": kind,
            }
        )
        if kind:
            direction_word = "slower" if kind == "regression" else "faster"
            bound = f"> {factor:g}" if kind == "regression" else f"< 1/{factor:g}"
            out.changes.append(
                Change(
                    kind=kind,
                    aspect="speed",
                    scenario=s_lab.get(sid, sid),
                    config=cfg,
                    metric=timing,
                    a=f"median {_fmt_seconds(med_a)}",
                    b=f"median {_fmt_seconds(med_b)}",
                    why=(
                        f"{direction_word}: median ratio ×{ratio:.3g} ({bound}), one-sided "
                        f"Mann–Whitney p = {p:.2g} < {alpha:g} (R = {xa.size}, {xb.size})"
                    ),
                )
            )
    out.speed = pd.DataFrame.from_records(records)
    if weak:
        out.notes.append(
            f"{weak} speed difference(s) beyond ×{factor:g} not testable: too few ok replicates "
            f"for a one-sided Mann–Whitney p < {alpha:g} (needs about 5 per side)"
        )
    if log_ratios:
        order = list(dict.fromkeys(c_lab.to_numpy()))
        overall = ", ".join(
            f"{cfg} ×{math.exp(float(np.mean(log_ratios[cfg]))):.3g}"
            for cfg in order
            if cfg in log_ratios
        )
        out.notes.append(f"median time ratio B/A (geometric mean over scenarios): {overall}")


# --------------------------------------------------------------------------- output


def _changes_table(changes: list[Change]) -> list[str]:
    header = ["what", "scenario", "configuration", "metric", "A", "B", "why"]
    rows = [[c.aspect, c.scenario, c.config, c.metric, c.a, c.b, c.why] for c in changes]
    return md_table(header, rows, "llllrrl").splitlines()


def _format_md(comp: Comparison, show_all: bool) -> str:
    s = comp.settings
    lines = [
        f"# simbench compare: {comp.a} → {comp.b}",
        "",
        f"Compared {comp.matched_groups} (scenario, configuration) pairs, "
        f"{comp.matched_cells} cells paired by replicate.  Accuracy: flagged when "
        f"|Δ mean| > {s.get('sigma', 3):g} × √(SE_A² + SE_B²); speed: median "
        f"{s.get('timing', 'fit_seconds')} ratio beyond ×{s.get('speed_factor', 1.2):g} and a "
        f"one-sided Mann–Whitney p < {s.get('alpha', 0.01):g}; new failures: ok in A, not ok "
        "in B.",
        "",
    ]
    for w in comp.warnings:
        lines += [f"> **Warning:** {w}", ""]
    if comp.regressions:
        per = Counter(c.config for c in comp.regressions)
        lines += [
            "Regressions by configuration: "
            + ", ".join(f"{cfg} {n}" for cfg, n in per.most_common())
            + ".",
            "",
        ]
    groups = (
        ("Regressions", comp.regressions),
        ("Improvements", comp.improvements),
        ("Other changes (no better direction)", [c for c in comp.changes if c.kind == "change"]),
    )
    for title, items in groups:
        if items:
            lines += [f"## {title} ({len(items)})", "", *_changes_table(items), ""]
    if not comp.changes:
        lines += ["Nothing changed beyond Monte Carlo noise.", ""]
    if show_all and not comp.accuracy.empty:
        lines += ["## Every accuracy comparison", ""]
        header = ["scenario", "configuration", "metric", "A", "B", "Δ / SE", "flag"]
        rows = []
        for r in comp.accuracy.to_dict(orient="records"):
            z = r["z"]
            ztext = "—" if not isinstance(z, float) or math.isnan(z) else f"{z:+.1f}"
            rows.append(
                [
                    r["scenario"],
                    r["config"],
                    r["metric"],
                    _fmt(r["mean_a"], r["se_a"]),
                    _fmt(r["mean_b"], r["se_b"]),
                    ztext,
                    r["kind"],
                ]
            )
        lines += [*md_table(header, rows, "lllrrrl").splitlines(), ""]
    if show_all and not comp.speed.empty:
        lines += ["## Every timing comparison", ""]
        header = ["scenario", "configuration", "median A", "median B", "ratio", "p", "flag"]
        rows = []
        for r in comp.speed.to_dict(orient="records"):
            p = r["p"]
            rows.append(
                [
                    r["scenario"],
                    r["config"],
                    _fmt_seconds(r["median_a"]),
                    _fmt_seconds(r["median_b"]),
                    f"×{r['ratio']:.2f}" if math.isfinite(r["ratio"]) else "—",
                    "—" if math.isnan(p) else f"{p:.2g}",
                    r["kind"],
                ]
            )
        lines += [*md_table(header, rows, "llrrrrl").splitlines(), ""]
    if comp.notes:
        lines += ["Notes:", "", *[f"- {n}" for n in comp.notes], ""]
    lines.append(f"Result: {comp.summary()}")
    return "\n".join(lines) + "\n"


def _format_csv(comp: Comparison) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "aspect",
            "scenario",
            "config",
            "metric",
            "a",
            "se_a",
            "n_a",
            "b",
            "se_b",
            "n_b",
            "delta_or_ratio",
            "z_or_p",
            "flag",
        ]
    )
    for r in comp.accuracy.to_dict(orient="records") if not comp.accuracy.empty else []:
        writer.writerow(
            [
                "accuracy",
                r["scenario"],
                r["config"],
                r["metric"],
                _g(r["mean_a"]),
                _g(r["se_a"]),
                r["n_a"],
                _g(r["mean_b"]),
                _g(r["se_b"]),
                r["n_b"],
                _g(r["delta"]),
                _g(r["z"]),
                r["kind"],
            ]
        )
    for r in comp.speed.to_dict(orient="records") if not comp.speed.empty else []:
        writer.writerow(
            [
                "speed",
                r["scenario"],
                r["config"],
                "median_seconds",
                _g(r["median_a"]),
                "",
                r["n_a"],
                _g(r["median_b"]),
                "",
                r["n_b"],
                _g(r["ratio"]),
                _g(r["p"]),
                r["kind"],
            ]
        )
    for c in comp.changes:
        if c.aspect == "failures":
            writer.writerow(
                [
                    "failures",
                    c.scenario,
                    c.config,
                    "status",
                    c.a,
                    "",
                    "",
                    c.b,
                    "",
                    "",
                    "",
                    "",
                    c.kind,
                ]
            )
    return buf.getvalue()


def _g(x: Any) -> str:
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.10g}"
    return str(x)
