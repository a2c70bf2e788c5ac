"""Reversible instance normalisation (RevIN; Kim et al., ICLR 2022) around a forecasting model.

A window whose level or scale lies outside what the model saw in training (NYC taxi's 2020
collapse) is mapped to zero mean and unit spread per series before the model reads it, and the
model's forecast is mapped back with the same statistics. The wrapper keeps the model contract
of :mod:`linearcast.models.base`: ``x: [B, T_in, N, C_in]`` with channel 0 the scaled target and
any further channels time features (time of day in [0, 1), day of week 0..6), which are passed
through untouched; the output ``[B, T_out, N, C_out]`` has every channel in the target's units.

Per window and per series (over the ``T_in`` steps of channel 0)::

    mean = mean_t x[:, t, n, 0]
    std  = sqrt(mean_t (x[:, t, n, 0] - mean)² + eps)      # biased variance, RevIN's eps = 1e-5
    z    = (x[..., 0] - mean) / std           [· weight + bias with the affine]
    ŷ    = model(z) [- bias, / weight]  · std + mean

``eps`` inside the square root keeps a constant window (std 0) finite: it is then divided by
``sqrt(1e-5) ≈ 3.2e-3``, where its deviations from the mean are all 0. Because the model sees
only ``z``, adding ``c`` to a window's target adds ``c`` to the forecast, and (up to ``eps``)
multiplying it by ``a > 0`` multiplies the forecast by ``a`` — whatever the affine parameters.

The optional affine is one weight and one bias for the target channel, shared by all series:
RevIN's is per feature, which here would be per series and tie a trained model to N (the
varying-N models would lose that); the model itself learns per-series structure. At init
(weight 1, bias 0) it changes nothing. The inverse divides by the weight kept at least ``eps``
in magnitude, so that a weight driven to 0 cannot blow the forecast up.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

#: RevIN's eps, added to the variance of each window
EPS = 1e-5


class RevIN(nn.Module):
    """Reversible instance normalisation of channel 0 around ``model``.

    Args:
        model: maps ``[B, T_in, N, C_in]`` (channel 0 the target) to ``[B, T_out, N, C_out]``
            in the target's units; keyword arguments of ``forward`` are passed on, and
            ``targets=`` (scheduled sampling: ``[B, T_out, N, C]`` in the target's units, NaN
            where missing) is normalised with the window's statistics first.
        affine: learn one weight and one bias applied after normalising (and undone before
            de-normalising), shared by all series.
        eps: added to each window's variance.
    """

    def __init__(self, model: nn.Module, *, affine: bool = False, eps: float = EPS) -> None:
        super().__init__()
        self.model = model
        self.eps = eps
        self.affine_weight: nn.Parameter | None = None
        self.affine_bias: nn.Parameter | None = None
        if affine:
            self.affine_weight = nn.Parameter(torch.ones(1))
            self.affine_bias = nn.Parameter(torch.zeros(1))

    @property
    def aux_loss(self) -> Tensor | None:
        """The wrapped model's auxiliary loss term (the engine contract), if it sets one."""
        aux = getattr(self.model, "aux_loss", None)
        return aux if isinstance(aux, Tensor) else None

    def statistics(self, target: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std of each window and series.

        Args:
            target: ``[B, T_in, N]``.

        Returns:
            ``(mean, std)``, each ``[B, 1, N, 1]``.
        """
        mean = target.mean(dim=1, keepdim=True)
        var = (target - mean).square().mean(dim=1, keepdim=True)
        return mean[..., None], torch.sqrt(var + self.eps)[..., None]

    def normalise(self, values: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """``[B, T, N, C]`` in the target's units → the model's units."""
        z = (values - mean) / std
        if self.affine_weight is not None and self.affine_bias is not None:
            z = z * self.affine_weight + self.affine_bias
        return z

    def denormalise(self, z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """``[B, T, N, C]`` in the model's units → the target's units."""
        if self.affine_weight is not None and self.affine_bias is not None:
            w = self.affine_weight
            sign = torch.where(w < 0, -1.0, 1.0).to(w.dtype)
            z = (z - self.affine_bias) / (sign * w.abs().clamp_min(self.eps))
        return z * std + mean

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        """Normalise, forecast, de-normalise.

        Args:
            x: ``[B, T_in, N, C_in]``; channel 0 the target, the others passed through.
            **kwargs: passed to the model (``targets=`` normalised as the target).

        Returns:
            ``[B, T_out, N, C_out]`` in the target's units.
        """
        mean, std = self.statistics(x[..., 0])  # (B, 1, N, 1) each
        z = torch.cat([self.normalise(x[..., :1], mean, std), x[..., 1:]], dim=-1)
        if kwargs.get("targets") is not None:
            kwargs["targets"] = self.normalise(kwargs["targets"], mean, std)
        return self.denormalise(self.model(z, **kwargs), mean, std)


__all__ = ["EPS", "RevIN"]
