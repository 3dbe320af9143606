"""``simbench table``: every format, best entry marked, failures shown, readable labels."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from simbench.errors import ValidationError
from simbench.report import commands
from simbench.report.aggregate import aggregate
from simbench.report.synthetic import synthetic_results, write_results
from simbench.report.tables import (
    FORMATS,
    STATS,
    format_number,
    latex_escape,
    make_table,
    render,
)


def run_cli(argv: list[str]) -> int:
    """``simbench ARGV`` through the real entry point (a command that is not registered fails)."""
    from simbench import cli

    return cli.main(argv)


@pytest.fixture(scope="module")
def results():
    """Two families x two n x three configurations, 6 replicates; 'mlp' diverges twice at
    bernoulli n=100 and 'early-stop' is skipped (not applicable) at poisson n=400."""
    df = synthetic_results(families=("poisson", "bernoulli"), ns=(100, 400), replicates=6)
    fail = (df["c_name"] == "mlp") & (df["s_family"] == "bernoulli") & (df["s_n"] == 100)
    fail &= df["replicate"] < 2
    df.loc[fail, "status"] = "diverged"
    df.loc[fail, "excess_deviance"] = np.nan
    skip = (df["c_name"] == "early-stop") & (df["s_family"] == "poisson") & (df["s_n"] == 400)
    df.loc[skip, "status"] = "skipped"
    return df


@pytest.fixture(scope="module")
def results_dir(results, tmp_path_factory):
    return write_results(results, tmp_path_factory.mktemp("tables") / "res")


def _expected(results, family, n, config, metric="excess_deviance"):
    agg = aggregate(results, metrics=[metric])
    row = agg[(agg["s_family"] == family) & (agg["s_n"] == n) & (agg["config"] == config)]
    return row.iloc[0]


def test_structure_labels_and_values(results):
    table = make_table(results, "excess_deviance")
    assert table.row_keys == ["scenario"]
    assert table.rows == [
        ("poisson, n=100",),
        ("poisson, n=400",),
        ("bernoulli, n=100",),
        ("bernoulli, n=400",),
    ]
    assert table.columns == ["glm-as-nn", "mlp", "early-stop"]
    cell = table.cells[0][1]
    exp = _expected(results, "poisson", 100, "mlp")
    assert cell.mean == pytest.approx(exp["excess_deviance_mean"])
    assert cell.se == pytest.approx(exp["excess_deviance_sd"] / np.sqrt(6))
    assert (cell.n, cell.n_ok, cell.n_failed) == (6, 6, 0)


def test_best_per_row_follows_the_direction(results):
    table = make_table(results, "excess_deviance")
    for row in table.cells:
        means = [c.mean for c in row]
        best = [c.best for c in row]
        assert sum(best) == 1
        assert means[best.index(True)] == np.nanmin(means)
    auc = make_table(results, "auc", rows="n", cols="config")  # family added to rows
    for label, row in zip(auc.rows, auc.cells, strict=True):
        means = [c.mean for c in row]
        if label[auc.row_keys.index("family")] == "bernoulli":
            assert means[[c.best for c in row].index(True)] == np.nanmax(means)
        else:  # Poisson has no AUC: nothing to mark
            assert not any(c.best for c in row)
    slope = make_table(results, "calib_slope")
    for row in slope.cells:
        dist = [abs(c.mean - 1.0) if c.present and c.n else np.inf for c in row]
        assert [c.best for c in row].index(True) == int(np.argmin(dist))


def test_markdown(results):
    text = render(make_table(results, "excess_deviance"), "md")
    lines = text.strip().splitlines()
    assert lines[0].startswith("excess_deviance: mean ± Monte Carlo standard error over")
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| scenario | glm-as-nn | mlp | early-stop |"
    assert table[1] == "|:---|---:|---:|---:|"
    assert len(table) == 2 + 4
    assert all(line.count("|") == 5 for line in table)
    assert sum(line.count("**") for line in table) == 2 * 4  # one bold entry per row
    bern100 = next(line for line in table if line.startswith("| bernoulli, n=100"))
    # diverged, not failed: the count of simbench status (error and timeout) is "failed"
    assert "(2 diverged)" in bern100.split("|")[3]  # mlp column
    assert "failed" not in bern100
    pois400 = next(line for line in table if line.startswith("| poisson, n=400"))
    assert pois400.split("|")[4].strip() == "n/a"  # skipped early-stop
    assert " ± " in table[2]


def test_failures_without_values_are_shown_not_hidden():
    df = synthetic_results(families=("poisson",), ns=(200,), replicates=3)
    df.loc[df["c_name"] == "mlp", "status"] = "error"
    table = make_table(df, "coef_z_mle")
    text = render(table, "md", caption=False)
    assert "— (3 failed)" in text
    assert "— (3 failed)" in render(table, "html")
    assert "--- (3 failed)" in render(table, "latex")
    csv = pd.read_csv(io.StringIO(render(table, "csv")))
    mlp = csv[csv["column"] == "mlp"].iloc[0]
    assert mlp["n_failed"] == 3 and mlp["n_ok"] == 0 and np.isnan(mlp["mean"])


def test_latex_booktabs_and_escaping(results):
    text = render(make_table(results, "excess_deviance"), "latex")
    assert "\\usepackage{booktabs}" in text
    for token in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrr}"):
        assert token in text
    assert "\\caption{excess\\_deviance: mean" in text
    assert "\\label{tab:excess_deviance}" in text
    body = text.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == 4
    assert all(line.endswith("\\\\") and line.count("&") == 3 for line in body)
    assert sum(line.count("\\boldmath") for line in body) == 4
    assert "$" in body[0] and "\\pm" in body[0]
    bare = render(make_table(results, "excess_deviance"), "latex", caption=False)
    assert "\\begin{table}" not in bare and "\\begin{tabular}" in bare
    assert latex_escape("a_b & 50% #1 $x$ {y} ~^\\") == (
        "a\\_b \\& 50\\% \\#1 \\$x\\$ \\{y\\} \\textasciitilde{}\\textasciicircum{}"
        "\\textbackslash{}"
    )


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html(results):
    text = render(make_table(results, "excess_deviance"), "html")
    parser = _Cells()
    parser.feed(text)
    assert parser.tags.count("table") == 1 and "caption" in parser.tags
    assert parser.rows[0] == ["scenario", "glm-as-nn", "mlp", "early-stop"]
    assert len(parser.rows) == 5 and all(len(r) == 4 for r in parser.rows)
    assert parser.tags.count("strong") == 4
    assert "(2 diverged)" in parser.rows[3][2]
    assert parser.rows[2][3] == "n/a"


def test_csv_is_long_with_raw_numbers(results):
    table = make_table(results, "excess_deviance")
    frame = pd.read_csv(io.StringIO(render(table, "csv")))
    assert list(frame.columns[:4]) == ["scenario", "column", "metric", "mean"]
    for col in ("se", "sd", "median", "n", "n_ok", "n_failed", "n_skipped", "best"):
        assert col in frame.columns
    assert len(frame) == 12
    exp = _expected(results, "bernoulli", 400, "glm-as-nn")
    row = frame[(frame["scenario"] == "bernoulli, n=400") & (frame["column"] == "glm-as-nn")]
    assert row["mean"].iloc[0] == pytest.approx(exp["excess_deviance_mean"], rel=1e-9)
    assert row["se"].iloc[0] == pytest.approx(exp["excess_deviance_se"], rel=1e-9)
    assert (frame.groupby("scenario")["best"].apply(lambda s: (s == "*").sum()) == 1).all()


def test_parameter_keys_and_automatic_completion(results):
    table = make_table(results, "coef_err_truth", rows="family", cols="n")
    assert table.row_keys == ["family", "config"]
    assert table.columns == ["n=100", "n=400"]
    assert table.notes and "config" in table.notes[0]
    assert table.rows[:3] == [
        ("poisson", "glm-as-nn"),
        ("poisson", "mlp"),
        ("poisson", "early-stop"),
    ]
    table = make_table(results, "coef_err_truth", rows=["s_n"], cols="config")
    assert table.row_keys == ["n", "family"]
    with pytest.raises(ValidationError, match="did you mean 'family'"):
        make_table(results, "coef_err_truth", rows="famliy")
    with pytest.raises(ValidationError, match="both rows and columns"):
        make_table(results, "coef_err_truth", rows="config", cols="config")
    with pytest.raises(ValidationError, match="unknown statistic"):
        make_table(results, "coef_err_truth", stat="mode")


def test_other_statistics(results):
    med = make_table(results, "fit_seconds", stat="median")
    exp = _expected(results, "poisson", 100, "mlp", "fit_seconds")
    assert med.cells[0][1].median == pytest.approx(exp["fit_seconds_median"])
    assert " ± " not in render(med, "md", caption=False)
    sd = make_table(results, "fit_seconds", stat="mean_sd")
    assert " ± " in render(sd, "md")
    mx = make_table(results, "fit_seconds", stat="max")
    raw = results[(results["c_name"] == "mlp") & (results["s_n"] == 100)]
    raw = raw[(raw["s_family"] == "poisson") & (raw["status"] == "ok")]
    assert mx.cells[0][1].max == pytest.approx(raw["fit_seconds"].max())
    assert not any(
        c.best for row in make_table(results, "fit_seconds", stat="sd").cells for c in row
    )


def test_efficiency_table(results):
    table = make_table(results, "efficiency")
    assert table.derived
    text = render(table, "md")
    assert "1.000" in text  # the MLE-equivalent configuration
    assert "mean over the coefficients of per-coefficient ratios" in text
    # an efficiency above 1 comes from bias, so no "best" is marked; the MSE ratio has one
    assert "**" not in text
    assert "**" in render(make_table(results, "mse_efficiency"), "md")


def test_entries_equal_as_displayed_are_all_best():
    df = synthetic_results(families=("poisson",), ns=(300,), replicates=5)
    first = make_table(df, "excess_deviance")
    best = first.columns[[c.best for c in first.cells[0]].index(True)]
    twin = df[df["c_name"] == best].copy()
    twin["config_id"] = "twin"
    twin["config_label"] = "twin"
    twin["cell_id"] = twin["cell_id"] + "-twin"
    # the twin differs in the 9th digit only: printed identically, so both are best
    twin["excess_deviance"] *= 1 + 1e-9
    table = make_table(pd.concat([df, twin], ignore_index=True), "excess_deviance")
    marks = dict(zip(table.columns, (c.best for c in table.cells[0]), strict=True))
    assert marks[best] and marks["twin"]
    assert sum(marks.values()) == 2
    # an exact zero without SE ties only with other exact zeros
    zero = df.copy()
    zero.loc[zero["c_name"] == "glm-as-nn", "coef_z_mle"] = 0.0
    row = make_table(zero, "coef_z_mle").cells[0]
    assert [c.best for c in row] == [True, False, False]


def test_number_formatting():
    def plain(x, e=None):
        from simbench.report.tables import _plain_number

        return _plain_number(format_number(x, e))

    assert plain(0.012345, 0.00067) == "0.01235 ± 0.00067"
    assert plain(12.3456, 0.5) == "12.35 ± 0.50"
    assert plain(123.0, 45.0) == "123 ± 45"
    assert plain(2.7e-8, 1.04e-8) == "(2.7 ± 1.0)×10⁻⁸"
    assert plain(123456.0, 1234.0) == "(1.235 ± 0.012)×10⁵"
    assert plain(0.5) == "0.5"
    assert plain(3.3e-9) == "3.3×10⁻⁹"
    assert plain(float("nan")) == "—"
    assert plain(1.5, 0.0) == "1.5"


def test_command_formats_and_errors(results_dir, tmp_path, capsys):
    assert commands.TABLE_FORMATS == FORMATS and commands.TABLE_STATS == STATS
    for fmt in FORMATS:
        out = tmp_path / f"t.{fmt}"
        code = run_cli(
            ["table", str(results_dir), "--metric", "excess_deviance", "-f", fmt, "-o", str(out)]
        )
        assert code == 0
        assert out.read_text().strip()
    assert run_cli(["table", str(results_dir), "--metric", "coef_z_mle", "--rows", "n"]) == 0
    captured = capsys.readouterr()
    assert "| n | family | glm-as-nn | mlp | early-stop |" in captured.out
    assert "note: added to the rows" in captured.err
    assert run_cli(["table", str(results_dir), "--metric", "nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
    assert run_cli(["table", str(tmp_path / "missing"), "--metric", "auc"]) == 2


def test_a_key_without_a_value_for_some_configurations():
    # an irls-like configuration has no learning rate: its "lr" is missing, not a crash
    df = synthetic_results(families=("poisson",), ns=(100, 400), replicates=3)
    df.loc[df["c_name"] == "glm-as-nn", "c_lr"] = np.nan
    table = make_table(df, "coef_err_truth", rows="n", cols="lr,name")
    assert table.columns == ["lr=none, glm-as-nn", "lr=0.01, mlp", "lr=0.1, early-stop"]
    assert table.rows == [("100",), ("400",)] and not table.notes
