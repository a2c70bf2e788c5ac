"""The efficiency claim as a function of N: training-step time and Δ peak from PEMS08 to LargeST.

    python benchmarks/staeformer_scaling.py                 # CPU, N = 170 ... 8600
    python benchmarks/staeformer_scaling.py --device cuda

For N in {170, 358, 883, 2000, 4000, 8600} (PEMS08/03/07 shapes, then up to LargeST-CA size) and
each of the official materialised-softmax STAEformer, SDPA STAEformer, ELinFormer and
ELinFormer + checkpointing: one configuration per process (``_step.py``). The batch is 16, or
the largest of 16, 8, 4, 2, 1 whose memory -- predicted from a batch-1 probe, linear in the
batch -- stays under ``--budget-gib`` (20 GiB: a 24 GiB machine keeps room for the rest); a
configuration whose batch-1 probe fails or is predicted over budget is skipped with the reason.
Step time is per window (time / batch) so that points of different batches compare. Writes
``benchmarks/results/staeformer_scaling[-<tag>].json`` and a log-log ``.png`` with fitted
slopes, and the N at which each model stops fitting in ``--limit-gib`` (24 GiB).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _step import save, spawn
from staeformer_step import MODELS

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_NS = [170, 358, 883, 2000, 4000, 8600]
BATCHES = (16, 8, 4, 2, 1)


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) on log(x) (None with fewer than two points)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def predict_per_window_bytes(records: list[dict[str, Any]], label: str, n: int) -> float | None:
    """Δ peak per window of ``label`` at ``n``, extrapolated from its smaller N (None if none).

    Uses the fitted log-log slope of the measured points (at least 1: memory never grows slower
    than the activations), or 2 (the materialised score matrix) from a single point. A
    configuration predicted over budget is not started: a batch-1 probe that does not fit would
    take the machine's memory from everything else running on it.
    """
    mine = sorted((r for r in records if r["label"] == label and r["n"] < n), key=lambda r: r["n"])
    if not mine:
        return None
    fitted = slope([(r["n"], r["per_window_bytes_probe"]) for r in mine])
    power = max(fitted, 1.0) if fitted is not None else 2.0
    last = mine[-1]
    return float(last["per_window_bytes_probe"] * (n / last["n"]) ** power)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ns", nargs="+", type=int, default=DEFAULT_NS)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--budget-gib", type=float, default=20.0, help="memory a run may use")
    p.add_argument("--limit-gib", type=float, default=24.0, help="the machine size reported")
    p.add_argument("--timeout", type=float, default=1800.0, help="per configuration, seconds")
    p.add_argument(
        "--max-step-seconds",
        type=float,
        default=0.0,
        help="also cap the batch so that the step predicted from the batch-1 probe stays under "
        "this (0 = no cap; per-window time is what is compared)",
    )
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)

    from _machine import machine_header

    header = machine_header()
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    name = "staeformer_scaling" + (f"-{args.tag}" if args.tag else "")
    out = RESULTS / f"{name}.json"
    for label in args.models:
        model, overrides = MODELS[label]
        for n in args.ns:
            base = {"label": label, "model": model, "overrides": overrides, "n": n,
                    "mode": "train", "device": args.device, "repeats": 1, "warmup": 1}  # fmt: skip
            predicted = predict_per_window_bytes(records, label, n)
            if predicted is not None and predicted > args.budget_gib * 2**30:
                gib = predicted / 2**30
                reason = (
                    f"batch 1 predicted at {gib:.1f} GiB (> {args.budget_gib:g} GiB) from smaller N"
                )
                skipped.append({**base, "reason": reason})
                print(f"  {label:34s} N={n:5d}: skipped, {reason}", flush=True)
                continue
            probe = spawn({**base, "batch": 1}, args.timeout)
            if isinstance(probe, str):
                skipped.append({**base, "reason": f"batch 1: {probe}"})
                print(f"  {label:34s} N={n:5d}: skipped, batch 1 {probe}", flush=True)
                continue
            per_window = max(probe["delta_peak_bytes"], 1)
            fits = [b for b in BATCHES if b * per_window <= args.budget_gib * 2**30]
            if args.max_step_seconds > 0:
                fits = [b for b in fits if b == 1 or b * probe["step_s"] <= args.max_step_seconds]
            if not fits:
                skipped.append({**base, "reason": "batch 1 predicted over budget"})
                continue
            b = fits[0]
            res = probe if b == 1 else spawn({**base, "batch": b}, args.timeout)
            if isinstance(res, str):
                skipped.append({**base, "batch": b, "reason": res})
                print(f"  {label:34s} N={n:5d} B={b}: {res}", flush=True)
                continue
            res["per_window_s"] = res["step_s"] / b
            res["per_window_bytes_probe"] = per_window
            records.append(res)
            print(
                f"  {label:34s} N={n:5d} B={b:2d}: {res['step_s']:8.2f} s/step "
                f"({res['per_window_s']:.3f} s/window)  Δpeak "
                f"{res['delta_peak_bytes'] / 2**30:6.2f} GiB",
                flush=True,
            )
            save(out, summarise(args, argv, header, records, skipped))
    result = summarise(args, argv, header, records, skipped)
    save(out, result)
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def summarise(
    args: argparse.Namespace,
    argv: list[str] | None,
    header: dict[str, Any],
    records: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> dict[str, Any]:
    """The JSON: records, skips, fitted slopes and the largest N where batch 16 fits."""
    fits_until: dict[str, Any] = {}
    slopes: dict[str, Any] = {}
    for label in args.models:
        mine = [r for r in records if r["label"] == label]
        slopes[label] = {
            "time_per_window": slope([(r["n"], r["per_window_s"]) for r in mine]),
            "memory_per_window": slope([(r["n"], r["per_window_bytes_probe"]) for r in mine]),
        }
        ok = [r["n"] for r in mine if r["per_window_bytes_probe"] * 16 <= args.limit_gib * 2**30]
        fits_until[label] = {"batch_16_fits_up_to_n": max(ok) if ok else None}
    return {
        "benchmark": "staeformer_scaling",
        "command": " ".join(["python", sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": header,
        "device": args.device,
        "budget_gib": args.budget_gib,
        "limit_gib": args.limit_gib,
        "records": records,
        "skipped": skipped,
        "slopes": slopes,
        "fits": fits_until,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Log-log time per window and memory per window against N, slopes in the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for label in MODELS:
        mine = sorted((r for r in result["records"] if r["label"] == label), key=lambda r: r["n"])
        if not mine:
            continue
        s = result["slopes"][label]
        ns = [r["n"] for r in mine]
        for ax, key, scale, sk in (
            (axes[0], "per_window_s", 1.0, "time_per_window"),
            (axes[1], "per_window_bytes_probe", 2**-30, "memory_per_window"),
        ):
            slope_text = f" (slope {s[sk]:.2f})" if s[sk] is not None else ""
            ax.plot(ns, [r[key] * scale for r in mine], marker="o", label=label + slope_text)
    titles = ("training step per window (s), batch as recorded",
              "Δ peak per window (GiB), batch-1 probe")  # fmt: skip
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("nodes N")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    m = result["machine"]
    fig.suptitle(f"Scaling with N · {m.get('gpu') or m['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
