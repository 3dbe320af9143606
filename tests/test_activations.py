"""Hidden-activation kernels and the Activation vocabulary.

Tolerances (eps = 2.2e-16): kernels vs the NumPy/SciPy reference relative ``8 eps``; vs
mpmath in the tails 4 ulp; derivatives vs 4th-order central differences relative 1e-8 plus
the differencing round-off.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import activations as ref

from simbench import activations
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import activations as k
from simbench.kernels import codes

EPS = np.finfo(float).eps
NAMES = ref.ACTIVATION_NAMES
CODE = {name: getattr(codes, "ACT_" + name.upper()) for name in NAMES}
MAG = np.logspace(-300, 3, 304)
GRID = np.concatenate([-MAG[::-1], [0.0], MAG, [-745.0, -709.0, 709.0, 745.0, 0.5, -0.5]])


@pytest.fixture(scope="module", autouse=True)
def _warm_kernels():
    """Compile every kernel once so hypothesis examples time the maths, not Numba."""
    x = np.array([0.5, -0.5])
    out = np.empty(2)
    k.act_f(0, 0.5)
    k.act_d(0, 0.5)
    k.act_fd(0, 0.5)
    k.act_f_arr(0, x, out)
    k.act_d_arr(0, x, out)
    k.act_fd_arr(0, x, out, out.copy())


def _scalar(fn, name, x):
    return np.array([fn(CODE[name], float(v)) for v in np.ravel(x)])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("quantity", ["f", "d"])
def test_kernels_match_reference(name, quantity):
    got = _scalar(getattr(k, "act_" + quantity), name, GRID)
    want = getattr(ref, quantity)(name, GRID)
    assert np.isfinite(got).all()
    # atol: at x = -745 the true sigmoid is subnormal; 5e-324 and scipy's 0 both round it
    np.testing.assert_allclose(got, want, rtol=8 * EPS, atol=1e-320)


@pytest.mark.parametrize("name", NAMES)
def test_joint_and_array_kernels_equal_the_scalar_ones(name):
    code = CODE[name]
    f = _scalar(k.act_f, name, GRID)
    d = _scalar(k.act_d, name, GRID)
    joint = np.array([k.act_fd(code, v) for v in GRID])
    np.testing.assert_array_equal(joint[:, 0], f)
    np.testing.assert_array_equal(joint[:, 1], d)
    out, out2 = np.empty_like(GRID), np.empty_like(GRID)
    k.act_f_arr(code, GRID, out)
    np.testing.assert_array_equal(out, f)
    k.act_d_arr(code, GRID, out)
    np.testing.assert_array_equal(out, d)
    k.act_fd_arr(code, GRID, out, out2)
    np.testing.assert_array_equal(out, f)
    np.testing.assert_array_equal(out2, d)


@pytest.mark.parametrize(
    ("name", "x", "f", "d"),
    [
        ("identity", -3.5, -3.5, 1.0),
        ("relu", 0.0, 0.0, 0.0),
        ("relu", -0.0, 0.0, 0.0),
        ("relu", 2.0, 2.0, 1.0),
        ("relu", -2.0, 0.0, 0.0),
        ("tanh", 0.0, 0.0, 1.0),
        ("tanh", 1e3, 1.0, 0.0),
        ("tanh", -1e3, -1.0, 0.0),
        ("sigmoid", 0.0, 0.5, 0.25),
        ("sigmoid", 1e3, 1.0, 0.0),
        ("sigmoid", -1e3, 0.0, 0.0),
        ("softplus", 0.0, math.log(2.0), 0.5),
        ("softplus", 1e3, 1e3, 1.0),
        ("softplus", -1e3, 0.0, 0.0),
        # tails where the textbook derivative rounds to 0: sigma(1 - sigma), 1 - tanh^2
        ("sigmoid", 40.0, 1.0, math.exp(-40.0) / (1.0 + math.exp(-40.0)) ** 2),
        ("tanh", 20.0, 1.0, 4.0 * math.exp(-40.0) / (1.0 + math.exp(-40.0)) ** 2),
        ("softplus", -40.0, math.log1p(math.exp(-40.0)), 1.0 / (1.0 + math.exp(40.0))),
    ],
)
def test_values(name, x, f, d):
    code = CODE[name]
    assert k.act_f(code, x) == pytest.approx(f, rel=4 * EPS, abs=0.0)
    assert k.act_d(code, x) == pytest.approx(d, rel=4 * EPS, abs=0.0)


def test_tails_to_a_few_ulp_against_mpmath():
    mp = pytest.importorskip("mpmath")
    checks = []
    with mp.workdps(40):
        for x in (-700.0, -300.0, -36.0, -5.0, 5.0, 36.0, 300.0, 700.0):
            s = 1 / (1 + mp.exp(-mp.mpf(x)))
            checks.append(("sigmoid", x, float(s), float(mp.exp(-mp.mpf(x)) * s * s)))
            checks.append(("tanh", x, float(mp.tanh(x)), float(1 / mp.cosh(x) ** 2)))
            checks.append(("softplus", x, float(mp.log1p(mp.exp(x))), float(s)))
    for name, x, f, d in checks:
        for value, exact in ((k.act_f(CODE[name], x), f), (k.act_d(CODE[name], x), d)):
            assert abs(value - exact) <= 4 * np.spacing(abs(exact)), (name, x, value, exact)


def _fd4(fn, x, h):
    vals = [fn(x - 2 * h), fn(x - h), fn(x + h), fn(x + 2 * h)]
    deriv = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    return deriv, 4 * EPS * max(abs(v) for v in vals) / h


@pytest.mark.parametrize("name", NAMES)
@given(x=st.floats(-30.0, 30.0))
def test_derivative_matches_finite_differences(name, x):
    if name == "relu" and abs(x) < 1e-2:
        x = math.copysign(1e-2, x) + x  # keep the stencil off the kink
    code = CODE[name]
    h = 1e-3 if name != "relu" else min(1e-3, abs(x) / 4)
    numeric, roundoff = _fd4(lambda v: k.act_f(code, v), x, h)
    analytic = k.act_d(code, x)
    assert abs(analytic - numeric) <= 1e-8 * abs(analytic) + 10 * roundoff


@pytest.mark.parametrize("name", NAMES)
@given(x=st.floats(-1e3, 1e3))
def test_bounded_and_monotone(name, x):
    code = CODE[name]
    f, d = k.act_fd(code, x)
    assert math.isfinite(f)
    assert 0.0 <= d <= 1.0
    assert k.act_f(code, math.nextafter(x, math.inf)) >= f


# ---- vocabulary --------------------------------------------------------------------------------


def test_names_codes_and_descriptions():
    assert activations.names() == list(NAMES)
    for name in NAMES:
        act = activations.get(name)
        assert act.name == name
        assert act.code == CODE[name]
        assert act.param == 0.0
        assert act.description == activations.descriptions()[name]
    assert set(activations.descriptions()) == set(NAMES)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("linear", "identity"),
        ("ReLU", "relu"),
        ("logistic", "sigmoid"),
        ("expit", "sigmoid"),
        ("Hyperbolic-Tangent", "tanh"),
        ("TANH", "tanh"),
    ],
)
def test_aliases(alias, canonical):
    assert activations.get(alias) is activations.get(canonical)


def test_unknown_name_names_the_closest_and_the_accepted():
    with pytest.raises(UnknownNameError) as err:
        activations.get("sigmod")
    text = str(err.value)
    assert "did you mean 'sigmoid'" in text
    for name in NAMES:
        assert name in text
    with pytest.raises(UnknownNameError, match="accepted"):
        activations.get(None)


def test_objects_are_immutable_hashable_and_comparable():
    a = activations.get("tanh")
    assert a == activations.Activation("tanh", codes.ACT_TANH)
    assert hash(a) == hash(activations.get("TANH"))
    assert len({activations.get(n) for n in (*NAMES, "linear", "logistic")}) == len(NAMES)
    assert repr(a) == "Activation('tanh')"
    assert activations.get(a) is a
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.code = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
def test_methods_call_the_kernels(name):
    act = activations.get(name)
    x = GRID.reshape(-1, 5)[:, ::2]  # 2-D and not contiguous
    np.testing.assert_array_equal(act.f(x), _scalar(k.act_f, name, x).reshape(x.shape))
    np.testing.assert_array_equal(act.d(x), _scalar(k.act_d, name, x).reshape(x.shape))
    assert np.ndim(act.f(0.5)) == 0
    assert act.f(1) == k.act_f(CODE[name], 1.0)


def test_methods_reject_bad_input():
    act = activations.get("relu")
    with pytest.raises(ValidationError, match="x must be finite"):
        act.f(np.array([1.0, np.nan]))
    with pytest.raises(ValidationError, match="real numbers"):
        act.d(["a"])
