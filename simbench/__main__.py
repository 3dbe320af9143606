"""``python -m simbench``: the same as the ``simbench`` command."""

from simbench.cli import main

raise SystemExit(main())
