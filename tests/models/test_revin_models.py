"""``model_overrides.revin``: every registry model trained by gradient takes it (the forecast then
moves with the window's level), the others refuse it in one sentence, and a run trained with it
saves, reloads and forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_registry import BATCH, TINY, _shapes
from torch import Tensor, nn

from linearcast.cli import main
from linearcast.data import synthetic_traffic
from linearcast.engine.checkpoint import load_weights
from linearcast.engine.config import TrainConfig
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY, build
from linearcast.models.base import REVIN_OPTIONS, ModelSpec
from linearcast.nn.revin import RevIN

WRAPPED = sorted(name for name, spec in REGISTRY.items() if not spec.no_revin)
REFUSED = sorted(name for name, spec in REGISTRY.items() if spec.no_revin)


def _build(spec: ModelSpec, **extra: object) -> tuple[nn.Module, Tensor]:
    """The tiny model of ``tests/models/test_registry.py`` in float64 and one input window."""
    n, t_in, t_out, _ = _shapes(spec)
    g = torch.Generator().manual_seed(0)
    x = 5.0 + 2.0 * torch.randn(BATCH, t_in, n, 1, generator=g, dtype=torch.float64)
    if spec.needs_time_features:
        tod = ((torch.arange(t_in, dtype=torch.float64) / 288) % 1.0)[None, :, None, None]
        dow = torch.full((BATCH, t_in, n, 1), 3.0, dtype=torch.float64)
        x = torch.cat([x, tod.expand(BATCH, t_in, n, 1), dow], dim=-1)
    overrides: dict[str, object] = {**TINY.get(spec.builder.__module__, {}), **extra}
    if spec.needs_graph:
        a = (np.random.default_rng(0).random((n, n)) < 0.2).astype(np.float32)
        overrides["adjacency"] = np.maximum(a, a.T)
    torch.manual_seed(0)
    model = build(spec.name, num_nodes=n, in_steps=t_in, out_steps=t_out, **overrides)
    return model.double(), x


def test_the_wrapped_and_refused_models_are_the_trained_and_the_others() -> None:
    # a new model trained by gradient gets the option without a line of its own
    assert {"staeformer", "elinformer", "dlinear", "stid", "dcrnn"} <= set(WRAPPED)
    assert {"last-value", "historical-average", "seasonal-naive", "var", "samovar"} <= set(REFUSED)
    for name in WRAPPED:
        options = REGISTRY[name].options
        assert options is None or REVIN_OPTIONS <= options, name


@pytest.mark.parametrize("name", WRAPPED)
def test_every_trained_model_with_revin_moves_its_forecast_with_the_level(name: str) -> None:
    spec = REGISTRY[name]
    model, x = _build(spec, revin=True, revin_affine=True)
    assert isinstance(model, RevIN)
    assert model.affine_weight is not None and model.affine_bias is not None
    with torch.no_grad():  # an affine away from its init: the property holds for any
        model.affine_weight.fill_(1.5)
        model.affine_bias.fill_(-0.3)
    model.eval()
    shifted = x.clone()
    shifted[..., 0] += 100.0
    with torch.no_grad():
        out, out_shifted = model(x), model(shifted)
    torch.testing.assert_close(out_shifted, out + 100.0, rtol=0, atol=1e-8)
    # and it trains: the affine and the model inside both get gradients
    model.train()
    model(x).square().mean().backward()
    assert model.affine_weight.grad is not None and model.affine_weight.grad.abs() > 0
    inner = [p.grad for p in model.model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in inner)


@pytest.mark.parametrize("name", REFUSED)
def test_a_model_it_does_not_apply_to_refuses_it_naming_why(name: str) -> None:
    spec = REGISTRY[name]
    with pytest.raises(ConfigError, match=r"model_overrides\.revin is not an option"):
        TrainConfig(model=name, model_overrides={"revin": True})
    with pytest.raises(ConfigError, match=f"{spec.no_revin}; remove --set model_overrides.revin"):
        _build(spec, revin=True)
    model, _ = _build(spec, revin=False)  # off is off, for every model
    assert not isinstance(model, RevIN)


def test_the_affine_alone_is_refused_before_any_data_is_read() -> None:
    with pytest.raises(ConfigError, match=r"revin_affine=true .* add --set model_overrides.revin"):
        TrainConfig(model="elinformer", model_overrides={"revin_affine": True})
    with pytest.raises(ConfigError, match=r"add --set model_overrides\.revin=true"):
        _build(REGISTRY["dlinear"], revin_affine=True)
    cfg = TrainConfig().with_sets(
        ["model_overrides.revin=true", "model_overrides.revin_affine=true"]
    )
    assert cfg.model_overrides == {"revin": True, "revin_affine": True}


def test_weights_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    spec = REGISTRY["elinformer"]
    model, x = _build(spec, revin=True, revin_affine=True)
    assert isinstance(model, RevIN) and model.affine_weight is not None
    with torch.no_grad():
        model.affine_weight.fill_(0.8)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(123)
    other, _ = _build(spec, revin=True, revin_affine=True)
    load_weights(other, torch.load(tmp_path / "w.pt", weights_only=True), tmp_path / "w.pt")
    model.eval(), other.eval()
    with torch.no_grad():
        assert torch.equal(other(x), model(x))


def test_a_run_trained_with_revin_forecasts_and_follows_a_level_shift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = (
        "model_overrides={input_embedding_dim=4, tod_embedding_dim=4, dow_embedding_dim=4, "
        "adaptive_embedding_dim=4, feed_forward_dim=16, num_layers=1, revin=true, "
        "revin_affine=true}"
    )
    out = tmp_path / "runs"
    argv = ["train", "--model", "elinformer", "--epochs", "1", "--max-train-batches", "2"]
    argv += ["--set", tiny, "--set", "synthetic.num_nodes=6", "--set", "synthetic.days=3"]
    argv += ["--accelerator", "cpu", "--out", str(out), "--run-name", "r", "--quiet"]
    assert main([*argv, "--set", "plots=false"]) == 0
    run = out / "r"
    state = torch.load(run / "best.ckpt", weights_only=True)
    weights = state.get("model", state)
    assert "affine_weight" in weights and any(k.startswith("model.") for k in weights)

    values = synthetic_traffic(num_nodes=6, days=3, seed=1).values[:600, :, 0].copy()
    values[values == 0] = 30.0  # no missing readings (0 is null), shifted or not
    sets = ["--set", "data_options.freq_minutes=5", "--set", "data_options.start=2024-01-01"]
    forecasts = []
    for shift in (0.0, 250.0):
        data = tmp_path / f"recent{shift:g}.npy"
        np.save(data, values + shift)
        csv = tmp_path / f"next{shift:g}.csv"
        assert main(["forecast", str(run), "--data", str(data), *sets, "--out", str(csv)]) == 0
        forecasts.append(pd.read_csv(csv)["y_hat"].to_numpy())
    capsys.readouterr()
    # raw units: the scaler is affine, so a raw level shift reaches the forecast whole
    assert np.isfinite(forecasts[0]).all()
    np.testing.assert_allclose(forecasts[1], forecasts[0] + 250.0, rtol=0, atol=1e-2)
