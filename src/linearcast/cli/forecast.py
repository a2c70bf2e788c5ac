"""``linearcast forecast RUN_DIR --data FILE [--out forecasts.csv]``: the steps after a series.

Reads the file with the run's reader (format and options, unless given), takes its last
``in_steps`` steps, and writes the next ``out_steps`` forecasts in data units with their
timestamps: ``.csv``/``.parquet`` in the long layout ``unique_id, ds, y_hat`` (one row per
series and time), ``.npz`` with ``forecast [T_out, N, C]``, ``timestamps`` and ``node_names``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from linearcast.cli import add_run_data_arguments, warnings_after

EPILOG = """\
Series are matched to the run's by name (columns in any order); a file whose series are not the
run's is refused. Output (data units; timestamps continue the file's calendar, step numbers
T, T+1, ... when the file has no time):
  .csv / .parquet   one row per (series, time): unique_id, ds, y_hat  (parquet needs pyarrow);
                    data with several channels (in/out flows) adds a column `channel` naming
                    the one forecast (the run's protocol_overrides.target_channel)
  .npz              forecast [T_out, N, C], timestamps [T_out], node_names [N], channel
A run trained with --set nonnegative=true (the presets for counts) forecasts values >= 0.
An existing --out or --plot file is kept unless --overwrite is given; the data read and the
files a run keeps in its directory (config.json, metrics.json, history.csv, *.ckpt,
intervals.npz, series.json, its plots) are never written over, not even with --overwrite.
The file must be at the step the run was trained on (a 30-minute file for an hourly run is
refused: resample it first).

Prediction intervals (--level 80 90): split conformal, calibrated per series and horizon step
on the run's validation windows (stored in RUN_DIR/intervals.npz the first time), so every
model has them without retraining. Columns y_hat_lo_90 / y_hat_hi_90 beside y_hat (.npz:
arrays lo_90 / hi_90): names that are Python identifiers and need no quoting in pandas
(frame.y_hat_lo_90, .query) or SQL, unlike neuralforecast's `model-lo-90`. Coverage is
measured on the test windows (`linearcast evaluate RUN_DIR --level 80 90`), not guaranteed:
overlapping windows and a shift in the data lower it.

Examples:
  linearcast forecast runs/elinformer-PEMS08-20250101-120000 --data last-day.npz --out next.csv
  linearcast forecast RUN_DIR --data recent.npy --set data_options.freq_minutes=5 \\
      --set data_options.start=2025-01-07T00:00 --out forecasts.npz
  linearcast forecast runs/samovar-ETTh1-20250101-120000 --data ETTh1.csv --out next-96h.parquet
  linearcast forecast RUN_DIR --data last-day.csv --level 80 90 --out next.csv --plot next.png
"""


def _cmd_forecast(args: argparse.Namespace) -> int:
    from linearcast.serve.forecast import check_writable, forecast_run
    from linearcast.serve.intervals import check_levels
    from linearcast.serve.outputs import check_output_path, run_inputs

    levels = check_levels(args.level) if args.level else ()
    # before reading data and running the model: nothing is written over unless asked, and
    # never the data read or the run's own files
    kept = {"overwrite": args.overwrite, "run_dir": args.run_dir,
            "reads": run_inputs(args.run_dir, args.data)}  # fmt: skip
    if args.out:
        check_writable(args.out, **kept)
    if args.plot:
        check_output_path(args.plot, (".png", ".svg", ".pdf"), option="--plot", **kept)
    with warnings_after():
        fc = forecast_run(
            args.run_dir,
            args.data,
            data_format=args.format,
            sets=args.set or [],
            accelerator=args.accelerator,
            horizon=args.horizon,
            level=levels,
        )
        path = fc.save(args.out, overwrite=args.overwrite) if args.out else None
        if args.plot:
            from linearcast.serve.interval_plot import plot_forecast_band

            plot_forecast_band(args.plot, fc, title=Path(args.run_dir).name)
    if path is None:
        print(fc.to_frame().to_string(index=False))
    kind = "" if fc.timestamps is not None else "step "
    what = f" of {fc.channel_label}" if fc.channel_label else ""  # several data channels
    print(
        f"{'wrote ' + str(path) if path else 'forecast'}: horizon {fc.horizon} steps x "
        f"{len(fc.node_names)} series{what} ({fc.horizon * len(fc.node_names)} rows), "
        f"{kind}{fc.ds[0]} -> {kind}{fc.ds[-1]} (after the last input {kind}{fc.last_input} "
        f"of {fc.source}), {fc.units}{', clipped at 0' if fc.nonnegative else ''}"
        f"{'; intervals at ' + ', '.join(f'{v:g}%' for v in levels) if levels else ''}"
    )
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``forecast`` to the top-level sub-parsers."""
    p = sub.add_parser(
        "forecast",
        help="forecast the steps after the end of a file with a run's best weights",
        description="Reload RUN_DIR/best.ckpt and its scaler, read --data with the run's "
        "reader, match its series to the run's by name, take its last in_steps steps and "
        "forecast the next out_steps, with timestamps continuing the file's calendar.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_data_arguments(
        p,
        data_help="the recent history (at least in_steps steps), any format `train --data` reads",
        data_required=True,
        out_help="write .csv, .parquet (unique_id, ds, y_hat) or .npz, a new file unless "
        "--overwrite; default: print the table",
        set_example=", e.g. --set data_options.freq_minutes=5 --set "
        "data_options.start=2025-01-07T00:00",
        level_columns=" (valid Python/SQL names), .npz arrays lo_90 / hi_90",
    )
    p.add_argument(
        "--horizon",
        type=int,
        metavar="STEPS",
        help="forecast only the first STEPS steps (default and most: the model's out_steps)",
    )
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw the forecast with its bands and recent history (.png, .svg, .pdf)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out / --plot file (never the data read or a run's own files)",
    )
    p.set_defaults(func=_cmd_forecast)
