"""torch's ``nn.MultiheadAttention`` conventions, for
:class:`~linearcast.nn.EALAMultiheadAttention`: its input layouts, its masks (bool True or float
``-inf`` = blocked) and its dropout on the softmax weights, turned into what
:mod:`linearcast.nn` kernels take (``[B, L, E]`` inputs, bool ``[B, S]`` padding, a causal flag).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.nn.kernels import Kernel, make_kernel


def batch_first_inputs(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None,
    *,
    batch_first: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """torch's layouts (``[L, B, E]``, ``[B, L, E]`` with ``batch_first``, ``[L, E]`` unbatched)
    as ``[B, L, E]``; an unbatched ``key_padding_mask [S]`` becomes ``[1, S]``.

    Raises:
        ConfigError: query, key and value are not all of rank 3 or all of rank 2.
    """
    if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
        raise ConfigError(
            "EALAMultiheadAttention expects query, key, value all of rank 3 (batched) or "
            f"all of rank 2 (unbatched); found shapes {tuple(query.shape)}, "
            f"{tuple(key.shape)}, {tuple(value.shape)}"
        )
    if query.dim() == 2:
        query, key, value = query[None], key[None], value[None]
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask[None]
    elif not batch_first:
        query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    return query, key, value, key_padding_mask


def causal_twin(kernel: Kernel, num_heads: int, seq_len: int | None) -> Kernel | None:
    """The causal version of a parameter-free kernel, for ``is_causal=True`` calls; None for
    kernels with parameters (a twin would not share them) or without a causal mode."""
    if any(True for _ in kernel.parameters()):
        return None
    try:
        spec = replace(kernel.spec, causal=True)
    except ConfigError:
        return None
    return make_kernel(spec, num_heads=num_heads, seq_len=seq_len)


def padding_mask(mask: Tensor | None, b: int, s: int) -> Tensor | None:
    """torch's ``key_padding_mask`` (bool True or float ``-inf`` = ignore) as bool ``[B, S]``."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        pad = mask
    elif mask.is_floating_point():
        pad = mask == float("-inf")
        if not bool(((mask == 0) | pad).all()):
            raise ConfigError(
                "a float key_padding_mask may hold only 0 (attend) and -inf (ignore): torch adds "
                "it to the scores, which a linear kernel never forms; found other values"
            )
    else:
        raise ConfigError(
            f"key_padding_mask must be bool (True = ignore) or float (-inf = ignore); found "
            f"{mask.dtype}"
        )
    if pad.shape != (b, s):
        raise ConfigError(
            f"key_padding_mask must be [B, S] = [{b}, {s}] ([S] for unbatched inputs); found "
            f"{tuple(mask.shape)}"
        )
    return pad


def is_causal_mask(mask: Tensor, lq: int, lk: int) -> bool:
    """Whether ``mask`` blocks exactly the keys after each query, in torch's bool or float form."""
    if mask.shape != (lq, lk) or lq != lk:
        return False
    above = torch.ones(lq, lk, dtype=torch.bool, device=mask.device).triu(1)
    if mask.dtype == torch.bool:
        return torch.equal(mask, above)
    if not mask.is_floating_point():
        return False
    blocked = mask == float("-inf")
    return torch.equal(blocked, above) and bool((mask[~blocked] == 0).all())


def softmax_with_dropout(
    q: Tensor, k: Tensor, v: Tensor, pad: Tensor | None, causal: bool, p: float
) -> Tensor:
    """Softmax attention with dropout ``p`` on its weights, as torch's module applies in training.

    q ``[B, H, L, D]``, k ``[B, H, S, D]``, v ``[B, H, S, Dv]`` → ``[B, H, L, Dv]``; a query that
    sees no key returns zeros, like the softmax kernel.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    if pad is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal, scale=scale)
    allowed = (~pad)[:, None, None, :]  # (B, 1, 1, S)
    if causal:
        tril = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
        allowed = allowed & tril  # (B, 1, L, S)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p, scale=scale)
    seen = allowed.any(dim=-1, keepdim=True)
    return torch.where(seen, out, torch.zeros((), dtype=out.dtype, device=out.device))
