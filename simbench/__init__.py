"""simbench: simulation studies of neural networks against generalized linear models.

A network with no hidden layer, the inverse link as output activation and the family's
negative log-likelihood as loss *is* a GLM.  simbench simulates data from a known GLM, fits
the exact GLM by IRLS as the reference, trains neural configurations on the same data, and
records how closely each recovers the truth.

Importing this package is cheap: the public names below are loaded on first use, and no
kernel is compiled until it is called.

Entry points
------------
run(sweep, ...)            run a sweep file or spec, return the results as a DataFrame
load(directory)            load stored results as a DataFrame
simulate(scenario, seed)   draw a Dataset from a known GLM
fit_glm(X, y, ...)         the reference GLM (IRLS)
train(X, y, config, ...)   train a neural configuration
families, links, losses, activations   the vocabulary registries
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from simbench._version import __version__

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "families": ("simbench.families", None),
    "links": ("simbench.links", None),
    "losses": ("simbench.losses", None),
    "activations": ("simbench.activations", None),
    "Scenario": ("simbench.data", "Scenario"),
    "Dataset": ("simbench.data", "Dataset"),
    "simulate": ("simbench.data", "simulate"),
    "fit_glm": ("simbench.fit.glm", "fit_glm"),
    "GLMFit": ("simbench.fit.glm", "GLMFit"),
    "NetworkConfig": ("simbench.fit.network", "NetworkConfig"),
    "NetworkFit": ("simbench.fit.network", "NetworkFit"),
    "train": ("simbench.fit.network", "train"),
    "run": ("simbench.sweep.api", "run"),
    "load": ("simbench.sweep.store", "load"),
    "clear_cache": ("simbench._jit", "clear_cache"),
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'simbench' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    # ruff: noqa: F401
    from . import activations, families, links, losses
    from ._jit import clear_cache
    from .data import Dataset, Scenario, simulate
    from .fit.glm import GLMFit, fit_glm
    from .fit.network import NetworkConfig, NetworkFit, train
    from .sweep.api import run
    from .sweep.store import load
