"""The Dask backend: groups as tasks on a ``dask.distributed`` cluster.

Each Dask task runs a *chunk* of groups through a one-process
:class:`~simbench.sweep.backends.local.LocalExecutor` on the Dask worker, so hangs and crashes
become rows exactly as they do locally (see :mod:`simbench.sweep.backends.base`).

Chunks are sized to about :data:`CHUNK_SECONDS` of work, measured as the sweep goes (the
first chunks hold one group each; then ``CHUNK_SECONDS`` / the mean seconds per group so
far, at most :data:`MAX_CHUNK` groups), so the scheduler's cost per task (about a
millisecond) never dominates sweeps of tiny cells.  At most :data:`CHUNKS_PER_WORKER`
chunks per worker thread wait on the cluster, the rest of the sweep is generated only as
they finish.  Rows come back when a chunk ends: what a killed run loses is the chunks in
flight, about a second of work per worker.  A Dask worker lost mid-sweep has its chunk
retried elsewhere by Dask; the runner keeps the first row of every cell.

``dask.distributed`` is optional (``simbench[dist]``) and imported only when this backend
starts.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import re
import sys
import time

from ...errors import ValidationError
from ..cells import GroupTask
from ..status import error_text
from .base import Executor, _status_row
from .local import LocalExecutor
from .serial import SerialExecutor

__all__ = ["CHUNKS_PER_WORKER", "CHUNK_SECONDS", "MAX_CHUNK", "DaskExecutor"]

CHUNK_SECONDS = 1.0  # target work per Dask task
MAX_CHUNK = 512  # groups per Dask task at most
CHUNKS_PER_WORKER = 2  # chunks queued on the cluster per worker thread
CONNECT_TIMEOUT_ENV = "SIMBENCH_DASK_CONNECT_TIMEOUT"  # seconds (default 10)
_ADDRESS_RE = re.compile(r"^(?:(?:tcp|tls|inproc|ucx|ws|wss)://)?[^\s/:]+(?::\d{1,5})?$")

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


def _dask_chunk(group_fn, tasks: list[GroupTask], timeout: float | None):
    """Run a chunk of groups on a Dask worker: (rows, wall seconds, fresh).

    ``fresh`` is true when the chunk started this worker thread's child process (its time
    then includes starting it and the group function's warm-up, not a measure of work).
    """
    import threading

    key = (threading.get_ident(), repr(group_fn), timeout)
    fresh = key not in _DASK_POOLS
    t0 = time.perf_counter()
    rows: list[tuple[str, dict]] = []
    for task in tasks:
        rows.extend(_dask_group(group_fn, task, timeout))
    return rows, time.perf_counter() - t0, fresh


class DaskExecutor(Executor):
    """Groups, in chunks of about a second of work, as tasks on a ``dask.distributed`` cluster.

    Each chunk runs its groups in a child process of the Dask worker (a one-process
    :class:`LocalExecutor`), so per-cell timeouts and crashes are handled exactly as
    locally; rows come back when the chunk ends.  If a Dask worker itself is lost, Dask
    retries the chunk elsewhere; after too many losses its cells get ``error`` rows.

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
        if address is not None and not _ADDRESS_RE.match(str(address)):
            raise ValidationError(
                f"--address {address!r}: expected a scheduler address such as "
                "tcp://host:8786 (or host:port)"
            )
        self.address = address
        self.jobs = jobs
        self._client = client
        self._own_client = client is None
        self._cluster = None
        self._queue: collections.deque[GroupTask] = collections.deque()
        self._group_fn = None
        self._timeout = None
        self._futures: dict = {}
        self._rates: collections.deque[float] = collections.deque(maxlen=16)
        self.chunks_submitted = 0

    def start(self, group_fn, timeout):
        from distributed import Client, LocalCluster

        self._group_fn = group_fn
        self._timeout = timeout
        if self._client is None:
            if self.address:
                wait = float(os.environ.get(CONNECT_TIMEOUT_ENV) or 10)
                try:
                    self._client = Client(self.address, timeout=wait)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise ValidationError(
                        f"--address {self.address}: cannot reach a Dask scheduler there "
                        f"within {wait:g} s ({type(exc).__name__}: {exc}); start one with "
                        "'dask scheduler' or check the address"
                    ) from None
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
        self._queue.append(task)

    def _threads(self) -> int:
        try:
            workers = self._client.scheduler_info()["workers"].values()
            return max(1, sum(int(w.get("nthreads", 1)) for w in workers))
        except Exception:  # the scheduler's view is advisory only
            return max(1, self.jobs)

    def record(self, groups: int, seconds: float) -> None:
        """A chunk of ``groups`` took ``seconds`` of work (sizes the next chunks)."""
        if groups > 0 and seconds >= 0.0:
            self._rates.append(seconds / groups)

    def _chunk_size(self) -> int:
        """Groups per chunk: ``CHUNK_SECONDS`` over the median seconds per group of the
        last chunks (1 until a chunk has been measured), at most ``MAX_CHUNK``."""
        if not self._rates:
            return 1
        per_group = sorted(self._rates)[len(self._rates) // 2]
        if per_group <= 0.0:
            return MAX_CHUNK
        return max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / per_group)))

    def _top_up(self, pending) -> None:
        room = CHUNKS_PER_WORKER * self._threads()
        while len(self._futures) < room:
            size = self._chunk_size()
            chunk: list[GroupTask] = []
            while len(chunk) < size:
                task = self._pull()
                if task is None:
                    break
                chunk.append(task)
            if not chunk:
                return
            future = self._client.submit(
                _dask_chunk, self._group_fn, chunk, self._timeout, pure=False
            )
            self._futures[future] = chunk
            self.chunks_submitted += 1
            pending.add(future)

    def results(self):
        from distributed import as_completed

        pending = as_completed()
        self._top_up(pending)
        while self._futures:
            batch = pending.next_batch(block=False) if pending.has_ready() else []
            if not batch:
                time.sleep(0.02)
                yield None
                continue
            for future in batch:
                chunk = self._futures.pop(future, None)
                if chunk is None:
                    continue
                try:
                    rows, seconds, fresh = future.result()
                    if not fresh:
                        self.record(len(chunk), seconds)
                except Exception as exc:
                    rows = [
                        (
                            c.cell_id,
                            _status_row("error", f"dask task failed: {error_text(exc)}"),
                        )
                        for task in chunk
                        for c in task.cells
                    ]
                future.release()
                yield from rows
            self._top_up(pending)

    def shutdown(self, cancel=False):
        if self._client is not None and cancel and self._futures:
            self._client.cancel(list(self._futures))
        self._futures = {}
        self._queue.clear()
        self._source = None
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
