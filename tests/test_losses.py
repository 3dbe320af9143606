"""Loss kernels and the loss vocabulary.

The kernels are checked against the plain NumPy/SciPy reference (``reference.losses``),
against 4th-order central finite differences of themselves (every loss x output activation
pair, inputs drawn inside its domain), against scikit-learn's ``sklearn._loss`` where it has
the same quantity, and against identities: fused = generic, expected Hessian = observed
Hessian averaged over y, weights and offsets act exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import losses as ref
from reference.links import LINK_NAMES

from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes as C
from simbench.kernels import losses as K
from simbench.kernels.links import link_h

OBS, EXP = C.HESS_OBSERVED, C.HESS_EXPECTED
EMPTY = np.empty(0)
EPS = float(np.finfo(np.float64).eps)  # one unit in the last place of 1

FAMILIES = list(range(8))
PLAIN = [
    C.LOSS_SQUARED_ERROR,
    C.LOSS_HINGE,
    C.LOSS_SQUARED_HINGE,
    C.LOSS_LOGISTIC,
    C.LOSS_PERCEPTRON,
]
MARGIN = PLAIN[1:]
LINKS = list(range(13))
BINARY_LINKS = [C.LINK_LOGIT, C.LINK_PROBIT, C.LINK_CLOGLOG, C.LINK_LOGLOG, C.LINK_CAUCHIT]
POWER_LIKE = [C.LINK_INVERSE, C.LINK_INVERSE_SQUARED, C.LINK_SQRT, C.LINK_POWER, C.LINK_RELU]
LOSS_NAMES = {
    0: "gaussian",
    1: "bernoulli",
    2: "binomial",
    3: "poisson",
    4: "gamma",
    5: "inverse_gaussian",
    6: "negative_binomial",
    7: "tweedie",
    20: "squared_error",
    21: "hinge",
    22: "squared_hinge",
    23: "logistic",
    24: "perceptron",
}
# link names indexed by link code
assert all(getattr(C, f"LINK_{name.upper()}") == i for i, name in enumerate(LINK_NAMES))

# Where mu is drawn: the loss's box intersected with the output activation's range, kept a
# little inside both so that eta = g(mu) and the finite-difference stencil stay in the domain.
MU_BOX = {
    C.FAMILY_GAUSSIAN: (-4.0, 4.0),
    C.FAMILY_BERNOULLI: (0.03, 0.97),
    C.FAMILY_BINOMIAL: (0.03, 0.97),
    C.FAMILY_POISSON: (0.05, 20.0),
    C.FAMILY_GAMMA: (0.05, 20.0),
    C.FAMILY_INVERSE_GAUSSIAN: (0.1, 10.0),
    C.FAMILY_NEGATIVE_BINOMIAL: (0.05, 20.0),
    C.FAMILY_TWEEDIE: (0.05, 20.0),
    C.LOSS_SQUARED_ERROR: (-4.0, 4.0),
    **{code: (-3.0, 3.0) for code in MARGIN},
}
LINK_RANGE = {
    C.LINK_IDENTITY: (-np.inf, np.inf),
    **{code: (0.03, 0.97) for code in BINARY_LINKS},
    **{
        code: (0.05, np.inf)
        for code in (C.LINK_LOG, *POWER_LIKE, C.LINK_SOFTPLUS)
        if code not in BINARY_LINKS
    },
}
POWERS = [-1.5, -0.5, 0.25, 0.75, 1.5, 3.0]

# every (loss, output activation) pair: each link's range meets each loss's box
PAIRS = [(lc, hc) for lc in FAMILIES + PLAIN for hc in LINKS]
PAIR_IDS = [f"{LOSS_NAMES[lc]}-{LINK_NAMES[hc]}" for lc, hc in PAIRS]
FUSED = [
    (C.FAMILY_POISSON, C.LINK_LOG),
    (C.FAMILY_BERNOULLI, C.LINK_LOGIT),
    (C.FAMILY_BINOMIAL, C.LINK_LOGIT),
    (C.FAMILY_GAUSSIAN, C.LINK_IDENTITY),
    (C.FAMILY_GAMMA, C.LINK_LOG),
]
FUSED_IDS = [f"{LOSS_NAMES[lc]}-{LINK_NAMES[hc]}" for lc, hc in FUSED]


def approx(expected, rel=1e-15, abs=0.0):
    """pytest.approx without its default absolute tolerance of 1e-12, which would hide
    every error in a small value."""
    return pytest.approx(expected, rel=rel, abs=abs)


def ev(lc, a, phi, hc, lam, y, eta, kind=OBS, fn=K.loss_eval):
    """Scalar kernel with the argument types fixed (one compiled specialisation)."""
    return fn(int(lc), float(a), float(phi), int(hc), float(lam), float(y), float(eta), int(kind))


def lgh(lc, a, phi, hc, lam, y, eta, weights=EMPTY, offset=EMPTY, kind=OBS, hess=True, fn=None):
    fn = fn or K.loss_grad_hess
    grad = np.empty(len(y))
    hess_out = np.empty(len(y)) if hess else EMPTY
    total = fn(int(lc), float(a), float(phi), int(hc), float(lam), int(kind), y, eta, weights,
               offset, grad, hess_out)  # fmt: skip
    return total, grad, hess_out


def mu_interval(lc, hc):
    lo, hi = MU_BOX[lc]
    rlo, rhi = LINK_RANGE[hc]
    return max(lo, rlo), min(hi, rhi)


def mu_from_unit(u, lo, hi):
    """Map u in [0, 1] into [lo, hi]: log-uniform on positive ranges, uniform otherwise."""
    if lo > 0:
        return float(lo * (hi / lo) ** u)
    return float(lo + u * (hi - lo))


def y_strategy(lc):
    if lc in (C.FAMILY_GAUSSIAN, C.LOSS_SQUARED_ERROR):
        return st.floats(-5.0, 5.0)
    if lc == C.FAMILY_BERNOULLI or lc in MARGIN:
        return st.sampled_from([0.0, 1.0])
    if lc == C.FAMILY_BINOMIAL:
        return st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.01, 0.99))
    if lc in (C.FAMILY_POISSON, C.FAMILY_NEGATIVE_BINOMIAL):
        return st.integers(0, 40).map(float)
    if lc == C.FAMILY_TWEEDIE:
        return st.one_of(st.just(0.0), st.floats(0.01, 30.0))
    return st.floats(0.05, 30.0)  # gamma, inverse Gaussian


def param_strategy(lc):
    if lc == C.FAMILY_NEGATIVE_BINOMIAL:
        return st.floats(0.05, 3.0)
    if lc == C.FAMILY_TWEEDIE:
        return st.floats(1.05, 1.95)
    return st.just(0.0)


def draw_case(data, lc, hc):
    """(a, phi, lam, y, eta) with eta = g(mu) for mu inside the pair's domain."""
    a = data.draw(param_strategy(lc), label="a")
    phi = data.draw(st.floats(0.3, 3.0), label="phi") if lc < 20 else 1.0
    lam = data.draw(st.sampled_from(POWERS), label="lam") if hc == C.LINK_POWER else 0.0
    lo, hi = mu_interval(lc, hc)
    mu = mu_from_unit(data.draw(st.floats(0.0, 1.0), label="u"), lo, hi)
    y = data.draw(y_strategy(lc), label="y")
    eta = float(ref.link_g(hc, lam, mu))
    return a, phi, lam, y, eta


def fd_step(lc, hc, lam, eta):
    """Step of the difference stencil, tied to the scale on which the loss varies in eta.

    That scale is 1, or less near a singularity: |eta| for the power-type links (and relu's
    kink), and for families with a bounded mean space the distance of mu to its edge
    divided by h'(eta).
    """
    mu, h1, _h2 = (float(v) for v in ref.link_h012(hc, lam, eta))
    scale = 1.0
    if hc in POWER_LIKE:
        scale = min(scale, abs(eta))
    if lc in (C.FAMILY_BERNOULLI, C.FAMILY_BINOMIAL):
        scale = min(scale, min(mu, 1.0 - mu) / abs(h1))
    elif 3 <= lc < 20:
        scale = min(scale, mu / abs(h1))
    return 1e-3 * scale


def fd4(f, x, h):
    """4th-order central difference f'(x)."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def away_from_kinks(lc, hc, lam, y, eta, h):
    """Margin losses: the stencil must not straddle a kink of L or of L_mu."""
    if lc not in MARGIN:
        return True
    t = 2 * y - 1
    z = t * ref.link_h012(hc, lam, np.array([eta - 2 * h, eta, eta + 2 * h]))[0]
    kink = 0.0 if lc == C.LOSS_PERCEPTRON else 1.0
    gap = z - kink
    return bool(np.all(gap > 0.02) or np.all(gap < -0.02))


@pytest.fixture(scope="module", autouse=True)
def warm_kernels():
    """Compile (or load) every kernel once, before hypothesis starts timing examples."""
    y = np.array([1.0, 2.0])
    eta = np.array([0.1, 0.2])
    for fn in (K.loss_eval, K.loss_eval_generic):
        ev(3, 0.0, 1.0, 1, 0.0, 1.0, 0.1, OBS, fn)
    for fn in (K.loss_grad_hess, K.loss_grad_hess_generic):
        lgh(3, 0.0, 1.0, 1, 0.0, y, eta, fn=fn)
        lgh(3, 0.0, 1.0, 1, 0.0, y, eta, np.ones(2), np.zeros(2), fn=fn)
    K.loss_sum(3, 0.0, 1.0, 1, 0.0, y, eta, EMPTY, EMPTY)
    K.loss_value(3, 0.0, 1.0, 1, 0.0, 1.0, 0.1)
    link_h(1, 0.0, 0.1)


# ---- kernels against the reference -----------------------------------------------------------


def grid_case(lc, hc, rng, n=64):
    """Arrays (a, phi, lam, y, eta) inside the pair's domain, for reference comparisons."""
    a = {C.FAMILY_NEGATIVE_BINOMIAL: 0.7, C.FAMILY_TWEEDIE: 1.4}.get(lc, 0.0)
    phi = 1.7 if lc < 20 else 1.0
    lam = 0.4 if hc == C.LINK_POWER else 0.0
    lo, hi = mu_interval(lc, hc)
    mu = np.array([mu_from_unit(u, lo, hi) for u in rng.random(n)])
    if lc in (C.FAMILY_GAUSSIAN, C.LOSS_SQUARED_ERROR):
        y = rng.normal(mu, 1.0)
    elif lc == C.FAMILY_BERNOULLI or lc in MARGIN:
        y = (rng.random(n) < 0.5).astype(float)
    elif lc == C.FAMILY_BINOMIAL:
        y = rng.integers(0, 6, n) / 5.0
    elif lc in (C.FAMILY_POISSON, C.FAMILY_NEGATIVE_BINOMIAL):
        y = rng.poisson(mu).astype(float)
    elif lc == C.FAMILY_TWEEDIE:
        y = np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, mu / 2))
    else:
        y = rng.gamma(3.0, mu / 3)
    return a, phi, lam, y, ref.link_g(hc, lam, mu)


def assert_close(actual, expected, rtol, scale=1.0, what=""):
    """|actual - expected| <= rtol * max(|expected|, scale), elementwise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    bound = rtol * np.maximum(np.abs(expected), scale)
    err = np.abs(actual - expected)
    bad = ~(err <= bound)
    worst = int(np.argmax(np.where(bad, err - bound, -np.inf))) if bad.any() else 0
    assert not bad.any(), (
        f"{what}: {bad.sum()} mismatches; worst at {worst}: "
        f"{actual.ravel()[worst]!r} vs {expected.ravel()[worst]!r}"
    )


@pytest.mark.parametrize(("lc", "hc"), PAIRS, ids=PAIR_IDS)
def test_kernels_match_reference(lc, hc):
    rng = np.random.default_rng(1000 * lc + hc)
    a, phi, lam, y, eta = grid_case(lc, hc, rng)
    for kind in (OBS, EXP):
        v, d1, d2 = ref.loss(lc, a, phi, hc, lam, y, eta, expected=kind == EXP)
        got = np.array(
            [ev(lc, a, phi, hc, lam, yi, ei, kind) for yi, ei in zip(y, eta, strict=True)]
        )
        # the reference forms the deviance by cancelling closed forms: allow for their error
        vscale = 1e-3 * (1.0 + np.abs(y) + np.abs(ref.link_h012(hc, lam, eta)[0]))
        assert_close(got[:, 0], v, 1e-11, vscale, "value")
        assert_close(got[:, 1], d1, 1e-11, 1e-3, "d1")
        assert_close(got[:, 2], d2, 1e-11, 1e-3, "d2")
        # the array kernel, with weights and an offset, against the same numbers
        w = rng.uniform(0.5, 2.0, y.size)
        off = rng.normal(0.0, 0.1, y.size)
        total, g, h = lgh(lc, a, phi, hc, lam, y, eta - off, w, off, kind)
        etap = (eta - off) + off
        rv, rg, rh = ref.loss_grad_hess(lc, a, phi, hc, lam, y, etap, w, None, kind == EXP)
        assert_close(total, rv, 1e-11, np.sum(w * vscale), "total")
        assert_close(g, rg, 1e-11, 1e-3, "grad")
        assert_close(h, rh, 1e-11, 1e-3, "hess")
        assert K.loss_sum(lc, a, phi, hc, lam, y, eta - off, w, off) == approx(
            total, rel=1e-14, abs=1e-300
        )


@pytest.mark.parametrize(("lc", "hc"), PAIRS, ids=PAIR_IDS)
@settings(max_examples=30)  # x 169 pairs: the file's time budget, in every profile
@given(data=st.data())
def test_derivatives_match_finite_differences(lc, hc, data):
    """dℓ/dη against the stencil on ℓ, d²ℓ/dη² against the stencil on dℓ/dη.

    Tolerance: 1e-6 relative, plus 1e-11 * size / h absolute for the stencil's rounding
    error (size bounds the magnitude of the evaluated terms; h is the step).
    """
    a, phi, lam, y, eta = draw_case(data, lc, hc)
    h = fd_step(lc, hc, lam, eta)
    assume(away_from_kinks(lc, hc, lam, y, eta, h))
    value, d1, d2 = ev(lc, a, phi, hc, lam, y, eta)
    mu = float(ref.link_h012(hc, lam, eta)[0])
    # rounding of the evaluated function, divided by the step, bounds what the stencil can see
    size = (1.0 + abs(value) + abs(y) + abs(mu) + abs(d1)) / min(phi, 1.0)
    fd1 = fd4(lambda x: ev(lc, a, phi, hc, lam, y, x)[0], eta, h)
    assert abs(fd1 - d1) <= 1e-6 * abs(d1) + 1e-11 * size / h, (fd1, d1)
    fd2 = fd4(lambda x: ev(lc, a, phi, hc, lam, y, x)[1], eta, h)
    assert abs(fd2 - d2) <= 1e-6 * abs(d2) + 1e-11 * size / h, (fd2, d2)


# ---- expected Hessians -------------------------------------------------------------------------

NLL_PAIRS = [(lc, hc) for lc, hc in PAIRS if lc < 20]
NLL_IDS = [f"{LOSS_NAMES[lc]}-{LINK_NAMES[hc]}" for lc, hc in NLL_PAIRS]


@pytest.mark.parametrize(("lc", "hc"), NLL_PAIRS, ids=NLL_IDS)
def test_expected_hessian_is_observed_at_the_mean(lc, hc):
    # the observed Hessian of a family NLL is linear in y, so E_y[observed] = observed(y = mu)
    a, phi, lam, _y, eta = grid_case(lc, hc, np.random.default_rng(lc + 50 * hc), n=32)
    for e in eta:
        mu = link_h(hc, lam, e)
        _v, d1, expected = ev(lc, a, phi, hc, lam, mu, e, EXP)
        _v, _d1, observed = ev(lc, a, phi, hc, lam, mu, e, OBS)
        assert abs(d1) <= 1e-12 * (1.0 + abs(expected))
        assert observed == approx(expected, rel=1e-12)
        h1 = float(ref.link_h012(hc, lam, e)[1])
        fisher = h1 * h1 / (phi * float(ref.variance(lc, a, mu)))
        assert expected == approx(fisher, rel=1e-12)


def _sample(lc, mu, rng, n):
    if lc == C.FAMILY_POISSON:
        return rng.poisson(mu, n).astype(float)
    if lc == C.FAMILY_BERNOULLI:
        return (rng.random(n) < mu).astype(float)
    if lc == C.FAMILY_GAMMA:
        return rng.gamma(2.0, mu / 2.0, n)
    if lc == C.FAMILY_NEGATIVE_BINOMIAL:  # alpha = 0.5: gamma-Poisson mixture
        return rng.poisson(rng.gamma(2.0, mu / 2.0, n)).astype(float)
    if lc == C.FAMILY_INVERSE_GAUSSIAN:
        return rng.wald(mu, 1.0, n)
    return rng.normal(mu, 1.0, n)


@pytest.mark.parametrize(
    ("lc", "hc", "eta"),
    [
        (C.FAMILY_POISSON, C.LINK_IDENTITY, 2.5),
        (C.FAMILY_POISSON, C.LINK_SQRT, 1.3),
        (C.FAMILY_BERNOULLI, C.LINK_PROBIT, 0.4),
        (C.FAMILY_BERNOULLI, C.LINK_CLOGLOG, -0.3),
        (C.FAMILY_GAMMA, C.LINK_INVERSE, 0.8),
        (C.FAMILY_NEGATIVE_BINOMIAL, C.LINK_LOG, 1.1),
        (C.FAMILY_INVERSE_GAUSSIAN, C.LINK_LOG, 0.2),
        (C.FAMILY_GAUSSIAN, C.LINK_LOG, 0.5),
        (C.FAMILY_POISSON, C.LINK_SOFTPLUS, 0.7),
    ],
)
def test_expected_hessian_is_the_mean_observed_hessian(lc, hc, eta):
    a = 0.5 if lc == C.FAMILY_NEGATIVE_BINOMIAL else 0.0
    n = 200_000
    mu = link_h(hc, 0.0, eta)
    y = _sample(lc, mu, np.random.default_rng(7), n)
    _t, _g, observed = lgh(lc, a, 1.0, hc, 0.0, y, np.full(n, eta), kind=OBS)
    _v, _d1, expected = ev(lc, a, 1.0, hc, 0.0, mu, eta, EXP)
    se = observed.std() / np.sqrt(n)
    assert abs(observed.mean() - expected) <= 5 * se + 1e-12, (observed.mean(), expected, se)


@pytest.mark.parametrize("lc", PLAIN, ids=[LOSS_NAMES[c] for c in PLAIN])
@pytest.mark.parametrize("hc", [C.LINK_IDENTITY, C.LINK_LOGIT, C.LINK_LOG])
def test_gauss_newton_term_of_plain_losses(lc, hc):
    rng = np.random.default_rng(lc + 100 * hc)
    _a, _phi, _lam, y, eta = grid_case(lc, hc, rng)
    mu, h1, h2 = ref.link_h012(hc, 0.0, eta)
    _L, l1, l2 = ref.plain_terms(lc, y, mu)
    _t, g, gn = lgh(lc, 0.0, 1.0, hc, 0.0, y, eta, kind=EXP)
    _t, _g, obs = lgh(lc, 0.0, 1.0, hc, 0.0, y, eta, kind=OBS)
    assert_close(gn, l2 * h1**2, 1e-12, 1e-3, "Gauss-Newton")
    assert_close(obs - gn, l1 * h2, 1e-12, 1e-3, "observed - Gauss-Newton")
    assert_close(g, l1 * h1, 1e-12, 1e-3, "gradient")


# ---- fused paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(("lc", "hc"), FUSED, ids=FUSED_IDS)
def test_fused_pairs_take_the_fused_path(lc, hc):
    assert K.fused_pair(lc, hc) != K.PAIR_NONE
    assert K.fused_pair(C.FAMILY_TWEEDIE, C.LINK_LOG) == K.PAIR_NONE
    assert K.fused_pair(C.LOSS_LOGISTIC, C.LINK_IDENTITY) == K.PAIR_NONE


@pytest.mark.parametrize(("lc", "hc"), FUSED, ids=FUSED_IDS)
@given(data=st.data())
def test_fused_equals_generic(lc, hc, data):
    eta = data.draw(st.floats(-20.0, 20.0) if hc == C.LINK_IDENTITY else st.floats(-5.0, 5.0))
    y = data.draw(y_strategy(lc))
    phi = data.draw(st.floats(0.3, 3.0))
    for kind in (OBS, EXP):
        fused = ev(lc, 0.0, phi, hc, 0.0, y, eta, kind)
        generic = ev(lc, 0.0, phi, hc, 0.0, y, eta, kind, fn=K.loss_eval_generic)
        for f, g in zip(fused, generic, strict=True):
            assert abs(f - g) <= 1e-12 * max(1.0, abs(g)), (fused, generic)
    assert K.loss_value(lc, 0.0, phi, hc, 0.0, y, eta) == approx(
        K.loss_value_generic(lc, 0.0, phi, hc, 0.0, y, eta), rel=1e-12, abs=1e-12
    )


def check_fused_loop(lc, hc, seed, rtol, floor):
    """The fused loop of a pair against the generic loop (weights, offsets, both Hessian
    kinds): the total to 1e-12, the derivatives to ``rtol`` relative to max(|generic|,
    ``floor``), and the value-only loop against the total."""
    rng = np.random.default_rng(seed)
    _a, phi, _lam, y, eta = grid_case(lc, hc, rng, n=2000)
    w = rng.uniform(0.0, 2.0, y.size)
    off = rng.normal(0.0, 0.2, y.size)
    for kind in (OBS, EXP):
        tf, gf, hf = lgh(lc, 0.0, phi, hc, 0.0, y, eta, w, off, kind)
        tg, gg, hg = lgh(lc, 0.0, phi, hc, 0.0, y, eta, w, off, kind, fn=K.loss_grad_hess_generic)
        assert tf == approx(tg, rel=1e-12)
        assert_close(gf, gg, rtol, floor, "grad")
        assert_close(hf, hg, rtol, floor, "hess")
        assert K.loss_sum(lc, 0.0, phi, hc, 0.0, y, eta, w, off) == approx(tf, rel=1e-14)


@pytest.mark.parametrize(("lc", "hc"), FUSED, ids=FUSED_IDS)
def test_fused_loop_equals_generic_loop(lc, hc):
    check_fused_loop(lc, hc, 11, 1e-12, 1.0)


# ---- Bernoulli/binomial through CDF output activations ---------------------------------------

CDF_PAIRS = [
    (lc, hc)
    for lc in (C.FAMILY_BERNOULLI, C.FAMILY_BINOMIAL)
    for hc in (C.LINK_PROBIT, C.LINK_CLOGLOG, C.LINK_LOGLOG, C.LINK_CAUCHIT)
]
CDF_IDS = [f"{LOSS_NAMES[lc]}-{LINK_NAMES[hc]}" for lc, hc in CDF_PAIRS]
CDF_PAIR_CODE = {
    C.LINK_PROBIT: K.PAIR_BERNOULLI_PROBIT,
    C.LINK_CLOGLOG: K.PAIR_BERNOULLI_CLOGLOG,
    C.LINK_LOGLOG: K.PAIR_BERNOULLI_LOGLOG,
    C.LINK_CAUCHIT: K.PAIR_BERNOULLI_CAUCHIT,
}
# where the generic path is itself accurate (min(mu, 1 - mu) >= 1e-3 or so): it forms 1 - mu
CDF_MODERATE = {
    C.LINK_PROBIT: (-3.0, 3.0),
    C.LINK_CLOGLOG: (-4.0, 1.5),
    C.LINK_LOGLOG: (-1.5, 4.0),
    C.LINK_CAUCHIT: (-8.0, 8.0),
}


@pytest.mark.parametrize(("lc", "hc"), CDF_PAIRS, ids=CDF_IDS)
def test_cdf_pairs_take_the_fused_path(lc, hc):
    pair = K.fused_pair(lc, hc)
    assert pair == CDF_PAIR_CODE[hc] and K.is_cdf_pair(pair)
    assert not K.is_cdf_pair(K.fused_pair(lc, C.LINK_LOGIT))
    assert K.fused_pair(C.FAMILY_POISSON, hc) == K.PAIR_NONE


@pytest.mark.parametrize(("lc", "hc"), CDF_PAIRS, ids=CDF_IDS)
@given(data=st.data())
def test_cdf_fused_equals_generic_at_moderate_eta(lc, hc, data):
    """rtol 1e-12 on the value, 1e-10 on the derivatives, relative to max(|generic|, 1e-4),
    plus four units in the last place of 1: the floor admits the rounding of O(1) terms where
    a derivative crosses 0 (the cauchit curvature does) or a proportion's loss vanishes at its
    minimum (a difference of O(1) terms, exact to a few ulps of 1: 1.05e-16 was seen for
    binomial-loglog, above a floor of 1e-12 x 1e-4 alone)."""
    eta = data.draw(st.floats(*CDF_MODERATE[hc]), label="eta")
    y = data.draw(y_strategy(lc), label="y")
    phi = data.draw(st.floats(0.3, 3.0), label="phi")
    for kind in (OBS, EXP):
        fused = ev(lc, 0.0, phi, hc, 0.0, y, eta, kind)
        generic = ev(lc, 0.0, phi, hc, 0.0, y, eta, kind, fn=K.loss_eval_generic)
        for f, g, rtol in zip(fused, generic, (1e-12, 1e-10, 1e-10), strict=True):
            assert abs(f - g) <= rtol * max(abs(g), 1e-4) + 4 * EPS, (kind, fused, generic)
    assert K.loss_value(lc, 0.0, phi, hc, 0.0, y, eta) == fused[0]


@pytest.mark.parametrize(("lc", "hc"), CDF_PAIRS, ids=CDF_IDS)
def test_cdf_fused_loop_equals_generic_loop(lc, hc):
    check_fused_loop(lc, hc, 12, 1e-10, 1e-4)


CDF_EXTREME_ETA = [-1000.0, -40.0, -38.5, -10.0, -1e-3, 10.0, 40.0, 1000.0]


@pytest.mark.parametrize(("lc", "hc"), CDF_PAIRS, ids=CDF_IDS)
def test_cdf_pairs_at_extreme_eta_match_mpmath(lc, hc):
    """Finite and within 1e-12 of a 60-digit reference wherever the true value is a normal
    float; 0 (to 1e-300) where it underflows and inf where it overflows."""
    ys = [0.0, 1.0] if lc == C.FAMILY_BERNOULLI else [0.0, 1.0, 0.3, 0.999]
    checked = 0
    for y in ys:
        for eta in CDF_EXTREME_ETA:
            for kind in (OBS, EXP):
                got = ev(lc, 0.0, 1.0, hc, 0.0, y, eta, kind)
                want = ref.bernoulli_cdf_mp(hc, y, eta, expected=kind == EXP)
                for g, w, what in zip(got, want, ("value", "d1", "d2"), strict=True):
                    w = float(w)  # rounds to 0 below the subnormals, to inf above 1.8e308
                    where = (LINK_NAMES[hc], y, eta, kind, what, g, w)
                    if np.isinf(w):
                        assert g == w, where
                    else:
                        assert np.isfinite(g), where
                        assert abs(g - w) <= 1e-12 * abs(w) + 1e-300, where
                        checked += abs(w) > 1e-300
    assert checked >= 30  # most of the grid has normal values, so the comparison has teeth


def test_cdf_tails_from_the_problem_statement():
    # cloglog, y = 0, eta = 10: log(1 - mu) = -e^10, so the loss is e^10 (generic path: inf)
    v, d1, d2 = ev(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_CLOGLOG, 0.0, 0.0, 10.0)
    assert (v, d1, d2) == (np.exp(10.0), np.exp(10.0), np.exp(10.0))
    assert np.isinf(ev(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_CLOGLOG, 0.0, 0.0, 10.0,
                       fn=K.loss_eval_generic)[0])  # fmt: skip
    # probit below -38: h' and V underflow, the generic derivatives are nan; the Mills ratio
    # form gives l' = -m and l'' = m (m + eta), m = a + 1/a - 2/a^3 + 10/a^5 - ..., a = -eta
    for eta in (-39.0, -100.0, -1000.0):
        v, d1, d2 = ev(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_PROBIT, 0.0, 1.0, eta)
        assert np.isfinite([v, d1, d2]).all()
        assert d1 == approx(eta + 1.0 / eta, rel=3.0 / eta**4)
        assert d2 == approx(1.0 - 1.0 / eta**2, rel=7.0 / eta**4)
    # the array kernels take the same path
    y = np.array([1.0, 0.0, 1.0, 0.0])
    eta = np.array([-1000.0, 1000.0, 1000.0, -1000.0])
    for hc in (C.LINK_PROBIT, C.LINK_CAUCHIT):
        t, g, h = lgh(C.FAMILY_BERNOULLI, 0.0, 1.0, hc, 0.0, y, eta)
        scalar = [
            ev(C.FAMILY_BERNOULLI, 0.0, 1.0, hc, 0.0, yi, ei) for yi, ei in zip(y, eta, strict=True)
        ]
        np.testing.assert_array_equal(g, [s[1] for s in scalar])
        np.testing.assert_array_equal(h, [s[2] for s in scalar])
        assert np.isfinite(t) and t == approx(sum(s[0] for s in scalar), rel=1e-15)


# ---- weights, offsets, skipped Hessian -------------------------------------------------------

SOME_PAIRS = [
    *FUSED,
    (C.FAMILY_TWEEDIE, C.LINK_LOG),
    (C.FAMILY_BERNOULLI, C.LINK_PROBIT),
    (C.LOSS_HINGE, C.LINK_IDENTITY),
]
SOME_IDS = [f"{LOSS_NAMES[lc]}-{LINK_NAMES[hc]}" for lc, hc in SOME_PAIRS]


@pytest.mark.parametrize(("lc", "hc"), SOME_PAIRS, ids=SOME_IDS)
@pytest.mark.parametrize("generic", [False, True], ids=["dispatch", "generic"])
def test_weight_two_equals_a_duplicated_row(lc, hc, generic):
    fn = K.loss_grad_hess_generic if generic else K.loss_grad_hess
    rng = np.random.default_rng(3)
    a = 1.5 if lc == C.FAMILY_TWEEDIE else 0.0
    _a, phi, lam, y, eta = grid_case(lc, hc, rng, n=50)
    w = np.ones(y.size)
    w[0] = w[10] = 2.0
    # rows 0 and 10 twice, each copy next to its original
    dup = np.insert(np.arange(y.size), [1, 11], [0, 10])
    t1, g1, h1 = lgh(lc, a, phi, hc, lam, y, eta, w, fn=fn)
    t2, g2, h2 = lgh(lc, a, phi, hc, lam, y[dup], eta[dup], fn=fn)
    # 2 l is exact, but s + 2 l and (s + l) + l round differently unless s = 0: the first
    # row doubles bitwise, the sum as a whole to rounding
    assert t1 == approx(t2, rel=1e-15)
    t1, _g, _h = lgh(lc, a, phi, hc, lam, y[:1], eta[:1], w[:1], fn=fn)
    t2, _g, _h = lgh(lc, a, phi, hc, lam, y[[0, 0]], eta[[0, 0]], fn=fn)
    assert t1 == t2
    for i, j in [(0, 0), (10, 11)]:
        assert g1[i] == g2[j] + g2[j + 1] == 2 * g2[j]
        assert h1[i] == h2[j] + h2[j + 1] == 2 * h2[j]
    np.testing.assert_array_equal(np.delete(g2, [1, 12])[w == 1], g1[w == 1])
    # general weights multiply each row's gradient and Hessian exactly
    w = rng.uniform(0.1, 3.0, y.size)
    _t, g0, h0 = lgh(lc, a, phi, hc, lam, y, eta, fn=fn)
    tw, gw, hw = lgh(lc, a, phi, hc, lam, y, eta, w, fn=fn)
    np.testing.assert_array_equal(gw, w * g0)
    np.testing.assert_array_equal(hw, w * h0)
    values = np.array(
        [K.loss_value(lc, a, phi, hc, lam, yi, ei) for yi, ei in zip(y, eta, strict=True)]
    )
    assert tw == approx(np.sum(w * values), rel=1e-13)


@pytest.mark.parametrize(("lc", "hc"), SOME_PAIRS, ids=SOME_IDS)
def test_offset_shifts_eta_exactly(lc, hc):
    rng = np.random.default_rng(5)
    a = 1.5 if lc == C.FAMILY_TWEEDIE else 0.0
    _a, phi, lam, y, eta = grid_case(lc, hc, rng, n=50)
    off = rng.normal(0.0, 0.3, y.size)
    base = eta - off
    t1, g1, h1 = lgh(lc, a, phi, hc, lam, y, base, offset=off)
    t2, g2, h2 = lgh(lc, a, phi, hc, lam, y, base + off)
    assert t1 == t2
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(h1, h2)
    assert K.loss_sum(lc, a, phi, hc, lam, y, base, EMPTY, off) == K.loss_sum(
        lc, a, phi, hc, lam, y, base + off, EMPTY, EMPTY
    )


@pytest.mark.parametrize(("lc", "hc"), SOME_PAIRS, ids=SOME_IDS)
@pytest.mark.parametrize("kind", [OBS, EXP], ids=["observed", "expected"])
def test_empty_hess_out_skips_the_hessian_only(lc, hc, kind):
    rng = np.random.default_rng(9)
    a = 1.5 if lc == C.FAMILY_TWEEDIE else 0.0
    _a, phi, lam, y, eta = grid_case(lc, hc, rng, n=50)
    t1, g1, _h = lgh(lc, a, phi, hc, lam, y, eta, kind=kind)
    t2, g2, h2 = lgh(lc, a, phi, hc, lam, y, eta, kind=kind, hess=False)
    assert h2.size == 0 and t1 == t2
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("generic", [False, True], ids=["dispatch", "generic"])
def test_zero_weight_rows_are_absent(generic):
    fn = K.loss_grad_hess_generic if generic else K.loss_grad_hess
    # gamma-log at y = 0 has an infinite loss; with weight 0 the row must not poison the sum
    y = np.array([1.0, 0.0, 2.0])
    eta = np.array([0.2, 0.3, 0.4])
    w = np.array([1.0, 0.0, 1.5])
    t, g, h = lgh(C.FAMILY_GAMMA, 0.0, 1.0, C.LINK_LOG, 0.0, y, eta, w, fn=fn)
    keep = [0, 2]
    t2, g2, _h2 = lgh(C.FAMILY_GAMMA, 0.0, 1.0, C.LINK_LOG, 0.0, y[keep], eta[keep], w[keep], fn=fn)
    assert t == t2 and g[1] == 0.0 and h[1] == 0.0
    np.testing.assert_array_equal(g[keep], g2)
    assert K.loss_sum(C.FAMILY_GAMMA, 0.0, 1.0, C.LINK_LOG, 0.0, y, eta, w, EMPTY) == (
        approx(t2, rel=1e-14)
    )


def test_dispersion_divides_family_losses_only():
    y, eta = 3.0, 0.4
    for lc, hc in [(C.FAMILY_POISSON, C.LINK_LOG), (C.FAMILY_TWEEDIE, C.LINK_SQRT)]:
        a = 1.5 if lc == C.FAMILY_TWEEDIE else 0.0
        one = np.array(ev(lc, a, 1.0, hc, 0.0, y, eta))
        np.testing.assert_allclose(np.array(ev(lc, a, 2.5, hc, 0.0, y, eta)), one / 2.5, rtol=1e-15)
    for lc in PLAIN:
        yy = 1.0 if lc in MARGIN else y
        plain = ev(lc, 0.0, 1.0, C.LINK_LOG, 0.0, yy, eta)
        assert ev(lc, 0.0, 2.5, C.LINK_LOG, 0.0, yy, eta) == plain


# ---- extremes ---------------------------------------------------------------------------------


def test_bernoulli_logit_is_finite_at_extreme_eta():
    cases = [  # (y, eta) -> value, d1, d2 (phi = 1)
        (1.0, -1000.0, 1000.0, -1.0, 0.0),
        (0.0, 1000.0, 1000.0, 1.0, 0.0),
        (1.0, 1000.0, 0.0, 0.0, 0.0),
        (0.0, -1000.0, 0.0, 0.0, 0.0),
    ]
    for lc in (C.FAMILY_BERNOULLI, C.FAMILY_BINOMIAL):
        for y, eta, value, d1, d2 in cases:
            assert ev(lc, 0.0, 1.0, C.LINK_LOGIT, 0.0, y, eta) == (value, d1, d2)
        # a proportion: finite, and linear in eta far out (slope 1 - y or -y)
        v, d1, _d2 = ev(lc, 0.0, 1.0, C.LINK_LOGIT, 0.0, 0.25, 1000.0)
        assert np.isfinite(v) and d1 == 0.75
        assert v == approx(750.0 + 0.25 * np.log(0.25) + 0.75 * np.log(0.75), rel=1e-15)
    # y = 1, eta = 40: the loss e^-40 keeps all its digits (1 - sigma would be 0)
    v, d1, d2 = ev(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_LOGIT, 0.0, 1.0, 40.0)
    assert v == approx(np.exp(-40.0), rel=1e-14)
    assert d1 == approx(-np.exp(-40.0), rel=1e-14)
    assert d2 == approx(np.exp(-40.0), rel=1e-14)
    # the array kernel takes the same path
    y = np.array([1.0, 0.0, 1.0, 0.0])
    eta = np.array([-1000.0, 1000.0, 1000.0, -1000.0])
    t, g, h = lgh(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_LOGIT, 0.0, y, eta)
    assert t == 2000.0
    np.testing.assert_array_equal(g, [-1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(h, [0.0, 0.0, 0.0, 0.0])


def test_poisson_log_is_finite_at_very_negative_eta():
    assert ev(C.FAMILY_POISSON, 0.0, 1.0, C.LINK_LOG, 0.0, 0.0, -1000.0) == (0.0, 0.0, 0.0)
    v, d1, d2 = ev(C.FAMILY_POISSON, 0.0, 1.0, C.LINK_LOG, 0.0, 3.0, -1000.0)
    assert v == approx(3.0 * (1000.0 + np.log(3.0)) - 3.0, rel=1e-15)
    assert (d1, d2) == (-3.0, 0.0)
    # near the minimum the loss keeps its digits: y = 5, mu = 5 (1 + 1e-6)
    eta = np.log(5.0) + np.log1p(1e-6)
    v, _d1, _d2 = ev(C.FAMILY_POISSON, 0.0, 1.0, C.LINK_LOG, 0.0, 5.0, eta)
    r = eta - np.log(5.0)
    assert v == approx(5.0 * (r * r / 2 + r**3 / 6), rel=1e-8)


def test_gamma_log_is_finite_at_large_abs_eta():
    v, d1, d2 = ev(C.FAMILY_GAMMA, 0.0, 1.0, C.LINK_LOG, 0.0, 2.0, 1000.0)
    assert v == approx(1000.0 - np.log(2.0) - 1.0, rel=1e-15)
    assert (d1, d2) == (1.0, 0.0)
    assert ev(C.FAMILY_GAMMA, 0.0, 1.0, C.LINK_LOG, 0.0, 2.0, 1000.0, EXP)[2] == 1.0
    v, d1, d2 = ev(C.FAMILY_GAMMA, 0.0, 1.0, C.LINK_LOG, 0.0, 2.0, -700.0)
    assert np.isfinite([v, d1, d2]).all()
    assert d2 == approx(2.0 * np.exp(700.0), rel=1e-12)
    assert d1 == approx(1.0 - 2.0 * np.exp(700.0), rel=1e-12)


def test_margin_losses_are_finite_at_extreme_margins():
    for y, mu in [(1.0, -1000.0), (0.0, 1000.0)]:
        assert ev(C.LOSS_LOGISTIC, 0.0, 1.0, C.LINK_IDENTITY, 0.0, y, mu) == (
            1000.0,
            -(2 * y - 1),
            0.0,
        )
        assert ev(C.LOSS_HINGE, 0.0, 1.0, C.LINK_IDENTITY, 0.0, y, mu)[0] == 1001.0
        assert ev(C.LOSS_PERCEPTRON, 0.0, 1.0, C.LINK_IDENTITY, 0.0, y, mu)[0] == 1000.0
    assert ev(C.LOSS_LOGISTIC, 0.0, 1.0, C.LINK_IDENTITY, 0.0, 1.0, 1000.0) == (0.0, 0.0, 0.0)


def test_kinks_use_the_zero_subgradient():
    # hinge at t mu = 1, perceptron at mu = 0, squared hinge's second derivative at t mu = 1
    assert ev(C.LOSS_HINGE, 0.0, 1.0, C.LINK_IDENTITY, 0.0, 1.0, 1.0) == (0.0, 0.0, 0.0)
    assert ev(C.LOSS_PERCEPTRON, 0.0, 1.0, C.LINK_IDENTITY, 0.0, 0.0, 0.0) == (0.0, 0.0, 0.0)
    assert ev(C.LOSS_SQUARED_HINGE, 0.0, 1.0, C.LINK_IDENTITY, 0.0, 0.0, -1.0) == (0.0, 0.0, 0.0)
    assert ev(C.LOSS_HINGE, 0.0, 1.0, C.LINK_IDENTITY, 0.0, 0.0, -0.5) == (0.5, 1.0, 0.0)


# ---- scikit-learn ------------------------------------------------------------------------------


def _sklearn_cases():
    from sklearn._loss import loss as skl

    return [  # (sklearn loss, our loss code, our output activation, a, y sampler)
        (skl.HalfPoissonLoss(), C.FAMILY_POISSON, C.LINK_LOG, 0.0, "count"),
        (skl.HalfBinomialLoss(), C.FAMILY_BERNOULLI, C.LINK_LOGIT, 0.0, "binary"),
        (skl.HalfBinomialLoss(), C.FAMILY_BINOMIAL, C.LINK_LOGIT, 0.0, "proportion"),
        (skl.HalfSquaredError(), C.FAMILY_GAUSSIAN, C.LINK_IDENTITY, 0.0, "real"),
        (skl.HalfGammaLoss(), C.FAMILY_GAMMA, C.LINK_LOG, 0.0, "positive"),
        (skl.HalfTweedieLoss(power=1.3), C.FAMILY_TWEEDIE, C.LINK_LOG, 1.3, "tweedie"),
        (skl.HalfTweedieLoss(power=1.8), C.FAMILY_TWEEDIE, C.LINK_LOG, 1.8, "tweedie"),
        (skl.HalfTweedieLoss(power=0.0), C.FAMILY_GAUSSIAN, C.LINK_LOG, 0.0, "real"),
        (skl.HalfTweedieLoss(power=3.0), C.FAMILY_INVERSE_GAUSSIAN, C.LINK_LOG, 0.0, "positive"),
        (skl.HalfTweedieLossIdentity(power=1.5), C.FAMILY_TWEEDIE, C.LINK_IDENTITY, 1.5, "tweedie"),
        (skl.HalfTweedieLossIdentity(power=1.0), C.FAMILY_POISSON, C.LINK_IDENTITY, 0.0, "count"),
        (skl.HalfTweedieLossIdentity(power=2.0), C.FAMILY_GAMMA, C.LINK_IDENTITY, 0.0, "positive"),
    ]


SKLEARN_IDS = [
    "poisson",
    "binomial-binary",
    "binomial-proportion",
    "squared_error",
    "gamma",
    "tweedie1.3-log",
    "tweedie1.8-log",
    "tweedie0-log",
    "tweedie3-log",
    "tweedie1.5-identity",
    "tweedie1-identity",
    "tweedie2-identity",
]


@pytest.mark.parametrize("case", range(len(SKLEARN_IDS)), ids=SKLEARN_IDS)
def test_agrees_with_sklearn_half_losses(case):
    sk, lc, hc, a, kind = _sklearn_cases()[case]
    rng = np.random.default_rng(case)
    n = 500
    if hc == C.LINK_IDENTITY and kind != "real":
        eta = rng.uniform(0.2, 6.0, n)
        mu = eta
    else:
        eta = rng.normal(0.3, 1.0, n)
        mu = ref.link_h012(hc, 0.0, eta)[0]
    y = {
        "count": lambda: rng.poisson(mu).astype(float),
        "binary": lambda: (rng.random(n) < mu).astype(float),
        "proportion": lambda: rng.binomial(4, mu) / 4.0,
        "real": lambda: rng.normal(mu, 1.0),
        "positive": lambda: rng.gamma(2.0, mu / 2.0),
        "tweedie": lambda: np.where(rng.random(n) < 0.2, 0.0, rng.gamma(2.0, mu / 2.0)),
    }[kind]()
    w = rng.uniform(0.5, 2.0, n)
    total, g, h = lgh(lc, a, 1.0, hc, 0.0, y, eta, w)
    sk_g, sk_h = sk.gradient_hessian(y, eta, sample_weight=w)
    np.testing.assert_allclose(g, sk_g, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(h, sk_h, rtol=1e-11, atol=1e-13)
    # sklearn drops constants in y; constant_to_optimal_zero restores the deviance form
    sk_loss = sk.loss(y, eta, sample_weight=w) + sk.constant_to_optimal_zero(y, w)
    per_row = np.array(
        [K.loss_value(lc, a, 1.0, hc, 0.0, yi, ei) for yi, ei in zip(y, eta, strict=True)]
    )
    np.testing.assert_allclose(w * per_row, sk_loss, rtol=1e-9, atol=1e-11)
    assert total == approx(sk_loss.sum(), rel=1e-10)


def test_hinge_and_log_loss_agree_with_sklearn_metrics():
    from sklearn.metrics import hinge_loss, log_loss

    rng = np.random.default_rng(2)
    n = 400
    eta = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < 0.5).astype(float)
    w = rng.uniform(0.5, 2.0, n)
    for weights in (None, w):
        ww = np.ones(n) if weights is None else weights
        arr_w = EMPTY if weights is None else weights
        total = K.loss_sum(C.LOSS_HINGE, 0.0, 1.0, C.LINK_IDENTITY, 0.0, y, eta, arr_w, EMPTY)
        expected = hinge_loss(y.astype(int), eta, sample_weight=weights)
        assert total / ww.sum() == approx(expected, rel=1e-13)
        total = K.loss_sum(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_LOGIT, 0.0, y, eta, arr_w, EMPTY)
        mu = ref.link_h012(C.LINK_LOGIT, 0.0, eta)[0]
        assert total / ww.sum() == approx(log_loss(y, mu, sample_weight=weights), rel=1e-12)


def test_logistic_margin_loss_with_identity_output_is_the_bernoulli_logit_nll():
    rng = np.random.default_rng(4)
    eta = rng.normal(0.0, 3.0, 300)
    y = (rng.random(300) < 0.5).astype(float)
    t1, g1, h1 = lgh(C.LOSS_LOGISTIC, 0.0, 1.0, C.LINK_IDENTITY, 0.0, y, eta)
    t2, g2, h2 = lgh(C.FAMILY_BERNOULLI, 0.0, 1.0, C.LINK_LOGIT, 0.0, y, eta)
    assert t1 == approx(t2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(h1, h2, rtol=1e-14, atol=1e-300)


# ---- the vocabulary ---------------------------------------------------------------------------


def test_registry_names_aliases_and_codes():
    from simbench import losses

    assert losses.names() == [LOSS_NAMES[c] for c in FAMILIES + PLAIN]
    for code, name in LOSS_NAMES.items():
        assert losses.get(name).code == code
    for alias, name in [
        ("poisson_nll", "poisson"),
        ("Poisson-Deviance", "poisson"),
        ("log_loss", "bernoulli"),
        ("binary_crossentropy", "bernoulli"),
        ("mse", "squared_error"),
        ("l2", "squared_error"),
        ("squared", "squared_error"),
        ("nb", "negative_binomial"),
        ("tweedie_deviance", "tweedie"),
    ]:
        assert losses.get(alias).name == name
    assert set(losses.descriptions()) == set(losses.names())
    assert all(isinstance(d, str) and d for d in losses.descriptions().values())


def test_parameters_and_call_forms():
    from simbench import losses

    assert losses.get("tweedie") == losses.Loss("tweedie", C.FAMILY_TWEEDIE, 1.5)
    assert losses.get("negative_binomial").param == 1.0
    assert losses.get("tweedie(1.3)") == losses.get("tweedie", power=1.3)
    assert losses.get("NB(0.5)") == losses.get("negative_binomial", alpha=0.5)
    assert losses.get("tweedie(1.3)", power=1.3).param == 1.3
    # like families.get, parameters of other losses are ignored (a scenario passes both)
    assert losses.get("poisson", alpha=0.5, power=1.2) == losses.get("poisson")
    assert losses.get("tweedie", alpha=0.5, power=1.2) == losses.get("tweedie(1.2)")
    assert repr(losses.get("tweedie(1.3)")) == "Loss('tweedie', 1.3)"
    assert repr(losses.get("mse")) == "Loss('squared_error')"
    assert str(losses.get("tweedie(1.3)")) == "tweedie(1.3)"
    assert len({losses.get("poisson"), losses.get("poisson_nll"), losses.get("hinge")}) == 2
    with pytest.raises(AttributeError):
        losses.get("poisson").name = "gamma"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda lo: lo.get("tweedie", power=2.5), "1 < p < 2"),
        (lambda lo: lo.get("tweedie(1)"), "1 < p < 2"),
        (lambda lo: lo.get("negative_binomial", alpha=0.0), "alpha > 0"),
        (lambda lo: lo.get("negative_binomial", alpha=float("inf")), "alpha > 0"),
        (lambda lo: lo.get("hinge(2)"), "takes no parameter"),
        (lambda lo: lo.get("poisson(1.5)"), "takes no parameter"),
        (lambda lo: lo.get("tweedie(1.3)", power=1.4), "different power"),
    ],
)
def test_bad_parameters_are_rejected(call, message):
    from simbench import losses

    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        call(losses)


def test_unknown_name_lists_the_accepted_ones():
    from simbench import losses

    with pytest.raises(UnknownNameError) as info:
        losses.get("poison")
    text = str(info.value)
    assert "'poisson'" in text and "squared_error" in text and "hinge" in text
    with pytest.raises(UnknownNameError):
        losses.get(3)


def test_for_family_and_family_property():
    from simbench import families, losses

    for name in ["gaussian", "bernoulli", "binomial", "poisson", "gamma", "inverse_gaussian"]:
        loss = losses.for_family(name)
        assert loss == losses.get(name) and loss.family == families.get(name)
        assert loss.code == families.get(name).code and loss.is_nll
    nb = losses.for_family(families.get("negative_binomial", alpha=0.4))
    assert nb == losses.get("nb(0.4)") and nb.family.param == 0.4
    tw = losses.for_family("tweedie(1.7)")
    assert tw.param == 1.7 and tw.family == families.get("tweedie", power=1.7)
    assert losses.get("hinge").family is None and not losses.get("hinge").is_nll
    # the defaults agree with the families'
    assert losses.get("tweedie").family == families.get("tweedie")
    assert losses.get("negative_binomial").family == families.get("negative_binomial")


SUPPORT = {  # loss -> families whose data it accepts
    "gaussian": "all",
    "squared_error": "all",
    "poisson": "bernoulli binomial poisson gamma inverse_gaussian negative_binomial tweedie",
    "negative_binomial": "bernoulli binomial poisson gamma inverse_gaussian negative_binomial "
    "tweedie",
    "tweedie": "bernoulli binomial poisson gamma inverse_gaussian negative_binomial tweedie",
    "gamma": "gamma inverse_gaussian",
    "inverse_gaussian": "gamma inverse_gaussian",
    "bernoulli": "bernoulli binomial",
    "binomial": "bernoulli binomial",
    "hinge": "bernoulli",
    "squared_hinge": "bernoulli",
    "logistic": "bernoulli",
    "perceptron": "bernoulli",
}


@pytest.mark.parametrize("name", list(SUPPORT))
def test_supports_and_why_not(name):
    from simbench import families, losses

    loss = losses.get(name)
    accepted = SUPPORT[name]
    for fam in families.REGISTRY:
        expected = accepted == "all" or fam.name in accepted.split()
        assert loss.supports(fam) is expected, (name, fam.name)
        assert loss.supports(fam.name) is expected
        why = loss.why_not(fam)
        assert (why is None) is expected
        if why is not None:
            assert name in why and fam.name in why
    assert loss.binary_only is (name in ("hinge", "squared_hinge", "logistic", "perceptron"))


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("gamma", [1.0, 0.0], [0.1, 3.0]),
        ("inverse_gaussian", [1.0, -2.0], [0.5, 2.0]),
        ("poisson", [1.0, -1.0], [0.0, 2.5]),
        ("tweedie", [np.nan, 1.0], [0.0, 1.0]),
        ("bernoulli", [0.0, 1.5], [0.0, 0.3]),
        ("hinge", [0.0, 0.5], [0.0, 1.0]),
        ("logistic", [-1.0, 1.0], [1.0, 0.0]),
        ("squared_error", [np.inf, 1.0], [-3.0, 1.0]),
    ],
)
def test_check_y(name, bad, good):
    from simbench import losses

    loss = losses.get(name)
    with pytest.raises(ValidationError, match=rf"loss '{re.escape(loss.label)}' needs .* got y\["):
        loss.check_y(bad)
    np.testing.assert_array_equal(loss.check_y(good), good)


def test_value_and_grad_hess_wrappers():
    from simbench import links, losses

    rng = np.random.default_rng(8)
    n = 100
    eta = rng.normal(0.0, 0.5, n)
    off = rng.normal(0.0, 0.1, n)
    w = rng.uniform(0.5, 2.0, n)
    y = rng.poisson(np.exp(eta + off)).astype(float)
    loss = losses.get("poisson")
    for link in ("exp", links.get("log"), "sqrt"):
        lk = links.get(link)
        eta_l = eta if lk.name == "log" else np.abs(eta) + 0.5
        value = loss.value(y, eta_l, link, weights=w, offset=off, phi=1.3)
        t, g, h = loss.grad_hess(y, eta_l, link, weights=w, offset=off, phi=1.3, expected=True)
        rt, rg, rh = ref.loss_grad_hess(3, 0.0, 1.3, lk.code, 0.0, y, eta_l + off, w, None, True)
        assert value == approx(rt, rel=1e-11) and t == approx(value, rel=1e-14)
        np.testing.assert_allclose(g, rg, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(h, rh, rtol=1e-11, atol=1e-14)
    assert losses.get("hinge").value([0, 1], [0.5, 0.5], "identity") == approx(2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1.0, -1.0, 1.0]}, "weights"),
        ({"weights": [1.0, 1.0]}, "weights has 2 entries"),
        ({"offset": [0.0, np.nan, 0.0]}, "offset"),
        ({"phi": 0.0}, "phi"),
        ({"y": [1.0, -1.0, 0.0]}, "y >= 0"),
        ({"eta": [[0.0, 1.0, 2.0]]}, "1-D"),
        ({"link": "lgo"}, "did you mean 'log'"),
    ],
)
def test_wrappers_validate_input(kwargs, message):
    from simbench import losses

    args = {"y": [1.0, 2.0, 0.0], "eta": [0.0, 0.1, 0.2], "link": "log"} | kwargs
    with pytest.raises(ValidationError, match=message):
        losses.get("poisson").grad_hess(**args)
