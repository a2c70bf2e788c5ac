"""Modules built on :mod:`linearcast.ops`: multi-head attention with a pluggable kernel, blocks,
and a drop-in for ``torch.nn.MultiheadAttention`` (:func:`swap_attention`)."""

from linearcast.nn.attention import (
    KERNELS,
    EalaKernel,
    KernelOptions,
    LinearKernel,
    LinformerKernel,
    MultiHeadAttention,
    SoftmaxKernel,
    make_kernel,
)
from linearcast.nn.blocks import SelfAttentionLayer
from linearcast.nn.dropin import EALAMultiheadAttention, swap_attention

__all__ = [
    "KERNELS",
    "EALAMultiheadAttention",
    "EalaKernel",
    "KernelOptions",
    "LinearKernel",
    "LinformerKernel",
    "MultiHeadAttention",
    "SelfAttentionLayer",
    "SoftmaxKernel",
    "make_kernel",
    "swap_attention",
]
