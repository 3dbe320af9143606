"""Kernels compiled for a call from another kernel are compiled for linking only
(:mod:`simbench._link_only`): no wrapper for Python, no machine code, a cache entry of
their own; a call from Python compiles them whole; callers' code is unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from cli_support import env_for_subprocess

# a leaf kernel that raises with a value known only at run time (its message lives in the
# kernel's environment), a caller, and a second caller that the first process never runs
_MODULE = """
import numpy as np
from simbench._jit import kernel


@kernel
def leaf(x, k):
    if k < 0:
        raise ValueError("negative k", k)
    return x * 2.0 + k


@kernel
def caller(x, k):
    s = 0.0
    for i in range(x.size):
        s += leaf(x[i], k)
    return s


@kernel
def other_caller(x, k):
    return leaf(x[0], k) - leaf(x[-1], k)


@kernel
def solo(x):
    return x * x


@kernel
def uses_solo(x):
    return solo(x[0]) + solo(x[-1])
"""

_PRELUDE = """
import json, sys
import numpy as np
from numba.core import event
import simbench._link_only as link_only

if sys.argv[1] == "numba":  # as with a Numba it does not support: Numba's own compiling
    link_only._numba_supports_it = lambda: False

compiled = []


class Record(event.Listener):
    def on_start(self, ev):
        func = ev.data["dispatcher"].py_func
        ours = func.__module__ in ("linkmod", "loadmod")
        compiled.append(func.__name__ if ours else "numba")

    def on_end(self, ev):
        pass


event.register("numba:compile", Record())
"""

_FIRST = """
import linkmod

out = {}
x = np.arange(3.0)
out["caller"] = linkmod.caller(x, 1)
(sig,) = linkmod.leaf.signatures
cres = linkmod.leaf.overloads[sig]
out["leaf_link_only"] = link_only.is_link_only(cres)
out["leaf_has_machine_code"] = cres.library._compiled_object is not None
try:
    linkmod.caller(x, -2)
except ValueError as exc:
    out["raised"] = list(exc.args)
out["leaf_from_python"] = linkmod.leaf(1.5, 2)
out["solo"] = linkmod.solo(3.0)
out["leaf_link_only_after"] = link_only.is_link_only(linkmod.leaf.overloads[sig])
out["compiled"] = compiled
out["leaf_signatures"] = [str(s) for s in linkmod.leaf.signatures]
out["caller_ir"] = linkmod.caller.inspect_llvm(linkmod.caller.signatures[0])
print(json.dumps(out))
"""

_SECOND = """
import linkmod

out = {}
out["other_caller"] = linkmod.other_caller(np.arange(3.0), 1)
out["caller"] = linkmod.caller(np.arange(3.0), 1)
(sig,) = linkmod.caller.signatures
out["caller_module_parsed"] = linkmod.caller.overloads[sig].library._shared_module is not None
out["uses_solo"] = linkmod.uses_solo(np.arange(3.0))
(sig,) = linkmod.solo.signatures
solo = linkmod.solo.overloads[sig]
out["solo_link_only"] = link_only.is_link_only(solo)
out["solo_module_parsed"] = solo.library._shared_module is not None
out["compiled"] = compiled
print(json.dumps(out))
"""


def _run(tmp_path, body: str, side: str, cache, module=("linkmod", _MODULE), threads=1) -> dict:
    """``body`` after the prelude in a fresh process, with ``module`` (name, source) written
    to ``tmp_path``; the JSON it prints last."""
    name, source = module
    (tmp_path / f"{name}.py").write_text(source)
    env = env_for_subprocess(NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS=threads)
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PRELUDE) + textwrap.dedent(body), side],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory):
    """The first process on an empty cache, with simbench's compiling and with Numba's,
    the same module in the same place (its path is in the exception's message)."""
    root = tmp_path_factory.mktemp("link_only")
    return {side: (root, _run(root, _FIRST, side, root / side)) for side in ("simbench", "numba")}


def test_this_numba_has_what_compiling_for_linking_relies_on():
    from simbench import _link_only

    assert _link_only._numba_supports_it()


def test_a_kernel_called_by_a_kernel_is_compiled_for_linking_only(first_runs):
    root, out = first_runs["simbench"]
    assert out["caller"] == 9.0
    assert out["leaf_link_only"] is True
    assert out["leaf_has_machine_code"] is False
    assert sorted(p.name.split("-")[0] for p in (root / "simbench").rglob("*.nbi")) == [
        "linkmod.caller",
        "linkmod.leaf",
        "linkmod.leaf.link",
        "linkmod.solo",
    ]
    # without simbench's compiling, Numba's own: the leaf has its wrapper and machine code
    _, numba = first_runs["numba"]
    assert numba["caller"] == 9.0
    assert numba["leaf_link_only"] is False and numba["leaf_has_machine_code"] is True


def test_a_link_only_kernel_raises_with_its_runtime_message(first_runs):
    """Its environment (the exception's arguments) is set in the caller that links it."""
    for side in ("simbench", "numba"):
        assert first_runs[side][1]["raised"] == ["negative k", -2]


def test_a_call_from_python_compiles_a_link_only_kernel_whole(first_runs):
    _, out = first_runs["simbench"]
    assert out["leaf_from_python"] == 5.0
    assert out["leaf_link_only_after"] is False
    assert out["compiled"] == ["caller", "leaf", "leaf", "solo"]  # leaf: linking, then whole


def _functions_and_globals(ir: str) -> tuple[str, list[str]]:
    """The function definitions of a module's LLVM IR, in order, and its other lines (the
    globals and declarations, whose order follows the order of linking), sorted."""
    start = ir.index("\ndefine ")
    return ir[start:], sorted(ir[:start].splitlines())


def test_callers_compile_to_the_same_code_as_with_numba_alone(first_runs):
    ours, numba = first_runs["simbench"][1]["caller_ir"], first_runs["numba"][1]["caller_ir"]
    assert "leaf" in ours and "negative k" in ours
    assert _functions_and_globals(ours) == _functions_and_globals(numba)


@pytest.fixture(scope="module")
def second_run(first_runs):
    """A second process on the cache the first one (simbench's) wrote."""
    root, _ = first_runs["simbench"]
    return _run(root, _SECOND, "simbench", root / "simbench")


def test_a_new_caller_links_the_cached_module_without_compiling_it(second_run):
    """In a new process, callers link what the cache holds: the module cached for linking
    (leaf), or the one beside a kernel's machine code (solo, compiled whole for Python)."""
    out = second_run
    assert out["other_caller"] == -4.0 and out["caller"] == 9.0 and out["uses_solo"] == 4.0
    assert out["compiled"] == ["other_caller", "uses_solo"]  # leaf, caller and solo load
    assert out["solo_link_only"] is False


def test_a_loaded_kernel_parses_its_module_only_when_a_caller_links_it(second_run):
    out = second_run
    assert out["caller_module_parsed"] is False  # loaded and run: nothing links it
    assert out["solo_module_parsed"] is True  # linked into uses_solo


# kernels that need what a load must still set up: a parallel region (the threading layer),
# an allocation (Numba's runtime) and an exception with a value known only at run time;
# and one inlined into its callers, which Python can call too
_LOAD_MODULE = """
import numpy as np
from numba import prange
from simbench._jit import kernel


@kernel(parallel=True)
def total(x):
    s = 0.0
    for i in prange(x.size):
        s += x[i]
    return s


@kernel
def doubled(x, k):
    if k < 0:
        raise ValueError("negative k", k)
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = 2.0 * x[i] + k
    return out


@kernel(inline=True)
def first(x):
    return x[0]
"""

_LOAD = """
import loadmod

x = np.arange(1000.0)
out = {"total": loadmod.total(x), "doubled": loadmod.doubled(x[:3], 1).tolist()}
out["first"] = loadmod.first(x[5:])
try:
    loadmod.doubled(x, -3)
except ValueError as exc:
    out["raised"] = list(exc.args)
out["compiled"] = compiled
out["compiler_set_up"] = "numba.np.arraymath" in sys.modules
print(json.dumps(out))
"""


def _run_load(tmp_path, side: str) -> dict:
    return _run(tmp_path, _LOAD, side, tmp_path / side, ("loadmod", _LOAD_MODULE), threads=2)


def test_a_kernel_loads_from_the_cache_without_setting_up_the_compiler(tmp_path):
    """Loaded code runs its parallel region, allocates and raises with its run-time
    message, without Numba importing its compiler's modules first (some 0.3 s); with Numba's
    own loading, the same process imports them."""
    expected = {
        "total": 499500.0,
        "doubled": [1.0, 3.0, 5.0],
        "first": 5.0,
        "raised": ["negative k", -3],
    }
    for side in ("simbench", "numba"):
        compiling = _run_load(tmp_path, side)
        assert [f for f in compiling["compiled"] if f != "numba"] == ["total", "doubled", "first"]
        loading = _run_load(tmp_path, side)
        assert {k: loading[k] for k in expected} == expected == {k: compiling[k] for k in expected}
        assert loading["compiled"] == []
        assert loading["compiler_set_up"] is (side == "numba")
