"""Executors: where group tasks run, and how hangs and crashes become rows.

An :class:`Executor` takes :class:`~simbench.sweep.cells.GroupTask` objects and yields one
``(cell_id, row)`` pair per cell as cells finish (and ``None`` now and then while waiting,
so the caller can refresh its progress line and flush its buffers).  Whatever happens in a
group function, every cell of every submitted task yields exactly one row:

* a row from the group function, as returned;
* ``status="error"`` if the group function raised while computing the cell (the
  remaining cells of the group are then run again in a fresh call, with the same data);
* ``status="timeout"`` if the cell ran longer than the timeout (the worker is killed and
  the remaining cells go to a fresh worker);
* ``status="error"`` if the worker process died (segmentation fault, out-of-memory kill,
  ``os._exit``) while running the cell; the remaining cells go to a fresh worker.

The per-cell clock starts when the group starts (so the first cell's budget also covers
simulating the data and fitting the reference GLM) and restarts at every row.  A group
function that returns a list instead of yielding rows gets ``timeout x cells`` for the whole
group, and a timeout then cannot tell which cell hung.

Executors
---------
:class:`SerialExecutor`
    In the calling process.  A timeout is enforced with ``SIGALRM`` (main thread on POSIX
    only), which interrupts Python code but not a compiled kernel holding the CPU; a worker
    crash ends the whole run (re-running resumes it).  Best for debugging.
:class:`LocalExecutor`
    ``jobs`` worker processes (``forkserver`` start method where available, else
    ``spawn``; never ``fork``, which is unsafe with threaded numerical libraries).  Each
    worker streams rows back through a pipe as cells finish, so a killed or crashed worker
    loses nothing already computed.
:class:`~simbench.sweep.cluster.DaskExecutor`
    Groups as tasks on a ``dask.distributed`` cluster (``--address``), each in a child
    process of a Dask worker (a one-process :class:`LocalExecutor`).

A new backend implements :meth:`Executor.start`, :meth:`Executor.submit`,
:meth:`Executor.results` and :meth:`Executor.shutdown`; nothing else in simbench changes.
"""

from __future__ import annotations

import collections
import gc
import importlib
import inspect
import multiprocessing
import os
import signal
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from ..errors import ValidationError
from .cells import GroupTask
from .store import utcnow

__all__ = [
    "CellTimeout",
    "Executor",
    "LocalExecutor",
    "SerialExecutor",
    "make_executor",
    "resolve_group_fn",
]

BACKENDS = ("serial", "local", "dask")
Output = tuple[str, dict[str, Any]] | None
_TICK = 0.25  # seconds between idle ticks yielded to the caller


# --------------------------------------------------------------------------- group functions


def resolve_group_fn(spec: str | Callable) -> Callable:
    """The group function named by ``"package.module:function"`` (or given as a callable)."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ValidationError(
            f"group function {spec!r}: expected 'package.module:function' or a callable"
        )
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise ValidationError(f"group function {spec!r}: {module_name} has no {attr!r}") from None
    if not callable(fn):
        raise ValidationError(f"group function {spec!r} is not callable")
    return fn


def is_streaming(fn: Callable) -> bool:
    """True if ``fn`` yields rows one by one (a generator function)."""
    target = inspect.unwrap(fn)
    if inspect.isgeneratorfunction(target):
        return True
    # a callable object whose __call__ is a generator function
    call = vars(type(target)).get("__call__")
    return not inspect.isfunction(target) and inspect.isgeneratorfunction(call)


def preparation(fn: Callable) -> Callable[[GroupTask], None] | None:
    """The group function's ``prepare(task)`` hook, wrapped so that it never raises, or None.

    A group function may offer ``fn.prepare(task)``, called before each task and outside
    its timeout (to compile what the task's cells need); it then replaces the once-per-
    process ``fn.warmup()``.  What ``prepare`` raises is left for the task to meet again.
    """
    prepare = getattr(fn, "prepare", None)
    if not callable(prepare):
        return None

    def guarded(task: GroupTask) -> None:
        try:
            prepare(task)
        except Exception:  # the task itself reports what goes wrong
            pass

    return guarded


class CellTimeout(BaseException):
    """Raised inside a serial cell by the timeout alarm.

    A ``BaseException`` so that a group function's ``except Exception`` does not swallow it.
    """


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:2000] + "..."


def stream_group(fn: Callable, task: GroupTask) -> Iterator[tuple]:
    """Run ``fn(task)`` and describe what happens as events (worker side).

    Events: ``("start", mode)``, then ``("row", i, row)`` per cell, possibly one
    ``("raise", i, error, traceback)`` if the function raised while computing cell ``i``,
    and finally ``("end", rows)``.  Each row is stamped with ``worker``, ``started_at`` and
    ``cell_seconds`` (wall time between the previous row and this one).
    """
    mode = "stream" if is_streaming(fn) else "batch"
    yield ("start", mode)
    worker = _worker_name()
    index = 0
    started_at = utcnow()
    t0 = time.perf_counter()
    try:
        for row in fn(task):
            if index >= len(task.cells):
                break  # extra rows: ignored, the task says how many cells there are
            row = dict(row) if row is not None else {}
            now = time.perf_counter()
            row.setdefault("worker", worker)
            row.setdefault("started_at", started_at)
            row.setdefault("cell_seconds", now - t0)
            yield ("row", index, row)
            index += 1
            started_at = utcnow()
            t0 = time.perf_counter()
    except Exception as exc:
        yield ("raise", index, _error_text(exc), traceback.format_exc(limit=20))
    yield ("end", index)


def _status_row(status: str, error: str, **extra: Any) -> dict[str, Any]:
    row = {"status": status, "error": error}
    row.update(extra)
    return row


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "unknown exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


# --------------------------------------------------------------------------- interface


class Executor(ABC):
    """Runs group tasks and yields one row per cell (see the module docstring)."""

    name = "abstract"

    @abstractmethod
    def start(self, group_fn: str | Callable, timeout: float | None) -> None:
        """Prepare to run ``group_fn`` with a per-cell ``timeout`` in seconds (or none)."""

    @abstractmethod
    def submit(self, task: GroupTask) -> None:
        """Queue a task; it runs when :meth:`results` is iterated."""

    @abstractmethod
    def results(self) -> Iterator[Output]:
        """Yield ``(cell_id, row)`` per cell of every submitted task, or ``None`` (idle tick).

        Ends when every cell of every submitted task has yielded its row.
        """

    @abstractmethod
    def shutdown(self, cancel: bool = False) -> None:
        """Release workers; with ``cancel``, stop running cells at once (their rows are lost)."""

    def feed(self, tasks: Iterable[GroupTask]) -> None:
        """Queue tasks drawn lazily from ``tasks`` when there is room to run them.

        Unlike :meth:`submit`, the tasks are not held: an executor takes the next one only
        when a worker is free (the Dask executor keeps a bounded number queued on the
        cluster), so memory does not grow with the number of tasks.
        """
        self._source = iter(tasks)

    def _pull(self) -> GroupTask | None:
        """The next task: a queued one (retries first), else one from the fed source."""
        queue = getattr(self, "_queue", None)
        if queue:
            return queue.popleft()
        source = getattr(self, "_source", None)
        if source is not None:
            task = next(source, None)
            if task is not None:
                return task
            self._source = None
        return None

    def _has_tasks(self) -> bool:
        return bool(getattr(self, "_queue", None)) or getattr(self, "_source", None) is not None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(cancel=exc[0] is not None)


@dataclass
class _Progress:
    """Parent-side state of one task: which cell comes next and why it stopped."""

    task: GroupTask
    next: int = 0
    raised: bool = False
    mode: str = "stream"

    def cell(self, index: int) -> str:
        return self.task.cells[index].cell_id

    @property
    def done(self) -> bool:
        return self.next >= len(self.task.cells)

    def rest(self) -> GroupTask | None:
        return None if self.done else self.task.remaining(self.next)


# --------------------------------------------------------------------------- serial


class SerialExecutor(Executor):
    """Run groups one after another in this process (see the module docstring)."""

    name = "serial"

    def __init__(self) -> None:
        self._queue: collections.deque[GroupTask] = collections.deque()
        self._fn: Callable | None = None
        self._prepare: Callable | None = None
        self._timeout: float | None = None
        self._freeze = False
        self._armed = False

    def start(self, group_fn, timeout):
        self._fn = resolve_group_fn(group_fn)
        self._timeout = timeout
        self._prepare = preparation(self._fn)
        if self._prepare is None:
            warm = getattr(self._fn, "warmup", None)
            if callable(warm):
                warm()

    def submit(self, task):
        self._queue.append(task)

    def shutdown(self, cancel=False):
        self._queue.clear()
        self._source = None

    def _alarm_usable(self) -> bool:
        import threading

        return (
            self._timeout is not None
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )

    def results(self):
        assert self._fn is not None, "start() first"
        use_alarm = self._alarm_usable()
        previous = None
        if use_alarm:

            def on_alarm(signum, frame):
                # only while a cell runs: an alarm that fires as it is being disarmed
                # must not escape into the caller
                if self._armed:
                    raise CellTimeout

            previous = signal.signal(signal.SIGALRM, on_alarm)
        # unless the program freezes objects itself, the heap as it is after each task's
        # preparation (modules, compiled code) stays out of the collector's full passes
        # while cells run, and goes back at the end
        self._freeze = gc.get_freeze_count() == 0
        try:
            while True:
                task = self._pull()
                if task is None:
                    break
                yield from self._run(task, use_alarm)
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            if self._freeze:
                gc.unfreeze()

    def _run(self, task: GroupTask, use_alarm: bool):
        progress = _Progress(task)
        if self._prepare is not None:
            self._prepare(task)  # before the alarm: compiling is not the task's time
        if self._freeze:
            gc.freeze()
        events = stream_group(self._fn, task)
        budget = None
        while True:
            try:
                if use_alarm and budget is not None:
                    self._armed = True
                    signal.setitimer(signal.ITIMER_REAL, budget)
                event = next(events)
            except StopIteration:
                break
            except CellTimeout:
                self._armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                events.close()
                if not progress.done:
                    yield progress.cell(progress.next), _timeout_row(self._timeout, progress)
                    progress.next += 1
                rest = progress.rest()
                if rest is not None:
                    self._queue.appendleft(rest)
                return
            finally:
                self._armed = False
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            kind = event[0]
            if kind == "start":
                progress.mode = event[1]
                n = len(task.cells)
                budget = (
                    self._timeout * (n if progress.mode == "batch" else 1) if use_alarm else None
                )
            elif kind == "row":
                yield progress.cell(event[1]), event[2]
                progress.next = event[1] + 1
                if use_alarm:
                    budget = self._timeout if progress.mode == "stream" else budget
            elif kind == "raise":
                yield from _on_raise(progress, event)
            elif kind == "end":
                yield from _finish(progress, self._queue)
                return
        yield from _finish(progress, self._queue)


def _timeout_row(timeout: float | None, progress: _Progress) -> dict[str, Any]:
    what = "cell" if progress.mode == "stream" else "group (its function returns a list)"
    return _status_row(
        "timeout",
        f"{what} ran past the timeout of {timeout:g} s and was stopped",
        worker=None,
    )


def _raise_row(event: tuple) -> dict[str, Any]:
    _, _, error, tb = event
    return _status_row("error", error, traceback=tb, worker=_worker_name())


def _on_raise(progress: _Progress, event: tuple) -> Iterator[Output]:
    """The group function raised: an error row for the cell it was computing.

    A streaming function is called again for the remaining cells (see :func:`_finish`).  A
    batch function returns nothing before it ends, so the exception cannot be pinned to a
    cell: every cell it had not returned gets the error.
    """
    row = _raise_row(event)
    if progress.mode == "batch":
        while not progress.done:
            yield progress.cell(progress.next), dict(row)
            progress.next += 1
        return
    yield progress.cell(event[1]), row
    progress.next = event[1] + 1
    progress.raised = True


def _finish(progress: _Progress, queue: collections.deque) -> Iterator[Output]:
    """After a task's last event: retry the rest after an exception, else flag missing rows."""
    if progress.done:
        return
    if progress.raised:
        queue.appendleft(progress.rest())
        return
    while not progress.done:
        yield (
            progress.cell(progress.next),
            _status_row("error", "the group function returned no row for this cell"),
        )
        progress.next += 1


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
        conn.send(("fatal", _error_text(exc), traceback.format_exc(limit=20)))
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


@dataclass
class _Worker:
    proc: Any
    conn: Any
    progress: _Progress | None = None
    deadline: float | None = None
    fatal: tuple | None = None


THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


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

    def start(self, group_fn, timeout):
        resolve_group_fn(group_fn)  # fail here, not in every worker, if it cannot be imported
        self._group_fn = group_fn
        self._timeout = timeout
        self._limit_worker_threads()
        if self._ctx.get_start_method() == "forkserver":
            preload = ["simbench.sweep.executors"]
            if isinstance(group_fn, str):
                preload.append(group_fn.partition(":")[0])
            self._ctx.set_forkserver_preload(preload)

    def submit(self, task):
        self._queue.append(task)

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
        return worker

    def _retire(self, worker: _Worker, kill: bool) -> None:
        if kill and worker.proc.is_alive():
            worker.proc.kill()
        worker.proc.join(timeout=5)
        worker.conn.close()
        if worker in self._workers:
            self._workers.remove(worker)

    def _dispatch(self) -> None:
        idle = [w for w in self._workers if w.progress is None and w.fatal is None]
        while idle or len(self._workers) < self.jobs:
            task = self._pull()
            if task is None:
                break
            worker = idle.pop() if idle else self._spawn()
            try:
                worker.conn.send(task)
            except (BrokenPipeError, OSError):
                # died while idle: put the task back and replace the worker
                self._queue.appendleft(task)
                self._retire(worker, kill=True)
                continue
            worker.progress = _Progress(task)
            worker.deadline = None  # the clock starts with the worker's "start" event

    def _budget(self, progress: _Progress) -> float | None:
        if self._timeout is None:
            return None
        return self._timeout * (len(progress.task.cells) if progress.mode == "batch" else 1)

    def _handle(self, worker: _Worker, message: tuple) -> Iterator[Output]:
        kind = message[0]
        progress = worker.progress
        if kind == "fatal":
            worker.fatal = message
            if progress is not None:
                while not progress.done:
                    yield (
                        progress.cell(progress.next),
                        _status_row(
                            "error", f"worker could not start: {message[1]}", traceback=message[2]
                        ),
                    )
                    progress.next += 1
                worker.progress = None
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
            worker.progress = None
            worker.deadline = None

    def _drain(self, worker: _Worker) -> tuple[list[Output], bool]:
        """Read every message waiting from ``worker``; report whether its pipe is closed."""
        out: list[Output] = []
        try:
            while worker.conn.poll():
                out.extend(self._handle(worker, worker.conn.recv()))
        except (EOFError, OSError):
            return out, True
        return out, False

    def _lost(self, worker: _Worker, status: str, error: str) -> Iterator[Output]:
        """``worker`` is gone: its current cell gets a row, the rest of its task is retried."""
        progress = worker.progress
        if progress is not None and not progress.done:
            yield progress.cell(progress.next), _status_row(status, error, worker=None)
            progress.next += 1
            rest = progress.rest()
            if rest is not None:
                self._queue.appendleft(rest)
        worker.progress = None

    def results(self):
        assert self._group_fn is not None, "start() first"
        while self._has_tasks() or any(w.progress is not None for w in self._workers):
            self._dispatch()
            now = time.monotonic()
            deadlines = [w.deadline for w in self._workers if w.deadline is not None]
            wait_for = min([_TICK, *(max(0.0, d - now) for d in deadlines)])
            handles = [w.conn for w in self._workers] + [w.proc.sentinel for w in self._workers]
            ready = set(wait(handles, timeout=wait_for)) if handles else set()
            produced = False
            for worker in list(self._workers):
                if worker.conn in ready or worker.proc.sentinel in ready:
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


def make_executor(backend: str | None, jobs: int = 1, address: str | None = None) -> Executor:
    """The executor for a ``--backend`` name (``None``: serial for one job, else local)."""
    if backend is None:
        backend = "serial" if jobs == 1 and address is None else ("dask" if address else "local")
    if backend == "serial":
        return SerialExecutor()
    if backend == "local":
        return LocalExecutor(jobs=jobs)
    if backend == "dask":
        from .cluster import DaskExecutor

        return DaskExecutor(address=address, jobs=jobs)
    from .._registry import unknown_name_message

    raise ValidationError(unknown_name_message("backend", backend, list(BACKENDS)))
