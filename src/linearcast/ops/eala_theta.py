"""θ rules of EALA: functions of the score second moment ``m2 = S2/n`` and the key count ``n``.

See ``docs/eala.md`` for the derivation. Every rule here is linear-time; the quadratic-only
``"exact"`` rule lives in :mod:`linearcast.ops.eala_naive`.
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
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        return torch.full_like(m2, float(rule))
    if rule == "paper":
        return torch.full_like(m2, PAPER_THETA + eps)
    if rule == "gauss":
        return torch.ones_like(m2)
    if rule == "gauss_hclamp":
        # the deficit cannot exceed log n; n = 1 has no deficit at all (m2 = 0 there)
        two_log_n = torch.where(n > 1, 2.0 * torch.log(n.clamp_min(1.0)), torch.inf)
        # clamp inside the sqrt: sqrt(..).clamp_min(1) has a NaN gradient at m2 = 0
        return torch.sqrt(torch.clamp_min(m2 / two_log_n, 1.0))
    raise ConfigError(f"theta rule {rule!r} is not a linear-time rule")
