"""STAEformer's configuration: :class:`STAEformerConfig` (the official hyper-parameters and the
attention of each kind of block) and the flat :data:`OPTIONS` that ``model_overrides`` may set.
The model is in :mod:`linearcast.models.staeformer`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from linearcast.errors import ConfigError
from linearcast.models.base import check_options
from linearcast.nn import AttentionSpec, split_attention_options
from linearcast.nn.kernels import OPTION_NAMES

NodeEmbedding = Literal["adaptive", "history"]


@dataclass
class STAEformerConfig:
    """STAEformer hyper-parameters; the defaults are the official ones for every dataset.

    Attributes:
        num_nodes: N, the number of nodes (filled from the data).
        in_steps: T_in, input window length.
        out_steps: T_out, horizon.
        steps_per_day: size of the time-of-day embedding table (288 for 5-minute data).
        input_dim: input channels fed to the input projection (3: target, time of day, day of
            week — the official model projects all three).
        output_dim: output channels C_out.
        input_embedding_dim: width of the input projection.
        tod_embedding_dim: time-of-day embedding width (0 disables it).
        dow_embedding_dim: day-of-week embedding width (0 disables it).
        spatial_embedding_dim: a ``[N, dim]`` node embedding (official ablation; 0 = off).
        adaptive_embedding_dim: width of the adaptive ``[T_in, N, dim]`` embedding, or of the
            history embedding when ``node_embedding="history"`` (0 = no such embedding).
        feed_forward_dim: FFN hidden width.
        num_heads: attention heads (model dim 152 / 4 = head dim 38).
        num_layers: temporal layers, then as many spatial layers.
        dropout: dropout after attention and FFN.
        use_mixed_proj: per-node ``Linear(T_in·D → T_out·C_out)`` output (official default);
            otherwise ``Linear(T_in → T_out)`` over time then ``Linear(D → C_out)``.
        temporal_attention: the attention of the temporal blocks (across the ``T_in`` steps):
            kernel (``"softmax"`` via SDPA, ``"softmax_naive"`` materialised as in the official
            code, ``"eala"``, ``"linformer"``, ``"linear"``), θ, path, ... With EALA,
            ``impl="auto"`` picks quadratic for 12 steps (``L <= 2·head_dim``); Linformer's k
            is capped at the 12 steps. ``theta="learned"`` learns one θ per head and layer.
        spatial_attention: the attention of the spatial blocks (across the N nodes); EALA's
            ``"auto"`` picks linear once ``N > 2·head_dim``.
        node_embedding: ``"adaptive"`` (official) or ``"history"`` (beyond the paper: a
            per-node MLP of the node's input window, ``T_in → adaptive_embedding_dim →
            T_in·adaptive_embedding_dim``, shared by all nodes, so it does not tie the model to
            N and keeps the model node-permutation equivariant).
        checkpoint_activations: memory-saving mode (beyond the paper): while training, each
            block's activations are recomputed in backward instead of stored
            (``torch.utils.checkpoint``), trading about one extra forward for memory.
        fast_dropout: draw the dropout masks with :func:`linearcast.ops.dropout` (one 64-bit
            random integer per four elements) instead of ``torch.nn.functional.dropout``, on
            the CPU (beyond the paper; the same distribution up to a 2⁻¹⁷ rounding of the rate,
            but another random stream than the official code's for the same seed). On by
            default: ``bernoulli_`` was a fifth of a CPU training step; this makes ELinFormer's
            step 11-20% faster and STAEformer's 0-7%, with 12% less activation memory
            (docs/engine.md, "Speed and memory settings"). Off gives the official code's masks;
            on CUDA both are ``F.dropout``.
    """

    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    steps_per_day: int = 288
    input_dim: int = 3
    output_dim: int = 1
    input_embedding_dim: int = 24
    tod_embedding_dim: int = 24
    dow_embedding_dim: int = 24
    spatial_embedding_dim: int = 0
    adaptive_embedding_dim: int = 80
    feed_forward_dim: int = 256
    num_heads: int = 4
    num_layers: int = 3
    dropout: float = 0.1
    use_mixed_proj: bool = True
    temporal_attention: AttentionSpec = field(default_factory=AttentionSpec)
    spatial_attention: AttentionSpec = field(default_factory=AttentionSpec)
    node_embedding: NodeEmbedding = "adaptive"
    checkpoint_activations: bool = False
    fast_dropout: bool = True

    def __post_init__(self) -> None:
        for name in ("num_nodes", "in_steps", "out_steps", "steps_per_day", "num_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"STAEformer {name} must be >= 1; found {getattr(self, name)}")
        for spec in (self.temporal_attention, self.spatial_attention):
            if spec.causal:
                raise ConfigError("STAEformer attention sees every step and node: causal=False")
        if self.node_embedding not in ("adaptive", "history"):
            raise ConfigError(
                "STAEformer node_embedding must be 'adaptive' or 'history'; "
                f"found {self.node_embedding!r}"
            )
        if self.model_dim % self.num_heads != 0:
            raise ConfigError(
                f"STAEformer num_heads={self.num_heads} must divide the model dim "
                f"{self.model_dim} (the sum of the embedding widths)"
            )

    @property
    def model_dim(self) -> int:
        """Width D: input + tod + dow + spatial + adaptive embedding widths (152 by default)."""
        return (
            self.input_embedding_dim
            + self.tod_embedding_dim
            + self.dow_embedding_dim
            + self.spatial_embedding_dim
            + self.adaptive_embedding_dim
        )

    @property
    def fixed_num_nodes(self) -> bool:
        """Whether a parameter depends on N (adaptive or spatial embedding, Linformer's E/F)."""
        return (
            (self.node_embedding == "adaptive" and self.adaptive_embedding_dim > 0)
            or self.spatial_embedding_dim > 0
            or self.spatial_attention.kernel == "linformer"
        )

    @classmethod
    def from_options(
        cls, *, num_nodes: int, in_steps: int, out_steps: int, **options: Any
    ) -> STAEformerConfig:
        """The config of flat options, as ``model_overrides`` and the registry give them.

        The attention options (``attention``, ``theta``, ``impl``, ``clamp``, ... — see
        :data:`linearcast.nn.kernels.OPTION_NAMES`) apply to both kinds of block;
        ``temporal_impl`` and ``spatial_impl`` set the EALA path of one kind.

        Raises:
            ConfigError: an option that is not a field (the known ones are named) or a bad value.
        """
        check_options("STAEformer", options, OPTIONS)
        attention, rest = split_attention_options(options)
        base = AttentionSpec().with_options(**attention)

        def axis_spec(axis: str) -> AttentionSpec:
            impl = rest.pop(f"{axis}_impl", None)
            return base if impl is None else base.with_options(impl=impl)

        return cls(
            num_nodes=num_nodes,
            in_steps=in_steps,
            out_steps=out_steps,
            temporal_attention=axis_spec("temporal"),
            spatial_attention=axis_spec("spatial"),
            **rest,
        )

    @property
    def min_input_channels(self) -> int:
        """Channels ``x`` must carry: the projected ones and the time features used."""
        need = self.input_dim
        if self.tod_embedding_dim > 0:
            need = max(need, 2)
        if self.dow_embedding_dim > 0:
            need = max(need, 3)
        return need


#: the flat options ``model_overrides`` may set: the config's fields but the shape and the two
#: attention specs, the attention options, and the EALA path of each kind of block
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(STAEformerConfig)}
    - {"num_nodes", "in_steps", "out_steps", "temporal_attention", "spatial_attention"}
    | set(OPTION_NAMES)
    | {"temporal_impl", "spatial_impl"}
)


__all__ = ["OPTIONS", "NodeEmbedding", "STAEformerConfig"]
