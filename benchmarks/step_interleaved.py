"""Step-time ratios with the machine's drift cancelled: configurations step in turn, one process.

``staeformer_step.py`` runs each configuration in its own process, which keeps the memory
readings clean, but on a shared 2-core VM a step's time moves by 15-20% from one minute to the
next — more than many of the changes we measure. Here every configuration is built in one
process and each round steps each of them once, in an order that reverses every round (A B, B A,
A B, ...), so a slow minute slows all of them alike and a steady drift cancels over two rounds.
Read the ratio of each configuration's median to the first one's. Memory is not measured (one
process holds every model).

Writes ``benchmarks/results/step_interleaved[-<tag>].json`` (machine header, every step time,
medians, ratios to the first configuration) and a ``.png`` of the step times by round.

Example (what fast dropout gains, both models)::

    python benchmarks/step_interleaved.py --n 307 --batch 8 --repeats 6 --tag dropout-n307 \\
        --models "ELinFormer (paper θ)" "ELinFormer + nn.Dropout masks" \\
                 "STAEformer, SDPA" "STAEformer, SDPA + nn.Dropout masks"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _step import save, setup
from staeformer_step import MODELS

RESULTS = Path(__file__).resolve().parent / "results"


def interleave(
    steps: dict[str, Callable[[], None]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
    on_round: Callable[[dict[str, list[float]]], None] | None = None,
) -> dict[str, Any]:
    """Time ``repeats`` rounds of every step (after one untimed call each), the order reversed
    every other round.

    Returns:
        ``step_s_all`` (label → times in round order), ``order`` (the labels of each round),
        ``step_s`` (medians) and ``vs_first`` (median / the first label's median).
    """
    labels = list(steps)
    for label in labels:  # warm-up: allocator, thread pool, lazy init
        steps[label]()
    times: dict[str, list[float]] = {label: [] for label in labels}
    order: list[list[str]] = []
    for r in range(repeats):
        this = labels if r % 2 == 0 else labels[::-1]
        order.append(list(this))
        for label in this:
            t0 = clock()
            steps[label]()
            times[label].append(clock() - t0)
        if on_round is not None:
            on_round(times)
    med = {label: statistics.median(t) for label, t in times.items()}
    first = med[labels[0]]
    return {
        "step_s_all": times,
        "order": order,
        "step_s": med,
        "vs_first": {label: m / first for label, m in med.items()},
    }


def train_step(label: str, n: int, b: int, device: str = "cpu") -> Callable[[], None]:
    """One Adam step of the configuration ``label`` of ``MODELS`` on a fixed random batch."""
    import torch

    name, overrides = MODELS[label]
    model, x, y = setup(name, overrides, n, b, device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.huber_loss(model(x), y).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def plot(result: dict[str, Any], path: Path) -> None:
    """Step time by round, one line per configuration (drift shows as a common trend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, ts in result["step_s_all"].items():
        ratio = result["vs_first"][label]
        ax.plot(range(1, len(ts) + 1), ts, marker="o", label=f"{label} ({ratio:.2f}×)")
    ax.set_xlabel("round (the order reverses every round)")
    ax.set_ylabel("step time (s)")
    ax.set_ylim(bottom=0)
    m = result["machine"]
    ax.set_title(
        f"one Adam step, N = {result['n']}, batch {result['batch']}, {m['cpu']}, "
        f"{m['torch_threads']} threads\n(× = median / the first configuration's median)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=307, help="nodes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--models", nargs="+", required=True, choices=list(MODELS))
    p.add_argument("--repeats", type=int, default=6, help="rounds (even: each order as often)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--tag", default="", help="suffix of the output file names")
    args = p.parse_args(argv)
    if len(set(args.models)) != len(args.models):
        p.error("each configuration once, please")

    from _machine import machine_header

    name = "step_interleaved" + (f"-{args.tag}" if args.tag else "")
    out = RESULTS / f"{name}.json"
    result: dict[str, Any] = {
        "benchmark": "step_interleaved",
        "command": " ".join(["python", "benchmarks/step_interleaved.py", *(argv or sys.argv[1:])]),
        "machine": machine_header(),
        "device": args.device,
        "n": args.n,
        "batch": args.batch,
    }
    steps = {label: train_step(label, args.n, args.batch, args.device) for label in args.models}

    def progress(times: dict[str, list[float]]) -> None:
        done = len(next(iter(times.values())))
        print(f"  round {done}/{args.repeats}: "
              + ", ".join(f"{t[-1]:.2f} s" for t in times.values()), flush=True)  # fmt: skip

    result.update(interleave(steps, args.repeats, on_round=progress))
    save(out, result)
    plot(result, out.with_suffix(".png"))
    for label in args.models:
        print(f"  {label:38s} {result['step_s'][label]:8.3f} s  {result['vs_first'][label]:.3f}×")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
