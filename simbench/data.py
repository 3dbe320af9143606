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
``columns``     one distribution per column, given by the key ``columns``
                (:mod:`simbench.columns`: ``gaussian(m, s)``, ``uniform(a, b)``,
                ``bernoulli(q)`` 0/1, ``rademacher`` +-1), independent, not standardised
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
Binary families take intercept 0 (``mean`` is ignored; on a per-column design, whose
covariates need not have mean 0, the intercept that makes ``E[eta*] = 0``).  So ``beta*``
is a property of the scenario alone: it does not depend on the seed, and replicates of a
scenario share one truth (computed by :mod:`simbench.truth`).

**Non-linear truths.**  ``predictor`` may be an expression ``f`` in ``x1 .. xp``
(:mod:`simbench.expression`; parsed through a whitelist, never executed).  Its population
moments are estimated once, on a fixed sample of the design (:func:`population_sample`,
2^18 rows for up to 16 covariates), and on that sample ``f = c0 + x'c + r(x)`` splits into
its least-squares linear part and the non-linear part ``r``, uncorrelated with every
covariate.  Then, with ``s = signal``:

* without ``nonlinearity``: ``eta* = b0 + s f(x) / sd(f)``, the expression as written scaled
  to standard deviation ``s``; its own share ``Var(r) / Var(f)`` is reported;
* with ``nonlinearity = lambda``: ``eta* = b0 + x'beta_lin + s sqrt(lambda) r(x) / sd(r)``,
  where ``beta_lin`` is the linear truth's slope direction scaled to standard deviation
  ``s sqrt(1 - lambda)``.  The two parts are uncorrelated, so ``Var(eta*) = s^2`` and
  ``lambda`` is exactly the share of it that no linear function of ``x`` explains.
  ``lambda = 0`` is the linear truth itself, computed as it is without an expression (the
  same arrays bit for bit); ``lambda = 1`` keeps only the non-linear part;
* with ``predictor_scale = "literal"``: ``eta* = f(x)``, the expression's own constants,
  no intercept (``signal`` and ``mean`` are unused).

``b0`` gives the population mean response ``mean`` as for a linear truth (exactly over the
sample: ``mean - E[u]`` for the identity link, ``log mean - log E[e^u]`` for the log link,
a root otherwise), or ``E[eta*] = 0`` for binary families.  The expression must be finite
on the sample and the means inside the family's domain there.  ``Dataset.beta`` is then the
linear part ``[b0, beta_x]`` of ``eta*`` (its population least-squares projection on
``(1, x)``); the coefficients a GLM converges to, the maximum-likelihood projection of the
truth onto the family and link, are :func:`simbench.metrics.truth_projection`'s.

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
import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import families, links
from ._domains import Domain
from ._registry import normalize_name, parse_call, unknown_name_message
from ._validation import boolean, integer, key_error, number, seed_sequence
from ._validation import child_generator as _child
from .columns import MAX_COLUMNS, Column, columns_text, parse_columns
from .design import COLUMNS_DESIGN, EXPOSURE_RANGE, population_size
from .design import draw_design as _draw_design
from .design import population_sample as _population_sample
from .errors import UnknownNameError, ValidationError
from .expression import Expression, parse_expression
from .kernels import codes
from .sampling import _is_real, draw, sample
from .truth import TruePredictor, true_predictor

__all__ = [
    "CORRELATIONS",
    "DESIGNS",
    "OPTIONAL_SCENARIO_KEYS",
    "PREDICTOR_SCALES",
    "SCENARIO_KEYS",
    "Dataset",
    "Scenario",
    "population_sample",
    "population_size",
    "sample",
    "simulate",
    "true_beta",
]

DESIGNS = ("gaussian", "correlated", "uniform", "binary", "mixed", "categorical")
CORRELATIONS = ("equi", "ar1")
LINEAR = "linear"  # the predictor of a GLM truth
PREDICTOR_SCALES = ("signal", "literal")

SEPARABLE_MARGIN = 0.1  # removed band |eta*| < SEPARABLE_MARGIN * sd(eta*)

_DEFAULT_P = 5
_DEFAULT_LEVELS = 4

# ---- field validation ----------------------------------------------------------------------


def _fail(key: str, value: object, accepted: str) -> ValidationError:
    return key_error("scenario", key, value, accepted)


def _as_int(key: str, value: object, low: int, high: int | None = None) -> int:
    return integer("scenario", key, value, low, high)


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
    return number(
        "scenario", key, value, low, high, low_open=low_open, high_open=high_open,
        accepted=accepted,
    )  # fmt: skip


def _in_domain(key: str, value: object, domain: Domain, note: str = "") -> float:
    """``value`` as a float inside ``domain``; the message says what the domain accepts."""
    if not _is_real(value) or float(value) not in domain:
        raise _fail(key, value, domain.accepted(key) + note)
    return float(value)


def _as_bool(key: str, value: object) -> bool:
    return boolean("scenario", key, value)


def _as_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    name = normalize_name(value) if isinstance(value, str) else None
    if name not in choices:
        raise UnknownNameError(
            f"scenario key {key!r}: " + unknown_name_message(key, value, list(choices))
        )
    return name


def _split_param(text: str) -> tuple[str, float | None]:
    """``"tweedie(1.7)"`` -> ``("tweedie", 1.7)``; ``"poisson"`` -> ``("poisson", None)``."""
    name, argument = parse_call(text)
    if argument is None:
        return text, None
    try:
        return name, float(argument)
    except ValueError:
        raise _fail("family", text, "a family name, optionally with its parameter") from None


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
        gaussian | correlated | uniform | binary | mixed | categorical | columns (see the
        module notes); ``columns`` is set by giving ``columns``.
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
        Ignored for binary families (intercept 0, or the one that centres ``eta*`` on a
        per-column design or with a predictor expression) and when ``beta`` is given.
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
    predictor : str
        ``"linear"`` (a GLM truth, the default) or an expression in ``x1 .. xp``
        (:mod:`simbench.expression`), e.g. ``"x1*x2 + sin(2*x3) + x4**2"``; stored in
        canonical text.  See the module notes for how it is scaled.
    nonlinearity : float or None
        ``lambda`` in [0, 1]: the true predictor mixes the linear predictor and the
        non-linear part of ``predictor`` so that ``lambda`` is the share of its variance
        that no linear function of ``x`` explains.  None (default): the expression as
        written.
    predictor_scale : str
        ``"signal"`` (default): the expression is scaled to standard deviation ``signal``
        and shifted by the intercept that gives ``mean``; ``"literal"``: ``eta* =``
        the expression exactly (its own constants; ``signal`` and ``mean`` unused).
    columns : sequence of str or None
        A per-column design (:mod:`simbench.columns`), e.g. ``["uniform(-2, 2) * 5",
        "bernoulli(0.5) * 5"]``; sets ``design = "columns"`` and ``p``.
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
    dispersion: float = families.DISPERSION.default
    alpha: float | None = None
    power: float | None = None
    trials: int = 1
    exposure: bool = False
    separable: bool = False
    beta: tuple[float, ...] | None = None
    # optional keys: left out of the canonical dictionary while at their defaults, so the
    # scenarios that do not use them keep their ids (OPTIONAL_SCENARIO_KEYS)
    predictor: str = LINEAR
    nonlinearity: float | None = None
    predictor_scale: str = "signal"
    columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        def put(key: str, value: Any) -> None:
            object.__setattr__(self, key, value)

        family, link = self._resolve_family_link(put)
        put("n", _as_int("n", self.n, 1))
        put("n_test", _as_int("n_test", self.n_test, 1))
        design = _as_choice("design", self.design, (*DESIGNS, COLUMNS_DESIGN))
        design = self._resolve_columns(put, design)
        put("design", design)
        self._resolve_shape(put, design)
        put(
            "rho",
            _as_float("rho", self.rho, "a number with 0 <= rho < 1", 0.0, 1.0, high_open=True),
        )
        put("correlation", _as_choice("correlation", self.correlation, CORRELATIONS))
        put("signal", _as_float("signal", self.signal, "a number >= 0", 0.0))
        # the population mean must be a mean of the family (binary families ignore it)
        means = families.REAL if family.is_binary else family.entry.mu_domain
        note = "" if means == families.REAL else f" (a mean of the {family.name} family)"
        put("mean", _in_domain("mean", self.mean, means, note))
        put("dispersion", _in_domain("dispersion", self.dispersion, families.DISPERSION.domain))
        put("trials", _as_int("trials", self.trials, 1))
        put("exposure", _as_bool("exposure", self.exposure))
        put("separable", _as_bool("separable", self.separable))
        self._resolve_beta(put)
        self._resolve_predictor(put)
        self._check_combinations(family, link)
        self._drop_inapplicable(put, family)
        if self.expression is not None and self.nonlinearity != 0.0:
            # the population checks (finite on the design, a non-linear part to mix in,
            # means in the domain) here, so that a sweep with such a scenario fails to
            # validate rather than to run; cached, the data reuse them
            true_predictor(self)

    def _drop_inapplicable(self, put, family: families.Family) -> None:
        # Keys that do not affect the data are reset to their defaults, so that a grid over
        # them (alpha on a Poisson scenario, rho on an iid design) gives one scenario, one id
        # and one data set, not copies that differ only in a parameter nobody reads.
        for parameter in families.PARAMETERS:  # alpha, power: each read by one family
            if parameter is not family.entry.parameter:
                put(parameter.name, parameter.default)
        if family.code != codes.FAMILY_BINOMIAL:
            put("trials", 1)
        if not family.has_dispersion:
            put("dispersion", families.DISPERSION.default)
        if family.is_binary and self.beta is None:
            put("mean", 2.0)
        if self.design != "correlated":
            put("rho", 0.5)
            put("correlation", "equi")
        if self.design != "categorical":
            put("levels", _DEFAULT_LEVELS)
        if self.predictor_scale == "literal":
            put("signal", _FIELD_DEFAULTS["signal"])
            put("mean", _FIELD_DEFAULTS["mean"])

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
        own = families.entry(name).parameter
        if own is None and param not in (None, 0.0) and isinstance(self.family, str):
            raise _fail("family", self.family, f"{name!r} without a parameter")
        for parameter in families.PARAMETERS:  # alpha, power: a field or the name's "(x)"
            value = self._family_param(parameter, from_name=param if parameter is own else None)
            put(parameter.name, _in_domain(parameter.name, value, parameter.domain))
        fam = families.get(name, alpha=self.alpha, power=self.power)
        put("family", fam.name)
        raw_link = self.link
        if isinstance(raw_link, links.Link):
            raw_link = raw_link.spec
        elif not isinstance(raw_link, str):
            accepted = f'a link name or "canonical" (a string, not {type(raw_link).__name__})'
            raise _fail("link", raw_link, accepted)
        try:
            if normalize_name(raw_link) == "canonical":
                lnk = fam.default_link
            else:
                lnk = fam.check_link(raw_link)
        except ValidationError as err:
            raise type(err)(f"scenario key 'link': {err}") from None
        put("link", lnk.spec)
        return fam, lnk

    def _family_param(self, parameter, from_name: float | None):
        """The value of ``alpha`` / ``power``: the field, or the family string's parameter
        (``from_name``, given only for the family's own parameter), or the default."""
        key = parameter.name
        given = getattr(self, key)
        if given is not None and not _is_real(given):
            raise _fail(key, given, "a number")
        if from_name is None:
            return parameter.default if given is None else given
        if given is not None and float(given) != from_name:
            raise ValidationError(
                f"scenario key {key!r} is {given!r} but family {self.family!r} gives "
                f"{from_name!r}; give the parameter once"
            )
        return from_name

    def _resolve_shape(self, put, design: str) -> None:
        p, levels = self.p, self.levels
        if p is not None:
            p = _as_int("p", p, 1, MAX_COLUMNS)
        if levels is not None:
            levels = _as_int("levels", levels, 2, MAX_COLUMNS + 1)
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

    def _resolve_columns(self, put, design: str) -> str:
        if self.columns is None:
            if design == COLUMNS_DESIGN:
                raise ValidationError(
                    "scenario key 'design': design \"columns\" needs the key 'columns', "
                    "the list of column distributions, e.g. columns = "
                    '["uniform(-2, 2) * 5", "bernoulli(0.5) * 5"]'
                )
            return design
        if design not in ("gaussian", COLUMNS_DESIGN):
            raise ValidationError(
                f"scenario keys 'design' and 'columns' both give the design (design "
                f"{design!r}); give only 'columns' for a per-column design"
            )
        cols = parse_columns(self.columns)
        if self.p is not None and _as_int("p", self.p, 1) != len(cols):
            raise ValidationError(
                f"scenario keys 'p' and 'columns' disagree: columns lists {len(cols)} "
                f"columns, got p={self.p!r}; give only 'columns'"
            )
        put("columns", columns_text(cols))
        put("p", len(cols))
        return COLUMNS_DESIGN

    def _resolve_predictor(self, put) -> None:
        text = self.predictor
        if isinstance(text, str) and normalize_name(text) == LINEAR:
            put("predictor", LINEAR)
        else:
            if self.beta is not None:
                raise ValidationError(
                    "scenario keys 'beta' and 'predictor' both give the truth: beta is "
                    "the linear truth's coefficients; for an expression with your own "
                    'constants use predictor_scale = "literal"'
                )
            put("predictor", parse_expression(text, self.p).text)
        put(
            "predictor_scale",
            _as_choice("predictor_scale", self.predictor_scale, PREDICTOR_SCALES),
        )
        if self.nonlinearity is not None:
            put(
                "nonlinearity",
                _as_float(
                    "nonlinearity",
                    self.nonlinearity,
                    "a number with 0 <= nonlinearity <= 1 (the non-linear share of the "
                    "true predictor's variance)",
                    0.0,
                    1.0,
                ),
            )
        linear = self.predictor == LINEAR
        if linear and self.nonlinearity is not None:
            raise ValidationError(
                "scenario key 'nonlinearity' needs a predictor expression to take the "
                'non-linear part from (predictor = "linear" has none), e.g. predictor = '
                '"x1*x2 + x3**2 + sin(2*x4)"'
            )
        if self.predictor_scale == "literal":
            if linear:
                raise ValidationError(
                    "scenario key 'predictor_scale': \"literal\" uses a predictor "
                    'expression as written; with predictor = "linear" give the '
                    "coefficients as beta instead"
                )
            if self.nonlinearity is not None:
                raise ValidationError(
                    "scenario keys 'predictor_scale' and 'nonlinearity': a literal "
                    "predictor is used as written, so it cannot be rescaled to a "
                    'non-linear share; accepted: predictor_scale = "signal" with '
                    'nonlinearity, or "literal" without it'
                )

    @property
    def expression(self) -> Expression | None:
        """The parsed ``predictor`` (None for the linear truth)."""
        if self.predictor == LINEAR:
            return None
        return _parse_predictor(self.predictor, self.p)

    @property
    def column_list(self) -> tuple[Column, ...]:
        """The parsed ``columns`` of a per-column design (empty for the other designs)."""
        return () if self.columns is None else _parse_columns(self.columns)

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
            if self.predictor_scale == "literal":
                slopes_zero = False  # the expression's own spread (checked on the design)
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
        accepted = [*SCENARIO_KEYS, *OPTIONAL_SCENARIO_KEYS]
        for key in data:
            if key not in accepted:
                raise UnknownNameError(unknown_name_message("scenario key", key, accepted))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """All fields in canonical form (JSON-ready; ``beta`` and ``columns`` lists or
        ``None``); the :data:`OPTIONAL_SCENARIO_KEYS` only when they differ from their
        defaults, so that adding them changed no existing scenario's id."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["beta"] = None if self.beta is None else list(self.beta)
        out["columns"] = None if self.columns is None else list(self.columns)
        for key in OPTIONAL_SCENARIO_KEYS:
            if out[key] == _FIELD_DEFAULTS[key]:
                del out[key]
        return out

    @property
    def id(self) -> str:
        """Stable short hash: the first 12 hex digits of sha256 of the sorted-key JSON of
        :meth:`to_dict`; independent of key order and of how names were spelled."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def get_family(self) -> families.Family:
        """The :class:`~simbench.families.Family` object (with ``alpha`` / ``power``)."""
        return families.get(self.family, alpha=self.alpha, power=self.power)

    def get_link(self) -> links.Link:
        """The resolved :class:`~simbench.links.Link` object."""
        return links.get(self.link)


#: Keys written into a scenario's canonical dictionary only when not at their default.
OPTIONAL_SCENARIO_KEYS: tuple[str, ...] = (
    "predictor",
    "nonlinearity",
    "predictor_scale",
    "columns",
)
#: Keys of every scenario's canonical dictionary (the accepted keys are these and
#: :data:`OPTIONAL_SCENARIO_KEYS`).
SCENARIO_KEYS: list[str] = [
    f.name for f in dataclasses.fields(Scenario) if f.name not in OPTIONAL_SCENARIO_KEYS
]
_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Scenario)}


@functools.lru_cache(maxsize=256)
def _parse_predictor(text: str, p: int) -> Expression:
    return parse_expression(text, p)


@functools.lru_cache(maxsize=256)
def _parse_columns(columns: tuple[str, ...]) -> tuple[Column, ...]:
    return parse_columns(columns)


def true_beta(scenario: Scenario | Mapping[str, Any]) -> np.ndarray:
    """The true coefficients ``[intercept, beta_1 .. beta_p]`` of a scenario.

    A property of the scenario alone (see the module notes for the rule); raises
    :class:`~simbench.errors.ValidationError` if the scenario's means leave the family's
    domain, so a sweep can check a scenario before drawing any data.
    """
    return true_predictor(_as_scenario(scenario)).beta.copy()


# ---- designs ---------------------------------------------------------------------------------


def population_sample(scenario: Scenario | Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A large fixed sample of a scenario's design: ``(X, offset)``.

    The same for every call (a fixed seed, independent of any data seed), with
    :func:`population_size` rows; ``offset`` holds the log exposures when the scenario
    draws exposures, zeros otherwise.  The population moments of a non-linear predictor
    (its scale, its linear part, the intercept; :func:`simbench.truth.true_predictor`)
    and the GLM projection of the truth (:func:`simbench.metrics.truth_projection`) are
    computed on it.  Separable scenarios are sampled without the margin's rejection.
    """
    return _population_sample(_as_scenario(scenario))


def _draw_separable(s: Scenario, rng, n: int, tp: TruePredictor, margin: float) -> np.ndarray:
    """Design rows with ``|eta*| >= margin``, the first ``n`` accepted in drawing order."""
    kept, have = [], 0
    for _ in range(10_000):
        X = _draw_design(s, rng, 2 * (n - have) + 64)
        X = X[np.abs(tp.eta(X)) >= margin]
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
    ``separable=True``, where ``y = 1{eta > 0}``).  With a non-linear ``predictor``,
    ``eta`` and ``mu`` are the true ones and ``beta`` is the linear part of ``eta`` (see
    the module notes).  ``weights`` are the prior weights
    (binomial: the trials, with ``y`` a proportion; 1 otherwise).

    Attributes
    ----------
    X, y, weights, offset, eta, mu : numpy.ndarray
        Training sample, shapes (n, p) and (n,).
    X_test, y_test, weights_test, offset_test, eta_test, mu_test : numpy.ndarray
        Test sample from the same design, shapes (n_test, p) and (n_test,).
    beta : numpy.ndarray
        True coefficients, shape (p + 1,) (a non-linear truth: its linear part).
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


_STREAMS = {"x": 0, "y": 1, "x_test": 2, "y_test": 3, "exposure": 4, "exposure_test": 5}


def _draw_sample(s, family, link, phi, tp, n, rng_x, rng_y, rng_e):
    if s.separable:
        X = _draw_separable(s, rng_x, n, tp, SEPARABLE_MARGIN * tp.sd)
    else:
        X = _draw_design(s, rng_x, n)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if s.exposure:
        offset = rng_e.uniform(math.log(EXPOSURE_RANGE[0]), math.log(EXPOSURE_RANGE[1]), n)
    else:
        offset = np.zeros(n)
    eta = tp.eta(X) + offset
    mu = np.asarray(link.h(eta), dtype=np.float64)
    ok = np.asarray(link.eta_valid(eta), dtype=bool)
    if not (family.is_binary and link.entry.cdf):
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
        # the means are checked above and the weights are 1 or the trials
        y = draw(family, mu, phi, rng_y, weights)
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
    root = seed_sequence(seed)
    tp = true_predictor(s)
    family, link = s.get_family(), s.get_link()
    phi = float(s.dispersion) if family.has_dispersion else 1.0
    # each stream is a child sequence of its own, so the ones a scenario does not draw from
    # (the exposures, usually) need not be built
    st = {k: _child(root, v) for k, v in _STREAMS.items() if s.exposure or "exposure" not in k}
    train = _draw_sample(s, family, link, phi, tp, s.n, st["x"], st["y"], st.get("exposure"))
    test = _draw_sample(
        s, family, link, phi, tp, s.n_test, st["x_test"], st["y_test"], st.get("exposure_test")
    )
    train, test = [_frozen(a) for a in train], [_frozen(a) for a in test]
    beta = _frozen(tp.beta)
    return Dataset(*train, *test, beta=beta, family=family, link=link, phi=phi, scenario=s)
