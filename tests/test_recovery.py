"""A damaged or missing ``manifest.json`` is rebuilt from the sweep and the parts when they
agree (and the command says so); otherwise a clear exit 2 names what is inconsistent."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from cli_support import METRICS, cli

from simbench.sweep.store import MANIFEST, StoreError, load, load_manifest

DATA = Path(__file__).resolve().parent / "data"


def table_of(df: pd.DataFrame) -> pd.DataFrame:
    return df[METRICS].sort_values("cell_id").reset_index(drop=True)


DAMAGE = {
    "garbled": lambda p: p.write_bytes(b'{"sweep_name": "small", "runs": [ \x00\xff garbage'),
    "emptied": lambda p: p.write_bytes(b""),
    "deleted": lambda p: p.unlink(),
    "not an object": lambda p: p.write_text("[1, 2, 3]"),
    "fields missing": lambda p: p.write_text(json.dumps({"sweep_name": "small"})),
    "deeply nested": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_read_commands_rebuild_a_damaged_manifest_from_the_sweep_copy(workdir, capsys, damage):
    out = workdir / "results" / "small"
    assert cli(capsys, "run", DATA / "small.toml", "--quick")[0] == 0
    reference = table_of(load(out))
    assert (out / "sweep.toml").read_text() == (DATA / "small.toml").read_text()
    DAMAGE[damage](out / MANIFEST)
    code, text, err = cli(capsys, "status", out)
    assert code == 3  # 14 cells missing after --quick
    assert "done     4" in text and "missing  14" in text
    assert "manifest.json was" in err and "rebuilt from sweep.toml" in err
    assert "written back" in err and "Traceback" not in err
    manifest = load_manifest(out)  # now valid on disk
    assert manifest["sweep_name"] == "small" and manifest["recovered"]["parts"] == 1
    code, text, err = cli(capsys, "table", out, "--metric", "coef_z_mle")
    assert code == 0 and "rebuilt" not in err  # repaired once, for good
    pd.testing.assert_frame_equal(table_of(load(out)), reference, check_exact=True)
    # a run resumes on the rebuilt manifest, reusing the stored cells
    code, text, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 0 and "4 already stored" in text


def test_run_rebuilds_from_the_sweep_file_when_the_copy_is_gone(workdir, capsys):
    out = workdir / "results" / "small"
    assert cli(capsys, "run", DATA / "small.toml", "--quick")[0] == 0
    (out / MANIFEST).unlink()
    (out / "sweep.toml").unlink()
    # read commands cannot rebuild: exit 2 saying what is missing and how to repair it
    code, _, err = cli(capsys, "status", out)
    assert code == 2 and "manifest.json is missing" in err and "no copy of its sweep" in err
    assert "simbench run SWEEP.toml --out" in err and "Traceback" not in err
    with pytest.raises(StoreError, match="no copy of its sweep file"):
        load(out)
    code, _, err = cli(capsys, "table", out, "--metric", "coef_z_mle")
    assert code == 2
    # run has the sweep file: it rebuilds the manifest and resumes
    code, text, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 0 and "rebuilt from small.toml" in err and "4 already stored" in text
    assert (out / "sweep.toml").exists() and load_manifest(out)["sweep_name"] == "small"


def test_a_sweep_that_disagrees_with_the_parts_is_refused_and_nothing_changes(
    workdir, capsys, tmp_path
):
    out = workdir / "results" / "small"
    assert cli(capsys, "run", DATA / "small.toml", "--quick")[0] == 0
    (out / MANIFEST).write_text("garbage")
    before = sorted(p.name for p in (out / "parts").iterdir())
    other = tmp_path / "other.toml"
    other.write_text((DATA / "small.toml").read_text().replace("seed = 2026", "seed = 2027"))
    code, text, err = cli(capsys, "run", other, "--out", out)
    assert code == 2 and text == ""
    assert "manifest.json is not valid JSON" in err
    assert "4 of 4 stored rows are not cells of other.toml" in err
    assert "another seed" in err and "Traceback" not in err
    assert sorted(p.name for p in (out / "parts").iterdir()) == before
    assert (out / MANIFEST).read_text() == "garbage"
    # a directory whose sweep copy is damaged too
    (out / "sweep.toml").write_text("[sweep\nname=")
    code, _, err = cli(capsys, "status", out)
    assert code == 2 and "sweep.toml: the copy of the sweep file is damaged too" in err


def test_a_deleted_manifest_no_longer_strands_intact_parts(workdir, capsys):
    out = workdir / "results" / "small"
    assert cli(capsys, "run", DATA / "small.toml")[0] == 0
    reference = table_of(load(out))
    (out / MANIFEST).unlink()
    code, text, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 0 and "18 already stored" in text and "rebuilt" in err
    pd.testing.assert_frame_equal(table_of(load(out)), reference, check_exact=True)
    runs = load_manifest(out)["runs"]
    assert runs[0]["outcome"] == "recovered" and runs[-1]["outcome"] == "finished"


def test_status_on_a_file_or_nothing_is_a_clear_input_error(workdir, capsys):
    (workdir / "afile").write_text("x")
    for target in ("afile", "nowhere"):
        code, _, err = cli(capsys, "status", workdir / target)
        assert code == 2 and "Traceback" not in err
    assert "is a file, not a results directory" in cli(capsys, "status", workdir / "afile")[2]
    assert "no manifest.json" in cli(capsys, "status", workdir / "nowhere")[2]
