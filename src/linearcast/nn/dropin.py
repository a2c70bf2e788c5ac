"""A drop-in for :class:`torch.nn.MultiheadAttention` that runs any kernel of :data:`KERNELS`.

:class:`EALAMultiheadAttention` has torch's constructor, parameters and ``forward`` signature,
so a torch state dict loads unchanged and a transformer written for torch calls it as it is;
:func:`swap_attention` replaces every ``nn.MultiheadAttention`` in a model by one, weights copied.

What the weights are
    ``in_proj_weight [3E, E]`` and ``in_proj_bias [3E]`` hold the query, key and value
    projections stacked (or ``q_proj_weight [E, E]``, ``k_proj_weight [E, kdim]``,
    ``v_proj_weight [E, vdim]`` when ``kdim``/``vdim`` differ from ``E``), and ``out_proj`` is a
    ``Linear(E, E)``, exactly as in torch. Head ``h`` uses channels ``h·E/H : (h+1)·E/H`` of the
    projections, and the score scale is ``1/sqrt(E/H)``, as in torch. Only the step from
    ``q, k, v`` to the mixed values changes: the kernel. With ``kernel="softmax"`` the module
    computes what torch's does (tested to 1e-6). Linformer adds its own projections
    (``kernel.e_proj``, ``kernel.f_proj``), so a torch state dict loads into it with
    ``strict=False`` (:meth:`EALAMultiheadAttention.from_torch` does that).

What the kernel does with them
    EALA gives key ``j`` the weight ``(1 + x_j/θ)/n``, where ``x_j`` is the query's score with
    key ``j`` centred over the ``n`` visible keys. The weights sum to 1 but are **not** a
    probability distribution: a key scoring far below the mean (``x_j < −θ``) gets a negative
    weight, so the output is an affine, not a convex, combination of the values (``clamp=True``
    clips them, on the quadratic path only). Linear attention (``"linear"``) and Linformer never
    form the ``[L, S]`` weights.

torch's conventions
    The returned weights (``need_weights=True``, torch's default: softmax and EALA form them,
    ``"linear"``, ``"linformer"`` and EALA with ``impl="linear"`` refuse), the masks each kernel
    applies, and a query that sees no key (output and weights 0, where torch gives NaN) are
    described in :mod:`linearcast.nn.mha_compat`, which implements them.

Dropout
    ``dropout`` is the probability of dropping attention weights in training, as in torch. It
    applies to the softmax kernels only: the linear kernels never form the weights, so there it
    is kept as an attribute (a swapped model keeps its value) and has no effect. The residual
    and feed-forward dropout of a transformer layer are untouched.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.nn.kernels import AttentionSpec, EalaKernel, make_kernel
from linearcast.nn.mha_compat import (
    MhaMasks,
    batch_first_inputs,
    causal_twin,
    check_call,
    check_widths,
    eala_weights,
    is_softmax,
    mha_masks,
    softmax_mha,
)

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class EALAMultiheadAttention(nn.Module):
    """``torch.nn.MultiheadAttention`` with a pluggable kernel (EALA by default).

    The positional arguments, parameters and ``forward`` (defaults included) are torch's; see the
    module docstring for what the weights mean to the kernels, the returned weights, the masks,
    a query that sees no key, and dropout. Deliberately not a subclass
    of ``nn.MultiheadAttention``: torch's transformer layers would then take their fused fast
    path, which runs softmax on these weights without calling :meth:`forward`.

    Args:
        embed_dim: width ``E`` of the queries and of the output.
        num_heads: number of heads ``H``; must divide ``E``.
        dropout: attention-weight dropout in training; softmax kernels only (see above).
        bias: biases on the input and output projections.
        add_bias_kv: not supported (refused with a ConfigError).
        add_zero_attn: not supported (refused with a ConfigError).
        kdim: width of the keys; default ``E``.
        vdim: width of the values; default ``E``.
        batch_first: inputs and output are ``[B, L, E]`` instead of ``[L, B, E]``.
        device: where the parameters are created.
        dtype: dtype of the parameters.
        kernel: the attention, an :class:`~linearcast.nn.AttentionSpec` or a kernel name
            (``"eala"``, ``"softmax"``, ``"softmax_naive"``, ``"linformer"``, ``"linear"``).
        seq_len: fixed key length; Linformer needs it.
        **options: fields of the spec to set or change: ``causal=True`` (always causal,
            whatever ``forward`` is given; not with Linformer), ``theta``, ``impl``, ``clamp``,
            ``eps``, ``linformer_k``, ``linformer_share_kv``, ``feature_map``, ``recompute``.
    """

    # torch's TransformerEncoder and TransformerEncoderLayer read this private flag only to
    # decide on their fused fast path (torch._transformer_encoder_layer_fwd, nested tensors),
    # which applies torch's softmax to in_proj_weight and never calls forward(). False keeps
    # them on the path that calls us; our own layout flag is `packed_in_proj`.
    _qkv_same_embed_dim = False

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        kernel: str | AttentionSpec = "eala",
        seq_len: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        spec = AttentionSpec.of(kernel, **options)
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads != 0:
            raise ConfigError(
                "EALAMultiheadAttention needs num_heads >= 1 dividing embed_dim >= 1; found "
                f"embed_dim={embed_dim}, num_heads={num_heads}"
            )
        for name, on in (("add_bias_kv", add_bias_kv), ("add_zero_attn", add_zero_attn)):
            if on:
                raise ConfigError(
                    f"EALAMultiheadAttention does not support {name}=True (extra key/value "
                    f"tokens appended to every sequence); found {name}=True. Keep "
                    "torch.nn.MultiheadAttention for this layer"
                )
        if not 0.0 <= dropout <= 1.0:
            raise ConfigError(f"dropout must be in [0, 1]; found {dropout}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.packed_in_proj = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.kernel_name = spec.kernel
        # torch's layout, parameter for parameter, so that its state dicts load unchanged
        self.in_proj_weight: nn.Parameter | None
        self.q_proj_weight: nn.Parameter | None
        self.k_proj_weight: nn.Parameter | None
        self.v_proj_weight: nn.Parameter | None
        self.in_proj_bias: nn.Parameter | None
        if self.packed_in_proj:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **factory))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        # read by code written for torch's module; always absent here (refused above)
        self.bias_k: Tensor | None = None
        self.bias_v: Tensor | None = None
        self.add_zero_attn = False

        self.causal = spec.causal
        self.kernel = make_kernel(spec, num_heads=num_heads, seq_len=seq_len)
        self.causal_kernel = None if spec.causal else causal_twin(self.kernel, num_heads, seq_len)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialisation: xavier-uniform projections, zero biases."""
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        self.out_proj.reset_parameters()
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)

    @classmethod
    def from_torch(
        cls, mha: nn.MultiheadAttention, *, kernel: str | AttentionSpec = "eala", **options: Any
    ) -> EALAMultiheadAttention:
        """The drop-in for ``mha``: same sizes, dropout, ``batch_first``, device, dtype, weights
        (copied) and ``requires_grad`` flags, and the training mode.

        Args:
            mha: the module to convert.
            kernel: an :class:`~linearcast.nn.AttentionSpec` or a kernel name.
            **options: ``seq_len`` and fields of the spec (``theta=``, ...).

        Raises:
            ConfigError: an unknown option, or ``mha`` uses what the drop-in refuses.
        """
        ref = mha.out_proj.weight
        new = cls(
            mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=mha.in_proj_bias is not None,
            add_bias_kv=mha.bias_k is not None, add_zero_attn=mha.add_zero_attn,
            kdim=mha.kdim, vdim=mha.vdim, batch_first=mha.batch_first,
            device=ref.device, dtype=ref.dtype, kernel=kernel, **options,
        )  # fmt: skip
        missing, unexpected = new.load_state_dict(mha.state_dict(), strict=False)
        # only a kernel's own parameters (Linformer's E, F) are not in torch's state dict
        if unexpected or any(not k.startswith("kernel.") for k in missing):
            raise ConfigError(
                "could not copy the weights of a torch MultiheadAttention: missing "
                f"{missing}, unexpected {unexpected}"
            )
        own = dict(new.named_parameters())
        for name, p in mha.named_parameters():
            own[name].requires_grad_(p.requires_grad)
        return new.train(mha.training)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``, with torch's arguments and defaults.

        Args:
            query: ``[L, B, E]`` (``[B, L, E]`` if ``batch_first``, ``[L, E]`` unbatched).
            key: ``[S, B, kdim]`` (same conventions).
            value: ``[S, B, vdim]`` (same conventions).
            key_padding_mask: ``[B, S]`` (``[S]`` unbatched), bool True or float ``-inf`` =
                ignore that key (softmax kernels: any float, added to the scores).
            need_weights: return the attention weights, as torch does by default; refused by
                the kernels that never form them (``"linear"``, ``"linformer"``, EALA with
                ``impl="linear"``): pass False there.
            attn_mask: ``[L, S]`` or ``[B·H, L, S]`` (``[H, L, S]`` unbatched), bool True or float
                ``-inf`` = blocked; softmax kernels apply any such mask, the others only the
                causal one.
            average_attn_weights: return the weights averaged over the heads ``[B, L, S]``
                instead of per head ``[B, H, L, S]`` (``[L, S]`` / ``[H, L, S]`` unbatched).
            is_causal: torch's hint that ``attn_mask`` is the causal mask; as in torch it needs
                that mask (refused without it, or with another one).

        Returns:
            ``(output, weights)``: output ``[L, B, E]`` (``[B, L, E]`` if ``batch_first``,
            ``[L, E]`` unbatched); weights as above, or None when ``need_weights=False``. A query
            that sees no key gets weights 0 and attention output 0 (torch: NaN there).
        """
        batched = query.dim() == 3
        self_attention = query is key and key is value
        query, key, value, key_padding_mask = batch_first_inputs(
            query, key, value, key_padding_mask, batch_first=self.batch_first
        )  # (B, L|S, E|kdim|vdim)
        check_widths(self, query, key, value)
        b, lq, _ = query.shape
        lk = key.shape[1]
        masks = mha_masks(
            attn_mask, key_padding_mask, is_causal=is_causal,
            shape=(b, self.num_heads, lq, lk), dtype=query.dtype,
        )  # fmt: skip
        causal = check_call(
            self.kernel, self.causal_kernel, masks, need_weights, attn_mask, lengths=(lq, lk)
        )

        q, k, v = self._project(query, key, value, self_attention)  # (B, L|S, E) each
        q = self._heads(q)  # (B, H, L, hd)
        k = self._heads(k)  # (B, H, S, hd)
        v = self._heads(v)  # (B, H, S, hd)
        out, weights = self._attend(q, k, v, masks, causal, need_weights)  # (B, H, L, hd)
        out = self.out_proj(out.transpose(1, 2).reshape(b, lq, self.embed_dim))  # (B, L, E)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)  # (B, L, S)
        if not batched:
            return out[0], None if weights is None else weights[0]
        return (out if self.batch_first else out.transpose(0, 1)), weights

    def _attend(
        self, q: Tensor, k: Tensor, v: Tensor, masks: MhaMasks, causal: bool, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """q ``[B, H, L, D]``, k ``[B, H, S, D]``, v ``[B, H, S, D]`` → ``(out [B, H, L, D],
        weights [B, H, L, S] or None)``; :func:`check_call` has passed."""
        p = self.dropout if self.training else 0.0
        if is_softmax(self.kernel) and (need_weights or p > 0.0 or masks.general):
            return softmax_mha(q, k, v, masks.bias, causal=causal, p=p, weights=need_weights)
        if need_weights:
            assert isinstance(self.kernel, EalaKernel)  # check_call refused the others
            w = eala_weights(self.kernel, q, k, masks.pad, causal)  # (B, H, L, S)
            return w @ v, w
        kern = self.kernel if self.causal or not causal else self.causal_kernel
        assert kern is not None  # check_call refused a kernel without a causal mode
        return kern(q, k, v, masks.pad), None

    def _project(
        self, query: Tensor, key: Tensor, value: Tensor, self_attention: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        bq = bk = bv = None
        if self.in_proj_bias is not None:
            bq, bk, bv = self.in_proj_bias.chunk(3)
        if self.in_proj_weight is None:
            assert self.q_proj_weight is not None and self.k_proj_weight is not None
            assert self.v_proj_weight is not None
            return (
                F.linear(query, self.q_proj_weight, bq),
                F.linear(key, self.k_proj_weight, bk),
                F.linear(value, self.v_proj_weight, bv),
            )
        if self_attention:
            # one GEMM for the three projections, as torch does for self-attention
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            q, k, v = qkv.chunk(3, dim=-1)
            return q, k, v
        wq, wk, wv = self.in_proj_weight.chunk(3)
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _heads(self, x: Tensor) -> Tensor:
        # (B, L, E) -> (B, H, L, hd)
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, kdim={self.kdim}, "
            f"vdim={self.vdim}, dropout={self.dropout}, batch_first={self.batch_first}, "
            f"kernel={self.kernel_name!r}"
        )


def swap_attention(model: ModuleT, kernel: str | AttentionSpec = "eala", **options: Any) -> ModuleT:
    """Replace every ``nn.MultiheadAttention`` inside ``model`` by :class:`EALAMultiheadAttention`.

    Weights, ``requires_grad`` flags, dropout, ``batch_first`` and the training mode are copied;
    a module shared between several places stays shared. Nothing is changed unless every module
    converts. Build the optimizer after swapping (the parameters are new objects); forward hooks
    registered on the replaced modules are not carried over. ``nn.TransformerEncoder``'s
    nested-tensor fast path is switched off (``use_nested_tensor = False``) in the encoders that
    now hold a drop-in, since it would bypass it.

    Args:
        model: any module tree, e.g. ``nn.TransformerEncoder``, ``nn.Transformer`` or one's own.
        kernel: an :class:`~linearcast.nn.AttentionSpec` or a kernel name.
        **options: ``seq_len`` and fields of the spec (``theta="gauss"``, ...).

    Returns:
        ``model`` itself, changed in place.

    Raises:
        ConfigError: naming the qualified name of a module that cannot be converted and why.
    """
    if isinstance(model, nn.MultiheadAttention):
        raise ConfigError(
            "swap_attention replaces the MultiheadAttention modules inside a model, and the "
            "model given is one itself; use EALAMultiheadAttention.from_torch(mha) for it"
        )
    drop_ins: dict[int, EALAMultiheadAttention] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention) and id(module) not in drop_ins:
            try:
                drop_ins[id(module)] = EALAMultiheadAttention.from_torch(
                    module, kernel=kernel, **options
                )
            except ConfigError as err:
                raise ConfigError(f"swap_attention cannot convert {name!r}: {err}") from err
    # every conversion succeeded: now change the model (all parents of a shared module)
    for parent in model.modules():
        # _modules, not named_children(): that skips a second name for the same module
        for child_name, child in list(parent._modules.items()):
            if child is not None and id(child) in drop_ins:
                setattr(parent, child_name, drop_ins[id(child)])
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and any(
            isinstance(m, EALAMultiheadAttention) for m in module.modules()
        ):
            module.use_nested_tensor = False
    return model
