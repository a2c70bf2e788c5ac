"""Mixed precision keeps the model's inputs in float32: the time-of-day channel k/288 does not
survive bfloat16 (28 of the 288 slots become another one), and the STAEformer family and STID
index their time-of-day tables with it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from linearcast.engine.config import TrainConfig
from linearcast.engine.setup import make_fabric


class _Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> Any:
        self.seen.append(x.dtype)
        return self.lin(x)


def test_bf16_mixed_inputs_stay_float32_and_matmuls_run_in_bf16() -> None:
    fabric = make_fabric(TrainConfig(precision="bf16-mixed", accelerator="cpu"))
    probe = _Probe()
    model = fabric.setup_module(probe)
    tod = torch.arange(288, dtype=torch.float32) / 288
    x = torch.stack([tod, tod, tod], dim=-1)
    out = model(x)
    assert probe.seen == [torch.float32]
    slots = (x[:, 0] * 288).long()  # what the models' tables are indexed by
    assert torch.equal(slots, torch.arange(288))
    # autocast still ran the Linear in bfloat16 (the output comes back as float32)
    assert out.dtype == torch.float32
    with fabric.autocast():
        assert probe.lin(x).dtype == torch.bfloat16


def test_bfloat16_would_have_moved_time_of_day_slots() -> None:
    # the reason for the above: what Fabric's default cast does to k/288
    tod = (torch.arange(288, dtype=torch.float32) / 288).to(torch.bfloat16).float()
    assert int(((tod * 288).long() != torch.arange(288)).sum()) > 0
