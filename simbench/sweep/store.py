"""The results store: Parquet part files plus a JSON manifest, safe against being killed.

Layout of a results directory::

    results/<sweep name>/
        manifest.json          the sweep (text, hashes) and one record per run (provenance)
        parts/part-<t>-<run>-<k>.parquet   rows, appended by runs, never modified
        .lock                  held (flock) while a run writes

Durability
----------
Every file is written to a temporary name in the same directory, flushed and ``fsync``-ed,
then renamed over its final name with :func:`os.replace` (atomic on POSIX), and the
directory is ``fsync``-ed.  A reader therefore sees a part file either complete or not at
all; leftovers of a killed write (``*.tmp``) are ignored.  Rows are buffered and written
every ``flush_rows`` rows or ``flush_seconds`` seconds, so a killed run loses at most the
cells in flight and the last few seconds of finished cells, which the next run recomputes
(bit-identically).

Duplicates
----------
A cell can be stored more than once: a run killed between writing a compacted file and
deleting the parts it replaces, or a failed cell retried by ``--rerun-failed``.  Readers keep
one row per ``cell_id``: a row that did not fail (any status but ``error``/``timeout``) wins
over one that failed, and otherwise the most recently written row wins.

Parquet types
-------------
Each part is written with per-column type inference; list-valued columns (``beta_hat``,
``c_hidden``, ...) are ``list<double>``/``list<int64>``.  Parts are read with permissive
type promotion (``null`` -> any type, ``int64`` -> ``double``), so a part in which a metric
happens to be missing everywhere still concatenates cleanly.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = [
    "FAILED_STATUSES",
    "STATUSES",
    "PartWriter",
    "ResultStore",
    "StoreError",
    "load",
    "load_manifest",
    "load_runs",
    "new_run_id",
    "provenance",
]

STATUSES = ("ok", "error", "diverged", "timeout", "skipped")
# statuses that --rerun-failed retries and that make a run exit with code 3
FAILED_STATUSES = frozenset({"error", "timeout"})
MANIFEST = "manifest.json"
PARTS = "parts"
FORMAT_VERSION = 1

# leading columns of a loaded table, in this order (others follow as stored)
IDENTITY_COLUMNS = (
    "cell_id",
    "scenario_id",
    "config_id",
    "config_label",
    "replicate",
    "scenario_index",
    "config_index",
    "data_seed",
    "init_seed",
    "sweep_name",
    "sweep_seed",
    "run_id",
)


class StoreError(ValidationError):
    """A results directory that cannot be used for this run (exit code 2)."""


def utcnow() -> str:
    """Current UTC time, ISO 8601 with microseconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def new_run_id() -> str:
    """``20261122T160100-3fa9c1``: sortable by start time, unique."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- atomic files


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to open directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _atomic_write_table(path: Path, table) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# --------------------------------------------------------------------------- rows -> arrow


def _plain_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return [_plain_value(x) for x in v]
    if isinstance(v, list):
        return [_plain_value(x) for x in v]
    return v


# values Arrow converts as they are; a column of anything else (numpy arrays and scalars
# that are not Python floats, tuples) goes through _plain_value first
_PLAIN_TYPES = frozenset({float, int, str, bool, type(None)})


def _plain_column(values: list) -> list:
    kinds = set(map(type, values))
    if kinds <= _PLAIN_TYPES:
        return values
    if kinds <= _PLAIN_TYPES | {list}:
        # lists as the worker writes them (of Python floats) need no conversion either
        inner = {type(x) for v in values if type(v) is list for x in v}
        if inner <= _PLAIN_TYPES:
            return values
    return [_plain_value(v) for v in values]


def rows_to_table(rows: list[Mapping[str, Any]]):
    """An Arrow table from row dicts with possibly different keys (missing -> null).

    A column whose values Arrow cannot type consistently (say a string in one row and a
    number in another) is stored as JSON text rather than failing the write.
    """
    import pyarrow as pa

    if not rows:
        return pa.table({})
    first = tuple(rows[0])
    if all(tuple(row) == first for row in rows):
        # the usual case, rows with the same keys in the same order: transposed in one go
        values = zip(*(row.values() for row in rows), strict=True)
        columns = dict(zip(first, map(list, values), strict=True))
    else:
        names_seen: dict[str, None] = {}
        for row in rows:
            names_seen.update(dict.fromkeys(row))
        columns = {name: [row.get(name) for row in rows] for name in names_seen}
    arrays, names = [], []
    for name, raw in columns.items():
        values = _plain_column(raw)
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            arr = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
            )
        arrays.append(arr)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


# --------------------------------------------------------------------------- reading


def _part_files(root: Path) -> list[Path]:
    parts = root / PARTS
    if not parts.is_dir():
        return []
    # names start with a zero-padded nanosecond stamp: sorted = written order
    return sorted(p for p in parts.glob("part-*.parquet") if p.is_file())


def _read_tables(root: Path, columns: list[str] | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for order, path in enumerate(_part_files(root)):
        try:
            if columns is None:
                table = pq.read_table(path)
            else:
                names = set(pq.read_schema(path).names)
                table = pq.read_table(path, columns=[c for c in columns if c in names])
        except (OSError, pa.ArrowException) as exc:
            warnings.warn(f"{path}: unreadable part file skipped ({exc})", stacklevel=3)
            continue
        table = table.append_column("_part", pa.array(np.full(table.num_rows, order, np.int64)))
        table = table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        tables.append(table)
    return tables


def _concat(tables):
    import pyarrow as pa

    if not tables:
        return None
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # incompatible column types across parts: fall back to text for those columns
        names: dict[str, None] = {}
        for t in tables:
            for n in t.column_names:
                names.setdefault(n, None)
        fixed = []
        for t in tables:
            cols = {}
            for n in names:
                if n in t.column_names:
                    cols[n] = t.column(n)
                else:
                    cols[n] = pa.nulls(t.num_rows)
            fixed.append(cols)
        out = {}
        for n in names:
            chunks = [f[n] for f in fixed]
            try:
                out[n] = pa.concat_arrays(
                    [c.combine_chunks() if hasattr(c, "combine_chunks") else c for c in chunks]
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                out[n] = pa.array(
                    [
                        None if v is None else json.dumps(v, default=str)
                        for c in chunks
                        for v in c.to_pylist()
                    ],
                    pa.string(),
                )
        return pa.table(out)


def _keep_indices(cell_ids, statuses, part, row) -> np.ndarray:
    """Indices of the row kept per cell_id (see "Duplicates" in the module docstring)."""
    n = len(cell_ids)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if not all(type(c) is str for c in cell_ids):  # a damaged part: pandas sorts anything
        return _keep_indices_pandas(cell_ids, statuses, part, row)
    good = np.fromiter((s not in FAILED_STATUSES for s in statuses), dtype=bool, count=n)
    ids = np.array(cell_ids, dtype=str)
    # a stable sort by (cell_id, good, part, row); the last row of each cell_id is kept
    order = np.lexsort((np.asarray(row), np.asarray(part), good, ids))
    ids = ids[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    return np.sort(order[last])


def _keep_indices_pandas(cell_ids, statuses, part, row) -> np.ndarray:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "cell_id": cell_ids,
            "good": [s not in FAILED_STATUSES for s in statuses],
            "part": part,
            "row": row,
        }
    )
    frame = frame.sort_values(["cell_id", "good", "part", "row"], kind="stable")
    return np.sort(frame.drop_duplicates("cell_id", keep="last").index.to_numpy())


def _deduplicated(table):
    if table is None or table.num_rows == 0:
        return table
    keep = _keep_indices(
        table.column("cell_id").to_pylist(),
        table.column("status").to_pylist(),
        table.column("_part").to_numpy(),
        table.column("_row").to_numpy(),
    )
    return table.take(keep)


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a results directory (sweep text and hash, runs with provenance)."""
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{directory}: not a simbench results directory (no {MANIFEST})") from None


def load_runs(directory: str | Path):
    """One row per run of a results directory: run_id, times, options, provenance, counts.

    Join it to :func:`load` on ``run_id``.
    """
    import pandas as pd

    manifest = load_manifest(directory)
    records = []
    for run in manifest.get("runs", []):
        flat = {k: v for k, v in run.items() if not isinstance(v, dict)}
        for section in ("options", "provenance", "counts"):
            for k, v in (run.get(section) or {}).items():
                flat[f"{section}.{k}" if section == "counts" else k] = v
        records.append(flat)
    return pd.DataFrame.from_records(records)


def load(directory: str | Path):
    """All results of a directory as one pandas DataFrame, one row per cell.

    Rows are de-duplicated by ``cell_id`` and sorted in sweep order (scenario, config,
    replicate).  ``df.attrs["manifest"]`` holds the manifest; the ``run_id`` column joins
    with the manifest's runs (:func:`load_runs`).

    Parameters
    ----------
    directory : str or Path
        A results directory written by ``simbench run`` / :func:`simbench.run`.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    directory = Path(directory)
    manifest = load_manifest(directory)
    table = _deduplicated(_concat(_read_tables(directory)))
    if table is None:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in (*IDENTITY_COLUMNS, "status")})
    else:
        df = table.drop_columns(["_part", "_row"]).to_pandas()
        order = [c for c in ("scenario_index", "config_index", "replicate") if c in df]
        if order:
            df = df.sort_values([*order, "cell_id"], kind="stable")
        df = df.reset_index(drop=True)
        df = df[_column_order(list(df.columns))]
    df.attrs["manifest"] = manifest
    return df


def _column_order(columns: list[str]) -> list[str]:
    first = [c for c in IDENTITY_COLUMNS if c in columns]
    s_cols = [c for c in columns if c.startswith("s_")]
    c_cols = [c for c in columns if c.startswith("c_")]
    status = [c for c in ("status", "error") if c in columns]
    placed = set(first) | set(s_cols) | set(c_cols) | set(status)
    return first + s_cols + c_cols + status + [c for c in columns if c not in placed]


# --------------------------------------------------------------------------- provenance


def _git_commit() -> tuple[str | None, bool | None]:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, Any]:
    """Versions, machine and thread settings, git commit: what a result depends on.

    Versions are read from package metadata so that collecting them imports nothing heavy.
    """
    import simbench

    commit, dirty = _git_commit()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    threads = {
        k: os.environ.get(k)
        for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    }
    return {
        "simbench": simbench.__version__,
        "numba": _version("numba"),
        "numpy": _version("numpy"),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        # numba's default thread count is the number of CPUs unless NUMBA_NUM_THREADS is set
        "numba_num_threads": int(threads["NUMBA_NUM_THREADS"] or os.cpu_count() or 1),
        "thread_env": {k: v for k, v in threads.items() if v is not None},
        "git_commit": commit,
        "git_dirty": dirty,
        # the command as typed: the program's name, not where it is installed
        "argv": [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else [],
    }


# --------------------------------------------------------------------------- the store


class ResultStore:
    """A results directory opened by one run (see the module docstring for the layout).

    Parameters
    ----------
    root : str or Path
        The results directory; created by :meth:`begin_run` (never before).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.parts = self.root / PARTS
        self.manifest_path = self.root / MANIFEST
        self._lock_fd: int | None = None

    # -- checks that write nothing
    def manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return load_manifest(self.root)

    def check_compatible(self, spec) -> None:
        """Refuse a directory that holds a different sweep or is not a results directory."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: exists and is not a directory; choose another --out")
        manifest = self.manifest()
        if manifest is None:
            if self.parts.exists() and any(self.parts.iterdir()):
                raise StoreError(
                    f"{self.root}: holds result parts but no {MANIFEST}; "
                    "not written by simbench, choose another --out"
                )
            return
        if manifest.get("sweep_hash") != spec.content_hash:
            raise StoreError(
                f"{self.root}: holds results of a different sweep "
                f"({manifest.get('sweep_name')!r} from {manifest.get('sweep_source')!r}, "
                f"content hash {str(manifest.get('sweep_hash'))[:12]} != "
                f"{spec.content_hash[:12]}); its cells would mix with this one's. "
                "Use --out DIR for a separate directory, or remove the old one"
            )

    def stored_statuses(self) -> dict[str, str]:
        """``cell_id -> status`` of the stored rows (after de-duplication)."""
        table = _deduplicated(_concat(_read_tables(self.root, ["cell_id", "status"])))
        if table is None:
            return {}
        return dict(
            zip(
                table.column("cell_id").to_pylist(), table.column("status").to_pylist(), strict=True
            )
        )

    # -- writing
    def lock(self) -> None:
        """Hold an exclusive lock on the directory for the duration of a run."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"{self.root}: another simbench run is writing to this directory"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def begin_run(self, spec, run: dict[str, Any]) -> None:
        """Create the directory (if needed), lock it and record the run in the manifest."""
        self.check_compatible(spec)
        self.lock()
        self.parts.mkdir(exist_ok=True)
        manifest = self.manifest() or {
            "format": FORMAT_VERSION,
            "sweep_name": spec.name,
            "sweep_source": spec.source,
            "sweep_hash": spec.content_hash,
            "sweep_text_sha256": spec.text_sha256,
            "sweep_text": spec.text,
            "sweep_data": spec.data if spec.text is None else None,
            "description": spec.description,
            "n_cells": spec.n_cells,
            "created_at": run.get("started_at") or utcnow(),
            "runs": [],
        }
        manifest["runs"].append(run)
        self._write_manifest(manifest)

    def end_run(self, run_id: str, **updates: Any) -> None:
        manifest = self.manifest()
        if manifest is None:
            return
        for run in manifest["runs"]:
            if run.get("run_id") == run_id:
                run.update(updates)
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode("utf-8")
        atomic_write_bytes(self.manifest_path, data)

    def writer(self, run_id: str, flush_rows: int = 64, flush_seconds: float = 2.0) -> PartWriter:
        return PartWriter(self.parts, run_id, flush_rows, flush_seconds)

    def compact(self, run_id: str) -> int:
        """Merge all part files into one (de-duplicated); return the number of rows kept.

        Crash-safe: the merged file is written atomically before the parts it replaces are
        deleted, and readers de-duplicate if both are present.
        """
        files = _part_files(self.root)
        if len(files) <= 1:
            return -1
        table = _deduplicated(_concat(_read_tables(self.root)))
        if table is None:
            return 0
        table = table.drop_columns(["_part", "_row"])
        target = self.parts / _part_name(run_id, 0, tag="c")
        _atomic_write_table(target, table)
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        _fsync_dir(self.parts)
        return table.num_rows


def _part_name(run_id: str, counter: int, tag: str = "p") -> str:
    return f"part-{time.time_ns():020d}-{run_id}-{tag}{counter:05d}.parquet"


class PartWriter:
    """Buffers rows and writes them as atomic Parquet part files.

    A part is written when ``flush_rows`` rows are buffered, or on :meth:`add` / :meth:`tick`
    once the oldest buffered row is ``flush_seconds`` old, and on :meth:`flush`.
    """

    def __init__(self, directory: Path, run_id: str, flush_rows: int, flush_seconds: float):
        self.directory = Path(directory)
        self.run_id = run_id
        self.flush_rows = max(1, int(flush_rows))
        self.flush_seconds = float(flush_seconds)
        self._buffer: list[dict[str, Any]] = []
        self._since = 0.0
        self._counter = 0
        self.rows_written = 0
        self.files_written = 0

    def add(self, row: dict[str, Any]) -> None:
        if not self._buffer:
            self._since = time.monotonic()
        self._buffer.append(row)
        if len(self._buffer) >= self.flush_rows:
            self.flush()
        else:
            self.tick()

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def tick(self) -> None:
        if self._buffer and time.monotonic() - self._since >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        table = rows_to_table(self._buffer)
        self._counter += 1
        _atomic_write_table(self.directory / _part_name(self.run_id, self._counter), table)
        self.rows_written += len(self._buffer)
        self.files_written += 1
        self._buffer = []

    @property
    def pending(self) -> int:
        return len(self._buffer)
