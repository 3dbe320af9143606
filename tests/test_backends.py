"""One meaning of --jobs, --backend and --address: the command line and simbench.run both go
through simbench.sweep.backends.make_executor, and simbench run builds its runner with the
Python API (simbench.sweep.api.make_runner), only printing around it."""

from __future__ import annotations

import pytest

from simbench import cli
from simbench._threads import cpu_count
from simbench.errors import ValidationError
from simbench.sweep import api
from simbench.sweep.backends import (
    LocalExecutor,
    SerialExecutor,
    make_executor,
    resolve_backend,
)


@pytest.mark.parametrize(
    "backend, jobs, address, expected",
    [
        (None, 1, None, ("serial", 1)),
        (None, 2, None, ("local", 2)),
        (None, 0, None, ("serial", 1) if cpu_count() == 1 else ("local", cpu_count())),
        (None, 3, "tcp://127.0.0.1:8786", ("dask", 3)),
        ("local", 0, None, ("local", cpu_count())),
        ("local", 1, None, ("local", 1)),
        ("serial", 1, None, ("serial", 1)),
        ("dask", 0, None, ("dask", cpu_count())),
    ],
)
def test_one_mapping_of_backend_jobs_and_address(backend, jobs, address, expected):
    assert resolve_backend(backend, jobs, address) == expected


@pytest.mark.parametrize(
    "backend, jobs, address, message",
    [
        (None, -1, None, "jobs = -1: expected a whole number >= 0"),
        (None, 1.5, None, "jobs = 1.5"),
        (None, True, None, "jobs = True"),
        ("threads", 1, None, "backend"),
        ("local", 2, "tcp://127.0.0.1:8786", "needs the dask backend"),
        ("serial", 2, None, "the serial backend runs one job"),
    ],
)
def test_settings_that_cannot_be_met_are_refused(backend, jobs, address, message):
    with pytest.raises(ValidationError, match=message):
        make_executor(backend, jobs, address)


def test_executors_for_the_settings():
    assert isinstance(make_executor(None, 1), SerialExecutor)
    local = make_executor(None, 0)
    assert isinstance(local, SerialExecutor if cpu_count() == 1 else LocalExecutor)


def test_jobs_zero_means_the_same_on_the_command_line_and_in_python(monkeypatch, tmp_path):
    """simbench run --jobs 0 and simbench.run(jobs=0) reach make_executor with the same
    arguments, through the API's make_runner."""
    seen = []
    real = api.make_runner

    def spy(*args, **kwargs):
        runner = real(*args, **kwargs)
        seen.append((kwargs.get("jobs"), kwargs.get("backend"), type(runner.executor).__name__))
        return runner

    monkeypatch.setattr(api, "make_runner", spy)
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(
        '[sweep]\nname = "tiny"\nreplicates = 1\nseed = 1\n\n[[scenarios]]\nfamily = "poisson"\n'
        'n = 50\nn_test = 50\np = 2\n\n[[configs]]\nhidden = []\noptimizer = "irls"\n'
    )
    code = cli.main(["run", str(sweep), "--jobs", "0", "--dry-run", "--out", str(tmp_path / "a")])
    assert code == 0
    api.run_sweep(sweep, out=tmp_path / "b", jobs=0, quick=True)  # via make_runner too
    assert len(seen) == 2
    assert seen[0] == (0, None, seen[1][2])
    assert seen[1][:2] == (0, None)
