"""Backends against each other, and the Dask backend against a real cluster: a ``dask
scheduler`` and two ``dask worker`` processes on 127.0.0.1, started by the tests and
stopped by their process ids.  The real worker on a small sweep of networks and GLMs gives
identical metric columns serially, on one and two local processes and on the cluster; one
worker killed mid-sweep loses no row and duplicates none."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_support import RUN_METRICS as METRICS

from simbench.sweep.backends import LocalExecutor
from simbench.sweep.backends.dask import DaskExecutor
from simbench.sweep.runner import Runner
from simbench.sweep.spec import load_sweep
from simbench.sweep.store import load

distributed = pytest.importorskip("distributed")

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and two workers (no nanny: a killed worker stays dead), by pid."""

    def __init__(self, tmp: Path) -> None:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        env["FAKE_SLEEP_MS"] = "100"
        common = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            **common,
        )
        self.common = common
        self.tmp = tmp
        self.workers = [self._worker(k) for k in range(2)]
        self.wait_for(2)

    def _worker(self, k: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--local-directory",
                str(self.tmp / f"worker-{k}-{time.monotonic_ns()}"),
            ],
            **self.common,
        )

    def ensure_workers(self) -> None:
        """Replace killed workers (each test starts with two)."""
        for k, proc in enumerate(self.workers):
            if proc.poll() is not None:
                self.workers[k] = self._worker(k)
        self.wait_for(2)

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        from distributed import Client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with Client(self.address, timeout=2) as client:
                    while time.monotonic() < deadline:
                        if len(client.scheduler_info()["workers"]) >= n:
                            return
                        time.sleep(0.1)
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the cluster at {self.address} did not get {n} workers")

    def kill_worker(self, k: int) -> None:
        os.kill(self.workers[k].pid, signal.SIGKILL)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def two_workers(cluster):
    cluster.ensure_workers()
    return cluster


def metric_table(df: pd.DataFrame) -> pd.DataFrame:
    return df[METRICS].sort_values("cell_id").reset_index(drop=True)


def test_a_worker_killed_mid_sweep_loses_no_row_and_duplicates_none(two_workers, tmp_path):
    cluster = two_workers
    spec = load_sweep(DATA / "killable.toml")  # 48 cells of 100 ms: about 2.4 s on 2 workers
    os.environ["FAKE_SLEEP_MS"] = "100"
    try:
        local = Runner(
            spec, tmp_path / "local", executor=LocalExecutor(jobs=2), group_fn="fake_groups:sleepy"
        ).run()
        assert local.exit_code == 0
        executor = DaskExecutor(address=cluster.address)
        killer = threading.Timer(1.0, cluster.kill_worker, args=(1,))
        killer.start()
        try:
            report = Runner(
                spec, tmp_path / "dask", executor=executor, group_fn="fake_groups:sleepy"
            ).run()
        finally:
            killer.cancel()
    finally:
        del os.environ["FAKE_SLEEP_MS"]
    assert cluster.workers[1].wait(timeout=10) is not None  # the worker is gone
    assert report.exit_code == 0 and report.missing == 0
    assert sum(report.counts.values()) == 48  # every cell written once by this run
    df = load(tmp_path / "dask")
    assert len(df) == 48 and df["cell_id"].is_unique
    pd.testing.assert_frame_equal(
        metric_table(df), metric_table(load(tmp_path / "local")), check_exact=True
    )
    import pyarrow.parquet as pq

    raw = sum(pq.ParquetFile(p).metadata.num_rows for p in (tmp_path / "dask" / "parts").iterdir())
    assert raw == 48  # no duplicate row stored either


def test_quick_groups_go_in_chunks_of_about_a_second(two_workers, tmp_path):
    cluster = two_workers
    from simbench.sweep.spec import parse_sweep

    text = (DATA / "failing.toml").read_text()
    text = text.replace("replicates = 2", "replicates = 400").replace('"raise"', '"fine"')
    spec = parse_sweep(text, source="quick-groups.toml")  # 400 groups of 2 instant cells
    executor = DaskExecutor(address=cluster.address)
    report = Runner(spec, tmp_path / "dask", executor=executor, group_fn="fake_groups:seeded").run()
    assert report.exit_code == 0 and sum(report.counts.values()) == 800
    # one task per group would be 400 tasks: once a chunk is measured, the rest go in
    # chunks of up to MAX_CHUNK groups
    assert executor.chunks_submitted < 40, executor.chunks_submitted


def test_chunk_sizes_follow_the_measured_work():
    from simbench.sweep.backends.dask import MAX_CHUNK

    executor = DaskExecutor()
    assert executor._chunk_size() == 1  # nothing measured yet
    executor.record(100, 1.0)  # 10 ms per group
    assert executor._chunk_size() == 100
    for _ in range(20):
        executor.record(1, 3.0)  # 3 s per group
    assert executor._chunk_size() == 1
    for _ in range(20):
        executor.record(10**6, 1.0)
    assert executor._chunk_size() == MAX_CHUNK


REAL = """
[sweep]
name = "real"
replicates = 2
seed = 2026

[[scenarios]]
family = "poisson"
link = "log"
n = 300
n_test = 2000
p = 3

[[scenarios]]
family = "bernoulli"
n = 300
n_test = 2000
p = 3
signal = 1.0

[[configs]]
name = "glm-irls"
hidden = []
optimizer = "irls"

[[configs]]
name = "glm-newton"
hidden = []
optimizer = "newton"
epochs = 50

[[configs]]
name = "softplus-lbfgs"
hidden = []
output = "softplus"
optimizer = "lbfgs"
epochs = 200

[[configs]]
name = "mlp"
hidden = [4]
activation = "tanh"
optimizer = "adam"
lr = 0.01
epochs = 40
batch_size = 64
"""

# columns that depend on the clock or the process, not on the computation
UNTIMED = {"fit_seconds", "compile_seconds", "cell_seconds", "started_at", "worker", "run_id"}


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    df = df.drop(columns=[c for c in df.columns if c in UNTIMED]).copy()
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: tuple(v.tolist()) if hasattr(v, "tolist") else v)
    return df.sort_values("cell_id").reset_index(drop=True)


def test_the_real_worker_gives_identical_metrics_on_every_backend(two_workers, tmp_path):
    from simbench.sweep.backends import SerialExecutor
    from simbench.sweep.spec import parse_sweep

    spec = parse_sweep(REAL, source="real.toml")
    executors = {
        "serial": SerialExecutor(),
        "jobs1": LocalExecutor(jobs=1),
        "jobs2": LocalExecutor(jobs=2),
        "dask": DaskExecutor(address=two_workers.address),
    }
    tables = {}
    for name, executor in executors.items():
        report = Runner(spec, tmp_path / name, executor=executor).run()
        assert report.exit_code == 0, name
        df = load(tmp_path / name)
        assert len(df) == 16 and (df["status"] == "ok").all(), name
        tables[name] = comparable(df)
    serial = load(tmp_path / "serial")
    metrics = ["coef_z_mle", "coef_err_truth", "excess_deviance"]
    assert serial.loc[serial["c_name"].str.startswith("glm"), metrics].notna().all().all()
    # the matched GLM-shaped networks reach the MLE; the MLP does not
    by_config = serial.groupby("c_name")["coef_z_mle"].max()
    assert by_config["glm-newton"] < 1e-5 and by_config["mlp"] > 1e-3
    for name in ("jobs1", "jobs2", "dask"):
        pd.testing.assert_frame_equal(tables[name], tables["serial"], check_exact=True)
