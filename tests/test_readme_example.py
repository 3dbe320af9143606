"""The README's worked example, run as written: the quickstart on two local workers, its
summary against the README's (the metrics to the printed digits), the table command and
the Python block; then timeouts: the sweep's ``timeout``, a ``--timeout`` override and
``--rerun-failed`` on the timed-out rows."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pytest

from simbench.cli import main
from simbench.sweep.store import load, load_manifest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## A worked example") : README.index("## Commands")]


def blocks(text: str, lang: str = "") -> list[str]:
    return re.findall(r"```" + lang + r"\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def summary_rows(text: str) -> dict[str, list[str]]:
    """config -> cells of the summary table printed by ``simbench run``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("config "))
    header = lines[start].split()
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith("results:"):
            break
        cells = line.split()
        rows[cells[0]] = cells
    assert rows, text
    return {"__header__": header, **rows}


def close(readme: str, ours: str) -> bool:
    a, b = float(readme), float(ours)
    if abs(a) < 1e-3 or abs(b) < 1e-3:  # at the MLE: the same order of magnitude
        return abs(a) < 1e-3 and abs(b) < 1e-3 and abs(math.log10(abs(a) / abs(b))) < 1
    return math.isclose(a, b, rel_tol=2e-3)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIMBENCH_GROUP_FN", raising=False)
    return tmp_path


def run_line(capsys, line: str) -> tuple[int, str, str]:
    argv = shlex.split(line)
    assert argv[0] == "simbench"
    argv = [str(ROOT / a) if a.startswith("scenarios/") else a for a in argv[1:]]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_worked_example_runs_as_written(workdir, capsys):
    first, second, python = blocks(SECTION)[0], blocks(SECTION)[1], blocks(SECTION, "python")[0]
    (run_cmd,) = commands(first)
    code, out, err = run_line(capsys, run_cmd)
    assert code == 0, err
    assert "results: results/quickstart  (63 cells: ok 63; 0 already stored;" in out
    readme, ours = summary_rows(first), summary_rows(out)
    assert readme["__header__"] == ours["__header__"]
    assert set(readme) == set(ours)
    for config, cells in readme.items():
        if config == "__header__":
            continue
        got = ours[config]
        assert cells[:6] == got[:6], config  # config, cells, ok, diverged, failed, skipped
        # the metric means, to the digits the README prints (fit_seconds is the machine's)
        for k in (-4, -3, -2):  # coef_z_mle, coef_err_truth, excess_deviance
            assert close(cells[k], got[k]), (config, k, cells[k], got[k])
    (table_cmd,) = commands(second)
    code, out, err = run_line(capsys, table_cmd)
    assert code == 0, err
    assert out.startswith("coef_z_mle: mean ± Monte Carlo standard error over 3 replicates")
    for config in ("glm-lbfgs", "glm-newton", "glm-irls", "mlp-16"):
        assert f"| {config} " in out or f" {config} |" in out
    # the Python block, as written
    namespace: dict = {}
    exec(compile(python, "README.md", "exec"), namespace)
    capsys.readouterr()
    mle, net, df = namespace["mle"], namespace["net"], namespace["df"]
    assert len(df) == 63 and (df["status"] == "ok").all()
    assert abs(mle.coef - net.coef).max() < 1e-8  # "the same to ~1e-10"
    assert len(mle.coef) == 6 and len(mle.bse) == 6


SLOW = """
[[configs]]
name = "slow"              # far more epochs than its timeout allows
hidden = [16]
activation = "tanh"
optimizer = "adam"
lr = 1e-4
epochs = 12000
"""


def test_sweep_timeout_override_and_rerun_failed(workdir, capsys):
    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    text = text.replace("seed = 2026\n", "seed = 2026\ntimeout = 0.2\n", 1) + SLOW
    sweep = workdir / "timed.toml"
    sweep.write_text(text)
    # the sweep's timeout: every slow cell of the quick subset times out, the rest finish
    code, out, err = run_line(capsys, f"simbench run {sweep} --quick --no-progress")
    assert code == 3, err
    df = load("results/quickstart")
    slow = df[df["c_name"] == "slow"]
    assert len(slow) == 3 and (slow["status"] == "timeout").all()
    assert slow["error"].str.contains("timeout of 0.2 s").all()
    assert (df.loc[df["c_name"] != "slow", "status"] == "ok").all()
    assert load_manifest("results/quickstart")["runs"][-1]["options"]["timeout"] == 0.2
    # timed-out rows are kept until asked: a rerun without --rerun-failed changes nothing
    code, out, _ = run_line(capsys, f"simbench run {sweep} --quick --no-progress")
    assert code == 3 and "24 already stored" in out
    # --timeout overrides the sweep's; --rerun-failed runs the timed-out cells again
    code, out, err = run_line(
        capsys, f"simbench run {sweep} --quick --no-progress --timeout 120 --rerun-failed"
    )
    assert code == 0, err
    assert "21 already stored" in out
    df = load("results/quickstart")
    assert (df["status"] == "ok").all() and len(df) == 24
    assert load_manifest("results/quickstart")["runs"][-1]["options"]["timeout"] == 120
    code, text_out, _ = run_line(capsys, "simbench status results/quickstart")
    assert code == 3 and "missing  48" in text_out  # the full sweep: 3 x 8 x 3 = 72 cells
