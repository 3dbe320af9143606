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
