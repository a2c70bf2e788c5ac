"""The VAR form of SAMoVAR reproduces the forward pass to float64 precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from linearcast.analysis import (
    VarCoefficients,
    block_diagonal,
    frozen_forecast,
    lag_norms,
    plot_var_coefficients,
    reconstruct,
    var_coefficients,
)
from linearcast.errors import ConfigError
from linearcast.models.samovar import FixedVAR, SAMoVAR, SAMoVARConfig

RTOL = 1e-10


def _model(variant: str = "samovar", **kw: Any) -> SAMoVAR:
    """A small float64 model whose every parameter is perturbed away from its init (so RMSNorm
    weights, biases and S are all non-trivial). L = 37, s = 8: 3 padded steps, 5 patches."""
    torch.manual_seed(0)
    cfg = SAMoVARConfig(num_series=3, lookback=37, horizon=8, n_heads=4, variant=variant, **kw)
    model = (FixedVAR if variant == "fixedvar" else SAMoVAR)(cfg).double()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.train()  # var_coefficients must switch to eval and back


def _x(b: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 37, 3, 1, generator=g, dtype=torch.float64).cumsum(dim=1)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module", params=["samovar", "fixedvar"])
def case(request: pytest.FixtureRequest) -> tuple[SAMoVAR, torch.Tensor, VarCoefficients]:
    model, x = _model(request.param), _x()
    return model, x, var_coefficients(model, x)


def test_reconstruction_matches_the_forward_pass(
    case: tuple[SAMoVAR, torch.Tensor, VarCoefficients],
) -> None:
    model, x, co = case
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        tr = model.trace(x)
    assert tr.backbone is not None
    y = tr.backbone.y.reshape(2, 3, 5, -1)
    assert _rel(reconstruct(co), y) < RTOL
    assert _rel(co.y, y) < RTOL
    # the dense token-space matrices [.., T, T, d, d] give the same y
    dense = co.dense_total()
    assert dense.shape == (2, 3, 10, 10, 32, 32)
    y_dense = co.x0 + torch.einsum("bctjae,bcje->bcta", dense, co.x0)
    assert _rel(y_dense[:, :, 1::2], y) < RTOL
    model.train()


def test_each_layer_unrolls_to_its_output(
    case: tuple[SAMoVAR, torch.Tensor, VarCoefficients],
) -> None:
    """``o^(m)_t = Σ_{j≤t} B^(m)_{t,j} x0_j`` at every token (ex and en), layer by layer."""
    model, x, co = case
    model.eval()
    with torch.no_grad():
        tr = model.trace(x)
    model.train()
    assert tr.backbone is not None
    assert co.layer_lags.shape == (3, 2, 3, 4, 10, 10, 8, 8)
    for m, o in enumerate(tr.backbone.layer_outputs):
        o_var = torch.einsum("bctjae,bcje->bcta", co.dense_layer(m), co.x0)
        assert _rel(o_var, o.reshape(2, 3, 10, 32)) < RTOL, m


def test_lag_matrices_are_causal_and_layer_1_is_rank_1(
    case: tuple[SAMoVAR, torch.Tensor, VarCoefficients],
) -> None:
    _, _, co = case
    t = co.n_tokens
    future = ~torch.ones(t, t, dtype=torch.bool).tril()
    assert co.layer_lags[:, :, :, :, future].abs().max() == 0
    assert co.total[:, :, :, future].abs().max() == 0
    visible = co.layer_lags[0][:, :, :, ~future]  # (B, C, H, pairs, d_h, d_h)
    ranks = torch.linalg.matrix_rank(visible)
    assert (ranks == 1).all()
    # deeper layers are products of rank-1 blocks summed over paths: rank > 1 in general
    assert (torch.linalg.matrix_rank(co.layer_lags[2][:, :, :, -1, 0]) > 1).any()


def test_forecast_splits_exactly_over_tokens(
    case: tuple[SAMoVAR, torch.Tensor, VarCoefficients],
) -> None:
    model, x, co = case
    model.eval()
    with torch.no_grad():
        forecast = model(x)[..., 0].transpose(1, 2)  # (B, C, s) de-normalised
    model.train()
    split = co.output_bias + co.skip_contribution + co.token_contributions.sum(dim=2)
    assert _rel(split, co.forecast) < RTOL
    assert _rel(split * co.std + co.mean, forecast) < RTOL


def test_time_lags_are_the_derivative_of_the_frozen_forecast(
    case: tuple[SAMoVAR, torch.Tensor, VarCoefficients],
) -> None:
    model, x, co = case
    assert co.time_lags is not None and co.time_lags.shape == (2, 3, 8, 3, 37)
    z = ((x[..., 0].transpose(1, 2) - co.mean) / co.std).detach()
    model.eval()
    with torch.no_grad():
        assert _rel(frozen_forecast(model, co, z), co.forecast) < RTOL
        g = torch.Generator().manual_seed(4)
        delta = torch.randn(z.shape, generator=g, dtype=z.dtype)
        eps = 1e-5
        fd = (
            frozen_forecast(model, co, z + eps * delta)
            - frozen_forecast(model, co, z - eps * delta)
        ) / (2 * eps)
    model.train()
    lin = torch.einsum("bcsel,bel->bcs", co.time_lags, delta.flip(-1))  # lag order: flip time
    torch.testing.assert_close(lin, fd, rtol=1e-6, atol=1e-8)
    # other series enter through the exogenous tokens' channel mixing
    c = torch.arange(3)
    cross = co.time_lags.clone()
    cross[:, c, :, c] = 0
    assert cross.abs().max() > 1e-6


def test_frozen_coefficients_differ_from_the_full_derivative() -> None:
    """The time-domain lags hold q, v and the output RMS fixed; the model's own derivative also
    moves them, so the two differ (the docs say which one ``time_lags`` is)."""
    model, x = _model().eval(), _x(b=1)
    co = var_coefficients(model, x)
    assert co.time_lags is not None
    z = ((x[..., 0].transpose(1, 2) - co.mean) / co.std).detach()

    def full(zz: torch.Tensor) -> torch.Tensor:
        xx = (zz * co.std + co.mean).transpose(1, 2)[..., None]
        return model.trace(xx, stats=(co.mean, co.std)).next_patch[:, :, -1]

    jac = torch.autograd.functional.jacobian(full, z)[0, :, :, 0]  # (C, s, C, L)
    assert _rel(full(z).detach(), co.forecast) < RTOL
    assert (jac.flip(-1) - co.time_lags[0]).abs().max() > 1e-3 * jac.abs().max()


def test_block_diagonal_places_heads_on_the_diagonal() -> None:
    blocks = torch.randn(2, 3, 4, 4, 2, 2, dtype=torch.float64)  # (.., H=3, T=4, T, 2, 2)
    dense = block_diagonal(blocks)
    assert dense.shape == (2, 4, 4, 6, 6)
    torch.testing.assert_close(dense[..., 2:4, 2:4], blocks[:, 1])
    assert dense[..., 0:2, 2:6].abs().max() == 0


def test_models_without_a_var_form_are_refused() -> None:
    x = _x()
    with pytest.raises(ConfigError, match="variant='lintrans'"):
        var_coefficients(_model("lintrans"), x)
    with pytest.raises(ConfigError, match="attention='eala'"):
        var_coefficients(_model(attention="eala"), x)


def test_lag_norms_and_plot(tmp_path: Path) -> None:
    model, x = _model(), _x()
    co = var_coefficients(model, x)
    norms = lag_norms(co)
    assert norms["en"].shape == norms["ex"].shape == (5,)
    assert norms["layers_en"].shape == (3, 5)
    assert norms["time_own"].shape == norms["time_cross"].shape == (37,)
    # lag 0 of the endogenous curve is the forecast token's own coefficient block
    own = co.total[:, :, :, -1, -1].pow(2).sum(dim=(2, 3, 4)).sqrt().mean()
    torch.testing.assert_close(norms["en"][0], own)
    out = plot_var_coefficients(co, tmp_path / "sub" / "var.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        plot_var_coefficients(var_coefficients(model, x, time_domain=False), tmp_path / "t.pdf")
        .stat()
        .st_size
        > 0
    )
