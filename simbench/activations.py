"""Hidden-layer activations: the vocabulary object :class:`Activation`, the registry and
:func:`get`.

The numbers come from :mod:`simbench.kernels.activations`; this module names them, validates
input and allocates output.  (Output activations are inverse links: see :mod:`simbench.links`.)

>>> from simbench import activations
>>> activations.get("ReLU")
Activation('relu')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simbench._registry import Registry, VocabularyItem
from simbench.errors import ValidationError
from simbench.kernels import codes

__all__ = [
    "DESCRIPTIONS",
    "REGISTRY",
    "SPECS",
    "Activation",
    "ActivationSpec",
    "descriptions",
    "get",
    "names",
]


@dataclass(frozen=True)
class ActivationSpec:
    """One entry of the hidden-activation vocabulary: canonical name, kernel code, one line
    with the formula of ``f``, other accepted names."""

    name: str
    code: int
    description: str
    aliases: tuple[str, ...] = ()


SPECS: tuple[ActivationSpec, ...] = (
    ActivationSpec("identity", codes.ACT_IDENTITY, "f(x) = x", ("linear", "none")),
    ActivationSpec("relu", codes.ACT_RELU, "f(x) = max(0, x), f'(0) = 0", ("rectifier",)),
    ActivationSpec("tanh", codes.ACT_TANH, "f(x) = tanh(x)", ("hyperbolic_tangent",)),
    ActivationSpec("sigmoid", codes.ACT_SIGMOID, "f(x) = 1 / (1 + exp(-x))", ("logistic", "expit")),
    ActivationSpec("softplus", codes.ACT_SOFTPLUS, "f(x) = log(1 + exp(x))"),
)

_SPEC: dict[str, ActivationSpec] = {spec.name: spec for spec in SPECS}


def _kernels():
    # imported on first use so that importing the vocabulary loads no Numba
    from simbench.kernels import activations as k

    return k


@dataclass(frozen=True, repr=False)
class Activation(VocabularyItem):
    r"""A hidden-layer activation ``f`` with derivative ``f'``.

    Obtain activations with :func:`get`; the constructor trusts its arguments.

    Parameters
    ----------
    name : str
        Canonical name (see :func:`names`).
    code : int
        Kernel code from :mod:`simbench.kernels.codes`.
    param : float
        Unused (0.0); present so every vocabulary object has the same fields.

    Notes
    -----
    ==========  ================================  ====================================
    name        :math:`f(x)`                      :math:`f'(x)`
    ==========  ================================  ====================================
    identity    :math:`x`                         :math:`1`
    relu        :math:`\max(0, x)`                :math:`1\{x > 0\}` (0 at 0)
    tanh        :math:`\tanh x`                   :math:`1 - \tanh^2 x`
    sigmoid     :math:`\sigma(x) = 1/(1+e^{-x})`  :math:`\sigma(x)(1 - \sigma(x))`
    softplus    :math:`\log(1 + e^x)`             :math:`\sigma(x)`
    ==========  ================================  ====================================

    Derivatives are evaluated in forms that keep full relative accuracy in the tails.
    """

    name: str
    code: int
    param: float = 0.0

    _entries = _SPEC  # entry (its ActivationSpec) and repr come from there

    @property
    def description(self) -> str:
        """One line with the formula of ``f``."""
        return self.entry.description

    def _apply(self, kernel, x):
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(
                f"{self!r}: x must be an array of real numbers; got {type(x).__name__}"
            ) from None
        if not np.isfinite(arr).all():
            bad = float(arr.ravel()[~np.isfinite(arr.ravel())][0])
            raise ValidationError(f"{self!r}: x must be finite; got {bad!r}")
        out = np.empty(arr.size, dtype=np.float64)
        kernel(self.code, np.ascontiguousarray(arr.reshape(-1)), out)
        if arr.ndim == 0:
            return out[0]
        return out.reshape(arr.shape)

    def f(self, x):
        """The activation :math:`f(x)`, elementwise (``x`` must be finite)."""
        return self._apply(_kernels().act_f_arr, x)

    def d(self, x):
        """The derivative :math:`f'(x)`, elementwise (``x`` must be finite)."""
        return self._apply(_kernels().act_d_arr, x)


REGISTRY: Registry[Activation] = Registry("activation")
for _spec in SPECS:
    REGISTRY.register(_spec.name, Activation(_spec.name, _spec.code), _spec.aliases)

DESCRIPTIONS: dict[str, str] = {spec.name: spec.description for spec in SPECS}


def names(aliases: bool = False) -> list[str]:
    """Canonical activation names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line formula, for listings."""
    return dict(DESCRIPTIONS)


def get(name: str | Activation) -> Activation:
    """The hidden activation called ``name``.

    Parameters
    ----------
    name : str or Activation
        A canonical name or alias (``"linear"``, ``"logistic"``, ...), case and ``-``/``_``
        insensitive; an Activation is returned as it is.

    Raises
    ------
    UnknownNameError
        ``name`` is not an activation; the message lists the accepted names and the closest.
    """
    if isinstance(name, Activation):
        return name
    return REGISTRY.get(REGISTRY.require_name(name))
