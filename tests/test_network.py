"""Network kernels and configurations: gradients, layout, activations, optimiser steps,
determinism, and the validation of NetworkConfig.

Tolerances.  The network gradient is compared with 4th-order central differences of the
objective (step 1e-4): truncation ~1e-14 and rounding ~1e-12 for objectives of order 1, so
``|fd - grad| <= 1e-7 * max(1, |grad|_inf)`` leaves a wide margin while a wrong term
(off by a factor, a missing layer) is off by far more.  Kernel against the NumPy reference
(same formulas, different summation order): relative 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import losses as ref_loss
from reference import network as ref_net

from simbench import links, losses, optimizers
from simbench.errors import UnknownNameError, ValidationError
from simbench.fit.config import NetworkConfig
from simbench.fit.objective import NO_MASK, Objective, layer_offsets
from simbench.fit.optimizers import row_order, shuffle_rows
from simbench.kernels import codes
from simbench.kernels import minibatch as kmb
from simbench.kernels import network as k
from simbench.kernels.activations import act_fd_arr
from simbench.kernels.losses import loss_grad_hess

EMPTY = np.empty(0)

# (loss, output activations, response generator): smooth and finite for every eta, so central
# differences are valid everywhere
SMOOTH_PAIRS = [
    ("poisson", ("log", "softplus"), "count"),
    ("gamma", ("log", "softplus"), "positive"),
    ("inverse_gaussian", ("log",), "positive"),
    ("tweedie(1.5)", ("log", "softplus"), "count"),
    ("negative_binomial(0.7)", ("log",), "count"),
    ("bernoulli", ("logit", "probit", "cloglog", "loglog", "cauchit"), "binary"),
    ("binomial", ("logit", "probit"), "unit"),
    ("gaussian", ("identity", "log", "softplus"), "real"),
    ("squared_error", ("identity", "log", "logit", "softplus", "probit"), "real"),
    ("logistic", ("identity", "logit"), "binary"),
]
# every loss, with non-smooth pieces (kinks) and the relu output: compared with the reference
ALL_PAIRS = [
    *SMOOTH_PAIRS,
    ("hinge", ("identity", "relu"), "binary"),
    ("squared_hinge", ("identity", "logit"), "binary"),
    ("perceptron", ("identity",), "binary"),
    ("squared_error", ("relu",), "real"),
]
SMOOTH_ACTS = ("identity", "tanh", "sigmoid", "softplus")
ALL_ACTS = (*SMOOTH_ACTS, "relu")


def _response(kind, rng, n):
    if kind == "count":
        return rng.poisson(1.5, n).astype(float)
    if kind == "positive":
        return rng.gamma(2.0, 1.0, n)
    if kind == "binary":
        return (rng.random(n) < 0.4).astype(float)
    if kind == "unit":
        return rng.integers(0, 4, n) / 3.0
    return rng.normal(1.0, 1.0, n)


def _problem(data, pairs, acts_pool, min_layers=0):
    """Draw an architecture (at least ``min_layers`` hidden layers), a (loss, output) pair and
    data; return everything the kernels and the reference need."""
    loss_name, outputs, ykind = data.draw(st.sampled_from(pairs))
    output = links.get(data.draw(st.sampled_from(outputs)))
    loss = losses.get(loss_name)
    hidden = data.draw(st.lists(st.integers(1, 4), min_size=min_layers, max_size=3))
    acts = [data.draw(st.sampled_from(acts_pool)) for _ in hidden]
    p = data.draw(st.integers(1, 4))
    n = data.draw(st.integers(1, 25))
    seed = data.draw(st.integers(0, 2**32 - 1))
    use_w = data.draw(st.booleans())
    use_off = data.draw(st.booleans())
    l2 = data.draw(st.sampled_from([0.0, 0.3]))
    rng = np.random.default_rng(seed)
    sizes = [p, *hidden, 1]
    offs = layer_offsets(np.array(sizes))
    theta = np.empty(offs[-1])
    for l in range(len(sizes) - 1):
        fi, fo = sizes[l], sizes[l + 1]
        theta[offs[l] : offs[l + 1]] = rng.normal(0.0, 0.6 / np.sqrt(fi), fo * (fi + 1))
    X = rng.normal(0.0, 1.0, (n, p))
    y = _response(ykind, rng, n)
    w = rng.uniform(0.2, 3.0, n) if use_w else None
    off = rng.normal(0.0, 0.3, n) if use_off else None
    obj = Objective(sizes, acts, output, loss, X, y, w, off, l2=l2)
    return obj, theta, (sizes, acts, output, loss, X, y, w, off, l2)


def _reference(theta, spec):
    sizes, acts, output, loss, X, y, w, off, l2 = spec
    return ref_net.objective(
        theta, sizes, acts, output.code, output.param, loss.code, loss.param, X, y, w, off, l2
    )


def _fd_gradient(f, theta, h=1e-4):
    out = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        out[j] = (-f(theta + 2 * e) + 8 * f(theta + e) - 8 * f(theta - e) + f(theta - 2 * e)) / (
            12 * h
        )
    return out


# ---- gradients -----------------------------------------------------------------------------


@given(data=st.data())
def test_network_gradient_matches_central_differences(data):
    obj, theta, _ = _problem(data, SMOOTH_PAIRS, SMOOTH_ACTS)
    grad = np.empty(obj.n_params)
    f0 = obj.loss_grad(theta, grad)
    assert np.isfinite(f0)
    fd = _fd_gradient(obj.value, theta)
    scale = max(1.0, float(np.max(np.abs(grad))))
    np.testing.assert_allclose(fd, grad, rtol=0, atol=1e-7 * scale)


@given(data=st.data())
def test_network_objective_and_gradient_match_numpy_reference(data):
    obj, theta, spec = _problem(data, ALL_PAIRS, ALL_ACTS)
    grad = np.empty(obj.n_params)
    f = obj.loss_grad(theta, grad)
    f_ref, g_ref = _reference(theta, spec)
    np.testing.assert_allclose(f, f_ref, rtol=1e-10, atol=1e-13)
    scale = max(1e-300, float(np.max(np.abs(g_ref))))
    np.testing.assert_allclose(grad, g_ref, rtol=0, atol=1e-10 * scale)


@given(data=st.data())
def test_dropout_gradient_matches_reference_with_the_same_masks(data):
    obj, theta, spec = _problem(data, SMOOTH_PAIRS, ALL_ACTS, min_layers=1)
    assert obj.n_hidden >= 1  # dropout acts on hidden units: every example has some
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    keep = (rng.random((obj.n, obj.hidden_width)) >= 0.3).astype(np.uint8)
    grad = np.empty(obj.n_params)
    f = obj.loss_grad(theta, grad, keep, 1 / 0.7)
    sizes, acts, output, loss, X, y, w, off, l2 = spec
    cols = np.cumsum([0, *sizes[1:-1]])
    masks = [keep[:, cols[i] : cols[i + 1]] for i in range(len(sizes) - 2)]
    f_ref, g_ref = ref_net.objective(
        theta,
        sizes,
        acts,
        output.code,
        output.param,
        loss.code,
        loss.param,
        X,
        y,
        w,
        off,
        l2,
        masks,
        1 / 0.7,
    )
    np.testing.assert_allclose(f, f_ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, g_ref, rtol=0, atol=1e-10 * max(1e-300, np.abs(g_ref).max()))


@given(data=st.data())
def test_glm_shaped_gradient_is_xt_times_loss_derivative(data):
    """Without hidden layers grad = X~' (w l'(eta)) / sum w, l' from the loss kernels."""
    loss_name, outputs, ykind = data.draw(st.sampled_from(ALL_PAIRS))
    output = links.get(data.draw(st.sampled_from(outputs)))
    loss = losses.get(loss_name)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.integers(1, 3000))
    p = data.draw(st.integers(0, 12))
    X = rng.normal(0, 1, (n, p))
    y = _response(ykind, rng, n)
    w = rng.uniform(0.0, 2.0, n) if data.draw(st.booleans()) else EMPTY
    off = rng.normal(0, 0.2, n) if data.draw(st.booleans()) else EMPTY
    theta = rng.normal(0, 0.3, p + 1)
    eta = theta[0] + X @ theta[1:]
    gi = np.empty(n)
    total = loss_grad_hess(
        loss.code,
        loss.param,
        1.0,
        output.code,
        output.param,
        codes.HESS_EXPECTED,
        y,
        eta,
        w,
        off,
        gi,
        EMPTY,
    )
    expected = np.concatenate([[gi.sum()], X.T @ gi])
    grad = np.empty(p + 1)
    got = k.glm_loss_grad(
        theta, X, y, w, off, loss.code, loss.param, output.code, output.param, grad
    )
    np.testing.assert_allclose(got, total, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        grad, expected, rtol=0, atol=1e-11 * max(1.0, np.abs(expected).max())
    )
    # the Poisson-log shortcut (log y given) computes the same value and gradient
    logy = k.poisson_log_y(loss.code, output.code, y)
    assert logy.size == (n if (loss_name, output.name) == ("poisson", "log") else 0)
    got_ly = k.glm_loss_grad(
        theta, X, y, w, off, loss.code, loss.param, output.code, output.param, grad, logy=logy
    )
    np.testing.assert_allclose(got_ly, total, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        grad, expected, rtol=0, atol=1e-11 * max(1.0, np.abs(expected).max())
    )


def test_exp_fast_is_within_an_ulp_of_libm():
    rng = np.random.default_rng(8)
    xs = np.concatenate(
        [
            rng.uniform(-745.0, 710.0, 200_000),
            rng.normal(0.0, 3.0, 200_000),
            np.linspace(-708.45, -708.35, 2001),  # the normal / subnormal boundary
            np.linspace(709.7, 709.79, 2001),  # overflow
            [0.0, -0.0, 1e-300, -1e-300, 709.782712893384, 709.7827128933841, math.inf, -math.inf],
        ]
    )
    got = np.array([k.exp_fast(x) for x in xs])
    with np.errstate(over="ignore"):
        ref = np.exp(xs)
    normal = ref >= np.finfo(float).tiny
    finite = np.isfinite(ref) & normal
    ulps = np.abs(got[finite] - ref[finite]) / np.spacing(ref[finite])
    assert ulps.max() <= 1.0
    assert np.all(np.isinf(got[np.isinf(ref)]))
    assert np.all(got[~normal] <= np.finfo(float).tiny)  # subnormal range: 0 (libm < 2.3e-308)
    assert math.isnan(k.exp_fast(math.nan))


@pytest.mark.parametrize(("loss_name", "outputs", "ykind"), ALL_PAIRS)
def test_derivative_only_loss_loop_equals_loss_eval(loss_name, outputs, ykind):
    """The value-free loop of a mini-batch step dispatches like loss_eval: bit for bit, except
    Poisson-log, whose loop takes the vectorisable exp_fast (within an ulp of libm's exp)."""
    from simbench.kernels.losses import loss_eval

    rng = np.random.default_rng(8)
    y = _response(ykind, rng, 300)
    eta = rng.normal(0.0, 1.5, 300)
    loss = losses.get(loss_name)
    for name in outputs:
        out = links.get(name)
        d1 = np.empty(300)
        k.loss_d1(loss.code, loss.param, out.code, out.param, y, eta, d1, 300)
        ref = [
            loss_eval(loss.code, loss.param, 1.0, out.code, out.param, y[i], eta[i], 1)[1]
            for i in range(300)
        ]
        if (loss_name, name) == ("poisson", "log"):
            mu = np.exp(eta)
            bound = np.spacing(mu) + np.spacing(np.abs(np.array(ref)))  # exp, then subtraction
            assert np.all(np.abs(d1 - np.array(ref)) <= bound)
            continue
        assert np.array_equal(d1, np.array(ref), equal_nan=True)


def test_glm_path_equals_the_batched_path_without_hidden_layers():
    rng = np.random.default_rng(4)
    n, p = 5000, 7
    X = rng.normal(0, 1, (n, p))
    y = rng.poisson(2.0, n).astype(float)
    w = rng.uniform(0.5, 2, n)
    off = rng.normal(0, 0.1, n)
    theta = rng.normal(0, 0.2, p + 1)
    sizes = np.array([p, 1], np.int64)
    g1, g2 = np.empty(p + 1), np.empty(p + 1)
    args = (codes.FAMILY_POISSON, 0.0, codes.LINK_LOG, 0.0)
    t1 = k.glm_loss_grad(theta, X, y, w, off, *args, g1)
    t2 = k.mlp_loss_grad(
        theta,
        sizes,
        layer_offsets(sizes),
        np.empty(0, np.int64),
        codes.LINK_LOG,
        0.0,
        codes.FAMILY_POISSON,
        0.0,
        X,
        y,
        w,
        off,
        NO_MASK,
        1.0,
        g2,
    )
    np.testing.assert_allclose(t1, t2, rtol=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize(
    ("loss_name", "link_name", "expected"),
    [
        ("poisson", "log", False),
        ("gamma", "inverse", False),
        ("gamma", "inverse", True),
        ("bernoulli", "probit", False),
        ("squared_error", "log", False),
        ("squared_error", "log", True),
    ],
)
def test_newton_terms_match_the_weighted_cross_product(loss_name, link_name, expected):
    rng = np.random.default_rng(5)
    n, p = 4500, 4
    X = rng.normal(0, 1, (n, p))
    loss, link = losses.get(loss_name), links.get(link_name)
    if loss_name == "bernoulli":
        y = (rng.random(n) < 0.4).astype(float)
        theta = np.array([0.1, 0.3, -0.2, 0.1, 0.0])
    elif link_name == "inverse":
        y = rng.gamma(2.0, 0.5, n)
        theta = np.array([1.0, 0.05, -0.05, 0.02, 0.0])
    else:
        y = rng.poisson(2.0, n).astype(float)
        theta = np.array([0.5, 0.2, -0.1, 0.1, 0.0])
    w = rng.uniform(0.5, 2.0, n)
    obj = Objective([p, 1], (), link, loss, X, y, w, None, l2=0.1)
    f, g, H = obj.newton_terms(theta, expected=expected)
    eta = theta[0] + X @ theta[1:]
    value, d1, d2 = ref_loss.loss(
        loss.code, loss.param, 1.0, link.code, link.param, y, eta, expected
    )
    Xt = np.column_stack([np.ones(n), X])
    pen = np.r_[0.0, 0.1 * np.ones(p)]
    H_ref = Xt.T @ (Xt * (w * d2)[:, None]) / w.sum() + np.diag(pen)
    g_ref = Xt.T @ (w * d1) / w.sum() + pen * theta
    np.testing.assert_allclose(
        f, np.sum(w * value) / w.sum() + 0.5 * np.sum(pen * theta**2), rtol=1e-11
    )
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-11 * np.abs(g_ref).max())
    np.testing.assert_allclose(H, H_ref, rtol=0, atol=1e-11 * np.abs(H_ref).max())
    assert np.array_equal(H, H.T)


@given(data=st.data())
def test_predict_eta_matches_the_reference_forward_pass(data):
    _obj, theta, spec = _problem(data, ALL_PAIRS, ALL_ACTS)
    sizes, acts, _output, _loss, X, _y, _w, off, _l2 = spec
    from simbench.fit.objective import predict_eta

    got = predict_eta(sizes, acts, theta, X, off)
    eta = ref_net.forward(theta, sizes, acts, X)[0] + (0.0 if off is None else off)
    np.testing.assert_allclose(got, eta, rtol=1e-12, atol=1e-12)


def test_layout_puts_intercept_then_slopes_without_hidden_layers():
    sizes = np.array([3, 1], np.int64)
    assert list(layer_offsets(sizes)) == [0, 4]
    X = np.array([[1.0, 2.0, 3.0]])
    theta = np.array([0.5, 1.0, 10.0, 100.0])
    out = np.empty(1)
    k.glm_eta(theta, X, EMPTY, out)
    assert out[0] == 0.5 + 1.0 + 20.0 + 300.0
    # hidden layer: [b_0 (2), W_0 (2 x 3 row-major), b_1, W_1 (1 x 2)]
    sizes = np.array([3, 2, 1], np.int64)
    assert list(layer_offsets(sizes)) == [0, 8, 11]


# ---- activations ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["identity", "relu", "tanh", "sigmoid", "softplus"])
def test_batched_activations_agree_with_the_scalar_kernels(name):
    code = {"identity": 0, "relu": 1, "tanh": 2, "sigmoid": 3, "softplus": 4}[name]
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            np.linspace(-40, 40, 20001),
            rng.normal(0, 1e-3, 2000),
            rng.normal(0, 1e-8, 100),
            [0.0, -0.0, 5e-324, 1e-300, -1e-300, 300.0, -300.0, 700.0, -700.0, 1e5, -1e5],
        ]
    )
    z = x.reshape(1, -1).copy()
    a, d = np.empty_like(z), np.empty_like(z)
    k.act_layer(code, z, np.zeros(z.shape[1]), a, d)
    f0, d0 = np.empty_like(x), np.empty_like(x)
    act_fd_arr(code, x, f0, d0)
    # a few ulp in relative terms; below 1e-300 (tails of the derivatives) only absolutely
    np.testing.assert_allclose(a[0], f0, rtol=4 * 2.2e-16, atol=1e-300)
    np.testing.assert_allclose(d[0], d0, rtol=5 * 2.2e-16, atol=1e-300)


def test_batched_activations_propagate_nan_and_add_the_bias():
    z = np.array([[np.nan, 0.5, -0.5]])
    bias = np.array([0.0, 1.0, -1.0])
    for code in (codes.ACT_TANH, codes.ACT_SIGMOID, codes.ACT_SOFTPLUS):
        a, d = np.empty_like(z), np.empty_like(z)
        k.act_layer(code, z, bias, a, d)
        assert np.isnan(a[0, 0]) and np.isnan(d[0, 0])
        f0, d0 = np.empty(2), np.empty(2)
        act_fd_arr(code, np.array([1.5, -1.5]), f0, d0)
        np.testing.assert_allclose(a[0, 1:], f0, rtol=1e-15)


# ---- optimiser steps and the mini-batch epoch --------------------------------------------------


def _reference_steps(kind, theta, grads, lr, mu, b1, b2, eps):
    theta = theta.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if kind == kmb.OPT_SGD:
            theta -= lr * g
        elif kind == kmb.OPT_MOMENTUM:
            m = mu * m + g
            theta -= lr * m
        elif kind == kmb.OPT_NESTEROV:
            m = mu * m + g
            theta -= lr * (g + mu * m)
        else:
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            theta -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return theta


@pytest.mark.parametrize("kind", [kmb.OPT_SGD, kmb.OPT_MOMENTUM, kmb.OPT_NESTEROV, kmb.OPT_ADAM])
def test_optimiser_steps_match_their_formulas(kind):
    rng = np.random.default_rng(2)
    theta0 = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(5)]
    theta = theta0.copy()
    m, v = np.zeros(6), np.zeros(6)
    for t, g in enumerate(grads, start=1):
        kmb.opt_step(kind, theta, g, m, v, t, 0.05, 0.8, 0.9, 0.99, 1e-8)
    np.testing.assert_allclose(
        theta, _reference_steps(kind, theta0, grads, 0.05, 0.8, 0.9, 0.99, 1e-8), rtol=1e-14
    )


@pytest.mark.parametrize("hidden", [[], [3, 2]])
def test_minibatch_epoch_equals_its_steps(hidden):
    """An epoch of the compiled loop equals stepping batch by batch with full-data gradients
    of the batches (scaled n / B), penalty included."""
    rng = np.random.default_rng(3)
    n, p, bs = 50, 3, 16
    X = rng.normal(size=(n, p))
    y = rng.poisson(1.0, n).astype(float)
    w = rng.uniform(0.5, 1.5, n)
    sizes = [p, *hidden, 1]
    acts = ["tanh"] * len(hidden)
    obj = Objective(sizes, acts, links.get("log"), losses.get("poisson"), X, y, w, None, l2=0.1)
    theta0 = rng.normal(0, 0.3, obj.n_params)
    perm = rng.permutation(n).astype(np.int32)
    theta = theta0.copy()
    m, v = np.zeros(obj.n_params), np.zeros(obj.n_params)
    t, ok = obj.minibatch_epoch(
        theta, perm, bs, NO_MASK, 1.0, kmb.OPT_ADAM, (0.01, 0.9, 0.9, 0.999, 1e-8), m, v, 0
    )
    assert ok and t == 4
    ref = theta0.copy()
    mr, vr = np.zeros(obj.n_params), np.zeros(obj.n_params)
    for step, s in enumerate(range(0, n, bs), start=1):
        idx = perm[s : s + bs]
        sub = Objective(sizes, acts, obj.output, obj.loss, X[idx], y[idx], w[idx], None, l2=0.1)
        sub.wscale = obj.wscale * n / len(idx)
        g = np.empty(obj.n_params)
        sub.loss_grad(ref, g)
        kmb.opt_step(kmb.OPT_ADAM, ref, g, mr, vr, step, 0.01, 0.9, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("loss_name", "link_name", "ykind"),
    [
        ("poisson", "log", "count"),
        ("bernoulli", "logit", "binary"),
        ("bernoulli", "probit", "binary"),
        ("gaussian", "identity", "real"),
        ("gamma", "log", "positive"),
        ("squared_error", "exp", "positive"),
        ("inverse_gaussian", "log", "positive"),
    ],
)
@pytest.mark.parametrize("bs", [16, 70])
def test_minibatch_epoch_without_hidden_layers_reads_rows_in_place(loss_name, link_name, ykind, bs):
    """The in-place path (prefetched random rows, chunks of CHUNK_ROWS rows, derivative
    dispatch per chunk) equals batch steps with the full-data kernels, with offsets and zero
    weights, for fused and generic (loss, output) pairs; batches of one chunk and of several
    (70 rows: 32 + 32 + 6, not a multiple of the gradient's 4-row groups)."""
    assert 16 < kmb.CHUNK_ROWS and 2 * kmb.CHUNK_ROWS < 70 < 3 * kmb.CHUNK_ROWS
    rng = np.random.default_rng(11)
    n, p = 150, 9
    X = rng.normal(size=(n, p))
    y = {
        "count": rng.poisson(2.0, n).astype(float),
        "binary": rng.integers(0, 2, n).astype(float),
        "real": rng.normal(size=n),
        "positive": rng.gamma(2.0, 1.0, n),
    }[ykind]
    w = rng.uniform(0.5, 1.5, n)
    w[::7] = 0.0
    off = rng.normal(0.0, 0.1, n)
    lnk, loss = links.get(link_name), losses.get(loss_name)
    obj = Objective([p, 1], (), lnk, loss, X, y, w, off)
    theta0 = rng.normal(0, 0.05, p + 1)
    theta0[0] = 0.3
    perm = rng.permutation(n).astype(np.int32)
    theta = theta0.copy()
    m, v = np.zeros(p + 1), np.zeros(p + 1)
    t, ok = obj.minibatch_epoch(
        theta, perm, bs, NO_MASK, 1.0, kmb.OPT_SGD, (0.01, 0, 0, 0, 0), m, v, 0
    )
    assert ok and t == -(-n // bs)
    ref = theta0.copy()
    for s in range(0, n, bs):
        idx = perm[s : s + bs]
        sub = Objective([p, 1], (), lnk, loss, X[idx], y[idx], w[idx], off[idx])
        sub.wscale = obj.wscale * n / len(idx)
        g = np.empty(p + 1)
        sub.loss_grad(ref, g)
        ref -= 0.01 * g
    np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden", [[], [3]])
@pytest.mark.parametrize("link_name", ["log", "sqrt"])
def test_minibatch_epoch_sums_the_loss_of_every_batch_on_request(hidden, link_name):
    """With ``need_value`` the kernel also returns the summed weighted loss of the batches,
    each at the parameters of its own step; the steps are the same."""
    rng = np.random.default_rng(12)
    n, p, bs = 150, 5, 70
    X = rng.normal(size=(n, p))
    y = rng.poisson(2.0, n).astype(float)
    w = rng.uniform(0.5, 1.5, n)
    off = rng.normal(0.0, 0.1, n)
    sizes = [p, *hidden, 1]
    acts = ["tanh"] * len(hidden)
    lnk = links.get(link_name)
    obj = Objective(sizes, acts, lnk, losses.get("poisson"), X, y, w, off)
    theta0 = rng.normal(0, 0.05, obj.n_params)
    theta0[obj.n_params - 1 if hidden else 0] = 1.2  # a positive mean for sqrt
    perm = rng.permutation(n).astype(np.int32)
    thetas = []
    sums = []
    for need_value in (False, True):
        theta = theta0.copy()
        q = obj.n_params
        total, t, ok = kmb.minibatch_epoch(
            theta, obj.sizes, obj.offs, obj.acts, obj.hcode, obj.lam, obj.lcode, obj.a,
            obj.penal, obj.X, obj.y, obj.weights, obj.offset, perm, bs, NO_MASK, 1.0,
            obj.wscale, kmb.OPT_SGD, 0.01, 0.0, 0.0, 0.0, 0.0, np.zeros(q), np.zeros(q), 0,
            need_value,
        )  # fmt: skip
        assert ok and t == 3
        thetas.append(theta)
        sums.append(total)
    assert sums[0] == 0.0
    # the same steps (to rounding: the derivative-only Poisson-log loop takes exp_fast)
    np.testing.assert_allclose(thetas[0], thetas[1], rtol=1e-13, atol=1e-15)
    ref, expected = theta0.copy(), 0.0
    for s in range(0, n, bs):
        idx = perm[s : s + bs]
        sub = Objective(sizes, acts, lnk, obj.loss, X[idx], y[idx], w[idx], off[idx])
        sub.wscale = 1.0
        g = np.empty(obj.n_params)
        expected += sub.loss_grad(ref, g)
        ref -= 0.01 * (obj.wscale * n / len(idx)) * g
    np.testing.assert_allclose(sums[1], expected, rtol=1e-12)


def _reference_shuffle(n, draws):
    """Fisher-Yates with Lemire's exact draws, written plainly: position i takes the high
    half of draw * (i + 1), unless the low half is below 2^32 mod (i + 1)."""
    perm, w = list(range(n)), 0
    for i in range(n - 1, 0, -1):
        while True:
            m = int(draws[w]) * (i + 1)
            w += 1
            if m % 2**32 >= 2**32 % (i + 1):
                break
        j = m >> 32
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def test_shuffle_is_fisher_yates_with_exact_draws():
    rng = np.random.default_rng(5)
    draws = rng.integers(0, 2**32, 60, dtype=np.uint32)
    perm = np.arange(30)
    assert kmb.shuffle(perm, draws, 29) == 0
    assert perm.tolist() == _reference_shuffle(30, draws)
    # a rejected draw: at position 2, draw 0 has low half 0 < 2^32 mod 3 = 1
    draws = np.array([0, 1 << 31, 3 << 30], dtype=np.uint32)
    perm = np.arange(3)
    assert kmb.shuffle(perm, draws, 2) == 0
    assert perm.tolist() == _reference_shuffle(3, draws) == [0, 2, 1]


@pytest.mark.parametrize(
    ("split", "stop"), [(0, 39), (1, 38), (5, 34), (17, 22), (18, 22), (40, 0)]
)
def test_shuffle_continues_where_its_draws_ran_out(split, stop):
    """Draws running out (before a position, or inside a rejection: split 18) leave the
    position to continue from; continuing with the other draws is one shuffle with all."""
    rng = np.random.default_rng(6)
    draws = rng.integers(0, 2**32, 60, dtype=np.uint32)
    draws[17] = 0  # rejected at position 22 (2^32 mod 23 = 12), draws[18] taken instead
    whole = row_order(40)
    assert kmb.shuffle(whole, draws, 39) == 0
    assert whole.tolist() == _reference_shuffle(40, draws)
    parts = row_order(40)
    assert kmb.shuffle(parts, draws[:split], 39) == stop
    if stop:
        assert kmb.shuffle(parts, draws[split:], stop) == 0
    assert parts.tolist() == whole.tolist()


def test_shuffle_rows_draws_every_permutation_equally_often():
    from scipy import stats

    rng = np.random.default_rng(5)
    perm = row_order(4)
    counts: dict[tuple, int] = {}
    for _ in range(24_000):  # from whatever order the reused array is in
        shuffle_rows(perm, rng)
        key = tuple(perm.tolist())
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 24
    assert stats.chisquare(list(counts.values())).pvalue > 1e-4
    # the same seed, the same permutation; a large array is a permutation
    a, b = row_order(100_000), row_order(100_000)
    shuffle_rows(a, np.random.default_rng(1))
    shuffle_rows(b, np.random.default_rng(1))
    assert np.array_equal(a, b) and np.array_equal(np.sort(a), np.arange(100_000))
    assert not np.array_equal(a, np.arange(100_000))


def test_row_order_takes_32_bit_indices_where_they_suffice():
    from simbench.fit.optimizers import _index_dtype

    assert row_order(5).tolist() == [0, 1, 2, 3, 4] and row_order(5).dtype == np.int32
    assert _index_dtype(2**31) is np.int32  # indices up to 2^31 - 1
    assert _index_dtype(2**31 + 1) is np.int64


def test_shuffle_rows_refuses_more_than_2_32_rows():
    huge = np.broadcast_to(np.zeros(1, np.int64), (2**32 + 1,))  # no memory behind it
    with pytest.raises(ValueError, match="at most 2\\^32 rows"):
        shuffle_rows(huge, np.random.default_rng(0))


def test_minibatch_epoch_stops_before_a_non_finite_step():
    rng = np.random.default_rng(0)
    n, p = 40, 2
    X = rng.normal(size=(n, p))
    y = rng.poisson(1.0, n).astype(float)
    obj = Objective([p, 1], (), links.get("log"), losses.get("poisson"), X, y, None, None)
    theta = np.array([800.0, 0.0, 0.0])  # exp(800) overflows
    before = theta.copy()
    t, ok = obj.minibatch_epoch(
        theta,
        row_order(n),
        8,
        NO_MASK,
        1.0,
        kmb.OPT_SGD,
        (0.1, 0, 0, 0, 0),
        np.zeros(3),
        np.zeros(3),
        0,
    )
    assert not ok and t == 0
    assert np.array_equal(theta, before)


# ---- determinism ------------------------------------------------------------------------------


def test_results_do_not_depend_on_the_thread_count():
    import numba
    from threadpoolctl import threadpool_limits

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    rng = np.random.default_rng(6)
    n, p = 9000, 6
    X = rng.normal(size=(n, p))
    y = rng.poisson(1.5, n).astype(float)
    w = rng.uniform(0.5, 2, n)
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            out = []
            for hidden in ([], [8, 4]):
                obj = Objective(
                    [p, *hidden, 1],
                    ["tanh"] * len(hidden),
                    links.get("log"),
                    losses.get("poisson"),
                    X,
                    y,
                    w,
                    None,
                )
                theta = np.random.default_rng(1).normal(0, 0.3, obj.n_params)
                g = np.empty(obj.n_params)
                out.append((obj.loss_grad(theta, g), g.copy()))
            results.append(out)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for (f1, g1), (f2, g2) in zip(*results, strict=True):
        assert f1 == f2
        assert np.array_equal(g1, g2)


def test_parallel_and_serial_chunk_runs_are_bit_identical():
    rng = np.random.default_rng(7)
    n, p = 7000, 5
    X = rng.normal(size=(n, p))
    y = rng.poisson(1.0, n).astype(float)
    w = rng.uniform(0.5, 2, n)
    theta = rng.normal(0, 0.2, p + 1)
    args = (codes.FAMILY_POISSON, 0.0, codes.LINK_LOG, 0.0)
    nch = -(-n // k.CHUNK)
    for logy in (EMPTY, np.log(np.where(y > 0, y, 1.0))):
        outs = []
        for run in (k._glm_chunks_serial, k._glm_chunks_parallel):
            parts, totals = np.empty((nch, p + 1)), np.empty(nch)
            run(theta, X, y, w, EMPTY, logy, *args, True, parts, totals)
            outs.append((parts, totals))
        assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])
    size = -(-n // nch)
    res = []
    for run in (k._newton_chunks_serial, k._newton_chunks_parallel):
        gs, Hs, tt = np.empty((nch, p + 1)), np.empty((nch, p + 1, p + 1)), np.empty(nch)
        run(theta, X, y, w, EMPTY, size, *args, codes.HESS_OBSERVED, gs, Hs, tt)
        res.append((gs, Hs, tt))
    assert all(np.array_equal(a, b) for a, b in zip(*res, strict=True))
    e1, e2 = np.empty(n), np.empty(n)
    k._glm_eta_serial(theta, X, EMPTY, e1)
    k._glm_eta_parallel(theta, X, EMPTY, e2)
    assert np.array_equal(e1, e2)


def test_a_small_problem_never_compiles_the_parallel_variants():
    """On two threads, full-data evaluations and compiled runs of a small problem take the
    serial variants, first call included: the parallel ones are compiled only by a call
    large enough to run them (and a compiled run given SERIAL never reaches them)."""
    import numba

    from simbench.fit.network import train
    from simbench.kernels import training as kt

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    rng = np.random.default_rng(8)
    X = rng.normal(size=(10, 2))
    X.flags.writeable = False  # a kind of array not seen before in this process
    y = rng.poisson(1.0, 10).astype(float)
    numba.set_num_threads(2)
    try:
        assert k.region_threads("loss", 1, X, y, EMPTY, EMPTY) == 1
        watched = (k._glm_chunks_parallel, k._newton_chunks_parallel, kt.newton_run)
        watched += (kt.glm_epochs,)
        seen = {f: set(f.signatures) for f in watched}
        k.glm_loss_grad(np.zeros(3), X, y, EMPTY, EMPTY, 3, 0.0, 1, 0.0, np.empty(3))
        for optimizer in ("newton", "adam", "lbfgs"):
            fit = train(X, y, {"hidden": [], "optimizer": optimizer, "epochs": 3}, "poisson")
            assert fit.status in ("ok", "not_converged")
        for f in (k._glm_chunks_parallel, k._newton_chunks_parallel):
            assert set(f.signatures) == seen[f], f"{f.__name__} was compiled"
        # the compiled runs of this problem were typed with threads=None (SERIAL): whatever
        # this process compiled before, it compiled no threaded variant now
        for run in (kt.newton_run, kt.glm_epochs):
            assert any(isinstance(sig[-1], numba.types.NoneType) for sig in run.signatures)
            added = set(run.signatures) - seen[run]
            assert all(isinstance(sig[-1], numba.types.NoneType) for sig in added), added
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


# ---- configurations -------------------------------------------------------------------------


def test_config_defaults_and_canonical_names():
    cfg = NetworkConfig.from_dict(
        {
            "hidden": [32, 16],
            "activation": "Tanh",
            "output": "exp",
            "loss": "mse",
            "optimizer": "ADAM",
        }
    )
    assert cfg.hidden == (32, 16)
    assert cfg.activation == ("tanh", "tanh")
    assert (cfg.output, cfg.loss, cfg.optimizer) == ("log", "squared_error", "adam")
    assert cfg.lr == 1e-3 and cfg.epochs == 200 and cfg.batch_size is None
    assert NetworkConfig().hidden == () and NetworkConfig().activation == ()
    assert NetworkConfig(optimizer="lbfgs").lr is None
    assert NetworkConfig(optimizer="gd").lr == 0.1
    assert NetworkConfig(output="power(0.5)").output == "sqrt"
    assert NetworkConfig(output="power(0.3)").output == "power(0.3)"
    assert NetworkConfig(loss="tweedie(1.3)").loss == "tweedie(1.3)"
    assert NetworkConfig(hidden=[4, 4], activation=["relu", "sigmoid"]).activation == (
        "relu",
        "sigmoid",
    )


def test_config_round_trips_and_hashes():
    cfg = NetworkConfig.from_dict({"name": "x", "hidden": [4], "optimizer": "sgd", "batch_size": 8})
    again = NetworkConfig.from_dict(cfg.to_dict())
    assert again == cfg and hash(again) == hash(cfg) and again.id == cfg.id
    assert len(cfg.id) == 12 and int(cfg.id, 16) >= 0
    assert cfg.replace(lr=0.5).id != cfg.id
    assert len({cfg, again, cfg.replace(epochs=3)}) == 2
    assert cfg.replace(optimizer="adam").lr == 1e-3


@pytest.mark.parametrize(
    ("d", "fragment"),
    [
        ({"hiden": [3]}, "did you mean 'hidden'"),
        ({"hidden": [3], "optimizer": "newton"}, "without hidden layers"),
        ({"hidden": [3], "optimizer": "irls"}, "without hidden layers"),
        ({"optimizer": "irls", "output": "exp"}, "must be 'matched'"),
        ({"optimizer": "irls", "l2": 0.1}, "no penalty"),
        ({"optimizer": "lbfgs", "batch_size": 32}, "uses the full data"),
        ({"dropout": 0.5}, "has none"),
        ({"hidden": [3], "dropout": 0.5, "optimizer": "lbfgs"}, "deterministic"),
        ({"optimizer": "newton", "loss": "hinge"}, "piecewise linear"),
        ({"lr": -1.0}, "network config key 'lr' must be a number in (0, inf); got -1.0"),
        ({"lr": "fast"}, "key 'lr' must be a number in (0, inf); got 'fast'"),
        ({"epochs": 0}, "key 'epochs' must be an integer >= 1; got 0"),
        ({"epochs": 2.5}, "key 'epochs' must be an integer >= 1; got 2.5"),
        ({"hidden": [0]}, "key 'hidden' must be an integer >= 1; got 0"),
        ({"hidden": [2, 2], "activation": ["relu"]}, "one per hidden layer"),
        ({"dropout": 1.0, "hidden": [2]}, "key 'dropout' must be a number in [0, 1); got 1.0"),
        ({"early_stopping": "yes"}, "early_stopping"),
        ({"init": "glorrot"}, "did you mean 'glorot'"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"beta2": 1.0}, "beta2"),
    ],
)
def test_config_refuses_with_a_clear_message(d, fragment):
    with pytest.raises(ValidationError, match=None) as info:
        NetworkConfig.from_dict(d)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("d", "fragment"),
    [
        ({"optimizer": "adamw"}, "optimizer = 'adamw'"),
        ({"output": "lgo"}, "did you mean 'log'"),
        ({"loss": "hinj"}, "did you mean 'hinge'"),
        ({"hidden": [2], "activation": "rellu"}, "did you mean 'relu'"),
    ],
)
def test_config_unknown_names_suggest_the_closest(d, fragment):
    with pytest.raises(UnknownNameError) as info:
        NetworkConfig.from_dict(d)
    assert fragment in str(info.value)


def test_resolve_matches_the_scenario_and_refuses_inapplicable_losses():
    cfg = NetworkConfig()
    out, loss = cfg.resolve("gamma")
    assert out == links.get("inverse") and loss == losses.get("gamma")
    out, loss = cfg.resolve("bernoulli", "cloglog")
    assert out.name == "cloglog" and loss.name == "bernoulli"
    assert cfg.resolve("negative_binomial(0.5)")[1] == losses.get("negative_binomial(0.5)")
    assert NetworkConfig(output="relu", loss="hinge").resolve("bernoulli") == (
        links.get("relu"),
        losses.get("hinge"),
    )
    with pytest.raises(ValidationError, match="hinge"):
        NetworkConfig(loss="hinge").resolve("poisson")
    with pytest.raises(ValidationError, match="needs the family"):
        cfg.resolve(None)
    with pytest.raises(ValidationError, match="logit"):
        cfg.resolve("poisson", "logit")


def test_optimizer_registry_lists_every_method():
    assert optimizers.names() == [
        "irls",
        "newton",
        "lbfgs",
        "gd",
        "sgd",
        "momentum",
        "nesterov",
        "adam",
    ]
    assert optimizers.get("L-BFGS").name == "lbfgs"
    assert optimizers.get("nag").name == "nesterov"
    assert all(optimizers.descriptions()[name] for name in optimizers.names())
    assert not optimizers.get("newton").hidden_layers and optimizers.get("adam").minibatch
    with pytest.raises(UnknownNameError, match="did you mean 'adam'"):
        optimizers.get("addam")
