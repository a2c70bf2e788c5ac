"""Graph WaveNet's configuration: :class:`GWNetConfig` (the official hyper-parameters), the flat
:data:`OPTIONS` that ``model_overrides`` may set, and the supports made from the data's graph
(:func:`double_transition`). The model is in :mod:`linearcast.models.gwnet`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from linearcast.errors import ConfigError

#: the longest receptive field accepted: the input is zero-padded to it, so a typo such as
#: ``layers=30`` would otherwise allocate a window of 2³⁰ steps
MAX_RECEPTIVE_FIELD = 1024


@dataclass
class GWNetConfig:
    """Graph WaveNet hyper-parameters; the defaults are the official ones (``train.py``,
    ``--nhid 32``), which BasicTS uses for PEMS04, PEMS08 and METR-LA alike.

    Attributes:
        num_nodes: N (filled from the data).
        in_steps: T_in. The input is zero-padded on the left to the receptive field (13 by
            default, as the official ``engine.py`` pads 12 steps by one); a longer window gives
            the forecast from the last time position, which sees the last ``receptive_field``
            steps (beyond the paper: the official code has no output for that case).
        out_steps: T_out, the output channels of the last 1×1 convolution.
        input_dim: input channels used: the scaled target and time of day (official ``in_dim``).
        residual_channels: width of the residual stream (``nhid``).
        dilation_channels: width of the gated convolutions (``nhid``).
        skip_channels: width of the skip sum (``nhid·8``).
        end_channels: width of the output MLP (``nhid·16``).
        kernel_size: temporal kernel of the dilated convolutions.
        blocks: blocks of ``layers`` layers; dilations restart at 1 in each block.
        layers: layers per block, dilations 1, 2, 4, ...
        dropout: after each graph convolution (training only).
        adaptive_embedding_dim: width of the node embeddings ``E₁ [N, d]``, ``E₂ [d, N]`` of
            the adaptive adjacency ``softmax(ReLU(E₁E₂))`` (official: 10; 0: no adaptive
            adjacency, the official run without ``--addaptadj``).
        diffusion_steps: powers ``P, P², ...`` of each support (official ``order``).
    """

    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    input_dim: int = 2
    residual_channels: int = 32
    dilation_channels: int = 32
    skip_channels: int = 256
    end_channels: int = 512
    kernel_size: int = 2
    blocks: int = 4
    layers: int = 2
    dropout: float = 0.3
    adaptive_embedding_dim: int = 10
    diffusion_steps: int = 2

    def __post_init__(self) -> None:
        for name in ("num_nodes", "in_steps", "out_steps", "input_dim", "kernel_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"GWNet {name} must be >= 1; found {getattr(self, name)}")
        if self.receptive_field > MAX_RECEPTIVE_FIELD:
            raise ConfigError(
                f"config: GWNet's receptive field 1 + blocks·(kernel_size-1)·(2^layers-1) is "
                f"{self.receptive_field} steps (blocks={self.blocks}, layers={self.layers}, "
                f"kernel_size={self.kernel_size}), more than {MAX_RECEPTIVE_FIELD}; lower them "
                "with --set model_overrides.layers=VALUE (or blocks, kernel_size)."
            )

    @property
    def receptive_field(self) -> int:
        """Steps the last output sees: ``1 + blocks·(kernel_size-1)·(2^layers - 1)`` (13)."""
        return 1 + self.blocks * (self.kernel_size - 1) * (2**self.layers - 1)

    @property
    def dilations(self) -> list[int]:
        """Dilation of each layer, block after block: ``[1, 2, 1, 2, ...]`` by default."""
        return [2**i for _ in range(self.blocks) for i in range(self.layers)]


#: the options ``model_overrides`` may set: every config field but the shape
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(GWNetConfig)} - {"num_nodes", "in_steps", "out_steps"}
)


def transition_matrix(adjacency: np.ndarray) -> np.ndarray:
    """The random-walk matrix ``D⁻¹A`` (rows of nodes without edges stay zero): the official
    ``util.asym_adj``, computed in float64.

    Args:
        adjacency: ``[N, N]`` non-negative weights.

    Returns:
        ``[N, N]`` float64, each row of a node with edges summing to 1.
    """
    a = np.asarray(adjacency, dtype=np.float64)
    degree = a.sum(axis=1)
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree != 0)
    return inv[:, None] * a


def double_transition(adjacency: np.ndarray, num_nodes: int) -> list[Tensor]:
    """The official "doubletransition" supports ``[D⁻¹A, D⁻¹Aᵀ]`` (float32, as the official
    code stores them), after checking the graph.

    Args:
        adjacency: ``[N, N]`` weighted adjacency of the data (``TimeSeriesDataset.adjacency``).
        num_nodes: N of the data.

    Raises:
        ConfigError: a graph of another shape, or with negative or non-finite weights.
    """
    a = np.asarray(adjacency, dtype=np.float64)
    fix = "fix the graph file (--set data_options.adjacency=FILE) or use --model gwnet-adaptive"
    if a.shape != (num_nodes, num_nodes):
        raise ConfigError(
            f"gwnet expects an adjacency of shape ({num_nodes}, {num_nodes}) for the data's "
            f"{num_nodes} nodes, found {a.shape}; {fix}."
        )
    if not np.isfinite(a).all():
        raise ConfigError(
            "gwnet's random-walk supports need finite edge weights, found "
            f"{int((~np.isfinite(a)).sum())} non-finite weight(s) in the adjacency; {fix}."
        )
    if (a < 0).any():
        raise ConfigError(
            "gwnet's random-walk supports need non-negative edge weights, found a minimum of "
            f"{a.min():.4g} in the adjacency; {fix}."
        )
    return [
        torch.as_tensor(transition_matrix(m), dtype=torch.float32) for m in (a, a.T)
    ]  # the official casts to float32


__all__ = [
    "MAX_RECEPTIVE_FIELD",
    "OPTIONS",
    "GWNetConfig",
    "double_transition",
    "transition_matrix",
]
