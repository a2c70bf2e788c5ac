"""torch's ``nn.MultiheadAttention`` conventions, for
:class:`~linearcast.nn.EALAMultiheadAttention`: its input layouts, its masks and the attention
weights it returns, turned into what :mod:`linearcast.nn` kernels take (``[B, L, E]`` inputs,
bool ``[B, S]`` padding, a causal flag) and back, and what each kernel can do of them.

Weights (``need_weights=True``, torch's default)
    Returned in torch's layout (``[B, L, S]`` averaged over heads, ``[B, H, L, S]`` with
    ``average_attn_weights=False``, without ``B`` unbatched) by the kernels that can form them:
    softmax (torch's weights, after dropout as torch returns them) and EALA (its weights
    ``Φ = (1 + x/θ)/n``, see :mod:`linearcast.nn.dropin`), formed on its quadratic path whatever
    ``impl="auto"`` would pick (the output is then ``Φ v``). ``"linear"``, ``"linformer"`` and
    EALA with ``impl="linear"`` refuse ``need_weights=True`` (so ``out, w = attn(q, k, v)``
    fails loudly instead of giving ``w = None``): pass ``need_weights=False``, as torch's
    transformer layers do.

Masks
    As in torch: ``key_padding_mask`` ``[B, S]`` (``[S]`` unbatched) and ``attn_mask``
    ``[L, S]`` or ``[B·H, L, S]`` (``[H, L, S]`` unbatched); bool True blocks, a float mask is
    added to the scores (``-inf`` blocks). The softmax kernels apply any such mask. The others
    apply key padding (bool, or float 0/``-inf``: a padded key is left out of EALA's key mean,
    its statistics and its count ``n``) and, as ``attn_mask``, only the causal mask (every slice
    True or ``-inf`` exactly above the diagonal, as ``generate_square_subsequent_mask`` builds
    it), which selects their causal mode; anything else is refused, naming
    ``kernel="softmax"``. ``is_causal=True`` is torch's hint that
    ``attn_mask`` is the causal mask: refused without a mask (as torch does) or with another
    mask; ``causal=True`` in the constructor makes the module causal without a mask.

A query that sees no key
    (all its keys padded or blocked) gets attention output 0 and weights 0, for every kernel,
    so the module returns ``out_proj``'s bias there. torch returns NaN there on its weights path
    and its fused fast path (and zeros on its SDPA path): a fully padded sequence in a batch
    would otherwise turn a loss NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from linearcast import ops
from linearcast.errors import ConfigError
from linearcast.nn.kernels import KERNEL_OPS, EalaKernel, Kernel, make_kernel
from linearcast.ops import ThetaRule


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


class _Widths(Protocol):
    embed_dim: int
    kdim: int
    vdim: int
    batch_first: bool


def check_widths(module: _Widths, query: Tensor, key: Tensor, value: Tensor) -> None:
    """Raise unless query ``[B, L, E]``, key ``[B, S, kdim]`` and value ``[B, S, vdim]`` (batch
    axis first, after :func:`batch_first_inputs`) fit ``module``'s widths."""
    b = query.shape[0]
    if (
        query.shape[2] != module.embed_dim
        or key.shape[2] != module.kdim
        or value.shape[2] != module.vdim
        or key.shape[0] != b
        or value.shape[:2] != key.shape[:2]
    ):
        raise ConfigError(
            f"EALAMultiheadAttention(embed_dim={module.embed_dim}, kdim={module.kdim}, "
            f"vdim={module.vdim}) expects query [B, L, {module.embed_dim}], key "
            f"[B, S, {module.kdim}] and value [B, S, {module.vdim}] (batch axis first here, "
            f"after batch_first={module.batch_first}); found {tuple(query.shape)}, "
            f"{tuple(key.shape)}, {tuple(value.shape)}"
        )


def causal_twin(kernel: Kernel, num_heads: int, seq_len: int | None) -> Kernel | None:
    """The causal version of a parameter-free kernel, for causal ``attn_mask`` calls; None for
    kernels with parameters (a twin would not share them) or without a causal mode."""
    if any(True for _ in kernel.parameters()):
        return None
    try:
        spec = replace(kernel.spec, causal=True)
    except ConfigError:
        return None
    return make_kernel(spec, num_heads=num_heads, seq_len=seq_len)


def is_softmax(kernel: Kernel) -> bool:
    """Whether ``kernel`` is softmax attention (SDPA or materialised), which torch's module runs."""
    return KERNEL_OPS[kernel.spec.kernel] == "softmax"


@dataclass(frozen=True)
class MhaMasks:
    """torch's ``attn_mask`` and ``key_padding_mask`` of one call, in the forms the kernels take.

    Attributes:
        pad: bool ``[B, S]``, True = a key no query sees; None without ``key_padding_mask``.
        causal: the ``attn_mask`` is the causal mask (every ``[L, S]`` slice of it).
        general: the masks do more than ``causal`` and ``pad`` say (another ``attn_mask``, float
            values other than 0 and ``-inf``); only the softmax kernels apply them.
        bias: float ``[B|1, H|1, L, S]``, what torch adds to the scores (both masks, bool True as
            ``-inf``); None without masks.
    """

    pad: Tensor | None
    causal: bool
    general: bool
    bias: Tensor | None


def mha_masks(
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    *,
    is_causal: bool,
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
) -> MhaMasks:
    """Check torch's masks against ``shape = (B, H, L, S)`` and read them (see :class:`MhaMasks`).

    Raises:
        ConfigError: a mask of another dtype or shape than torch accepts, ``is_causal=True``
            without ``attn_mask`` (torch refuses it too), or with an ``attn_mask`` that is not
            the causal mask.
    """
    b, h, lq, lk = shape
    if is_causal and attn_mask is None:
        raise ConfigError(
            "is_causal=True is a hint that attn_mask is the causal mask, and torch's "
            "MultiheadAttention needs that mask with it; found attn_mask=None; pass "
            "attn_mask=nn.Transformer.generate_square_subsequent_mask(L) (or build the module "
            "with causal=True)"
        )
    pad = pad_bias = mask_bias = None
    causal = general = False
    if key_padding_mask is not None:
        _check_mask(key_padding_mask, "key_padding_mask", [(b, lk)], f"[B, S] = [{b}, {lk}]")
        pad_bias = _additive(key_padding_mask, dtype)[:, None, None, :]  # (B, 1, 1, S)
        pad = pad_bias == float("-inf")
        general = bool((pad_bias[~pad] != 0).any())
        pad = pad[:, 0, 0, :]
    if attn_mask is not None:
        sizes = [(lq, lk), (b * h, lq, lk)]
        _check_mask(
            attn_mask,
            "attn_mask",
            sizes,
            f"[L, S] = [{lq}, {lk}] or [B·H, L, S] = [{b * h}, {lq}, {lk}]",
        )
        mask_bias = _additive(attn_mask, dtype).reshape(
            -1, h if attn_mask.dim() == 3 else 1, lq, lk
        )
        causal = is_causal_mask(attn_mask, lq, lk)
        if is_causal and not causal:
            raise ConfigError(
                "is_causal=True says attn_mask is the causal mask (True or -inf exactly above "
                f"the diagonal); found a {attn_mask.dtype} attn_mask {tuple(attn_mask.shape)} "
                "that is not; pass is_causal=False to apply the mask as it is"
            )
        general = general or not causal
    if pad_bias is None or mask_bias is None:
        bias = mask_bias if pad_bias is None else pad_bias
    else:
        bias = mask_bias + pad_bias  # (B|1, H|1, L, S)
    return MhaMasks(pad=pad, causal=causal, general=general, bias=bias)


def _check_mask(mask: Tensor, name: str, sizes: list[tuple[int, ...]], expected: str) -> None:
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ConfigError(
            f"{name} must be bool (True = blocked) or float (added to the scores, -inf = "
            f"blocked), as in torch; found {mask.dtype}"
        )
    if tuple(mask.shape) not in sizes:
        raise ConfigError(
            f"{name} must be {expected} (after an unbatched input gains its batch axis of 1); "
            f"found {tuple(mask.shape)}"
        )


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """torch's canonical mask: bool True → ``-inf``, False → 0; a float mask as it is."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def is_causal_mask(mask: Tensor, lq: int, lk: int) -> bool:
    """Whether ``mask`` (``[L, L]``, or ``[B·H, L, L]`` in every slice) blocks exactly the keys
    after each query, in torch's bool or float form."""
    if mask.shape[-2:] != (lq, lk) or lq != lk:
        return False
    above = torch.ones(lq, lk, dtype=torch.bool, device=mask.device).triu(1).expand(mask.shape)
    if mask.dtype == torch.bool:
        return torch.equal(mask, above)
    if not mask.is_floating_point():
        return False
    blocked = mask == float("-inf")
    return torch.equal(blocked, above) and bool((mask[~blocked] == 0).all())


def softmax_mha(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, *, causal: bool, p: float, weights: bool
) -> tuple[Tensor, Tensor | None]:
    """torch's softmax attention: ``softmax(q kᵀ/sqrt(D) + bias)``, dropout ``p``, times ``v``.

    With ``weights`` the weights are formed as torch forms them for ``need_weights=True`` and
    returned (after dropout, as torch returns them); otherwise SDPA runs. A query that sees no
    key gets weights 0 and output 0, on both paths (torch: NaN on its weights path).

    Args:
        q: ``[B, H, L, D]``.
        k: ``[B, H, S, D]``.
        v: ``[B, H, S, Dv]``.
        bias: float ``[B|1, H|1, L, S]`` added to the scores (``-inf`` = blocked), or None.
        causal: also block the keys after each query (needs ``L == S``).
        p: dropout probability on the weights (0 outside training).
        weights: form and return the weights.

    Returns:
        ``(out [B, H, L, Dv], weights [B, H, L, S] or None)``.
    """
    lq, lk = q.shape[2], k.shape[2]
    if causal and (weights or bias is not None):
        above = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(1)
        blocked = torch.zeros((), dtype=q.dtype, device=q.device).masked_fill(above, float("-inf"))
        bias = blocked if bias is None else bias + blocked
        causal = False
    zero = torch.zeros((), dtype=q.dtype, device=q.device)
    dead = None
    if bias is not None:
        dead = (bias == float("-inf")).all(dim=-1, keepdim=True)  # (B|1, H|1, L, 1)
        # an all -inf row makes softmax NaN, and NaN * 0 in its backward poisons every gradient
        bias = bias.masked_fill(dead, 0.0)
    if not weights:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, is_causal=causal)
        return (out, None) if dead is None else (torch.where(dead, zero, out), None)
    # torch scales q before the product and adds the mask to it (baddbmm): same rounding
    scores = (q * math.sqrt(1.0 / q.shape[-1])) @ k.transpose(-2, -1)  # (B, H, L, S)
    if bias is not None:
        scores = scores + bias
    w = torch.softmax(scores, dim=-1)
    if dead is not None:
        w = torch.where(dead, zero, w)
    if p > 0.0:
        w = F.dropout(w, p=p)
    return w @ v, w


def forms_weights(kernel: Kernel) -> bool:
    """Whether ``kernel`` can return its ``[L, S]`` attention weights: softmax, and EALA unless
    ``impl="linear"`` (its quadratic path forms them)."""
    return is_softmax(kernel) or (isinstance(kernel, EalaKernel) and kernel.spec.impl != "linear")


def eala_weights(
    kernel: EalaKernel, q: Tensor, k: Tensor, pad: Tensor | None, causal: bool
) -> Tensor:
    """The weights ``Φ [B, H, L, S]`` of ``kernel``'s EALA (quadratic path; rows sum to 1, 0 for
    a query that sees no key): ``(1 + x/θ)/n`` on the ``n`` visible keys (renormalised after
    ``clamp``), ``x`` the centred scores. q ``[B, H, L, D]``, k ``[B, H, S, D]``."""
    spec = kernel.spec
    if kernel.log_theta is None:
        theta = cast(ThetaRule, spec.theta)
        return ops.eala_weights(
            q, k, theta=theta, causal=causal, key_padding_mask=pad, clamp=spec.clamp, eps=spec.eps
        )
    # a learned θ_h scales the centred part of the θ = 1 weights, as EalaKernel does to outputs
    w1 = ops.eala_weights(q, k, theta="gauss", key_padding_mask=pad, eps=spec.eps)
    seen = (
        torch.ones_like(k[:, :1, None, :, 0]) if pad is None else (~pad).to(k.dtype)[:, None, None]
    )
    uniform = seen / seen.sum(dim=-1, keepdim=True).clamp_min(1.0)  # (B, 1, 1, S)
    inv = torch.exp(-kernel.log_theta).to(w1.dtype)[None, :, None, None]  # (1, H, 1, 1)
    return uniform + (w1 - uniform) * inv


def check_call(
    kernel: Kernel,
    causal_kernel: Kernel | None,
    masks: MhaMasks,
    need_weights: bool,
    attn_mask: Tensor | None,
    lengths: tuple[int, int],
) -> bool:
    """Raise unless ``kernel`` (with ``causal_kernel``, its causal twin) can do what a call for
    ``lengths = (L, S)`` asks: return its weights, apply its masks. Returns whether it is causal.

    Raises:
        ConfigError: naming what the kernel cannot do and the argument that avoids it.
    """
    name = kernel.spec.kernel
    softmax = is_softmax(kernel)
    if need_weights and not forms_weights(kernel):
        path = " with impl='linear'" if name == "eala" else ""
        raise ConfigError(
            f"kernel {name!r}{path} never forms the [L, S] attention weights (its cost is "
            "linear in L), so EALAMultiheadAttention cannot return them; found "
            "need_weights=True (torch's default); pass need_weights=False"
            + (", or impl='auto' to form them on the quadratic path" if path else "")
        )
    if masks.general and not softmax:
        found = (
            "a float key_padding_mask with values other than 0 and -inf"
            if attn_mask is None or masks.causal
            else f"a {attn_mask.dtype} attn_mask {tuple(attn_mask.shape)} that is not causal"
        )
        raise ConfigError(
            f"kernel {name!r} applies only the causal attn_mask and key padding (bool True or "
            "float -inf): it takes a causal flag and a [B, S] padding mask, not scores to add "
            f"a mask to; found {found}; pass kernel='softmax' for arbitrary masks"
        )
    if masks.causal and not kernel.spec.causal and causal_kernel is None and not softmax:
        raise ConfigError(
            f"kernel {name!r} has no causal mode; found a causal attn_mask; pass "
            "attn_mask=None and is_causal=False, or use another kernel"
        )
    if kernel.spec.causal and lengths[0] != lengths[1]:
        raise ConfigError(
            "causal attention (the module was built with causal=True) needs as many queries as "
            f"keys; found L={lengths[0]} queries and S={lengths[1]} keys"
        )
    return kernel.spec.causal or masks.causal
