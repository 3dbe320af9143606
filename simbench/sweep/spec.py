"""Sweep files: parse, validate and expand a TOML sweep into scenarios and configurations.

A sweep file has three kinds of blocks::

    [sweep]                 # exactly one
    name = "canonical"      # required; also the results directory name: letters, digits, . _ -
    replicates = 20         # required; integer >= 1
    seed = 2026             # required; integer >= 0, the root of every seed of the sweep
    description = "..."     # optional free text
    timeout = 600           # optional; seconds per cell (overridden by --timeout)
    record_history = false  # optional; ask the workers to keep per-epoch histories

    [[scenarios]]           # one or more: data-generating processes
    family = ["poisson", "gamma"]
    n = [1_000, 10_000]

    [[configs]]             # one or more: network configurations
    name = "glm-as-nn"
    hidden = []

Grids
-----
Inside a block, a key whose value is a list is an axis of a grid, and the block expands to
the cartesian product of its axes (in the order the keys are written, the last key varying
fastest).  Blocks are unioned, in file order; a scenario or configuration that appears twice
(the same canonical parameters) is kept once.

Some keys take a list as their *value*: ``beta`` and ``columns`` (scenarios) and
``hidden``/``activation`` (configs).  For them a flat list is one value (``hidden =
[32, 16]`` is one network with two hidden layers) and a list of lists is a grid
(``hidden = [[], [32], [32, 16]]`` is three networks).  ``activation = "relu"`` applies
to every hidden layer and ``activation = ["relu", "tanh"]`` names one per layer; a grid
over activations is ``activation = [["relu"], ["tanh"]]``.

Validation
----------
Everything is checked before anything runs: the TOML syntax, the tables and keys of
``[sweep]``, the shape of every block (tables where tables belong, no empty grid, no nested
grid, no inline tables as values), then every expanded scenario through
:meth:`simbench.data.Scenario.from_dict` and every configuration through
:meth:`simbench.fit.network.NetworkConfig.from_dict`.  Any problem raises
:class:`SweepError` (a :class:`~simbench.errors.ValidationError`) whose message names the
file, the block, the key, the bad value, the accepted values and the closest match::

    quick.toml: [[scenarios]] #2: unknown link 'lgo' for family 'poisson'; did you mean 'log'? ...

The scenario/configuration semantics live with those classes; this module only knows the
structure.  While ``simbench.data`` or ``simbench.fit.network`` is not installed (during
development), the corresponding blocks are taken as written (:class:`RawVocabulary`).

Identity
--------
Each scenario and configuration has a canonical dictionary (``to_dict()`` of the validated
object: canonical names, defaults filled in) and a *digest*: the SHA-256 of its canonical
JSON (:func:`canonical_json`), independent of key order and of the spelling of names.  The
sweep has a *content hash* over its ``[sweep]`` table (without ``description`` and
``timeout``, which do not change results) and its blocks, used to refuse mixing two
different sweeps in one results directory.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._registry import closest, quoted
from ..errors import ValidationError
from .canonical import SweepError, canonical_json, digest
from .limits import (
    MAX_CELLS,
    MAX_CONFIGS,
    MAX_NAME_LENGTH,
    MAX_SCENARIOS,
    TIMEOUT_RANGE,
    valid_timeout,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib

__all__ = [
    "ConfigEntry",
    "RawVocabulary",
    "ScenarioEntry",
    "SweepError",
    "SweepSpec",
    "Vocabulary",
    "canonical_json",
    "default_vocabulary",
    "digest",
    "load_sweep",
    "parse_sweep",
]

SWEEP_KEYS: dict[str, str] = {
    "name": (
        f"results directory name: letters, digits, '.', '_', '-', starting with a letter "
        f"or digit, at most {MAX_NAME_LENGTH} characters"
    ),
    "replicates": "integer >= 1",
    "seed": "integer >= 0",
    "description": "free text",
    "timeout": f"{TIMEOUT_RANGE} per cell",
    "record_history": "true or false",
}
REQUIRED_SWEEP_KEYS = ("name", "replicates", "seed")
TOP_LEVEL_KEYS = ("sweep", "scenarios", "configs")
# keys whose single value is itself a list: a grid over them is a list of lists
LIST_VALUED_KEYS = {
    "scenarios": frozenset({"beta", "columns"}),
    "configs": frozenset({"hidden", "activation"}),
}
# keys that do not change any result, left out of the content hash
_HASH_EXEMPT_SWEEP_KEYS = ("description", "timeout")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # matched with fullmatch


# --------------------------------------------------------------------------- vocabulary


class Vocabulary(ABC):
    """How scenario and configuration dictionaries are validated and matched.

    The default (:func:`default_vocabulary`) uses ``simbench.data.Scenario`` and
    ``simbench.fit.network.NetworkConfig``; tests may pass their own.
    """

    name = "abstract"

    @abstractmethod
    def scenario(self, d: dict[str, Any]) -> tuple[Any, dict[str, Any], str | None]:
        """Validate ``d``; return (object, canonical dict, id or None)."""

    @abstractmethod
    def config(self, d: dict[str, Any]) -> tuple[Any, dict[str, Any], str | None]:
        """Validate ``d``; return (object, canonical dict, id or None)."""

    def why_not(self, scenario: Any, config: Any) -> str | None:
        """``None`` if ``config`` applies to ``scenario``, else the reason it is skipped."""
        return None

    def check_feasible(self, spec: SweepSpec) -> None:
        """Raise :class:`SweepError` if some scenario or configuration cannot run at all."""
        return None


class RawVocabulary(Vocabulary):
    """Take blocks as written: no semantic checks, the dictionary is its own canonical form."""

    name = "raw"

    def scenario(self, d):
        return d, dict(d), None

    def config(self, d):
        return d, dict(d), None


class _RealVocabulary(Vocabulary):
    """Scenario / NetworkConfig validation, each part used only if its module exists."""

    name = "simbench"

    def __init__(self, scenario_cls: Any, config_cls: Any, feasible: bool = True) -> None:
        self.scenario_cls = scenario_cls
        self.config_cls = config_cls
        self.feasible = feasible

    @staticmethod
    def _build(cls, d):
        if cls is None:
            return d, dict(d), None
        obj = cls.from_dict(dict(d))
        ident = getattr(obj, "id", None)
        return obj, dict(obj.to_dict()), ident if isinstance(ident, str) else None

    def scenario(self, d):
        return self._build(self.scenario_cls, d)

    def config(self, d):
        return self._build(self.config_cls, d)

    def check_feasible(self, spec):
        if self.scenario_cls is None or self.config_cls is None or not self.feasible:
            return
        from .feasibility import check_feasible

        check_feasible(spec)

    def why_not(self, scenario, config):
        if self.scenario_cls is None or self.config_cls is None:
            return None
        resolve = getattr(config, "resolve", None)
        if resolve is None:
            return None
        family, link = _family_and_link(scenario)
        try:
            _output, loss = resolve(family, link)
        except ValidationError as exc:
            return str(exc)
        supports = getattr(loss, "supports", None)
        if supports is not None and not supports(family):
            why = getattr(loss, "why_not", None)
            reason = why(family) if why is not None else None
            return reason or f"loss {loss.name!r} does not apply to family {family.name!r}"
        return None


def _family_and_link(scenario: Any) -> tuple[Any, Any]:
    """The Family and Link objects of a validated scenario (with its own parameters)."""
    return scenario.get_family(), scenario.get_link()


def default_vocabulary(check_feasible: bool = True) -> Vocabulary:
    """Validation through ``Scenario.from_dict`` and ``NetworkConfig.from_dict``; with
    ``check_feasible=False``, without the check that every scenario can be simulated
    (which runs kernels): for reading a sweep that the run itself checks."""
    from ..data import Scenario
    from ..fit.config import NetworkConfig

    return _RealVocabulary(Scenario, NetworkConfig, feasible=check_feasible)


# --------------------------------------------------------------------------- spec objects


@dataclass(frozen=True)
class ScenarioEntry:
    """One expanded scenario: its block, its canonical dictionary and identity."""

    index: int
    block: int
    canonical: dict[str, Any]
    digest: str
    id: str
    in_quick: bool
    obj: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class ConfigEntry:
    """One expanded configuration: its block, canonical dictionary, identity and label."""

    index: int
    block: int
    canonical: dict[str, Any]
    digest: str
    id: str
    label: str
    obj: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the ``[sweep]`` settings and the expanded scenarios and configs.

    Attributes
    ----------
    name, replicates, seed, description, timeout, record_history
        The ``[sweep]`` table.
    scenarios, configs
        Expanded, validated and de-duplicated, in file order.
    source
        File name used in messages (``"quick.toml"``) or ``"<dict>"``.
    text
        The sweep file text (``None`` for a spec built from a dictionary).
    text_sha256
        SHA-256 of ``text`` (of the canonical JSON of the data if there is no text).
    content_hash
        Hash of what determines the results (see the module docstring).
    data
        The parsed TOML document.
    vocabulary
        Name of the vocabulary that validated the blocks (``"simbench"`` or ``"raw"``).
    skip_reasons
        ``(scenario index, config index) -> reason`` for configurations that do not apply
        to a scenario (e.g. hinge loss on Poisson data); their cells become ``skipped`` rows.
    """

    name: str
    replicates: int
    seed: int
    description: str
    timeout: float | None
    record_history: bool
    scenarios: tuple[ScenarioEntry, ...]
    configs: tuple[ConfigEntry, ...]
    source: str
    text: str | None
    text_sha256: str
    content_hash: str
    data: dict[str, Any] = field(repr=False)
    vocabulary: str = "raw"
    skip_reasons: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)

    @property
    def n_cells(self) -> int:
        return len(self.scenarios) * len(self.configs) * self.replicates


# --------------------------------------------------------------------------- parsing


def load_sweep(path: str | Path, vocabulary: Vocabulary | None = None) -> SweepSpec:
    """Read, validate and expand the sweep file at ``path``.

    Raises
    ------
    SweepError
        If the file is missing, not TOML, or any block or value is invalid.
    """
    path = Path(path)
    source = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SweepError(f"{path}: no such sweep file") from None
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the sweep file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SweepError(f"{source}: not a TOML file (not UTF-8 text)") from None
    return parse_sweep(text, source=source, vocabulary=vocabulary)


def parse_sweep(
    text_or_data: str | Mapping[str, Any],
    source: str = "<dict>",
    vocabulary: Vocabulary | None = None,
) -> SweepSpec:
    """Validate and expand a sweep given as TOML text or as an already parsed mapping."""
    if isinstance(text_or_data, str):
        text: str | None = text_or_data
        try:
            data = tomllib.loads(text_or_data)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"{source}: not valid TOML: {exc}") from None
        except RecursionError:
            raise SweepError(
                f"{source}: not a sweep file: values nested too deeply to be read "
                "(a sweep's values are at most a list of lists)"
            ) from None
    elif isinstance(text_or_data, Mapping):
        text = None
        data = _plain(text_or_data)
    else:
        raise SweepError(
            f"{source}: a sweep is TOML text, a path or a mapping, "
            f"not {type(text_or_data).__name__}"
        )
    vocab = vocabulary if vocabulary is not None else default_vocabulary()
    return _build_spec(data, text, source, vocab)


def _plain(obj: Any, depth: int = 0) -> Any:
    if depth > 64:
        raise SweepError("a sweep mapping nested more than 64 levels deep is not a sweep")
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj]
    return obj


def _unknown_key(source: str, where: str, key: str, accepted: Sequence[str]) -> SweepError:
    text = f"{source}: unknown key {quoted(key)} in {where}"
    guess = closest(key, list(accepted))
    if guess is not None:
        text += f"; did you mean {guess!r}?"
    return SweepError(text + "; accepted: " + ", ".join(accepted))


def _bad_value(source: str, where: str, key: str, value: Any, expected: str) -> SweepError:
    return SweepError(f"{source}: {where} key {key!r}: expected {expected}, got {quoted(value)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_sweep_table(data: dict[str, Any], source: str) -> dict[str, Any]:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown_key(source, "the top level", key, TOP_LEVEL_KEYS)
    table = data.get("sweep")
    if table is None:
        raise SweepError(f"{source}: missing the [sweep] table (with name, replicates, seed)")
    if not isinstance(table, dict):
        raise SweepError(f"{source}: 'sweep' must be a table ([sweep]), got {table!r}")
    for key in table:
        if key in TOP_LEVEL_KEYS:
            raise SweepError(
                f"{source}: key {quoted(key)} inside the [sweep] table; "
                f"write its blocks as [[{key}]] tables"
            )
        if key not in SWEEP_KEYS:
            raise _unknown_key(source, "[sweep]", key, list(SWEEP_KEYS))
    for key in REQUIRED_SWEEP_KEYS:
        if key not in table:
            raise SweepError(f"{source}: [sweep] is missing the required key {quoted(key)}")
    where = "[sweep]"
    name = table["name"]
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise _bad_value(source, where, "name", name, SWEEP_KEYS["name"])
    replicates = table["replicates"]
    if not _is_int(replicates) or replicates < 1:
        raise _bad_value(source, where, "replicates", replicates, SWEEP_KEYS["replicates"])
    seed = table["seed"]
    if not _is_int(seed) or seed < 0:
        raise _bad_value(source, where, "seed", seed, SWEEP_KEYS["seed"])
    description = table.get("description", "")
    if not isinstance(description, str):
        raise _bad_value(source, where, "description", description, "a string")
    timeout = table.get("timeout")
    if timeout is not None:
        if not valid_timeout(timeout):
            raise _bad_value(source, where, "timeout", timeout, SWEEP_KEYS["timeout"])
        timeout = float(timeout)
    record_history = table.get("record_history", False)
    if not isinstance(record_history, bool):
        raise _bad_value(source, where, "record_history", record_history, "true or false")
    return {
        "name": name,
        "replicates": replicates,
        "seed": seed,
        "description": description,
        "timeout": timeout,
        "record_history": record_history,
    }


def _blocks(data: dict[str, Any], kind: str, source: str) -> list[dict[str, Any]]:
    blocks = data.get(kind)
    if blocks is None:
        raise SweepError(f"{source}: no [[{kind}]] block; a sweep needs at least one")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise SweepError(
            f"{source}: '{kind}' must be an array of tables ([[{kind}]] blocks), got {blocks!r}"
        )
    if not blocks:
        raise SweepError(f"{source}: no [[{kind}]] block; a sweep needs at least one")
    return blocks


def _scalar_ok(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool))


def _axes(block: dict[str, Any], kind: str, number: int, source: str) -> list[tuple[str, list]]:
    """The grid axes of one block: (key, values) in written order."""
    where = f"[[{kind}]] #{number}"
    if not block:
        raise SweepError(f"{source}: {where} is empty; give at least one key")
    list_valued = LIST_VALUED_KEYS[kind]
    axes: list[tuple[str, list]] = []
    for key, value in block.items():
        if isinstance(value, dict):
            raise SweepError(
                f"{source}: {where} key {quoted(key)}: tables are not accepted as values, "
                f"got {quoted(value)}"
            )
        if key in list_valued:
            if isinstance(value, list) and any(isinstance(v, list) for v in value):
                values = value  # a grid of list values (a bare scalar is a one-element value)
            else:
                values = [value]
            for v in values:
                items = v if isinstance(v, list) else [v]
                if not all(_scalar_ok(x) for x in items):
                    raise SweepError(
                        f"{source}: {where} key {quoted(key)}: expected a value or a list of "
                        f"values, got {quoted(value)}"
                    )
        elif isinstance(value, list):
            if not value:
                raise SweepError(
                    f"{source}: {where} key {quoted(key)}: empty grid []; give at least one value"
                )
            for v in value:
                if isinstance(v, (list, dict)):
                    raise SweepError(
                        f"{source}: {where} key {quoted(key)}: a grid is a flat list of values, "
                        f"got the nested value {quoted(v)}"
                    )
                if not _scalar_ok(v):
                    raise SweepError(
                        f"{source}: {where} key {quoted(key)}: unsupported value {quoted(v)} "
                        "(use strings, numbers or booleans)"
                    )
            values = value
        else:
            if not _scalar_ok(value):
                raise SweepError(
                    f"{source}: {where} key {quoted(key)}: unsupported value {quoted(value)} "
                    "(use strings, numbers or booleans)"
                )
            values = [value]
        axes.append((key, values))
    return axes


def _expand(axes: list[tuple[str, list]]) -> list[dict[str, Any]]:
    keys = [k for k, _ in axes]
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


def _wrap(source: str, kind: str, number: int, point: dict[str, Any], exc: Exception) -> SweepError:
    where = f"[[{kind}]] #{number}"
    if point:  # name the grid point when the block expands to several
        where += " (" + ", ".join(f"{k}={quoted(v)}" for k, v in point.items()) + ")"
    return SweepError(f"{source}: {where}: {exc}")


def _grid_size(axes: list[tuple[str, list]]) -> int:
    return math.prod(len(v) for _, v in axes)


def _check_sizes(
    source: str, settings: dict[str, Any], scenario_axes: list, config_axes: list
) -> None:
    """Refuse a sweep above the limits of :mod:`~simbench.sweep.limits`, before expanding it.

    The counts are upper bounds (before duplicates are removed), computed arithmetically.
    """
    n_scenarios = sum(_grid_size(a) for a in scenario_axes)
    n_configs = sum(_grid_size(a) for a in config_axes)
    if n_scenarios > MAX_SCENARIOS:
        raise SweepError(
            f"{source}: the [[scenarios]] blocks expand to {n_scenarios:,} scenarios; at most "
            f"{MAX_SCENARIOS:,} are accepted (split the sweep into several files)"
        )
    if n_configs > MAX_CONFIGS:
        raise SweepError(
            f"{source}: the [[configs]] blocks expand to {n_configs:,} configurations; at most "
            f"{MAX_CONFIGS:,} are accepted (split the sweep into several files)"
        )
    cells = n_scenarios * n_configs * settings["replicates"]
    if cells > MAX_CELLS:
        raise SweepError(
            f"{source}: {n_scenarios:,} scenarios x {n_configs:,} configurations x "
            f"{settings['replicates']:,} replicates = {cells:,} cells; at most {MAX_CELLS:,} "
            "cells are accepted in one sweep (split it, or use fewer replicates)"
        )


def _validated(build, point: dict[str, Any], source: str, kind: str, number: int, grid_keys):
    """``build(point)``, any failure turned into a :class:`SweepError` naming the key."""
    try:
        return build(point)
    except ValidationError as exc:
        raise _wrap(source, kind, number, {k: point[k] for k in grid_keys}, exc) from None
    except Exception as exc:  # a value of a type the vocabulary did not expect
        key = _culprit(build, point)
        where = f"[[{kind}]] #{number}"
        what = f"{type(exc).__name__}: {exc}"
        if key is None:
            raise SweepError(f"{source}: {where}: unsupported values ({quoted(what)})") from None
        raise SweepError(
            f"{source}: {where} key {quoted(key)}: unsupported value {quoted(point[key])} "
            f"of type {type(point[key]).__name__} (see the README's table of {kind} keys "
            "for the accepted values)"
        ) from None


def _culprit(build, point: dict[str, Any]) -> str | None:
    """The key whose removal lets ``build`` fail cleanly or succeed (the bad value)."""
    for key in point:
        trial = {k: v for k, v in point.items() if k != key}
        try:
            build(trial)
        except ValidationError:
            return key
        except Exception:
            continue
        return key
    return None


def _family_link_key(obj: Any) -> tuple | None:
    """What decides whether a configuration applies to a scenario (for caching)."""
    try:
        family, link = _family_and_link(obj)
    except Exception:
        return None
    return (repr(family), repr(link))


def _build_spec(
    data: dict[str, Any], text: str | None, source: str, vocab: Vocabulary
) -> SweepSpec:
    settings = _check_sweep_table(data, source)
    scenario_blocks = _blocks(data, "scenarios", source)
    config_blocks = _blocks(data, "configs", source)
    scenario_axes = [
        _axes(block, "scenarios", number, source) for number, block in enumerate(scenario_blocks, 1)
    ]
    config_axes = [
        _axes(block, "configs", number, source) for number, block in enumerate(config_blocks, 1)
    ]
    _check_sizes(source, settings, scenario_axes, config_axes)

    scenarios: list[ScenarioEntry] = []
    seen: set[str] = set()
    for number, axes in enumerate(scenario_axes, 1):
        grid_keys = [k for k, v in axes if len(v) > 1]
        built = [
            _validated(vocab.scenario, point, source, "scenarios", number, grid_keys)
            for point in _expand(axes)
        ]
        ns = [c.get("n") for _, c, _ in built]
        numeric = [n for n in ns if _is_int(n) or isinstance(n, float)]
        smallest = min(numeric) if numeric else None
        for (obj, canon, ident), n in zip(built, ns, strict=True):
            d = digest(canon)
            if d in seen:
                continue
            seen.add(d)
            scenarios.append(
                ScenarioEntry(
                    index=len(scenarios),
                    block=number,
                    canonical=canon,
                    digest=d,
                    id=ident or d[:16],
                    in_quick=smallest is None or n == smallest,
                    obj=obj,
                )
            )

    configs: list[ConfigEntry] = []
    seen = set()
    varying: list[list[str]] = []
    for number, axes in enumerate(config_axes, 1):
        grid_keys = [k for k, v in axes if len(v) > 1]
        for point in _expand(axes):
            built = _validated(vocab.config, point, source, "configs", number, grid_keys)
            obj, canon, ident = built
            d = digest(canon)
            if d in seen:
                continue
            seen.add(d)
            configs.append(
                ConfigEntry(
                    index=len(configs),
                    block=number,
                    canonical=canon,
                    digest=d,
                    id=ident or d[:16],
                    label="",
                    obj=obj,
                )
            )
            varying.append([f"{k}={_short(point[k])}" for k in grid_keys])
    configs = _label(configs, varying)

    # whether a configuration applies depends on the scenario's family and link only
    skip_reasons: dict[tuple[int, int], str] = {}
    by_pair: dict[tuple, list[int]] = {}
    for s in scenarios:
        key = _family_link_key(s.obj) if vocab.name != "raw" else None
        by_pair.setdefault(key if key is not None else ("scenario", s.index), []).append(s.index)
    for indices in by_pair.values():
        first = scenarios[indices[0]]
        for c in configs:
            reason = vocab.why_not(first.obj, c.obj)
            if reason:
                for si in indices:
                    skip_reasons[(si, c.index)] = str(reason)

    hashed = {
        "sweep": {k: v for k, v in settings.items() if k not in _HASH_EXEMPT_SWEEP_KEYS},
        "scenarios": [s.canonical for s in scenarios],
        "configs": [c.canonical for c in configs],
    }
    spec = SweepSpec(
        name=settings["name"],
        replicates=settings["replicates"],
        seed=settings["seed"],
        description=settings["description"],
        timeout=settings["timeout"],
        record_history=settings["record_history"],
        scenarios=tuple(scenarios),
        configs=tuple(configs),
        source=source,
        text=text,
        text_sha256=hashlib.sha256(
            (text if text is not None else canonical_json(data)).encode("utf-8")
        ).hexdigest(),
        content_hash=digest(hashed),
        data=data,
        vocabulary=vocab.name,
        skip_reasons=skip_reasons,
    )
    vocab.check_feasible(spec)
    return spec


def _short(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_short(x) for x in v) + "]"
    return str(v)


def _label(configs: list[ConfigEntry], varying: list[list[str]]) -> list[ConfigEntry]:
    """Readable unique labels: the name, plus the grid values where names repeat."""
    import dataclasses

    names = [str(c.canonical.get("name") or f"config{c.index + 1}") for c in configs]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    labels = [
        f"{n}[{','.join(v)}]" if counts[n] > 1 and v else n
        for n, v in zip(names, varying, strict=True)
    ]
    final: list[str] = []
    used: dict[str, int] = {}
    for lab in labels:
        used[lab] = used.get(lab, 0) + 1
        final.append(lab if used[lab] == 1 else f"{lab}#{used[lab]}")
    return [dataclasses.replace(c, label=lab) for c, lab in zip(configs, final, strict=True)]
