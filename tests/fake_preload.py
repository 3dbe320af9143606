"""Imported by the fork server when :func:`fake_groups.preloaded` runs on the local backend:
records the process it was imported in, and what ``fake_groups.preloaded``'s
``preload_sweep`` was given there."""

from __future__ import annotations

import os

IMPORTED_IN = os.getpid()
# (sweep path, process) of the preload_sweep call; none where it was not called
SWEEP = ("", -1)
# whether the garbage collector was on during that call
GC_ENABLED = None
