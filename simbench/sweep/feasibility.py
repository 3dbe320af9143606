"""Checks that depend only on the sweep file: would every cell of a scenario or a
configuration fail?

:func:`check_feasible` runs while a sweep is validated (``simbench validate``, and ``run``
before it writes anything), after every block has been validated on its own.  It refuses,
with the block, key and value named, what would otherwise only show up as a sweep whose
every cell of some scenario or configuration is an ``error`` row:

* **the domain of the true means** -- the scenario's true coefficients are computed
  (:func:`simbench.truth.truth`, which refuses a population whose means leave the family's
  domain, e.g. the default Gamma scenario with its canonical inverse link, whose target
  mean 2 cannot be reached with every mean positive);
* **sampleable responses** -- a fixed-seed sample of the scenario is drawn
  (:func:`simbench.data.simulate` with at most :data:`SAMPLE_ROWS` rows per sample, the
  same design and truth), which refuses means the family's sampler cannot draw from, e.g.
  a Poisson mean of 1e18;
* **split sizes** -- a configuration with early stopping must leave at least one row on
  each side of its validation split at every training size ``n`` of the sweep's scenarios
  (``validation_fraction = 0.999`` with ``n = 100`` leaves none for training).

Everything here reads the vocabulary's public functions and changes nothing; the results
are cached per scenario (without its sample sizes), so a grid over ``n`` costs one check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._registry import quoted
from ..errors import ValidationError
from .canonical import SweepError, canonical_json

if TYPE_CHECKING:
    from .spec import SweepSpec

__all__ = ["SAMPLE_ROWS", "SAMPLE_SEED", "check_feasible", "validation_split"]

SAMPLE_ROWS = 1000  # rows of the fixed-seed training and reference samples drawn
SAMPLE_SEED = 20260415  # fixed: the check must not depend on anything but the sweep file

_SIZE_KEYS = ("n", "n_test")


def validation_split(n: int, fraction: float) -> tuple[int, int]:
    """(validation rows, training rows) of early stopping's split of ``n`` rows.

    The rule of :func:`simbench.fit.network.train`: ``round(fraction * n)`` rows are held
    out, and both sides need at least one row.
    """
    n_val = round(fraction * n)
    return n_val, n - n_val


def _where(spec: SweepSpec, kind: str, entry: Any) -> str:
    return f"{spec.source}: [[{kind}]] #{entry.block}"


def _scenario_problem(canonical: dict[str, Any]) -> str | None:
    """Why no cell of this scenario can run, or None (simulates a fixed-seed sample)."""
    from ..data import Scenario, simulate
    from ..truth import truth

    try:
        scenario = Scenario.from_dict(canonical)
        truth(scenario)
    except ValidationError as exc:
        return str(exc)
    except MemoryError:
        return (
            f"its true coefficients need more memory than this machine has (p = {canonical['p']})"
        )
    small = dict(canonical)
    for key in _SIZE_KEYS:
        if isinstance(small.get(key), int):
            small[key] = min(small[key], SAMPLE_ROWS)
    try:
        sample_scenario = Scenario.from_dict(small)
    except ValidationError:
        sample_scenario = scenario  # the smaller sample is not a valid scenario: the real one
    try:
        simulate(sample_scenario, SAMPLE_SEED)
    except ValidationError as exc:
        return f"a fixed-seed sample of it cannot be drawn: {exc}"
    return None


def _check_scenarios(spec: SweepSpec) -> None:
    seen: dict[str, str | None] = {}
    for entry in spec.scenarios:
        key = canonical_json({k: v for k, v in entry.canonical.items() if k not in _SIZE_KEYS})
        if key not in seen:
            seen[key] = _scenario_problem(entry.canonical)
        problem = seen[key]
        if problem is not None:
            values = ", ".join(
                f"{k}={quoted(entry.canonical[k])}"
                for k in ("family", "link", "design", "signal", "mean", "beta")
                if entry.canonical.get(k) is not None
            )
            raise SweepError(
                f"{_where(spec, 'scenarios', entry)} ({values}): every cell of this scenario "
                f"would fail: {problem}"
            )


def _check_configs(spec: SweepSpec) -> None:
    sizes = sorted(
        {s.canonical["n"] for s in spec.scenarios if isinstance(s.canonical.get("n"), int)}
    )
    if not sizes:
        return
    for entry in spec.configs:
        c = entry.canonical
        if not c.get("early_stopping"):
            continue
        fraction = c.get("validation_fraction")
        if not isinstance(fraction, (int, float)):
            continue
        for n in sizes:
            n_val, n_train = validation_split(n, float(fraction))
            if n_val < 1 or n_train < 1:
                side = "validation" if n_val < 1 else "training"
                raise SweepError(
                    f"{_where(spec, 'configs', entry)} ({entry.label}) key "
                    f"'validation_fraction': {quoted(fraction)} holds out {n_val} of the "
                    f"n = {n} training rows of a scenario, leaving none for {side}; "
                    "accepted: a fraction that leaves at least one row on each side at every "
                    f"n of the sweep ({', '.join(map(str, sizes))})"
                )


def check_feasible(spec: SweepSpec) -> None:
    """Raise :class:`~simbench.sweep.spec.SweepError` if every cell of some scenario or
    configuration of ``spec`` would fail (see the module docstring)."""
    _check_scenarios(spec)
    _check_configs(spec)
