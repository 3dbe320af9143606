"""Network configurations: a validated, hashable description of one way to train a network.

A :class:`NetworkConfig` is what a ``[[configs]]`` table of a sweep file describes.  Every way
of building one (the constructor, :meth:`NetworkConfig.from_dict`, :meth:`NetworkConfig.replace`)
validates and canonicalises it, so a configuration that exists can be trained — or is
refused up front with a message naming the key, the bad value and what is accepted.

Keys and defaults
-----------------
==================== ============ ===========================================================
key                  default      meaning
==================== ============ ===========================================================
name                 (generated)  a label for tables, e.g. ``"h32-16_relu_adam"``
hidden               ``[]``       widths of the hidden layers; ``[]`` is the GLM-shaped network
activation           ``"relu"``   one hidden activation, or one per hidden layer
output               ``matched``  output activation: the inverse of the scenario's link, or a
                                  link / activation name (``exp``, ``sigmoid``, ``identity``,
                                  ``probit``, ``relu``, ``softplus``, ``power(0.5)``, ...)
loss                 ``matched``  the scenario family's NLL, or a loss name
                                  (``squared_error``, ``hinge``, ``poisson``, ...)
optimizer            ``adam``     irls, newton, lbfgs, gd, sgd, momentum, nesterov, adam
lr                   per method   learning rate: gd 0.1, sgd/momentum/nesterov 0.01,
                                  adam 1e-3; unused (None) for irls, newton and lbfgs
epochs               200          maximum epochs (iterations of lbfgs/newton/irls)
batch_size           None         rows per mini-batch; None = the full data
dropout              0.0          probability of dropping a hidden unit (training only)
l2                   0.0          weight decay: ``l2 / 2 * sum(W^2)`` over weights, not biases
early_stopping       False        hold out a validation split; stop after ``patience``
                                  epochs without improvement and restore the best weights
patience             10           epochs without a better validation loss before stopping
validation_fraction  0.2          share of the rows held out when early_stopping is on
init                 ``glorot``   glorot, he, uniform or zeros (output bias: see train)
tol                  1e-8         stop when the gradient norm of the objective is <= tol
ftol                 1e-15        stop when the relative loss change of an epoch is <= ftol
                                  (a stall detector; 0 turns it off)
momentum             0.9          momentum / Nesterov coefficient
beta1, beta2, eps    0.9, 0.999,  Adam's moment decays and denominator guard
                     1e-8
refit_output         ``false``    after training, refit the output layer by IRLS as a GLM of
                                  the last hidden layer's outputs with the data's family and
                                  the output activation's link (``"glm"``), or re-solve only
                                  the output bias (``"intercept"``); see ``train``
==================== ============ ===========================================================

Hyper-parameters that the chosen optimiser does not use (``lr`` of lbfgs, ``beta1`` of sgd, ...)
are accepted and ignored, so one grid can cross optimisers.  Combinations that cannot be
trained are refused: Newton or IRLS with hidden layers, mini-batches with a full-batch method,
dropout with no hidden layer or with a deterministic method (lbfgs, newton, irls), Newton on
the piecewise-linear hinge or perceptron losses, IRLS with anything but the matched output,
the matched loss and no penalty.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from simbench._registry import closest, normalize_name
from simbench._validation import integer, key_error, number
from simbench.errors import UnknownNameError, ValidationError

__all__ = ["INITS", "REFIT_OUTPUT", "NetworkConfig"]

INITS = ("glorot", "he", "uniform", "zeros")
# values of refit_output: no refit, the whole output layer, or its bias alone
REFIT_OUTPUT = (False, "glm", "intercept")
_INIT_ALIASES = {"xavier": "glorot", "kaiming": "he", "zero": "zeros"}
# keys added after the first release, with the default at which to_dict leaves them out
_OMITTED_AT_DEFAULT = {"refit_output": False}
# losses whose second derivative is zero almost everywhere: Newton has no curvature to use
_NO_CURVATURE = ("hinge", "perceptron")


_WHERE = "network config"


def _fail(key: str, value: Any, accepted: str) -> ValidationError:
    return key_error(_WHERE, key, value, accepted)


def _as_int(key: str, value: Any, minimum: int) -> int:
    return integer(_WHERE, key, value, minimum)


def _as_float(
    key: str, value: Any, low: float, high: float, low_open: bool, high_open: bool
) -> float:
    return number(_WHERE, key, value, low, high, low_open=low_open, high_open=high_open)


def _named(key: str, lookup, value: Any):
    """``lookup(value)``, with the config key named in an unknown-name error."""
    try:
        return lookup(value)
    except UnknownNameError as err:
        raise UnknownNameError(f"network config: {key} = {value!r}: {err}") from None


def _canonical_output(value: Any) -> str:
    from simbench import links

    if not isinstance(value, str):
        raise _fail("output", value, "'matched' or a link/activation name")
    if normalize_name(value) == "matched":
        return "matched"
    return _named("output", links.get, value).spec


def _canonical_loss(value: Any) -> str:
    from simbench import losses

    if not isinstance(value, str):
        raise _fail("loss", value, "'matched' or a loss name")
    if normalize_name(value) == "matched":
        return "matched"
    return _named("loss", losses.get, value).label


def _canonical_activations(value: Any, n_hidden: int) -> tuple[str, ...]:
    from simbench import activations

    if isinstance(value, str):
        return (_named("activation", activations.get, value).name,) * n_hidden
    if isinstance(value, list | tuple):
        if len(value) != n_hidden:
            raise _fail(
                "activation",
                list(value),
                f"give one name, or one per hidden layer ({n_hidden} here)",
            )
        out = []
        for item in value:
            if not isinstance(item, str):
                raise _fail("activation", list(value), "activation names")
            out.append(_named("activation", activations.get, item).name)
        return tuple(out)
    raise _fail("activation", value, "an activation name or a list of names")


def _canonical_refit(value: Any) -> bool | str:
    accepted = "false, 'glm' (the whole output layer) or 'intercept' (its bias)"
    if value is False:
        return False
    if isinstance(value, str) and normalize_name(value) in REFIT_OUTPUT:
        return normalize_name(value)
    raise _fail("refit_output", value, accepted)


def _canonical_hidden(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise _fail("hidden", value, "a list of positive layer widths, [] for none")
    if isinstance(value, int):
        value = [value]
    if not isinstance(value, list | tuple):
        raise _fail("hidden", value, "a list of positive layer widths, [] for none")
    return tuple(_as_int("hidden", v, 1) for v in value)


@dataclass(frozen=True)
class NetworkConfig:
    """How to build and train one network (see the module notes for every key).

    Construct with keywords or :meth:`from_dict`; both validate and canonicalise (names become
    canonical, ``hidden`` and ``activation`` tuples, ``lr`` the optimiser's default when not
    given).  Instances are immutable and hashable; :attr:`id` is a stable hash of
    :meth:`to_dict`.

    Examples
    --------
    >>> cfg = NetworkConfig.from_dict({"hidden": [], "optimizer": "lbfgs"})
    >>> cfg.output, cfg.loss, cfg.lr
    ('matched', 'matched', None)
    """

    name: str = ""
    hidden: tuple[int, ...] = ()
    activation: tuple[str, ...] | str = "relu"
    output: str = "matched"
    loss: str = "matched"
    optimizer: str = "adam"
    lr: float | None = None
    epochs: int = 200
    batch_size: int | None = None
    dropout: float = 0.0
    l2: float = 0.0
    early_stopping: bool = False
    patience: int = 10
    validation_fraction: float = 0.2
    init: str = "glorot"
    tol: float = 1e-8
    ftol: float = 1e-15
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    refit_output: bool | str = False

    def __post_init__(self) -> None:
        from simbench import optimizers

        def put(key: str, value: Any) -> None:
            object.__setattr__(self, key, value)

        if not isinstance(self.name, str):
            raise _fail("name", self.name, "a string")
        hidden = _canonical_hidden(self.hidden)
        put("hidden", hidden)
        put("activation", _canonical_activations(self.activation, len(hidden)))
        put("output", _canonical_output(self.output))
        put("loss", _canonical_loss(self.loss))
        if not isinstance(self.optimizer, str):
            raise _fail("optimizer", self.optimizer, "an optimizer name")
        opt = _named("optimizer", optimizers.get, self.optimizer)
        put("optimizer", opt.name)
        if self.lr is None:
            put("lr", opt.default_lr)
        else:
            put("lr", _as_float("lr", self.lr, 0.0, math.inf, True, True))
        put("epochs", _as_int("epochs", self.epochs, 1))
        if self.batch_size is not None:
            put("batch_size", _as_int("batch_size", self.batch_size, 1))
        put("dropout", _as_float("dropout", self.dropout, 0.0, 1.0, False, True))
        put("l2", _as_float("l2", self.l2, 0.0, math.inf, False, True))
        if not isinstance(self.early_stopping, bool):
            raise _fail("early_stopping", self.early_stopping, "true or false")
        put("patience", _as_int("patience", self.patience, 1))
        put(
            "validation_fraction",
            _as_float("validation_fraction", self.validation_fraction, 0.0, 1.0, True, True),
        )
        if not isinstance(self.init, str):
            raise _fail("init", self.init, "one of " + ", ".join(INITS))
        init = _INIT_ALIASES.get(normalize_name(self.init), normalize_name(self.init))
        if init not in INITS:
            guess = closest(init, list(INITS))
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise ValidationError(
                f"network config: unknown init {self.init!r}{hint}; accepted: " + ", ".join(INITS)
            )
        put("init", init)
        put("tol", _as_float("tol", self.tol, 0.0, math.inf, False, True))
        put("ftol", _as_float("ftol", self.ftol, 0.0, math.inf, False, True))
        put("momentum", _as_float("momentum", self.momentum, 0.0, 1.0, False, True))
        put("beta1", _as_float("beta1", self.beta1, 0.0, 1.0, False, True))
        put("beta2", _as_float("beta2", self.beta2, 0.0, 1.0, False, True))
        put("eps", _as_float("eps", self.eps, 0.0, math.inf, True, True))
        put("refit_output", _canonical_refit(self.refit_output))
        self._check_combination(opt)
        if not self.name:
            put("name", self._default_name())

    def _check_combination(self, opt) -> None:
        """Refuse what cannot be trained, with the reason."""
        where = f"network config {self.name!r}: " if self.name else "network config: "
        if self.hidden and not opt.hidden_layers:
            raise ValidationError(
                f"{where}optimizer {opt.name!r} needs a network without hidden layers "
                f"(hidden = []); got hidden = {list(self.hidden)}"
            )
        if self.batch_size is not None and not opt.minibatch:
            raise ValidationError(
                f"{where}optimizer {opt.name!r} uses the full data; batch_size = "
                f"{self.batch_size} needs one of sgd, momentum, nesterov, adam"
            )
        if self.dropout > 0.0:
            if not self.hidden:
                raise ValidationError(
                    f"{where}dropout = {self.dropout} acts on hidden units and this network "
                    "has none (hidden = [])"
                )
            if not opt.uses_lr:
                raise ValidationError(
                    f"{where}dropout makes the loss random; optimizer {opt.name!r} needs a "
                    "deterministic one (use gd, sgd, momentum, nesterov or adam)"
                )
        if opt.name == "newton" and self.loss in _NO_CURVATURE:
            raise ValidationError(
                f"{where}optimizer 'newton' needs a loss with curvature; {self.loss!r} is "
                "piecewise linear (use lbfgs or a first-order method)"
            )
        if self.refit_output and self.loss != "matched":
            from simbench import losses

            if losses.get(self.loss).binary_only:
                raise ValidationError(
                    f"{where}refit_output = {self.refit_output!r} refits the output as a GLM "
                    f"of the data's family; the margin loss {self.loss!r} makes the output a "
                    "score, not a mean"
                )
        if opt.name == "irls":
            if self.output != "matched" or self.loss != "matched":
                raise ValidationError(
                    f"{where}optimizer 'irls' fits the GLM itself: output and loss must be "
                    f"'matched'; got output = {self.output!r}, loss = {self.loss!r}"
                )
            if self.l2 > 0.0:
                raise ValidationError(f"{where}optimizer 'irls' has no penalty; got l2 = {self.l2}")
            if self.early_stopping:
                raise ValidationError(f"{where}optimizer 'irls' does not use early stopping")

    def _default_name(self) -> str:
        shape = "h" + "-".join(str(h) for h in self.hidden) if self.hidden else "glm"
        parts = [shape]
        if self.hidden:
            acts = sorted(set(self.activation))
            parts.append("-".join(acts) if len(acts) > 1 else acts[0])
        if self.output != "matched":
            parts.append(f"out={self.output}")
        if self.loss != "matched":
            parts.append(f"loss={self.loss}")
        parts.append(self.optimizer)
        return "_".join(parts)

    # ---- construction from and to plain data ---------------------------------------------

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The accepted keys, in canonical order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | NetworkConfig) -> NetworkConfig:
        """Validate a mapping (a sweep file's ``[[configs]]`` table) into a configuration.

        Raises
        ------
        ValidationError
            An unknown key (with the closest accepted one), a value of the wrong type or out
            of range, an unknown name, or a combination that cannot be trained.
        """
        if isinstance(d, NetworkConfig):
            return d
        if not isinstance(d, dict):
            raise ValidationError(
                f"network config: expected a table of keys; got {type(d).__name__}"
            )
        accepted = cls.keys()
        for key in d:
            if key not in accepted:
                guess = closest(str(key), list(accepted))
                hint = f"; did you mean {guess!r}?" if guess else ""
                raise ValidationError(
                    f"network config: unknown key {key!r}{hint}; accepted: " + ", ".join(accepted)
                )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-data form (lists for tuples); ``from_dict(to_dict())`` is equal.

        Keys added after the first release are left out while at their default, so that the
        :attr:`id` of every configuration that does not use them stays what it was (stored
        results keep their cell ids)."""
        out: dict[str, Any] = {}
        for key in self.keys():
            value = getattr(self, key)
            if key in _OMITTED_AT_DEFAULT and value == _OMITTED_AT_DEFAULT[key]:
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes: Any) -> NetworkConfig:
        """A copy with some keys changed (validated like a new configuration).  The name is
        regenerated unless given, when the original was generated."""
        d = self.to_dict()
        if "name" not in changes and d["name"] == self._default_name():
            d["name"] = ""
        if "optimizer" in changes and "lr" not in changes:
            d["lr"] = None
        d.update(changes)
        return NetworkConfig.from_dict(d)

    @property
    def id(self) -> str:
        """A stable 12-hex-digit hash of :meth:`to_dict` (same on every machine and run)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    # ---- meaning against a scenario --------------------------------------------------------

    def resolve(self, family=None, link=None):
        """The output activation and the loss this configuration uses on data of ``family``.

        Parameters
        ----------
        family : Family or str, optional
            The scenario's family; needed when output or loss is ``"matched"``.
        link : Link or str, optional
            The scenario's link (default: the family's default link).

        Returns
        -------
        (Link, Loss)

        Raises
        ------
        ValidationError
            ``"matched"`` without a family, a link the family does not accept, a loss that
            cannot be fitted to the family's responses (e.g. hinge on Poisson counts).
        """
        try:
            return _resolve(self, family, link)
        except TypeError:  # unhashable arguments: resolve without the cache
            return _resolve.__wrapped__(self, family, link)


# every fit resolves its configuration; the answer depends only on these immutable values
@lru_cache(maxsize=256)
def _resolve(config: NetworkConfig, family, link):
    """:meth:`NetworkConfig.resolve`."""
    from simbench import families, links, losses

    fam = None
    if family is not None:
        fam = families.get(family) if isinstance(family, str) else family
    if fam is None:
        if "matched" in (config.output, config.loss):
            raise ValidationError(
                f"network config {config.name!r}: output/loss 'matched' needs the family "
                "(and link) of the data"
            )
        return links.get(config.output), losses.get(config.loss)
    data_link = fam.default_link if link is None else fam.check_link(link)
    output = data_link if config.output == "matched" else links.get(config.output)
    loss = losses.for_family(fam) if config.loss == "matched" else losses.get(config.loss)
    reason = loss.why_not(fam)
    if reason is not None:
        raise ValidationError(f"network config {config.name!r}: {reason}")
    if config.refit_output:
        try:
            fam.check_link(output)
        except ValidationError as err:
            raise ValidationError(
                f"network config {config.name!r}: refit_output = {config.refit_output!r} "
                f"refits the output as a {fam.name} GLM with the output activation's "
                f"link, {output.name!r}: {err}"
            ) from None
    return output, loss
