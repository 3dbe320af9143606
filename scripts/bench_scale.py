"""Sweeps of a million tiny cells, end to end: time and peak memory of every command.

A sweep of one scenario x 10 configurations x R replicates (10 R cells in R groups) is
validated, run on ``--jobs`` local worker processes, then read back by ``status``,
``table``, ``simbench.load`` and ``simbench.load`` of five columns; each command runs in
its own process, whose resident memory (with its worker processes) is sampled every
50 ms.  The peak of the run should not grow with the number of cells (cells are generated
lazily and rows streamed to disk); what does grow, by design, is the index of stored cells
(9 bytes per cell) and whatever a reader is asked to load.

The cells are tiny on purpose, so that the runner and the store are what is measured:
``--worker noop`` (default) answers each cell with a fixed row (the runner's own cost per
cell), ``--worker real`` runs simbench's worker (IRLS on n = 20, p = 1: a real fit and its
metrics per cell; expect a few hundred cells per second per core).

Also timed: ``validate`` of a sweep at the cell limit (10^8 cells) and of one above it
(10^9 cells, refused with its count): both answer from arithmetic, without listing cells.

With ``--dask``, each sweep is also run on a Dask cluster of two single-threaded workers on
127.0.0.1 (a ``dask scheduler`` and two ``dask worker`` processes started here and stopped
by their process ids), and the throughput is compared with ``--jobs``.

Usage::

    python scripts/bench_scale.py                         # 10^5 and 10^6 cells, 2 jobs
    python scripts/bench_scale.py --cells 1e6 --jobs 2 --keep /tmp/scale
    python scripts/bench_scale.py --cells 1e6 --keep /tmp/scale --reuse   # read it again
    python scripts/bench_scale.py --cells 2e4 --worker real
    python scripts/bench_scale.py --cells 1e4 --worker real --dask
    python scripts/bench_scale.py --cells 1e5,1e6 --dask --real 1e4   # everything, once
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = 10
# what an analysis of one metric reads (simbench.load(DIR, columns=...))
LOAD_COLUMNS = ["scenario_id", "config_id", "replicate", "status", "coef_z_mle"]


def noop(task):
    """A fixed ok row per cell: what remains is the runner's and the store's work."""
    for _ in task.cells:
        yield {"status": "ok", "error": None, "coef_z_mle": 0.0, "fit_seconds": 0.0}


def sweep_text(cells: int) -> str:
    replicates = max(1, cells // CONFIGS)
    names = ", ".join(f'"c{i}"' for i in range(CONFIGS))
    return f"""[sweep]
name = "scale"
replicates = {replicates}
seed = 1

[[scenarios]]
family = "poisson"
n = 20
n_test = 200
p = 1

[[configs]]
name = [{names}]
hidden = []
optimizer = "irls"
"""


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


class Sampler:
    """Peak RSS of a process (``main``) and of its whole tree (``tree``), in MiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.main = 0
        self.tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            pids, todo = [], [self.pid]
            while todo:
                p = todo.pop()
                pids.append(p)
                todo.extend(_children(p))
            main = _rss_kib(self.pid)
            self.main = max(self.main, main)
            self.tree = max(self.tree, sum(_rss_kib(p) for p in pids))

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return self.main / 1024.0, self.tree / 1024.0


class DaskCluster:
    """A scheduler and two no-nanny workers on 127.0.0.1, stopped by their pids."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        scheduler = ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port"]
        worker = ["distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny"]
        options = ["--no-dashboard", "--host", "127.0.0.1", "--local-directory"]
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", *scheduler, str(port), "--no-dashboard"], **quiet
            )
        ]
        for k in range(2):
            here = str(directory / f"dask-worker-{k}")
            self.procs.append(
                subprocess.Popen([sys.executable, "-m", *worker, *options, here], **quiet)
            )
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        import signal

        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """(seconds, peak MiB of the process, peak MiB of its tree, exit code, last output)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = Sampler(proc.pid)
    output, _ = proc.communicate()
    main, tree = sampler.stop()
    text = output.decode(errors="replace").strip().splitlines()
    return time.perf_counter() - t0, main, tree, proc.returncode, (text[-1] if text else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cells", default="1e5,1e6", help="comma-separated sweep sizes (default 1e5,1e6)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--worker", choices=["noop", "real"], default="noop")
    parser.add_argument("--keep", help="keep the results under this directory")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: a results directory kept by an earlier invocation is read again "
        "(status, table, load) instead of being run again (validate and run skipped)",
    )
    parser.add_argument(
        "--dask", action="store_true", help="also run each sweep on 2 local Dask workers"
    )
    parser.add_argument(
        "--real", type=float, default=0, help="also a sweep of this many cells on the real worker"
    )
    args = parser.parse_args(argv)
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR (the directory of an earlier --keep)")

    sizes = [int(float(x)) for x in args.cells.split(",") if x.strip()]
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="simbench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ)
    base_env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), base_env.get("PYTHONPATH", "")])
    base_env.pop("SIMBENCH_GROUP_FN", None)
    noop_env = {**base_env, "SIMBENCH_GROUP_FN": "bench_scale:noop"}
    env = noop_env if args.worker == "noop" else base_env
    plan = [(cells, args.worker) for cells in sizes]
    if args.real:
        plan.append((int(args.real), "real"))
    simbench = [sys.executable, "-m", "simbench.cli"]
    rows = []
    cluster = DaskCluster(env, base) if args.dask else None
    try:
        for big, label in ((10**8, "validate 10^8 cells"), (10**9, "validate 10^9 cells")):
            path = base / f"validate-{big}.toml"
            path.write_text(sweep_text(big))
            seconds, main_mib, _, code, last = timed([*simbench, "validate", str(path)], env)
            rows.append((label, seconds, main_mib, None, code, last[:90]))
        for cells, worker in plan:
            env = noop_env if worker == "noop" else base_env
            path = base / f"scale-{cells}-{worker}.toml"
            path.write_text(sweep_text(cells))
            out = base / f"results-{cells}-{worker}"
            reused = args.reuse and (out / "manifest.json").is_file()
            if out.exists() and not reused:
                shutil.rmtree(out)
            run = [*simbench, "run", str(path), "--out", str(out), "--jobs", str(args.jobs)]
            load = f"import simbench; print(len(simbench.load({str(out)!r})), 'rows')"
            some = f"simbench.load({str(out)!r}, columns={LOAD_COLUMNS!r})"
            load_some = f"import simbench; df = {some}; print(len(df), 'rows', df.shape[1], 'cols')"
            steps = [
                ("validate", [*simbench, "validate", str(path)]),
                ("run", [*run, "--no-progress"]),
                ("status", [*simbench, "status", str(out)]),
                ("table", [*simbench, "table", str(out), "--metric", "coef_z_mle"]),
                ("load", [sys.executable, "-c", load]),
                ("load columns", [sys.executable, "-c", load_some]),
            ]
            if reused:
                # read what an earlier invocation stored (status says whether it is complete)
                steps = [s for s in steps if s[0] not in ("validate", "run")]
                rows.append((f"reused {out.name}", None, None, None, None, ""))
            for name, cmd in steps:
                seconds, main_mib, tree_mib, code, last = timed(cmd, env)
                step = f"{name} {cells:,} {worker} cells"
                rows.append((step, seconds, main_mib, tree_mib, code, last[:90]))
                if name == "run":
                    local_rate = cells / seconds
                    rows.append((f"  = {local_rate:,.0f} cells/s", None, None, None, None, ""))
            if cluster is not None and not reused:
                dask_out = base / f"results-dask-{cells}-{worker}"
                cmd = [*simbench, "run", str(path), "--out", str(dask_out), "--no-progress"]
                seconds, main_mib, tree_mib, code, last = timed(
                    [*cmd, "--address", cluster.address], env
                )
                step = f"run {cells:,} {worker} cells, Dask"
                rows.append((step, seconds, main_mib, tree_mib, code, last[:90]))
                rate = cells / seconds
                text = f"  = {rate:,.0f} cells/s ({rate / local_rate:.2f}x --jobs {args.jobs})"
                rows.append((text, None, None, None, None, ""))
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(f"jobs = {args.jobs}, cpus = {os.cpu_count()}")
    print(f"{'step':<36} {'seconds':>9} {'peak MiB':>9} {'tree MiB':>9} {'exit':>4}  last line")
    for name, seconds, main_mib, tree_mib, code, last in rows:
        fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
        print(
            f"{name:<36} {fmt(seconds, '9.2f'):>9} {fmt(main_mib, '9.0f'):>9} "
            f"{fmt(tree_mib, '9.0f'):>9} {fmt(code, '4d'):>4}  {last}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
