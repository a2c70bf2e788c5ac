"""What a user serving forecasts gets: latency of one window and throughput, in inference mode.

    python benchmarks/staeformer_inference.py                # CPU, N = 883 and 8600
    python benchmarks/staeformer_inference.py --device cuda

STAEformer (SDPA) and ELinFormer at N = 883 (PEMS07) and 8600 (LargeST-CA), batch 1 (latency)
and 64 (throughput), under ``torch.inference_mode``, each configuration in its own process
(``_step.py``; median of ``--repeats`` calls after a warm-up). Writes
``benchmarks/results/staeformer_inference[-<tag>].json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _step import save, spawn
from staeformer_step import MODELS

RESULTS = Path(__file__).resolve().parent / "results"


def too_slow(records: list[dict[str, Any]], label: str, n: int, b: int, max_s: float) -> str | None:
    """Why ``(label, n, b)`` is not worth running, or None: a call predicted over ``max_s``
    seconds from this run's batch-1 call of the same model and N (``b`` times it: on the CPU a
    batch does not run faster per window than one window)."""
    one = next((r for r in records if (r["label"], r["n"], r["batch"]) == (label, n, 1)), None)
    if b == 1 or one is None or max_s <= 0 or one["step_s"] * b <= max_s:
        return None
    t = one["step_s"] * b
    return (
        f"predicted {t:.0f} s per call ({b} x the batch-1 call of {one['step_s']:.1f} s), over "
        f"--max-call-seconds {max_s:.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ns", nargs="+", type=int, default=[883, 8600])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    p.add_argument("--models", nargs="+", default=["STAEformer, SDPA", "ELinFormer (paper θ)"])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument(
        "--max-call-seconds", type=float, default=300.0,
        help="skip a batch whose call is predicted longer than this from the batch-1 call "
        "(0 = never skip)",
    )  # fmt: skip
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)

    from _machine import machine_header

    records: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    name = "staeformer_inference" + (f"-{args.tag}" if args.tag else "")
    out = RESULTS / f"{name}.json"
    result = {
        "benchmark": "staeformer_inference",
        "command": " ".join(["python", sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": machine_header(),
        "device": args.device,
        "records": records,
        "failures": failures,
        "skipped": skipped,
    }
    for n in args.ns:
        for b in args.batches:
            for label in args.models:
                model, overrides = MODELS[label]
                spec = {"label": label, "model": model, "overrides": overrides, "n": n,
                        "batch": b, "mode": "inference", "device": args.device,
                        "repeats": args.repeats, "warmup": 1}  # fmt: skip
                why = too_slow(records, label, n, b, args.max_call_seconds)
                if why:
                    skipped.append({**spec, "reason": why})
                    print(f"  {label:24s} N={n:5d} B={b:3d}: skipped, {why}", flush=True)
                    save(out, result)
                    continue
                res = spawn(spec, args.timeout)
                if isinstance(res, str):
                    failures.append({**spec, "reason": res})
                    print(f"  {label:24s} N={n:5d} B={b:3d}: {res}", flush=True)
                else:
                    records.append(res)
                    print(
                        f"  {label:24s} N={n:5d} B={b:3d}: {1e3 * res['step_s']:9.1f} ms/call "
                        f" {res['windows_per_s']:8.1f} windows/s  Δpeak "
                        f"{res['delta_peak_bytes'] / 2**30:.2f} GiB",
                        flush=True,
                    )
                save(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
