"""Size limits of sweeps and of the messages about them: the one place they are set.

A sweep is refused up front (exit code 2, with its count) when it exceeds one of these;
every count is computed arithmetically from the sweep file, before anything is expanded.

``MAX_CELLS``
    Cells of one sweep (scenarios x configurations x replicates).  Cells are streamed, so
    a run's memory does not grow with the number of cells, except for the index of stored
    cells that resuming needs: 9 bytes per stored cell (0.9 GB at this limit).
``MAX_SCENARIOS``, ``MAX_CONFIGS``
    Expanded grid points of the ``[[scenarios]]`` and ``[[configs]]`` blocks: each is
    validated and held in memory (and each scenario's true coefficients computed).
``MAX_NAME_LENGTH``
    Characters of ``[sweep] name``, which is also a directory name.
``MIN_TIMEOUT``, ``MAX_TIMEOUT``
    Seconds per cell: below the first a cell would stop before it started; above the
    second (a year) the timers that enforce it cannot be set (setitimer takes at most
    some 9.2e9 s).  :data:`TIMEOUT_RANGE` says so in messages, :func:`valid_timeout`
    decides for the sweep file, the command line and the Python API alike.
``MESSAGE_VALUE_CHARS``
    Characters of a key or value quoted in an error message (longer ones are shortened).
``MESSAGE_CHARS``
    Characters of any one error message the command line prints.
"""

from __future__ import annotations

from .._registry import _QUOTED_CHARS

__all__ = [
    "MAX_CELLS",
    "MAX_CONFIGS",
    "MAX_NAME_LENGTH",
    "MAX_SCENARIOS",
    "MAX_TIMEOUT",
    "MESSAGE_CHARS",
    "MESSAGE_VALUE_CHARS",
    "MIN_TIMEOUT",
    "TIMEOUT_RANGE",
    "shorten",
    "valid_timeout",
]

MAX_CELLS = 100_000_000
MAX_SCENARIOS = 10_000
MAX_CONFIGS = 100_000
MAX_NAME_LENGTH = 100
MIN_TIMEOUT = 0.01
MAX_TIMEOUT = 365 * 24 * 3600.0
TIMEOUT_RANGE = f"a number of seconds from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:,.0f} (a year)"
MESSAGE_VALUE_CHARS = _QUOTED_CHARS  # set with the registries, which quote names too
MESSAGE_CHARS = 4000


def valid_timeout(value: object) -> bool:
    """Whether ``value`` is a per-cell timeout simbench accepts (:data:`TIMEOUT_RANGE`)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and MIN_TIMEOUT <= value <= MAX_TIMEOUT
    )


def shorten(text: str, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
