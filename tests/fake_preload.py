"""Imported by the fork server when :func:`fake_groups.preloaded` runs on the local backend:
records the process it was imported in."""

from __future__ import annotations

import os

IMPORTED_IN = os.getpid()
