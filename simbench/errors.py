"""Exceptions raised by simbench.

Every error about user input derives from :class:`ValidationError`, which is also a
``ValueError`` so that callers who do not know simbench can still catch it.
"""

from __future__ import annotations


class SimbenchError(Exception):
    """Base class of simbench's own errors."""


class ValidationError(SimbenchError, ValueError):
    """A value given by the user is not accepted; the message says what is."""


class UnknownNameError(ValidationError, KeyError):
    """A name not found in a registry; the message lists the accepted names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""
