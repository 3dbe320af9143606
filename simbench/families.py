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

import math
import re
from dataclasses import dataclass

import numpy as np

from simbench._registry import Registry, closest, normalize_name
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes

__all__ = ["DESCRIPTIONS", "REGISTRY", "Family", "descriptions", "get", "names"]

DEFAULT_ALPHA = 1.0
DEFAULT_POWER = 1.5

# canonical name -> (code, one-line description)
_TABLE: dict[str, tuple[int, str]] = {
    "gaussian": (codes.FAMILY_GAUSSIAN, "normal; V(mu) = 1, dispersion phi = sigma^2"),
    "bernoulli": (codes.FAMILY_BERNOULLI, "binary y in {0, 1}; V(mu) = mu (1 - mu)"),
    "binomial": (
        codes.FAMILY_BINOMIAL,
        "proportion y of n trials (weights = n); V(mu) = mu (1 - mu)",
    ),
    "poisson": (codes.FAMILY_POISSON, "counts; V(mu) = mu"),
    "gamma": (codes.FAMILY_GAMMA, "y > 0, shape 1/phi, mean mu; V(mu) = mu^2"),
    "inverse_gaussian": (
        codes.FAMILY_INVERSE_GAUSSIAN,
        "y > 0, mean mu, shape 1/phi (Wald); V(mu) = mu^3",
    ),
    "negative_binomial": (
        codes.FAMILY_NEGATIVE_BINOMIAL,
        "counts, NB2 gamma-Poisson mixture; V(mu) = mu + alpha mu^2 (alpha fixed, default 1)",
    ),
    "tweedie": (
        codes.FAMILY_TWEEDIE,
        "y >= 0 with mass at 0, compound Poisson-gamma; V(mu) = mu^p, 1 < p < 2 (default 1.5)",
    ),
}

_ALIASES: dict[str, tuple[str, ...]] = {
    "gaussian": ("normal", "gauss"),
    "bernoulli": (),
    "binomial": (),
    "poisson": (),
    "gamma": (),
    "inverse_gaussian": ("ig", "inverse_normal", "wald"),
    "negative_binomial": ("nb", "nb2", "negbin"),
    "tweedie": (),
}

# the family's parameter: name, default, and what is accepted (for messages)
_PARAMETER: dict[str, tuple[str, float, str]] = {
    "negative_binomial": ("alpha", DEFAULT_ALPHA, "a finite number alpha > 0"),
    "tweedie": ("power", DEFAULT_POWER, "a number p with 1 < p < 2"),
}

_LINKS: dict[str, tuple[str, ...]] = {
    "gaussian": ("identity", "log", "inverse", "inverse_squared", "sqrt", "power"),
    "bernoulli": ("logit", "probit", "cloglog", "loglog", "cauchit", "log", "identity"),
    "binomial": ("logit", "probit", "cloglog", "loglog", "cauchit", "log", "identity"),
    "poisson": ("log", "identity", "sqrt", "power", "inverse"),
    "gamma": ("inverse", "log", "identity", "inverse_squared", "power", "sqrt"),
    "inverse_gaussian": ("inverse_squared", "inverse", "log", "identity", "power"),
    "negative_binomial": ("log", "identity", "sqrt", "power"),
    "tweedie": ("log", "power", "identity", "sqrt", "inverse"),
}

# canonical links by name (tweedie's, power(1 - p), depends on p; NB's is not a named link)
_CANONICAL: dict[str, str | None] = {
    "gaussian": "identity",
    "bernoulli": "logit",
    "binomial": "logit",
    "poisson": "log",
    "gamma": "inverse",
    "inverse_gaussian": "inverse_squared",
    "negative_binomial": None,
    "tweedie": None,
}

# links that are members of the power family eta = mu^lambda (lambda = 0 read as log)
_POWER_FAMILY = frozenset({"power", "identity", "sqrt", "inverse", "inverse_squared", "log"})

# the response, in words: (support, the wider domain where the deviance is defined)
_Y_TEXT: dict[str, tuple[str, str]] = {
    "gaussian": ("a finite real number", "a finite real number"),
    "bernoulli": ("0 or 1", "in [0, 1]"),
    "binomial": ("a proportion in [0, 1] (successes / trials)", "in [0, 1]"),
    "poisson": ("a non-negative integer count", "a finite number >= 0"),
    "gamma": ("a finite number > 0", "a finite number > 0"),
    "inverse_gaussian": ("a finite number > 0", "a finite number > 0"),
    "negative_binomial": ("a non-negative integer count", "a finite number >= 0"),
    "tweedie": ("a finite number >= 0", "a finite number >= 0"),
}

_MU_TEXT: dict[str, str] = {
    "gaussian": "a finite real number",
    "bernoulli": "0 < mu < 1",
    "binomial": "0 < mu < 1",
}

_PARAM_STRING = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_\- ]*?)\s*\(\s*(.*?)\s*\)\s*$")


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
class Family:
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

    def __repr__(self) -> str:
        if self.name in _PARAMETER:
            return f"Family({self.name!r}, {self.param!r})"
        return f"Family({self.name!r})"

    # ---- descriptive properties ----------------------------------------------------------

    @property
    def spec(self) -> str:
        """A string that :func:`get` maps back to this family: ``"tweedie(1.5)"``, ``"poisson"``."""
        if self.name in _PARAMETER:
            return f"{self.name}({self.param!r})"
        return self.name

    @property
    def parameter_name(self) -> str | None:
        """``"alpha"`` (negative_binomial), ``"power"`` (tweedie) or None."""
        entry = _PARAMETER.get(self.name)
        return entry[0] if entry else None

    @property
    def description(self) -> str:
        """One line: the response and the variance function (for ``simbench list families``)."""
        text = _TABLE[self.name][1]
        if self.name in _PARAMETER:
            text += f"; here {self.parameter_name} = {self.param:g}"
        return text

    @property
    def has_dispersion(self) -> bool:
        """Whether :math:`\\phi` is a free parameter (gaussian, gamma, inverse_gaussian, tweedie);
        for the others :math:`\\phi = 1`."""
        return self.code in (
            codes.FAMILY_GAUSSIAN,
            codes.FAMILY_GAMMA,
            codes.FAMILY_INVERSE_GAUSSIAN,
            codes.FAMILY_TWEEDIE,
        )

    @property
    def is_binary(self) -> bool:
        """Whether the response is a 0/1 outcome or a proportion of them (bernoulli, binomial)."""
        return self.code in (codes.FAMILY_BERNOULLI, codes.FAMILY_BINOMIAL)

    @property
    def y_support(self) -> str:
        """The support of the response, in words."""
        return _Y_TEXT[self.name][0]

    @property
    def mu_domain(self) -> str:
        """The mean space, in words."""
        return _MU_TEXT.get(self.name, "a finite number mu > 0")

    # ---- links ---------------------------------------------------------------------------

    @property
    def links(self) -> tuple[str, ...]:
        """Names of the links this family accepts (``"power"`` stands for every power link)."""
        return _LINKS[self.name]

    @property
    def canonical_link(self):
        """The canonical link :math:`g = (b')^{-1}`, or None where it is not in the link
        vocabulary (negative binomial: :math:`\\log(\\alpha\\mu/(1+\\alpha\\mu))`).
        Tweedie: :math:`\\mu^{1-p}` (power :math:`1-p`)."""
        links = _links()
        if self.code == codes.FAMILY_TWEEDIE:
            return links.get("power", power=1.0 - self.param)
        name = _CANONICAL[self.name]
        return None if name is None else links.get(name)

    @property
    def default_link(self):
        """The canonical link where it exists and is usual; log for negative_binomial and
        tweedie."""
        if self.code in (codes.FAMILY_NEGATIVE_BINOMIAL, codes.FAMILY_TWEEDIE):
            return _links().get("log")
        return self.canonical_link

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
            "power" in self.links and resolved.name in _POWER_FAMILY
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
        arr = _as_float_array(y, self, "y")
        out = np.empty(arr.size, dtype=np.bool_)
        k = _kernels()
        fn = k.fam_y_valid_arr if support else k.fam_y_deviance_valid_arr
        fn(self.code, float(self.param), _flat(arr), out)
        return out.reshape(arr.shape)

    def check_y(self, y, support: bool = True) -> np.ndarray:
        """Raise :class:`~simbench.errors.ValidationError` unless every ``y`` is valid.

        ``support=True`` checks the support of the distribution (needed by the
        log-likelihood); ``support=False`` the domain of the deviance (see :meth:`y_valid`).
        Returns ``y`` as a float64 array.
        """
        arr = _as_float_array(y, self, "y")
        ok = self.y_valid(arr, support=support)
        if not ok.all():
            what = _Y_TEXT[self.name][0 if support else 1]
            raise ValidationError(f"family {self.spec!r}: y must be {what}; {_first_bad(arr, ok)}")
        return arr

    def mu_valid(self, mu) -> np.ndarray:
        """Boolean array: where ``mu`` is in the open mean space (:attr:`mu_domain`)."""
        arr = _as_float_array(mu, self, "mu")
        out = np.empty(arr.size, dtype=np.bool_)
        _kernels().fam_mu_valid_arr(self.code, float(self.param), _flat(arr), out)
        return out.reshape(arr.shape)

    def _check_mu(self, mu) -> np.ndarray:
        # the wrappers accept the closed mean space: a fitted mean that saturated to a
        # boundary (a Bernoulli 1.0, a Poisson 0.0) has a deviance, possibly infinite
        arr = _as_float_array(mu, self, "mu")
        ok = np.isfinite(arr)
        if self.is_binary:
            ok &= (arr >= 0.0) & (arr <= 1.0)
            domain = "0 <= mu <= 1"
        elif self.code != codes.FAMILY_GAUSSIAN:
            ok &= arr >= 0.0
            domain = "a finite number mu >= 0"
        else:
            domain = "a finite real number"
        if not ok.all():
            raise ValidationError(
                f"family {self.spec!r}: mu must be {domain}; {_first_bad(arr, ok)}"
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
        try:
            value = float(phi)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(phi, bool) or not (math.isfinite(value) and value > 0):
            raise ValidationError(
                f"family {self.spec!r}: the dispersion phi must be a finite number > 0; got {phi!r}"
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
for _name, (_code, _desc) in _TABLE.items():
    _default = _PARAMETER[_name][1] if _name in _PARAMETER else 0.0
    REGISTRY.register(_name, Family(_name, _code, _default), _ALIASES[_name])

DESCRIPTIONS: dict[str, str] = {name: desc for name, (_c, desc) in _TABLE.items()}


def names(aliases: bool = False) -> list[str]:
    """Canonical family names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line description, for listings."""
    return dict(DESCRIPTIONS)


def _parse_param(family: str, value: object, given: object) -> float:
    """``value`` as the parameter of ``family``, or a ValidationError saying what is accepted."""
    pname, _default, accepted = _PARAMETER[family]
    x = math.nan
    if not isinstance(value, bool) and value is not None:
        try:
            x = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            x = math.nan
    if family == "negative_binomial":
        ok = math.isfinite(x) and x > 0.0
    else:
        ok = 1.0 < x < 2.0
    if not ok:
        raise ValidationError(
            f"{family}: {pname} must be {accepted}; got {given!r}; e.g. "
            f"get({family!r}, {pname}={_default}) or '{family}({_default})'"
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
    if not isinstance(name, str):
        raise UnknownNameError(
            f"a family is given by name; got {name!r}; accepted: " + ", ".join(names())
        )
    from_string = None
    match = _PARAM_STRING.match(name)
    if match is not None:
        canonical = REGISTRY.canonical(match.group(1))
        if canonical not in _PARAMETER:
            raise ValidationError(
                f"family {canonical!r} takes no parameter; got {name!r}; families with a "
                "parameter: negative_binomial(alpha), tweedie(power)"
            )
        from_string = _parse_param(canonical, match.group(2), name)
    else:
        canonical = REGISTRY.canonical(name)
    base = REGISTRY.get(canonical)
    if canonical not in _PARAMETER:
        return base
    keyword = alpha if canonical == "negative_binomial" else power
    if keyword is not None:
        value = _parse_param(canonical, keyword, keyword)
        if from_string is not None and value != from_string:
            raise ValidationError(
                f"family {name!r} given together with a different "
                f"{_PARAMETER[canonical][0]}={keyword!r}"
            )
    elif from_string is not None:
        value = from_string
    else:
        return base
    return Family(canonical, base.code, value + 0.0)
