"""EALA, quadratic form: the readable reference, the short-sequence path, and analysis tools.

Everything here materialises the ``[B, H, Nq, N]`` scores. It is the path that supports
``clamp=True`` and the analysis-only θ rule ``"exact"``, and the reference every linear-time
path is tested against.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from linearcast.ops._common import check_qkv, resolve_scale
from linearcast.ops.eala_theta import ThetaRule, check_theta_rule, theta_from_moments
from linearcast.ops.softmax import _allowed


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _Centred(NamedTuple):
    x: Tensor  # (B, H, Nq, N) centred scores, 0 where a key is not seen
    mask: Tensor | None  # (B|1, 1|H, Nq, N) float 1/0, None when every key is seen
    n: Tensor  # (B|1, 1|H, Nq|1, 1) number of keys seen (float)


def _centred_scores(
    q: Tensor, k: Tensor, causal: bool, scale: float | None, key_padding_mask: Tensor | None
) -> _Centred:
    tau = resolve_scale(scale, q.shape[-1])
    s = tau * q @ k.transpose(-1, -2)  # (B, H, Nq, N)
    allowed = _allowed(q, k, causal, key_padding_mask)
    if allowed is None:
        n = torch.full((1, 1, 1, 1), float(k.shape[2]), dtype=s.dtype, device=s.device)
        return _Centred(s - s.mean(dim=-1, keepdim=True), None, n)
    m = allowed.to(s.dtype)
    n = m.sum(dim=-1, keepdim=True)
    mean = (s * m).sum(dim=-1, keepdim=True) / n.clamp_min(1.0)
    return _Centred((s - mean) * m, m, n)


def softmax_entropy(x: Tensor, mask: Tensor | None) -> Tensor:
    """Entropy ``log Z − Σ p s`` of ``softmax(x)`` over the last axis (unseen keys excluded).

    Args:
        x: ``[..., N]`` scores.
        mask: ``[..., N]`` (broadcastable) 1 for seen keys, 0 otherwise, or None.

    Returns:
        ``[...]``; 0 for a row that sees at most one key.
    """
    if mask is not None:
        x = x.masked_fill(mask == 0, float("-inf"))
    log_z = torch.logsumexp(x, dim=-1, keepdim=True)
    p = torch.exp(x - log_z)
    xs = torch.where(p > 0, x, torch.zeros_like(x))
    h = (log_z - (p * xs).sum(dim=-1, keepdim=True)).squeeze(-1)
    return torch.nan_to_num(h, nan=0.0, neginf=0.0, posinf=0.0)


def _linear_entropy(x: Tensor, t: Tensor, mask: Tensor | None, n: Tensor) -> Tensor:
    """Entropy of ``φ = (1 + t x)/n`` (t = 1/θ), all weights assumed ≥ 0."""
    phi = (1.0 + t * x) / n
    if mask is not None:
        phi = phi * mask
    return -torch.special.xlogy(phi, phi.clamp_min(0.0)).sum(dim=-1, keepdim=True)


def exact_theta(x: Tensor, mask: Tensor | None, n: Tensor, iters: int = 80) -> Tensor:
    """θ with ``H(φ_θ) = H(softmax(x))`` by bisection (analysis only, no gradient).

    ``H(φ_θ)`` rises monotonically from the most peaked non-negative weighting (θ = −min x) to
    ``log n`` (θ → ∞); the root is searched in ``t = 1/θ``. When softmax is more peaked than any
    non-negative linear weighting can be, θ = −min x is returned (the closest one can get).

    Args:
        x: ``[B, H, Nq, N]`` centred scores, 0 at unseen keys.
        mask: seen-key mask as in :func:`softmax_entropy`, or None.
        n: ``[..., 1]`` keys seen per query.
        iters: bisection steps (80 halves the bracket past float64 resolution).

    Returns:
        ``[B, H, Nq]`` θ, in ``x``'s dtype; 1 where all scores are equal.
    """
    with torch.no_grad():
        x64 = x.double()
        m64 = None if mask is None else mask.double()
        n64 = n.double().clamp_min(1.0)
        target = softmax_entropy(x64, m64)[..., None]
        lowest = x64 if m64 is None else x64.masked_fill(m64 == 0, 0.0)
        spread = (-lowest.min(dim=-1, keepdim=True).values).clamp_min(0.0)
        flat = spread <= 1e-12 * (1.0 + x64.abs().amax(dim=-1, keepdim=True))
        lo = torch.zeros_like(spread)
        # just inside the non-negative range, so rounding cannot make the smallest weight < 0
        hi = torch.where(flat, torch.ones_like(spread), (1 - 1e-9) / spread.clamp_min(1e-300))
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            too_peaked = _linear_entropy(x64, mid, m64, n64) < target
            hi = torch.where(too_peaked, mid, hi)
            lo = torch.where(too_peaked, lo, mid)
        t = lo  # the side whose entropy is at least the target
        theta = torch.where(flat | (t <= 0), torch.ones_like(t), 1.0 / t.clamp_min(1e-300))
        return theta.squeeze(-1).to(x.dtype)


def _theta(
    x: Tensor, mask: Tensor | None, n: Tensor, m2: Tensor, theta: ThetaRule, eps: float
) -> Tensor:
    """θ per query ``[B, H, Nq]`` from centred scores (``"exact"``) or their variance ``m2``."""
    if theta == "exact":
        return exact_theta(x, mask, n)
    return theta_from_moments(m2, n.squeeze(-1), theta, eps)


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
    check_theta_rule(theta, allow_exact=True)
    dtype = q.dtype
    cd = _compute_dtype(dtype)
    q, k, v = q.to(cd), k.to(cd), v.to(cd)
    x, mask, n = _centred_scores(q, k, causal, scale, key_padding_mask)
    n_q = n.squeeze(-1)
    th = _theta(x, mask, n, (x * x).sum(dim=-1) / n_q.clamp_min(1.0), theta, eps)
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
        theta, causal, scale, key_padding_mask, eps: as in :func:`eala_attention_quadratic`.

    Returns:
        :class:`EalaStats` with ``[B, H, Nq]`` fields, computed without gradient.
    """
    with torch.no_grad():
        v = k.new_zeros((*k.shape[:3], 1))
        check_qkv(q, k, v, same_length=causal)
        check_theta_rule(theta, allow_exact=True)
        cd = _compute_dtype(q.dtype)
        q, k = q.to(cd), k.to(cd)
        x, mask, n = _centred_scores(q, k, causal, scale, key_padding_mask)
        n_q = n.squeeze(-1).expand(x.shape[:-1])
        m2 = (x * x).sum(dim=-1) / n_q.clamp_min(1.0)
        th = _theta(x, mask, n, m2, theta, eps)
        w = 1.0 + x / th[..., None]
        seen = torch.ones_like(x) if mask is None else mask
        phi = w * seen / n_q.clamp_min(1.0)[..., None]
        neg = ((phi < 0) & (seen > 0)).sum(dim=-1).to(cd) / n_q.clamp_min(1.0)
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
    "exact_theta",
    "paper_first_order_entropy",
    "softmax_entropy",
    "theta_star",
]
