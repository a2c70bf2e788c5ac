"""SAMoVAR's layers: the patch tokenizer, the VAR-form attention backbone (aligned attention
layers and the structural matrix ``S = L·U``) and the LinTrans control's decoder blocks.

:class:`~linearcast.models.samovar.SAMoVAR` puts them together; its module docstring says how
they follow the released code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.models.samovar_config import SAMoVARConfig
from linearcast.nn import make_kernel

_NORM_EPS = 1e-5  # the released RMSNorm
_HEAD_NORM_EPS = 1e-8  # the released per-head RMSNorm
_STD_EPS = 1e-8  # added to the instance std


class _HeadRMSNorm(nn.Module):
    """RMSNorm over each head's slice with a learnable ``[H, d_h]`` weight; ``x: [..., H, d_h]``."""

    def __init__(self, n_heads: int, d_head: int, eps: float = _HEAD_NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_heads, d_head))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class _MLP(nn.Module):
    """``Linear(d, 4d) → GELU → Linear(4d, d) → dropout``."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


def _to_heads(x: Tensor, n_heads: int) -> Tensor:
    """``[B', T, d] → [B', H, T, d_h]``."""
    b, t, d = x.shape
    return x.reshape(b, t, n_heads, d // n_heads).transpose(1, 2)


def _from_heads(x: Tensor) -> Tensor:
    """``[B', H, T, d_h] → [B', T, d]``."""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class PatchTokenizer(nn.Module):
    """Instance normalisation, patching and the interleaved exogenous/endogenous tokens.

    Per series and patch ``p`` (length ``s``): the endogenous token is ``RMSNorm(Linear(s→d)
    (patch))``; the exogenous token mixes the channels at each step with ``Linear(C→C)``, then
    ``Linear(s→d)``, then RMSNorm. Tokens are interleaved ``[ex_1, en_1, ex_2, en_2, ...]`` per
    series, embeddings are added to the dropped-out tokens, and a final RMSNorm is applied.

    Embeddings (``paired=True``, SAMoVAR/FixedVAR): segment position shared by each ex/en pair,
    per-series per-token position, ex/en type, per-series type. ``paired=False`` (LinTrans):
    per-token position and per-series per-token position only.
    """

    def __init__(self, cfg: SAMoVARConfig, *, paired: bool) -> None:
        super().__init__()
        c, d, s, t = cfg.num_series, cfg.width, cfg.horizon, cfg.n_tokens
        self.cfg = cfg
        self.paired = paired
        self.channel_mix = nn.Linear(c, c)
        self.ex_proj = nn.Linear(s, d)
        self.en_proj = nn.Linear(s, d)
        self.ex_norm = nn.RMSNorm(d, eps=_NORM_EPS)
        self.en_norm = nn.RMSNorm(d, eps=_NORM_EPS)
        self.pos_emb = nn.Parameter(0.02 * torch.randn(cfg.n_segments if paired else t, d))
        self.series_pos_emb = nn.Parameter(0.02 * torch.randn(c, t, d))
        if paired:
            self.type_emb = nn.Parameter(0.02 * torch.randn(2, d))
            self.series_type_emb = nn.Parameter(0.02 * torch.randn(c, 2, d))
        self.dropout = nn.Dropout(cfg.dropout)
        self.pre_norm = nn.RMSNorm(d, eps=_NORM_EPS)

    def normalization_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean of the last ``s`` steps and std of the whole window (+1e-8).

        Args:
            x: ``[B, C, L]``.

        Returns:
            ``(mean, std)``, each ``[B, C, 1]``.
        """
        mean = x[:, :, -self.cfg.horizon :].mean(dim=2, keepdim=True)
        std = x.std(dim=2, keepdim=True) + _STD_EPS
        return mean, std

    def segment(self, z: Tensor) -> Tensor:
        """Left zero-padding and patching, ``[B, C, L] → [B, C, N_seg, s]``."""
        b, c, _ = z.shape
        z = F.pad(z, (self.cfg.pad_len, 0))
        return z.reshape(b, c, self.cfg.n_segments, self.cfg.horizon)

    def embed(self, patches: Tensor) -> Tensor:
        """Tokens of the backbone, ``[B, C, N_seg, s] → [B·C, 2·N_seg, d]``."""
        b, c, n, _ = patches.shape
        d = self.cfg.width
        ex = self.channel_mix(patches.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, C, N, s)
        ex = self.ex_norm(self.ex_proj(ex))  # (B, C, N, d)
        en = self.en_norm(self.en_proj(patches))  # (B, C, N, d)
        tok = torch.stack([ex, en], dim=3).reshape(b, c, 2 * n, d)  # ex_1, en_1, ex_2, ...
        if self.paired:
            emb = (
                self.pos_emb.repeat_interleave(2, dim=0)  # (2N, d) shared by each ex/en pair
                + self.series_pos_emb  # (C, 2N, d)
                + self.type_emb.repeat(n, 1)  # (2N, d)
                + self.series_type_emb.repeat(1, n, 1)  # (C, 2N, d)
            )
        else:
            emb = self.pos_emb + self.series_pos_emb
        tok = self.pre_norm(self.dropout(tok) + emb)  # (B, C, 2N, d)
        return tok.reshape(b * c, 2 * n, d)


class _VarAttention(nn.Module):
    """One SAMoVAR attention layer: keys = previous output, queries/values from ``x0``.

    ``variant="fixedvar"``: queries and values are free parameters per series and token.
    """

    def __init__(self, cfg: SAMoVARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, dh, d = cfg.n_heads, cfg.d_head, cfg.width
        self.fixed = cfg.variant == "fixedvar"
        if self.fixed:
            shape = (cfg.num_series, h, cfg.n_tokens, dh)
            self.fixed_q = nn.Parameter(0.02 * torch.randn(shape))
            self.fixed_v = nn.Parameter(0.02 * torch.randn(shape))
        else:
            self.q_proj = nn.Linear(d, d)
            self.v_proj = nn.Linear(d, d)
            self.q_norm = _HeadRMSNorm(h, dh)
            self.v_norm = _HeadRMSNorm(h, dh)
        self.dropout = nn.Dropout(cfg.dropout)
        self.kernel = make_kernel(cfg.attention, num_heads=h)

    def queries_values(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """``x0: [B·C, T, d]`` → ``(q, v)``, each ``[B·C, H, T, d_h]``."""
        bc, t, _ = x0.shape
        h, dh = self.cfg.n_heads, self.cfg.d_head
        if self.fixed:
            reps = bc // self.cfg.num_series  # rows are ordered (batch, series)
            q = self.fixed_q[:, :, :t].repeat(reps, 1, 1, 1)
            v = self.fixed_v[:, :, :t].repeat(reps, 1, 1, 1)
            return q.to(x0.dtype), v.to(x0.dtype)
        q = self.q_norm(self.q_proj(x0).reshape(bc, t, h, dh)).transpose(1, 2)
        v = self.v_norm(self.v_proj(x0).reshape(bc, t, h, dh)).transpose(1, 2)
        return q, v

    def forward(self, keys: Tensor, x0: Tensor) -> Tensor:
        """``keys, x0: [B·C, T, d] → o: [B·C, T, d]``."""
        q, v = self.queries_values(x0)  # (B·C, H, T, d_h)
        o = self.kernel(q, _to_heads(keys, self.cfg.n_heads), v)  # (B·C, H, T, d_h)
        return self.dropout(_from_heads(o))


@dataclass
class BackboneTrace:
    """Intermediate tensors of the VAR backbone (``B' = B·C``, ``T = 2·N_seg``).

    Attributes:
        x0: ``[B', T, d]`` the VAR input (after the MLP stack and its RMSNorm).
        layer_outputs: per attention layer ``o^(m)``, each ``[B', T, d]``.
        y: ``[B', N_seg, d]`` ``x0 + Sᵀ Σ_m o^(m)`` at the endogenous positions.
    """

    x0: Tensor
    layer_outputs: list[Tensor]
    y: Tensor


class StructuralMatrix(nn.Module):
    """Per-head ``S = L·U``: unit lower-triangular ``L``, upper-triangular ``U`` with a softplus
    diagonal — invertible by construction (``det S = Π softplus(·) > 0``)."""

    def __init__(self, n_heads: int, d_head: int) -> None:
        super().__init__()
        self.raw = nn.Parameter(
            math.sqrt(0.02 / math.sqrt(d_head)) * torch.randn(n_heads, d_head, d_head)
        )

    def factors(self) -> tuple[Tensor, Tensor]:
        """``(L, U)``, each ``[H, d_h, d_h]``."""
        eye = torch.eye(self.raw.shape[-1], dtype=self.raw.dtype, device=self.raw.device)
        lower = torch.tril(self.raw, -1) + eye
        upper = torch.triu(self.raw, 1) + torch.diag_embed(
            F.softplus(torch.diagonal(self.raw, dim1=-2, dim2=-1))
        )
        return lower, upper

    def forward(self) -> Tensor:
        """``S = L·U``, ``[H, d_h, d_h]``."""
        lower, upper = self.factors()
        return lower @ upper


class VarBackbone(nn.Module):
    """SAMoVAR/FixedVAR backbone: MLP stack, RMSNorm, aligned attention stack, ``x0 + Sᵀ Σ o``."""

    def __init__(self, cfg: SAMoVARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.mlp_norms = nn.ModuleList(
            [nn.RMSNorm(d, eps=_NORM_EPS) for _ in range(cfg.n_mlp_layers)]
        )
        self.mlps = nn.ModuleList([_MLP(d, cfg.dropout) for _ in range(cfg.n_mlp_layers)])
        self.var_input_norm = nn.RMSNorm(d, eps=_NORM_EPS)
        self.attn = nn.ModuleList([_VarAttention(cfg) for _ in range(cfg.n_attn_layers)])
        self.structural = StructuralMatrix(cfg.n_heads, cfg.d_head)

    def var_input(self, tokens: Tensor) -> Tensor:
        """MLP stack then RMSNorm, ``[B', T, d] → x0: [B', T, d]`` (token-wise)."""
        x = tokens
        for norm, mlp in zip(self.mlp_norms, self.mlps):
            x = x + mlp(norm(x))
        return self.var_input_norm(x)

    def queries_values(self, x0: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each attention layer's ``(q, v)``, ``[B', H, T, d_h]`` each, from ``x0: [B', T, d]``."""
        out = []
        for layer in self.attn:
            assert isinstance(layer, _VarAttention)
            out.append(layer.queries_values(x0))
        return out

    def trace(self, tokens: Tensor) -> BackboneTrace:
        """Run the backbone on ``tokens: [B', T, d]`` and keep the intermediates."""
        x0 = self.var_input(tokens)  # (B', T, d)
        keys, outs = x0, []
        for layer in self.attn:
            keys = layer(keys, x0)  # (B', T, d); no residual between attention layers
            outs.append(keys)
        bc, t, d = x0.shape
        mixed = torch.stack(outs).sum(dim=0)[:, 1::2]  # (B', N_seg, d) endogenous positions
        mixed = mixed.reshape(bc, t // 2, self.cfg.n_heads, self.cfg.d_head)
        mixed = torch.einsum("bnhd,hde->bnhe", mixed, self.structural()).reshape(bc, t // 2, d)
        return BackboneTrace(x0=x0, layer_outputs=outs, y=x0[:, 1::2] + mixed)

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B', T, d] → y: [B', N_seg, d]``."""
        return self.trace(tokens).y


class _LinTransBlock(nn.Module):
    """Pre-norm decoder block with unnormalised causal linear attention (Q/K/V/out)."""

    def __init__(self, cfg: SAMoVARConfig) -> None:
        super().__init__()
        d = cfg.width
        self.cfg = cfg
        self.attn_norm = nn.RMSNorm(d, eps=_NORM_EPS)
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.c_proj = nn.Linear(d, d)
        self.mlp_norm = nn.RMSNorm(d, eps=_NORM_EPS)
        self.mlp = _MLP(d, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.kernel = make_kernel(cfg.attention, num_heads=cfg.n_heads)

    def forward(self, x: Tensor) -> Tensor:
        h = self.cfg.n_heads
        a = self.attn_norm(x)  # (B', T, d)
        # the released LinTrans drops out the key input too
        q, k, v = (
            _to_heads(t, h) for t in (self.q_proj(a), self.k_proj(self.dropout(a)), self.v_proj(a))
        )
        x = x + self.dropout(self.c_proj(_from_heads(self.kernel(q, k, v))))
        return x + self.mlp(self.mlp_norm(x))


class _LinTransBackbone(nn.Module):
    def __init__(self, cfg: SAMoVARConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_LinTransBlock(cfg) for _ in range(cfg.n_attn_layers)])

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B', T, d] → [B', N_seg, d]`` (endogenous positions)."""
        x = tokens
        for block in self.blocks:
            x = block(x)
        return x[:, 1::2]


__all__ = ["BackboneTrace", "PatchTokenizer", "StructuralMatrix", "VarBackbone"]
