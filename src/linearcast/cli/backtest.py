"""``linearcast backtest RUN_DIR --data FILE --windows K --step S``: rolling-origin evaluation.

K cutoffs S steps apart, the last window's horizon ending at the file's end; each window
forecast from the ``in_steps`` rows up to its cutoff with the run's best weights (or, with
``--refit``, a model trained again on the rows up to it). Writes the long frame, the metrics
per cutoff and overall, and the error per cutoff over time into a new folder.
"""

from __future__ import annotations

import argparse
from typing import Any

from linearcast.cli import add_run_data_arguments, warnings_after

EPILOG = """\
Cutoffs (neuralforecast's cross_validation): window k = 1..K has its cutoff (last input step)
at row T - H - 1 - (K - k) * S, so the last window's H = out_steps forecast steps end at the
file's last row. Files (in --out-dir, default RUN_DIR/backtest-YYYYmmdd-HHMMSS; nothing is
overwritten):
  backtest.csv           unique_id, ds, cutoff, y, y_hat: one row per series x cutoff x step
                         (--level 90 adds y_hat_lo_90, y_hat_hi_90; --out FILE for another
                         place, .csv or .parquet)
  backtest_metrics.csv   window, cutoff, MAE, RMSE, MAPE (%), MSE, scored, targets (and
                         coverage_90, width_90 with --level 90)
  backtest_metrics.json  the same with the overall metrics (and per horizon) and the settings
  backtest.png           the error per cutoff over time
  refits/cutoff-001 ...  with --refit: the run trained for each cutoff
Errors are in data units under every protocol, masked by the run's null rule.

Examples:
  linearcast backtest runs/dlinear-ETTh1-20250101-120000 --data ETTh1.csv --windows 20 --step 96
  linearcast backtest RUN_DIR --windows 10 --step 288 --out-dir bt    # the run's own data
  linearcast backtest RUN_DIR --data taxi.csv --windows 6 --step 672 --refit
"""


def _cmd_backtest(args: argparse.Namespace) -> int:
    from linearcast.serve.backtest import backtest_run, check_count
    from linearcast.serve.backtest_files import REFITS, check_out_dir, default_out_dir
    from linearcast.serve.intervals import check_levels

    check_count(args.windows, "--windows")
    check_count(args.step, "--step")
    levels = check_levels(args.level) if args.level else ()
    out_dir = args.out_dir or default_out_dir(args.run_dir)
    check_out_dir(out_dir, args.out, refit=args.refit)  # before reading data or training
    with warnings_after():
        bt = backtest_run(
            args.run_dir,
            args.data,
            n_windows=args.windows,
            step_size=args.step,
            refit=args.refit,
            refit_dir=f"{out_dir}/{REFITS}" if args.refit else None,
            data_format=args.format,
            sets=args.set or [],
            accelerator=args.accelerator,
            batch_size=args.batch_size,
            progress=lambda line: print(line, flush=True),
            level=levels,
        )
        paths = bt.save(out_dir, args.out)
    shown = bt.metrics if len(bt.metrics) <= 30 else bt.metrics.iloc[[*range(5), *range(-5, 0)]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(bt.summary())
    files = ", ".join(str(p) for p in paths.values())
    print(f"wrote {len(bt.frame)} rows and the metrics per cutoff: {files}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``backtest`` to the top-level sub-parsers."""
    p = sub.add_parser(
        "backtest",
        help="rolling-origin evaluation of a run: K windows S steps apart, errors per cutoff",
        description="Forecast K windows whose cutoffs are S steps apart and end where --data "
        "ends, with RUN_DIR's best weights (or a model refit per cutoff with --refit), and "
        "write the forecasts, the errors per cutoff and overall, and a plot of the error over "
        "time. Series are matched to the run's by name, inputs read and scaled as `forecast` "
        "does.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_data_arguments(
        p,
        data_help="the series to backtest on, any format `train --data` reads (default: the "
        "run's own data file)",
        out_help="write the long frame here (.csv, .parquet)",
        level_columns=" and coverage_90 / width_90 per cutoff",
    )
    p.add_argument("--windows", type=int, required=True, metavar="K", help="number of cutoffs")
    p.add_argument(
        "--step", type=int, required=True, metavar="S", help="steps between consecutive cutoffs"
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="train a new model with the run's config on the rows up to each cutoff (one "
        "training per window: slow) instead of using the run's weights",
    )
    p.add_argument("--out-dir", metavar="DIR", help="folder for the files (default: a new "
                   "RUN_DIR/backtest-YYYYmmdd-HHMMSS)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=0, help="windows per forward pass")
    p.set_defaults(func=_cmd_backtest)
