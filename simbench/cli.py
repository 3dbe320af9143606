"""The ``simbench`` command.

Each subcommand is registered by one small function decorated with :func:`command`, which
adds its arguments to a subparser and returns the handler ``handler(args) -> exit code``.
Adding a command is adding one such function (in this module or one imported by it)::

    @command("table", help="aggregate a results directory into a table")
    def _table(parser):
        parser.add_argument("directory")
        def handle(args):
            ...
            return EXIT_OK
        return handle

Exit codes: 0 all cells ok; 1 internal error; 2 bad input (nothing written); 3 some cells
failed (or, for ``compare``, a regression found).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from .errors import ValidationError
from .report.commands import compare_command, report_command, table_command
from .sweep.limits import MESSAGE_CHARS, shorten
from .sweep.status import EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "build_parser",
    "command",
    "main",
    "run_and_exit",
]

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], Handler]]] = {}


def command(name: str, help: str) -> Callable:
    """Register ``fn(parser) -> handler`` as the subcommand ``name``."""

    def register(fn: Callable[[argparse.ArgumentParser], Handler]):
        _COMMANDS[name] = (help, fn)
        return fn

    return register


def _err(message: str) -> None:
    print(f"simbench: error: {shorten(message, MESSAGE_CHARS)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"simbench: warning: {shorten(str(message), MESSAGE_CHARS)}", file=sys.stderr)


def _timeout(text: str) -> float:
    from .sweep.limits import TIMEOUT_RANGE, valid_timeout

    try:
        value = float(text)
    except ValueError:
        value = None
    if not valid_timeout(value):
        raise argparse.ArgumentTypeError(f"expected {TIMEOUT_RANGE}, got {text!r}")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (all CPUs) or more, got {text!r}")
    return value  # 0 is mapped to the CPUs where every backend is chosen (make_executor)


# --------------------------------------------------------------------------- run


@command("run", help="run a sweep file (resuming what is already stored)")
def _run(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("sweep", help="sweep file (TOML)")
    parser.add_argument("--out", help="results directory (default results/<sweep name>)")
    parser.add_argument(
        "--jobs", "-j", type=_jobs, default=1, help="worker processes (0: one per CPU)"
    )
    parser.add_argument(
        "--backend",
        choices=["serial", "local", "dask"],
        help="where cells run (default: serial for one job, local processes otherwise)",
    )
    parser.add_argument("--address", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument(
        "--quick", action="store_true", help="one replicate of the smallest n of each block"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the cell count and cache state, run nothing"
    )
    parser.add_argument(
        "--timeout", type=_timeout, help="seconds per cell (default: the sweep's timeout)"
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed cell")
    parser.add_argument(
        "--rerun-failed", action="store_true", help="run stored error/timeout cells again"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line (the summary is printed)"
    )

    def handle(args: argparse.Namespace) -> int:
        from .sweep.api import make_runner

        runner = make_runner(
            args.sweep,
            args.out,
            jobs=args.jobs,
            backend=args.backend,
            address=args.address,
            quick=args.quick,
            timeout=args.timeout,
            fail_fast=args.fail_fast,
            rerun_failed=args.rerun_failed,
            progress=not args.no_progress,
            prestart=not args.dry_run,
        )
        spec, out = runner.spec, runner.store.root
        if args.dry_run:
            print(_describe_plan(spec, runner, out))
            return EXIT_OK
        report = runner.run()
        _print_summary(runner, out)
        totals = ", ".join(f"{k} {v}" for k, v in sorted(report.totals.items()))
        print(
            f"results: {out}  ({report.n_cells} cells: {totals or 'none stored'}; "
            f"{report.n_cached} already stored; {report.elapsed:.1f} s)"
        )
        if report.stopped:
            print("stopped at the first failed cell (--fail-fast)", file=sys.stderr)
        if report.missing:
            print(
                f"{report.missing} cells not run; run the same command to resume", file=sys.stderr
            )
        if report.failed:
            print(
                f"{report.failed} cells failed; see the 'error' column, "
                "or retry them with --rerun-failed",
                file=sys.stderr,
            )
        return report.exit_code

    return handle


SUMMARY_MAX_ROWS = 200_000  # beyond this, the end-of-run summary is left to `simbench table`


def _print_summary(runner, out: Path) -> None:
    """The per-configuration summary of the run's cells (skipped for very large sweeps)."""
    import numpy as np

    from .sweep.cells import count_cells
    from .sweep.progress import SUMMARY_METRICS, summary_table
    from .sweep.store import load_arrays, stored_columns

    if count_cells(runner.spec, runner.quick) > SUMMARY_MAX_ROWS:
        print(f"(no summary table for more than {SUMMARY_MAX_ROWS} cells: see simbench table)")
        return
    # only the columns the summary shows: a fraction of a large run's table
    needed = ["cell_id", "config_index", "config_label", "config_id", "status", *SUMMARY_METRICS]
    stored = set(stored_columns(out))
    columns = load_arrays(out, columns=[c for c in needed if c in stored])
    if runner.quick and len(columns["cell_id"]):
        wanted = np.isin(columns["cell_id"], sorted(runner.cell_ids()))
        columns = {c: values[wanted] for c, values in columns.items()}
    print(summary_table(columns))


def _describe_plan(spec, runner, out: Path) -> str:
    from .sweep.status import RERUN_STATUSES

    plan = runner.plan()
    stored = plan.stored_counts()
    n_sc = len([s for s in spec.scenarios if s.in_quick or not runner.quick])
    reps = 1 if runner.quick else spec.replicates
    lines = [
        f"sweep {spec.name!r} ({spec.source}): {n_sc} scenarios x {len(spec.configs)} configs "
        f"x {reps} replicates = {plan.n_cells} cells" + (" (--quick)" if runner.quick else ""),
        f"  results directory: {out}" + ("" if out.exists() else " (new)"),
        "  stored: "
        + (", ".join(f"{k} {v}" for k, v in sorted(stored.items())) if stored else "none"),
        f"  not applicable (skipped rows): {plan.n_skipped_total}",
        f"  to run: {plan.n_to_run} cells in {plan.n_groups} groups"
        + (f", plus {plan.n_to_skip} skipped rows to write" if plan.n_to_skip else ""),
    ]
    failed = sum(v for k, v in stored.items() if k in RERUN_STATUSES)
    if failed and not runner.rerun_failed:
        lines.append(f"  {failed} failed cells are kept; --rerun-failed retries them")
    for path, why in plan.corrupt:
        lines.append(f"  corrupted part (the run moves it aside and recomputes it): {path} ({why})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- validate


@command("validate", help="check a sweep file and print its cell count")
def _validate(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("sweep", help="sweep file (TOML)")

    def handle(args: argparse.Namespace) -> int:
        from .sweep.cells import count_cells, count_groups
        from .sweep.spec import load_sweep

        spec = load_sweep(args.sweep)
        n_cells = count_cells(spec)
        print(
            f"{args.sweep}: OK: sweep {spec.name!r}: {len(spec.scenarios)} scenarios x "
            f"{len(spec.configs)} configs x {spec.replicates} replicates = {n_cells} cells "
            f"in {count_groups(spec)} groups"
        )
        if spec.skip_reasons:
            n_skipped = len(spec.skip_reasons) * spec.replicates
            print(f"  {n_skipped} cells will be skipped rows (configuration not applicable):")
            reasons = list(spec.skip_reasons.items())
            for (si, ci), reason in reasons[:20]:
                label = spec.configs[ci].label
                text = f"{label} on scenario {spec.scenarios[si].id}: {reason}"
                print(f"    {spec.replicates} x {text}")
            if len(reasons) > 20:
                print(f"    ... and {len(reasons) - 20} more")
        if spec.vocabulary == "raw":
            print("  note: scenario/config semantics not checked (modules not installed)")
        return EXIT_OK

    return handle


# --------------------------------------------------------------------------- status


@command("status", help="count done / failed / missing cells of a results directory")
def _status(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("directory", help="results directory")

    def handle(args: argparse.Namespace) -> int:
        from .sweep.api import status

        report = status(args.directory)
        print(report.format())
        return report.exit_code

    return handle


# --------------------------------------------------------------------------- list

# where each registry lives: the first (module, attribute) found is listed
# what `simbench list` shows: the module and attribute of each registry
LISTABLE: dict[str, tuple[str, str]] = {
    "families": ("simbench.families", "REGISTRY"),
    "links": ("simbench.links", "REGISTRY"),
    "losses": ("simbench.losses", "REGISTRY"),
    "activations": ("simbench.activations", "REGISTRY"),
    "optimizers": ("simbench.optimizers", "REGISTRY"),
    "metrics": ("simbench.metrics", "METRIC_DESCRIPTIONS"),
}


def _registry(kind: str):
    module_name, attr = LISTABLE[kind]
    return getattr(importlib.import_module(module_name), attr)


def _registry_lines(registry) -> list[str]:
    """``name  (aliases)  description`` per item of a Registry or a mapping."""
    entries: list[tuple[str, list[str], str]] = []
    if hasattr(registry, "names") and hasattr(registry, "get"):
        for name in registry.names():
            obj = registry.get(name)
            aliases = registry.aliases_of(name) if hasattr(registry, "aliases_of") else []
            entries.append((name, aliases, _description(obj)))
    elif hasattr(registry, "items"):
        for name, obj in registry.items():
            entries.append((str(name), [], _description(obj)))
    else:
        entries = [(str(x), [], "") for x in registry]
    width = max((len(n) for n, _, _ in entries), default=0)
    lines = []
    for name, aliases, desc in entries:
        text = f"  {name.ljust(width)}"
        if desc:
            text += f"  {desc}"
        if aliases:
            text += f"  (aliases: {', '.join(aliases)})"
        lines.append(text.rstrip())
    return lines


def _description(obj) -> str:
    if isinstance(obj, str):
        return obj.strip().splitlines()[0] if obj.strip() else ""
    desc = getattr(obj, "description", None)
    if isinstance(desc, str) and desc:
        return desc.strip().splitlines()[0]
    if callable(obj) and not isinstance(obj, type) and getattr(obj, "__doc__", None):
        return obj.__doc__.strip().splitlines()[0]
    return ""


@command("list", help="list families, links, losses, activations, optimizers, metrics")
def _list(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument(
        "what", nargs="?", choices=list(LISTABLE), help="one registry (default all)"
    )

    def handle(args: argparse.Namespace) -> int:
        kinds = [args.what] if args.what else list(LISTABLE)
        for i, kind in enumerate(kinds):
            if i:
                print()
            print(f"{kind}:")
            for line in _registry_lines(_registry(kind)):
                print(line)
        return EXIT_OK

    return handle


# --------------------------------------------------------------------------- entry point


# Reporting commands live with the reporting code; they import pandas and matplotlib only
# when they run, so registering them keeps `simbench list` fast.
command("table", help="aggregate a results directory into a table (md, latex, csv, html)")(
    table_command
)
command("report", help="write DIR/report.md with tables and figures")(report_command)
command(
    "compare",
    help="accuracy and speed changes between two results directories (exit 3 on regression)",
)(compare_command)


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="simbench",
        description="Simulation studies of neural networks against generalized linear models.",
    )
    parser.add_argument("--version", action="version", version=f"simbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, register) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=register(p))
    return parser


@contextlib.contextmanager
def _plain_warnings():
    """Every warning as one ``simbench: warning: ...`` line on stderr while a command runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = _show_warning
        yield


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C so buffered rows are flushed and workers stopped
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the ``simbench`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    if hasattr(signal, "SIGTERM"):
        try:
            signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread
            pass
    try:
        with _plain_warnings():
            return int(handler(args) or EXIT_OK)
    except ValidationError as exc:
        _err(str(exc))
        return EXIT_INPUT
    except KeyboardInterrupt:
        _err("interrupted; run the same command again to resume")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:
        traceback.print_exc()
        _err("internal error (a bug in simbench; please report it with the traceback above)")
        return EXIT_INTERNAL


def run_and_exit() -> None:
    """The ``simbench`` command as a process (``python -m simbench`` too): :func:`main`,
    then :func:`_exit_now` with its exit code."""
    _exit_now(main())


def _exit_now(code: int) -> None:
    """End the process with ``code``, without freeing what it loaded.

    When :func:`main` returns, every file the command writes is written and closed (the
    store renames each into place, synced, before it returns) and its worker processes are
    stopped.  What an ordinary exit does next is mostly Python freeing every module and
    object: with Numba, SciPy, pandas and PyArrow loaded, some 0.3 s, a sixth of a warm
    quickstart.
    Here the exit handlers run (``atexit``: multiprocessing's, logging's and any a library
    registered) and the standard streams are flushed as at an ordinary exit; then the
    process ends.  While a thread other than the main one still runs (and is not a
    daemon), or where the interpreter offers no way to run the exit handlers, the exit is
    the ordinary one, which waits for that thread.
    """
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    main_thread = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main_thread and not t.daemon]
    if run_handlers is None or others:
        sys.exit(code)
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe, a stream set to None
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
