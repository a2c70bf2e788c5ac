"""Graph WaveNet (Wu et al., IJCAI 2019): dilated gated temporal convolutions and diffusion graph
convolutions over given and learned (adaptive) adjacencies.

The model follows the official code (nnzhan/Graph-WaveNet @ 6b162e8, ``model.py``) layer for
layer: same widths, layer order (skip from the gated output before the graph convolution,
residual after it, BatchNorm last), initialisation, and the official diffusion direction: with
the random-walk matrix ``P = D⁻¹A`` of ``util.asym_adj``, a diffusion step is
``out[w] = Σ_v P[v, w] x[v]``, i.e. ``Pᵀx`` (BasicTS's port propagates ``Px``). Modules are
created in the official order, so one seed gives the official initial weights. At PEMS08 size
(N = 170) the default config has the official 308 660 parameters (``docs/models.md``).

Two registry entries: ``gwnet`` (the official default: "doubletransition" supports
``[D⁻¹A, D⁻¹Aᵀ]`` of the data's graph plus the adaptive adjacency) and ``gwnet-adaptive``
(the official ``--aptonly``: the adaptive adjacency alone, for data without a graph).

The configuration and the supports made from the data's graph are in
:mod:`linearcast.models.gwnet_config`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options
from linearcast.models.gwnet_config import OPTIONS, GWNetConfig, double_transition


def diffuse(x: Tensor, support: Tensor) -> Tensor:
    """One diffusion step ``out[w] = Σ_v A[v, w] x[v]`` (the official ``nconv``: ``Aᵀx``).

    Args:
        x: ``[B, C, N, T]``.
        support: ``[N, N]``.

    Returns:
        ``[B, C, N, T]``.
    """
    return torch.einsum("bcvt,vw->bcwt", x, support).contiguous()


class DiffusionConv(nn.Module):
    """The official ``gcn``: ``[x, A₁x, A₁²x, A₂x, ...]`` concatenated on channels, a 1×1
    convolution, dropout.

    Args:
        channels_in: C of ``x``.
        channels_out: C of the output.
        num_supports: supports per call (given and adaptive).
        steps: diffusion steps per support.
        dropout: after the convolution (training only).
    """

    def __init__(
        self, channels_in: int, channels_out: int, num_supports: int, steps: int, dropout: float
    ) -> None:
        super().__init__()
        self.steps = steps
        self.dropout = dropout
        self.mlp = nn.Conv2d((steps * num_supports + 1) * channels_in, channels_out, (1, 1))

    def forward(self, x: Tensor, supports: list[Tensor]) -> Tensor:
        """``[B, C_in, N, T]`` → ``[B, C_out, N, T]``."""
        out = [x]
        for a in supports:
            h = x
            for _ in range(self.steps):
                h = diffuse(h, a)
                out.append(h)
        h = self.mlp(torch.cat(out, dim=1))  # (B, C_out, N, T)
        return F.dropout(h, self.dropout, training=self.training)


class GWNetLayer(nn.Module):
    """One WaveNet layer: gated dilated convolution, skip projection, graph convolution (or,
    without any support, the official 1×1 ``residual_conv``), residual, BatchNorm.

    Args:
        config: the hyper-parameters.
        dilation: the temporal dilation of this layer.
        num_supports: supports the graph convolution gets (0: no graph convolution).
    """

    def __init__(self, config: GWNetConfig, dilation: int, num_supports: int) -> None:
        super().__init__()
        c = config
        kernel = (1, c.kernel_size)
        self.filter_conv = nn.Conv2d(
            c.residual_channels, c.dilation_channels, kernel, dilation=dilation
        )
        self.gate_conv = nn.Conv2d(
            c.residual_channels, c.dilation_channels, kernel, dilation=dilation
        )
        # used only without a graph convolution, as in the official model; kept otherwise so that
        # the parameter count and the weights match the official ones, frozen because it gets no
        # gradient (an unused trainable parameter also stops DDP)
        self.residual_conv = nn.Conv2d(c.dilation_channels, c.residual_channels, (1, 1))
        self.skip_conv = nn.Conv2d(c.dilation_channels, c.skip_channels, (1, 1))
        self.bn = nn.BatchNorm2d(c.residual_channels)
        self.gconv: DiffusionConv | None = None
        if num_supports > 0:
            self.gconv = DiffusionConv(
                c.dilation_channels, c.residual_channels, num_supports, c.diffusion_steps, c.dropout
            )
            self.residual_conv.requires_grad_(False)

    def forward(self, x: Tensor, supports: list[Tensor]) -> tuple[Tensor, Tensor]:
        """``x: [B, C_res, N, T]`` → ``(x' [B, C_res, N, T'], skip [B, C_skip, N, T'])`` with
        ``T' = T - dilation·(kernel_size - 1)``."""
        h = torch.tanh(self.filter_conv(x)) * torch.sigmoid(self.gate_conv(x))  # (B, C_dil, N, T')
        skip = self.skip_conv(h)  # (B, C_skip, N, T'): from the gated output, before the graph
        h = self.gconv(h, supports) if self.gconv is not None else self.residual_conv(h)
        h = h + x[..., -h.shape[3] :]  # residual added after the graph convolution
        return self.bn(h), skip


class GWNet(nn.Module):
    """Graph WaveNet.

    Input ``x: [B, T_in, N, C_in]`` with channels [scaled target, time-of-day fraction, ...]; the
    first ``input_dim`` are used. They are zero-padded on the left to the receptive field,
    lifted by a 1×1 convolution, passed through ``blocks·layers`` :class:`GWNetLayer` s whose
    skip outputs are summed (each cropped to the shortest), then ``ReLU → 1×1 → ReLU → 1×1``
    maps the skip sum to the ``T_out`` horizon as channels.

    Args:
        config: the hyper-parameters.
        supports: the given graph's ``[N, N]`` supports (:func:`double_transition`), or none
            (``gwnet-adaptive``).
    """

    def __init__(self, config: GWNetConfig, supports: list[Tensor] | None = None) -> None:
        super().__init__()
        c = config
        self.config = c
        self.aux_loss: Tensor | None = None  # the engine contract: no auxiliary loss term
        supports = supports or []
        for i, a in enumerate(supports):
            # buffers: they follow .to(device/dtype) and are saved with the weights they trained
            self.register_buffer(f"support_{i}", a)
        self.num_given = len(supports)
        # creation order = the official one, so a seed gives the official initial weights
        self.start_conv = nn.Conv2d(c.input_dim, c.residual_channels, (1, 1))
        self.nodevec1: nn.Parameter | None = None
        self.nodevec2: nn.Parameter | None = None
        if c.adaptive_embedding_dim > 0:
            self.nodevec1 = nn.Parameter(torch.randn(c.num_nodes, c.adaptive_embedding_dim))
            self.nodevec2 = nn.Parameter(torch.randn(c.adaptive_embedding_dim, c.num_nodes))
        num_supports = self.num_given + int(self.nodevec1 is not None)
        self.layers = nn.ModuleList(GWNetLayer(c, d, num_supports) for d in c.dilations)
        # only the last layer's skip reaches the output (in the official model too): what feeds
        # its residual stream gets no gradient, so it is frozen (DDP refuses unused parameters)
        last = self.layers[-1]
        for module in (last.gconv, last.residual_conv, last.bn):
            if module is not None:
                module.requires_grad_(False)
        self.end_conv_1 = nn.Conv2d(c.skip_channels, c.end_channels, (1, 1))
        self.end_conv_2 = nn.Conv2d(c.end_channels, c.out_steps, (1, 1))

    def supports(self) -> list[Tensor]:
        """The given supports, then the adaptive adjacency ``softmax(ReLU(E₁E₂))`` (rows sum to
        1), each ``[N, N]``; computed once per forward as in the official code."""
        out = [getattr(self, f"support_{i}") for i in range(self.num_given)]
        if self.nodevec1 is not None and self.nodevec2 is not None:
            out.append(F.softmax(F.relu(self.nodevec1 @ self.nodevec2), dim=1))
        return out

    def _check_input(self, x: Tensor) -> None:
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.in_steps or x.shape[3] < c.input_dim:
            raise ConfigError(
                f"GWNet expects x of shape [B, T_in={c.in_steps}, N, C_in>={c.input_dim}] "
                f"(target, time of day, ...); found {tuple(x.shape)}; use at most the data's "
                "channels with --set model_overrides.input_dim=VALUE (official: 2)"
            )
        if x.shape[2] != c.num_nodes:
            raise ConfigError(
                f"this GWNet was built for N={c.num_nodes} nodes and found {x.shape[2]}: its "
                "graph and adaptive adjacency tie it to N"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``out_steps`` steps.

        Args:
            x: ``[B, T_in, N, C_in]``: channel 0 the scaled target, 1 the time-of-day fraction.

        Returns:
            ``[B, T_out, N, 1]`` in the target's scaled units.
        """
        self._check_input(x)
        c = self.config
        h = x[..., : c.input_dim].permute(0, 3, 2, 1)  # (B, C_in, N, T_in): the official layout
        if h.shape[3] < c.receptive_field:
            h = F.pad(h, (c.receptive_field - h.shape[3], 0))  # (B, C_in, N, R)
        h = self.start_conv(h)  # (B, C_res, N, T)
        supports = self.supports()
        skip: Tensor | None = None
        for layer in self.layers:
            h, s = layer(h, supports)  # (B, C_res, N, T'), (B, C_skip, N, T')
            skip = s if skip is None else s + skip[..., -s.shape[3] :]
        assert skip is not None  # blocks, layers >= 1
        # the end convolutions are 1×1: only the last time position is the forecast (the only
        # one with the default receptive field)
        h = F.relu(skip[..., -1:])  # (B, C_skip, N, 1)
        h = self.end_conv_2(F.relu(self.end_conv_1(h)))  # (B, T_out, N, 1)
        return h


def _config(num_nodes: int, in_steps: int, out_steps: int, options: dict[str, Any]) -> GWNetConfig:
    check_options("GWNet", options, OPTIONS)
    return GWNetConfig(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **options)


def build_gwnet(
    *, num_nodes: int, in_steps: int, out_steps: int, adjacency: Any = None, **options: Any
) -> GWNet:
    """Registry builder of ``gwnet``: the data's graph as "doubletransition" supports plus the
    adaptive adjacency.

    Args:
        num_nodes: N.
        in_steps: T_in.
        out_steps: T_out.
        adjacency: the data's ``[N, N]`` graph (the engine passes it).
        **options: fields of :class:`GWNetConfig` (:data:`OPTIONS`).

    Raises:
        ConfigError: no graph, a bad graph, or an unknown or bad option.
    """
    if adjacency is None:
        raise ConfigError(
            "gwnet needs the data's graph (adjacency=); give one with "
            "--set data_options.adjacency=FILE or use --model gwnet-adaptive, which learns it."
        )
    config = _config(num_nodes, in_steps, out_steps, options)
    return GWNet(config, double_transition(adjacency, num_nodes))


def build_gwnet_adaptive(*, num_nodes: int, in_steps: int, out_steps: int, **options: Any) -> GWNet:
    """Registry builder of ``gwnet-adaptive`` (official ``--aptonly``): no given graph, the
    adaptive adjacency only (with ``adaptive_embedding_dim=0``: no graph convolution at all,
    the official dilated TCN with 1×1 residual convolutions).

    Raises:
        ConfigError: an unknown or bad option.
    """
    return GWNet(_config(num_nodes, in_steps, out_steps, options))


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="gwnet",
        builder=build_gwnet,
        description="Graph WaveNet (Wu et al. 2019): the data's graph (doubletransition) "
        "plus an adaptive adjacency, as the official code",
        needs_graph=True,
        needs_time_features=True,
        reads_channels=lambda o: int(o.get("input_dim", GWNetConfig.input_dim)),
        fewer_channels="--set model_overrides.input_dim=1",
        options=OPTIONS,
    ),
    ModelSpec(
        name="gwnet-adaptive",
        builder=build_gwnet_adaptive,
        description="Graph WaveNet with the adaptive adjacency only (official --aptonly): "
        "for data without a graph",
        needs_time_features=True,
        reads_channels=lambda o: int(o.get("input_dim", GWNetConfig.input_dim)),
        fewer_channels="--set model_overrides.input_dim=1",
        options=OPTIONS,
    ),
]

__all__ = [
    "OPTIONS",
    "SPECS",
    "DiffusionConv",
    "GWNet",
    "GWNetConfig",
    "GWNetLayer",
    "build_gwnet",
    "build_gwnet_adaptive",
    "diffuse",
]
