"""Link functions: the vocabulary object :class:`Link`, the registry and :func:`get`.

A link ``g`` maps a mean ``mu`` to the linear predictor ``eta = g(mu)``; its inverse
``h = g^-1`` is what a network uses as output activation, so a Link also carries ``h'`` and
``h''``.  The numbers are computed by the kernels of :mod:`simbench.kernels.links`; this module
names them, validates input and allocates output.

>>> from simbench import links
>>> links.get("sigmoid")
Link('logit')
>>> links.get("power(0.5)")
Link('sqrt')
>>> links.get("power", power=0.3)
Link('power', 0.3)

``REGISTRY`` holds one object per canonical name (for ``"power"`` a representative, the
cube-root link ``power(1/3)``); use :func:`get`, which insists on an explicit exponent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simbench._domains import Domain, Parameter
from simbench._registry import Registry, VocabularyItem, parse_call
from simbench.errors import ValidationError
from simbench.kernels import codes

__all__ = ["DESCRIPTIONS", "REGISTRY", "SPECS", "Link", "LinkSpec", "descriptions", "get", "names"]

_REAL = Domain()
_POSITIVE = Domain(0.0)
_NONNEGATIVE = Domain(0.0, low_closed=True)
_OPEN_UNIT = Domain(0.0, 1.0)
_NONZERO = Domain(excluded=(0.0,))

#: the exponent lambda of the power link eta = mu^lambda (required: no default)
POWER = Parameter("power", "lambda", _REAL)


@dataclass(frozen=True)
class LinkSpec:
    """One entry of the link vocabulary.

    Parameters
    ----------
    name, code, inverse_name, description, aliases
        Canonical name, kernel code, the name of ``h`` as an output activation, one line
        with the formula of ``h``, other accepted names (the activation names among them).
    mu_domain, eta_domain : Domain
        Where ``g`` is finite, and where ``h`` is defined and inverted by ``g``; for the
        power link, with a negative exponent.
    positive_mu_domain, positive_eta_domain : Domain or None
        The power link's domains with a positive exponent (``mu = 0`` allowed).
    exponent : float or None
        For the links of the power family :math:`\\eta = \\mu^\\lambda`, the
        :math:`\\lambda` they stand for (0 read as log).
    parameter : Parameter or None
        The power link's exponent.
    output_only, invertible : bool
        An output activation rather than a GLM link (relu, softplus); ``g`` a true inverse
        of ``h`` (not relu).
    """

    name: str
    code: int
    inverse_name: str
    description: str
    aliases: tuple[str, ...]
    mu_domain: Domain = _REAL
    eta_domain: Domain = _REAL
    exponent: float | None = None
    parameter: Parameter | None = None
    positive_mu_domain: Domain | None = None
    positive_eta_domain: Domain | None = None
    output_only: bool = False
    invertible: bool = True

    @property
    def cdf(self) -> bool:
        """Whether ``h`` is a distribution function: every finite ``eta`` maps inside
        (0, 1) (logit, probit, cloglog, loglog, cauchit)."""
        return self.mu_domain == _OPEN_UNIT and self.eta_domain == _REAL


SPECS: tuple[LinkSpec, ...] = (
    LinkSpec("identity", codes.LINK_IDENTITY, "identity", "mu = eta", ("linear",), exponent=1.0),
    LinkSpec(
        "log",
        codes.LINK_LOG,
        "exp",
        "mu = exp(eta)",
        ("exp", "exponential"),
        mu_domain=_POSITIVE,
        exponent=0.0,
    ),
    LinkSpec(
        "logit",
        codes.LINK_LOGIT,
        "sigmoid",
        "mu = 1 / (1 + exp(-eta))",
        ("sigmoid", "expit", "logistic"),
        mu_domain=_OPEN_UNIT,
    ),
    LinkSpec(
        "probit",
        codes.LINK_PROBIT,
        "normal_cdf",
        "mu = Phi(eta), the standard normal CDF",
        ("normal_cdf", "norm_cdf", "phi"),
        mu_domain=_OPEN_UNIT,
    ),
    LinkSpec(
        "cloglog",
        codes.LINK_CLOGLOG,
        "inverse_cloglog",
        "mu = 1 - exp(-exp(eta))",
        ("complementary_log_log", "inverse_cloglog"),
        mu_domain=_OPEN_UNIT,
    ),
    LinkSpec(
        "loglog",
        codes.LINK_LOGLOG,
        "inverse_loglog",
        "mu = exp(-exp(-eta))",
        ("log_log", "inverse_loglog"),
        mu_domain=_OPEN_UNIT,
    ),
    LinkSpec(
        "cauchit",
        codes.LINK_CAUCHIT,
        "cauchy_cdf",
        "mu = 1/2 + atan(eta) / pi",
        ("cauchy", "cauchy_cdf"),
        mu_domain=_OPEN_UNIT,
    ),
    LinkSpec(
        "inverse",
        codes.LINK_INVERSE,
        "reciprocal",
        "mu = 1 / eta  (power -1)",
        ("reciprocal", "inverse_power"),
        mu_domain=_NONZERO,
        eta_domain=_NONZERO,
        exponent=-1.0,
    ),
    LinkSpec(
        "inverse_squared",
        codes.LINK_INVERSE_SQUARED,
        "rsqrt",
        "mu = eta^(-1/2)  (power -2)",
        ("rsqrt", "inverse_square"),
        mu_domain=_POSITIVE,
        eta_domain=_POSITIVE,
        exponent=-2.0,
    ),
    LinkSpec(
        "sqrt",
        codes.LINK_SQRT,
        "square",
        "mu = eta^2  (power 1/2)",
        ("square", "square_root"),
        mu_domain=_NONNEGATIVE,
        eta_domain=_NONNEGATIVE,
        exponent=0.5,
    ),
    LinkSpec(
        "power",
        codes.LINK_POWER,
        "power",
        "mu = eta^(1/lambda), i.e. eta = mu^lambda",
        (),
        mu_domain=_POSITIVE,
        eta_domain=_POSITIVE,
        parameter=POWER,
        positive_mu_domain=_NONNEGATIVE,
        positive_eta_domain=_NONNEGATIVE,
    ),
    LinkSpec(
        "relu",
        codes.LINK_RELU,
        "relu",
        "mu = max(0, eta)  (output activation only)",
        ("rectifier",),
        mu_domain=_NONNEGATIVE,
        output_only=True,
        invertible=False,
    ),
    LinkSpec(
        "softplus",
        codes.LINK_SOFTPLUS,
        "softplus",
        "mu = log(1 + exp(eta))  (output activation)",
        (),
        mu_domain=_POSITIVE,
        output_only=True,
    ),
)

_SPEC: dict[str, LinkSpec] = {spec.name: spec for spec in SPECS}

# power links with a name of their own: lambda -> canonical name
_NAMED_POWERS: dict[float, str] = {
    spec.exponent: spec.name for spec in SPECS if spec.exponent is not None
}


def _kernels():
    # imported on first use so that importing the vocabulary compiles and loads no Numba
    from simbench.kernels import links as k

    return k


def _float_array(x, link: Link, what: str, finite: bool = True) -> np.ndarray:
    """``x`` as a float64 array, or a ValidationError naming the link and ``what``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{link!r}: {what} must be an array of real numbers; got {type(x).__name__}"
        ) from None
    if finite and not np.isfinite(arr).all():
        bad = float(arr.ravel()[~np.isfinite(arr.ravel())][0])
        raise ValidationError(f"{link!r}: {what} must be finite; got {bad!r}")
    return arr


def _flat(arr: np.ndarray) -> np.ndarray:
    """A 1-D C-contiguous view (or copy) of ``arr`` for the array kernels."""
    return np.ascontiguousarray(arr.reshape(-1))


@dataclass(frozen=True, repr=False)
class Link(VocabularyItem):
    r"""A link function ``eta = g(mu)`` with inverse ``mu = h(eta)``.

    Obtain links with :func:`get`; the constructor trusts its arguments.

    Parameters
    ----------
    name : str
        Canonical name (see :func:`names`).
    code : int
        Kernel code from :mod:`simbench.kernels.codes`.
    param : float
        The exponent :math:`\lambda` of the power link, :math:`\eta = \mu^\lambda`; 0.0 for
        every other link.

    Notes
    -----
    ====================  =====================================  ===========================
    link                  :math:`\mu = h(\eta)`                  :math:`\eta = g(\mu)`
    ====================  =====================================  ===========================
    identity              :math:`\eta`                           :math:`\mu`
    log                   :math:`e^\eta`                         :math:`\log\mu`
    logit                 :math:`1/(1+e^{-\eta})`                :math:`\log(\mu/(1-\mu))`
    probit                :math:`\Phi(\eta)`                     :math:`\Phi^{-1}(\mu)`
    cloglog               :math:`1-\exp(-e^\eta)`                :math:`\log(-\log(1-\mu))`
    loglog                :math:`\exp(-e^{-\eta})`               :math:`-\log(-\log\mu)`
    cauchit               :math:`1/2+\arctan(\eta)/\pi`          :math:`\tan(\pi(\mu-1/2))`
    inverse               :math:`1/\eta`                         :math:`1/\mu`
    inverse_squared       :math:`\eta^{-1/2}`                    :math:`\mu^{-2}`
    sqrt                  :math:`\eta^2`                         :math:`\sqrt\mu`
    power                 :math:`\eta^{1/\lambda}`               :math:`\mu^\lambda`
    relu                  :math:`\max(0,\eta)`                   :math:`\mu` (right inverse)
    softplus              :math:`\log(1+e^\eta)`                 :math:`\log(e^\mu-1)`
    ====================  =====================================  ===========================

    ``h1`` and ``h2`` are :math:`h'(\eta)` and :math:`h''(\eta)`.  All are evaluated with
    formulas that stay finite and accurate for :math:`|\eta|` up to about 1e3 wherever the
    true value is finite.
    """

    name: str
    code: int
    param: float = 0.0

    _entries = _SPEC  # entry (its LinkSpec), repr and spec ("power(0.3)") come from there

    # ---- descriptive properties --------------------------------------------------------

    @property
    def power_exponent(self) -> float | None:
        """:math:`\\lambda` for the links of the power family :math:`\\eta = \\mu^\\lambda`
        (identity 1, sqrt 0.5, log 0, inverse -1, inverse_squared -2, power its own); None
        for the others."""
        if self.entry.parameter is not None:
            return self.param
        return self.entry.exponent

    @property
    def inverse_name(self) -> str:
        """The name of ``h`` as an output activation, e.g. ``"exp"`` for the log link."""
        if self.entry.parameter is not None:
            return f"power({1.0 / self.param:g})"
        return self.entry.inverse_name

    @property
    def invertible(self) -> bool:
        """Whether ``g`` is a true inverse of ``h`` (False for relu, which is not injective)."""
        return self.entry.invertible

    @property
    def output_only(self) -> bool:
        """Whether this is an output activation rather than a link of a GLM (relu, softplus)."""
        return self.entry.output_only

    @property
    def description(self) -> str:
        """One line with the formula of ``h``."""
        if self.entry.parameter is not None:
            return f"mu = eta^(1/{self.param:g}), i.e. eta = mu^{self.param:g}"
        return self.entry.description

    def _domains(self) -> tuple[Domain, Domain]:
        """(the domain of ``mu``, the domain of ``eta``) of this link."""
        entry = self.entry
        if entry.positive_mu_domain is not None and self.param > 0:
            return entry.positive_mu_domain, entry.positive_eta_domain or entry.eta_domain
        return entry.mu_domain, entry.eta_domain

    @property
    def mu_domain(self) -> str:
        """The means ``g`` accepts, in words (e.g. ``"0 < mu < 1"``)."""
        return self._domains()[0].text("mu")

    @property
    def eta_domain(self) -> str:
        """The linear predictors ``h`` accepts and ``g`` inverts, in words (``"eta > 0"``)."""
        return self._domains()[1].text("eta")

    # ---- evaluation --------------------------------------------------------------------

    def _apply(self, kernel, x, what: str):
        arr = _float_array(x, self, what)
        out = np.empty(arr.size, dtype=np.float64)
        kernel(self.code, float(self.param), _flat(arr), out)
        if arr.ndim == 0:
            return out[0]
        return out.reshape(arr.shape)

    def h(self, eta) -> np.ndarray:
        r"""Inverse link :math:`\mu = h(\eta)` (elementwise; ``eta`` must be finite)."""
        return self._apply(_kernels().link_h_arr, eta, "eta")

    def h1(self, eta) -> np.ndarray:
        r"""First derivative :math:`h'(\eta) = d\mu/d\eta`."""
        return self._apply(_kernels().link_h1_arr, eta, "eta")

    def h2(self, eta) -> np.ndarray:
        r"""Second derivative :math:`h''(\eta)`."""
        return self._apply(_kernels().link_h2_arr, eta, "eta")

    def g(self, mu) -> np.ndarray:
        r"""Link :math:`\eta = g(\mu)`, elementwise.

        ``mu`` must be finite; outside :attr:`mu_domain` the result is nan or infinite, as in
        NumPy.  For relu, ``g(mu) = mu`` is a right inverse only.
        """
        return self._apply(_kernels().link_g_arr, mu, "mu")

    def eta_valid(self, eta) -> np.ndarray:
        r"""Boolean array: where ``eta`` is finite and ``h`` is defined and inverted by ``g``.

        sqrt (and power with :math:`\lambda > 0`) need :math:`\eta \ge 0`; inverse
        :math:`\eta \ne 0`; inverse_squared (and power with :math:`\lambda < 0`)
        :math:`\eta > 0`; every other link accepts any finite :math:`\eta`.  Whether
        ``h(eta)`` is a valid mean of a family is the family's check.
        """
        return self._domains()[1].contains(_float_array(eta, self, "eta", finite=False))

    def mu_valid(self, mu) -> np.ndarray:
        """Boolean array: where ``mu`` is finite and in the domain of ``g`` (:attr:`mu_domain`)."""
        return self._domains()[0].contains(_float_array(mu, self, "mu", finite=False))


REGISTRY: Registry[Link] = Registry("link")
for _spec in SPECS:
    # the registry keeps one representative per name; for "power" it is the cube-root link,
    # and get("power") itself insists on an explicit exponent
    _param = 1.0 / 3.0 if _spec.parameter is not None else 0.0
    REGISTRY.register(_spec.name, Link(_spec.name, _spec.code, _param), _spec.aliases)

DESCRIPTIONS: dict[str, str] = {spec.name: spec.description for spec in SPECS}


def names(aliases: bool = False) -> list[str]:
    """Canonical link names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line formula of ``h``, for listings."""
    return dict(DESCRIPTIONS)


def entry(name: str) -> LinkSpec:
    """The vocabulary entry of the link called ``name`` (an alias or canonical name)."""
    return _SPEC[REGISTRY.canonical(name)]


def _parse_power(value: object, given: object) -> float:
    """``value`` as a finite float exponent, or a ValidationError saying what is accepted."""
    lam = POWER.value(value)
    if lam is None:
        named = ", ".join(f"power({lam:g}) = {name}" for lam, name in _NAMED_POWERS.items())
        raise ValidationError(
            f"power link: the exponent lambda (eta = mu^lambda) must be {POWER.accepted}; "
            f"got {given!r}; accepted: get('power', power=0.3) or 'power(0.3)', with {named}"
        )
    return lam


def _power_link(lam: float) -> Link:
    named = _NAMED_POWERS.get(lam)
    if named is not None:
        return REGISTRY.get(named)
    return Link("power", codes.LINK_POWER, lam)


def get(name: str | Link, power: float | None = None) -> Link:
    r"""The link called ``name``.

    Parameters
    ----------
    name : str or Link
        A canonical name, an alias (``"exp"``, ``"sigmoid"``, ``"normal_cdf"``, ...), the
        string ``"power(λ)"``, or a Link (returned as it is).  Case and ``-``/``_`` do not
        matter.
    power : float, optional
        The exponent λ of the power link :math:`\eta = \mu^\lambda`; required for
        ``"power"`` and accepted only there.  Powers with a name of their own give that link:
        0 -> log, 0.5 -> sqrt, 1 -> identity, -1 -> inverse, -2 -> inverse_squared.

    Raises
    ------
    UnknownNameError
        ``name`` is not a link; the message lists the accepted names and the closest one.
    ValidationError
        A missing, non-finite or misplaced ``power``, or a parameter in the string of a
        link that has none.
    """
    if isinstance(name, Link):
        if power is not None:
            raise ValidationError(f"power={power!r} given with the link object {name!r}")
        return name
    key, argument = parse_call(REGISTRY.require_name(name))
    canonical = REGISTRY.canonical(key)
    if _SPEC[canonical].parameter is None:
        if argument is not None:
            raise ValidationError(
                f"link {canonical!r} takes no parameter; got {name!r}; the link with a "
                "parameter: power(lambda)"
            )
        if power is not None:
            raise ValidationError(
                f"power={power!r} applies only to the power link, not to {canonical!r}"
            )
        return REGISTRY.get(canonical)
    lam = POWER.resolve("link", name, argument, power, _parse_power)
    if lam is None:
        raise ValidationError(
            "the power link needs its exponent lambda (eta = mu^lambda): "
            "get('power', power=0.3) or 'power(0.3)'"
        )
    return _power_link(lam)
