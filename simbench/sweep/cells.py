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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .spec import SweepSpec, canonical_json

__all__ = [
    "Cell",
    "CellTask",
    "GroupTask",
    "cell_id",
    "count_cells",
    "count_groups",
    "data_seed",
    "expand_cells",
    "group_tasks",
    "identity_columns",
    "init_seed",
    "iter_cells",
    "iter_group_ids",
    "iter_groups",
    "task_of",
]

_MASK63 = (1 << 63) - 1


def _entropy(*parts: object) -> int:
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "little")


def _seed(sweep_seed: int, *parts: object) -> int:
    import numpy as np  # here: the local backend's start-up imports this module, not NumPy

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


def _scenarios(spec: SweepSpec, quick: bool):
    return [s for s in spec.scenarios if s.in_quick or not quick]


def count_cells(spec: SweepSpec, quick: bool = False) -> int:
    """The number of cells :func:`iter_cells` yields, computed without listing them."""
    replicates = 1 if quick else spec.replicates
    return len(_scenarios(spec, quick)) * len(spec.configs) * replicates


def count_groups(spec: SweepSpec, quick: bool = False) -> int:
    """The number of (scenario, replicate) groups of the cells, without listing them."""
    return len(_scenarios(spec, quick)) * (1 if quick else spec.replicates)


class CellIds:
    """Cell ids and seeds of one sweep, with the canonical JSON of each block built once.

    ``cell_id`` hashes ``{"config": ..., "replicate": r, "scenario": ..., "seed": s}`` in
    canonical form (sorted keys); the text is assembled from the pre-serialised blocks,
    identical byte for byte to :func:`canonical_json` of the whole payload.
    """

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.scenario_json = [canonical_json(s.canonical) for s in spec.scenarios]
        self.config_json = [canonical_json(c.canonical) for c in spec.configs]

    def cell_id(self, si: int, ci: int, r: int) -> str:
        text = (
            f'{{"config":{self.config_json[ci]},"replicate":{int(r)},'
            f'"scenario":{self.scenario_json[si]},"seed":{int(self.spec.seed)}}}'
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def cell(self, si: int, ci: int, r: int, dseed: int | None = None) -> Cell:
        spec = self.spec
        s, c = spec.scenarios[si], spec.configs[ci]
        return Cell(
            cell_id=self.cell_id(si, ci, r),
            scenario_index=si,
            config_index=ci,
            replicate=r,
            data_seed=data_seed(spec.seed, s.digest, r) if dseed is None else dseed,
            init_seed=init_seed(spec.seed, s.digest, c.digest, r),
            skip_reason=spec.skip_reasons.get((si, ci)),
        )


def iter_cells(spec: SweepSpec, quick: bool = False) -> Iterator[Cell]:
    """The cells of ``spec`` one at a time, in sweep order: scenario, config, replicate.

    With ``quick``, only replicate 0 of the scenarios that have the smallest ``n`` of their
    block: a subset of the full sweep's cells, with the same identities and seeds, so a
    quick run's results are reused by the full run.  Memory does not grow with the count.
    """
    ids = CellIds(spec)
    replicates = range(1 if quick else spec.replicates)
    for s in _scenarios(spec, quick):
        seeds = {}
        for c in spec.configs:
            for r in replicates:
                if r not in seeds:
                    seeds[r] = data_seed(spec.seed, s.digest, r)
                yield ids.cell(s.index, c.index, r, seeds[r])
        seeds.clear()


def expand_cells(spec: SweepSpec, quick: bool = False) -> list[Cell]:
    """All cells of ``spec`` as a list (see :func:`iter_cells`, which does not hold them)."""
    return list(iter_cells(spec, quick))


def iter_group_ids(spec: SweepSpec, quick: bool = False) -> Iterator[tuple[int, int, list[str]]]:
    """``(scenario index, replicate, cell ids in configuration order)`` per group, cheaply.

    The ids alone (no seeds): what planning needs to compare a sweep with stored cells.
    """
    ids = CellIds(spec)
    n_configs = len(spec.configs)
    for s in _scenarios(spec, quick):
        for r in range(1 if quick else spec.replicates):
            yield s.index, r, [ids.cell_id(s.index, ci, r) for ci in range(n_configs)]


def iter_groups(spec: SweepSpec, quick: bool = False) -> Iterator[list[Cell]]:
    """The cells of ``spec`` group by group, in the order :func:`group_tasks` gives.

    Each item is the list of cells of one (scenario, replicate), in configuration order.
    """
    ids = CellIds(spec)
    for s in _scenarios(spec, quick):
        for r in range(1 if quick else spec.replicates):
            dseed = data_seed(spec.seed, s.digest, r)
            yield [ids.cell(s.index, c.index, r, dseed) for c in spec.configs]


def task_of(spec: SweepSpec, members: list[Cell]) -> GroupTask:
    """The :class:`GroupTask` of runnable cells of one (scenario, replicate)."""
    si, r = members[0].group_key
    scenario = spec.scenarios[si]
    return GroupTask(
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


def group_tasks(spec: SweepSpec, cells: Iterable[Cell]) -> list[GroupTask]:
    """Group runnable cells by (scenario, replicate), keeping sweep order inside a group."""
    groups: dict[tuple[int, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group_key, []).append(cell)
    return [task_of(spec, members) for _, members in sorted(groups.items())]


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
