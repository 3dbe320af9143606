"""``python -m simbench``: the same as the ``simbench`` command."""

from simbench.cli import run_and_exit

run_and_exit()
