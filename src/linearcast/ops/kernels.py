"""The kernel table: every attention op with its reference, its options, a test grid and the
configurations the benchmark times.

One entry drives three things: the modules of :mod:`linearcast.nn` (a kernel without parameters
needs no module of its own), the naive-vs-fast tests (``tests/ops/test_kernel_table.py`` compares
values and gradients over ``grid``) and ``benchmarks/attention.py`` (``variants``). Adding a
kernel = a file with its fast function and naive reference + one entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from linearcast.ops.eala import eala_attention
from linearcast.ops.eala_naive import eala_attention_quadratic
from linearcast.ops.linear import linear_attention, linear_attention_naive
from linearcast.ops.linformer import linformer_attention, linformer_attention_naive
from linearcast.ops.softmax import softmax_attention, softmax_attention_naive


@dataclass(frozen=True)
class Variant:
    """One configuration of a kernel that ``benchmarks/attention.py`` times.

    Attributes:
        label: the name in tables and plots.
        options: keyword arguments of the call (``impl="linear"``, ``causal=True``, ...).
        naive: time the reference instead of the fast function.
        cost: time grows as ``N**cost``; predicts which sizes exceed the time budget.
        materialised: forms ``[N, N]`` tensors, so the memory budget applies.
    """

    label: str
    options: Mapping[str, Any] = field(default_factory=dict)
    naive: bool = False
    cost: int = 1
    materialised: bool = False


@dataclass(frozen=True)
class KernelOp:
    """An attention op: ``fn(q [B, H, Nq, D], k [B, H, N, D], v [B, H, N, Dv], **options)``.

    Attributes:
        fast: the production function.
        naive: its reference, the plainest code of the same function (tests compare the two).
        options: fields of :class:`linearcast.nn.AttentionSpec` the op takes by keyword (besides
            ``causal`` and ``key_padding_mask``, which every op takes).
        causal: whether the op has a causal mode.
        grid: option values the naive-vs-fast tests cross (with causal and a padding mask).
        paths: keyword arguments only the fast function takes, one per path it can take; the
            tests compare each path with the reference.
        extra: tensors the op takes besides q, k, v, made for keys of length n like a given
            tensor (Linformer's projection); None for none.
        variants: benchmark name → the configuration ``benchmarks/attention.py`` times.
    """

    fast: Callable[..., Tensor]
    naive: Callable[..., Tensor]
    options: tuple[str, ...] = ()
    causal: bool = True
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    paths: tuple[Mapping[str, Any], ...] = ({},)
    extra: Callable[[int, Tensor], dict[str, Tensor]] | None = None
    variants: Mapping[str, Variant] = field(default_factory=dict)


def _linformer_projection(n: int, like: Tensor) -> dict[str, Tensor]:
    """A fixed projection ``E [min(256, n), n]`` with entries drawn from ``N(0, 1/k)``."""
    k_len = min(256, n)
    e = torch.randn(k_len, n, dtype=like.dtype, device=like.device) / math.sqrt(k_len)
    return {"e_proj": e}


KERNELS: dict[str, KernelOp] = {
    "softmax": KernelOp(
        softmax_attention,
        softmax_attention_naive,
        variants={
            "softmax_sdpa": Variant("softmax (SDPA)", cost=2),
            "softmax_naive": Variant(
                "softmax (materialised)", naive=True, cost=2, materialised=True
            ),
        },
    ),
    "eala": KernelOp(
        eala_attention,
        eala_attention_quadratic,
        options=("theta", "impl", "clamp", "eps"),
        grid={"theta": ("paper", "gauss", "gauss_hclamp", 0.8)},
        paths=({"impl": "quadratic"}, {"impl": "linear", "chunk_size": 5}),
        variants={
            "eala_linear": Variant("EALA linear", {"impl": "linear"}),
            "eala_quadratic": Variant(
                "EALA quadratic", {"impl": "quadratic"}, cost=2, materialised=True
            ),
            "eala_causal": Variant("EALA causal (chunked)", {"impl": "linear", "causal": True}),
        },
    ),
    "linformer": KernelOp(
        linformer_attention,
        linformer_attention_naive,
        causal=False,
        extra=_linformer_projection,
        variants={"linformer": Variant("Linformer (k=256)")},
    ),
    "linear": KernelOp(
        linear_attention,
        linear_attention_naive,
        options=("feature_map", "normalize"),
        grid={"feature_map": ("elu1", "identity"), "normalize": (True, False)},
        variants={
            "linear_elu": Variant("linear elu+1"),
            "linear_elu_causal": Variant("linear elu+1 causal", {"causal": True}),
        },
    ),
}


def benchmark_variants() -> dict[str, tuple[KernelOp, Variant]]:
    """Every benchmark name of the table with its kernel and configuration, in table order."""
    return {name: (op, var) for op in KERNELS.values() for name, var in op.variants.items()}
