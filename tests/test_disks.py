"""Full and read-only disks: exit code 2 with a message naming the path, no temporary file
left behind on any path, nothing already written lost, and reports and figures written
atomically.  Faults are injected into the store's writes (everywhere) and, where the tests
run as root, provoked for real on a small tmpfs mounted and unmounted by the test."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from cli_support import METRICS, cli

from simbench.sweep import store as store_module
from simbench.sweep.runner import Runner
from simbench.sweep.spec import load_sweep
from simbench.sweep.store import DiskError, atomic_write_bytes, load

DATA = Path(__file__).resolve().parent / "data"


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def table_of(df: pd.DataFrame) -> pd.DataFrame:
    return df[METRICS].sort_values("cell_id").reset_index(drop=True)


def reference(tmp_path: Path) -> pd.DataFrame:
    spec = load_sweep(DATA / "killable.toml")
    Runner(spec, tmp_path / "reference", group_fn="fake_groups:seeded").run()
    return table_of(load(tmp_path / "reference"))


class Disk:
    """Makes the store's file writes fail with ``errno`` after ``after`` of them succeed,
    having written half of the data first (as a disk that fills up mid-write does)."""

    def __init__(self, monkeypatch, code: int, after: int = 0) -> None:
        self.code = code
        self.after = after
        self.calls = 0
        self.original = store_module._write_tmp
        monkeypatch.setattr(store_module, "_write_tmp", self._write_tmp)

    def _write_tmp(self, tmp, chunks):
        self.calls += 1
        if self.calls <= self.after:
            return self.original(tmp, chunks)
        data = b"".join(chunks)
        with open(tmp, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(self.code, os.strerror(self.code), str(tmp))


# --------------------------------------------------------------------------- injected faults


def test_a_disk_that_fills_up_mid_run_exits_2_and_loses_nothing_written(
    workdir, capsys, monkeypatch, tmp_path
):
    expected = reference(tmp_path)
    monkeypatch.setenv("SIMBENCH_FLUSH_ROWS", "5")
    # the sweep copy and manifest are written (2), then three parts, then the disk is full
    disk = Disk(monkeypatch, errno.ENOSPC, after=5)
    out = workdir / "results" / "killable"
    code, _, err = cli(capsys, "run", DATA / "killable.toml", "--no-progress")
    assert code == 2, err
    assert "Traceback" not in err and "No space left on device" in err
    assert "results/killable/parts/part-" in err and "free some space" in err
    assert "finished cell(s) could not be stored" in err
    assert leftovers(workdir) == []
    stored = load(out)
    assert 0 < len(stored) < 48  # what was written is intact and readable
    monkeypatch.setattr(store_module, "_write_tmp", disk.original)
    code, _text, err = cli(capsys, "run", DATA / "killable.toml", "--no-progress")
    assert code == 0, err
    pd.testing.assert_frame_equal(table_of(load(out)), expected, check_exact=True)


def test_a_read_only_directory_exits_2_before_anything_is_written(workdir, capsys, monkeypatch):
    Disk(monkeypatch, errno.EROFS)
    code, _text, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 2 and "Read-only file system" in err and "choose a writable directory" in err
    assert "Traceback" not in err and leftovers(workdir) == []
    out = workdir / "results" / "small"
    assert not (out / "manifest.json").exists() and not list(out.glob("parts/*"))


def test_report_and_table_out_on_a_full_disk(workdir, capsys, monkeypatch):
    out = workdir / "results" / "small"
    assert cli(capsys, "run", DATA / "small.toml")[0] == 0
    (out / "report.md").write_text("the previous report\n")
    Disk(monkeypatch, errno.ENOSPC)
    code, _, err = cli(capsys, "report", out)
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert (out / "report.md").read_text() == "the previous report\n"
    assert leftovers(workdir) == []
    code, _, err = cli(capsys, "table", out, "--metric", "coef_z_mle", "--out", "t.md")
    assert code == 2 and "t.md" in err and not (workdir / "t.md").exists()


def test_figures_are_written_atomically(workdir, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simbench.report.figures import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    target = workdir / "figures" / "f.png"
    save_figure(fig, target, pdf=True)
    assert target.read_bytes().startswith(b"\x89PNG") and target.with_suffix(".pdf").exists()
    before = target.read_bytes()

    def fail(*args, **kwargs):
        Path(args[0]).write_bytes(b"")  # what a failed savefig leaves: an empty file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fig, "savefig", fail)
    with pytest.raises(DiskError, match=r"f\.png: cannot write \(No space left on device\)"):
        save_figure(fig, target)
    assert target.read_bytes() == before and leftovers(workdir) == []
    plt.close(fig)


def test_an_interrupted_write_removes_its_temporary_file(workdir, monkeypatch):
    def interrupted(tmp, chunks):
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_write_tmp", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(workdir / "x.json", b"{}")
    assert list(workdir.iterdir()) == []


# --------------------------------------------------------------------------- real disks


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_real_full_then_read_only_disk(workdir, capsys, monkeypatch, tmp_path):
    expected = reference(tmp_path)
    monkeypatch.setenv("SIMBENCH_FLUSH_ROWS", "3")
    with tmpfs(tmp_path / "disk", "2m") as disk:
        filler = disk / "filler"
        free = shutil.disk_usage(disk).free
        filler.write_bytes(b"\0" * max(0, free - 96 * 1024))
        out = disk / "res"
        code, _, err = cli(capsys, "run", DATA / "killable.toml", "--out", out, "--no-progress")
        assert code == 2, err
        assert "No space left on device" in err and str(out) in err
        assert "Traceback" not in err and leftovers(disk) == []
        filler.unlink()
        code, _, err = cli(capsys, "run", DATA / "killable.toml", "--out", out, "--no-progress")
        assert code == 0, err
        pd.testing.assert_frame_equal(table_of(load(out)), expected, check_exact=True)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for args in (
            ("run", DATA / "killable.toml", "--out", out),
            ("report", out),
            ("table", out, "--metric", "coef_z_mle", "--out", out / "t.md"),
        ):
            code, _, err = cli(capsys, *args)
            assert code == 2, (args, err)
            assert "Read-only file system" in err and "Traceback" not in err
        code, text, _ = cli(capsys, "status", out)  # reading still works
        assert code == 0 and "done     48" in text
