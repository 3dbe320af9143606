"""Per-column designs: each covariate with a distribution of its own.

The scenario key ``columns`` lists the distribution of every column of ``X``, in order, so
that continuous and binary covariates can sit side by side::

    columns = ["uniform(-2, 2) * 5", "bernoulli(0.5) * 5"]   # x1..x5 uniform, x6..x10 0/1

Each entry is ``kind``, ``kind(parameters)``, and optionally ``* k`` for ``k`` columns alike.
The kinds (:data:`COLUMN_KINDS`, the one list the parser, the documentation and the
messages use):

===================  ======================================================================
``gaussian(m, s)``   normal with mean ``m`` and standard deviation ``s > 0`` (default 0, 1)
``uniform(a, b)``    uniform on ``[a, b]``, ``a < b`` (default ``[-sqrt 3, sqrt 3]``, variance 1)
``bernoulli(q)``     0 or 1, ``P(x = 1) = q``, ``0 < q < 1`` (default 0.5)
``rademacher``       -1 or +1 with probability 1/2 each (the ``binary`` design's columns)
===================  ======================================================================

Columns are independent.  Their population moments are exact (:meth:`Column.mean`,
:meth:`Column.variance`, :meth:`Column.log_mgf`), which is what :mod:`simbench.truth` needs
to scale the linear predictor (``signal``) and set the intercept (``mean``).  The canonical
text of a list is the run-length form with explicit parameters,
``["uniform(-2, 2) * 5", "bernoulli(0.5) * 5"]``, so two spellings of one design are one
scenario.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ._registry import closest
from .errors import ValidationError

__all__ = [
    "COLUMN_KINDS",
    "MAX_COLUMNS",
    "Column",
    "ColumnKind",
    "columns_text",
    "draw_columns",
    "parse_columns",
]

# covariates of any design (p, the columns of a per-column design): the true coefficients'
# moments and every fit's information matrix are p x p, 800 MB each at this limit
MAX_COLUMNS = 10_000
_SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class ColumnKind:
    """A column distribution: its name, parameter names and defaults, and what it is."""

    name: str
    params: tuple[str, ...]
    defaults: tuple[float, ...]
    description: str


#: The column distributions, by name.
COLUMN_KINDS: Mapping[str, ColumnKind] = MappingProxyType(
    {
        k.name: k
        for k in (
            ColumnKind("gaussian", ("mean", "sd"), (0.0, 1.0), "normal(mean, sd), sd > 0"),
            ColumnKind("uniform", ("a", "b"), (-_SQRT3, _SQRT3), "uniform on [a, b], a < b"),
            ColumnKind("bernoulli", ("q",), (0.5,), "0 or 1 with P(1) = q, 0 < q < 1"),
            ColumnKind("rademacher", (), (), "-1 or +1 with probability 1/2 each"),
        )
    }
)
_ALIASES = {"normal": "gaussian"}


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Column:
    """One covariate's distribution (a validated :data:`COLUMN_KINDS` entry)."""

    kind: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        if not self.params:
            return self.kind
        return f"{self.kind}({', '.join(_num(v) for v in self.params)})"

    @property
    def is_gaussian(self) -> bool:
        return self.kind == "gaussian"

    def mean(self) -> float:
        """Population mean."""
        if self.kind == "gaussian":
            return self.params[0]
        if self.kind == "uniform":
            return 0.5 * (self.params[0] + self.params[1])
        if self.kind == "bernoulli":
            return self.params[0]
        return 0.0

    def variance(self) -> float:
        """Population variance."""
        if self.kind == "gaussian":
            return self.params[1] ** 2
        if self.kind == "uniform":
            return (self.params[1] - self.params[0]) ** 2 / 12.0
        if self.kind == "bernoulli":
            q = self.params[0]
            return q * (1.0 - q)
        return 1.0

    def support(self) -> tuple[float, float]:
        """Smallest and largest value (infinite for a Gaussian column)."""
        if self.kind == "gaussian":
            return -math.inf, math.inf
        if self.kind == "uniform":
            return self.params[0], self.params[1]
        if self.kind == "bernoulli":
            return 0.0, 1.0
        return -1.0, 1.0

    def atoms(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Values and probabilities of a discrete column (None for a continuous one)."""
        if self.kind == "bernoulli":
            q = self.params[0]
            return np.array([0.0, 1.0]), np.array([1.0 - q, q])
        if self.kind == "rademacher":
            return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
        return None

    def log_mgf(self, t: float) -> float:
        """``log E[exp(t x)]``, exactly and without overflow."""
        if t == 0.0:
            return 0.0
        if self.kind == "gaussian":
            m, s = self.params
            return m * t + 0.5 * (s * t) ** 2
        if self.kind == "uniform":
            a, b = self.params
            x = (b - a) * t  # E exp(t x) = exp(a t) (e^x - 1) / x
            if x > 0.0:
                return a * t + x + math.log(-math.expm1(-x)) - math.log(x)
            return a * t + math.log(-math.expm1(x)) - math.log(-x)
        if self.kind == "bernoulli":
            q = self.params[0]
            # log(1 - q + q e^t), written so that neither e^t nor its log overflows
            if t > 0.0:
                return t + math.log(q + (1.0 - q) * math.exp(-t))
            return math.log1p(q * math.expm1(t))
        a = abs(t)  # log cosh t
        return a + math.log1p(math.exp(-2.0 * a)) - math.log(2.0)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent values."""
        if self.kind == "gaussian":
            m, s = self.params
            z = rng.standard_normal(n)
            return z if (m, s) == (0.0, 1.0) else m + s * z
        if self.kind == "uniform":
            return rng.uniform(self.params[0], self.params[1], size=n)
        if self.kind == "bernoulli":
            return (rng.random(n) < self.params[0]).astype(np.float64)
        return 2.0 * rng.integers(0, 2, size=n) - 1.0


_ENTRY_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z_0-9]*)\s*(?:\(([^()]*)\))?\s*(?:\*\s*([0-9]+))?\s*$")


_NUMBER_RE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def _accepted() -> str:
    kinds = "; ".join(
        f"{k.name}({', '.join(k.params)})" if k.params else k.name for k in COLUMN_KINDS.values()
    )
    return (
        f"accepted entries: {kinds} (parameters optional, defaults as documented), each "
        f"optionally followed by '* k' for k such columns"
    )


def _fail(entry: object, why: str) -> ValidationError:
    return ValidationError(f"scenario key 'columns': entry {entry!r}: {why}; {_accepted()}")


def _parse_params(entry: str, kind: ColumnKind, text: str | None) -> tuple[float, ...]:
    if text is None or not text.strip():
        return kind.defaults
    values = []
    for part in text.split(","):
        if not _NUMBER_RE.match(part.strip()):
            raise _fail(entry, f"parameter {part.strip()!r} is not a decimal number")
        v = float(part)
        if not math.isfinite(v):
            raise _fail(entry, f"parameter {part.strip()!r} is not a finite number")
        values.append(v)
    if len(values) != len(kind.params):
        names = ", ".join(kind.params) or "no parameters"
        raise _fail(entry, f"{kind.name} takes {names}, got {len(values)} value(s)")
    return tuple(values)


def _check_domain(entry: str, kind: str, params: tuple[float, ...]) -> None:
    if kind == "gaussian" and not params[1] > 0.0:
        raise _fail(entry, f"the standard deviation must be > 0, got {_num(params[1])}")
    if kind == "uniform" and not params[0] < params[1]:
        a, b = _num(params[0]), _num(params[1])
        raise _fail(entry, f"uniform(a, b) needs a < b, got a={a}, b={b}")
    if kind == "bernoulli" and not 0.0 < params[0] < 1.0:
        raise _fail(entry, f"bernoulli(q) needs 0 < q < 1, got q={_num(params[0])}")


def parse_columns(value: object) -> tuple[Column, ...]:
    """Parse the ``columns`` key: a list of entries (see the module notes).

    Raises
    ------
    ValidationError
        Naming the entry, what is wrong with it and what is accepted.
    """
    if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValidationError(
            f"scenario key 'columns' must be a list of column entries, e.g. "
            f'["uniform(-2, 2) * 5", "bernoulli(0.5) * 5"]; got {value!r}'
        )
    out: list[Column] = []
    for entry in value:
        if not isinstance(entry, str):
            raise _fail(entry, "an entry is a string")
        match = _ENTRY_RE.match(entry)
        if match is None:
            raise _fail(entry, "not of the form kind(parameters) * k")
        name, params_text, count_text = match.groups()
        key = _ALIASES.get(name.lower(), name.lower())
        if key == "binary":
            raise _fail(
                entry,
                "'binary' is ambiguous here: write bernoulli(0.5) for 0/1 columns or "
                "rademacher for -1/+1 ones (the 'binary' design's)",
            )
        kind = COLUMN_KINDS.get(key)
        if kind is None:
            guess = closest(name, [*COLUMN_KINDS, *_ALIASES])
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise _fail(entry, f"unknown column kind {name!r}{hint}")
        params = _parse_params(entry, kind, params_text)
        _check_domain(entry, kind.name, params)
        count = 1 if count_text is None else int(count_text)
        if count < 1:
            raise _fail(entry, "the count after '*' must be at least 1")
        if len(out) + count > MAX_COLUMNS:
            raise _fail(entry, f"a design has at most {MAX_COLUMNS} columns")
        out.extend([Column(kind.name, params)] * count)
    if not out:
        raise ValidationError("scenario key 'columns' lists no column; give at least one")
    return tuple(out)


def columns_text(columns: Sequence[Column]) -> tuple[str, ...]:
    """Canonical run-length text: ``("uniform(-2, 2) * 5", "bernoulli(0.5) * 5")``."""
    runs: list[list] = []
    for col in columns:
        if runs and runs[-1][0] == col:
            runs[-1][1] += 1
        else:
            runs.append([col, 1])
    return tuple(str(c) if k == 1 else f"{c} * {k}" for c, k in runs)


def draw_columns(columns: Sequence[Column], rng: np.random.Generator, n: int) -> np.ndarray:
    """An ``(n, p)`` design, column by column in order (one stream, reproducible)."""
    X = np.empty((n, len(columns)))
    for j, col in enumerate(columns):
        X[:, j] = col.draw(rng, n)
    return X
