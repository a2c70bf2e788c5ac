"""EALA, quadratic form: the readable reference, and the analysis tools built on its weights.

Everything here materialises the ``[B, H, Nq, N]`` weights, in the plainest tensor code, and
depends on nothing but torch and the θ rules (:mod:`linearcast.ops.eala_theta`): it is what
every fast path (:mod:`linearcast.ops.eala`, ``eala_short``, ``eala_causal``) is tested against,
so it shares no computation with them (only the input checks of :mod:`linearcast.ops._common`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from linearcast.ops._common import check_padding_mask, check_qkv
from linearcast.ops.eala_theta import (
    ThetaRule,
    check_theta_rule,
    softmax_entropy,
    theta_of_scores,
)


class _Centred(NamedTuple):
    x: Tensor  # (B, H, Nq, N) centred scores, 0 where a key is not seen
    mask: Tensor | None  # (B|1, 1, Nq, N) float 1/0, None when every key is seen
    n: Tensor  # (B|1, 1, Nq|1, 1) number of keys seen (float)


def _centred_scores(
    q: Tensor, k: Tensor, causal: bool, scale: float | None, key_padding_mask: Tensor | None
) -> _Centred:
    tau = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    s = tau * q @ k.transpose(-1, -2)  # (B, H, Nq, N)
    seen = torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device)[None, None]
    if causal:
        seen = seen.tril()
    if key_padding_mask is not None:
        seen = seen & ~key_padding_mask[:, None, None, :]
    if not causal and key_padding_mask is None:
        n = torch.full((1, 1, 1, 1), float(k.shape[2]), dtype=s.dtype, device=s.device)
        return _Centred(s - s.mean(dim=-1, keepdim=True), None, n)
    m = seen.to(s.dtype)
    n = m.sum(dim=-1, keepdim=True)
    mean = (s * m).sum(dim=-1, keepdim=True) / n.clamp_min(1.0)
    return _Centred((s - mean) * m, m, n)


def _half_to_float(*tensors: Tensor) -> list[Tensor]:
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors]


def eala_attention_quadratic(
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
    """EALA with materialised weights, O(Nq·N·D): the reference.

    ``S = τ q kᵀ; X = S − mean_j S; θ = rule(Σ_j X²/n, n); W = 1 + X/θ`` (optionally
    ``max(W, 0)``); ``Φ = W / Σ_j W; O = Φ v``. Causal rows are centred on their prefix mean.

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        theta: θ rule (see :func:`theta_from_moments`) or ``"exact"`` (entropy matched by
            bisection; θ carries no gradient).
        causal: query ``i`` sees keys ``j <= i`` (needs ``Nq == N``).
        scale: score scale τ, default ``1/sqrt(D)``.
        key_padding_mask: ``[B, N]`` bool, True = padded key (excluded from the mean, the
            statistics and n).
        clamp: clip negative weights to 0 and renormalise (only possible on this path).
        eps: see :func:`theta_from_moments`.

    Returns:
        ``[B, H, Nq, Dv]`` in ``q``'s dtype (half types are computed in float32). A query that
        sees no key returns zeros.
    """
    return _eala_weights(q, k, v, theta, causal, scale, key_padding_mask, clamp, eps)[0]


def eala_weights(
    q: Tensor,
    k: Tensor,
    *,
    theta: ThetaRule = "paper",
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    clamp: bool = False,
    eps: float = 1e-8,
) -> Tensor:
    """The EALA weights ``Φ``, ``[B, H, Nq, N]``; rows sum to 1 (0 at unseen keys)."""
    v = k.new_zeros((*k.shape[:3], 1))
    return _eala_weights(q, k, v, theta, causal, scale, key_padding_mask, clamp, eps)[1]


def _eala_weights(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: ThetaRule,
    causal: bool,
    scale: float | None,
    key_padding_mask: Tensor | None,
    clamp: bool,
    eps: float,
) -> tuple[Tensor, Tensor]:
    check_qkv(q, k, v, same_length=causal)
    if key_padding_mask is not None:
        check_padding_mask(key_padding_mask, k)
    check_theta_rule(theta, allow_exact=True)
    dtype = q.dtype
    q, k, v = _half_to_float(q, k, v)
    x, mask, n = _centred_scores(q, k, causal, scale, key_padding_mask)
    n_q = n.squeeze(-1)
    th = theta_of_scores(x, mask, n, (x * x).sum(dim=-1) / n_q.clamp_min(1.0), theta, eps)
    w = 1.0 + x / th[..., None]
    if mask is not None:
        w = w * mask
    if clamp:
        w = w.clamp_min(0.0)
    total = w.sum(dim=-1, keepdim=True)
    phi = w / torch.where(total == 0, torch.ones_like(total), total)  # unseen rows stay 0
    return (phi @ v).to(dtype), phi.to(dtype)


class EalaStats(NamedTuple):
    """Per-query diagnostics of EALA against softmax; every field is ``[B, H, Nq]``."""

    theta: Tensor  #: θ the rule picks
    sigma: Tensor  #: standard deviation of the (scaled) scores over the keys
    n: Tensor  #: keys the query sees
    neg_fraction: Tensor  #: fraction of seen keys with a negative weight
    softmax_entropy: Tensor  #: H(softmax) of the same scores
    eala_entropy: Tensor  #: −Σ φ log φ over positive weights (exact when none is negative)
    max_entropy: Tensor  #: log n


def eala_stats(
    q: Tensor,
    k: Tensor,
    *,
    theta: ThetaRule = "paper",
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    eps: float = 1e-8,
) -> EalaStats:
    """Per-query θ, score spread, negative-weight fraction and entropies (quadratic; analysis).

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        theta: as in :func:`eala_attention_quadratic`.
        causal: as in :func:`eala_attention_quadratic`.
        scale: as in :func:`eala_attention_quadratic`.
        key_padding_mask: as in :func:`eala_attention_quadratic`.
        eps: as in :func:`eala_attention_quadratic`.

    Returns:
        :class:`EalaStats` with ``[B, H, Nq]`` fields, computed without gradient.
    """
    with torch.no_grad():
        check_qkv(q, k, k.new_zeros((*k.shape[:3], 1)), same_length=causal)
        if key_padding_mask is not None:
            check_padding_mask(key_padding_mask, k)
        check_theta_rule(theta, allow_exact=True)
        q, k = _half_to_float(q, k)
        x, mask, n = _centred_scores(q, k, causal, scale, key_padding_mask)
        n_q = n.squeeze(-1).expand(x.shape[:-1])
        m2 = (x * x).sum(dim=-1) / n_q.clamp_min(1.0)
        th = theta_of_scores(x, mask, n, m2, theta, eps)
        w = 1.0 + x / th[..., None]
        seen = torch.ones_like(x) if mask is None else mask
        phi = w * seen / n_q.clamp_min(1.0)[..., None]
        neg = ((phi < 0) & (seen > 0)).sum(dim=-1).to(x.dtype) / n_q.clamp_min(1.0)
        pos = phi.clamp_min(0.0)
        h_lin = -torch.special.xlogy(pos, pos).sum(dim=-1)
        h_soft = softmax_entropy(x, mask)
        return EalaStats(
            theta=th,
            sigma=m2.sqrt(),
            n=n_q,
            neg_fraction=neg,
            softmax_entropy=h_soft,
            eala_entropy=h_lin,
            max_entropy=torch.log(n_q.clamp_min(1.0)),
        )


def paper_first_order_entropy(x: Tensor) -> Tensor:
    """The paper's Eq. 2 entropy estimate, literally: ``exp(x) ≈ 1 + x`` in ``H = log Z − Σ p x``.

    With centred scores this is exactly ``log n − mean(x²)``; plugging the deficit
    ``log n − H = m2`` into θ* gives 1/√2 whatever the input (see ``docs/eala.md``).

    Args:
        x: ``[..., N]`` scores (centred or not; centring is applied here).

    Returns:
        ``[...]`` the estimated entropy.
    """
    x = x - x.mean(dim=-1, keepdim=True)
    z = (1.0 + x).sum(dim=-1, keepdim=True)  # ≈ Σ exp(x)
    p = (1.0 + x) / z
    return (torch.log(z) - (p * x).sum(dim=-1, keepdim=True)).squeeze(-1)


def theta_star(m2: Tensor, deficit: Tensor) -> Tensor:
    """θ* = sqrt(m2 / (2·D)) for a target entropy deficit ``D = log n − H_target`` (Eq. fixed)."""
    return torch.sqrt(m2 / (2.0 * deficit))


__all__ = [
    "EalaStats",
    "eala_attention_quadratic",
    "eala_stats",
    "eala_weights",
    "paper_first_order_entropy",
    "theta_star",
]
