"""The local backend: ``jobs`` worker processes on this machine.

``forkserver`` start method where available, else ``spawn``; never ``fork``, which is unsafe
with threaded numerical libraries.  Each worker streams rows back through a pipe as cells
finish, so a killed or crashed worker loses nothing already computed; a hang becomes a
``timeout`` row and a crash an ``error`` row, and the group's remaining cells go to a fresh
worker.

A worker holds :data:`TASKS_PER_WORKER` tasks: the one it runs and the next, waiting in its
pipe, so that it starts the next group the moment it ends one instead of waiting for this
process to read its rows, store them and send more work (with groups of a few
milliseconds, that wait had two workers idle half the time).  A task a worker has not
started when it dies or times out goes back to the queue whole.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import multiprocessing
import os
import selectors
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...errors import ValidationError
from ..cells import GroupTask
from ..status import error_text
from .base import (
    _TICK,
    Executor,
    Output,
    _finish,
    _on_raise,
    _Progress,
    _signal_name,
    _status_row,
    _timeout_row,
    preparation,
    resolve_group_fn,
    stream_group,
)

# --------------------------------------------------------------------------- local processes


def _worker_main(conn, group_fn) -> None:
    """Body of a worker process: receive tasks, stream events back, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    try:
        fn = resolve_group_fn(group_fn)
        prepare = preparation(fn)
        warm = getattr(fn, "warmup", None)
        if prepare is None and callable(warm):
            warm()
    except BaseException as exc:
        conn.send(("fatal", error_text(exc), traceback.format_exc(limit=20)))
        return
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            if prepare is not None:
                prepare(task)  # before the "start" event, which starts the task's clock
            # what lives now (modules, compiled code) stays out of the collector's full
            # passes: with Numba's objects they cost tens of milliseconds each
            gc.freeze()
            for event in stream_group(fn, task):
                conn.send(event)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent went away


# tasks sent to a worker at a time: the one it runs and the one it starts next
TASKS_PER_WORKER = 2


# the group function the fork server imports itself (see simbench.sweep.backends.fork_server)
GROUP_FN_VARIABLE = "SIMBENCH_FORK_SERVER_GROUP_FN"
# the sweep file the run reads, for the group function's preload_sweep in the server
SWEEP_VARIABLE = "SIMBENCH_FORK_SERVER_SWEEP"


def _preload(group_fn) -> list[str]:
    """The modules the fork server imports before it forks workers: this one, then the group
    function's and those it names in its ``preload`` attribute (simbench's own worker: one
    that initialises Numba there, once for every worker).  A function given by name is
    imported by the server (:mod:`~simbench.sweep.backends.fork_server`, with the name in
    :data:`GROUP_FN_VARIABLE`), not here first; a callable is already imported."""
    if isinstance(group_fn, str):
        return ["simbench.sweep.backends.local", "simbench.sweep.backends.fork_server"]
    return ["simbench.sweep.backends.local", *getattr(group_fn, "preload", ())]


@dataclass(eq=False)  # one per process: compared and hashed by identity
class _Worker:
    proc: Any
    conn: Any
    # the tasks sent to it, in order: the first is running (or about to start)
    tasks: collections.deque[_Progress] = field(default_factory=collections.deque)
    deadline: float | None = None  # of the running cell, from the task's "start" event
    fatal: tuple | None = None
    broken: bool = False  # its pipe refused a task: it gets no more

    @property
    def progress(self) -> _Progress | None:
        """The task it runs (or starts next), or None when it has none."""
        return self.tasks[0] if self.tasks else None


THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)

# Where colorama is installed, Numba colours its compilation errors, and it builds one such
# message for every type resolution it tries and discards while it compiles (tens of
# thousands from an empty cache), re-initialising the terminal streams each time: about 4% of
# a worker's compiling.  A worker's errors become plain-text rows (sweep.status.error_text),
# so its Numba is started without the colours, unless the user chose otherwise.
PLAIN_ERRORS_VARIABLE = "NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING"


def _default_context():
    methods = multiprocessing.get_all_start_methods()
    method = os.environ.get("SIMBENCH_START_METHOD") or (
        "forkserver" if "forkserver" in methods else "spawn"
    )
    return multiprocessing.get_context(method)


class LocalExecutor(Executor):
    """A pool of ``jobs`` worker processes on this machine (see the module docstring).

    Parameters
    ----------
    jobs : int
        Number of worker processes.
    context : multiprocessing context, optional
        Defaults to ``forkserver`` (``spawn`` where unavailable); the environment variable
        ``SIMBENCH_START_METHOD`` overrides the default.
    """

    name = "local"

    def __init__(self, jobs: int = 2, context=None) -> None:
        if int(jobs) < 1:
            raise ValidationError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = int(jobs)
        self._ctx = context or _default_context()
        self._queue: collections.deque[GroupTask] = collections.deque()
        self._workers: list[_Worker] = []
        self._group_fn: str | Callable | None = None
        self._timeout: float | None = None
        self.workers_started = 0
        # every worker's pipe and process sentinel, registered while it lives: one selector
        # for the whole run rather than one per wait (results wakes for every message)
        poll = getattr(selectors, "PollSelector", selectors.SelectSelector)
        self._selector = poll()

    def start(self, group_fn, timeout):
        resolve_group_fn(group_fn)  # fail here, not in every worker, if it cannot load
        self._group_fn = group_fn
        self._timeout = timeout
        self._worker_env(group_fn)
        if self._ctx.get_start_method() == "forkserver":
            self._ctx.set_forkserver_preload(_preload(group_fn))

    def prestart(self, group_fn, sweep: str | None = None) -> None:
        """Start the process the workers are forked from (``forkserver``) now, with the
        thread settings and preloaded modules :meth:`start` gives it, so that it imports
        and initialises while the caller reads and checks the sweep (some 0.3-0.6 s of a
        short run).  A group function given by name is imported by the server, not here
        first, and with ``sweep`` (the path of the sweep file the run reads, in
        :data:`SWEEP_VARIABLE`) the server then calls its ``preload_sweep``.  Best effort:
        a group function that cannot load is left for :meth:`start` to report; with
        another start method, nothing to do."""
        if self._ctx.get_start_method() != "forkserver":
            return
        from multiprocessing import forkserver

        self._ctx.set_forkserver_preload(_preload(group_fn))
        self._worker_env(group_fn)
        if sweep is not None and isinstance(group_fn, str):
            self._saved_env.setdefault(SWEEP_VARIABLE, os.environ.get(SWEEP_VARIABLE))
            os.environ[SWEEP_VARIABLE] = str(sweep)
        try:
            forkserver.ensure_running()  # the server starts with this environment
        except Exception:  # started later, when the first worker is
            pass
        finally:
            self._restore_env()

    def submit(self, task):
        self._queue.append(task)

    def _worker_env(self, group_fn) -> None:
        """The environment the fork server and the workers start with: the thread limits,
        Numba's plain error messages (:data:`PLAIN_ERRORS_VARIABLE`) and the group
        function's name (:data:`GROUP_FN_VARIABLE`); restored in this process by
        :meth:`_restore_env`."""
        self._limit_worker_threads()
        self._saved_env.setdefault(PLAIN_ERRORS_VARIABLE, os.environ.get(PLAIN_ERRORS_VARIABLE))
        os.environ.setdefault(PLAIN_ERRORS_VARIABLE, "1")
        if isinstance(group_fn, str):
            self._saved_env.setdefault(GROUP_FN_VARIABLE, os.environ.get(GROUP_FN_VARIABLE))
            os.environ[GROUP_FN_VARIABLE] = group_fn

    def _limit_worker_threads(self) -> None:
        # N workers that each start a thread per core oversubscribe the machine N-fold:
        # BLAS and OpenMP pools then stall each other (a 2-thread gemm was seen 100x slower
        # on a busy 2-core machine).  Give each worker its share of the cores unless the user
        # chose thread counts; the variables are read when a worker imports numpy/numba,
        # and restored in the parent at shutdown.  Results do not depend on thread counts.
        share = str(max(1, (os.cpu_count() or 1) // self.jobs))
        self._saved_env = {var: os.environ.get(var) for var in THREAD_VARIABLES}
        for var in THREAD_VARIABLES:
            os.environ.setdefault(var, share)

    def _restore_env(self) -> None:
        for var, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        self._saved_env = {}

    # -- workers
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main, args=(child, self._group_fn), daemon=True, name="simbench-worker"
        )
        proc.start()
        child.close()  # so the parent sees EOF when the worker dies
        self.workers_started += 1
        worker = _Worker(proc, parent)
        self._workers.append(worker)
        self._selector.register(parent, selectors.EVENT_READ, worker)
        self._selector.register(proc.sentinel, selectors.EVENT_READ, worker)
        return worker

    def _retire(self, worker: _Worker, kill: bool) -> None:
        for handle in (worker.conn, worker.proc.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(handle)
        if kill and worker.proc.is_alive():
            worker.proc.kill()
        worker.proc.join(timeout=5)
        worker.conn.close()
        if worker in self._workers:
            self._workers.remove(worker)

    def _dispatch(self) -> None:
        """Top every worker up to :data:`TASKS_PER_WORKER` tasks, the emptiest first, and
        start workers up to ``jobs``."""
        for worker in [w for w in self._workers if w.broken and not w.tasks]:
            self._retire(worker, kill=True)  # done with what it held: replace it
        while True:
            open_ = [
                w
                for w in self._workers
                if w.fatal is None and not w.broken and len(w.tasks) < TASKS_PER_WORKER
            ]
            if not open_ and len(self._workers) >= self.jobs:
                return
            task = self._pull()
            if task is None:
                return
            if len(self._workers) < self.jobs and all(w.tasks for w in open_):
                worker = self._spawn()
            else:
                worker = min(open_, key=lambda w: len(w.tasks))
            try:
                worker.conn.send(task)
            except (BrokenPipeError, OSError):
                # it died: the task goes back; an idle worker is replaced now, a busy one
                # when its death is seen (its tasks then get their rows)
                self._queue.appendleft(task)
                if worker.tasks:
                    worker.broken = True
                else:
                    self._retire(worker, kill=True)
                continue
            worker.tasks.append(_Progress(task))

    def _budget(self, progress: _Progress) -> float | None:
        if self._timeout is None:
            return None
        return self._timeout * (len(progress.task.cells) if progress.mode == "batch" else 1)

    def _handle(self, worker: _Worker, message: tuple) -> Iterator[Output]:
        kind = message[0]
        progress = worker.progress
        if kind == "fatal":
            worker.fatal = message
            for held in worker.tasks:  # every task sent to it, the waiting ones too
                while not held.done:
                    yield (
                        held.cell(held.next),
                        _status_row(
                            "error", f"worker could not start: {message[1]}", traceback=message[2]
                        ),
                    )
                    held.next += 1
            worker.tasks.clear()
            return
        if progress is None:
            return
        if kind == "start":
            progress.mode = message[1]
            budget = self._budget(progress)
            worker.deadline = None if budget is None else time.monotonic() + budget
        elif kind == "row":
            index = message[1]
            if index == progress.next:
                yield progress.cell(index), message[2]
                progress.next += 1
                if self._timeout is not None and progress.mode == "stream":
                    worker.deadline = time.monotonic() + self._timeout
        elif kind == "raise":
            yield from _on_raise(progress, message)
        elif kind == "end":
            yield from _finish(progress, self._queue)
            worker.tasks.popleft()
            worker.deadline = None  # the next task's clock starts with its "start" event

    def _drain(self, worker: _Worker) -> tuple[list[Output], bool]:
        """Read every message waiting from ``worker``; report whether its pipe is closed."""
        out: list[Output] = []
        try:
            while self._readable(worker):
                out.extend(self._handle(worker, worker.conn.recv()))
        except (EOFError, OSError):
            return out, True
        return out, False

    def _readable(self, worker: _Worker) -> bool:
        """Whether ``worker``'s pipe holds a message (or has closed), without waiting: the
        run's selector, where ``Connection.poll`` would build a selector of its own."""
        return any(key.fileobj is worker.conn for key, _ in self._selector.select(0))

    def _lost(self, worker: _Worker, status: str, error: str) -> Iterator[Output]:
        """``worker`` is gone: its current cell gets a row, the rest of its task and the
        tasks it had not started are retried, in their order."""
        progress = worker.progress
        retry = []
        if progress is not None and not progress.done:
            yield progress.cell(progress.next), _status_row(status, error, worker=None)
            progress.next += 1
            retry.append(progress.rest())
        retry += [waiting.rest() for waiting in list(worker.tasks)[1:]]
        self._queue.extendleft(reversed([task for task in retry if task is not None]))
        worker.tasks.clear()

    def results(self):
        assert self._group_fn is not None, "start() first"
        while self._has_tasks() or any(w.tasks for w in self._workers):
            self._dispatch()
            now = time.monotonic()
            deadlines = [w.deadline for w in self._workers if w.deadline is not None]
            wait_for = min([_TICK, *(max(0.0, d - now) for d in deadlines)])
            ready = (
                {key.data for key, _ in self._selector.select(wait_for)} if self._workers else set()
            )
            produced = False
            for worker in list(self._workers):
                if worker in ready:
                    out, closed = self._drain(worker)
                    for item in out:
                        produced = True
                        yield item
                    if closed or not worker.proc.is_alive():
                        worker.proc.join(timeout=5)
                        if worker.fatal is None:
                            error = (
                                "worker process died while running this cell "
                                f"({_signal_name(worker.proc.exitcode)})"
                            )
                            for item in self._lost(worker, "error", error):
                                produced = True
                                yield item
                        self._retire(worker, kill=True)
            now = time.monotonic()
            for worker in list(self._workers):
                if worker.deadline is not None and now >= worker.deadline:
                    out, _ = self._drain(worker)  # a row may have arrived just in time
                    for item in out:
                        produced = True
                        yield item
                    if worker.deadline is None or time.monotonic() < worker.deadline:
                        continue
                    progress = worker.progress
                    error = _timeout_row(self._timeout, progress)["error"]
                    self._retire(worker, kill=True)
                    for item in self._lost(worker, "timeout", error):
                        produced = True
                        yield item
            if not produced:
                yield None

    def shutdown(self, cancel=False):
        self._restore_env()
        for worker in list(self._workers):
            if not cancel and worker.progress is None and worker.proc.is_alive():
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
                worker.proc.join(timeout=2)
            self._retire(worker, kill=True)
        self._queue.clear()
        self._source = None
