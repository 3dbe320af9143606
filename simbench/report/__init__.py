"""Reporting: aggregation across replicates, tables, figures, reports and comparisons."""
