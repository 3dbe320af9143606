"""Which way each metric improves: what marks a table's best entry and tells a comparison's
regression from its improvement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Direction", "direction"]


@dataclass(frozen=True)
class Direction:
    """Which way a metric improves.

    ``kind`` is ``"lower"``, ``"higher"``, ``"target"`` (closest to ``target`` is best) or
    ``"none"`` (no better side, e.g. the training deviance, where lower is overfitting).
    """

    kind: str
    target: float = 0.0

    def badness(self, x):
        """A transform of ``x`` that is smaller when better (NaN when there is no order)."""
        x = np.asarray(x, dtype=float)
        if self.kind == "lower":
            return x
        if self.kind == "higher":
            return -x
        if self.kind == "target":
            return np.abs(x - self.target)
        return np.full_like(x, np.nan)

    @property
    def ordered(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        if self.kind == "lower":
            return "lower is better"
        if self.kind == "higher":
            return "higher is better"
        if self.kind == "target":
            return f"closer to {self.target:g} is better"
        return "no better direction"


_LOWER, _HIGHER = Direction("lower"), Direction("higher")
_DIRECTIONS: dict[str, Direction] = {
    "coef_err_truth": _LOWER,
    "coef_err_mle": _LOWER,
    "coef_z_mle": _LOWER,
    "coef_z_truth": _LOWER,
    "coef_cos_truth": _HIGHER,
    "excess_deviance": _LOWER,
    "eta_rmse": _LOWER,
    "mu_rel_err": _LOWER,
    "dev_train": Direction("none"),
    "dev_test": _LOWER,
    "balance": Direction("target", 0.0),
    "calib_slope": Direction("target", 1.0),
    "calib_intercept": Direction("target", 0.0),
    "auc": _HIGHER,
    # the oracle AUC depends on the data only: a change means the data changed
    "auc_oracle": Direction("none"),
    "fit_seconds": _LOWER,
    "compile_seconds": _LOWER,
    "epochs_run": Direction("none"),
    "grad_norm": _LOWER,
    "converged": _HIGHER,
    # above 1 only through bias (shrinkage): more is not better, so no best is marked
    "efficiency": Direction("none"),
    "crb_efficiency": Direction("none"),
    "mse_efficiency": _HIGHER,
}


def direction(metric: str) -> Direction:
    """The :class:`Direction` of a metric column (``"none"`` for unknown columns)."""
    if metric in _DIRECTIONS:
        return _DIRECTIONS[metric]
    if metric.endswith("_seconds"):
        return _LOWER
    return Direction("none")
