"""Every bad input of issue 15 gets the README's exit code and a message, never a
traceback, and nothing is written; status and compare answer with the documented codes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from cli_support import cli

from simbench.cli import main
from simbench.errors import ValidationError
from simbench.sweep.backends import SerialExecutor
from simbench.sweep.limits import MAX_CELLS, MAX_TIMEOUT, MESSAGE_CHARS, MIN_TIMEOUT, TIMEOUT_RANGE
from simbench.sweep.runner import Runner
from simbench.sweep.spec import RawVocabulary, parse_sweep
from simbench.sweep.store import load

DATA = Path(__file__).resolve().parent / "data"

BASE = """
[sweep]
name = "b"
replicates = 1
seed = 1
[[scenarios]]
family = "poisson"
n = 100
p = 2
[[configs]]
name = "a"
hidden = []
"""


def refused(capsys, workdir, text: str, *needles: str, command: str = "validate") -> str:
    """Write ``text`` as a sweep file; ``command`` must exit 2 writing nothing."""
    path = workdir / "sweep.toml"
    path.write_text(text)
    before = sorted(p.name for p in workdir.iterdir())
    code, out, err = cli(capsys, command, path)
    assert code == 2, err
    assert out == "" and err.startswith("simbench: error: sweep.toml")
    assert "Traceback" not in err and len(err) < MESSAGE_CHARS + 100
    for needle in needles:
        assert needle in err, err
    assert sorted(p.name for p in workdir.iterdir()) == before  # nothing written
    return err


CASES = {
    "link of the wrong type": (
        BASE.replace('family = "poisson"', 'family = "poisson"\nlink = 1.5'),
        ["[[scenarios]] #1", "'link'", "1.5", "float"],
    ),
    "a timeout no cell can meet": (
        BASE.replace("seed = 1", "seed = 1\ntimeout = 1e-9"),
        ["[sweep] key 'timeout'", "1e-09", TIMEOUT_RANGE],
    ),
    "a timeout no timer can be set to": (
        BASE.replace("seed = 1", "seed = 1\ntimeout = 9223372037.0"),
        ["[sweep] key 'timeout'", "9223372037.0", TIMEOUT_RANGE],
    ),
    "TOML nested thousands deep": (
        BASE.replace("n = 100", "n = " + "[" * 5000 + "1" + "]" * 5000),
        ["nested too deeply"],
    ),
    "a 300-character name": (
        BASE.replace('name = "b"', f'name = "{"x" * 300}"'),
        ["[sweep] key 'name'", "at most 100 characters", "more characters)"],
    ),
    "a name with a newline": (
        BASE.replace('name = "b"', 'name = "x\\n"'),
        ["[sweep] key 'name'", "'x\\n'"],
    ),
    "a 10 MB unknown key": (
        BASE.replace("p = 2", "p = 2\n" + "k" * 10_000_000 + " = 1"),
        ["unknown scenario key", "more characters)", "accepted:"],
    ),
    "more covariates than any fit can hold": (
        BASE.replace("p = 2", "p = 1e18"),
        ["[[scenarios]] #1", "'p'", "an integer from 1 to 10,000", "1e+18"],
    ),
    "a sweep above the cell limit": (
        BASE.replace("replicates = 1", "replicates = 1_000_000_000"),
        ["1,000,000,000 cells", f"at most {MAX_CELLS:,}"],
    ),
    "a grid of 10^8 configurations": (
        BASE.replace('name = "a"', "lr = [" + ", ".join(["0.1"] * 10_000) + "]").replace(
            "hidden = []", "l2 = [" + ", ".join(["0.0"] * 10_000) + "]"
        ),
        ["100,000,000 configurations", "at most"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_sweep_files_exit_2_with_a_message_and_write_nothing(workdir, capsys, case, command):
    text, needles = CASES[case]
    t0 = time.monotonic()
    refused(capsys, workdir, text, *needles, command=command)
    assert time.monotonic() - t0 < 30  # refused up front, not after expanding anything


def test_a_billion_cell_sweep_is_counted_without_listing_its_cells(workdir, capsys):
    # 10^8 cells (the limit) validate quickly and print their count; 10^9 are refused above
    text = BASE.replace("replicates = 1", "replicates = 10_000_000").replace(
        'name = "a"', 'name = "a"\nlr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]'
    )
    path = workdir / "big.toml"
    path.write_text(text)
    t0 = time.monotonic()
    code, out, err = cli(capsys, "validate", path)
    elapsed = time.monotonic() - t0
    assert code == 0, err
    assert "1 scenarios x 10 configs x 10000000 replicates = 100000000 cells" in out
    assert elapsed < 10  # a hang guard: counting is arithmetic (well under a second)
    code, out, err = cli(capsys, "run", path, "--dry-run")
    assert code == 0 and "= 100000000 cells" in out and "to run: 100000000 cells" in out
    assert list(workdir.iterdir()) == [path]


@pytest.mark.parametrize("value", ["1e-9", "9223372037", "inf", "nan"])
def test_a_timeout_out_of_range_on_the_command_line_is_a_usage_error(workdir, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["run", str(DATA / "small.toml"), "--timeout", value])
    assert info.value.code == 2
    assert TIMEOUT_RANGE in capsys.readouterr().err
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("value", [MIN_TIMEOUT / 2, MAX_TIMEOUT * 2, float("nan"), True])
def test_a_timeout_out_of_range_from_python_is_refused(tmp_path, value):
    spec = parse_sweep(BASE, source="b.toml", vocabulary=RawVocabulary())
    with pytest.raises(ValidationError, match="a year"):
        Runner(spec, tmp_path / "res", executor=SerialExecutor(), timeout=value)
    assert not (tmp_path / "res").exists()


def test_the_serial_alarm_never_escapes_at_the_smallest_timeout(tmp_path):
    # cells of about the timeout itself: the alarm fires at every possible moment of a
    # cell's start and end; every cell still gets exactly one row and nothing escapes
    text = BASE.replace("replicates = 1", "replicates = 40").replace(
        'name = "a"', 'name = ["a", "b", "c"]'
    )
    spec = parse_sweep(text, source="t.toml", vocabulary=RawVocabulary())
    import os

    os.environ["FAKE_SLEEP_MS"] = str(MIN_TIMEOUT * 1000)
    try:
        report = Runner(
            spec,
            tmp_path / "res",
            executor=SerialExecutor(),
            group_fn="fake_groups:sleepy",
            timeout=MIN_TIMEOUT,
        ).run()
    finally:
        del os.environ["FAKE_SLEEP_MS"]
    df = load(tmp_path / "res")
    assert len(df) == 120 and df["cell_id"].is_unique
    assert set(df["status"]) <= {"ok", "timeout"}
    assert report.missing == 0


def test_an_unreachable_scheduler_is_bad_input_and_writes_nothing(workdir, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("SIMBENCH_DASK_CONNECT_TIMEOUT", "1")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    code, out, err = cli(capsys, "run", DATA / "small.toml", "--address", f"tcp://127.0.0.1:{port}")
    assert code == 2 and out == ""
    assert f"--address tcp://127.0.0.1:{port}: cannot reach a Dask scheduler" in err
    assert "Traceback" not in err and list(workdir.iterdir()) == []
    code, _, err = cli(capsys, "run", DATA / "small.toml", "--address", "not an address")
    assert code == 2 and "expected a scheduler address" in err


# --------------------------------------------------------------------------- status, compare


def test_status_exits_3_while_cells_are_missing_or_failed(workdir, capsys):
    out = workdir / "results" / "small"
    assert cli(capsys, "run", DATA / "small.toml", "--quick")[0] == 0
    for part in (out / "parts").iterdir():
        part.unlink()  # every cell missing
    code, text, _ = cli(capsys, "status", out)
    assert code == 3 and "done     0" in text and "missing  18" in text
    assert cli(capsys, "run", DATA / "small.toml")[0] == 0
    code, text, _ = cli(capsys, "status", out)
    assert code == 0 and "missing  0" in text
    assert cli(capsys, "run", DATA / "failing.toml")[0] == 3
    code, text, _ = cli(capsys, "status", workdir / "results" / "failing")
    assert code == 3 and "failed   2" in text and "missing  0" in text


def test_compare_of_unrelated_sweeps_exits_2(workdir, capsys):
    assert cli(capsys, "run", DATA / "small.toml")[0] == 0
    assert cli(capsys, "run", DATA / "failing.toml")[0] == 3
    code, out, err = cli(capsys, "compare", "results/small", "results/failing")
    assert code == 2 and out == ""
    assert "no (scenario, configuration) in common" in err and "nothing to compare" in err
    assert "Traceback" not in err
    # the same sweep twice still compares (exit 0: nothing changed)
    assert cli(capsys, "compare", "results/small", "results/small")[0] == 0
