"""RevIN (linearcast.nn.revin): the statistics come back exactly, the forecast moves with the
window's level and scale, time features pass untouched, gradients are right (float64)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from linearcast.models.dlinear import DLinear
from linearcast.models.floors import LastValue
from linearcast.nn.revin import EPS, RevIN

B, T_IN, T_OUT, N = 3, 16, 5, 4


def _window(seed: int = 0, *, time_features: bool = True) -> Tensor:
    """``[B, T_IN, N, C]`` float64: a target far from 0 mean / unit spread, then tod and dow."""
    g = torch.Generator().manual_seed(seed)
    level = 50.0 + 20.0 * torch.randn(B, 1, N, 1, generator=g, dtype=torch.float64)
    x = level + 7.0 * torch.randn(B, T_IN, N, 1, generator=g, dtype=torch.float64)
    if not time_features:
        return x
    tod = (torch.arange(T_IN, dtype=torch.float64) / 288)[None, :, None, None]
    dow = torch.full((B, T_IN, N, 1), 5.0, dtype=torch.float64)
    return torch.cat([x, tod.expand(B, T_IN, N, 1), dow], dim=-1)


class _Recorder(nn.Module):
    """Keeps what it is given and forecasts the last input step."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, Any] = {}

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Tensor:
        self.seen = {"x": x, "targets": targets}
        return x[:, -1:, :, :1].expand(-1, T_OUT, -1, -1)


def _affine(model: RevIN, weight: float, bias: float) -> RevIN:
    assert model.affine_weight is not None and model.affine_bias is not None
    with torch.no_grad():
        model.affine_weight.fill_(weight)
        model.affine_bias.fill_(bias)
    return model


@pytest.mark.parametrize(
    ("affine", "weight", "bias"), [(False, 1, 0), (True, 1, 0), (True, -2.5, 0.7)]
)
def test_the_statistics_are_restored_exactly(affine: bool, weight: float, bias: float) -> None:
    # persistence through RevIN is persistence: mean and std come back to 1e-12 in float64,
    # with the affine at init and away from it
    x = _window()
    inner = LastValue(T_IN, T_OUT)
    model = RevIN(inner, affine=affine).double()
    if affine:
        _affine(model, weight, bias)
    out = model(x)
    torch.testing.assert_close(out, inner(x), rtol=0, atol=1e-12)
    # and what the model read was normalised: per window and series, mean 0 and std 1
    # (up to eps in the variance)
    recorder = RevIN(_Recorder()).double()
    recorder(x)
    z = recorder.model.seen["x"][..., 0]
    torch.testing.assert_close(
        z.mean(dim=1), torch.zeros(B, N, dtype=torch.float64), atol=1e-12, rtol=0
    )
    var = x[..., 0].var(dim=1, unbiased=False)
    torch.testing.assert_close(z.var(dim=1, unbiased=False), var / (var + EPS), atol=1e-12, rtol=0)


def test_a_constant_window_stays_finite_and_comes_back() -> None:
    x = torch.full((B, T_IN, N, 1), 42.0, dtype=torch.float64)
    out = RevIN(LastValue(T_IN, T_OUT)).double()(x)
    assert torch.equal(out, torch.full((B, T_OUT, N, 1), 42.0, dtype=torch.float64))


def _dlinear() -> nn.Module:
    torch.manual_seed(0)
    return DLinear(N, T_IN, T_OUT, kernel_size=5).double()


@pytest.mark.parametrize("affine", [False, True])
def test_a_level_shift_shifts_the_forecast_and_a_scale_scales_it(affine: bool) -> None:
    model = RevIN(_dlinear(), affine=affine).double().eval()
    if affine:
        _affine(model, 1.7, -0.4)
    x = _window(1, time_features=False)
    for c in (-1000.0, 3.25, 1e4):
        torch.testing.assert_close(model(x + c), model(x) + c, rtol=0, atol=1e-9)
    # the scale property holds up to eps in the variance: exact with eps = 0
    model.eps = 0.0
    for a in (0.01, 3.0, 250.0):
        torch.testing.assert_close(model(a * x), a * model(x), rtol=1e-12, atol=1e-12)
    # the model inside is not equivariant on its own (so the property is RevIN's)
    assert not torch.allclose(model.model(x + 1000.0), model.model(x) + 1000.0)


def test_time_features_pass_through_untouched_and_targets_are_normalised() -> None:
    x = _window(2)
    y = 60.0 + torch.randn(B, T_OUT, N, 1, dtype=torch.float64)
    y[0, 1, 2, 0] = float("nan")  # a missing target stays missing
    model = RevIN(_Recorder(), affine=True).double()
    _affine(model, 2.0, 0.5)
    model(x, targets=y)
    seen = model.model.seen
    assert torch.equal(seen["x"][..., 1:], x[..., 1:])
    mean = x[..., 0].mean(dim=1, keepdim=True)[..., None]
    std = torch.sqrt(x[..., 0].var(dim=1, unbiased=False, keepdim=True) + EPS)[..., None]
    want = (y - mean) / std * 2.0 + 0.5
    torch.testing.assert_close(seen["targets"], want, rtol=0, atol=1e-12, equal_nan=True)
    # no targets: none invented
    model(x)
    assert model.model.seen["targets"] is None


def test_gradients_of_input_and_affine_are_right_in_float64() -> None:
    model = RevIN(_dlinear(), affine=True).double()
    _affine(model, 1.3, 0.2)
    x = _window(3, time_features=False)[:1].requires_grad_(True)
    names = ["affine_weight", "affine_bias", "model.seasonal_weight"]
    params = {k: v for k, v in model.named_parameters() if k in names}
    assert set(params) == set(names)

    def f(x: Tensor, *values: Tensor) -> Tensor:
        return torch.func.functional_call(model, dict(zip(names, values, strict=True)), (x,))

    inputs = (x, *(params[k].detach().clone().requires_grad_(True) for k in names))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_the_aux_loss_of_the_model_inside_is_seen() -> None:
    inner = LastValue(T_IN, T_OUT)
    model = RevIN(inner)
    assert model.aux_loss is None
    inner.aux_loss = torch.tensor(0.5)  # type: ignore[assignment]
    assert model.aux_loss is not None and model.aux_loss.item() == 0.5
