"""One Markdown table writer for tables, report, crossover and compare; reporting by concern.

* :func:`md_table` escapes a cell once (``|`` and line breaks) and aligns as asked;
* no other module of the package writes a Markdown table by hand;
* a configuration label holding ``|`` and a line break comes out of ``simbench table``,
  ``compare`` and ``report`` as one cell: every row of every Markdown table in their output
  has as many cells as its header;
* :mod:`simbench.report.aggregate` keeps the public names of the modules it was split into.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simbench.report import directions, frame, inference, labels, summary
from simbench.report.compare import compare
from simbench.report.markdown import md_cell, md_table
from simbench.report.report import write_report
from simbench.report.synthetic import synthetic_results, write_results
from simbench.report.tables import make_table, render

ODD = "mlp | wide\nnet"  # a label that would break a hand-written Markdown row


def test_md_table_escapes_and_aligns():
    text = md_table(["name", "value"], [["a|b", 1.5], ["c\nd", None]])
    assert text == ("| name | value |\n|:---|---:|\n| a\\|b | 1.5 |\n| c d | None |\n")
    assert md_table(["a", "b", "c"], [], "lcr").splitlines()[1] == "|:---|:---:|---:|"
    assert md_cell("x|y|z") == "x\\|y\\|z"
    with pytest.raises(ValueError, match="2 letters for 3 columns"):
        md_table(["a", "b", "c"], [], "lr")


def _cells(row: str) -> int:
    """The cells of a Markdown table row: the pipes that are not escaped, less one."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def _tables(text: str) -> list[list[str]]:
    """The Markdown tables of ``text``: runs of lines that start and end with a pipe."""
    out: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|") and line.endswith("|"):
            current.append(line)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _assert_well_formed(text: str, minimum: int = 1) -> int:
    tables = _tables(text)
    assert len(tables) >= minimum, text
    for table in tables:
        width = _cells(table[0])
        assert re.fullmatch(r"\|(?::?---:?\|)+", table[1]), table[1]
        for row in table:
            assert _cells(row) == width, (row, width)
    return len(tables)


@pytest.fixture(scope="module")
def odd_results():
    df = synthetic_results(families=("poisson", "bernoulli"), ns=(250, 1000), seed=5)
    for col in ("config_label", "c_name"):
        df[col] = df[col].replace("mlp", ODD)
    return df


def test_tables_write_through_the_writer(odd_results):
    text = render(make_table(odd_results, "excess_deviance"), "md")
    assert "mlp \\| wide net" in text
    _assert_well_formed(text)


def test_compare_writes_through_the_writer(odd_results, tmp_path):
    a = write_results(odd_results, tmp_path / "a")
    worse = odd_results.copy()
    rows = (worse["c_name"] == ODD).to_numpy()
    worse.loc[rows, "excess_deviance"] = worse.loc[rows, "excess_deviance"] * 3.0
    b = write_results(worse, tmp_path / "b")
    text = compare(a, b).format("md", show_all=True)
    assert "mlp \\| wide net" in text
    # the regressions, every accuracy comparison and every timing comparison
    assert _assert_well_formed(text, minimum=3) >= 3


def test_report_and_crossover_write_through_the_writer(odd_results, tmp_path):
    directory = write_results(odd_results, tmp_path / "r")
    text = write_report(directory).path.read_text(encoding="utf-8")
    assert "mlp \\| wide net" in text
    _assert_well_formed(text, minimum=5)


def test_no_module_writes_a_markdown_table_by_hand():
    root = Path(__file__).resolve().parents[1] / "simbench"
    by_hand = []
    for path in root.rglob("*.py"):
        if path.name == "markdown.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"[\"'][|]?:?-{3}:?[|]", line) or '" | ".join' in line:
                by_hand.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert by_hand == []


def test_aggregate_keeps_the_names_of_the_split():
    homes = {
        "aggregate": summary,
        "cell_counts": summary,
        "coefficients": inference,
        "coverage": inference,
        "efficiency": inference,
        "config_labels": labels,
        "scenario_labels": labels,
        "varying_params": labels,
        "format_param": labels,
        "metric_columns": frame,
        "numeric_values": frame,
        "FAILED_STATUSES": frame,
        "STATUS_ORDER": frame,
        "TIMING_COLUMNS": frame,
        "DERIVED_METRICS": frame,
        "Direction": directions,
        "direction": directions,
    }
    # the module, not the function the package's lazy name "aggregate" stands for
    aggregate_module = importlib.import_module("simbench.report.aggregate")
    assert set(aggregate_module.__all__) == set(homes)
    for name, home in homes.items():
        assert getattr(aggregate_module, name) is getattr(home, name), name


def test_the_package_gives_the_functions():
    """No reporting module imports the module ``simbench.report.aggregate`` (whose import
    binds the package's name ``aggregate`` to the module): after loading all of them,
    ``from simbench.report import aggregate`` is still the function."""
    code = (
        "import simbench.report.commands, simbench.report.compare, simbench.report.crossover, "
        "simbench.report.figures, simbench.report.report, simbench.report.tables, "
        "simbench.report.synthetic, sys\n"
        "assert 'simbench.report.aggregate' not in sys.modules, 'imported the facade'\n"
        "from simbench.report import aggregate, cell_counts, coverage, direction\n"
        "assert all(callable(f) for f in (aggregate, cell_counts, coverage, direction))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
