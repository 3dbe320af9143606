"""``refit_output``: the output layer (or its bias) refitted as a GLM after training.

For a canonical link the refitted network satisfies the GLM's balance property
``sum w mu_hat = sum w y`` (the intercept's score equation), whatever was trained before;
without hidden layers a refit of the whole output layer is the maximum-likelihood fit itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbench import fit_glm, simulate, train
from simbench.errors import ValidationError
from simbench.fit.config import NetworkConfig
from simbench.fit.network import _independent_columns, _last_hidden

MLP = {"hidden": [8], "activation": "tanh", "optimizer": "adam", "lr": 0.01, "epochs": 60}


def _data(family="poisson", link=None, design="gaussian", n=600, seed=3, **extra):
    scenario = dict(family=family, n=n, n_test=50, p=3, design=design, signal=0.5, **extra)
    if link is not None:
        scenario["link"] = link
    return simulate(scenario, seed)


def _balance(fit, data) -> float:
    mu = fit.predict(data.X, offset=data.offset)
    return float(np.sum(data.weights * mu) / np.sum(data.weights * data.y) - 1.0)


# ---- the configuration key ------------------------------------------------------------------


@pytest.mark.parametrize("value, canonical", [(False, False), ("glm", "glm"), ("GLM", "glm"),
                                              ("intercept", "intercept")])  # fmt: skip
def test_refit_output_values_are_canonicalised(value, canonical):
    assert NetworkConfig.from_dict({"refit_output": value}).refit_output == canonical


@pytest.mark.parametrize("value", [True, 1, "yes", "bias", None, ["glm"]])
def test_other_refit_values_are_refused_naming_what_is_accepted(value):
    with pytest.raises(ValidationError, match=r"key 'refit_output' must be false, 'glm'"):
        NetworkConfig.from_dict({"refit_output": value})


def test_a_margin_loss_cannot_be_refitted_as_a_glm():
    with pytest.raises(ValidationError, match=r"margin loss 'hinge'.*score, not a mean"):
        NetworkConfig.from_dict({"loss": "hinge", "output": "identity", "refit_output": "glm"})


def test_the_ids_of_configurations_without_a_refit_do_not_change():
    """The key is left out of to_dict at its default: stored results keep their cell ids
    (these ids are those of the same configurations before the key existed)."""
    plain = NetworkConfig.from_dict({"hidden": [4]})
    assert "refit_output" not in plain.to_dict()
    assert plain.id == "3bf13ff42125"
    assert NetworkConfig.from_dict({"hidden": [], "optimizer": "irls"}).id == "281c559e0acf"
    refit = NetworkConfig.from_dict({"hidden": [4], "refit_output": "glm"})
    assert refit.to_dict()["refit_output"] == "glm"
    assert refit.id != plain.id
    assert NetworkConfig.from_dict(refit.to_dict()) == refit


def test_the_refit_needs_the_family_and_a_link_the_family_accepts():
    data = _data()
    with pytest.raises(ValidationError, match="give family"):
        train(data.X, data.y, {**MLP, "output": "exp", "loss": "poisson",
                               "refit_output": "glm"})  # fmt: skip
    # a sigmoid output is the logit link, which the Poisson family does not accept
    cfg = NetworkConfig.from_dict({**MLP, "output": "sigmoid", "loss": "squared_error",
                                   "refit_output": "glm"})  # fmt: skip
    with pytest.raises(ValidationError, match="refits the output as a poisson GLM"):
        cfg.resolve("poisson")


# ---- what the refit does ----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["poisson", "bernoulli"])
@pytest.mark.parametrize("refit", ["glm", "intercept"])
def test_a_refitted_network_balances_for_a_canonical_link(family, refit):
    data = _data(family)
    for cfg in (MLP, {"hidden": [], "optimizer": "adam", "lr": 0.01, "epochs": 30}):
        before = train(data.X, data.y, cfg, family=family, seed=1)
        after = train(data.X, data.y, {**cfg, "refit_output": refit}, family=family, seed=1)
        assert abs(_balance(before, data)) > 1e-6  # short training leaves it unbalanced
        assert abs(_balance(after, data)) < 1e-12
        assert "refitted by IRLS" in after.message
        # training itself is unchanged: same history, and only the output block moved
        assert after.history == before.history
        n_out = 1 + (cfg["hidden"][-1] if cfg["hidden"] else data.X.shape[1])
        moved = np.flatnonzero(after.params != before.params)
        assert moved.min() >= before.params.size - n_out
        if refit == "intercept":
            assert moved.tolist() in ([before.params.size - n_out], [])


def test_without_hidden_layers_a_glm_refit_is_the_mle():
    data = _data("bernoulli", n=800)
    cfg = {"hidden": [], "optimizer": "gd", "lr": 0.1, "epochs": 5, "refit_output": "glm"}
    fit = train(data.X, data.y, cfg, family="bernoulli", seed=0)
    mle = fit_glm(data.X, data.y, family="bernoulli")
    np.testing.assert_allclose(fit.coef, mle.coef, rtol=0, atol=1e-12)
    # the loss and gradient are those of the refitted parameters
    assert fit.grad_norm < 1e-8


def test_the_refit_uses_the_weights_and_the_offset():
    data = _data("poisson", exposure=True)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, data.n)
    fit = train(data.X, data.y, {**MLP, "refit_output": "glm"}, family="poisson", seed=2,
                weights=w, offset=data.offset)  # fmt: skip
    mu = fit.predict(data.X, offset=data.offset)
    assert abs(np.sum(w * mu) / np.sum(w * data.y) - 1.0) < 1e-12
    # the GLM of the hidden outputs with this offset and these weights is what was fitted
    H = _last_hidden(fit.sizes, fit.activations, fit.params, data.X)
    glm = fit_glm(H, data.y, family="poisson", weights=w, offset=data.offset)
    np.testing.assert_allclose(fit.params[-9:], glm.coef, rtol=1e-9, atol=1e-12)


def test_last_hidden_gives_the_forward_pass_outputs_exactly():
    data = _data()
    fit = train(data.X, data.y, {**MLP, "hidden": [5, 4], "activation": ["relu", "tanh"]},
                family="poisson", seed=4)  # fmt: skip
    H = _last_hidden(fit.sizes, fit.activations, fit.params, data.X)
    # the network's linear predictor is b + H w, computed here in NumPy
    eta = fit.params[-5] + H @ fit.params[-4:]
    np.testing.assert_allclose(fit.predict_eta(data.X), eta, rtol=1e-13, atol=1e-13)
    # the reference forward pass in NumPy
    W1 = fit.params[5:20].reshape(5, 3)
    A1 = np.maximum(0.0, data.X @ W1.T + fit.params[:5])
    W2 = fit.params[24:44].reshape(4, 5)
    np.testing.assert_allclose(H, np.tanh(A1 @ W2.T + fit.params[20:24]), rtol=1e-12,
                               atol=1e-14)  # fmt: skip


def test_aliased_hidden_units_get_weight_zero_and_the_fit_still_balances():
    """On a design of four +-1 factors there are 16 distinct rows: 16 hidden units and a
    constant cannot all be independent, and fit_glm alone would refuse the design."""
    data = _data("poisson", design="binary", n=2000)
    cfg = {**MLP, "hidden": [16], "refit_output": "glm"}
    fit = train(data.X, data.y, cfg, family="poisson", seed=1)
    assert "inputs aliased, their weights 0" in fit.message
    assert fit.status != "diverged"
    assert abs(_balance(fit, data)) < 1e-12
    H = _last_hidden(fit.sizes, fit.activations, fit.params, data.X)
    keep = _independent_columns(H)
    assert 0 < keep.size < 16
    assert np.linalg.matrix_rank(np.column_stack([np.ones(data.n), H[:, keep]])) == keep.size + 1
    dropped = np.setdiff1d(np.arange(16), keep)
    assert np.all(fit.params[-16:][dropped] == 0.0)


def test_independent_columns_finds_duplicates_constants_and_combinations():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 50))
    H = np.column_stack([a, b, a, np.full(50, 3.0), a - 2 * b, rng.normal(size=50)])
    assert _independent_columns(H).tolist() in ([0, 1, 5], [1, 2, 5], [0, 4, 5], [1, 4, 5],
                                                [2, 4, 5], [0, 1, 5])  # fmt: skip
    assert _independent_columns(np.empty((5, 0))).size == 0


def test_a_refit_that_fails_keeps_the_trained_layer_and_says_so():
    # all responses zero: the Poisson MLE of the bias is -inf (no finite estimate)
    data = _data("poisson")
    y = np.zeros(data.n)
    cfg = {"hidden": [], "optimizer": "adam", "lr": 0.01, "epochs": 5, "refit_output": "intercept"}
    plain = train(data.X, y, {**cfg, "refit_output": False}, family="poisson", seed=0)
    fit = train(data.X, y, cfg, family="poisson", seed=0)
    assert "refit of the output bias failed" in fit.message
    assert "the trained one is kept" in fit.message
    assert not fit.converged and fit.status == "not_converged"
    np.testing.assert_array_equal(fit.params, plain.params)
    assert math.isfinite(fit.loss_value)


def test_a_sweep_runs_the_refit_and_restores_balance(tmp_path):
    import simbench

    sweep = tmp_path / "refit.toml"
    sweep.write_text(
        '[sweep]\nname = "refit"\nreplicates = 2\nseed = 5\n\n'
        '[[scenarios]]\nfamily = "poisson"\nn = 400\nn_test = 400\np = 3\n\n'
        '[[configs]]\nname = "mlp"\nhidden = [6]\nactivation = "tanh"\nepochs = 40\n'
        "lr = 0.01\n\n"
        '[[configs]]\nname = "mlp-refit"\nhidden = [6]\nactivation = "tanh"\nepochs = 40\n'
        'lr = 0.01\nrefit_output = "glm"\n'
    )
    df = simbench.run(sweep, out=tmp_path / "out", jobs=1)
    by = df.set_index(["c_name", "replicate"])["balance"]
    for r in (0, 1):
        assert abs(by[("mlp", r)]) > 1e-6
        assert abs(by[("mlp-refit", r)]) < 1e-12
