"""The group function: one row per cell, statuses, determinism, reference failures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbench import families, metrics
from simbench.data import Scenario
from simbench.fit.network import NetworkConfig
from simbench.sweep import worker
from simbench.sweep.cells import CellTask, GroupTask

CONFIGS = {
    "lbfgs": {"hidden": [], "optimizer": "lbfgs", "epochs": 500},
    "newton": {"hidden": [], "optimizer": "newton", "epochs": 100},
    "irls": {"hidden": [], "optimizer": "irls"},
    "squared": {"hidden": [], "optimizer": "lbfgs", "loss": "squared_error", "epochs": 500},
    "mlp": {"hidden": [4], "optimizer": "adam", "lr": 0.01, "epochs": 30},
    "glm-adam": {"hidden": [], "optimizer": "adam", "lr": 0.01, "epochs": 30},
    "hinge": {"hidden": [], "optimizer": "gd", "loss": "hinge", "epochs": 20},
    # passes validation but cannot split 300 rows: train raises a ValidationError
    "no_split": {
        "hidden": [],
        "optimizer": "gd",
        "early_stopping": True,
        "validation_fraction": 0.001,
        "epochs": 5,
    },
}


def _cells(names):
    out = []
    for i, name in enumerate(names):
        cfg = NetworkConfig.from_dict({"name": name, **CONFIGS[name]})
        out.append(CellTask(cell_id=f"cell-{name}", config=cfg.to_dict(), config_id=cfg.id,
                            init_seed=1000 + i))  # fmt: skip
    return tuple(out)


def _task(names, record_history=False, **scenario):
    sc = {"family": "poisson", "n": 300, "n_test": 1000, "p": 3, **scenario}
    return GroupTask(
        scenario=Scenario.from_dict(sc).to_dict(),
        scenario_id="test",
        replicate=0,
        data_seed=42,
        cells=_cells(names),
        record_history=record_history,
    )


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


TIMING = {"fit_seconds", "compile_seconds", "started_at", "worker"}


@pytest.fixture(scope="module")
def poisson_rows():
    names = ["lbfgs", "newton", "irls", "squared", "mlp", "hinge", "no_split"]
    task = _task(names)
    emitted = []
    rows = list(worker.run_group(task, emit=emitted.append))
    return names, task, rows, emitted


def test_one_row_per_cell_in_order_with_statuses(poisson_rows):
    names, task, rows, emitted = poisson_rows
    assert [r["cell_id"] for r in rows] == [c.cell_id for c in task.cells]
    assert emitted == rows
    status = {n: r["status"] for n, r in zip(names, rows, strict=True)}
    assert status == {
        "lbfgs": "ok", "newton": "ok", "irls": "ok", "squared": "ok", "mlp": "ok",
        "hinge": "skipped", "no_split": "error",
    }  # fmt: skip
    by = dict(zip(names, rows, strict=True))
    assert "hinge" in by["hinge"]["error"]
    assert by["no_split"]["error"].startswith("ValidationError")
    for r in rows:
        assert set(metrics.METRIC_COLUMNS) <= set(r)
        assert r["mle_status"] == "ok"
        assert len(r["beta_true"]) == len(r["beta_mle"]) == len(r["crb_var"]) == 4
        assert np.all(np.array(r["mle_se"]) > 0) and np.all(np.array(r["crb_var"]) > 0)
        assert isinstance(r["converged"], bool) and isinstance(r["epochs_run"], int)
    for r in (by["hinge"], by["no_split"]):
        assert all(math.isnan(r[k]) for k in metrics.METRIC_COLUMNS)
        assert r["beta_hat"] == []
    for name in ("lbfgs", "newton", "irls", "squared", "mlp"):
        r = by[name]
        assert r["fit_seconds"] > 0 and r["compile_seconds"] >= 0
        assert r["epochs_run"] >= 1 and math.isfinite(r["grad_norm"])
        assert len(r["beta_hat"]) == 4
        assert math.isnan(r["auc"])  # not a binary family
        assert math.isfinite(r["excess_deviance"]) and math.isfinite(r["calib_slope"])


def test_the_glm_shaped_network_reaches_the_mle(poisson_rows):
    names, _, rows, _ = poisson_rows
    by = dict(zip(names, rows, strict=True))
    for name in ("lbfgs", "newton", "irls"):
        r = by[name]
        assert r["converged"], name
        assert r["coef_z_mle"] < 1e-6, (name, r["coef_z_mle"])
        assert r["coef_err_mle"] < 1e-6
        assert abs(r["balance"]) < 1e-8  # Poisson-log is canonical
    # the same algorithm as the reference, at fit_glm's default tolerance (the reference's
    # is tighter): within rounding of the MLE
    assert by["irls"]["coef_z_mle"] < 1e-10
    # a mismatched loss is consistent but not the MLE: a visible distance in SE units
    assert by["squared"]["coef_z_mle"] > 1e-3
    # the hidden-layer network is summarised by its GLM projection
    assert np.isfinite(by["mlp"]["coef_err_truth"])


def test_same_task_gives_identical_rows(poisson_rows):
    _names, task, rows, _ = poisson_rows
    again = list(worker.run_group(task))
    for r1, r2 in zip(rows, again, strict=True):
        for k in r1:
            if k not in TIMING:
                assert _same(r1[k], r2[k]), (r1["cell_id"], k, r1[k], r2[k])


def test_history_is_the_distance_to_the_mle_in_standard_errors():
    task = _task(["lbfgs", "mlp"], record_history=True)
    lbfgs, mlp = worker.run_group(task)
    hist = lbfgs["history_dist"]
    assert len(hist) == lbfgs["epochs_run"] + 1
    assert hist[0] > 1.0 and hist[-1] == pytest.approx(lbfgs["coef_z_mle"], abs=1e-9)
    assert mlp["history_dist"] == []  # no coefficients to track
    assert "history_dist" not in next(iter(worker.run_group(_task(["lbfgs"]))))


def test_failed_reference_still_trains_the_configurations():
    # separable binary data: no MLE exists
    task = _task(["lbfgs", "newton"], family="bernoulli", separable=True, n=200)
    rows = list(worker.run_group(task))
    for r in rows:
        assert r["mle_status"] not in ("ok", "error")
        assert r["status"] in ("ok", "diverged")
        assert math.isnan(r["coef_z_mle"]) and math.isnan(r["coef_err_mle"])
        assert r["auc"] > 0.9  # the networks still rank the separable labels


def test_simulation_failure_gives_error_rows():
    task = _task(["lbfgs", "newton"])
    bad = GroupTask(
        scenario={**task.scenario, "n": -5},
        scenario_id="bad",
        replicate=0,
        data_seed=1,
        cells=task.cells,
    )
    rows = list(worker.run_group(bad))
    assert [r["status"] for r in rows] == ["error", "error"]
    assert all("simulating the data" in r["error"] for r in rows)


def test_an_exception_in_training_becomes_an_error_row(monkeypatch):
    from simbench.fit import network

    real_train = network.train

    def flaky(X, y, config, **kw):
        if config.name == "newton" and X.shape[0] > 100:  # not the warm-up
            raise RuntimeError("boom")
        return real_train(X, y, config, **kw)

    monkeypatch.setattr(network, "train", flaky)
    lbfgs, newton = worker.run_group(_task(["lbfgs", "newton"]))
    assert lbfgs["status"] == "ok"
    assert newton["status"] == "error" and newton["error"] == "RuntimeError: boom"
    assert math.isnan(newton["fit_seconds"]) or newton["fit_seconds"] >= 0


def test_an_error_row_keeps_plain_text_of_a_coloured_numba_error(monkeypatch):
    # with colorama installed, Numba wraps parts of its compilation errors in terminal
    # colour codes; a row's text is read in tables and reports, so it keeps the words only
    from numba.core.errors import TypingError

    from simbench.fit import network

    real_train = network.train
    coloured = (
        "\x1b[1m\x1b[1mUnknown attribute 'foo' of type float64\n\x1b[1m\nFile \"k.py\"\x1b[0m"
    )

    def failing(X, y, config, **kw):
        if config.name == "newton" and X.shape[0] > 100:  # not the warm-up
            raise TypingError(coloured)
        return real_train(X, y, config, **kw)

    monkeypatch.setattr(network, "train", failing)
    _, newton = worker.run_group(_task(["lbfgs", "newton"]))
    assert newton["status"] == "error"
    assert newton["error"].startswith("TypingError: Unknown attribute 'foo' of type float64")
    assert "\x1b" not in newton["error"] and 'File "k.py"' in newton["error"]


def test_a_real_numba_error_becomes_plain_text():
    import numba

    from simbench.sweep.status import ERROR_TEXT_LIMIT, error_text

    @numba.njit
    def attribute_of(x):
        return x.foo

    with pytest.raises(numba.core.errors.TypingError) as caught:
        attribute_of(1.0)
    text = error_text(caught.value)
    assert text.startswith("TypingError: ") and "Unknown attribute 'foo'" in text
    assert "\x1b" not in text
    long = error_text(ValueError("x" * (2 * ERROR_TEXT_LIMIT)))
    assert len(long) == ERROR_TEXT_LIMIT + 3 and long.endswith("...")


def test_a_groups_responses_are_checked_once_per_loss():
    """The cells of a group share its responses: a loss checks them once, and every cell
    with that loss gets the same reason to be skipped."""
    from types import SimpleNamespace

    from simbench.errors import ValidationError

    calls = []

    class Loss:
        def check_y(self, y):
            calls.append(y)
            if (y < 0).any():
                raise ValidationError("needs y >= 0")

    loss, checked = Loss(), {}
    data = SimpleNamespace(y=np.array([1.0, -1.0]))
    for _ in range(3):
        assert worker._response_problem(loss, data, checked) == "needs y >= 0"
    assert len(calls) == 1
    assert worker._response_problem(loss, SimpleNamespace(y=np.ones(2)), {}) is None


def test_warm_up_is_cached_per_structure():
    from simbench import families

    worker.clear_warm_cache()
    fam = families.get("poisson")
    cfg = NetworkConfig.from_dict(CONFIGS["lbfgs"])
    first = worker.warm_up(cfg, fam, fam.default_link)
    assert first > 0.0
    assert worker.warm_up(cfg.replace(epochs=7), fam, fam.default_link) == 0.0
    assert worker.warm_up(cfg, fam, fam.default_link) == 0.0


def test_run_group_streams_and_offers_a_process_warm_up():
    import inspect

    # the runner streams rows from a generator function and calls .warmup() per process
    assert inspect.isgeneratorfunction(worker.run_group)
    worker.clear_warm_cache()
    fam = families.get("poisson")
    probe = NetworkConfig.from_dict(CONFIGS["lbfgs"])
    assert worker.warm_up(probe, fam, fam.default_link) > 0.0  # cold after the clear
    worker.clear_warm_cache()
    worker.run_group.warmup()
    # every structure of the process warm-up, on both of its families, is warm now
    for family in ("poisson", "bernoulli"):
        fam = families.get(family)
        for d in worker._PROCESS_WARM_CONFIGS:
            cfg = NetworkConfig.from_dict(d)
            assert worker.warm_up(cfg, fam, fam.default_link) == 0.0, (family, d)


def test_prepare_compiles_what_a_task_needs_before_its_cells(monkeypatch):
    worker.clear_warm_cache()
    task = _task(["newton", "irls", "hinge"])
    worker.run_group.prepare(task)
    rows = list(worker.run_group(task))
    assert [r["status"] for r in rows] == ["ok", "ok", "skipped"]
    # every structure was warm when its cell came: nothing compiled on the cells' time
    assert rows[0]["compile_seconds"] == 0.0 and rows[1]["compile_seconds"] == 0.0
    # a task whose structures are all warm: a few look-ups, nothing run again
    calls = []
    monkeypatch.setattr(worker, "_warm", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(worker, "_warm_part", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(worker, "simulate", lambda *a, **k: calls.append(a), raising=False)
    worker.run_group.prepare(task)
    assert calls == []
    monkeypatch.undo()
    # only what the cells use: the GLM projection when a network needs it, the AUC for
    # binary data; never a multi-threaded variant (workers run on one thread)
    assert worker._WARM_PARTS == {"core", "reference", "metrics"}
    worker.run_group.prepare(_task(["mlp"], family="bernoulli"))
    assert worker._WARM_PARTS == {"core", "reference", "metrics", "auc", "projection"}


def test_a_reused_config_id_with_other_settings_is_not_trusted():
    # the per-process cache of validated configurations checks the settings, not just the id
    (irls,) = _cells(["irls"])
    other = NetworkConfig.from_dict({"name": "other", **CONFIGS["newton"]})
    own = CellTask(cell_id="clash", config=other.to_dict(), config_id=other.id, init_seed=7)
    clash = CellTask(cell_id="clash", config=other.to_dict(), config_id=irls.config_id,
                     init_seed=7)  # fmt: skip
    base = _task(["irls"]).__dict__
    expected = next(iter(worker.run_group(GroupTask(**{**base, "cells": (own,)}))))
    first, second = worker.run_group(GroupTask(**{**base, "cells": (irls, clash)}))
    keys = [k for k in expected if k not in TIMING | {"cell_id"}]
    assert not all(_same(first[k], expected[k]) for k in keys)  # the two configs differ
    assert all(_same(second[k], expected[k]) for k in keys)


def test_prepare_offers_the_longest_units_first(monkeypatch):
    """Workers starting together claim units in the order given: the code all of them need
    first, so that one compiles it while the others begin units that need it later; then
    the longest first, so that none is left compiling one long unit while the others wait
    for it."""
    seen = []
    monkeypatch.setattr(worker, "run_shared", lambda units: seen.extend(k for k, _ in units))
    worker.clear_warm_cache()
    worker.run_group.prepare(
        _task(["lbfgs", "irls", "newton", "mlp", "glm-adam"], family="bernoulli")
    )
    assert seen[0] == ("part", "core")  # what every other unit needs
    assert seen[1][:2] == ("adam", (4,))  # hidden layers
    assert seen[2] == ("part", "reference")
    assert seen[3][0] == "newton"
    assert seen[4] == ("part", "metrics")
    assert seen[5][:2] == ("adam", ())  # compiled epochs without hidden layers
    # what reuses the code of Newton and of the reference fit, then the smaller parts
    assert {k[0] for k in seen[6:8]} == {"lbfgs", "irls"}
    assert set(seen[8:]) == {("part", "auc"), ("part", "projection")}
    worker.clear_warm_cache()


_CORE_THEN_FITS = """
import numpy as np

import simbench
from simbench._link_only import is_link_only
from simbench.kernels.losses import loss_eval
from simbench.sweep import worker

worker._warm_part("core", None)
d = simbench.simulate({"family": "poisson", "n": 200, "p": 3}, seed=1)
simbench.fit_glm(d.X, d.y, family="poisson")
simbench.train(d.X, d.y, {"hidden": [], "optimizer": "newton", "epochs": 3}, family="poisson")
(signature,) = loss_eval.signatures
print(len(loss_eval.signatures), is_link_only(loss_eval.overloads[signature]))
"""


def test_the_core_unit_compiles_what_the_fits_then_call(tmp_path):
    """From an empty cache: the "core" part compiles the per-observation family, link and
    loss code with the very signature the IRLS and Newton kernels call it with, so the
    workers that load it instead of compiling it find what they need (a second signature
    would be compiled again), for linking only, as the kernels' calls would."""
    from cli_support import printed_from_an_empty_cache

    assert printed_from_an_empty_cache(_CORE_THEN_FITS, tmp_path) == ["1", "True"]


def test_the_fork_servers_preload_makes_numba_ready():
    """run_group's preload module, imported in a fresh process (as the fork server does),
    leaves Numba initialised and the simulation's link kernel loaded."""
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    from simbench.sweep.worker import run_group

    assert run_group.preload == ("simbench.sweep.worker_init",)
    code = (
        "import simbench.sweep.worker_init\n"
        "from simbench.kernels.links import link_h_arr\n"
        "print(len(link_h_arr.signatures))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], env=env_for_subprocess(), capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.split()[-1]) >= 1


_PRELOAD_SWEEP = """
[sweep]
name = "preload"
replicates = 2
seed = 7

[[scenarios]]
family = "poisson"
n = 200
p = 2

[[configs]]
name = "glm-irls"
hidden = []
optimizer = "irls"

[[configs]]
name = "glm-newton"
hidden = []
optimizer = "newton"
"""

# in a fresh process, as the fork server runs it: what preload_sweep compiled, how many
# threads the process had before and after, and what is warm
_PRELOAD = """
import json, os, sys
# SciPy's BLAS starts its threads when it is loaded (with OPENBLAS_NUM_THREADS=2), as a fit
# that calls it may load it in the server (the separation check's Cholesky factor); OpenBLAS
# stops them before a fork and starts them again after.  What must not start is a thread of
# the preload's own: a parallel region, whose OpenMP workers a fork would not survive.
import scipy.linalg
import simbench.sweep.worker_init  # the server's preload, imported first
from numba.core import event
from simbench._jit import cache_dirs
from simbench.sweep import worker
from simbench.sweep.cells import iter_groups, task_of
from simbench.sweep.spec import load_sweep

def threads():
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1

def cached():
    return sorted(str(p) for d in cache_dirs() for p in d.glob("*.nbi"))

before, cached_before = threads(), cached()
with event.install_recorder("numba:compile") as rec:
    worker.run_group.preload_sweep(sys.argv[1])
task = task_of(load_sweep(sys.argv[1]), next(iter_groups(load_sweep(sys.argv[1]))))
print(json.dumps({
    # a compilation begun, whether refused or not
    "begun": sum(1 for _, ev in rec.buffer if ev.is_start),
    # what the compiled-code cache holds after (a compiled kernel is written to it)
    "cached": cached(),
    "threads": [before, threads()],
    "cached_before": cached_before,
    "structures": sorted(k[0] for k in worker._WARM),
    "parts": sorted(worker._WARM_PARTS),
    "sweep_parts": sorted(worker._SWEEP_PARTS),
    "left": worker._plan(task) is not None,
    "planned": sorted(k[1] for k, _ in (worker._plan(task) or ((), []))[1] if k[0] == "part"),
    # Numba's compiler set up (its first compilation imports numba.np.arraymath)
    "compiler_set_up": "numba.np.arraymath" in sys.modules,
}))
"""


def _preload_in_fresh_process(sweep, **env):
    import json
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    res = subprocess.run(
        [sys.executable, "-c", _PRELOAD, str(sweep)],
        env=env_for_subprocess(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


def test_preload_sweep_loads_what_the_tasks_need_and_compiles_nothing(tmp_path):
    """The fork server's preload_sweep leaves every unit a task of the sweep needs loaded
    and warm, so that the workers forked from it have nothing left to prepare; it compiles
    nothing and starts no thread (forking stays safe)."""
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    sweep = tmp_path / "preload.toml"
    sweep.write_text(_PRELOAD_SWEEP)
    # the cache holds what a worker compiles for this sweep (compiled here if it did not)
    fill = (
        "import sys\n"
        "from simbench.sweep import worker\n"
        "from simbench.sweep.cells import iter_groups, task_of\n"
        "from simbench.sweep.spec import load_sweep\n"
        "spec = load_sweep(sys.argv[1])\n"
        "worker._prepare(task_of(spec, next(iter_groups(spec))))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", fill, str(sweep)],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    got = _preload_in_fresh_process(sweep, NUMBA_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    assert got["begun"] == 0  # everything came from the cache
    assert got["structures"] == ["irls", "newton"]
    assert got["parts"] == ["core", "metrics", "reference"]
    assert not got["left"]  # a task of the sweep finds nothing to prepare
    assert got["threads"][1] == got["threads"][0]
    assert got["compiler_set_up"] is False  # the workers only load: nobody needs it


def test_preload_sweep_sets_up_the_compiler_for_workers_that_will_compile(tmp_path):
    """With a unit not in the cache, the workers will compile: the server sets up Numba's
    compiler (which loading alone does not), and every worker inherits it instead of paying
    for it itself."""
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    sweep = tmp_path / "preload.toml"
    sweep.write_text(_PRELOAD_SWEEP)
    cache = str(tmp_path / "cache")
    # a cache with the server's own kernel only (which the server then loads, not compiles)
    res = subprocess.run(
        [sys.executable, "-c", "import simbench.sweep.worker_init"],
        env=env_for_subprocess(NUMBA_CACHE_DIR=cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    got = _preload_in_fresh_process(sweep, NUMBA_CACHE_DIR=cache)
    assert got["begun"] >= 1 and got["left"]
    assert got["compiler_set_up"] is True


def test_preload_sweep_from_an_empty_cache_leaves_the_compiling_to_the_workers(tmp_path):
    """From an empty cache nothing is compiled in the fork server and nothing marked warm:
    the workers compile and share the units as before, and none waits for the server."""
    sweep = tmp_path / "preload.toml"
    sweep.write_text(_PRELOAD_SWEEP)
    got = _preload_in_fresh_process(sweep, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    assert got["begun"] >= 1 and got["cached"] == got["cached_before"]
    assert got["structures"] == [] and got["parts"] == []
    assert got["left"]
    assert got["sweep_parts"] == []  # no binary family


def test_preload_sweep_plans_the_auc_of_a_later_binary_scenario_with_the_first_task(tmp_path):
    """From an empty cache too, the server reads which parts the sweep will need that
    compile the same code on any data (the AUC, for a binary family in a later scenario),
    and a worker's first task (Poisson) plans them with its own: a worker that would wait
    for another's unit compiles it meanwhile."""
    sweep = tmp_path / "preload.toml"
    both = _PRELOAD_SWEEP.replace('family = "poisson"', 'family = ["poisson", "bernoulli"]')
    sweep.write_text(both)
    got = _preload_in_fresh_process(sweep, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    assert got["sweep_parts"] == ["auc"]
    assert got["planned"] == ["auc", "core", "metrics", "reference"]


_METRICS_ALONE = """
import simbench
from simbench.kernels.irls import irls_pass
from simbench.kernels.metrics import glm_fit_small, mean_function_passes
from simbench.sweep import worker

d = simbench.simulate({"family": "poisson", "n": 200, "n_test": 300, "p": 3}, seed=1)
worker._warm_part("metrics", d)
print(len(irls_pass.signatures), len(mean_function_passes.signatures),
      len(glm_fit_small.signatures))
"""


def test_the_metrics_unit_does_not_wait_for_the_reference_fit(tmp_path):
    """From an empty cache the metrics' code compiles without the reference fit's (the
    IRLS passes): the two are separate units that two workers can share."""
    from cli_support import printed_from_an_empty_cache

    assert printed_from_an_empty_cache(_METRICS_ALONE, tmp_path) == ["0", "1", "1"]


_CELLS_LOAD_NOTHING = """
import gc, sys
from numba.core.registry import CPUDispatcher
from simbench.sweep import worker
from simbench.sweep.cells import iter_groups, task_of
from simbench.sweep.spec import load_sweep

def loaded():
    return {(d.py_func.__qualname__, sig) for d in gc.get_objects()
            if isinstance(d, CPUDispatcher) for sig in d.overloads}

spec = load_sweep(sys.argv[1])
task = task_of(spec, next(iter_groups(spec)))
worker.run_group.prepare(task)
before = loaded()
rows = list(worker.run_group(task))
print(sorted(r["status"] for r in rows), sorted(name for name, _ in loaded() - before))
"""


def test_after_prepare_the_cells_load_no_compiled_code(tmp_path):
    """``prepare`` leaves nothing for a task's cells to compile or load, their predictions
    included: in a fresh process on one thread, as a worker, running the group adds no
    compiled function."""
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    sweep = tmp_path / "cells.toml"
    sweep.write_text(
        _PRELOAD_SWEEP
        + '\n[[configs]]\nname = "mlp"\nhidden = [3]\noptimizer = "adam"\nepochs = 5\n'
    )
    res = subprocess.run(
        [sys.executable, "-c", _CELLS_LOAD_NOTHING, str(sweep)],
        env=env_for_subprocess(NUMBA_NUM_THREADS="1"),  # as a sweep's worker runs
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "['ok', 'ok', 'ok'] []"
