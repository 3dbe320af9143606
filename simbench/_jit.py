"""The one place where Numba options are chosen.

Every compiled function in simbench is decorated with :func:`kernel` (or
:func:`kernel_nocache`, with the reason written beside it).  Keeping the options here
means a change of policy, say enabling a fastmath flag, is one edit and one review.

Policy
------
* ``njit`` (nopython mode) always: a kernel that would fall back to object mode is a bug.
* ``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of raising,
  so kernels need no Python-level exception paths and vectorise better.  Kernels that can
  meet such values handle them explicitly (e.g. ``y * log(y)`` at ``y = 0``).
* ``nogil=True``: kernels release the GIL, so threads of a Dask worker can overlap.
* ``fastmath`` is off.  The kernels are checked to the last testable digit against plain
  NumPy/SciPy; ``nnan``/``ninf`` would also break the non-finite checks that detect a
  diverging fit.  Only ``contract`` (fused multiply-add) would be harmless, and it would
  still make results differ between machines with and without FMA.
  One exception, opted into per kernel with ``reassoc=True``: the ``reassoc`` flag alone,
  for small dot-product kernels, so that a sum over a row is split into SIMD lanes as BLAS
  does.  The order is then the compiled code's (fixed for a machine, independent of the
  thread count, different between vector widths, again as BLAS); nothing else changes.
* Where LLVM's own vectoriser falls short (short inner loops whose length changes with the
  outer index), :mod:`simbench.kernels.simd` writes the vector operations out as
  intrinsics: plain multiplications and additions in a stated order, the same result on
  every machine.
* ``parallel=True`` only for the fixed-chunk loops of :mod:`simbench.kernels.network`, each
  with a serial twin that gives the same bits (chunks reduced in order).  Which of the two
  runs, on how many threads, and BLAS's thread count inside a fit are the thread policy of
  :mod:`simbench._threads`: a fit never runs more threads than there are CPUs free for it.
* Calls from one kernel to another compile the callee for the argument *types*, never for
  literal values (:func:`_type_calls_by_type`): Numba's default compiles a kernel again,
  with all it calls, for every constant it is called with.  A kernel that must specialise
  on a constant is inlined (``inline=True``), and the branches on the constant are pruned
  where it is inlined; one that must not compile a branch it does not run takes None for
  it (a branch on ``arg is None`` with ``arg`` typed None is pruned before typing: the
  ``threads`` argument of :mod:`simbench.kernels.training`).
* A kernel called from one place only, in a kernel compiled on its own, is inlined there
  (``inline=True``).  Numba compiles each kernel a kernel calls into a library of its own,
  optimised and translated to machine code, and links that into the caller, which
  optimises and translates it all again: along a chain of helpers with one caller each,
  the code at the bottom was compiled once per level.  Inlined, it is compiled once, with
  its caller (a tenth less compiling from an empty cache).  ``tests/test_jit_policy.py``
  keeps to the rule.
* ``no_cfunc_wrapper=True``: Numba otherwise builds, beside every compiled kernel, a
  C-callable wrapper, used only when a kernel is passed as a value to compiled code (a
  first-class function).  simbench never does that; without the wrappers a cold start
  compiles about 5% less.  Calls from Python go through the other wrapper, which is kept.
* A kernel compiled for a call from another kernel is compiled for linking only
  (:mod:`simbench._link_only`): without the wrapper for calls from Python and without
  machine code of its own, neither of which a caller uses, and cached as the module its
  callers link.  A call from Python compiles it whole.  Callers' code is unchanged; a cold
  start compiles about a seventh less.
* A kernel loaded from the cache is loaded without setting up Numba's compiler first
  (:func:`simbench._link_only.install_loading`): Numba imports every module of its
  compiler, and SciPy's linear algebra, the first time it loads a kernel, some 0.3 s of a
  warm run's start, which running loaded code never needs.
* Numba's inliner copies an inlined kernel's IR in time linear in its size
  (:func:`_copy_inlined_blocks_together`): as Numba ships, the copy grows with the kernel's
  blocks times its variables, which made copying a tenth to a sixth of a sweep worker's
  compiling from an empty cache.
  The compiled code is the same, byte for byte.
* ``cache=True``: compiled code is written next to the module, so only the first process
  on a machine pays for compilation.  Caveat: Numba keys a cache entry on the file of the
  function itself, not on the files of the kernels it calls; after editing a leaf kernel
  in another module, clear ``__pycache__`` (``simbench.clear_cache()`` does that) or
  set ``NUMBA_CACHE_DIR`` to a fresh directory.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, event
from numba.core import ir as numba_ir
from numba.core.errors import TypingError
from numba.extending import intrinsic

from . import _link_only

_OPTIONS = {
    "nogil": True,
    "error_model": "numpy",
    "fastmath": False,
    "no_cfunc_wrapper": True,
}

# while Numba inlines one kernel: a deep-copy memo per scope of the callee's IR
_BLOCK_MEMOS: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "simbench_block_memos", default=None
)


def _deepcopy_block(x, memo=None):
    """``copy.deepcopy`` for Numba's inliner: while it inlines (:data:`_BLOCK_MEMOS` set),
    the blocks of one scope are copied with one memo, as parts of one function."""
    memos = _BLOCK_MEMOS.get()
    if memo is None and memos is not None and isinstance(x, numba_ir.Block):
        memo = memos.setdefault(id(x.scope), {})
    return copy.deepcopy(x, memo)


class _InlinerCopy:
    """The ``copy`` module as Numba's inliner sees it: :func:`_deepcopy_block`, and the
    rest of the module unchanged."""

    deepcopy = staticmethod(_deepcopy_block)

    def __getattr__(self, name):
        return getattr(copy, name)


def _copy_inlined_blocks_together() -> None:
    """Make Numba copy the IR of a kernel it inlines in time linear in the kernel's size.

    To inline a kernel, Numba's ``InlineWorker.inline_ir`` deep-copies the callee's IR
    twice, block by block, each block with a deep copy of its own.  A block's variables
    refer to the function's scope, which holds every variable of the function, so every
    block copied the whole scope again: blocks times variables.  For the large kernels
    inlined here (the first-order loop, the IRLS row passes) that was 2-4 s of each
    worker's 23 s of compiling the quickstart from an empty cache.

    Here the blocks of one scope, within one inlining, are copied with one memo, as a deep
    copy of the whole function would copy them: one copy of the scope, shared by the
    blocks' copies as the originals share the original.  Everything Numba then does with
    the copies is unchanged; the compiled code is the same, byte for byte
    (``tests/test_jit_policy.py``).  Applied once, to the inliner only, and only to the
    Numba this was written for: one whose inliner copies through its module's ``copy``.
    It holds for every kernel Numba inlines in the process, a user's own too: for those
    as for ours it changes how long the copying takes, not what is compiled.
    """
    from numba.core import inline_closurecall

    worker = getattr(inline_closurecall, "InlineWorker", None)
    if getattr(inline_closurecall, "copy", None) is not copy or worker is None:
        return  # already applied, or an inliner that copies otherwise
    inline_ir = worker.inline_ir

    @functools.wraps(inline_ir)
    def inline_ir_copying_blocks_together(self, *args, **kwargs):
        token = _BLOCK_MEMOS.set({})
        try:
            return inline_ir(self, *args, **kwargs)
        finally:
            _BLOCK_MEMOS.reset(token)

    worker.inline_ir = inline_ir_copying_blocks_together
    inline_closurecall.copy = _InlinerCopy()


_copy_inlined_blocks_together()


def kernel(
    fn=None,
    *,
    cache: bool = True,
    parallel: bool = False,
    reassoc: bool = False,
    inline: bool = False,
):
    """Compile ``fn`` with the project's Numba policy.

    Usable bare (``@kernel``) or with options (``@kernel(parallel=True)``).  Compilation is
    lazy: nothing is compiled until the first call with a given signature.  ``reassoc``
    lets the compiler reorder the sums of ``fn`` (and only that flag; see the policy above).
    ``inline`` inlines ``fn`` into its callers at Numba's level: for a helper with one
    caller (see the policy above), or whose calls would otherwise cost more than its work
    (a call that passes arrays updates their reference counts atomically, some 20 ns).
    """
    options = dict(_OPTIONS, fastmath={"reassoc"}) if reassoc else dict(_OPTIONS)
    if inline:
        options["inline"] = "always"

    def decorate(f):
        dispatcher = njit(cache=cache, parallel=parallel, **options)(f)
        _link_only.install_loading(dispatcher)
        if not inline:
            _type_calls_by_type(dispatcher)
        return dispatcher

    return decorate if fn is None else decorate(fn)


def _type_calls_by_type(dispatcher) -> None:
    """Make calls to ``dispatcher`` from compiled code compile it for their argument types,
    never for literal values.

    Numba types a constant argument (``f(x, True)``, ``f(x, MODE_START)``) as a literal and,
    by default, compiles the callee again for each literal value: a kernel called with a
    constant in one place and a variable in another, or with two constants, was compiled
    two or three times over, with everything it calls (2-3 s of a cold sweep for each of
    the evaluation and metric kernels it happened to).  A kernel that must specialise on a
    constant is inlined instead (``inline=True``: its branches on the constant are pruned
    where it is inlined).
    """
    template = dispatcher.get_call_template
    _link_only.install(dispatcher)

    def get_call_template(args, kws):
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        token = _link_only._CALLEE.set(dispatcher)  # compiled for linking into the caller
        try:
            return template(args, kws)
        finally:
            _link_only._CALLEE.reset(token)

    dispatcher.get_call_template = get_call_template


def kernel_nocache(fn=None, *, parallel: bool = False):
    """Like :func:`kernel` without the on-disk cache.

    For functions whose compiled form depends on something other than their own source
    file and argument types (e.g. closures over generated code), where a cached entry could
    go stale silently.  Every use says why.
    """
    return kernel(fn, cache=False, parallel=parallel)


def readonly(a: np.ndarray) -> np.ndarray:
    """``a`` itself if it is read-only, else a read-only view of it.

    Numba compiles one version of a kernel per kind of array it is given, and a writeable
    array is another kind than a read-only one.  Data sets hand out read-only arrays, users'
    arrays are writeable: the entry points pass every input array through this, so the
    kernels see one kind and a compilation (or a cache entry) made by a sweep also serves
    the Python API.
    """
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def cache_dirs() -> list[Path]:
    """The directories where Numba keeps compiled simbench kernels."""
    custom = os.environ.get("NUMBA_CACHE_DIR")
    if custom:
        return [Path(custom)]
    root = Path(__file__).resolve().parent
    return sorted({p.parent for p in root.rglob("*.nbi")})


def clear_cache() -> int:
    """Delete the compiled-kernel cache of simbench; return the number of files removed."""
    removed = 0
    for d in cache_dirs():
        for f in list(d.glob("*.nbi")) + list(d.glob("*.nbc")):
            f.unlink(missing_ok=True)
            removed += 1
        if d.name != "__pycache__" and d.exists() and not any(d.iterdir()):
            shutil.rmtree(d, ignore_errors=True)
    return removed


def set_up_compiler() -> None:
    """Set up Numba's compiler as its first compilation in a process does (it imports every
    module of the compiler, some 0.3 s), without compiling anything.

    For a process that forks workers which will compile: they inherit it set up instead of
    each setting it up.  Loading a kernel from the cache does not set it up
    (:func:`simbench._link_only.install_loading`)."""
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()


class NotCached(RuntimeError):
    """A kernel called under :func:`cached_only` is not in the on-disk cache."""


class _RefuseCompiling(event.Listener):
    def __init__(self, refused: list[str]) -> None:
        self.refused = refused

    def on_start(self, ev) -> None:
        name = ev.data["dispatcher"].py_func.__qualname__
        self.refused.append(name)
        raise NotCached(f"{name} is not in the compiled-code cache")

    def on_end(self, ev) -> None:
        pass


@contextlib.contextmanager
def cached_only() -> Iterator[list[str]]:
    """Within this block kernels are loaded from the on-disk cache and never compiled.

    Numba announces a compilation (its ``numba:compile`` event) only after it has looked in
    the cache and missed; here that announcement raises :class:`NotCached` instead, so the
    call of a kernel that is not cached raises before anything is compiled, and one that is
    cached loads as usual.  Yields a list that receives the name of every kernel refused,
    which tells the caller even where its own code swallowed the exception.

    For a process that loads compiled code for others to inherit (the local backend's fork
    server, see :func:`simbench.sweep.worker.run_group`'s ``preload_sweep``) and must not
    spend the seconds of a compilation instead.  The refusal holds in every thread of the
    process while the block runs.
    """
    refused: list[str] = []
    with event.install_listener("numba:compile", _RefuseCompiling(refused)):
        yield refused


@intrinsic
def prefetch_row(typingctx, arr, i):
    """Hint the CPU to load every cache line of row ``i`` of ``arr`` (2-D, read, keep in all
    cache levels): one request per eight elements and one for the last.  No effect on
    results; no bounds check (callers pass a valid row).  For loops over rows in a random
    order, where the hardware prefetcher cannot guess the next row.  An intrinsic, so it
    costs no call: a helper function taking the array ran 10x slower (reference counts)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        raise TypingError("prefetch_row takes a 2-D array and a row index")
    sig = types.void(arr, types.intp)

    def codegen(context, builder, signature, args):
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        row = args[1]
        cols = cgutils.unpack_tuple(builder, ary.shape)[1]
        intp = cols.type
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")

        def request(col):
            ptr = cgutils.get_item_pointer(
                context, builder, aty, ary, [row, col], wraparound=False, boundscheck=False
            )
            # (address, read = 0, locality = 3: keep in every level, data cache = 1)
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])

        lines = builder.ashr(builder.add(cols, intp(7)), intp(3))
        with cgutils.for_range(builder, lines) as loop:
            request(builder.mul(loop.index, intp(8)))
        with builder.if_then(builder.icmp_signed(">", cols, intp(0))):
            request(builder.sub(cols, intp(1)))
        return context.get_dummy_value()

    return sig, codegen
