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

from dataclasses import dataclass

import numpy as np

from simbench import families as _families
from simbench._domains import Domain, Parameter
from simbench._registry import Registry, VocabularyItem, parse_call
from simbench.errors import ValidationError
from simbench.kernels import codes

__all__ = [
    "DESCRIPTIONS",
    "REGISTRY",
    "SPECS",
    "Loss",
    "LossSpec",
    "descriptions",
    "for_family",
    "get",
    "names",
]


@dataclass(frozen=True)
class LossSpec:
    """One entry of the loss vocabulary.

    Parameters
    ----------
    name, code, description, aliases
        Canonical name, kernel code (the family code for a family NLL, else a ``LOSS_*``
        code), one line with the formula, other accepted names.
    y_domain : Domain
        The responses the loss is defined for (a family NLL: where its family's deviance is).
    reason : str
        Why the domain, in words, for messages (empty where it needs no reason).
    family : FamilySpec or None
        The family of a negative log-likelihood; its parameter is the loss's.
    """

    name: str
    code: int
    description: str
    aliases: tuple[str, ...]
    y_domain: Domain
    reason: str = ""
    family: _families.FamilySpec | None = None

    @property
    def parameter(self) -> Parameter | None:
        """The loss's parameter: its family's (negative binomial alpha, Tweedie power)."""
        return None if self.family is None else self.family.parameter


def _nll(family: str, description: str, aliases: tuple[str, ...], reason: str = "") -> LossSpec:
    """The negative log-likelihood of ``family``: its code, domain and parameter are the
    family's."""
    fam = _families.entry(family)
    return LossSpec(fam.name, fam.code, description, aliases, fam.y_deviance, reason, fam)


_MARGIN = "margin losses use the labels t = 2y - 1 in {-1, 1}"

SPECS: tuple[LossSpec, ...] = (
    _nll(
        "gaussian",
        "Gaussian NLL (y - mu)^2 / (2 phi)",
        ("gaussian_nll", "gaussian_deviance", "normal", "normal_nll"),
    ),
    _nll(
        "bernoulli",
        "Bernoulli NLL (log loss) -[y log mu + (1-y) log(1-mu)], deviance form",
        (
            "bernoulli_nll",
            "bernoulli_deviance",
            "log_loss",
            "logloss",
            "binary_crossentropy",
            "binary_cross_entropy",
            "bce",
            "cross_entropy",
        ),
        "the Bernoulli deviance needs 0 <= y <= 1",
    ),
    _nll(
        "binomial",
        "binomial NLL per trial, y a proportion and weights the trials",
        ("binomial_nll", "binomial_deviance"),
        "y is a proportion count/trials, the trials are the weights",
    ),
    _nll(
        "poisson",
        "Poisson NLL y log(y/mu) - (y - mu), deviance form",
        ("poisson_nll", "poisson_deviance"),
        "the Poisson deviance is undefined for y < 0",
    ),
    _nll(
        "gamma",
        "gamma NLL [(y - mu)/mu - log(y/mu)] / phi, deviance form",
        ("gamma_nll", "gamma_deviance"),
        "the gamma deviance is infinite at y = 0",
    ),
    _nll(
        "inverse_gaussian",
        "inverse Gaussian NLL (y - mu)^2 / (2 phi y mu^2)",
        ("inverse_gaussian_nll", "inverse_gaussian_deviance", "ig", "wald"),
        "the inverse Gaussian deviance is infinite at y = 0",
    ),
    _nll(
        "negative_binomial",
        "NB2 NLL with fixed alpha, V = mu + alpha mu^2, deviance form",
        ("negative_binomial_nll", "negative_binomial_deviance", "nb", "nb2"),
        "the negative binomial deviance is undefined for y < 0",
    ),
    _nll(
        "tweedie",
        f"Tweedie NLL with power p in {_families.POWER.domain.interval()}, V = mu^p, deviance form",
        ("tweedie_nll", "tweedie_deviance"),
        f"the Tweedie deviance ({_families.POWER.domain.text('p')}) is undefined for y < 0",
    ),
    LossSpec(
        "squared_error",
        codes.LOSS_SQUARED_ERROR,
        "squared error (y - mu)^2 / 2, no dispersion",
        ("mse", "l2", "squared", "squared_loss", "least_squares"),
        _families.REAL,
    ),
    LossSpec(
        "hinge",
        codes.LOSS_HINGE,
        "hinge max(0, 1 - t mu), t = 2y - 1; identity output + L2 = soft-margin SVM",
        ("hinge_loss",),
        _families.BINARY,
        _MARGIN,
    ),
    LossSpec(
        "squared_hinge",
        codes.LOSS_SQUARED_HINGE,
        "squared hinge max(0, 1 - t mu)^2, t = 2y - 1",
        ("squared_hinge_loss",),
        _families.BINARY,
        _MARGIN,
    ),
    LossSpec(
        "logistic",
        codes.LOSS_LOGISTIC,
        "logistic margin loss log(1 + exp(-t mu)); = Bernoulli-logit NLL with identity output",
        ("logistic_margin", "margin_logistic"),
        _families.BINARY,
        _MARGIN,
    ),
    LossSpec(
        "perceptron",
        codes.LOSS_PERCEPTRON,
        "perceptron max(0, -t mu), t = 2y - 1",
        ("perceptron_loss",),
        _families.BINARY,
        _MARGIN,
    ),
)

_SPEC: dict[str, LossSpec] = {spec.name: spec for spec in SPECS}


def _kernels():
    # imported on first use so that importing the vocabulary compiles and loads no Numba
    from simbench.kernels import losses as k

    return k


def _parse_param(spec: LossSpec, value: object) -> float:
    param = spec.parameter
    assert param is not None
    x = param.value(value)
    if x is None:
        raise ValidationError(
            f"loss {spec.name!r}: {param.name}={value!r} is not accepted; need {param.accepted}"
        )
    return x


def _family_entry(family: object) -> _families.FamilySpec:
    """The vocabulary entry of a Family or a family name such as ``"tweedie(1.5)"``."""
    if isinstance(family, _families.Family):
        return family.entry
    return _families.get(family).entry  # type: ignore[arg-type]


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
class Loss(VocabularyItem):
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

    _entries = _SPEC  # entry (its LossSpec), repr and spec ("tweedie(1.5)") come from there

    def __str__(self) -> str:
        return self.label

    # ---- descriptive properties --------------------------------------------------------

    @property
    def label(self) -> str:
        """``name`` with the parameter, e.g. ``"tweedie(1.5)"``; the plain name otherwise."""
        if self.entry.parameter is not None:
            return f"{self.name}({self.param:g})"
        return self.name

    @property
    def description(self) -> str:
        """One line with the formula, for ``simbench list losses``."""
        return self.entry.description

    @property
    def is_nll(self) -> bool:
        """Whether this is a family's negative log-likelihood."""
        return self.entry.family is not None

    @property
    def family(self):
        """The :class:`~simbench.families.Family` of a family NLL (with its parameter); None
        for losses with no family."""
        family = self.entry.family
        if family is None:
            return None
        if family.parameter is not None:
            return _families.get(family.name, **{family.parameter.name: self.param})
        return _families.get(family.name)

    @property
    def binary_only(self) -> bool:
        """Whether the loss needs labels y in {0, 1} (the margin losses)."""
        return self.entry.y_domain == _families.BINARY

    @property
    def has_dispersion(self) -> bool:
        """Whether ``phi`` enters the loss (family NLLs: :math:`\\ell = d/(2\\phi)`)."""
        return self.is_nll

    @property
    def y_domain(self) -> str:
        """The responses the loss accepts, in words (e.g. ``"y > 0"``)."""
        return self.entry.y_domain.text("y")

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
        fam = _family_entry(family)
        if fam.y_support.issubset(self.entry.y_domain):
            return None
        return (
            f"loss {self.label!r} needs {self.y_domain} ({self.entry.reason}); "
            f"family {fam.name!r} has {fam.responses}"
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
        ok = self.entry.y_domain.contains(arr)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            reason = self.entry.reason
            why = f" ({reason})" if reason else ""
            raise ValidationError(
                f"loss {self.label!r} needs {self.y_domain}{why}; "
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
        if phi not in _families.DISPERSION.domain:
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
for _spec in SPECS:
    _default = 0.0 if _spec.parameter is None else _spec.parameter.default
    REGISTRY.register(_spec.name, Loss(_spec.name, _spec.code, _default), _spec.aliases)

DESCRIPTIONS: dict[str, str] = {spec.name: spec.description for spec in SPECS}


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
    key, argument = parse_call(REGISTRY.require_name(name))
    spec = _SPEC[REGISTRY.canonical(key)]
    param = spec.parameter
    if param is None:
        if argument is not None:
            raise ValidationError(
                f"loss {spec.name!r} takes no parameter; got {name!r}; losses with a "
                "parameter: "
                + ", ".join(f"{s.name}({s.parameter.name})" for s in SPECS if s.parameter)
            )
        return REGISTRY.get(spec.name)
    keyword = {"alpha": alpha, "power": power}[param.name]
    read = lambda value, _shown: _parse_param(spec, value)  # noqa: E731
    value = param.resolve("loss", name, argument, keyword, read)
    return Loss(spec.name, spec.code, param.default if value is None else value)


def for_family(family) -> Loss:
    """The negative log-likelihood of ``family`` (a Family or a family name such as
    ``"tweedie(1.7)"``), carrying its parameter (negative binomial alpha, Tweedie power)."""
    fam = _families.get(family)
    if fam.entry.parameter is not None:
        return Loss(fam.name, fam.code, float(fam.param))
    return REGISTRY.get(fam.name)
