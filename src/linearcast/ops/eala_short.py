"""EALA with materialised scores: the production path for short sequences and the options only
a quadratic path can serve (causal or padded keys at quadratic cost, ``clamp``, ``theta="exact"``).

It computes the same function as the reference
:func:`linearcast.ops.eala_naive.eala_attention_quadratic` but never forms the weights unless
it must (``clamp``): the weights ``1 + X/θ`` of the seen keys sum to n exactly,
so ``O = (Σ_seen v)/n + (X v)/(θ n)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from linearcast.ops._common import allowed_keys, check_qkv, compute_dtype, resolve_scale
from linearcast.ops.eala_theta import (
    ThetaRule,
    check_theta_rule,
    theta_from_moments,
    theta_of_scores,
)


def eala_attention_short(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    theta: ThetaRule = "paper",
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    clamp: bool = False,
    eps: float = 1e-8,
) -> Tensor:
    """EALA in O(Nq·N·(D+Dv)) with few temporaries, for short N (STAEformer's 12 steps).

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        theta: any θ rule, ``"exact"`` included (θ then carries no gradient).
        causal: query ``i`` sees keys ``j <= i``, centred on their prefix mean (``Nq == N``).
        scale: score scale τ, default ``1/sqrt(D)``.
        key_padding_mask: ``[B, N]`` bool, True = padded key (excluded from the mean, the
            statistics and n).
        clamp: clip negative weights to 0 and renormalise.
        eps: added to the paper's θ.

    Returns:
        ``[B, H, Nq, Dv]`` in ``q``'s dtype (half types are computed in float32). A query that
        sees no key returns zeros.
    """
    check_qkv(q, k, v, same_length=causal)
    check_theta_rule(theta, allow_exact=True)
    return short_unchecked(q, k, v, theta, causal, scale, key_padding_mask, clamp, eps)


def short_unchecked(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: ThetaRule,
    causal: bool,
    scale: float | None,
    key_padding_mask: Tensor | None,
    clamp: bool,
    eps: float,
) -> Tensor:
    """:func:`eala_attention_short` for inputs the caller has checked."""
    dtype = q.dtype
    cd = compute_dtype(dtype)
    q, k, v = q.to(cd), k.to(cd), v.to(cd)
    x = (q * resolve_scale(scale, q.shape[-1])) @ k.transpose(-1, -2)  # (B, H, Nq, N)
    allowed = allowed_keys(q, k, causal, key_padding_mask)
    if allowed is None and not clamp and theta != "exact":
        # the common case (every key seen): centred in place, autograd keeps q, k, v and X only
        n = k.shape[2]
        x = x - x.mean(dim=-1, keepdim=True)
        s2 = torch.linalg.vecdot(x, x)  # (B, H, Nq)
        n_t = torch.full((), float(n), dtype=cd, device=q.device)
        th = theta_from_moments(s2 / n, n_t, theta, eps)
        out = torch.addcmul(v.mean(dim=-2, keepdim=True), x @ v, (1.0 / (th * n))[..., None])
        return out.to(dtype)
    seen = None if allowed is None else allowed.to(cd)  # (B|1, 1, Nq, N)
    if seen is None:
        n_q = torch.full((1, 1, 1, 1), float(k.shape[2]), dtype=cd, device=q.device)
        x = x - x.mean(dim=-1, keepdim=True)
    else:
        n_q = seen.sum(dim=-1, keepdim=True)  # (B|1, 1, Nq, 1)
        x = (x - (x * seen).sum(dim=-1, keepdim=True) / n_q.clamp_min(1.0)) * seen
    n_c = n_q.clamp_min(1.0)
    th = theta_of_scores(x, seen, n_q, torch.linalg.vecdot(x, x) / n_c.squeeze(-1), theta, eps)
    if clamp:
        w = (1.0 + x / th[..., None]).clamp_min(0.0)
        w = w if seen is None else w * seen
        total = w.sum(dim=-1, keepdim=True)
        out = (w @ v) / torch.where(total == 0, torch.ones_like(total), total)
    else:
        v_sum = v.sum(dim=-2, keepdim=True) if seen is None else seen @ v  # (B, H, Nq|1, Dv)
        out = (v_sum + (x @ v) / th[..., None]) / n_c
    return out.to(dtype)
