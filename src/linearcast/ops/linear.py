"""Kernelised linear attention (Katharopoulos et al. 2020), non-causal and causal.

``feature_map="elu1"`` is the paper's ``φ(x) = elu(x) + 1`` with the normaliser
``φ(q)·Σφ(k)``; ``feature_map="identity", normalize=False`` is the plain causal
``o_t = Σ_{j≤t} (q_t·k_j) v_j`` that SAMoVAR reads as a VAR.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.ops._common import allowed_keys, check_qkv, valid_keys

FeatureMap = Literal["elu1", "identity"]
FEATURE_MAPS: tuple[FeatureMap, ...] = ("elu1", "identity")


def _features(x: Tensor, feature_map: FeatureMap) -> Tensor:
    if feature_map == "elu1":
        return F.elu(x) + 1.0
    if feature_map == "identity":
        return x
    raise ConfigError(f"feature_map must be 'elu1' or 'identity'; found {feature_map!r}")


def linear_attention_naive(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    feature_map: FeatureMap = "elu1",
    normalize: bool = True,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """Reference: materialise ``A = φ(q)φ(k)ᵀ`` (masked), ``O = A v / (A·1 + eps)``.

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        causal: query ``i`` sees keys ``j <= i``.
        feature_map: ``"elu1"`` or ``"identity"``.
        normalize: divide by ``φ(q)·Σφ(k) + eps``; False gives the unnormalised sum.
        scale: multiplies q before the feature map; default 1 (no scaling).
        key_padding_mask: ``[B, N]`` bool, True = padded key.
        eps: added to the normaliser.

    Returns:
        ``[B, H, Nq, Dv]``.
    """
    check_qkv(q, k, v, same_length=causal)
    fq = _features(q * (1.0 if scale is None else scale), feature_map)
    fk = _features(k, feature_map)
    a = fq @ fk.transpose(-1, -2)  # (B, H, Nq, N)
    allowed = allowed_keys(q, k, causal, key_padding_mask)
    if allowed is not None:
        a = a * allowed.to(a.dtype)
    out = a @ v
    if normalize:
        out = out / (a.sum(dim=-1, keepdim=True) + eps)
    return out


def linear_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    feature_map: FeatureMap = "elu1",
    normalize: bool = True,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    eps: float = 1e-6,
    chunk_size: int = 64,
) -> Tensor:
    """Linear attention in O(N·D·Dv); same arguments and result as :func:`linear_attention_naive`.

    The causal path is chunked: an inter-chunk state ``Σ φ(k) [v | 1]ᵀ`` plus masked
    intra-chunk products, so no N×N tensor is formed (only ``C×C`` per chunk).
    """
    check_qkv(q, k, v, same_length=causal)
    fq = _features(q * (1.0 if scale is None else scale), feature_map)
    fk = _features(k, feature_map)
    valid = valid_keys(key_padding_mask, k)
    if valid is not None:
        fk = fk * valid[..., None]
    # append a ones column to v: its output is the normaliser φ(q)·Σφ(k)
    vv = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1) if normalize else v
    if not causal:
        out = fq @ (fk.transpose(-1, -2) @ vv)  # (B, H, Nq, Dv[+1])
    else:
        out = _causal_linear(fq, fk, vv, chunk_size)
    if normalize:
        return out[..., :-1] / (out[..., -1:] + eps)
    return out


def _causal_linear(fq: Tensor, fk: Tensor, v: Tensor, chunk_size: int) -> Tensor:
    """``o_i = Σ_{j≤i} (fq_i·fk_j) v_j``, chunked; ``[B, H, N, D]`` twice, ``[B, H, N, Dv]``."""
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1; found {chunk_size}")
    b, h, n, d = fq.shape
    dv = v.shape[-1]
    c = min(chunk_size, n)
    pad = (-n) % c
    if pad:
        fq, fk, v = (F.pad(t, (0, 0, 0, pad)) for t in (fq, fk, v))
    nc = (n + pad) // c
    qc = fq.reshape(b, h, nc, c, d)
    kc = fk.reshape(b, h, nc, c, d)
    vc = v.reshape(b, h, nc, c, dv)
    kv = (kc.transpose(-1, -2) @ vc).cumsum(dim=2)  # (B, H, nc, D, Dv) inclusive
    state = torch.cat([torch.zeros_like(kv[:, :, :1]), kv[:, :, :-1]], dim=2)
    tri = torch.ones(c, c, dtype=torch.bool, device=fq.device).tril()
    p = (qc @ kc.transpose(-1, -2)).masked_fill(~tri, 0.0)  # (B, H, nc, C, C)
    out = qc @ state + p @ vc
    return out.reshape(b, h, nc * c, dv)[:, :, :n]
