"""The ``table``, ``report`` and ``compare`` subcommands.

Each function has the signature of the functions registered with
:func:`simbench.cli.command`: it adds its arguments to the subparser and returns the
handler ``handler(args) -> exit code``.  They are registered in :mod:`simbench.cli`::

    command("table", help=...)(table_command)

This module imports nothing heavy (pandas, matplotlib) until a handler runs, so listing
the commands stays fast.  Bad input raises :class:`~simbench.errors.ValidationError`,
which the ``simbench`` entry point turns into a message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["compare_command", "report_command", "table_command"]

# the exit codes of simbench.cli (not imported: cli imports this module)
EXIT_OK, EXIT_REGRESSED = 0, 3
# tables.FORMATS / tables.STATS, repeated so that building the parser imports no pandas
# (a test checks they agree)
TABLE_FORMATS = ("md", "latex", "csv", "html")
TABLE_STATS = ("mean", "mean_sd", "median", "sd", "se", "min", "max")

Handler = Callable[[argparse.Namespace], int]


def _float_above(lower: float, what: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > lower or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{what} must be > {lower:g}, got {text!r}")
        return value

    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a level in (0, 1), got {text!r}")
    return value


def _write_or_print(text: str, out: str | None) -> None:
    if out:
        from ..sweep.store import atomic_write_bytes, ensure_directory

        path = Path(out)
        ensure_directory(path.parent)
        atomic_write_bytes(path, text.encode("utf-8"))
        print(f"written: {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def table_command(parser: argparse.ArgumentParser) -> Handler:
    """``simbench table DIR --metric M [--rows KEYS] [--cols KEYS] [--format F]``."""
    parser.add_argument("directory", help="results directory")
    parser.add_argument(
        "--metric",
        "-m",
        required=True,
        help="metric column (e.g. excess_deviance, coef_z_mle, fit_seconds) or "
        "efficiency / crb_efficiency / mse_efficiency",
    )
    parser.add_argument(
        "--rows",
        help="comma-separated row keys: scenario, config, or parameters such as family,n "
        "(default: scenario)",
    )
    parser.add_argument(
        "--cols",
        help="comma-separated column keys (default: config)",
    )
    parser.add_argument(
        "--format", "-f", choices=TABLE_FORMATS, default="md", help="output format (default md)"
    )
    parser.add_argument(
        "--stat",
        choices=TABLE_STATS,
        default="mean",
        help="aggregate per entry: mean (± Monte Carlo SE, default), mean_sd (± SD), "
        "median, sd, se, min, max",
    )
    parser.add_argument("--out", "-o", help="write to this file instead of standard output")
    parser.add_argument(
        "--no-caption", action="store_true", help="the bare table, without its caption"
    )
    parser.add_argument(
        "--view",
        choices=("table", "crossover"),
        default="table",
        help="table: the metric per entry (default); crossover: per scenario without n, the "
        "smallest n at which each network beats the GLM on the metric (md or csv)",
    )

    def handle(args: argparse.Namespace) -> int:
        from ..errors import ValidationError
        from ..sweep.store import load
        from .tables import make_table, render

        df = load(args.directory, columns=_table_columns(args))
        if df.empty:
            raise ValidationError(f"{args.directory}: no results stored yet")
        if args.view == "crossover":
            return _crossover_view(df, args)
        table = make_table(df, args.metric, rows=args.rows, cols=args.cols, stat=args.stat)
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)
        _write_or_print(render(table, args.format, caption=not args.no_caption), args.out)
        return EXIT_OK

    return handle


def _table_columns(args: argparse.Namespace) -> list[str] | None:
    """The columns the requested table reads (``None``: every column).

    Chosen from the stored columns and their types (the parts' footers, nothing verified
    yet), which is all :func:`~simbench.report.tables.make_table` checks a request
    against: a request it would refuse is refused here with its message, after the
    parts have been verified and found to hold rows, as reading them all would.
    """
    from ..errors import ValidationError
    from ..sweep.store import load, stored_schema
    from .crossover import crossover_columns
    from .tables import table_columns

    schema = stored_schema(args.directory)
    if not schema.names:
        return None  # nothing stored (or not a results directory): load says which
    template = schema.empty_table().to_pandas()
    if args.view == "crossover":
        return crossover_columns(list(template.columns), args.metric)
    try:
        return table_columns(template, args.metric, args.rows, args.cols, args.stat)
    except ValidationError:
        # verify every part, then refuse as make_table would on the full table
        if load(args.directory, columns=["status"]).empty:
            raise ValidationError(f"{args.directory}: no results stored yet") from None
        raise


def _crossover_view(df, args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from .crossover import crossover, crossover_markdown, glm_config
    from .labels import config_labels

    if args.format not in ("md", "csv"):
        raise ValidationError(f"--view crossover writes md or csv; got --format {args.format}")
    table = crossover(df, args.metric)
    if table.empty:
        raise ValidationError(
            f"{args.directory}: no crossover to show: it needs the GLM (an irls configuration, "
            "or one without hidden layers with the matched output and loss), a network with "
            "hidden layers and at least two values of n"
        )
    if args.format == "csv":
        text = table.to_csv(index=False)
    else:
        text = crossover_markdown(table, args.metric, config_labels(df)[glm_config(df)])
    _write_or_print(text, args.out)
    return EXIT_OK


def report_command(parser: argparse.ArgumentParser) -> Handler:
    """``simbench report DIR [--out FILE] [--pdf] [--metrics M,...]``."""
    parser.add_argument("directory", help="results directory")
    parser.add_argument(
        "--out", "-o", help="report file (default DIR/report.md; figures go next to it)"
    )
    parser.add_argument("--pdf", action="store_true", help="also write every figure as PDF")
    parser.add_argument(
        "--metrics", help="comma-separated metrics given a table (default: the main ones)"
    )

    def handle(args: argparse.Namespace) -> int:
        from .report import write_report

        metrics = None
        if args.metrics:
            metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        report = write_report(args.directory, out=args.out, pdf=args.pdf, metrics=metrics)
        print(
            f"written: {report.path} ({len(report.tables)} tables, "
            f"{len(report.figures)} figure files in {report.path.parent / 'figures'})"
        )
        return EXIT_OK

    return handle


def compare_command(parser: argparse.ArgumentParser) -> Handler:
    """``simbench compare DIR_A DIR_B``: exit 3 when B regressed against A."""
    parser.add_argument("a", metavar="DIR_A", help="baseline results directory")
    parser.add_argument("b", metavar="DIR_B", help="results directory compared with it")
    parser.add_argument(
        "--metrics", help="comma-separated metrics to compare (default: every quality metric)"
    )
    parser.add_argument(
        "--sigma",
        type=_float_above(0.0, "--sigma"),
        default=3.0,
        help="accuracy threshold in standard errors of the difference (default 3)",
    )
    parser.add_argument(
        "--speed-factor",
        type=_float_above(1.0, "--speed-factor"),
        default=1.2,
        help="median time ratio beyond which speed changes count (default 1.2)",
    )
    parser.add_argument(
        "--alpha",
        type=_probability,
        default=0.01,
        help="level of the one-sided Mann-Whitney test of speed changes (default 0.01)",
    )
    parser.add_argument(
        "--format", "-f", choices=["md", "csv"], default="md", help="output format (default md)"
    )
    parser.add_argument(
        "--all", action="store_true", help="list every comparison, not only the flagged ones"
    )
    parser.add_argument("--out", "-o", help="write to this file instead of standard output")

    def handle(args: argparse.Namespace) -> int:
        from .compare import compare

        metrics = None
        if args.metrics:
            metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        result = compare(
            args.a,
            args.b,
            metrics=metrics,
            sigma=args.sigma,
            speed_factor=args.speed_factor,
            alpha=args.alpha,
        )
        for warning in result.warnings:
            print(f"simbench: warning: {warning}", file=sys.stderr)
        _write_or_print(result.format(args.format, show_all=args.all), args.out)
        if args.format != "md" or args.out:
            print(result.summary(), file=sys.stderr)
        return result.exit_code

    return handle
