"""Softmax attention: a naive reference and the SDPA fast path."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.ops._common import allowed_keys, check_qkv, resolve_scale


def softmax_attention_naive(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Materialised softmax attention, ``softmax(τ q kᵀ + mask) v``; the reference.

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        causal: query ``i`` sees keys ``j <= i`` (needs ``Nq == N``).
        scale: score scale τ; default ``1/sqrt(D)``.
        key_padding_mask: ``[B, N]`` bool, True marks a padded key that no query sees.

    Returns:
        ``[B, H, Nq, Dv]``. A query that sees no key returns zeros.
    """
    check_qkv(q, k, v, same_length=causal)
    tau = resolve_scale(scale, q.shape[-1])
    s = tau * q @ k.transpose(-1, -2)  # (B, H, Nq, N)
    allowed = allowed_keys(q, k, causal, key_padding_mask)
    if allowed is not None:
        s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, dim=-1)
    if allowed is not None:
        p = torch.nan_to_num(p, nan=0.0)  # rows with no visible key
    return p @ v


def softmax_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    impl: Literal["sdpa", "naive"] = "sdpa",
) -> Tensor:
    """Softmax attention through ``scaled_dot_product_attention`` (flash / memory-efficient).

    Same arguments and result as :func:`softmax_attention_naive`, its reference;
    ``impl="naive"`` runs the reference. A query that sees no key returns zeros (SDPA alone
    would return NaN).
    """
    if impl == "naive":
        return softmax_attention_naive(
            q, k, v, causal=causal, scale=scale, key_padding_mask=key_padding_mask
        )
    if impl != "sdpa":
        raise ConfigError(f"softmax_attention impl must be 'sdpa' or 'naive'; found {impl!r}")
    check_qkv(q, k, v, same_length=causal)
    tau = resolve_scale(scale, q.shape[-1])
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=tau)
    allowed = allowed_keys(q, k, causal, key_padding_mask)
    assert allowed is not None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=tau)
    seen = allowed.any(dim=-1, keepdim=True)  # (B, 1|H, Nq, 1)
    return torch.where(seen, out, torch.zeros((), dtype=out.dtype, device=out.device))
