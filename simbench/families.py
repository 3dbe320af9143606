"""Exponential families: the vocabulary object :class:`Family`, the registry and :func:`get`.

A family fixes the unit variance :math:`V(\\mu)`, the unit deviance
:math:`d(y, \\mu) = 2\\int_\\mu^y (y - t)/V(t)\\,dt`, the full log-likelihood and the
support of the response.  The numbers come from :mod:`simbench.kernels.families`; this
module names them, validates input and allocates output.

============================  =========================  ===========================
family                        unit variance V(mu)        response y
============================  =========================  ===========================
gaussian                      1                          real
bernoulli                     mu (1 - mu)                0 or 1
binomial                      mu (1 - mu)                proportion; weights = trials
poisson                       mu                         0, 1, 2, ...
gamma                         mu^2                       y > 0
inverse_gaussian              mu^3                       y > 0
negative_binomial (alpha)     mu + alpha mu^2            0, 1, 2, ...
tweedie (power p, 1 < p < 2)  mu^p                       y >= 0, point mass at 0
============================  =========================  ===========================

Prior weights follow statsmodels' ``var_weights``: for binomial the weight is the number of
trials and ``y`` the proportion of successes; for the dispersion families (gaussian, gamma,
inverse_gaussian, tweedie) observation ``i`` has dispersion :math:`\\phi / w_i`; for the
others the weight multiplies the log-likelihood.

>>> from simbench import families
>>> families.get("nb2", alpha=0.5)
Family('negative_binomial', 0.5)
>>> families.get("tweedie(1.3)").variance(2.0)
2.4622888266898326
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from simbench._domains import Domain, Parameter
from simbench._registry import Registry, VocabularyItem, closest, normalize_name, parse_call
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes

__all__ = [
    "DESCRIPTIONS",
    "REGISTRY",
    "SPECS",
    "Family",
    "FamilySpec",
    "descriptions",
    "get",
    "names",
]

# ---- domains ---------------------------------------------------------------------------------
REAL = Domain()
POSITIVE = Domain(0.0)
NONNEGATIVE = Domain(0.0, low_closed=True)
COUNTS = Domain(0.0, low_closed=True, integer=True)
BINARY = Domain(values=(0.0, 1.0))
UNIT = Domain(0.0, 1.0, low_closed=True, high_closed=True)
OPEN_UNIT = Domain(0.0, 1.0)

# ---- parameters ------------------------------------------------------------------------------
#: the negative-binomial alpha in V = mu + alpha mu^2
ALPHA = Parameter("alpha", "alpha", POSITIVE, 1.0)
#: the Tweedie power p in V = mu^p
POWER = Parameter("power", "p", Domain(1.0, 2.0), 1.5)
#: the family parameters, each held by one family and named like the scenario key
PARAMETERS = (ALPHA, POWER)
#: the dispersion phi of the families that have one (the others have phi = 1)
DISPERSION = Parameter("dispersion", "phi", POSITIVE, 1.0)

DEFAULT_ALPHA = ALPHA.default
DEFAULT_POWER = POWER.default


@dataclass(frozen=True)
class FamilySpec:
    """One entry of the family vocabulary: everything simbench knows about a family
    besides its kernels.

    Parameters
    ----------
    name, code, description, aliases
        Canonical name, kernel code (:mod:`simbench.kernels.codes`), one line for listings,
        other accepted names.
    links : tuple of str
        The links the family accepts (``"power"`` stands for every power link).
    canonical_link : str or None
        The canonical link's name; ``"power"`` means the power link
        :math:`\\mu^{1-p}` of the family's parameter ``p``; None where it is not in the
        link vocabulary.
    default_link : str
        The link of ``link = "canonical"``.
    parameter : Parameter or None
        The family's parameter (negative binomial alpha, Tweedie power).
    has_dispersion, is_binary : bool
        Whether phi is free; whether the response is a 0/1 outcome or a proportion of them.
    y_support, y_deviance, mu_domain : Domain
        The support of the response, the wider set where the deviance is defined (non-integer
        counts, fractional binary responses: quasi-likelihood), and the open mean space.
    responses : str
        What the family's responses are, in words (``"counts 0, 1, 2, ..."``).
    """

    name: str
    code: int
    description: str
    aliases: tuple[str, ...]
    links: tuple[str, ...]
    canonical_link: str | None
    default_link: str
    y_support: Domain
    y_deviance: Domain
    mu_domain: Domain
    responses: str
    parameter: Parameter | None = None
    has_dispersion: bool = False
    is_binary: bool = False


_BINARY_LINKS = ("logit", "probit", "cloglog", "loglog", "cauchit", "log", "identity")

SPECS: tuple[FamilySpec, ...] = (
    FamilySpec(
        "gaussian",
        codes.FAMILY_GAUSSIAN,
        "normal; V(mu) = 1, dispersion phi = sigma^2",
        ("normal", "gauss"),
        ("identity", "log", "inverse", "inverse_squared", "sqrt", "power"),
        "identity",
        "identity",
        y_support=REAL,
        y_deviance=REAL,
        mu_domain=REAL,
        responses="real responses, negative ones included",
        has_dispersion=True,
    ),
    FamilySpec(
        "bernoulli",
        codes.FAMILY_BERNOULLI,
        "binary y in {0, 1}; V(mu) = mu (1 - mu)",
        (),
        _BINARY_LINKS,
        "logit",
        "logit",
        y_support=BINARY,
        y_deviance=UNIT,
        mu_domain=OPEN_UNIT,
        responses="responses in {0, 1}",
        is_binary=True,
    ),
    FamilySpec(
        "binomial",
        codes.FAMILY_BINOMIAL,
        "proportion y of n trials (weights = n); V(mu) = mu (1 - mu)",
        (),
        _BINARY_LINKS,
        "logit",
        "logit",
        y_support=Domain(0.0, 1.0, True, True, note="a proportion: successes / trials"),
        y_deviance=UNIT,
        mu_domain=OPEN_UNIT,
        responses="proportions count/trials in [0, 1]",
        is_binary=True,
    ),
    FamilySpec(
        "poisson",
        codes.FAMILY_POISSON,
        "counts; V(mu) = mu",
        (),
        ("log", "identity", "sqrt", "power", "inverse"),
        "log",
        "log",
        y_support=COUNTS,
        y_deviance=NONNEGATIVE,
        mu_domain=POSITIVE,
        responses="counts 0, 1, 2, ...",
    ),
    FamilySpec(
        "gamma",
        codes.FAMILY_GAMMA,
        "y > 0, shape 1/phi, mean mu; V(mu) = mu^2",
        (),
        ("inverse", "log", "identity", "inverse_squared", "power", "sqrt"),
        "inverse",
        "inverse",
        y_support=POSITIVE,
        y_deviance=POSITIVE,
        mu_domain=POSITIVE,
        responses="positive responses",
        has_dispersion=True,
    ),
    FamilySpec(
        "inverse_gaussian",
        codes.FAMILY_INVERSE_GAUSSIAN,
        "y > 0, mean mu, shape 1/phi (Wald); V(mu) = mu^3",
        ("ig", "inverse_normal", "wald"),
        ("inverse_squared", "inverse", "log", "identity", "power"),
        "inverse_squared",
        "inverse_squared",
        y_support=POSITIVE,
        y_deviance=POSITIVE,
        mu_domain=POSITIVE,
        responses="positive responses",
        has_dispersion=True,
    ),
    FamilySpec(
        "negative_binomial",
        codes.FAMILY_NEGATIVE_BINOMIAL,
        "counts, NB2 gamma-Poisson mixture; V(mu) = mu + alpha mu^2 "
        f"(alpha fixed, default {ALPHA.default:g})",
        ("nb", "nb2", "negbin"),
        ("log", "identity", "sqrt", "power"),
        None,  # log(alpha mu / (1 + alpha mu)) is not a named link
        "log",
        y_support=COUNTS,
        y_deviance=NONNEGATIVE,
        mu_domain=POSITIVE,
        responses="counts 0, 1, 2, ...",
        parameter=ALPHA,
    ),
    FamilySpec(
        "tweedie",
        codes.FAMILY_TWEEDIE,
        "y >= 0 with mass at 0, compound Poisson-gamma; V(mu) = mu^p, "
        f"{POWER.domain.text('p')} (default {POWER.default:g})",
        (),
        ("log", "power", "identity", "sqrt", "inverse"),
        "power",  # mu^(1 - p)
        "log",
        y_support=NONNEGATIVE,
        y_deviance=NONNEGATIVE,
        mu_domain=POSITIVE,
        responses="responses >= 0 with exact zeros",
        parameter=POWER,
        has_dispersion=True,
    ),
)

_SPEC: dict[str, FamilySpec] = {spec.name: spec for spec in SPECS}


def _kernels():
    # imported on first use so that importing the vocabulary compiles and loads no Numba
    from simbench.kernels import families as k

    return k


def _links():
    from simbench import links

    return links


def _as_float_array(x, family: Family, what: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{family!r}: {what} must be an array of real numbers; got {type(x).__name__}"
        ) from None


def _first_bad(arr: np.ndarray, ok: np.ndarray) -> str:
    flat_ok = ok.reshape(-1)
    bad = np.flatnonzero(~flat_ok)
    i = int(bad[0])
    where = f" at index {i}" if arr.ndim > 0 else ""
    count = f" ({bad.size} of {flat_ok.size} values invalid)" if arr.ndim > 0 else ""
    return f"got {float(arr.reshape(-1)[i])!r}{where}{count}"


def _flat(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr.reshape(-1))


@dataclass(frozen=True, repr=False)
class Family(VocabularyItem):
    r"""An exponential dispersion family, identified by ``name`` and its parameter.

    Obtain families with :func:`get`; the constructor trusts its arguments.

    Parameters
    ----------
    name : str
        Canonical name (see :func:`names`).
    code : int
        Kernel code (:mod:`simbench.kernels.codes`).
    param : float
        The negative-binomial :math:`\alpha` or the Tweedie power :math:`p`; 0.0 otherwise.

    Notes
    -----
    The unit deviance is :math:`d(y, \mu) = 2\int_\mu^y (y - t)/V(t)\,dt`, so that
    :math:`\partial d/\partial\mu = -2(y - \mu)/V(\mu)` and, for families with a density
    of exponential-dispersion form, :math:`\log f(y; \mu, \phi) = \log f(y; y, \phi) -
    d(y, \mu)/(2\phi)`.  The parameterisations of the log-likelihood: Gamma with shape
    :math:`1/\phi` and mean :math:`\mu`; inverse Gaussian with mean :math:`\mu` and shape
    :math:`\lambda = 1/\phi`; NB2 as the gamma-Poisson mixture
    :math:`\Gamma(y + k)/(\Gamma(k)\,y!)\,(k/(k+\mu))^k (\mu/(k+\mu))^y`, :math:`k = 1/\alpha`;
    Tweedie as the compound Poisson-gamma law with Poisson rate
    :math:`\mu^{2-p}/(\phi(2-p))`, gamma shape :math:`(2-p)/(p-1)` and scale
    :math:`\phi(p-1)\mu^{p-1}`.
    """

    name: str
    code: int
    param: float = 0.0

    _entries = _SPEC  # entry (its FamilySpec), repr and spec ("tweedie(1.5)") come from there

    # ---- descriptive properties ----------------------------------------------------------

    @property
    def parameter_name(self) -> str | None:
        """``"alpha"`` (negative_binomial), ``"power"`` (tweedie) or None."""
        parameter = self.entry.parameter
        return None if parameter is None else parameter.name

    @property
    def description(self) -> str:
        """One line: the response and the variance function (for ``simbench list families``)."""
        text = self.entry.description
        if self.entry.parameter is not None:
            text += f"; here {self.parameter_name} = {self.param:g}"
        return text

    @property
    def has_dispersion(self) -> bool:
        """Whether :math:`\\phi` is a free parameter (gaussian, gamma, inverse_gaussian, tweedie);
        for the others :math:`\\phi = 1`."""
        return self.entry.has_dispersion

    @property
    def is_binary(self) -> bool:
        """Whether the response is a 0/1 outcome or a proportion of them (bernoulli, binomial)."""
        return self.entry.is_binary

    @property
    def y_support(self) -> str:
        """The support of the response, in words."""
        return self.entry.y_support.words()

    @property
    def mu_domain(self) -> str:
        """The mean space, in words."""
        return self.entry.mu_domain.words("mu")

    # ---- links ---------------------------------------------------------------------------

    @property
    def links(self) -> tuple[str, ...]:
        """Names of the links this family accepts (``"power"`` stands for every power link)."""
        return self.entry.links

    @functools.cached_property
    def canonical_link(self):
        """The canonical link :math:`g = (b')^{-1}`, or None where it is not in the link
        vocabulary (negative binomial: :math:`\\log(\\alpha\\mu/(1+\\alpha\\mu))`).
        Tweedie: :math:`\\mu^{1-p}` (power :math:`1-p`)."""
        name = self.entry.canonical_link
        if name == "power":  # the power link of the family's own parameter
            return _links().get("power", power=1.0 - self.param)
        return None if name is None else _links().get(name)

    @functools.cached_property
    def default_link(self):
        """The canonical link where it exists and is usual; log for negative_binomial and
        tweedie."""
        if self.entry.default_link == self.entry.canonical_link:
            return self.canonical_link
        return _links().get(self.entry.default_link)

    def check_link(self, link):
        """The :class:`~simbench.links.Link` for ``link`` if this family accepts it.

        Parameters
        ----------
        link : str or Link
            A link, a link name or alias, ``"power(λ)"``, or ``"canonical"`` (meaning
            :attr:`default_link`).  Where ``"power"`` is accepted every power link
            :math:`\\eta = \\mu^\\lambda` is, including the named ones (identity, sqrt,
            inverse, inverse_squared, log).

        Raises
        ------
        ValidationError
            The link is unknown or not accepted; the message names the family, the link and
            the accepted links.
        """
        links = _links()
        if isinstance(link, str) and normalize_name(link) == "canonical":
            return self.default_link
        try:
            resolved = links.get(link)
        except UnknownNameError:
            guess = closest(str(link), list(self.links))
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise UnknownNameError(
                f"family {self.spec!r}: unknown link {link!r}{hint}; accepted: "
                + ", ".join(self.links)
            ) from None
        ok = resolved.name in self.links or (
            "power" in self.links and resolved.power_exponent is not None
        )
        if not ok:
            raise ValidationError(
                f"family {self.spec!r} does not accept the link {resolved.name!r}"
                + (
                    f" (given as {link!r})"
                    if isinstance(link, str) and link != resolved.name
                    else ""
                )
                + "; accepted: "
                + ", ".join(self.links)
            )
        return resolved

    # ---- domains -------------------------------------------------------------------------

    def y_valid(self, y, support: bool = True) -> np.ndarray:
        """Boolean array: where ``y`` is in the support (``support=True``), or in the wider
        domain where the deviance is defined (``support=False``: non-integer counts and
        fractional binary responses allowed, as in quasi-likelihood)."""
        return self._y_domain(support).contains(_as_float_array(y, self, "y"))

    def _y_domain(self, support: bool) -> Domain:
        return self.entry.y_support if support else self.entry.y_deviance

    def check_y(self, y, support: bool = True) -> np.ndarray:
        """Raise :class:`~simbench.errors.ValidationError` unless every ``y`` is valid.

        ``support=True`` checks the support of the distribution (needed by the
        log-likelihood); ``support=False`` the domain of the deviance (see :meth:`y_valid`).
        Returns ``y`` as a float64 array.
        """
        arr = _as_float_array(y, self, "y")
        ok = self.y_valid(arr, support=support)
        if not ok.all():
            what = self._y_domain(support).words()
            raise ValidationError(f"family {self.spec!r}: y must be {what}; {_first_bad(arr, ok)}")
        return arr

    def mu_valid(self, mu) -> np.ndarray:
        """Boolean array: where ``mu`` is in the open mean space (:attr:`mu_domain`)."""
        return self.entry.mu_domain.contains(_as_float_array(mu, self, "mu"))

    def _check_mu(self, mu) -> np.ndarray:
        # the wrappers accept the closed mean space: a fitted mean that saturated to a
        # boundary (a Bernoulli 1.0, a Poisson 0.0) has a deviance, possibly infinite
        arr = _as_float_array(mu, self, "mu")
        closed = self.entry.mu_domain.closure()
        ok = closed.contains(arr)
        if not ok.all():
            raise ValidationError(
                f"family {self.spec!r}: mu must be {closed.words('mu')}; {_first_bad(arr, ok)}"
            )
        return arr

    def _check_weights(self, weights, shape) -> np.ndarray:
        if weights is None:
            return np.empty(0, dtype=np.float64)
        w = _as_float_array(weights, self, "weights")
        ok = np.isfinite(w) & (w >= 0)
        if not ok.all():
            raise ValidationError(
                f"family {self.spec!r}: weights must be finite and >= 0; {_first_bad(w, ok)}"
            )
        try:
            w = np.broadcast_to(w, shape)
        except ValueError:
            raise ValidationError(
                f"family {self.spec!r}: weights of shape {w.shape} do not match y and mu of "
                f"shape {shape}"
            ) from None
        return _flat(w)

    def _pair(self, y, mu, support: bool):
        yy = self.check_y(y, support=support)
        mm = self._check_mu(mu)
        try:
            yy, mm = np.broadcast_arrays(yy, mm)
        except ValueError:
            raise ValidationError(
                f"family {self.spec!r}: y of shape {yy.shape} and mu of shape {mm.shape} "
                "do not broadcast"
            ) from None
        return yy, mm

    # ---- evaluation ----------------------------------------------------------------------

    def _elementwise(self, kernel, mu):
        arr = _as_float_array(mu, self, "mu")
        out = np.empty(arr.size, dtype=np.float64)
        kernel(self.code, float(self.param), _flat(arr), out)
        return float(out[0]) if arr.ndim == 0 else out.reshape(arr.shape)

    def variance(self, mu):
        r"""Unit variance :math:`V(\mu)`: 1, :math:`\mu(1-\mu)`, :math:`\mu`, :math:`\mu^2`,
        :math:`\mu^3`, :math:`\mu + \alpha\mu^2` or :math:`\mu^p` (elementwise)."""
        return self._elementwise(_kernels().fam_variance_arr, mu)

    def variance_d1(self, mu):
        r""":math:`V'(\mu)` (elementwise)."""
        return self._elementwise(_kernels().fam_variance_d1_arr, mu)

    def unit_deviance(self, y, mu) -> np.ndarray:
        r"""Unit deviance :math:`d(y, \mu) = 2\int_\mu^y (y-t)/V(t)\,dt \ge 0` (elementwise).

        ``y`` may lie anywhere the deviance is defined (non-integer counts are accepted);
        ``mu`` in the closed mean space (a boundary mean gives ``inf`` unless ``y`` sits on
        the same boundary).  Closed forms: Gaussian :math:`(y-\mu)^2`; binary
        :math:`2[y\log(y/\mu) + (1-y)\log((1-y)/(1-\mu))]`; Poisson
        :math:`2[y\log(y/\mu) - (y-\mu)]`; Gamma :math:`2[-\log(y/\mu) + (y-\mu)/\mu]`;
        inverse Gaussian :math:`(y-\mu)^2/(y\mu^2)`; NB
        :math:`2[y\log(y/\mu) - (y+1/\alpha)\log((1+\alpha y)/(1+\alpha\mu))]`; Tweedie
        :math:`2[y^{2-p}/((1-p)(2-p)) - y\mu^{1-p}/(1-p) + \mu^{2-p}/(2-p)]`.
        """
        yy, mm = self._pair(y, mu, support=False)
        out = np.empty(yy.size, dtype=np.float64)
        _kernels().fam_unit_deviance_arr(self.code, float(self.param), _flat(yy), _flat(mm), out)
        return out.reshape(yy.shape)

    def deviance(self, y, mu, weights=None) -> float:
        r"""Total deviance :math:`\sum_i w_i\, d(y_i, \mu_i)` (weights default to 1)."""
        yy, mm = self._pair(y, mu, support=False)
        w = self._check_weights(weights, yy.shape)
        return float(
            _kernels().fam_deviance_sum(self.code, float(self.param), _flat(yy), _flat(mm), w)
        )

    def pearson(self, y, mu, weights=None) -> float:
        r"""Pearson statistic :math:`\sum_i w_i (y_i - \mu_i)^2 / V(\mu_i)`."""
        yy, mm = self._pair(y, mu, support=False)
        w = self._check_weights(weights, yy.shape)
        return float(
            _kernels().fam_pearson_sum(self.code, float(self.param), _flat(yy), _flat(mm), w)
        )

    def _check_phi(self, phi) -> float:
        value = DISPERSION.value(phi)
        if value is None:
            raise ValidationError(
                f"family {self.spec!r}: the dispersion phi must be {DISPERSION.domain.words()}; "
                f"got {phi!r}"
            )
        if not self.has_dispersion and value != 1.0:
            raise ValidationError(
                f"family {self.spec!r} has no dispersion parameter: phi must be 1; got {phi!r}"
            )
        return value

    def loglik_obs(self, y, mu, phi: float = 1.0, weights=None) -> np.ndarray:
        r"""Full, normalised log-likelihood of each observation.

        Prior weights follow statsmodels' ``var_weights``: binomial ``weights`` are the
        numbers of trials and ``y`` the proportions of successes (the term
        :math:`\log\binom{n}{ny}` is included); gaussian, gamma, inverse_gaussian and tweedie
        use the dispersion :math:`\phi/w_i`; bernoulli, poisson and negative_binomial return
        :math:`w_i \log f(y_i; \mu_i)`.  ``phi`` must be 1 for families without dispersion.

        Raises
        ------
        ValidationError
            ``y`` outside the support (for binomial: ``weights * y`` not whole numbers of
            successes out of whole numbers of trials), ``mu`` outside the mean space, or an
            invalid ``phi`` or ``weights``.
        """
        yy, mm = self._pair(y, mu, support=True)
        value = self._check_phi(phi)
        w = self._check_weights(weights, yy.shape)
        if self.code == codes.FAMILY_BINOMIAL and w.size:
            trials = w
            successes = trials * _flat(yy)
            tol = 1e-9 * np.maximum(1.0, trials)
            ok = (np.abs(trials - np.round(trials)) <= tol) & (
                np.abs(successes - np.round(successes)) <= tol
            )
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise ValidationError(
                    f"family {self.spec!r}: weights are numbers of trials and y proportions of "
                    f"successes, so weights and weights * y must be whole numbers; got "
                    f"weights={float(trials[i])!r}, y={float(_flat(yy)[i])!r} at index {i}"
                )
        out = np.empty(yy.size, dtype=np.float64)
        _kernels().fam_loglik_arr(self.code, float(self.param), _flat(yy), _flat(mm), value, w, out)
        return out.reshape(yy.shape)

    def loglik(self, y, mu, phi: float = 1.0, weights=None) -> float:
        r"""Total log-likelihood :math:`\sum_i \ell_i` (see :meth:`loglik_obs`)."""
        return float(np.sum(self.loglik_obs(y, mu, phi=phi, weights=weights)))


# ---- registry ------------------------------------------------------------------------------

REGISTRY: Registry[Family] = Registry("family")
for _spec in SPECS:
    _default = 0.0 if _spec.parameter is None else _spec.parameter.default
    REGISTRY.register(_spec.name, Family(_spec.name, _spec.code, _default), _spec.aliases)

DESCRIPTIONS: dict[str, str] = {spec.name: spec.description for spec in SPECS}


def names(aliases: bool = False) -> list[str]:
    """Canonical family names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line description, for listings."""
    return dict(DESCRIPTIONS)


def entry(name: str) -> FamilySpec:
    """The vocabulary entry of the family called ``name`` (an alias or canonical name)."""
    return _SPEC[REGISTRY.canonical(name)]


def _parse_param(spec: FamilySpec, value: object, given: object) -> float:
    """``value`` as the parameter of ``spec``, or a ValidationError saying what is accepted."""
    param = spec.parameter
    assert param is not None
    x = param.value(value)
    if x is None:
        raise ValidationError(
            f"{spec.name}: {param.name} must be {param.accepted}; got {given!r}; e.g. "
            f"get({spec.name!r}, {param.name}={param.default}) or '{spec.name}({param.default})'"
        )
    return x


def get(name: str | Family, alpha: float | None = None, power: float | None = None) -> Family:
    """The family called ``name``.

    Parameters
    ----------
    name : str or Family
        A canonical name, an alias (``"normal"``, ``"nb2"``, ``"wald"``, ...), a name with its
        parameter (``"tweedie(1.5)"``, ``"negative_binomial(0.5)"``), or a Family (returned
        as it is).  Case and ``-``/``_`` do not matter.
    alpha : float, optional
        Negative-binomial :math:`\\alpha > 0` in :math:`V = \\mu + \\alpha\\mu^2`
        (default 1.0).  Ignored by the other families, so that one call can pass a
        scenario's ``alpha`` and ``power`` whatever its family.
    power : float, optional
        Tweedie power :math:`1 < p < 2` (default 1.5).  Ignored by the other families.

    Raises
    ------
    UnknownNameError
        ``name`` is not a family; the message lists the accepted names and the closest one.
    ValidationError
        An invalid parameter, a parameter in the string of a family that has none, or a
        string parameter that contradicts ``alpha``/``power``.
    """
    if isinstance(name, Family):
        return name
    key, argument = parse_call(REGISTRY.require_name(name))
    spec = _SPEC[REGISTRY.canonical(key)]
    param = spec.parameter
    if argument is not None and param is None:
        raise ValidationError(
            f"family {spec.name!r} takes no parameter; got {name!r}; families with a "
            "parameter: " + ", ".join(f"{s.name}({s.parameter.name})" for s in SPECS if s.parameter)
        )
    base = REGISTRY.get(spec.name)
    if param is None:
        return base
    keyword = {"alpha": alpha, "power": power}[param.name]
    read = lambda value, shown: _parse_param(spec, value, shown)  # noqa: E731
    value = param.resolve("family", name, argument, keyword, read)
    if value is None:
        return base
    return Family(spec.name, spec.code, value + 0.0)
