"""DCRNN training-step time with dense and with sparse CSR supports, interleaved in one process.

``graph_impl="dense"`` multiplies by the diffusion supports as dense ``[N, N]`` matrices,
``"sparse"`` as sparse CSR (the reference's ``torch.sparse.mm``); same numbers
(``tests/models/test_dcrnn.py``), other speed. The two step in turn, the order reversed every
round (``step_interleaved.py``), so a busy minute slows both alike: read the ratio.

The graph is Los-loop's (``../shared/data/los_loop/los_adj.csv``, 207 sensors, 6.6% non-zero)
when that folder is there, else a random graph of the same size and density; batch 64 (DCRNN's
recipe), windows 12 → 12, the default width (2 layers x 64 units), scheduled sampling on.

Writes ``benchmarks/results/dcrnn_graph_impl[-<tag>].json`` (machine header, every step time,
medians, ratio to dense) and a ``.png`` of the step times by round.

Example::

    python benchmarks/dcrnn_graph_impl.py --repeats 4
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _step import batch, save
from step_interleaved import interleave, plot

RESULTS = Path(__file__).resolve().parent / "results"
LOS_LOOP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "los_loop"
IMPLS = ("dense", "sparse")


def graph(n: int) -> tuple[np.ndarray, str]:
    """Los-loop's adjacency when it is there (and ``n`` is 207), else a random one as sparse."""
    path = LOS_LOOP / "los_adj.csv"
    if n == 207 and path.is_file():
        return np.loadtxt(path, delimiter=","), "Los-loop (los_adj.csv)"
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 1.0, (n, n)) * (rng.random((n, n)) < 0.066)
    return a, "random, 6.6% non-zero"


def train_step(impl: str, adjacency: np.ndarray, b: int) -> Callable[[], None]:
    """One Adam step of DCRNN with ``graph_impl=impl`` on a fixed random batch."""
    import torch

    from linearcast.models import build

    n = adjacency.shape[0]
    torch.manual_seed(0)
    model = build("dcrnn", num_nodes=n, in_steps=12, out_steps=12, adjacency=adjacency,
                  graph_impl=impl).train()  # fmt: skip
    x, y = batch(b, n, "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        (model(x, targets=y) - y).abs().mean().backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=207, help="nodes (207: Los-loop's graph)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=4, help="rounds (even: each order as often)")
    p.add_argument("--tag", default="", help="suffix of the output file names")
    args = p.parse_args(argv)

    from _machine import machine_header

    name = "dcrnn_graph_impl" + (f"-{args.tag}" if args.tag else "")
    out = RESULTS / f"{name}.json"
    adjacency, source = graph(args.n)
    result: dict[str, Any] = {
        "benchmark": "dcrnn_graph_impl",
        "command": " ".join(["python", "benchmarks/dcrnn_graph_impl.py", *(argv or sys.argv[1:])]),
        "machine": machine_header(),
        "n": args.n,
        "batch": args.batch,
        "graph": source,
        "graph_density": float((adjacency != 0).mean()),
    }
    steps = {impl: train_step(impl, adjacency, args.batch) for impl in IMPLS}

    def progress(times: dict[str, list[float]]) -> None:
        done = len(next(iter(times.values())))
        print(f"  round {done}/{args.repeats}: "
              + ", ".join(f"{k} {t[-1]:.2f} s" for k, t in times.items()), flush=True)  # fmt: skip

    result.update(interleave(steps, args.repeats, on_round=progress))
    save(out, result)
    plot(result, out.with_suffix(".png"))
    for impl in IMPLS:
        print(f"  {impl:8s} {result['step_s'][impl]:8.3f} s  {result['vs_first'][impl]:.3f}x")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
