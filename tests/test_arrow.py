"""simbench.sweep.arrow: pyarrow's own conversions, without the pandas import they cost.

Every conversion is checked against pyarrow's (type, values, nulls, and a full validation
of the buffers built), on generated columns of the kinds a run writes and on the kinds
left to pyarrow; and a whole run, its summary included, is checked not to import pandas.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbench.sweep import arrow

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(max_size=8)


def _nullable(values):
    return st.one_of(st.none(), values)


def _column(values, max_size=20):
    return st.lists(_nullable(values), max_size=max_size)


COLUMNS = st.one_of(
    _column(FLOATS),
    _column(INTS),
    _column(st.booleans()),
    _column(TEXT),
    _column(st.lists(_nullable(FLOATS), max_size=4)),
    _column(st.lists(INTS, max_size=4)),
    _column(st.lists(TEXT, max_size=3)),
    # left to pyarrow: mixed kinds, integers beyond int64, nesting
    _column(st.one_of(FLOATS, INTS)),
    _column(st.integers(min_value=2**63, max_value=2**64 - 1)),
    _column(st.just([])),
    _column(st.lists(st.lists(FLOATS, max_size=2), max_size=2)),
)


def _same(a: pa.Array, b: pa.Array) -> bool:
    # NaN compares unequal to itself: compare the Python values by their text
    return (
        a.type == b.type
        and a.null_count == b.null_count
        and repr(a.to_pylist()) == repr(b.to_pylist())
    )


@given(COLUMNS)
def test_array_gives_what_pyarrow_gives(values):
    try:
        expected = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            arrow.array(values)
        return
    got = arrow.array(values)
    got.validate(full=True)
    assert _same(got, expected)


def test_the_kinds_a_run_writes_are_built_here():
    """Floats, ints, bools, strings, lists of them and all-null columns do not go through
    ``pa.array`` (which would import pandas)."""
    for values in (
        [1.5, None, math.nan],
        [3, None],
        [True, None],
        ["ok", None, ""],
        [[0.1, 0.2], [], None],
        [[1, 2]],
        [None, None],
        [[], None],
        [[None]],
    ):
        assert arrow._build(values) is not None, values
    for values in ([1, 2.0], [2**63], [["a", 1]], [[[1.0]]]):
        assert arrow._build(values) is None, values


@given(st.lists(FLOATS, max_size=30), st.integers(0, 5))
def test_from_and_to_numpy_give_what_pyarrow_gives(values, start):
    floats = np.array(values, dtype=np.float64)
    ints = np.arange(len(values), dtype=np.int64) - 3
    for a in (floats, ints):
        got = arrow.from_numpy(a)
        got.validate(full=True)
        assert _same(got, pa.array(a))
        # slices and chunks: offsets into the buffers
        column = pa.chunked_array([pa.array(a)[start:], pa.array(a[:start])], type=got.type)
        expected = column.to_numpy()
        assert np.array_equal(arrow.to_numpy(column), expected, equal_nan=True)
        assert arrow.to_numpy(column).dtype == expected.dtype


@pytest.mark.parametrize(
    "values, arrow_type",
    [
        ([1, None, 3, None], pa.int64()),
        ([1, None, 3], pa.int32()),
        ([1.0, None, math.nan], pa.float64()),
        (["a", None, "é"], pa.string()),
        (["a", None], pa.large_string()),
        ([True, None], pa.bool_()),
        ([None, None], pa.null()),
    ],
)
@pytest.mark.parametrize("start", [0, 1])
def test_to_numpy_with_nulls_and_fills_gives_what_pyarrow_gives(values, arrow_type, start):
    column = pa.array(values, arrow_type)[start:]
    expected = column.to_numpy(zero_copy_only=False)
    got = arrow.to_numpy(column)
    assert got.dtype == expected.dtype and repr(got.tolist()) == repr(expected.tolist())
    if arrow_type in (pa.int64(), pa.int32(), pa.float64(), pa.string()):
        fill = "x" if arrow_type == pa.string() else 255
        expected = column.fill_null(fill).to_numpy(zero_copy_only=False)
        got = arrow.to_numpy(column, fill=fill)
        assert got.dtype == expected.dtype and repr(got.tolist()) == repr(expected.tolist())


def test_status_codes_of_index_in_with_nulls():
    """The store's use: the position of each status in the vocabulary, 255 where absent."""
    column = pa.array(["error", "weird", None, "ok"])
    assert arrow.index_in(column, ("ok", "error"), 255).tolist() == [1, 255, 255, 0]
    with pytest.raises(TypeError, match="string column"):
        arrow.index_in(pa.array([1, 2]), ("ok",), 255)


WORDS = ("ok", "error", "diverged", "timeout", "skipped")
# the vocabulary, its prefixes and extensions, other lengths and bytes, and anything
NEAR_WORDS = st.one_of(
    st.sampled_from([*WORDS, "", "o", "okk", "Ok", "errors", "timeoute", "skippeD", "é"]),
    TEXT,
)


@given(st.lists(_nullable(NEAR_WORDS), max_size=30), st.integers(0, 5), st.booleans())
def test_index_in_gives_what_pyarrow_compute_gives(values, start, large):
    column = pa.array(values, pa.large_string() if large else pa.string())
    # slices and chunks: offsets into the buffers
    column = pa.chunked_array([column[start:], column[:start]], type=column.type)
    expected = arrow.to_numpy(pc.index_in(column, value_set=pa.array(WORDS)), fill=255)
    got = arrow.index_in(column, WORDS, 255)
    assert got.tolist() == expected.tolist()
    assert arrow.index_in(column.combine_chunks()[start:], WORDS, 255).tolist() == (
        expected[start:].tolist()
    )


_RUN = """
import sys
from simbench.cli import main
code = main(["run", sys.argv[1], "--jobs", "1", "--out", sys.argv[2]])
print(code, "pandas" in sys.modules, "pyarrow" in sys.modules, "pyarrow.compute" in sys.modules)
"""

_SWEEP = """
[sweep]
name = "no_pandas"
replicates = 2
seed = 3

[[scenarios]]
family = ["poisson", "bernoulli"]
n = 100
p = 2

[[configs]]
name = "glm-irls"
hidden = []
optimizer = "irls"
"""


def test_a_run_and_its_summary_import_no_pandas(tmp_path):
    """``simbench run`` writes, compacts, totals and summarises its results through Arrow
    alone: pandas (some 0.15 s to import) is left to the commands that need it, and so is
    ``pyarrow.compute`` (some 0.05 s) where no cell was stored twice."""
    from cli_support import env_for_subprocess

    sweep = tmp_path / "sweep.toml"
    sweep.write_text(_SWEEP)
    res = subprocess.run(
        [sys.executable, "-c", _RUN, str(sweep), str(tmp_path / "res")],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "0 False True False"
    import simbench

    df = simbench.load(tmp_path / "res")
    assert len(df) == 4 and (df["status"] == "ok").all()
