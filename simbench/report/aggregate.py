"""Aggregation of result rows across replicates: the names of the reporting modules by concern.

Every number a table, a figure or a comparison shows is computed from the rows of
:func:`simbench.load` (one row per cell = scenario × configuration × replicate) by one of:

* :mod:`~simbench.report.frame`: which rows count (statuses), which columns are metrics,
  a column as floats, the rows of each (scenario, configuration) group;
* :mod:`~simbench.report.labels`: readable scenario and configuration labels;
* :mod:`~simbench.report.summary`: summaries across replicates (:func:`aggregate`: mean,
  sd, Monte Carlo SE, median) and the cell counts per status (:func:`cell_counts`);
* :mod:`~simbench.report.inference`: per-coefficient bias, variance, MSE and efficiencies
  (:func:`coefficients`, :func:`efficiency`) and Wald coverage (:func:`coverage`);
* :mod:`~simbench.report.directions`: which way each metric improves.

This module keeps their public names importable from one place, as before the split.
"""

from __future__ import annotations

from .directions import Direction, direction
from .frame import (
    DERIVED_METRICS,
    FAILED_STATUSES,
    STATUS_ORDER,
    TIMING_COLUMNS,
    metric_columns,
    numeric_values,
)
from .inference import coefficients, coverage, efficiency
from .labels import config_labels, format_param, scenario_labels, varying_params
from .summary import aggregate, cell_counts

__all__ = [
    "DERIVED_METRICS",
    "FAILED_STATUSES",
    "STATUS_ORDER",
    "TIMING_COLUMNS",
    "Direction",
    "aggregate",
    "cell_counts",
    "coefficients",
    "config_labels",
    "coverage",
    "direction",
    "efficiency",
    "format_param",
    "metric_columns",
    "numeric_values",
    "scenario_labels",
    "varying_params",
]
