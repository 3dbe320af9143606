"""Domains and parameters of the vocabulary, as data that both checks and prints itself.

A :class:`Domain` is a set of finite real numbers: an interval (each finite end open or
closed), optionally only its integers, less some excluded points, or a finite set of
values.  The same fields drive :meth:`Domain.contains` (the check) and every text that
names the domain in a message or a listing, so the two cannot drift apart:

>>> from simbench._domains import Domain
>>> unit = Domain(0.0, 1.0)
>>> unit.text("mu"), unit.closure().text("mu"), unit.words()
('0 < mu < 1', '0 <= mu <= 1', 'in (0, 1)')
>>> Domain(0.0, low_closed=True, integer=True).words()
'a non-negative integer count'
>>> bool(Domain(0.0).contains(0.0))
False

A :class:`Parameter` is a named number of a vocabulary entry (the negative-binomial
``alpha``, the Tweedie ``power``, the power link's exponent) with its default and its
domain.  The vocabulary modules (:mod:`simbench.families`, :mod:`simbench.links`,
:mod:`simbench.losses`) hold the only copies; every other module reads them from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from simbench.errors import ValidationError

__all__ = ["Domain", "Parameter"]


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Domain:
    """A set of finite real numbers.

    Parameters
    ----------
    low, high : float
        The ends of the interval (infinite for a half-line or the real line).
    low_closed, high_closed : bool
        Whether a finite end belongs to the set.
    integer : bool
        Only the integers of the interval.
    values : tuple of float
        A finite set; when given, the interval fields are not used.
    excluded : tuple of float
        Points taken out of the interval (``mu != 0``).
    note : str
        Words printed after the domain by :meth:`words` (``"successes / trials"``); never
        part of the check.
    """

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False
    integer: bool = False
    values: tuple[float, ...] = ()
    excluded: tuple[float, ...] = ()
    note: str = ""

    # ---- the check ---------------------------------------------------------------------

    def contains(self, x) -> np.ndarray:
        """Boolean array of the shape of ``x``: where ``x`` is in the domain (NaN and
        infinities never are)."""
        arr = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(arr)
        if self.values:
            return ok & np.isin(arr, np.asarray(self.values, dtype=np.float64))
        if math.isfinite(self.low):
            ok &= (arr >= self.low) if self.low_closed else (arr > self.low)
        if math.isfinite(self.high):
            ok &= (arr <= self.high) if self.high_closed else (arr < self.high)
        if self.integer:
            with np.errstate(invalid="ignore"):
                ok &= arr == np.floor(arr)
        for point in self.excluded:
            ok &= arr != point
        return ok

    def __contains__(self, x: object) -> bool:
        try:
            return bool(self.contains(float(x)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def closure(self) -> Domain:
        """The domain with its finite ends closed (``0 < mu < 1`` -> ``0 <= mu <= 1``)."""
        return replace(self, low_closed=True, high_closed=True)

    def issubset(self, other: Domain) -> bool:
        """Whether every number of this domain is in ``other``."""
        if self.values:
            return bool(other.contains(np.asarray(self.values)).all())
        if other.values or (other.integer and not self.integer):
            return False  # an infinite set is not inside a finite one, reals not in integers
        if any(point in self for point in other.excluded):
            return False
        low_in = math.isfinite(self.low) and self.low_closed
        high_in = math.isfinite(self.high) and self.high_closed
        if self.low < other.low or (self.low == other.low and low_in and not other.low_closed):
            return False
        return not (
            self.high > other.high
            or (self.high == other.high and high_in and not other.high_closed)
        )

    # ---- the texts -------------------------------------------------------------------

    def _bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def _relation(self) -> str:
        """The condition of a half-line or a punctured line without its variable: ``"> 0"``."""
        if self.excluded:
            return " and ".join(f"!= {_num(p)}" for p in self.excluded)
        if math.isfinite(self.low):
            return (">= " if self.low_closed else "> ") + _num(self.low)
        return ("<= " if self.high_closed else "< ") + _num(self.high)

    def text(self, var: str = "x") -> str:
        """The domain as a condition on ``var``: ``"0 < mu < 1"``, ``"y >= 0"``,
        ``"y in {0, 1}"``, ``"mu != 0"``, ``"any finite y"``."""
        if self.values:
            return f"{var} in {{{', '.join(_num(v) for v in self.values)}}}"
        if self.integer:
            start = self.low if self.low_closed else math.floor(self.low) + 1
            return f"{var} in {{{_num(start)}, {_num(start + 1)}, {_num(start + 2)}, ...}}"
        if self._bounded():
            lo = " <= " if self.low_closed else " < "
            hi = " <= " if self.high_closed else " < "
            return f"{_num(self.low)}{lo}{var}{hi}{_num(self.high)}"
        if not (math.isfinite(self.low) or math.isfinite(self.high) or self.excluded):
            return f"any finite {var}"
        relations = self._relation().split(" and ")
        return " and ".join(f"{var} {r}" for r in relations)

    def interval(self) -> str:
        """Interval notation of a bounded domain: ``"[0, 1]"``, ``"(1, 2)"``."""
        lo = "[" if self.low_closed else "("
        hi = "]" if self.high_closed else ")"
        return f"{lo}{_num(self.low)}, {_num(self.high)}{hi}"

    def words(self, var: str | None = None) -> str:
        """The domain in words, as the families' messages use it: ``"a finite real
        number"``, ``"0 or 1"``, ``"a non-negative integer count"``, ``"a finite number
        mu > 0"`` (``var`` left out when None), ``"0 < mu < 1"`` (``"in (0, 1)"`` without
        ``var``); :attr:`note` follows in parentheses."""
        if self.values:
            head = ", ".join(_num(v) for v in self.values[:-1])
            text = f"{head} or {_num(self.values[-1])}"
        elif self.integer and self.low == 0.0 and self.low_closed and self.high == math.inf:
            text = "a non-negative integer count"
        elif self.integer:
            text = f"an integer {self.text(var or 'x')}"
        elif self._bounded():
            text = self.text(var) if var else f"in {self.interval()}"
        elif not (math.isfinite(self.low) or math.isfinite(self.high) or self.excluded):
            text = "a finite real number"
        else:
            text = "a finite number " + (f"{var} " if var else "") + self._relation()
        return f"{text} ({self.note})" if self.note else text

    def accepted(self, var: str) -> str:
        """What a value named ``var`` must be, after ``"'var' must be "``: ``"a number >
        0"``, ``"a number with 1 < power < 2"``, ``"a finite number"``."""
        if self.values or self.integer:
            return self.words(var)
        if self._bounded():
            return f"a number with {self.text(var)}"
        if not (math.isfinite(self.low) or math.isfinite(self.high) or self.excluded):
            return "a finite number"
        return f"a number {self._relation()}"


@dataclass(frozen=True)
class Parameter:
    """A named number of a vocabulary entry.

    Parameters
    ----------
    name : str
        The keyword that passes it (``families.get("tweedie", power=1.3)``) and the scenario
        key that holds it.
    symbol : str
        Its name in formulas and messages (``"p"`` for the Tweedie power).
    domain : Domain
        The values accepted.
    default : float or None
        The value when none is given; None when it must be given.
    """

    name: str
    symbol: str
    domain: Domain
    default: float | None = None

    @property
    def accepted(self) -> str:
        """What the value must be, in words: ``"a finite number alpha > 0"``, ``"a number p
        with 1 < p < 2"``, ``"a finite real number"``."""
        if self.domain._bounded():
            return f"a number {self.symbol} with {self.domain.text(self.symbol)}"
        return self.domain.words(self.symbol)

    def value(self, given: object) -> float | None:
        """``given`` as a float inside the domain (``-0.0`` read as ``0.0``), or None.

        Numbers and numeric strings are read; booleans and None are not numbers here.
        """
        if isinstance(given, bool) or given is None:
            return None
        try:
            x = float(given)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return x + 0.0 if x in self.domain else None

    def resolve(
        self,
        kind: str,
        text: str,
        argument: str | None,
        keyword: object,
        read: Callable[[object, object], float],
    ) -> float | None:
        """The value given in the call form (``argument`` of ``"tweedie(1.3)"``), as a
        keyword, or both (then they must agree); None when neither is given.

        ``read(value, shown)`` turns a given value into a float or raises the caller's
        message, quoting ``shown``; a disagreement is a ValidationError naming the ``kind``
        (``"family"``), the ``text`` and the keyword.
        """
        from_text = None if argument is None else read(argument, text)
        if keyword is None:
            return from_text
        value = read(keyword, keyword)
        if from_text is not None and value != from_text:
            raise ValidationError(
                f"{kind} {text!r} given together with a different {self.name}={keyword!r}"
            )
        return value
