"""The runner: from a validated sweep to stored rows, resumably.

Flow of one run
---------------
1. :func:`~simbench.sweep.cells.expand_cells` lists the cells (``--quick``: a subset).
2. The store says which cells are already stored; those are skipped (with
   ``rerun_failed``, stored ``error``/``timeout`` cells run again).
3. Cells whose configuration does not apply to their scenario are stored at once as
   ``skipped`` rows with the reason; the others are grouped by (scenario, replicate) into
   :class:`~simbench.sweep.cells.GroupTask` objects and handed to an executor.
4. Each row that comes back gets the columns the runner owns (identity, seeds, ``s_*``,
   ``c_*``, ``run_id``), is checked, buffered and written in atomic Parquet parts.
5. At the end the parts are compacted, the manifest records the run, and the exit code is
   0 (every cell of the run stored and none failed) or 3.

The group-function interface
----------------------------
The numerical work is done by a *group function*, by default
``simbench.sweep.worker:run_group``::

    def run_group(task: GroupTask) -> Iterator[dict]:   # a generator (preferred)
        data = simulate(Scenario.from_dict(task.scenario), seed=task.data_seed)
        glm = fit_glm(...)                                  # once per group
        for cell in task.cells:                             # in order
            config = NetworkConfig.from_dict(cell.config)
            ... train with seed=cell.init_seed, compute metrics ...
            yield {"status": "ok", "error": None, "coef_z_mle": ..., "beta_hat": [...], ...}

``task`` fields: ``scenario`` (canonical dict), ``scenario_id``, ``replicate``,
``data_seed``, ``cells`` (tuple of :class:`~simbench.sweep.cells.CellTask` with
``cell_id``, ``config`` (canonical dict), ``config_id``, ``init_seed``),
``record_history``, ``sweep_seed``.

Rows, one per cell, in the order of ``task.cells``:

* ``status`` (required): ``"ok"``, ``"diverged"`` (non-finite loss), ``"error"``;
  ``"skipped"`` if the function itself finds the cell not applicable.  Anything else is
  stored as ``error``.  ``converged`` is a separate bool column.
* ``error``: ``None`` or a short message for non-ok statuses.
* metric and timing columns (see the contract): floats, ints, bools, strings, ``None`` or
  lists/1-D arrays of floats (stored as Parquet ``list<double>``).
* the function must not fill identity columns (``cell_id``, ``scenario_id``,
  ``config_id``, ``replicate``, seeds, ``sweep_name``, ``sweep_seed``, ``s_*``, ``c_*``,
  ``run_id``): the runner overwrites them.  ``worker``, ``started_at`` and
  ``cell_seconds`` are filled in if absent.

The function should catch the exceptions of one cell and yield an ``error`` row for it; if
it raises anyway, the runner records that cell as ``error`` (with the traceback in the
``traceback`` column) and calls the function again with the remaining cells (so the data
are simulated again: correct, only slower).  A cell that hangs past the timeout or kills its
process is handled the same way by the executor.  A generator lets the executor store each
row as soon as it exists and time each cell; a function returning a list works but its
rows are lost if the group does not finish.

Optionally ``run_group.prepare(task)`` (an attribute of the function) is called before each
task, outside its timeout, e.g. to compile what the task's cells need; a function without
it may offer ``run_group.warmup()``, called once per worker process before any task and
outside any timeout.

Group functions are named by a ``"package.module:function"`` string (so they pickle into
worker processes) or passed as a picklable module-level callable.

Testing hooks (environment variables, not part of the CLI)
-----------------------------------------------------------
``SIMBENCH_GROUP_FN``
    Group function used when none is given (tests run the CLI with fake ones).
``SIMBENCH_FLUSH_ROWS`` / ``SIMBENCH_FLUSH_SECONDS``
    Write a part every this many rows (default 1024) / seconds (default 2).  The clock
    bounds what a killed run loses; the row count only caps the buffer, high enough that
    a fast sweep writes a few parts rather than one per few dozen cells (each part costs a
    file, two fsyncs and its share of the final compaction).
``SIMBENCH_START_METHOD``
    multiprocessing start method of the local executor (default ``forkserver``).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cells import Cell, CellTask, GroupTask, expand_cells, group_tasks, identity_columns
from .executors import Executor, make_executor
from .progress import Progress
from .spec import SweepSpec
from .store import FAILED_STATUSES, STATUSES, ResultStore, new_run_id, provenance, utcnow

__all__ = [
    "DEFAULT_GROUP_FN",
    "CellTask",
    "GroupTask",
    "Plan",
    "RunReport",
    "Runner",
    "default_group_fn",
]

DEFAULT_GROUP_FN = "simbench.sweep.worker:run_group"
GROUP_FN_ENV = "SIMBENCH_GROUP_FN"

# exit codes of DESIGN.md
EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_FAILED = 0, 1, 2, 3


def default_group_fn() -> str:
    """``$SIMBENCH_GROUP_FN`` if set (a testing hook), else the real worker."""
    return os.environ.get(GROUP_FN_ENV) or DEFAULT_GROUP_FN


def _env_number(name: str, default: float, cast=float):
    value = os.environ.get(name)
    return cast(value) if value else default


@dataclass
class Plan:
    """What a run would do; computed without writing anything.

    Attributes
    ----------
    cells : list of Cell
        Cells of this run (all of the sweep, or the ``--quick`` subset).
    stored : dict
        ``cell_id -> status`` already in the results directory (for these cells).
    to_run : list of Cell
        Cells to hand to the executor.
    to_skip : list of Cell
        Not-applicable cells not yet stored (written as ``skipped`` rows).
    groups : list of GroupTask
    """

    cells: list[Cell]
    stored: dict[str, str]
    to_run: list[Cell]
    to_skip: list[Cell]
    groups: list[GroupTask]

    @property
    def n_skipped_total(self) -> int:
        return sum(c.skip_reason is not None for c in self.cells)

    def stored_counts(self) -> Counter:
        return Counter(self.stored.values())


@dataclass
class RunReport:
    """The outcome of :meth:`Runner.run`."""

    out: Path
    run_id: str
    n_cells: int
    n_cached: int
    counts: Counter = field(default_factory=Counter)  # rows written by this run
    totals: Counter = field(default_factory=Counter)  # statuses of the run's cells, stored
    missing: int = 0
    stopped: bool = False
    elapsed: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.totals.get(s, 0) for s in FAILED_STATUSES)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if (self.failed or self.missing) else EXIT_OK


class Runner:
    """Runs the cells of a sweep into a results directory.

    Parameters
    ----------
    spec : SweepSpec
    out : str or Path
        Results directory (created on the first run).
    executor : Executor, optional
        Default: :class:`~simbench.sweep.executors.SerialExecutor`.
    group_fn : str or callable, optional
        Default: :func:`default_group_fn`.
    quick : bool
        Run one replicate of the smallest ``n`` of every scenario block.
    timeout : float, optional
        Seconds per cell; default: the sweep's ``timeout``.
    fail_fast : bool
        Stop at the first ``error``/``timeout`` row.
    rerun_failed : bool
        Run stored ``error``/``timeout`` cells again.
    progress : bool or Progress
        Draw a progress line on stderr.
    """

    def __init__(
        self,
        spec: SweepSpec,
        out: str | Path,
        executor: Executor | None = None,
        group_fn: str | Callable | None = None,
        quick: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
        rerun_failed: bool = False,
        progress: bool | Progress = False,
    ) -> None:
        self.spec = spec
        self.store = ResultStore(out)
        self.executor = executor if executor is not None else make_executor("serial")
        self.group_fn = group_fn if group_fn is not None else default_group_fn()
        self.quick = quick
        self.timeout = timeout if timeout is not None else spec.timeout
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            from ..errors import ValidationError

            raise ValidationError(f"--timeout must be a positive number of seconds, got {timeout}")
        self.fail_fast = fail_fast
        self.rerun_failed = rerun_failed
        self.progress = progress
        self._cells: list[Cell] | None = None
        self.flush_rows = int(_env_number("SIMBENCH_FLUSH_ROWS", 1024, int))
        self.flush_seconds = float(_env_number("SIMBENCH_FLUSH_SECONDS", 2.0))

    # -- planning (writes nothing)
    def plan(self) -> Plan:
        """Cells, cache state and groups of this run; checks the directory is compatible."""
        self.store.check_compatible(self.spec)
        if self._cells is None:  # hashing every cell's identity and seeds: once per runner
            self._cells = expand_cells(self.spec, quick=self.quick)
        cells = list(self._cells)
        wanted = {c.cell_id for c in cells}
        stored = {k: v for k, v in self.store.stored_statuses().items() if k in wanted}
        to_run, to_skip = [], []
        for cell in cells:
            status = stored.get(cell.cell_id)
            if status is not None and not (self.rerun_failed and status in FAILED_STATUSES):
                continue
            (to_skip if cell.skip_reason is not None else to_run).append(cell)
        return Plan(cells, stored, to_run, to_skip, group_tasks(self.spec, to_run))

    # -- rows
    def finalize(self, cell: Cell, row: dict[str, Any], run_id: str) -> dict[str, Any]:
        """The stored row: identity columns first, then the status, then the rest."""
        out = identity_columns(self.spec, cell)
        out["run_id"] = run_id
        status = row.get("status")
        error = row.get("error")
        if status not in STATUSES:
            error = (
                f"the group function returned status {status!r}; accepted: {', '.join(STATUSES)}"
                + (f" (error: {error})" if error else "")
            )
            status = "error"
        out["status"] = status
        out["error"] = None if error is None else str(error)
        for k, v in row.items():
            if k not in out and not k.startswith(("s_", "c_")):
                out[k] = v
        return out

    def skipped_row(self, cell: Cell, run_id: str) -> dict[str, Any]:
        return self.finalize(cell, {"status": "skipped", "error": cell.skip_reason}, run_id)

    # -- running
    def run(self) -> RunReport:
        """Run the plan; rows are stored as they come.  Returns a :class:`RunReport`."""
        t0 = time.monotonic()
        plan = self.plan()
        run_id = new_run_id()
        report = RunReport(
            out=self.store.root,
            run_id=run_id,
            n_cells=len(plan.cells),
            n_cached=len(plan.cells) - len(plan.to_run) - len(plan.to_skip),
        )
        record = {
            "run_id": run_id,
            "started_at": utcnow(),
            "finished_at": None,
            "outcome": "running",
            "options": {
                "backend": self.executor.name,
                "jobs": getattr(self.executor, "jobs", 1),
                "quick": self.quick,
                "timeout": self.timeout,
                "fail_fast": self.fail_fast,
                "rerun_failed": self.rerun_failed,
                "group_fn": self.group_fn
                if isinstance(self.group_fn, str)
                else repr(self.group_fn),
            },
            "provenance": provenance(),
            "cells_planned": len(plan.to_run) + len(plan.to_skip),
        }
        progress = self.progress
        if not isinstance(progress, Progress):
            progress = Progress(len(plan.to_run) + len(plan.to_skip), enabled=bool(progress))
        by_id = {c.cell_id: c for c in plan.to_run}
        outcome = "interrupted"
        self.store.begin_run(self.spec, record)
        writer = self.store.writer(run_id, self.flush_rows, self.flush_seconds)
        started = False
        results = None
        try:
            for cell in plan.to_skip:
                writer.add(self.skipped_row(cell, run_id))
                report.counts["skipped"] += 1
                progress.update("skipped", computed=False)
            if plan.groups:
                self.executor.start(self.group_fn, self.timeout)
                started = True
                for task in plan.groups:
                    self.executor.submit(task)
                results = self.executor.results()
                for item in results:
                    if item is None:
                        writer.tick()
                        progress.draw()
                        continue
                    cell_id, row = item
                    cell = by_id.pop(cell_id, None)
                    if cell is None:
                        continue  # a second row for a cell: the first one stands
                    full = self.finalize(cell, row, run_id)
                    writer.add(full)
                    report.counts[full["status"]] += 1
                    progress.update(full["status"])
                    if self.fail_fast and full["status"] in FAILED_STATUSES:
                        report.stopped = True
                        break
            outcome = "stopped" if report.stopped else "finished"
        finally:
            try:
                if results is not None:
                    results.close()  # restores what the executor changed (e.g. SIGALRM)
                if started:
                    self.executor.shutdown(cancel=outcome != "finished")
                writer.flush()
                if outcome == "finished":
                    self.store.compact(run_id)
                stored = self.store.stored_statuses()
                totals = Counter(stored[c.cell_id] for c in plan.cells if c.cell_id in stored)
                report.totals = totals
                report.missing = len(plan.cells) - sum(totals.values())
                report.elapsed = time.monotonic() - t0
                self.store.end_run(
                    run_id,
                    finished_at=utcnow(),
                    outcome=outcome,
                    elapsed_seconds=report.elapsed,
                    counts=dict(report.counts),
                    exit_code=report.exit_code,
                )
            finally:
                self.store.unlock()
                progress.close()
        return report
