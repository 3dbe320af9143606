"""Table entries say how many of their fits did not converge (issue: claim 1's largest
``coef_z_mle`` came from cells stopped at their epoch limit, and no table said so)."""

from __future__ import annotations

import numpy as np

from simbench.report import make_table, render
from simbench.report.synthetic import synthetic_results


def _results():
    df = synthetic_results(families=("poisson",), ns=(200,), replicates=6, seed=1)
    df["converged"] = True
    df["status"] = "ok"
    names = df["c_name"].unique()
    first, second = names[0], names[1]
    # three ok fits of the first configuration stopped at their limit; one failed cell of the
    # second that also did not converge counts as failed, not as "not converged"
    stop = np.flatnonzero((df["c_name"] == first).to_numpy())[:3]
    df.loc[df.index[stop], "converged"] = False
    fail = np.flatnonzero((df["c_name"] == second).to_numpy())[0]
    df.loc[df.index[fail], ["converged", "status"]] = [False, "error"]
    return df, first, second


def test_entries_count_and_show_the_fits_that_did_not_converge():
    df, first, second = _results()
    table = make_table(df, "excess_deviance", rows="scenario", cols="c_name", stat="mean")
    j1, j2 = table.columns.index(first), table.columns.index(second)
    assert table.cells[0][j1].n_not_converged == 3
    assert table.cells[0][j1].n_ok == 6  # still averaged: they are ok cells
    assert table.cells[0][j2].n_not_converged == 0 and table.cells[0][j2].n_failed == 1
    md = render(table, "md")
    row = next(line for line in md.splitlines() if line.startswith("| poisson"))
    entries = [e.strip() for e in row.strip("|").split("|")]
    assert entries[1 + j1].endswith("(3 not converged)")
    assert entries[1 + j2].endswith("(1 failed)")
    assert sum("not converged)" in e for e in entries) == 1
    assert '"not converged": fits that stopped without meeting a stopping rule' in md
    assert table.to_frame().set_index("column").loc[first, "n_not_converged"] == 3
    for fmt in ("html", "latex", "csv"):
        assert "not converged" in render(table, fmt) or fmt == "csv"


def test_a_table_of_converged_fits_says_nothing_about_convergence():
    df, _, _ = _results()
    df["converged"] = True
    md = render(make_table(df, "excess_deviance", stat="median"), "md")
    assert "not converged" not in md
