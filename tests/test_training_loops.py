"""The compiled first-order training loop against the reference loop of one epoch per
Python iteration (tests/reference/training.py): identical parameters, histories, epochs,
statuses and messages for every optimiser, with and without mini-batches, dropout, early
stopping, weight decay, offsets and a tracked coefficient vector; whatever the block sizes;
through the rare shuffle that needs more draws than an epoch was given; and on divergence.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference.training import dropout_mask, train_reference

from simbench import families
from simbench.fit import optimizers as opt
from simbench.fit.network import train
from simbench.kernels import training as kt

N, P = 240, 3
BETA = np.array([0.2, 0.5, -0.3, 0.1])


def _data(family: str, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    eta = BETA[0] + X @ BETA[1:]
    if family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "bernoulli":
        y = (rng.random(N) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = eta + rng.standard_normal(N)
    return X, y, np.linspace(0.5, 1.5, N), 0.1 * rng.standard_normal(N)


def _outcome(fit):
    return fit.epochs_run, fit.status, fit.converged, fit.message, fit.best_epoch


def _assert_same(a, b):
    assert np.array_equal(a.params, b.params)
    assert a.history.keys() == b.history.keys()
    for key in a.history:
        assert np.array_equal(np.array(a.history[key]), np.array(b.history[key]), equal_nan=True), (
            key
        )
    assert _outcome(a) == _outcome(b)
    assert a.grad_norm == b.grad_norm and a.loss_value == b.loss_value


def _both(family, config, track=False, offset=False, **kw):
    X, y, w, off = _data(family)
    args = dict(family=family, seed=7, weights=w, offset=off if offset else None, **kw)
    if track:
        info = np.eye(P + 1) * 2.0 + 0.1
        args.update(track_beta=BETA, track_information=info)
    return train(X, y, config, **args), train_reference(X, y, config, **args)


OPTIMIZERS = ["gd", "sgd", "momentum", "nesterov", "adam"]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(
    "shape",
    [
        {"hidden": []},
        {"hidden": [], "batch_size": 50},
        {"hidden": [4], "activation": "tanh", "dropout": 0.25},
        {"hidden": [4], "activation": "tanh", "dropout": 0.25, "batch_size": 64},
        {"hidden": [3, 2], "activation": ["relu", "sigmoid"], "l2": 0.01},
        {"hidden": [], "early_stopping": True, "patience": 4, "batch_size": 32},
        {"hidden": [4], "activation": "relu", "early_stopping": True, "patience": 3},
    ],
    ids=["glm", "glm-batches", "mlp-dropout", "mlp-dropout-batches", "deep-l2", "glm-es", "mlp-es"],
)
def test_compiled_loop_equals_the_reference_loop(optimizer, shape):
    cfg = {**shape, "optimizer": optimizer, "epochs": 40, "lr": 0.02}
    if optimizer == "gd":
        cfg.pop("batch_size", None)
    for family in ("poisson", "bernoulli"):
        a, b = _both(family, cfg, offset=True)
        _assert_same(a, b)


@pytest.mark.parametrize("optimizer", ["gd", "adam", "nesterov"])
def test_tracked_distance_and_convergence_match(optimizer):
    # a tight tolerance that is met: the loop stops on the gradient rule at the same epoch
    cfg = {"hidden": [], "optimizer": optimizer, "epochs": 3000, "lr": 0.05, "tol": 1e-5}
    a, b = _both("gaussian", cfg, track=True)
    assert a.converged and a.message == "converged"
    _assert_same(a, b)
    assert len(a.history["dist_beta"]) == a.epochs_run + 1
    # a deep linear network: coefficients are the end-to-end product
    deep = {"hidden": [3], "activation": "identity", "optimizer": optimizer, "epochs": 60}
    a, b = _both("poisson", {**deep, "lr": 0.01}, track=True)
    _assert_same(a, b)


def test_relative_change_rule_matches():
    cfg = {"hidden": [], "optimizer": "adam", "epochs": 5000, "lr": 0.05, "tol": 0.0, "ftol": 1e-10}
    a, b = _both("bernoulli", cfg)
    assert a.converged and a.epochs_run < 5000
    _assert_same(a, b)


def test_divergence_keeps_the_last_finite_parameters():
    cfg = {"hidden": [], "optimizer": "gd", "epochs": 200, "lr": 80.0}
    a, b = _both("poisson", cfg, track=True)
    assert a.status == "diverged"
    _assert_same(a, b)
    # a mini-batch step that meets a non-finite gradient stops the epoch
    cfg = {"hidden": [6], "activation": "relu", "optimizer": "sgd", "epochs": 50, "lr": 1e3,
           "batch_size": 40}  # fmt: skip
    a, b = _both("poisson", cfg)
    assert a.status == "diverged"
    _assert_same(a, b)


def test_results_do_not_depend_on_the_block_size(monkeypatch):
    cfgs = [
        {"hidden": [4], "activation": "tanh", "optimizer": "adam", "epochs": 23, "lr": 0.02,
         "dropout": 0.3, "batch_size": 37, "early_stopping": True, "patience": 30},
        {"hidden": [], "optimizer": "momentum", "epochs": 31, "lr": 0.02, "batch_size": 16},
    ]  # fmt: skip
    whole = [_both("poisson", c, track=not c["hidden"])[0] for c in cfgs]
    monkeypatch.setattr(opt, "_BLOCK_EPOCHS", 3)
    small = [_both("poisson", c, track=not c["hidden"])[0] for c in cfgs]
    monkeypatch.setattr(opt, "_BLOCK_EPOCHS", 1 << 14)
    monkeypatch.setattr(opt, "_BLOCK_BYTES", 1)  # one epoch per block
    single = [_both("poisson", c, track=not c["hidden"])[0] for c in cfgs]
    for a, b, c in zip(whole, small, single, strict=True):
        _assert_same(a, b)
        _assert_same(a, c)


@pytest.mark.parametrize("margin", [-(N // 2), -(N // 8), 0])
def test_a_shuffle_that_runs_out_of_draws_continues_the_same_stream(monkeypatch, margin):
    # a negative margin gives every epoch too few draws: each epoch's shuffle stops the block
    # and is finished from the generator where the epoch's own words end
    monkeypatch.setattr(opt, "SHUFFLE_MARGIN", margin)
    monkeypatch.setattr(opt, "_BLOCK_EPOCHS", 4)
    for cfg in (
        {"hidden": [], "optimizer": "sgd", "epochs": 9, "lr": 0.02, "batch_size": 25},
        {"hidden": [3], "activation": "tanh", "optimizer": "adam", "epochs": 6, "lr": 0.02,
         "batch_size": 60, "dropout": 0.2},
    ):  # fmt: skip
        a, b = _both("bernoulli", cfg)
        _assert_same(a, b)
    # the permutation stream itself is the epoch-by-epoch one
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    pa, pb = opt.row_order(N), opt.row_order(N)
    for _ in range(3):
        opt.shuffle_rows(pa, rng_a)
        opt.shuffle_rows(pb, rng_b)
    assert np.array_equal(pa, pb)


def test_one_draw_of_a_block_of_masks_is_the_draw_of_each_epoch():
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    block = (a.random((5, 7, 3), dtype=np.float32) >= np.float32(0.3)).view(np.uint8)
    each = np.stack([dropout_mask(b, 7, 3, 0.3) for _ in range(5)])
    assert np.array_equal(block, each)


def test_norm_and_distance_kernels_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(17)
    assert kt.norm2(x) == pytest.approx(np.linalg.norm(x), rel=1e-15)
    sizes = np.array([3, 4, 2, 1])
    offs = np.array([0, 16, 26, 29])
    theta = rng.standard_normal(29)
    beta = rng.standard_normal(4)
    # end-to-end coefficients of the deep linear network, by matrix products
    c, A = np.zeros(3), np.eye(3)
    for l in range(3):
        fi, fo, o = sizes[l], sizes[l + 1], offs[l]
        W = theta[o + fo : o + fo + fo * fi].reshape(fo, fi)
        c, A = W @ c + theta[o : o + fo], W @ A
    d = np.concatenate([c, A[0]]) - beta
    M = np.eye(4) + 0.2
    assert kt.coef_distance(theta, sizes, offs, beta, np.empty((0, 0))) == pytest.approx(
        np.linalg.norm(d), rel=1e-13
    )
    assert kt.coef_distance(theta, sizes, offs, beta, M) == pytest.approx(
        np.sqrt(d @ M @ d), rel=1e-13
    )
    glm = np.array([3, 1])
    t = theta[:4]
    assert kt.coef_distance(t, glm, np.array([0, 4]), beta, np.empty((0, 0))) == pytest.approx(
        np.linalg.norm(t - beta), rel=1e-15
    )


def test_a_million_epochs_of_a_tiny_problem_run_in_compiled_code():
    # not a timing test: the whole run is one compiled call per block of epochs, recorded
    rng = np.random.default_rng(2)
    X = rng.standard_normal((16, 2))
    y = X @ np.array([0.5, -0.2]) + 0.1 * rng.standard_normal(16)
    cfg = {"hidden": [], "optimizer": "gd", "lr": 1e-6, "epochs": 200_000, "tol": 0.0, "ftol": 0.0}
    fit = train(X, y, cfg, family="gaussian")
    assert fit.epochs_run == 200_000
    assert len(fit.history["loss"]) == 200_001
    assert np.all(np.diff(fit.history["loss"]) <= 0.0)


@pytest.mark.parametrize("family", ["poisson", "bernoulli", "gaussian"])
@pytest.mark.parametrize("extra", [{}, {"l2": 0.05}, {"early_stopping": True, "patience": 2}])
def test_compiled_newton_agrees_with_the_lapack_newton(family, extra):
    # the directions are solved by another Cholesky (rounding-level differences), so the
    # paths agree to rounding and end at the same epoch
    cfg = {"hidden": [], "optimizer": "newton", "epochs": 50, **extra}
    a, b = _both(family, cfg, track=True, offset=True)
    assert _outcome(a) == _outcome(b)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)
    for key in a.history:
        np.testing.assert_allclose(a.history[key], b.history[key], rtol=1e-9, atol=1e-12)


def test_newton_falls_back_to_the_expected_hessian_and_damping():
    # a Gamma log-link fit far from the MLE has an indefinite observed Hessian; a
    # duplicated column makes every Hessian singular, so the ridge is needed
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 2))
    X = np.column_stack([X, X[:, 0]])
    y = rng.gamma(2.0, np.exp(0.3 + 0.5 * X[:, 0]) / 2.0)
    cfg = {"hidden": [], "optimizer": "newton", "epochs": 30, "init": "zeros"}
    a = train(X, y, cfg, family="gamma", link="log", seed=0)
    b = train_reference(X, y, cfg, family="gamma", link="log", seed=0)
    # on a singular Hessian, which factorisation succeeds is a matter of rounding, so the
    # paths may differ on the way; they end at the same fit (the duplicated column's two
    # coefficients are determined only through their sum)
    assert a.status == b.status == "ok"
    assert a.loss_value == pytest.approx(b.loss_value, rel=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8)
    assert a.params[1] + a.params[3] == pytest.approx(b.params[1] + b.params[3], rel=1e-7)


def test_descent_direction_refuses_what_cholesky_cannot_factor():
    q = 3
    L, dsc, d = np.zeros((q, q)), np.empty(q), np.empty(q)
    g = np.array([1.0, -2.0, 0.5])
    A = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    assert kt._descent(A, g, L, dsc, d)
    np.testing.assert_allclose(d, -np.linalg.solve(A, g), rtol=1e-14)
    indefinite = A - 3.5 * np.eye(q)
    assert not kt._descent(indefinite, g, L, dsc, d)
    singular = np.ones((q, q))
    assert not kt._descent(singular, g, L, dsc, d)
    assert not kt._descent(np.full((q, q), np.nan), g, L, dsc, d)


def test_newton_reports_a_step_that_cannot_decrease():
    # a start at the floating-point floor of a separable problem: no decrease possible
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    cfg = {"hidden": [], "optimizer": "newton", "epochs": 400, "tol": 0.0, "ftol": 0.0}
    a = train(X, y, cfg, family="bernoulli", seed=0)
    b = train_reference(X, y, cfg, family="bernoulli", seed=0)
    assert a.message == b.message
    assert a.epochs_run == b.epochs_run


def test_entry_points_hand_kernels_read_only_arrays(monkeypatch):
    # one kind of array whoever calls: a sweep's data sets (read-only) and a user's arrays
    # (writeable) then share every compiled kernel and cache entry
    from simbench.fit import glm as fit_glm_module
    from simbench.fit.glm import fit_glm
    from simbench.fit.objective import Objective

    X, y, w, off = _data("poisson")
    assert X.flags.writeable and y.flags.writeable
    seen = {}
    real = fit_glm_module.fisher_scoring

    def spy(k, X, icpt, fcode, fpar, lcode, lpar, y, w, off, *rest):
        seen.update(X=X, y=y, w=w, off=off)
        return real(k, X, icpt, fcode, fpar, lcode, lpar, y, w, off, *rest)

    monkeypatch.setattr(fit_glm_module, "fisher_scoring", spy)
    fit_glm(X, y, family="poisson")
    fit = fit_glm(X, y, family="poisson", weights=w, offset=off)
    assert fit.status == "ok"
    assert not any(a.flags.writeable for a in seen.values())
    assert X.flags.writeable and y.flags.writeable  # the caller's arrays are left alone
    from simbench.fit.config import NetworkConfig

    output, loss = NetworkConfig().resolve(families.get("poisson"), None)
    obj = Objective((P, 1), (), output, loss, X, y, w, None)
    assert not any(a.flags.writeable for a in (obj.X, obj.y, obj.weights, obj.offset, obj.logy))
    assert not any(a.flags.writeable for a in (obj.net.X, obj.empty_net().X))


@pytest.mark.parametrize("optimizer", ["lbfgs", "irls", "adam"])
def test_the_final_evaluation_is_a_one_off_for_the_thread_policy(monkeypatch, optimizer):
    from simbench.kernels import network as knet

    hints = []
    real = knet.glm_loss_grad

    def spy(*args, repeated=True, **kwargs):
        hints.append(repeated)
        return real(*args, repeated=repeated, **kwargs)

    monkeypatch.setattr(knet, "glm_loss_grad", spy)
    X, y, _, _ = _data("poisson")
    train(X, y, {"hidden": [], "optimizer": optimizer, "epochs": 5}, family="poisson")
    assert hints and hints[-1] is False
