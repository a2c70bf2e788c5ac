"""attention_profile sees every kernel and measures what the kernel sees."""

from __future__ import annotations

import math

import pytest
import torch

from linearcast.analysis import attention_profile, format_profile
from linearcast.models import build


def _x(b: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 12, n, 3, generator=g)
    x[..., 1] = torch.rand(b, 12, n, generator=g)
    x[..., 2] = torch.randint(0, 7, (b, 12, n), generator=g).float()
    return x


@pytest.mark.parametrize("name", ["staeformer", "elinformer"])
def test_profile_covers_temporal_and_spatial_layers(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, num_nodes=20, in_steps=12, out_steps=12, num_layers=2)
    model.train()
    prof = attention_profile(model, _x(2, 20), max_sequences=5)
    assert [p.seq_len for p in prof] == [12, 12, 20, 20]
    assert all(p.sequences == 5 * 4 for p in prof)  # 5 folded rows × 4 heads
    assert all(0 < p.entropy_ratio <= 1 + 1e-6 and p.sigma > 0 for p in prof)
    assert all(p.theta["paper"] == pytest.approx(1 / math.sqrt(2), abs=1e-6) for p in prof)
    assert model.training  # the mode is restored
    assert "| attn_layers_s.1" in format_profile(prof)


def test_profile_sigma_is_the_kernels_score_spread() -> None:
    # scale the query projection: the score spread the profile reports scales with it
    torch.manual_seed(0)
    model = build("elinformer", num_nodes=20, in_steps=12, out_steps=12, num_layers=1)
    x = _x(1, 20)
    base = attention_profile(model, x)
    with torch.no_grad():
        layer = model.attn_layers_s[0].attn  # type: ignore[index]
        layer.q_proj.weight.mul_(3.0)
        layer.q_proj.bias.mul_(3.0)
    after = attention_profile(model, x)
    assert after[1].sigma == pytest.approx(3 * base[1].sigma, rel=1e-4)
    assert after[0].sigma == pytest.approx(base[0].sigma, rel=1e-6)  # temporal layer untouched
    assert after[1].entropy_ratio < base[1].entropy_ratio
