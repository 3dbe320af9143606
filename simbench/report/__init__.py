"""Reporting: aggregation across replicates, tables, figures, reports and comparisons.

The public functions, loaded on first use (``import simbench.report`` stays cheap)::

    from simbench.report import aggregate, make_table, render, write_report, compare
    df = simbench.load("results/quickstart")
    agg = aggregate(df)                      # one row per (scenario, config): mean, sd, MC SE
    print(render(make_table(df, "excess_deviance"), "md"))
    write_report("results/quickstart")       # results/quickstart/report.md + figures/
    result = compare("results/a", "results/b")
    print(result.format()); result.exit_code  # 3 when B regressed

Modules, by concern: :mod:`~simbench.report.frame` (which rows and columns count),
:mod:`~simbench.report.labels` (scenario and configuration labels),
:mod:`~simbench.report.summary` (summaries across replicates),
:mod:`~simbench.report.inference` (coefficients: bias, efficiency, coverage),
:mod:`~simbench.report.directions` (which way a metric improves), whose names
:mod:`~simbench.report.aggregate` also holds; :mod:`~simbench.report.markdown` (the one
Markdown table writer), :mod:`~simbench.report.tables`,
:mod:`~simbench.report.figures`, :mod:`~simbench.report.report`,
:mod:`~simbench.report.crossover`, :mod:`~simbench.report.compare`,
:mod:`~simbench.report.commands` (the CLI subcommands) and
:mod:`~simbench.report.synthetic` (realistic fake results for tests and demos).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # from the modules by concern, not from the module simbench.report.aggregate, whose
    # import would bind the package's name "aggregate" to the module, not the function
    "aggregate": "simbench.report.summary",
    "cell_counts": "simbench.report.summary",
    "coefficients": "simbench.report.inference",
    "coverage": "simbench.report.inference",
    "efficiency": "simbench.report.inference",
    "direction": "simbench.report.directions",
    "make_table": "simbench.report.tables",
    "render": "simbench.report.tables",
    "write_report": "simbench.report.report",
    "compare": "simbench.report.compare",
    "metric_vs_n_figure": "simbench.report.figures",
    "convergence_figure": "simbench.report.figures",
    "efficiency_figure": "simbench.report.figures",
    "balance_figure": "simbench.report.figures",
    "save_figure": "simbench.report.figures",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'simbench.report' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
