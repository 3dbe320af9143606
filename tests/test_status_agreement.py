"""One status vocabulary: ``status``, ``table``, ``report`` and ``compare`` agree on every count
of a results directory holding every status (a diverged cell was once done for ``status`` and
failed for ``table``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from simbench import cli
from simbench.report.frame import FAILED_STATUSES as REPORT_FAILED
from simbench.report.synthetic import synthetic_results, write_results
from simbench.sweep import status as vocabulary

# per status, the cells of configuration "mlp" (6 replicates)
MLP = {"ok": 2, "error": 1, "diverged": 2, "timeout": 1}


def _results(all_ok: bool = False):
    df = synthetic_results(families=("poisson",), ns=(200,), replicates=6, seed=3)
    df["status"] = "ok"
    if not all_ok:
        rows = np.flatnonzero((df["c_name"] == "mlp").to_numpy())
        at = 0
        for status, count in MLP.items():
            df.loc[df.index[rows[at : at + count]], "status"] = status
            at += count
    df.loc[(df["c_name"] == "early-stop").to_numpy(), "status"] = "skipped"
    return df


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("statuses")
    return write_results(_results(True), root / "a"), write_results(_results(), root / "b")


def test_the_reports_use_the_runners_vocabulary():
    assert set(REPORT_FAILED) == set(vocabulary.FAILED_STATUSES) == {"error", "timeout"}
    assert vocabulary.RERUN_STATUSES == vocabulary.FAILED_STATUSES
    assert set(vocabulary.STATUSES) == {"ok", "error", "diverged", "timeout", "skipped"}


def test_status_table_report_and_compare_agree(dirs, capsys, tmp_path):
    a, b = dirs
    failed = sum(MLP[s] for s in vocabulary.FAILED_STATUSES)  # error + timeout = 2
    diverged = MLP["diverged"]

    code = cli.main(["status", str(b)])
    out = capsys.readouterr().out
    assert code == vocabulary.EXIT_FAILED
    assert re.search(rf"failed +{failed}\n", out)
    assert "by status: ok 8, error 1, diverged 2, timeout 1, skipped 6" in out
    assert re.search(r"done +16\n", out)  # everything stored but the failed cells

    assert cli.main(["table", str(b), "--metric", "excess_deviance"]) == 0
    out = capsys.readouterr().out
    mlp = out.splitlines()[-1].split("|")[3]
    assert f"({failed} failed, {diverged} diverged)" in mlp
    assert out.splitlines()[-1].split("|")[4].strip() == "n/a"  # skipped

    assert cli.main(["report", str(b), "--out", str(tmp_path / "r" / "report.md")]) == 0
    capsys.readouterr()
    text = (tmp_path / "r" / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| mlp | 6 |"))
    # configuration, cells, ok, not converged, error, diverged, timeout, skipped
    assert [c.strip() for c in row.strip("|").split("|")][2:] == ["2", "0", "1", "2", "1", "0"]
    assert f"({failed} failed, {diverged} diverged)" in text

    assert cli.main(["compare", str(a), str(b)]) == vocabulary.EXIT_FAILED
    out = capsys.readouterr().out
    assert "new failures: 1 × ok → error, 1 × ok → timeout" in out
    assert f"newly diverged: {diverged} × ok → diverged" in out
    assert "6/6 ok | 2/6 ok" in out
