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

import math
import re
from dataclasses import dataclass

import numpy as np

from simbench._registry import Registry
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes

__all__ = ["DESCRIPTIONS", "REGISTRY", "Link", "descriptions", "get", "names"]

# canonical name -> (code, name of h as an activation, one-line description)
_TABLE: dict[str, tuple[int, str, str]] = {
    "identity": (codes.LINK_IDENTITY, "identity", "mu = eta"),
    "log": (codes.LINK_LOG, "exp", "mu = exp(eta)"),
    "logit": (codes.LINK_LOGIT, "sigmoid", "mu = 1 / (1 + exp(-eta))"),
    "probit": (codes.LINK_PROBIT, "normal_cdf", "mu = Phi(eta), the standard normal CDF"),
    "cloglog": (codes.LINK_CLOGLOG, "inverse_cloglog", "mu = 1 - exp(-exp(eta))"),
    "loglog": (codes.LINK_LOGLOG, "inverse_loglog", "mu = exp(-exp(-eta))"),
    "cauchit": (codes.LINK_CAUCHIT, "cauchy_cdf", "mu = 1/2 + atan(eta) / pi"),
    "inverse": (codes.LINK_INVERSE, "reciprocal", "mu = 1 / eta  (power -1)"),
    "inverse_squared": (codes.LINK_INVERSE_SQUARED, "rsqrt", "mu = eta^(-1/2)  (power -2)"),
    "sqrt": (codes.LINK_SQRT, "square", "mu = eta^2  (power 1/2)"),
    "power": (codes.LINK_POWER, "power", "mu = eta^(1/lambda), i.e. eta = mu^lambda"),
    "relu": (codes.LINK_RELU, "relu", "mu = max(0, eta)  (output activation only)"),
    "softplus": (codes.LINK_SOFTPLUS, "softplus", "mu = log(1 + exp(eta))  (output activation)"),
}

# aliases: the names of h as an activation, and other common spellings
_ALIASES: dict[str, tuple[str, ...]] = {
    "identity": ("linear",),
    "log": ("exp", "exponential"),
    "logit": ("sigmoid", "expit", "logistic"),
    "probit": ("normal_cdf", "norm_cdf", "phi"),
    "cloglog": ("complementary_log_log", "inverse_cloglog"),
    "loglog": ("log_log", "inverse_loglog"),
    "cauchit": ("cauchy", "cauchy_cdf"),
    "inverse": ("reciprocal", "inverse_power"),
    "inverse_squared": ("rsqrt", "inverse_square"),
    "sqrt": ("square", "square_root"),
    "power": (),
    "relu": ("rectifier",),
    "softplus": (),
}

# power links with a name of their own: lambda -> canonical name
_NAMED_POWERS: dict[float, str] = {
    1.0: "identity",
    -1.0: "inverse",
    -2.0: "inverse_squared",
    0.5: "sqrt",
    0.0: "log",
}

# the domain of g, in words (the kernel link_mu_valid is the executable form)
_MU_DOMAIN: dict[str, str] = {
    "identity": "any finite mu",
    "log": "mu > 0",
    "logit": "0 < mu < 1",
    "probit": "0 < mu < 1",
    "cloglog": "0 < mu < 1",
    "loglog": "0 < mu < 1",
    "cauchit": "0 < mu < 1",
    "inverse": "mu != 0",
    "inverse_squared": "mu > 0",
    "sqrt": "mu >= 0",
    "power": "mu > 0 (mu >= 0 if lambda > 0)",
    "relu": "mu >= 0",
    "softplus": "mu > 0",
}

_POWER_STRING = re.compile(r"^\s*power\s*\(\s*(.*?)\s*\)\s*$", re.IGNORECASE)


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
class Link:
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

    def __repr__(self) -> str:
        if self.name == "power":
            return f"Link('power', {self.param!r})"
        return f"Link({self.name!r})"

    # ---- descriptive properties --------------------------------------------------------

    @property
    def inverse_name(self) -> str:
        """The name of ``h`` as an output activation, e.g. ``"exp"`` for the log link."""
        if self.name == "power":
            return f"power({1.0 / self.param:g})"
        return _TABLE[self.name][1]

    @property
    def invertible(self) -> bool:
        """Whether ``g`` is a true inverse of ``h`` (False for relu, which is not injective)."""
        return self.code != codes.LINK_RELU

    @property
    def output_only(self) -> bool:
        """Whether this is an output activation rather than a link of a GLM (relu, softplus)."""
        return self.code in (codes.LINK_RELU, codes.LINK_SOFTPLUS)

    @property
    def description(self) -> str:
        """One line with the formula of ``h``."""
        if self.name == "power":
            return f"mu = eta^(1/{self.param:g}), i.e. eta = mu^{self.param:g}"
        return _TABLE[self.name][2]

    @property
    def mu_domain(self) -> str:
        """The means ``g`` accepts, in words (e.g. ``"0 < mu < 1"``)."""
        if self.name == "power":
            return "mu >= 0" if self.param > 0 else "mu > 0"
        return _MU_DOMAIN[self.name]

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
        arr = _float_array(eta, self, "eta", finite=False)
        out = np.empty(arr.size, dtype=np.bool_)
        _kernels().link_eta_valid_arr(self.code, float(self.param), _flat(arr), out)
        return out.reshape(arr.shape)

    def mu_valid(self, mu) -> np.ndarray:
        """Boolean array: where ``mu`` is finite and in the domain of ``g`` (:attr:`mu_domain`)."""
        arr = _float_array(mu, self, "mu", finite=False)
        out = np.empty(arr.size, dtype=np.bool_)
        _kernels().link_mu_valid_arr(self.code, float(self.param), _flat(arr), out)
        return out.reshape(arr.shape)


REGISTRY: Registry[Link] = Registry("link")
for _name, (_code, _inv, _desc) in _TABLE.items():
    # the registry keeps one representative per name; for "power" it is the cube-root link,
    # and get("power") itself insists on an explicit exponent
    REGISTRY.register(
        _name, Link(_name, _code, 1.0 / 3.0 if _name == "power" else 0.0), _ALIASES[_name]
    )

DESCRIPTIONS: dict[str, str] = {name: desc for name, (_c, _i, desc) in _TABLE.items()}


def names(aliases: bool = False) -> list[str]:
    """Canonical link names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line formula of ``h``, for listings."""
    return dict(DESCRIPTIONS)


def _parse_power(value: object, given: object) -> float:
    """``value`` as a finite float exponent, or a ValidationError saying what is accepted."""
    if isinstance(value, bool) or value is None:
        ok = False
    else:
        try:
            lam = float(value)  # type: ignore[arg-type]
            ok = math.isfinite(lam)
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise ValidationError(
            f"power link: the exponent lambda (eta = mu^lambda) must be a finite real number; "
            f"got {given!r}; accepted: get('power', power=0.3) or 'power(0.3)', with "
            f"power(0) = log, power(0.5) = sqrt, power(1) = identity, power(-1) = inverse, "
            f"power(-2) = inverse_squared"
        )
    return lam + 0.0  # -0.0 -> 0.0


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
        A missing, non-finite or misplaced ``power``.
    """
    if isinstance(name, Link):
        if power is not None:
            raise ValidationError(f"power={power!r} given with the link object {name!r}")
        return name
    if not isinstance(name, str):
        raise UnknownNameError(
            f"a link is given by name; got {name!r}; accepted: " + ", ".join(names())
        )
    match = _POWER_STRING.match(name)
    if match is not None:
        lam = _parse_power(match.group(1), name)
        if power is not None and _parse_power(power, power) != lam:
            raise ValidationError(f"link {name!r} given together with a different power={power!r}")
        return _power_link(lam)
    canonical = REGISTRY.canonical(name)
    if canonical == "power":
        if power is None:
            raise ValidationError(
                "the power link needs its exponent lambda (eta = mu^lambda): "
                "get('power', power=0.3) or 'power(0.3)'"
            )
        return _power_link(_parse_power(power, power))
    if power is not None:
        raise ValidationError(
            f"power={power!r} applies only to the power link, not to {canonical!r}"
        )
    return REGISTRY.get(canonical)
