"""The serial backend: groups run in the calling process.

A timeout is enforced with ``SIGALRM`` (main thread on POSIX only), which interrupts Python
code but not a compiled kernel holding the CPU; a worker crash ends the whole run
(re-running resumes it).  Best for debugging.
"""

from __future__ import annotations

import collections
import gc
import signal
from collections.abc import Callable

from ..cells import GroupTask
from .base import (
    CellTimeout,
    Executor,
    _finish,
    _on_raise,
    _Progress,
    _timeout_row,
    preparation,
    resolve_group_fn,
    stream_group,
)

# --------------------------------------------------------------------------- serial


class SerialExecutor(Executor):
    """Run groups one after another in this process (see the module docstring)."""

    name = "serial"
    in_process = True

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
