"""Does bf16-mixed training reach float32's validation loss? Short runs, float32 vs bf16-mixed.

    python benchmarks/bf16_training.py                        # demo preset, synthetic data
    python benchmarks/bf16_training.py --seeds 0 1 2 --tag s3
    python benchmarks/bf16_training.py --device cuda          # --accelerator cuda

For each model (STAEformer with SDPA, ELinFormer) and seed, one ``linearcast train --preset
demo`` run per precision (``32-true``, ``bf16-mixed``), each in its own process, same data, same
seed. Records the best validation loss (masked MAE), the test MAE and the mean epoch time of each
run. The verdict per model: the bf16 run's best validation loss is within ``--tolerance``
(relative) of the float32 run of the same seed, and the gap is set beside the float32 runs'
seed-to-seed spread (the noise a precision change has to be compared with). Writes
``benchmarks/results/bf16_training[-<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _step import save
from staeformer_step import MODELS as STEP_MODELS

RESULTS = Path(__file__).resolve().parent / "results"
# the step benchmark's labels, without overrides (a training run takes the preset's model)
MODELS = {label: STEP_MODELS[label][0] for label in ("STAEformer, SDPA", "ELinFormer (paper θ)")}
PRECISIONS = ("32-true", "bf16-mixed")


def train(model: str, precision: str, seed: int, out: Path, args: argparse.Namespace) -> dict:
    """One ``linearcast train`` run; the fields of its metrics.json this benchmark reports."""
    name = f"{model}-{precision}-s{seed}"
    cmd = [sys.executable, "-m", "linearcast", "train", "--preset", args.preset,
           "--model", model, "--precision", precision, "--seed", str(seed),
           "--accelerator", args.device, "--out", str(out), "--run-name", name, "--quiet",
           *[a for kv in args.set for a in ("--set", kv)]]  # fmt: skip
    if (out / name / "last.ckpt").is_file():  # an interrupted run continues where it stopped
        run = [sys.executable, "-m", "linearcast", "train", "--resume", str(out / name), "--quiet"]
    else:
        run = cmd
        if not (out / name / "metrics.json").is_file():  # stopped before its first epoch ended
            shutil.rmtree(out / name, ignore_errors=True)
    if not (out / name / "metrics.json").is_file():  # a finished run is not repeated
        proc = subprocess.run(run, capture_output=True, text=True, timeout=args.timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(run)} failed:\n{proc.stderr[-2000:]}")
    m = json.loads((out / name / "metrics.json").read_text())
    return {"model": model, "precision": precision, "seed": seed,
            "best_val_loss": m["val_loss"], "best_epoch": m["best_epoch"],
            "epochs": m["epochs"], "test_MAE": m["test"]["overall"]["MAE"],
            "mean_epoch_seconds": m["mean_epoch_seconds"],
            "command": " ".join(cmd[1:])}  # fmt: skip


def verdict(runs: list[dict], tolerance: float) -> dict[str, Any]:
    """bf16 vs float32 gap per seed, and float32's seed spread, for one model's runs."""
    by = {(r["precision"], r["seed"]): r["best_val_loss"] for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    gaps = [by["bf16-mixed", s] / by["32-true", s] - 1 for s in seeds]
    fp32 = [by["32-true", s] for s in seeds]
    spread = statistics.stdev(fp32) / statistics.mean(fp32) if len(fp32) > 1 else None
    return {"relative_gap_per_seed": gaps, "max_abs_gap": max(abs(g) for g in gaps),
            "fp32_seed_spread": spread, "tolerance": tolerance,
            "within_tolerance": all(abs(g) <= tolerance for g in gaps)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--preset", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every run, e.g. --set max_epochs=4")  # fmt: skip
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--tolerance", type=float, default=0.02, help="relative, on best val loss")
    p.add_argument("--timeout", type=float, default=3600.0, help="per run, seconds")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)

    from _machine import machine_header

    out = RESULTS / ("bf16_training" + (f"-{args.tag}" if args.tag else "") + ".json")
    result: dict[str, Any] = {
        "benchmark": "bf16_training",
        "command": " ".join(["python", sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": machine_header(),
        "runs": [],
        "verdicts": {},
    }
    # run directories under build/ (gitignored): a stopped benchmark re-uses its finished runs
    work = Path(__file__).resolve().parents[1] / "build" / out.stem
    for label in args.models:
        model = MODELS[label]
        runs = []
        for seed in args.seeds:
            for precision in PRECISIONS:
                r = train(model, precision, seed, work, args)
                runs.append(r)
                result["runs"].append({"label": label, **r})
                print(f"  {label:22s} {precision:10s} seed {seed}: best val loss "
                      f"{r['best_val_loss']:.4f} (epoch {r['best_epoch']}), test MAE "
                      f"{r['test_MAE']:.4f}, {r['mean_epoch_seconds']:.1f} s/epoch",
                      flush=True)  # fmt: skip
                save(out, result)
        v = verdict(runs, args.tolerance)
        result["verdicts"][label] = v
        spread = v["fp32_seed_spread"]
        gaps = ", ".join(f"{100 * g:+.2f}%" for g in v["relative_gap_per_seed"])
        noise = f"; float32 seed spread {100 * spread:.2f}%" if spread is not None else ""
        ok = f"within {100 * args.tolerance:.0f}%: {v['within_tolerance']}"
        print(f"  {label}: bf16 vs float32 best val loss {gaps}{noise}; {ok}", flush=True)
        save(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
