"""One measurement of a STAEformer-family model, in its own process: a training step or a forecast.

Used by ``staeformer_step.py``, ``staeformer_scaling.py`` and ``staeformer_inference.py``, which
run each configuration as ``python benchmarks/_step.py '<json spec>'`` so that one process's
allocator, caches and peak RSS never leak into another's numbers.

Spec keys: ``label``, ``model`` (registry name), ``overrides``, ``n``, ``batch``, ``mode``
(``train`` | ``inference``), ``device`` (``cpu`` | ``cuda``), ``precision`` (``fp32`` |
``bf16``: autocast), ``compile`` (bool), ``repeats`` (timed steps; the median is reported),
``warmup`` (untimed steps first).

Memory: on the CPU, "Δ peak" is the rise of the process's peak RSS over the warm-up and timed
steps (activations, gradients, optimizer state); on CUDA it is ``max_memory_allocated`` minus
what was allocated before the first step (model, batch and optimizer state excluded). RSS also
counts what the C allocator keeps after a tensor is freed (glibc's heap high-water mark), so on
the CPU one more, untimed step is run under ``torch.profiler`` with ``profile_memory=True`` and
``live_peak_bytes`` is the most tensor memory allocated during that step and alive at once:
CUDA's ``max_memory_allocated`` notion, free of the allocator (``live_peak=False`` skips it).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from typing import Any

import torch


def batch(b: int, n: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random STAEformer batch ``x [B, 12, N, 3]`` (target, time of day, day), ``y``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 12, n, 3, generator=g)
    x[..., 1] = torch.rand(b, 12, n, generator=g)
    x[..., 2] = torch.randint(0, 7, (b, 12, n), generator=g).float()
    y = torch.randn(b, 12, n, 1, generator=g)
    return x.to(device), y.to(device)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def live_peak(fn: Any) -> int:
    """Most bytes of CPU tensors allocated inside ``fn()`` and alive at the same time.

    Read from the profiler's allocation records (``total_allocated`` counts the bytes allocated
    since profiling began and not yet freed); memory allocated before the call is not counted.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    peak, todo = 0, list(prof.profiler.kineto_results.experimental_event_tree())
    while todo:
        node = todo.pop()
        if node.tag == _EventType.Allocation:
            peak = max(peak, node.extra_fields.total_allocated)
        todo.extend(node.children)
    return peak


def setup(
    name: str, overrides: dict[str, Any], n: int, b: int, device: str
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The registry model ``name`` (seed 0, 12 → 12 steps, N nodes) on ``device``, and
    :func:`batch`'s fixed random batch of ``b`` windows."""
    from linearcast.models import build

    torch.manual_seed(0)
    model = build(name, num_nodes=n, in_steps=12, out_steps=12, **overrides).to(device)
    x, y = batch(b, n, device)
    return model, x, y


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the spec (see the module docstring) and return its record."""
    device, mode = spec.get("device", "cpu"), spec.get("mode", "train")
    repeats, warmup = int(spec.get("repeats", 1)), int(spec.get("warmup", 1))
    n, b = int(spec["n"]), int(spec["batch"])
    model, x, y = setup(spec["model"], spec["overrides"], n, b, device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=spec.get("precision") == "bf16")
    rec: dict[str, Any] = dict(spec)
    rec["parameters"] = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if mode == "train" else None
    fn: Any = model
    if spec.get("compile"):
        fn = torch.compile(model)

    split: list[tuple[float, float, float]] = []  # (forward, backward, optimizer) s per step

    def step() -> None:
        if opt is None:
            with torch.inference_mode(), autocast:
                fn(x)
            return
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with autocast:
            loss = torch.nn.functional.huber_loss(fn(x).float(), y)
        _sync(device)
        t1 = time.perf_counter()
        loss.backward()
        _sync(device)
        t2 = time.perf_counter()
        opt.step()
        _sync(device)
        split.append((t1 - t0, t2 - t1, time.perf_counter() - t2))

    model.train(mode == "train")
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_peak()
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if i == 0:
            rec["first_step_s"] = times[-1]  # includes compilation when compile=True
    timed = times[warmup:]
    rec["step_s"] = statistics.median(timed)
    rec["step_s_all"] = timed
    if split:  # what a checkpointed step recomputes is (most of) the forward
        rec["forward_backward_optimizer_s"] = split[warmup:]
    if device == "cuda":
        rec["delta_peak_bytes"] = torch.cuda.max_memory_allocated() - base
        rec["gpu"] = torch.cuda.get_device_name()
    else:
        rec["delta_peak_bytes"] = _rss_peak() - base
        if spec.get("live_peak", True):
            rec["live_peak_bytes"] = live_peak(step)  # after the RSS reading: it adds records
    if mode == "inference":
        rec["windows_per_s"] = b / rec["step_s"]
    return rec


def step_flops(model_name: str, overrides: dict[str, Any], n: int, b: int, train: bool) -> float:
    """FLOPs of one forward (+ backward when ``train``), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from linearcast.models import build

    with torch.device("meta"):
        model = build(model_name, num_nodes=n, in_steps=12, out_steps=12, **overrides)
    x = torch.empty(b, 12, n, 3, device="meta")
    y = torch.empty(b, 12, n, 1, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if train:
            torch.nn.functional.huber_loss(out, y).backward()
    return float(counter.get_total_flops())


def matmul_rate(device: str = "cpu", dtype: torch.dtype = torch.float32, size: int = 2048) -> float:
    """Square-matmul rate on this device in GFLOP/s (best of 10), the FLOP floor's yardstick."""
    if device == "cuda":
        size = 8192
    a = torch.randn(size, size, device=device, dtype=dtype)
    bm = torch.randn(size, size, device=device, dtype=dtype)
    a @ bm
    best = float("inf")
    for _ in range(10):
        _sync(device)
        t0 = time.perf_counter()
        a @ bm
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def save(out: Any, result: dict[str, Any]) -> None:
    """Write ``result`` as strict JSON through a temp file (called after every record, so that
    a time-boxed run keeps what it measured)."""
    from pathlib import Path

    from linearcast import jsonio

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(jsonio.dumps(result, indent=1) + "\n")
    tmp.replace(out)


def spawn(spec: dict[str, Any], timeout: float) -> dict[str, Any] | str:
    """Measure ``spec`` in a fresh process; a string says why it produced no record."""
    import subprocess
    from pathlib import Path

    try:
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines() or ["no output"]
        hint = " (killed: out of memory?)" if out.returncode in (-9, 137) else ""
        return f"failed (exit {out.returncode}{hint}): {lines[-1][:300]}"
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
