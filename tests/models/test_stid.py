"""STID: the official parameter count, a forward computed by hand, which inputs reach which
outputs (only the last step's time indexes the tables, nodes are forecast independently), the
recipe preset, a run through the engine and the errors users see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from linearcast.engine.config import TrainConfig, preset
from linearcast.engine.trainer import train
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY, build
from linearcast.models.stid import STID

F64 = torch.float64
SMALL: dict[str, Any] = dict(
    input_embedding_dim=5,
    spatial_embedding_dim=3,
    tod_embedding_dim=4,
    dow_embedding_dim=2,
    num_layers=2,
    dropout=0.0,
)


def _stid(n: int = 6, t_in: int = 12, t_out: int = 4, **overrides: Any) -> STID:
    torch.manual_seed(0)
    model = build("stid", num_nodes=n, in_steps=t_in, out_steps=t_out, **{**SMALL, **overrides})
    assert isinstance(model, STID)
    return model.to(F64).eval()


def _inputs(b: int, n: int, t: int = 12, steps_per_day: int = 288, seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, n, 3, generator=g, dtype=F64)
    x[..., 1] = torch.randint(0, steps_per_day, (b, t, n), generator=g) / steps_per_day
    x[..., 2] = torch.randint(0, 7, (b, t, n), generator=g).to(F64)
    return x


@pytest.mark.parametrize(("n", "expected"), [(170, 116_684), (307, 121_068), (207, 117_868)])
def test_parameter_count_is_the_official_one(n: int, expected: int) -> None:
    # baselines.md §1, counted from the official code: embeddings 32·N + 9 216 + 224, series
    # embedding 1 184, encoder 3 × 2 × 16 512, regression 1 548 (PEMS08: 116 684)
    with torch.device("meta"):
        model = build("stid", num_nodes=n, in_steps=12, out_steps=12, steps_per_day=288)
    parts = {name: p.numel() for name, p in model.named_parameters()}
    assert sum(parts.values()) == expected == 32 * n + 9_216 + 224 + 1_184 + 6 * 16_512 + 1_548
    assert (parts["node_emb"], parts["tod_emb"], parts["dow_emb"]) == (32 * n, 9_216, 224)


def test_forward_equals_a_computation_by_hand() -> None:
    """Per batch and node, as the paper states it: the node's window flattened time-major
    (day of week as d/7), the identities of the last step, residual MLPs, a linear read-out."""
    model = _stid(n=4, t_out=3)
    x = _inputs(2, 4)
    p = dict(model.named_parameters())
    out = torch.empty(2, 3, 4, 1, dtype=F64)
    for b in range(2):
        for i in range(4):
            window = x[b, :, i].clone()  # (T, 3)
            window[:, 2] /= 7
            tod, dow = int(x[b, -1, i, 1] * 288), int(x[b, -1, i, 2])
            h = torch.cat(
                [
                    p["series_emb.weight"] @ window.reshape(-1) + p["series_emb.bias"],
                    p["node_emb"][i],
                    p["tod_emb"][tod],
                    p["dow_emb"][dow],
                ]
            )
            for k in range(2):
                u = torch.relu(p[f"encoder.{k}.fc1.weight"] @ h + p[f"encoder.{k}.fc1.bias"])
                h = h + p[f"encoder.{k}.fc2.weight"] @ u + p[f"encoder.{k}.fc2.bias"]
            out[b, :, i, 0] = p["regression.weight"] @ h + p["regression.bias"]
    with torch.no_grad():
        torch.testing.assert_close(model(x), out, rtol=0, atol=1e-13)


def test_only_the_last_steps_time_features_index_the_tables() -> None:
    model = _stid(input_dim=1)  # the series embedding sees the target only
    x = _inputs(2, 6)
    y = _inputs(2, 6, seed=9)
    earlier = x.clone()
    earlier[:, :-1, :, 1:] = y[:, :-1, :, 1:]  # other times at every step but the last
    last = x.clone()
    last[:, -1, :, 1] = (x[:, -1, :, 1] + 0.5) % 1.0  # another time of day at the last step
    with torch.no_grad():
        torch.testing.assert_close(model(earlier), model(x), rtol=0, atol=0)
        assert (model(last) - model(x)).abs().amax(dim=(1, 3)).min() > 1e-6  # every forecast


def test_time_of_day_on_the_data_grid_picks_its_own_row() -> None:
    """tod = k / steps_per_day stored as float32 (as BasicTS and our windows store it) indexes
    row k for every k: the official index truncates, so a row off by one would pass silently."""
    for steps in (288, 144, 96, 48, 24):
        model = build(
            "stid", num_nodes=steps, in_steps=2, out_steps=1, steps_per_day=steps, input_dim=1,
            input_embedding_dim=1, spatial_embedding_dim=0, tod_embedding_dim=1,
            dow_embedding_dim=0, num_layers=1, dropout=0.0,
        )  # fmt: skip
        assert isinstance(model, STID) and model.tod_emb is not None
        with torch.no_grad():  # a model that reads out its table row: h = [0, k], out = k
            for param in model.parameters():
                param.zero_()
            model.tod_emb[:, 0] = torch.arange(steps)
            model.regression.weight[0, 1] = 1.0
            x = torch.zeros(1, 2, steps, 3)
            perm = torch.randperm(steps, generator=torch.Generator().manual_seed(steps))
            x[0, :, :, 1] = perm.float() / steps  # node i at slot perm[i], in float32
            assert torch.equal(model(x)[0, 0, :, 0], perm.float())


def test_each_node_is_forecast_from_its_own_window_and_identity() -> None:
    model = _stid(n=6)
    x = _inputs(1, 6).requires_grad_(True)
    out = model(x)  # (1, T_out, N, 1)
    for i in range(6):
        (grad,) = torch.autograd.grad(out[0, :, i].sum(), x, retain_graph=True)
        others = torch.ones(6, dtype=torch.bool)
        others[i] = False
        assert grad[..., others, :].abs().max() == 0  # no other node's input reaches node i
        assert grad[..., i, 0].abs().min() > 0  # every step of its own target does


def test_permuting_nodes_and_their_identities_permutes_the_forecast() -> None:
    model = _stid(n=6)
    x = _inputs(2, 6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = _stid(n=6)
    with torch.no_grad():
        permuted.node_emb.copy_(model.node_emb[perm])  # type: ignore[index]
        torch.testing.assert_close(permuted(x[:, :, perm]), model(x)[:, :, perm])


def test_without_node_identity_it_runs_on_any_number_of_nodes() -> None:
    model = _stid(n=6, spatial_embedding_dim=0)
    assert model.node_emb is None
    with torch.no_grad():
        wide = model(_inputs(2, 11))
        torch.testing.assert_close(model(_inputs(2, 11)[:, :, :6]), wide[:, :, :6])


def test_the_preset_is_the_basicts_recipe() -> None:
    cfg = preset("stid-pems08")
    assert (cfg.model, cfg.protocol, cfg.optimizer) == ("stid", "pems", "adam")
    assert (cfg.lr, cfg.weight_decay, cfg.milestones, cfg.gamma) == (2e-3, 1e-4, [1, 50, 80], 0.5)
    assert (cfg.batch_size, cfg.eval_batch_size, cfg.max_epochs) == (64, 64, 100)
    assert (cfg.grad_clip, cfg.loss, cfg.patience) == (5.0, "masked_mae", 0)
    assert preset("stid-metr-la").protocol == "metr"
    assert preset("stid-pems04") == cfg


def test_trains_through_the_engine_without_a_graph(tmp_path: Path) -> None:
    spec = REGISTRY["stid"]
    assert not spec.needs_graph and spec.needs_time_features
    cfg = TrainConfig(
        model="stid",
        model_overrides={"num_layers": 1},
        synthetic={"num_nodes": 8, "days": 3, "steps_per_day": 48},  # type: ignore[arg-type]
        max_epochs=1,
        max_train_batches=2,
        max_eval_batches=1,
        max_val_batches=1,
        batch_size=8,
        plots=False,
        tensorboard=False,
        out_dir=str(tmp_path),
    )
    res = train(cfg, verbose=False)
    # steps_per_day reached the model from the data: a 48-row time-of-day table
    state = torch.load(res.run_dir / "best.ckpt", weights_only=True)["model"]
    assert tuple(state["tod_emb"].shape) == (48, 32)
    assert res.metrics["test"]["overall"]["MAE"] > 0


@pytest.mark.parametrize(
    ("overrides", "x_shape", "match"),
    [
        ({"input_dim": 4}, None, r"input_dim must be 1, 2 or 3.*model_overrides\.input_dim=3"),
        ({"num_layers": 0}, None, r"num_layers must be >= 1.*model_overrides\.num_layers"),
        ({"dropout": 0.1, "theta": 1.0}, None, r"unknown STID option\(s\) theta"),
        ({}, (2, 12, 6, 2), r"STID expects x of shape \[B, T_in=12, N, C_in>=3\]"),
        ({}, (2, 10, 6, 3), r"found \(2, 10, 6, 3\)"),
        ({}, (2, 12, 7, 3), r"built for N=6 nodes and found 7.*spatial_embedding_dim=0"),
    ],
)
def test_bad_options_and_inputs_raise_one_sentence(
    overrides: dict[str, Any], x_shape: tuple[int, ...] | None, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        model = _stid(**overrides)
        if x_shape is not None:
            model(torch.zeros(x_shape, dtype=F64))
    assert "\n" not in str(err.value)
