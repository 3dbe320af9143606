"""The runner: from a validated sweep to stored rows, resumably.

Flow of one run
---------------
1. The results directory is checked (a different sweep, parts that are not cells of this
   one: exit 2, nothing written) and the executor started (an unreachable cluster: exit 2,
   nothing written); then the directory is locked and tidied (leftover temporary files
   removed, corrupted parts quarantined, a damaged manifest rebuilt).
2. The store says which cells are already stored; those are skipped (with
   ``rerun_failed``, stored ``error``/``timeout`` cells run again, and so do failed cells
   of a quarantined part).
3. Cells are generated lazily, group by group (:func:`~simbench.sweep.cells.iter_groups`),
   so memory does not grow with the sweep: cells whose configuration does not apply to
   their scenario are stored as ``skipped`` rows with the reason; the others of a
   (scenario, replicate) form a :class:`~simbench.sweep.cells.GroupTask`, pulled by the
   executor when it has room for it.
4. Each row that comes back gets the columns the runner owns (identity, seeds, ``s_*``,
   ``c_*``, ``run_id``), is checked, buffered and written in atomic Parquet parts (a
   background thread writes a row within ``SIMBENCH_FLUSH_SECONDS`` of its arrival).
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
outside any timeout.  The local backend forks its workers from one process, which first
imports the modules named in ``run_group.preload`` (a tuple of module names) and, for a
run of a sweep file, calls ``run_group.preload_sweep(path)``: what they load, every worker
starts with.

Group functions are named by a ``"package.module:function"`` string (so they pickle into
worker processes) or passed as a picklable module-level callable.

Testing hooks (environment variables, not part of the CLI)
-----------------------------------------------------------
``SIMBENCH_GROUP_FN``
    Group function used when none is given (tests run the CLI with fake ones).
``SIMBENCH_FLUSH_ROWS`` / ``SIMBENCH_FLUSH_SECONDS``
    Write a part every this many rows (default 1024) / once the oldest buffered row is
    this many seconds old (default 0.5).  The clock bounds what a killed run loses; the
    row count only caps the buffer, high enough that a fast sweep writes a few parts a
    second rather than one per few dozen cells (each part costs a file, two fsyncs and
    its share of the final compaction).
``SIMBENCH_START_METHOD``
    multiprocessing start method of the local executor (default ``forkserver``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .backends import Executor, make_executor
from .backends.base import DEFAULT_GROUP_FN, default_group_fn
from .cells import Cell, CellIds, CellTask, GroupTask, count_cells, identity_columns, task_of
from .cells import iter_group_ids as _iter_group_ids
from .limits import TIMEOUT_RANGE, valid_timeout
from .progress import Progress
from .spec import SweepSpec
from .status import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    FAILED_STATUSES,
    RERUN_STATUSES,
    STATUSES,
    exit_code,
)
from .store import DiskError, ResultStore, StoredIndex, new_run_id, provenance, utcnow

__all__ = [
    "DEFAULT_GROUP_FN",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "CellTask",
    "GroupTask",
    "Plan",
    "RunReport",
    "Runner",
    "default_group_fn",
]

DEFAULT_FLUSH_ROWS = 1024
DEFAULT_FLUSH_SECONDS = 0.5


def _env_number(name: str, default: float, cast=float):
    value = os.environ.get(name)
    return cast(value) if value else default


def check_timeout(timeout: float | None, what: str = "--timeout") -> float | None:
    """``timeout`` as a float, or :class:`ValidationError` naming the accepted range."""
    if timeout is None:
        return None
    if not valid_timeout(timeout):
        raise ValidationError(f"{what} must be {TIMEOUT_RANGE}, got {timeout!r}")
    return float(timeout)


@dataclass
class Plan:
    """What a run would do; computed without writing anything (and without listing cells).

    Attributes
    ----------
    n_cells : int
        Cells of this run (all of the sweep, or the ``--quick`` subset).
    stored : Counter
        Statuses of this run's cells already in the results directory.
    n_to_run, n_to_skip : int
        Cells to hand to the executor; not-applicable cells not yet stored (written as
        ``skipped`` rows).
    n_groups : int
        Groups (scenario, replicate) with a cell to run.
    n_skipped_total : int
        Cells of this run whose configuration does not apply to their scenario.
    corrupt : list of (Path, str)
        Corrupted parts (not counted as stored; ``run`` quarantines them).
    """

    n_cells: int
    stored: Counter
    n_to_run: int
    n_to_skip: int
    n_groups: int
    n_skipped_total: int
    corrupt: list = field(default_factory=list)

    @property
    def n_stored(self) -> int:
        return sum(self.stored.values())

    def stored_counts(self) -> Counter:
        return Counter(self.stored)


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
    quarantined: list = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.totals.get(s, 0) for s in FAILED_STATUSES)

    @property
    def exit_code(self) -> int:
        return exit_code(self.failed, self.missing)


class Runner:
    """Runs the cells of a sweep into a results directory.

    Parameters
    ----------
    spec : SweepSpec
    out : str or Path
        Results directory (created on the first run).
    executor : Executor, optional
        Default: :class:`~simbench.sweep.backends.serial.SerialExecutor`.
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
        self.timeout = check_timeout(timeout if timeout is not None else spec.timeout)
        self.fail_fast = fail_fast
        self.rerun_failed = rerun_failed
        self.progress = progress
        self.flush_rows = int(_env_number("SIMBENCH_FLUSH_ROWS", DEFAULT_FLUSH_ROWS, int))
        self.flush_seconds = float(_env_number("SIMBENCH_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS))

    # -- planning (writes nothing)
    def _wanted(self, cell_id: str, status: str | None, force: set[str]) -> bool:
        if status is None:
            return True
        if status in RERUN_STATUSES and (self.rerun_failed or cell_id in force):
            return True
        return False

    def _scan(self, index: StoredIndex, force: set[str]) -> Iterator[tuple[int, int, list]]:
        """Per group: (scenario index, replicate, [(config index, cell id, stored status)])."""
        empty = len(index) == 0
        for si, r, ids in _iter_group_ids(self.spec, self.quick):
            statuses = [None] * len(ids) if empty else index.statuses_of(ids)
            yield si, r, list(zip(range(len(ids)), ids, statuses, strict=True))

    def _make_plan(self, index: StoredIndex, force: set[str], corrupt=()) -> Plan:
        spec = self.spec
        n_cells = count_cells(spec, self.quick)
        skip_pairs = spec.skip_reasons
        n_rep = 1 if self.quick else spec.replicates
        scenarios = [s for s in spec.scenarios if s.in_quick or not self.quick]
        n_skipped_total = sum(1 for (si, _ci) in skip_pairs if spec.scenarios[si] in scenarios)
        n_skipped_total *= n_rep
        if len(index) == 0:  # nothing stored: every count is arithmetic
            runnable_scenarios = sum(
                1
                for s in scenarios
                if any((s.index, c.index) not in skip_pairs for c in spec.configs)
            )
            return Plan(
                n_cells=n_cells,
                stored=Counter(),
                n_to_run=n_cells - n_skipped_total,
                n_to_skip=n_skipped_total,
                n_groups=runnable_scenarios * n_rep,
                n_skipped_total=n_skipped_total,
                corrupt=list(corrupt),
            )
        stored: Counter = Counter()
        to_run = to_skip = groups = 0
        for si, _r, members in self._scan(index, force):
            runs_here = False
            for ci, cid, status in members:
                if status is not None:
                    stored[status] += 1
                if not self._wanted(cid, status, force):
                    continue
                if (si, ci) in skip_pairs:
                    to_skip += 1
                else:
                    to_run += 1
                    runs_here = True
            groups += runs_here
        return Plan(n_cells, stored, to_run, to_skip, groups, n_skipped_total, list(corrupt))

    def plan(self) -> Plan:
        """Cells, cache state and groups of this run; checks the directory is compatible.

        Writes nothing: corrupted parts are left where they are (and listed), their rows
        counted as not stored.
        """
        self.store.check_compatible(self.spec)
        read = self.store.read_parts(["cell_id", "status"], on_corrupt="collect")
        return self._make_plan(StoredIndex.from_tables(read.tables), set(), read.corrupt)

    def cell_ids(self) -> Iterator[str]:
        """The ids of this run's cells, in sweep order (lazily)."""
        for _si, _r, ids in _iter_group_ids(self.spec, self.quick):
            yield from ids

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

    def _tasks(
        self,
        index: StoredIndex,
        force: set[str],
        in_flight: dict[str, Cell],
        on_skipped: Callable[[Cell], None],
    ) -> Iterator[GroupTask]:
        """Group tasks to run, lazily; not-applicable cells go to ``on_skipped`` on the way.

        The cells of each task yielded are registered in ``in_flight`` until their rows
        come back, so the runner holds only the cells the executor has taken.
        """
        ids = CellIds(self.spec)
        skip_pairs = self.spec.skip_reasons
        for si, r, members in self._scan(index, force):
            runnable = []
            dseed = None
            for ci, cid, status in members:
                if not self._wanted(cid, status, force):
                    continue
                if dseed is None:
                    from .cells import data_seed

                    dseed = data_seed(self.spec.seed, self.spec.scenarios[si].digest, r)
                cell = ids.cell(si, ci, r, dseed)
                if (si, ci) in skip_pairs:
                    on_skipped(cell)
                else:
                    runnable.append(cell)
            if runnable:
                for cell in runnable:
                    in_flight[cell.cell_id] = cell
                yield task_of(self.spec, runnable)

    # -- running
    def run(self) -> RunReport:
        """Run the plan; rows are stored as they come.  Returns a :class:`RunReport`."""
        t0 = time.monotonic()
        spec = self.spec
        # checks that write nothing: the directory, then whether anything will run
        preview = self.plan()
        run_id = new_run_id()
        started = False
        if preview.n_to_run or preview.corrupt:
            # an unreachable cluster or a group function that cannot load: bad input,
            # before anything is written
            self.executor.start(self.group_fn, self.timeout)
            started = True
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
        }
        try:
            self.store.begin_run(spec, record)
        except BaseException:
            if started:
                self.executor.shutdown(cancel=True)
            raise
        outcome = "interrupted"
        writer = None
        progress = None
        results = None
        pending: BaseException | None = None
        report = RunReport(out=self.store.root, run_id=run_id, n_cells=preview.n_cells, n_cached=0)
        try:
            force = set(self.store.quarantined_cells)
            index = self.store.stored_index(on_corrupt="collect", warn=False)
            plan = self._make_plan(index, force)
            report.n_cells = plan.n_cells
            report.n_cached = plan.n_cells - plan.n_to_run - plan.n_to_skip
            report.quarantined = list(self.store.quarantined)
            progress = self.progress
            if not isinstance(progress, Progress):
                progress = Progress(plan.n_to_run + plan.n_to_skip, enabled=bool(progress))
            # while cells run in other processes, this one mostly waits: the writer's thread
            # prepares its first write meanwhile (in this process's cells it would compete)
            writer = self.store.writer(
                run_id,
                self.flush_rows,
                self.flush_seconds,
                background=True,
                warm=not self.executor.in_process,
            )
            in_flight: dict[str, Cell] = {}

            def on_skipped(cell: Cell) -> None:
                writer.add(self.skipped_row(cell, run_id))
                report.counts["skipped"] += 1
                progress.update("skipped", computed=False)

            tasks = self._tasks(index, force, in_flight, on_skipped)
            if plan.n_to_run:
                if not started:
                    self.executor.start(self.group_fn, self.timeout)
                    started = True
                self.executor.feed(tasks)
                results = self.executor.results()
                for item in results:
                    if item is None:
                        writer.tick()
                        progress.draw()
                        continue
                    cell_id, row = item
                    cell = in_flight.pop(cell_id, None)
                    if cell is None:
                        continue  # a second row for a cell: the first one stands
                    full = self.finalize(cell, row, run_id)
                    writer.add(full)
                    report.counts[full["status"]] += 1
                    progress.update(full["status"])
                    if self.fail_fast and full["status"] in FAILED_STATUSES:
                        report.stopped = True
                        break
            if not report.stopped:
                for _ in tasks:  # not-applicable cells after the last runnable group
                    pass
            outcome = "stopped" if report.stopped else "finished"
        except BaseException as exc:
            pending = exc
            raise
        finally:
            problems = self._finish(
                report, writer, results, started, outcome, run_id, t0, progress, pending
            )
            if problems and (pending is None or isinstance(pending, DiskError)):
                raise problems[0]
        return report

    def _finish(self, report, writer, results, started, outcome, run_id, t0, progress, pending):
        """Everything after the loop, each step attempted whatever the others did."""
        problems: list[BaseException] = []

        def attempt(step: Callable[[], Any]) -> None:
            try:
                step()
            except (DiskError, ValidationError, OSError) as exc:
                problems.append(exc)

        try:
            if results is not None:
                with contextlib.suppress(Exception):
                    results.close()  # restores what the executor changed (e.g. SIGALRM)
            if started:
                self.executor.shutdown(cancel=outcome != "finished")
            if writer is not None:
                writer.close()
                try:
                    writer.flush()
                except (DiskError, ValidationError, OSError) as exc:
                    problems.append(
                        DiskError(
                            f"{exc}; {writer.pending} finished cell(s) could not be stored "
                            "and will be computed again by the next run"
                        )
                    )
            if outcome == "finished" and not problems and pending is None:
                attempt(lambda: self.store.compact(run_id))

            def totals() -> None:
                index = self.store.stored_index(on_corrupt="collect", warn=False)
                counts: Counter = Counter()
                if len(index):
                    batch: list[str] = []
                    for cid in self.cell_ids():
                        batch.append(cid)
                        if len(batch) >= 65536:
                            counts.update(s for s in index.statuses_of(batch) if s is not None)
                            batch = []
                    counts.update(s for s in index.statuses_of(batch) if s is not None)
                report.totals = counts
                report.missing = report.n_cells - sum(counts.values())

            attempt(totals)
            report.elapsed = time.monotonic() - t0
            attempt(
                lambda: self.store.end_run(
                    run_id,
                    finished_at=utcnow(),
                    outcome=outcome,
                    elapsed_seconds=report.elapsed,
                    cells_planned=report.n_cells - report.n_cached,
                    counts=dict(report.counts),
                    exit_code=report.exit_code,
                )
            )
        finally:
            self.store.unlock()
            if progress is not None:
                progress.close()
        return problems
