"""Data-generating processes: a known GLM, its covariate designs, and exact sampling.

A :class:`Scenario` names a GLM and the distribution of its covariates; :func:`simulate`
draws a training and a test sample from it and returns them, with the exact truth, as a
:class:`Dataset`.  :func:`sample` draws responses from any family at given means.

Design note
-----------
Notation: design row ``x~ = (1, x)``, truth ``beta*``, ``eta* = x~' beta* + offset``,
``mu* = h(eta*)`` with ``h = g^-1``; ``V`` the unit variance, ``phi`` the dispersion,
``w`` the prior weights.

**Designs.**  Covariates are standardised (population mean 0, variance 1) wherever that is
the convention, and never include the intercept column:

==============  ==========================================================================
``gaussian``    iid N(0, 1)
``correlated``  N(0, R): equicorrelation ``R = (1 - rho) I + rho 11'`` (``correlation =
                "equi"``) or AR(1) ``R_jk = rho^|j-k|`` (``"ar1"``); unit variances
``uniform``     iid U(-sqrt 3, sqrt 3)
``binary``      iid Rademacher +-1 (the standardised fair coin)
``mixed``       the first ceil(p/2) columns N(0, 1), the others Rademacher +-1
``categorical`` one factor with ``levels`` equally likely levels, dummy coded 0/1 with the
                first level as reference: ``p = levels - 1`` columns (not standardised, so
                that a coefficient is a level's contrast with the reference)
==============  ==========================================================================

**True coefficients.**  Unless ``beta`` is given, the slopes are a fixed direction
``d_j = (-1)^(j-1) / sqrt(j)`` (j = 1..p: alternating signs, mild decay, so no two
coefficients are interchangeable) scaled so that the *population* standard deviation of the
linear predictor is ``signal``: ``beta_x = signal d / sqrt(d' Sigma d)`` with ``Sigma`` the
design's known covariance.  The intercept makes the population mean response at unit
exposure equal ``mean``: ``E_x[h(b0 + x' beta_x)] = mean``.  It is exact for the log link
(``b0 = log mean - log M(beta_x)`` with ``M`` the design's moment generating function, e.g.
``b0 = log mean - signal^2 / 2`` for Gaussian designs) and the identity link (``b0 = mean -
E[x]' beta_x``); for the other links it is solved numerically over an exact representation
of the design (Gauss-Legendre quadrature of the Gaussian part on +-6 sd, the atoms of the
binary and categorical parts; for the uniform design and more than 10 binary columns a
fixed Monte Carlo sample of 2^16 points, 2^12 for the binary part of a mixed design).
Binary families take intercept 0 (``mean`` is ignored).  So ``beta*`` is a property of
the scenario alone: it does not depend on the seed, and replicates of a scenario share one
truth.

**Domains.**  Links whose mean is restricted (identity with a positive family, inverse,
inverse-squared, sqrt and power links; log and identity with a binary family) need the
linear predictor inside an interval.  A scenario is accepted when its whole population lies
inside: every point of a bounded design (uniform, binary, categorical) and +-6 sd of the
Gaussian part of an unbounded one (probability ``1 - 2e-9``); otherwise a
:class:`~simbench.errors.ValidationError` states the fraction of the population outside.
The drawn data are checked again with the vocabulary's own domain checks.

**Exposure.**  ``exposure=True`` draws ``E`` log-uniform on [1/2, 2] and adds the offset
``log E`` to the linear predictor; it needs the log link (``mu = E exp(x~' beta*)``, so
``mean`` is the mean rate per unit exposure) and a non-binary family.

**Separable data.**  ``separable=True`` (binary families) keeps only design points with
``|eta*| >= 0.1 sd(eta*)`` (rejection, in the order drawn) and sets ``y = 1{eta* > 0}``:
the true hyperplane separates the classes with geometric margin
``0.1 sd(eta*) / ||beta_x||``.  ``eta`` and ``mu`` still describe the GLM whose hyperplane
it is.

**Randomness.**  Only through ``numpy.random.Generator(PCG64)``, seeded from child
sequences of ``SeedSequence(seed)``, one per purpose (training design, training responses,
test design, test responses, training exposure, test exposure), so changing ``n_test``
never changes the training sample and vice versa.  The same (scenario, seed) gives the
same arrays bit for bit; reductions are explicit column loops, not BLAS calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import optimize, special

from . import families, links
from ._registry import normalize_name, unknown_name_message
from .errors import UnknownNameError, ValidationError
from .kernels import codes
from .sampling import _is_real, _seed_sequence, sample

__all__ = [
    "CORRELATIONS",
    "DESIGNS",
    "SCENARIO_KEYS",
    "Dataset",
    "Scenario",
    "sample",
    "simulate",
    "true_beta",
]

DESIGNS = ("gaussian", "correlated", "uniform", "binary", "mixed", "categorical")
CORRELATIONS = ("equi", "ar1")

EXPOSURE_RANGE = (0.5, 2.0)  # exposure is log-uniform on this interval
SEPARABLE_MARGIN = 0.1  # removed band |eta*| < SEPARABLE_MARGIN * sd(eta*)
TAIL_Z = 6.0  # an unbounded design must be in the domain within +-TAIL_Z sd
_GL_NODES = 48  # Gauss-Legendre nodes for the Gaussian part on [-TAIL_Z, TAIL_Z]
_MAX_ENUMERATED = 10  # binary columns enumerated exactly (2^10 atoms), beyond: Monte Carlo
_MC_SIZE = 1 << 16
_MC_SIZE_MIXED = 1 << 12
_MC_SEED = 20260101  # fixed: the truth must not depend on the data seed
_SQRT3 = math.sqrt(3.0)

_DEFAULT_P = 5
_DEFAULT_LEVELS = 4
_DEFAULT_ALPHA = 1.0
_DEFAULT_POWER = 1.5

_BINARY_LINKS = (
    codes.LINK_LOGIT,
    codes.LINK_PROBIT,
    codes.LINK_CLOGLOG,
    codes.LINK_LOGLOG,
    codes.LINK_CAUCHIT,
)
_POSITIVE_ETA_LINKS = (
    codes.LINK_INVERSE,
    codes.LINK_INVERSE_SQUARED,
    codes.LINK_SQRT,
    codes.LINK_POWER,
)


# ---- field validation ----------------------------------------------------------------------


def _fail(key: str, value: object, accepted: str) -> ValidationError:
    return ValidationError(f"scenario key {key!r} must be {accepted}; got {value!r}")


def _as_int(key: str, value: object, low: int) -> int:
    accepted = f"an integer >= {low}"
    if not _is_real(value) or not math.isfinite(float(value)) or float(value) != int(value):
        raise _fail(key, value, accepted)
    if int(value) < low:
        raise _fail(key, value, accepted)
    return int(value)


def _as_float(
    key: str,
    value: object,
    accepted: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    if not _is_real(value) or not math.isfinite(float(value)):
        raise _fail(key, value, accepted)
    x = float(value)
    if x < low or (low_open and x == low) or x > high or (high_open and x == high):
        raise _fail(key, value, accepted)
    return x


def _as_bool(key: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(key, value, "true or false")
    return bool(value)


def _as_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    name = normalize_name(value) if isinstance(value, str) else None
    if name not in choices:
        raise UnknownNameError(
            f"scenario key {key!r}: " + unknown_name_message(key, value, list(choices))
        )
    return name


_PARAM_RE = re.compile(r"^\s*([A-Za-z][\w\- ]*?)\s*\(\s*([^()]*?)\s*\)\s*$")


def _split_param(text: str) -> tuple[str, float | None]:
    """``"tweedie(1.7)"`` -> ``("tweedie", 1.7)``; ``"poisson"`` -> ``("poisson", None)``."""
    match = _PARAM_RE.match(text)
    if match is None:
        return text, None
    try:
        return match.group(1), float(match.group(2))
    except ValueError:
        raise _fail("family", text, "a family name, optionally with its parameter") from None


def _link_label(link: links.Link) -> str:
    """Canonical text of a link: its name, or ``"power(0.3)"`` for a power link."""
    if link.code == codes.LINK_POWER:
        return f"power({float(link.param)!r})"
    return link.name


# ---- the scenario --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A known GLM and the distribution of its covariates.

    Construct directly or with :meth:`from_dict` (for sweep files); every field is validated
    on construction and stored in canonical form (canonical family name, resolved link
    name), so equal scenarios compare equal and share an :attr:`id`.

    Parameters
    ----------
    family : str
        Response family (``simbench.families``): gaussian, bernoulli, binomial, poisson,
        gamma, inverse_gaussian, negative_binomial, tweedie; aliases and parameterised
        names such as ``"tweedie(1.7)"`` or ``"nb(0.5)"`` are accepted.
    link : str
        ``"canonical"`` (the family's default link) or a link name accepted by the family,
        e.g. ``"log"``, ``"power(0.3)"``.
    n, n_test : int
        Training and test sample sizes (>= 1).
    p : int
        Number of covariates (>= 1); default 5, or ``levels - 1`` for a categorical design.
    design : str
        gaussian | correlated | uniform | binary | mixed | categorical (see the module notes).
    rho : float
        Correlation of the correlated design, ``0 <= rho < 1``.
    correlation : str
        ``"equi"`` (equicorrelation) or ``"ar1"`` (``rho^|j-k|``).
    levels : int
        Levels of the categorical factor (>= 2); default 4, or ``p + 1``.
    signal : float
        Population standard deviation of ``x' beta*`` (>= 0); ignored when ``beta`` is given.
    mean : float
        Population mean response at unit exposure, ``E[h(eta*)]``; sets the intercept.
        Ignored for binary families (intercept 0) and when ``beta`` is given.
    dispersion : float
        ``phi > 0`` of gaussian, gamma, inverse_gaussian and tweedie; the other families
        have ``phi = 1`` whatever this says.
    alpha : float
        Negative binomial ``alpha > 0`` (``V = mu + alpha mu^2``); default 1.
    power : float
        Tweedie power ``1 < power < 2``; default 1.5.
    trials : int
        Binomial trials (>= 1): the prior weights, with ``y`` the proportion of successes.
    exposure : bool
        Draw an exposure log-uniform on [1/2, 2] and use ``log(exposure)`` as offset (log
        link, non-binary family).
    separable : bool
        Binary families: make the classes separable by the true hyperplane.
    beta : sequence of float or None
        Explicit ``[intercept, beta_1, ..., beta_p]``; overrides ``signal`` and ``mean``.
    """

    family: str = "poisson"
    link: str = "canonical"
    n: int = 1000
    n_test: int = 20000
    p: int | None = None
    design: str = "gaussian"
    rho: float = 0.5
    correlation: str = "equi"
    levels: int | None = None
    signal: float = 0.5
    mean: float = 2.0
    dispersion: float = 1.0
    alpha: float | None = None
    power: float | None = None
    trials: int = 1
    exposure: bool = False
    separable: bool = False
    beta: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        def put(key: str, value: Any) -> None:
            object.__setattr__(self, key, value)

        family, link = self._resolve_family_link(put)
        put("n", _as_int("n", self.n, 1))
        put("n_test", _as_int("n_test", self.n_test, 1))
        design = _as_choice("design", self.design, DESIGNS)
        put("design", design)
        self._resolve_shape(put, design)
        put(
            "rho",
            _as_float("rho", self.rho, "a number with 0 <= rho < 1", 0.0, 1.0, high_open=True),
        )
        put("correlation", _as_choice("correlation", self.correlation, CORRELATIONS))
        put("signal", _as_float("signal", self.signal, "a number >= 0", 0.0))
        if family.is_binary or family.code == codes.FAMILY_GAUSSIAN:
            put("mean", _as_float("mean", self.mean, "a finite number"))
        else:
            what = f"a number > 0 (a mean of the {family.name} family)"
            put("mean", _as_float("mean", self.mean, what, 0.0, low_open=True))
        put(
            "dispersion",
            _as_float("dispersion", self.dispersion, "a number > 0", 0.0, low_open=True),
        )
        put("trials", _as_int("trials", self.trials, 1))
        put("exposure", _as_bool("exposure", self.exposure))
        put("separable", _as_bool("separable", self.separable))
        self._resolve_beta(put)
        self._check_combinations(family, link)
        self._drop_inapplicable(put, family)

    def _drop_inapplicable(self, put, family: families.Family) -> None:
        # Keys that do not affect the data are reset to their defaults, so that a grid over
        # them (alpha on a Poisson scenario, rho on an iid design) gives one scenario, one id
        # and one data set, not copies that differ only in a parameter nobody reads.
        if family.code != codes.FAMILY_NEGATIVE_BINOMIAL:
            put("alpha", _DEFAULT_ALPHA)
        if family.code != codes.FAMILY_TWEEDIE:
            put("power", _DEFAULT_POWER)
        if family.code != codes.FAMILY_BINOMIAL:
            put("trials", 1)
        if not family.has_dispersion:
            put("dispersion", 1.0)
        if family.is_binary and self.beta is None:
            put("mean", 2.0)
        if self.design != "correlated":
            put("rho", 0.5)
            put("correlation", "equi")
        if self.design != "categorical":
            put("levels", _DEFAULT_LEVELS)

    def _resolve_family_link(self, put) -> tuple[families.Family, links.Link]:
        raw = self.family
        if not isinstance(raw, str):  # a Family object
            raw = getattr(raw, "name", raw)
            if not isinstance(raw, str):
                raise _fail("family", self.family, "a family name")
            param = getattr(self.family, "param", None)
        else:
            raw, param = _split_param(raw)
        try:
            name = families.REGISTRY.canonical(raw)
        except UnknownNameError as err:
            raise UnknownNameError(f"scenario key 'family': {err}") from None
        alpha = self._family_param("alpha", name == "negative_binomial", param, _DEFAULT_ALPHA)
        power = self._family_param("power", name == "tweedie", param, _DEFAULT_POWER)
        if name not in ("negative_binomial", "tweedie") and param not in (None, 0.0):
            if isinstance(self.family, str):
                raise _fail("family", self.family, f"{name!r} without a parameter")
        put("alpha", _as_float("alpha", alpha, "a number > 0", 0.0, low_open=True))
        put(
            "power",
            _as_float(
                "power",
                power,
                "a number with 1 < power < 2",
                1.0,
                2.0,
                low_open=True,
                high_open=True,
            ),
        )
        fam = _get_family(name, self.alpha, self.power)
        put("family", fam.name)
        raw_link = self.link
        if not isinstance(raw_link, str):  # a Link object
            raw_link = _link_label(raw_link)
        try:
            if normalize_name(raw_link) == "canonical":
                lnk = fam.default_link
            else:
                lnk = fam.check_link(raw_link)
        except ValidationError as err:
            raise type(err)(f"scenario key 'link': {err}") from None
        put("link", _link_label(lnk))
        return fam, lnk

    def _family_param(self, key: str, applies: bool, from_name, default: float):
        """The value of ``alpha`` / ``power``: the field, or the family string's parameter."""
        given = getattr(self, key)
        if given is not None and not _is_real(given):
            raise _fail(key, given, "a number")
        if not applies or from_name is None:
            return default if given is None else given
        if given is not None and float(given) != from_name:
            raise ValidationError(
                f"scenario key {key!r} is {given!r} but family {self.family!r} gives "
                f"{from_name!r}; give the parameter once"
            )
        return from_name

    def _resolve_shape(self, put, design: str) -> None:
        p, levels = self.p, self.levels
        if p is not None:
            p = _as_int("p", p, 1)
        if levels is not None:
            levels = _as_int("levels", levels, 2)
        if design == "categorical":
            if p is None and levels is None:
                levels = _DEFAULT_LEVELS
            if p is None:
                p = levels - 1
            elif levels is None:
                levels = p + 1
            if p != levels - 1:
                raise ValidationError(
                    f"scenario keys 'p' and 'levels' disagree: a categorical design with "
                    f"levels={levels} has p = levels - 1 = {levels - 1} dummy columns, "
                    f"got p={p}; give only one of them"
                )
        put("p", _DEFAULT_P if p is None else p)
        put("levels", _DEFAULT_LEVELS if levels is None else levels)

    def _resolve_beta(self, put) -> None:
        beta = self.beta
        if beta is None:
            return
        what = f"null or a list of p + 1 = {self.p + 1} numbers [intercept, x1 .. x{self.p}]"
        if isinstance(beta, (str, bytes)) or not isinstance(beta, (Sequence, np.ndarray)):
            raise _fail("beta", beta, what)
        values = list(np.asarray(beta, dtype=object).ravel()) if np.ndim(beta) else []
        if len(values) != self.p + 1 or not all(
            _is_real(b) and math.isfinite(float(b)) for b in values
        ):
            raise _fail("beta", beta, what)
        put("beta", tuple(float(b) for b in values))

    def _check_combinations(self, family: families.Family, link: links.Link) -> None:
        if self.exposure:
            if family.is_binary:
                raise ValidationError(
                    f"scenario key 'exposure': exposure is for count, rate and amount "
                    f"families, not {family.name!r}; accepted: exposure = false"
                )
            if link.code != codes.LINK_LOG:
                raise ValidationError(
                    f"scenario key 'exposure' needs the log link (the exposure enters as "
                    f"offset log(exposure)); got link {self.link!r}"
                )
        if self.separable:
            if not family.is_binary:
                raise ValidationError(
                    f"scenario key 'separable' applies to bernoulli and binomial data; "
                    f"got family {family.name!r}"
                )
            slopes_zero = self.signal == 0.0 if self.beta is None else not any(self.beta[1:])
            if slopes_zero:
                raise ValidationError(
                    "scenario key 'separable' needs a hyperplane: signal > 0 or nonzero "
                    "slopes in beta"
                )

    # -- construction from and to plain dicts --------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build a scenario from a mapping (e.g. a TOML table), validating every key.

        Raises
        ------
        ValidationError
            For an unknown key (the message names it, the accepted keys and the closest
            match) or a value of the wrong type or out of range.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"a scenario must be a table of keys; got {data!r}")
        for key in data:
            if key not in SCENARIO_KEYS:
                raise UnknownNameError(unknown_name_message("scenario key", key, SCENARIO_KEYS))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """All fields in canonical form (JSON-ready; ``beta`` a list or ``None``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["beta"] = None if self.beta is None else list(self.beta)
        return out

    @property
    def id(self) -> str:
        """Stable short hash: the first 12 hex digits of sha256 of the sorted-key JSON of
        :meth:`to_dict`; independent of key order and of how names were spelled."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def get_family(self) -> families.Family:
        """The :class:`~simbench.families.Family` object (with ``alpha`` / ``power``)."""
        return _get_family(self.family, self.alpha, self.power)

    def get_link(self) -> links.Link:
        """The resolved :class:`~simbench.links.Link` object."""
        return links.get(self.link)


SCENARIO_KEYS: list[str] = [f.name for f in dataclasses.fields(Scenario)]


def _get_family(name: str, alpha: float, power: float) -> families.Family:
    if name == "negative_binomial":
        return families.get(name, alpha=alpha)
    if name == "tweedie":
        return families.get(name, power=power)
    return families.get(name)


# ---- the truth -------------------------------------------------------------------------------


def _direction(p: int) -> np.ndarray:
    j = np.arange(1, p + 1, dtype=np.float64)
    return np.where(j % 2 == 1, 1.0, -1.0) / np.sqrt(j)


def _design_moments(s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Population mean vector and covariance matrix of the covariates."""
    p = s.p
    if s.design == "categorical":
        q = 1.0 / s.levels
        return np.full(p, q), np.diag(np.full(p, q)) - q * q
    if s.design == "correlated":
        if s.correlation == "equi":
            cov = np.full((p, p), s.rho)
            np.fill_diagonal(cov, 1.0)
        else:
            j = np.arange(p)
            cov = s.rho ** np.abs(j[:, None] - j[None, :]).astype(np.float64)
        return np.zeros(p), cov
    return np.zeros(p), np.eye(p)


def _rademacher_atoms(b: np.ndarray, size: int = _MC_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of ``sum_j b_j s_j`` with iid signs ``s_j = +-1``: atoms and weights
    (all ``2^k`` sign patterns, or a fixed sample of ``size`` of them)."""
    k = b.size
    if k <= _MAX_ENUMERATED:
        bits = (np.arange(1 << k)[:, None] >> np.arange(k)[None, :]) & 1
        signs = 2.0 * bits - 1.0
        return _rowdot(signs, b), np.full(1 << k, 1.0 / (1 << k))
    rng = np.random.Generator(np.random.PCG64(_MC_SEED))
    signs = 2.0 * rng.integers(0, 2, size=(size, k)) - 1.0
    return _rowdot(signs, b), np.full(size, 1.0 / size)


def _quad(cov: np.ndarray, b: np.ndarray) -> float:
    """``b' cov b`` without BLAS, so the truth does not depend on thread counts."""
    return float(np.sum(np.sum(cov * b[None, :], axis=1) * b))


def _rowdot(X: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``X @ b`` as a column loop in fixed order (bit-reproducible, no BLAS)."""
    out = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        out += X[:, j] * b[j]
    return out


def _population(s: Scenario, slopes: np.ndarray):
    """The distribution of ``u = x' beta_x`` as ``u = A + sd Z``, ``Z ~ N(0, 1)``.

    Returns atoms and weights of ``A`` (exact, or a fixed Monte Carlo sample), exact bounds
    ``(a_min, a_max)`` of the support of ``A``, and ``sd`` of the Gaussian part.
    """
    zero = (np.zeros(1), np.ones(1))
    if s.design in ("gaussian", "correlated"):
        _, cov = _design_moments(s)
        return (*zero, 0.0, 0.0, math.sqrt(max(_quad(cov, slopes), 0.0)))
    if s.design == "categorical":
        atoms = np.concatenate([[0.0], slopes])
        w = np.full(atoms.size, 1.0 / atoms.size)
        return atoms, w, float(atoms.min()), float(atoms.max()), 0.0
    if s.design == "binary":
        atoms, w = _rademacher_atoms(slopes)
        bound = float(np.abs(slopes).sum())
        return atoms, w, -bound, bound, 0.0
    if s.design == "mixed":
        pc = (s.p + 1) // 2
        sd = float(np.sqrt(np.sum(slopes[:pc] ** 2)))
        if pc == s.p:
            return (*zero, 0.0, 0.0, sd)
        # fewer Monte Carlo atoms: each is integrated against the Gaussian part
        atoms, w = _rademacher_atoms(slopes[pc:], _MC_SIZE_MIXED)
        bound = float(np.abs(slopes[pc:]).sum())
        return atoms, w, -bound, bound, sd
    # uniform: no closed form for the sum of uniforms worth the trouble; a fixed sample
    rng = np.random.Generator(np.random.PCG64(_MC_SEED))
    U = rng.uniform(-_SQRT3, _SQRT3, size=(_MC_SIZE, s.p))
    bound = _SQRT3 * float(np.abs(slopes).sum())
    return _rowdot(U, slopes), np.full(_MC_SIZE, 1.0 / _MC_SIZE), -bound, bound, 0.0


def _log_mgf(s: Scenario, slopes: np.ndarray) -> float:
    """``log E[exp(x' beta_x)]`` for the design, exactly."""

    def log_cosh(b):
        a = np.abs(b)
        return float(np.sum(a + np.log1p(np.exp(-2.0 * a)) - math.log(2.0)))

    def log_sinhc(b):  # sum of log(sinh(x) / x), x = sqrt(3) |b|
        x = _SQRT3 * np.abs(b[b != 0.0])
        small, large = x[x < 1.0], x[x >= 1.0]
        return float(
            np.sum(np.log(np.sinh(small) / small))
            + np.sum(large + np.log1p(-np.exp(-2.0 * large)) - math.log(2.0) - np.log(large))
        )

    if s.design in ("gaussian", "correlated"):
        _, cov = _design_moments(s)
        return 0.5 * _quad(cov, slopes)
    if s.design == "uniform":
        return log_sinhc(slopes)
    if s.design == "binary":
        return log_cosh(slopes)
    if s.design == "mixed":
        pc = (s.p + 1) // 2
        return 0.5 * float(np.sum(slopes[:pc] ** 2)) + log_cosh(slopes[pc:])
    return float(special.logsumexp(np.concatenate([[0.0], slopes])) - math.log(s.levels))


def _eta_interval(family: families.Family, link: links.Link) -> tuple[float, float]:
    """Open interval of ``eta`` whose mean ``h(eta)`` is valid for the family."""
    c = link.code
    inf = math.inf
    if c in _BINARY_LINKS:
        return -inf, inf
    if c in _POSITIVE_ETA_LINKS:  # used on the positive branch eta > 0
        return 0.0, inf
    if family.is_binary:
        if c == codes.LINK_IDENTITY:
            return 0.0, 1.0
        if c == codes.LINK_LOG:
            return -inf, 0.0
        if c == codes.LINK_SOFTPLUS:
            return -inf, math.log(math.e - 1.0)
        if c == codes.LINK_RELU:
            return 0.0, 1.0
        return -inf, inf
    if family.code == codes.FAMILY_GAUSSIAN:
        return -inf, inf
    if c in (codes.LINK_IDENTITY, codes.LINK_RELU):
        return 0.0, inf
    return -inf, inf


@lru_cache(maxsize=1)
def _gauss_legendre() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E[f(Z)]`` for ``Z ~ N(0, 1)`` truncated to +-TAIL_Z."""
    x, w = np.polynomial.legendre.leggauss(_GL_NODES)
    z = TAIL_Z * x
    v = w * np.exp(-0.5 * z * z)
    return z, v / v.sum()


def _mean_response(link: links.Link, b0: float, atoms, weights, sd: float) -> float:
    if sd > 0.0:
        z, v = _gauss_legendre()
        eta = b0 + atoms[:, None] + sd * z[None, :]
        mu = np.asarray(link.h(eta.ravel())).reshape(eta.shape)
        return float(np.sum(weights * np.sum(mu * v[None, :], axis=1)))
    return float(np.sum(weights * np.asarray(link.h(b0 + atoms))))


def _fmt_interval(lo: float, hi: float) -> str:
    return f"({lo:g}, {hi:g})"


def _domain_error(s: Scenario, b0, lo, hi, pop, detail: str) -> ValidationError:
    atoms, weights, _, _, sd = pop
    if b0 is not None:
        if sd > 0.0:
            below = special.ndtr((lo - b0 - atoms) / sd) if lo > -math.inf else 0.0 * atoms
            above = special.ndtr((b0 + atoms - hi) / sd) if hi < math.inf else 0.0 * atoms
        else:
            below = (b0 + atoms <= lo).astype(float)
            above = (b0 + atoms >= hi).astype(float)
        frac = float(np.sum(weights * (below + above)))
        frac_text = f"{frac:.3g}" if frac > 0.0 else "a small fraction (< 1e-5)"
        detail = (
            f"with intercept {b0:.6g} a fraction {frac_text} of the design population has "
            f"eta outside it ({detail})"
        )
    bounded = s.design in ("uniform", "binary", "categorical")
    advice = "" if bounded else "a bounded design (uniform, binary, categorical), "
    return ValidationError(
        f"scenario {s.id} (family {s.family!r}, link {s.link!r}, design {s.design!r}) gives "
        f"invalid means: the linear predictor must lie in {_fmt_interval(lo, hi)}, but "
        f"{detail}. Use {advice}a smaller signal, a mean further inside the domain, or an "
        f"explicit beta."
    )


def _span_text(b0: float, a_min: float, a_max: float, sd: float) -> str:
    lo, hi = b0 + a_min - TAIL_Z * sd, b0 + a_max + TAIL_Z * sd
    tail = f", +-{TAIL_Z:g} sd of its Gaussian part" if sd > 0.0 else ""
    return f"eta spans [{lo:.4g}, {hi:.4g}]{tail}"


def _solve_intercept(s, link, lo, hi, pop) -> float:
    """Root of ``E[h(b0 + u)] = mean`` over the intercepts that keep eta in (lo, hi)."""
    atoms, weights, a_min, a_max, sd = pop
    b_lo = lo - (a_min - TAIL_Z * sd)
    b_hi = hi - (a_max + TAIL_Z * sd)
    if not b_lo < b_hi:
        raise _domain_error(
            s,
            None,
            lo,
            hi,
            pop,
            f"the linear predictor's own spread ({_span_text(0.0, a_min, a_max, sd)}) is "
            f"wider than that interval, whatever the intercept",
        )

    def f(b0: float) -> float:
        return _mean_response(link, b0, atoms, weights, sd) - s.mean

    # The mean response is monotone in b0 (h is monotone), so the target is reachable iff
    # it lies between the values at the two ends: at a finite end just inside (h may be
    # infinite on the boundary itself), at an infinite end the limit of h.
    def end(b: float, inward: float) -> tuple[float | None, float]:
        if not math.isfinite(b):
            return None, float(link.h(np.array([-inward * 1e300]))[0]) - s.mean
        gap = 1e-9 * max(1.0, abs(b))
        for _ in range(60):
            value = f(b + inward * gap)
            if math.isfinite(value):
                break
            gap *= 2.0
        return b + inward * gap, value

    (left, f_left), (right, f_right) = end(b_lo, 1.0), end(b_hi, -1.0)
    # (a limit may be infinite; a value at a finite end must not be)
    finite_ends = (left is None or math.isfinite(f_left)) and (
        right is None or math.isfinite(f_right)
    )
    if not finite_ends or not f_left * f_right < 0.0:
        if f_left == 0.0 and left is not None:
            return left
        if f_right == 0.0 and right is not None:
            return right
        m_a, m_b = sorted((f_left + s.mean, f_right + s.mean))
        raise _domain_error(
            s,
            None,
            lo,
            hi,
            pop,
            f"the target mean {s.mean:g} is not reachable with every mean valid: the "
            f"population mean response ranges over ({m_a:.4g}, {m_b:.4g}) for the "
            f"admissible intercepts",
        )
    # an infinite end: walk out from the finite one, doubling the step, until the sign
    # changes (it must: the limit there has the other sign)
    if left is None and right is None:
        f_zero = f(0.0)
        if f_zero == 0.0:
            return 0.0
        if f_zero * f_right < 0.0:
            left, f_left = 0.0, f_zero
        else:
            right, f_right = 0.0, f_zero
    step = 1.0
    while left is None or right is None:
        if step > 1e300:
            raise _domain_error(s, None, lo, hi, pop, "no intercept reaches the target mean")
        if right is None:
            b, value = left + step, f(left + step)
            if f_left * value <= 0.0:
                right, f_right = b, value
            else:
                left, f_left = b, value
        else:
            b, value = right - step, f(right - step)
            if f_right * value <= 0.0:
                left, f_left = b, value
            else:
                right, f_right = b, value
        step *= 2.0
    if f_left == 0.0:
        return left
    if f_right == 0.0:
        return right
    return float(optimize.brentq(f, left, right, xtol=1e-14, rtol=4 * np.finfo(float).eps))


@lru_cache(maxsize=256)
def _truth(s: Scenario) -> tuple[np.ndarray, float]:
    """``(beta*, sd of x' beta_x)``: the true coefficients of a scenario, domain-checked."""
    family, link = s.get_family(), s.get_link()
    mean_x, cov = _design_moments(s)
    if s.beta is not None:
        beta = np.array(s.beta, dtype=np.float64)
        slopes = beta[1:]
        b0 = None
    else:
        d = _direction(s.p)
        slopes = (s.signal / math.sqrt(_quad(cov, d))) * d
        b0 = 0.0 if family.is_binary else None
    sd_u = math.sqrt(max(_quad(cov, slopes), 0.0))
    pop = _population(s, slopes)
    lo, hi = _eta_interval(family, link)
    if s.beta is not None:
        b0 = float(s.beta[0])
    elif b0 is None:
        if link.code == codes.LINK_IDENTITY:
            b0 = s.mean - float(np.sum(mean_x * slopes))
        elif link.code == codes.LINK_LOG:
            if s.mean <= 0.0:
                raise ValidationError(
                    f"scenario key 'mean' must be > 0 with the log link; got {s.mean!r}"
                )
            b0 = math.log(s.mean) - _log_mgf(s, slopes)
        else:
            b0 = _solve_intercept(s, link, lo, hi, pop)
    _, _, a_min, a_max, sd = pop
    if not (b0 + a_min - TAIL_Z * sd > lo and b0 + a_max + TAIL_Z * sd < hi):
        raise _domain_error(s, b0, lo, hi, pop, _span_text(b0, a_min, a_max, sd))
    beta = np.concatenate([[b0], slopes]).astype(np.float64)
    beta.setflags(write=False)
    return beta, sd_u


def true_beta(scenario: Scenario | Mapping[str, Any]) -> np.ndarray:
    """The true coefficients ``[intercept, beta_1 .. beta_p]`` of a scenario.

    A property of the scenario alone (see the module notes for the rule); raises
    :class:`~simbench.errors.ValidationError` if the scenario's means leave the family's
    domain, so a sweep can check a scenario before drawing any data.
    """
    return _truth(_as_scenario(scenario))[0].copy()


# ---- designs ---------------------------------------------------------------------------------


def _draw_design(s: Scenario, rng: np.random.Generator, n: int) -> np.ndarray:
    p = s.p
    if s.design == "gaussian":
        return rng.standard_normal((n, p))
    if s.design == "correlated":
        if s.correlation == "equi":
            z = rng.standard_normal((n, p + 1))
            return math.sqrt(s.rho) * z[:, :1] + math.sqrt(1.0 - s.rho) * z[:, 1:]
        z = rng.standard_normal((n, p))
        X = np.empty((n, p))
        X[:, 0] = z[:, 0]
        scale = math.sqrt(1.0 - s.rho * s.rho)
        for j in range(1, p):
            X[:, j] = s.rho * X[:, j - 1] + scale * z[:, j]
        return X
    if s.design == "uniform":
        return rng.uniform(-_SQRT3, _SQRT3, size=(n, p))
    if s.design == "binary":
        return 2.0 * rng.integers(0, 2, size=(n, p)) - 1.0
    if s.design == "mixed":
        pc = (p + 1) // 2
        X = np.empty((n, p))
        X[:, :pc] = rng.standard_normal((n, pc))
        X[:, pc:] = 2.0 * rng.integers(0, 2, size=(n, p - pc)) - 1.0
        return X
    level = rng.integers(0, s.levels, size=n)
    return (level[:, None] == np.arange(1, s.levels)[None, :]).astype(np.float64)


def _draw_separable(s: Scenario, rng, n: int, beta: np.ndarray, margin: float) -> np.ndarray:
    """Design rows with ``|eta*| >= margin``, the first ``n`` accepted in drawing order."""
    kept, have = [], 0
    for _ in range(10_000):
        X = _draw_design(s, rng, 2 * (n - have) + 64)
        X = X[np.abs(beta[0] + _rowdot(X, beta[1:])) >= margin]
        kept.append(X[: n - have])
        have += kept[-1].shape[0]
        if have == n:
            return np.concatenate(kept, axis=0)
    raise ValidationError(
        f"scenario {s.id}: almost no design point has |eta*| >= {margin:.3g} (the separable "
        f"margin, {SEPARABLE_MARGIN} sd of eta*); use a design with more spread"
    )


# ---- datasets --------------------------------------------------------------------------------


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.base is not None or not a.flags.owndata:
        a = a.copy()
    a.setflags(write=False)
    return a


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A training and a test sample from a known GLM, with the exact truth.

    Arrays are float64, C-contiguous and read-only.  ``X`` holds no intercept column;
    ``beta`` is ``[intercept, beta_1 .. beta_p]``.  For each sample,
    ``eta = beta[0] + X beta[1:] + offset`` (the offset is included) and
    ``mu = link.h(eta)`` is the exact conditional mean of ``y`` (except with
    ``separable=True``, where ``y = 1{eta > 0}``).  ``weights`` are the prior weights
    (binomial: the trials, with ``y`` a proportion; 1 otherwise).

    Attributes
    ----------
    X, y, weights, offset, eta, mu : numpy.ndarray
        Training sample, shapes (n, p) and (n,).
    X_test, y_test, weights_test, offset_test, eta_test, mu_test : numpy.ndarray
        Test sample from the same design, shapes (n_test, p) and (n_test,).
    beta : numpy.ndarray
        True coefficients, shape (p + 1,).
    family : Family
    link : Link
    phi : float
        Dispersion (1 for families without one).
    scenario : Scenario
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    weights_test: np.ndarray
    offset_test: np.ndarray
    eta_test: np.ndarray
    mu_test: np.ndarray
    beta: np.ndarray
    family: families.Family
    link: links.Link
    phi: float
    scenario: Scenario

    @property
    def n(self) -> int:
        """Training sample size."""
        return self.X.shape[0]

    @property
    def p(self) -> int:
        """Number of covariates (columns of ``X``; the intercept is not one)."""
        return self.X.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset(scenario={self.scenario.id}, family={self.family.name!r}, "
            f"link={self.scenario.link!r}, n={self.n}, n_test={self.X_test.shape[0]}, "
            f"p={self.p}, phi={self.phi:g})"
        )


def _child(root: np.random.SeedSequence, k: int) -> np.random.Generator:
    # the k-th child built explicitly: SeedSequence.spawn would mutate a caller's sequence
    seq = np.random.SeedSequence(
        entropy=root.entropy, spawn_key=(*root.spawn_key, k), pool_size=root.pool_size
    )
    return np.random.Generator(np.random.PCG64(seq))


_STREAMS = {"x": 0, "y": 1, "x_test": 2, "y_test": 3, "exposure": 4, "exposure_test": 5}


_CDF_LINKS = frozenset({"logit", "probit", "cloglog", "loglog", "cauchit"})


def _draw_sample(s, family, link, phi, beta, sd_u, n, rng_x, rng_y, rng_e):
    if s.separable:
        X = _draw_separable(s, rng_x, n, beta, SEPARABLE_MARGIN * sd_u)
    else:
        X = _draw_design(s, rng_x, n)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if s.exposure:
        offset = rng_e.uniform(math.log(EXPOSURE_RANGE[0]), math.log(EXPOSURE_RANGE[1]), n)
    else:
        offset = np.zeros(n)
    eta = beta[0] + _rowdot(X, beta[1:]) + offset
    mu = np.asarray(link.h(eta), dtype=np.float64)
    ok = np.asarray(link.eta_valid(eta), dtype=bool)
    if not (family.is_binary and link.name in _CDF_LINKS):
        # a CDF link maps every finite eta inside (0, 1); a mean that rounds to 0 or 1 in
        # float64 (cloglog at eta > 3.6) is still a valid probability to sample from
        ok &= np.asarray(family.mu_valid(mu), dtype=bool)
    if not ok.all():
        bad = int(np.count_nonzero(~ok))
        raise ValidationError(
            f"scenario {s.id} (family {s.family!r}, link {s.link!r}) drew {bad} of {n} "
            f"points ({bad / n:.3g}) with invalid means, e.g. eta = {eta[~ok][0]:.6g}; use a "
            f"bounded design, a smaller signal or a mean further inside the domain"
        )
    weights = np.full(n, float(s.trials)) if family.code == codes.FAMILY_BINOMIAL else np.ones(n)
    if s.separable:
        y = (eta > 0.0).astype(np.float64)
    else:
        y = sample(family, mu, phi, rng_y, weights=weights)
    return X, y, weights, offset, eta, mu


def _as_scenario(scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return Scenario.from_dict(scenario)
    raise ValidationError(f"expected a Scenario or a mapping of scenario keys; got {scenario!r}")


def simulate(scenario: Scenario | Mapping[str, Any], seed: int | np.random.SeedSequence) -> Dataset:
    """Draw a training and a test sample from a scenario's GLM.

    Parameters
    ----------
    scenario : Scenario or mapping
        The data-generating process (a mapping goes through :meth:`Scenario.from_dict`).
    seed : int or numpy.random.SeedSequence
        The data seed; the same (scenario, seed) gives identical arrays bit for bit.

    Returns
    -------
    Dataset

    Raises
    ------
    ValidationError
        For an invalid scenario, seed, or means outside the family's domain.
    """
    s = _as_scenario(scenario)
    root = _seed_sequence(seed)
    beta, sd_u = _truth(s)
    family, link = s.get_family(), s.get_link()
    phi = float(s.dispersion) if family.has_dispersion else 1.0
    st = {k: _child(root, v) for k, v in _STREAMS.items()}
    train = _draw_sample(s, family, link, phi, beta, sd_u, s.n, st["x"], st["y"], st["exposure"])
    test = _draw_sample(
        s, family, link, phi, beta, sd_u, s.n_test, st["x_test"], st["y_test"], st["exposure_test"]
    )
    train, test = [_frozen(a) for a in train], [_frozen(a) for a in test]
    return Dataset(*train, *test, beta=_frozen(beta), family=family, link=link, phi=phi, scenario=s)
