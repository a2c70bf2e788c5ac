"""Multi-head attention with a pluggable kernel.

:class:`MultiHeadAttention` owns the Q/K/V/output projections (``Linear`` with bias, as in
STAEformer's ``AttentionLayer``) and hands ``[B, H, L, head_dim]`` tensors to the kernel its
:class:`~linearcast.nn.AttentionSpec` names (:mod:`linearcast.nn.kernels`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.nn.kernels import AttentionSpec, make_kernel


class MultiHeadAttention(nn.Module):
    """Multi-head attention over the second-to-last axis of ``[..., L, model_dim]``.

    Q/K/V/output are ``Linear(model_dim, model_dim)`` with bias; head ``h`` uses channels
    ``h·head_dim : (h+1)·head_dim`` (as STAEformer's ``AttentionLayer``). Any leading axes are
    folded into the batch.

    Args:
        model_dim: width of the input and output.
        num_heads: number of heads; must divide ``model_dim``.
        kernel: the attention, an :class:`~linearcast.nn.AttentionSpec` (as a model config
            holds it) or a kernel name (``"softmax"``, ``"softmax_naive"``, ``"eala"``,
            ``"linformer"``, ``"linear"``).
        seq_len: fixed key length (Linformer needs it).
        **options: fields of the spec to set or change (``causal=True``, ``theta="gauss"``, ...).
    """

    def __init__(
        self,
        model_dim: int,
        num_heads: int,
        *,
        kernel: str | AttentionSpec = "softmax",
        seq_len: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if num_heads < 1 or model_dim % num_heads != 0:
            raise ConfigError(
                f"num_heads must divide model_dim; found model_dim={model_dim}, "
                f"num_heads={num_heads}"
            )
        self.spec = AttentionSpec.of(kernel, **options)
        self.model_dim = model_dim
        self.num_heads = num_heads
        self.head_dim = model_dim // num_heads
        self.kernel_name = self.spec.kernel
        # the projections before the kernel: Linformer's E/F are drawn after them from the seed
        self.q_proj = nn.Linear(model_dim, model_dim)
        self.k_proj = nn.Linear(model_dim, model_dim)
        self.v_proj = nn.Linear(model_dim, model_dim)
        self.out_proj = nn.Linear(model_dim, model_dim)
        self.kernel = make_kernel(self.spec, num_heads=num_heads, seq_len=seq_len)

    def _heads(self, x: Tensor) -> Tensor:
        # (B*, L, model_dim) -> (B*, H, L, head_dim)
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def _self_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention's Q, K, V from one matmul with the three weights stacked (one pass
        over ``x`` instead of three; the parameters stay three ``Linear`` as in the official
        state_dict). ``x: [B*, L, model_dim]`` → three ``[B*, H, L, head_dim]`` views."""
        weight = torch.cat((self.q_proj.weight, self.k_proj.weight, self.v_proj.weight))
        bias = torch.cat((self.q_proj.bias, self.k_proj.bias, self.v_proj.bias))
        qkv = F.linear(x, weight, bias)  # (B*, L, 3·model_dim)
        qkv = qkv.unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        if self.kernel.contiguous_qkv:
            # one copy into [3, B*, H, L, hd], and the projection's buffer is freed here: the
            # kernel would copy the strided views itself, while that buffer was still alive
            qkv = qkv.contiguous()
        q, k, v = qkv.unbind(0)
        return q, k, v

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Attend from ``query`` to ``key``/``value`` (self-attention when they are None).

        Args:
            query: ``[..., Lq, model_dim]``.
            key: ``[..., L, model_dim]`` with the same leading axes; default ``query``.
            value: ``[..., L, model_dim]``; default ``key``.
            key_padding_mask: ``[..., L]`` bool, True = padded key.

        Returns:
            ``[..., Lq, model_dim]``.
        """
        key = query if key is None else key
        value = key if value is None else value
        if query.shape[-1] != self.model_dim or key.shape[:-2] != query.shape[:-2]:
            raise ConfigError(
                f"MultiHeadAttention(model_dim={self.model_dim}) expects query [..., Lq, "
                f"{self.model_dim}] and key/value [..., L, {self.model_dim}] with the same "
                f"leading axes; found {tuple(query.shape)} and {tuple(key.shape)}"
            )
        lead = query.shape[:-2]
        lq, lk = query.shape[-2], key.shape[-2]
        if key is query and value is query:
            q, k, v = self._self_qkv(query.reshape(-1, lq, self.model_dim))
        else:
            q = self._heads(self.q_proj(query).reshape(-1, lq, self.model_dim))  # (B*, H, Lq, hd)
            k = self._heads(self.k_proj(key).reshape(-1, lk, self.model_dim))  # (B*, H, L, hd)
            v = self._heads(self.v_proj(value).reshape(-1, lk, self.model_dim))  # (B*, H, L, hd)
        mask = None if key_padding_mask is None else key_padding_mask.reshape(-1, lk)
        out = self.kernel(q, k, v, mask)  # (B*, H, Lq, hd)
        out = out.transpose(1, 2).reshape(*lead, lq, self.model_dim)  # (..., Lq, model_dim)
        return self.out_proj(out)

    def extra_repr(self) -> str:
        return (
            f"model_dim={self.model_dim}, num_heads={self.num_heads}, kernel={self.kernel_name!r}"
        )
