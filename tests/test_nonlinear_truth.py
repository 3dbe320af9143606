"""Truths beyond the GLM: the non-linear predictor and its scaling, ``nonlinearity``,
per-column designs, and the truth's projection onto the GLM (the pseudo-true beta and the
misspecification floor) as the sweep rows record them."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import simbench
from simbench import metrics as M
from simbench.columns import parse_columns
from simbench.data import (
    OPTIONAL_SCENARIO_KEYS,
    SCENARIO_KEYS,
    Scenario,
    _draw_design,
    population_sample,
    simulate,
)
from simbench.errors import ValidationError
from simbench.truth import true_predictor

ARRAYS = ("X", "y", "weights", "offset", "eta", "mu", "beta")
ARRAYS += tuple(f"{a}_test" for a in ARRAYS[:-1])
EXPR = "x1*x2 + x3**2 + sin(2*x4) - abs(x5)"
TOY = Path(__file__).resolve().parents[1] / "scenarios" / "recursive_glm_toy.toml"


def fresh_sample(s: Scenario, size: int = 1 << 17, seed: int = 99) -> np.ndarray:
    """A design sample independent of the population sample the truth was built on."""
    return _draw_design(s, np.random.default_rng(seed), size)


def measured_share(X: np.ndarray, eta: np.ndarray, batches: int = 16) -> tuple[float, float]:
    """Share of Var(eta) outside the least-squares fit on (1, X), and its Monte Carlo SE
    from ``batches`` independent batches."""

    def share(X, eta):
        A = np.column_stack([np.ones(len(X)), X])
        coef, *_ = np.linalg.lstsq(A, eta, rcond=None)
        r = eta - A @ coef
        return r.var() / eta.var()

    pieces = zip(np.array_split(X, batches), np.array_split(eta, batches), strict=True)
    parts = [share(x, e) for x, e in pieces]
    return share(X, eta), float(np.std(parts, ddof=1) / math.sqrt(batches))


# ---- the canonical form: old scenarios unchanged, new keys only when used ----------------------


def test_optional_keys_leave_existing_scenarios_alone():
    s = Scenario()
    assert list(s.to_dict()) == SCENARIO_KEYS
    assert s.id == "90b02eff412b"
    assert Scenario(predictor="linear").id == s.id == Scenario(predictor="Linear").id
    nl = Scenario(predictor="x1*x2", nonlinearity=0.3)
    d = nl.to_dict()
    assert d["predictor"] == "x1 * x2" and d["nonlinearity"] == 0.3
    assert "predictor_scale" not in d and "columns" not in d
    assert Scenario.from_dict(d) == nl
    # spelling does not matter, content does
    assert Scenario(predictor="x1 *x2", nonlinearity=0.3).id == nl.id
    assert Scenario(predictor="x2*x1", nonlinearity=0.3).id != nl.id
    assert Scenario(predictor="x1*x2", nonlinearity=0.0).id != s.id  # a row says lambda = 0
    cols = Scenario(columns=["uniform(-2,2)*2", "bernoulli"])
    assert cols.to_dict()["columns"] == ["uniform(-2, 2) * 2", "bernoulli(0.5)"]
    assert cols.design == "columns" and cols.p == 3
    assert Scenario.from_dict(cols.to_dict()) == cols
    assert set(OPTIONAL_SCENARIO_KEYS) == {
        "predictor",
        "nonlinearity",
        "predictor_scale",
        "columns",
    }
    lit = Scenario(predictor="1 + x1*x2", predictor_scale="literal", signal=3.0, mean=5.0)
    assert lit.to_dict()["predictor_scale"] == "literal"
    # the literal predictor uses neither signal nor mean: reset, one scenario
    assert lit.id == Scenario(predictor="1 + x1*x2", predictor_scale="literal").id


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"nonlinearity": 0.3}, "needs a predictor expression"),
        ({"predictor": "x1*x2", "nonlinearity": 1.5}, "0 <= nonlinearity <= 1"),
        ({"predictor": "x1*x2", "nonlinearity": "high"}, "0 <= nonlinearity <= 1"),
        ({"predictor": "x1*x2", "predictor_scale": "raw"}, "unknown predictor_scale 'raw'"),
        (
            {"predictor": "x1*x2", "nonlinearity": 0.2, "predictor_scale": "literal"},
            "cannot be rescaled",
        ),
        ({"predictor_scale": "literal"}, "give the coefficients as beta"),
        ({"predictor": "x1*x2", "beta": [0, 1, 1, 1, 1, 1]}, "'beta' and 'predictor'"),
        ({"predictor": "x1*x6"}, "x6 is beyond p = 5"),
        ({"predictor": "x1 + 2*x3", "nonlinearity": 0.5}, "linear function of x"),
        ({"predictor": "log(x1)"}, "must be finite on the whole design"),
        ({"predictor": "x1 / (x2 - x2)"}, "must be finite"),
        ({"predictor": "3 + 0*x1", "signal": 1.0}, "constant on the design"),
        (
            {"predictor": "x1*x2", "family": "bernoulli", "link": "identity", "signal": 1.0},
            "invalid means: the true predictor must lie in",
        ),
        ({"columns": ["binary * 2"]}, "'binary' is ambiguous"),
        ({"columns": ["uniform(2, 1)"]}, "needs a < b"),
        ({"columns": ["gaussian"], "p": 3}, "'p' and 'columns' disagree"),
        ({"columns": ["gaussian"], "design": "uniform"}, "'design' and 'columns'"),
        ({"design": "columns"}, "needs the key 'columns'"),
        ({"columns": "uniform"}, "must be a list"),
    ],
)
def test_refused_scenarios(keys, message):
    with pytest.raises(ValidationError, match=message):
        Scenario.from_dict(keys)


def test_unknown_key_lists_the_new_keys():
    with pytest.raises(ValidationError, match="did you mean 'nonlinearity'") as err:
        Scenario.from_dict({"nonlinarity": 0.3})
    assert all(k in str(err.value) for k in OPTIONAL_SCENARIO_KEYS)


# ---- lambda ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "design", "lam"),
    [
        ("poisson", "gaussian", 0.1),
        ("bernoulli", "gaussian", 0.3),
        ("gamma", "uniform", 0.6),
        ("poisson", "mixed", 1.0),
        ("bernoulli", "columns", 0.45),
    ],
)
def test_lambda_is_the_non_linear_share_of_the_true_predictor(family, design, lam):
    kw = {"columns": ["uniform(-2, 2) * 3", "bernoulli(0.3) * 2"]} if design == "columns" else {}
    if design != "columns":
        kw["design"] = design
    link = {"gamma": "log"}.get(family, "canonical")
    s = Scenario.from_dict(
        {"family": family, "link": link, "predictor": EXPR, "nonlinearity": lam, "signal": 0.8} | kw
    )
    tp = true_predictor(s)
    assert tp.nonlinear_share == lam
    X = fresh_sample(s)
    eta = tp.eta(X)
    share, se = measured_share(X, eta)
    # sampling error of this sample and of the population sample the truth was built on
    tol = 4.0 * se * math.sqrt(1.0 + X.shape[0] / population_sample(s)[0].shape[0]) + 1e-12
    assert abs(share - lam) < tol, (share, lam, tol)
    assert abs(eta.std() / 0.8 - 1.0) < 0.02  # signal is the standard deviation of eta*
    # the same truth generates the data, and a sweep row reports lambda
    data = simulate(s.to_dict() | {"n": 50, "n_test": 4000}, 3)
    np.testing.assert_array_equal(data.eta_test, tp.eta(data.X_test))
    assert M.truth_projection(s).nonlinear_share == lam


@pytest.mark.parametrize(
    "keys",
    [
        {"family": "poisson"},
        {"family": "bernoulli", "signal": 1.5},
        {"family": "gamma", "link": "log", "design": "uniform", "dispersion": 0.5},
        {"family": "gamma", "link": "inverse", "design": "uniform", "mean": 0.5, "signal": 0.3},
        {"family": "poisson", "exposure": True, "design": "correlated", "rho": 0.3},
        {"family": "binomial", "trials": 4, "design": "binary"},
        {"family": "bernoulli", "separable": True},
        {"family": "poisson", "columns": ["uniform(-1, 2) * 3", "bernoulli(0.2) * 2"]},
        {"family": "bernoulli", "columns": ["uniform(-2, 2) * 3", "bernoulli(0.5) * 2"]},
    ],
)
def test_lambda_zero_is_the_linear_scenario_bit_for_bit(keys):
    linear = Scenario.from_dict({"n": 300, "n_test": 700} | keys)
    zero = Scenario.from_dict(linear.to_dict() | {"predictor": EXPR, "nonlinearity": 0.0})
    a, b = simulate(linear, 2026), simulate(zero, 2026)
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert M.truth_projection(zero).misspec_floor == 0.0
    assert M.truth_projection(zero).beta.tobytes() == a.beta.tobytes()


def test_the_expression_as_written_and_literally():
    s = Scenario(family="poisson", predictor="x1*x2 + 0.5*x3**2", signal=0.4, mean=3.0)
    tp = true_predictor(s)
    X = fresh_sample(s)
    eta = tp.eta(X)
    share, se = measured_share(X, eta)
    assert abs(share - tp.nonlinear_share) < 6 * se
    assert abs(eta.std() / 0.4 - 1.0) < 0.02
    # the expression's own shape: eta* - intercept is proportional to it
    f = X[:, 0] * X[:, 1] + 0.5 * X[:, 2] ** 2
    np.testing.assert_allclose(eta - tp.intercept, tp.scale * f, rtol=1e-12, atol=1e-12)
    assert tp.slopes is None
    # the mean response is the target mean
    data = simulate(s.to_dict() | {"n": 10, "n_test": 200_000}, 5)
    assert abs(data.mu_test.mean() / 3.0 - 1.0) < 0.01
    # literal: eta* is the expression, bit for bit, with its own constants
    lit = Scenario(
        family="poisson", predictor="0.3 + 0.2*x1*x2 - 0.1*x3**2", predictor_scale="literal"
    )
    d = simulate(lit.to_dict() | {"n": 500, "n_test": 500}, 8)
    want = 0.3 + 0.2 * d.X[:, 0] * d.X[:, 1] - 0.1 * d.X[:, 2] ** 2
    np.testing.assert_array_equal(d.eta, want)
    # the linear part of eta* is its least-squares projection: the pseudo-truth of eta
    A = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(A, true_predictor(lit).eta(X), rcond=None)
    np.testing.assert_allclose(true_predictor(lit).beta, coef, atol=0.01)


def test_separable_classes_of_a_non_linear_truth():
    s = Scenario(family="bernoulli", predictor="x1*x2 + x3", nonlinearity=0.7, separable=True)
    d = simulate(s.to_dict() | {"n": 2000, "n_test": 2000}, 4)
    assert np.all(d.y == (d.eta > 0))
    assert np.abs(d.eta).min() >= 0.1 * true_predictor(s).sd


# ---- per-column designs -----------------------------------------------------------------------


def test_columns_design_draws_and_linear_truth():
    cols = ["uniform(-2, 2) * 2", "bernoulli(0.3)", "gaussian(1, 2)", "rademacher"]
    s = Scenario(family="poisson", columns=cols, mean=2.0, signal=0.5, n=200_000, n_test=10)
    d = simulate(s, 1)
    X = d.X
    assert X.shape == (200_000, 5)
    assert X[:, :2].min() >= -2.0 and X[:, :2].max() <= 2.0
    assert set(np.unique(X[:, 2])) == {0.0, 1.0} and set(np.unique(X[:, 4])) == {-1.0, 1.0}
    for j, col in enumerate(parse_columns(cols)):
        se = math.sqrt(col.variance() / X.shape[0])
        assert abs(X[:, j].mean() - col.mean()) < 5 * se
        assert abs(X[:, j].var() / col.variance() - 1.0) < 0.02
    # signal is the population sd of x'beta, mean the population mean response (exact mgf)
    lin = X @ d.beta[1:]
    assert abs(lin.std() / 0.5 - 1.0) < 0.01
    assert abs(d.mu.mean() / 2.0 - 1.0) < 0.01
    # intercepts solved numerically: identity-link gamma on a bounded design, centred logit
    g = Scenario(
        family="gamma", link="inverse", columns=[*cols[:2], "bernoulli(0.5)"], mean=0.5, signal=0.3
    )
    dg = simulate(g.to_dict() | {"n": 10, "n_test": 200_000}, 2)
    assert abs(dg.mu_test.mean() / 0.5 - 1.0) < 0.01
    b = Scenario(family="bernoulli", columns=["bernoulli(0.8) * 4"], signal=1.0)
    db = simulate(b.to_dict() | {"n": 10, "n_test": 200_000}, 3)
    assert abs(db.eta_test.mean()) < 0.01  # centred by the intercept
    assert b.beta is None and abs(db.beta[0] + 0.8 * db.beta[1:].sum()) < 1e-12


# ---- the projection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        {"family": "poisson"},
        {"family": "bernoulli", "link": "probit"},
        {"family": "gamma", "link": "log", "dispersion": 0.5},
        {"family": "binomial", "trials": 3, "design": "uniform"},
        {"family": "poisson", "exposure": True, "columns": ["uniform(-1, 1) * 2", "bernoulli"]},
    ],
)
def test_projection_of_a_glm_truth_is_the_truth_with_no_floor(keys):
    s = Scenario.from_dict({"p": 3, "signal": 0.7} | keys)
    X, offset = population_sample(s)
    beta = true_predictor(s).beta
    family, link = s.get_family(), s.get_link()
    mu = link.h(beta[0] + X @ beta[1:] + offset)
    weights = np.full(len(mu), float(s.trials)) if s.family == "binomial" else None
    b, floor = M.kl_projection(X, mu, family, link, weights, offset, phi=s.dispersion)
    np.testing.assert_allclose(b, beta, rtol=1e-9, atol=1e-10)
    assert 0.0 <= floor < 1e-14
    proj = M.truth_projection(s)  # exact, without a fit
    assert proj.beta is beta and proj.misspec_floor == 0.0 and proj.sample_size == 0


STATSMODELS_CASES = [
    ({"family": "poisson", "predictor": "x1*x2 + x3**2", "nonlinearity": 0.5}, "Poisson"),
    (
        {
            "family": "bernoulli",
            "columns": ["uniform(-2, 2) * 2", "bernoulli(0.5) * 2"],
            "predictor": "x1**2 - x2*x3 + cos(2*x1) + sin(x2)*x4",
            "signal": 2.0,
        },
        "Binomial",
    ),
    (
        {"family": "gamma", "link": "log", "predictor": "max(x1, 0) + x2*x3", "dispersion": 0.5},
        "Gamma",
    ),
]


@pytest.mark.parametrize(("keys", "sm_family"), STATSMODELS_CASES)
def test_projection_of_a_misspecified_truth_matches_statsmodels(keys, sm_family):
    sm = pytest.importorskip("statsmodels.api")
    s = Scenario.from_dict({"p": 4} | keys)
    proj = M.truth_projection(s)
    assert proj is M.truth_projection(s.to_dict() | {"n": 77})  # cached per scenario
    family, link = s.get_family(), s.get_link()
    tp = true_predictor(s)
    sm_link = {"log": sm.families.links.Log(), "logit": sm.families.links.Logit()}[link.name]
    fam = getattr(sm.families, sm_family)(link=sm_link)

    def fit(X):
        mu = link.h(tp.eta(X))
        # Newton's method: quadratic convergence for the non-canonical Gamma-log as well
        res = sm.GLM(mu, sm.add_constant(X), family=fam).fit(method="newton", tol=1e-12)
        return np.asarray(res.params), mu, link.h(sm.add_constant(X) @ res.params)

    # the same population sample: the same fit, to the solver's precision
    X, _ = population_sample(s)
    params, mu, mu_sm = fit(X)
    np.testing.assert_allclose(proj.beta, params, rtol=1e-7, atol=1e-8)
    floor = float(np.mean(family.unit_deviance(mu, mu_sm))) / s.dispersion
    assert proj.misspec_floor == pytest.approx(floor, rel=1e-6)
    assert proj.misspec_floor > 1e-3  # a misspecified truth leaves a floor
    # a very large independent sample of the truth's means: the same pseudo-true beta
    big = fresh_sample(s, size=1_000_000, seed=123)
    params_big, _, _ = fit(big)
    np.testing.assert_allclose(proj.beta, params_big, atol=0.01)
    # what the rows compare coefficients with
    data = simulate(s.to_dict() | {"n": 100, "n_test": 100}, 1)
    assert M.coefficient_target(data) is proj.beta
    assert not np.allclose(data.beta, proj.beta, atol=1e-3)  # not the linear part


def test_rows_of_a_misspecified_truth():
    from simbench.sweep.cells import CellTask, GroupTask
    from simbench.sweep.worker import run_group

    s = Scenario(
        family="bernoulli",
        predictor="x1*x2 + x3**2",
        nonlinearity=0.5,
        signal=1.5,
        n=20_000,
        n_test=50_000,
    )
    cfg = simbench.NetworkConfig.from_dict({"hidden": [], "optimizer": "irls"})
    task = GroupTask(
        scenario=s.to_dict(),
        scenario_id=s.id,
        replicate=0,
        data_seed=11,
        cells=(CellTask(cell_id="glm", config=cfg.to_dict(), config_id=cfg.id, init_seed=1),),
    )
    (row,) = list(run_group(task))
    proj = M.truth_projection(s)
    assert row["status"] == "ok"
    assert row["beta_true"] == proj.beta.tolist()
    assert row["nonlinear_share"] == 0.5 and row["misspec_floor"] == proj.misspec_floor > 0.05
    # the GLM's excess deviance levels off at the floor, not at zero: here the floor plus
    # (p + 1)/n = 3e-4 on average, give or take the test sample's noise
    assert abs(row["excess_deviance"] / proj.misspec_floor - 1.0) < 0.05
    # and its coefficients go to the pseudo-true beta (its sampling error is about 0.03)
    assert row["coef_err_truth"] < 0.1
    # a GLM truth: the same columns, zero
    lin = Scenario(family="poisson", n=500, n_test=500)
    task = GroupTask(
        scenario=lin.to_dict(), scenario_id=lin.id, replicate=0, data_seed=11, cells=task.cells
    )
    (row,) = list(run_group(task))
    assert row["misspec_floor"] == 0.0 and row["nonlinear_share"] == 0.0


# ---- the worked example -----------------------------------------------------------------------


def test_recursive_glm_toy_deep_networks_beat_the_main_effects_glm(tmp_path):
    sweep = tomllib.loads(TOY.read_text())
    sweep["sweep"]["replicates"] = 1
    (block,) = sweep["scenarios"]
    block.update(n=4000, n_test=10_000)
    assert set(block["columns"]) == {"uniform(-2, 2) * 5", "bernoulli(0.5) * 5"}
    df = simbench.run(sweep, out=tmp_path / "toy")
    assert (df["status"] == "ok").all() and len(df) == len(sweep["configs"])
    auc = df.set_index("c_name")["auc"]
    oracle = float(df["auc_oracle"].iloc[0])
    glm = auc.pop("glm-main-effects")
    assert glm < 0.7 and auc.min() > glm + 0.1  # every deep network well above the GLM
    assert auc.max() < oracle
    assert float(df["nonlinear_share"].iloc[0]) > 0.8
