"""Cells, their identities and seeds, and the groups a worker runs.

A *cell* is one (scenario, configuration, replicate) of a sweep: one result row.  Cells of
the same (scenario, replicate) form a *group*: the worker simulates the data and fits the
reference GLM once per group, and every configuration of the group is trained on those same
data (common random numbers).

Identity
--------
``cell_id`` is the first 16 hex digits of the SHA-256 of the canonical JSON of ::

    {"scenario": <canonical scenario dict>, "config": <canonical config dict>,
     "replicate": r, "seed": <sweep seed>}

so it does not depend on the order of keys in the sweep file, on aliases (``nb`` vs
``negative_binomial``), on the position of the cell in the sweep or on the sweep's name.

Seeds
-----
Seeds come from :class:`numpy.random.SeedSequence`, with entropy made of the sweep seed and
a 128-bit integer read from a SHA-256 digest (never Python's ``hash()``, which is salted per
process)::

    data_seed = S(sweep_seed, H("data", scenario digest, r))
    init_seed = S(sweep_seed, H("init", scenario digest, config digest, r))

where ``H`` is the first 16 bytes (little-endian) of the SHA-256 of the ``|``-joined parts
and ``S(a, b) = SeedSequence([a, b]).generate_state(1, uint64)[0] & (2**63 - 1)`` (63 bits
so the seed is a non-negative int64 column).  The data seed therefore depends only on
(sweep seed, scenario, replicate): every configuration of a group sees the same data, and
adding a configuration to a sweep changes no existing data.  The initialisation seed also
depends on the configuration.  Workers use them as ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .spec import SweepSpec, canonical_json

__all__ = [
    "Cell",
    "CellTask",
    "GroupTask",
    "cell_id",
    "data_seed",
    "expand_cells",
    "group_tasks",
    "identity_columns",
    "init_seed",
]

_MASK63 = (1 << 63) - 1


def _entropy(*parts: object) -> int:
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "little")


def _seed(sweep_seed: int, *parts: object) -> int:
    ss = np.random.SeedSequence([int(sweep_seed), _entropy(*parts)])
    return int(ss.generate_state(1, np.uint64)[0]) & _MASK63


def data_seed(sweep_seed: int, scenario_digest: str, replicate: int) -> int:
    """Seed of the simulated data of (scenario, replicate); see the module docstring."""
    return _seed(sweep_seed, "data", scenario_digest, int(replicate))


def init_seed(sweep_seed: int, scenario_digest: str, config_digest: str, replicate: int) -> int:
    """Seed of a network's initialisation (and mini-batch order) in one cell."""
    return _seed(sweep_seed, "init", scenario_digest, config_digest, int(replicate))


def cell_id(
    scenario: dict[str, Any], config: dict[str, Any], replicate: int, sweep_seed: int
) -> str:
    """Stable cell identity (16 hex digits); see the module docstring."""
    payload = {
        "scenario": scenario,
        "config": config,
        "replicate": int(replicate),
        "seed": int(sweep_seed),
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One (scenario, configuration, replicate) of a sweep."""

    cell_id: str
    scenario_index: int
    config_index: int
    replicate: int
    data_seed: int
    init_seed: int
    skip_reason: str | None = None

    @property
    def group_key(self) -> tuple[int, int]:
        return (self.scenario_index, self.replicate)


@dataclass(frozen=True)
class CellTask:
    """What a worker needs to run one cell of a group.

    Attributes
    ----------
    cell_id : str
    config : dict
        Canonical configuration dictionary (``NetworkConfig.from_dict(config)`` rebuilds it).
    config_id : str
    init_seed : int
        Seed of the network initialisation and of mini-batch shuffling.
    """

    cell_id: str
    config: dict[str, Any]
    config_id: str
    init_seed: int


@dataclass(frozen=True)
class GroupTask:
    """One (scenario, replicate) and the cells to run on its data.

    This is the whole input of a group function (see :mod:`simbench.sweep.runner`); it is
    plain data and pickles cheaply into worker processes.

    Attributes
    ----------
    scenario : dict
        Canonical scenario dictionary (``Scenario.from_dict(scenario)`` rebuilds it).
    scenario_id : str
    replicate : int
    data_seed : int
        Seed of the simulated data; the same for every cell of the group.
    cells : tuple of CellTask
        The configurations to train, in sweep order.  After a worker failure the runner
        sends the remaining cells again as a smaller task with the same data seed.
    record_history : bool
        Whether the sweep asks for per-epoch histories (``history_dist``).
    sweep_seed : int
    """

    scenario: dict[str, Any]
    scenario_id: str
    replicate: int
    data_seed: int
    cells: tuple[CellTask, ...]
    record_history: bool = False
    sweep_seed: int = 0
    key: tuple[int, int] = field(default=(0, 0), compare=False)

    def remaining(self, start: int) -> GroupTask:
        """The same task without its first ``start`` cells."""
        import dataclasses

        return dataclasses.replace(self, cells=self.cells[start:])


def expand_cells(spec: SweepSpec, quick: bool = False) -> list[Cell]:
    """All cells of ``spec`` in sweep order: scenario, then config, then replicate.

    With ``quick``, only replicate 0 of the scenarios that have the smallest ``n`` of their
    block: a subset of the full sweep's cells, with the same identities and seeds, so a
    quick run's results are reused by the full run.
    """
    cells: list[Cell] = []
    replicates = range(1 if quick else spec.replicates)
    for s in spec.scenarios:
        if quick and not s.in_quick:
            continue
        for c in spec.configs:
            reason = spec.skip_reasons.get((s.index, c.index))
            for r in replicates:
                cells.append(
                    Cell(
                        cell_id=cell_id(s.canonical, c.canonical, r, spec.seed),
                        scenario_index=s.index,
                        config_index=c.index,
                        replicate=r,
                        data_seed=data_seed(spec.seed, s.digest, r),
                        init_seed=init_seed(spec.seed, s.digest, c.digest, r),
                        skip_reason=reason,
                    )
                )
    return cells


def group_tasks(spec: SweepSpec, cells: Iterable[Cell]) -> list[GroupTask]:
    """Group runnable cells by (scenario, replicate), keeping sweep order inside a group."""
    groups: dict[tuple[int, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group_key, []).append(cell)
    tasks = []
    for (si, r), members in sorted(groups.items()):
        scenario = spec.scenarios[si]
        tasks.append(
            GroupTask(
                scenario=scenario.canonical,
                scenario_id=scenario.id,
                replicate=r,
                data_seed=members[0].data_seed,
                cells=tuple(
                    CellTask(
                        cell_id=c.cell_id,
                        config=spec.configs[c.config_index].canonical,
                        config_id=spec.configs[c.config_index].id,
                        init_seed=c.init_seed,
                    )
                    for c in sorted(members, key=lambda c: c.config_index)
                ),
                record_history=spec.record_history,
                sweep_seed=spec.seed,
                key=(si, r),
            )
        )
    return tasks


def identity_columns(spec: SweepSpec, cell: Cell) -> dict[str, Any]:
    """The columns of a row that the runner owns: identity, seeds, ``s_*`` and ``c_*``."""
    s = spec.scenarios[cell.scenario_index]
    c = spec.configs[cell.config_index]
    row: dict[str, Any] = {
        "cell_id": cell.cell_id,
        "scenario_id": s.id,
        "config_id": c.id,
        "config_label": c.label,
        "replicate": cell.replicate,
        "scenario_index": cell.scenario_index,
        "config_index": cell.config_index,
        "data_seed": cell.data_seed,
        "init_seed": cell.init_seed,
        "sweep_name": spec.name,
        "sweep_seed": spec.seed,
    }
    for k, v in s.canonical.items():
        row[f"s_{k}"] = v
    for k, v in c.canonical.items():
        row[f"c_{k}"] = v
    return row
