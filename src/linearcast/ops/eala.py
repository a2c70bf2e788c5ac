"""EALA: the ``impl=`` dispatcher and the non-causal linear-time path with its own backward.

Non-causal (O(N·D·(D+Dv)) time, O(D·(D+Dv)) extra memory, never an N×N tensor)::

    K̂ = k − mean_N k;  [A | M] = K̂ᵀ [K̂ | v];  sv = Σ_N v   (A only when θ reads S2)
    S2 = max(rowsum((τq A) ⊙ τq), 0);  θ = rule(S2/n, n)
    O  = (sv + (τq M)/θ) / n

The other fast paths are :mod:`linearcast.ops.eala_causal` (causal, linear time) and
:mod:`linearcast.ops.eala_short` (materialised scores: short sequences, ``clamp``, ``"exact"``).
Their references, :mod:`linearcast.ops.eala_naive` and :mod:`linearcast.ops.eala_linear_ref`,
import nothing from here.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from linearcast.errors import ConfigError
from linearcast.ops._common import (
    check_qkv,
    compute_dtype,
    heads_merged_empty,
    resolve_scale,
    valid_keys,
    without_autocast,
)
from linearcast.ops.eala_causal import causal_unchecked, eala_attention_causal
from linearcast.ops.eala_short import eala_attention_short, short_unchecked
from linearcast.ops.eala_theta import (
    ThetaRule,
    check_theta_rule,
    constant_theta,
    theta_from_moments,
)

log = logging.getLogger(__name__)

#: EALA's paths: ``"auto"`` picks one of the other two per call (:func:`choose_impl`).
EalaImpl = Literal["auto", "quadratic", "linear"]
IMPLS: tuple[EalaImpl, ...] = ("auto", "quadratic", "linear")
_announced: set[tuple[object, ...]] = set()


def choose_impl(
    n_keys: int, d: int, *, clamp: bool = False, theta: ThetaRule = "paper"
) -> Literal["quadratic", "linear"]:
    """The path ``impl="auto"`` takes: quadratic when ``N <= 2·D`` (cheaper there) or when the
    options need it (``clamp=True``, ``theta="exact"``), linear otherwise."""
    if clamp or theta == "exact" or n_keys <= 2 * d:
        return "quadratic"
    return "linear"


def check_eala_options(impl: str, theta: ThetaRule, clamp: bool) -> None:
    """Raise :class:`ConfigError` for options no path can serve together."""
    if impl not in IMPLS:
        raise ConfigError(f"impl must be 'auto', 'quadratic' or 'linear'; found {impl!r}")
    if impl == "linear" and clamp:
        raise ConfigError("clamp=True needs the weights themselves: use impl='quadratic'")
    check_theta_rule(theta, allow_exact=impl != "linear")


def eala_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    theta: ThetaRule = "paper",
    impl: EalaImpl = "auto",
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    clamp: bool = False,
    eps: float = 1e-8,
    chunk_size: int = 64,
) -> Tensor:
    """Entropy-aligned linear attention (EALA): weights ``(1 + x_j/θ)/n`` on centred scores.

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        theta: ``"paper"`` (closed form of the paper's estimate, 1/√2 + eps), ``"gauss"`` (1),
            ``"gauss_hclamp"`` (``max(1, σ/sqrt(2 ln n))``), a positive float, or ``"exact"``
            (quadratic only; analysis).
        impl: ``"quadratic"``, ``"linear"`` or ``"auto"`` (quadratic iff ``N <= 2·D`` or the
            options need it; the choice is logged once per shape).
        causal: query ``i`` sees keys ``j <= i`` with prefix-mean centring (needs ``Nq == N``).
        scale: score scale τ, default ``1/sqrt(D)``; θ is computed from the same scaled scores.
        key_padding_mask: ``[B, N]`` bool, True = padded key: excluded from the key mean, the
            statistics and the count n.
        clamp: clip negative weights (quadratic only).
        eps: added to the paper's θ.
        chunk_size: chunk length of the causal linear path.

    Returns:
        ``[B, H, Nq, Dv]`` in ``q``'s dtype; float16/bfloat16 inputs are computed in float32.
        The output is an affine (not convex) combination of the values: weights sum to 1 but
        can be negative where ``x_j < −θ``.
    """
    check_qkv(q, k, v, same_length=causal)
    check_eala_options(impl, theta, clamp)
    if impl == "auto":
        impl = choose_impl(k.shape[2], k.shape[3], clamp=clamp, theta=theta)
        key = (k.shape[2], k.shape[3], causal, impl)
        if key not in _announced:
            _announced.add(key)
            log.info(
                "eala_attention impl='auto' chose %s for N=%d, D=%d, causal=%s",
                impl,
                k.shape[2],
                k.shape[3],
                causal,
            )
    if impl == "quadratic":
        return short_unchecked(q, k, v, theta, causal, scale, key_padding_mask, clamp, eps)
    if causal:
        return causal_unchecked(q, k, v, theta, scale, key_padding_mask, eps, chunk_size)
    return _linear(q, k, v, theta, scale, key_padding_mask, eps)


def eala_attention_linear(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    theta: ThetaRule = "paper",
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Non-causal EALA in O(N·D·(D+Dv)) with a hand-written backward.

    The same function as :func:`linearcast.ops.eala_linear_ref.eala_attention_linear_autograd`
    (its reference), but backward keeps only ``q, k, v``, the mask, ``[A | M]`` (``M`` alone for
    a θ that ignores the scores: ``"paper"``, ``"gauss"``, a float), the key mean,
    ``Σv`` and one scalar per query, and recomputes the centred keys: no ``[B, H, N, D]`` or
    ``[B, H, Nq, D+Dv]`` intermediate is stored. Differentiable once (no double backward).
    See :func:`eala_attention` for the arguments.
    """
    check_qkv(q, k, v)
    check_theta_rule(theta, allow_exact=False)
    return _linear(q, k, v, theta, scale, key_padding_mask, eps)


def _linear(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: ThetaRule,
    scale: float | None,
    key_padding_mask: Tensor | None,
    eps: float,
) -> Tensor:
    out = _EalaLinear.apply(
        q, k, v, key_padding_mask, theta, resolve_scale(scale, q.shape[-1]), eps
    )
    assert isinstance(out, Tensor)
    return out


class _EalaLinear(torch.autograd.Function):
    """Non-causal linear EALA; backward recomputes ``K̂`` from the saved ``k`` and key mean.

    With ``c = τ/(θ n)`` per query, ``out = Σv/n + c·(qM)``, ``r = qᵀAq``, ``S2 = τ² max(r, 0)``::

        dM = qᵀ(c·gO);  dq = (c·gO)Mᵀ + 2 dr·(qA);  dA = qᵀ diag(dr) q
        dθ = −Σ_dv gO·(qM)·τ/(θ² n) = −q·((c·gO)Mᵀ)/θ;  dr = dθ · ∂θ/∂r (through the rule)
        dK̂ = K̂(dA + dAᵀ) + v dMᵀ;  dv = K̂ dM + Σ_q gO / n
        dk = dK̂ − mean_valid dK̂ = K̂(dA + dAᵀ) + (v − Σv/n) dMᵀ   (Σ_valid K̂ = 0)

    Padded keys get zero gradient. ``dr`` is nonzero only for rules where θ depends on S2
    (``gauss_hclamp``); it is taken through :func:`theta_from_moments` itself on ``[B, H, Nq]``
    scalars, so the rule is written once.

    The bodies are module functions (``forward`` and ``backward`` only call them): mutmut 3
    does not mutate decorated functions, and these are the ones mutation testing must reach.
    """

    @staticmethod
    @without_autocast
    def forward(ctx: Any, *args: Any) -> Tensor:  # the arguments of _linear_forward
        return _linear_forward(ctx, *args)

    @staticmethod
    @once_differentiable
    @without_autocast
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        return _linear_backward(ctx, grad_out)


def _linear_forward(
    ctx: Any,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Tensor | None,
    theta: ThetaRule,
    tau: float,
    eps: float,
) -> Tensor:
    dtype = q.dtype
    cd = compute_dtype(dtype)
    # contiguous copies, kept for backward: see _short_forward in eala_short.py
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    qf, kf, vf = q.to(cd), k.to(cd), v.to(cd)
    d = q.shape[-1]
    valid = valid_keys(key_padding_mask, kf)
    n = _key_count(valid, k.shape[2], kf)
    n_c = n.clamp_min(1.0)
    if valid is None:
        kbar = kf.mean(dim=-2, keepdim=True)
        kc = kf - kbar  # two-pass centring
        vm = vf
    else:
        vk = valid[..., None]  # (B, 1, N, 1)
        kbar = (kf * vk).sum(dim=-2, keepdim=True) / n_c[..., None]
        kc = (kf - kbar) * vk
        vm = vf * vk
    kct = kc.transpose(-1, -2)
    const = constant_theta(theta, eps)
    r: Tensor | None = None
    sv = vm.sum(dim=-2, keepdim=True)  # (B, H, 1, Dv)
    if const is None:  # θ reads the score variance: A and r = qᵀAq are needed
        g = torch.cat([kct @ kc, kct @ vm], dim=-1)  # (B, H, D, D+Dv) = [A | M]
        del kc, kct
        p = qf @ g  # (B, H, Nq, D+Dv) = [q A | q M]; τ is applied to small results below
        r = torch.linalg.vecdot(p[..., :d], qf)  # (B, H, Nq); kept unclamped for backward
        th = theta_from_moments((tau * tau) * r.clamp_min(0.0) / n_c, n, theta, eps)
        out = torch.addcmul(
            sv / n_c[..., None],
            p[..., d:],
            (tau / (th * n_c))[..., None],
            out=heads_merged_empty(q, v.shape[-1], cd),
        )
    else:  # a constant θ (the paper's, 1, a float): M alone, half the matmul work
        g = kct @ vm  # (B, H, D, Dv) = M
        del kc, kct
        out = torch.addcmul(
            sv / n_c[..., None],
            qf @ g,
            (tau / (const * n_c))[..., None],
            out=heads_merged_empty(q, v.shape[-1], cd),
        )
    ctx.save_for_backward(q, k, v, key_padding_mask, g, kbar, sv, r)
    ctx.rule, ctx.tau, ctx.eps, ctx.const = theta, tau, eps, const
    return out.to(dtype)


def _linear_backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
    q, k, v, key_padding_mask, g, kbar, sv, r = ctx.saved_tensors
    need_q, need_k, need_v = ctx.needs_input_grad[:3]
    tau: float = ctx.tau
    cd, d = g.dtype, q.shape[-1]
    # grad_out arrives strided when the caller merges the heads with a transpose: one
    # contiguous copy here instead of one in each matmul it enters
    qf, go = q.to(cd), grad_out.contiguous().to(cd)
    valid = None if key_padding_mask is None else (~key_padding_mask).to(cd)[:, None, :]
    n = _key_count(valid, k.shape[2], g)
    n_c = n.clamp_min(1.0)
    if r is None:  # a constant θ: forward kept M alone, and θ has no dr term
        m, varying = g, False
        th_d = torch.full((), ctx.const, dtype=cd, device=g.device)
    else:
        m = g[..., d:]  # M (B, H, D, Dv); A = g[..., :d] serves only the dr term
        with torch.enable_grad():  # θ(r) on [B, H, Nq] scalars: dr through the rule
            r_in = r.detach().requires_grad_()
            th = theta_from_moments((tau * tau) * r_in.clamp_min(0.0) / n_c, n, ctx.rule, ctx.eps)
        varying = th.requires_grad  # θ reads the score variance on this branch
        th_d = th.detach()
    gc = go * (tau / (th_d * n_c))[..., None]  # c·gO (B, H, Nq, Dv)
    dq = dr = None
    if need_q or (varying and need_k):
        dq = gc @ m.transpose(-1, -2)  # (B, H, Nq, D)
        if varying:
            g_th = -torch.linalg.vecdot(qf, dq) / th_d  # dL/dθ per query
            (dr,) = torch.autograd.grad(th, r_in, g_th)
            if need_q:
                dq.addcmul_(qf @ g[..., :d], dr[..., None], value=2.0)  # 2·(qA)·dr
        dq = dq.to(q.dtype) if need_q else None  # dq served dr only: freed here
    dk = dv = None
    if need_k or need_v:
        dm = qf.transpose(-1, -2) @ gc  # (B, H, D, Dv)
        del gc  # each N-sized temporary is freed before the next is made: peak memory
        kc = None  # K̂, recomputed only where needed; its padded rows are zeroed at the end
        if need_v:
            kc = k.to(cd) - kbar
            dv = torch.matmul(kc, dm).add_(go.sum(dim=-2, keepdim=True) / n_c[..., None])
            dv = _zero_padded(dv, valid).to(v.dtype)
            if dr is None:
                kc = None
        if need_k:
            # the key-mean backward folded into one row: mean_valid(v dMᵀ) = (Σv/n) dMᵀ
            dk = torch.matmul(v.to(cd), dm.transpose(-1, -2))
            dk.sub_((sv / n_c[..., None]) @ dm.transpose(-1, -2))
            if dr is not None:
                da = (qf * dr[..., None]).transpose(-1, -2) @ qf  # (B, H, D, D)
                kc = k.to(cd) - kbar if kc is None else kc
                dk.add_(kc @ (da + da.transpose(-1, -2)))
            dk = _zero_padded(dk, valid).to(k.dtype)
    return dq, dk, dv, None, None, None, None


def _key_count(valid: Tensor | None, n_keys: int, like: Tensor) -> Tensor:
    """Valid keys per batch row, ``(B, 1, 1)`` from a ``(B, 1, N)`` mask, else ``(1, 1, 1)``,
    in ``like``'s dtype (the compute dtype: bfloat16 cannot count to 65536)."""
    if valid is None:
        return torch.full((1, 1, 1), float(n_keys), dtype=like.dtype, device=like.device)
    return valid.sum(dim=-1, keepdim=True)


def _zero_padded(x: Tensor, valid: Tensor | None) -> Tensor:
    return x if valid is None else x * valid[..., None]


__all__ = [
    "IMPLS",
    "EalaImpl",
    "check_eala_options",
    "choose_impl",
    "eala_attention",
    "eala_attention_causal",
    "eala_attention_linear",
    "eala_attention_short",
]
