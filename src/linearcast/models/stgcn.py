"""STGCN (Yu et al., IJCAI 2018) as BasicTS v0.5.8 runs it: the PyTorch port of hazdzz/STGCN
(``STGCNChebGraphConv``, revision 10d7d8d), Chebyshev graph convolutions on a given graph.

Two ST blocks ``T G T N D`` (gated temporal conv, Chebyshev graph conv, ReLU, gated temporal
conv, LayerNorm over ``[N, C]``, dropout) shorten the 12-step window by ``2·(Kt−1)`` each; the
output block ``T N F F`` (a temporal conv over the ``Ko`` steps left, LayerNorm, two linears)
emits every horizon at once. With the BasicTS defaults the model has ``227 084`` parameters at
PEMS08's N = 170 (``docs/models.md``, "Baselines").

The graph operator: BasicTS feeds ``L = I − D^{-1/2} A D^{-1/2}`` unscaled (``laplacian=
"normlap"``, the default: BasicTS's published numbers come from it); hazdzz symmetrises ``A`` and
rescales to ``2L/λ_max − I`` (``laplacian="scaled"``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options

Laplacian = Literal["normlap", "scaled"]
Gate = Literal["glu", "gtu"]
_POSITIVE = (
    "num_nodes", "in_steps", "out_steps", "input_dim", "output_dim", "temporal_kernel", "cheb_k",
    "num_blocks", "temporal_channels", "graph_channels", "output_channels",
)  # fmt: skip
_GRAPH_FIX = "choose another graph with --set data_options.adjacency=FILE"
#: the highest Chebyshev order on the unscaled ``normlap`` operator: its eigenvalues reach 2,
#: where ``T_k(2) ≈ 3.73^k / 2``; beyond ``T_12(2) = 3.5e6`` the terms of eigenvalues in [0, 1]
#: (bounded by 1) drown in float32's 1.2e-7 relative precision, and near 40 they overflow
#: (NaN outputs and loss). ``laplacian="scaled"`` keeps every ``T_k`` within [-1, 1].
MAX_NORMLAP_CHEB_K = 13


@dataclass
class STGCNConfig:
    """STGCN hyper-parameters; the defaults are BasicTS's for PEMS04/PEMS08/METR-LA.

    Attributes:
        num_nodes: N (filled from the data; the LayerNorms are ``[N, C]``).
        in_steps: T_in; must leave ``Ko = T_in − num_blocks·2·(temporal_kernel−1) >= 1``.
        out_steps: T_out.
        input_dim: channels of ``x`` the model reads (BasicTS: the target only).
        output_dim: output channels C_out.
        temporal_kernel: Kt, the temporal convolution's width.
        cheb_k: Ks, Chebyshev terms ``T_0 .. T_{Ks−1}`` of the graph operator.
        num_blocks: ST blocks.
        temporal_channels: channels of the temporal convolutions (64).
        graph_channels: channels of the graph convolution (16; the bottleneck).
        output_channels: width of the output block's convolution and hidden linear (128).
        act_func: ``"glu"``: ``(P + x) ⊙ σ(Q)``; ``"gtu"``: ``tanh(P + x) ⊙ σ(Q)``.
        laplacian: ``"normlap"`` (BasicTS) or ``"scaled"`` (hazdzz).
        dropout: after each ST block's LayerNorm.
        adjacency: ``[N, N]`` non-negative weights (the engine passes the dataset's graph).
    """

    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    input_dim: int = 1
    output_dim: int = 1
    temporal_kernel: int = 3
    cheb_k: int = 3
    num_blocks: int = 2
    temporal_channels: int = 64
    graph_channels: int = 16
    output_channels: int = 128
    act_func: Gate = "glu"
    laplacian: Laplacian = "normlap"
    dropout: float = 0.5
    adjacency: Any = None

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"STGCN {name} must be an integer >= 1; found {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"STGCN dropout must be in [0, 1); found {self.dropout!r}")
        if self.act_func not in ("glu", "gtu"):
            raise ConfigError(f"STGCN act_func must be 'glu' or 'gtu'; found {self.act_func!r}")
        if self.laplacian not in ("normlap", "scaled"):
            raise ConfigError(
                f"STGCN laplacian must be 'normlap' or 'scaled'; found {self.laplacian!r}"
            )
        if self.laplacian == "normlap" and self.cheb_k > MAX_NORMLAP_CHEB_K:
            raise ConfigError(
                f"STGCN cheb_k={self.cheb_k} on the unscaled laplacian='normlap' (eigenvalues up "
                f"to 2, where T_k grows as 3.73^k) leaves float32 no precision beyond cheb_k="
                f"{MAX_NORMLAP_CHEB_K} and overflows near 40; set --set model_overrides.cheb_k="
                f"{MAX_NORMLAP_CHEB_K} or lower, or --set model_overrides.laplacian='scaled' "
                f"(eigenvalues in [-1, 1]) for higher orders."
            )
        if self.ko < 1:
            need = self.in_steps - self.ko + 1
            shortening = 2 * (self.temporal_kernel - 1)  # > 0 here
            # what fits the given window instead: fewer blocks if one fits, else a shorter kernel
            blocks = (self.in_steps - 1) // shortening
            kernel = (self.in_steps - 1) // (2 * self.num_blocks) + 1
            instead = (
                f"--set model_overrides.num_blocks={blocks}"
                if blocks >= 1
                else f"--set model_overrides.temporal_kernel={kernel}"
            )
            raise ConfigError(
                f"STGCN with temporal_kernel={self.temporal_kernel} and num_blocks="
                f"{self.num_blocks} needs in_steps >= {need} (each block shortens the window by "
                f"{shortening}), found in_steps={self.in_steps}; set --set "
                f"protocol_overrides.in_steps={need}, or {instead} to fit {self.in_steps} steps."
            )

    @property
    def ko(self) -> int:
        """Steps left for the output block's temporal convolution."""
        return self.in_steps - self.num_blocks * 2 * (self.temporal_kernel - 1)


#: the options ``model_overrides`` may set (the graph comes from the data)
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(STGCNConfig)}
    - {"num_nodes", "in_steps", "out_steps", "adjacency"}
)


def graph_operator(adjacency: Any, laplacian: Laplacian = "normlap") -> np.ndarray:
    """The ``[N, N]`` float64 operator the Chebyshev recurrence multiplies by.

    ``"normlap"`` (BasicTS ``load_adj(..., "normlap")``): ``I − D^{-1/2} A D^{-1/2}`` with D the
    row sums of ``A`` as given (no symmetrising, no self-loops, no rescaling). ``"scaled"``
    (hazdzz ``calc_gso`` + ``calc_chebynet_gso``): ``A ← max(A, Aᵀ)``, the same Laplacian, then
    ``2L/λ_max − I`` (``L − I`` when ``λ_max >= 2``). A node without edges gets ``D^{-1/2} = 0``.

    Raises:
        ConfigError: not a square, finite, non-negative matrix.
    """
    a = np.asarray(adjacency, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not np.isfinite(a).all():
        raise ConfigError(
            f"STGCN needs a finite square adjacency [N, N], found shape {a.shape}; {_GRAPH_FIX}."
        )
    if (a < 0).any():
        raise ConfigError(
            f"STGCN needs non-negative edge weights (its degrees are row sums), found a minimum "
            f"of {a.min():.4g}; {_GRAPH_FIX}."
        )
    if laplacian == "scaled":
        a = np.maximum(a, a.T)
    degree = a.sum(axis=1)
    with np.errstate(divide="ignore"):
        d = np.where(degree > 0, degree**-0.5, 0.0)
    lap = np.eye(len(a)) - d[:, None] * a * d[None, :]
    if laplacian == "normlap":
        return lap
    lam = float(np.linalg.eigvalsh(lap).max()) if len(a) else 0.0
    if lam >= 2:
        return lap - np.eye(len(a))
    return 2 * lap / lam - np.eye(len(a))


def _align(x: Tensor, c_out: int, conv: nn.Conv2d) -> Tensor:
    """Match ``x: [B, C, T, N]`` to ``c_out`` channels: 1×1 conv down, zero channels up."""
    c_in = x.shape[1]
    if c_in > c_out:
        return conv(x)
    if c_in < c_out:
        return torch.cat([x, x.new_zeros(x.shape[0], c_out - c_in, *x.shape[2:])], dim=1)
    return x


def _aligner(c_in: int, c_out: int) -> nn.Conv2d:
    """The 1×1 conv of :func:`_align`. The reference builds it whatever the widths; it is kept
    (frozen when unused) so parameter counts and state dicts match the reference's."""
    conv = nn.Conv2d(c_in, c_out, kernel_size=1)
    conv.requires_grad_(c_in > c_out)
    return conv


class TemporalConv(nn.Module):
    """Gated temporal convolution over ``Kt`` steps, no padding.

    ``[B, C_in, T, N] → [B, C_out, T−Kt+1, N]``: a ``(Kt, 1)`` conv gives ``[P, Q]``; the output
    is ``(P + x̃) ⊙ σ(Q)`` (GLU) with ``x̃`` the aligned input's last ``T−Kt+1`` steps.
    """

    def __init__(self, kt: int, c_in: int, c_out: int, act_func: Gate) -> None:
        super().__init__()
        self.kt, self.c_out, self.act_func = kt, c_out, act_func
        self.align = _aligner(c_in, c_out)  # created first, as in the reference (same seed)
        self.conv = nn.Conv2d(c_in, 2 * c_out, kernel_size=(kt, 1))

    def forward(self, x: Tensor) -> Tensor:
        x_in = _align(x, self.c_out, self.align)[:, :, self.kt - 1 :]  # (B, C_out, T', N)
        p, q = self.conv(x).chunk(2, dim=1)  # (B, C_out, T', N) each
        p = p + x_in
        return (p if self.act_func == "glu" else torch.tanh(p)) * torch.sigmoid(q)


class ChebGraphConv(nn.Module):
    """``x̃ + Σ_k T_k(L) x̃ W_k + b`` with ``x̃`` the input aligned to ``c_out`` channels.

    ``[B, C_in, T, N] → [B, T, N, C_out]`` (channels last, for the LayerNorm-free ReLU that
    follows and the next temporal conv, which permutes back). ``T_0 x = x``, ``T_1 x = L x``,
    ``T_k x = 2 L T_{k−1} x − T_{k−2} x``.
    """

    def __init__(self, c_in: int, c_out: int, cheb_k: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.align = _aligner(c_in, c_out)
        self.weight = nn.Parameter(torch.empty(cheb_k, c_out, c_out))
        self.bias = nn.Parameter(torch.empty(c_out))
        # the reference's init: kaiming-uniform(a=√5) on [Ks, C, C] (fan_in = C·C)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -1 / c_out, 1 / c_out)

    def forward(self, x: Tensor, gso: Tensor) -> Tensor:
        x = _align(x, self.c_out, self.align).permute(0, 2, 3, 1)  # (B, T, N, C)
        terms = [x]
        if len(self.weight) > 1:
            terms.append(gso @ x)  # (B, T, N, C): node mixing L·x
        for _ in range(2, len(self.weight)):
            terms.append(2 * (gso @ terms[-1]) - terms[-2])
        out = torch.einsum("kbtnc,kcd->btnd", torch.stack(terms), self.weight)
        return out + self.bias + x  # (B, T, N, C_out)


class STBlock(nn.Module):
    """``T G T N D``: ``[B, C_in, T, N] → [B, C_t, T − 2(Kt−1), N]``."""

    def __init__(self, c: STGCNConfig, c_in: int) -> None:
        super().__init__()
        self.tconv1 = TemporalConv(c.temporal_kernel, c_in, c.temporal_channels, c.act_func)
        self.gconv = ChebGraphConv(c.temporal_channels, c.graph_channels, c.cheb_k)
        self.tconv2 = TemporalConv(
            c.temporal_kernel, c.graph_channels, c.temporal_channels, c.act_func
        )
        self.norm = nn.LayerNorm([c.num_nodes, c.temporal_channels])
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, gso: Tensor) -> Tensor:
        h = torch.relu(self.gconv(self.tconv1(x), gso))  # (B, T', N, C_g)
        h = self.tconv2(h.permute(0, 3, 1, 2))  # (B, C_t, T'', N)
        h = self.norm(h.permute(0, 2, 3, 1))  # (B, T'', N, C_t): normalised over [N, C_t]
        return self.dropout(h).permute(0, 3, 1, 2)  # (B, C_t, T'', N)


class OutputBlock(nn.Module):
    """``T N F F``: ``[B, C_t, Ko, N] → [B, N, T_out·C_out]`` (every horizon at once)."""

    def __init__(self, c: STGCNConfig) -> None:
        super().__init__()
        width = c.output_channels
        self.tconv = TemporalConv(c.ko, c.temporal_channels, width, c.act_func)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, c.out_steps * c.output_dim)
        self.norm = nn.LayerNorm([c.num_nodes, width])

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.tconv(x)[:, :, 0].transpose(1, 2))  # (B, N, width)
        return self.fc2(torch.relu(self.fc1(h)))  # (B, N, T_out·C_out)


class STGCN(nn.Module):
    """STGCN with Chebyshev graph convolutions on a fixed graph.

    Args:
        config: the hyper-parameters and the adjacency.
    """

    def __init__(self, config: STGCNConfig) -> None:
        super().__init__()
        c = self.config = config
        self.aux_loss: Tensor | None = None  # the engine contract: no auxiliary loss term
        if config.adjacency is None:
            raise ConfigError(
                "STGCN needs a graph (adjacency=[N, N]); give the data one with "
                "--set data_options.adjacency=FILE."
            )
        gso = graph_operator(config.adjacency, config.laplacian)
        if gso.shape[0] != c.num_nodes:
            raise ConfigError(
                f"STGCN was given a graph of {gso.shape[0]} nodes for N={c.num_nodes} series; "
                f"{_GRAPH_FIX}."
            )
        # the operator is state: a trained model keeps the graph it was trained on
        self.register_buffer("gso", torch.as_tensor(gso, dtype=torch.get_default_dtype()))
        widths = [c.input_dim] + [c.temporal_channels] * c.num_blocks
        self.blocks = nn.ModuleList([STBlock(c, widths[i]) for i in range(c.num_blocks)])
        self.output = OutputBlock(c)

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``out_steps`` steps.

        Args:
            x: ``[B, T_in, N, C_in]``, channel 0 the scaled target (the first ``input_dim``
                channels are read).

        Returns:
            ``[B, T_out, N, output_dim]`` in the target's scaled units.
        """
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.in_steps or x.shape[3] < c.input_dim:
            raise ConfigError(
                f"STGCN expects x of shape [B, T_in={c.in_steps}, N, C_in>={c.input_dim}]; "
                f"found {tuple(x.shape)}"
            )
        if x.shape[2] != c.num_nodes:
            raise ConfigError(
                f"this STGCN was built for N={c.num_nodes} nodes and found {x.shape[2]}: its "
                "graph and LayerNorms tie it to N"
            )
        h = x[..., : c.input_dim].permute(0, 3, 1, 2)  # (B, C_in, T, N)
        gso = self.gso.to(h.dtype)
        for block in self.blocks:
            h = block(h, gso)  # (B, C_t, T − 2(Kt−1), N)
        out = self.output(h)  # (B, N, T_out·C_out)
        b, n = out.shape[:2]
        return out.view(b, n, c.out_steps, c.output_dim).transpose(1, 2)  # (B, T_out, N, C)


def build_stgcn(*, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any) -> STGCN:
    """Registry builder: ``STGCN(STGCNConfig(...))``; ``adjacency=`` is required.

    Raises:
        ConfigError: an unknown option, a bad value, or a missing or unusable graph.
    """
    check_options("STGCN", {k: v for k, v in overrides.items() if k != "adjacency"}, OPTIONS)
    config = STGCNConfig(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **overrides)
    return STGCN(config)


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="stgcn",
        builder=build_stgcn,
        description="STGCN (Yu et al. 2018), Chebyshev graph convs, as BasicTS ports hazdzz/STGCN",
        needs_graph=True,
        fixed_num_nodes=True,
        family="spatiotemporal",
        options=OPTIONS,
        reads_channels=lambda o: int(o.get("input_dim", STGCNConfig.input_dim)),
        fewer_channels="--set model_overrides.input_dim=1",
    ),
]

__all__ = [
    "MAX_NORMLAP_CHEB_K",
    "OPTIONS",
    "SPECS",
    "STGCN",
    "ChebGraphConv",
    "OutputBlock",
    "STBlock",
    "STGCNConfig",
    "TemporalConv",
    "build_stgcn",
    "graph_operator",
]
