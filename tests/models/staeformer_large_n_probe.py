"""Run one STAEformer forward at a large N and report the largest tensor any op produced.

Used by ``test_staeformer.py`` in a subprocess (so that the peak RSS is this forward's own):

    python staeformer_large_n_probe.py --model elinformer --num-nodes 8600 [--device meta]

Prints one JSON line: the largest output numel of any dispatched op (with its op and shape),
how many outputs had >= N² elements or two axes of length >= N, and the peak RSS. On the meta
device nothing is allocated, so a quadratic model can be probed at a size it could not run at.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from linearcast.models import build


class LargestTensorProbe(TorchDispatchMode):
    """Records, over every op dispatched inside it, the outputs with the most elements."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.max_numel = 0
        self.max_op = ""
        self.max_shape: tuple[int, ...] = ()
        self.quadratic_outputs = 0  # numel >= N² or two axes >= N
        self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                numel = t.numel()
                if numel > self.max_numel:
                    self.max_numel, self.max_op, self.max_shape = numel, str(func), tuple(t.shape)
                if numel >= self.n**2 or sum(s >= self.n for s in t.shape) >= 2:
                    self.quadratic_outputs += 1
        return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="elinformer")
    p.add_argument("--num-nodes", type=int, default=8600)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n = a.num_nodes
    with torch.device(a.device):
        model = build(a.model, num_nodes=n, in_steps=12, out_steps=12).eval()
        x = torch.randn(a.batch, 12, n, 3)
        x[..., 1] = torch.rand(a.batch, 12, n)
        x[..., 2] = torch.randint(0, 7, (a.batch, 12, n)).float()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probe = LargestTensorProbe(n)
    start = time.perf_counter()
    with torch.no_grad(), probe:
        y = model(x)
    seconds = time.perf_counter() - start
    finite = bool(torch.isfinite(y).all()) if a.device != "meta" else None
    report = {
        "model": a.model,
        "num_nodes": n,
        "device": a.device,
        "out_shape": list(y.shape),
        "finite": finite,
        "max_numel": probe.max_numel,
        "max_op": probe.max_op,
        "max_shape": list(probe.max_shape),
        "quadratic_outputs": probe.quadratic_outputs,
        "ops": probe.ops,
        "n_squared": n * n,
        "rss_before_mib": rss_before / 1024,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "forward_s": seconds,
    }
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
