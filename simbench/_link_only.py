"""Kernels compiled for a call from another kernel are compiled for linking only.

Numba compiles a kernel that another kernel calls as though Python would call it too: it
builds the wrapper that converts Python objects to the kernel's arguments and back,
translates the kernel's library into machine code, and writes that machine code to the
on-disk cache.  What the calling kernel uses is none of these: Numba links the callee's
optimised LLVM module into the caller's, which is then optimised and translated with it.
From an empty cache the wrappers and machine code of callees were about a sixth of
compiling (the first ``fit_glm``: 9.0 s against 10.7-11.1 s of CPU).

Here a compilation asked for by a kernel's call (:data:`_CALLEE`, set by
:func:`simbench._jit.kernel`'s typing of calls) builds no wrapper and no machine code, and
is cached as its LLVM module alone, in cache files of its own (``<name>.link-...``).  Its
entry point is a :class:`LinkOnly` key, which compiled callers use to find the library to
link, and which never enters the dispatcher's table of overloads callable from Python: a
call from Python with the same argument types compiles or loads the kernel as Numba always
has, and replaces it.  Callers link the same optimised module as before, less the wrapper
they never referenced, so the code they run is unchanged.

The environment of a callee (the constants its exception messages refer to) is set where
it is linked: a library translated with such a callee sets every environment it refers
to, as Numba does for a library loaded from its cache.

A kernel loaded from Numba's own cache entry (machine code, and the module for linking)
parses that module when a caller first links it, not when it is loaded
(:func:`_rebuild_parsing_later`), and a load does not set up Numba's compiler first
(:func:`_load_without_compiler_set_up`).

Applied to simbench's kernels only (:func:`install`, :func:`install_loading`), and only
with a Numba that has the parts this relies on (:func:`_numba_supports_it`); for every
other function, or another Numba, Numba compiles and loads as it always has.
"""

from __future__ import annotations

import contextvars
import functools

from llvmlite import binding as ll
from numba.core import sigutils
from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.core.compiler import CompileResult
from numba.core.compiler_lock import global_compiler_lock
from numba.core.environment import lookup_environment
from numba.core.runtime import nrt

# the dispatcher whose overload a kernel's call asks for, while that call is typed
_CALLEE: contextvars.ContextVar = contextvars.ContextVar("simbench_callee", default=None)
# (module, qualified name) of the function being compiled for linking only, while it is
_LINKING: contextvars.ContextVar = contextvars.ContextVar("simbench_linking", default=None)


class LinkOnly:
    """The entry point of a kernel compiled for linking only: a key, not a callable."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}: compiled for linking into other kernels only>"


def is_link_only(cres) -> bool:
    """Whether the compile result ``cres`` was compiled for linking only."""
    return isinstance(cres.entry_point, LinkOnly)


def _linking(fndesc) -> bool:
    target = _LINKING.get()
    return target is not None and target == (fndesc.modname, fndesc.qualname)


def _set_environments(library) -> None:
    """Point every environment ``library``'s code refers to at its object, as Numba does
    for a library it loads from its cache.  For a library that links a callee compiled for
    linking, whose environment no machine code of its own has set (the environments of
    callees compiled whole are set already, and this library's copies refer to them)."""
    codegen = library.codegen
    engine = getattr(codegen, "_engine", None)
    if engine is None:
        return
    for gv in library._final_module.global_variables:
        name = gv.name
        if not name.startswith("_ZN08NumbaEnv"):
            continue
        env = lookup_environment(name)
        if env is not None and engine.get_global_value_address(name):
            codegen.set_env(name, env)


@functools.cache
def _numba_supports_it() -> bool:
    """Whether this Numba has the internals the functions here rely on (those of Numba
    0.59 to 0.68); with another, kernels are compiled and loaded as Numba does."""
    from numba.core import codegen, cpu, dispatcher

    return (
        all(
            callable(getattr(cpu.CPUContext, name, None))
            for name in ("create_cpython_wrapper", "get_executable", "insert_user_function")
        )
        and all(
            callable(getattr(codegen.CPUCodeLibrary, name, None))
            for name in (
                "_finalize_final_module",
                "_finalize_dynamic_globals",
                "_verify_declare_only_symbols",
                "_get_module_for_linking",
                "_set_compiled_object",
            )
        )
        and all(
            callable(getattr(codegen.JitEngine, name, None))
            for name in ("is_symbol_defined", "_load_defined_symbols")
        )
        and callable(getattr(dispatcher.Dispatcher, "add_overload", None))
        and "referenced_envs" in CompileResult._fields
        and callable(getattr(FunctionCache, "_load_overload", None))
        and callable(getattr(FunctionCache, "_guard_against_spurious_io_errors", None))
        and callable(getattr(nrt.rtsys, "initialize", None))
        and callable(getattr(CompileResult, "_find_referenced_environments", None))
    )


def _patch_numba() -> None:
    """Teach Numba's CPU target to compile a function for linking only (once)."""
    from numba.core import codegen, cpu

    if getattr(cpu.CPUContext, "_simbench_link_only", False):
        return
    create_cpython_wrapper = cpu.CPUContext.create_cpython_wrapper
    get_executable = cpu.CPUContext.get_executable
    finalize_final_module = codegen.CPUCodeLibrary._finalize_final_module

    @functools.wraps(create_cpython_wrapper)
    def create_cpython_wrapper_unless_linking(self, library, fndesc, *args, **kwargs):
        if _linking(fndesc):
            return None
        return create_cpython_wrapper(self, library, fndesc, *args, **kwargs)

    @functools.wraps(get_executable)
    def get_executable_unless_linking(self, library, fndesc, env):
        if _linking(fndesc) and not library._finalized:
            library._simbench_link_only = True
            return LinkOnly(fndesc.qualname)
        cfunc = get_executable(self, library, fndesc, env)
        if any(getattr(lib, "_simbench_link_only", False) for lib in library._linking_libraries):
            _set_environments(library)
        return cfunc

    @functools.wraps(finalize_final_module)
    def finalize_final_module_unless_linking(self):
        if not getattr(self, "_simbench_link_only", False):
            return finalize_final_module(self)
        # what Numba does, less adding the module to the JIT and translating it
        self._finalize_dynamic_globals()
        self._verify_declare_only_symbols()
        self._finalized = True
        return None

    cpu.CPUContext.create_cpython_wrapper = create_cpython_wrapper_unless_linking
    cpu.CPUContext.get_executable = get_executable_unless_linking
    codegen.CPUCodeLibrary._finalize_final_module = finalize_final_module_unless_linking
    cpu.CPUContext._simbench_link_only = True


def _rebuilt(
    target_context,
    library,
    entry_point,
    fndesc,
    env,
    signature,
    objectmode,
    lifted,
    typeann,
    reload_init,
    referenced_envs,
) -> CompileResult:
    """A compile result rebuilt from a cache entry, as Numba's ``CompileResult._rebuild``
    makes it: the library and entry point given, the rest as cached."""
    return CompileResult(
        typing_context=target_context.typing_context,
        target_context=target_context,
        entry_point=entry_point,
        typing_error=None,
        type_annotation=typeann,
        signature=signature,
        objectmode=objectmode,
        lifted=lifted,
        fndesc=fndesc,
        library=library,
        call_helper=None,
        environment=env,
        metadata=None,
        reload_init=reload_init,
        referenced_envs=referenced_envs,
    )


class _LinkCacheImpl(CompileResultCacheImpl):
    """A kernel compiled for linking, cached as its optimised LLVM module (the one callers
    link), beside and apart from Numba's own entries for the kernel."""

    def get_filename_base(self, fullname, abiflags):
        return super().get_filename_base(fullname + ".link", abiflags)

    def reduce(self, cres):
        fndesc = cres.fndesc
        fndesc.typemap = fndesc.calltypes = None  # as Numba's own entries: not needed
        module = cres.library._get_module_for_linking()
        return (
            cres.library.name,
            module.as_bitcode(),
            fndesc,
            cres.environment,
            cres.signature,
            cres.objectmode,
            cres.lifted,
            str(cres.type_annotation),
            cres.reload_init,
            tuple(cres._find_referenced_environments()),
        )

    def rebuild(self, target_context, payload):
        name, bitcode, fndesc = payload[:3]
        reload_init = payload[8]
        for fn in reload_init or ():
            fn()
        library = target_context.codegen().create_library(name)
        library._simbench_link_only = True
        library._final_module = ll.parse_bitcode(bitcode)
        library._finalize_final_module()
        return _rebuilt(target_context, library, LinkOnly(fndesc.qualname), *payload[2:])


class _LinkCache(FunctionCache):
    _impl_class = _LinkCacheImpl


def _rebuild_parsing_later(target_context, payload):
    """Numba's ``CompileResult._rebuild`` of a kernel from its own cache entry (machine
    code, and the LLVM module for linking into callers), but the module is parsed when a
    caller first links it, not when the kernel is loaded: a tenth of a warm run's start
    went to parsing modules that nothing links.  Numba reads the names the module defines
    to know which symbols the machine code has; the one it looks up, the wrapper that
    Python calls, is named here."""
    libdata, fndesc, env, _, objectmode = payload[:5]
    reload_init, referenced_envs = payload[7:9]
    name, kind, data = libdata
    if kind != "object" or objectmode:
        return CompileResult._rebuild(target_context, *payload)
    for fn in reload_init or ():
        fn()
    object_code, shared_bitcode = data
    codegen = target_context.codegen()
    library = codegen.create_library(name)
    library.enable_object_caching()
    library._set_compiled_object(object_code)

    def module_for_linking():
        if library._shared_module is None:
            library._shared_module = ll.parse_bitcode(shared_bitcode)
        return library._shared_module

    library._get_module_for_linking = module_for_linking
    library._finalize_final_module()
    codegen._engine._defined_symbols.add(fndesc.llvm_cpython_wrapper_name)
    cfunc = target_context.get_executable(library, fndesc, env)
    cres = _rebuilt(target_context, library, cfunc, *payload[1:])
    for referenced in referenced_envs:
        codegen.set_env(referenced.env_name, referenced)
    return cres


def _load_without_compiler_set_up(cache, sig, target_context):
    """Numba's ``Cache.load_overload``, less the refresh of the target context it makes
    first.

    The refresh sets up compiling: it imports every implementation module of Numba (and,
    through Numba's linear algebra, SciPy's), some 0.3 s in a new process, the first time
    a kernel is loaded.  Loaded machine code needs none of it.  What it calls is set up
    otherwise: Numba's runtime (allocation, reference counts) here, as the refresh would;
    Numba's C helpers and math functions with the target context; the threading layer of
    a parallel kernel by the kernel's own reload hook; the types its cache entry names by
    unpickling them.  A compilation refreshes the context itself, as it always has.
    """
    nrt.rtsys.initialize(target_context)
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)
    return None  # the guard swallowed an error: not loaded, as with Numba's own


def compile_for_linking(dispatcher, *arg_types) -> None:
    """Compile ``dispatcher`` for ``arg_types`` as a kernel's call would (for linking
    only, or from the cache), without a kernel: to compile, before the kernels that call
    it, code that many of them share."""
    token = _CALLEE.set(dispatcher)
    try:
        dispatcher.compile(tuple(arg_types))
    finally:
        _CALLEE.reset(token)


def install_loading(dispatcher) -> None:
    """Load ``dispatcher``'s overloads from Numba's cache without parsing their modules
    for linking until a caller links one (:func:`_rebuild_parsing_later`) and without
    setting up the compiler first (:func:`_load_without_compiler_set_up`)."""
    cache = dispatcher._cache
    if not (_numba_supports_it() and isinstance(cache, FunctionCache)):
        return
    cache._impl.rebuild = _rebuild_parsing_later
    cache.load_overload = functools.partial(_load_without_compiler_set_up, cache)


def install(dispatcher) -> None:
    """Compile ``dispatcher``'s overloads asked for by other kernels' calls for linking only
    (see the module docstring).  The caller sets :data:`_CALLEE` to ``dispatcher`` while
    it types such a call."""
    if not _numba_supports_it():
        return
    _patch_numba()
    py_func = dispatcher.py_func
    target = (py_func.__module__, py_func.__qualname__)
    numba_compile = dispatcher.compile
    numba_add_overload = dispatcher.add_overload
    compiler = dispatcher._compiler
    compile_overload = compiler.compile
    cache = dispatcher._cache
    numba_save_overload = cache.save_overload
    link_caches: list[_LinkCache] = []  # made on first use: nothing more at import

    def link_cache() -> _LinkCache | None:
        if not isinstance(cache, FunctionCache):
            return None  # a kernel without Numba's cache goes without this one too
        if not link_caches:
            made = _LinkCache(py_func)
            made.load_overload = functools.partial(_load_without_compiler_set_up, made)
            link_caches.append(made)
        return link_caches[0]

    def compile(sig):
        with global_compiler_lock:
            args = tuple(sigutils.normalize_signature(sig)[0])
            existing = dispatcher.overloads.get(args)
            if _CALLEE.get() is dispatcher:
                cached = link_cache() if existing is None else None
                if cached is not None:
                    cres = cached.load_overload(args, dispatcher.targetctx)
                    if cres is not None:
                        dispatcher.targetctx.insert_user_function(
                            cres.entry_point, cres.fndesc, [cres.library]
                        )
                        dispatcher.overloads[args] = cres
                        return cres.entry_point
                return numba_compile(args)
            if existing is not None and is_link_only(existing):
                del dispatcher.overloads[args]  # a call from Python: compile it whole
            return numba_compile(sig)

    def compile_for_callers_or_python(args, return_type):
        if _CALLEE.get() is dispatcher:
            linking, callee = _LINKING.set(target), _CALLEE.set(None)
            try:
                return compile_overload(args, return_type)
            finally:
                _CALLEE.reset(callee)
                _LINKING.reset(linking)
        linking = _LINKING.set(None)
        try:
            return compile_overload(args, return_type)
        finally:
            _LINKING.reset(linking)

    def add_overload(cres):
        if is_link_only(cres):
            dispatcher.overloads[tuple(cres.signature.args)] = cres
        else:
            numba_add_overload(cres)

    def save_overload(sig, cres):
        if not is_link_only(cres):
            numba_save_overload(sig, cres)
        elif link_cache() is not None:
            link_cache().save_overload(tuple(sigutils.normalize_signature(sig)[0]), cres)

    dispatcher.compile = compile
    dispatcher.add_overload = add_overload
    compiler.compile = compile_for_callers_or_python
    cache.save_overload = save_overload
