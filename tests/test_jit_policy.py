"""The JIT policy lives in one module, and importing simbench compiles nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import simbench

PACKAGE = Path(simbench.__file__).resolve().parent
DIRECT_JIT = re.compile(
    r"@(numba\.)?(n?jit|vectorize|guvectorize|cfunc)\b|numba\.n?jit\(|from numba import .*\bn?jit\b"
)


def test_only_jit_module_applies_numba_decorators():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_jit.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if DIRECT_JIT.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {line.strip()}")
    assert not offenders, "Numba decorators outside simbench/_jit.py:\n" + "\n".join(offenders)


def test_policy_pattern_catches_a_direct_decorator():
    # guards the guard: the pattern must see the forms it is meant to forbid
    assert DIRECT_JIT.search("@njit(cache=True)")
    assert DIRECT_JIT.search("@numba.jit")
    assert DIRECT_JIT.search("f = numba.njit(g)")
    assert DIRECT_JIT.search("from numba import njit")
    assert not DIRECT_JIT.search("from simbench._jit import kernel")


def test_import_is_cheap_and_compiles_nothing():
    code = (
        "import sys, simbench\n"
        "heavy = ('numba', 'scipy', 'pandas', 'pyarrow', 'matplotlib')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import simbench pulled in: {out.stdout.strip()}"


def test_kernel_decorator_applies_policy():
    from simbench._jit import kernel

    @kernel(cache=False)
    def divide(a, b):
        return a / b

    # error_model="numpy": division by zero is inf, not ZeroDivisionError
    assert divide(1.0, 0.0) == float("inf")
    assert divide.targetoptions["nogil"] is True
    assert divide.targetoptions["error_model"] == "numpy"


def test_prefetch_row_compiles_for_any_width_and_layout_and_changes_nothing():
    import numpy as np
    import pytest
    from numba.core.errors import TypingError

    from simbench._jit import kernel_nocache, prefetch_row

    @kernel_nocache  # a test helper: nothing worth caching
    def row_sums(X, order):
        out = np.zeros(order.size)
        for r in range(order.size):
            if r + 1 < order.size:
                prefetch_row(X, order[r + 1])
            for k in range(X.shape[1]):
                out[r] += X[order[r], k]
        return out

    def reference(X, order):  # the same sums, left to right
        return np.array([sum(X[i].tolist(), 0.0) for i in order])

    rng = np.random.default_rng(0)
    order = rng.permutation(40).astype(np.int32)
    for p in (0, 1, 7, 8, 9, 50):
        X = rng.normal(size=(40, p))
        before = X.copy()
        np.testing.assert_array_equal(row_sums(X, order), reference(X, order))
        np.testing.assert_array_equal(X, before)
    strided = rng.normal(size=(40, 30))[:, ::3]  # neither C- nor F-contiguous
    np.testing.assert_array_equal(row_sums(strided, order), reference(strided, order))

    @kernel_nocache
    def on_a_vector(x):
        prefetch_row(x, 0)

    with pytest.raises(TypingError, match="2-D array and a row index"):
        on_a_vector(np.zeros(3))
