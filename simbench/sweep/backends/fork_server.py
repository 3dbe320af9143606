"""What the local backend's fork server imports for the group function, in the server.

:meth:`~simbench.sweep.backends.local.LocalExecutor.prestart` starts the fork server
before this process has imported the group function, with this module in the server's
preload and the function's name in the server's environment
(:data:`~simbench.sweep.backends.local.GROUP_FN_VARIABLE`).  Imported there, this module
imports the function and the modules its ``preload`` attribute names (simbench's worker:
Numba initialised once for every worker), so that the server pays for them while this
process reads and checks the sweep, and is ready when the first worker is asked for
instead of some 0.25 s later.

When the server's environment also names the sweep file the run reads
(:data:`~simbench.sweep.backends.local.SWEEP_VARIABLE`) and the function has a
``preload_sweep`` attribute, that is called with the path next, still before any worker
is forked: simbench's worker loads there the compiled code the sweep's tasks will use, so
that every worker inherits it instead of loading it itself.

Nothing is reported from here: a group function that cannot load is reported by
:meth:`~simbench.sweep.backends.local.LocalExecutor.start`, in the process that asked for
it, and the workers import what the server could not.
"""

from __future__ import annotations

import importlib
import os

from .base import resolve_group_fn
from .local import GROUP_FN_VARIABLE, SWEEP_VARIABLE


def load(spec: str, sweep: str | None = None) -> None:
    """Import the group function ``spec`` names and its ``preload`` modules, then give its
    ``preload_sweep`` the path ``sweep`` (when both exist); never raise."""
    try:
        fn = resolve_group_fn(spec)
        for name in getattr(fn, "preload", ()):
            importlib.import_module(name)
        preload_sweep = getattr(fn, "preload_sweep", None)
        if sweep and preload_sweep is not None:
            preload_sweep(sweep)
    except Exception:  # reported by LocalExecutor.start, not by the server
        pass


if os.environ.get(GROUP_FN_VARIABLE):
    load(os.environ[GROUP_FN_VARIABLE], os.environ.get(SWEEP_VARIABLE))
