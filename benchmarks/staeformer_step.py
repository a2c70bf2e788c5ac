"""STAEformer / ELinFormer training step: time, activation memory and the FLOP floor.

    python benchmarks/staeformer_step.py                       # N=883 and 170, batch 16, CPU
    python benchmarks/staeformer_step.py --precision bf16      # autocast bf16 (AVX-512 BF16)
    python benchmarks/staeformer_step.py --compile --grid 883x16
    python benchmarks/staeformer_step.py --device cuda --repeats 10

Writes ``benchmarks/results/staeformer_step[-<tag>].json`` (machine header, every record, the
failures with their reasons and a ``targets`` block with the ratios the performance issue asks
for) and a ``.png`` of bars. Each configuration runs in its own process (``_step.py``): model,
Adam and a fixed random batch are created, then ``--warmup`` untimed and ``--repeats`` timed
Adam steps (forward + backward + update); the median is reported. The FLOP floor is the step's
FLOPs (``torch.utils.flop_counter`` on the meta device) at this machine's square-matmul rate,
measured in the same run. On the CPU each record also has ``live_peak_bytes``: the tensor
memory alive at once during one more, profiled step (RSS keeps the allocator's high-water
mark). Compare ratios within one run: on a shared machine absolute times
move 20-25% between runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _step import matmul_rate, save, spawn, step_flops

RESULTS = Path(__file__).resolve().parent / "results"

# label -> (registry name, overrides)
# (fast dropout is the STAEformer family's default; the official code draws nn.Dropout's masks)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "official (materialised softmax)": ("staeformer-naive", {"fast_dropout": False}),
    "STAEformer, SDPA": ("staeformer", {}),
    "ELinFormer (paper θ)": ("elinformer", {}),
    "ELinFormer + checkpointing": ("elinformer", {"checkpoint_activations": True}),
    "STAEformer, SDPA + nn.Dropout masks": ("staeformer", {"fast_dropout": False}),
    "ELinFormer + nn.Dropout masks": ("elinformer", {"fast_dropout": False}),
}
DEFAULT_GRID = ["883x16", "170x16"]


def targets(records: list[dict[str, Any]], n: int = 883, b: int = 16) -> dict[str, Any]:
    """The performance issue's ratios at (N, batch), from records of one run."""
    by = {r["label"]: r for r in records if (r["n"], r["batch"]) == (n, b)}
    ela, sdpa = by.get("ELinFormer (paper θ)"), by.get("STAEformer, SDPA")
    ckpt, official = by.get("ELinFormer + checkpointing"), by.get("official (materialised softmax)")
    out: dict[str, Any] = {"n": n, "batch": b}
    if ela:
        out["elinformer_vs_flop_floor"] = ela["step_s"] / ela["flop_floor_s"]
    if ela and sdpa:
        out["elinformer_vs_sdpa_time"] = ela["step_s"] / sdpa["step_s"]
        out["elinformer_vs_sdpa_memory"] = ela["delta_peak_bytes"] / sdpa["delta_peak_bytes"]
        if "live_peak_bytes" in ela and "live_peak_bytes" in sdpa:  # CPU: free of the allocator
            out["elinformer_vs_sdpa_live_memory"] = ela["live_peak_bytes"] / sdpa["live_peak_bytes"]
    if ela and official:
        out["elinformer_vs_official_time"] = ela["step_s"] / official["step_s"]
        out["elinformer_vs_official_memory"] = (
            ela["delta_peak_bytes"] / official["delta_peak_bytes"]
        )
    if ela and ckpt:
        out["checkpointing_gib"] = ckpt["delta_peak_bytes"] / 2**30
        out["checkpointing_vs_plain_time"] = ckpt["step_s"] / ela["step_s"]
    ref, sdpa_ref = (
        by.get("ELinFormer + nn.Dropout masks"),
        by.get("STAEformer, SDPA + nn.Dropout masks"),
    )
    if ela and ref:  # what the default fast dropout gives
        out["elinformer_fast_vs_nn_dropout_time"] = ela["step_s"] / ref["step_s"]
    if sdpa and sdpa_ref:
        out["sdpa_fast_vs_nn_dropout_time"] = sdpa["step_s"] / sdpa_ref["step_s"]
    if ref and sdpa_ref:
        out["elinformer_vs_sdpa_time_both_nn_dropout"] = ref["step_s"] / sdpa_ref["step_s"]
    goals = {
        "elinformer_vs_flop_floor": 2.0,
        "elinformer_vs_sdpa_time": 0.7,
        "elinformer_vs_sdpa_memory": 1.0,
        "elinformer_vs_sdpa_live_memory": 1.0,
        "checkpointing_gib": 2.5,
        "checkpointing_vs_plain_time": 1.25,
    }
    out["met"] = {k: bool(out[k] <= v) for k, v in goals.items() if k in out}
    out["goals"] = goals
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--grid", nargs="+", default=DEFAULT_GRID, help="N x batch, e.g. 883x16")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--repeats", type=int, default=2, help="timed steps (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--timeout", type=float, default=1200.0, help="per configuration, seconds")
    p.add_argument("--tag", default="", help="suffix of the output file names")
    p.add_argument("--replot", type=Path, help="only redraw the plot of an existing JSON")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.replot.with_suffix(".png"))
        print(f"wrote {args.replot.with_suffix('.png')}")
        return 0

    from _machine import machine_header

    header = machine_header()
    dtype = "bfloat16" if args.precision == "bf16" else "float32"
    import torch

    rate = matmul_rate(args.device, getattr(torch, dtype))
    if args.device == "cuda":
        header["gpu"] = torch.cuda.get_device_name()
    print(f"matmul {rate:.0f} GFLOP/s ({dtype}, {args.device}); {header['cpu']}", flush=True)
    records: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    name = "staeformer_step" + (f"-{args.tag}" if args.tag else "")
    out = RESULTS / f"{name}.json"
    result = {
        "benchmark": "staeformer_step",
        "command": " ".join(["python", "benchmarks/staeformer_step.py", *(argv or sys.argv[1:])]),
        "machine": header,
        "device": args.device,
        "precision": args.precision,
        "compile": args.compile,
        "matmul_gflops": rate,
        "records": records,
        "failures": failures,
        "targets": {},
    }
    for nb in args.grid:
        n, b = map(int, nb.split("x"))
        for label in args.models:
            name, overrides = MODELS[label]
            spec = {
                "label": label, "model": name, "overrides": overrides, "n": n, "batch": b,
                "mode": "train", "device": args.device, "precision": args.precision,
                "compile": args.compile, "repeats": args.repeats,
                "warmup": args.warmup + (2 if args.compile else 0),
            }  # fmt: skip
            res = spawn(spec, args.timeout)
            if isinstance(res, str):
                failures.append({**spec, "reason": res})
                print(f"  {label:34s} N={n:5d} B={b:2d}: {res}", flush=True)
            else:
                res["flops"] = step_flops(name, overrides, n, b, train=True)
                res["flop_floor_s"] = res["flops"] / (rate * 1e9)
                records.append(res)
                print(
                    f"  {label:34s} N={n:5d} B={b:2d}: {res['step_s']:8.3f} s"
                    f"  Δpeak {res['delta_peak_bytes'] / 2**30:6.2f} GiB"
                    f"  live {res.get('live_peak_bytes', float('nan')) / 2**30:6.3f} GiB"
                    f"  floor {res['flop_floor_s']:.3f} s  (first step "
                    f"{res['first_step_s']:.2f} s)",
                    flush=True,
                )
            result["targets"] = targets(records)
            save(out, result)
    plot(result, out.with_suffix(".png"))
    print(json.dumps(result["targets"], indent=1))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def plot(result: dict[str, Any], path: Path) -> None:
    """Bars of step time (with the FLOP floor) and Δ peak per model, one group per (N, batch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    recs = result["records"]
    groups = sorted({(r["n"], r["batch"]) for r in recs}, key=lambda g: (-g[0], -g[1]))
    labels = [m for m in MODELS if any(r["label"] == m for r in recs)]
    fig = Figure(figsize=(13, 5.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        for ax, key, scale in ((axes[0], "step_s", 1.0), (axes[1], "delta_peak_bytes", 2**-30)):
            xs, vals, floors, live = [], [], [], []
            for j, g in enumerate(groups):
                r = next(
                    (r for r in recs if r["label"] == label and (r["n"], r["batch"]) == g), None
                )
                if r is not None:
                    xs.append(j + i * width)
                    vals.append(r[key] * scale)
                    floors.append(r.get("flop_floor_s", 0.0))
                    live.append(r.get("live_peak_bytes", float("nan")) * 2**-30)
            ax.bar(xs, vals, width, label=label)
            if key == "step_s":
                ax.scatter(xs, floors, marker="_", s=200, color="black", zorder=3,
                           label="FLOP floor" if i == 0 else None)  # fmt: skip
            elif any(v == v for v in live):  # CPU records: the allocator-free reading
                ax.scatter(xs, live, marker="_", s=200, color="tab:red", zorder=3,
                           label="live tensor peak" if i == 0 else None)  # fmt: skip
    live_title = "; red: live tensor peak" if any("live_peak_bytes" in r for r in recs) else ""
    units = ("training step (s), median", f"Δ peak RSS (GiB){live_title}")
    for ax, title in zip(axes, units, strict=True):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))])
        ax.set_xticklabels([f"N={n}, B={b}" for n, b in groups])
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    extra_handles, extra_names = axes[1].get_legend_handles_labels()
    handles += [h for h, n in zip(extra_handles, extra_names, strict=True) if n not in names]
    names += [n for n in extra_names if n not in names]
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), fontsize=8)
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']} · {m['torch_threads']} threads"
    extra = f" · {result['precision']}" + (" · compiled" if result["compile"] else "")
    fig.suptitle(f"STAEformer vs ELinFormer, one Adam step · {where}{extra}")
    fig.tight_layout(rect=(0, 0.1, 1, 1))  # room for the legend below the panels
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
