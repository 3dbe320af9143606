"""The one Markdown table writer of the reports.

Tables (:mod:`~simbench.report.tables`), the report (:mod:`~simbench.report.report`), the
crossover section (:mod:`~simbench.report.crossover`) and comparisons
(:mod:`~simbench.report.compare`) all write GitHub Markdown tables through :func:`md_table`,
so that a cell is escaped once and the same way everywhere.

>>> print(md_table(["config", "mean"], [["glm | irls", 0.5]]), end="")
| config | mean |
|:---|---:|
| glm \\| irls | 0.5 |
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["md_cell", "md_table"]

_ALIGN = {"l": ":---", "r": "---:", "c": ":---:"}


def md_cell(value: object) -> str:
    """``value`` as the text of one table cell: ``|`` escaped, a line break read as a space
    (either would end the cell or the row)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[object], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A GitHub Markdown table, ending with a newline.

    Parameters
    ----------
    header : sequence
        The column titles.
    rows : sequence of sequences
        The cells, one sequence per row, each as long as ``header``.
    align : str
        One letter per column: ``l`` (left), ``r`` (right) or ``c`` (centre); default
        the first column left and the others right (a label, then numbers).
    """
    align = align or ("l" + "r" * (len(header) - 1))
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")
    lines = [
        "| " + " | ".join(md_cell(h) for h in header) + " |",
        "|" + "|".join(_ALIGN[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
