"""A dependency-free progress line and the end-of-run summary table.

The progress line is redrawn in place on a terminal (at most ten times a second)::

    [  57/ 240]  ok 51 · diverged 2 · error 1 · timeout 0 · skipped 3 | 12.4 cells/s | ETA 0:00:15

When the stream is not a terminal nothing is drawn while the run goes on; only the final
line is written when the run ends, so logs stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import IO, Any

import numpy as np

from .status import FAILED_STATUSES
from .store import STATUSES

__all__ = ["Progress", "format_duration", "summary_table"]

# metrics shown in the summary table when the rows have them (mean over ok cells)
SUMMARY_METRICS = ("coef_z_mle", "coef_err_truth", "excess_deviance", "fit_seconds")


def format_duration(seconds: float) -> str:
    """``3725.2`` -> ``"1:02:05"``; ``"--"`` for unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts by status, rate and ETA of a run.

    Parameters
    ----------
    total : int
        Cells this run will produce (skipped ones included).
    enabled : bool
        Draw anything at all.
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    live : bool, optional
        Redraw in place; default: whether ``stream`` is a terminal.
    """

    def __init__(
        self, total: int, enabled: bool = True, stream: IO[str] | None = None, live=None
    ) -> None:
        self.total = int(total)
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self.counts: Counter[str] = Counter()
        self.start = time.monotonic()
        self._computed = 0  # cells that went through an executor (rate and ETA)
        self._last_draw = 0.0
        self._width = 0

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def update(self, status: str, computed: bool = True) -> None:
        self.counts[status] += 1
        if computed:
            self._computed += 1
        self.draw()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self._computed / elapsed if elapsed > 0 else 0.0
        remaining = self.total - self.done
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else float("nan"))
        width = len(str(self.total))
        counts = " · ".join(f"{s} {self.counts.get(s, 0)}" for s in STATUSES)
        return (
            f"[{self.done:>{width}}/{self.total}]  {counts} | {rate:.1f} cells/s | "
            f"{'ETA ' + format_duration(eta) if remaining else 'in ' + format_duration(elapsed)}"
        )

    def draw(self, force: bool = False) -> None:
        if not (self.enabled and self.live):
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        text = self.line()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        """Write the final line (on a terminal, over the live one)."""
        if not self.enabled:
            return
        if self.live:
            self.draw(force=True)
            self.stream.write("\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None or math.isnan(value) else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_table(table, metrics: tuple[str, ...] = SUMMARY_METRICS) -> str:
    """Per configuration: cells by outcome and the mean of a few key metrics over ok cells.

    Parameters
    ----------
    table : pyarrow.Table, pandas.DataFrame or dict of NumPy arrays
        Result rows (as from :func:`simbench.sweep.store.load_table`,
        :func:`simbench.load` or :func:`simbench.sweep.store.load_arrays`); the columns
        it uses are ``config_index`` (else the label), ``config_label`` (else
        ``config_id``), ``status`` and ``metrics``.
    metrics : tuple of str
        Metric columns to average (missing values skipped) when present and numeric.

    Returns
    -------
    str
        A plain-text table, one line per configuration in sweep order.
    """
    columns = _columns(table)
    if not columns or not len(next(iter(columns.values()))):
        return "(no results)"
    label = "config_label" if "config_label" in columns else "config_id"
    shown = [m for m in metrics if m in columns and columns[m].dtype.kind in "fiu"]
    headers = [
        "config",
        "cells",
        "ok",
        "diverged",
        "failed",
        "skipped",
        *(f"mean {m}" for m in shown),
    ]
    key = columns["config_index" if "config_index" in columns else label]
    status = columns["status"].astype(str)
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(key.tolist()):  # the rows of each configuration, in stored order
        groups.setdefault(k, []).append(i)
    rows = []
    for k in sorted(groups):
        at = np.array(groups[k])
        st = status[at]
        ok = at[st == "ok"]
        rows.append(
            [
                str(columns[label][at[0]]),
                str(at.size),
                str(ok.size),
                str(int(np.sum(st == "diverged"))),
                str(int(np.sum(np.isin(st, sorted(FAILED_STATUSES))))),
                str(int(np.sum(st == "skipped"))),
                *(_fmt(_mean(columns[m][ok])) if ok.size else "-" for m in shown),
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt_row(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    lines = [fmt_row(headers), fmt_row(["-" * w for w in widths])]
    lines += [fmt_row(r) for r in rows]
    return "\n".join(lines)


def _columns(table) -> dict[str, np.ndarray]:
    """The columns of a pyarrow Table or a pandas DataFrame as NumPy arrays (a dict of
    them, as :func:`~simbench.sweep.store.load_arrays` gives, as it is)."""
    if isinstance(table, dict):
        return table
    if hasattr(table, "column_names"):  # a pyarrow Table
        from .arrow import to_numpy

        return {c: to_numpy(table.column(c)) for c in table.column_names}
    return {c: table[c].to_numpy() for c in table.columns}


def _mean(values: np.ndarray) -> float:
    """The mean without the missing values (NaN, None), as pandas' ``mean``; NaN if none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan
