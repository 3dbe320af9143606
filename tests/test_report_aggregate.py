"""Aggregation across replicates: numbers against hand computation on a tiny frame."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simbench.errors import ValidationError
from simbench.report.aggregate import (
    aggregate,
    cell_counts,
    coefficients,
    config_labels,
    coverage,
    direction,
    efficiency,
    scenario_labels,
)
from simbench.report.synthetic import synthetic_results, write_results
from simbench.sweep.store import load

# Two configurations on one scenario, four replicates; "net" diverges in replicate 3.
# beta* = [1, 2].  Hand-computed values are in the tests.
NET_BETA = [[1.1, 2.0], [0.9, 2.4], [1.3, 2.2], []]
MLE_BETA = [[1.0, 2.1], [1.1, 1.9], [0.9, 2.0], [1.05, 2.0]]
MLE_SE = [[0.05, 0.2], [0.05, 0.04], [0.06, 0.1], [0.1, 0.1]]
SANDWICH_SE = [[0.01, 0.01], [0.06, 0.06], [0.01, 0.01], [0.001, 0.1]]
CRB = [[0.02, 0.01], [0.02, 0.01], [0.02, 0.04], [0.02, 0.02]]
NET_ED = [0.1, 0.2, 0.4, math.nan]
GLM_ED = [0.05, 0.05, 0.08, 0.02]


def tiny_frame() -> pd.DataFrame:
    rows = []
    for cfg, c_idx in (("net", 0), ("glm", 1)):
        for r in range(4):
            diverged = cfg == "net" and r == 3
            rows.append(
                {
                    "cell_id": f"{cfg}-{r}",
                    "scenario_id": "s1",
                    "config_id": f"id-{cfg}",
                    "replicate": r,
                    "scenario_index": 0,
                    "config_index": c_idx,
                    "s_family": "poisson",
                    "s_link": "log",
                    "s_n": 100,
                    "c_name": cfg,
                    "c_lr": 0.1 if cfg == "net" else 1.0,
                    "status": "diverged" if diverged else "ok",
                    "error": "non-finite loss" if diverged else None,
                    "excess_deviance": NET_ED[r] if cfg == "net" else GLM_ED[r],
                    "auc": math.nan,
                    "converged": not diverged and r != 1,
                    "fit_seconds": 0.5 + r,
                    "beta_hat": NET_BETA[r] if cfg == "net" else MLE_BETA[r],
                    "beta_true": [1.0, 2.0],
                    "beta_mle": MLE_BETA[r],
                    "mle_se": MLE_SE[r],
                    "mle_se_sandwich": SANDWICH_SE[r],
                    "crb_var": CRB[r],
                    "mle_status": "ok",
                }
            )
    return pd.DataFrame.from_records(rows)


def test_metric_mean_sd_and_monte_carlo_se():
    agg = aggregate(tiny_frame(), metrics=["excess_deviance", "auc", "converged"])
    net = agg[agg["config"] == "net"].iloc[0]
    # 0.1, 0.2, 0.4: mean 0.7/3; deviations -0.1333, -0.0333, 0.1667
    assert net["excess_deviance_n"] == 3
    assert net["excess_deviance_mean"] == pytest.approx(0.7 / 3, rel=1e-12)
    sd = math.sqrt((0.0177777778 + 0.0011111111 + 0.0277777778) / 2)
    assert net["excess_deviance_sd"] == pytest.approx(sd, rel=1e-8)
    assert net["excess_deviance_se"] == pytest.approx(sd / math.sqrt(3), rel=1e-8)
    assert net["excess_deviance_median"] == pytest.approx(0.2)
    # the diverged replicate is counted, not averaged; diverged is not failed (error and
    # timeout are: simbench.sweep.status.FAILED_STATUSES)
    assert (net["n_ok"], net["n_diverged"], net["n_failed"], net["n_cells"]) == (3, 1, 0, 4)
    # converged: ok replicates 0, 1, 2 -> 1, 0, 1
    assert net["converged_mean"] == pytest.approx(2 / 3)
    assert net["n_not_converged"] == 1
    # auc is NaN for every ok replicate: undefined, counted as NaN, not as failure
    glm = agg[agg["config"] == "glm"].iloc[0]
    assert glm["auc_n"] == 0 and glm["auc_nan"] == 4 and math.isnan(glm["auc_mean"])
    assert glm["excess_deviance_mean"] == pytest.approx(0.05)
    assert glm["n_failed"] == 0


def test_single_replicate_has_no_standard_error():
    df = tiny_frame()
    df = df[df["replicate"] == 0]
    agg = aggregate(df, metrics=["excess_deviance"])
    assert (agg["excess_deviance_n"] == 1).all()
    assert agg["excess_deviance_se"].isna().all()
    assert agg["excess_deviance_mean"].notna().all()


def test_per_coefficient_bias_variance_mse_and_efficiencies():
    coef = coefficients(tiny_frame())
    net = coef[coef["config"] == "net"].set_index("name")
    # intercept: 1.1, 0.9, 1.3 around 1 -> bias 0.1, var 0.04, MSE (0.01+0.01+0.09)/3
    assert net.loc["intercept", "n"] == 3
    assert net.loc["intercept", "bias"] == pytest.approx(0.1)
    assert net.loc["intercept", "var"] == pytest.approx(0.04)
    assert net.loc["intercept", "mse"] == pytest.approx(0.11 / 3)
    assert net.loc["intercept", "bias_se"] == pytest.approx(0.2 / math.sqrt(3))
    # x1: 2.0, 2.4, 2.2 around 2 -> bias 0.2, var 0.04, MSE (0 + 0.16 + 0.04)/3
    assert net.loc["x1", "bias"] == pytest.approx(0.2)
    assert net.loc["x1", "var"] == pytest.approx(0.04)
    assert net.loc["x1", "mse"] == pytest.approx(0.2 / 3)
    # MSE is the mean squared error: bias^2 + var (R-1)/R
    for j in ("intercept", "x1"):
        row = net.loc[j]
        assert row["mse"] == pytest.approx(row["bias"] ** 2 + row["var"] * 2 / 3)
    # efficiency over the paired replicates 0-2: Var(MLE) = 0.01 for both coefficients
    assert net.loc["intercept", "n_paired"] == 3
    assert net.loc["intercept", "var_mle"] == pytest.approx(0.01)
    assert net.loc["intercept", "efficiency"] == pytest.approx(0.25)
    assert net.loc["x1", "efficiency"] == pytest.approx(0.25)
    # CRB: mean bound over replicates 0-2 = [0.02, 0.02] -> 0.02 / 0.04
    assert net.loc["intercept", "crb_var"] == pytest.approx(0.02)
    assert net.loc["x1", "crb_var"] == pytest.approx(0.02)
    assert net.loc["x1", "crb_efficiency"] == pytest.approx(0.5)
    # MSE efficiency: MLE intercept errors 0, 0.1, -0.1 -> 0.02/3 over 0.11/3
    assert net.loc["intercept", "mse_efficiency"] == pytest.approx(0.02 / 0.11)
    # the configuration that returns the MLE is exactly efficient
    glm = coef[coef["config"] == "glm"]
    assert np.allclose(glm["efficiency"], 1.0) and np.allclose(glm["mse_efficiency"], 1.0)
    assert (glm["n_paired"] == 4).all()


def test_efficiency_summary_is_the_mean_over_coefficients():
    eff = efficiency(tiny_frame()).set_index("config")
    assert eff.loc["net", "efficiency"] == pytest.approx(0.25)
    assert eff.loc["net", "crb_efficiency"] == pytest.approx(0.5)
    assert eff.loc["net", "efficiency_min"] == pytest.approx(0.25)
    assert eff.loc["glm", "efficiency"] == pytest.approx(1.0)
    agg = aggregate(tiny_frame(), metrics=["efficiency"]).set_index("config")
    assert agg.loc["net", "efficiency"] == pytest.approx(0.25)


def test_wald_coverage_model_and_sandwich():
    cov = coverage(tiny_frame()).set_index("name")
    # one reference fit per replicate (shared by both configurations): 4 groups
    assert (cov["n"] == 4).all()
    # model-based: replicate 1 misses both (0.1 > 1.96*0.05, 0.1 > 1.96*0.04)
    assert cov.loc["intercept", "coverage_model"] == pytest.approx(0.75)
    assert cov.loc["x1", "coverage_model"] == pytest.approx(0.75)
    assert cov.loc["x1", "coverage_model_se"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    # sandwich: intercept missed in replicates 2 and 3, x1 in replicate 0
    assert cov.loc["intercept", "coverage_sandwich"] == pytest.approx(0.5)
    assert cov.loc["intercept", "coverage_sandwich_se"] == pytest.approx(0.25)
    assert cov.loc["x1", "coverage_sandwich"] == pytest.approx(0.75)
    assert cov.loc["intercept", "sd_mle"] == pytest.approx(np.std([1.0, 1.1, 0.9, 1.05], ddof=1))


def test_coverage_skips_failed_reference_fits_and_uses_exact_quantile():
    df = tiny_frame()
    df.loc[df["replicate"] == 1, "mle_status"] = "separation"
    cov = coverage(df).set_index("name")
    assert (cov["n"] == 3).all()
    assert cov.loc["intercept", "coverage_model"] == pytest.approx(1.0)
    # |dev| = 0.1 against se 0.05: covered at 96% (z = 2.054) and not at 95% (z = 1.960)
    df = tiny_frame()
    assert coverage(df, level=0.96).set_index("name").loc["intercept", "coverage_model"] == 1.0
    with pytest.raises(ValidationError, match="level"):
        coverage(df, level=1.5)


def test_efficiency_excludes_replicates_without_a_reference_fit():
    df = tiny_frame()
    df.loc[df["replicate"] == 2, "mle_status"] = "separation"
    coef = coefficients(df)
    net = coef[coef["config"] == "net"].set_index("name")
    assert net.loc["intercept", "n"] == 3  # bias/variance still use every replicate
    assert net.loc["intercept", "n_paired"] == 2  # replicates 0 and 1
    assert net.loc["intercept", "var_mle"] == pytest.approx(np.var([1.0, 1.1], ddof=1))
    assert net.loc["intercept", "efficiency"] == pytest.approx(
        np.var([1.0, 1.1], ddof=1) / np.var([1.1, 0.9], ddof=1)
    )


def test_cell_counts_by_status():
    df = tiny_frame()
    df.loc[(df["config_id"] == "id-glm") & (df["replicate"] == 0), "status"] = "skipped"
    df.loc[(df["config_id"] == "id-glm") & (df["replicate"] == 1), "status"] = "timeout"
    counts = cell_counts(df).set_index("config")
    glm = counts.loc["glm"]
    assert (glm["n_ok"], glm["n_skipped"], glm["n_timeout"], glm["n_failed"]) == (2, 1, 1, 1)
    assert glm["n_cells"] == 4


def test_readable_labels():
    df = tiny_frame()
    assert config_labels(df).to_dict() == {"id-net": "net", "id-glm": "glm"}
    # one scenario: named by family and n
    assert scenario_labels(df).to_dict() == {"s1": "poisson, n=100"}
    syn = synthetic_results(families=("poisson", "bernoulli"), ns=(100, 400), replicates=2)
    labels = list(dict.fromkeys(scenario_labels(syn).to_numpy()))
    # the link is implied by the family here, so it is left out
    assert labels == ["poisson, n=100", "poisson, n=400", "bernoulli, n=100", "bernoulli, n=400"]
    # the sweep's own label wins over the name
    syn["config_label"] = syn["c_name"] + "!"
    assert set(config_labels(syn)) == {"glm-as-nn!", "mlp!", "early-stop!"}


def test_link_kept_when_a_family_has_two_links():
    df = pd.concat([tiny_frame(), tiny_frame().assign(scenario_id="s2", s_link="identity")])
    assert set(scenario_labels(df)) == {"link=log", "link=identity"}


def test_directions():
    assert direction("coef_err_truth").badness(2.0) > direction("coef_err_truth").badness(1.0)
    assert direction("auc").badness(0.8) < direction("auc").badness(0.7)
    slope = direction("calib_slope")
    assert slope.badness(0.9) == pytest.approx(slope.badness(1.1))
    assert slope.badness(1.0) == 0.0
    assert not direction("dev_train").ordered
    assert direction("some_seconds").kind == "lower"


def test_unknown_metric_suggests_the_closest():
    with pytest.raises(ValidationError, match="did you mean 'excess_deviance'"):
        aggregate(tiny_frame(), metrics=["excess_deviannce"])
    with pytest.raises(ValidationError, match="missing column"):
        aggregate(pd.DataFrame({"x": [1]}))


def test_attrs_dropped_without_touching_the_input():
    df = tiny_frame()
    df.attrs["manifest"] = {"sweep_text": "x" * 1000}
    agg = aggregate(df, metrics=["excess_deviance"])
    assert df.attrs["manifest"]["sweep_text"] == "x" * 1000
    assert not agg.attrs


def test_round_trip_through_a_results_directory(tmp_path):
    syn = synthetic_results(families=("poisson",), ns=(500,), replicates=6)
    df = load(write_results(syn, tmp_path / "res"))
    assert len(df) == len(syn)
    a, b = aggregate(syn), aggregate(df)
    for col in ("excess_deviance_mean", "coef_z_mle_se", "efficiency", "crb_efficiency"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12)


def test_mle_excess_deviance_matches_its_chi_square_theory():
    # synthetic rows follow n * ED ~ chi2_{p+1} for the MLE: the mean is within 4 MC SE
    syn = synthetic_results(families=("poisson",), ns=(1000,), replicates=200, seed=3)
    agg = aggregate(syn, metrics=["excess_deviance"]).set_index("config")
    row = agg.loc["glm-as-nn"]
    k = 4  # p = 3 slopes + intercept
    assert abs(row["excess_deviance_mean"] * 1000 - k) < 4 * row["excess_deviance_se"] * 1000
