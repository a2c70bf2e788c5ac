"""Multi-head attention with a pluggable kernel.

:class:`MultiHeadAttention` owns the Q/K/V/output projections (``Linear`` with bias, as in
STAEformer's ``AttentionLayer``) and hands ``[B, H, L, head_dim]`` tensors to a kernel from
:data:`KERNELS`, a table of small modules wrapping :mod:`linearcast.ops`. Adding a kernel is one
entry in that table (plus a field in :class:`KernelOptions` if it needs a new option).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from linearcast.errors import ConfigError
from linearcast.ops import (
    eala_attention,
    linear_attention,
    linformer_attention,
    softmax_attention,
)
from linearcast.ops.eala_theta import ThetaRule, check_theta_rule
from linearcast.ops.linear import FeatureMap

EalaImpl = Literal["auto", "quadratic", "linear"]
#: θ options of the EALA kernel: the op's rules, or "learned" (a parameter per head)
KernelTheta = ThetaRule | Literal["learned"]


@dataclass(frozen=True)
class KernelOptions:
    """Options of the attention kernels; each kernel reads the fields it needs.

    Attributes:
        causal: query ``i`` sees keys ``j <= i`` (softmax, EALA, linear; not Linformer).
        seq_len: the fixed key length L; Linformer's projections ``E, F: [k, L]`` need it.
        theta: EALA θ rule (``"paper"``, ``"gauss"``, ``"gauss_hclamp"``, a float, ``"exact"``,
            or ``"learned"``: one positive θ per head, a parameter initialised at 1).
        impl: EALA path, ``"auto"`` (quadratic iff ``L <= 2·head_dim``, logged by the op),
            ``"quadratic"`` or ``"linear"``.
        clamp: EALA: clip negative weights (quadratic path only).
        eps: EALA: added to the paper's θ.
        linformer_k: Linformer projected length k (capped at ``seq_len``).
        linformer_share_kv: Linformer: one projection for keys and values (``F = E``).
        feature_map: linear attention feature map (``"elu1"`` or ``"identity"``).
        recompute: EALA: while training, keep only q, k, v for backward and recompute the op
            there (``torch.utils.checkpoint``) instead of storing its intermediates (scores,
            chunk states). Off by default: at the PEMS07 shape on our CPU it saved ~5% of the
            peak memory for ~30% more step time (see README; measured before the non-causal
            linear path got its own backward, which already keeps only q, k, v and
            D×(D+Dv) statistics, so there it now only costs time).
    """

    causal: bool = False
    seq_len: int | None = None
    theta: KernelTheta = "paper"
    impl: EalaImpl = "auto"
    clamp: bool = False
    eps: float = 1e-8
    linformer_k: int = 256
    linformer_share_kv: bool = False
    feature_map: FeatureMap = "elu1"
    recompute: bool = False
    num_heads: int = 1


class SoftmaxKernel(nn.Module):
    """``softmax(q kᵀ / sqrt(d)) v``; ``impl="sdpa"`` (fast) or ``"naive"`` (materialised)."""

    def __init__(self, opts: KernelOptions, impl: Literal["sdpa", "naive"] = "sdpa") -> None:
        super().__init__()
        self.causal = opts.causal
        self.impl: Literal["sdpa", "naive"] = impl

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q ``[B, H, Lq, D]``, k ``[B, H, L, D]``, v ``[B, H, L, Dv]`` → ``[B, H, Lq, Dv]``."""
        return softmax_attention(q, k, v, causal=self.causal, key_padding_mask=mask, impl=self.impl)

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}, causal={self.causal}"


class EalaKernel(nn.Module):
    """Entropy-aligned linear attention (:func:`linearcast.ops.eala_attention`).

    ``theta="learned"`` (beyond the paper) makes θ a parameter, one per head, positive
    (``θ = exp(log_theta)``, initialised at 1): non-causally the output is
    ``v̄ + (X v)/(θ n)``, so it is the θ = 1 output with its centred part divided by θ_h.
    """

    def __init__(self, opts: KernelOptions) -> None:
        super().__init__()
        self.log_theta: nn.Parameter | None = None
        if opts.theta == "learned":
            if opts.causal or opts.clamp:
                raise ConfigError(
                    "theta='learned' is for non-causal, unclamped EALA (the output is then "
                    "affine in 1/θ); use a θ rule with causal=True or clamp=True"
                )
            if opts.num_heads < 1:
                raise ConfigError(f"theta='learned' needs num_heads >= 1; found {opts.num_heads}")
            self.log_theta = nn.Parameter(torch.zeros(opts.num_heads))
        else:
            check_theta_rule(opts.theta, allow_exact=True)
        if opts.impl not in ("auto", "quadratic", "linear"):
            raise ConfigError(
                f"EALA impl must be 'auto', 'quadratic' or 'linear'; found {opts.impl!r}"
            )
        self.opts = opts

    def theta_values(self) -> Tensor | None:
        """The learned θ per head ``[H]`` (None for a θ rule)."""
        return None if self.log_theta is None else self.log_theta.detach().exp()

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q ``[B, H, Lq, D]``, k ``[B, H, L, D]``, v ``[B, H, L, Dv]`` → ``[B, H, Lq, Dv]``."""
        o = self.opts
        if o.recompute and torch.is_grad_enabled() and q.requires_grad:
            out = checkpoint(self._attend, q, k, v, mask, use_reentrant=False)
            assert isinstance(out, Tensor)
            return out
        return self._attend(q, k, v, mask)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        o = self.opts
        # a learned θ: the θ = 1 output, rescaled per head below ("learned" never reaches the op)
        theta = "gauss" if self.log_theta is not None else cast(ThetaRule, o.theta)
        out = eala_attention(
            q, k, v, theta=theta, impl=o.impl, causal=o.causal,
            key_padding_mask=mask, clamp=o.clamp, eps=o.eps,
        )  # fmt: skip
        if self.log_theta is None:
            return out
        if mask is None:
            vbar = v.mean(dim=-2, keepdim=True)  # (B, H, 1, Dv)
        else:
            valid = (~mask).to(v.dtype)[:, None, :, None]  # (B, 1, L, 1)
            vbar = (v * valid).sum(dim=-2, keepdim=True) / valid.sum(dim=-2, keepdim=True).clamp(
                min=1.0
            )
        inv = torch.exp(-self.log_theta).to(out.dtype)[None, :, None, None]  # (1, H, 1, 1)
        return vbar + (out - vbar) * inv

    def extra_repr(self) -> str:
        o = self.opts
        return (
            f"theta={o.theta!r}, impl={o.impl!r}, causal={o.causal}, clamp={o.clamp}, "
            f"recompute={o.recompute}"
        )


class LinformerKernel(nn.Module):
    """Linformer: softmax attention over keys/values projected along the sequence to length k.

    ``E`` (and ``F`` unless shared) are parameters ``[k, L]``, shared across heads, initialised
    xavier-uniform with gain ``1/sqrt(2)`` as in the Linformer authors' code (fairseq
    ``examples/linformer``). They tie the module to the key length L.
    """

    def __init__(self, opts: KernelOptions) -> None:
        super().__init__()
        if opts.causal:
            raise ConfigError("Linformer attention cannot be causal: E and F mix all positions")
        if opts.seq_len is None or opts.seq_len < 1:
            raise ConfigError(
                "kernel 'linformer' needs the fixed key length: pass seq_len=L "
                f"(found {opts.seq_len!r})"
            )
        if opts.linformer_k < 1:
            raise ConfigError(f"linformer_k must be >= 1; found {opts.linformer_k}")
        k_len = min(opts.linformer_k, opts.seq_len)
        self.seq_len = opts.seq_len
        self.e_proj = nn.Parameter(torch.empty(k_len, opts.seq_len))
        self.f_proj = (
            None if opts.linformer_share_kv else nn.Parameter(torch.empty(k_len, opts.seq_len))
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.e_proj, gain=1.0 / math.sqrt(2.0))
        if self.f_proj is not None:
            nn.init.xavier_uniform_(self.f_proj, gain=1.0 / math.sqrt(2.0))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q ``[B, H, Lq, D]``, k ``[B, H, L, D]``, v ``[B, H, L, Dv]`` → ``[B, H, Lq, Dv]``."""
        if k.shape[2] != self.seq_len:
            raise ConfigError(
                f"Linformer attention was built for key length {self.seq_len}; found "
                f"{k.shape[2]} (its E/F projections tie it to a fixed length)"
            )
        return linformer_attention(q, k, v, self.e_proj, self.f_proj, key_padding_mask=mask)

    def extra_repr(self) -> str:
        return f"k={self.e_proj.shape[0]}, seq_len={self.seq_len}, share_kv={self.f_proj is None}"


class LinearKernel(nn.Module):
    """Kernelised linear attention (Katharopoulos et al. 2020), ``φ = elu + 1`` by default."""

    def __init__(self, opts: KernelOptions) -> None:
        super().__init__()
        self.causal = opts.causal
        self.feature_map: FeatureMap = opts.feature_map

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q ``[B, H, Lq, D]``, k ``[B, H, L, D]``, v ``[B, H, L, Dv]`` → ``[B, H, Lq, Dv]``."""
        return linear_attention(
            q, k, v, causal=self.causal, feature_map=self.feature_map, key_padding_mask=mask
        )

    def extra_repr(self) -> str:
        return f"feature_map={self.feature_map!r}, causal={self.causal}"


#: The kernel table: name → factory taking the options. One entry per kernel.
KERNELS: dict[str, Callable[[KernelOptions], nn.Module]] = {
    "softmax": lambda o: SoftmaxKernel(o, impl="sdpa"),
    "softmax_naive": lambda o: SoftmaxKernel(o, impl="naive"),
    "eala": EalaKernel,
    "linformer": LinformerKernel,
    "linear": LinearKernel,
}


def make_kernel(name: str, opts: KernelOptions) -> nn.Module:
    """Build kernel ``name`` from :data:`KERNELS`; a clear error names the known ones."""
    if name not in KERNELS:
        raise ConfigError(
            f"unknown attention kernel {name!r}; known kernels: {', '.join(sorted(KERNELS))}"
        )
    return KERNELS[name](opts)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over the second-to-last axis of ``[..., L, model_dim]``.

    Q/K/V/output are ``Linear(model_dim, model_dim)`` with bias; head ``h`` uses channels
    ``h·head_dim : (h+1)·head_dim`` (as STAEformer's ``AttentionLayer``). Any leading axes are
    folded into the batch.

    Args:
        model_dim: width of the input and output.
        num_heads: number of heads; must divide ``model_dim``.
        kernel: a key of :data:`KERNELS` (``"softmax"``, ``"softmax_naive"``, ``"eala"``,
            ``"linformer"``, ``"linear"``).
        seq_len: fixed key length (Linformer needs it).
        causal: causal self-attention (not with Linformer).
        theta: EALA θ rule.
        impl: EALA path (``"auto"``, ``"quadratic"``, ``"linear"``).
        clamp: EALA: clip negative weights (quadratic path only).
        eps: EALA: added to the paper's θ.
        linformer_k: Linformer projected length (capped at ``seq_len``).
        linformer_share_kv: Linformer: ``F = E``.
        feature_map: linear attention feature map.
        recompute: EALA: recompute the op in backward instead of storing its intermediates.
    """

    def __init__(
        self,
        model_dim: int,
        num_heads: int,
        *,
        kernel: str = "softmax",
        seq_len: int | None = None,
        causal: bool = False,
        theta: KernelTheta = "paper",
        impl: EalaImpl = "auto",
        clamp: bool = False,
        eps: float = 1e-8,
        linformer_k: int = 256,
        linformer_share_kv: bool = False,
        feature_map: FeatureMap = "elu1",
        recompute: bool = False,
    ) -> None:
        super().__init__()
        if num_heads < 1 or model_dim % num_heads != 0:
            raise ConfigError(
                f"num_heads must divide model_dim; found model_dim={model_dim}, "
                f"num_heads={num_heads}"
            )
        self.model_dim = model_dim
        self.num_heads = num_heads
        self.head_dim = model_dim // num_heads
        self.kernel_name = kernel
        self.q_proj = nn.Linear(model_dim, model_dim)
        self.k_proj = nn.Linear(model_dim, model_dim)
        self.v_proj = nn.Linear(model_dim, model_dim)
        self.out_proj = nn.Linear(model_dim, model_dim)
        opts = KernelOptions(
            causal=causal, seq_len=seq_len, theta=theta, impl=impl, clamp=clamp, eps=eps,
            linformer_k=linformer_k, linformer_share_kv=linformer_share_kv,
            feature_map=feature_map, recompute=recompute, num_heads=num_heads,
        )  # fmt: skip
        self.kernel = make_kernel(kernel, opts)

    def _heads(self, x: Tensor) -> Tensor:
        # (B*, L, model_dim) -> (B*, H, L, head_dim)
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

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
