"""Arrow arrays from Python and NumPy values, and NumPy arrays from Arrow, without pandas.

pyarrow imports pandas the first time it converts a Python list, a NumPy array or a Python
scalar (``pa.array``, ``pa.scalar``, ``Array.to_numpy``): it asks whether the value is a
pandas object.  That costs some 0.15 s, about a tenth of a short run that never uses
pandas.  The store's hot paths convert through these functions instead; each builds the
Arrow buffers itself for the plain kinds of values a run writes and reads, gives exactly
what pyarrow's own conversion gives for them, and leaves anything else to pyarrow.
Likewise :func:`index_in` reads a string column's buffers where ``pyarrow.compute``, whose
import takes some 0.05 s, would otherwise be imported for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["array", "from_numpy", "index_in", "to_numpy"]

_NONE = type(None)
_INT64 = (-(2**63), 2**63 - 1)
# offsets of Arrow's string and list arrays are 32-bit
_MAX_OFFSET = 2**31 - 1


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap of ``values`` (None: null) and the null count."""
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    nulls = len(values) - int(np.count_nonzero(valid))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _offsets(lengths: list[int]) -> pa.Buffer | None:
    """The 32-bit offsets of items of these lengths, or None where they overflow."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return None if offsets[-1] > _MAX_OFFSET else pa.py_buffer(offsets.astype(np.int32))


# what stands in a null's slot of the data buffer (its value is never read)
_FILL = {float: 0.0, int: 0, bool: False, str: ""}


def _primitive(kind: type, values: Sequence[Any]) -> pa.Array | None:
    n = len(values)
    bitmap, nulls = _validity(values)
    plain = values if not nulls else [_FILL[kind] if v is None else v for v in values]
    if kind is float:
        return pa.Array.from_buffers(
            pa.float64(), n, [bitmap, pa.py_buffer(np.array(plain, dtype=np.float64))], nulls
        )
    if kind is int:
        if min(plain) < _INT64[0] or max(plain) > _INT64[1]:
            return None  # pyarrow decides (unsigned, or an error)
        return pa.Array.from_buffers(
            pa.int64(), n, [bitmap, pa.py_buffer(np.array(plain, dtype=np.int64))], nulls
        )
    if kind is bool:
        bits = np.packbits(np.array(plain, dtype=bool), bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [bitmap, pa.py_buffer(bits)], nulls)
    # str
    encoded = [s.encode("utf-8") for s in plain]
    offsets = _offsets([len(b) for b in encoded])
    if offsets is None:
        return None
    return pa.Array.from_buffers(
        pa.string(), n, [bitmap, offsets, pa.py_buffer(b"".join(encoded))], nulls
    )


def _kind(values: Sequence[Any]) -> type | None:
    """The one Python type of the values that are not None, or None (mixed, or all None)."""
    kinds = set(map(type, values))
    kinds.discard(_NONE)
    return next(iter(kinds)) if len(kinds) == 1 else None


def array(values: Sequence[Any]) -> pa.Array:
    """``pa.array(values)`` for a list of Python values, without importing pandas where the
    values are all floats, all ints, all bools, all strings, or all lists of one of those
    (each with None for missing; all None, and lists all empty, are Arrow's null type);
    anything else goes to ``pa.array`` itself."""
    built = _build(values)
    return built if built is not None else pa.array(values)


def _build(values: Sequence[Any]) -> pa.Array | None:
    kind = _kind(values)
    if kind in _FILL:
        return _primitive(kind, values)
    if kind is None and all(v is None for v in values):
        return pa.nulls(len(values))  # Arrow's null type, as pa.array infers it
    if kind is not list:
        return None  # mixed kinds, other types: pyarrow's rules
    inner = [x for v in values if v is not None for x in v]
    child = _build(inner)  # no values at all: Arrow's list<null>, as for all None
    if child is None or isinstance(child.type, pa.ListType):
        return None  # deeper nesting, or what pyarrow decides
    offsets = _offsets([0 if v is None else len(v) for v in values])
    if offsets is None:
        return None
    bitmap, nulls = _validity(values)
    return pa.Array.from_buffers(
        pa.list_(child.type), len(values), [bitmap, offsets], nulls, children=[child]
    )


def from_numpy(a: np.ndarray) -> pa.Array:
    """A 1-D int64 or float64 NumPy array as an Arrow array (no nulls), as ``pa.array``."""
    a = np.ascontiguousarray(a)
    if a.ndim != 1 or a.dtype not in (np.int64, np.float64):
        return pa.array(a)
    arrow_type = pa.int64() if a.dtype == np.int64 else pa.float64()
    return pa.Array.from_buffers(arrow_type, len(a), [None, pa.py_buffer(a)], 0)


_DTYPES = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def to_numpy(column: pa.Array | pa.ChunkedArray, fill: Any = None) -> np.ndarray:
    """``column.to_numpy(zero_copy_only=False)`` (a copy), or with ``fill`` that of
    ``column.fill_null(fill)``, without importing pandas for int32, int64, float64 and
    string columns: numbers as their own dtype (nulls as NaN, and integers with nulls as
    float64, as pyarrow gives them), strings as an object array (None for null).  Other
    types go through pyarrow's own conversion."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        values = column.to_pylist()
        if fill is not None:
            values = [fill if v is None else v for v in values]
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    dtype = _DTYPES.get(column.type)
    if dtype is None:
        if column.null_count and fill is not None:
            column = column.fill_null(fill)
        return column.to_numpy(zero_copy_only=False)
    n, start = len(column), column.offset
    data = column.buffers()[1]
    out = np.frombuffer(data, dtype=dtype, count=n, offset=start * np.dtype(dtype).itemsize)
    if not column.null_count:
        return out.copy()
    null = ~_bitmap(column)
    out = out.astype(np.float64) if fill is None else out.copy()
    out[null] = np.nan if fill is None else fill
    return out


def _bitmap(column: pa.Array) -> np.ndarray:
    """Whether each value of ``column`` is valid (not null), from its validity bitmap."""
    n, start = len(column), column.offset
    if not column.null_count:
        return np.ones(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(column.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[start : start + n].astype(bool)


def index_in(column: pa.Array | pa.ChunkedArray, words: Sequence[str], missing: int) -> np.ndarray:
    """For a string column: the position in ``words`` of each value, ``missing`` for a null
    or any other value; ``pyarrow.compute.index_in`` with ``fill_null(missing)``, from the
    column's offsets and bytes (a comparison per word and character)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise TypeError(f"index_in needs a string column; got {column.type}")
    n, start = len(column), column.offset
    out = np.full(n, missing, dtype=np.int64)
    if n == 0:
        return out
    _, offsets_buf, data_buf = column.buffers()
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)[start : start + n + 1].astype(np.int64)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    )
    starts, lengths = offsets[:-1], np.diff(offsets)
    valid = _bitmap(column)
    first = np.zeros(n, dtype=np.uint8)  # each value's first byte: few rows left to compare
    first[lengths > 0] = data[starts[lengths > 0]]
    for code, word in enumerate(words):
        text = np.frombuffer(word.encode(), dtype=np.uint8)
        match = valid & (lengths == len(text))
        if len(text):
            match &= first == text[0]
        rows = np.flatnonzero(match)
        same = np.ones(len(rows), dtype=bool)
        for j in range(1, len(text)):
            same &= data[starts[rows] + j] == text[j]
        out[rows[same]] = code
    return out
