"""SAMoVAR: linear attention aligned with a vector autoregression (Lu & Yang, ICML 2025).

"Linear Transformers as VAR Models: Aligning Autoregressive Attention Mechanisms with
Autoregressive Forecasting"; official code LJC-FVNR/Structural-Aligned-Mixture-of-VAR
(``models/AutoregressiveAlignment.py`` for SAMoVAR and FixedVAR, ``models/Autoregressive.py`` for
LinTrans). This file follows the released code, not the paper, where the two differ:

- instance normalisation subtracts the mean of the LAST ``s`` input steps (not the whole window)
  and divides by the unbiased std of the whole window plus 1e-8;
- the structural matrix ``S = L·U`` (per head, unit lower-triangular times upper-triangular with
  a softplus diagonal) multiplies the summed attention outputs as ``Sᵀ Σ_m o^(m)`` at the
  endogenous positions only, added to ``x0`` there; no inverse of S is applied anywhere;
- the width defaults to ``d = 32·floor(sqrt(C))`` (the run script's comment says 16·sqrt(C));
- every attention layer's output goes through dropout before it becomes the next layer's keys
  and before the sum (this matters only in training).

Deliberate differences from the released code (none changes the function in eval mode):
the Transformer there builds per-layer pre-norms (``pns``) that the SAMoVAR path never uses
(we don't create them); its RMSNorms compute in float32 whatever the input dtype (ours compute in
the input dtype, so that the float64 VAR-extraction tests are exact); position tables are sized to
the tokens actually used; FixedVAR's free queries/values are sized to the token count instead of
a fixed 128. The released script's gradient accumulation zeroes gradients every batch (3 of 4
batches are discarded on PEMS/Solar/ECL/Traffic); training lives in the engine, which does not
copy that.

Variants (``SAMoVARConfig.variant``):

- ``"samovar"``: all MLP blocks first, then attention layers whose keys are the previous layer's
  raw output (``o^(0) = x0``) and whose queries/values come from ``x0``;
  ``o^(m)_t = Σ_{i≤t} (q^(m)_t·o^(m−1)_i) v^(m)_i`` — causal, unnormalised, no scale, no output
  projection, no residual. ``y_t = x0_t + Sᵀ Σ_m o^(m)_t``. Exactly a dynamic VAR
  (:func:`linearcast.analysis.var_coefficients` extracts it).
- ``"fixedvar"``: the same structure with queries and values free parameters per series and
  token position (only the keys depend on the data), no q/v RMSNorm.
- ``"lintrans"``: standard pre-norm decoder blocks ``x + c_proj(attn(RMSNorm(x)))``,
  ``x + MLP(RMSNorm(x))`` with Q/K/V/out projections and the same unnormalised causal linear
  attention; per-token position table, no ex/en type embeddings (as the released LinTrans).

``attention="eala"`` replaces the unnormalised kernel with causal EALA (``eala.md`` §4) — beyond the
paper: the weights become ``(1 + x_j/θ)/n`` on prefix-centred scaled scores, so the layer is an
affine combination of the values and no longer an exact VAR in the keys. Both kernels are
:mod:`linearcast.nn` kernel modules built from the config's :class:`~linearcast.nn.AttentionSpec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options
from linearcast.nn import AttentionSpec, make_kernel, split_attention_options
from linearcast.nn.kernels import OPTION_NAMES

Variant = Literal["samovar", "lintrans", "fixedvar"]

#: The paper's token mixer: ``o_t = Σ_{j≤t} (q_t·k_j) v_j``, causal linear attention with no
#: feature map, no normaliser and no scale. With ``attention="eala"`` the kernel becomes causal
#: EALA with θ = ``gauss_hclamp`` (the other fields do not apply to EALA).
VAR_ATTENTION = AttentionSpec(
    "linear", causal=True, theta="gauss_hclamp", feature_map="identity", normalize=False
)

_NORM_EPS = 1e-5  # the released RMSNorm
_HEAD_NORM_EPS = 1e-8  # the released per-head RMSNorm
_STD_EPS = 1e-8  # added to the instance std


@dataclass
class SAMoVARConfig:
    """Configuration of SAMoVAR and its controls.

    Attributes:
        num_series: C, the number of series (N of the ``[B, T, N, C_in]`` contract).
        lookback: L, input steps.
        horizon: s, forecast steps; also the patch length.
        d_model: token width; None means ``32·floor(sqrt(C))`` (64 for C = 7).
        n_heads: attention heads; must divide ``d_model``.
        n_mlp_layers: MLP blocks (SAMoVAR runs all of them before the attention stack).
        n_attn_layers: attention layers (LinTrans: decoder blocks; needs equal MLP count).
        dropout: dropout rate (tokens, MLP output, attention output).
        attention: the causal token mixer: :data:`VAR_ATTENTION` (the paper's unnormalised
            identity-feature linear attention) or kernel ``"eala"`` (causal entropy-aligned
            linear attention, beyond the paper; θ and the path are the spec's, ``"auto"``
            picks quadratic for short token sequences and logs it). A kernel name stands for
            :data:`VAR_ATTENTION` with that kernel.
        variant: ``"samovar"``, ``"lintrans"`` or ``"fixedvar"``.
        aux_loss_weight: weight of the teacher-forced next-patch loss.
    """

    num_series: int
    lookback: int
    horizon: int
    d_model: int | None = None
    n_heads: int = 8
    n_mlp_layers: int = 3
    n_attn_layers: int = 3
    dropout: float = 0.1
    attention: AttentionSpec = VAR_ATTENTION
    variant: Variant = "samovar"
    aux_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("num_series", "lookback", "horizon", "n_heads"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"SAMoVAR needs {name} >= 1; found {getattr(self, name)}")
        if self.lookback < 2:
            raise ConfigError(
                f"SAMoVAR needs lookback >= 2 (instance normalisation uses the window's std); "
                f"found {self.lookback}"
            )
        if self.d_model is None:
            self.d_model = 32 * math.isqrt(self.num_series)
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"SAMoVAR needs n_heads to divide d_model; found d_model={self.d_model}, "
                f"n_heads={self.n_heads}"
            )
        if self.variant not in ("samovar", "lintrans", "fixedvar"):
            raise ConfigError(
                f"variant must be 'samovar', 'lintrans' or 'fixedvar'; found {self.variant!r}"
            )
        if isinstance(self.attention, str):
            self.attention = VAR_ATTENTION.with_options(attention=self.attention)
        if self.attention.kernel not in ("linear", "eala") or not self.attention.causal:
            raise ConfigError(
                "SAMoVAR attention must be the causal kernel 'linear' or 'eala'; found "
                f"{self.attention.kernel!r} (causal={self.attention.causal})"
            )
        if self.variant == "lintrans" and self.n_mlp_layers != self.n_attn_layers:
            raise ConfigError(
                "LinTrans interleaves attention and MLP blocks, so n_mlp_layers must equal "
                f"n_attn_layers; found {self.n_mlp_layers} and {self.n_attn_layers}"
            )
        if self.n_attn_layers < 1 or self.n_mlp_layers < 0:
            raise ConfigError(
                f"SAMoVAR needs n_attn_layers >= 1 and n_mlp_layers >= 0; found "
                f"{self.n_attn_layers} and {self.n_mlp_layers}"
            )

    @classmethod
    def from_options(
        cls, *, num_series: int, lookback: int, horizon: int, **options: Any
    ) -> SAMoVARConfig:
        """The config of flat options, as ``model_overrides`` and the registry give them: the
        fields, and the attention options (``attention``, ``theta``, ``impl``, ... — see
        :data:`linearcast.nn.kernels.OPTION_NAMES`) applied to :data:`VAR_ATTENTION`.

        Raises:
            ConfigError: an option that is not one (the known ones are named) or a bad value.
        """
        check_options("SAMoVAR", options, OPTIONS)
        attention, rest = split_attention_options(options)
        return cls(
            num_series=num_series,
            lookback=lookback,
            horizon=horizon,
            attention=VAR_ATTENTION.with_options(**attention),
            **rest,
        )

    @property
    def width(self) -> int:
        """The resolved ``d_model``."""
        assert self.d_model is not None
        return self.d_model

    @property
    def d_head(self) -> int:
        """Per-head width ``d_model / n_heads``."""
        return self.width // self.n_heads

    @property
    def pad_len(self) -> int:
        """Zeros padded on the left so that the lookback is a multiple of the horizon."""
        return (-self.lookback) % self.horizon

    @property
    def n_segments(self) -> int:
        """Patches per series, ``ceil(L / s)``."""
        return (self.lookback + self.pad_len) // self.horizon

    @property
    def n_tokens(self) -> int:
        """Tokens per series, two per patch (exogenous, endogenous)."""
        return 2 * self.n_segments


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


@dataclass
class SAMoVARTrace:
    """Everything one forward pass computes (``B' = B·C``, ``T = 2·N_seg``).

    Attributes:
        mean: ``[B, C, 1]`` instance-normalisation mean (last ``s`` steps).
        std: ``[B, C, 1]`` instance-normalisation std (+1e-8).
        patches: ``[B, C, N_seg, s]`` normalised, left-padded input patches.
        tokens: ``[B', T, d]`` backbone input.
        backbone: VAR intermediates (None for LinTrans).
        next_patch: ``[B, C, N_seg, s]`` normalised prediction of the patch after each one; the
            last is the forecast.
        forecast: ``[B, s, C, 1]`` de-normalised forecast (the model output).
    """

    mean: Tensor
    std: Tensor
    patches: Tensor
    tokens: Tensor
    backbone: BackboneTrace | None
    next_patch: Tensor
    forecast: Tensor


class SAMoVAR(nn.Module):
    """Structural Aligned Mixture of VAR (and, by ``config.variant``, its controls).

    Maps ``x: [B, L, C, C_in]`` (channel 0 = target; other channels are ignored) to
    ``[B, s, C, 1]``. While training it sets ``self.aux_loss`` to ``aux_loss_weight`` times the
    MSE of the teacher-forced next-patch predictions of all endogenous positions but the last,
    against the following input patches, in instance-normalised units — exactly the released
    code's additional loss; the last position's prediction is the forecast, which the engine's
    main loss covers.

    Args:
        config: the model configuration.
    """

    def __init__(self, config: SAMoVARConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        self.tokenizer = PatchTokenizer(cfg, paired=cfg.variant != "lintrans")
        self.backbone: nn.Module = (
            _LinTransBackbone(cfg) if cfg.variant == "lintrans" else VarBackbone(cfg)
        )
        self.final_norm = nn.RMSNorm(cfg.width, eps=_NORM_EPS)
        self.head = nn.Linear(cfg.width, cfg.horizon)
        self.aux_loss: Tensor | None = None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                # GPT-2 style scaled init of the residual projections, as the released code
                layers = cfg.n_mlp_layers if ".mlp" in name else cfg.n_attn_layers
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * max(layers, 1)))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def _check_input(self, x: Tensor) -> Tensor:
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.lookback or x.shape[2] != cfg.num_series:
            raise ConfigError(
                f"{type(self).__name__} expects x of shape [B, L={cfg.lookback}, "
                f"C={cfg.num_series}, C_in]; found {tuple(x.shape)}"
            )
        return x[..., 0].transpose(1, 2)  # (B, C, L)

    def decode(self, tokens: Tensor) -> Tensor:
        """Backbone and output head on tokens, ``[B·C, T, d] → [B·C, N_seg, s]`` (normalised)."""
        return self.head(self.final_norm(self.backbone(tokens)))

    def trace(self, x: Tensor, *, stats: tuple[Tensor, Tensor] | None = None) -> SAMoVARTrace:
        """The forward pass, keeping intermediates.

        Args:
            x: ``[B, L, C, C_in]``.
            stats: ``(mean, std)``, each ``[B, C, 1]``, to use instead of the window's own
                instance-normalisation statistics (the causality test fixes them).

        Returns:
            A :class:`SAMoVARTrace`.
        """
        cfg = self.config
        series = self._check_input(x)  # (B, C, L)
        b, c, _ = series.shape
        mean, std = self.tokenizer.normalization_stats(series) if stats is None else stats
        patches = self.tokenizer.segment((series - mean) / std)  # (B, C, N_seg, s)
        tokens = self.tokenizer.embed(patches)  # (B·C, T, d)
        bb: BackboneTrace | None = None
        if isinstance(self.backbone, VarBackbone):
            bb = self.backbone.trace(tokens)
            y = bb.y
        else:
            y = self.backbone(tokens)  # (B·C, N_seg, d)
        nxt = self.head(self.final_norm(y)).reshape(b, c, cfg.n_segments, cfg.horizon)
        forecast = nxt[:, :, -1] * std + mean  # (B, C, s)
        return SAMoVARTrace(
            mean=mean,
            std=std,
            patches=patches,
            tokens=tokens,
            backbone=bb,
            next_patch=nxt,
            forecast=forecast.transpose(1, 2).unsqueeze(-1),  # (B, s, C, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, L, C, C_in] → [B, s, C, 1]``; sets ``aux_loss`` while training."""
        tr = self.trace(x)
        if self.training:
            if self.config.n_segments > 1:
                aux = F.mse_loss(tr.next_patch[:, :, :-1], tr.patches[:, :, 1:])
            else:  # one patch: no teacher-forced target inside the window
                aux = tr.next_patch.new_zeros(())
            self.aux_loss = self.config.aux_loss_weight * aux
        else:
            self.aux_loss = None
        return tr.forecast


class LinTrans(SAMoVAR):
    """The LinTrans control: a standard pre-norm linear-attention decoder on SAMoVAR's tokens."""

    def __init__(self, config: SAMoVARConfig) -> None:
        super().__init__(replace(config, variant="lintrans"))


class FixedVAR(SAMoVAR):
    """The FixedVAR control: SAMoVAR with free queries/values (only the keys depend on data)."""

    def __init__(self, config: SAMoVARConfig) -> None:
        super().__init__(replace(config, variant="fixedvar"))


_CLASSES: dict[str, type[SAMoVAR]] = {
    "samovar": SAMoVAR,
    "lintrans": LinTrans,
    "fixedvar": FixedVAR,
}


def build_samovar(*, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any) -> SAMoVAR:
    """Registry builder: ``num_nodes`` = C series, ``in_steps`` = L, ``out_steps`` = s."""
    cfg = SAMoVARConfig.from_options(
        num_series=num_nodes, lookback=in_steps, horizon=out_steps, **overrides
    )
    return _CLASSES[cfg.variant](cfg)


#: the flat options ``model_overrides`` may set: the fields but the shape and the attention
#: spec, and the attention options
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in fields(SAMoVARConfig)} - {"num_series", "lookback", "horizon", "attention"}
    | set(OPTION_NAMES)
)


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="samovar",
        builder=build_samovar,
        description="SAMoVAR (ICML 2025): aligned linear-attention stack as a mixture of VARs",
        family="ltsf",
        options=OPTIONS,
    ),
    ModelSpec(
        name="samovar-lintrans",
        builder=build_samovar,
        description="LinTrans: SAMoVAR's control, pre-norm linear-attention decoder",
        family="ltsf",
        options=OPTIONS,
        defaults={"variant": "lintrans"},
    ),
    ModelSpec(
        name="samovar-fixedvar",
        builder=build_samovar,
        description="FixedVAR: SAMoVAR's control with free queries and values",
        family="ltsf",
        options=OPTIONS,
        defaults={"variant": "fixedvar"},
    ),
    ModelSpec(
        name="samovar-eala",
        builder=build_samovar,
        description="SAMoVAR with causal EALA attention (beyond the paper)",
        family="ltsf",
        options=OPTIONS,
        defaults={"attention": "eala"},
    ),
]

__all__ = [
    "SPECS",
    "BackboneTrace",
    "FixedVAR",
    "LinTrans",
    "PatchTokenizer",
    "SAMoVAR",
    "SAMoVARConfig",
    "SAMoVARTrace",
    "StructuralMatrix",
    "VarBackbone",
    "build_samovar",
]
