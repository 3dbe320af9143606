"""Whole fits from Python at default thread settings against the best explicit setting.

Usage::

    python scripts/bench_threads.py                      # every optimiser; n = 1e3, 1e4, 1e5; p = 5
    python scripts/bench_threads.py --p 5 50 --reps 12   # more cases, more repetitions
    python scripts/bench_threads.py --optimizers lbfgs newton --n 1e4

Each timed unit is one complete ``simbench.train`` (or ``simbench.fit_glm``) call on Poisson
data, as a user makes it.  A *setting* is a set of environment variables given to a fresh
Python process: ``default`` removes every thread variable (what a user who sets nothing
gets); the explicit settings give Numba (``NUMBA_NUM_THREADS``) and BLAS/OpenMP
(``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OMP_NUM_THREADS``) one thread or one per
CPU each, and switch off simbench's own thread policy (:mod:`simbench._threads`: the load
check before a parallel region, BLAS on one thread inside fits), so that they run exactly
the thread counts set, as fixed settings did before the policy: ``best`` is then the best a
user could get by choosing thread counts, not the policy under another name.

Every setting has its own worker process, which compiles (or loads) its kernels and makes
one untimed call of every case first.  Then the calls interleave: for every case and
repetition each worker in turn makes one timed call (the order rotated from one repetition
to the next), with a pause of ``--gap`` seconds after each call, long enough for the
threads a call leaves spinning (OpenMP's about 15 ms, OpenBLAS's about 100 ms) to go to
sleep.  Before each call of the default there is a longer pause (``--pause``): the policy
also looks at the CPU time other processes used over the last second, and the other
settings' workers, which exist only for the benchmark, must not count as load.  Load from
other work on a shared machine, which comes and goes over seconds, so falls on every
setting alike.  ``--rounds`` starts that many fresh sets of workers.  A
case's time under a setting is the median of all its calls; the ratio printed is
``default / best``, ``best`` being the fastest explicit setting of that case.  The last
column gives the share of the default's calls in which the policy ran a parallel region
(it does where the machine has a CPU free when the fit starts).  Target: every ratio
<= 1.3.  The full grid takes 20-40 minutes, most of it in the pauses and in the fixed
settings that oversubscribe a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    # also cleared for ``default``, so that nothing in the caller's shell leaks into it
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "NUMBA_THREADING_LAYER",
)
OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adam-mb", "lbfgs", "newton", "irls")
GLM = "fit_glm"
TARGET = 1.3


def settings() -> dict[str, dict[str, str]]:
    """The environment of each setting (variables to set; every other thread variable unset)."""
    cpus = str(os.cpu_count() or 1)
    out: dict[str, dict[str, str]] = {"default": {}}
    for numba in ("1", cpus):
        for blas in ("1", cpus):
            out[f"numba={numba} blas={blas}"] = {
                "NUMBA_NUM_THREADS": numba,
                "OPENBLAS_NUM_THREADS": blas,
                "MKL_NUM_THREADS": blas,
                "OMP_NUM_THREADS": blas,
            }
    return out


def config(method: str, epochs: int, mb_epochs: int) -> dict:
    """The network configuration of an optimiser name (``adam-mb``: Adam on mini-batches)."""
    if method == "sgd":
        return {"hidden": [], "optimizer": "sgd", "batch_size": 64, "epochs": mb_epochs}
    if method == "adam-mb":
        return {"hidden": [], "optimizer": "adam", "batch_size": 64, "epochs": mb_epochs}
    if method in ("lbfgs", "newton", "irls"):
        return {"hidden": [], "optimizer": method}  # iterate to convergence
    return {"hidden": [], "optimizer": method, "epochs": epochs}


def data(n: int, p: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    beta = np.full(p, 0.5 / np.sqrt(p))  # var(eta) = 0.25 whatever p
    y = rng.poisson(np.exp(0.3 + X @ beta)).astype(np.float64)
    return X, y


def fix_threads() -> None:
    """Run exactly the thread counts the environment sets: parallel regions on all of
    Numba's threads whenever they have two chunks per thread, whatever the load, and BLAS
    on its own count inside fits too."""
    try:
        from simbench import _threads
    except ImportError:  # a version of simbench without the policy: nothing to switch off
        return
    _threads.free_cpus = lambda now=None: _threads.cpu_count()
    _threads._libraries = []


def count_parallel_regions(counter: list[int]) -> None:
    """Count, in ``counter[0]``, the parallel regions the policy lets run."""
    try:
        from simbench import _threads
    except ImportError:
        return
    real = _threads.parallel_used

    def counting(threads):
        counter[0] += 1
        real(threads)

    _threads.parallel_used = counting


def serve(cases, epochs: tuple[int, int], fixed: bool) -> None:
    """Worker: warm up every case, say ``ready``, then time one call of case ``i`` for every
    ``i`` read from stdin (seconds, one per line) until stdin closes."""
    import simbench

    regions = [0]  # parallel regions the policy let run (default setting only)
    if fixed:
        fix_threads()
    else:
        count_parallel_regions(regions)

    def call(method, X, y):
        if method == GLM:
            return simbench.fit_glm(X, y, family="poisson")
        return simbench.train(X, y, config(method, *epochs), family="poisson", seed=1)

    for method, _, p in cases:  # compile or load every kernel first, on a few rows
        call(method, *data(256, p))
    inputs = []
    for method, n, p in cases:
        inputs.append(data(n, p))
        call(method, *inputs[-1])  # first call at this size (allocations, page faults)
    print("ready", flush=True)
    for line in sys.stdin:
        i = int(line)
        before = regions[0]
        t0 = time.perf_counter()
        call(cases[i][0], *inputs[i])
        print(time.perf_counter() - t0, int(regions[0] > before), flush=True)


def start_worker(env_vars: dict[str, str], cases, epochs: tuple[int, int]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_vars)
    fixed = bool(env_vars)  # every setting but the default
    spec = json.dumps({"cases": cases, "epochs": epochs, "fixed": fixed})
    cmd = [sys.executable, __file__, "--serve", spec]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a worker ended early (exit code {proc.wait()})")
    return line.strip()


def run_round(table, cases, reps: int, epochs, gap: float, pause: float, times, shares) -> None:
    names = list(table)
    procs = {name: start_worker(table[name], cases, epochs) for name in names}
    try:
        for name in names:
            if read_line(procs[name]) != "ready":
                raise RuntimeError(f"worker {name!r} did not start")
        for rep in range(reps):
            for i in range(len(cases)):
                k = (rep + i) % len(names)
                for name in names[k:] + names[:k]:
                    if name == "default":
                        time.sleep(max(0.0, pause - gap))
                    procs[name].stdin.write(f"{i}\n")
                    procs[name].stdin.flush()
                    t, parallel = read_line(procs[name]).split()
                    times[name][i].append(float(t))
                    shares[name][i].append(int(parallel))
                    time.sleep(gap)
            print(f"  repetition {rep + 1}/{reps}", file=sys.stderr, flush=True)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--optimizers", nargs="+", default=[*OPTIMIZERS, GLM])
    ap.add_argument("--n", nargs="+", type=float, default=[1e3, 1e4, 1e5])
    ap.add_argument("--p", nargs="+", type=int, default=[5])
    ap.add_argument("--rounds", type=int, default=2, help="fresh sets of worker processes")
    ap.add_argument("--reps", type=int, default=8, help="timed calls per case, setting and round")
    ap.add_argument("--gap", type=float, default=0.12, help="seconds of pause after each call")
    ap.add_argument("--pause", type=float, default=1.1, help="seconds before a default call")
    ap.add_argument("--epochs", type=int, default=100, help="epochs of full-batch gd, adam, ...")
    ap.add_argument("--mb-epochs", type=int, default=20, help="epochs of the mini-batch methods")
    ap.add_argument("--settings", nargs="+", help="a subset of the settings, by name")
    args = ap.parse_args(argv)
    if args.serve:
        spec = json.loads(args.serve)
        serve([tuple(c) for c in spec["cases"]], tuple(spec["epochs"]), spec["fixed"])
        return 0

    unknown = set(args.optimizers) - {*OPTIMIZERS, GLM}
    if unknown:
        ap.error(f"unknown optimisers {sorted(unknown)}; choose from {[*OPTIMIZERS, GLM]}")
    cases = [(m, int(n), p) for p in args.p for n in args.n for m in args.optimizers]
    table = settings()
    if args.settings:
        table = {k: v for k, v in table.items() if k in args.settings or k == "default"}
    names = list(table)
    times: dict[str, list[list[float]]] = {name: [[] for _ in cases] for name in names}
    shares: dict[str, list[list[int]]] = {name: [[] for _ in cases] for name in names}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        epochs = (args.epochs, args.mb_epochs)
        run_round(table, cases, args.reps, epochs, args.gap, args.pause, times, shares)

    explicit = [name for name in names if name != "default"]
    calls = args.rounds * args.reps
    print(f"{os.cpu_count()} CPUs; median of {calls} interleaved calls per case and setting; ms")
    head = f"{'case':24s}" + "".join(f"{name:>16s}" for name in names)
    print(head + f"{'default/best':>14s}{'parallel':>10s}")
    worst = 0.0
    for i, (method, n, p) in enumerate(cases):
        med = {name: statistics.median(times[name][i]) for name in names}
        best = min(med[name] for name in explicit)
        ratio = med["default"] / best
        worst = max(worst, ratio)
        share = statistics.mean(shares["default"][i])
        flag = "" if ratio <= TARGET else "  <-"
        row = f"{method + f' n={n:g} p={p}':24s}" + "".join(f"{1e3 * med[x]:16.2f}" for x in names)
        print(row + f"{ratio:14.2f}{share:10.0%}{flag}")
    print(f"worst default/best: {worst:.2f} (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
