r"""Losses: the vocabulary object :class:`Loss`, the registry and :func:`get`.

A loss is what a network minimises, seen as a function of the output unit's linear predictor
:math:`\eta` through an output activation :math:`\mu = h(\eta)` (a :class:`~simbench.links.Link`).
Two kinds:

* **Family negative log-likelihoods**, named after their family (``"poisson"``,
  ``"bernoulli"``, ...; code = family code).  They are kept in deviance form
  :math:`\ell(y, \eta) = d(y, \mu) / (2\phi)`, zero at :math:`\mu = y`; the normalising constant
  of the log-likelihood is left out, as it does not depend on :math:`\eta`.  With the family's
  canonical link and output activation, a network with no hidden layer and this loss *is* the
  GLM.
* **Losses with no family**: squared error :math:`(y - \mu)^2/2` and the margin losses of
  :math:`t = 2y - 1 \in \{-1, 1\}`: hinge :math:`\max(0, 1 - t\mu)`, squared hinge
  :math:`\max(0, 1 - t\mu)^2`, logistic :math:`\log(1 + e^{-t\mu})` and perceptron
  :math:`\max(0, -t\mu)`.  They take no dispersion.  With the identity output the logistic
  loss equals the Bernoulli–logit NLL (:math:`\log(1 + e^{-t\eta})` is
  :math:`\log(1 + e^\eta) - y\eta` for :math:`y \in \{0, 1\}`).

The numbers come from :mod:`simbench.kernels.losses`, which also documents the derivative
formulas and the fused (canonical-pair) paths.

>>> from simbench import losses
>>> losses.get("log_loss")
Loss('bernoulli')
>>> losses.get("tweedie(1.3)")
Loss('tweedie', 1.3)
>>> losses.get("hinge").supports("poisson")
False
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from simbench._registry import Registry
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes

__all__ = [
    "DESCRIPTIONS",
    "REGISTRY",
    "Loss",
    "descriptions",
    "for_family",
    "get",
    "names",
]

# ---- response domains ------------------------------------------------------------------------
# A loss is defined for responses in a domain; a family's responses lie in one.  The loss
# applies to a family's data when the family's domain is inside the loss's.
_REAL, _NONNEG, _POSITIVE, _UNIT, _BINARY = "real", "nonnegative", "positive", "unit", "binary"

_INSIDE: dict[str, frozenset[str]] = {  # domain -> the domains that contain it
    _REAL: frozenset({_REAL}),
    _NONNEG: frozenset({_NONNEG, _REAL}),
    _POSITIVE: frozenset({_POSITIVE, _NONNEG, _REAL}),
    _UNIT: frozenset({_UNIT, _NONNEG, _REAL}),
    _BINARY: frozenset({_BINARY, _UNIT, _NONNEG, _REAL}),
}

_DOMAIN_TEXT: dict[str, str] = {
    _REAL: "finite y",
    _NONNEG: "y >= 0",
    _POSITIVE: "y > 0",
    _UNIT: "0 <= y <= 1",
    _BINARY: "y in {0, 1}",
}

# what each family's responses are
_FAMILY_DATA: dict[str, tuple[str, str]] = {
    "gaussian": (_REAL, "real responses, negative ones included"),
    "bernoulli": (_BINARY, "responses in {0, 1}"),
    "binomial": (_UNIT, "proportions count/trials in [0, 1]"),
    "poisson": (_NONNEG, "counts 0, 1, 2, ..."),
    "gamma": (_POSITIVE, "positive responses"),
    "inverse_gaussian": (_POSITIVE, "positive responses"),
    "negative_binomial": (_NONNEG, "counts 0, 1, 2, ..."),
    "tweedie": (_NONNEG, "responses >= 0 with exact zeros"),
}

# canonical name -> (code, response domain, why the domain, one-line description)
_TABLE: dict[str, tuple[int, str, str, str]] = {
    "gaussian": (
        codes.FAMILY_GAUSSIAN,
        _REAL,
        "",
        "Gaussian NLL (y - mu)^2 / (2 phi)",
    ),
    "bernoulli": (
        codes.FAMILY_BERNOULLI,
        _UNIT,
        "the Bernoulli deviance needs 0 <= y <= 1",
        "Bernoulli NLL (log loss) -[y log mu + (1-y) log(1-mu)], deviance form",
    ),
    "binomial": (
        codes.FAMILY_BINOMIAL,
        _UNIT,
        "y is a proportion count/trials, the trials are the weights",
        "binomial NLL per trial, y a proportion and weights the trials",
    ),
    "poisson": (
        codes.FAMILY_POISSON,
        _NONNEG,
        "the Poisson deviance is undefined for y < 0",
        "Poisson NLL y log(y/mu) - (y - mu), deviance form",
    ),
    "gamma": (
        codes.FAMILY_GAMMA,
        _POSITIVE,
        "the gamma deviance is infinite at y = 0",
        "gamma NLL [(y - mu)/mu - log(y/mu)] / phi, deviance form",
    ),
    "inverse_gaussian": (
        codes.FAMILY_INVERSE_GAUSSIAN,
        _POSITIVE,
        "the inverse Gaussian deviance is infinite at y = 0",
        "inverse Gaussian NLL (y - mu)^2 / (2 phi y mu^2)",
    ),
    "negative_binomial": (
        codes.FAMILY_NEGATIVE_BINOMIAL,
        _NONNEG,
        "the negative binomial deviance is undefined for y < 0",
        "NB2 NLL with fixed alpha, V = mu + alpha mu^2, deviance form",
    ),
    "tweedie": (
        codes.FAMILY_TWEEDIE,
        _NONNEG,
        "the Tweedie deviance (1 < p < 2) is undefined for y < 0",
        "Tweedie NLL with power p in (1, 2), V = mu^p, deviance form",
    ),
    "squared_error": (
        codes.LOSS_SQUARED_ERROR,
        _REAL,
        "",
        "squared error (y - mu)^2 / 2, no dispersion",
    ),
    "hinge": (
        codes.LOSS_HINGE,
        _BINARY,
        "margin losses use the labels t = 2y - 1 in {-1, 1}",
        "hinge max(0, 1 - t mu), t = 2y - 1; identity output + L2 = soft-margin SVM",
    ),
    "squared_hinge": (
        codes.LOSS_SQUARED_HINGE,
        _BINARY,
        "margin losses use the labels t = 2y - 1 in {-1, 1}",
        "squared hinge max(0, 1 - t mu)^2, t = 2y - 1",
    ),
    "logistic": (
        codes.LOSS_LOGISTIC,
        _BINARY,
        "margin losses use the labels t = 2y - 1 in {-1, 1}",
        "logistic margin loss log(1 + exp(-t mu)); = Bernoulli-logit NLL with identity output",
    ),
    "perceptron": (
        codes.LOSS_PERCEPTRON,
        _BINARY,
        "margin losses use the labels t = 2y - 1 in {-1, 1}",
        "perceptron max(0, -t mu), t = 2y - 1",
    ),
}

_ALIASES: dict[str, tuple[str, ...]] = {
    "gaussian": ("gaussian_nll", "gaussian_deviance", "normal", "normal_nll"),
    "bernoulli": (
        "bernoulli_nll",
        "bernoulli_deviance",
        "log_loss",
        "logloss",
        "binary_crossentropy",
        "binary_cross_entropy",
        "bce",
        "cross_entropy",
    ),
    "binomial": ("binomial_nll", "binomial_deviance"),
    "poisson": ("poisson_nll", "poisson_deviance"),
    "gamma": ("gamma_nll", "gamma_deviance"),
    "inverse_gaussian": ("inverse_gaussian_nll", "inverse_gaussian_deviance", "ig", "wald"),
    "negative_binomial": ("negative_binomial_nll", "negative_binomial_deviance", "nb", "nb2"),
    "tweedie": ("tweedie_nll", "tweedie_deviance"),
    "squared_error": ("mse", "l2", "squared", "squared_loss", "least_squares"),
    "hinge": ("hinge_loss",),
    "squared_hinge": ("squared_hinge_loss",),
    "logistic": ("logistic_margin", "margin_logistic"),
    "perceptron": ("perceptron_loss",),
}

# losses with a parameter: canonical name -> (keyword, default, accepted range in words)
_PARAMS: dict[str, tuple[str, float, str]] = {
    "negative_binomial": ("alpha", 1.0, "a finite alpha > 0"),
    "tweedie": ("power", 1.5, "a power p with 1 < p < 2"),
}

_CALL = re.compile(r"^\s*([A-Za-z0-9_\- ]+?)\s*\(\s*(.*?)\s*\)\s*$")


def _kernels():
    # imported on first use so that importing the vocabulary compiles and loads no Numba
    from simbench.kernels import losses as k

    return k


def _param_ok(name: str, value: float) -> bool:
    if name == "negative_binomial":
        return math.isfinite(value) and value > 0.0
    return 1.0 < value < 2.0


def _parse_param(name: str, value: object) -> float:
    keyword, _default, accepted = _PARAMS[name]
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(value, bool) or not _param_ok(name, x):
        raise ValidationError(
            f"loss {name!r}: {keyword}={value!r} is not accepted; need {accepted}"
        )
    return x + 0.0  # -0.0 -> 0.0


def _family_name(family: object) -> str:
    """Canonical family name of a Family or a family name such as ``"tweedie(1.5)"``."""
    name = getattr(family, "name", None)
    if isinstance(name, str) and name in _FAMILY_DATA:
        return name
    from simbench import families

    return families.get(family).name  # type: ignore[arg-type]


def _as_float_array(x, loss: Loss, what: str, n: int | None = None) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{loss!r}: {what} must be an array of real numbers; got {type(x).__name__}"
        ) from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise ValidationError(f"{loss!r}: {what} must be 1-D; got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise ValidationError(f"{loss!r}: {what} has {arr.size} entries; y has {n}")
    return arr


@dataclass(frozen=True, repr=False)
class Loss:
    r"""A loss :math:`\ell(y, \eta)` of a response and an output unit's linear predictor.

    Obtain losses with :func:`get` or :func:`for_family`; the constructor trusts its arguments.

    Parameters
    ----------
    name : str
        Canonical name (see :func:`names`).
    code : int
        Kernel code: the family code for a family NLL, else a ``LOSS_*`` code of
        :mod:`simbench.kernels.codes`.
    param : float
        Negative binomial :math:`\alpha` or Tweedie power :math:`p`; 0.0 for other losses.

    Notes
    -----
    With :math:`\mu = h(\eta)`, :math:`V` the family's variance function and :math:`\phi`
    the dispersion, a family NLL is :math:`\ell = d(y, \mu)/(2\phi)` and

    .. math::

        \frac{d\ell}{d\eta} = -\frac{(y - \mu) h'}{\phi V}, \qquad
        \frac{d^2\ell}{d\eta^2} = \frac{1}{\phi}\Big[\frac{h'^2}{V}
            + (y - \mu)\Big(\frac{h'^2 V'}{V^2} - \frac{h''}{V}\Big)\Big],

    whose expectation over :math:`y` (the Fisher information) is :math:`h'^2/(\phi V)`.  A
    loss :math:`L(y, \mu)` with no family has :math:`d\ell/d\eta = L_\mu h'`, observed
    :math:`d^2\ell/d\eta^2 = L_{\mu\mu} h'^2 + L_\mu h''` and Gauss–Newton ("expected")
    :math:`L_{\mu\mu} h'^2`.  Hinge and perceptron use the subgradient 0 at their kink.
    """

    name: str
    code: int
    param: float = 0.0

    def __repr__(self) -> str:
        if self.name in _PARAMS:
            return f"Loss({self.name!r}, {self.param!r})"
        return f"Loss({self.name!r})"

    def __str__(self) -> str:
        return self.label

    # ---- descriptive properties --------------------------------------------------------

    @property
    def label(self) -> str:
        """``name`` with the parameter, e.g. ``"tweedie(1.5)"``; the plain name otherwise."""
        if self.name in _PARAMS:
            return f"{self.name}({self.param:g})"
        return self.name

    @property
    def description(self) -> str:
        """One line with the formula, for ``simbench list losses``."""
        return _TABLE[self.name][3]

    @property
    def is_nll(self) -> bool:
        """Whether this is a family's negative log-likelihood."""
        return self.code < codes.LOSS_SQUARED_ERROR

    @property
    def family(self):
        """The :class:`~simbench.families.Family` of a family NLL (with its parameter); None
        for losses with no family."""
        if not self.is_nll:
            return None
        from simbench import families

        if self.name in _PARAMS:
            return families.get(self.name, **{_PARAMS[self.name][0]: self.param})
        return families.get(self.name)

    @property
    def binary_only(self) -> bool:
        """Whether the loss needs labels y in {0, 1} (the margin losses)."""
        return _TABLE[self.name][1] == _BINARY

    @property
    def has_dispersion(self) -> bool:
        """Whether ``phi`` enters the loss (family NLLs: :math:`\\ell = d/(2\\phi)`)."""
        return self.is_nll

    @property
    def y_domain(self) -> str:
        """The responses the loss accepts, in words (e.g. ``"y > 0"``)."""
        return _DOMAIN_TEXT[_TABLE[self.name][1]]

    # ---- applicability -----------------------------------------------------------------

    def why_not(self, family) -> str | None:
        """Why this loss cannot be fitted to data of ``family``; None if it can.

        The check is static: a loss applies when every response the family can produce is
        in the loss's domain (margin losses need a Bernoulli family, the gamma and inverse
        Gaussian NLLs data that cannot be 0, the Bernoulli/binomial NLLs data in [0, 1]).

        Parameters
        ----------
        family : Family or str
            A family object or name (``"tweedie(1.5)"`` allowed).
        """
        fam = _family_name(family)
        data_domain, data_text = _FAMILY_DATA[fam]
        _code, domain, reason, _desc = _TABLE[self.name]
        if domain in _INSIDE[data_domain]:
            return None
        return (
            f"loss {self.label!r} needs {_DOMAIN_TEXT[domain]} ({reason}); "
            f"family {fam!r} has {data_text}"
        )

    def supports(self, family) -> bool:
        """Whether this loss can be fitted to data of ``family`` (see :meth:`why_not`)."""
        return self.why_not(family) is None

    def check_y(self, y) -> np.ndarray:
        """Validate responses for this loss; return them as a 1-D float64 array.

        Raises
        ------
        ValidationError
            ``y`` is not finite or not in the loss's domain (:attr:`y_domain`); the message
            names the loss, the first offending value and its index.
        """
        arr = _as_float_array(y, self, "y")
        domain = _TABLE[self.name][1]
        ok = np.isfinite(arr)
        if domain == _NONNEG:
            ok &= arr >= 0.0
        elif domain == _POSITIVE:
            ok &= arr > 0.0
        elif domain == _UNIT:
            ok &= (arr >= 0.0) & (arr <= 1.0)
        elif domain == _BINARY:
            ok &= (arr == 0.0) | (arr == 1.0)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            reason = _TABLE[self.name][2]
            why = f" ({reason})" if reason else ""
            raise ValidationError(
                f"loss {self.label!r} needs {_DOMAIN_TEXT[domain]}{why}; "
                f"got y[{i}] = {float(arr[i])!r} ({int((~ok).sum())} of {arr.size} values rejected)"
            )
        return arr

    # ---- evaluation --------------------------------------------------------------------

    def _prepare(self, y, eta, link, weights, offset, phi):
        from simbench import links

        lk = links.get(link)
        y = self.check_y(y)
        eta = _as_float_array(eta, self, "eta", y.size)
        empty = np.empty(0, dtype=np.float64)
        if weights is None:
            w = empty
        else:
            w = _as_float_array(weights, self, "weights", y.size)
            if not (np.isfinite(w).all() and (w >= 0.0).all()):
                raise ValidationError(f"{self!r}: weights must be finite and >= 0")
        if offset is None:
            off = empty
        else:
            off = _as_float_array(offset, self, "offset", y.size)
            if not np.isfinite(off).all():
                raise ValidationError(f"{self!r}: offset must be finite")
        phi = float(phi)
        if not (math.isfinite(phi) and phi > 0.0):
            raise ValidationError(f"{self!r}: phi must be finite and > 0; got {phi!r}")
        return lk, y, eta, w, off, phi

    def value(self, y, eta, link, weights=None, offset=None, phi: float = 1.0) -> float:
        r"""Total loss :math:`\sum_i w_i \ell(y_i, \eta_i + o_i)`.

        Parameters
        ----------
        y, eta : array_like
            Responses (checked by :meth:`check_y`) and linear predictors (non-finite
            values propagate).
        link : Link or str
            The output activation :math:`h` (a link or its activation name, e.g. ``"exp"``).
        weights, offset : array_like, optional
            Prior weights (>= 0; rows with weight 0 are ignored) and offsets.
        phi : float
            Dispersion; divides family NLLs, ignored by the other losses.
        """
        lk, y, eta, w, off, phi = self._prepare(y, eta, link, weights, offset, phi)
        return float(
            _kernels().loss_sum(self.code, self.param, phi, lk.code, lk.param, y, eta, w, off)
        )

    def grad_hess(
        self, y, eta, link, weights=None, offset=None, phi: float = 1.0, expected: bool = False
    ) -> tuple[float, np.ndarray, np.ndarray]:
        r"""Total loss and per-observation weighted derivatives in :math:`\eta`.

        Arguments as in :meth:`value`; ``expected=True`` gives the expected (Fisher) second
        derivative for family NLLs and the Gauss–Newton term for other losses.

        Returns
        -------
        value : float
            :math:`\sum_i w_i \ell_i`.
        grad, hess : ndarray
            :math:`w_i\, d\ell/d\eta` and :math:`w_i\, d^2\ell/d\eta^2` per observation.
        """
        lk, y, eta, w, off, phi = self._prepare(y, eta, link, weights, offset, phi)
        grad = np.empty(y.size, dtype=np.float64)
        hess = np.empty(y.size, dtype=np.float64)
        kind = codes.HESS_EXPECTED if expected else codes.HESS_OBSERVED
        total = _kernels().loss_grad_hess(
            self.code, self.param, phi, lk.code, lk.param, kind, y, eta, w, off, grad, hess
        )
        return float(total), grad, hess


REGISTRY: Registry[Loss] = Registry("loss")
for _name, (_code, _domain, _reason, _desc) in _TABLE.items():
    _default = _PARAMS[_name][1] if _name in _PARAMS else 0.0
    REGISTRY.register(_name, Loss(_name, _code, _default), _ALIASES[_name])

DESCRIPTIONS: dict[str, str] = {name: row[3] for name, row in _TABLE.items()}


def names(aliases: bool = False) -> list[str]:
    """Canonical loss names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line description, for listings."""
    return dict(DESCRIPTIONS)


def get(name: str | Loss, alpha: float | None = None, power: float | None = None) -> Loss:
    """The loss called ``name``.

    Parameters
    ----------
    name : str or Loss
        A canonical name, an alias (``"mse"``, ``"log_loss"``, ``"poisson_deviance"``, ...),
        a call form ``"tweedie(1.3)"`` / ``"negative_binomial(0.5)"``, or a Loss (returned as
        it is).  Case and ``-``/``_`` do not matter.
    alpha : float, optional
        Negative binomial :math:`\\alpha > 0` (default 1.0).  Ignored by the other losses
        (as in :func:`simbench.families.get`), so one call can pass a scenario's ``alpha``
        and ``power`` whatever the loss.
    power : float, optional
        Tweedie power :math:`1 < p < 2` (default 1.5).  Ignored by the other losses.

    Raises
    ------
    UnknownNameError
        ``name`` is not a loss; the message lists the accepted names and the closest one.
    ValidationError
        A parameter out of range, in the string of a loss without one, or given twice
        differently.
    """
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str):
        raise UnknownNameError(
            f"a loss is given by name; got {name!r}; accepted: " + ", ".join(names())
        )
    match = _CALL.match(name)
    inline = None
    key = name
    if match is not None:
        key, inline = match.group(1), match.group(2)
    canonical = REGISTRY.canonical(key)
    if canonical not in _PARAMS:
        if inline is not None:
            raise ValidationError(
                f"loss {canonical!r} takes no parameter; got {name!r}; losses with a "
                "parameter: negative_binomial(alpha), tweedie(power)"
            )
        return REGISTRY.get(canonical)
    keyword, default, _accepted = _PARAMS[canonical]
    given = alpha if keyword == "alpha" else power
    value = default
    if inline is not None:
        value = _parse_param(canonical, inline)
    if given is not None:
        explicit = _parse_param(canonical, given)
        if inline is not None and explicit != value:
            raise ValidationError(
                f"loss {name!r} given together with a different {keyword}={given!r}"
            )
        value = explicit
    return Loss(canonical, _TABLE[canonical][0], value)


def for_family(family) -> Loss:
    """The negative log-likelihood of ``family`` (a Family or a family name such as
    ``"tweedie(1.7)"``), carrying its parameter (negative binomial alpha, Tweedie power)."""
    from simbench import families

    fam = families.get(family)
    if fam.name in _PARAMS:
        return Loss(fam.name, _TABLE[fam.name][0], float(fam.param))
    return REGISTRY.get(fam.name)
