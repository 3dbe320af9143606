"""Optimisers: the names a network configuration may use, with what each one does.

The training loops live in :mod:`simbench.fit.optimizers`; this module is the vocabulary
(for ``simbench list optimizers`` and for validating configurations): canonical names,
aliases, one-line descriptions and the facts validation needs (does it take a learning
rate, mini-batches, hidden layers?).

>>> from simbench import optimizers
>>> optimizers.get("L-BFGS")
Optimizer('lbfgs')
>>> optimizers.get("newton").hidden_layers
False
"""

from __future__ import annotations

from dataclasses import dataclass

from simbench._registry import Registry
from simbench.errors import UnknownNameError

__all__ = ["DESCRIPTIONS", "REGISTRY", "Optimizer", "descriptions", "get", "names"]


@dataclass(frozen=True, repr=False)
class Optimizer:
    """A training method for a network configuration.

    Parameters
    ----------
    name : str
        Canonical name.
    description : str
        One line: the update rule.
    uses_lr : bool
        Takes a learning rate (first-order methods).
    minibatch : bool
        Can run on mini-batches (``batch_size``); the others always use the full data.
    hidden_layers : bool
        Can train networks with hidden layers (Newton and IRLS need the GLM-shaped network).
    default_lr : float or None
        The learning rate used when a configuration gives none.
    """

    name: str
    description: str
    uses_lr: bool
    minibatch: bool
    hidden_layers: bool
    default_lr: float | None = None

    def __repr__(self) -> str:
        return f"Optimizer({self.name!r})"

    def __str__(self) -> str:
        return self.name


_OPTIMIZERS = (
    (
        Optimizer(
            "irls",
            "iteratively reweighted least squares: the reference GLM fit (fit_glm); "
            "no hidden layers, matched output and loss",
            uses_lr=False,
            minibatch=False,
            hidden_layers=False,
        ),
        ("fisher_scoring",),
    ),
    (
        Optimizer(
            "newton",
            "Newton's method on the full loss with the observed Hessian X'diag(l'')X "
            "(Fisher or damped when not positive definite) and step halving; no hidden layers",
            uses_lr=False,
            minibatch=False,
            hidden_layers=False,
        ),
        ("newton_raphson",),
    ),
    (
        Optimizer(
            "lbfgs",
            "limited-memory BFGS (scipy L-BFGS-B) on the full loss and its exact gradient",
            uses_lr=False,
            minibatch=False,
            hidden_layers=True,
        ),
        ("l_bfgs", "l_bfgs_b", "lbfgs_b"),
    ),
    (
        Optimizer(
            "gd",
            "full-batch gradient descent: theta -= lr * grad",
            uses_lr=True,
            minibatch=False,
            hidden_layers=True,
            default_lr=0.1,
        ),
        ("gradient_descent", "batch_gd", "full_batch"),
    ),
    (
        Optimizer(
            "sgd",
            "stochastic gradient descent on mini-batches reshuffled every epoch",
            uses_lr=True,
            minibatch=True,
            hidden_layers=True,
            default_lr=0.01,
        ),
        ("minibatch_sgd",),
    ),
    (
        Optimizer(
            "momentum",
            "heavy-ball momentum: m = momentum * m + grad; theta -= lr * m",
            uses_lr=True,
            minibatch=True,
            hidden_layers=True,
            default_lr=0.01,
        ),
        ("heavy_ball", "sgd_momentum"),
    ),
    (
        Optimizer(
            "nesterov",
            "Nesterov momentum: m = momentum * m + grad; theta -= lr * (grad + momentum * m)",
            uses_lr=True,
            minibatch=True,
            hidden_layers=True,
            default_lr=0.01,
        ),
        ("nag", "nesterov_momentum"),
    ),
    (
        Optimizer(
            "adam",
            "Adam: bias-corrected first and second moment estimates (beta1, beta2, eps)",
            uses_lr=True,
            minibatch=True,
            hidden_layers=True,
            default_lr=1e-3,
        ),
        (),
    ),
)

REGISTRY: Registry[Optimizer] = Registry("optimizer")
for _opt, _aliases in _OPTIMIZERS:
    REGISTRY.register(_opt.name, _opt, _aliases)

DESCRIPTIONS: dict[str, str] = {opt.name: opt.description for opt, _a in _OPTIMIZERS}


def names(aliases: bool = False) -> list[str]:
    """Canonical optimiser names in a fixed order (and the aliases, sorted, if asked)."""
    return REGISTRY.names(aliases=aliases)


def descriptions() -> dict[str, str]:
    """Canonical name -> one-line description, for listings."""
    return dict(DESCRIPTIONS)


def get(name: str | Optimizer) -> Optimizer:
    """The optimiser called ``name`` (canonical name or alias; case and ``-``/``_`` ignored).

    Raises
    ------
    UnknownNameError
        ``name`` is not an optimiser; the message lists the accepted names and the closest.
    """
    if isinstance(name, Optimizer):
        return name
    if not isinstance(name, str):
        raise UnknownNameError(
            f"an optimizer is given by name; got {name!r}; accepted: " + ", ".join(names())
        )
    return REGISTRY.get(name)
