"""Baselines against hand computations; the VAR recovers a known VAR(2) from simulated data."""

from __future__ import annotations

import logging

import pytest
import torch

from linearcast.errors import ConfigError
from linearcast.models.baselines import (
    SPECS,
    DLinear,
    HistoricalAverage,
    LastValue,
    MovingAverage,
    SeasonalNaive,
    VARBaseline,
    VARConfig,
    build_seasonal_naive,
    build_var,
)


def _x(b: int = 2, t: int = 12, n: int = 3, c: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, n, c, generator=g, dtype=torch.float64)


def test_last_value_repeats_the_last_target_step() -> None:
    x = _x()
    out = LastValue(12, 5)(x)
    assert out.shape == (2, 5, 3, 1)
    for h in range(5):
        torch.testing.assert_close(out[:, h, :, 0], x[:, -1, :, 0], rtol=0, atol=0)


def test_historical_average_is_the_window_mean_of_channel_0() -> None:
    x = _x()
    out = HistoricalAverage(12, 4)(x)
    hand = x[..., 0].sum(dim=1) / 12
    assert out.shape == (2, 4, 3, 1)
    torch.testing.assert_close(out[:, 2, :, 0], hand)


def test_seasonal_naive_takes_the_value_one_season_back() -> None:
    t_in, season, t_out = 30, 8, 19
    x = _x(t=t_in)
    out = SeasonalNaive(t_in, t_out, season=season)(x)
    for h in range(1, t_out + 1):  # 1-based horizon: x at T + h − k·m, k = ceil(h / m)
        k = -(-h // season)
        src = t_in - 1 + h - k * season  # 0-based index of step T + h − k·m
        torch.testing.assert_close(out[:, h - 1, :, 0], x[:, src, :, 0], rtol=0, atol=0)


def test_seasonal_naive_week_period_and_its_error() -> None:
    m = build_seasonal_naive(num_nodes=3, in_steps=28, out_steps=3, steps_per_day=4, period="week")
    assert isinstance(m, SeasonalNaive) and m.season == 28
    x = _x(t=28)
    torch.testing.assert_close(m(x)[:, :, :, 0], x[:, :3, :, 0])
    with pytest.raises(ConfigError, match=r"in_steps >= 288.*found in_steps=12"):
        build_seasonal_naive(num_nodes=3, in_steps=12, out_steps=12, steps_per_day=288)


def test_seasonal_naive_without_steps_per_day_repeats_the_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="linearcast.models.baselines"):
        m = build_seasonal_naive(num_nodes=3, in_steps=12, out_steps=12)
    assert "steps_per_day unknown" in caplog.text
    x = _x(t=12)
    torch.testing.assert_close(m(x)[..., 0], x[..., 0], rtol=0, atol=0)


def test_moving_average_by_hand_at_the_edge_and_inside() -> None:
    z = _x(t=40)[..., 0]
    trend = MovingAverage(25)(z)
    assert trend.shape == z.shape
    first = (12 * z[:, 0] + z[:, :13].sum(dim=1)) / 25  # 12 replicated copies of z_0 on the left
    torch.testing.assert_close(trend[:, 0], first)
    torch.testing.assert_close(trend[:, 20], z[:, 8:33].mean(dim=1))


def test_dlinear_decomposition_sums_back_and_equal_maps_see_the_input() -> None:
    model = DLinear(3, 40, 6).double()
    z = _x(t=40)[..., 0]
    seasonal, trend = model.decomposition(z)
    torch.testing.assert_close(seasonal + trend, z)
    # a ramp is its own moving average away from the edges: no seasonal part there
    ramp = torch.arange(40, dtype=torch.float64)[None, :, None].expand(2, 40, 3)
    assert model.decomposition(ramp)[0][:, 12:-12].abs().max() < 1e-12
    # with identical seasonal and trend maps the output is that map applied to the input
    with torch.no_grad():
        model.trend_weight.copy_(model.seasonal_weight)
    x = _x(t=40)
    expected = torch.einsum("bin,ji->bjn", x[..., 0], model.seasonal_weight[0])
    expected = expected + (model.seasonal_bias + model.trend_bias).T
    torch.testing.assert_close(model(x)[..., 0], expected)


def test_dlinear_individual_has_per_series_maps() -> None:
    model = DLinear(3, 40, 6, individual=True).double()
    x = _x(t=40)
    out = model(x)
    assert out.shape == (2, 6, 3, 1)
    with torch.no_grad():
        model.seasonal_weight[1].zero_()
        model.trend_weight[1].zero_()
    out2 = model(x)
    torch.testing.assert_close(out2[:, :, [0, 2]], out[:, :, [0, 2]])
    assert not torch.allclose(out2[:, :, 1], out[:, :, 1])
    with pytest.raises(ConfigError, match="N=3"):
        model(_x(t=40, n=4))


def _simulate_var2(n_steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A stable 3-node VAR(2) with an intercept; returns ``(series [T, 3], A [2, 3, 3], c)``."""
    a1 = torch.tensor([[0.5, 0.2, 0.0], [-0.1, 0.4, 0.1], [0.0, 0.3, 0.3]], dtype=torch.float64)
    a2 = torch.tensor([[-0.2, 0.0, 0.1], [0.0, 0.1, 0.0], [0.1, 0.0, -0.2]], dtype=torch.float64)
    c = torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    noise = 0.5 * torch.randn(n_steps + 100, 3, generator=g, dtype=torch.float64)
    z = torch.zeros(n_steps + 100, 3, dtype=torch.float64)
    for t in range(2, n_steps + 100):
        z[t] = c + a1 @ z[t - 1] + a2 @ z[t - 2] + noise[t]
    return z[100:], torch.stack([a1, a2]), c


def _windows(z: torch.Tensor, t_in: int, t_out: int, batch: int) -> list[tuple[torch.Tensor, ...]]:
    """Stride-1 windows of ``z: [T, N]`` as ``(x [B, t_in, N, 1], y [B, t_out, N, 1])`` batches."""
    w = z.unfold(0, t_in + t_out, 1).permute(0, 2, 1)[..., None]  # (W, t_in + t_out, N, 1)
    return [(w[i : i + batch, :t_in], w[i : i + batch, t_in:]) for i in range(0, len(w), batch)]


def test_var_recovers_known_var2_coefficients() -> None:
    z, a, c = _simulate_var2(6000)
    model = build_var(num_nodes=3, in_steps=24, out_steps=4)
    assert isinstance(model, VARBaseline) and model.config.full
    model.double().fit(_windows(z, 24, 4, batch=512))
    assert bool(model.fitted)
    assert (model.coef - a).abs().max() < 0.05, (model.coef - a).abs().max()
    assert (model.intercept - c).abs().max() < 0.05


def test_var_forecast_iterates_its_own_predictions() -> None:
    model = VARBaseline(VARConfig(num_nodes=3, in_steps=10, out_steps=3)).double()
    _, a, c = _simulate_var2(10)
    with torch.no_grad():
        model.coef.copy_(a)
        model.intercept.copy_(c)
    x = _x(t=10)
    out = model(x)[..., 0]  # (B, 3, N)
    hist = list(x[:, -2:, :, 0].unbind(1))
    for h in range(3):
        nxt = c + hist[-1] @ a[0].T + hist[-2] @ a[1].T
        torch.testing.assert_close(out[:, h], nxt)
        hist.append(nxt)


def test_var_per_node_fits_a_diagonal_var_and_ridge_shrinks() -> None:
    g = torch.Generator().manual_seed(1)
    phi = torch.tensor([[0.6, -0.3, 0.2, 0.8], [0.2, 0.1, -0.3, 0.0]], dtype=torch.float64)
    z = torch.zeros(4000, 4, dtype=torch.float64)
    e = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    for t in range(2, 4000):
        z[t] = phi[0] * z[t - 1] + phi[1] * z[t - 2] + e[t]
    loader = _windows(z, 16, 2, batch=1024)
    model = build_var(num_nodes=4, in_steps=16, out_steps=2, mode="per_node").double().fit(loader)
    assert model.coef.shape == (2, 4)
    assert (model.coef - phi).abs().max() < 0.06
    ridge = build_var(num_nodes=4, in_steps=16, out_steps=2, mode="per_node", ridge=1.0)
    ridge = ridge.double().fit(loader)
    assert ridge.coef.norm() < 0.8 * model.coef.norm()
    # 'auto' switches to per-node beyond max_full_nodes
    assert not build_var(num_nodes=4, in_steps=16, out_steps=2, max_full_nodes=3).config.full


def test_var_warns_before_fit_and_validates(caplog: pytest.LogCaptureFixture) -> None:
    model = build_var(num_nodes=3, in_steps=12, out_steps=2)
    x = _x(t=12).float()
    with caplog.at_level(logging.WARNING, logger="linearcast.models.baselines"):
        out = model(x)
    assert "before fit" in caplog.text
    torch.testing.assert_close(out[:, 0, :, 0], x[:, -1, :, 0])  # persistence coefficients
    with pytest.raises(ConfigError, match="in_steps > 2"):
        build_var(num_nodes=3, in_steps=2, out_steps=2)
    with pytest.raises(ConfigError, match="unknown var option"):
        build_var(num_nodes=3, in_steps=12, out_steps=2, lags=3)
    with pytest.raises(ConfigError, match="no training batches"):
        model.fit([])


def test_specs_flags_match_the_models() -> None:
    names = {s.name for s in SPECS}
    assert names == {"last-value", "historical-average", "seasonal-naive", "dlinear", "var"}
    for spec in SPECS:
        assert spec.family == "baseline" and not spec.needs_graph and not spec.needs_time_features
        model = spec.builder(num_nodes=7, in_steps=96, out_steps=24)
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert (n_params > 0) == (spec.name == "dlinear"), spec.name
        assert model(torch.randn(2, 96, 7, 1)).shape == (2, 24, 7, 1)
        if not spec.fixed_num_nodes:  # runs on another N unchanged
            assert model(torch.randn(2, 96, 5, 1)).shape == (2, 24, 5, 1)
