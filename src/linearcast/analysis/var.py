"""The exact VAR form of SAMoVAR (and FixedVAR), extracted from one forward pass.

Per head ``h`` (width ``d_h``) and attention layer ``m`` the aligned layer is
``o^(m)_t = Σ_{i≤t} (q^(m)_t·o^(m−1)_i) v^(m)_i = Σ_{i≤t} A^(m)_{t,i} o^(m−1)_i`` with rank-1 lag
matrices ``A^(m)_{t,i} = v^(m)_i q^(m)_tᵀ`` (``o^(0) = x0``; the full ``d×d`` matrix is
block-diagonal over heads). Unrolling the stack gives ``o^(m)_t = Σ_{j≤t} B^(m)_{t,j} x0_j`` with

    B^(1)_{t,j} = A^(1)_{t,j},   B^(m)_{t,j} = Σ_{i=j..t} A^(m)_{t,i} B^(m−1)_{i,j},

i.e. ``B^(m) = A^(m) B^(m−1)`` as block lower-triangular matrices, and the backbone output at the
endogenous positions is ``y_t = x0_t + Sᵀ Σ_m Σ_{j≤t} B^(m)_{t,j} x0_j``. All of this is exact:
the coefficients are data-dependent (q and v are functions of ``x0``), but given the window they
reproduce the forward pass to rounding (float64: ~1e-15 relative).

Two projections towards the forecast:

- **Token contributions (exact).** The output head is ``RMSNorm`` then ``Linear(d→s)``; for a
  given window the RMS of ``y`` at the forecast token is a number, so the normalised forecast is
  ``b + G x0_T + Σ_j G W_{T,j} x0_j`` with ``G = W_out·diag(g)/rms(y_T)`` and
  ``W = Sᵀ Σ_m B^(m)``: an exact additive split over the tokens (two per input patch).
- **Time-domain lags (linearised).** ``x0`` is a nonlinear function of the input (patch
  embeddings, RMSNorms, the MLP stack), so input steps enter through a local linearisation:
  ``time_lags[b, c, k, c', ℓ−1] = ∂ŷ_{c,k} / ∂z_{c', L−ℓ}`` — the derivative of the normalised
  forecast of series ``c`` at horizon step ``k`` with respect to the normalised input of series
  ``c'`` at lag ``ℓ`` (``ℓ = 1`` is the last observed step), holding the VAR coefficients
  (``q``, ``v``, hence ``W``) and the output RMS at their values for this window. It is the
  exact derivative of :func:`frozen_forecast`, not of the full model (which also moves the
  coefficients), and it is in instance-normalised units: in raw units multiply by
  ``std_c / std_c'`` (ignoring the dependence of the normalisation statistics on the input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.models.samovar import SAMoVAR, VarBackbone

#: Refuse time-domain Jacobians larger than this many elements (B·C·s·C·L).
MAX_TIME_LAG_ELEMENTS = 50_000_000


@dataclass
class VarCoefficients:
    """The VAR form of one SAMoVAR forward pass (``T = 2·N_seg`` tokens per series, ``M`` layers).

    Token ``2p`` is the exogenous and ``2p + 1`` the endogenous token of patch ``p``; lower
    triangles only (``[t, j]`` with ``j > t`` is zero).

    Attributes:
        layer_lags: ``[M, B, C, H, T, T, d_h, d_h]`` per head, ``B^(m)_{t,j}``.
        total: ``[B, C, H, T, T, d_h, d_h]`` per head, ``W_{t,j} = Sᵀ Σ_m B^(m)_{t,j}``.
        structural: ``[H, d_h, d_h]`` the structural matrix ``S``.
        x0: ``[B, C, T, d]`` the VAR input tokens.
        y: ``[B, C, N_seg, d]`` the forward pass's backbone output (endogenous positions).
        output_map: ``[B, C, s, d]`` ``G = W_out·diag(g)/rms(y_T)`` at the forecast token.
        output_bias: ``[s]`` the output head's bias.
        skip_contribution: ``[B, C, s]`` ``G x0_T``.
        token_contributions: ``[B, C, T, s]`` ``G W_{T,j} x0_j`` for every token ``j``.
        forecast: ``[B, C, s]`` the model's normalised forecast (``output_bias +
            skip_contribution + Σ_j token_contributions``).
        time_lags: ``[B, C, s, C, L]`` or None; see the module docstring (lag-ordered: index
            ``ℓ − 1`` is lag ``ℓ``).
        mean: ``[B, C, 1]`` instance-normalisation mean.
        std: ``[B, C, 1]`` instance-normalisation std.
    """

    layer_lags: Tensor
    total: Tensor
    structural: Tensor
    x0: Tensor
    y: Tensor
    output_map: Tensor
    output_bias: Tensor
    skip_contribution: Tensor
    token_contributions: Tensor
    forecast: Tensor
    time_lags: Tensor | None
    mean: Tensor
    std: Tensor

    @property
    def n_heads(self) -> int:
        """H."""
        return self.total.shape[2]

    @property
    def n_tokens(self) -> int:
        """T = 2·N_seg."""
        return self.total.shape[3]

    def dense_total(self) -> Tensor:
        """``W`` as full token-space matrices, ``[B, C, T, T, d, d]`` (block-diagonal in heads)."""
        return block_diagonal(self.total)

    def dense_layer(self, m: int) -> Tensor:
        """``B^(m+1)`` (0-based ``m``) as full matrices, ``[B, C, T, T, d, d]``."""
        return block_diagonal(self.layer_lags[m])


def block_diagonal(blocks: Tensor) -> Tensor:
    """Per-head blocks ``[..., H, T, T, d_h, d_h]`` → ``[..., T, T, H·d_h, H·d_h]``."""
    *lead, h, t, t2, dh, _ = blocks.shape
    out = blocks.new_zeros(*lead, t, t2, h * dh, h * dh)
    for i in range(h):
        out[..., i * dh : (i + 1) * dh, i * dh : (i + 1) * dh] = blocks[..., i, :, :, :, :]
    return out


def _check_model(model: object) -> SAMoVAR:
    if not isinstance(model, SAMoVAR) or not isinstance(model.backbone, VarBackbone):
        raise ConfigError(
            "var_coefficients needs a SAMoVAR or FixedVAR model (variant 'samovar' or "
            f"'fixedvar'); found {type(model).__name__}"
            + (f" with variant={model.config.variant!r}" if isinstance(model, SAMoVAR) else "")
        )
    if model.config.attention.kernel != "linear":
        raise ConfigError(
            "var_coefficients is exact only for the unnormalised linear attention; the model "
            f"uses attention={model.config.attention.kernel!r} (EALA weights are affine in the "
            "keys, with a per-query normaliser θ, and have no rank-1 VAR form)"
        )
    return model


def var_coefficients(model: SAMoVAR, x: Tensor, *, time_domain: bool = True) -> VarCoefficients:
    """Extract the exact VAR lag matrices of ``model`` on the windows ``x``.

    The model is run in eval mode (dropout off) and its training flag restored afterwards. Use
    float64 (``model.double()``) for exactness checks; memory is
    ``O(M·B·C·H·T²·d_h²)`` for the lag matrices plus ``O(B·C²·s·L)`` for ``time_lags``.

    Args:
        model: a SAMoVAR or FixedVAR model with ``attention="linear"``.
        x: ``[B, L, C, C_in]``, as the model's forward takes it.
        time_domain: also compute ``time_lags`` (``C·s`` backward passes, vectorised).

    Returns:
        A :class:`VarCoefficients`.

    Raises:
        ConfigError: the model has no exact VAR form (LinTrans, EALA), or ``time_lags`` would
            exceed :data:`MAX_TIME_LAG_ELEMENTS`.
    """
    model = _check_model(model)
    cfg = model.config
    backbone = model.backbone
    assert isinstance(backbone, VarBackbone)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            tr = model.trace(x)
            assert tr.backbone is not None
            x0 = tr.backbone.x0  # (B·C, T, d)
            bc, t, d = x0.shape
            b, c = bc // cfg.num_series, cfg.num_series
            h, dh = cfg.n_heads, cfg.d_head
            s_mat = backbone.structural()  # (H, d_h, d_h)
            layer_lags, total = _lag_matrices(backbone, x0, s_mat, b, c)

            y = tr.backbone.y  # (B·C, N_seg, d)
            y_last = y[:, -1]  # (B·C, d)
            norm = model.final_norm
            eps = norm.eps if norm.eps is not None else torch.finfo(y.dtype).eps
            inv_rms = torch.rsqrt(y_last.pow(2).mean(dim=-1, keepdim=True) + eps)  # (B·C, 1)
            assert norm.weight is not None
            g_map = model.head.weight * norm.weight  # (s, d)
            out_map = g_map[None] * inv_rms[:, :, None]  # (B·C, s, d)
            x0_heads = x0.reshape(b, c, t, h, dh)
            w_last = total[:, :, :, -1]  # (B, C, H, T(j), d_h, d_h)
            contrib_d = torch.einsum("bchjae,bcjhe->bcjha", w_last, x0_heads).reshape(b, c, t, d)
            out_map = out_map.reshape(b, c, -1, d)
            token_contrib = torch.einsum("bcsd,bcjd->bcjs", out_map, contrib_d)
            skip = torch.einsum("bcsd,bcd->bcs", out_map, x0.reshape(b, c, t, d)[:, :, -1])
        coeffs = VarCoefficients(
            layer_lags=layer_lags,
            total=total,
            structural=s_mat,
            x0=x0.reshape(b, c, t, d),
            y=y.reshape(b, c, -1, d),
            output_map=out_map,
            output_bias=model.head.bias.detach(),
            skip_contribution=skip,
            token_contributions=token_contrib,
            forecast=tr.next_patch[:, :, -1],
            time_lags=None,
            mean=tr.mean,
            std=tr.std,
        )
        if time_domain:
            coeffs.time_lags = _time_lags(model, coeffs, tr.patches)
        return coeffs
    finally:
        model.train(was_training)


def _lag_matrices(
    backbone: VarBackbone, x0: Tensor, s_mat: Tensor, b: int, c: int
) -> tuple[Tensor, Tensor]:
    """Each layer's lag matrices ``B^(m)`` and ``Sᵀ Σ_m B^(m)`` from ``x0: [B·C, T, d]``.

    Returns:
        ``(layer_lags [M, B, C, H, T, T, d_h, d_h], total [B, C, H, T, T, d_h, d_h])``.
    """
    bc, t, _ = x0.shape
    h, dh = s_mat.shape[0], s_mat.shape[-1]
    mask = torch.ones(t, t, dtype=torch.bool, device=x0.device).tril()
    prev: Tensor | None = None
    lags = []
    for q, v in backbone.queries_values(x0):  # (B·C, H, T, d_h) each
        # A[(t,a),(i,c)] = [i ≤ t] v_i[a] q_t[c]: block lower-triangular, rank-1 blocks
        a = torch.einsum("bhia,bhtc->bhtaic", v, q) * mask[:, None, :, None]
        a = a.reshape(bc, h, t * dh, t * dh)
        prev = a if prev is None else a @ prev  # B^(m) = A^(m) B^(m−1)
        lags.append(prev)
    layer_big = torch.stack(lags)  # (M, B·C, H, T·d_h, T·d_h)
    total_big = _apply_st(s_mat, layer_big.sum(0), t, dh)  # Sᵀ Σ_m B^(m)
    layer_lags = _to_blocks(layer_big, t, dh).reshape(len(lags), b, c, h, t, t, dh, dh)
    total = _to_blocks(total_big, t, dh).reshape(b, c, h, t, t, dh, dh)
    return layer_lags, total


def _apply_st(s_mat: Tensor, big: Tensor, t: int, dh: int) -> Tensor:
    """``Sᵀ`` applied to the row blocks of ``big: [B', H, T·d_h, T·d_h]`` (per head)."""
    bc, h = big.shape[:2]
    rows = big.reshape(bc, h, t, dh, t * dh)
    return torch.einsum("hea,bhtey->bhtay", s_mat, rows).reshape(bc, h, t * dh, t * dh)


def _to_blocks(big: Tensor, t: int, dh: int) -> Tensor:
    """``[..., T·d_h, T·d_h] → [..., T, T, d_h, d_h]``."""
    lead = big.shape[:-2]
    return big.reshape(*lead, t, dh, t, dh).transpose(-3, -2)


def reconstruct(coeffs: VarCoefficients, x0: Tensor | None = None) -> Tensor:
    """Rebuild ``y_t = x0_t + Sᵀ Σ_m Σ_{j≤t} B^(m)_{t,j} x0_j`` at the endogenous positions.

    Args:
        coeffs: from :func:`var_coefficients`.
        x0: ``[B, C, T, d]`` tokens to feed through the (fixed) coefficients; default the
            window's own ``coeffs.x0``.

    Returns:
        ``[B, C, N_seg, d]``; with the default ``x0`` it equals ``coeffs.y`` to rounding.
    """
    x0 = coeffs.x0 if x0 is None else x0
    b, c, t, d = x0.shape
    h = coeffs.n_heads
    xh = x0.reshape(b, c, t, h, d // h)
    mixed = torch.einsum("bchtjae,bcjhe->bctha", coeffs.total, xh).reshape(b, c, t, d)
    return (x0 + mixed)[:, :, 1::2]


def frozen_forecast(model: SAMoVAR, coeffs: VarCoefficients, z: Tensor) -> Tensor:
    """The normalised forecast with the VAR coefficients and output RMS of ``coeffs`` held fixed.

    Everything before ``x0`` (patching, embeddings, RMSNorms, MLPs) is recomputed from ``z``;
    what follows is the fixed affine map ``ŷ = b + G (x0_T + Σ_j W_{T,j} x0_j)``. At the window
    the coefficients came from, it equals the model's normalised forecast.

    Args:
        model: the model the coefficients were extracted from.
        coeffs: from :func:`var_coefficients`.
        z: ``[B, C, L]`` instance-normalised input (``(x − mean) / std``).

    Returns:
        ``[B, C, s]``.
    """
    backbone = model.backbone
    assert isinstance(backbone, VarBackbone)
    b, c, _ = z.shape
    x0 = backbone.var_input(model.tokenizer.embed(model.tokenizer.segment(z)))  # (B·C, T, d)
    t, d = x0.shape[1:]
    h = coeffs.n_heads
    xh = x0.reshape(b, c, t, h, d // h)
    y_last = x0.reshape(b, c, t, d)[:, :, -1] + torch.einsum(
        "bchjae,bcjhe->bcha", coeffs.total[:, :, :, -1], xh
    ).reshape(b, c, d)
    return torch.einsum("bcsd,bcd->bcs", coeffs.output_map, y_last) + coeffs.output_bias


def _time_lags(model: SAMoVAR, coeffs: VarCoefficients, patches: Tensor) -> Tensor:
    """``∂ frozen_forecast / ∂ z``, ``[B, C, s, C, L]`` in lag order."""
    cfg = model.config
    b, c = patches.shape[:2]
    s, length = cfg.horizon, cfg.lookback
    size = b * c * s * c * length
    if size > MAX_TIME_LAG_ELEMENTS:
        raise ConfigError(
            f"time_lags would hold {size:,} elements (B={b}, C={c}, s={s}, L={length}); pass "
            "time_domain=False or fewer windows"
        )
    z = patches.reshape(b, c, -1)[:, :, cfg.pad_len :].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        f = frozen_forecast(model, coeffs, z)  # (B, C, s)
        eye = torch.eye(c * s, dtype=f.dtype, device=f.device).reshape(c * s, 1, c, s)
        (jac,) = torch.autograd.grad(
            f, z, grad_outputs=eye.expand(-1, b, -1, -1), is_grads_batched=True
        )  # (C·s, B, C, L)
    jac = jac.reshape(c, s, b, c, length).permute(2, 0, 1, 3, 4)  # (B, C, s, C', L)
    return jac.flip(-1)


def lag_norms(coeffs: VarCoefficients) -> dict[str, Tensor]:
    """Sizes of the lags seen by the forecast token, averaged over windows and series.

    Returns:
        ``"en"``, ``"ex"``: ``[N_seg]`` Frobenius norms ``‖W_{T,j}‖`` of the total coefficient
        of the endogenous / exogenous token of the patch ``k`` patches back (``k = 0`` is the
        last input patch); ``"layers_en"``: ``[M, N_seg]`` the same for each ``B^(m)``;
        ``"time_own"``, ``"time_cross"`` (when ``time_lags`` exists): ``[L]`` mean absolute
        time-domain coefficient per lag, own series and other series.
    """
    fro_total = coeffs.total[:, :, :, -1].pow(2).sum(dim=(2, 4, 5)).sqrt()  # (B, C, T)
    fro_layers = coeffs.layer_lags[:, :, :, :, -1].pow(2).sum(dim=(3, 5, 6)).sqrt()  # (M, B, C, T)
    out = {
        "en": fro_total[..., 1::2].mean(dim=(0, 1)).flip(-1),
        "ex": fro_total[..., 0::2].mean(dim=(0, 1)).flip(-1),
        "layers_en": fro_layers[..., 1::2].mean(dim=(1, 2)).flip(-1),
    }
    if coeffs.time_lags is not None:
        tl = coeffs.time_lags.abs()  # (B, C, s, C', L)
        c = tl.shape[1]
        own = torch.eye(c, dtype=torch.bool, device=tl.device)[None, :, None, :, None]
        out["time_own"] = (tl * own).sum(dim=(0, 1, 2, 3)) / (tl.shape[0] * c * tl.shape[2])
        if c > 1:
            cross = (tl * ~own).sum(dim=(0, 1, 2, 3))
            out["time_cross"] = cross / (tl.shape[0] * c * (c - 1) * tl.shape[2])
    return out


def plot_var_coefficients(coeffs: VarCoefficients, path: str | Path) -> Path:
    """Plot lag-matrix norms against the lag and save the figure.

    Left: token space, ``‖W_{T,j}‖`` (endogenous and exogenous tokens) and each layer's
    ``‖B^(m)_{T,j}‖`` against the lag in patches. Right (when ``time_lags`` exists): mean
    ``|∂ŷ/∂z|`` against the lag in steps, own series and other series.

    Args:
        coeffs: from :func:`var_coefficients`.
        path: output file (the suffix picks the format, e.g. ``.png``, ``.pdf``).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    norms = {k: v.detach().double().cpu().numpy() for k, v in lag_norms(coeffs).items()}
    has_time = "time_own" in norms
    fig = Figure(figsize=(11 if has_time else 6, 4), layout="constrained")
    FigureCanvasAgg(fig)  # Agg without touching pyplot or the global backend
    axes = fig.subplots(1, 2 if has_time else 1, squeeze=False)[0]
    ax = axes[0]
    lag = range(len(norms["en"]))
    ax.semilogy(lag, norms["en"], "o-", label="total, endogenous")
    ax.semilogy(lag, norms["ex"], "s-", label="total, exogenous")
    for m, row in enumerate(norms["layers_en"]):
        ax.semilogy(lag, row, ":", label=f"layer {m + 1}, endogenous")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("lag (patches before the forecast token's patch)")
    ax.set_ylabel("Frobenius norm of the lag matrix")
    ax.set_title("token-space VAR coefficients (exact)")
    ax.legend(fontsize="small")
    if has_time:
        ax2 = axes[1]
        steps = range(1, len(norms["time_own"]) + 1)
        ax2.plot(steps, norms["time_own"], label="own series")
        if "time_cross" in norms:
            ax2.plot(steps, norms["time_cross"], label="other series")
        ax2.set_xlabel("lag (input steps; 1 = last observed)")
        ax2.set_ylabel("mean |∂ forecast / ∂ input| (normalised units)")
        ax2.set_title("time-domain lags (frozen coefficients)")
        ax2.legend(fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


__all__ = [
    "MAX_TIME_LAG_ELEMENTS",
    "VarCoefficients",
    "block_diagonal",
    "frozen_forecast",
    "lag_norms",
    "plot_var_coefficients",
    "reconstruct",
    "var_coefficients",
]
