"""STAEformer / ELinFormer training step: time and activation memory at PEMS-like shapes.

Run ``python benchmarks/staeformer_step.py`` (a few minutes per configuration at N = 883).
Writes ``benchmarks/results/staeformer_step.json`` and ``.png``.

Protocol (as in ../shared/docs/performance.md): float32, each configuration in its own
process; model, Adam and a random batch are created, the process's peak RSS is read, then
one warm-up training step (forward + backward + Adam) and one timed step run. "Δ peak" is the
rise of the peak RSS over those two steps (activation memory plus Adam state). The FLOP floor
counts the step's matmul FLOPs with ``torch.utils.flop_counter`` (on the meta device) and
divides by a square-matmul rate measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"

# (label, registry name, overrides)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "official (materialised softmax)": ("staeformer-naive", {}),
    "STAEformer, SDPA": ("staeformer", {}),
    "ELinFormer (paper θ)": ("elinformer", {}),
    "ELinFormer + checkpointing": ("elinformer", {"checkpoint_activations": True}),
}
DEFAULT_GRID = [(883, 16), (883, 8), (170, 16)]


def _batch(b: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 12, n, 3, generator=g)
    x[..., 1] = torch.rand(b, 12, n, generator=g)
    x[..., 2] = torch.randint(0, 7, (b, 12, n), generator=g).float()
    y = torch.randn(b, 12, n, 1, generator=g)
    return x, y


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def step_flops(name: str, overrides: dict[str, Any], n: int, b: int) -> float:
    """FLOPs of one forward + backward (counted on the meta device, no real compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    from linearcast.models import build

    with torch.device("meta"):
        model = build(name, num_nodes=n, in_steps=12, out_steps=12, **overrides)
    x = torch.empty(b, 12, n, 3, device="meta")
    y = torch.empty(b, 12, n, 1, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.huber_loss(model(x), y)
        loss.backward()
    return float(counter.get_total_flops())


def worker(label: str, n: int, b: int, mode: str) -> dict[str, Any]:
    from linearcast.models import build

    name, overrides = MODELS[label]
    torch.manual_seed(0)
    model = build(name, num_nodes=n, in_steps=12, out_steps=12, **overrides)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _batch(b, n)
    base = _peak()
    rec: dict[str, Any] = {
        "label": label,
        "model": name,
        "overrides": overrides,
        "n": n,
        "batch": b,
    }
    if mode == "inference":
        model.eval()
        with torch.no_grad():
            t0 = time.perf_counter()
            model(x)
            rec["forward_s"] = time.perf_counter() - t0
        rec["delta_peak_bytes"] = _peak() - base
        return rec
    model.train()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.huber_loss(model(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    rec["warmup_step_s"], rec["step_s"] = times
    rec["delta_peak_bytes"] = _peak() - base
    return rec


def matmul_rate(size: int = 2048) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def _spawn(args: list[str], timeout: float) -> dict[str, Any] | str:
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines() or ["no output"]
        return f"failed (exit {out.returncode}; killed for memory if -9): {lines[-1]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--grid", nargs="+", default=[f"{n}x{b}" for n, b in DEFAULT_GRID],
                   help="N x batch pairs, e.g. 883x16 170x16")  # fmt: skip
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument(
        "--large-n", type=int, default=8600, help="N of the LargeST-scale check (0 = skip)"
    )
    p.add_argument("--timeout", type=float, default=900.0, help="per configuration, seconds")
    p.add_argument("--out", type=Path, default=RESULTS / "staeformer_step.json")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        label, n, b, mode = args.worker
        print(json.dumps(worker(label, int(n), int(b), mode)))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import machine_header

    rate = matmul_rate()
    header = machine_header()
    print(
        f"matmul reference {rate:.0f} GFLOP/s; {header['cpu']}, {header['torch_threads']} threads"
    )
    records: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    jobs = [(label, *map(int, nb.split("x")), "train") for nb in args.grid for label in args.models]
    if args.large_n:
        for label in ("ELinFormer (paper θ)", "STAEformer, SDPA"):
            jobs += [(label, args.large_n, 1, "inference"), (label, args.large_n, 1, "train")]
    for label, n, b, mode in jobs:
        res = _spawn([label, str(n), str(b), mode], args.timeout)
        if isinstance(res, str):
            failures.append({"label": label, "n": n, "batch": b, "mode": mode, "reason": res})
            print(f"  {label:34s} N={n:5d} B={b:2d} {mode:9s}: {res}")
            continue
        res["mode"] = mode
        if mode == "train":
            name, overrides = MODELS[label]
            res["flops"] = step_flops(name, overrides, n, b)
            res["flop_floor_s"] = res["flops"] / (rate * 1e9)
        records.append(res)
        t = res.get("step_s", res.get("forward_s"))
        print(
            f"  {label:34s} N={n:5d} B={b:2d} {mode:9s}: {t:8.2f} s"
            f"  Δpeak {res['delta_peak_bytes'] / 2**30:6.2f} GiB"
            + (f"  floor {res['flop_floor_s']:.2f} s" if "flop_floor_s" in res else "")
        )
    result = {
        "benchmark": "staeformer_step",
        "command": " ".join(["python", "benchmarks/staeformer_step.py", *(argv or sys.argv[1:])]),
        "machine": header,
        "matmul_gflops": rate,
        "records": records,
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def plot(result: dict[str, Any], path: Path) -> None:
    """Bars of step time and Δ peak per model, one group per (N, batch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in result["records"] if r["mode"] == "train"]
    groups = sorted({(r["n"], r["batch"]) for r in train}, key=lambda g: (-g[0], -g[1]))
    labels = [m for m in MODELS if any(r["label"] == m for r in train)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        for ax, key, scale in ((axes[0], "step_s", 1.0), (axes[1], "delta_peak_bytes", 2**-30)):
            vals = []
            for g in groups:
                r = next(
                    (r for r in train if r["label"] == label and (r["n"], r["batch"]) == g), None
                )
                vals.append(r[key] * scale if r else 0.0)
            ax.bar([j + i * width for j in range(len(groups))], vals, width, label=label)
    for ax, title in zip(axes, ("training step (s)", "Δ peak RSS (GiB)"), strict=True):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))])
        ax.set_xticklabels([f"N={n}, B={b}" for n, b in groups])
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(
        f"STAEformer vs ELinFormer, one Adam step · {m['cpu']} · {m['torch_threads']} threads"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
