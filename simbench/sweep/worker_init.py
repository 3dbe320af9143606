"""Numba made ready in the process the local backend forks its workers from.

The fork server imports this module (it is in the ``preload`` of
:func:`simbench.sweep.worker.run_group`) before it forks any worker: Numba's CPU target is
initialised (some 0.35 s a process) and the link kernel of the data simulation loaded, once,
there, so that every worker starts with them instead of paying for them itself.  Nothing
runs that starts a thread, so forking afterwards is as safe as before.
"""

from __future__ import annotations

import numpy as np

from simbench import links

# the call simulate makes first (Link.h on a float64 vector), so the same compiled code
links.get("identity").h(np.zeros(1))
