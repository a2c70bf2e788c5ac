"""What attention looks like inside a model: score spread, entropy, θ and negative weights.

EALA can only follow softmax while attention is fairly flat (``docs/eala.md``): the score
standard deviation σ and the softmax entropy deficit inside a *trained* model say whether it is.
:func:`attention_profile` records the queries and keys reaching every attention kernel of a model
during one forward pass and summarises them per layer, for softmax and EALA models alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from linearcast.ops import eala_stats
from linearcast.ops.eala_theta import ThetaRule


@dataclass(frozen=True)
class LayerProfile:
    """Summary of one attention layer over the recorded sequences (means over queries)."""

    layer: str  #: module name of the kernel (e.g. ``attn_layers_s.0.attn.kernel``)
    seq_len: int  #: keys per query
    sequences: int  #: sequences (batch × heads folded) the summary covers
    sigma: float  #: score standard deviation (scaled scores, as the kernel sees them)
    entropy_ratio: float  #: H(softmax) / log n (1 = uniform attention)
    theta: dict[str, float]  #: mean θ per rule
    neg_fraction: dict[str, float]  #: mean fraction of negative EALA weights per rule


def attention_profile(
    model: nn.Module,
    x: Tensor,
    *,
    rules: tuple[ThetaRule, ...] = ("paper", "gauss", "gauss_hclamp"),
    max_sequences: int = 16,
) -> list[LayerProfile]:
    """Run ``model(x)`` once (eval mode, no gradient) and profile every attention kernel.

    Kernels are the softmax and EALA modules of :mod:`linearcast.nn.kernels` (their
    ``forward`` takes ``q, k, v, mask`` as ``[B, H, L, D]``); Linformer is left out, since its
    softmax runs over projected keys. The statistics are quadratic in the sequence length,
    so at most ``max_sequences`` rows of the folded batch (spread evenly over it) are analysed
    per layer.

    Args:
        model: any model built from :mod:`linearcast.nn` attention.
        x: one input batch for ``model``.
        rules: θ rules whose θ and negative-weight fraction are reported.
        max_sequences: folded-batch rows analysed per layer.

    Returns:
        One :class:`LayerProfile` per kernel call, in call order.
    """
    from linearcast.nn import Kernel

    profiled = ("softmax", "softmax_naive", "eala")
    recorded: list[tuple[str, Tensor, Tensor]] = []

    def hook(name: str) -> Any:
        def fn(_module: nn.Module, args: tuple[Any, ...], _out: Any) -> None:
            q, k = args[0], args[1]
            # rows spread over the folded batch (the first ones would all be one window's)
            rows = torch.linspace(0, q.shape[0] - 1, min(max_sequences, q.shape[0])).round()
            rows = rows.long().unique().to(q.device)
            recorded.append((name, q[rows].detach(), k[rows].detach()))

        return fn

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in model.named_modules()
        if isinstance(m, Kernel) and m.spec.kernel in profiled
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    out = []
    for name, q, k in recorded:
        n = k.shape[2]
        thetas, negs = {}, {}
        sigma = ent = 0.0
        for rule in rules:
            st = eala_stats(q, k, theta=rule)
            label = rule if isinstance(rule, str) else f"theta={rule:g}"
            thetas[label] = st.theta.mean().item()
            negs[label] = st.neg_fraction.mean().item()
            sigma = st.sigma.mean().item()
            ent = (st.softmax_entropy / max(math.log(n), 1e-12)).mean().item() if n > 1 else 1.0
        out.append(LayerProfile(name, n, q.shape[0] * q.shape[1], sigma, ent, thetas, negs))
    return out


def format_profile(profiles: list[LayerProfile]) -> str:
    """A Markdown table of :func:`attention_profile`'s result."""
    rules = list(profiles[0].theta) if profiles else []
    head = "| layer | n | σ | H/log n | " + " | ".join(f"neg. weights {r}" for r in rules) + " |"
    lines = [head, "|" + "---|" * (4 + len(rules))]
    for p in profiles:
        negs = " | ".join(f"{100 * p.neg_fraction[r]:.1f}%" for r in rules)
        lines.append(
            f"| {p.layer} | {p.seq_len} | {p.sigma:.3f} | {p.entropy_ratio:.3f} | {negs} |"
        )
    return "\n".join(lines)
