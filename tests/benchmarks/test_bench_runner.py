"""Runner benchmarks (off by default: ``--benchmark-disable`` runs each once as a smoke test).

Run them with ``python -m pytest tests/benchmarks/test_bench_runner.py --benchmark-enable``.

* ``runner-overhead``: a full run of 1000 cells through the serial executor with a group
  function that does nothing, so the time is the runner's own: planning, seeds, row
  assembly, Parquet writes, manifest, compaction.  Target: <= 2 ms per cell
  (``extra_info["ms_per_cell"]``).
* ``runner-speedup``: a CPU-bound fake group function (pure Python, holds the GIL) on one
  and on two local worker processes.  Target: >= 1.8x (``extra_info["speedup"]``) on a
  machine with two idle cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from simbench.sweep.backends import LocalExecutor, SerialExecutor
from simbench.sweep.runner import Runner
from simbench.sweep.spec import RawVocabulary, parse_sweep

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # fake_groups, for the workers


def make_spec(configs: int, replicates: int, epochs: int = 1):
    names = ", ".join(f'"c{i}"' for i in range(configs))
    text = f"""
[sweep]
name = "bench"
replicates = {replicates}
seed = 1
[[scenarios]]
family = "poisson"
n = [10, 20]
[[configs]]
name = [{names}]
epochs = {epochs}
"""
    return parse_sweep(text, source="bench.toml", vocabulary=RawVocabulary())


class Fresh:
    """A new results directory per round, so nothing is ever cached."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def __call__(self) -> Path:
        self.count += 1
        return self.root / f"run-{self.count}"


def run_once(spec, out, executor, fn):
    report = Runner(spec, out, executor=executor, group_fn=fn).run()
    assert report.exit_code == 0 and sum(report.counts.values()) == spec.n_cells
    return report


@pytest.mark.benchmark(group="runner-overhead")
def test_runner_overhead_per_cell(benchmark, tmp_path):
    spec = make_spec(configs=10, replicates=50)  # 2 scenarios x 10 configs x 50 = 1000 cells
    fresh = Fresh(tmp_path)
    run_once(spec, fresh(), SerialExecutor(), "fake_groups:noop")  # warm-up: imports

    def setup():
        return (spec, fresh(), SerialExecutor(), "fake_groups:noop"), {}

    benchmark.pedantic(run_once, setup=setup, rounds=5, iterations=1)
    if not getattr(benchmark, "disabled", False):
        best = benchmark.stats.stats.min
        benchmark.extra_info["cells"] = spec.n_cells
        benchmark.extra_info["ms_per_cell"] = 1e3 * best / spec.n_cells


@pytest.mark.benchmark(group="runner-speedup")
def test_two_workers_speedup(benchmark, tmp_path):
    disabled = getattr(benchmark, "disabled", False)
    # 2 scenarios x 2 configs x 8 replicates = 32 cells of ~0.15 s of pure-Python work, so
    # the fixed cost of a run (worker start, manifest, compaction) is small against the work
    # (a thirtieth of that as a smoke test)
    spec = make_spec(configs=2, replicates=8, epochs=100 if disabled else 3000)
    fresh = Fresh(tmp_path)
    fn = "fake_groups:cpu_bound"
    rounds = 1 if disabled else 3
    # warm-up: start the forkserver and import the group function's module, untimed
    run_once(make_spec(configs=1, replicates=1), fresh(), LocalExecutor(jobs=2), fn)

    one = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run_once(spec, fresh(), LocalExecutor(jobs=1), fn)
        one.append(time.perf_counter() - t0)

    def setup():
        return (spec, fresh(), LocalExecutor(jobs=2), fn), {}

    benchmark.pedantic(run_once, setup=setup, rounds=rounds, iterations=1)
    if not disabled:
        two = benchmark.stats.stats.min
        benchmark.extra_info["seconds_1_worker"] = min(one)
        benchmark.extra_info["seconds_2_workers"] = two
        benchmark.extra_info["speedup"] = min(one) / two
