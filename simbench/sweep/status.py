"""The vocabulary of cell statuses and exit codes, and the error text of a failed cell: the
one place they are defined.

Every row of a results directory has one ``status``:

==========  ==============================================================================
``ok``      trained and evaluated (``converged`` says whether the optimiser met its rule)
``error``   something raised, or the worker process died, while the cell ran
``diverged`` the training loss or gradient became non-finite (a result, not a failure)
``timeout`` the cell ran past ``--timeout`` and was stopped
``skipped`` the configuration does not apply to the scenario (the reason is in ``error``)
==========  ==============================================================================

``error`` and ``timeout`` are *failed*: they make ``run`` and ``status`` exit with code 3,
and ``--rerun-failed`` runs them again.  A ``diverged`` or ``skipped`` cell is an answer
about the configuration and is kept.

Exit codes of every ``simbench`` command::

    0  every cell of the sweep stored and none failed (or: the command did what was asked)
    1  internal error (a bug in simbench)
    2  bad input: a sweep file, directory, option, or a disk that cannot be written
    3  some cells failed or are missing (``run``, ``status``); for ``compare``: a regression
"""

from __future__ import annotations

import re

__all__ = [
    "ERROR_TEXT_LIMIT",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "FAILED_STATUSES",
    "RERUN_STATUSES",
    "STATUSES",
    "error_text",
    "exit_code",
]

STATUSES = ("ok", "error", "diverged", "timeout", "skipped")
# statuses that count as failed (and give exit code 3)
FAILED_STATUSES = frozenset({"error", "timeout"})
# statuses that --rerun-failed runs again
RERUN_STATUSES = FAILED_STATUSES

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_FAILED = 0, 1, 2, 3


def exit_code(failed: int, missing: int) -> int:
    """Exit code of ``run`` and ``status``: 3 when any cell failed or is missing, else 0."""
    return EXIT_FAILED if (failed or missing) else EXIT_OK


# the longest error text a row keeps (the start of a long message says what went wrong)
ERROR_TEXT_LIMIT = 2000
# terminal control sequences (ESC [ ... letter): Numba colours its compilation errors with
# them when colorama is installed
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def error_text(exc: BaseException) -> str:
    """The ``error`` text of a row for an exception: ``"Type: message"``, plain text (no
    terminal colour codes, which would show as noise in tables and reports), at most
    :data:`ERROR_TEXT_LIMIT` characters and an ellipsis."""
    text = _ANSI_ESCAPE.sub("", f"{type(exc).__name__}: {exc}")
    return text if len(text) <= ERROR_TEXT_LIMIT else text[:ERROR_TEXT_LIMIT] + "..."
