"""validate (and run, before writing) refuses what depends only on the sweep file and
would make every cell of a scenario or configuration fail: the domain of the true means,
sampleable means, and early stopping's split sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from simbench.cli import main
from simbench.sweep.feasibility import validation_split
from simbench.sweep.spec import SweepError, load_sweep, parse_sweep

ROOT = Path(__file__).resolve().parents[1]

HEAD = """
[sweep]
name = "f"
replicates = 2
seed = 1
"""
CONFIG = """
[[configs]]
name = "glm"
hidden = []
optimizer = "irls"
"""


def sweep(scenarios: str, configs: str = CONFIG) -> str:
    return HEAD + scenarios + configs


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(workdir, capsys, text: str, *needles: str) -> None:
    path = workdir / "s.toml"
    path.write_text(text)
    for command in ("validate", "run"):
        code = main([command, str(path)])
        out, err = capsys.readouterr()
        assert code == 2, (command, out, err)
        assert out == "" and "Traceback" not in err
        for needle in needles:
            assert needle in err, err
        assert sorted(p.name for p in workdir.iterdir()) == ["s.toml"]  # nothing written


def test_the_default_gamma_scenario_has_no_valid_truth(workdir, capsys):
    refused(
        workdir,
        capsys,
        sweep('[[scenarios]]\nfamily = "gamma"\n'),
        "[[scenarios]] #1",
        "link='inverse'",
        "every cell of this scenario would fail",
        "invalid means",
        "not reachable",
    )


def test_a_poisson_mean_that_cannot_be_sampled(workdir, capsys):
    refused(
        workdir,
        capsys,
        sweep('[[scenarios]]\nfamily = "poisson"\nn = 100\n[[scenarios]]\nmean = 1e18\n'),
        "[[scenarios]] #2",
        "mean=1e+18",
        "cannot be drawn",
        "too large to sample",
    )


def test_a_truth_larger_than_memory_is_refused_not_a_crash(workdir, capsys, monkeypatch):
    import simbench.truth

    def out_of_memory(scenario):
        raise MemoryError

    monkeypatch.setattr(simbench.truth, "truth", out_of_memory)
    refused(
        workdir,
        capsys,
        sweep('[[scenarios]]\nfamily = "poisson"\np = 9000\n'),
        "[[scenarios]] #1",
        "more memory than this machine has (p = 9000)",
    )


def test_early_stopping_needs_rows_on_both_sides_of_its_split(workdir, capsys):
    es = (
        '[[configs]]\nname = "es"\nhidden = [4]\noptimizer = "adam"\n'
        "early_stopping = true\nvalidation_fraction = {f}\n"
    )
    scenarios = "[[scenarios]]\nn = [100, 1000]\n"
    refused(
        workdir,
        capsys,
        sweep(scenarios, CONFIG + es.format(f=0.999)),
        "[[configs]] #2",
        "'validation_fraction': 0.999",
        "n = 100",
        "leaving none for training",
        "accepted:",
    )
    refused(
        workdir,
        capsys,
        sweep(scenarios, es.format(f=0.004)),
        "'validation_fraction': 0.004",
        "leaving none for validation",
    )
    ok = parse_sweep(sweep(scenarios, es.format(f=0.5)), source="ok.toml")
    assert len(ok.configs) == 1
    # the fraction does not matter without early stopping
    parse_sweep(sweep(scenarios, es.format(f=0.999).replace("true", "false")), source="x.toml")


def test_the_split_rule_is_trains_own():
    # the rule train() applies (simbench/fit/network.py): round(fraction * n) held out
    assert validation_split(100, 0.999) == (100, 0)
    assert validation_split(100, 0.2) == (20, 80)
    assert validation_split(10, 0.04) == (0, 10)


def test_an_infeasible_point_of_a_grid_is_named():
    text = sweep('[[scenarios]]\nfamily = "gamma"\nlink = ["log", "inverse"]\nn = [50, 60]\n')
    with pytest.raises(SweepError, match=r"#1 \(family='gamma', link='inverse'"):
        parse_sweep(text, source="grid.toml")


def test_a_vocabulary_without_the_feasibility_check_reads_an_infeasible_sweep():
    """For the fork server, which reads the sweep the run itself checks."""
    from simbench.sweep.spec import default_vocabulary

    text = sweep('[[scenarios]]\nfamily = "gamma"\nlink = ["log", "inverse"]\nn = [50, 60]\n')
    spec = parse_sweep(text, source="grid.toml", vocabulary=default_vocabulary(False))
    assert len(spec.scenarios) == 4
    with pytest.raises(SweepError, match="inverse"):
        parse_sweep(text, source="grid.toml", vocabulary=default_vocabulary())


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_the_bundled_sweeps_are_feasible(path):
    spec = load_sweep(path)
    assert spec.n_cells > 0
