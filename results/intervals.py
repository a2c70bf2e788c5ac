"""Measured coverage and width of the conformal prediction intervals on finished runs.

    python results/intervals.py RUN_DIR [RUN_DIR ...]      # default: the runs listed below
    python results/intervals.py --levels 80 90 --out results/intervals

For each run: calibrate split-conformal intervals on its validation windows
(:mod:`linearcast.serve.intervals`) and score them on its test windows (what
``linearcast evaluate RUN_DIR --level 80 90`` prints). The run directory is copied first
(config, ``best.ckpt``, ``series.json``) so that the finished runs are only read. Writes
``OUT/intervals.json`` (one record per run and level) and ``OUT/README.md`` (the table).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ST = Path("/work/frozen_st/results/work/spatiotemporal")
LH = Path("/work/frozen/results/work/longhorizon")
DEFAULT_RUNS = [
    ST / "hzmetro__stid__s0",
    ST / "hzmetro__stgcn__s0",
    ST / "los_loop__stid__s0",
    ST / "los_loop__stgcn__s0",
    ST / "nyc_taxi__stid__s0",
    LH / "ETTh1__dlinear-released__s0",
    LH / "ETTh1__dlinear-released__s1",
    LH / "ETTh1__dlinear-released__s2",
]
COPIED = ("config.json", "best.ckpt", "series.json")


def score_run(run_dir: Path, levels: list[float]) -> list[dict[str, object]]:
    """One record per level: dataset, model, coverage and width overall and per horizon."""
    from linearcast.serve.inference import evaluate_run

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / run_dir.name
        copy.mkdir()
        for name in COPIED:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, copy / name)
        t0 = time.perf_counter()
        res = evaluate_run(copy, accelerator="cpu", level=levels)
        seconds = time.perf_counter() - t0
    config = json.loads((run_dir / "config.json").read_text())
    return [
        {
            "run": run_dir.name,
            "dataset": res["dataset"],
            "model": res["model"],
            "protocol": res["protocol"],
            "nonnegative": bool(config.get("nonnegative", False)),
            "test_windows": res["windows"],
            "level": key,
            "coverage": row["coverage"],
            "width": row["width"],
            "count": row["count"],
            "pooled_cells": row["pooled_cells"],
            "per_horizon": row["per_horizon"],
            "MAE": res["metrics"]["overall"]["MAE"],
            "seconds": seconds,
        }
        for key, row in res["intervals"].items()
    ]


def table(records: list[dict[str, object]]) -> str:
    """The README table: one row per run and level."""
    lines = [
        "| run | dataset | model | level | coverage (%) | width | MAE | coverage at horizons |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in records:
        per = r["per_horizon"]
        assert isinstance(per, dict)
        at = ", ".join(f"{k.removeprefix('horizon_')}: {100 * v['coverage']:.1f}"
                       for k, v in per.items())  # fmt: skip
        lines.append(
            f"| {r['run']} | {r['dataset']} | {r['model']} | {r['level']}% | "
            f"{100 * float(r['coverage']):.2f} | {float(r['width']):.4g} | "  # type: ignore[arg-type]
            f"{float(r['MAE']):.4g} | {at} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run directories (default: the list)")
    parser.add_argument("--levels", nargs="+", type=float, default=[80.0, 90.0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "intervals")
    args = parser.parse_args(argv)
    # finished runs only (training writes metrics.json last): a run still training has a
    # best.ckpt of an earlier epoch, and its intervals would describe that model
    runs = args.runs or [r for r in DEFAULT_RUNS if (r / "metrics.json").is_file()]
    records: list[dict[str, object]] = []
    for run in runs:
        print(f"{run.name} ...", file=sys.stderr, flush=True)
        records += score_run(run, args.levels)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "intervals.json").write_text(json.dumps(records, indent=2) + "\n")
    command = "python results/intervals.py" + (
        " " + " ".join(map(str, args.runs)) if args.runs else ""
    )
    text = (
        "# Conformal prediction intervals: measured coverage on the test windows\n\n"
        f"`{command}` (CPU). Split conformal, calibrated per series and horizon step on each "
        "run's validation windows, scored on its test windows (share of scored targets inside "
        "the interval; width = mean of hi - lo in data units; ETTh1 in data units too, "
        "although its MSE/MAE table is standardised). Windows overlap and the test period "
        "follows the validation one, so coverage is measured, not guaranteed.\n\n"
        + table(records)
        + "\n"
    )
    (args.out / "README.md").write_text(text)
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
