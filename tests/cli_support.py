"""What the tests of the command line and the runner share: running ``simbench`` in the test
process, and the result columns that must agree between runs (the fixture ``workdir`` is in
``conftest.py``)."""

from __future__ import annotations

import os
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
