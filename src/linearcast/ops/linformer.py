"""Linformer attention (Wang et al. 2020): softmax over keys/values projected along the sequence.

``K' = E k``, ``V' = F v`` with ``E, F: [k_len, N]`` (learned or fixed; ``F = E`` shares them),
then softmax attention of the queries over the ``k_len`` projected keys: O(N·k_len·D).
"""

from __future__ import annotations

import torch
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.ops._common import check_qkv, valid_keys
from linearcast.ops.softmax import softmax_attention, softmax_attention_naive


def _check_proj(name: str, proj: Tensor, n: int, h: int) -> None:
    ok = (
        proj.dim() in (2, 3)
        and proj.shape[-1] == n
        and (proj.dim() == 2 or proj.shape[0] in (1, h))
    )
    if not ok:
        raise ConfigError(
            f"Linformer projection {name} must be [k_len, N] or [H, k_len, N] with N = {n}, "
            f"H = {h}; found {tuple(proj.shape)} (Linformer ties the model to a fixed N)"
        )


def _project(
    k: Tensor, v: Tensor, e_proj: Tensor, f_proj: Tensor | None, key_padding_mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    n, h = k.shape[2], k.shape[1]
    f = e_proj if f_proj is None else f_proj
    _check_proj("E", e_proj, n, h)
    _check_proj("F", f, n, h)
    valid = valid_keys(key_padding_mask, k)
    if valid is not None:  # padded positions contribute nothing to the projections
        k = k * valid[..., None]
        v = v * valid[..., None]
    kp = torch.matmul(e_proj, k)  # (B, H, k_len, D)
    vp = torch.matmul(f, v)  # (B, H, k_len, Dv)
    return kp, vp


def linformer_attention_naive(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    e_proj: Tensor,
    f_proj: Tensor | None = None,
    *,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Reference: explicit sums ``K'_r = Σ_j E_rj k_j`` and materialised softmax.

    Args:
        q: ``[B, H, Nq, D]``.
        k: ``[B, H, N, D]``.
        v: ``[B, H, N, Dv]``.
        e_proj: ``[k_len, N]`` or ``[H, k_len, N]`` key projection E.
        f_proj: value projection F of the same shape; None shares E.
        scale: score scale τ, default ``1/sqrt(D)``.
        key_padding_mask: ``[B, N]`` bool, True = padded key (zeroed before projecting).

    Returns:
        ``[B, H, Nq, Dv]``.
    """
    check_qkv(q, k, v)
    n, h = k.shape[2], k.shape[1]
    f = e_proj if f_proj is None else f_proj
    _check_proj("E", e_proj, n, h)
    _check_proj("F", f, n, h)
    if key_padding_mask is not None:
        keep = (~key_padding_mask).to(k.dtype)[:, None, :, None]
        k, v = k * keep, v * keep
    e4 = e_proj if e_proj.dim() == 3 else e_proj[None]
    f4 = f if f.dim() == 3 else f[None]
    kp = torch.einsum("hrn,bhnd->bhrd", e4.expand(h, -1, -1), k)
    vp = torch.einsum("hrn,bhnd->bhrd", f4.expand(h, -1, -1), v)
    return softmax_attention_naive(q, kp, vp, scale=scale)


def linformer_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    e_proj: Tensor,
    f_proj: Tensor | None = None,
    *,
    scale: float | None = None,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
) -> Tensor:
    """Linformer attention through SDPA; same arguments as :func:`linformer_attention_naive`.

    Raises:
        ConfigError: for ``causal=True`` (a sequence projection mixes future positions).
    """
    if causal:
        raise ConfigError("Linformer attention cannot be causal: E and F mix all positions")
    check_qkv(q, k, v)
    kp, vp = _project(k, v, e_proj, f_proj, key_padding_mask)
    return softmax_attention(q, kp, vp, scale=scale)
