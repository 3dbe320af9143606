"""The Dask backend: groups as tasks on a ``dask.distributed`` cluster.

Each task runs its group through a one-process :class:`~simbench.sweep.executors.LocalExecutor`
on the Dask worker, so hangs and crashes become rows exactly as they do locally (see
:mod:`simbench.sweep.executors`).  ``dask.distributed`` is optional (``simbench[dist]``) and
imported only when this backend starts.
"""

from __future__ import annotations

import multiprocessing
import sys
import time

from ..errors import ValidationError
from .cells import GroupTask
from .executors import Executor, LocalExecutor, SerialExecutor, _error_text, _status_row

__all__ = ["DaskExecutor"]

_DASK_POOLS: dict[tuple, Executor] = {}


def _dask_group(group_fn, task: GroupTask, timeout: float | None) -> list[tuple[str, dict]]:
    """Run one group on a Dask worker, in a child process so hangs and crashes are contained.

    The child process is kept for the next group of the same Dask worker thread (the group
    function's warm-up is paid once).  A daemonic Dask worker (Dask's default) may not start
    processes; there the group runs in the worker's own thread, and timeouts and crashes
    are not contained.
    """
    import threading

    key = (threading.get_ident(), repr(group_fn), timeout)
    executor = _DASK_POOLS.get(key)
    if executor is None:
        if multiprocessing.current_process().daemon:
            executor = SerialExecutor()
        else:
            executor = LocalExecutor(jobs=1)
        executor.start(group_fn, timeout)
        _DASK_POOLS[key] = executor
    executor.submit(task)
    return [item for item in executor.results() if item is not None]


class DaskExecutor(Executor):
    """Groups as tasks on a ``dask.distributed`` cluster.

    Each task runs its group in a child process of the Dask worker (a one-process
    :class:`LocalExecutor`), so per-cell timeouts and crashes are handled exactly as
    locally; rows come back when the group ends.  If a Dask worker itself is lost, Dask
    retries the task elsewhere; after too many losses the cells get ``error`` rows.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``).  Without one, a
        ``LocalCluster(processes=True)`` with ``jobs`` workers is started and closed.
    jobs : int
        Workers of the local cluster when no address is given.
    client : dask.distributed.Client, optional
        An existing client to use (not closed by :meth:`shutdown`).
    """

    name = "dask"

    def __init__(self, address: str | None = None, jobs: int = 2, client=None) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ValidationError(
                "--backend dask needs dask.distributed: pip install 'simbench[dist]'"
            ) from None
        self.address = address
        self.jobs = jobs
        self._client = client
        self._own_client = client is None
        self._cluster = None
        self._tasks: list[GroupTask] = []
        self._group_fn = None
        self._timeout = None
        self._futures: dict = {}

    def start(self, group_fn, timeout):
        from distributed import Client, LocalCluster

        self._group_fn = group_fn
        self._timeout = timeout
        if self._client is None:
            if self.address:
                self._client = Client(self.address)
            else:
                import dask

                # non-daemonic workers may start the child process that contains each group
                with dask.config.set({"distributed.worker.daemon": False}):
                    self._cluster = LocalCluster(
                        n_workers=self.jobs,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                    )
                self._client = Client(self._cluster)
        # the workers must be able to import what the group function imports
        self._client.run(_extend_sys_path, list(sys.path))

    def submit(self, task):
        future = self._client.submit(
            _dask_group, self._group_fn, task, self._timeout, pure=False, key=None
        )
        self._futures[future] = task

    def results(self):
        from distributed import as_completed

        pending = as_completed(list(self._futures))
        while not pending.is_empty():
            batch = pending.next_batch(block=False) if pending.has_ready() else []
            if not batch:
                time.sleep(0.05)
                yield None
                continue
            for future in batch:
                task = self._futures.pop(future)
                try:
                    rows = future.result()
                except Exception as exc:
                    rows = [
                        (
                            c.cell_id,
                            _status_row("error", f"dask task failed: {_error_text(exc)}"),
                        )
                        for c in task.cells
                    ]
                yield from rows

    def shutdown(self, cancel=False):
        if self._client is not None and cancel and self._futures:
            self._client.cancel(list(self._futures))
        self._futures = {}
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _extend_sys_path(paths: list[str]) -> None:
    for p in paths:
        if p not in sys.path:
            sys.path.append(p)
