"""The attention spec and the kernel modules it builds.

:class:`AttentionSpec` says which attention a layer runs and with which options, in one typed,
validated value: a model config holds one per kind of layer and hands it whole to
:class:`~linearcast.nn.MultiHeadAttention`, which hands it to :func:`make_kernel`. A kernel module
maps ``q [B, H, Lq, D], k [B, H, L, D], v [B, H, L, Dv]`` (and an optional ``[B, L]`` padding
mask) to ``[B, H, Lq, Dv]`` through an op of :data:`linearcast.ops.KERNELS`. Kernels without
parameters need no module of their own (:class:`OpKernel`); EALA (a learned θ, recomputation)
and Linformer (its projections) have one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from linearcast import ops
from linearcast.errors import ConfigError
from linearcast.ops import EalaImpl, FeatureMap, ThetaRule
from linearcast.ops.eala import check_eala_options
from linearcast.ops.linear import FEATURE_MAPS

#: θ options of the EALA kernel: the op's rules, or "learned" (a parameter per head)
KernelTheta = ThetaRule | Literal["learned"]


@dataclass(frozen=True)
class AttentionSpec:
    """What an attention layer computes, validated when it is made.

    Attributes:
        kernel: a key of :data:`KERNELS` (``"softmax"`` via SDPA, ``"softmax_naive"``
            materialised, ``"eala"``, ``"linformer"``, ``"linear"``).
        causal: query ``i`` sees keys ``j <= i`` (not Linformer).
        theta: EALA θ rule (``"paper"``, ``"gauss"``, ``"gauss_hclamp"``, a float, ``"exact"``,
            or ``"learned"``: one positive θ per head, a parameter initialised at 1).
        impl: EALA path, ``"auto"`` (quadratic iff ``L <= 2·head_dim``, logged by the op),
            ``"quadratic"`` or ``"linear"``.
        clamp: EALA: clip negative weights (quadratic path only).
        eps: EALA: added to the paper's θ.
        recompute: EALA: while training, keep only q, k, v for backward and recompute the op
            there (``torch.utils.checkpoint``) instead of storing its intermediates. Off by
            default: at the PEMS07 shape on our CPU it saved ~5% of the peak memory for ~30%
            more step time, and the non-causal linear path's own backward already keeps only
            q, k, v and D×(D+Dv) statistics.
        linformer_k: Linformer projected length k (capped at the key length).
        linformer_share_kv: Linformer: one projection for keys and values (``F = E``).
        feature_map: linear attention feature map (``"elu1"`` or ``"identity"``).
        normalize: linear attention: divide by ``φ(q)·Σφ(k)`` (False: the plain sum SAMoVAR
            reads as a VAR).
    """

    kernel: str = "softmax"
    causal: bool = False
    theta: KernelTheta = "paper"
    impl: EalaImpl = "auto"
    clamp: bool = False
    eps: float = 1e-8
    recompute: bool = False
    linformer_k: int = 256
    linformer_share_kv: bool = False
    feature_map: FeatureMap = "elu1"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ConfigError(
                f"unknown attention kernel {self.kernel!r}; known kernels: "
                f"{', '.join(sorted(KERNELS))}"
            )
        if self.causal and not ops.KERNELS[KERNEL_OPS[self.kernel]].causal:
            raise ConfigError(
                f"{self.kernel} attention cannot be causal: its op mixes all positions"
            )
        if self.kernel == "eala":
            self._check_eala()
        if self.linformer_k < 1:
            raise ConfigError(f"linformer_k must be >= 1; found {self.linformer_k}")
        if self.feature_map not in FEATURE_MAPS:
            raise ConfigError(
                f"feature_map must be 'elu1' or 'identity'; found {self.feature_map!r}"
            )

    def _check_eala(self) -> None:
        if not math.isfinite(self.eps) or self.eps < 0:
            raise ConfigError(f"EALA eps must be a finite number >= 0; found {self.eps!r}")
        if self.theta != "learned":
            check_eala_options(self.impl, cast(ThetaRule, self.theta), self.clamp)
            return
        check_eala_options(self.impl, "gauss", self.clamp)
        if self.causal or self.clamp:
            raise ConfigError(
                "theta='learned' is for non-causal, unclamped EALA (the output is then "
                "affine in 1/θ); use a θ rule with causal=True or clamp=True"
            )

    @classmethod
    def of(cls, kernel: str | AttentionSpec = "softmax", **changes: Any) -> AttentionSpec:
        """``kernel`` as a spec: a spec, or a kernel name, with some fields changed (keyword
        arguments named as the fields: ``AttentionSpec.of("eala", theta="gauss", causal=True)``).

        Raises:
            ConfigError: an unknown field (naming the known ones) or an invalid value.
        """
        known = [f.name for f in dataclasses.fields(cls) if f.name != "kernel"]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown kernel option(s) {', '.join(unknown)}; the options are the fields of "
                f"AttentionSpec: {', '.join(known)}"
            )
        if isinstance(kernel, AttentionSpec):
            return dataclasses.replace(kernel, **changes) if changes else kernel
        return cls(kernel=kernel, **changes)

    def with_options(self, **options: Any) -> AttentionSpec:
        """A validated copy with the given options, spelled as in ``model_overrides``
        (:data:`OPTION_NAMES`: the field names, ``attention`` for the kernel, and the older
        ``eala_theta`` / ``eala_impl``).

        Raises:
            ConfigError: an unknown option, or one given under two names.
        """
        changes: dict[str, Any] = {}
        for name, value in options.items():
            field_name = OPTION_NAMES.get(name)
            if field_name is None:
                raise ConfigError(
                    f"unknown attention option {name!r}; the options are "
                    f"{', '.join(sorted(OPTION_NAMES))}"
                )
            if field_name in changes:
                raise ConfigError(f"attention option {field_name!r} is given twice ({name!r})")
            changes[field_name] = value
        return dataclasses.replace(self, **changes) if changes else self


#: How ``model_overrides`` and config files spell the spec's fields: ``attention`` for the
#: kernel, the field names for the others (but ``causal``, which is the model's to decide), and
#: the names older configs and run directories use. The one place where an option name becomes
#: a field.
OPTION_NAMES: dict[str, str] = {
    **{
        f.name: f.name
        for f in dataclasses.fields(AttentionSpec)
        if f.name not in ("kernel", "causal")
    },
    "attention": "kernel",
    "eala_theta": "theta",
    "eala_impl": "impl",
}


def split_attention_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(attention options, the rest)`` of a model's flat options (see :data:`OPTION_NAMES`)."""
    attention = {k: v for k, v in options.items() if k in OPTION_NAMES}
    return attention, {k: v for k, v in options.items() if k not in OPTION_NAMES}


class Kernel(nn.Module):
    """Base of the kernel modules: ``forward(q, k, v, mask) -> [B, H, Lq, Dv]``; ``spec`` says
    what it computes. ``contiguous_qkv``: the kernel reads q, k, v best as contiguous tensors
    (its batched matmuls would copy strided views), so self-attention hands it contiguous ones."""

    spec: AttentionSpec
    contiguous_qkv: bool = False

    def extra_repr(self) -> str:
        s = self.spec
        return f"kernel={s.kernel!r}, causal={s.causal}"


class OpKernel(Kernel):
    """A kernel without parameters: the op of :data:`linearcast.ops.KERNELS` named ``op``, called
    with the spec's options that op takes.

    Args:
        spec: the attention.
        op: the op's name in the table.
        naive: run the op's reference instead.
    """

    def __init__(self, spec: AttentionSpec, *, op: str, naive: bool = False, **_: Any) -> None:
        super().__init__()
        entry = ops.KERNELS[op]
        self.spec = spec
        self.fn = entry.naive if naive else entry.fast
        self.options = {name: getattr(spec, name) for name in entry.options}
        if entry.causal:
            self.options["causal"] = spec.causal

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q ``[B, H, Lq, D]``, k ``[B, H, L, D]``, v ``[B, H, L, Dv]`` → ``[B, H, Lq, Dv]``."""
        return self.fn(q, k, v, key_padding_mask=mask, **self.options)


class EalaKernel(Kernel):
    """Entropy-aligned linear attention (:func:`linearcast.ops.eala_attention`).

    ``theta="learned"`` (beyond the paper) makes θ a parameter, one per head, positive
    (``θ = exp(log_theta)``, initialised at 1): non-causally the output is
    ``v̄ + (X v)/(θ n)``, so it is the θ = 1 output with its centred part divided by θ_h.

    Args:
        spec: the attention (kernel ``"eala"``).
        num_heads: heads H (one learned θ each).
    """

    contiguous_qkv = True

    def __init__(self, spec: AttentionSpec, *, num_heads: int = 1, **_: Any) -> None:
        super().__init__()
        self.spec = spec
        self.log_theta: nn.Parameter | None = None
        if spec.theta == "learned":
            if num_heads < 1:
                raise ConfigError(f"theta='learned' needs num_heads >= 1; found {num_heads}")
            self.log_theta = nn.Parameter(torch.zeros(num_heads))

    def theta_values(self) -> Tensor | None:
        """The learned θ per head ``[H]`` (None for a θ rule)."""
        return None if self.log_theta is None else self.log_theta.detach().exp()

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q ``[B, H, Lq, D]``, k ``[B, H, L, D]``, v ``[B, H, L, Dv]`` → ``[B, H, Lq, Dv]``."""
        if self.spec.recompute and torch.is_grad_enabled() and q.requires_grad:
            out = checkpoint(self._attend, q, k, v, mask, use_reentrant=False)
            assert isinstance(out, Tensor)
            return out
        return self._attend(q, k, v, mask)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        s = self.spec
        # a learned θ: the θ = 1 output, rescaled per head below ("learned" never reaches the op)
        theta = "gauss" if self.log_theta is not None else cast(ThetaRule, s.theta)
        out = ops.eala_attention(
            q, k, v, theta=theta, impl=s.impl, causal=s.causal,
            key_padding_mask=mask, clamp=s.clamp, eps=s.eps,
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
        s = self.spec
        return (
            f"theta={s.theta!r}, impl={s.impl!r}, causal={s.causal}, clamp={s.clamp}, "
            f"recompute={s.recompute}"
        )


class LinformerKernel(Kernel):
    """Linformer: softmax attention over keys/values projected along the sequence to length k.

    ``E`` (and ``F`` unless shared) are parameters ``[k, L]``, shared across heads, initialised
    xavier-uniform with gain ``1/sqrt(2)`` as in the Linformer authors' code (fairseq
    ``examples/linformer``). They tie the module to the key length L.

    Args:
        spec: the attention (kernel ``"linformer"``).
        seq_len: the fixed key length L.
    """

    def __init__(self, spec: AttentionSpec, *, seq_len: int | None = None, **_: Any) -> None:
        super().__init__()
        if seq_len is None or seq_len < 1:
            raise ConfigError(
                f"kernel 'linformer' needs the fixed key length: pass seq_len=L (found {seq_len!r})"
            )
        self.spec = spec
        k_len = min(spec.linformer_k, seq_len)
        self.seq_len = seq_len
        self.e_proj = nn.Parameter(torch.empty(k_len, seq_len))
        self.f_proj = None if spec.linformer_share_kv else nn.Parameter(torch.empty(k_len, seq_len))
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
        return ops.linformer_attention(q, k, v, self.e_proj, self.f_proj, key_padding_mask=mask)

    def extra_repr(self) -> str:
        return f"k={self.e_proj.shape[0]}, seq_len={self.seq_len}, share_kv={self.f_proj is None}"


KernelFactory = Callable[..., Kernel]

#: The kernel modules: name → ``factory(spec, *, num_heads=H, seq_len=L)``. Every op of
#: :data:`linearcast.ops.KERNELS` is here under its own name; a kernel with parameters replaces
#: the generic module with its own.
#: kernel name → the op of :data:`linearcast.ops.KERNELS` it runs; ``"softmax_naive"`` runs the
#: softmax reference (the official STAEformer's materialised softmax)
KERNEL_OPS: dict[str, str] = {**{name: name for name in ops.KERNELS}, "softmax_naive": "softmax"}

#: The kernel modules: name → ``factory(spec, *, num_heads=H, seq_len=L)``. Every kernel gets the
#: generic :class:`OpKernel`, unless it has parameters and so a module of its own.
KERNELS: dict[str, KernelFactory] = {
    **{name: partial(OpKernel, op=op, naive=name != op) for name, op in KERNEL_OPS.items()},
    "eala": EalaKernel,
    "linformer": LinformerKernel,
}


def make_kernel(spec: AttentionSpec, *, num_heads: int = 1, seq_len: int | None = None) -> Kernel:
    """The kernel module of ``spec`` for ``num_heads`` heads over keys of length ``seq_len``
    (only Linformer needs the length)."""
    return KERNELS[spec.kernel](spec, num_heads=num_heads, seq_len=seq_len)


__all__ = [
    "KERNELS",
    "KERNEL_OPS",
    "OPTION_NAMES",
    "AttentionSpec",
    "EalaKernel",
    "Kernel",
    "KernelTheta",
    "LinformerKernel",
    "OpKernel",
    "make_kernel",
    "split_attention_options",
]
