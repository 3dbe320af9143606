"""What the tests of the command line and the runner share: running ``simbench`` in the test
process or a script in a fresh one, and the result columns that must agree between runs (the
fixture ``workdir`` is in ``conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simbench.cli import main

TESTS = Path(__file__).resolve().parent

# the columns two runs of one sweep must agree on, bit for bit
METRICS = ["cell_id", "status", "data_seed", "init_seed", "coef_err_truth", "coef_z_mle"]
# and with the fake group functions' training columns
RUN_METRICS = [*METRICS, "excess_deviance", "epochs_run", "converged"]


def cli(capsys, *args):
    """``simbench ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def env_for_subprocess(**extra):
    """The environment of a ``python -m simbench`` child: this process's, with the tests
    folder (the fake group functions) and the checkout on ``PYTHONPATH``, and ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def printed_from_an_empty_cache(script: str, cache) -> list[str]:
    """The words ``script`` prints, run in a fresh process with an empty Numba cache at
    ``cache`` (where nothing loads, so everything a kernel calls is typed) on one thread."""
    env = env_for_subprocess(NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS=1)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()
