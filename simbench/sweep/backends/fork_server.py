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

Python's cyclic garbage collector is off while the server prepares, and what it prepared
is frozen (``gc.freeze``) before the collector is on again.  The imports and loads create
some 170,000 long-lived objects, over which the collector's full passes took about 0.15 s
of the server's 1.0 s of preparation (a warm quickstart), while the run waits for the
server.  The workers inherit them frozen, as each worker freezes what it holds before a
task anyway.  The few megabytes of garbage the preparation leaves stay with it.

Nothing is reported from here: a group function that cannot load is reported by
:meth:`~simbench.sweep.backends.local.LocalExecutor.start`, in the process that asked for
it, and the workers import what the server could not.
"""

from __future__ import annotations

import gc
import importlib
import os

from .base import resolve_group_fn
from .local import GROUP_FN_VARIABLE, SWEEP_VARIABLE


def load(spec: str, sweep: str | None = None) -> None:
    """Import the group function ``spec`` names and its ``preload`` modules, then give its
    ``preload_sweep`` the path ``sweep`` (when both exist), with the garbage collector off
    and what they created frozen after; never raise."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        fn = resolve_group_fn(spec)
        for name in getattr(fn, "preload", ()):
            importlib.import_module(name)
        preload_sweep = getattr(fn, "preload_sweep", None)
        if sweep and preload_sweep is not None:
            preload_sweep(sweep)
    except Exception:  # reported by LocalExecutor.start, not by the server
        pass
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


if os.environ.get(GROUP_FN_VARIABLE):
    load(os.environ[GROUP_FN_VARIABLE], os.environ.get(SWEEP_VARIABLE))
