"""The thread policy: a fit never runs more threads than there are CPUs free for it.

Two pools of threads can serve one fit: Numba's (the parallel chunk kernels of
:mod:`simbench.kernels.network`, on the GNU OpenMP layer where it is available) and the BLAS
library's (OpenBLAS with pthreads in the NumPy and SciPy wheels).  What goes wrong when both
start a thread per CPU, as measured on 2 CPUs:

* After a parallel region, OpenMP's workers busy-wait (about 15 ms here) before they sleep.
  A region that finds its worker spinning costs about 2 µs; one that must wake it, about
  70 µs; one whose worker cannot get a CPU waits for a time slice (5-12 ms were seen for a
  region of 10 µs of work).  Spinning is what makes short regions pay (a short spin count or
  a passive wait policy lost the whole parallel gain), so the workers must find free CPUs.
* SciPy's L-BFGS-B solves a small triangular system (LAPACK ``dtrtrs``, at most 20 x 20)
  every iteration, and OpenBLAS runs ``dtrtrs`` through its threaded driver whatever the
  size: every iteration wakes a BLAS worker, which then spins (``sched_yield``) until its
  timeout, against the OpenMP worker, the main thread and other processes.  No other call
  in any fit reaches a threaded BLAS routine (a breakpoint on OpenBLAS's ``exec_blas``
  caught only this one, for every optimiser, with and without hidden layers, n up to 1e5,
  p up to 50): BLAS threads never help a fit, they only compete.
* Together, an L-BFGS fit at n = 1e4, p = 5 took 30-550 ms where one thread of each took
  2-3 ms.  With other processes busy on the machine, Numba's threads alone made first-order
  fits at n = 1e4-1e5 3-13x slower than one thread, though up to 2x faster when it is idle.
* Workers asleep (no region for more than about 20 ms) must be woken: about 70 µs on an
  idle physical machine, but 7 ms, and 4 ms more for the next region, here (a virtual
  machine, whose idle CPUs are halted).

Policy
------
1. Inside a fit (:func:`fit_threads`, entered by ``train``), BLAS runs on one thread; the
   previous counts are restored when the last fit in the process ends.  ``fit_glm`` needs
   no scope of its own: it runs no parallel region and reaches no threaded BLAS routine
   (and inside ``train``, with the ``irls`` optimiser, it is in ``train``'s scope).  SciPy's
   BLAS is loaded only by the fits that call it (:func:`scipy_blas`), and then runs on one
   thread inside fits too.
2. A parallel region runs on ``min(numba threads, chunks // 2, free CPUs)`` threads, and not
   at all if that is below 2 (:func:`region_threads`).  Numba's thread count
   (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``; one per job in a sweep) is the ceiling;
   at least two chunks per thread keep a region's cost small against its work; the free
   CPUs are those not taken by work elsewhere on the machine, neither at the time nor on
   average over the last second or so (:func:`free_cpus`), so that the workers do not wait
   for time slices.  A fit that starts with its workers asleep (:func:`warm`) also needs
   enough work per thread and region to repay waking them (``COLD_ELEMENTS``).

Results do not depend on any of this: the chunks are fixed and reduced in order, whatever
runs them.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time

__all__ = ["cpu_count", "fit_threads", "free_cpus", "region_threads", "warm"]

# At least this many fixed chunks (of 2048 rows) per thread: a region's start and end then
# cost a few per cent of its work when the workers are awake.
MIN_CHUNKS_PER_THREAD = 2
# How long a load sample is reused: the load of a shared machine changes over seconds, and a
# sample costs 20-200 µs, against fits of milliseconds.
SAMPLE_SECONDS = 0.1
# A region whose workers are asleep must first wake them: about 70 µs on an idle machine,
# and here (a virtual machine whose idle CPUs are halted) 1.5 ms after 50 ms of sleep and
# 7 ms plus 4 ms for the next region after 0.1 s or more, where an awake worker costs 2 µs.
# So a fit starting cold runs its regions on threads only if each thread gets at least
# COLD_ELEMENTS elements of X (rows x (columns + 1)) per region, enough for the repeated
# regions of a fit to repay the wake; a region that runs once (a prediction) needs
# COLD_ELEMENTS_ONCE.  Warm means a parallel region or a fit ended less than WARM_SECONDS
# ago: workers still spinning, or fits in quick succession that share one wake.
COLD_ELEMENTS = 100_000
COLD_ELEMENTS_ONCE = 1_000_000
WARM_SECONDS = 0.02
# How long after a parallel region this process's own OpenMP workers may still be spinning
# (and so be counted as running): libgomp's default of 300,000 spins took 15 ms here, and
# takes more or less time with the cost of a spin on other CPUs.
SPIN_SECONDS = 0.05

# The average load of the last moments is measured over the time since a reading of the
# machine's and this process's CPU time taken LOAD_WINDOW to 2 * LOAD_WINDOW ago (at least
# MIN_WINDOW; a process that sampled nothing for longer has no average, and the instant
# decides).  The machine's CPU time is counted in clock ticks (10 ms), so other work may
# use up to BUSY_TOLERANCE of a CPU on average and the CPU still count as free.
LOAD_WINDOW = 0.5
MIN_WINDOW = 0.2
BUSY_TOLERANCE = 0.1
# The instantaneous count is one moment: a thread that is about to block (a parent process
# that has just handed this one work and goes back to waiting for it, a heartbeat) counts as
# running in it.  When it shows other work and there is no average to go by, it is read
# again up to NOW_READS times NOW_SPACING apart, and the smallest count taken: work that
# lasts shows in every reading.  (Where the count shows none, one reading decides.)
NOW_READS = 3
NOW_SPACING = 1e-4

_LOADAVG = "/proc/loadavg"
_STAT = "/proc/stat"
_TASKS = "/proc/self/task"

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

_lock = threading.Lock()
_sample: tuple[float, int] = (-float("inf"), 0)  # (time, free CPUs)
_readings: list[tuple[float, float, float]] = []  # (time, machine busy, own CPU seconds)
_last_parallel = -float("inf")  # when a parallel region was last chosen or ended
_last_threads = 1  # threads of that region
_last_fit = -float("inf")  # when a fit (fit_threads) last ended


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _running_total() -> int | None:
    """Threads running or waiting for a CPU on the whole machine, this one included (the
    fourth field of ``/proc/loadavg``, an instantaneous count); None where unavailable."""
    try:
        with open(_LOADAVG, "rb") as fh:
            return int(fh.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since it started (the first line of
    ``/proc/stat``: every state but idle and waiting for I/O); None where unavailable."""
    try:
        with open(_STAT, "rb") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS_PER_SECOND
    except (OSError, ValueError, IndexError):
        return None


def _own_seconds() -> float:
    """CPU seconds this process has used, all its threads included."""
    return time.process_time()


def _running_here() -> int:
    """Threads of this process running or waiting for a CPU, the calling one excluded."""
    running = 0
    try:
        names = os.listdir(_TASKS)
    except OSError:
        return 0
    for name in names:
        try:
            with open(f"{_TASKS}/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # the thread ended meanwhile
        # the state follows the command name, which is in parentheses and may hold spaces
        if stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R":
            running += 1
    return max(0, running - 1)


def _used_elsewhere(now: float) -> float | None:
    """CPUs used on average by work outside this process over the last moments (see
    ``LOAD_WINDOW``), or None if there is no reading old enough (a process's first sample)."""
    busy = _busy_seconds()
    if busy is None:
        return None
    reading = (now, busy, _own_seconds())
    if not _readings or now - _readings[-1][0] > 2 * LOAD_WINDOW:
        _readings[:] = [reading]
        return None
    if now - _readings[-1][0] >= LOAD_WINDOW:
        _readings[:] = [_readings[-1], reading]
    then, busy0, own0 = _readings[0]
    if now - then < MIN_WINDOW:
        return None
    return max(0.0, (busy - busy0) - (reading[2] - own0)) / (now - then)


def free_cpus(now: float | None = None) -> int:
    """CPUs not taken by work running elsewhere (other processes, or other threads of this
    one), sampled at most every ``SAMPLE_SECONDS``.

    Two measures, the smaller one taken.  Now: ``CPUs - (running on the machine - 1 - own
    spinning workers)``; the running count includes the caller, and, shortly after a
    parallel region, this process's OpenMP workers still spinning (``SPIN_SECONDS``), which
    are the threads the next region will use, so they are not counted against it (at most
    ``threads - 1`` of this process's running threads are taken for them).  Lately:
    ``CPUs - CPUs used by other processes on average`` over the last moments
    (:func:`_used_elsewhere`; without one, the instant is read again to confirm it, see
    ``NOW_READS``), whole CPUs only (a CPU is free if at most ``BUSY_TOLERANCE``
    of it was used): work that runs in bursts, between which the machine looks idle for an
    instant, leaves no CPU free, since a region whose worker meets such a burst waits for a
    time slice.  Where the machine's counts are unavailable (not Linux), every CPU counts as
    free.
    """
    global _sample
    now = time.monotonic() if now is None else now
    taken, value = _sample
    if now - taken < SAMPLE_SECONDS:
        return value
    cpus = cpu_count()
    lately = _used_elsewhere(now)
    value = None
    for reading in range(NOW_READS if lately is None else 1):
        if reading:
            time.sleep(NOW_SPACING)
        total = _running_total()
        if total is None:
            break
        elsewhere = total - 1
        if elsewhere > 0 and now - _last_parallel < SPIN_SECONDS:
            elsewhere -= min(_running_here(), _last_threads - 1)
        free = cpus - max(0, elsewhere)
        value = free if value is None else max(value, free)
        if value == cpus:
            break
    if value is None:
        value = cpus
    if lately is not None:
        value = min(value, math.floor(cpus - lately + BUSY_TOLERANCE))
    value = max(1, value)
    _sample = (now, value)
    return value


def warm(now: float | None = None) -> bool:
    """Whether this process's OpenMP workers are awake, or about to be reused by fits in
    quick succession (a parallel region or a fit ended less than ``WARM_SECONDS`` ago)."""
    now = time.monotonic() if now is None else now
    return now - max(_last_parallel, _last_fit) < WARM_SECONDS


def region_threads(n_chunks: int, threads: int, elements: int, repeated: bool = True) -> int:
    """Threads for a parallel region over ``n_chunks`` fixed chunks holding ``elements``
    elements of X (rows x (columns + 1)), at most ``threads`` (Numba's current count); 1
    means run the chunks serially.  ``repeated``: the caller runs such regions many times
    (a fit's evaluations), not once (a prediction).  See the policy above."""
    t = min(threads, n_chunks // MIN_CHUNKS_PER_THREAD)
    if t >= 2 and not warm():
        t = min(t, elements // (COLD_ELEMENTS if repeated else COLD_ELEMENTS_ONCE))
    if t < 2:
        return 1
    t = min(t, free_cpus())
    if t >= 2:
        parallel_used(t)
        return t
    return 1


def parallel_used(threads: int) -> None:
    """Note that a parallel region on ``threads`` threads runs or has just ended, so that the
    next load samples do not count its spinning workers as load."""
    global _last_parallel, _last_threads
    _last_parallel = time.monotonic()
    _last_threads = threads


# ---- BLAS inside fits -----------------------------------------------------------------------

_blas_depth = 0  # fits running in this process (nested and concurrent ones included)
_blas_saved: list[tuple[_Blas, int]] = []  # (library, its thread count before the first fit)
_libraries: list[_Blas] | None = None
_found_with_scipy = False  # whether SciPy's linear algebra was imported when they were found


class _Blas:
    """The thread count of one loaded BLAS library.

    OpenBLAS with its own threads (the NumPy and SciPy wheels) is read and set through its C
    entry points, about 1 µs a call; threadpoolctl's generic path costs about 6 µs a call,
    and from version 3.8 lets only one Python thread at a time change OpenBLAS's limit,
    where fits in several threads share the one process-wide count here (the first fit in
    sets it, the last out restores it).  Other libraries go through threadpoolctl.
    """

    __slots__ = ("_get", "_set", "lib")

    def __init__(self, lib) -> None:
        self.lib = lib
        self._get = self._set = None
        if lib.internal_api == "openblas" and getattr(lib, "threading_layer", "") == "pthreads":
            for prefix in ("", "scipy_"):
                for suffix in ("", "64_", "_64"):
                    get = getattr(lib.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                    put = getattr(lib.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and put is not None:
                        self._get, self._set = get, put
                        return

    def get(self) -> int:
        return int(self._get() if self._get is not None else self.lib.num_threads)

    def set(self, n: int) -> None:
        if self._set is not None:
            self._set(n)
        else:
            self.lib.set_num_threads(n)


def _blas_libraries() -> list[_Blas]:
    """The BLAS libraries loaded in this process (found with threadpoolctl): once, and
    again once SciPy's linear algebra, which brings a BLAS of its own, has been imported."""
    global _libraries, _found_with_scipy
    with_scipy = "scipy.linalg" in sys.modules
    if _libraries is None or (with_scipy and not _found_with_scipy):
        from threadpoolctl import ThreadpoolController

        known = {lib.lib.filepath: lib for lib in _libraries or ()}
        found = ThreadpoolController().select(user_api="blas").lib_controllers
        _libraries = [known.get(lib.filepath) or _Blas(lib) for lib in found]
        _found_with_scipy = with_scipy
    return _libraries


def scipy_blas() -> None:
    """Load SciPy's BLAS, for a fit that calls it, and run it on one thread inside fits as
    every BLAS library is.

    L-BFGS-B (``scipy.optimize``) and, in networks with hidden layers, Numba's ``np.dot``
    and the pivoted QR of the output's refit call it; no other fit does, and a process
    whose fits never call it does not import SciPy's linear algebra (0.15 s; with the
    kernels in the cache: compiling imports it, through Numba's linear algebra).  Called
    inside a fit, before the first such call: a library that is new to this process is set
    to one thread for the fits running, and restored with the others when the last one
    ends."""
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS)

    with _lock:
        before = list(_libraries or ())
        libraries = _blas_libraries()
        if _blas_depth > 0:
            for lib in libraries:
                if not any(lib is old for old in before):
                    n = lib.get()
                    if n != 1:
                        _blas_saved.append((lib, n))
                        lib.set(1)


def fit_threads() -> _FitScope:
    """Context (or decorator, ``@fit_threads()``) around one fit: BLAS runs on one thread
    inside it.

    BLAS threads never help a fit (its matrix products are small) and compete with Numba's
    (see the module notes).  Re-entrant and safe across threads: the first fit to enter sets
    every BLAS library to one thread, the last to leave restores the counts it found.  On
    leaving a fit that used a parallel region, notes that its OpenMP workers spin from now
    on (:func:`parallel_used`), so that the next fit's load sample does not mistake them for
    other work.
    """
    return _FitScope()


class _FitScope:
    """One fit's scope (see :func:`fit_threads`)."""

    __slots__ = ("_entered",)

    def __enter__(self) -> _FitScope:
        global _blas_depth
        self._entered = time.monotonic()
        with _lock:
            if _blas_depth == 0:
                _blas_saved.clear()
                for lib in _blas_libraries():
                    n = lib.get()
                    if n != 1:
                        _blas_saved.append((lib, n))
                        lib.set(1)
            _blas_depth += 1
        return self

    def __exit__(self, *exc) -> None:
        global _blas_depth, _last_fit
        if _last_parallel >= self._entered:
            parallel_used(_last_threads)  # its workers spin from now on, not from its start
        _last_fit = time.monotonic()
        with _lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                for lib, n in _blas_saved:
                    lib.set(n)
                _blas_saved.clear()

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with _FitScope():
                return fn(*args, **kwargs)

        return wrapped


def blas_threads() -> list[int]:
    """The thread count of every BLAS library loaded (for tests and diagnostics)."""
    return [lib.get() for lib in _blas_libraries()]


def reset() -> None:
    """Forget the load samples and the last parallel region (tests)."""
    global _sample, _last_parallel, _last_threads, _last_fit
    _sample = (-float("inf"), 0)
    _readings.clear()
    _last_parallel = -float("inf")
    _last_threads = 1
    _last_fit = -float("inf")
