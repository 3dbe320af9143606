"""Training: the GLM-shaped network reaches the MLE, deep linear networks too, and every
configuration trains or is refused up front; determinism, divergence, early stopping.

Equivalence is judged in standard-error units: z = sqrt(d' I_n d), d = beta_hat - beta_MLE,
I_n the Fisher information of fit_glm (fitted with a tight tolerance, so that the reference
itself is converged far below the bounds tested).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cli_support import printed_from_an_empty_cache
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import network as ref_net

from simbench import families
from simbench.errors import ValidationError
from simbench.fit.config import NetworkConfig
from simbench.fit.glm import fit_glm
from simbench.fit.network import NetworkFit, train


def simulate(family, link, seed, n=500, p=3):
    """GLM data drawn with NumPy: (X, y, weights, Link)."""
    rng = np.random.default_rng(seed)
    fam = families.get(family)
    lk = fam.default_link if link is None else fam.check_link(link)
    X = rng.normal(0.0, 1.0, (n, p))
    slopes = np.array([0.3, -0.2, 0.1, 0.25, -0.15])[:p]
    if lk.name in ("inverse", "inverse_squared"):
        eta = 1.0 + 0.1 * (X @ slopes)
    elif lk.name == "log":
        eta = 0.5 + X @ slopes
    elif lk.name == "identity":
        eta = 1.0 + X @ slopes
    else:
        eta = 0.2 + X @ slopes
    mu = lk.h(eta)
    w = None
    if fam.name == "gaussian":
        y = rng.normal(mu, 1.0)
    elif fam.name == "bernoulli":
        y = (rng.random(n) < mu).astype(float)
    elif fam.name == "binomial":
        trials = rng.integers(1, 6, n)
        y = rng.binomial(trials, mu) / trials
        w = trials.astype(float)
    elif fam.name == "poisson":
        y = rng.poisson(mu).astype(float)
    elif fam.name == "gamma":
        y = rng.gamma(2.0, mu / 2.0)
    elif fam.name == "inverse_gaussian":
        y = rng.wald(mu, 2.0)
    elif fam.name == "negative_binomial":
        alpha = fam.param
        y = rng.poisson(rng.gamma(1.0 / alpha, alpha * mu)).astype(float)
    else:  # tweedie: compound Poisson-gamma with phi = 1
        power = fam.param
        counts = rng.poisson(mu ** (2 - power) / (2 - power))
        shape = (2 - power) / (power - 1)
        scale = (power - 1) * mu ** (power - 1)
        y = np.where(counts > 0, rng.gamma(np.maximum(counts, 1) * shape, scale), 0.0)
    return X, y, w, lk


def reference_fit(X, y, family, link, weights=None, offset=None):
    return fit_glm(
        X, y, family=family, link=link, weights=weights, offset=offset, tol=1e-15, max_iter=1000
    )


def z_distance(beta, glm) -> float:
    d = beta - glm.coef
    return math.sqrt(max(0.0, float(d @ glm.fisher_information @ d)))


GLM_CASES = [
    ("gaussian", None),
    ("bernoulli", None),
    ("binomial", None),
    ("poisson", None),
    ("gamma", None),
    ("inverse_gaussian", None),
    ("negative_binomial", None),
    ("tweedie", None),
    ("gamma", "log"),
    ("bernoulli", "probit"),
    ("bernoulli", "cloglog"),
]


@pytest.mark.parametrize(("family", "link"), GLM_CASES)
@pytest.mark.parametrize(
    "config",
    [
        {"optimizer": "newton", "tol": 1e-10},
        {"optimizer": "lbfgs", "tol": 1e-10, "ftol": 0.0, "epochs": 500},
    ],
    ids=["newton", "lbfgs"],
)
def test_matched_network_without_hidden_layers_is_the_glm(family, link, config):
    X, y, w, lk = simulate(family, link, seed=11)
    glm = reference_fit(X, y, family, lk, w)
    assert glm.status == "ok"
    fit = train(X, y, config, family=family, link=lk, seed=1, weights=w)
    assert fit.status in ("ok", "not_converged")  # L-BFGS may stop at the rounding floor
    assert z_distance(fit.coef, glm) < 1e-6
    assert np.array_equal(fit.coef, fit.params)


@pytest.mark.parametrize(
    ("family", "link"),
    [("poisson", None), ("bernoulli", None), ("gaussian", None), ("gamma", "log")],
)
@pytest.mark.parametrize(
    "config",
    [
        {"optimizer": "gd", "lr": 0.5},
        {"optimizer": "adam", "lr": 0.02},
        {"optimizer": "nesterov", "lr": 0.1},
    ],
    ids=["gd", "adam", "nesterov"],
)
def test_first_order_methods_reach_the_glm_given_enough_epochs(family, link, config):
    X, y, w, lk = simulate(family, link, seed=12)
    glm = reference_fit(X, y, family, lk, w)
    cfg = {**config, "epochs": 5000, "tol": 1e-9, "ftol": 0.0}
    fit = train(X, y, cfg, family=family, link=lk, seed=2, weights=w)
    assert fit.status == "ok" and fit.converged
    assert z_distance(fit.coef, glm) < 1e-3


@pytest.mark.parametrize(
    ("family", "hidden"), [("poisson", [3, 2]), ("bernoulli", [4]), ("gaussian", [2, 3, 2])]
)
def test_deep_linear_network_ends_at_the_mle_end_to_end(family, hidden):
    X, y, w, lk = simulate(family, None, seed=13)
    glm = reference_fit(X, y, family, lk, w)
    cfg = {
        "hidden": hidden,
        "activation": "identity",
        "optimizer": "lbfgs",
        "epochs": 3000,
        "tol": 1e-10,
        "ftol": 0.0,
    }
    fit = train(X, y, cfg, family=family, seed=3, weights=w)
    np.testing.assert_allclose(
        fit.coef, ref_net.end_to_end(fit.params, list(fit.sizes)), rtol=1e-10, atol=1e-12
    )
    assert z_distance(fit.coef, glm) < 1e-4


def test_irls_optimizer_is_fit_glm():
    X, y, w, _lk = simulate("binomial", None, seed=14)
    fit = train(X, y, {"optimizer": "irls"}, family="binomial", weights=w)
    glm = fit_glm(X, y, family="binomial", weights=w)
    assert np.array_equal(fit.coef, glm.coef)
    assert fit.status == "ok" and fit.converged and fit.grad_norm < 1e-8


# ---- determinism ------------------------------------------------------------------------------

MLP = {
    "hidden": [6, 3],
    "activation": ["tanh", "relu"],
    "optimizer": "adam",
    "batch_size": 32,
    "dropout": 0.2,
    "epochs": 15,
    "early_stopping": True,
    "patience": 3,
    "lr": 0.01,
}


def test_same_seed_gives_bit_identical_weights():
    X, y, _w, _lk = simulate("poisson", None, seed=15, n=400)
    a = train(X, y, MLP, family="poisson", seed=7)
    b = train(X, y, MLP, family="poisson", seed=7)
    c = train(X, y, MLP, family="poisson", seed=8)
    assert np.array_equal(a.params, b.params)
    assert a.history == b.history
    assert not np.array_equal(a.params, c.params)


def test_the_four_streams_are_the_seeds_four_children():
    """train's streams (split, weights, permutations, dropout) are SeedSequence.spawn(4)'s
    children, made one at a time for an integer seed; a caller's SeedSequence advances."""
    from simbench.fit.network import _streams

    children = np.random.SeedSequence(7).spawn(4)
    stream = _streams(7)
    for k in (2, 0, 3, 1):  # in any order: each is made on its own
        expected = np.random.default_rng(children[k]).integers(0, 2**63, 4)
        assert stream(k).integers(0, 2**63, 4).tolist() == expected.tolist()
    seq = np.random.SeedSequence(7)
    _streams(seq)
    assert seq.n_children_spawned == 4
    X, y, _w, _lk = simulate("poisson", None, seed=15, n=200)
    a = train(X, y, MLP, family="poisson", seed=np.random.SeedSequence(7))
    b = train(X, y, MLP, family="poisson", seed=7)
    assert np.array_equal(a.params, b.params)


def test_irls_builds_no_stream_yet_checks_its_seed(monkeypatch):
    """'irls' draws nothing: it builds no seed sequence (the costliest set-up of a small fit),
    and still refuses a seed that every other optimiser refuses."""
    import simbench.fit.network as network

    X, y, _w, _lk = simulate("poisson", None, seed=15, n=200)
    with pytest.raises(ValidationError, match="seed"):
        train(X, y, {"optimizer": "irls"}, family="poisson", seed=-1)
    built = []
    real = network.seed_sequence
    monkeypatch.setattr(network, "seed_sequence", lambda s: built.append(s) or real(s))
    train(X, y, {"optimizer": "irls"}, family="poisson", seed=3)
    assert built == []
    train(X, y, {"optimizer": "newton"}, family="poisson", seed=3)
    assert built == [3]


def test_configs_differing_only_in_the_optimizer_start_from_the_same_weights():
    X, y, _w, _lk = simulate("poisson", None, seed=15, n=300)
    base = {"hidden": [4], "epochs": 1, "tol": 0.0}
    a = train(X, y, {**base, "optimizer": "gd", "lr": 1e-12}, family="poisson", seed=5)
    b = train(X, y, {**base, "optimizer": "adam", "lr": 1e-12}, family="poisson", seed=5)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "config",
    [
        {"optimizer": "lbfgs", "epochs": 30},
        {"optimizer": "newton", "epochs": 10},
        {"optimizer": "adam", "batch_size": 1000, "epochs": 2},
        {"hidden": [16, 8], "activation": "tanh", "optimizer": "gd", "epochs": 3},
        {
            "hidden": [16, 8],
            "activation": "sigmoid",
            "optimizer": "adam",
            "batch_size": 512,
            "epochs": 2,
        },
    ],
)
def test_thread_count_does_not_change_results(config):
    import numba
    from threadpoolctl import threadpool_limits

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    X, y, _w, _lk = simulate("poisson", None, seed=16, n=20000, p=5)
    fits = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            with threadpool_limits(limits=threads):
                fits.append(train(X, y, config, family="poisson", seed=9))
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(fits[0].params, fits[1].params)
    assert fits[0].history == fits[1].history


# ---- stopping ------------------------------------------------------------------------------


def test_divergence_is_a_status_not_an_exception():
    X, y, _w, _lk = simulate("poisson", None, seed=17)
    X = X * 5.0
    fit = train(X, y, {"optimizer": "gd", "lr": 50.0, "epochs": 100}, family="poisson", seed=1)
    assert fit.status == "diverged" and not fit.converged
    assert "non-finite" in fit.message
    assert np.isfinite(fit.params).all()
    assert not math.isfinite(fit.history["loss"][-1])
    mb = train(
        X,
        y,
        {"optimizer": "sgd", "lr": 50.0, "batch_size": 50, "epochs": 100},
        family="poisson",
        seed=1,
    )
    assert mb.status == "diverged" and np.isfinite(mb.params).all()


def test_early_stopping_restores_the_best_weights():
    X, y, _w, _lk = simulate("poisson", None, seed=18, n=300)
    cfg = {
        "hidden": [32],
        "optimizer": "adam",
        "lr": 0.05,
        "batch_size": 16,
        "epochs": 300,
        "early_stopping": True,
        "patience": 4,
    }
    fit = train(X, y, cfg, family="poisson", seed=4)
    val = fit.history["val_loss"]
    assert fit.status == "ok" and fit.converged and "early stopping" in fit.message
    assert fit.best_epoch == int(np.argmin(val))
    assert fit.epochs_run == fit.best_epoch + 4 and len(val) == fit.epochs_run + 1
    # the returned parameters are those of the best epoch: their training objective is the one
    # recorded then
    assert fit.loss_value == pytest.approx(fit.history["loss"][fit.best_epoch], rel=1e-12)


def test_tolerances_stop_training():
    X, y, _w, _lk = simulate("poisson", None, seed=19)
    fit = train(
        X,
        y,
        {"optimizer": "gd", "lr": 0.5, "epochs": 1000, "tol": 1e-4, "ftol": 0.0},
        family="poisson",
    )
    assert fit.converged and fit.history["grad_norm"][-1] <= 1e-4 < fit.history["grad_norm"][-2]
    fit = train(
        X,
        y,
        {"optimizer": "gd", "lr": 0.5, "epochs": 1000, "tol": 0.0, "ftol": 1e-6},
        family="poisson",
    )
    loss = fit.history["loss"]
    assert fit.converged and abs(loss[-2] - loss[-1]) <= 1e-6 * abs(loss[-2])
    fit = train(X, y, {"optimizer": "gd", "lr": 0.01, "epochs": 5}, family="poisson")
    assert fit.status == "not_converged" and fit.epochs_run == 5 and len(fit.history["loss"]) == 6


# ---- outputs of a fit ---------------------------------------------------------------------------


def test_history_tracks_the_distance_to_a_reference():
    X, y, _w, lk = simulate("bernoulli", None, seed=20)
    glm = reference_fit(X, y, "bernoulli", lk)
    fit = train(
        X,
        y,
        {"optimizer": "gd", "lr": 1.0, "epochs": 50, "tol": 0.0, "ftol": 0.0},
        family="bernoulli",
        track_beta=glm.coef,
        track_information=glm.fisher_information,
    )
    dist = fit.history["dist_beta"]
    assert len(dist) == 51 and dist[-1] < dist[0]
    assert dist[-1] == pytest.approx(z_distance(fit.coef, glm), rel=1e-12)
    with pytest.raises(ValidationError, match="coefficients"):
        train(X, y, {"hidden": [3]}, family="bernoulli", track_beta=glm.coef)


def test_predict_applies_the_output_activation_and_offset():
    X, y, _w, _lk = simulate("poisson", None, seed=21, n=200)
    off = np.linspace(-0.5, 0.5, 200)
    fit = train(
        X,
        y,
        {"hidden": [5], "activation": "softplus", "optimizer": "lbfgs", "epochs": 20},
        family="poisson",
        offset=off,
    )
    eta = fit.predict_eta(X, off)
    ref = ref_net.forward(fit.params, list(fit.sizes), ["softplus"], X)[0] + off
    np.testing.assert_allclose(eta, ref, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(X, off), np.exp(ref), rtol=1e-12)
    assert fit.coef is None
    assert isinstance(fit, NetworkFit) and "NetworkFit" in repr(fit)
    with pytest.raises(ValidationError, match="columns"):
        fit.predict(X[:, :2])


def test_integer_weights_equal_repeated_rows():
    X, y, _w, _lk = simulate("poisson", None, seed=22, n=120)
    reps = np.random.default_rng(0).integers(0, 4, 120)
    a = train(
        X, y, {"optimizer": "newton", "tol": 1e-12}, family="poisson", weights=reps.astype(float)
    )
    b = train(
        np.repeat(X, reps, axis=0),
        np.repeat(y, reps),
        {"optimizer": "newton", "tol": 1e-12},
        family="poisson",
    )
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9, atol=1e-12)


def test_weight_decay_penalises_weights_not_the_intercept():
    X, y, _w, lk = simulate("poisson", None, seed=23)
    fit = train(X, y, {"optimizer": "newton", "l2": 0.5, "tol": 1e-12}, family="poisson")
    mu = np.exp(fit.coef[0] + X @ fit.coef[1:])
    score = np.column_stack([np.ones(len(y)), X]).T @ (mu - y) / len(y)
    np.testing.assert_allclose(score[0], 0.0, atol=1e-10)
    np.testing.assert_allclose(score[1:] + 0.5 * fit.coef[1:], 0.0, atol=1e-10)
    glm = reference_fit(X, y, "poisson", lk)
    assert np.all(np.abs(fit.coef[1:]) < np.abs(glm.coef[1:]))


def test_invalid_start_is_repaired_for_restricted_outputs():
    """An inverse-link output with random weights meets eta <= 0; the start is shrunk until
    the loss is finite instead of failing."""
    X, y, _w, _lk = simulate("gamma", None, seed=24)
    fit = train(
        X * 10, y, {"optimizer": "lbfgs", "init": "he", "epochs": 200}, family="gamma", seed=0
    )
    assert math.isfinite(fit.history["loss"][0]) and fit.status == "ok"


def test_bad_inputs_are_refused():
    X, y, _w, _lk = simulate("poisson", None, seed=25, n=50)
    with pytest.raises(ValidationError, match="2-D"):
        train(X[:, 0], y, {}, family="poisson")
    with pytest.raises(ValidationError, match="rows"):
        train(X, y[:-1], {}, family="poisson")
    with pytest.raises(ValidationError):
        train(X, -y - 1, {}, family="poisson")
    with pytest.raises(ValidationError, match="weights"):
        train(X, y, {}, family="poisson", weights=-np.ones(50))
    with pytest.raises(ValidationError, match="finite"):
        train(np.where(X > 1, np.nan, X), y, {}, family="poisson")
    with pytest.raises(ValidationError, match="hinge"):
        train(X, y, {"loss": "hinge"}, family="poisson")
    with pytest.raises(ValidationError, match="without hidden layers"):
        train(X, y, {"hidden": [3], "optimizer": "newton"}, family="poisson")
    with pytest.raises(ValidationError, match="seed"):
        train(X, y, {}, family="poisson", seed=-1)


_AFTER_WARMUP = """
import sys

import numpy as np
from numba.core.dispatcher import Dispatcher

from simbench.fit.network import train, warmup


def overloads():
    # specialisations compiled or loaded from Numba's cache: each adds an overload
    return sum(
        len(v.overloads)
        for name, m in list(sys.modules.items())
        if name.startswith("simbench.") and m is not None
        for v in vars(m).values()
        if isinstance(v, Dispatcher)
    )


if sys.argv[1] == "warm":
    warmup()
    first = overloads()
    warmup()
    assert overloads() == first, "a second warm-up compiled again"
rng = np.random.default_rng(5)
X = rng.standard_normal((300, 4))
y = rng.poisson(2.0, 300).astype(np.float64)
w = rng.uniform(0.5, 1.5, 300)
before = overloads()
for cfg in (
    {"hidden": [], "optimizer": "lbfgs"},
    {"hidden": [], "optimizer": "newton"},
    {"hidden": [3], "optimizer": "gd", "dropout": 0.2},
):
    train(X, y, {**cfg, "epochs": 3}, family="poisson", weights=w, offset=0.0 * w).predict(X)
print(overloads() - before)
"""


def test_warmup_compiles_everything_once():
    """In a fresh process: after warmup() a second one loads nothing, and fits of warmed
    structures on other data of the same kinds load nothing more; without the warm-up the
    same fits do (the count can see what it is meant to)."""
    import subprocess
    import sys

    def after(mode: str) -> int:
        proc = subprocess.run(
            [sys.executable, "-c", _AFTER_WARMUP, mode], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    assert after("warm") == 0
    assert after("cold") > 0


_BATCHES_OF_A_GLM = """
import numpy as np

from simbench.fit.network import train
from simbench.kernels import network

rng = np.random.default_rng(5)
X = rng.standard_normal((100, 3))
y = rng.poisson(2.0, 100).astype(np.float64)
train(X, y, {"hidden": [], "optimizer": "adam", "batch_size": 16, "epochs": 2}, family="poisson")
print(len(network.mlp_batch.signatures), len(network._mlp_forward.signatures))
"""


def test_mini_batches_of_a_network_without_hidden_layers_compile_no_mlp(tmp_path):
    """From an empty cache: the compiled mini-batch epochs of a network without hidden
    layers never compile the MLP's batch kernels, which they cannot run."""
    assert printed_from_an_empty_cache(_BATCHES_OF_A_GLM, tmp_path) == ["0", "0"]


_UNTRACKED_RUNS = """
import numpy as np

from simbench.fit.network import train
from simbench.kernels import training

rng = np.random.default_rng(5)
X = rng.standard_normal((100, 3))
y = rng.poisson(2.0, 100).astype(np.float64)
for optimizer in ("adam", "newton"):
    train(X, y, {"hidden": [], "optimizer": optimizer, "epochs": 3}, family="poisson")
print(len(training.coef_distance.signatures))
fit = train(
    X, y, {"hidden": [], "optimizer": "newton", "epochs": 3}, family="poisson",
    track_beta=np.zeros(4),
)
print(len(training.coef_distance.signatures), len(fit.history["dist_beta"]))
"""


def test_a_run_that_records_no_distance_never_compiles_it(tmp_path):
    """From an empty cache: first-order and Newton runs without ``track_beta`` (every run of
    a sweep without histories) never compile the distance to a reference, which they do
    not record; a run with one compiles and records it."""
    assert printed_from_an_empty_cache(_UNTRACKED_RUNS, tmp_path) == ["0", "1", "4"]


# ---- every configuration the sweep file can express ---------------------------------------------

# what every response of a family lies in, and the responses each loss accepts (the loss's
# domain must contain the family's support): written out here from the definitions, apart
# from the package's own tables
_SUPPORT = {"gaussian": "real", "poisson": "nonnegative", "gamma": "positive",
            "bernoulli": "binary"}  # fmt: skip
_WITHIN = {  # support -> the domains that contain it
    "real": {"real"},
    "nonnegative": {"real", "nonnegative"},
    "positive": {"real", "nonnegative", "positive"},
    "binary": {"real", "nonnegative", "unit", "binary"},
}
_LOSS_DOMAIN = {"squared_error": "real", "poisson": "nonnegative", "gamma": "positive",
                "bernoulli": "unit", "hinge": "binary", "squared_hinge": "binary",
                "logistic": "binary", "perceptron": "binary"}  # fmt: skip
_MINIBATCH = {"sgd", "momentum", "nesterov", "adam"}
_DETERMINISTIC = {"lbfgs", "newton", "irls"}


def _refusals(choice, family) -> list[str]:
    """The documented reasons (fragments of the message) to refuse a configuration on data
    of ``family``; empty if it must train (see the config module notes and the README)."""
    opt, hidden = choice["optimizer"], choice["hidden"]
    out = []
    if hidden and opt in ("newton", "irls"):
        out.append("needs a network without hidden layers")
    if choice["batch_size"] is not None and opt not in _MINIBATCH:
        out.append("uses the full data")
    if choice["dropout"] > 0 and not hidden:
        out.append("acts on hidden units")
    if choice["dropout"] > 0 and opt in _DETERMINISTIC:
        out.append("makes the loss random")
    if opt == "newton" and choice["loss"] in ("hinge", "perceptron"):
        out.append("needs a loss with curvature")
    if opt == "irls":
        if choice["output"] != "matched" or choice["loss"] != "matched":
            out.append("fits the GLM itself")
        if choice["l2"] > 0:
            out.append("has no penalty")
        if choice["early_stopping"]:
            out.append("does not use early stopping")
    loss = choice["loss"]
    if loss != "matched" and _LOSS_DOMAIN[loss] not in _WITHIN[_SUPPORT[family]]:
        out.append(f"loss {loss!r} needs")
    return out


CONFIG_SPACE = {
    "hidden": st.sampled_from([[], [3], [4, 2]]),
    "activation": st.sampled_from(["identity", "relu", "tanh", "sigmoid", "softplus"]),
    "output": st.sampled_from(
        ["matched", "exp", "sigmoid", "identity", "probit", "relu", "softplus", "inverse"]
    ),
    "loss": st.sampled_from(
        [
            "matched",
            "squared_error",
            "hinge",
            "squared_hinge",
            "logistic",
            "perceptron",
            "poisson",
            "gamma",
            "bernoulli",
        ]
    ),
    "optimizer": st.sampled_from(
        ["irls", "newton", "lbfgs", "gd", "sgd", "momentum", "nesterov", "adam"]
    ),
    "batch_size": st.sampled_from([None, None, 16]),
    "dropout": st.sampled_from([0.0, 0.0, 0.3]),
    "l2": st.sampled_from([0.0, 0.01]),
    "early_stopping": st.booleans(),
    "init": st.sampled_from(["glorot", "he", "uniform", "zeros"]),
}


@settings(deadline=None)
@given(
    choice=st.fixed_dictionaries(CONFIG_SPACE),
    family=st.sampled_from(["poisson", "bernoulli", "gamma", "gaussian"]),
    weighted=st.booleans(),
)
def test_every_expressible_configuration_trains_or_is_refused(choice, family, weighted):
    reasons = _refusals(choice, family)
    if reasons:
        # refused, for one of the documented reasons
        with pytest.raises(ValidationError) as err:
            NetworkConfig.from_dict({**choice, "epochs": 3}).resolve(family)
        assert any(r in str(err.value) for r in reasons), (str(err.value), reasons)
        return
    cfg = NetworkConfig.from_dict({**choice, "epochs": 3})  # a valid one is never refused
    cfg.resolve(family)
    X, y, _w, _lk = simulate(family, None, seed=26, n=60)
    w = np.linspace(0.5, 1.5, 60) if weighted else None
    fit = train(X, y, cfg, family=family, seed=0, weights=w)
    assert fit.status in ("ok", "not_converged", "diverged")
    assert fit.epochs_run <= 3 or cfg.optimizer == "irls"
    assert len(fit.history["loss"]) >= 1
    if fit.status != "diverged":
        assert np.isfinite(fit.params).all()
        assert fit.predict(X).shape == (60,)
