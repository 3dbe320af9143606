"""Backends: where group tasks run, and how hangs and crashes become rows.

==========  ================================================================================
``serial``  :class:`~.serial.SerialExecutor`: in the calling process (best for debugging)
``local``   :class:`~.local.LocalExecutor`: ``jobs`` worker processes on this machine
``dask``    :class:`~.dask.DaskExecutor`: tasks on a ``dask.distributed`` cluster
            (``address``), or on a local cluster of ``jobs`` workers
==========  ================================================================================

What every backend promises (one row per cell, whatever the group function does) is in
:mod:`.base`.  :func:`make_executor` is the only place that turns the ``--backend``,
``--jobs`` and ``--address`` of the command line, or the same arguments of
:func:`simbench.run`, into an executor: ``jobs = 0`` means one job per CPU this process may
use; without a backend, an address means ``dask``, one job ``serial`` and more ``local``.
"""

from __future__ import annotations

from ..._threads import cpu_count
from ...errors import ValidationError
from .base import CellTimeout, Executor, resolve_group_fn
from .local import THREAD_VARIABLES, LocalExecutor
from .serial import SerialExecutor

__all__ = [
    "BACKENDS",
    "THREAD_VARIABLES",
    "CellTimeout",
    "Executor",
    "LocalExecutor",
    "SerialExecutor",
    "make_executor",
    "resolve_backend",
    "resolve_group_fn",
]

BACKENDS = ("serial", "local", "dask")


def resolve_backend(
    backend: str | None, jobs: int = 1, address: str | None = None
) -> tuple[str, int]:
    """``(backend, jobs)`` for the given settings (see the module notes).

    Raises
    ------
    ValidationError
        ``jobs`` not a whole number >= 0, an unknown backend, an address without the dask
        backend, or the serial backend asked for more than one job.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValidationError(f"jobs = {jobs!r}: expected a whole number >= 0 (0: one per CPU)")
    if jobs == 0:
        jobs = cpu_count()
    if backend is None:
        backend = "dask" if address else ("serial" if jobs == 1 else "local")
    if backend not in BACKENDS:
        from ..._registry import unknown_name_message

        raise ValidationError(unknown_name_message("backend", backend, list(BACKENDS)))
    if address and backend != "dask":
        raise ValidationError(
            f"an address ({address!r}) is a Dask scheduler's: it needs the dask backend, "
            f"not {backend!r}"
        )
    if backend == "serial" and jobs > 1:
        raise ValidationError(
            f"the serial backend runs one job; got jobs = {jobs} (use the local backend, or "
            "leave the backend out)"
        )
    return backend, jobs


def make_executor(backend: str | None, jobs: int = 1, address: str | None = None) -> Executor:
    """The executor for these settings (:func:`resolve_backend`)."""
    backend, jobs = resolve_backend(backend, jobs, address)
    if backend == "serial":
        return SerialExecutor()
    if backend == "local":
        return LocalExecutor(jobs=jobs)
    from .dask import DaskExecutor  # dask.distributed is optional

    return DaskExecutor(address=address, jobs=jobs)
