"""Sizes: cell counts are arithmetic, cells are generated lazily, and a run's memory does
not grow with the number of cells (the 10^6-cell measurement is scripts/bench_scale.py)."""

from __future__ import annotations

import tracemalloc

import pytest

from simbench.cli import main
from simbench.sweep import cells as cells_module
from simbench.sweep.backends import LocalExecutor, SerialExecutor
from simbench.sweep.cells import count_cells, count_groups, expand_cells, iter_cells
from simbench.sweep.runner import Runner
from simbench.sweep.spec import parse_sweep
from simbench.sweep.store import load


def sweep(replicates: int, configs: int = 10, quick_ns=(20,)):
    names = ", ".join(f'"c{i}"' for i in range(configs))
    ns = ", ".join(map(str, quick_ns))
    text = f"""
[sweep]
name = "scale"
replicates = {replicates}
seed = 1
[[scenarios]]
family = "poisson"
n = [{ns}]
[[configs]]
name = [{names}]
"""
    return parse_sweep(text, source="scale.toml"), text


def test_counts_are_arithmetic_and_match_the_cells():
    spec, _ = sweep(7, configs=3, quick_ns=(30, 20))
    for quick in (False, True):
        cells = expand_cells(spec, quick=quick)
        assert count_cells(spec, quick) == len(cells)
        assert count_groups(spec, quick) == len({c.group_key for c in cells})
    # the lazy generator and the list agree cell for cell
    assert list(iter_cells(spec)) == expand_cells(spec)


@pytest.fixture
def no_listing(monkeypatch):
    """Fail if anything lists every cell of a sweep at once."""

    def refuse(*args, **kwargs):
        raise AssertionError("every cell of the sweep was listed")

    monkeypatch.setattr(cells_module, "expand_cells", refuse)
    monkeypatch.setattr(cells_module, "group_tasks", refuse)


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_plan_and_status_stream_cells(tmp_path, no_listing, jobs, monkeypatch, capsys):
    spec, text = sweep(300)
    executor = SerialExecutor() if jobs == 1 else LocalExecutor(jobs=jobs)
    runner = Runner(spec, tmp_path / "res", executor=executor, group_fn="fake_groups:noop")
    plan = runner.plan()
    assert plan.n_to_run == 3000 and plan.n_groups == 300
    report = runner.run()
    assert report.exit_code == 0 and report.counts == {"ok": 3000}
    assert len(load(tmp_path / "res")) == 3000
    path = tmp_path / "scale.toml"
    path.write_text(text)
    monkeypatch.setenv("SIMBENCH_GROUP_FN", "fake_groups:noop")
    assert main(["status", str(tmp_path / "res")]) == 0
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "res"), "--dry-run"]) == 0
    assert "to run: 0 cells" in capsys.readouterr().out


def test_a_run_holds_a_bounded_number_of_cells(tmp_path):
    """Python memory of a serial run: ten times the cells, about the same peak."""

    def peak(replicates: int) -> int:
        spec, _ = sweep(replicates)
        runner = Runner(spec, tmp_path / f"r{replicates}", group_fn="fake_groups:noop")
        tracemalloc.start()
        try:
            runner.run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(20)  # imports and first-use caches out of the way
    small, large = peak(200), peak(2000)  # 2 000 and 20 000 cells
    assert large < 1.5 * small + 2_000_000, (small, large)
