"""Non-causal linear EALA with autograd's backward: the readable reference of the fast path.

The same algorithm as :func:`linearcast.ops.eala_attention_linear`, written as plain tensor code
so that autograd derives the gradients. It is what the hand-written backward is tested against,
and it depends on nothing but torch and the θ rules. Autograd keeps its intermediates (the
centred keys ``[B, H, N, D]`` and ``[qA | qM]`` ``[B, H, Nq, D+Dv]``) for backward, which is why
the fast path does not use it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from linearcast.ops.eala_theta import ThetaRule, theta_from_moments


def eala_attention_linear_autograd(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    theta: ThetaRule = "paper",
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Non-causal EALA in O(N·D·(D+Dv)), differentiated by autograd (reference; no input checks).

    ::

        K̂ = k − mean_N k;  [A | M] = K̂ᵀ [K̂ | v];  sv = Σ_N v
        S2 = max(rowsum((τq A) ⊙ τq), 0);  θ = rule(S2/n, n)
        O  = (sv + (τq M)/θ) / n

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        theta: a linear-time θ rule (``"paper"``, ``"gauss"``, ``"gauss_hclamp"``, a float).
        scale: score scale τ, default ``1/sqrt(D)``.
        key_padding_mask: ``[B, N]`` bool, True = padded key (excluded from the key mean, the
            statistics and n).
        eps: added to the paper's θ.

    Returns:
        ``[B, H, Nq, Dv]`` in ``q``'s dtype; float16/bfloat16 inputs are computed in float32.
    """
    dtype = q.dtype
    cd = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    q, k, v = q.to(cd), k.to(cd), v.to(cd)
    d = q.shape[-1]
    tau = 1.0 / math.sqrt(d) if scale is None else float(scale)
    if key_padding_mask is None:
        n = torch.full((1, 1, 1), float(k.shape[2]), dtype=cd, device=k.device)
        kc = k - k.mean(dim=-2, keepdim=True)  # two-pass centring
        vm = v
    else:
        valid = (~key_padding_mask).to(cd)[:, None, :]  # (B, 1, N)
        vk = valid[..., None]  # (B, 1, N, 1)
        n = valid.sum(dim=-1, keepdim=True)  # (B, 1, 1)
        kbar = (k * vk).sum(dim=-2, keepdim=True) / n[..., None].clamp_min(1.0)
        kc = (k - kbar) * vk
        vm = v * vk
    kct = kc.transpose(-1, -2)
    g = torch.cat([kct @ kc, kct @ vm], dim=-1)  # (B, H, D, D+Dv) = [A | M]
    sv = vm.sum(dim=-2, keepdim=True)  # (B, H, 1, Dv)
    p = q @ g  # (B, H, Nq, D+Dv) = [q A | q M]; τ is applied to the small results below
    s2 = (tau * tau) * torch.linalg.vecdot(p[..., :d], q).clamp_min(0.0)  # (B, H, Nq)
    n_c = n.clamp_min(1.0)
    th = theta_from_moments(s2 / n_c, n, theta, eps)
    # O = sv/n + (τ q M) / (θ n), in one fused pass over [Nq, Dv]
    out = torch.addcmul(sv / n_c[..., None], p[..., d:], (tau / (th * n_c))[..., None])
    return out.to(dtype)


__all__ = ["eala_attention_linear_autograd"]
