"""EALA with materialised scores: the production path for short sequences and the options only
a quadratic path can serve (causal or padded keys at quadratic cost, ``clamp``, ``theta="exact"``).

It computes the same function as the reference
:func:`linearcast.ops.eala_naive.eala_attention_quadratic` but never forms the weights unless
it must (``clamp``): the weights ``1 + X/θ`` of the seen keys sum to n exactly,
so ``O = (Σ_seen v)/n + (X v)/(θ n)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from linearcast.ops._common import (
    allowed_keys,
    check_qkv,
    compute_dtype,
    heads_merged_empty,
    resolve_scale,
    without_autocast,
)
from linearcast.ops.eala_theta import (
    ThetaRule,
    check_theta_rule,
    constant_theta,
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
    allowed = allowed_keys(q, k, causal, key_padding_mask)
    if allowed is None and not clamp and theta != "exact":
        # the common case (every key seen): its own backward, which keeps only q, k, v
        out = _EalaShort.apply(q, k, v, theta, resolve_scale(scale, q.shape[-1]), eps)
        assert isinstance(out, Tensor)
        return out
    dtype = q.dtype
    cd = compute_dtype(dtype)
    q, k, v = q.to(cd), k.to(cd), v.to(cd)
    x = (q * resolve_scale(scale, q.shape[-1])) @ k.transpose(-1, -2)  # (B, H, Nq, N)
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


def _centred_scores(q: Tensor, k: Tensor) -> Tensor:
    """``q kᵀ`` centred over the keys, unscaled: ``[B, H, Nq, N]``."""
    x = q @ k.transpose(-1, -2)
    return x.sub_(x.mean(dim=-1, keepdim=True))


class _EalaShort(torch.autograd.Function):
    """EALA over every key with materialised scores; backward recomputes them from q and k.

    With unscaled centred scores ``X = qkᵀ − mean_N``, ``m2 = τ²·rowsum(X²)/n``,
    ``c = τ/(θ(m2) n)`` per query and ``out = mean_N v + c·(X v)``::

        dX = (c·gO) vᵀ + (2τ²/n)·(dL/dm2)·X;   dS = dX − mean_N dX
        dq = dS k;   dk = dSᵀ q;   dv = Xᵀ (c·gO) + Σ_q gO / n
        dL/dθ = −rowsum((c·gO) ⊙ (X v))/θ;  dL/dm2 through the rule

    Autograd's own graph would keep contiguous copies of q·τ, kᵀ and v (the batched matmuls
    copy the strided views a fused Q/K/V projection hands in) and X; this keeps only the
    inputs. ``dL/dm2`` is nonzero only for rules where θ depends on m2 (``gauss_hclamp``) and is
    taken through :func:`theta_from_moments` itself on ``[B, H, Nq]`` scalars; a constant θ
    (``"paper"``, ``"gauss"``, a float) never forms m2.

    The bodies are module functions (``forward`` and ``backward`` only call them): mutmut 3
    does not mutate decorated functions, and these are the ones mutation testing must reach.
    """

    @staticmethod
    @without_autocast
    def forward(ctx: Any, *args: Any) -> Tensor:  # the arguments of _short_forward
        return _short_forward(ctx, *args)

    @staticmethod
    @once_differentiable
    @without_autocast
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        return _short_backward(ctx, grad_out)


def _short_forward(
    ctx: Any, q: Tensor, k: Tensor, v: Tensor, theta: ThetaRule, tau: float, eps: float
) -> Tensor:
    dtype = q.dtype
    cd = compute_dtype(dtype)
    # one contiguous copy of each (none if the caller made them contiguous, as self-attention
    # does), kept for backward: the batched matmuls would otherwise copy strided views in
    # forward and again in backward (it replaces those views among the saved tensors)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    qf, kf, vf = q.to(cd), k.to(cd), v.to(cd)
    n = k.shape[2]
    x = _centred_scores(qf, kf)  # (B, H, Nq, N)
    out = heads_merged_empty(q, v.shape[-1], cd)
    v_mean, xv = vf.mean(dim=-2, keepdim=True), x @ vf
    const = constant_theta(theta, eps)
    if const is None:  # θ reads the score variance m2
        m2 = torch.linalg.vecdot(x, x) * (tau * tau / n)  # (B, H, Nq)
        th = theta_from_moments(m2, _count(n, x), theta, eps)
        torch.addcmul(v_mean, xv, (tau / (th * n))[..., None], out=out)
    else:  # a constant θ (the paper's, 1, a float): no score statistics at all
        torch.add(v_mean, xv, alpha=tau / (const * n), out=out)
    ctx.save_for_backward(q, k, v)
    ctx.rule, ctx.tau, ctx.eps = theta, tau, eps
    return out.to(dtype)


def _short_backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
    q, k, v = ctx.saved_tensors
    need_q, need_k, need_v = ctx.needs_input_grad[:3]
    tau: float = ctx.tau
    cd = compute_dtype(q.dtype)
    go = grad_out.contiguous().to(cd)  # see _linear_backward in eala.py
    qf, kf, vf = q.to(cd), k.to(cd), v.to(cd)
    n = k.shape[2]
    x = _centred_scores(qf, kf)
    const = constant_theta(ctx.rule, ctx.eps)
    if const is None:
        with torch.enable_grad():  # θ(m2) on [B, H, Nq] scalars: dm2 through the rule
            m2 = (torch.linalg.vecdot(x, x) * (tau * tau / n)).requires_grad_()
            th = theta_from_moments(m2, _count(n, x), ctx.rule, ctx.eps)
        th_d = th.detach()
        gc = go * (tau / (th_d * n))[..., None]  # c·gO (B, H, Nq, Dv)
    else:
        gc = go * (tau / (const * n))
    dq = dk = dv = None
    if need_v:
        dv = (x.transpose(-1, -2) @ gc).add_(go.sum(dim=-2, keepdim=True) / n).to(v.dtype)
    if need_q or need_k:
        dx = gc @ vf.transpose(-1, -2)  # (B, H, Nq, N)
        if const is None:  # θ varies with m2
            g_th = -torch.linalg.vecdot(gc, x @ vf) / th_d
            (dm2,) = torch.autograd.grad(th, m2, g_th)
            dx.addcmul_(x, dm2[..., None], value=2.0 * tau * tau / n)
        del gc, x  # freed before dq and dk are made: peak memory
        ds = dx.sub_(dx.mean(dim=-1, keepdim=True))
        if need_q:
            dq = (ds @ kf).to(q.dtype)
        if need_k:
            dk = (ds.transpose(-1, -2) @ qf).to(k.dtype)
    return dq, dk, dv, None, None, None


def _count(n: int, like: Tensor) -> Tensor:
    return torch.full((), float(n), dtype=like.dtype, device=like.device)
