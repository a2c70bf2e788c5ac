"""Command line: ``linearcast <command> ...`` (also ``python -m linearcast``).

Each command lives in its own module exposing ``add_parser(subparsers)``; the parser it
adds sets ``func`` to a callable taking the parsed namespace and returning an exit code.
Nothing imports this package.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from linearcast.errors import LinearcastError

# module name under linearcast.cli -> one line of help (kept in one place so --help lists all)
COMMANDS: dict[str, str] = {
    "demo": "train and test ELinFormer on the synthetic dataset and print its table",
    "train": "train and test a model; list the models (train/models)",
    "evaluate": "use a run on a split: metrics and intervals, or forecasts (evaluate/predict)",
    "forecast": "forecast the steps after the end of a file with a trained run",
    "backtest": "rolling-origin evaluation of a trained run: errors per cutoff over time",
    "export": "export a trained run to ONNX (scaler folded in)",
    "data": "list, describe, convert and download datasets",
    "bench": "eala-accuracy (EALA vs softmax) and attention-profile (inside a trained model)",
}


EXAMPLES = """\
Examples (`linearcast COMMAND --help` explains each):
  linearcast demo
  linearcast train --model elinformer --data PEMS08.npz --protocol pems --epochs 50
  linearcast evaluate runs/elinformer-PEMS08-20250101-120000
  linearcast forecast runs/elinformer-PEMS08-20250101-120000 --data last-day.npz --out next.csv
  linearcast backtest runs/elinformer-PEMS08-20250101-120000 --windows 10 --step 288
  linearcast export runs/elinformer-PEMS08-20250101-120000 --onnx elinformer.onnx
  tensorboard --logdir runs        # per-epoch curves (with the tensorboard package installed)
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="linearcast",
        description="Efficient attention-based forecasting (EALA/ELinFormer, SAMoVAR).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"linearcast.cli.{name}")
        module.add_parser(sub)
    return parser


def add_run_data_arguments(
    p: argparse.ArgumentParser,
    *,
    data_help: str,
    data_required: bool = False,
    out_help: str,
    set_example: str = "",
    level_columns: str,
) -> None:
    """Add the arguments ``forecast`` and ``backtest`` share: RUN_DIR, the data read with the
    run's reader (``--data``, ``--format``, ``--set``), ``--out``, ``--level`` and
    ``--accelerator``. What they write differs, so the texts that say it are the caller's:
    ``set_example`` and ``level_columns`` end the ``--set`` and ``--level`` help."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `train`")
    p.add_argument("--data", required=data_required, metavar="PATH", help=data_help)
    p.add_argument("--out", metavar="FILE", help=out_help)
    p.add_argument("--format", help="reader format of --data (default: the run's)")
    p.add_argument(
        "--set",
        action="append",
        metavar="data_options.NAME=VALUE",
        help=f"reader option, repeatable (default: the run's data_options){set_example}",
    )
    p.add_argument(
        "--level",
        nargs="+",
        metavar="PCT",
        help="prediction intervals at these levels in percent, e.g. --level 80 90: columns "
        f"y_hat_lo_90 / y_hat_hi_90{level_columns}",
    )
    p.add_argument("--accelerator", help="override the run's accelerator (e.g. cpu)")


@contextmanager
def warnings_after() -> Iterator[None]:
    """Hold the user warnings of a command's work (every repeat, not Python's first-only) and
    print each as one ``linearcast: warning:`` line when the work is done, before the command's
    summary (not between progress lines); other warning categories are dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, UserWarning):
            _one_line_warning(w.message, w.category, w.filename, w.lineno)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Any warning (readers, checks, numpy, Lightning) as one line like the errors, as
    ``forecast`` prints them; not Python's ``file:line: UserWarning:`` form with a source path,
    which says nothing to a user and differs from command to command."""
    text = " ".join(str(message).split()) or category.__name__
    print(f"linearcast: warning: {text}", file=sys.stderr)


def _once_per_command() -> Callable[..., None]:
    """:func:`_one_line_warning` that prints a text once per command: ``train`` reads its data
    again for the prediction intervals, and the reader's warning said twice says nothing more."""
    shown: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            _one_line_warning(message, category, *args, **kwargs)

    return show


class _OneLineFormatter(logging.Formatter):
    """Log records in the style of the warnings and errors: ``linearcast: warning: ...`` for
    warnings (the trainer's masked-targets note, a reader's), ``linearcast: error: ...`` for
    errors; ``-v``'s INFO lines keep the logger's name, which is what they are read for."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()  # no traceback: a user reads one line
        if record.levelno >= logging.ERROR:
            return f"linearcast: error: {text}"
        if record.levelno >= logging.WARNING:
            return f"linearcast: warning: {text}"
        return f"{record.levelname} {record.name}: {text}"


def _set_up_logging(verbose: bool) -> None:
    """One stderr handler on the root logger in the one-line style (a program that configured
    logging already, e.g. a test runner, keeps its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _set_up_logging(args.verbose)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _once_per_command()
            code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except LinearcastError as err:
        print(f"linearcast: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`linearcast ... | head`): stop quietly, as Unix tools do; point
        # stdout at /dev/null so that the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
