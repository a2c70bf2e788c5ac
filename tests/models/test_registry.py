"""Every registered model, through the engine's contract only (``build`` + one forward).

Models are built small: ``TINY`` maps a builder's module to overrides that shrink it (add a line
for a new model file if its defaults are slow at these shapes); anything else is built with its
defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from linearcast.models import REGISTRY, build
from linearcast.models.base import ModelSpec

TINY: dict[str, dict[str, Any]] = {
    "linearcast.models.staeformer": dict(
        input_embedding_dim=8,
        tod_embedding_dim=4,
        dow_embedding_dim=4,
        adaptive_embedding_dim=8,
        feed_forward_dim=32,
        num_heads=2,
        num_layers=1,
        dropout=0.0,
        linformer_k=8,
    ),
    "linearcast.models.stgcn": dict(
        temporal_channels=16, graph_channels=8, output_channels=32, dropout=0.0
    ),
    "linearcast.models.agcrn": dict(rnn_units=32, embed_dim=8, num_layers=1),
    "linearcast.models.gwnet": dict(
        residual_channels=8, dilation_channels=8, skip_channels=32, end_channels=64, dropout=0.0
    ),
    "linearcast.models.dcrnn": dict(rnn_units=16),
}
BATCH = 2


OVERFIT_STEPS = 100
OVERFIT_FACTOR = 20.0  # the loss must fall at least this many times
#: models that cannot memorise random per-node targets in OVERFIT_STEPS, and why
NO_OVERFIT: dict[str, str] = {
    "dcrnn": "weights shared by all nodes and a free-running decoder: 100 steps take the loss "
    "down ~2x, not 20x (its equality with the reference is test_reference_dcrnn.py)",
}


def _shapes(spec: ModelSpec) -> tuple[int, int, int, int]:
    """``(N, T_in, T_out, C_target)`` for the spec's family.

    Baselines get the LTSF shapes: with a 96-step window a linear model has the capacity to
    memorise one small batch of random targets (with 12 steps it has not).
    """
    if spec.family in ("ltsf", "baseline"):
        return 7, 96, 24, 1
    return 30, 12, 12, 1  # PEMS-style; N > 2·head_dim of the tiny STAEformer (linear EALA)


def _make(spec: ModelSpec, seed: int = 0) -> tuple[nn.Module, Tensor, Tensor]:
    """The tiny model and one batch ``x [B, T_in, N, C_in]``, ``y [B, T_out, N, 1]``."""
    n, t_in, t_out, _ = _shapes(spec)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, t_in, n, 1, generator=g)
    if spec.needs_time_features:  # time of day (fraction), day of week (0..6 as float)
        steps = torch.arange(t_in, dtype=torch.float32)
        tod = ((steps / 288) % 1.0)[None, :, None, None].expand(BATCH, t_in, n, 1)
        dow = torch.full((BATCH, t_in, n, 1), 3.0)
        x = torch.cat([x, tod, dow], dim=-1)
    y = torch.randn(BATCH, t_out, n, 1, generator=g)
    overrides = dict(TINY.get(spec.builder.__module__, {}))
    if spec.needs_graph:
        rng = np.random.default_rng(seed)
        a = (rng.random((n, n)) < 0.2).astype(np.float32)
        overrides["adjacency"] = np.maximum(a, a.T)
    torch.manual_seed(seed)
    model = build(spec.name, num_nodes=n, in_steps=t_in, out_steps=t_out, **overrides)
    return model, x, y


def _loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    out = model(x)
    loss = (out[..., : y.shape[-1]] - y).square().mean()
    aux = getattr(model, "aux_loss", None)
    if model.training and isinstance(aux, Tensor):
        loss = loss + aux
    return loss


NAMES = sorted(REGISTRY)


def test_registry_is_not_empty_and_names_match() -> None:
    assert "staeformer" in REGISTRY and "elinformer" in REGISTRY
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.family in ("spatiotemporal", "ltsf", "baseline")
        assert spec.description


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shapes_and_finite(
    name: str, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = REGISTRY[name]
    model, x, y = _make(spec)
    n, _, t_out, _ = _shapes(spec)
    n_params = sum(p.numel() for p in model.parameters())
    record_property("num_parameters", n_params)
    with capsys.disabled():
        print(f"\n{name}: {n_params} parameters at N={n}", end="")
    model.train()
    out = model(x)
    assert out.dim() == 4 and out.shape[:3] == (BATCH, t_out, n) and out.shape[3] >= 1
    assert torch.isfinite(out).all()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return
    _loss(model, x, y).backward()
    grads = [p.grad for p in trainable if p.grad is not None]
    assert grads, f"{name}: no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_small_batch(name: str) -> None:
    if name in NO_OVERFIT:
        pytest.skip(f"{name}: {NO_OVERFIT[name]}")
    spec = REGISTRY[name]
    model, x, y = _make(spec)
    fit = getattr(model, "fit", None)
    if callable(fit):
        fit([(x, y)])
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        pytest.skip(f"{name} has no trainable parameters (closed-form or rule-based)")
    model.eval()
    with torch.no_grad():
        start = _loss(model, x, y).item()
    model.train()
    opt = torch.optim.Adam(trainable, lr=1e-2)
    for _ in range(OVERFIT_STEPS):
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        end = _loss(model, x, y).item()
    assert end < start / OVERFIT_FACTOR, f"{name}: loss {start:.4g} -> {end:.4g}"


# (model, overrides, protocol time features (tod, dow), built?) — the engine asks for the time
# channels a model reads with its options, in the order the protocol lays them out
TIME_CHANNEL_CASES = [
    ("dcrnn", {}, (True, False), True),  # input_dim 2: target and time of day
    ("dcrnn", {}, (False, True), False),  # channel 1 would be the day of week
    ("dcrnn", {"input_dim": 1}, (False, False), True),
    ("gwnet", {"input_dim": 1}, (False, False), True),
    ("gwnet-adaptive", {}, (False, False), False),
    ("stid", {"input_dim": 1}, (False, False), False),  # the identities read time
    (
        "stid",
        {"input_dim": 1, "tod_embedding_dim": 0, "dow_embedding_dim": 0},
        (False, False),
        True,
    ),
    ("stid", {"dow_embedding_dim": 0, "input_dim": 2}, (True, False), True),
    ("stid", {}, (True, False), False),
    ("staeformer", {}, (True, False), False),
    ("agcrn", {"input_dim": 2}, (False, False), False),  # caught before training, not at batch 1
    ("agcrn", {"input_dim": 2}, (True, False), True),
    ("stgcn", {"input_dim": 3}, (True, False), False),
    ("stgcn", {}, (False, False), True),
]


@pytest.mark.parametrize(("name", "overrides", "features", "builds"), TIME_CHANNEL_CASES)
def test_time_channels_are_checked_against_what_the_model_reads(
    name: str, overrides: dict[str, Any], features: tuple[bool, bool], builds: bool
) -> None:
    from linearcast.data import TimeSeriesDataset, get_protocol
    from linearcast.engine.config import TrainConfig
    from linearcast.engine.setup import build_model_for
    from linearcast.errors import ConfigError

    adj = np.ones((4, 4), dtype=np.float32)
    ds = TimeSeriesDataset(values=np.zeros((600, 4, 1), np.float32), adjacency=adj)
    protocol = get_protocol("pems", add_time_of_day=features[0], add_day_of_week=features[1])
    config = TrainConfig(model=name, model_overrides=dict(overrides))
    if builds:
        model = build_model_for(config, ds, protocol)
        c_in = 1 + sum(features)
        x = torch.zeros(2, 12, 4, c_in)
        if features[0]:
            x[..., 1] = 0.5
        assert model(x).shape == (2, 12, 4, 1)
        return
    with pytest.raises(ConfigError) as err:
        build_model_for(config, ds, protocol)
    message = str(err.value)
    assert f"model {name!r} reads time of day" in message and "\n" not in message
    assert "protocol_overrides.add_time_of_day=true" in message
    if name != "staeformer":
        assert "model_overrides.input_dim=1" in message
