"""The ``simbench`` command: exit codes, messages, nothing written on bad input, and
resumption after ``SIGKILL`` at random points giving exactly the uninterrupted table."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli_support import RUN_METRICS as METRICS
from cli_support import cli, env_for_subprocess

from simbench.cli import EXIT_INPUT, main
from simbench.sweep.runner import Runner
from simbench.sweep.spec import load_sweep
from simbench.sweep.store import load, load_manifest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
MALFORMED = DATA / "malformed"


# --------------------------------------------------------------------------- bad input


MALFORMED_CASES = {
    "unknown_key.toml": ["[sweep]", "'replcates'", "did you mean 'replicates'", "accepted:"],
    "wrong_type.toml": ["[sweep]", "'replicates'", "'twenty'", "integer"],
    "empty_grid.toml": ["[[scenarios]] #1", "'n'", "empty grid"],
    "not_toml.toml": ["not valid TOML"],
    "no_configs.toml": ["no [[configs]] block"],
    # semantic checks by simbench.data.Scenario
    "unknown_scenario_key.toml": ["[[scenarios]] #2", "'famly'", "did you mean 'family'"],
    "bad_family_link.toml": ["[[scenarios]] #1", "'link'", "'logit'", "log"],
    "negative_n.toml": ["[[scenarios]] #1 (n=-50)", "'n'", "-50"],
}


@pytest.mark.parametrize("name", sorted(MALFORMED_CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_malformed_sweeps_exit_2_and_write_nothing(workdir, capsys, name, command):
    code, out, err = cli(capsys, command, MALFORMED / name)
    assert code == 2
    assert out == ""
    assert err.startswith(f"simbench: error: {name}: ")
    for needle in MALFORMED_CASES[name]:
        assert needle in err, err
    assert "Traceback" not in err
    assert list(workdir.iterdir()) == []


def test_missing_file_and_usage_errors(workdir, capsys):
    code, _, err = cli(capsys, "run", "nope.toml")
    assert code == 2 and "nope.toml: no such sweep file" in err
    assert cli(capsys)[0] == 2  # no command: usage
    with pytest.raises(SystemExit) as info:
        main(["run", str(DATA / "small.toml"), "--jobs", "x"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["run", str(DATA / "small.toml"), "--timeout", "-1"])
    assert list(workdir.iterdir()) == []


def test_a_different_sweep_with_the_same_name_is_refused(workdir, capsys, tmp_path):
    assert cli(capsys, "run", DATA / "small.toml")[0] == 0
    changed = tmp_path / "changed.toml"
    changed.write_text((DATA / "small.toml").read_text().replace("seed = 2026", "seed = 2027"))
    before = sorted(p.name for p in (workdir / "results" / "small" / "parts").iterdir())
    code, _, err = cli(capsys, "run", changed)
    assert code == 2 and "different sweep" in err and "--out" in err
    after = sorted(p.name for p in (workdir / "results" / "small" / "parts").iterdir())
    assert before == after and len(load_manifest("results/small")["runs"]) == 1
    assert cli(capsys, "run", changed, "--out", "results/small-2027")[0] == 0


# --------------------------------------------------------------------------- commands


def test_validate_prints_the_cell_count(workdir, capsys):
    code, out, _ = cli(capsys, "validate", DATA / "small.toml")
    assert code == 0
    assert "OK" in out and "3 scenarios x 2 configs x 3 replicates = 18 cells in 9 groups" in out
    assert list(workdir.iterdir()) == []


def test_run_dry_run_status_and_resume(workdir, capsys):
    code, out, _ = cli(capsys, "run", DATA / "small.toml", "--dry-run")
    assert code == 0 and "= 18 cells" in out and "to run: 18 cells in 9 groups" in out
    assert "stored: none" in out and list(workdir.iterdir()) == []

    code, out, err = cli(capsys, "run", DATA / "small.toml", "--jobs", "2")
    assert code == 0
    assert "results: results/small" in out and "18 cells: ok 18" in out
    assert "glm-as-nn" in out and "mlp" in out and "mean coef_z_mle" in out  # summary table
    assert "[18/18]" in err  # the final progress line

    code, out, _ = cli(capsys, "run", DATA / "small.toml", "--dry-run")
    assert "stored: ok 18" in out and "to run: 0 cells" in out
    code, out, _ = cli(capsys, "run", DATA / "small.toml")
    assert code == 0 and "18 already stored" in out

    code, out, _ = cli(capsys, "status", "results/small")
    assert code == 0
    assert "done     18" in out and "failed   0" in out and "missing  0" in out


def test_quick_then_status_counts_missing(workdir, capsys):
    # block 1 keeps its smallest n (100), block 2 its only n: 2 scenarios x 2 configs x 1
    code, out, _ = cli(capsys, "run", DATA / "small.toml", "--quick")
    assert code == 0 and "4 cells: ok 4" in out
    code, out, _ = cli(capsys, "status", "results/small")
    # missing cells: exit code 3 (the sweep is not complete)
    assert code == 3 and "done     4" in out and "missing  14" in out
    df = load("results/small")
    assert set(df["replicate"]) == {0} and set(df["s_n"]) == {100, 150}


def test_run_summarises_from_the_columns_it_shows(workdir, capsys, monkeypatch):
    """The summary ``simbench run`` prints reads only its columns (not the list columns of a
    large run), and a quick run summarises its own cells."""
    from simbench.sweep import store

    read = []
    real = store.load_arrays

    def spy(directory, columns):
        read.append(columns)
        return real(directory, columns)

    monkeypatch.setattr(store, "load_arrays", spy)

    def summary_cells(*args) -> int:
        code, out, _ = cli(capsys, "run", DATA / "small.toml", "--no-progress", *args)
        assert code == 0
        lines = out.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("config "))
        rows = [line for line in lines[header + 2 :] if line and not line.startswith("results:")]
        return sum(int(line.split()[1]) for line in rows)

    assert summary_cells() == 18  # the whole sweep
    assert len(read) == 1 and "status" in read[0] and "config_label" in read[0]
    assert "beta_hat" not in read[0]
    assert summary_cells("--quick") == 4  # stored cells outside the quick run are left out


def test_failed_cells_exit_3_and_rerun_failed(workdir, capsys, monkeypatch):
    code, out, err = cli(capsys, "run", DATA / "failing.toml")
    assert code == 3 and "failed" in err and "--rerun-failed" in err
    assert cli(capsys, "status", "results/failing")[0] == 3
    monkeypatch.setenv("SIMBENCH_GROUP_FN", "fake_groups:calm")
    assert cli(capsys, "run", DATA / "failing.toml")[0] == 3  # failures kept
    code, out, _ = cli(capsys, "run", DATA / "failing.toml", "--rerun-failed")
    assert code == 0 and "4 cells: ok 4" in out
    assert cli(capsys, "status", "results/failing")[0] == 0


def test_fail_fast(workdir, capsys):
    code, _, err = cli(capsys, "run", DATA / "failing.toml", "--fail-fast")
    assert code == 3 and "--fail-fast" in err and "not run" in err


def test_list(workdir, capsys):
    code, out, _ = cli(capsys, "list", "families")
    assert code == 0 and out.startswith("families:\n") and "poisson" in out and "gaussian" in out
    code, out, _ = cli(capsys, "list")
    assert code == 0
    for kind in ("families:", "links:", "losses:", "activations:", "optimizers:", "metrics:"):
        assert kind in out


def test_internal_errors_exit_1(workdir, capsys, monkeypatch):
    monkeypatch.setenv("SIMBENCH_GROUP_FN", "fake_groups_that_do_not_exist:seeded")
    code, _, err = cli(capsys, "run", DATA / "small.toml")
    assert code == 1 and "internal error" in err and "ModuleNotFoundError" in err


# --------------------------------------------------------------------------- kill and resume


def reference_table(tmp_path) -> pd.DataFrame:
    spec = load_sweep(DATA / "killable.toml")
    report = Runner(spec, tmp_path / "reference", group_fn="fake_groups:seeded").run()
    assert report.exit_code == 0
    return load(tmp_path / "reference")


def stored_rows(parts: Path) -> int:
    total = 0
    for path in parts.glob("part-*.parquet"):
        try:
            total += pq.ParquetFile(path).metadata.num_rows
        except (FileNotFoundError, OSError):
            pass  # replaced by a compaction meanwhile
    return total


def run_cli_subprocess(out: Path, *extra: str, env=None, wait=True):
    cmd = [sys.executable, "-m", "simbench.cli", "run", str(DATA / "killable.toml")]
    cmd += ["--out", str(out), "--no-progress", *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait:
        proc.communicate(timeout=120)
    return proc


def test_sigkill_at_random_points_then_rerun_gives_the_uninterrupted_table(tmp_path):
    reference = reference_table(tmp_path)
    assert len(reference) == 48
    expected = reference[METRICS].sort_values("cell_id").reset_index(drop=True)
    rng = random.Random(20261122)
    env = env_for_subprocess(
        SIMBENCH_GROUP_FN="fake_groups:sleepy",
        FAKE_SLEEP_MS=15,
        SIMBENCH_FLUSH_ROWS=3,
        SIMBENCH_FLUSH_SECONDS=0.05,
    )
    # (rows stored before the kill, extra options): early, middle, late; serial and 2 jobs
    plans = [(1, ()), (15, ("--jobs", "2")), (36, ())]
    for k, (after_rows, extra) in enumerate(plans):
        out = tmp_path / f"killed-{k}"
        parts = out / "parts"
        kills = 0
        # kill twice in a row for the first plan: a resumed run must survive a kill too
        for _ in range(2 if k == 0 else 1):
            start = stored_rows(parts) if parts.exists() else 0
            proc = run_cli_subprocess(out, *extra, env=env, wait=False)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if parts.exists() and stored_rows(parts) >= start + after_rows:
                    break
                time.sleep(0.003)
            time.sleep(rng.uniform(0.0, 0.03))  # land at varied points of a flush or cell
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=30)
            # nothing corrupt after a kill: every part file opens and reads
            for path in parts.glob("part-*.parquet"):
                pq.read_table(path)
        assert kills >= 1, "the run finished before it could be killed"
        partial = load(out)
        assert partial["cell_id"].is_unique and len(partial) < 48

        proc = run_cli_subprocess(out, *extra, env=env)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        resumed = load(out)
        assert len(resumed) == 48 and resumed["cell_id"].is_unique
        got = resumed[METRICS].sort_values("cell_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        for a, b in zip(
            resumed.sort_values("cell_id")["beta_hat"],
            reference.sort_values("cell_id")["beta_hat"],
            strict=True,
        ):
            assert list(a) == list(b)
        # the raw files too: after the final compaction, one row per cell
        files = list(parts.glob("part-*.parquet"))
        assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 48
        runs = load_manifest(out)["runs"]
        assert runs[-1]["outcome"] == "finished" and all(r.get("run_id") for r in runs)
        assert sum(r["outcome"] == "running" for r in runs) == kills  # killed runs never ended


def test_sigterm_flushes_and_records_the_interruption(tmp_path):
    out = tmp_path / "termed"
    env = env_for_subprocess(
        SIMBENCH_GROUP_FN="fake_groups:sleepy", FAKE_SLEEP_MS=15, SIMBENCH_FLUSH_ROWS=1000
    )
    proc = run_cli_subprocess(out, env=env, wait=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "manifest.json").exists():
        time.sleep(0.005)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    df = load(out)
    assert 0 < len(df) < 48  # buffered rows were written despite the large flush size
    assert load_manifest(out)["runs"][-1]["outcome"] == "interrupted"


# a process ending through the command's exit: what it prints shows what ran at its end
_ENDING = """
import atexit, sys, threading

class Freed:
    def __del__(self):
        print("freed at teardown", flush=True)

kept = Freed()  # freed only when the interpreter tears its modules down
atexit.register(lambda: print("exit handler ran", flush=True))
print("buffered, unflushed", end="")
if sys.argv[1] == "thread":
    # alive until the ordinary exit begins (it marks the main thread stopped first)
    late = lambda: (threading.main_thread().join(), print("thread finished", flush=True))
    threading.Thread(target=late).start()
sys.argv = ["simbench", "list"]
from simbench.cli import run_and_exit
run_and_exit()
"""


@pytest.mark.parametrize("thread", [False, True])
def test_the_command_ends_without_teardown_once_its_work_is_done(thread):
    """``simbench`` ends its process once the command has returned: exit handlers run and
    the streams are flushed, but the interpreter does not free its modules (some 0.3 s); a
    thread still running is waited for by the ordinary exit instead."""
    proc = subprocess.run(
        [sys.executable, "-c", _ENDING, "thread" if thread else "plain"],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "buffered, unflushed" in proc.stdout and "gaussian" in proc.stdout  # all of it
    assert "exit handler ran" in proc.stdout
    assert ("thread finished" in proc.stdout) == thread
    assert ("freed at teardown" in proc.stdout) == thread


def test_the_exit_code_survives_the_quick_exit(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "simbench", "validate", str(tmp_path / "missing.toml")],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_INPUT and "missing.toml" in proc.stderr
