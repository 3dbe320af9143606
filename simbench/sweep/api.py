"""The Python entry points of sweeps: :func:`run`, :func:`validate`, :func:`status`.

``simbench.run`` and ``simbench.load`` are re-exported at the package level::

    import simbench
    df = simbench.run("scenarios/canonical.toml", jobs=2)
    df = simbench.load("results/canonical")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import make_executor
from .backends.base import default_group_fn
from .cells import iter_group_ids
from .spec import SweepError, SweepSpec, load_sweep, parse_sweep
from .status import FAILED_STATUSES, STATUSES, exit_code

# the runner and the store (NumPy, and with them much of simbench) are imported where they
# are used: make_runner starts the workers' process first, while this process imports them
if TYPE_CHECKING:
    from .runner import Runner, RunReport

__all__ = [
    "StatusReport",
    "as_spec",
    "default_out",
    "make_runner",
    "run",
    "run_sweep",
    "status",
    "validate",
]


def as_spec(sweep: str | Path | Mapping[str, Any] | SweepSpec) -> SweepSpec:
    """A :class:`SweepSpec` from a path, a parsed mapping or a spec (validated)."""
    if isinstance(sweep, SweepSpec):
        return sweep
    if isinstance(sweep, Mapping):
        return parse_sweep(sweep)
    if isinstance(sweep, (str, Path)):
        return load_sweep(sweep)
    raise SweepError(f"a sweep is a path, a mapping or a SweepSpec, not {type(sweep).__name__}")


def validate(sweep: str | Path | Mapping[str, Any]) -> SweepSpec:
    """Parse and check a sweep; raise :class:`SweepError` with a helpful message if invalid."""
    return as_spec(sweep)


def default_out(spec: SweepSpec) -> Path:
    """``results/<sweep name>`` relative to the working directory."""
    return Path("results") / spec.name


def make_runner(
    sweep: str | Path | Mapping[str, Any] | SweepSpec,
    out: str | Path | None = None,
    jobs: int = 1,
    backend: str | None = None,
    address: str | None = None,
    quick: bool = False,
    timeout: float | None = None,
    fail_fast: bool = False,
    rerun_failed: bool = False,
    progress: bool = False,
    group_fn: str | Callable | None = None,
    prestart: bool = True,
) -> Runner:
    """The :class:`~simbench.sweep.runner.Runner` of a sweep, with the settings of
    :func:`run` (``simbench run`` builds it here too, then runs or plans it and prints).

    ``prestart``: start the workers' process now, so that it starts up while the sweep is
    read and checked, and, given a sweep file, loads what its tasks need (False for a
    runner that will only plan: ``--dry-run``)."""
    executor = make_executor(backend, jobs=jobs, address=address)
    if prestart:
        path = str(Path(sweep).resolve()) if isinstance(sweep, (str, Path)) else None
        executor.prestart(group_fn if group_fn is not None else default_group_fn(), sweep=path)
    from .runner import Runner

    spec = as_spec(sweep)
    return Runner(
        spec,
        Path(out) if out is not None else default_out(spec),
        executor=executor,
        group_fn=group_fn,
        quick=quick,
        timeout=timeout,
        fail_fast=fail_fast,
        rerun_failed=rerun_failed,
        progress=progress,
    )


def run_sweep(
    sweep: str | Path | Mapping[str, Any] | SweepSpec, out: str | Path | None = None, **settings
) -> RunReport:
    """Like :func:`run` (the same keyword settings), returning the
    :class:`~simbench.sweep.runner.RunReport`."""
    return make_runner(sweep, out, **settings).run()


def run(
    sweep_or_path: str | Path | Mapping[str, Any] | SweepSpec,
    out: str | Path | None = None,
    jobs: int = 1,
    backend: str | None = None,
    quick: bool = False,
    timeout: float | None = None,
    fail_fast: bool = False,
    rerun_failed: bool = False,
    progress: bool = False,
    group_fn: str | Callable | None = None,
    address: str | None = None,
):
    """Run a sweep (resuming what is stored) and return its results.

    Parameters
    ----------
    sweep_or_path : str, Path, mapping or SweepSpec
        A sweep file, its parsed TOML content, or a validated spec.
    out : str or Path, optional
        Results directory; default ``results/<sweep name>``.
    jobs : int
        Worker processes (``backend="local"``) or local Dask workers; 0 means one per CPU
        (as ``--jobs 0``).
    backend : {"serial", "local", "dask"} or None
        ``None``: dask with an ``address``, else serial for one job and local for more
        (:func:`simbench.sweep.backends.make_executor`, as on the command line).
    quick : bool
        One replicate of the smallest ``n`` of each scenario block.
    timeout : float, optional
        Seconds per cell before it is stopped and recorded as ``timeout``.
    fail_fast : bool
        Stop at the first failed cell.
    rerun_failed : bool
        Retry stored ``error`` / ``timeout`` cells.
    progress : bool
        Progress line on stderr.
    group_fn : str or callable, optional
        The group function (see :mod:`simbench.sweep.runner`); default the real worker.
    address : str, optional
        Dask scheduler address for ``backend="dask"``.

    Returns
    -------
    pandas.DataFrame
        One row per cell of this run (stored earlier or now), in sweep order, as
        :func:`simbench.load` returns them; ``df.attrs["manifest"]`` and
        ``df.attrs["exit_code"]`` describe the run.
    """
    report = run_sweep(
        sweep_or_path,
        out=out,
        jobs=jobs,
        backend=backend,
        address=address,
        quick=quick,
        timeout=timeout,
        fail_fast=fail_fast,
        rerun_failed=rerun_failed,
        progress=progress,
        group_fn=group_fn,
    )
    from .store import load

    df = load(report.out)
    spec = as_spec(sweep_or_path)
    manifest = df.attrs.get("manifest")
    if quick:  # the directory holds only this sweep's cells; a quick run wants a subset
        wanted = {c for _, _, ids in iter_group_ids(spec, quick=True) for c in ids}
        df = df[df["cell_id"].isin(wanted)]
    df = df.reset_index(drop=True)
    df.attrs["manifest"] = manifest
    df.attrs["exit_code"] = report.exit_code
    return df


@dataclass
class StatusReport:
    """Cells of a results directory: stored by status, and missing."""

    directory: Path
    sweep_name: str
    expected: int | None
    counts: Counter = field(default_factory=Counter)
    missing: int | None = None
    runs: int = 0
    note: str | None = None

    @property
    def done(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in FAILED_STATUSES)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(s, 0) for s in FAILED_STATUSES)

    @property
    def exit_code(self) -> int:
        """3 when any cell failed or is missing (or cannot be counted), else 0."""
        return exit_code(self.failed, 1 if self.missing is None else self.missing)

    def format(self) -> str:
        lines = [f"{self.directory}: sweep {self.sweep_name!r}, {self.runs} run(s)"]
        total = self.expected if self.expected is not None else "?"
        lines.append(f"  cells    {total}")
        lines.append(f"  done     {self.done}")
        lines.append(f"  failed   {self.failed}")
        lines.append(f"  missing  {self.missing if self.missing is not None else '?'}")
        lines.append("  by status: " + ", ".join(f"{s} {self.counts.get(s, 0)}" for s in STATUSES))
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


def status(directory: str | Path) -> StatusReport:
    """Count done / failed / missing cells of a results directory.

    "Done" cells are stored with a status other than ``error`` or ``timeout``; "missing"
    cells are cells of the sweep (all replicates) not stored at all.  A corrupted part
    raises :class:`~simbench.sweep.store.CorruptPartError` (its cells cannot be counted).
    """
    from .store import ResultStore, load_manifest

    directory = Path(directory)
    manifest = load_manifest(directory)
    index = ResultStore(directory).stored_index()
    report = StatusReport(
        directory=directory,
        sweep_name=str(manifest.get("sweep_name")),
        expected=manifest.get("n_cells"),
        runs=len(manifest.get("runs", [])),
    )
    try:
        source = manifest.get("sweep_source") or "<manifest>"
        text = manifest.get("sweep_text")
        spec = parse_sweep(text if text is not None else manifest.get("sweep_data") or {}, source)
    except SweepError as exc:
        report.note = f"the stored sweep no longer validates ({exc}); counting stored rows only"
        report.counts = index.counts()
        return report
    counts: Counter = Counter()
    expected = 0
    for _, _, ids in iter_group_ids(spec):
        expected += len(ids)
        counts.update(s for s in index.statuses_of(ids) if s is not None)
    report.expected = expected
    report.counts = counts
    report.missing = expected - sum(counts.values())
    return report
