"""Causal EALA in linear time: prefix-mean centring with chunked prefix sums.

Inter-chunk state plus masked intra-chunk terms; keys are shifted by the first key first, which
cancels exactly and keeps ``S2 = b − a²/n`` from cancelling catastrophically. The quadratic
reference is :func:`linearcast.ops.eala_naive.eala_attention_quadratic` with ``causal=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.ops._common import check_qkv, compute_dtype, resolve_scale, valid_keys
from linearcast.ops.eala_theta import (
    ThetaRule,
    check_theta_rule,
    constant_theta,
    theta_from_moments,
)


def _exclusive_cumsum(x: Tensor, dim: int) -> Tensor:
    """Sum of all earlier slices along ``dim`` (the first slice gets zeros)."""
    c = x.cumsum(dim)
    return torch.cat(
        [torch.zeros_like(c.narrow(dim, 0, 1)), c.narrow(dim, 0, c.shape[dim] - 1)], dim
    )


def eala_attention_causal(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    theta: ThetaRule = "paper",
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    eps: float = 1e-8,
    chunk_size: int = 64,
) -> Tensor:
    """Causal EALA in O(N·D·(D+Dv)) time and O(N·(D+C)) extra memory (C = chunk size); a
    constant θ (``"paper"``, ``"gauss"``, a float) skips the ``Σkkᵀ`` state: O(N·D·Dv).

    For query ``i`` with ``n_i`` visible keys (first key subtracted from all keys)::

        a_i = τq_i·Σ_{j≤i} k_j;  S2_i = τ²q_iᵀ(Σ_{j≤i} k_j k_jᵀ)q_i − a_i²/n_i
        o_i = [Σv + (τq_iᵀ Σ k_j v_jᵀ − (a_i/n_i) Σv)/θ_i] / n_i

    Position 1 (n = 1) returns ``v_1`` exactly. See :func:`eala_attention` for the arguments.
    """
    check_qkv(q, k, v, same_length=True)
    check_theta_rule(theta, allow_exact=False)
    return causal_unchecked(q, k, v, theta, scale, key_padding_mask, eps, chunk_size)


def causal_unchecked(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: ThetaRule,
    scale: float | None,
    key_padding_mask: Tensor | None,
    eps: float,
    chunk_size: int,
) -> Tensor:
    """:func:`eala_attention_causal` for inputs the caller has checked."""
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1; found {chunk_size}")
    dtype = q.dtype
    cd = compute_dtype(dtype)
    q, k, v = q.to(cd), k.to(cd), v.to(cd)
    b, h, n_len, d = q.shape
    dv = v.shape[-1]
    qs = q * resolve_scale(scale, d)
    k0 = k - k[:, :, :1]  # shift by the first key: exact, and k0_1 = 0
    valid = valid_keys(key_padding_mask, k)
    if valid is None:
        cnt = torch.ones(1, 1, n_len, 1, dtype=cd, device=q.device)
        vm = v
    else:
        cnt = valid[..., None]  # (B, 1, N, 1)
        k0 = k0 * cnt
        vm = v * cnt
    c = min(chunk_size, n_len)
    pad = (-n_len) % c
    if pad:
        qs, k0, vm, cnt = (F.pad(t, (0, 0, 0, pad)) for t in (qs, k0, vm, cnt))
    nc = (n_len + pad) // c
    qc = qs.reshape(b, h, nc, c, d)
    kc = k0.reshape(b, h, nc, c, d)
    vc = vm.reshape(b, h, nc, c, dv)
    cc = cnt.reshape(cnt.shape[0], 1, nc, c, 1)

    const = constant_theta(theta, eps)  # a θ that ignores S2 needs no Σkkᵀ
    # state before each chunk: Σk, [Σkkᵀ | Σkvᵀ] (Σkvᵀ alone for a constant θ), Σv, n
    kv = vc if const is not None else torch.cat([kc, vc], dim=-1)
    g_state = _exclusive_cumsum(kc.transpose(-1, -2) @ kv, 2)
    k_state = _exclusive_cumsum(kc.sum(dim=-2), 2)[..., None, :]  # (B, H, nc, 1, D)
    v_state = _exclusive_cumsum(vc.sum(dim=-2), 2)[..., None, :]  # (B, H, nc, 1, Dv)
    n_state = _exclusive_cumsum(cc.sum(dim=-2), 2)[..., None, :]  # (B|1, 1, nc, 1, 1)

    tri = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    p = (qc @ kc.transpose(-1, -2)).masked_fill(~tri, 0.0)  # (B, H, nc, C, C) intra-chunk scores
    qg = qc @ g_state  # (B, H, nc, C, D+Dv), or (.., Dv) for a constant θ
    a = (qc * k_state).sum(dim=-1) + p.sum(dim=-1)  # (B, H, nc, C)
    qkv = qg[..., -dv:] + p @ vc  # (B, H, nc, C, Dv)
    n_i = (n_state + cc.cumsum(dim=-2)).squeeze(-1)  # (B|1, 1, nc, C)
    sv = v_state + vc.cumsum(dim=-2)  # (B, H, nc, C, Dv)

    n_c = n_i.clamp_min(1.0)
    if const is None:
        bq = (qg[..., :d] * qc).sum(dim=-1) + (p * p).sum(dim=-1)
        s2 = (bq - a * a / n_c).clamp_min(0.0)
        th = theta_from_moments(s2 / n_c, n_i, theta, eps)
    else:
        th = torch.full((), const, dtype=cd, device=q.device)
    out = (sv + (qkv - (a / n_c)[..., None] * sv) / th[..., None]) / n_c[..., None]
    return out.reshape(b, h, nc * c, dv)[:, :, :n_len].to(dtype)
