"""The crossover: the smallest n at which a network beats the GLM by more than the Monte
Carlo error, in ``simbench table --view crossover`` and in the report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbench import cli
from simbench.errors import ValidationError
from simbench.report.crossover import Z, crossover, glm_config
from simbench.report.synthetic import synthetic_results, write_results

NS = (100, 200, 400, 800, 1600)


def _results(floor=0.05, glm_slope=4.0, net_slope=20.0, noise=0.1, replicates=20, seed=2):
    """GLM: floor + glm_slope / n; the MLP: net_slope / n (log-normal noise); they cross
    where net_slope / n = floor + glm_slope / n, at n = 320 for the defaults."""
    df = synthetic_results(families=("poisson", "bernoulli"), ns=NS, replicates=replicates,
                           seed=seed)  # fmt: skip
    df["status"] = "ok"
    rng = np.random.default_rng(seed)
    n = df["s_n"].astype(float).to_numpy()
    mlp = (df["c_name"] == "mlp").to_numpy()
    mean = np.where(mlp, net_slope / n, floor + glm_slope / n)
    df["excess_deviance"] = mean * np.exp(rng.normal(0.0, noise, len(df)))
    df["misspec_floor"] = floor
    return df


def test_the_first_n_beyond_the_crossing_with_a_clear_difference():
    table = crossover(_results())
    assert table["panel"].tolist() == ["poisson", "bernoulli"]
    assert table["config"].tolist() == ["mlp", "mlp"]  # the only network (hidden layers)
    assert table["crossover_n"].tolist() == [400.0, 400.0]
    assert table["verdict"].iloc[0] == "mlp beats the GLM from n = 400"
    row = table.iloc[0]
    assert row["n_max"] == 1600 and row["replicates"] == 20
    assert row["glm_floor"] == pytest.approx(0.05)
    assert row["difference"] == pytest.approx(20 / 1600 - (0.05 + 4 / 1600), rel=0.05)


def test_the_difference_is_paired_and_must_exceed_its_monte_carlo_error():
    df = _results()
    # a difference the size of its noise at every n: not a win
    mlp = (df["c_name"] == "mlp").to_numpy()
    glm = (df["c_name"] == "glm-as-nn").to_numpy()
    rng = np.random.default_rng(7)
    base = rng.uniform(0.05, 0.1, mlp.sum())
    df.loc[glm, "excess_deviance"] = base
    df.loc[mlp, "excess_deviance"] = base + rng.normal(0.0, 0.01, mlp.sum())
    table = crossover(df)
    for _, row in table.iterrows():
        d, se = row["difference"], row["difference_se"]
        assert math.isnan(row["crossover_n"]) == (d + Z * se >= 0)
    # the paired SE uses the replicate-by-replicate differences: large noise of the data
    # set that moves both fits together does not hide a small, consistent gain (unpaired,
    # the gain of 0.002 is far below the spread of either fit, about 0.03)
    df = _results()
    rng = np.random.default_rng(3)
    shared = rng.uniform(0.02, 0.12, 20)  # per replicate: the data set's difficulty
    for n in NS:
        for name in ("mlp", "glm-as-nn"):
            sel = (df["s_n"] == n) & (df["c_name"] == name) & (df["s_family"] == "poisson")
            sel = sel.to_numpy()
            value = shared[df.loc[sel, "replicate"].to_numpy()]
            if name == "mlp":
                value = value - 0.002 * (1.0 + 0.1 * rng.normal(size=value.size))
            df.loc[sel, "excess_deviance"] = value
    table = crossover(df).set_index("panel")
    assert table.loc["poisson", "crossover_n"] == 100.0
    assert table.loc["poisson", "difference_se"] < 1e-4


def test_a_network_that_never_wins_is_said_so():
    table = crossover(_results(floor=0.0, net_slope=20.0, glm_slope=4.0))
    assert table["crossover_n"].isna().all()
    assert table["verdict"].iloc[0] == "mlp: not within the n studied (100 to 1600)"


def test_the_glm_is_the_irls_configuration_else_the_matched_glm_shaped_one():
    df = _results()
    ids = df.groupby("c_name")["config_id"].first()
    assert glm_config(df) == ids["glm-as-nn"]  # lbfgs, no hidden layers, matched
    irls = (df["c_name"] == "early-stop").to_numpy()
    df.loc[irls, "c_optimizer"] = "irls"
    assert glm_config(df) == ids["early-stop"]
    assert glm_config(df, reference="glm-as-nn") == ids["glm-as-nn"]
    with pytest.raises(ValidationError, match=r"no configuration 'nope'.*glm-as-nn"):
        glm_config(df, reference="nope")


def test_nothing_to_compare_gives_an_empty_table():
    df = _results()
    assert crossover(df[df["s_n"] == 100]).empty  # a single n
    assert crossover(df[df["c_name"] != "mlp"]).empty  # no network with hidden layers


def test_the_table_command_and_the_report_show_the_crossover(tmp_path, capsys):
    out = write_results(_results(), tmp_path / "res")
    code = cli.main(["table", str(out), "--metric", "excess_deviance", "--view", "crossover"])
    text = capsys.readouterr().out
    assert code == 0
    assert "the smallest n at which each network is below the GLM (glm-as-nn)" in text
    assert "| poisson | mlp | 400 |" in text
    code = cli.main(["table", str(out), "-m", "excess_deviance", "--view", "crossover",
                     "-f", "csv"])  # fmt: skip
    assert code == 0 and capsys.readouterr().out.startswith("panel,config,crossover_n,")
    code = cli.main(["table", str(out), "-m", "excess_deviance", "--view", "crossover",
                     "-f", "latex"])  # fmt: skip
    assert code == 2 and "md or csv" in capsys.readouterr().err
    # a sweep without networks: exit 2 naming what is needed
    bare = _results()
    bare = write_results(bare[bare["c_name"] != "mlp"], tmp_path / "bare")
    code = cli.main(["table", str(bare), "-m", "excess_deviance", "--view", "crossover"])
    assert code == 2 and "no crossover to show" in capsys.readouterr().err

    from simbench.report import write_report

    report = write_report(out)
    md = report.path.read_text()
    assert "## Crossover: networks against the GLM" in md
    assert "- poisson: mlp beats the GLM from n = 400." in md
