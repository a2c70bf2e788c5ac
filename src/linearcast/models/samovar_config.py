"""SAMoVAR's configuration: :class:`SAMoVARConfig`, the default :data:`VAR_ATTENTION` and the
flat :data:`OPTIONS` that ``model_overrides`` may set (the model is in
:mod:`linearcast.models.samovar`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from linearcast.errors import ConfigError
from linearcast.models.base import check_options
from linearcast.nn import AttentionSpec, split_attention_options
from linearcast.nn.kernels import OPTION_NAMES

Variant = Literal["samovar", "lintrans", "fixedvar"]

#: The paper's token mixer: ``o_t = Σ_{j≤t} (q_t·k_j) v_j``, causal linear attention with no
#: feature map, no normaliser and no scale. With ``attention="eala"`` the kernel becomes causal
#: EALA with θ = ``gauss_hclamp`` (the other fields do not apply to EALA).
VAR_ATTENTION = AttentionSpec(
    "linear", causal=True, theta="gauss_hclamp", feature_map="identity", normalize=False
)


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


#: the flat options ``model_overrides`` may set: the fields but the shape and the attention
#: spec, and the attention options
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in fields(SAMoVARConfig)} - {"num_series", "lookback", "horizon", "attention"}
    | set(OPTION_NAMES)
)


__all__ = ["OPTIONS", "VAR_ATTENTION", "SAMoVARConfig", "Variant"]
