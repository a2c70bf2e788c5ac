"""``linearcast bench eala-accuracy``: EALA against softmax attention on generated inputs.

Prints two tables -- how closely each θ rule follows softmax as the score spread grows, and
forward times of SDPA softmax against the EALA linear path -- and writes a plot and the tables
into a new run directory ``runs/bench-eala-accuracy-<time>`` (never overwriting an earlier one).
(This was ``linearcast demo`` before the demo became the end-to-end training example.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

EXAMPLES = """\
Examples:
  linearcast bench eala-accuracy
  linearcast bench eala-accuracy --n 1024 4096 --out /tmp/bench
"""


def add_parser(sub: Any) -> None:
    """Add ``bench`` and its sub-commands to the top-level sub-parsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "bench",
        help="eala-accuracy (EALA vs softmax) and attention-profile (inside a trained model)",
        description="Small benchmarks that print tables and write plots.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def _usage(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_usage)
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    q = bsub.add_parser(
        "eala-accuracy",
        help="EALA vs softmax side by side on generated inputs (tables and a plot)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument(
        "--out", type=Path, default=Path("runs"), help="parent of the run directory (default runs)"
    )
    q.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[1024, 4096, 16384],
        help="sequence lengths timed (default 1024 4096 16384)",
    )
    q.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    q.add_argument(
        "--keys", type=int, default=1024, help="keys per sequence in the accuracy sweep (1024)"
    )
    q.add_argument("--queries", type=int, default=128, help="queries in the accuracy sweep (128)")
    q.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        default=[0.1, 0.25, 0.5, 1.0, 2.0, 4.0],
        help="score standard deviations swept (default 0.1 0.25 0.5 1 2 4)",
    )
    q.set_defaults(func=run_eala_accuracy)
    a = bsub.add_parser(
        "attention-profile",
        help="score spread, entropy and negative EALA weights inside a trained model",
        description=(
            "Run a trained model (its best.ckpt) on one test batch and report, per attention "
            "layer, the score standard deviation σ, the softmax entropy relative to log n and "
            "the fraction of negative EALA weights per θ rule (docs/eala.md explains why σ "
            "decides how well EALA can follow softmax)."
        ),
        epilog="example: linearcast bench attention-profile runs/elinformer-synthetic-<date>",
    )
    a.add_argument("run_dir", type=Path, help="a run directory written by `linearcast train`")
    a.add_argument("--batch-size", type=int, default=16, help="test windows analysed (16)")
    a.add_argument("--max-sequences", type=int, default=16, help="folded rows per layer (16)")
    a.set_defaults(func=run_attention_profile)


def _time(fn: Any, repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_eala_accuracy(args: argparse.Namespace) -> int:
    """Print the accuracy table and the timing table; write the plot and ``tables.md``."""
    import torch

    from linearcast.analysis.eala_accuracy import (
        accuracy_sweep,
        format_accuracy_table,
        plot_accuracy,
    )
    from linearcast.engine.run_dir import create_run_dir
    from linearcast.ops import eala_attention, softmax_attention

    run_dir = create_run_dir(args.out, "bench", "eala-accuracy")
    print(f"EALA vs softmax on Gaussian inputs (N={args.keys}, D=64): relative output error")
    print("(1.0 = no better than averaging the values; see docs/eala.md)\n")
    rows = accuracy_sweep(tuple(args.sigmas), n=args.keys, nq=args.queries, seed=args.seed)
    table = format_accuracy_table(rows)
    print(table)
    plot_accuracy(rows, str(run_dir / "eala_vs_softmax.png"))

    print("\nforward time, batch 1, 4 heads, D=64, float32 (best of 3)\n")
    lines = ["| N | softmax (SDPA) ms | EALA linear ms | speed-up |", "|---|---|---|---|"]
    torch.manual_seed(args.seed)
    with torch.no_grad():
        for n in args.n:
            q, k, v = (torch.randn(1, 4, n, 64) for _ in range(3))
            t_sm = _time(lambda q=q, k=k, v=v: softmax_attention(q, k, v))
            t_ea = _time(lambda q=q, k=k, v=v: eala_attention(q, k, v, impl="linear"))
            lines.append(f"| {n} | {1e3 * t_sm:.1f} | {1e3 * t_ea:.2f} | {t_sm / t_ea:.0f}x |")
    print("\n".join(lines))
    (run_dir / "tables.md").write_text(table + "\n\n" + "\n".join(lines) + "\n")
    print(f"\nwrote {run_dir / 'eala_vs_softmax.png'} and {run_dir / 'tables.md'}")
    return 0


def run_attention_profile(args: argparse.Namespace) -> int:
    """Print :func:`linearcast.analysis.attention_profile` for a trained run."""
    from pathlib import Path

    from linearcast.analysis import attention_profile, format_profile
    from linearcast.engine.checkpoint import BEST, load_weights
    from linearcast.engine.setup import build_model
    from linearcast.serve.run import load_run

    ckpt, config, prep = load_run(args.run_dir)
    model = build_model(config, prep)
    load_weights(model, ckpt["model"], Path(args.run_dir) / BEST)
    x, _ = next(iter(prep.dataloaders(batch_size=args.batch_size)["test"]))
    print(f"{config.model} on {prep.dataset.name}, one test batch of {x.shape[0]} windows")
    print(format_profile(attention_profile(model, x, max_sequences=args.max_sequences)))
    return 0
