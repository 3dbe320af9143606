"""Integrity of stored results: checksummed, hash-named parts; corrupted parts refused by
readers (exit 2, the file named) and quarantined and recomputed by ``run``; foreign files
named and ignored; a byte flip anywhere in a finished part is harmless or detected."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_support import METRICS, cli

from simbench.sweep.runner import Runner
from simbench.sweep.spec import load_sweep
from simbench.sweep.store import (
    PART_RE,
    CorruptPartError,
    load,
    load_manifest,
    write_part,
)

DATA = Path(__file__).resolve().parent / "data"


def finished(out: Path, sweep: str = "small.toml") -> pd.DataFrame:
    spec = load_sweep(DATA / sweep)
    assert Runner(spec, out, group_fn="fake_groups:seeded").run().exit_code == 0
    return load(out)


def parts(out: Path) -> list[Path]:
    return sorted((out / "parts").glob("part-*.parquet"))


def table_of(df: pd.DataFrame) -> pd.DataFrame:
    return df[METRICS].sort_values("cell_id").reset_index(drop=True)


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def split_part(out: Path, first: int) -> tuple[Path, Path]:
    """Replace the single finished part by two hash-named parts (rows [:first], [first:])."""
    (only,) = parts(out)
    table = pq.read_table(only)
    a = write_part(out / "parts", "split", 1, table.slice(0, first))
    b = write_part(out / "parts", "split", 2, table.slice(first))
    only.unlink()
    return a, b


# --------------------------------------------------------------------------- written parts


def test_parts_carry_their_content_hash_and_page_checksums(workdir):
    out = workdir / "res"
    finished(out)
    (path,) = parts(out)
    digest = PART_RE.match(path.name).group("hash")
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    # page checksums: a flipped byte inside a data page fails verification even where the
    # name's hash is not looked at (pyarrow reading the file directly)
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(0).column(0)
    start = col.data_page_offset
    flip(path, start + col.total_compressed_size // 2)
    with pytest.raises((OSError, pa.ArrowException)):
        pq.read_table(path, page_checksum_verification=True)


# --------------------------------------------------------------------------- readers refuse


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_part_is_refused_by_every_reader_naming_the_file(workdir, capsys, damage):
    out = workdir / "results" / "small"
    finished(out)
    other = workdir / "other"
    finished(other)
    (path,) = parts(out)
    if damage == "flip":
        flip(path, path.stat().st_size // 2)
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptPartError, match="corrupted part file") as info:
        load(out)
    assert info.value.paths == [path]
    commands = [
        ("status", out),
        ("table", out, "--metric", "coef_z_mle"),
        ("report", out),
        ("compare", out, other),
        ("compare", other, out),
    ]
    for args in commands:
        code, _stdout, err = cli(capsys, *args)
        assert code == 2, (args, err)
        assert path.name in err and "corrupted part file" in err and "Traceback" not in err
        assert "quarantine" in err  # says how to repair it
    assert not (out / "report.md").exists()
    assert path.exists()  # readers never move or delete anything


def test_run_quarantines_a_corrupted_part_and_recomputes_exactly_its_cells(workdir, capsys):
    out = workdir / "results" / "small"
    reference = table_of(finished(out))
    _a, b = split_part(out, 7)
    in_b = set(pq.read_table(b, columns=["cell_id"]).column("cell_id").to_pylist())
    flip(b, b.stat().st_size // 3)
    code, stdout, err = cli(capsys, "run", DATA / "small.toml", "--dry-run")
    assert code == 0 and "corrupted part" in stdout and b.name in stdout
    assert b.exists()  # a dry run moves nothing
    code, stdout, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 0, err
    assert b.name in err and "moved to" in err and "quarantine" in err
    assert f"{len(in_b)} already stored" not in stdout
    assert f"{18 - len(in_b)} already stored" in stdout
    assert not b.exists() and (out / "quarantine" / b.name).exists()
    df = load(out)
    pd.testing.assert_frame_equal(table_of(df), reference, check_exact=True)
    recomputed = set(df.loc[df["run_id"] == load_manifest(out)["runs"][-1]["run_id"], "cell_id"])
    assert recomputed == in_b


def test_a_quarantined_part_reruns_its_failed_cells_too(workdir, capsys, monkeypatch):
    # part A: a failed row; part B (newer, corrupted): the same cell retried ok
    out = workdir / "results" / "failing"
    code, _, _ = cli(capsys, "run", DATA / "failing.toml")
    assert code == 3
    monkeypatch.setenv("SIMBENCH_GROUP_FN", "fake_groups:calm")
    assert cli(capsys, "run", DATA / "failing.toml", "--rerun-failed")[0] == 0
    (only,) = parts(out)
    table = pq.read_table(only)
    failed_ids = [r["cell_id"] for r in load(out).to_dict("records") if r["c_name"] == "raise"]
    old = table.filter(pa.compute.is_in(table["cell_id"], pa.array(failed_ids)))
    old = old.set_column(
        old.schema.get_field_index("status"), "status", pa.array(["error"] * old.num_rows)
    )
    only.unlink()
    write_part(out / "parts", "older", 1, old)
    newer = write_part(out / "parts", "newer", 2, table)
    # damage a metric's data page: the cell ids of the part are still readable, and say
    # which cells to compute again though an older failed row of them remains
    meta = pq.ParquetFile(newer).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    col = meta.row_group(0).column(names.index("coef_z_mle"))
    flip(newer, col.data_page_offset + col.total_compressed_size - 2)
    code, _stdout, err = cli(capsys, "run", DATA / "failing.toml")  # no --rerun-failed
    assert code == 0, err
    assert load(out)["status"].eq("ok").all()


# --------------------------------------------------------------------------- foreign files


def test_foreign_files_are_named_and_never_merged(workdir, capsys):
    out = workdir / "results" / "small"
    reference = table_of(finished(out))
    junk = out / "parts" / "notes.csv"
    junk.write_text("a,b\n1,2\n")
    # a Parquet file with a simbench part name but none of its columns
    schemaless = out / "parts" / "part-00000000000000000001-x-p00001.parquet"
    pq.write_table(pa.table({"cell_id": [1, 2], "x": [0.5, 0.25]}), schemaless)
    # a Parquet file with the columns but another name
    phantom = out / "parts" / "phantom.parquet"
    pq.write_table(pa.table({"cell_id": ["ffffffffffffffff"], "status": ["ok"]}), phantom)
    with pytest.warns(UserWarning) as caught:
        df = load(out)
    named = " ".join(str(w.message) for w in caught)
    for path in (junk, schemaless, phantom):
        assert str(path) in named
    pd.testing.assert_frame_equal(table_of(df), reference, check_exact=True)
    code, out_text, err = cli(capsys, "status", out)
    assert code == 0 and "phantom.parquet" in err and "done     18" in out_text
    # a run (and its compaction) leaves them alone and merges none of their rows
    code, _, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 0 and "notes.csv" in err
    assert junk.exists() and schemaless.exists() and phantom.exists()
    with pytest.warns(UserWarning):
        df = load(out)
    assert "ffffffffffffffff" not in set(df["cell_id"]) and len(df) == 18


# --------------------------------------------------------------------------- byte flips


def test_every_byte_flip_of_a_finished_part_is_harmless_or_detected(workdir):
    out = workdir / "res"
    reference = table_of(finished(out))
    full = load(out)
    (path,) = parts(out)
    pristine = path.read_bytes()
    rng = random.Random(15)
    size = len(pristine)
    # the header and footer bytes, and a spread of positions in between
    offsets = sorted(
        set(range(8)) | set(range(size - 64, size)) | {rng.randrange(size) for _ in range(150)}
    )
    outcomes = {"detected": 0, "harmless": 0}
    for offset in offsets:
        path.write_bytes(pristine)
        flip(path, offset)
        try:
            df = load(out)
        except CorruptPartError as exc:
            assert path.name in str(exc)
            outcomes["detected"] += 1
            continue
        # not detected: then it must not have changed anything
        pd.testing.assert_frame_equal(table_of(df), reference, check_exact=True)
        pd.testing.assert_frame_equal(df, full, check_exact=True)
        outcomes["harmless"] += 1
    path.write_bytes(pristine)
    assert outcomes["detected"] == len(offsets)  # the name's hash covers every byte
    assert os.listdir(out / "parts") == [path.name]


def test_legacy_parts_without_a_hash_are_still_read(workdir):
    # parts written before content hashes (no hash in the name) load as before
    out = workdir / "res"
    reference = table_of(finished(out))
    (path,) = parts(out)
    legacy = path.with_name(path.name.rsplit("-", 1)[0] + ".parquet")
    shutil.move(path, legacy)
    assert PART_RE.match(legacy.name).group("hash") is None
    pd.testing.assert_frame_equal(table_of(load(out)), reference, check_exact=True)
