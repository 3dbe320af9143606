"""Name registries with aliases and helpful errors.

A registry maps canonical names and aliases to small immutable objects (families, links,
losses, activations, optimisers).  Lookups are case-insensitive and treat ``-`` and ``_``
alike; an unknown name raises :class:`~simbench.errors.UnknownNameError` listing the accepted
names and the closest match.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Lower-case ``name``, unify separators: ``"Inverse-Gaussian"`` -> ``"inverse_gaussian"``."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


# ``name(argument)``: a name that starts with a letter, then the argument up to the last ")"
_CALL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_\- ]*?)\s*\(\s*(.*?)\s*\)\s*$")


def parse_call(text: str) -> tuple[str, str | None]:
    """Split ``"name(argument)"`` into the name and the argument's text.

    The one reader of the call form that families, losses, links and scenarios accept
    (``"tweedie(1.5)"``, ``"NB( 0.5 )"``, ``"power(-2)"``, ``"negative-binomial(1e-1)"``):
    white space around the name, the parentheses and the argument is ignored; the name is
    returned as written (look it up with a registry) and the argument unparsed (the entry's
    :class:`~simbench._domains.Parameter` reads it).  Text without that form comes back
    whole with ``None``: ``"poisson"`` -> ``("poisson", None)``; ``"power()"`` ->
    ``("power", "")``.
    """
    match = _CALL.match(text)
    if match is None:
        return text, None
    return match.group(1), match.group(2)


_QUOTED_CHARS = 80  # a name quoted in a message is cut to this many characters


def closest(name: str, choices: list[str]) -> str | None:
    """The accepted name closest to ``name``, or ``None`` if nothing is close."""
    longest = max((len(c) for c in choices), default=0)
    if len(name) > 2 * longest + 8:  # nothing can be close; spares difflib a long string
        return None
    match = difflib.get_close_matches(normalize_name(name), choices, n=1, cutoff=0.5)
    return match[0] if match else None


def quoted(value: object, limit: int = _QUOTED_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters with a note of how much was left out."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def unknown_name_message(kind: str, name: object, accepted: list[str]) -> str:
    """``unknown link 'lgo'; did you mean 'log'? accepted: identity, log, ...``"""
    text = f"unknown {kind} {quoted(name)}"
    guess = closest(str(name), accepted) if isinstance(name, str) else None
    if guess is not None:
        text += f"; did you mean {guess!r}?"
    return text + "; accepted: " + ", ".join(accepted)


class VocabularyItem:
    """What the vocabulary objects (Family, Link, Loss, Activation) share: their entry in
    the vocabulary table, their ``repr`` and the string that names them with their
    parameter.  A subclass sets ``_entries`` (canonical name -> spec) and has the fields
    ``name`` and ``param``."""

    _entries: ClassVar[Mapping[str, Any]]
    name: str
    param: float

    @property
    def entry(self) -> Any:
        """The vocabulary entry (spec) of this object."""
        return self._entries[self.name]

    @property
    def _has_parameter(self) -> bool:
        return getattr(self.entry, "parameter", None) is not None

    @property
    def spec(self) -> str:
        """A string that the module's ``get`` maps back to this object: ``"tweedie(1.5)"``,
        ``"power(0.3)"``, ``"poisson"``."""
        if self._has_parameter:
            return f"{self.name}({float(self.param)!r})"
        return self.name

    def __repr__(self) -> str:
        if self._has_parameter:
            return f"{type(self).__name__}({self.name!r}, {self.param!r})"
        return f"{type(self).__name__}({self.name!r})"


class Registry(Generic[T]):
    """Canonical name -> object, with aliases.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages (``"family"``, ``"link"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, obj: T, aliases: tuple[str, ...] = ()) -> T:
        key = normalize_name(name)
        if key in self._items or key in self._aliases:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[key] = obj
        for alias in aliases:
            self._aliases[normalize_name(alias)] = key
        return obj

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` (an alias or a canonical name)."""
        key = normalize_name(name)
        key = self._aliases.get(key, key)
        if key not in self._items:
            raise UnknownNameError(unknown_name_message(self.kind, name, self.names(aliases=True)))
        return key

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def require_name(self, name: object) -> str:
        """``name`` if it is a string; else an UnknownNameError listing the accepted names."""
        if not isinstance(name, str):
            article = "an" if self.kind[:1] in tuple("aeiou") else "a"
            raise UnknownNameError(
                f"{article} {self.kind} is given by name; got {name!r}; accepted: "
                + ", ".join(self.names())
            )
        return name

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = normalize_name(name)
        return key in self._items or key in self._aliases

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def names(self, aliases: bool = False) -> list[str]:
        """Canonical names in registration order (and the aliases, sorted, if asked)."""
        out = list(self._items)
        if aliases:
            out += sorted(self._aliases)
        return out

    def aliases_of(self, name: str) -> list[str]:
        key = self.canonical(name)
        return sorted(a for a, k in self._aliases.items() if k == key)

    def __repr__(self) -> str:
        return f"<{self.kind} registry: {', '.join(self._items)}>"
