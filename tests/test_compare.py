"""``simbench compare``: Monte Carlo-aware accuracy, speed and failure regressions."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from simbench.errors import ValidationError
from simbench.report.aggregate import aggregate
from simbench.report.compare import compare, machine_differences
from simbench.report.synthetic import synthetic_results, write_results


def run_cli(argv: list[str]) -> int:
    """``simbench ARGV`` through the real entry point (a command that is not registered fails)."""
    from simbench import cli

    return cli.main(argv)


def base(replicates: int = 10, seed: int = 0) -> pd.DataFrame:
    return synthetic_results(
        families=("poisson",), ns=(500, 2000), replicates=replicates, seed=seed
    )


def _se(df: pd.DataFrame, metric: str, config: str, n: int) -> float:
    agg = aggregate(df, metrics=[metric])
    row = agg[(agg["config"] == config) & (agg["s_n"] == n)].iloc[0]
    return float(row[f"{metric}_se"])


def _cell(df: pd.DataFrame, config: str, n: int) -> np.ndarray:
    return ((df["c_name"] == config) & (df["s_n"] == n)).to_numpy()


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory):
    return write_results(base(), tmp_path_factory.mktemp("cmp") / "a")


def test_identical_runs_flag_nothing(baseline_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(baseline_dir, copy)
    result = compare(baseline_dir, copy)
    assert result.changes == [] and result.warnings == [] and result.exit_code == 0
    assert result.matched_cells == 60 and result.matched_groups == 6
    assert (result.accuracy["delta"] == 0).all()
    assert (result.speed["ratio"] == 1).all()
    assert run_cli(["compare", str(baseline_dir), str(copy)]) == 0
    captured = capsys.readouterr()
    assert "Nothing changed beyond Monte Carlo noise." in captured.out
    assert "no regression" in captured.out and captured.err == ""


def test_shift_beyond_three_standard_errors_is_a_regression():
    a = base()
    b = a.copy()
    mask = _cell(b, "mlp", 500)
    shift = 5.0 * np.sqrt(2) * _se(a, "excess_deviance", "mlp", 500)
    b.loc[mask, "excess_deviance"] += shift
    result = compare(a, b)
    assert result.exit_code == 3
    (change,) = result.regressions
    assert (change.aspect, change.metric, change.config) == ("accuracy", "excess_deviance", "mlp")
    assert change.scenario == "n=500"
    assert "= 5.0 SE (> 3)" in change.why and "lower is better" in change.why
    row = result.accuracy[
        (result.accuracy["metric"] == "excess_deviance") & (result.accuracy["config"] == "mlp")
    ]
    flagged = row[row["kind"] == "regression"].iloc[0]
    # SE of the difference is sqrt(SE_A^2 + SE_B^2) (equal SEs here: a pure shift)
    assert flagged["se"] == pytest.approx(np.sqrt(2) * _se(a, "excess_deviance", "mlp", 500))
    assert flagged["z"] == pytest.approx(5.0)
    assert "REGRESSED: 1 accuracy" in result.format()


def test_shift_within_noise_is_not_flagged():
    a = base()
    b = a.copy()
    mask = _cell(b, "mlp", 500)
    b.loc[mask, "excess_deviance"] += 2.0 * np.sqrt(2) * _se(a, "excess_deviance", "mlp", 500)
    result = compare(a, b)
    assert result.changes == [] and result.exit_code == 0
    z = result.accuracy.loc[result.accuracy["kind"] == "", "z"].abs().max()
    assert z == pytest.approx(2.0)


def test_improvement_is_reported_but_not_a_regression():
    a = base()
    b = a.copy()
    mask = _cell(b, "mlp", 2000)
    b.loc[mask, "coef_err_truth"] -= 6.0 * np.sqrt(2) * _se(a, "coef_err_truth", "mlp", 2000)
    b.loc[mask, "auc"] = 0.9  # higher is better; NaN for Poisson in A, so not compared
    result = compare(a, b)
    assert result.exit_code == 0
    (change,) = result.improvements
    assert change.metric == "coef_err_truth"
    assert "## Improvements (1)" in result.format()


def test_target_metrics_use_the_distance_to_the_target():
    a = base()
    a["calib_slope"] = 1.0 + 0.01 * np.random.default_rng(1).standard_normal(len(a))
    away, toward = a.copy(), a.copy()
    mask = _cell(a, "glm-as-nn", 500)
    away.loc[mask, "calib_slope"] += 0.2  # from ~1 to ~1.2: worse
    result = compare(a, away)
    assert [c.metric for c in result.regressions] == ["calib_slope"]
    a.loc[mask, "calib_slope"] -= 0.3  # A at ~0.7; B back at ~1.0: better
    toward.loc[mask, "calib_slope"] = a.loc[mask, "calib_slope"] + 0.3
    result = compare(a, toward)
    assert [c.metric for c in result.improvements] == ["calib_slope"]
    assert result.exit_code == 0


def test_neutral_metric_changes_are_not_regressions():
    a = base()
    b = a.copy()
    b.loc[_cell(b, "mlp", 500), "epochs_run"] += 50
    result = compare(a, b)
    assert result.exit_code == 0
    (change,) = result.changes
    assert (change.kind, change.metric) == ("change", "epochs_run")


def test_slower_timing_with_mann_whitney_agreement_is_a_regression():
    a = base()
    b = a.copy()
    b.loc[_cell(b, "glm-as-nn", 2000), "fit_seconds"] *= 1.5
    result = compare(a, b)
    assert result.exit_code == 3
    (change,) = result.regressions
    assert (change.aspect, change.config, change.scenario) == ("speed", "glm-as-nn", "n=2000")
    assert "×1.5" in change.why and "Mann–Whitney" in change.why
    row = result.speed[result.speed["kind"] == "regression"].iloc[0]
    assert row["ratio"] == pytest.approx(1.5)
    assert row["p"] < 0.01
    # a faster run is an improvement
    c = a.copy()
    c.loc[_cell(c, "glm-as-nn", 2000), "fit_seconds"] /= 2.0
    result = compare(a, c)
    assert result.exit_code == 0 and [x.aspect for x in result.improvements] == ["speed"]


def test_speed_needs_both_the_factor_and_the_test():
    a = base()
    cell = _cell(a, "glm-as-nn", 2000)
    a.loc[cell, "fit_seconds"] = np.linspace(1.0, 1.09, 10)
    # uniformly slower by 10%: the test agrees (every B time beats every A time), the
    # factor does not
    b = a.copy()
    b.loc[cell, "fit_seconds"] *= 1.1
    result = compare(a, b)
    assert result.changes == []
    row = result.speed[(result.speed["config"] == "glm-as-nn")]
    assert row["ratio"].max() == pytest.approx(1.1)
    # slower by 1.5x with three replicates per side: the smallest one-sided exact
    # Mann-Whitney p is 1/20 > 0.01, so it is not flagged, and the output says why
    small = base(replicates=3)
    slow = small.copy()
    slow.loc[_cell(slow, "glm-as-nn", 2000), "fit_seconds"] *= 1.5
    result = compare(small, slow)
    assert result.changes == [] and result.exit_code == 0
    assert any("not testable" in n for n in result.notes)
    # and the threshold factor is an option
    assert compare(a, b, speed_factor=1.05).exit_code == 3


def test_new_failures_are_regressions_and_fixed_cells_improvements():
    a = base()
    b = a.copy()
    broken = _cell(b, "mlp", 500) & (b["replicate"] < 3).to_numpy()
    b.loc[broken, "status"] = "diverged"
    b.loc[broken, "error"] = "non-finite training loss at epoch 2"
    result = compare(a, b)
    assert result.exit_code == 3
    failures = [c for c in result.regressions if c.aspect == "failures"]
    assert len(failures) == 1
    assert failures[0].a == "10/10 ok" and failures[0].b == "7/10 ok"
    assert "3 × ok → diverged" in failures[0].why
    assert "non-finite training loss" in failures[0].why
    back = compare(b, a)
    assert back.exit_code == 0
    assert [c.aspect for c in back.improvements] == ["failures"]


def test_changed_configuration_is_matched_by_name():
    a = base()
    b = a.copy()
    mask = (b["c_name"] == "mlp").to_numpy()
    b.loc[mask, "config_id"] = "new-mlp-id"
    b.loc[mask, "c_lr"] = 100.0
    b.loc[mask, "status"] = "diverged"
    result = compare(a, b)
    assert result.exit_code == 3
    assert any("'mlp' changed between the runs" in n and "lr 0.01 → 100" in n for n in result.notes)
    assert {c.config for c in result.regressions} == {"mlp"}


def test_cells_on_one_side_only_are_noted():
    a = base()
    b = a[a["c_name"] != "early-stop"]
    result = compare(a, b)
    assert result.exit_code == 0
    assert any("only in A" in n and "early-stop" in n for n in result.notes)


def test_machine_mismatch_warns(baseline_dir, tmp_path, capsys):
    other = write_results(base(), tmp_path / "other", cpu="Other CPU 9000", hostname="box2")
    result = compare(baseline_dir, other)
    assert result.exit_code == 0
    assert len(result.warnings) == 1
    assert "different machines" in result.warnings[0]
    assert "Other CPU 9000" in result.warnings[0] and "hostname" in result.warnings[0]
    assert run_cli(["compare", str(baseline_dir), str(other)]) == 0
    assert "warning: the runs come from different machines" in capsys.readouterr().err
    same = machine_differences({"runs": [{"provenance": {"cpu": "X"}}]}, {"runs": []})
    assert same == []


def test_cli_formats_exit_codes_and_bad_input(baseline_dir, tmp_path, capsys):
    b = base()
    b.loc[_cell(b, "mlp", 500), "status"] = "error"
    worse = write_results(b, tmp_path / "worse")
    assert run_cli(["compare", str(baseline_dir), str(worse)]) == 3
    out = capsys.readouterr().out
    assert "## Regressions" in out and "new failures" in out
    csv_path = tmp_path / "cmp.csv"
    code = run_cli(["compare", str(baseline_dir), str(worse), "-f", "csv", "-o", str(csv_path)])
    assert code == 3
    frame = pd.read_csv(csv_path)
    assert set(frame["aspect"]) == {"accuracy", "speed", "failures"}
    assert "REGRESSED" in capsys.readouterr().err
    assert run_cli(["compare", str(baseline_dir), str(worse), "--all"]) == 3
    assert "## Every accuracy comparison" in capsys.readouterr().out
    assert run_cli(["compare", str(baseline_dir), str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit):
        run_cli(["compare", str(baseline_dir), str(worse), "--speed-factor", "0.9"])
    with pytest.raises(ValidationError, match="did you mean 'coef_z_mle'"):
        compare(baseline_dir, worse, metrics=["coef_z_mel"])
