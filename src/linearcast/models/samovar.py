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

The configuration is in :mod:`linearcast.models.samovar_config`, the tokenizer, the VAR-form
backbone and the LinTrans blocks in :mod:`linearcast.models.samovar_layers`; this file puts them
together.

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
from dataclasses import dataclass, replace
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec
from linearcast.models.samovar_config import OPTIONS, VAR_ATTENTION, SAMoVARConfig, Variant
from linearcast.models.samovar_layers import (
    _NORM_EPS,
    BackboneTrace,
    PatchTokenizer,
    StructuralMatrix,
    VarBackbone,
    _LinTransBackbone,
)


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


#: SAMoVAR normalises each input window itself (the released code's instance normalisation);
#: RevIN around it would normalise twice
_OWN_NORM = "it normalises each input window itself, as the released code does"

SPECS: list[ModelSpec] = [
    ModelSpec(
        name="samovar",
        builder=build_samovar,
        description="SAMoVAR (ICML 2025): aligned linear-attention stack as a mixture of VARs",
        family="ltsf",
        options=OPTIONS,
        no_revin=_OWN_NORM,
    ),
    ModelSpec(
        name="samovar-lintrans",
        builder=build_samovar,
        description="LinTrans: SAMoVAR's control, pre-norm linear-attention decoder",
        family="ltsf",
        options=OPTIONS,
        no_revin=_OWN_NORM,
        defaults={"variant": "lintrans"},
    ),
    ModelSpec(
        name="samovar-fixedvar",
        builder=build_samovar,
        description="FixedVAR: SAMoVAR's control with free queries and values",
        family="ltsf",
        options=OPTIONS,
        no_revin=_OWN_NORM,
        defaults={"variant": "fixedvar"},
    ),
    ModelSpec(
        name="samovar-eala",
        builder=build_samovar,
        description="SAMoVAR with causal EALA attention (beyond the paper)",
        family="ltsf",
        options=OPTIONS,
        no_revin=_OWN_NORM,
        defaults={"attention": "eala"},
    ),
]

__all__ = [
    "OPTIONS",
    "SPECS",
    "VAR_ATTENTION",
    "BackboneTrace",
    "FixedVAR",
    "LinTrans",
    "PatchTokenizer",
    "SAMoVAR",
    "SAMoVARConfig",
    "SAMoVARTrace",
    "StructuralMatrix",
    "VarBackbone",
    "Variant",
    "build_samovar",
]
