"""The results store: Parquet part files plus a JSON manifest, safe against being killed.

Layout of a results directory::

    results/<sweep name>/
        manifest.json          the sweep (text, hashes) and one record per run (provenance)
        sweep.toml             a copy of the sweep file (sweep.json for a sweep given as data)
        parts/part-<t>-<run>-<k>-<hash>.parquet   rows, appended by runs, never modified
        quarantine/            corrupted parts moved aside by ``run`` (never read)
        .lock                  held (flock) while a run writes

Integrity
---------
Every part is written with Parquet page checksums (CRC-32 of each data page, verified on
every read), and its name ends with the first 32 hex digits of the SHA-256 of the whole
file, checked before anything in it is read.  A part whose bytes do not match its name, or
that Parquet cannot read, is *corrupted*: :func:`load` and every command that reads
results refuse it with :class:`CorruptPartError` naming the file (never returning other
numbers), and ``run`` moves it to ``quarantine/`` and computes its cells again.  A file in
``parts/`` that is not a simbench part (another name, or a Parquet file without the
``cell_id`` and ``status`` columns) is *foreign*: named in a warning and ignored, never
merged.  Parts written before content hashes existed (names without the hash) are read
with their page checksums and Parquet's own structure checks only.  Reading some columns
(``load(directory, columns=...)``) checks as much as reading them all: the hash covers
every byte of a part, and a part without one has the pages of its other columns read too.

Durability
----------
Every file is written to a temporary name in the same directory, flushed and ``fsync``-ed,
then renamed over its final name with :func:`os.replace` (atomic on POSIX), and the
directory is ``fsync``-ed.  A reader therefore sees a part file either complete or not at
all; a write that fails (a full or read-only disk) removes its temporary file and raises
:class:`DiskError` naming the path.  Rows are buffered and written by a background thread
once the oldest is ``flush_seconds`` old (0.5 s by default), or every ``flush_rows`` rows:
a killed run loses the cells in flight and at most the cells finished in the last
half-second (plus the time one part takes to write), which the next run recomputes
bit-identically.

Compaction merges a run's parts into one file at the end of a finished run: the merged
file is renamed into place before the parts it replaces are deleted, and a reader that
finds a listed part gone starts its read again, so it always sees one consistent set (the
old parts, the new file, or both, which de-duplication makes the same).

Duplicates
----------
A cell can be stored more than once: a run killed between writing a compacted file and
deleting the parts it replaces, or a failed cell retried by ``--rerun-failed``.  Readers keep
one row per ``cell_id``: a row that did not fail (any status but ``error``/``timeout``) wins
over one that failed, and otherwise the most recently written row wins.

Recovery
--------
A missing or damaged ``manifest.json`` (not JSON, empty, or without its fields) is rebuilt
from the sweep (the file given to ``run``, or the directory's ``sweep.toml`` copy) and the
parts, when every stored row is a cell of that sweep; the command says so on stderr.  When
they disagree, or there is no sweep to rebuild from, it stops with exit code 2 naming what
is inconsistent.

Parquet types
-------------
Each part is written with per-column type inference; list-valued columns (``beta_hat``,
``c_hidden``, ...) are ``list<double>``/``list<int64>``.  Parts are read with permissive
type promotion (``null`` -> any type, ``int64`` -> ``double``), so a part in which a metric
happens to be missing everywhere still concatenates cleanly.  Promotion is column by
column: a column whose types cannot be reconciled (text in one part, numbers in another)
is read as JSON text, and the others keep their types, whichever columns are read.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ValidationError
from .status import FAILED_STATUSES, STATUSES

__all__ = [
    "FAILED_STATUSES",
    "STATUSES",
    "CorruptPartError",
    "DiskError",
    "PartWriter",
    "ResultStore",
    "StoreError",
    "StoredIndex",
    "atomic_write_bytes",
    "atomic_write_with",
    "ensure_directory",
    "load",
    "load_manifest",
    "load_runs",
    "new_run_id",
    "provenance",
    "stored_columns",
    "stored_schema",
]

MANIFEST = "manifest.json"
PARTS = "parts"
QUARANTINE = "quarantine"
SWEEP_COPIES = ("sweep.toml", "sweep.json")
FORMAT_VERSION = 1
PART_COMPRESSION = "zstd"
HASH_DIGITS = 32  # hex digits of the SHA-256 kept in a part's name (128 bits)
REQUIRED_COLUMNS = ("cell_id", "status")
_READ_ATTEMPTS = 50  # re-reads when a compaction removes a listed part meanwhile

# part-<20-digit ns stamp>-<run id>-<p|c><5-digit counter>[-<hash>].parquet
PART_RE = re.compile(
    r"^part-(?P<stamp>\d{20})-(?P<run>.+)-(?P<tag>[pc])(?P<counter>\d{5})"
    r"(?:-(?P<hash>[0-9a-f]{" + str(HASH_DIGITS) + r"}))?\.parquet$"
)

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
    """A results directory that cannot be used as asked (exit code 2)."""


class CorruptPartError(StoreError):
    """Part files whose bytes do not match their content hash or cannot be read."""

    def __init__(self, message: str, paths: list[Path]) -> None:
        super().__init__(message)
        self.paths = paths


class DiskError(StoreError):
    """A file of a results directory could not be written (full or read-only disk, ...)."""


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


def _disk_error(path: Path, exc: OSError, doing: str = "cannot write") -> DiskError:
    why = exc.strerror or str(exc)
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space and run the same command again"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "; choose a writable directory (--out)"
    return DiskError(f"{path}: {doing} ({why}){hint}")


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _replace_from(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_tmp(tmp: Path, chunks: Iterable[bytes]) -> None:
    with open(tmp, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half.

    The temporary file is removed whatever happens; a write the disk refuses raises
    :class:`DiskError` naming ``path``.
    """
    _atomic(path, lambda tmp: _write_tmp(tmp, [data]))


def atomic_write_with(path: Path, write) -> None:
    """Call ``write(tmp_path)`` to produce a file, then rename it over ``path`` atomically.

    For writers that want a file name (matplotlib, a Parquet writer).  The temporary file
    is removed whatever happens; :class:`DiskError` names ``path`` when the disk refuses.
    """

    def written_and_synced(tmp: Path) -> None:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())

    _atomic(path, written_and_synced)


def _atomic(path: Path, produce) -> None:
    """``produce(tmp)`` writes a synced temporary file beside ``path``, which then replaces
    ``path``; the temporary file is removed whatever happens, and an ``OSError`` becomes a
    :class:`DiskError` naming ``path``."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        produce(tmp)
        _replace_from(tmp, path)
    except OSError as exc:
        raise _disk_error(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def ensure_directory(path: Path) -> None:
    """Create ``path`` (and parents); :class:`DiskError` / :class:`StoreError` naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"{path}: exists and is not a directory") from None
    except OSError as exc:
        raise _disk_error(path, exc, "cannot create the directory") from None


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

    from . import arrow

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
            arr = arrow.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            arr = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
            )
        arrays.append(arr)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


# --------------------------------------------------------------------------- part files


def content_hash(data: bytes) -> str:
    """The hash a part's name carries: the first 32 hex digits of SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:HASH_DIGITS]


def _part_name(run_id: str, counter: int, tag: str = "p", digest: str | None = None) -> str:
    tail = f"-{digest}" if digest else ""
    return f"part-{time.time_ns():020d}-{run_id}-{tag}{counter:05d}{tail}.parquet"


def _table_bytes(table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=PART_COMPRESSION, write_page_checksum=True)
    return sink.getvalue().to_pybytes()


def write_part(directory: Path, run_id: str, counter: int, table, tag: str = "p") -> Path:
    """Write ``table`` as an atomic, checksummed part named with its content hash."""
    data = _table_bytes(table)
    path = Path(directory) / _part_name(run_id, counter, tag, content_hash(data))
    atomic_write_bytes(path, data)
    return path


def _is_leftover(path: Path) -> bool:
    """A temporary file of an interrupted write (ignored by readers, removed by runs)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


class _Listing:
    """The files of ``parts/``: simbench parts in written order, and foreign files."""

    def __init__(self, root: Path) -> None:
        self.parts: list[Path] = []
        self.foreign: list[tuple[Path, str]] = []
        directory = Path(root) / PARTS
        if not directory.is_dir():
            return
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise StoreError(f"{directory}: cannot list the part files ({exc.strerror})") from None
        for entry in entries:
            path = Path(entry.path)
            if _is_leftover(path):
                continue
            if not PART_RE.match(entry.name):
                self.foreign.append((path, "not a simbench part file name"))
            elif not entry.is_file():
                self.foreign.append((path, "not a regular file"))
            else:
                self.parts.append(path)
        # names start with a zero-padded nanosecond stamp: sorted = written order
        self.parts.sort(key=lambda p: p.name)


class _Corrupt(Exception):
    pass


class _Foreign(Exception):
    pass


def _string_field(schema, name: str) -> bool:
    import pyarrow as pa

    i = schema.get_field_index(name)
    return i >= 0 and (
        pa.types.is_string(schema.field(i).type) or pa.types.is_large_string(schema.field(i).type)
    )


def _read_part(path: Path, columns: list[str] | None = None, verify_all: bool = False):
    """The table of a verified part (``FileNotFoundError`` if it vanished meanwhile).

    ``columns``: the columns to read (those the part holds).  The content hash covers every
    byte whatever is read; a part without one (written before hashes) has only its page
    checksums, which Parquet checks on the pages it reads, so ``verify_all`` reads (and
    drops) its other columns too, to refuse it as a full read would.
    Raises ``_Corrupt`` (hash mismatch, unreadable) or ``_Foreign`` (no simbench schema).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise _Foreign("a directory") from None
    except OSError as exc:
        raise _Corrupt(f"cannot be read: {exc.strerror or exc}") from None
    expected = PART_RE.match(path.name).group("hash")
    if expected is not None:
        got = content_hash(data)
        if got != expected:
            raise _Corrupt(
                f"content hash mismatch: the name says {expected}, the bytes hash to {got}"
            )
    try:
        pf = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        if expected is None and not data.startswith(b"PAR1"):
            raise _Foreign("not a Parquet file") from None
        raise _Corrupt(f"not readable as Parquet: {_first_line(exc)}") from None
    missing = [c for c in REQUIRED_COLUMNS if not _string_field(schema, c)]
    if missing:
        raise _Foreign(f"a Parquet file without the text column(s) {', '.join(missing)}")
    try:
        if columns is None:
            return pf.read()
        names = set(schema.names)
        chosen = [c for c in dict.fromkeys(columns) if c in names]
        if verify_all and expected is None:
            for name in schema.names:
                if name not in chosen:
                    pf.read(columns=[name])  # its pages' checksums, one column at a time
        return pf.read(columns=chosen)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _Corrupt(f"not readable as Parquet: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


class PartsRead:
    """What reading ``parts/`` found: tables of the good parts, corrupted and foreign files."""

    def __init__(self) -> None:
        self.tables: list = []
        self.paths: list[Path] = []
        self.corrupt: list[tuple[Path, str]] = []
        self.foreign: list[tuple[Path, str]] = []


def _read_parts(
    root: Path,
    columns: list[str] | None = None,
    on_corrupt: str = "raise",
    warn: bool = True,
    verify_all: bool = False,
) -> PartsRead:
    """Read every part of ``root`` (verified), tagging rows with ``_part`` and ``_row``.

    ``on_corrupt``: ``"raise"`` (:class:`CorruptPartError` naming every corrupted file) or
    ``"collect"`` (listed in the result).  A part that disappears while being read (a
    compaction replaced it) restarts the read, so the result is one consistent set.
    ``verify_all``: see :func:`_read_part`.
    """
    from . import arrow

    for _ in range(_READ_ATTEMPTS):
        listing = _Listing(root)
        result = PartsRead()
        result.foreign = list(listing.foreign)
        vanished = False
        for path in listing.parts:
            try:
                table = _read_part(path, columns, verify_all)
            except FileNotFoundError:
                vanished = True
                break
            except _Corrupt as exc:
                result.corrupt.append((path, str(exc)))
                continue
            except _Foreign as exc:
                result.foreign.append((path, str(exc)))
                continue
            order = len(result.tables)
            part = arrow.from_numpy(np.full(table.num_rows, order, np.int64))
            table = table.append_column("_part", part)
            table = table.append_column("_row", arrow.from_numpy(np.arange(table.num_rows)))
            result.tables.append(table)
            result.paths.append(path)
        if not vanished:
            break
        time.sleep(0.01)
    else:
        raise StoreError(f"{root}: part files keep changing while being read; try again")
    if warn:
        for path, why in result.foreign:
            warnings.warn(f"{path}: {why}; not a simbench part, ignored", stacklevel=3)
    if result.corrupt and on_corrupt == "raise":
        raise _corrupt_error(root, result.corrupt)
    return result


def _corrupt_error(root: Path, corrupt: list[tuple[Path, str]]) -> CorruptPartError:
    lines = [f"{path}: corrupted part file ({why})" for path, why in corrupt]
    what = "its rows are" if len(corrupt) == 1 else "their rows are"
    text = "; ".join(lines) + (
        f". {what.capitalize()} not read. Re-running the sweep (simbench run SWEEP.toml "
        f"--out {root}) moves corrupted parts to {Path(root) / QUARANTINE} and computes "
        "their cells again"
    )
    return CorruptPartError(text, [p for p, _ in corrupt])


def _concat(tables):
    """One table of the parts' tables, each column promoted on its own.

    Column by column (null -> any type, int64 -> double, a column missing from a part ->
    nulls there), so a column's type depends on its own values only and reading a subset
    of the columns gives those columns exactly as reading them all does; a column whose
    types cannot be reconciled across parts (text in one, numbers in another) is read as
    JSON text.
    """
    import pyarrow as pa

    if not tables:
        return None
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    names: dict[str, None] = {}
    for t in tables:
        names.update(dict.fromkeys(t.column_names))
    out = {}
    for n in names:
        pieces = [
            t.select([n]) if n in t.column_names else pa.table({n: pa.nulls(t.num_rows)})
            for t in tables
        ]
        try:
            out[n] = pa.concat_tables(pieces, promote_options="permissive").column(n)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            out[n] = pa.array(
                [
                    None if v is None else json.dumps(v, default=str)
                    for piece in pieces
                    for v in piece.column(n).to_pylist()
                ],
                pa.string(),
            )
    return pa.table(out)


# --------------------------------------------------------------------------- de-duplication

_STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
_OTHER = 255  # a status outside the vocabulary (only in damaged or foreign data)
_FAILED_CODES = np.array(sorted(_STATUS_CODE[s] for s in FAILED_STATUSES), dtype=np.uint8)
_HEX = np.zeros(256, dtype=bool)
_HEX[list(b"0123456789abcdef")] = True
_IDS_RE = re.compile(r"[0-9a-f]*")  # cell ids joined, each of 16 lowercase hex digits


def _hex_ids(column) -> np.ndarray | None:
    """16-hex-digit cell ids as uint64 (one pass over Arrow's buffer), or None if any is not."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if arr.null_count:
        return None
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    if not np.all(np.diff(offsets) == 16):
        return None
    raw = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if not _HEX[raw].all():
        return None
    return np.frombuffer(bytes.fromhex(raw.tobytes().decode("ascii")), dtype=">u8").astype(
        np.uint64
    )


def _status_codes(column) -> np.ndarray:
    import pyarrow as pa

    from . import arrow

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
    return arrow.index_in(column, STATUSES, _OTHER).astype(np.uint8)


def _distinct(keys: np.ndarray) -> bool:
    """Whether no key repeats: the usual case, every cell stored once, nothing to choose."""
    by_key = np.sort(keys)
    return not (by_key[1:] == by_key[:-1]).any()


def _keep_sorted(keys: np.ndarray, good: np.ndarray, part, row) -> np.ndarray:
    if _distinct(keys):
        return np.arange(len(keys))
    return _keep_last(keys, good, part, row)


def _keep_last(keys: np.ndarray, good: np.ndarray, part, row) -> np.ndarray:
    """The rows kept of keys that repeat: of each key, the last good row, else its last."""
    n = len(keys)
    # a stable sort by (cell_id, good, part, row); the last row of each cell_id is kept
    order = np.lexsort((np.asarray(row), np.asarray(part), good, keys))
    keys = keys[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    return np.sort(order[last])


def _keep_indices(cell_ids, statuses, part, row) -> np.ndarray:
    """Indices of the row kept per cell_id (see "Duplicates" in the module docstring)."""
    n = len(cell_ids)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if not all(type(c) is str for c in cell_ids):  # a damaged part: pandas sorts anything
        return _keep_indices_pandas(cell_ids, statuses, part, row)
    good = np.fromiter((s not in FAILED_STATUSES for s in statuses), dtype=bool, count=n)
    return _keep_sorted(np.array(cell_ids, dtype=str), good, part, row)


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


def _kept_rows(table) -> np.ndarray:
    """Row indices of ``table`` (with ``_part``/``_row``) kept by de-duplication."""
    return _kept_rows_of(table, _hex_ids(table.column("cell_id")))


def _kept_rows_of(table, ids: np.ndarray | None) -> np.ndarray:
    """:func:`_kept_rows` given the :func:`_hex_ids` of ``table``'s ``cell_id`` column."""
    from . import arrow

    if ids is None:
        return _keep_indices(
            table.column("cell_id").to_pylist(),
            table.column("status").to_pylist(),
            arrow.to_numpy(table.column("_part")),
            arrow.to_numpy(table.column("_row")),
        )
    if _distinct(ids):  # every cell stored once: the statuses need not be read
        return np.arange(len(ids))
    good = ~np.isin(_status_codes(table.column("status")), _FAILED_CODES)
    part, row = arrow.to_numpy(table.column("_part")), arrow.to_numpy(table.column("_row"))
    return _keep_last(ids, good, part, row)


def _deduplicated(table):
    if table is None or table.num_rows == 0:
        return table
    keep = _kept_rows(table)
    return table if len(keep) == table.num_rows else table.take(keep)


class StoredIndex:
    """The stored cells of a directory: ``cell_id -> status``, 9 bytes per cell.

    Cell ids (16 hex digits) are kept as a sorted ``uint64`` array with one status code
    each, so resuming a sweep of millions of cells does not hold millions of strings.
    """

    def __init__(self, ids: np.ndarray, codes: np.ndarray, other: dict[str, str]) -> None:
        self.ids = ids
        self.codes = codes
        self.other = other  # ids that are not 16 hex digits, or statuses outside STATUSES

    @classmethod
    def empty(cls) -> StoredIndex:
        return cls(np.empty(0, np.uint64), np.empty(0, np.uint8), {})

    @classmethod
    def from_tables(cls, tables) -> StoredIndex:
        table = _deduplicated(_concat(tables))
        if table is None or table.num_rows == 0:
            return cls.empty()
        ids = _hex_ids(table.column("cell_id"))
        codes = _status_codes(table.column("status"))
        if ids is None:
            other = dict(
                zip(
                    table.column("cell_id").to_pylist(),
                    table.column("status").to_pylist(),
                    strict=True,
                )
            )
            return cls(np.empty(0, np.uint64), np.empty(0, np.uint8), other)
        odd = codes == _OTHER
        other = {}
        if odd.any():
            statuses = table.column("status").to_pylist()
            for i in np.flatnonzero(odd):
                other[f"{int(ids[i]):016x}"] = statuses[i]
            ids, codes = ids[~odd], codes[~odd]
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], codes[order], other)

    def __len__(self) -> int:
        return len(self.ids) + len(self.other)

    def statuses_of(self, cell_ids: list[str]) -> list[str | None]:
        """The stored status of each cell id (``None`` if it is not stored)."""
        if not cell_ids:
            return []
        joined = "".join(cell_ids)
        if (
            len(self.ids)
            and not self.other
            and _IDS_RE.fullmatch(joined)
            and all(len(c) == 16 for c in cell_ids)
        ):
            # ids as the runner writes them (the usual case, a group at a time): no loop
            keys = np.frombuffer(bytes.fromhex(joined), dtype=">u8").astype(np.uint64)
            pos = np.minimum(np.searchsorted(self.ids, keys), len(self.ids) - 1)
            hit = (self.ids[pos] == keys).tolist()
            codes = self.codes[pos].tolist()
            return [STATUSES[k] if h else None for k, h in zip(codes, hit, strict=True)]
        out: list[str | None] = [None] * len(cell_ids)
        keys = np.empty(len(cell_ids), dtype=np.uint64)
        ok = np.ones(len(cell_ids), dtype=bool)
        for i, c in enumerate(cell_ids):
            try:
                keys[i] = int(c, 16) if len(c) == 16 else 0
                ok[i] = len(c) == 16
            except ValueError:
                ok[i] = False
        if len(self.ids):
            pos = np.searchsorted(self.ids, keys)
            pos[pos >= len(self.ids)] = 0
            hit = ok & (self.ids[pos] == keys)
            for i in np.flatnonzero(hit):
                out[i] = STATUSES[self.codes[pos[i]]]
        if self.other:
            for i, c in enumerate(cell_ids):
                if c in self.other:
                    out[i] = self.other[c]
        return out

    def counts(self) -> Counter:
        counts = Counter(
            {STATUSES[k]: int(v) for k, v in enumerate(np.bincount(self.codes, minlength=5)) if v}
        )
        counts.update(self.other.values())
        return counts

    def to_dict(self) -> dict[str, str]:
        out = {f"{int(i):016x}": STATUSES[c] for i, c in zip(self.ids, self.codes, strict=True)}
        out.update(self.other)
        return out


# --------------------------------------------------------------------------- the manifest


def _manifest_problem(obj: Any) -> str | None:
    """Why a parsed manifest cannot be used, or None."""
    if not isinstance(obj, dict):
        return f"not a JSON object (a {type(obj).__name__})"
    for key, kind in (("sweep_name", str), ("sweep_hash", str), ("runs", list)):
        if not isinstance(obj.get(key), kind):
            return f"without a valid {key!r}"
    if not all(isinstance(r, dict) for r in obj["runs"]):
        return "with a run record that is not an object"
    return None


def _manifest_state(directory: Path) -> tuple[str, Any]:
    """``("ok", manifest)``, ``("missing", reason)`` or ``("damaged", reason)``."""
    path = directory / MANIFEST
    if directory.exists() and not directory.is_dir():
        raise StoreError(f"{directory}: is a file, not a results directory")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "missing", "missing"
    except IsADirectoryError:
        return "damaged", "a directory, not a file"
    except NotADirectoryError:
        raise StoreError(f"{directory}: is not a results directory") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not raw.strip():
        return "damaged", "empty"
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return "damaged", f"not valid JSON ({_first_line(exc)[:120]})"
    problem = _manifest_problem(obj)
    if problem is not None:
        return "damaged", f"a JSON document {problem}"
    return "ok", obj


def _new_manifest(spec, created_at: str | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "sweep_name": spec.name,
        "sweep_source": spec.source,
        "sweep_hash": spec.content_hash,
        "sweep_text_sha256": spec.text_sha256,
        "sweep_text": spec.text,
        "sweep_data": spec.data if spec.text is None else None,
        "description": spec.description,
        "n_cells": spec.n_cells,
        "created_at": created_at or utcnow(),
        "runs": [],
    }


def _sweep_copy(spec) -> tuple[str, bytes]:
    if spec.text is not None:
        return SWEEP_COPIES[0], spec.text.encode("utf-8")
    return SWEEP_COPIES[1], json.dumps(spec.data, indent=2, default=str).encode("utf-8")


def _spec_from_copy(directory: Path):
    """The sweep of a directory's ``sweep.toml`` / ``sweep.json`` copy, or None if absent."""
    from .spec import SweepError, load_sweep, parse_sweep

    for name in SWEEP_COPIES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".toml"):
                return load_sweep(path)
            return parse_sweep(json.loads(path.read_text()), source=name)
        except (SweepError, ValueError, OSError) as exc:
            raise StoreError(
                f"{path}: the copy of the sweep file is damaged too ({_first_line(exc)}); "
                f"run simbench run SWEEP.toml --out {directory} with the sweep file that "
                "wrote these results"
            ) from None
    return None


_AGREE_COLUMNS = ["cell_id", "scenario_id", "config_id", "replicate", "sweep_name", "run_id"]


def _rebuild_manifest(directory: Path, spec, reason: str) -> tuple[dict[str, Any], str]:
    """A manifest for ``spec`` if every stored row is a cell of it; else :class:`StoreError`.

    Returns the manifest and a sentence saying what was done.
    """
    from .cells import cell_id

    read = _read_parts(directory, _AGREE_COLUMNS, on_corrupt="collect", warn=False)
    table = _concat(read.tables)
    scenarios = {s.id: s for s in spec.scenarios}
    configs = {c.id: c for c in spec.configs}
    rows = 0 if table is None else table.num_rows
    bad: list[str] = []
    n_bad = 0
    runs: dict[str, None] = {}
    if rows:
        cols = {
            c: (table.column(c).to_pylist() if c in table.column_names else [None] * rows)
            for c in _AGREE_COLUMNS
        }
        for i in range(rows):
            cid, sid, kid = cols["cell_id"][i], cols["scenario_id"][i], cols["config_id"][i]
            rep, name = cols["replicate"][i], cols["sweep_name"][i]
            why = None
            if name != spec.name:
                why = f"sweep name {name!r}, not {spec.name!r}"
            elif sid not in scenarios:
                why = f"scenario {sid!r} is not in the sweep"
            elif kid not in configs:
                why = f"configuration {kid!r} is not in the sweep"
            elif not isinstance(rep, int) or not 0 <= rep < spec.replicates:
                why = f"replicate {rep!r} is outside 0..{spec.replicates - 1}"
            elif cid != cell_id(scenarios[sid].canonical, configs[kid].canonical, rep, spec.seed):
                why = "its id does not follow from the sweep (another seed?)"
            if why is not None:
                n_bad += 1
                if len(bad) < 3:
                    bad.append(f"cell {cid}: {why}")
            if cols["run_id"][i] is not None:
                runs.setdefault(str(cols["run_id"][i]), None)
    path = directory / MANIFEST
    if n_bad:
        raise StoreError(
            f"{path} is {reason}, and {n_bad} of {rows} stored rows are not cells of "
            f"{spec.source} ({'; '.join(bad)}); it cannot be rebuilt from that sweep. Use "
            "the sweep file that wrote these results, or another --out"
        )
    manifest = _new_manifest(spec)
    manifest["runs"] = [{"run_id": r, "outcome": "recovered"} for r in runs]
    manifest["recovered"] = {"at": utcnow(), "reason": reason, "parts": len(read.paths)}
    note = (
        f"{path} was {reason}; rebuilt from {spec.source} and {len(read.paths)} part "
        f"file(s) ({rows} stored rows, all cells of the sweep)"
    )
    return manifest, note


def _try_write_manifest(directory: Path, manifest: dict[str, Any]) -> str | None:
    """Write a rebuilt manifest unless a run holds the directory; None, or why not."""
    import fcntl

    try:
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "a run is writing to the directory"
        try:
            _write_manifest_file(directory, manifest)
        except DiskError as exc:
            return str(exc)
        return None
    finally:
        os.close(fd)


def _write_manifest_file(directory: Path, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode("utf-8")
    atomic_write_bytes(directory / MANIFEST, data)


def load_manifest(directory: str | Path, spec=None) -> dict[str, Any]:
    """The manifest of a results directory (sweep text and hash, runs with provenance).

    A missing or damaged manifest is rebuilt from ``spec`` (or the directory's copy of its
    sweep file) and the parts when they agree, written back when no run holds the
    directory, with a warning saying so; otherwise :class:`StoreError` names the problem.
    """
    directory = Path(directory)
    state, value = _manifest_state(directory)
    if state == "ok":
        return value
    if state == "missing" and not _Listing(directory).parts:
        raise StoreError(f"{directory}: not a simbench results directory (no {MANIFEST})")
    if spec is None:
        spec = _spec_from_copy(directory)
    if spec is None:
        raise StoreError(
            f"{directory / MANIFEST} is {value}, and {directory} has no copy of its sweep "
            f"file ({' or '.join(SWEEP_COPIES)}) to rebuild it from; run simbench run "
            f"SWEEP.toml --out {directory} with the sweep file that wrote these results "
            "to rebuild it"
        )
    manifest, note = _rebuild_manifest(directory, spec, value)
    why_not = _try_write_manifest(directory, manifest)
    note += " and written back" if why_not is None else f" in memory only (not written: {why_not})"
    warnings.warn(note, stacklevel=2)
    return manifest


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


def load(directory: str | Path, columns: Iterable[str] | None = None):
    """The results of a directory as one pandas DataFrame, one row per cell.

    Rows are de-duplicated by ``cell_id`` and sorted in sweep order (scenario, config,
    replicate).  ``df.attrs["manifest"]`` holds the manifest; the ``run_id`` column joins
    with the manifest's runs (:func:`load_runs`).

    Parameters
    ----------
    directory : str or Path
        A results directory written by ``simbench run`` / :func:`simbench.run`.
    columns : iterable of str, optional
        Load only these columns, in this order (:func:`stored_columns` lists them); default
        every stored column.  Only they are read from the part files; the rows, their
        order and each column's values and type are those of the full table, and every
        part is verified as fully as without ``columns``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    CorruptPartError
        If a part file does not match its content hash or cannot be read (the message
        names every such file); no rows are returned rather than a table without them.
    StoreError
        If ``directory`` is not a results directory, or its manifest cannot be rebuilt, or
        a name in ``columns`` is stored in no part.
    """
    import pandas as pd

    table, names, manifest = _load_table(directory, columns)
    if table is None:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in names})
    else:
        df = table.to_pandas(split_blocks=True, self_destruct=True)
    df.attrs["manifest"] = manifest
    return df


def load_table(directory: str | Path, columns: Iterable[str] | None = None):
    """The rows of :func:`load` as a ``pyarrow.Table``, without pandas (for readers that
    need a few columns quickly, such as the summary ``simbench run`` prints).  The same
    parameters, rows, order, checks and errors; the manifest is :func:`load_manifest`'s.
    With nothing stored, a table of no rows whose columns (the ones asked for, or the
    identity columns and ``status``) are all null."""
    import pyarrow as pa

    table, names, _ = _load_table(directory, columns)
    if table is None:
        return pa.table({c: pa.nulls(0) for c in names})
    return table


def load_arrays(directory: str | Path, columns: Iterable[str]) -> dict[str, np.ndarray]:
    """The columns of :func:`load_table` as NumPy arrays (:func:`.arrow.to_numpy`'s
    conversion): the same rows in the same order, with the same checks and errors, gathered
    by NumPy.  For the summary ``simbench run`` prints, which then does not import
    ``pyarrow.compute`` (some 0.05 s) for Arrow's gather."""
    from . import arrow

    read, names, positions, _ = _load_rows(directory, columns)
    if read is None:
        return {c: np.empty(0, dtype=object) for c in names}
    return {c: arrow.to_numpy(col)[positions] for c, col in zip(names, read, strict=True)}


def _load_table(directory: str | Path, columns: Iterable[str] | None):
    """``(table, names, manifest)`` for :func:`load` and :func:`load_table`: the rows in
    sweep order, or None with nothing stored (``names``: the columns to show then)."""
    read, names, positions, manifest = _load_rows(directory, columns)
    if read is None:
        return None, names, manifest
    return _gathered_table(read, names, positions), names, manifest


def _load_rows(directory: str | Path, columns: Iterable[str] | None):
    """``(columns, names, positions, manifest)``: the Arrow columns read and their names,
    and the positions of the rows kept, in sweep order; columns None with nothing stored
    (``names``: the columns to show then)."""
    directory = Path(directory)
    wanted = None if columns is None else _column_names(columns)
    manifest = load_manifest(directory)
    # de-duplication needs cell_id and status, the sweep order its index columns
    read_columns = None
    if wanted is not None:
        read_columns = list(dict.fromkeys([*wanted, *REQUIRED_COLUMNS, *_ORDER_COLUMNS]))
    read = _read_parts(directory, read_columns, verify_all=True)
    table = _concat(read.tables)
    del read
    if table is None:
        names = list(wanted if wanted is not None else (*IDENTITY_COLUMNS, "status"))
        return None, names, None, manifest
    if wanted is None:
        out = _column_order([c for c in table.column_names if c not in ("_part", "_row")])
    else:
        missing = [c for c in wanted if c not in table.column_names or c in ("_part", "_row")]
        if missing:
            raise _missing_columns_error(directory, missing)
        out = wanted
    ids = _hex_ids(table.column("cell_id"))
    keep = _kept_rows_of(table, ids)
    order = _sweep_order(table, keep, None if ids is None else ids[keep])
    columns = [table.column(c) for c in out]
    del table  # columns not asked for (and the internal ones) are released here
    return columns, out, keep[order], manifest


# sweep order of a loaded table (then cell_id)
_ORDER_COLUMNS = ("scenario_index", "config_index", "replicate")


def _column_names(columns: Iterable[str]) -> list[str]:
    if isinstance(columns, str):
        raise TypeError(
            f"columns must be a list of column names, not a string: write columns=[{columns!r}]"
        )
    names = list(columns)
    odd = [c for c in names if not isinstance(c, str)]
    if odd:
        raise TypeError(
            f"columns must be names (strings); got {odd[0]!r} ({type(odd[0]).__name__})"
        )
    return list(dict.fromkeys(names))


def _missing_columns_error(directory: Path, missing: list[str]) -> StoreError:
    from .._registry import closest

    stored = stored_columns(directory)
    text = f"{directory}: no stored column {missing[0]!r}"
    if len(missing) > 1:
        text = f"{directory}: no stored columns {', '.join(map(repr, missing))}"
    guess = closest(missing[0], stored)
    if guess is not None:
        text += f"; did you mean {guess!r}?"
    return StoreError(text + "; stored: " + ", ".join(stored))


def _gathered_table(columns: list, names: list[str], positions: np.ndarray):
    """The rows ``positions`` of the Arrow ``columns`` as one table.

    Column by column, each read column released once gathered (the caller hands over its
    only reference); :func:`load` then converts the table with split blocks,
    self-destructing, so that about one copy of the table is held at a time rather than
    three (the read columns, the gathered ones and the frame).
    """
    import pyarrow as pa

    from . import arrow

    if not columns:  # rows without columns
        return pa.table({"_": pa.nulls(len(positions))}).drop_columns(["_"])
    index = arrow.from_numpy(np.asarray(positions, dtype=np.int64))
    for i in range(len(columns)):
        column, columns[i] = columns[i], None
        columns[i] = column.take(index)
        del column
    gathered = pa.Table.from_arrays(columns, names=names)
    columns.clear()
    return gathered


def _sweep_order(table, keep: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """Positions into ``keep`` that sort those rows of ``table`` in sweep order.

    By the index columns present, then ``cell_id``, as pandas sorts them (missing values
    last; a stable sort).  When every key is an integer column without nulls and every id
    is 16 hex digits, the ids are unique and order as their values, so one ``lexsort``
    gives that order; anything else is sorted by pandas itself.
    """
    import pyarrow as pa

    from . import arrow

    keys = [c for c in _ORDER_COLUMNS if c in table.column_names]
    if not keys:
        return np.arange(len(keep))
    columns = [table.column(c) for c in keys]
    if ids is not None and all(pa.types.is_integer(c.type) and not c.null_count for c in columns):
        arrays = [arrow.to_numpy(c)[keep] for c in columns]
        return np.lexsort((ids, *reversed(arrays)))
    frame = table.select([*keys, "cell_id"]).take(keep).to_pandas()
    return frame.sort_values([*keys, "cell_id"], kind="stable").index.to_numpy()


def stored_schema(directory: str | Path):
    """The columns :func:`load` would return and their Arrow types, from the parts' footers.

    Nothing but each part's footer is read and nothing is verified (:func:`load` does):
    a part whose footer cannot be read, or that is not a simbench part, is left out.
    Columns are in :func:`load`'s order; a column whose types differ across parts has the
    type they promote to (``string`` when they do not: read as JSON text).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    for _ in range(_READ_ATTEMPTS):
        schemas = []
        vanished = False
        for path in _Listing(directory).parts:
            try:
                schema = pq.read_schema(path)
            except FileNotFoundError:
                vanished = True
                break
            except (OSError, pa.ArrowException, ValueError):
                continue
            if all(_string_field(schema, c) for c in REQUIRED_COLUMNS):
                schemas.append(schema)
        if not vanished:
            break
        time.sleep(0.01)
    else:
        raise StoreError(f"{directory}: part files keep changing while being read; try again")
    types: dict[str, list] = {}
    for schema in schemas:
        for field in schema:
            types.setdefault(field.name, []).append(field.remove_metadata())
    fields = []
    for name in _column_order(list(types)):
        try:
            fields.append(
                pa.unify_schemas(
                    [pa.schema([f]) for f in types[name]], promote_options="permissive"
                ).field(name)
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


def stored_columns(directory: str | Path) -> list[str]:
    """The names of the columns :func:`load` would return, in its order (footers only)."""
    return stored_schema(directory).names


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
    from .._version import __version__

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
        "simbench": __version__,
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
        self._spec = None
        self._rebuilt: tuple[dict[str, Any], str] | None = None
        # cells of quarantined parts: computed again even where an older failed row remains
        self.quarantined_cells: set[str] = set()
        self.quarantined: list[tuple[Path, str, Path]] = []

    # -- checks that write nothing
    def manifest(self) -> dict[str, Any] | None:
        """The manifest, ``None`` for a new directory; rebuilt (see :func:`load_manifest`)."""
        state, value = _manifest_state(self.root)
        if state == "ok":
            return value
        if state == "missing" and not _Listing(self.root).parts:
            return None
        if self._spec is None:
            return load_manifest(self.root)
        manifest, _ = _rebuild_manifest(self.root, self._spec, value)
        return manifest

    def check_compatible(self, spec) -> None:
        """Refuse a directory that holds a different sweep or is not a results directory.

        A missing or damaged manifest next to parts that are all cells of ``spec`` is
        noted for :meth:`begin_run` to rebuild; parts that are not raise
        :class:`StoreError` naming the disagreement.  Nothing is written.
        """
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: exists and is not a directory; choose another --out")
        self._spec = spec
        self._rebuilt = None
        state, value = _manifest_state(self.root)
        if state == "ok":
            manifest = value
        elif state == "missing" and not _Listing(self.root).parts:
            return
        else:
            self._rebuilt = _rebuild_manifest(self.root, spec, value)
            manifest = self._rebuilt[0]
        if manifest.get("sweep_hash") != spec.content_hash:
            raise StoreError(
                f"{self.root}: holds results of a different sweep "
                f"({manifest.get('sweep_name')!r} from {manifest.get('sweep_source')!r}, "
                f"content hash {str(manifest.get('sweep_hash'))[:12]} != "
                f"{spec.content_hash[:12]}); its cells would mix with this one's. "
                "Use --out DIR for a separate directory, or remove the old one"
            )

    def read_parts(
        self, columns: list[str] | None = None, on_corrupt: str = "raise", warn: bool = True
    ):
        """Verified tables of the parts (see :func:`_read_parts`)."""
        return _read_parts(self.root, columns, on_corrupt=on_corrupt, warn=warn)

    def stored_index(self, on_corrupt: str = "raise", warn: bool = True) -> StoredIndex:
        """The stored cells and their statuses (after de-duplication)."""
        read = _read_parts(self.root, ["cell_id", "status"], on_corrupt=on_corrupt, warn=warn)
        return StoredIndex.from_tables(read.tables)

    def stored_statuses(self, on_corrupt: str = "raise") -> dict[str, str]:
        """``cell_id -> status`` of the stored rows (after de-duplication)."""
        return self.stored_index(on_corrupt).to_dict()

    def corrupt_parts(self) -> list[tuple[Path, str]]:
        """Corrupted part files (path, why), found by reading every part; nothing moved."""
        return _read_parts(self.root, ["cell_id"], on_corrupt="collect", warn=False).corrupt

    # -- writing
    def lock(self) -> None:
        """Hold an exclusive lock on the directory for the duration of a run."""
        import fcntl

        ensure_directory(self.root)
        try:
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _disk_error(self.root / ".lock", exc) from None
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

    def _remove_leftovers(self) -> int:
        """Delete temporary files of interrupted writes (only under the lock)."""
        removed = 0
        for directory in (self.root, self.parts):
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if _is_leftover(path) and path.is_file():
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed += 1
        return removed

    def quarantine(self) -> list[tuple[Path, str, Path]]:
        """Move corrupted parts to ``quarantine/`` (only under the lock), saying so.

        The cell ids still readable from a moved part (their pages pass their checksums)
        are added to :attr:`quarantined_cells`.  Returns (part, why, new path) per part.
        """
        import pyarrow.parquet as pq

        moved = []
        for path, why in self.corrupt_parts():
            ids: set[str] = set()
            with contextlib.suppress(Exception):
                table = pq.read_table(path, columns=["cell_id"], page_checksum_verification=True)
                ids = {c for c in table.column("cell_id").to_pylist() if isinstance(c, str)}
            target_dir = self.root / QUARANTINE
            ensure_directory(target_dir)
            dest = target_dir / path.name
            k = 1
            while dest.exists():
                dest = target_dir / f"{path.name}.{k}"
                k += 1
            try:
                os.replace(path, dest)
            except OSError as exc:
                raise _disk_error(path, exc, "cannot move the corrupted part aside") from None
            _fsync_dir(self.parts)
            self.quarantined_cells |= ids
            moved.append((path, why, dest))
            warnings.warn(
                f"{path}: corrupted part file ({why}); moved to {dest}, and its cells will "
                "be computed again",
                stacklevel=2,
            )
        self.quarantined.extend(moved)
        return moved

    def begin_run(self, spec, run: dict[str, Any]) -> None:
        """Lock the directory (creating it), tidy it and record the run in the manifest.

        Tidying: temporary files of interrupted writes are deleted, corrupted parts are
        quarantined, a missing or damaged manifest is rebuilt (see :func:`load_manifest`)
        and a copy of the sweep file is kept next to the manifest.
        """
        self.check_compatible(spec)
        self.lock()
        try:
            self._remove_leftovers()
            self.quarantine()
            ensure_directory(self.parts)
            if self._rebuilt is not None:
                manifest, note = self._rebuilt
                warnings.warn(note, stacklevel=2)
            else:
                manifest = self.manifest() or _new_manifest(spec, run.get("started_at"))
            name, data = _sweep_copy(spec)
            if not (self.root / name).exists():
                atomic_write_bytes(self.root / name, data)
            manifest["runs"].append(run)
            self._write_manifest(manifest)
            self._rebuilt = None
        except BaseException:
            self.unlock()
            raise

    def end_run(self, run_id: str, **updates: Any) -> None:
        manifest = self.manifest()
        if manifest is None:
            return
        for run in manifest["runs"]:
            if run.get("run_id") == run_id:
                run.update(updates)
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        _write_manifest_file(self.root, manifest)

    def writer(
        self,
        run_id: str,
        flush_rows: int = 64,
        flush_seconds: float = 2.0,
        background: bool = False,
        warm: bool = False,
    ) -> PartWriter:
        return PartWriter(
            self.parts, run_id, flush_rows, flush_seconds, background=background, warm=warm
        )

    def compact(self, run_id: str) -> int:
        """Merge all part files into one (de-duplicated); return the number of rows kept.

        Streams one part at a time into the merged file, which is written, checksummed
        and renamed into place before the parts it replaces are deleted (readers
        de-duplicate if both are present, and re-read if a part vanishes under them).
        Corrupted and foreign files are left alone.  ``-1`` when there was nothing to merge.
        """
        import pyarrow as pa

        from . import arrow

        index = _read_parts(self.root, ["cell_id", "status"], on_corrupt="collect", warn=False)
        if len(index.paths) <= 1:
            return -1
        table = _concat(index.tables)
        keep = _kept_rows(table)
        kept_part = arrow.to_numpy(table.column("_part"))[keep]
        kept_row = arrow.to_numpy(table.column("_row"))[keep]
        rows_of = {i: kept_row[kept_part == i] for i in range(len(index.paths))}
        try:
            final = self._write_merged(index.paths, rows_of, run_id)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            final = self._write_merged_in_memory(index.paths, rows_of, run_id)
        if final is None:
            return -1
        for f in index.paths:
            if f != final:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
        _fsync_dir(self.parts)
        return len(keep)

    def _write_merged(self, paths, rows_of, run_id) -> Path | None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schemas = []
        for p in paths:
            try:
                schemas.append(pq.read_schema(p))
            except (OSError, pa.ArrowException):
                return None  # changed under us: leave the parts as they are
        schema = pa.unify_schemas(
            [s.remove_metadata() for s in schemas], promote_options="permissive"
        )

        def tables():
            for i, p in enumerate(paths):
                try:
                    t = _read_part(p)
                except (_Corrupt, _Foreign, FileNotFoundError) as exc:
                    raise _Abort(str(exc)) from None
                yield _conform(_rows(t, rows_of[i]), schema)

        return self._write_streamed(schema, tables(), run_id)

    def _write_merged_in_memory(self, paths, rows_of, run_id) -> Path | None:
        pieces = []
        for i, p in enumerate(paths):
            try:
                pieces.append(_rows(_read_part(p), rows_of[i]))
            except (_Corrupt, _Foreign, FileNotFoundError):
                return None
        table = _concat(pieces)
        return self._write_streamed(table.schema, iter([table]), run_id)

    def _write_streamed(self, schema, tables, run_id) -> Path | None:
        import pyarrow.parquet as pq

        tmp = _tmp_name(self.parts / "compacted")
        try:
            try:
                with pq.ParquetWriter(
                    tmp, schema, compression=PART_COMPRESSION, write_page_checksum=True
                ) as out:
                    for t in tables:
                        out.write_table(t)
            except _Abort:
                return None
            digest = hashlib.sha256()
            with open(tmp, "rb+") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
                os.fsync(fh.fileno())
            final = self.parts / _part_name(run_id, 0, "c", digest.hexdigest()[:HASH_DIGITS])
            _replace_from(tmp, final)
            return final
        except OSError as exc:
            raise _disk_error(self.parts, exc, "cannot write the compacted part") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


class _Abort(Exception):
    pass


def _rows(table, rows: np.ndarray):
    """The rows ``rows`` (increasing) of ``table``; the table itself when they are all of
    them, as they are unless the part holds a cell stored again later."""
    from . import arrow

    if len(rows) == table.num_rows and (len(rows) == 0 or rows[-1] == len(rows) - 1):
        return table
    return table.take(arrow.from_numpy(rows))


def _conform(table, schema):
    """``table`` with exactly the columns and types of ``schema`` (missing ones null)."""
    import pyarrow as pa

    columns = []
    present = set(table.column_names)  # a list built anew on every access
    for field in schema:
        if field.name in present:
            col = table.column(field.name)
            if not col.type.equals(field.type):
                col = col.cast(field.type)
            columns.append(col)
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class PartWriter:
    """Buffers rows and writes them as atomic, checksummed Parquet part files.

    A part is written when ``flush_rows`` rows are buffered, once the oldest buffered row
    is ``flush_seconds`` old (checked on :meth:`add` and :meth:`tick`, and every tenth of
    a second by a background thread when ``background`` is set, so a row is on disk
    within about ``flush_seconds`` even while the calling thread computes the next
    cell), and on :meth:`flush`.  A write that fails in the background is raised by the
    next :meth:`add`, :meth:`tick`, :meth:`check` or :meth:`flush`.
    """

    def __init__(
        self,
        directory: Path,
        run_id: str,
        flush_rows: int,
        flush_seconds: float,
        background: bool = False,
        warm: bool = False,
    ):
        self.directory = Path(directory)
        self.run_id = run_id
        self.flush_rows = max(1, int(flush_rows))
        self.flush_seconds = float(flush_seconds)
        self._buffer: list[dict[str, Any]] = []
        self._since = 0.0
        self._counter = 0
        self._lock = threading.RLock()
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.files_written = 0
        if background:
            self._thread = threading.Thread(
                target=self._background, args=(warm,), name="simbench-part-writer", daemon=True
            )
            self._thread.start()

    def _background(self, warm: bool) -> None:
        if warm:
            # the first conversion of rows imports pyarrow: some 0.1 s, paid now rather
            # than by the first write
            rows_to_table([{"warm": 0.0}])
        period = min(0.1, max(0.01, self.flush_seconds / 5))
        while not self._stop.wait(period):
            try:
                self._tick()
            except BaseException as exc:  # reported to the caller's thread
                self._error = exc
                return

    def check(self) -> None:
        """Raise the error of a failed background write, if any."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def add(self, row: dict[str, Any]) -> None:
        self.check()
        with self._lock:
            if not self._buffer:
                self._since = time.monotonic()
            self._buffer.append(row)
            if len(self._buffer) >= self.flush_rows:
                self._flush()
            else:
                self._tick()

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def _tick(self) -> None:
        with self._lock:
            if self._buffer and time.monotonic() - self._since >= self.flush_seconds:
                self._flush()

    def tick(self) -> None:
        self.check()
        self._tick()

    def flush(self) -> None:
        self.check()
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = rows_to_table(self._buffer)
        self._counter += 1
        write_part(self.directory, self.run_id, self._counter, table)
        self.rows_written += len(self._buffer)
        self.files_written += 1
        self._buffer = []

    def close(self) -> None:
        """Stop the background thread (buffered rows stay buffered: :meth:`flush` them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def pending(self) -> int:
        return len(self._buffer)
