"""The JIT policy lives in one module, and importing simbench compiles nothing; the thread
policy (simbench._threads) sets the thread counts it promises, and thread counts never change
results."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    # no C-callable wrapper is built beside the kernel; the one Python calls is
    cres = divide.overloads[divide.signatures[0]]
    module = cres.library.get_llvm_str()
    assert cres.fndesc.llvm_cfunc_wrapper_name not in module
    assert cres.fndesc.llvm_cpython_wrapper_name in module


def test_calls_from_compiled_code_compile_a_kernel_per_type_not_per_constant():
    """A kernel called with constants and with a variable compiles once (Numba's default
    would compile it once per literal value, with everything it calls); an inlined kernel
    still sees its constants, so a branch on one is pruned where it is inlined."""
    from numba import types

    from simbench._jit import kernel

    @kernel(cache=False)
    def scaled(x, mode):
        return x * 2.0 if mode == 1 else x

    @kernel(cache=False, inline=True)
    def pick(flag):
        if flag:
            return 1.0
        return "never typed"  # a str: typing this branch would fail to unify with a float

    @kernel(cache=False)
    def caller(x, mode):
        return scaled(x, 1) + scaled(x, 2) + scaled(x, mode) + pick(True)

    assert caller(1.5, 3) == 3.0 + 1.5 + 1.5 + 1.0
    assert len(scaled.signatures) == 1
    assert scaled.signatures[0] == (types.float64, types.int64)


def _kernel_references():
    """Every kernel of the package by name, with its decorator's options, and every place a
    name of one is read: the enclosing kernel's name, or None outside kernels (Python code,
    which calls the dispatcher itself or hands it on)."""
    import ast

    options, places = {}, {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())

        def visit(node, where):
            if isinstance(node, ast.FunctionDef):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                kernel = [d for d in decorators if d == "kernel" or d.startswith("kernel(")]
                if kernel:
                    options[node.name] = kernel[0]
                where = node.name if kernel else None
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                places.setdefault(node.id, []).append(where)
            elif isinstance(node, ast.Attribute):
                places.setdefault(node.attr, []).append(where)
            for child in ast.iter_child_nodes(node):
                visit(child, where)

        visit(tree, None)
    return options, places


def test_a_kernel_called_from_one_place_is_inlined_there():
    """Numba compiles every kernel that a kernel calls into a library of its own (optimised
    and turned into machine code) and then links it into the caller, which optimises and
    translates it again: along a chain of helpers with one caller each, the code at the
    bottom was compiled once per level.  So a kernel read in one place only, inside a kernel
    compiled on its own with the same options, is inlined there (``inline=True``)."""
    options, places = _kernel_references()
    assert len(options) > 100  # the scan sees the kernels
    offenders = []
    for name, decorator in options.items():
        where = places.get(name, [])
        if "inline=True" in decorator or len(where) != 1 or where[0] is None:
            continue
        caller = options[where[0]]
        if "inline=True" in caller or caller.replace("parallel=True", "") != decorator:
            continue  # inlined itself (compiled in each of its callers), or other options
        offenders.append(f"{name} (called only from {where[0]})")
    assert not offenders, "single-caller kernels not inlined: " + ", ".join(sorted(offenders))


def test_the_inlining_rule_sees_a_single_caller():
    # guards the guard: a helper with one caller is found, with its caller
    options, places = _kernel_references()
    assert options["_glm_rows"] == "kernel(inline=True)"
    assert places["_glm_rows"] == ["_glm_chunk"]
    assert places["_glm_chunks_serial"].count(None) >= 1  # handed on by Python code


def _branchy(x, n):
    # several blocks and variables: what the inliner copies block by block
    s = 0.0
    for i in range(n):
        if x[i] > 0.0:
            s += x[i]
        elif x[i] < -1.0:
            s -= 2.0 * x[i]
        else:
            s += 0.5
    return s


def test_the_inliner_copies_the_blocks_of_a_scope_together():
    """While Numba inlines a kernel, the callee's blocks are copied with one memo per scope,
    so its scope (every variable of the function) is copied once, not once per block; the
    copies share it as the originals share theirs.  Elsewhere deep copies are Numba's own."""
    from numba.core import inline_closurecall
    from numba.core.compiler import run_frontend

    from simbench import _jit

    assert isinstance(inline_closurecall.copy, _jit._InlinerCopy)
    assert inline_closurecall.InlineWorker.inline_ir.__wrapped__ is not None
    func_ir = run_frontend(_branchy)
    blocks = list(func_ir.blocks.values())
    assert len(blocks) > 4 and all(b.scope is blocks[0].scope for b in blocks)

    token = _jit._BLOCK_MEMOS.set({})
    try:
        copies = [inline_closurecall.copy.deepcopy(b) for b in blocks]
    finally:
        _jit._BLOCK_MEMOS.reset(token)
    assert all(c.scope is copies[0].scope for c in copies)
    assert copies[0].scope is not blocks[0].scope
    assert [[str(st) for st in c.body] for c in copies] == [
        [str(st) for st in b.body] for b in blocks
    ]

    apart = [inline_closurecall.copy.deepcopy(b) for b in blocks[:2]]  # not inlining
    assert apart[0].scope is not apart[1].scope


_INLINED = """
import sys
import numpy as np
from numba import njit
from numba.core import inline_closurecall

import simbench._jit

if sys.argv[1] == "numba":  # as Numba ships: undo simbench's copying
    inline_closurecall.copy = simbench._jit.copy
    worker = inline_closurecall.InlineWorker
    worker.inline_ir = worker.inline_ir.__wrapped__

{source}

callee = njit(inline="always")(_branchy)


@njit
def caller(x):
    return callee(x, x.size) + callee(x[::-1], 2)


print(caller(np.linspace(-3.0, 3.0, 11)))
print(caller.inspect_llvm(caller.signatures[0]))
"""


def test_inlined_kernels_compile_to_the_same_code_as_with_numba_alone():
    import inspect

    script = _INLINED.format(source=inspect.getsource(_branchy))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, side], capture_output=True, text=True, check=True
        ).stdout
        for side in ("simbench", "numba")
    ]
    assert "callee" in outputs[0] or "_branchy" in outputs[0]
    assert outputs[0] == outputs[1]


def test_cached_only_loads_what_is_cached_and_refuses_to_compile():
    """Under cached_only a kernel the cache does not hold raises NotCached, before anything
    is compiled, and is named in the list; one already there runs; after the block, the
    refused kernel compiles as usual."""
    import numpy as np

    from simbench import links
    from simbench._jit import NotCached, cached_only, kernel

    @kernel(cache=False)
    def fresh(x):
        return x + 1.0

    links.get("log").h(np.zeros(2))  # loaded (or compiled) before the block
    with cached_only() as refused:
        assert links.get("log").h(np.zeros(2)).tolist() == [1.0, 1.0]
        with pytest.raises(NotCached, match="fresh"):
            fresh(1.0)
        try:  # swallowed by the caller: still on the list
            fresh(2.0)
        except NotCached:
            pass
    assert [name.rsplit(".", 1)[-1] for name in refused] == ["fresh", "fresh"]
    assert not fresh.signatures
    assert fresh(1.0) == 2.0


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


# ---- the thread policy (simbench._threads) ------------------------------------------------------
#
# Numba's parallel chunk kernels run only on CPUs free of other work, with at least two
# chunks per thread, and BLAS runs on one thread inside a fit.  The tests force the load the
# policy sees (its /proc readers) and check the configuration it sets, never a time.


def _two_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs a Numba pool of at least two threads")
    return numba


def _poisson(n, p, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.poisson(np.exp(0.2 + X @ np.linspace(-0.3, 0.3, p))).astype(float)
    return X, y, rng.uniform(0.5, 2.0, n)


def _machine(monkeypatch, cpus, running_total, running_here=0, warm=None):
    """Make the policy see ``cpus`` CPUs and ``running_total`` running threads on the machine
    (the caller included), ``running_here`` of them other threads of this process, and no
    record of the machine's CPU time (so no average load); ``warm``: whether the workers
    count as awake (None: as the policy finds)."""
    from simbench import _threads

    monkeypatch.setattr(_threads, "cpu_count", lambda: cpus)
    monkeypatch.setattr(_threads, "_running_total", lambda: running_total)
    monkeypatch.setattr(_threads, "_running_here", lambda: running_here)
    monkeypatch.setattr(_threads, "_busy_seconds", lambda: None)
    if warm is not None:
        monkeypatch.setattr(_threads, "warm", lambda now=None: warm)
    _threads.reset()


def _record_parallel(monkeypatch):
    """Record, at every parallel region the policy lets run, Numba's thread count and the
    BLAS thread counts."""
    import numba

    from simbench import _threads

    seen = []
    real = _threads.parallel_used

    def spy(threads):
        seen.append((threads, numba.get_num_threads(), _threads.blas_threads()))
        real(threads)

    monkeypatch.setattr(_threads, "parallel_used", spy)
    return seen


def test_a_region_takes_no_more_threads_than_cpus_free_of_other_work(monkeypatch):
    from simbench import _threads

    big = 10**8  # elements: work enough for any number of threads
    # 2 CPUs, only this thread running: both CPUs are ours
    _machine(monkeypatch, cpus=2, running_total=1)
    assert _threads.free_cpus() == 2
    assert _threads.region_threads(n_chunks=50, threads=2, elements=big) == 2
    # one thread of another process running: a second thread of ours would wait for it
    _machine(monkeypatch, cpus=2, running_total=2)
    assert _threads.free_cpus() == 1
    assert _threads.region_threads(n_chunks=50, threads=2, elements=big) == 1
    # more load than CPUs: still the calling thread alone, never zero
    _machine(monkeypatch, cpus=2, running_total=7)
    assert _threads.region_threads(n_chunks=50, threads=2, elements=big) == 1
    # a larger machine: as many threads as free CPUs, within Numba's count
    _machine(monkeypatch, cpus=8, running_total=4)
    assert _threads.region_threads(n_chunks=50, threads=8, elements=big) == 5
    assert _threads.region_threads(n_chunks=50, threads=3, elements=big) == 3


def test_a_region_needs_two_chunks_per_thread(monkeypatch):
    from simbench import _threads

    big = 10**8
    _machine(monkeypatch, cpus=8, running_total=1)
    assert _threads.region_threads(n_chunks=3, threads=8, elements=big) == 1
    assert _threads.region_threads(n_chunks=4, threads=8, elements=big) == 2
    assert _threads.region_threads(n_chunks=11, threads=8, elements=big) == 5
    assert _threads.region_threads(n_chunks=100, threads=1, elements=big) == 1


def test_a_cold_start_needs_enough_work_per_thread(monkeypatch):
    """Workers asleep cost a wake (milliseconds on a virtual machine): a fit starting cold
    runs threads only with enough work per thread; awake workers need two chunks only."""
    from simbench import _threads

    _machine(monkeypatch, cpus=2, running_total=1)
    cold = _threads.COLD_ELEMENTS
    assert not _threads.warm()
    assert _threads.region_threads(5, 2, elements=2 * cold - 1) == 1  # n = 1e4, p = 5
    assert _threads.region_threads(5, 2, elements=2 * cold) == 2  # ... and now warm:
    assert _threads.warm()
    assert _threads.region_threads(5, 2, elements=1000) == 2
    # a region that runs once (a prediction) needs more to repay the wake
    _threads.reset()
    assert _threads.region_threads(50, 2, elements=2 * cold, repeated=False) == 1
    assert _threads.region_threads(50, 2, elements=2 * _threads.COLD_ELEMENTS_ONCE) == 2
    # fits in quick succession share one wake: a fit that just ended makes the next warm
    _threads.reset()
    with _threads.fit_threads():
        pass
    assert _threads.warm()
    assert _threads.region_threads(5, 2, elements=1000) == 2
    t = time.monotonic()
    assert not _threads.warm(now=t + 2 * _threads.WARM_SECONDS)


def test_own_spinning_workers_are_not_counted_as_load(monkeypatch):
    from simbench import _threads

    # this thread and one spinning OpenMP worker of this process are running
    _machine(monkeypatch, cpus=2, running_total=2, running_here=1)
    assert _threads.free_cpus() == 1  # no parallel region lately: the other thread is load
    _threads.reset()
    _threads.parallel_used(2)  # just now: the running thread is the region's own worker
    assert _threads.free_cpus() == 2
    # a worker of this process and a thread of another process: one CPU is not ours
    _machine(monkeypatch, cpus=2, running_total=3, running_here=1)
    _threads.parallel_used(2)
    assert _threads.free_cpus() == 1


def test_a_moment_of_other_work_is_read_again_before_it_counts(monkeypatch):
    """Without an average to go by, an instant that shows other work (a parent process that
    has just handed over work and goes back to waiting) is read again; work that lasts shows
    in every reading and still takes its CPU."""
    from simbench import _threads

    _machine(monkeypatch, cpus=2, running_total=2)
    readings = iter([2, 1, 2])
    monkeypatch.setattr(_threads, "_running_total", lambda: next(readings))
    monkeypatch.setattr(_threads, "NOW_SPACING", 0.0)
    assert _threads.free_cpus(now=100.0) == 2  # the second reading found the CPU free
    assert next(readings) == 2  # and no third reading was taken

    _machine(monkeypatch, cpus=2, running_total=2)
    calls = []
    monkeypatch.setattr(_threads, "_running_total", lambda: calls.append(1) or 2)
    assert _threads.free_cpus(now=100.0) == 1  # busy in every reading
    assert len(calls) == _threads.NOW_READS

    _machine(monkeypatch, cpus=2, running_total=1)
    calls.clear()
    monkeypatch.setattr(_threads, "_running_total", lambda: calls.append(1) or 1)
    assert _threads.free_cpus(now=100.0) == 2 and len(calls) == 1  # idle: one reading


def test_work_in_bursts_leaves_no_cpu_free(monkeypatch):
    """At every instant sampled nothing else runs, but other work used half a CPU on
    average: the second CPU is not free."""
    from simbench import _threads

    _machine(monkeypatch, cpus=2, running_total=1)
    cpu = {"machine": 100.0, "own": 10.0}  # CPU seconds used so far
    monkeypatch.setattr(_threads, "_busy_seconds", lambda: cpu["machine"])
    monkeypatch.setattr(_threads, "_own_seconds", lambda: cpu["own"])

    def after(seconds, own, elsewhere):
        cpu["own"] += own
        cpu["machine"] += own + elsewhere
        after.t += seconds
        return _threads.free_cpus(now=after.t)

    after.t = 1000.0
    assert after(0.0, 0.0, 0.0) == 2  # a process's first sample: no average yet
    assert after(0.1, 0.1, 0.0) == 2  # too short a window to judge: the instant decides
    assert after(0.2, 0.2, 0.15) == 1  # 0.15 of 0.3 s elsewhere: half a CPU busy
    assert after(0.3, 0.3, 0.0) == 1  # over 0.6 s, still a quarter of a CPU busy
    assert after(0.6, 0.6, 0.02) == 2  # the last 0.6 s: 0.03 CPU busy, within the tolerance
    assert after(0.6, 0.0, 0.6) == 1  # idle here, one CPU busy elsewhere
    assert after(30.0, 0.1, 0.0) == 2  # readings that old say nothing: the instant decides


def test_the_load_is_sampled_at_most_every_sample_period(monkeypatch):
    from simbench import _threads

    reads = []

    def total():
        reads.append(1)
        return 1

    _machine(monkeypatch, cpus=2, running_total=1)
    monkeypatch.setattr(_threads, "_running_total", total)
    t0 = 1000.0
    _threads.free_cpus(now=t0)
    _threads.free_cpus(now=t0 + 0.5 * _threads.SAMPLE_SECONDS)
    assert len(reads) == 1
    _threads.free_cpus(now=t0 + 1.5 * _threads.SAMPLE_SECONDS)
    assert len(reads) == 2


def test_without_a_machine_load_every_cpu_counts_as_free(monkeypatch):
    from simbench import _threads

    monkeypatch.setattr(_threads, "_LOADAVG", "/nonexistent/loadavg")
    monkeypatch.setattr(_threads, "cpu_count", lambda: 3)
    _threads.reset()
    assert _threads.free_cpus() == 3


def test_the_real_load_readers_give_sane_counts():
    import os

    from simbench import _threads

    if not os.path.exists(_threads._LOADAVG):
        pytest.skip("no /proc/loadavg")
    assert _threads._running_total() >= 1  # this thread, reading it, is running
    assert _threads._running_here() >= 0
    _threads.reset()
    assert 1 <= _threads.free_cpus() <= _threads.cpu_count()


def test_fit_scope_runs_blas_on_one_thread_and_restores_the_counts():
    from threadpoolctl import threadpool_limits

    from simbench import _threads

    with threadpool_limits(limits=2, user_api="blas"):
        before = _threads.blas_threads()
        assert before and all(n == 2 for n in before)
        with _threads.fit_threads():
            assert all(n == 1 for n in _threads.blas_threads())
            with _threads.fit_threads():  # a fit inside a fit (train's irls calls fit_glm)
                assert all(n == 1 for n in _threads.blas_threads())
            assert all(n == 1 for n in _threads.blas_threads())  # the outer fit still runs
        assert _threads.blas_threads() == before

        @_threads.fit_threads()
        def fit():
            return _threads.blas_threads()

        assert all(n == 1 for n in fit())
        assert _threads.blas_threads() == before


def test_fit_scope_restores_the_counts_when_the_fit_raises():
    from threadpoolctl import threadpool_limits

    from simbench import _threads

    with threadpool_limits(limits=2, user_api="blas"):
        before = _threads.blas_threads()
        with pytest.raises(ZeroDivisionError), _threads.fit_threads():
            1 / 0  # noqa: B018
        assert _threads.blas_threads() == before


_SCIPY_BLAS = """
import json, sys
from threadpoolctl import threadpool_limits
import simbench
from simbench import _threads
import simbench.fit.optimizers as optimizers

data = simbench.simulate({"family": "poisson", "n": 300, "p": 3}, seed=1)
out = {}
with threadpool_limits(limits=2, user_api="blas"):  # NumPy's BLAS
    simbench.fit_glm(data.X, data.y, family="poisson")
    for opt in ("irls", "newton", "adam", "gd"):
        config = {"hidden": [], "optimizer": opt, "epochs": 5}
        simbench.train(data.X, data.y, config, family="poisson", seed=1).predict(data.X)
    out["glm_fits_import_it"] = "scipy.linalg" in sys.modules
    seen = []
    lbfgs = optimizers._lbfgs

    def spy(*args):
        seen.append(_threads.blas_threads())
        return lbfgs(*args)

    optimizers._lbfgs = spy
    config = {"hidden": [], "optimizer": "lbfgs", "epochs": 5}
    simbench.train(data.X, data.y, config, family="poisson", seed=1)
    out["lbfgs_imports_it"] = "scipy.linalg" in sys.modules
    out["inside"] = seen
    out["after"] = _threads.blas_threads()
print(json.dumps(out))
"""


def test_scipy_blas_is_loaded_by_the_fits_that_call_it_and_runs_on_one_thread_there():
    """With the kernels in the cache, a fit that never calls SciPy's BLAS does not import
    SciPy's linear algebra (0.15 s of a new process; compiling imports it, through Numba's
    linear algebra); the first L-BFGS fit imports it, runs it on one thread like NumPy's,
    and restores the count it found (two threads here) when it ends."""
    import json
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    for _ in range(2):  # the first process fills the cache where it was empty
        res = subprocess.run(
            [sys.executable, "-c", _SCIPY_BLAS],
            env=env_for_subprocess(OPENBLAS_NUM_THREADS="2"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out["glm_fits_import_it"] is False
    assert out["lbfgs_imports_it"] is True
    assert out["inside"] == [[1, 1]]  # NumPy's BLAS and SciPy's
    assert out["after"] == [2, 2]


def test_fit_scopes_in_several_threads_restore_blas_when_the_last_one_ends():
    import threading

    from threadpoolctl import threadpool_limits

    from simbench import _threads

    with threadpool_limits(limits=2, user_api="blas"):
        before = _threads.blas_threads()
        inside, release, seen = threading.Event(), threading.Event(), []

        def other_fit():
            with _threads.fit_threads():
                inside.set()
                release.wait(10)

        t = threading.Thread(target=other_fit)
        t.start()
        inside.wait(10)
        with _threads.fit_threads():
            pass  # ends while the other thread's fit runs
        seen.append(_threads.blas_threads())
        release.set()
        t.join(10)
        assert all(n == 1 for n in seen[0])  # the other fit still had BLAS on one thread
        assert _threads.blas_threads() == before


def test_parallel_regions_of_a_fit_find_blas_on_one_thread(monkeypatch):
    """The invariant of the policy: while a fit's parallel kernel path runs, BLAS is on one
    thread (L-BFGS-B's BLAS calls interleave with the regions)."""
    from threadpoolctl import threadpool_limits

    from simbench import _threads, train

    numba = _two_threads()
    X, y, w = _poisson(20000, 5, 1)
    _machine(monkeypatch, cpus=2, running_total=1, warm=True)
    seen = _record_parallel(monkeypatch)
    numba.set_num_threads(2)
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            for optimizer in ("lbfgs", "newton", "gd"):
                cfg = {"hidden": [], "optimizer": optimizer, "epochs": 5}
                with _threads.fit_threads():
                    train(X, y, cfg, family="poisson", weights=w)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert seen, "no parallel region ran: the test would prove nothing"
    for threads, numba_threads, blas in seen:
        assert threads == numba_threads == 2
        assert all(n == 1 for n in blas), blas


def test_the_chunk_wrappers_run_serially_on_a_busy_machine(monkeypatch):
    import numpy as np

    from simbench.kernels import codes
    from simbench.kernels import network as k

    numba = _two_threads()
    X, y, w = _poisson(20000, 5, 2)
    theta = np.full(6, 0.05)
    E = np.empty(0)
    args = (codes.FAMILY_POISSON, 0.0, codes.LINK_LOG, 0.0)
    numba.set_num_threads(2)
    try:
        k.glm_loss_grad(theta, X, y, w, E, *args, np.empty(6))  # compiled, first call done
        for total, expect_parallel in ((3, False), (1, True)):
            _machine(monkeypatch, cpus=2, running_total=total, warm=True)
            seen = _record_parallel(monkeypatch)
            k.glm_loss_grad(theta, X, y, w, E, *args, np.empty(6))
            assert bool(seen) == expect_parallel
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_chunk_kernels_give_identical_results_on_one_and_two_threads(monkeypatch):
    import numpy as np

    from simbench.kernels import codes
    from simbench.kernels import network as k

    numba = _two_threads()
    X, y, w = _poisson(30000, 7, 3)
    theta = np.random.default_rng(4).normal(0.0, 0.1, 8)
    E = np.empty(0)
    args = (codes.FAMILY_POISSON, 0.0, codes.LINK_LOG, 0.0)
    _machine(monkeypatch, cpus=2, running_total=1, warm=True)
    ran = []
    for name in ("_glm_chunks_parallel", "_newton_chunks_parallel", "_glm_eta_parallel"):
        real = getattr(k, name)

        def spy(*a, _real=real, _name=name):
            ran.append((_name, numba.get_num_threads()))
            return _real(*a)

        monkeypatch.setattr(k, name, spy)
    out = {}
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            ran.clear()
            g, gn, H, eta = np.empty(8), np.empty(8), np.empty((8, 8)), np.empty(30000)
            f = k.glm_loss_grad(theta, X, y, w, E, *args, g)
            fn = k.glm_newton_terms(theta, X, y, w, E, *args, codes.HESS_OBSERVED, gn, H)
            k.glm_eta(theta, X, E, eta)
            out[threads] = (f, g, fn, gn, H, eta)
            # one thread: every path serial; two: every path parallel, on two threads
            assert len(ran) == (0 if threads == 1 else 3)
            assert all(t == 2 for _, t in ran)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(out[1], out[2], strict=True):
        np.testing.assert_array_equal(a, b)


def _fits_on_one_and_two_threads(monkeypatch, config):
    from simbench import _threads, train

    numba = _two_threads()
    X, y, w = _poisson(20000, 5, 5)
    _machine(monkeypatch, cpus=2, running_total=1, warm=True)
    seen = _record_parallel(monkeypatch)
    fits, regions = {}, {}
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            seen.clear()
            with _threads.fit_threads():
                fits[threads] = train(X, y, config, family="poisson", weights=w, seed=3)
            regions[threads] = len(seen)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return fits, regions


def test_fits_give_identical_results_on_one_and_two_threads(monkeypatch):
    import numpy as np

    for optimizer in ("gd", "momentum", "nesterov", "adam", "lbfgs", "newton"):
        cfg = {"hidden": [], "optimizer": optimizer, "epochs": 20, "early_stopping": False}
        fits, regions = _fits_on_one_and_two_threads(monkeypatch, cfg)
        assert regions[1] == 0 and regions[2] > 0, (optimizer, regions)
        np.testing.assert_array_equal(fits[1].params, fits[2].params)
        assert fits[1].history == fits[2].history
        assert fits[1].epochs_run == fits[2].epochs_run
        assert fits[1].loss_value == fits[2].loss_value


def test_train_runs_inside_a_fit_scope(monkeypatch):
    """Every thread choice made during ``train`` is made inside its fit scope (BLAS on one
    thread), the L-BFGS path (SciPy's BLAS calls between the regions) included."""
    from simbench import _threads, train
    from simbench.kernels import network as k

    depths = []
    real = k.region_threads

    def spy(*args, **kwargs):
        depths.append(_threads._blas_depth)
        return real(*args, **kwargs)

    monkeypatch.setattr(k, "region_threads", spy)
    X, y, _ = _poisson(10000, 3, 6)
    for optimizer in ("lbfgs", "gd"):
        train(X, y, {"hidden": [], "optimizer": optimizer, "epochs": 3}, family="poisson")
    assert depths, "no thread choice was made: the test would prove nothing"
    assert all(d > 0 for d in depths), depths


def test_a_first_call_follows_the_policy(monkeypatch):
    """A first call is no exception: a small one runs (and compiles) only the serial
    variant, a large one on a busy machine runs serially too."""
    from simbench.kernels import network as k

    numba = _two_threads()
    X, y, w = _poisson(50, 2, 7)
    X.flags.writeable = False
    _machine(monkeypatch, cpus=2, running_total=3, warm=True)
    numba.set_num_threads(2)
    try:
        assert k.region_threads("loss", 1, X, y, w) == 1  # small first call: serial
        assert k.region_threads("newton", 40, X, y, w) == 1  # large first call: busy, serial
        _machine(monkeypatch, cpus=2, running_total=1, warm=True)
        assert k.region_threads("newton", 40, X, y, w) == 2  # a CPU free: parallel
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_a_one_off_evaluation_needs_more_work_to_wake_the_workers(monkeypatch):
    from simbench.kernels import network as k

    numba = _two_threads()
    X, y, w = _poisson(40000, 5, 8)  # 1.2e5 elements of X per thread on two threads
    numba.set_num_threads(2)
    try:
        _machine(monkeypatch, cpus=2, running_total=1)  # free, workers asleep
        assert k.region_threads("loss", 20, X, y, w, repeated=False) == 1
        assert k.region_threads("eta", 20, X, y, w) == 1  # a prediction: once by default
        _machine(monkeypatch, cpus=2, running_total=1)
        assert k.region_threads("loss", 20, X, y, w) == 2  # a fit's evaluations repeat
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


_ROW_CONSTANT_KINDS = """
import numpy as np
from simbench.kernels import codes, irls, network
from simbench.kernels.vecmath import log_y_or_zero

y = np.array([0.0, 1.0, 3.0])
frozen = y.copy()
frozen.flags.writeable = False
for v in (y, frozen):
    irls.row_constants(codes.FAMILY_POISSON, codes.LINK_LOG, v)
    irls.row_constants(codes.FAMILY_GAMMA, codes.LINK_LOG, v)
    network.poisson_log_y(codes.FAMILY_POISSON, codes.LINK_LOG, v)  # the NLL: its family code
print(len(log_y_or_zero.overloads))
"""


def test_the_row_constants_compile_one_kind_of_array_for_every_caller():
    # the data of a sweep are read-only, a user's arrays writeable: both callers of
    # log_y_or_zero hand it a read-only view, so one compilation serves both (in a fresh
    # process, where no other test has called the kernel)
    proc = subprocess.run(
        [sys.executable, "-c", _ROW_CONSTANT_KINDS], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "1"
