"""``linearcast evaluate | predict``: use a finished run on the windows of a split.

- ``evaluate RUN_DIR``: reload ``best.ckpt`` and recompute the metrics (optionally on other
  data or another split), with ``--level`` the coverage and width of its prediction intervals;
- ``predict RUN_DIR --out FILE``: forecasts of every window of a split to ``.npy``/``.npz``
  (with ``--level``, the interval arrays ``lo_90``/``hi_90`` in the ``.npz``).

Heavy modules are imported inside the commands so that ``linearcast --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from linearcast import jsonio


def add_parser(sub: Any) -> None:
    """Add ``evaluate`` and ``predict`` to the top-level sub-parsers."""
    _add_evaluate(sub)
    _add_predict(sub)


def checked_levels(given: list[str] | None, default: tuple[float, ...] = ()) -> tuple[float, ...]:
    """``--level`` checked (before any work), else ``default``."""
    from linearcast.serve.intervals import check_levels

    return check_levels(given) if given else default


def record_intervals_line(
    run_dir: Path, levels: tuple[float, ...], accelerator: str | None
) -> None:
    """Calibrate the finished run's intervals and add their test coverage to metrics.json; a
    run whose intervals cannot be calibrated is still a finished run (a warning, exit 0)."""
    import sys

    from linearcast.errors import LinearcastError
    from linearcast.serve.interval_scores import intervals_table, record_intervals

    try:
        scores = record_intervals(run_dir, levels, accelerator=accelerator)
    except LinearcastError as err:
        print(f"linearcast: warning: no prediction intervals: {err}", file=sys.stderr)
        return
    print("\n" + intervals_table(scores))


# ---------------------------------------------------------------------- evaluate / predict
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from linearcast.serve.inference import evaluate_run
    from linearcast.serve.outputs import check_output_path, run_inputs

    if args.out:  # before any work: not over an existing file unless asked, never a run's own
        check_output_path(args.out, (), overwrite=args.overwrite, run_dir=args.run_dir,
                          reads=run_inputs(args.run_dir, args.data))  # fmt: skip
    res = evaluate_run(
        args.run_dir,
        data=args.data,
        data_format=args.format,
        split=args.split,
        batch_size=args.batch_size or 0,
        accelerator=args.accelerator,
        max_batches=args.max_batches or 0,
        level=checked_levels(args.level),
    )
    if args.json:
        print(jsonio.dumps({k: v for k, v in res.items() if k != "table"}))
    else:
        print(res["table"])
    if args.out:
        from linearcast.atomic import write_json

        result = {k: v for k, v in res.items() if k != "table"}
        write_json(args.out, result, what="the evaluation result", fix="--out")
        if not args.json:
            print(f"\nwrote {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from linearcast.serve.inference import predict_run

    res = predict_run(
        args.run_dir,
        args.out,
        data=args.data,
        data_format=args.format,
        split=args.split,
        batch_size=args.batch_size or 0,
        accelerator=args.accelerator,
        level=checked_levels(args.level),
        overwrite=args.overwrite,
    )
    bands = f" and intervals {', '.join(sorted(res['intervals']))}" if res["intervals"] else ""
    print(
        f"wrote {res['path']}: predictions {res['shape']}{bands} for {res['windows']} "
        f"{res['split']} windows"
    )
    return 0


def _run_split_arguments(
    p: argparse.ArgumentParser, *, data: str, batch: str, out: str | None = None
) -> None:
    """The arguments ``evaluate`` and ``predict`` share (a required ``--out`` after RUN_DIR)."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `train`")
    if out is not None:
        p.add_argument("--out", required=True, metavar="FILE", help=out)
    p.add_argument("--data", metavar="PATH", help=f"{data} (default: the run's)")
    p.add_argument("--format", default="auto", help="reader format of --data (default: auto)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="which part")
    p.add_argument("--batch-size", type=int, help=f"{batch} (default: the run's)")
    p.add_argument("--accelerator", help="override the run's accelerator (e.g. cpu)")


def _overwrite_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file (never the data read or a file the run keeps in "
        "its directory: config.json, metrics.json, history.csv, *.ckpt, intervals.npz, ...)",
    )


def _add_evaluate(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "evaluate",
        help="recompute a run's test metrics from best.ckpt",
        description="Reload RUN_DIR/best.ckpt and recompute the metrics (overall and per "
        "horizon, next to the run's baseline), on the run's data or on --data.",
        epilog="Examples:\n  linearcast evaluate runs/elinformer-synthetic-20250101-120000\n"
        "  linearcast evaluate RUN_DIR --data PEMS08.npz --split val --json",
        formatter_class=fmt,
    )
    _run_split_arguments(p, data="evaluate on this dataset", batch="evaluation batch size")
    p.add_argument("--max-batches", type=int, help="only the first N batches (quick checks)")
    _level_argument(p, "adds their coverage and mean width (overall and per horizon)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="also write the result as JSON to FILE, a new file unless --overwrite",
    )
    _overwrite_argument(p)
    p.set_defaults(func=_cmd_evaluate)


def _add_predict(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "predict",
        help="write a run's forecasts for every window of a split",
        description="Reload RUN_DIR/best.ckpt and forecast every window of a split. .npy: the "
        "predictions [S, T_out, N, C] in the units of the targets (data units for pems/metr); "
        ".npz: arrays prediction, target and start (first input row of each window).",
        epilog="Examples:\n  linearcast predict RUN_DIR --out forecasts.npy\n"
        "  linearcast predict RUN_DIR --data PEMS08.npz --split val --out val.npz",
        formatter_class=fmt,
    )
    _run_split_arguments(
        p,
        data="forecast this dataset",
        batch="batch size",
        out="output .npy or .npz file, a new one unless --overwrite",
    )
    _level_argument(p, "adds arrays lo_90 / hi_90 shaped like prediction to the .npz")
    _overwrite_argument(p)
    p.set_defaults(func=_cmd_predict)


def _level_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--level",
        nargs="+",
        metavar="PCT",
        help=f"prediction intervals at these levels in percent (e.g. --level 80 90), split "
        f"conformal calibrated on the run's validation windows: {what}",
    )
