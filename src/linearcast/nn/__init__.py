"""Modules built on :mod:`linearcast.ops`: multi-head attention with a pluggable kernel, blocks."""

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

__all__ = [
    "KERNELS",
    "EalaKernel",
    "KernelOptions",
    "LinearKernel",
    "LinformerKernel",
    "MultiHeadAttention",
    "SelfAttentionLayer",
    "SoftmaxKernel",
    "make_kernel",
]
