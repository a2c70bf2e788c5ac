"""AGCRN: adaptive graph convolutional recurrent network (Bai et al., NeurIPS 2020).

Written from the paper and the official code's behaviour (LeiBAI/AGCRN @ 7fbbf2a,
``model/AGCRN.py``, ``AGCRNCell.py``, ``AGCN.py``, ``Run.py``); BasicTS v0.5.8 ports the same
model. The graph is learned: ``S = softmax(ReLU(E Eᵀ))`` row-wise from node embeddings
``E: [N, embed_dim]``, so the model needs no adjacency. Each graph convolution has per-node
weights drawn from a shared pool, ``W_n = Σ_d E[n, d] · W_pool[d]``
(node-adaptive parameter learning). A GRU whose gates are such convolutions runs over the input
window, layer after layer; a per-node linear map of the top layer's last state gives every
horizon at once (no decoder, no teacher forcing).

Equal to the official model in outputs and gradients (float64, ``tools/reference_check/agcrn.py``;
the numbers are in ``docs/models.md``). Two things are computed once per forward instead of once
per step, which changes only the order of float sums: the supports and the per-node weights
(they depend on ``E`` and the pools, not on the step), and the input's share of both graph
convolutions (they are linear, so ``gconv([x, h]) = gconv_x(x) + gconv_h(h)``, and ``x`` is known
for every step before the recurrence starts).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options


@dataclass
class AGCRNConfig:
    """AGCRN hyper-parameters; the defaults are BasicTS v0.5.8's and the official PEMSD4 ones.

    Attributes:
        num_nodes: N (filled from the data); the node embeddings tie the model to it.
        in_steps: T_in. The recurrence runs over whatever window it is given; kept for the
            registry contract.
        out_steps: T_out, the horizon the predictor emits at once.
        input_dim: channels of ``x`` fed to the model, from channel 0 (1: the target; 2 adds the
            time-of-day fraction, as BasicTS does on METR-LA).
        output_dim: output channels C_out.
        rnn_units: hidden width H of every GRU layer (64).
        num_layers: stacked GRU layers (2).
        embed_dim: width d of the node embeddings (10; the official PEMSD8 config uses 2).
        cheb_k: supports ``T_0 = I, T_1 = S, T_k = 2 S T_{k-1} - T_{k-2}`` (2: ``I`` and ``S``;
            the official code always builds ``I`` and ``S``, hence at least 2).
    """

    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    input_dim: int = 1
    output_dim: int = 1
    rnn_units: int = 64
    num_layers: int = 2
    embed_dim: int = 10
    cheb_k: int = 2

    def __post_init__(self) -> None:
        for name in ("num_nodes", "in_steps", "out_steps", "input_dim", "output_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"AGCRN {name} must be >= 1; found {getattr(self, name)} "
                    f"(set it with --set model_overrides.{name}=VALUE)."
                )
        for name in ("rnn_units", "num_layers", "embed_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"AGCRN {name} must be >= 1; found {getattr(self, name)}; set "
                    f"--set model_overrides.{name}=VALUE with VALUE >= 1."
                )
        if self.cheb_k < 2:
            raise ConfigError(
                f"AGCRN cheb_k must be >= 2 (the supports always hold I and S); found "
                f"{self.cheb_k}; set --set model_overrides.cheb_k=2."
            )

    @classmethod
    def from_options(
        cls, *, num_nodes: int, in_steps: int, out_steps: int, **options: Any
    ) -> AGCRNConfig:
        """The config of flat ``model_overrides`` options (unknown names are refused)."""
        check_options("AGCRN", options, OPTIONS)
        return cls(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **options)


#: the options ``model_overrides`` may set: every config field but the shape
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(AGCRNConfig)} - {"num_nodes", "in_steps", "out_steps"}
)


def chebyshev_supports(embeddings: Tensor, cheb_k: int) -> Tensor:
    """The learned graph's supports from node embeddings.

    Args:
        embeddings: ``E: [N, d]``.
        cheb_k: number of supports K (>= 2).

    Returns:
        ``[K, N, N]``: ``I``, ``S = softmax(ReLU(E Eᵀ))`` (rows sum to 1), then
        ``T_k = 2 S T_{k-1} - T_{k-2}``.
    """
    n = embeddings.shape[0]
    s = torch.softmax(torch.relu(embeddings @ embeddings.T), dim=1)  # (N, N)
    supports = [torch.eye(n, dtype=s.dtype, device=s.device), s]
    for _ in range(2, cheb_k):
        supports.append(2 * s @ supports[-1] - supports[-2])
    return torch.stack(supports)  # (K, N, N)


def graph_propagate(supports: Tensor, x: Tensor) -> Tensor:
    """``T_k x`` for every support, ``T_0 = I`` taken as ``x`` itself, side by side.

    Node-major layout: one ``[N, N] @ [N, M·C]`` product per support covers every batch element
    (and step) at once.

    Args:
        supports: ``[K, N, N]`` with ``supports[0] = I``.
        x: ``[N, M, C]`` (M: batch, or steps × batch).

    Returns:
        ``[N, M, K·C]``, feature index ``k·C + c``.
    """
    flat = x.reshape(x.shape[0], -1)  # (N, M·C)
    propagated = [x] + [(s @ flat).view_as(x) for s in supports[1:]]  # K × (N, M, C)
    return torch.cat(propagated, dim=-1)  # (N, M, K·C)


class AdaptiveGraphConv(nn.Module):
    """Node-adaptive graph convolution (the official ``AVWGCN``) with its parameter pools.

    ``out_n = Σ_k (T_k x)_n W_n[k] + b_n`` with ``W_n = Σ_d E[n, d] · weights_pool[d]`` and
    ``b_n = E[n] · bias_pool``. The pools are ``[d, K, C_in, C_out]`` and ``[d, C_out]``.

    Args:
        dim_in: C_in (the GRU's input width plus its hidden width).
        dim_out: C_out.
        cheb_k: K.
        embed_dim: d.
    """

    def __init__(self, dim_in: int, dim_out: int, cheb_k: int, embed_dim: int) -> None:
        super().__init__()
        # initialised by AGCRN.reset_parameters (the official code leaves them uninitialised
        # until its Xavier loop in Run.py)
        self.weights_pool = nn.Parameter(torch.empty(embed_dim, cheb_k, dim_in, dim_out))
        self.bias_pool = nn.Parameter(torch.empty(embed_dim, dim_out))

    def node_weights(self, embeddings: Tensor, split: int) -> tuple[Tensor, Tensor, Tensor]:
        """Per-node weights of the input's part and of the state's part, and biases.

        Args:
            embeddings: ``E: [N, d]``.
            split: C, the input's width (the first C of the C_in features).

        Returns:
            ``[N, K·C, C_out]``, ``[N, K·(C_in − C), C_out]`` (index ``k·width + i``, as
            :func:`graph_propagate` lays out its features) and ``[N, 1, C_out]``.
        """
        weights = torch.einsum("nd,dkio->nkio", embeddings, self.weights_pool)  # (N, K, Ci, Co)
        n, _, _, out = weights.shape
        w_x = weights[:, :, :split].reshape(n, -1, out)  # (N, K·C, Co)
        w_h = weights[:, :, split:].reshape(n, -1, out)  # (N, K·H, Co)
        return w_x, w_h, (embeddings @ self.bias_pool).unsqueeze(1)


class AGCRNCell(nn.Module):
    """One GRU layer whose gates are adaptive graph convolutions of ``[x, h]``.

    ``[z, r] = σ(gconv_gate([x, h]))``, ``ĥ = tanh(gconv_update([x, z ⊙ h]))``,
    ``h' = r ⊙ h + (1 − r) ⊙ ĥ``. As in the official code the first half ``z`` resets the state
    fed to the candidate and the second half ``r`` keeps the old state.

    Args:
        dim_in: width of the layer's input (``input_dim`` for the first layer, H above).
        hidden: H.
        cheb_k: K.
        embed_dim: d.
    """

    def __init__(self, dim_in: int, hidden: int, cheb_k: int, embed_dim: int) -> None:
        super().__init__()
        self.dim_in = dim_in
        self.hidden = hidden
        self.gate = AdaptiveGraphConv(dim_in + hidden, 2 * hidden, cheb_k, embed_dim)
        self.update = AdaptiveGraphConv(dim_in + hidden, hidden, cheb_k, embed_dim)

    def forward(self, x: Tensor, embeddings: Tensor, supports: Tensor) -> Tensor:
        """Run the layer over a whole sequence from a zero state (node-major layout).

        Args:
            x: ``[N, T, B, dim_in]``.
            embeddings: ``E: [N, d]``.
            supports: ``[K, N, N]`` from :func:`chebyshev_supports`.

        Returns:
            The state after every step, ``[N, T, B, H]``.
        """
        n, t, b, c = x.shape
        wg_x, wg_h, bg = self.gate.node_weights(embeddings, c)  # (N, K·C | K·H, 2H), (N, 1, 2H)
        wu_x, wu_h, bu = self.update.node_weights(embeddings, c)  # (N, K·C | K·H, H), (N, 1, H)
        # the input's share of both convolutions, for all steps at once
        x_prop = graph_propagate(supports, x.reshape(n, t * b, c))  # (N, T·B, K·C)
        gate_x = (torch.bmm(x_prop, wg_x) + bg).view(n, t, b, -1)  # (N, T, B, 2H)
        update_x = (torch.bmm(x_prop, wu_x) + bu).view(n, t, b, -1)  # (N, T, B, H)
        h = x.new_zeros(n, b, self.hidden)  # (N, B, H)
        states = []
        for step in range(t):
            gates = torch.sigmoid(gate_x[:, step] + torch.bmm(graph_propagate(supports, h), wg_h))
            z, r = gates.split(self.hidden, dim=-1)  # (N, B, H) each
            h_reset = graph_propagate(supports, z * h)  # (N, B, K·H)
            candidate = torch.tanh(update_x[:, step] + torch.bmm(h_reset, wu_h))
            h = r * h + (1 - r) * candidate
            states.append(h)
        return torch.stack(states, dim=1)  # (N, T, B, H)


class AGCRN(nn.Module):
    """Learned-graph GRU encoder and a one-shot per-node linear predictor.

    Input ``x: [B, T_in, N, C_in]``; channels ``[:input_dim]`` are used (channel 0 the scaled
    target). Parameters are created and initialised in the official order, so a seed gives the
    official model's initial weights: ``E`` (drawn by ``randn`` and then overwritten, as there),
    the cells' pools, the predictor; then Xavier-uniform for every parameter of two or more
    dimensions and ``U(0, 1)`` for the rest (the predictor's bias).

    Args:
        config: the hyper-parameters.
    """

    def __init__(self, config: AGCRNConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.aux_loss: Tensor | None = None  # the engine contract: no auxiliary loss term
        self.node_embeddings = nn.Parameter(torch.randn(c.num_nodes, c.embed_dim))
        widths = [c.input_dim] + [c.rnn_units] * (c.num_layers - 1)
        self.cells = nn.ModuleList(
            [AGCRNCell(w, c.rnn_units, c.cheb_k, c.embed_dim) for w in widths]
        )
        # the official Conv2d(1, T_out·C_out, kernel (1, H)) on [B, 1, N, H] is this per-node
        # linear map; only its Xavier fans differ (see reset_parameters)
        self.predictor = nn.Linear(c.rnn_units, c.out_steps * c.output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation (``Run.py``), in registration order."""
        conv_fans = (self.config.rnn_units, self.predictor.out_features * self.config.rnn_units)
        for p in self.parameters():
            if p is self.predictor.weight:
                # Xavier as on the official Conv2d weight [T·C, 1, 1, H]: fan_in = H,
                # fan_out = T·C·H (a Linear's fan_out would be T·C, a wider bound)
                # (the bound computed as xavier_uniform_ does, so the values match bit for bit)
                bound = math.sqrt(3.0) * math.sqrt(2.0 / float(sum(conv_fans)))
                nn.init.uniform_(p, -bound, bound)
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.uniform_(p)

    def _check_input(self, x: Tensor) -> None:
        c = self.config
        if x.dim() != 4 or x.shape[1] < 1 or x.shape[3] < c.input_dim:
            raise ConfigError(
                f"AGCRN expects x of shape [B, T_in, N, C_in>={c.input_dim}] "
                f"(input_dim={c.input_dim}); found {tuple(x.shape)}; lower "
                "--set model_overrides.input_dim or give the data more channels."
            )
        if x.shape[2] != c.num_nodes:
            raise ConfigError(
                f"this AGCRN was built for N={c.num_nodes} nodes and found {x.shape[2]}: its "
                "node embeddings (the learned graph) tie it to N; train it on this data."
            )

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``out_steps`` steps at once.

        Args:
            x: ``[B, T_in, N, C_in]``, channel 0 the scaled target.

        Returns:
            ``[B, T_out, N, output_dim]`` in the target's scaled units.
        """
        self._check_input(x)
        c = self.config
        e = self.node_embeddings  # (N, d)
        supports = chebyshev_supports(e, c.cheb_k)  # (K, N, N)
        # node-major inside the recurrence: every graph product is one [N, N] @ [N, ·] matmul
        # and every per-node weight product one bmm over N, without copies per step
        h = x[..., : c.input_dim].permute(2, 1, 0, 3)  # (N, T, B, C)
        for cell in self.cells:
            h = cell(h, e, supports)  # (N, T, B, H): each layer runs every step first
        out = self.predictor(h[:, -1])  # (N, B, T_out·C_out), channel index t·C_out + c
        out = out.unflatten(-1, (c.out_steps, c.output_dim))  # (N, B, T_out, C_out)
        return out.permute(1, 2, 0, 3)  # (B, T_out, N, C_out)


def build_agcrn(*, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any) -> AGCRN:
    """Registry builder: ``AGCRN(AGCRNConfig.from_options(...))``.

    Raises:
        ConfigError: for an override that is not an option of :data:`OPTIONS` or a bad value.
    """
    return AGCRN(
        AGCRNConfig.from_options(
            num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **overrides
        )
    )


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="agcrn",
        builder=build_agcrn,
        description="AGCRN (Bai et al. 2020): GRU of adaptive graph convolutions on a graph "
        "learned from node embeddings (no given graph needed)",
        needs_graph=False,
        needs_time_features=False,
        reads_channels=lambda o: int(o.get("input_dim", AGCRNConfig.input_dim)),
        fewer_channels="--set model_overrides.input_dim=1",
        fixed_num_nodes=True,
        family="spatiotemporal",
        options=OPTIONS,
    )
]

__all__ = [
    "AGCRN",
    "OPTIONS",
    "SPECS",
    "AGCRNCell",
    "AGCRNConfig",
    "AdaptiveGraphConv",
    "build_agcrn",
    "chebyshev_supports",
    "graph_propagate",
]
