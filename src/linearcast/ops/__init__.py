"""Attention kernels as pure tensor functions, ``q [B, H, Nq, D], k [B, H, N, D], v [B, H, N, Dv]``.

Each fast path has a readable reference beside it (``*_naive`` / ``*_quadratic``), and
:data:`KERNELS` lists them together: the modules of :mod:`linearcast.nn`, the naive-vs-fast tests
and the benchmarks are all driven by that one table.
"""

from linearcast.ops.eala import (
    EalaImpl,
    choose_impl,
    eala_attention,
    eala_attention_causal,
    eala_attention_linear,
    eala_attention_short,
)
from linearcast.ops.eala_linear_ref import eala_attention_linear_autograd
from linearcast.ops.eala_naive import (
    EalaStats,
    eala_attention_quadratic,
    eala_stats,
    eala_weights,
    paper_first_order_entropy,
    theta_star,
)
from linearcast.ops.eala_theta import (
    PAPER_THETA,
    ThetaRule,
    exact_theta,
    softmax_entropy,
    theta_from_moments,
)
from linearcast.ops.kernels import KERNELS, KernelOp, Variant
from linearcast.ops.linear import FeatureMap, linear_attention, linear_attention_naive
from linearcast.ops.linformer import linformer_attention, linformer_attention_naive
from linearcast.ops.softmax import softmax_attention, softmax_attention_naive

__all__ = [
    "KERNELS",
    "PAPER_THETA",
    "EalaImpl",
    "EalaStats",
    "FeatureMap",
    "KernelOp",
    "ThetaRule",
    "Variant",
    "choose_impl",
    "eala_attention",
    "eala_attention_causal",
    "eala_attention_linear",
    "eala_attention_linear_autograd",
    "eala_attention_quadratic",
    "eala_attention_short",
    "eala_stats",
    "eala_weights",
    "exact_theta",
    "linear_attention",
    "linear_attention_naive",
    "linformer_attention",
    "linformer_attention_naive",
    "paper_first_order_entropy",
    "softmax_attention",
    "softmax_attention_naive",
    "softmax_entropy",
    "theta_from_moments",
    "theta_star",
]
