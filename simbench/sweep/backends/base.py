"""What every backend shares: the executor interface, group functions, and how hangs,
crashes and errors of a group become rows.

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

A new backend implements :meth:`Executor.start`, :meth:`Executor.submit`,
:meth:`Executor.results` and :meth:`Executor.shutdown`; nothing else in simbench changes.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import os
import signal
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import ValidationError
from ..cells import GroupTask
from ..status import error_text

Output = tuple[str, dict[str, Any]] | None
_TICK = 0.25  # seconds between idle ticks yielded to the caller


# --------------------------------------------------------------------------- group functions


DEFAULT_GROUP_FN = "simbench.sweep.worker:run_group"
GROUP_FN_ENV = "SIMBENCH_GROUP_FN"


def default_group_fn() -> str:
    """``$SIMBENCH_GROUP_FN`` if set (a testing hook), else the real worker."""
    return os.environ.get(GROUP_FN_ENV) or DEFAULT_GROUP_FN


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


def stream_group(fn: Callable, task: GroupTask) -> Iterator[tuple]:
    """Run ``fn(task)`` and describe what happens as events (worker side).

    Events: ``("start", mode)``, then ``("row", i, row)`` per cell, possibly one
    ``("raise", i, error, traceback)`` if the function raised while computing cell ``i``,
    and finally ``("end", rows)``.  Each row is stamped with ``worker``, ``started_at`` and
    ``cell_seconds`` (wall time between the previous row and this one).
    """
    from ..store import utcnow  # here: the local backend's start-up imports this module

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
        yield ("raise", index, error_text(exc), traceback.format_exc(limit=20))
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
    # whether the cells run in this process (then this process has no time to spare)
    in_process = False

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

    def prestart(self, group_fn: str | Callable, sweep: str | None = None) -> None:
        """Start now, if the backend can, what its workers need before they run anything
        (the local backend's fork server), while the caller prepares the run; nothing by
        default.  ``sweep``: the path of the sweep file the run will read, when there is
        one, for the group function's ``preload_sweep``.  Never raises: :meth:`start`
        reports what is wrong."""
        return None

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
