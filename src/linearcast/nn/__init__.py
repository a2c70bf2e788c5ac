"""Modules built on :mod:`linearcast.ops`: the attention spec and its kernels, multi-head
attention, blocks, and a drop-in for ``torch.nn.MultiheadAttention`` (:func:`swap_attention`)."""

from linearcast.nn.attention import MultiHeadAttention
from linearcast.nn.blocks import SelfAttentionLayer
from linearcast.nn.dropin import EALAMultiheadAttention, swap_attention
from linearcast.nn.kernels import (
    KERNELS,
    AttentionSpec,
    EalaKernel,
    Kernel,
    KernelTheta,
    LinformerKernel,
    OpKernel,
    make_kernel,
    split_attention_options,
)

__all__ = [
    "KERNELS",
    "AttentionSpec",
    "EALAMultiheadAttention",
    "EalaKernel",
    "Kernel",
    "KernelTheta",
    "LinformerKernel",
    "MultiHeadAttention",
    "OpKernel",
    "SelfAttentionLayer",
    "make_kernel",
    "split_attention_options",
    "swap_attention",
]
