"""The runner and its executors, with the fake group functions of ``fake_groups``.

Every cell must yield exactly one row whatever its group function does (raise, return
non-finite values, hang, kill its process), and the metric columns must not depend on the
executor or the number of workers.
"""

from __future__ import annotations

import math
import os

import pandas as pd
import pytest
from cli_support import RUN_METRICS as METRICS

from simbench.errors import ValidationError
from simbench.sweep.backends import LocalExecutor, SerialExecutor, make_executor
from simbench.sweep.cells import expand_cells
from simbench.sweep.runner import Runner
from simbench.sweep.spec import RawVocabulary, Vocabulary, parse_sweep
from simbench.sweep.store import load, load_manifest


def make_spec(configs, replicates=2, ns=(50, 80), vocabulary=None, seed=5):
    blocks = "\n".join(f'[[configs]]\nname = "{c}"\nhidden = []\n' for c in configs)
    text = f"""
[sweep]
name = "rt"
replicates = {replicates}
seed = {seed}
[[scenarios]]
family = "poisson"
n = [{", ".join(map(str, ns))}]
{blocks}
"""
    return parse_sweep(text, source="rt.toml", vocabulary=vocabulary or RawVocabulary())


def run(spec, out, fn="fake_groups:seeded", executor=None, **kw):
    runner = Runner(spec, out, executor=executor or SerialExecutor(), group_fn=fn, **kw)
    report = runner.run()
    return report, load(out)


def _as_list(values):
    return None if values is None else list(values)


def metric_table(df):
    table = df[METRICS].sort_values("cell_id").reset_index(drop=True)
    table["beta_hat"] = df.sort_values("cell_id")["beta_hat"].map(_as_list).reset_index(drop=True)
    return table


def by_config(df):
    return {name: sub for name, sub in df.groupby("c_name")}


# --------------------------------------------------------------------------- the happy path


def test_serial_run_stores_every_cell_once_and_resumes(tmp_path):
    spec = make_spec(["a", "b", "c"])
    out = tmp_path / "res"
    report, df = run(spec, out)
    assert report.exit_code == 0 and report.counts == {"ok": 12} and report.n_cached == 0
    assert len(df) == 12 and df["cell_id"].is_unique and (df["status"] == "ok").all()
    assert df["cell_id"].tolist() == [c.cell_id for c in expand_cells(spec)]  # sweep order
    assert (df["sweep_name"] == "rt").all() and (df["run_id"] == report.run_id).all()
    assert set(df["c_name"]) == {"a", "b", "c"} and set(df["s_n"]) == {50, 80}
    assert df["worker"].notna().all() and df["started_at"].notna().all()
    # common random numbers: one data seed per (scenario, replicate)
    assert (df.groupby(["scenario_index", "replicate"])["data_seed"].nunique() == 1).all()

    again, df2 = run(spec, out)
    assert again.n_cached == 12 and sum(again.counts.values()) == 0 and again.exit_code == 0
    pd.testing.assert_frame_equal(df, df2)
    manifest = load_manifest(out)
    assert [r["outcome"] for r in manifest["runs"]] == ["finished", "finished"]
    assert manifest["runs"][0]["counts"] == {"ok": 12}


@pytest.mark.parametrize("fn", ["fake_groups:seeded", "fake_groups:listing"])
def test_jobs_1_and_2_give_bit_identical_metrics(tmp_path, fn):
    spec = make_spec(["a", "b", "c"], replicates=3)
    _, serial = run(spec, tmp_path / "serial", fn)
    _, one = run(spec, tmp_path / "one", fn, executor=LocalExecutor(jobs=1))
    _, two = run(spec, tmp_path / "two", fn, executor=LocalExecutor(jobs=2))
    assert len(serial) == 18
    pd.testing.assert_frame_equal(metric_table(serial), metric_table(one), check_exact=True)
    pd.testing.assert_frame_equal(metric_table(serial), metric_table(two), check_exact=True)
    assert two["worker"].nunique() == 2


def test_quick_runs_a_subset_reused_by_the_full_run(tmp_path):
    spec = make_spec(["a", "b"], replicates=3, ns=(200, 100))
    report, df = run(spec, tmp_path / "res", quick=True)
    assert report.n_cells == 2 and set(df["s_n"]) == {100} and set(df["replicate"]) == {0}
    full, df = run(spec, tmp_path / "res")
    assert full.n_cached == 2 and full.counts == {"ok": 10} and len(df) == 12


def test_warmup_runs_once_per_worker_before_any_cell(tmp_path):
    spec = make_spec(["a", "b"], replicates=3)
    _, df = run(spec, tmp_path / "res", "fake_groups:warmed", executor=LocalExecutor(jobs=2))
    assert (df["warmups"] == 1).all()
    _, df = run(spec, tmp_path / "serial", "fake_groups:warmed")
    assert (df["warmups"] >= 1).all()


def test_prepare_runs_before_every_task_outside_its_timeout(tmp_path, monkeypatch):
    # a hook slower than the timeout times nothing out: it runs before the task's clock;
    # and it replaces the once-per-process warm-up
    monkeypatch.setenv("FAKE_PREPARE_S", "0.3")
    spec = make_spec(["a", "b"], replicates=2)
    for name, executor in (("serial", SerialExecutor()), ("local", LocalExecutor(jobs=1))):
        report, df = run(spec, tmp_path / name, "fake_groups:prepared", executor, timeout=0.2)
        assert report.exit_code == 0 and (df["status"] == "ok").all()
        assert (df["warmups"] == 0).all()
        # one call per group (four of them), before its rows
        seen = sorted(set(df["prepares"]))
        assert len(seen) == 4 and seen == list(range(seen[0], seen[0] + 4))
        assert (df.groupby(["s_n", "replicate"])["prepares"].nunique() == 1).all()


# --------------------------------------------------------------------------- failures


def check_failure_rows(df, timeout=True, deaths=True):
    rows = by_config(df)
    for name in ("ok1", "ok2"):
        assert (rows[name]["status"] == "ok").all()
        assert rows[name]["coef_z_mle"].notna().all()
    raised = rows["raise"]
    assert (raised["status"] == "error").all()
    assert raised["error"].str.startswith("RuntimeError: boom in cell").all()
    assert raised["traceback"].str.contains("fake_groups.py").all()
    nan = rows["nan"]
    assert (nan["status"] == "diverged").all()
    assert (
        nan["coef_err_truth"].map(math.isnan).all() and (nan["excess_deviance"] == math.inf).all()
    )
    assert all(math.isnan(b[0]) and b[1] == math.inf for b in nan["beta_hat"])
    bad = rows["bad"]
    assert (bad["status"] == "error").all()
    assert bad["error"].str.contains("returned status 'weird'").all()
    if timeout:
        hang = rows["hang"]
        assert (hang["status"] == "timeout").all()
        assert hang["error"].str.contains("timeout of 1 s").all()
    if deaths:
        segv = rows["segv"]
        assert (segv["status"] == "error").all()
        assert segv["error"].str.contains("worker process died.*SIGSEGV").all()
        exited = rows["exit"]
        assert exited["error"].str.contains("worker process died.*exit code 7").all()


def test_local_failures_each_give_their_row_and_the_rest_completes(tmp_path):
    names = ["ok1", "raise", "nan", "hang", "segv", "exit", "bad", "ok2"]
    spec = make_spec(names, replicates=2, ns=(50,))
    report, df = run(spec, tmp_path / "res", executor=LocalExecutor(jobs=2), timeout=1.0)
    assert len(df) == 16 and df["cell_id"].is_unique
    check_failure_rows(df)
    assert report.exit_code == 3 and report.failed == 10 and report.missing == 0


def test_serial_failures_with_an_alarm_timeout(tmp_path):
    names = ["ok1", "raise", "nan", "hang", "bad", "ok2"]
    spec = make_spec(names, replicates=1, ns=(50, 60))
    report, df = run(spec, tmp_path / "res", timeout=1.0)
    assert len(df) == 12
    check_failure_rows(df, deaths=False)
    assert report.exit_code == 3


def test_a_worker_that_dies_or_hangs_holding_a_second_task_loses_none_of_it(tmp_path):
    """A worker holds the next task while it runs one (TASKS_PER_WORKER): when it dies or
    times out, the task it had not started runs whole on a fresh worker."""
    from simbench.sweep.backends import local

    assert local.TASKS_PER_WORKER >= 2
    for bad in ("segv", "hang", "exit"):
        spec = make_spec(["ok1", bad, "ok2"], replicates=3, ns=(50,))
        out = tmp_path / bad
        report, df = run(spec, out, executor=LocalExecutor(jobs=1), timeout=1.0)
        assert len(df) == 9 and df["cell_id"].is_unique and report.missing == 0
        rows = by_config(df)
        assert (rows["ok1"]["status"] == "ok").all() and (rows["ok2"]["status"] == "ok").all()
        assert (rows[bad]["status"] != "ok").all()
        # the same rows as a serial run of the good configurations (same cell ids)
        _, serial = run(make_spec(["ok1", "ok2"], replicates=3, ns=(50,)), tmp_path / f"{bad}-s")
        ok = metric_table(df[df["status"] == "ok"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ok, metric_table(serial), check_dtype=False)


def test_a_worker_starts_its_next_group_while_the_runner_is_busy(tmp_path, monkeypatch):
    """The next task waits in the worker's pipe: while the process that reads the rows is
    busy, the worker goes on to its next group instead of waiting to be sent it."""
    import time

    from simbench.sweep.cells import group_tasks

    monkeypatch.setenv("FAKE_SLEEP_MS", "20")
    spec = make_spec(["a"], replicates=3, ns=(50,))
    executor = LocalExecutor(jobs=1)
    executor.start("fake_groups:sleepy", None)
    try:
        for task in group_tasks(spec, expand_cells(spec)):
            executor.submit(task)
        rows = []
        busy_from = None
        for item in executor.results():
            if item is None:
                continue
            rows.append(item[1])
            if busy_from is None:
                busy_from = time.time()
                time.sleep(1.0)  # the runner is busy storing rows, say
    finally:
        executor.shutdown()
    assert len(rows) == 3
    started = [pd.Timestamp(r["started_at"]).timestamp() for r in rows]
    # the second group started while the first row was still being handled
    assert started[1] < busy_from + 0.5


def test_the_fork_server_imports_the_group_functions_preload(tmp_path):
    """A group function's ``preload`` modules are imported once, in the process the workers
    are forked from, started before the sweep is read (simbench's worker initialises Numba
    there).  In a fresh process: the fork server is one per process."""
    import subprocess
    import sys

    from cli_support import TESTS, env_for_subprocess

    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "simbench", "run", str(TESTS / "data" / "small.toml")]
    env = env_for_subprocess(SIMBENCH_GROUP_FN="fake_groups:preloaded")
    res = subprocess.run(
        [*cmd, "--jobs", "2", "--out", str(out)], env=env, capture_output=True, timeout=600
    )
    assert res.returncode == 0, res.stderr
    df = load(out)
    if LocalExecutor()._ctx.get_start_method() != "forkserver":
        assert (df["preloaded_in"] == df["worker_pid"]).all()  # nothing to preload into
        return
    assert (df["status"] == "ok").all() and df["worker_pid"].nunique() == 2
    assert df["preloaded_in"].nunique() == 1
    assert not set(df["preloaded_in"]) & set(df["worker_pid"])
    # the sweep file was given to the group function's preload_sweep there, before the
    # workers were forked from it
    assert set(df["preloaded_sweep"]) == {str((TESTS / "data" / "small.toml").resolve())}
    assert set(df["sweep_preloaded_in"]) == set(df["preloaded_in"])
    # the garbage collector was off while the server prepared (see fork_server.load)
    assert not df["gc_during_preload"].any()


_FORK_SERVER_LOAD = """
import gc, sys
from simbench.sweep.backends import fork_server
fork_server.load("fake_groups:preloaded", sys.argv[1])
print(gc.isenabled(), gc.get_freeze_count())
fork_server.load("no_such_module:nothing", None)  # fails, and says nothing
print(gc.isenabled())
"""


def test_the_fork_server_freezes_what_it_prepared_and_turns_the_collector_back_on(tmp_path):
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    res = subprocess.run(
        [sys.executable, "-c", _FORK_SERVER_LOAD, str(tmp_path / "sweep.toml")],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    frozen, after_failure = res.stdout.splitlines()
    enabled, count = frozen.split()
    assert enabled == "True" and int(count) > 1000  # the imports' objects
    assert after_failure == "True"


_PRESTART = """
import os, sys
from simbench.sweep.backends.local import GROUP_FN_VARIABLE, SWEEP_VARIABLE, LocalExecutor
executor = LocalExecutor(jobs=2)
executor.prestart("fake_groups:preloaded", sweep="sweep.toml")
print("fake_groups" in sys.modules, "fake_preload" in sys.modules,
      GROUP_FN_VARIABLE in os.environ or SWEEP_VARIABLE in os.environ)
executor.start("fake_groups:preloaded", None)
print("fake_groups" in sys.modules)
executor.shutdown()
"""


def test_prestart_leaves_importing_the_group_function_to_the_server():
    """A group function given by name is imported by the fork server while this process
    goes on (the test above shows the server imports its preload); this process imports it
    only when the run starts, to report one that cannot load."""
    import subprocess
    import sys

    from cli_support import env_for_subprocess

    res = subprocess.run(
        [sys.executable, "-c", _PRESTART],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False", "False", "True"]


def test_run_reaches_the_workers_process_before_importing_numpy():
    """``make_runner`` starts the fork server first; what it imports before that (the API,
    the local backend) needs no NumPy, the store or the runner, which this process then
    imports while the server starts up."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from simbench.sweep.api import make_runner\n"
        "from simbench.sweep.backends.local import LocalExecutor\n"
        "print(sorted(m for m in ('numpy', 'pyarrow', 'simbench.sweep.store',\n"
        "                         'simbench.sweep.runner') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_writer_prepares_only_while_cells_run_elsewhere(monkeypatch, tmp_path):
    """With cells in worker processes the runner mostly waits, and its writer prepares the
    first write meanwhile; with cells in the runner's own process it would compete."""
    from simbench.sweep.store import ResultStore

    asked = []
    real = ResultStore.writer

    def spy(self, *args, **kwargs):
        asked.append(kwargs.get("warm", False))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ResultStore, "writer", spy)
    spec = make_spec(["a"], replicates=1, ns=(50,))
    for name, executor in (("serial", SerialExecutor()), ("local", LocalExecutor(jobs=1))):
        run(spec, tmp_path / name, executor=executor)
    assert asked == [False, True]


def test_make_runner_starts_the_fork_server_before_reading_the_sweep(monkeypatch, tmp_path):
    """The workers' process starts while the sweep is read and checked, and the thread
    settings it is given do not stay in this process's environment."""
    from simbench.sweep import api
    from simbench.sweep.backends.local import THREAD_VARIABLES

    order = []
    real_as_spec, real_prestart = api.as_spec, LocalExecutor.prestart
    monkeypatch.setattr(api, "as_spec", lambda s: order.append("spec") or real_as_spec(s))

    def prestart(self, group_fn, sweep=None):
        order.append(("prestart", group_fn, sweep))
        real_prestart(self, group_fn, sweep)

    monkeypatch.setattr(LocalExecutor, "prestart", prestart)
    for var in THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    spec = make_spec(["a"], replicates=1)
    runner = api.make_runner(spec, tmp_path / "res", jobs=2, group_fn="fake_groups:seeded")
    # a spec is no file the server could read
    assert order == [("prestart", "fake_groups:seeded", None), "spec"]
    assert not any(var in os.environ for var in THREAD_VARIABLES)
    assert runner.run().exit_code == 0
    assert not any(var in os.environ for var in THREAD_VARIABLES)
    # a sweep file is named to the server by its absolute path
    from cli_support import TESTS

    order.clear()
    monkeypatch.chdir(TESTS / "data")
    api.make_runner("small.toml", tmp_path / "res2", jobs=2, group_fn="fake_groups:seeded")
    path = str((TESTS / "data" / "small.toml").resolve())
    assert order == [("prestart", "fake_groups:seeded", path), "spec"]


def test_a_dry_run_starts_no_workers_process(monkeypatch, tmp_path, capsys):
    """``run --dry-run`` only plans: the workers' process is not started for it."""
    from cli_support import TESTS, cli

    from simbench.sweep import api
    from simbench.sweep.runner import default_group_fn

    started = []
    monkeypatch.setattr(LocalExecutor, "prestart", lambda self, fn, sweep: started.append(fn))
    sweep = TESTS / "data" / "small.toml"
    code, out, _ = cli(capsys, "run", sweep, "--jobs", "2", "--dry-run", "--out", tmp_path / "r")
    assert code == 0 and "to run:" in out and started == []
    api.make_runner(sweep, tmp_path / "r", jobs=2)  # a runner that will run: started
    assert started == [default_group_fn()]


def test_a_group_function_that_forgets_cells(tmp_path):
    spec = make_spec(["a", "b", "c"], replicates=1, ns=(50,))
    for executor in (SerialExecutor(), LocalExecutor(jobs=1)):
        out = tmp_path / executor.name
        _, df = run(spec, out, "fake_groups:short", executor=executor)
        assert df["status"].tolist() == ["ok", "error", "error"]
        assert df["error"].iloc[1] == "the group function returned no row for this cell"


def test_a_batch_function_that_raises_fails_its_whole_group(tmp_path):
    spec = make_spec(["ok1", "raise", "ok2"], replicates=1, ns=(50,))
    _, df = run(spec, tmp_path / "res", "fake_groups:listing", executor=LocalExecutor(jobs=1))
    assert (df["status"] == "error").all() and df["error"].str.contains("boom").all()


def test_fail_fast_stops_and_a_rerun_resumes(tmp_path):
    spec = make_spec(["a", "raise", "b"], replicates=3, ns=(50,))
    out = tmp_path / "res"
    report, df = run(spec, out, fail_fast=True)
    assert report.stopped and report.exit_code == 3
    assert report.missing == 9 - len(df) > 0
    assert df["status"].tolist()[-1] == "error"
    rest, df = run(spec, out)
    assert rest.n_cached + sum(rest.counts.values()) == 9 and len(df) == 9
    assert rest.exit_code == 3  # the failed cells are still failed
    # the stored failures are not retried without --rerun-failed ...
    again, _ = run(spec, out, "fake_groups:calm")
    assert sum(again.counts.values()) == 0 and again.exit_code == 3
    # ... and are with it
    fixed, df = run(spec, out, "fake_groups:calm", rerun_failed=True)
    assert fixed.counts == {"ok": 3} and fixed.exit_code == 0
    assert (df["status"] == "ok").all() and len(df) == 9


def test_an_interrupted_run_keeps_its_rows(tmp_path):
    spec = make_spec(["a", "b", "c"], replicates=1, ns=(50,))
    out = tmp_path / "res"
    with pytest.raises(KeyboardInterrupt):
        run(spec, out, "fake_groups:interrupted")
    df = load(out)
    assert df["c_name"].tolist() == ["a", "b"]
    assert load_manifest(out)["runs"][0]["outcome"] == "interrupted"
    report, df = run(spec, out)
    assert report.n_cached == 2 and len(df) == 3


class SkipHinge(Vocabulary):
    name = "skip-hinge"

    def scenario(self, d):
        return d, dict(d), None

    def config(self, d):
        return d, dict(d), None

    def why_not(self, scenario, config):
        if config.get("name") == "hinge":
            return "loss 'hinge' needs binary data"
        return None


def test_not_applicable_cells_are_skipped_rows(tmp_path):
    spec = make_spec(["glm", "hinge"], replicates=2, ns=(50,), vocabulary=SkipHinge())
    report, df = run(spec, tmp_path / "res")
    assert report.exit_code == 0 and report.counts == {"ok": 2, "skipped": 2}
    hinge = df[df["c_name"] == "hinge"]
    assert (hinge["status"] == "skipped").all()
    assert (hinge["error"] == "loss 'hinge' needs binary data").all()
    assert hinge["coef_z_mle"].isna().all()  # never reached the group function


def test_bad_options_are_input_errors(tmp_path):
    spec = make_spec(["a"])
    with pytest.raises(ValidationError, match="--timeout"):
        Runner(spec, tmp_path, timeout=-1.0)
    with pytest.raises(ValidationError, match="--jobs"):
        LocalExecutor(jobs=0)
    with pytest.raises(ValidationError, match="unknown backend 'locl'; did you mean 'local'"):
        make_executor("locl")
    with pytest.raises(ValidationError, match="group function"):
        Runner(spec, tmp_path / "x", group_fn="no-colon").run()
    assert not (tmp_path / "x" / "parts").exists() or not any((tmp_path / "x" / "parts").iterdir())


# --------------------------------------------------------------------------- dask


def test_dask_executor_on_a_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    from simbench.sweep.backends.dask import DaskExecutor

    spec = make_spec(["ok1", "raise", "ok2"], replicates=2, ns=(50,))
    _, serial = run(spec, tmp_path / "serial")
    executor = DaskExecutor(jobs=2)
    report, df = run(spec, tmp_path / "dask", executor=executor)
    assert executor._cluster is None and executor._client is None  # closed
    pd.testing.assert_frame_equal(metric_table(serial), metric_table(df), check_exact=True)
    assert report.exit_code == 3 and (df[df["c_name"] == "raise"]["status"] == "error").all()


# --------------------------------------------------------------------------- API, progress, summary


def test_simbench_run_returns_the_cells_of_the_run(tmp_path):
    import simbench

    spec = make_spec(["a", "b"], replicates=2)
    df = simbench.run(spec, out=tmp_path / "res", group_fn="fake_groups:seeded", jobs=2)
    assert len(df) == 8 and df.attrs["exit_code"] == 0
    assert df.attrs["manifest"]["sweep_name"] == "rt"
    quick = simbench.run(spec, out=tmp_path / "res", group_fn="fake_groups:seeded", quick=True)
    assert len(quick) == 2 and set(quick["replicate"]) == {0} and set(quick["s_n"]) == {50}
    pd.testing.assert_frame_equal(simbench.load(tmp_path / "res"), df, check_like=False)


def test_progress_line_counts_rate_and_eta():
    import io

    from simbench.sweep.progress import Progress, format_duration

    stream = io.StringIO()
    progress = Progress(10, stream=stream, live=True)
    for status in ["ok", "ok", "error", "skipped"]:
        progress.update(status, computed=status != "skipped")
    line = progress.line()
    assert line.startswith("[ 4/10]") and "ok 2" in line and "error 1" in line
    assert "skipped 1" in line and "cells/s" in line and "ETA" in line
    progress.close()
    assert stream.getvalue().endswith("\n") and "\r" in stream.getvalue()
    quiet = io.StringIO()
    progress = Progress(1, stream=quiet, live=False)
    progress.update("ok")
    assert quiet.getvalue() == ""  # nothing while running when not a terminal
    progress.close()
    assert quiet.getvalue().startswith("[1/1]") and "in 0:00:00" in quiet.getvalue()
    assert format_duration(3725.2) == "1:02:05" and format_duration(float("nan")) == "--:--"


def test_summary_table_per_config():
    from simbench.sweep.progress import summary_table

    df = pd.DataFrame(
        {
            "config_index": [0, 0, 1, 1, 1],
            "config_label": ["glm", "glm", "mlp", "mlp", "mlp"],
            "status": ["ok", "ok", "ok", "timeout", "diverged"],
            "coef_z_mle": [1.0, 3.0, 0.5, float("nan"), float("nan")],
        }
    )
    lines = summary_table(df).splitlines()
    assert lines[0].split() == [
        "config", "cells", "ok", "diverged", "failed", "skipped", "mean", "coef_z_mle",
    ]  # fmt: skip
    assert lines[2].split() == ["glm", "2", "2", "0", "0", "0", "2"]
    assert lines[3].split() == ["mlp", "3", "1", "1", "1", "0", "0.5"]
    assert summary_table(df.iloc[0:0]) == "(no results)"


def test_local_workers_get_their_share_of_the_cores(monkeypatch):
    from simbench.sweep.backends import THREAD_VARIABLES, LocalExecutor
    from simbench.sweep.backends.local import PLAIN_ERRORS_VARIABLE

    for var in (*THREAD_VARIABLES, PLAIN_ERRORS_VARIABLE):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a user's choice is kept
    executor = LocalExecutor(jobs=2)
    executor.start("fake_groups:seeded", timeout=None)
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert os.environ["OPENBLAS_NUM_THREADS"] == share
    assert os.environ["NUMBA_NUM_THREADS"] == share
    assert os.environ["OMP_NUM_THREADS"] == "3"
    assert os.environ[PLAIN_ERRORS_VARIABLE] == "1"
    executor.shutdown()
    assert "OPENBLAS_NUM_THREADS" not in os.environ and "NUMBA_NUM_THREADS" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "3"
    assert PLAIN_ERRORS_VARIABLE not in os.environ
    monkeypatch.setenv(PLAIN_ERRORS_VARIABLE, "")  # a user's choice is kept
    executor = LocalExecutor(jobs=2)
    executor.start("fake_groups:seeded", timeout=None)
    assert os.environ[PLAIN_ERRORS_VARIABLE] == ""
    executor.shutdown()
    assert os.environ[PLAIN_ERRORS_VARIABLE] == ""


def test_local_workers_compile_without_coloured_error_messages(monkeypatch, tmp_path):
    # Numba decorates its messages only where colorama is installed: the worker's
    # colour scheme is then the plain one, as it is everywhere when the variable is set
    from simbench.sweep.backends.local import PLAIN_ERRORS_VARIABLE

    monkeypatch.delenv(PLAIN_ERRORS_VARIABLE, raising=False)
    spec = make_spec(["a"], replicates=1)
    report, df = run(spec, tmp_path / "res", "fake_groups:colours", LocalExecutor(jobs=1))
    assert report.exit_code == 0
    assert set(df["error"]) == {"NOPColorScheme"}
