"""Fake group functions for the runner, executor, store and CLI tests.

They follow the group-function interface of :mod:`simbench.sweep.runner` without any
numerics: the "metrics" are deterministic functions of the data and init seeds, so two runs
of the same sweep must store identical values whatever the executor.  What a cell does is
chosen by its configuration's ``name``:

``raise*``  raises ``RuntimeError``           ``nan*``   returns non-finite metrics (diverged)
``hang*``   sleeps far past any timeout        ``segv*``  kills its process with SIGSEGV
``exit*``   leaves with ``os._exit(7)``        ``bad*``   returns an unknown status
anything else: an ``ok`` row.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np


def _metrics(task, cell) -> dict:
    x = np.random.default_rng(task.data_seed).standard_normal(64)
    w = np.random.default_rng(cell.init_seed).standard_normal(64)
    return {
        "status": "ok",
        "error": None,
        "coef_err_truth": float(abs(x @ w) / 64.0),
        "coef_z_mle": float(np.sqrt(np.mean((x - w) ** 2))),
        "excess_deviance": float(np.var(x * w)),
        "beta_hat": (x[:3] * w[:3]).tolist(),
        "beta_true": x[:3].tolist(),
        "epochs_run": int(cell.init_seed % 97),
        "converged": bool(cell.init_seed % 2),
        "fit_seconds": 0.001,
    }


def _behave(task, cell) -> dict:
    name = str(cell.config.get("name", ""))
    if name.startswith("raise"):
        raise RuntimeError(f"boom in cell {cell.cell_id}")
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("segv"):
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)
    if name.startswith("exit"):
        os._exit(7)
    row = _metrics(task, cell)
    if name.startswith("nan"):
        row.update(
            status="diverged",
            error="non-finite training loss",
            coef_err_truth=float("nan"),
            excess_deviance=float("inf"),
            beta_hat=[float("nan"), float("inf"), -float("inf")],
        )
    if name.startswith("bad"):
        row["status"] = "weird"
    return row


def seeded(task):
    """One ok row per cell (or the behaviour its name asks for), streamed."""
    for cell in task.cells:
        yield _behave(task, cell)


def sleepy(task):
    """Like :func:`seeded`, sleeping ``FAKE_SLEEP_MS`` (default 5) ms per cell."""
    pause = float(os.environ.get("FAKE_SLEEP_MS", "5")) / 1000.0
    for cell in task.cells:
        time.sleep(pause)
        yield _behave(task, cell)


def colours(task):
    """Like :func:`seeded`, with the class of the colour scheme of the worker's Numba error
    messages in ``error``."""
    from numba.core.errors import termcolor

    scheme = type(termcolor()).__name__
    for cell in task.cells:
        row = _behave(task, cell)
        row["error"] = scheme
        yield row


def listing(task):
    """Like :func:`seeded`, but returns a list (a batch group function)."""
    return [_behave(task, cell) for cell in task.cells]


def noop(task):
    """The cheapest valid group function: runner overhead measurements."""
    for _ in task.cells:
        yield {"status": "ok", "error": None, "coef_z_mle": 0.0}


def cpu_bound(task):
    """Pure-Python arithmetic: ``epochs`` x 1000 iterations per cell (GIL-bound work)."""
    for cell in task.cells:
        n = int(cell.config.get("epochs", 200)) * 1000
        acc = 0.0
        for i in range(n):
            acc += (i % 7) * 0.5
        row = _metrics(task, cell)
        row["work"] = acc
        yield row


def short(task):
    """Yields a row for the first cell only: the others must get error rows."""
    for cell in task.cells[:1]:
        yield _metrics(task, cell)


def _warm():
    _warm.calls = getattr(_warm, "calls", 0) + 1


def warmed(task):
    """Reports in every row how many times its warm-up ran in this process."""
    for cell in task.cells:
        row = _metrics(task, cell)
        row["warmups"] = getattr(_warm, "calls", 0)
        yield row


warmed.warmup = _warm


def _prepare(task):
    _prepare.calls = getattr(_prepare, "calls", 0) + 1
    time.sleep(float(os.environ.get("FAKE_PREPARE_S", "0")))


def prepared(task):
    """Reports in every row how many tasks its prepare hook has seen in this process."""
    for cell in task.cells:
        row = _metrics(task, cell)
        row["prepares"] = getattr(_prepare, "calls", 0)
        row["warmups"] = getattr(_unused_warm, "calls", 0)
        yield row


def _unused_warm():
    _unused_warm.calls = getattr(_unused_warm, "calls", 0) + 1


prepared.prepare = _prepare
prepared.warmup = _unused_warm


def calm(task):
    """Ignores the behaviours: an ok row for every cell (for --rerun-failed tests)."""
    for cell in task.cells:
        yield _metrics(task, cell)


def interrupted(task):
    """Two ok rows, then Ctrl-C (KeyboardInterrupt) as if the user stopped the run."""
    for i, cell in enumerate(task.cells):
        if i == 2:
            raise KeyboardInterrupt
        yield _metrics(task, cell)


def logged(task):
    """Like :func:`sleepy`, appending ``cell_id finish-time`` to ``$FAKE_LOG`` as each cell
    finishes (just before its row is handed over): what a kill must not lose."""
    pause = float(os.environ.get("FAKE_SLEEP_MS", "5")) / 1000.0
    log = os.environ["FAKE_LOG"]
    for cell in task.cells:
        time.sleep(pause)
        row = _behave(task, cell)
        with open(log, "a") as fh:
            fh.write(f"{cell.cell_id} {time.time():.6f}\n")
        yield row


def preloaded(task):
    """Reports the process its ``preload`` module was imported in, and its own, the sweep
    file its ``preload_sweep`` was given, and where, and whether the garbage collector was
    on there."""
    import fake_preload

    for cell in task.cells:
        row = _metrics(task, cell)
        row["preloaded_in"] = fake_preload.IMPORTED_IN
        row["worker_pid"] = os.getpid()
        row["preloaded_sweep"], row["sweep_preloaded_in"] = fake_preload.SWEEP
        row["gc_during_preload"] = fake_preload.GC_ENABLED
        yield row


def _preload_sweep(path):
    import gc

    import fake_preload

    fake_preload.SWEEP = (path, os.getpid())
    fake_preload.GC_ENABLED = gc.isenabled()


preloaded.preload = ("fake_preload",)
preloaded.preload_sweep = _preload_sweep
