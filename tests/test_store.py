"""The results store: atomic Parquet parts, manifest, de-duplication, loading."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simbench.sweep import store as store_module
from simbench.sweep.spec import RawVocabulary, parse_sweep
from simbench.sweep.store import (
    ResultStore,
    StoreError,
    load,
    load_manifest,
    load_runs,
    rows_to_table,
)

SWEEP = """
[sweep]
name = "st"
replicates = 1
seed = 1
[[scenarios]]
n = 10
[[configs]]
name = "a"
"""


@pytest.fixture
def spec():
    return parse_sweep(SWEEP, source="st.toml", vocabulary=RawVocabulary())


def row(cell, status="ok", value=1.0, **extra):
    out = {
        "cell_id": cell,
        "scenario_index": 0,
        "config_index": int(cell[-1]) if cell[-1].isdigit() else 0,
        "replicate": 0,
        "status": status,
        "error": None if status == "ok" else "boom",
        "coef_z_mle": value,
    }
    out.update(extra)
    return out


def open_store(tmp_path, spec, run_id="r1"):
    store = ResultStore(tmp_path / "res")
    store.begin_run(spec, {"run_id": run_id, "started_at": "t0"})
    return store


def part_files(store):
    return sorted(store.parts.glob("part-*.parquet"))


# --------------------------------------------------------------------------- rows -> arrow


def test_rows_to_table_types_and_missing_keys():
    import numpy as np

    table = rows_to_table(
        [
            {"a": 1, "beta_hat": [1.0, 2.5], "flag": True, "x": np.float64(0.5)},
            {"a": 2, "beta_hat": np.array([3.0, float("nan")]), "b": "text", "x": None},
        ]
    )
    assert table.column_names == ["a", "beta_hat", "flag", "x", "b"]
    assert table.schema.field("beta_hat").type == pa.list_(pa.float64())
    assert table.schema.field("a").type == pa.int64()
    assert table.column("b").to_pylist() == [None, "text"]
    assert table.column("flag").to_pylist() == [True, None]
    values = table.column("beta_hat").to_pylist()
    assert values[0] == [1.0, 2.5] and math.isnan(values[1][1])


def test_plain_and_numpy_values_give_the_same_table():
    # plain Python values go to Arrow as they are, numpy values through conversion: the
    # same table either way
    import numpy as np

    plain = [
        {"x": 0.5, "n": 3, "ok": True, "b": [1.0, 2.0], "t": "a", "h": [[1.0], [2.0]]},
        {"x": None, "n": 4, "ok": False, "b": [], "t": None, "h": []},
    ]
    numpy_rows = [
        {
            "x": np.float32(0.5),
            "n": np.int64(3),
            "ok": np.bool_(True),
            "b": np.array([1.0, 2.0]),
            "t": "a",
            "h": [np.array([1.0]), (2.0,)],
        },
        {"x": None, "n": np.int64(4), "ok": False, "b": (), "t": None, "h": []},
    ]
    assert rows_to_table(plain).equals(rows_to_table(numpy_rows))


def test_deduplication_without_pandas_matches_pandas():
    import numpy as np

    from simbench.sweep.store import _keep_indices, _keep_indices_pandas

    rng = np.random.default_rng(5)
    for n in (1, 7, 200):
        ids = [f"c{k}" for k in rng.integers(0, max(1, n // 3), size=n)]
        statuses = list(rng.choice(["ok", "error", "timeout", "diverged", "skipped"], size=n))
        part = rng.integers(0, 3, size=n)
        row = np.arange(n)
        np.testing.assert_array_equal(
            _keep_indices(ids, statuses, part, row),
            _keep_indices_pandas(ids, statuses, part, row),
        )


def test_inconsistent_column_is_stored_as_json_text():
    table = rows_to_table([{"odd": 1.5}, {"odd": "abc"}, {"odd": [1, "x"]}])
    assert table.schema.field("odd").type == pa.string()
    assert [json.loads(v) for v in table.column("odd").to_pylist()] == [1.5, "abc", [1, "x"]]


# --------------------------------------------------------------------------- writing


def test_writer_flushes_by_rows_and_by_time(tmp_path, spec):
    store = open_store(tmp_path, spec)
    writer = store.writer("r1", flush_rows=3, flush_seconds=3600)
    for i in range(7):
        writer.add(row(f"c{i}"))
    assert writer.files_written == 2 and writer.pending == 1
    writer.flush()
    assert len(part_files(store)) == 3 and writer.rows_written == 7
    timed = store.writer("r1", flush_rows=1000, flush_seconds=0.0)
    timed.add(row("c9"))  # already "old enough"
    assert timed.files_written == 1
    # nothing but complete parts: no temporary files left behind
    assert sorted(p.name for p in store.parts.iterdir()) == [p.name for p in part_files(store)]


@pytest.mark.parametrize("warm", [False, True])
def test_a_warm_writer_prepares_its_first_write(tmp_path, spec, monkeypatch, warm):
    """``warm``: the writer's thread converts a row first, so that the first write does not
    pay for what a first conversion loads (pyarrow); nothing is written."""
    converted_on = []
    real = store_module.rows_to_table

    def spy(rows):
        converted_on.append(threading.current_thread().name)
        return real(rows)

    monkeypatch.setattr(store_module, "rows_to_table", spy)
    store = open_store(tmp_path, spec)
    writer = store.writer("r1", background=True, warm=warm)
    writer.close()  # joins the thread, which prepares before anything else
    assert converted_on == (["simbench-part-writer"] if warm else [])
    assert writer.files_written == 0 and part_files(store) == []


def test_non_finite_values_round_trip_exactly(tmp_path, spec):
    store = open_store(tmp_path, spec)
    writer = store.writer("r1")
    values = [0.1 + 0.2, float("nan"), float("inf"), -float("inf"), 5e-324, -0.0]
    for i, v in enumerate(values):
        writer.add(row(f"c{i}", value=v, beta_hat=[v, 1.0]))
    writer.flush()
    df = load(store.root)
    for got, want in zip(df["coef_z_mle"], values, strict=True):
        assert (math.isnan(got) and math.isnan(want)) or (
            got == want and math.copysign(1, got) == math.copysign(1, want)
        )
    assert df["beta_hat"].map(len).tolist() == [2] * 6


# --------------------------------------------------------------------------- reading


def test_load_deduplicates_prefers_non_failed_then_latest(tmp_path, spec):
    store = open_store(tmp_path, spec)
    writer = store.writer("r1", flush_rows=1)
    writer.add(row("c1", "error", 1.0))
    writer.add(row("c1", "ok", 2.0))
    writer.add(row("c1", "error", 3.0))  # a failure after a success does not win
    writer.add(row("c2", "ok", 1.0))
    writer.add(row("c2", "ok", 5.0))  # two successes: the latest
    writer.add(row("c3", "timeout", 1.0))
    writer.add(row("c3", "error", 7.0))  # two failures: the latest
    df = load(store.root).set_index("cell_id")
    assert len(df) == 3
    assert df.loc["c1", "coef_z_mle"] == 2.0
    assert df.loc["c2", "coef_z_mle"] == 5.0
    assert df.loc["c3", "status"] == "error" and df.loc["c3", "coef_z_mle"] == 7.0
    assert store.stored_statuses() == {"c1": "ok", "c2": "ok", "c3": "error"}


def test_load_sorts_in_sweep_order_and_joins_the_manifest(tmp_path, spec):
    store = open_store(tmp_path, spec, run_id="run-A")
    writer = store.writer("run-A", flush_rows=2)
    for s, c, r in [(1, 0, 1), (0, 1, 0), (0, 0, 1), (1, 0, 0), (0, 0, 0)]:
        writer.add(
            {
                "cell_id": f"{s}{c}{r}",
                "scenario_index": s,
                "config_index": c,
                "replicate": r,
                "run_id": "run-A",
                "status": "ok",
                "error": None,
                "s_n": 10,
                "c_name": "a",
            }
        )
    writer.flush()
    store.end_run("run-A", finished_at="t1", counts={"ok": 5})
    df = load(store.root)
    assert df["cell_id"].tolist() == ["000", "001", "010", "100", "101"]
    assert df.columns[0] == "cell_id" and df.columns.get_loc("s_n") < df.columns.get_loc("status")
    manifest = df.attrs["manifest"]
    assert manifest == load_manifest(store.root)
    assert manifest["sweep_name"] == "st" and manifest["sweep_hash"] == spec.content_hash
    assert manifest["sweep_text"] == SWEEP
    runs = load_runs(store.root)
    joined = df.merge(runs, on="run_id", how="left")
    assert (joined["finished_at"] == "t1").all() and (joined["counts.ok"] == 5).all()


def test_temporary_leftovers_and_corrupt_parts_are_ignored(tmp_path, spec):
    store = open_store(tmp_path, spec)
    writer = store.writer("r1")
    writer.add(row("c1"))
    writer.flush()
    # what a killed write leaves behind: a hidden temporary file
    (store.parts / ".part-0000-x.parquet.123.tmp").write_bytes(b"PAR1 half a file")
    # a file that is not Parquet at all (not something simbench writes) is named, ignored
    (store.parts / "part-99999999999999999999-x-p00001.parquet").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="not a Parquet file; not a simbench part, ignored"):
        df = load(store.root)
    assert df["cell_id"].tolist() == ["c1"]


def test_parts_with_different_types_concatenate(tmp_path, spec):
    store = open_store(tmp_path, spec)
    writer = store.writer("r1", flush_rows=1)
    writer.add(row("c1", auc=None, epochs_run=3, beta_hat=[]))  # null / int / list<null>
    writer.add(row("c2", auc=0.75, epochs_run=2.5, beta_hat=[1.0]))
    df = load(store.root).set_index("cell_id")
    assert df["auc"].dtype == "float64" and math.isnan(df.loc["c1", "auc"])
    assert df.loc["c2", "epochs_run"] == 2.5
    assert list(df.loc["c2", "beta_hat"]) == [1.0] and len(df.loc["c1", "beta_hat"]) == 0


def test_compaction_keeps_the_table(tmp_path, spec):
    store = open_store(tmp_path, spec)
    writer = store.writer("r1", flush_rows=2)
    for i in range(9):
        writer.add(row(f"c{i % 5}", "ok" if i % 3 else "error", float(i)))
    writer.flush()
    before = load(store.root)
    assert len(part_files(store)) == 5
    assert store.compact("r1") == 5
    assert len(part_files(store)) == 1
    after = load(store.root)
    assert before.equals(after)
    # parts every reader can open on its own
    assert pq.read_table(part_files(store)[0]).num_rows == 5


def test_empty_directory_loads_as_empty_frame(tmp_path, spec):
    store = open_store(tmp_path, spec)
    df = load(store.root)
    assert len(df) == 0 and "cell_id" in df and "status" in df


# --------------------------------------------------------------------------- manifest and safety


def test_manifest_records_runs_and_provenance(tmp_path, spec):
    from simbench.sweep.store import provenance

    info = provenance()
    for key in ("simbench", "numba", "numpy", "python", "cpu", "cpu_count", "git_commit"):
        assert key in info
    # the command without the directory it was run from
    assert info["argv"][0] == Path(sys.argv[0]).name and os.sep not in info["argv"][0]
    assert info["argv"][1:] == sys.argv[1:]
    store = open_store(tmp_path, spec, "r1")
    store.unlock()
    store.begin_run(spec, {"run_id": "r2"})
    store.end_run("r2", outcome="finished")
    runs = load_manifest(store.root)["runs"]
    assert [r["run_id"] for r in runs] == ["r1", "r2"] and runs[1]["outcome"] == "finished"


def test_a_different_sweep_is_refused(tmp_path, spec):
    store = open_store(tmp_path, spec)
    store.unlock()
    other = parse_sweep(
        SWEEP.replace("n = 10", "n = 11"), source="st.toml", vocabulary=RawVocabulary()
    )
    with pytest.raises(StoreError, match=r"different sweep.*--out"):
        ResultStore(store.root).begin_run(other, {"run_id": "r2"})
    assert len(load_manifest(store.root)["runs"]) == 1
    # the description and timeout do not change results: accepted
    same = parse_sweep(
        SWEEP.replace("seed = 1", "seed = 1\ndescription = 'x'"),
        source="st.toml",
        vocabulary=RawVocabulary(),
    )
    ResultStore(store.root).check_compatible(same)


def test_not_a_results_directory_is_refused(tmp_path, spec):
    # parts of another sweep and no manifest: refused, naming the disagreement
    other = parse_sweep(
        SWEEP.replace("seed = 1", "seed = 2"), source="other.toml", vocabulary=RawVocabulary()
    )
    from simbench.sweep.cells import expand_cells, identity_columns

    store = ResultStore(tmp_path / "res")
    store.begin_run(other, {"run_id": "r0"})
    writer = store.writer("r0")
    cell = expand_cells(other)[0]
    writer.add({**identity_columns(other, cell), "status": "ok", "error": None})
    writer.flush()
    store.unlock()
    (tmp_path / "res" / "manifest.json").unlink()
    with pytest.raises(StoreError, match=r"1 of 1 stored rows are not cells of st\.toml"):
        ResultStore(tmp_path / "res").check_compatible(spec)
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        ResultStore(tmp_path / "file").check_compatible(spec)
    with pytest.raises(StoreError, match=r"no manifest\.json"):
        load(tmp_path / "nowhere")


def test_one_writer_at_a_time(tmp_path, spec):
    store = open_store(tmp_path, spec)
    with pytest.raises(StoreError, match="another simbench run"):
        ResultStore(store.root).begin_run(spec, {"run_id": "r2"})
    store.unlock()
    ResultStore(store.root).begin_run(spec, {"run_id": "r3"})
