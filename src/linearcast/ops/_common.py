"""Shape checks and small helpers shared by the fast kernels (the references do without them)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from linearcast.errors import ConfigError


def check_qkv(q: Tensor, k: Tensor, v: Tensor, *, same_length: bool = False) -> None:
    """Raise a clear error unless ``q, k, v`` are ``[B, H, Nq, D], [B, H, N, D], [B, H, N, Dv]``."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ConfigError(
            "attention expects q, k, v of rank 4 [B, H, N, D]; found shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3] or q.shape[-1] != k.shape[-1]:
        raise ConfigError(
            "attention expects q [B, H, Nq, D], k [B, H, N, D], v [B, H, N, Dv]; found "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if same_length and q.shape[2] != k.shape[2]:
        raise ConfigError(
            f"causal attention needs as many queries as keys; found Nq={q.shape[2]}, N={k.shape[2]}"
        )


def resolve_scale(scale: float | None, d: int) -> float:
    """The score scale τ; ``None`` means ``1/sqrt(d)`` as in SDPA."""
    return 1.0 / math.sqrt(d) if scale is None else float(scale)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types (their sums of N terms would round badly), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def check_padding_mask(key_padding_mask: Tensor, k: Tensor) -> None:
    """Raise unless ``key_padding_mask`` is a bool ``[B, N]`` for keys ``k: [B, H, N, D]``."""
    b, n = k.shape[0], k.shape[2]
    if key_padding_mask.shape != (b, n) or key_padding_mask.dtype != torch.bool:
        raise ConfigError(
            f"key_padding_mask must be a bool tensor [B, N] = [{b}, {n}] (True = padded key); "
            f"found {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
        )


def valid_keys(key_padding_mask: Tensor | None, k: Tensor) -> Tensor | None:
    """Turn a ``[B, N]`` padding mask (True = padded, ignored) into ``[B, 1, N]`` valid weights.

    Returns None when there is no mask. The result has ``k``'s dtype.
    """
    if key_padding_mask is None:
        return None
    check_padding_mask(key_padding_mask, k)
    return (~key_padding_mask).to(k.dtype)[:, None, :]


def allowed_keys(
    q: Tensor, k: Tensor, causal: bool, key_padding_mask: Tensor | None
) -> Tensor | None:
    """Bool ``[B|1, 1, Nq, N]``: which key each query may see, or None for all."""
    allowed: Tensor | None = None
    nq, n = q.shape[2], k.shape[2]
    if causal:
        allowed = torch.ones(nq, n, dtype=torch.bool, device=q.device).tril()[None, None]
    if key_padding_mask is not None:
        check_padding_mask(key_padding_mask, k)
        keep = (~key_padding_mask)[:, None, None, :]
        allowed = keep if allowed is None else allowed & keep
    return allowed


def heads_merged_empty(q: Tensor, dv: int, dtype: torch.dtype) -> Tensor:
    """An uninitialised ``[B, H, Nq, Dv]`` output for ``q: [B, H, Nq, D]``, laid out in memory as
    ``[B, Nq, H, Dv]`` (as SDPA's CPU kernels return theirs): merging the heads afterwards,
    ``out.transpose(1, 2).reshape(B, Nq, H·Dv)``, is then a view, not a copy."""
    b, h, nq = q.shape[:3]
    return torch.empty(b, nq, h, dv, dtype=dtype, device=q.device).transpose(1, 2)


F = TypeVar("F", bound=Callable[..., Any])


def without_autocast(fn: F) -> F:
    """Run ``fn(ctx, tensor, ...)`` with autocast off on ``tensor``'s device: the op picks its own
    compute dtype (float32 for half inputs), and autocast would run its inner matmuls in
    bfloat16 and save mixed dtypes for backward. A no-op where autocast does not exist (meta)."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, first: Tensor, *args: Any) -> Any:
        device_type = first.device.type
        if not torch.amp.is_autocast_available(device_type):
            return fn(ctx, first, *args)
        with torch.autocast(device_type, enabled=False):
            return fn(ctx, first, *args)

    return cast(F, wrapper)
