"""Publication tables of one metric: rows and columns chosen by scenario/config keys.

:func:`make_table` aggregates the result rows (:func:`~simbench.report.aggregate.aggregate`)
into a :class:`Table` whose cells are one (scenario, configuration) each; :func:`render`
writes it as GitHub Markdown, LaTeX (booktabs), CSV or HTML.

Keys
----
``--rows`` and ``--cols`` take comma-separated keys: ``scenario`` (the readable scenario
label), ``config`` (the configuration label), or any scenario/configuration parameter by
name (``family``, ``n``, ``optimizer``, ``lr``; the ``s_``/``c_`` prefix is accepted and
needed only when a name is both).  A parameter that varies across the results but is named
in neither is added to the rows, so a table entry never silently pools different scenarios
or configurations.

What an entry shows
-------------------
``mean ± Monte Carlo SE`` over the replicates whose cell is ``ok`` and whose value is
finite (``--stat`` picks another aggregate: ``mean_sd`` for ``mean ± SD``, ``median``,
``sd``, ``se``, ``min``, ``max``).  Digits follow the SE: two significant digits of the SE,
the mean rounded to the same place.  Failures are shown, never hidden: ``— (3 failed)``
when nothing is left to average, ``0.012 ± 0.001 (2 failed)`` when some replicates failed
(``error`` or ``timeout``, as ``simbench status`` counts them), ``(1 diverged)`` for
replicates whose training diverged, ``n/a`` when the configuration does not apply (skipped),
``(1 NaN)`` when the metric is undefined for some ok replicates, ``(5 not converged)`` for
ok fits that stopped without meeting a stopping rule.  The best entry of each row, by the
metric's direction (:func:`~simbench.report.aggregate.direction`), is bold (Markdown,
LaTeX, HTML) or starred in the ``best`` column (CSV).  The CSV is long ("tidy"): one line
per entry with the raw ``mean``, ``se``, ``sd``, ``median``, ``n`` and counts.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from .directions import Direction, direction
from .frame import DERIVED_METRICS, metric_columns, numeric_values, unknown_metric_message
from .inference import COEFFICIENT_COLUMNS
from .labels import format_param, varying_params
from .markdown import md_table
from .summary import aggregate

__all__ = [
    "FORMATS",
    "STATS",
    "Table",
    "TableCell",
    "make_table",
    "render",
    "resolve_key",
    "table_columns",
]

FORMATS = ("md", "latex", "csv", "html")
STATS = ("mean", "mean_sd", "median", "sd", "se", "min", "max")
_STAT_TEXT = {
    "mean": "mean ± Monte Carlo standard error",
    "mean_sd": "mean ± standard deviation",
    "median": "median",
    "sd": "standard deviation",
    "se": "Monte Carlo standard error of the mean",
    "min": "minimum",
    "max": "maximum",
}
_SPECIAL_KEYS = {"scenario": "scenario", "config": "config", "configuration": "config"}
# what a table reads besides its metric, the scenario parameters (all of them: labels and
# completed rows are made from those that vary) and the parameters named as keys
_TABLE_COLUMNS = frozenset(
    {
        "scenario_id",
        "config_id",
        "config_label",
        "c_name",  # the configuration's label without config_label
        "scenario_index",
        "config_index",
        "replicate",
        "status",
        "converged",
    }
)
# keys whose values read on their own in a column header ("poisson", "adam")
_BARE_KEYS = frozenset({"scenario", "config", "s_family", "s_link", "c_name", "c_optimizer"})


@dataclass
class TableCell:
    """One entry: the summaries of one (scenario, configuration) and its cell counts."""

    mean: float = math.nan
    se: float = math.nan
    sd: float = math.nan
    median: float = math.nan
    min: float = math.nan
    max: float = math.nan
    n: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_diverged: int = 0
    n_skipped: int = 0
    n_not_converged: int = 0  # ok cells whose fit stopped without meeting a stopping rule
    n_nan: int = 0
    present: bool = False  # False: no (scenario, config) behind this entry
    best: bool = False

    def value(self, stat: str) -> float:
        return {"mean": self.mean, "mean_sd": self.mean}.get(stat, getattr(self, stat, math.nan))


@dataclass
class Table:
    """A metric table, ready to render.

    Attributes
    ----------
    metric, stat : str
    row_keys : list of str
        Header of the row-label columns (one per row key).
    rows : list of tuple of str
        Row labels, one string per row key.
    columns : list of str
        Column labels.
    cells : list of list of TableCell
        ``cells[i][j]`` for row ``i`` and column ``j``.
    direction : Direction
    notes : list of str
        E.g. keys added to the rows; shown by the command on stderr.
    """

    metric: str
    stat: str
    row_keys: list[str]
    rows: list[tuple[str, ...]]
    columns: list[str]
    cells: list[list[TableCell]]
    direction: Direction
    derived: bool = False
    replicates: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)

    def caption(self) -> str:
        lo, hi = self.replicates
        reps = f"{hi}" if lo == hi else f"{lo}–{hi}"
        if self.derived:
            what = f"mean over the coefficients of per-coefficient ratios ({reps} replicates)"
        else:
            what = f"{_STAT_TEXT[self.stat]} over {reps} replicates (ok cells)"
        best = (
            f"; best per row marked ({self.direction.describe()})"
            if self.direction.ordered and self.stat in ("mean", "mean_sd", "median")
            else ""
        )
        stopped = (
            '; "not converged": fits that stopped without meeting a stopping rule (at their '
            "iteration limit, mostly), included"
            if any(c.present and c.n_not_converged for row in self.cells for c in row)
            else ""
        )
        return f"{self.metric}: {what}{best}{stopped}."

    def to_frame(self) -> pd.DataFrame:
        """The long form (one line per entry), as written by the CSV renderer."""
        records = []
        for label, row in zip(self.rows, self.cells, strict=True):
            for col, cell in zip(self.columns, row, strict=True):
                if not cell.present:
                    continue
                rec: dict[str, Any] = dict(zip(self.row_keys, label, strict=True))
                rec.update(
                    column=col,
                    metric=self.metric,
                    mean=cell.mean,
                    se=cell.se,
                    sd=cell.sd,
                    median=cell.median,
                    min=cell.min,
                    max=cell.max,
                    n=cell.n,
                    n_ok=cell.n_ok,
                    n_failed=cell.n_failed,
                    n_diverged=cell.n_diverged,
                    n_skipped=cell.n_skipped,
                    n_not_converged=cell.n_not_converged,
                    best="*" if cell.best else "",
                )
                records.append(rec)
        return pd.DataFrame.from_records(records)


# --------------------------------------------------------------------------- keys


def resolve_key(df: pd.DataFrame, key: str) -> str:
    """The column behind a row/column key: ``scenario``, ``config``, ``s_…`` or ``c_…``."""
    from .._registry import closest

    k = key.strip()
    if k in _SPECIAL_KEYS:
        return _SPECIAL_KEYS[k]
    if k in df.columns and k.startswith(("s_", "c_")):
        return k
    s_col, c_col = f"s_{k}", f"c_{k}"
    found = [c for c in (s_col, c_col) if c in df.columns]
    if len(found) == 2:
        raise ValidationError(
            f"key {key!r} is both a scenario and a configuration parameter; "
            f"write {s_col!r} or {c_col!r}"
        )
    if found:
        return found[0]
    params = sorted({c[2:] for c in df.columns if c.startswith(("s_", "c_"))})
    accepted = ["scenario", "config", *params]
    text = f"unknown table key {key!r}"
    guess = closest(k, accepted)
    if guess is not None:
        text += f"; did you mean {guess!r}?"
    raise ValidationError(text + "; accepted: " + ", ".join(accepted))


def _split_keys(keys: str | Sequence[str] | None) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str):
        keys = keys.split(",")
    return [k.strip() for k in keys if k and k.strip()]


def _key_name(col: str) -> str:
    return col[2:] if col.startswith(("s_", "c_")) else col


def _determines(agg: pd.DataFrame, keys: list[str], target: str) -> bool:
    """Whether the key columns fix ``target`` (each key combination has one target)."""
    if not keys:
        return agg[target].nunique() <= 1
    # str of each value, a missing one included ("nan"): astype(str) keeps it missing
    labels = agg[keys].map(str).agg("\x1f".join, axis=1) if keys else None
    return bool((agg.groupby(labels)[target].nunique() <= 1).all())


def _complete(agg: pd.DataFrame, rows: list[str], cols: list[str]) -> tuple[list[str], list[str]]:
    """Rows extended so that rows + cols identify one (scenario, config); notes."""
    notes = []
    keys = rows + cols
    if not _determines(agg, keys, "scenario_id"):
        extra = [c for c in varying_params(agg, "s_") if c not in keys]
        if "s_link" in extra and "s_family" in keys + extra:
            trial = [c for c in extra if c != "s_link"]
            if _determines(agg, keys + trial, "scenario_id"):
                extra = trial
        if not extra or not _determines(agg, keys + extra, "scenario_id"):
            extra = ["scenario"]
        rows = rows + extra
        notes.append(
            "added to the rows so no entry pools different scenarios: "
            + ", ".join(_key_name(c) for c in extra)
        )
    keys = rows + cols
    if not _determines(agg, keys, "config_id"):
        rows = [*rows, "config"]
        notes.append("added to the rows so no entry pools different configurations: config")
    return rows, notes


def _ordered_unique(values: list[tuple]) -> list[tuple]:
    seen: dict[tuple, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


# --------------------------------------------------------------------------- building


def make_table(
    df: pd.DataFrame,
    metric: str,
    rows: str | Sequence[str] | None = None,
    cols: str | Sequence[str] | None = None,
    stat: str = "mean",
) -> Table:
    """Aggregate ``df`` into a :class:`Table` of ``metric``.

    Parameters
    ----------
    df : pandas.DataFrame
        Result rows (:func:`simbench.load`).
    metric : str
        A metric column (``excess_deviance``, ``fit_seconds``, …) or a coefficient summary
        (``efficiency``, ``crb_efficiency``, ``mse_efficiency``).
    rows, cols : str or sequence of str, optional
        Keys (see the module docstring); default rows ``scenario``, columns ``config``.
    stat : str
        One of :data:`STATS`.

    Returns
    -------
    Table
    """
    derived, row_keys, col_keys = _request(df, metric, rows, cols, stat)
    agg = aggregate(df, metrics=[] if derived else [metric])
    row_keys, notes = _complete(agg, row_keys, col_keys)
    direc = direction(metric)

    def labels(keys: list[str], named: bool) -> list[tuple[str, ...]]:
        # column headers carry their key ("n=1000"); row labels sit under a key header
        prefix = [named and k not in _BARE_KEYS for k in keys]
        return [
            tuple(
                f"{_key_name(k)}={format_param(v)}" if pre else format_param(v)
                for k, v, pre in zip(keys, rec, prefix, strict=True)
            )
            for rec in agg[keys].to_numpy(dtype=object)
        ]

    row_of = labels(row_keys, named=False)
    col_of = labels(col_keys, named=True)
    row_labels = _ordered_unique(row_of)
    col_labels = _ordered_unique(col_of)
    r_index = {r: i for i, r in enumerate(row_labels)}
    c_index = {c: j for j, c in enumerate(col_labels)}
    cells = [[TableCell() for _ in col_labels] for _ in row_labels]
    for pos, rec in enumerate(agg.to_dict(orient="records")):
        cell = cells[r_index[row_of[pos]]][c_index[col_of[pos]]]
        cell.present = True
        cell.n_ok = int(rec["n_ok"])
        cell.n_failed = int(rec["n_failed"])
        cell.n_diverged = int(rec["n_diverged"])
        cell.n_skipped = int(rec["n_skipped"])
        cell.n_not_converged = int(rec["n_not_converged"])
        if derived:
            cell.mean = float(rec[metric])
            cell.n = int(rec.get("n_coef_replicates") or 0) if np.isfinite(cell.mean) else 0
        else:
            cell.mean = float(rec[f"{metric}_mean"])
            cell.se = float(rec[f"{metric}_se"])
            cell.sd = float(rec[f"{metric}_sd"])
            cell.median = float(rec[f"{metric}_median"])
            cell.n = int(rec[f"{metric}_n"])
            cell.n_nan = int(rec[f"{metric}_nan"])
    if not derived:
        _fill_extremes(df, agg, metric, cells, r_index, c_index, row_of, col_of)
    _mark_best(cells, direc, stat, derived)
    reps = [c.n for row in cells for c in row if c.present and c.n > 0]
    return Table(
        metric=metric,
        stat=stat,
        row_keys=[_key_name(k) for k in row_keys],
        rows=[tuple(r) for r in row_labels],
        columns=[", ".join(c) for c in col_labels],
        cells=cells,
        direction=direc,
        derived=derived,
        replicates=(min(reps), max(reps)) if reps else (0, 0),
        notes=notes,
    )


def _request(df, metric, rows, cols, stat) -> tuple[bool, list[str], list[str]]:
    """``(derived, row keys, column keys)`` of a table request, checked against ``df``.

    Reads only ``df``'s columns and their types, so a frame without rows checks a request
    as the full table would.
    """
    if stat not in STATS:
        raise ValidationError(f"unknown statistic {stat!r}; accepted: {', '.join(STATS)}")
    if metric not in df.columns and metric not in DERIVED_METRICS:
        raise ValidationError(unknown_metric_message(metric, df))
    derived = metric in DERIVED_METRICS
    if not derived and metric not in metric_columns(df):
        raise ValidationError(f"column {metric!r} is not a numeric metric column")
    row_keys = [resolve_key(df, k) for k in _split_keys(rows)] or ["scenario"]
    col_keys = [resolve_key(df, k) for k in _split_keys(cols)] or ["config"]
    overlap = set(row_keys) & set(col_keys)
    if overlap:
        raise ValidationError(
            f"key(s) {', '.join(sorted(_key_name(k) for k in overlap))} in both rows and columns"
        )
    return derived, row_keys, col_keys


def table_columns(
    df: pd.DataFrame,
    metric: str,
    rows: str | Sequence[str] | None = None,
    cols: str | Sequence[str] | None = None,
    stat: str = "mean",
) -> list[str]:
    """The columns of ``df`` that :func:`make_table` reads for this table, in ``df``'s order.

    ``make_table`` gives the same table from ``df[table_columns(df, ...)]`` as from ``df``.
    ``df`` may hold no rows: the stored columns with their types
    (``simbench.sweep.store.stored_schema(directory).empty_table().to_pandas()``), so that
    a command loads only these columns.  A request ``make_table`` refuses (an unknown
    metric or key) raises the same :class:`~simbench.errors.ValidationError` here.
    """
    derived, row_keys, col_keys = _request(df, metric, rows, cols, stat)
    wanted = _TABLE_COLUMNS | set(row_keys) | set(col_keys)
    wanted |= set(COEFFICIENT_COLUMNS) if derived else {metric}
    return [c for c in df.columns if c in wanted or c.startswith("s_")]


def _fill_extremes(df, agg, metric, cells, r_index, c_index, row_of, col_of) -> None:
    """min/max per entry (not kept by :func:`aggregate`)."""
    ok = df[(df["status"].astype(object) == "ok").to_numpy()]
    values = numeric_values(ok[metric])
    frame = pd.DataFrame(
        {"scenario_id": ok["scenario_id"].to_numpy(), "config_id": ok["config_id"].to_numpy()}
    )
    frame["v"] = values
    g = frame.groupby(["scenario_id", "config_id"], sort=False)["v"]
    lo, hi = g.min(), g.max()
    for pos, (sid, cid) in enumerate(zip(agg["scenario_id"], agg["config_id"], strict=True)):
        cell = cells[r_index[row_of[pos]]][c_index[col_of[pos]]]
        if (sid, cid) in lo.index:
            cell.min = float(lo[(sid, cid)])
            cell.max = float(hi[(sid, cid)])


def _mark_best(table_cells: list[list[TableCell]], direc: Direction, stat: str, derived: bool):
    """Bold the best entry of each row, and every entry that ties with it as displayed.

    Two entries tie when they differ by at most half a unit in the last digit shown for
    the best one: four optimisers that all reach the MLE print the same number and are
    all marked, rather than one of them by a difference in the eighth digit.
    """
    if not direc.ordered or stat not in ("mean", "mean_sd", "median"):
        return
    for row in table_cells:
        vals = np.array([c.value(stat) if c.present and c.n else np.nan for c in row])
        bad = direc.badness(vals)
        if np.sum(np.isfinite(bad)) < 2:
            continue  # a row with a single entry has no "best"
        i_best = int(np.nanargmin(bad))
        kind, num, _ = _entry_parts(row[i_best], stat, derived)
        unit = 0.0
        if kind == "value":
            unit = _last_digit(num, row[i_best].value(stat), fixed=derived)
        for c, b in zip(row, bad, strict=True):
            c.best = bool(np.isfinite(b) and b <= bad[i_best] + 0.5 * unit)


def _last_digit(num: _Number, x: float, fixed: bool) -> float:
    """The value of one unit in the last digit shown for ``x`` (0 for an exact 0)."""
    if num.error is None and not fixed:
        # four significant digits, trailing zeros dropped: count them back in
        return 0.0 if x == 0 else 10.0 ** (math.floor(math.log10(abs(x))) - 3)
    decimals = len(num.value.split(".")[1]) if "." in num.value else 0
    return 10.0 ** (-decimals + (num.exponent or 0))


# --------------------------------------------------------------------------- numbers


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class _Number:
    """A formatted estimate: mantissa text, optional uncertainty text, optional exponent."""

    value: str
    error: str | None = None
    exponent: int | None = None


def format_number(x: float, err: float | None = None, decimals: int | None = None) -> _Number:
    """Digits driven by the uncertainty: two significant digits of ``err``.

    Without a usable ``err`` (none, or below ``1e-12 |x|``: a constant up to rounding),
    ``decimals`` decimals if given, else four significant digits.  Values far from 1 (below
    1e-3 or from 1e5) share a power of ten with their error: ``(1.32 ± 0.21)×10⁻⁷``.
    """
    if not math.isfinite(x):
        return _Number("—")
    has_err = err is not None and math.isfinite(err) and err > 1e-12 * abs(x)
    scale = max(abs(x), err if has_err else 0.0)
    exponent = None
    if scale != 0 and (scale < 1e-3 or scale >= 1e5):
        exponent = math.floor(math.log10(scale))
        x = x / 10.0**exponent
        if has_err:
            err = err / 10.0**exponent
    if not has_err:
        if decimals is not None and exponent is None:
            return _Number(f"{x:.{decimals}f}")
        if exponent is not None:
            return _Number(f"{x:.3f}".rstrip("0").rstrip("."), None, exponent)
        text = f"{x:.4g}"
        if "e" in text:  # between 1e-3 and 1e5 .4g only uses exponents for >= 1e4
            text = f"{x:.0f}"
        return _Number(text)
    decimals = max(0, 1 - math.floor(math.log10(err)))
    decimals = min(decimals, 12)
    return _Number(f"{x:.{decimals}f}", f"{err:.{decimals}f}", exponent)


# --------------------------------------------------------------------------- renderers


def _entry_parts(cell: TableCell, stat: str, derived: bool) -> tuple[str, _Number | None, str]:
    """``(kind, number, note)`` of an entry.

    ``kind`` is ``"absent"`` (no such combination), ``"n/a"`` (skipped: not applicable),
    ``"missing"`` (nothing to average) or ``"value"``; ``note`` is ``" (2 failed, 1 NaN)"``,
    ``" (50 not converged)"`` (fits that stopped at their iteration limit, or otherwise
    without meeting a stopping rule: averaged, but not at the optimum they aimed for) or
    empty.
    """
    if not cell.present:
        return "absent", None, ""
    notes = []
    if cell.n_failed:
        notes.append(f"{cell.n_failed} failed")
    if cell.n_diverged:
        notes.append(f"{cell.n_diverged} diverged")
    if cell.n_not_converged:
        notes.append(f"{cell.n_not_converged} not converged")
    if cell.n_nan and not derived:
        notes.append(f"{cell.n_nan} NaN")
    note = f" ({', '.join(notes)})" if notes else ""
    if cell.n_ok == 0 and cell.n_failed == 0 and cell.n_diverged == 0 and cell.n_skipped:
        return "n/a", None, ""
    if cell.n == 0 or not math.isfinite(cell.value(stat)):
        return "missing", None, note
    if derived:
        return "value", format_number(cell.mean, decimals=3), note
    if stat == "mean":
        return "value", format_number(cell.mean, cell.se if cell.n > 1 else None), note
    if stat == "mean_sd":
        return "value", format_number(cell.mean, cell.sd if cell.n > 1 else None), note
    return "value", format_number(cell.value(stat)), note


def _entry_text(cell: TableCell, table: Table, number, bold, dash: str, esc=str) -> str:
    """An entry in one format: ``number(num)`` and ``bold(text)`` do the markup."""
    kind, num, note = _entry_parts(cell, table.stat, table.derived)
    if kind == "absent":
        return ""
    if kind == "n/a":
        return "n/a"
    if kind == "missing":
        return dash + esc(note)
    text = number(num)
    return (bold(text) if cell.best else text) + esc(note)


def _plain_number(num: _Number) -> str:
    body = num.value if num.error is None else f"{num.value} ± {num.error}"
    if num.exponent is None:
        return body
    power = f"×10{str(num.exponent).translate(_SUPERSCRIPT)}"
    return f"({body}){power}" if num.error is not None else f"{body}{power}"


def _latex_number(num: _Number) -> str:
    body = num.value if num.error is None else f"{num.value} \\pm {num.error}"
    if num.exponent is not None:
        body = f"({body})" if num.error is not None else body
        body += f"\\times 10^{{{num.exponent}}}"
    return f"${body}$"


def _html_number(num: _Number) -> str:
    body = num.value if num.error is None else f"{num.value} ± {num.error}"
    if num.exponent is None:
        return body
    exp = str(num.exponent).replace("-", "−")
    return (f"({body})" if num.error is not None else body) + f"×10<sup>{exp}</sup>"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``_`` in metric and parameter names above all)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text)).replace("±", "$\\pm$")


def _render_md(table: Table, caption: bool) -> str:
    rows = [
        [*label, *(_entry_text(c, table, _plain_number, lambda t: f"**{t}**", "—") for c in row)]
        for label, row in zip(table.rows, table.cells, strict=True)
    ]
    align = "l" * len(table.row_keys) + "r" * len(table.columns)
    out = md_table([*table.row_keys, *table.columns], rows, align)
    if caption:
        out = f"{table.caption()}\n\n{out}"
    return out


def _render_latex(table: Table, caption: bool) -> str:
    spec = "l" * len(table.row_keys) + "r" * len(table.columns)
    header = [latex_escape(h) for h in (*table.row_keys, *table.columns)]
    lines = ["% requires \\usepackage{booktabs}"]
    if caption:
        lines += [
            "\\begin{table}[htbp]",
            "\\centering",
            f"\\caption{{{latex_escape(table.caption())}}}",
            f"\\label{{tab:{latex_escape(table.metric).replace(chr(92), '')}}}",
        ]
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(header) + " \\\\"]
    lines.append("\\midrule")
    for label, row in zip(table.rows, table.cells, strict=True):
        entries = [
            _entry_text(
                c, table, _latex_number, lambda t: f"{{\\boldmath {t}}}", "---", latex_escape
            )
            for c in row
        ]
        lines.append(" & ".join([*map(latex_escape, label), *entries]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption:
        lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def _render_html(table: Table, caption: bool) -> str:
    esc = html.escape
    lines = ['<table class="simbench-table">']
    if caption:
        lines.append(f"  <caption>{esc(table.caption())}</caption>")
    lines.append("  <thead>")
    lines.append(
        "    <tr>"
        + "".join(f'<th scope="col">{esc(h)}</th>' for h in (*table.row_keys, *table.columns))
        + "</tr>"
    )
    lines += ["  </thead>", "  <tbody>"]
    for label, row in zip(table.rows, table.cells, strict=True):
        parts = [f'<th scope="row">{esc(v)}</th>' for v in label]
        for cell in row:
            text = _entry_text(
                cell, table, _html_number, lambda t: f"<strong>{t}</strong>", "—", html.escape
            )
            marked = cell.n_failed or cell.n_diverged
            cls = ' class="best"' if cell.best else (' class="failed"' if marked else "")
            parts.append(f'<td{cls} style="text-align:right">{text}</td>')
        lines.append("    <tr>" + "".join(parts) + "</tr>")
    lines += ["  </tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def _render_csv(table: Table) -> str:
    frame = table.to_frame()
    buf = io.StringIO()
    if frame.empty:
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*table.row_keys, "column", "metric", "mean", "se", "best"])
        return buf.getvalue()
    frame.to_csv(buf, index=False, lineterminator="\n", float_format="%.10g")
    return buf.getvalue()


def render(table: Table, fmt: str = "md", caption: bool = True) -> str:
    """The table as text in ``fmt`` (one of :data:`FORMATS`).

    ``caption`` adds the statistic, the replicate count and the best-entry rule (a line
    above the Markdown table, ``\\caption`` in a LaTeX ``table`` environment, ``<caption>``
    in HTML; CSV has none).
    """
    if fmt == "md":
        return _render_md(table, caption)
    if fmt == "latex":
        return _render_latex(table, caption)
    if fmt == "html":
        return _render_html(table, caption)
    if fmt == "csv":
        return _render_csv(table)
    raise ValidationError(f"unknown table format {fmt!r}; accepted: {', '.join(FORMATS)}")
