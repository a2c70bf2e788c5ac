"""The kernels, models and the engine on a CUDA device (skipped without one).

Run on a GPU machine with ``pytest tests/test_cuda.py`` (``benchmarks/device_check.sh`` does, and
records the result). What is checked: every fast kernel against its naive reference on the GPU
in float32 (values and gradients) and bfloat16 (values), against the float64 CPU reference;
every spatio-temporal registry model gives the CPU's forecast on the GPU and takes an Adam
step; a short training run under ``--accelerator cuda --precision bf16-mixed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

# LINEARCAST_TEST_DEVICE=cpu runs the same checks on the CPU (to try them without a GPU)
DEVICE = os.environ.get("LINEARCAST_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device here"
)

from linearcast import ops  # noqa: E402

Kernel = Callable[..., torch.Tensor]


def _qkv(n: int, *, b: int = 2, h: int = 3, d: int = 16, dv: int = 24) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    q = torch.randn(b, h, n, d, generator=g, dtype=torch.float64) * 0.5
    k = torch.randn(b, h, n, d, generator=g, dtype=torch.float64)
    v = torch.randn(b, h, n, dv, generator=g, dtype=torch.float64)
    return [q, k, v]


def _linformer(fast: bool) -> Kernel:
    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: Any) -> torch.Tensor:
        g = torch.Generator().manual_seed(1)
        e = (torch.randn(8, k.shape[2], generator=g, dtype=torch.float64) / 4).to(k)
        fn = ops.linformer_attention if fast else ops.linformer_attention_naive
        return fn(q, k, v, e, None, **kw)

    return run


# name -> (fast, reference, keyword options, sequence lengths)
KERNELS: dict[str, tuple[Kernel, Kernel, dict[str, Any], tuple[int, ...]]] = {
    "softmax": (ops.softmax_attention, ops.softmax_attention_naive, {}, (12, 300)),
    "softmax causal": (ops.softmax_attention, ops.softmax_attention_naive, {"causal": True},
                       (12, 300)),
    "eala linear": (lambda *a, **k: ops.eala_attention(*a, impl="linear", **k),
                    ops.eala_attention_quadratic, {"theta": "gauss_hclamp"}, (40, 300)),
    "eala short": (lambda *a, **k: ops.eala_attention(*a, impl="quadratic", **k),
                   ops.eala_attention_quadratic, {"theta": "paper"}, (12,)),
    "eala causal": (lambda *a, **k: ops.eala_attention(*a, impl="linear", causal=True, **k),
                    lambda *a, **k: ops.eala_attention_quadratic(*a, causal=True, **k),
                    {"theta": "gauss"}, (12, 300)),
    "linformer": (_linformer(True), _linformer(False), {}, (40, 300)),
    "linear": (ops.linear_attention, ops.linear_attention_naive, {}, (40, 300)),
    "linear causal": (ops.linear_attention, ops.linear_attention_naive, {"causal": True},
                      (40, 300)),
}  # fmt: skip
CASES = [(name, n) for name, (_, _, _, ns) in KERNELS.items() for n in ns]


@pytest.mark.parametrize(("name", "n"), CASES, ids=[f"{k}-N{n}" for k, n in CASES])
def test_fast_kernel_matches_reference_on_cuda_float32(name: str, n: int) -> None:
    fast, ref, opts, _ = KERNELS[name]
    cpu = [t.requires_grad_() for t in _qkv(n)]
    expected = ref(*cpu, **opts)
    expected.square().sum().backward()
    gpu = [t.detach().float().to(DEVICE).requires_grad_() for t in cpu]
    got = fast(*gpu, **opts)
    got.square().sum().backward()
    torch.testing.assert_close(got.double().cpu(), expected.detach(), rtol=2e-4, atol=2e-4)
    for g_gpu, g_cpu in zip(gpu, cpu, strict=True):
        assert g_gpu.grad is not None and g_cpu.grad is not None
        torch.testing.assert_close(g_gpu.grad.double().cpu(), g_cpu.grad, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(("name", "n"), CASES, ids=[f"{k}-N{n}" for k, n in CASES])
def test_fast_kernel_runs_in_bfloat16_on_cuda(name: str, n: int) -> None:
    fast, ref, opts, _ = KERNELS[name]
    cpu = _qkv(n)
    expected = ref(*cpu, **opts)
    got = fast(*(t.to(DEVICE, torch.bfloat16) for t in cpu), **opts)
    assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
    scale = expected.abs().mean().item()
    err = (got.double().cpu() - expected).abs().mean().item()
    assert err < 0.05 * max(scale, 1e-3)


def _st_models() -> list[str]:
    from linearcast.models import REGISTRY

    return [s.name for s in REGISTRY.values() if s.family == "spatiotemporal"]


@pytest.mark.parametrize("name", _st_models())
def test_models_forecast_the_same_on_cuda_and_train(name: str) -> None:
    from linearcast.models import build

    torch.manual_seed(0)
    small = {"input_embedding_dim": 8, "tod_embedding_dim": 8, "dow_embedding_dim": 8,
             "adaptive_embedding_dim": 8, "feed_forward_dim": 32, "num_layers": 2}  # fmt: skip
    model = build(name, num_nodes=60, in_steps=12, out_steps=12, **small).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 12, 60, 3, generator=g)
    x[..., 1] = torch.rand(4, 12, 60, generator=g)
    x[..., 2] = torch.randint(0, 7, (4, 12, 60), generator=g).float()
    with torch.no_grad():
        cpu_out = model(x)
        model.to(DEVICE)
        gpu_out = model(x.to(DEVICE))
    torch.testing.assert_close(gpu_out.cpu(), cpu_out, rtol=1e-3, atol=1e-3)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model(x.to(DEVICE)).square().mean()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


def test_a_short_bf16_mixed_training_run_on_cuda(tmp_path: Path) -> None:
    from linearcast.engine import TrainConfig, train

    cfg = TrainConfig(
        model="elinformer",
        data="synthetic",
        synthetic={"num_nodes": 40, "days": 7},  # type: ignore[arg-type]
        max_epochs=2,
        accelerator=DEVICE,
        precision="bf16-mixed",
        out_dir=str(tmp_path),
        plots=False,
    )
    result = train(cfg, verbose=False)
    m = result.metrics
    assert m["device"].startswith(DEVICE) and m["precision"] == "bf16-mixed"
    losses = [row["train_loss"] for row in result.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert m["test"]["overall"]["MAE"] < 3 * m["baseline"]["test"]["overall"]["MAE"]
    if DEVICE == "cuda":
        assert m["peak_memory"]["kind"] == "cuda_max_allocated"
