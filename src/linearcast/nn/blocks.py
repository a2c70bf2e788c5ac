"""Transformer blocks built on :class:`~linearcast.nn.attention.MultiHeadAttention`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from linearcast.nn.attention import MultiHeadAttention
from linearcast.nn.kernels import AttentionSpec
from linearcast.ops.dropout import dropout


class FastDropout(nn.Module):
    """``nn.Dropout`` through :func:`linearcast.ops.dropout` (cheaper masks on the CPU).

    Args:
        p: drop probability.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """``x: [...]`` → same shape, dropped and rescaled while training."""
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SelfAttentionLayer(nn.Module):
    """Post-LayerNorm encoder block applied along one axis (STAEformer's ``SelfAttentionLayer``).

    ``h = LN1(x + Dropout(Attn(x)))``, ``out = LN2(h + Dropout(FFN(h)))`` with
    ``FFN = Linear(model_dim, feed_forward_dim) → ReLU → Linear(feed_forward_dim, model_dim)``.
    Attention runs along ``dim`` of ``x: [..., model_dim]``; the other axes are batch.
    For STAEformer's ``[B, T, N, D]``: ``dim=1`` is temporal attention (per node, across steps),
    ``dim=2`` spatial attention (per step, across nodes).

    Args:
        model_dim: width D.
        feed_forward_dim: hidden width of the FFN.
        num_heads: attention heads.
        dropout: dropout after the attention and after the FFN.
        kernel: the attention, an :class:`~linearcast.nn.AttentionSpec` or a kernel name.
        fast_dropout: masks from :func:`linearcast.ops.dropout` (cheaper on the CPU; another
            random stream) instead of ``nn.Dropout``.
        **attention_options: passed to :class:`MultiHeadAttention` (``seq_len``, and spec
            fields such as ``theta`` when ``kernel`` is a name).
    """

    def __init__(
        self,
        model_dim: int,
        feed_forward_dim: int = 2048,
        num_heads: int = 8,
        dropout: float = 0.0,
        *,
        kernel: str | AttentionSpec = "softmax",
        fast_dropout: bool = False,
        **attention_options: Any,
    ) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(model_dim, num_heads, kernel=kernel, **attention_options)
        self.feed_forward = nn.Sequential(
            nn.Linear(model_dim, feed_forward_dim),
            # not in place (the official code's is): on the Linear's view it puts CopySlices
            # in the graph, one more copy of the hidden tensor in backward; same values
            nn.ReLU(),
            nn.Linear(feed_forward_dim, model_dim),
        )
        self.ln1 = nn.LayerNorm(model_dim)
        self.ln2 = nn.LayerNorm(model_dim)
        self.dropout1: nn.Module = FastDropout(dropout) if fast_dropout else nn.Dropout(dropout)
        self.dropout2: nn.Module = FastDropout(dropout) if fast_dropout else nn.Dropout(dropout)

    def forward(self, x: Tensor, dim: int = -2) -> Tensor:
        """Apply the block with attention along axis ``dim``.

        Args:
            x: ``[..., L (at dim), ..., model_dim]``; ``dim`` must not be the last axis.
            dim: the axis attended over.

        Returns:
            Same shape as ``x``.
        """
        x = x.transpose(dim, -2)  # (..., L, D)
        out = self.ln1(x + self.dropout1(self.attn(x)))
        out = self.ln2(out + self.dropout2(self.feed_forward(out)))
        return out.transpose(dim, -2)
