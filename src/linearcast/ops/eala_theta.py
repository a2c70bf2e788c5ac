"""θ rules of EALA: functions of the score second moment ``m2 = S2/n`` and the key count ``n``.

See ``docs/eala.md`` for the derivation. Every rule but ``"exact"`` is linear-time; ``"exact"``
(:func:`exact_theta`, entropy matched by bisection) needs the centred scores themselves. The fast
paths and the references both take their θ from here, and from nothing else of each other.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from linearcast.errors import ConfigError

ThetaRule = Literal["paper", "gauss", "gauss_hclamp", "exact"] | float
LINEAR_RULES = ("paper", "gauss", "gauss_hclamp")

#: The paper's θ in closed form. Its first-order estimate ``exp(x) ≈ 1 + x`` gives the entropy
#: deficit ``D = m2`` exactly (centred scores), so ``θ = sqrt(m2 / (2 D)) = 1/√2`` for every query.
PAPER_THETA = 1.0 / math.sqrt(2.0)


def check_theta_rule(rule: ThetaRule, *, allow_exact: bool) -> None:
    """Raise :class:`ConfigError` for an unknown θ rule (or ``"exact"`` where it can't run)."""
    if isinstance(rule, bool):
        raise ConfigError(f"theta must be a rule name or a positive float; found {rule!r}")
    if isinstance(rule, int | float):
        if not math.isfinite(rule) or rule <= 0:
            raise ConfigError(f"a constant theta must be a positive finite float; found {rule!r}")
        return
    known = (*LINEAR_RULES, "exact") if allow_exact else LINEAR_RULES
    if rule not in known:
        where = "" if allow_exact else " on a linear-time path ('exact' needs impl='quadratic')"
        raise ConfigError(f"theta rule must be one of {known} or a float{where}; found {rule!r}")


def constant_theta(rule: ThetaRule, eps: float) -> float | None:
    """θ of a rule that ignores the scores (``"paper"``, ``"gauss"``, a float), else None.

    The fast paths use it to skip the score statistics such a rule never reads.
    """
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        return float(rule)
    if rule == "paper":
        return PAPER_THETA + eps
    if rule == "gauss":
        return 1.0
    return None


def theta_from_moments(m2: Tensor, n: Tensor, rule: ThetaRule, eps: float = 1e-8) -> Tensor:
    """Per-query θ from the score variance ``m2`` and the number of keys ``n``.

    Args:
        m2: ``[...]`` variance of the centred scores over the keys, ``S2/n`` (≥ 0).
        n: ``[...]`` (broadcastable) number of keys each query sees, as a float tensor.
        rule: ``"paper"`` (1/√2 + eps), ``"gauss"`` (1), ``"gauss_hclamp"``
            (``max(1, σ/sqrt(2 ln n))``) or a positive float.
        eps: added to the paper's θ, as the paper adds it.

    Returns:
        θ with the shape of ``m2``; always ≥ 1/√2 for the named rules and finite.
    """
    const = constant_theta(rule, eps)
    if const is not None:
        return torch.full_like(m2, const)
    if rule == "gauss_hclamp":
        # the deficit cannot exceed log n; n = 1 has no deficit at all (m2 = 0 there)
        two_log_n = torch.where(n > 1, 2.0 * torch.log(n.clamp_min(1.0)), torch.inf)
        # clamp inside the sqrt: sqrt(..).clamp_min(1) has a NaN gradient at m2 = 0
        return torch.sqrt(torch.clamp_min(m2 / two_log_n, 1.0))
    raise ConfigError(f"theta rule {rule!r} is not a linear-time rule")


def softmax_entropy(x: Tensor, mask: Tensor | None) -> Tensor:
    """Entropy ``log Z − Σ p s`` of ``softmax(x)`` over the last axis (unseen keys excluded).

    Args:
        x: ``[..., N]`` scores.
        mask: ``[..., N]`` (broadcastable) 1 for seen keys, 0 otherwise, or None.

    Returns:
        ``[...]``; 0 for a row that sees at most one key.
    """
    if mask is not None:
        x = x.masked_fill(mask == 0, float("-inf"))
    log_z = torch.logsumexp(x, dim=-1, keepdim=True)
    p = torch.exp(x - log_z)
    xs = torch.where(p > 0, x, torch.zeros_like(x))
    h = (log_z - (p * xs).sum(dim=-1, keepdim=True)).squeeze(-1)
    return torch.nan_to_num(h, nan=0.0, neginf=0.0, posinf=0.0)


def _linear_entropy(x: Tensor, t: Tensor, mask: Tensor | None, n: Tensor) -> Tensor:
    """Entropy of ``φ = (1 + t x)/n`` (t = 1/θ), all weights assumed ≥ 0."""
    phi = (1.0 + t * x) / n
    if mask is not None:
        phi = phi * mask
    return -torch.special.xlogy(phi, phi.clamp_min(0.0)).sum(dim=-1, keepdim=True)


def exact_theta(x: Tensor, mask: Tensor | None, n: Tensor, iters: int = 80) -> Tensor:
    """θ with ``H(φ_θ) = H(softmax(x))`` by bisection (analysis only, no gradient).

    ``H(φ_θ)`` rises monotonically from the most peaked non-negative weighting (θ = −min x) to
    ``log n`` (θ → ∞); the root is searched in ``t = 1/θ``. When softmax is more peaked than any
    non-negative linear weighting can be, θ = −min x is returned (the closest one can get).

    Args:
        x: ``[B, H, Nq, N]`` centred scores, 0 at unseen keys.
        mask: seen-key mask as in :func:`softmax_entropy`, or None.
        n: ``[..., 1]`` keys seen per query.
        iters: bisection steps (80 halves the bracket past float64 resolution).

    Returns:
        ``[B, H, Nq]`` θ, in ``x``'s dtype; 1 where all scores are equal.
    """
    with torch.no_grad():
        x64 = x.double()
        m64 = None if mask is None else mask.double()
        n64 = n.double().clamp_min(1.0)
        target = softmax_entropy(x64, m64)[..., None]
        lowest = x64 if m64 is None else x64.masked_fill(m64 == 0, 0.0)
        spread = (-lowest.min(dim=-1, keepdim=True).values).clamp_min(0.0)
        flat = spread <= 1e-12 * (1.0 + x64.abs().amax(dim=-1, keepdim=True))
        lo = torch.zeros_like(spread)
        # just inside the non-negative range, so rounding cannot make the smallest weight < 0
        hi = torch.where(flat, torch.ones_like(spread), (1 - 1e-9) / spread.clamp_min(1e-300))
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            too_peaked = _linear_entropy(x64, mid, m64, n64) < target
            hi = torch.where(too_peaked, mid, hi)
            lo = torch.where(too_peaked, lo, mid)
        t = lo  # the side whose entropy is at least the target
        theta = torch.where(flat | (t <= 0), torch.ones_like(t), 1.0 / t.clamp_min(1e-300))
        return theta.squeeze(-1).to(x.dtype)


def theta_of_scores(
    x: Tensor, mask: Tensor | None, n: Tensor, m2: Tensor, rule: ThetaRule, eps: float
) -> Tensor:
    """θ per query ``[B, H, Nq]`` from centred scores ``x`` (``"exact"``) or their variance ``m2``.

    Args:
        x: ``[B, H, Nq, N]`` centred scores, 0 at unseen keys.
        mask: seen-key mask (1/0, broadcastable to ``x``) or None.
        n: ``[..., 1]`` keys seen per query.
        m2: ``[B, H, Nq]`` (broadcastable) score variance.
        rule: any θ rule, ``"exact"`` included.
        eps: added to the paper's θ.
    """
    if rule == "exact":
        return exact_theta(x, mask, n)
    return theta_from_moments(m2, n.squeeze(-1), rule, eps)
