"""Numbers in tables: an uncertainty that is only rounding is not printed."""

from __future__ import annotations

from simbench.report.tables import format_number


def test_an_error_at_rounding_level_is_dropped():
    # a constant over replicates (the share of a scenario's variance, say) whose computed
    # standard error is a few ulps: printed as the constant, not "0.300000000000 ± 0.0..."
    num = format_number(0.30000000000000004, 5.6e-17)
    assert (num.value, num.error) == ("0.3", None)
    # a real uncertainty keeps its two significant digits
    num = format_number(0.3, 0.0123)
    assert (num.value, num.error) == ("0.300", "0.012")
    num = format_number(1.5e-7, 2.1e-8)
    assert (num.value, num.error, num.exponent) == ("1.50", "0.21", -7)
