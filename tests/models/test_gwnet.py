"""Graph WaveNet: the official size, diffusion direction, graph checks and errors, the receptive
field, and that every trainable parameter learns (the comparison with the official code itself
is ``test_reference_gwnet.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linearcast.data import get_protocol, synthetic_traffic
from linearcast.engine.config import TrainConfig, preset
from linearcast.engine.setup import build_model_for
from linearcast.errors import ConfigError
from linearcast.models import build
from linearcast.models.gwnet import GWNet, diffuse
from linearcast.models.gwnet_config import double_transition, transition_matrix


def _graph(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = (rng.random((n, n)) < 0.3) * rng.uniform(0.5, 2.0, (n, n))
    a[np.arange(n), (np.arange(n) + 1) % n] = 1.0  # a directed ring: every node has out-edges
    return a.astype(np.float32)


def _x(n: int, t: int = 12, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(batch, t, n, 1, generator=g)
    tod = torch.rand(batch, t, n, 1, generator=g)
    dow = torch.randint(0, 7, (batch, t, n, 1), generator=g).float()
    return torch.cat([target, tod, dow], dim=-1)


def test_pems08_size_has_the_official_parameter_count() -> None:
    # baselines.md §2 "counted": 308,660 (unused residual convs included); --aptonly: one support
    a = np.ones((170, 170), dtype=np.float32)
    model = build("gwnet", num_nodes=170, in_steps=12, out_steps=12, adjacency=a)
    assert sum(p.numel() for p in model.parameters()) == 308_660
    adaptive = build("gwnet-adaptive", num_nodes=170, in_steps=12, out_steps=12)
    assert sum(p.numel() for p in adaptive.parameters()) == 308_660 - 8 * 4 * 32 * 32


def test_diffusion_follows_the_official_direction() -> None:
    # one edge 0 -> 1: P = D⁻¹A has P[0, 1] = 1 and the official nconv computes Pᵀx, so the
    # first support carries node 0's signal to node 1 and the second (D⁻¹Aᵀ) node 1's to node 0
    a = np.zeros((3, 3), dtype=np.float32)
    a[0, 1] = 1.0
    forward, backward = double_transition(a, 3)
    x = torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1)  # (B, C, N, T)
    assert diffuse(x, forward).flatten().tolist() == [0.0, 1.0, 0.0]
    assert diffuse(x, backward).flatten().tolist() == [10.0, 0.0, 0.0]


def test_transition_rows_sum_to_one_or_stay_zero() -> None:
    a = _graph(12).astype(np.float64)
    a[3] = 0.0  # a node without out-edges: its row stays zero (official d_inv = 0)
    p = transition_matrix(a)
    sums = p.sum(axis=1)
    assert sums[3] == 0.0
    np.testing.assert_allclose(np.delete(sums, 3), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p * a.sum(axis=1, keepdims=True), a, rtol=1e-12)


@pytest.mark.parametrize(
    "adjacency, match",
    [
        (np.ones((4, 4), dtype=np.float32), r"shape \(5, 5\).*found \(4, 4\)"),
        (-np.eye(5, dtype=np.float32), r"non-negative.*minimum of -1"),
        (np.full((5, 5), np.nan, dtype=np.float32), r"non-finite"),
    ],
)
def test_a_bad_graph_is_refused_with_the_fix(adjacency: np.ndarray, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        build("gwnet", num_nodes=5, in_steps=12, out_steps=12, adjacency=adjacency)
    assert "data_options.adjacency" in str(err.value) and "gwnet-adaptive" in str(err.value)


def test_data_without_a_graph_names_the_file_and_both_fixes() -> None:
    ds = synthetic_traffic(num_nodes=4, days=1, seed=0)
    ds.adjacency = None
    config = TrainConfig(model="gwnet")
    with pytest.raises(ConfigError) as err:
        build_model_for(config, ds, get_protocol("pems"))
    message = str(err.value)
    assert str(ds.source) in message
    assert "--set data_options.adjacency=FILE" in message and "--model gwnet-adaptive" in message
    assert message.count(". ") == 0  # one sentence
    # the graph-free variant builds on the same data
    model = build_model_for(TrainConfig(model="gwnet-adaptive"), ds, get_protocol("pems"))
    assert isinstance(model, GWNet) and model.num_given == 0


def test_receptive_field_past_the_cap_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"receptive field .* 4081 steps.*model_overrides"):
        build("gwnet-adaptive", num_nodes=3, in_steps=12, out_steps=12, blocks=16, layers=8)
    with pytest.raises(ConfigError, match=r"model_overrides\.layers must be"):
        TrainConfig(model="gwnet", model_overrides={"layers": 40})


def test_a_window_longer_than_the_receptive_field_forecasts_from_its_last_steps() -> None:
    # blocks=1, layers=2: receptive field 4; in eval mode (BatchNorm per position) a 16-step
    # window gives the forecast of the same weights on its last 4 steps
    a = _graph(6)
    long = build("gwnet", num_nodes=6, in_steps=16, out_steps=3, adjacency=a, blocks=1)
    short = build("gwnet", num_nodes=6, in_steps=4, out_steps=3, adjacency=a, blocks=1)
    short.load_state_dict(long.state_dict())
    long.eval(), short.eval()
    x = _x(6, t=16)
    with torch.no_grad():
        torch.testing.assert_close(long(x), short(x[:, -4:]), rtol=1e-6, atol=1e-6)
        x_changed = x.clone()
        x_changed[:, :-4] += 5.0  # steps outside the receptive field change nothing
        torch.testing.assert_close(long(x_changed), long(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "name, overrides",
    [("gwnet", {}), ("gwnet-adaptive", {}), ("gwnet-adaptive", {"adaptive_embedding_dim": 0})],
)
def test_every_trainable_parameter_gets_a_gradient(name: str, overrides: dict[str, int]) -> None:
    # the official model leaves the residual convs beside a graph conv and the last layer's
    # residual stream unused; ours keeps them (the official count) frozen, which DDP needs
    n = 7
    extra = {"adjacency": _graph(n)} if name == "gwnet" else {}
    model = build(name, num_nodes=n, in_steps=12, out_steps=12, **extra, **overrides).train()
    model(_x(n)).square().mean().backward()
    trainable = {k: p for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(p.grad is not None for p in trainable.values())
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    assert all(".residual_conv." in k or k.startswith("layers.7.") for k in frozen)


def test_the_model_refuses_another_number_of_nodes_or_too_few_channels() -> None:
    model = build("gwnet-adaptive", num_nodes=5, in_steps=12, out_steps=12)
    with pytest.raises(ConfigError, match=r"built for N=5 nodes and found 6"):
        model(_x(6))
    wide = build("gwnet-adaptive", num_nodes=5, in_steps=12, out_steps=12, input_dim=4)
    with pytest.raises(ConfigError, match=r"C_in>=4.*model_overrides\.input_dim"):
        wide(_x(5))


@pytest.mark.parametrize("name", ["gwnet", "gwnet-pems04", "gwnet-pems08", "gwnet-metr-la"])
def test_presets_hold_the_published_recipes(name: str) -> None:
    cfg = preset(name)
    assert (cfg.model, cfg.optimizer, cfg.weight_decay, cfg.grad_clip) == ("gwnet", "adam", 1e-4, 5)
    assert (cfg.loss, cfg.max_epochs, cfg.patience) == ("masked_mae", 100, 0)
    if name == "gwnet":  # nnzhan/Graph-WaveNet train.py
        assert (cfg.lr, cfg.scheduler, cfg.batch_size, cfg.protocol) == (1e-3, "none", 64, "metr")
    else:  # BasicTS v0.5.8 baselines/GWNet/*.py
        assert (cfg.lr, cfg.milestones, cfg.gamma, cfg.batch_size) == (2e-3, [1, 50], 0.5, 16)
        assert cfg.protocol == ("metr" if name.endswith("metr-la") else "pems")


def test_permuting_the_nodes_and_the_graph_permutes_the_forecast() -> None:
    # the graph convolutions see node order only through A and E₁E₂; BatchNorm is per channel
    n = 8
    a = _graph(n, seed=3)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    p = perm.numpy()
    torch.manual_seed(0)
    model = build("gwnet", num_nodes=n, in_steps=12, out_steps=4, adjacency=a).eval()
    moved = build("gwnet", num_nodes=n, in_steps=12, out_steps=4, adjacency=a[p][:, p]).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("support_")}
    state["nodevec1"] = state["nodevec1"][perm]
    state["nodevec2"] = state["nodevec2"][:, perm]
    moved.load_state_dict(state, strict=False)
    x = _x(n)
    with torch.no_grad():
        torch.testing.assert_close(moved(x[:, :, perm]), model(x)[:, :, perm])
