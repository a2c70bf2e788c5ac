"""SAMoVAR and its controls: shapes, causality, normalisation, S, the next-patch loss."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from linearcast.errors import ConfigError
from linearcast.models import REGISTRY, build
from linearcast.models.samovar import (
    SPECS,
    FixedVAR,
    LinTrans,
    SAMoVAR,
    SAMoVARConfig,
    VarBackbone,
    build_samovar,
)

# (variant, attention) pairs: the three models of the paper and the EALA variant
KINDS = [("samovar", "linear"), ("lintrans", "linear"), ("fixedvar", "linear"), ("samovar", "eala")]


def _model(variant: str = "samovar", attention: str = "linear", **kw: Any) -> SAMoVAR:
    """A small float64 model in eval mode; L = 37 is not a multiple of s = 8 (left padding)."""
    torch.manual_seed(0)
    opts: dict[str, Any] = dict(n_heads=4, dropout=0.0, variant=variant, attention=attention)
    opts.update(kw)
    cfg = SAMoVARConfig(num_series=3, lookback=37, horizon=8, **opts)
    model = {"samovar": SAMoVAR, "lintrans": LinTrans, "fixedvar": FixedVAR}[variant](cfg)
    return model.double().eval()


def _x(b: int = 2, length: int = 37, c: int = 3, c_in: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, length, c, c_in, generator=g, dtype=torch.float64)
    return base + torch.linspace(0, 3, length, dtype=torch.float64)[None, :, None, None]


@pytest.mark.parametrize(("variant", "attention"), KINDS)
def test_shapes_and_only_channel_0_is_read(variant: str, attention: str) -> None:
    model = _model(variant, attention)
    x = _x(c_in=3)
    out = model(x)
    assert out.shape == (2, 8, 3, 1)
    assert torch.isfinite(out).all()
    x2 = x.clone()
    x2[..., 1:] = torch.randn_like(x2[..., 1:])
    torch.testing.assert_close(model(x2), out, rtol=0, atol=0)
    with pytest.raises(ConfigError, match=r"\[B, L=37, C=3, C_in\]"):
        model(_x(length=36))


@pytest.mark.parametrize(("c", "d"), [(1, 32), (3, 32), (7, 64), (8, 64), (16, 128)])
def test_default_width_is_32_floor_sqrt_c(c: int, d: int) -> None:
    assert SAMoVARConfig(num_series=c, lookback=96, horizon=24).d_model == d


def test_registry_entries_and_flags() -> None:
    names = {s.name for s in SPECS}
    assert names == {"samovar", "samovar-lintrans", "samovar-fixedvar", "samovar-eala"}
    assert names <= set(REGISTRY)
    for spec in SPECS:
        assert spec.family == "ltsf" and spec.fixed_num_nodes and not spec.needs_time_features
    assert "beyond the paper" in REGISTRY["samovar-eala"].description
    kinds = {
        "samovar": (SAMoVAR, "samovar", "linear"),
        "samovar-lintrans": (LinTrans, "lintrans", "linear"),
        "samovar-fixedvar": (FixedVAR, "fixedvar", "linear"),
        "samovar-eala": (SAMoVAR, "samovar", "eala"),
    }
    for name, (cls, variant, attention) in kinds.items():
        model = build(name, num_nodes=7, in_steps=96, out_steps=24)
        assert type(model) is cls
        assert isinstance(model, SAMoVAR)
        assert (model.config.variant, model.config.attention.kernel) == (variant, attention)
        assert model.config.d_model == 64 and model.config.n_segments == 4
    with pytest.raises(ConfigError, match="unknown SAMoVAR option"):
        build_samovar(num_nodes=7, in_steps=96, out_steps=24, n_layers=2)
    with pytest.raises(ConfigError, match="n_heads to divide d_model"):
        build_samovar(num_nodes=7, in_steps=96, out_steps=24, n_heads=5)


def test_structural_matrix_is_lu_with_positive_diagonal_and_invertible() -> None:
    model = _model()
    assert isinstance(model.backbone, VarBackbone)
    with torch.no_grad():  # a non-trivial raw parameter, including negative diagonal entries
        model.backbone.structural.raw.normal_(0.0, 1.0)
    lower, upper = model.backbone.structural.factors()
    s = model.backbone.structural()
    assert s.shape == (4, 8, 8)
    eye = torch.eye(8, dtype=s.dtype)
    torch.testing.assert_close(
        torch.diagonal(lower, dim1=-2, dim2=-1), torch.ones(4, 8, dtype=s.dtype)
    )
    assert torch.equal(lower, lower.tril()) and torch.equal(upper, upper.triu())
    assert (torch.diagonal(upper, dim1=-2, dim2=-1) > 0).all()
    torch.testing.assert_close(s, lower @ upper)
    assert (torch.linalg.det(s) > 0).all()
    torch.testing.assert_close(s @ torch.linalg.inv(s), eye.expand(4, 8, 8))


def test_normalisation_uses_last_horizon_mean_and_window_std() -> None:
    model = _model()
    x = _x()
    tr = model.trace(x)
    series = x[..., 0].transpose(1, 2)  # (B, C, L)
    torch.testing.assert_close(tr.mean, series[:, :, -8:].mean(dim=2, keepdim=True))
    torch.testing.assert_close(tr.std, series.std(dim=2, keepdim=True) + 1e-8)
    assert (tr.patches[:, :, 0, :3] == 0).all()  # 37 steps: 3 zeros padded on the left
    torch.testing.assert_close(tr.patches.reshape(2, 3, 40)[:, :, 3:], (series - tr.mean) / tr.std)
    # instance normalisation makes the forecast shift- and scale-equivariant
    out = model(x)
    torch.testing.assert_close(model(x + 5.0), out + 5.0)
    torch.testing.assert_close(model(3.0 * x), 3.0 * out, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize(("variant", "attention"), KINDS)
def test_backbone_is_causal_over_tokens(variant: str, attention: str) -> None:
    """Tokens of patches after ``p`` cannot change the next-patch predictions at patches ≤ p.

    The check is on the token sequence (the backbone's input), because instance normalisation
    uses the whole window's statistics (the mean of the LAST s steps) and so makes every token
    depend on the last patch by design; that is not a leak of the backbone.
    """
    model = _model(variant, attention)
    tokens = model.trace(_x()).tokens  # (B·C, 10, d): 5 patches, ex/en interleaved
    base = model.decode(tokens)  # (B·C, 5, s)
    g = torch.Generator().manual_seed(3)
    for p in range(4):
        late = tokens.clone()
        late[:, 2 * (p + 1) :] += torch.randn(
            late[:, 2 * (p + 1) :].shape, generator=g, dtype=late.dtype
        )
        out = model.decode(late)
        torch.testing.assert_close(out[:, : p + 1], base[:, : p + 1], rtol=1e-12, atol=1e-12)
        assert (out[:, p + 1] - base[:, p + 1]).abs().max() > 1e-6  # the perturbation is seen
    # the exogenous token of patch p+1 is not visible to the endogenous token of patch p
    ex_only = tokens.clone()
    ex_only[:, 4] += 1.0
    torch.testing.assert_close(model.decode(ex_only)[:, :2], base[:, :2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("variant", "attention"), KINDS)
def test_model_is_causal_over_input_patches_with_fixed_normalisation(
    variant: str, attention: str
) -> None:
    """Perturbing the input after patch ``p`` leaves the predictions at patches ≤ p unchanged
    once the normalisation statistics are held fixed (they depend on the whole window; with
    the window's own statistics every prediction moves, which the last assertion shows)."""
    model = _model(variant, attention)
    x = _x()
    ref = model.trace(x)
    stats = (ref.mean, ref.std)
    for p in range(4):
        first_late_step = 8 * (p + 1) - 3  # patch p + 1 starts here (3 padded steps)
        late = x.clone()
        late[:, first_late_step:] += 0.5
        tr = model.trace(late, stats=stats)
        torch.testing.assert_close(
            tr.next_patch[:, :, : p + 1], ref.next_patch[:, :, : p + 1], rtol=1e-12, atol=1e-12
        )
        assert (tr.next_patch[:, :, p + 1] - ref.next_patch[:, :, p + 1]).abs().max() > 1e-6
    moved = model.trace(late).next_patch  # own statistics: patch 0 sees the shifted mean
    assert (moved[:, :, 0] - ref.next_patch[:, :, 0]).abs().max() > 1e-6


def test_aux_loss_is_the_teacher_forced_next_patch_mse() -> None:
    model = _model().train()  # dropout 0: train and eval compute the same function
    x = _x()
    model(x)
    aux = model.aux_loss
    assert aux is not None and aux.dim() == 0 and torch.isfinite(aux)
    tr = model.trace(x)
    hand = (tr.next_patch[:, :, :4] - tr.patches[:, :, 1:]).pow(2).mean()
    torch.testing.assert_close(aux, hand)
    model.config.aux_loss_weight = 0.25
    model(x)
    assert model.aux_loss is not None
    torch.testing.assert_close(model.aux_loss, 0.25 * hand)
    model.eval()
    model(x)
    assert model.aux_loss is None


def test_aux_loss_with_one_patch_is_zero() -> None:
    torch.manual_seed(0)
    model = SAMoVAR(SAMoVARConfig(num_series=2, lookback=6, horizon=8, n_heads=2)).train()
    out = model(torch.randn(3, 6, 2, 1))
    assert out.shape == (3, 8, 2, 1)
    assert model.aux_loss is not None and model.aux_loss.item() == 0.0


@pytest.mark.parametrize(("variant", "attention"), KINDS)
def test_aux_loss_falls_when_overfitting_one_batch(variant: str, attention: str) -> None:
    model = _model(variant, attention).float().train()
    x = _x().float()
    y = torch.randn(2, 8, 3, 1, generator=torch.Generator().manual_seed(5))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        opt.zero_grad()
        out = model(x)
        assert model.aux_loss is not None and torch.isfinite(model.aux_loss)
        history.append(model.aux_loss.item())
        ((out - y).pow(2).mean() + model.aux_loss).backward()
        opt.step()
    assert history[-1] < 0.5 * history[0], history[::10]


def test_fixedvar_queries_and_values_do_not_depend_on_the_data() -> None:
    model = _model("fixedvar")
    assert isinstance(model.backbone, VarBackbone)
    a, b = (model.trace(_x(seed=s)).backbone for s in (1, 2))
    assert a is not None and b is not None
    assert not torch.allclose(a.x0, b.x0)
    for (qa, va), (qb, vb) in zip(
        model.backbone.queries_values(a.x0), model.backbone.queries_values(b.x0)
    ):
        torch.testing.assert_close(qa, qb, rtol=0, atol=0)
        torch.testing.assert_close(va, vb, rtol=0, atol=0)


def test_eala_variant_differs_from_the_linear_one() -> None:
    lin, eala = _model("samovar", "linear"), _model("samovar", "eala")
    eala.load_state_dict(lin.state_dict())  # same weights, only the kernel differs
    x = _x()
    assert (lin(x) - eala(x)).abs().max() > 1e-6
    with pytest.raises(ConfigError, match="theta"):
        SAMoVARConfig.from_options(
            num_series=3, lookback=37, horizon=8, attention="eala", eala_theta="bad"
        )


def test_old_and_new_theta_names_build_the_same_spec() -> None:
    # run configs written before AttentionSpec spell the θ rule and the path eala_theta/eala_impl
    old = build("samovar", num_nodes=3, in_steps=37, out_steps=8, attention="eala",
                eala_theta="gauss", eala_impl="quadratic")  # fmt: skip
    new = build("samovar", num_nodes=3, in_steps=37, out_steps=8, attention="eala",
                theta="gauss", impl="quadratic")  # fmt: skip
    assert old.config == new.config
    assert (old.config.attention.theta, old.config.attention.impl) == ("gauss", "quadratic")
    with pytest.raises(ConfigError, match="given twice"):
        build("samovar", num_nodes=3, in_steps=37, out_steps=8, theta="gauss", eala_theta="paper")
