"""Loading some columns only: ``load(directory, columns=...)`` and the ``table`` command.

The columns asked for come back exactly as a full load gives them (rows, order, values,
types) while every part is verified as fully as before; ``simbench table`` loads only the
columns its table reads and prints exactly what it printed from the full table.
"""

from __future__ import annotations

import io
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from simbench import cli
from simbench.report import commands
from simbench.report.crossover import crossover, crossover_columns
from simbench.report.synthetic import synthetic_results, write_results
from simbench.report.tables import FORMATS, make_table, render, table_columns
from simbench.sweep import store as store_module
from simbench.sweep.store import (
    PART_RE,
    CorruptPartError,
    ResultStore,
    StoredIndex,
    StoreError,
    load,
    stored_columns,
)

WIDE = ["beta_hat", "beta_mle", "mle_se", "history_dist"]  # list columns, one per row


def _results() -> pd.DataFrame:
    """Synthetic results with every status, not-converged fits and a misspecification floor."""
    df = synthetic_results(families=("poisson", "bernoulli"), ns=(100, 400), replicates=5)
    mlp = df["c_name"] == "mlp"
    df.loc[mlp & (df["s_n"] == 100) & (df["replicate"] < 2), "status"] = "diverged"
    df.loc[mlp & (df["s_n"] == 400) & (df["replicate"] == 0), "status"] = "error"
    df.loc[mlp & (df["s_n"] == 400) & (df["replicate"] == 1), "status"] = "timeout"
    early = df["c_name"] == "early-stop"
    df.loc[early & (df["s_family"] == "poisson") & (df["s_n"] == 400), "status"] = "skipped"
    df.loc[early & (df["replicate"] == 3), "converged"] = False
    df.loc[df["replicate"] == 4, "mle_status"] = "error"  # unpaired for the efficiencies
    df["misspec_floor"] = np.where(df["s_family"] == "poisson", 0.002, 0.004)
    return df


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """The results in several parts, rows out of sweep order, one cell stored twice."""
    df = _results()
    directory = write_results(df.iloc[:0], tmp_path_factory.mktemp("cols") / "res")
    rows = [
        {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]
    order = np.random.default_rng(3).permutation(len(rows))
    writer = ResultStore(directory).writer("synthetic-run", flush_rows=7, flush_seconds=3600)
    for i in order:
        writer.add(rows[i])
    # an earlier failure of an ok cell, written later: de-duplication keeps the ok row
    writer.add({**rows[0], "status": "error", "error": "boom", "coef_z_mle": 99.0})
    writer.flush()
    assert len(list((directory / "parts").glob("part-*.parquet"))) > 5
    return directory


@pytest.fixture(scope="module")
def full(results_dir) -> pd.DataFrame:
    return load(results_dir)


def _parts(directory: Path) -> list[Path]:
    return sorted((directory / "parts").glob("part-*.parquet"))


def _flip_in_column(path: Path, column: str) -> None:
    """Flip a byte in the middle of ``column``'s data pages (first row group)."""
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(
        meta.column(i)
        for i in range(meta.num_columns)
        if meta.column(i).path_in_schema.split(".")[0] == column
    )
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- load(columns=)


@pytest.mark.parametrize(
    "columns",
    [
        ["status"],
        ["coef_z_mle", "scenario_id", "replicate"],  # any order: the order asked for
        ["s_n", "c_hidden", *WIDE, "converged", "config_label"],
        ["cell_id", "status", "status"],  # a name twice is one column
    ],
)
def test_load_columns_gives_exactly_those_columns_of_the_full_table(results_dir, full, columns):
    df = load(results_dir, columns=columns)
    want = list(dict.fromkeys(columns))
    assert list(df.columns) == want
    assert len(full) == 60 and full["cell_id"].is_unique  # the duplicate was dropped
    pd.testing.assert_frame_equal(df, full[want], check_exact=True)
    assert df.attrs["manifest"] == full.attrs["manifest"]


def test_stored_columns_are_the_full_load_columns(results_dir, full):
    assert stored_columns(results_dir) == list(full.columns)


def test_load_columns_refuses_a_corrupted_part_it_reads_no_column_of(results_dir, tmp_path):
    directory = tmp_path / "res"
    shutil.copytree(results_dir, directory)
    path = _parts(directory)[2]
    _flip_in_column(path, "beta_hat")
    # the flipped page is in a column not asked for: a subset read alone would not see it
    pq.read_table(path, columns=["status"], page_checksum_verification=True)
    with pytest.raises(CorruptPartError, match="content hash mismatch") as info:
        load(directory, columns=["status", "coef_z_mle"])
    assert info.value.paths == [path] and path.name in str(info.value)


def test_load_columns_refuses_a_corrupted_legacy_part(results_dir, tmp_path):
    # a part named without its hash (written before hashes): its page checksums, all read
    directory = tmp_path / "res"
    shutil.copytree(results_dir, directory)
    path = _parts(directory)[2]
    legacy = path.with_name(path.name.rsplit("-", 1)[0] + ".parquet")
    path.rename(legacy)
    assert PART_RE.match(legacy.name).group("hash") is None
    pd.testing.assert_frame_equal(load(directory, columns=["status"]), load(directory)[["status"]])
    _flip_in_column(legacy, "beta_hat")
    with pytest.raises(CorruptPartError, match="not readable as Parquet") as info:
        load(directory, columns=["status"])
    assert info.value.paths == [legacy]


def test_load_columns_names_what_is_not_stored(results_dir):
    with pytest.raises(
        StoreError, match=r"no stored column 'coef_z_ml'; did you mean 'coef_z_mle'"
    ):
        load(results_dir, columns=["status", "coef_z_ml"])
    with pytest.raises(StoreError, match=r"no stored columns 'x', 'y'"):
        load(results_dir, columns=["x", "y"])
    with pytest.raises(TypeError, match=r"write columns=\['status'\]"):
        load(results_dir, columns="status")
    with pytest.raises(TypeError, match="names"):
        load(results_dir, columns=["status", 3])


def test_load_table_is_the_frame_as_arrow(results_dir, full):
    """load_table gives load's rows, order, columns and values as a pyarrow Table."""
    table = store_module.load_table(results_dir)
    assert table.column_names == list(full.columns)
    pd.testing.assert_frame_equal(table.to_pandas(), full, check_exact=True)
    some = store_module.load_table(results_dir, columns=["status", "coef_z_mle"])
    pd.testing.assert_frame_equal(
        some.to_pandas(), full[["status", "coef_z_mle"]], check_exact=True
    )
    empty = write_results(_results().iloc[:0], results_dir.parent / "empty-arrow")
    nothing = store_module.load_table(empty, columns=["status", "coef_z_mle"])
    assert nothing.column_names == ["status", "coef_z_mle"] and nothing.num_rows == 0


def test_the_summary_of_a_table_is_the_summary_of_its_frame(results_dir, full):
    from simbench.sweep.progress import summary_table

    text = summary_table(store_module.load_table(results_dir))
    assert text == summary_table(full)
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["config", "cells", "ok", "diverged", "failed", "skipped"]
    counts = full.groupby("config_index")["status"].value_counts().unstack(fill_value=0)
    for line, (_, row) in zip(lines[2:], counts.iterrows(), strict=True):
        cells, ok, diverged, failed, skipped = map(int, line.split()[1:6])
        assert cells == row.sum() and ok == row.get("ok", 0)
        assert diverged == row.get("diverged", 0) and skipped == row.get("skipped", 0)
        assert failed == row.get("error", 0) + row.get("timeout", 0)


def test_load_arrays_are_the_columns_of_load_table(results_dir, full):
    """The summary's reader: load_table's rows, order and conversion, gathered by NumPy."""
    from simbench.sweep import arrow

    columns = ["cell_id", "config_index", "config_label", "status", "coef_z_mle", "auc"]
    table = store_module.load_table(results_dir, columns=columns)
    arrays = store_module.load_arrays(results_dir, columns)
    assert list(arrays) == columns
    for c in columns:
        expected = arrow.to_numpy(table.column(c))
        assert arrays[c].dtype == expected.dtype
        assert repr(arrays[c].tolist()) == repr(expected.tolist())
    from simbench.sweep.progress import summary_table

    assert summary_table(arrays) == summary_table(full[columns])
    empty = write_results(_results().iloc[:0], results_dir.parent / "empty-arrays")
    nothing = store_module.load_arrays(empty, ["status", "coef_z_mle"])
    assert list(nothing) == ["status", "coef_z_mle"] and len(nothing["status"]) == 0
    with pytest.raises(StoreError, match="no stored column"):
        store_module.load_arrays(results_dir, ["no_such_column"])


def test_load_columns_of_a_directory_without_rows(tmp_path):
    directory = write_results(_results().iloc[:0], tmp_path / "empty")
    df = load(directory, columns=["status", "coef_z_mle"])
    assert list(df.columns) == ["status", "coef_z_mle"] and df.empty


def test_a_column_of_irreconcilable_types_leaves_the_others_as_a_full_load(tmp_path):
    # 'odd' is text in one part and a number in another (read as JSON text); 'x' is an
    # int in one part and a float in another: promoted to float whatever else is read
    directory = write_results(_results().iloc[:0], tmp_path / "res")
    writer = ResultStore(directory).writer("r", flush_rows=1)
    base = {"scenario_index": 0, "config_index": 0, "status": "ok"}
    writer.add({"cell_id": "a" * 16, "replicate": 0, **base, "x": 1, "odd": 1.5})
    writer.add({"cell_id": "b" * 16, "replicate": 1, **base, "x": 2.5, "odd": "abc"})
    writer.add({"cell_id": "c" * 16, "replicate": 2, **base, "odd": None})  # no 'x' at all
    full = load(directory)
    assert full["x"].dtype == "float64" and full["x"].tolist()[:2] == [1.0, 2.5]
    assert full["odd"].tolist()[:2] == ["1.5", '"abc"']
    for columns in (["x"], ["odd"], ["x", "odd", "replicate"]):
        pd.testing.assert_frame_equal(load(directory, columns=columns), full[columns])


def test_stored_statuses_of_ids_as_written_and_otherwise():
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(0, 2**64 - 1, 500, dtype=np.uint64))
    index = StoredIndex(ids, rng.integers(0, 5, len(ids)).astype(np.uint8), {})
    stored = index.to_dict()
    queries = [f"{int(i):016x}" for i in ids[::7]] + ["0" * 16, "f" * 16]
    expected = [stored.get(c) for c in queries]
    assert index.statuses_of(queries) == expected  # the vectorised path
    assert expected.count(None) == 2
    odd = [queries[0].upper(), queries[1][:15], "g" * 16, queries[3]]
    # anything else takes the per-id path: an upper-case id still matches, as before
    assert index.statuses_of(odd) == [expected[0], None, None, expected[3]]
    index.other = {"not-hex": "error"}
    assert index.statuses_of([queries[4], "not-hex"]) == [expected[4], "error"]


# --------------------------------------------------------------------------- the table


REQUESTS = [
    ["--metric", "coef_z_mle"],
    ["--metric", "excess_deviance", "--format", "csv"],
    ["--metric", "excess_deviance", "--rows", "family,n", "--format", "latex"],
    ["--metric", "fit_seconds", "--stat", "median", "--format", "html"],
    ["--metric", "auc", "--rows", "config", "--cols", "scenario", "--stat", "mean_sd"],
    ["--metric", "coef_err_truth", "--rows", "n", "--cols", "optimizer"],
    ["--metric", "epochs_run", "--cols", "hidden", "--no-caption"],
    ["--metric", "converged"],
    ["--metric", "efficiency"],
    ["--metric", "crb_efficiency", "--format", "csv"],
    ["--metric", "mse_efficiency", "--rows", "n"],
    ["--metric", "excess_deviance", "--view", "crossover"],
    ["--metric", "coef_z_mle", "--view", "crossover", "--format", "csv"],
    # refusals: the same message, from the stored columns alone
    ["--metric", "coef_z_ml"],
    ["--metric", "status"],
    ["--metric", "coef_z_mle", "--rows", "famly"],
    ["--metric", "coef_z_mle", "--rows", "n", "--cols", "n"],
    ["--metric", "nope", "--view", "crossover"],
    ["--metric", "coef_z_mle", "--view", "crossover", "--format", "latex"],
]


def _table(directory: Path, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["table", str(directory), *args])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("args", REQUESTS, ids=lambda a: " ".join(a))
def test_table_prints_the_same_from_the_columns_it_reads(results_dir, monkeypatch, args):
    asked: list = []

    def spy(directory, columns=None):
        asked.append(columns)
        return load(directory, columns=columns)

    monkeypatch.setattr(store_module, "load", spy)
    restricted = _table(results_dir, args)
    monkeypatch.setattr(commands, "_table_columns", lambda args: None)
    whole = _table(results_dir, args)
    assert asked[-1] is None  # the reference read every column
    assert restricted == whole
    assert restricted[0] in (0, 2) and "Traceback" not in restricted[2]
    if restricted[0] == 0 or "crossover" in args:
        (columns,) = asked[:-1]
        assert "history_dist" not in columns and "mle_se" not in columns
        assert ("beta_hat" in columns) == ("efficiency" in args[1])
    else:  # refused from the stored columns, once the parts are verified (one column read)
        assert asked[:-1] == [["status"]]


def test_a_refused_request_still_refuses_a_corrupted_part_first(results_dir, tmp_path):
    directory = tmp_path / "res"
    shutil.copytree(results_dir, directory)
    path = _parts(directory)[0]
    _flip_in_column(path, "history_dist")
    for args in (["--metric", "coef_z_mle"], ["--metric", "coef_z_ml"]):
        code, _, err = _table(directory, args)
        assert code == 2 and path.name in err and "corrupted part file" in err


@pytest.mark.parametrize(
    ("metric", "rows", "cols"),
    [
        ("excess_deviance", None, None),
        ("auc", "config", "family,n"),
        ("efficiency", "n", "config"),
        ("coef_err_truth", "family", "lr"),
    ],
)
def test_table_columns_are_all_make_table_reads(metric, rows, cols):
    df = _results()
    columns = table_columns(df.iloc[:0], metric, rows, cols)
    assert len(columns) < len(df.columns) / 2
    for stat in ("mean", "median", "max"):
        whole = make_table(df, metric, rows, cols, stat)
        part = make_table(df[columns], metric, rows, cols, stat)
        for fmt in FORMATS:
            assert render(part, fmt) == render(whole, fmt)
        assert part.notes == whole.notes


def test_crossover_columns_are_all_crossover_reads():
    df = _results()
    columns = crossover_columns(list(df.columns), "excess_deviance")
    pd.testing.assert_frame_equal(
        crossover(df[columns], "excess_deviance"), crossover(df, "excess_deviance")
    )
    assert not crossover(df, "excess_deviance").empty
