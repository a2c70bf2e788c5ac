"""STAEformer (Liu et al., CIKM 2023) and ELinFormer (STAEformer with EALA attention).

The model follows the official code (XDZhelheim/STAEformer, ``model/STAEformer.py``) layer for
layer: same dimensions, embeddings, initialisation and mixed output projection, so that with
softmax attention it has the official parameter count, ``1 060 260 + 960·N`` with the default
config (see ``docs/models.md``). Modules are created in the official order, so one seed gives
the same initial weights. The attention is a config field (an
:class:`~linearcast.nn.AttentionSpec` per kind of block, option ``attention=`` in
``model_overrides``); nothing else changes between STAEformer and ELinFormer.

Beyond the paper: ``node_embedding="history"`` replaces the adaptive embedding (a ``[T, N, 80]``
parameter that ties the model to one N) by an embedding computed from each node's own input
window, so a trained model runs on any number of nodes (registry name ``elinformer-varn``).

The configuration and the options are in :mod:`linearcast.models.staeformer_config`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec
from linearcast.models.staeformer_config import OPTIONS, NodeEmbedding, STAEformerConfig
from linearcast.nn import AttentionSpec, SelfAttentionLayer


class HistoryEmbedding(nn.Module):
    """Beyond the paper: a node embedding computed from the node's own input window.

    ``e = W2 ReLU(W1 x_window + b1) + b2`` maps each node's ``T_in`` target values to a
    ``[T_in, dim]`` embedding — the shape of the adaptive embedding's slice for one node — with
    weights shared by all nodes. It has no per-node parameter, so the model runs on any N and
    permuting the nodes permutes the embedding.

    Args:
        in_steps: T_in.
        dim: embedding width (also the hidden width).
    """

    def __init__(self, in_steps: int, dim: int) -> None:
        super().__init__()
        self.in_steps = in_steps
        self.dim = dim
        self.mlp = nn.Sequential(
            nn.Linear(in_steps, dim), nn.ReLU(inplace=True), nn.Linear(dim, in_steps * dim)
        )

    def forward(self, target: Tensor) -> Tensor:
        """``[B, T_in, N]`` scaled target → ``[B, T_in, N, dim]``."""
        e = self.mlp(target.transpose(1, 2))  # (B, N, T_in·dim)
        return e.unflatten(-1, (self.in_steps, self.dim)).transpose(1, 2)  # (B, T_in, N, dim)


class STAEformer(nn.Module):
    """Spatio-temporal adaptive-embedding transformer with a pluggable attention kernel.

    Input ``x: [B, T_in, N, C_in]`` with channels [scaled target, time-of-day fraction in
    [0, 1), day-of-week 0..6 as float, ...]. The first ``input_dim`` channels go through
    ``Linear(input_dim → 24)``; time of day indexes ``Embedding(steps_per_day, 24)`` by
    ``floor(tod · steps_per_day)``, day of week ``Embedding(7, 24)``; the adaptive embedding
    ``[T_in, N, 80]`` (xavier-uniform) is broadcast over the batch. The concatenation
    (model dim 152) passes ``num_layers`` temporal blocks (attention across T per node), then
    ``num_layers`` spatial blocks (attention across N per step), then the mixed projection.

    Args:
        config: the hyper-parameters.
    """

    def __init__(self, config: STAEformerConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.aux_loss: Tensor | None = None  # the engine contract: no auxiliary loss term
        d = c.model_dim
        # creation order = the official one, so a seed gives the official initial weights
        self.input_proj = nn.Linear(c.input_dim, c.input_embedding_dim)
        self.tod_embedding = (
            nn.Embedding(c.steps_per_day, c.tod_embedding_dim) if c.tod_embedding_dim > 0 else None
        )
        self.dow_embedding = (
            nn.Embedding(7, c.dow_embedding_dim) if c.dow_embedding_dim > 0 else None
        )
        self.node_emb: nn.Parameter | None = None
        if c.spatial_embedding_dim > 0:
            self.node_emb = nn.Parameter(torch.empty(c.num_nodes, c.spatial_embedding_dim))
            nn.init.xavier_uniform_(self.node_emb)
        self.adaptive_embedding: nn.Parameter | None = None
        self.history_embedding: HistoryEmbedding | None = None
        if c.adaptive_embedding_dim > 0 and c.node_embedding == "adaptive":
            self.adaptive_embedding = nn.Parameter(
                torch.empty(c.in_steps, c.num_nodes, c.adaptive_embedding_dim)
            )
            nn.init.xavier_uniform_(self.adaptive_embedding)
        elif c.adaptive_embedding_dim > 0:
            self.history_embedding = HistoryEmbedding(c.in_steps, c.adaptive_embedding_dim)
        self.temporal_proj: nn.Linear | None = None
        if c.use_mixed_proj:
            self.output_proj = nn.Linear(c.in_steps * d, c.out_steps * c.output_dim)
        else:
            self.temporal_proj = nn.Linear(c.in_steps, c.out_steps)
            self.output_proj = nn.Linear(d, c.output_dim)
        self.attn_layers_t = nn.ModuleList(
            [self._layer(c.temporal_attention, c.in_steps) for _ in range(c.num_layers)]
        )
        self.attn_layers_s = nn.ModuleList(
            [self._layer(c.spatial_attention, c.num_nodes) for _ in range(c.num_layers)]
        )

    def _layer(self, attention: AttentionSpec, seq_len: int) -> SelfAttentionLayer:
        c = self.config
        return SelfAttentionLayer(
            c.model_dim, c.feed_forward_dim, c.num_heads, c.dropout,
            kernel=attention, seq_len=seq_len, fast_dropout=c.fast_dropout,
        )  # fmt: skip

    def _check_input(self, x: Tensor) -> None:
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.in_steps or x.shape[3] < c.min_input_channels:
            raise ConfigError(
                f"STAEformer expects x of shape [B, T_in={c.in_steps}, N, C_in>="
                f"{c.min_input_channels}] (target, time of day, day of week); "
                f"found {tuple(x.shape)}"
            )
        if c.fixed_num_nodes and x.shape[2] != c.num_nodes:
            raise ConfigError(
                f"this STAEformer was built for N={c.num_nodes} nodes and found "
                f"{x.shape[2]}: its adaptive/spatial embedding or Linformer projections tie "
                "it to N (node_embedding='history' gives a model that runs on any N)"
            )

    def _block(self, layer: nn.Module, h: Tensor, dim: int) -> Tensor:
        if self.config.checkpoint_activations and self.training and torch.is_grad_enabled():
            out = checkpoint(layer, h, dim, use_reentrant=False)
            assert isinstance(out, Tensor)
            return out
        return layer(h, dim=dim)

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``out_steps`` steps.

        Args:
            x: ``[B, T_in, N, C_in]``: channel 0 the scaled target, 1 time-of-day fraction,
                2 day-of-week index (as float).

        Returns:
            ``[B, T_out, N, output_dim]`` in the target's scaled units.
        """
        self._check_input(x)
        c = self.config
        b, t, n, _ = x.shape
        features = [self.input_proj(x[..., : c.input_dim])]  # (B, T, N, 24)
        if self.tod_embedding is not None:
            # the ranges are checked where data enters (data.check_time_features); the clamp only
            # absorbs float rounding of tod·steps_per_day at the top of the day
            tod = (x[..., 1] * c.steps_per_day).long().clamp(0, c.steps_per_day - 1)
            features.append(self.tod_embedding(tod))  # (B, T, N, 24)
        if self.dow_embedding is not None:
            dow = x[..., 2].long().clamp(0, 6)
            features.append(self.dow_embedding(dow))  # (B, T, N, 24)
        if self.node_emb is not None:
            features.append(self.node_emb.expand(b, t, *self.node_emb.shape))  # (B, T, N, Ds)
        if self.adaptive_embedding is not None:
            features.append(self.adaptive_embedding.expand(b, *self.adaptive_embedding.shape))
        elif self.history_embedding is not None:
            features.append(self.history_embedding(x[..., 0]))  # (B, T, N, 80)
        h = torch.cat(features, dim=-1)  # (B, T, N, D)
        # one copy into the temporal layout and one back, instead of a transpose (and the copies
        # it forces in the projections, residuals and LayerNorms) inside every temporal block
        h = h.transpose(1, 2).contiguous()  # (B, N, T, D)
        for layer in self.attn_layers_t:
            h = self._block(layer, h, dim=2)  # attention across T, per node
        h = h.transpose(1, 2).contiguous()  # (B, T, N, D)
        for layer in self.attn_layers_s:
            h = self._block(layer, h, dim=2)  # attention across N, per step
        if self.temporal_proj is None:
            out = h.transpose(1, 2).reshape(b, n, t * c.model_dim)  # (B, N, T·D)
            out = self.output_proj(out).view(b, n, c.out_steps, c.output_dim)  # (B, N, T', C)
            return out.transpose(1, 2)  # (B, T_out, N, C)
        out = self.temporal_proj(h.transpose(1, 3))  # (B, D, N, T_out)
        return self.output_proj(out.transpose(1, 3))  # (B, T_out, N, C)


def build_staeformer(
    *, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any
) -> STAEformer:
    """Registry builder: ``STAEformer(STAEformerConfig.from_options(...))``.

    Raises:
        ConfigError: for an override that is not an option of :data:`OPTIONS`.
    """
    return STAEformer(
        STAEformerConfig.from_options(
            num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **overrides
        )
    )


def _spec(
    name: str, description: str, *, fixed_num_nodes: bool = True, **defaults: Any
) -> ModelSpec:
    return ModelSpec(
        name=name,
        builder=build_staeformer,
        description=description,
        needs_time_features=True,
        fixed_num_nodes=fixed_num_nodes,
        family="spatiotemporal",
        defaults=defaults,
        data_fields=("steps_per_day",),
        options=OPTIONS,
    )


SPECS: list[ModelSpec] = [
    _spec("staeformer", "STAEformer (Liu et al. 2023), softmax attention via SDPA"),
    _spec(
        "staeformer-naive",
        "STAEformer with materialised softmax as in the official code (the paper's baseline)",
        attention="softmax_naive",
    ),
    _spec(
        "elinformer",
        "ELinFormer: STAEformer with EALA attention, the paper's θ (= 1/√2)",
        attention="eala",
        theta="paper",
    ),
    _spec(
        "elinformer-gauss",
        "ELinFormer with the corrected θ = 1 (beyond the paper)",
        attention="eala",
        theta="gauss",
    ),
    _spec(
        "elinformer-hclamp",
        "ELinFormer with the adaptive θ = max(1, σ/sqrt(2 ln n)) (beyond the paper)",
        attention="eala",
        theta="gauss_hclamp",
    ),
    _spec(
        "elinformer-learned",
        "ELinFormer with a learned θ per head and layer, positive, initialised at 1 "
        "(beyond the paper)",
        attention="eala",
        theta="learned",
    ),
    _spec(
        "staeformer-linformer",
        "STAEformer with Linformer attention (projected length 256)",
        attention="linformer",
    ),
    _spec(
        "staeformer-linear",
        "STAEformer with elu+1 linear attention (Katharopoulos et al. 2020)",
        attention="linear",
    ),
    _spec(
        "elinformer-varn",
        "ELinFormer (paper θ) with a history node embedding instead of the adaptive one: "
        "runs on any N (beyond the paper)",
        fixed_num_nodes=False,
        attention="eala",
        theta="paper",
        node_embedding="history",
    ),
]

__all__ = [
    "OPTIONS",
    "SPECS",
    "HistoryEmbedding",
    "NodeEmbedding",
    "STAEformer",
    "STAEformerConfig",
    "build_staeformer",
]
