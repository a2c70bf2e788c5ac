"""Dropout with a cheaper random mask on the CPU; ``torch.nn.functional.dropout`` is the reference.

On our CPU, drawing the Bernoulli mask is the single most expensive elementwise op of a
STAEformer training step (a fifth to a quarter of it in a profile at N = 307, batch 8:
``aten::bernoulli_`` draws one random number per element); the STAEformer family uses this
function by default (``fast_dropout``). :func:`dropout` draws one 64-bit random integer per
four elements and compares each 16-bit quarter with a threshold, so the drop probability is
``round(p · 2¹⁶) / 2¹⁶`` (within ``2⁻¹⁷`` of ``p``) and the kept values are scaled by the exact
``1 / (1 − p')``: the same distribution as the reference up to that rounding, and an unbiased
estimate of the identity. On other devices (where the mask is cheap) it calls the reference.

Memory: on the CPU, ``F.dropout`` keeps a float32 Bernoulli tensor per call for backward (its
fused 1-byte-mask kernel is for CUDA only); :func:`dropout` keeps a bool mask, which saves 12%
of a STAEformer step's activations at N = 883 (live tensor peak 7.05 → 6.20 GiB).

The random stream differs from ``F.dropout``'s (a run with the same seed draws other masks);
gradients flow through the kept entries only, as with the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_LEVELS = 1 << 16


def dropout_reference(x: Tensor, p: float, training: bool = True) -> Tensor:
    """The reference: ``torch.nn.functional.dropout``."""
    return F.dropout(x, p, training)


def _keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[Tensor, float]:
    """A bool keep-mask of ``shape`` from 16-bit slices of 64-bit random integers, and the exact
    keep probability it was drawn with."""
    n = 1
    for s in shape:
        n *= s
    drop_levels = round(p * _LEVELS)
    raw = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device)
    quarters = raw.view(torch.int16)[:n].view(shape)  # uniform over int16 (all bits random)
    keep = quarters >= (-(_LEVELS // 2) + drop_levels)
    return keep, 1.0 - drop_levels / _LEVELS


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest.

    Args:
        x: any float tensor.
        p: drop probability in ``[0, 1)``.
        training: identity when False (and when ``p == 0``).

    Returns:
        ``x`` with the dropped entries zeroed and the kept ones divided by the keep probability
        (``round(p·65536)/65536`` rounding of ``p`` on the CPU; see the module docstring).
    """
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), found {p}")
    if x.device.type != "cpu":
        return F.dropout(x, p, training)
    keep, keep_prob = _keep_mask(x.shape, p, x.device)
    # where() saves only the bool mask for backward (1 byte per element)
    return torch.where(keep, x * (1.0 / keep_prob), torch.zeros((), dtype=x.dtype))
