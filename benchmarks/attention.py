"""Attention kernels: time and peak memory over sequence length, and EALA's FLOP rate.

Run ``python benchmarks/attention.py`` (``make bench``); it writes
``benchmarks/results/attention.json`` (machine header, every measurement, a summary of the
goals in docs/performance) and ``benchmarks/results/attention.png`` (log-log plots).

Each (kernel, heads, N) runs in its own process: inputs are created, the process's peak RSS
is read, one forward and then one forward+backward run, and the rise of the peak RSS is
reported as the kernel's extra memory ("Δ peak", as in ../shared/docs/performance.md). Times
are medians of repeated runs after those two warm-up runs. A kernel is skipped at a size
whose predicted time or memory exceeds the budget; the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from linearcast.ops.eala_theta import constant_theta
from linearcast.ops.kernels import benchmark_variants

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (kernel op, configuration): the variants of the kernel table (linearcast.ops.KERNELS);
# a kernel added there with a variant is timed here too
VARIANTS = benchmark_variants()


def _kernel(name: str, n: int) -> Callable[..., torch.Tensor]:
    op, variant = VARIANTS[name]
    fn = op.naive if variant.naive else op.fast
    # extra inputs (Linformer's projection) are drawn before q, k, v, as they always were
    extra = {} if op.extra is None else op.extra(n, torch.empty(0))
    options = dict(variant.options)
    return lambda q, k, v: fn(q, k, v, **extra, **options)


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _median_time(fn: Callable[[], Any], repeats: int, budget_s: float) -> tuple[float, int]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def worker(kernel: str, h: int, n: int, d: int, repeats: int, budget_s: float) -> dict[str, Any]:
    """Measure one configuration in this process; returns a JSON-able record."""
    torch.manual_seed(0)
    fn = _kernel(kernel, n)
    q, k, v = (torch.randn(1, h, n, d, requires_grad=True) for _ in range(3))
    grad = torch.randn(1, h, n, d)

    def fwd() -> None:
        with torch.no_grad():
            fn(q, k, v)

    def fwd_bwd() -> None:
        out = fn(q, k, v)
        out.backward(grad)
        q.grad = k.grad = v.grad = None

    base = _peak_rss_bytes()
    fwd()
    peak_fwd = _peak_rss_bytes() - base
    fwd_bwd()
    peak_fb = _peak_rss_bytes() - base
    t_f, r_f = _median_time(fwd, repeats, budget_s)
    t_fb, r_fb = _median_time(fwd_bwd, repeats, budget_s)
    return {
        "kernel": kernel,
        "heads": h,
        "n": n,
        "d": d,
        "forward_s": t_f,
        "forward_backward_s": t_fb,
        "repeats": [r_f, r_fb],
        "delta_peak_forward_bytes": peak_fwd,
        "delta_peak_forward_backward_bytes": peak_fb,
        "input_bytes": 3 * h * n * d * 4,
    }


def matmul_rate(size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a square float32 matmul on this machine (the roofline we compare to)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t, _ = _median_time(lambda: a @ b, repeats, 30.0)
    return 2 * size**3 / t / 1e9


def eala_linear_flops(h: int, n: int, d: int, dv: int, *, score_stats: bool) -> float:
    """Matmul FLOPs of the EALA linear forward (elementwise work ignored): Kᵀ[K|V] and q[A|M]
    for a θ that reads the score variance (``score_stats``), KᵀV and qM for a constant θ."""
    return 4.0 * h * n * d * (d + dv if score_stats else dv)


def _run_worker(args: list[str], timeout: float) -> dict[str, Any] | str:
    cmd = [sys.executable, __file__, "--worker", *args]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"failed (exit {out.returncode}): {tail[0]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import machine_header

    header = machine_header()
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    rate = matmul_rate()
    print(
        f"matmul reference: {rate:.1f} GFLOP/s ({header['cpu']}, {header['torch_threads']} threads)"
    )
    for kernel in args.kernels:
        variant = VARIANTS[kernel][1]
        label, exponent = variant.label, variant.cost
        for h in args.heads:
            last: dict[str, Any] | None = None
            for n in args.n:
                reason = None
                if variant.materialised and 6 * h * n * n * 4 > args.max_memory_gib * 2**30:
                    reason = f"needs ~{6 * h * n * n * 4 / 2**30:.0f} GiB (materialised N×N)"
                elif last is not None:
                    grow = (n / last["n"]) ** exponent
                    predicted = last["forward_backward_s"] * grow
                    if predicted > args.max_seconds:
                        reason = (
                            f"predicted {predicted:.0f} s per forward+backward"
                            f" > {args.max_seconds} s"
                        )
                if reason:
                    skipped.append({"kernel": kernel, "heads": h, "n": n, "reason": reason})
                    print(f"  skip {label:24s} H={h} N={n:6d}: {reason}")
                    continue
                res = _run_worker(
                    [kernel, str(h), str(n), str(args.d), str(args.repeats), str(args.max_seconds)],
                    timeout=20 * args.max_seconds + 60,
                )
                if isinstance(res, str):
                    skipped.append({"kernel": kernel, "heads": h, "n": n, "reason": res})
                    print(f"  skip {label:24s} H={h} N={n:6d}: {res}")
                    continue
                if kernel == "eala_linear":
                    theta = VARIANTS[kernel][1].options.get("theta", "paper")
                    stats = constant_theta(theta, 0.0) is None
                    flops = eala_linear_flops(h, n, args.d, args.d, score_stats=stats)
                    res["gflops"] = flops / res["forward_s"] / 1e9
                records.append(res)
                last = res
                print(
                    f"  {label:24s} H={h} N={n:6d}  fwd {res['forward_s'] * 1e3:10.2f} ms"
                    f"  fwd+bwd {res['forward_backward_s'] * 1e3:10.2f} ms"
                    f"  Δpeak {res['delta_peak_forward_backward_bytes'] / 2**20:9.1f} MiB"
                )
    result = {
        "benchmark": "attention",
        "command": " ".join(["python", "benchmarks/attention.py", *sys.argv[1:]]),
        "machine": header,
        "matmul_gflops": rate,
        "config": {"d": args.d, "batch": 1, "dtype": "float32", "repeats": args.repeats},
        "records": records,
        "skipped": skipped,
    }
    result["summary"] = summarise(records, rate)
    return result


def _find(records: list[dict[str, Any]], kernel: str, h: int, n: int) -> dict[str, Any] | None:
    for r in records:
        if r["kernel"] == kernel and r["heads"] == h and r["n"] == n:
            return r
    return None


def summarise(records: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """The goals of the attention issue, evaluated on these records (None = not measured)."""
    out: dict[str, Any] = {}
    for h in sorted({r["heads"] for r in records}):
        eala, sdpa = (
            _find(records, "eala_linear", h, 16384),
            _find(records, "softmax_sdpa", h, 16384),
        )
        row: dict[str, Any] = {}
        if eala and sdpa:
            row["speedup_vs_sdpa_forward_n16384"] = sdpa["forward_s"] / eala["forward_s"]
            row["speedup_vs_sdpa_forward_backward_n16384"] = (
                sdpa["forward_backward_s"] / eala["forward_backward_s"]
            )
        a, b = _find(records, "eala_linear", h, 8192), _find(records, "eala_linear", h, 65536)
        if a and b:
            row["time_slope_8k_64k_forward"] = math.log(b["forward_s"] / a["forward_s"]) / math.log(
                8
            )
            row["time_slope_8k_64k_forward_backward"] = math.log(
                b["forward_backward_s"] / a["forward_backward_s"]
            ) / math.log(8)
            row["extra_memory_per_input_byte_8k"] = (
                a["delta_peak_forward_backward_bytes"] / a["input_bytes"]
            )
            row["extra_memory_per_input_byte_64k"] = (
                b["delta_peak_forward_backward_bytes"] / b["input_bytes"]
            )
        if eala:
            row["eala_gflops_n16384"] = eala["gflops"]
            row["eala_fraction_of_matmul_rate_n16384"] = eala["gflops"] / rate
        out[f"heads_{h}"] = row
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    """Log-log time (forward, forward+backward) and Δ peak memory against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = sorted({r["heads"] for r in result["records"]})
    fig, axes = plt.subplots(len(heads), 3, figsize=(16, 4.6 * len(heads)), squeeze=False)
    for row, h in enumerate(heads):
        for col, (key, title) in enumerate(
            [
                ("forward_s", "forward time (s)"),
                ("forward_backward_s", "forward + backward time (s)"),
                ("delta_peak_forward_backward_bytes", "Δ peak RSS, fwd+bwd (MiB; 0 omitted)"),
            ]
        ):
            ax = axes[row][col]
            for idx, (kernel, (_, variant)) in enumerate(VARIANTS.items()):
                pts = sorted(
                    (r["n"], r[key])
                    for r in result["records"]
                    if r["kernel"] == kernel and r["heads"] == h
                )
                if not pts:
                    continue
                if key.endswith("bytes"):  # a rise below the RSS resolution is not plotted
                    pts = [(x, y / 2**20) for x, y in pts if y > 0]
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", label=variant.label, color=f"C{idx}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length N")
            ax.set_title(f"{title}, H={h}, D={result['config']['d']}")
            ax.grid(True, which="both", alpha=0.3)
        axes[row][0].legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(
        f"{m['cpu']} · {m['torch_threads']} threads · torch {m['torch']} · commit {m['commit']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--n", type=int, nargs="+", default=[2**i for i in range(8, 17)], help="sequence lengths"
    )
    p.add_argument("--heads", type=int, nargs="+", default=[1, 4])
    p.add_argument("--d", type=int, default=64, help="head dimension (D = Dv)")
    p.add_argument("--kernels", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-seconds", type=float, default=30.0, help="skip sizes predicted slower")
    p.add_argument("--max-memory-gib", type=float, default=12.0)
    p.add_argument("--out", type=Path, default=RESULTS / "attention.json")
    p.add_argument("--worker", nargs=6, metavar="ARG", help=argparse.SUPPRESS)
    p.add_argument("--replot", type=Path, help="only redraw the plot of an existing JSON")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.replot.with_suffix(".png"))
        return 0
    if args.worker:
        kernel, h, n, d, repeats, budget = args.worker
        rec = worker(kernel, int(h), int(n), int(d), int(repeats), float(budget))
        print(json.dumps(rec))
        return 0
    from linearcast import jsonio

    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(jsonio.dumps(result, indent=1))
    tmp.replace(args.out)
    png = args.out.with_suffix(".png")
    plot(result, png)
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
