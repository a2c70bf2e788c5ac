"""DLinear (Zeng et al., AAAI 2023): moving-average decomposition (kernel 25, edge-replicate
padding) and two linear maps over time (seasonal + trend), shared over series unless
``individual=True``. Registered in :mod:`linearcast.models.baselines`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import check_steps, target_channel


class MovingAverage(nn.Module):
    """DLinear's trend: a centred moving average with edge-replicate padding, along dim 1.

    Args:
        kernel_size: window length (odd keeps the output length; even drops one step, as in
            the original DLinear).
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 1:
            raise ConfigError(f"moving-average kernel_size must be >= 1; found {kernel_size}")
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, N] → [B, T, N]`` (``T − 1`` steps for an even kernel)."""
        half = (self.kernel_size - 1) // 2
        padded = torch.cat([x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], 1)
        return F.avg_pool1d(padded.transpose(1, 2), self.kernel_size, stride=1).transpose(1, 2)


def _over_time(z: Tensor, weight: Tensor) -> Tensor:
    """``z: [B, T_in, N]`` times ``weight: [1|N, T_out, T_in]`` over time → ``[B, T_out, N]``."""
    if weight.shape[0] == 1:
        return torch.einsum("bin,ji->bjn", z, weight[0])
    return torch.einsum("bin,nji->bjn", z, weight)


class DLinear(nn.Module):
    """DLinear: ``Linear_s(x − trend) + Linear_t(trend)`` over time, per series.

    Args:
        num_nodes: N (used only when ``individual``).
        in_steps: T_in.
        out_steps: T_out.
        kernel_size: moving-average window (25, as the paper).
        individual: one pair of linear maps per series (ties the model to N).
    """

    def __init__(
        self,
        num_nodes: int,
        in_steps: int,
        out_steps: int,
        *,
        kernel_size: int = 25,
        individual: bool = False,
    ) -> None:
        super().__init__()
        check_steps("dlinear", in_steps, out_steps)
        if kernel_size % 2 == 0:
            raise ConfigError(
                f"dlinear needs an odd kernel_size (the decomposition keeps the length); "
                f"found {kernel_size}"
            )
        self.in_steps, self.out_steps, self.individual = in_steps, out_steps, individual
        self.decompose = MovingAverage(kernel_size)
        n = num_nodes if individual else 1
        self.seasonal_weight = nn.Parameter(torch.empty(n, out_steps, in_steps))
        self.seasonal_bias = nn.Parameter(torch.empty(n, out_steps))
        self.trend_weight = nn.Parameter(torch.empty(n, out_steps, in_steps))
        self.trend_bias = nn.Parameter(torch.empty(n, out_steps))
        bound = in_steps**-0.5  # nn.Linear's default init
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def decomposition(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z: [B, T, N] → (seasonal, trend)``, each ``[B, T, N]``; they sum to ``z``."""
        trend = self.decompose(z)
        return z - trend, trend

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = target_channel(x, "dlinear", self.in_steps)  # (B, T_in, N)
        if self.individual and z.shape[2] != self.seasonal_weight.shape[0]:
            raise ConfigError(
                f"dlinear(individual=True) was built for N={self.seasonal_weight.shape[0]} "
                f"series; found N={z.shape[2]}"
            )
        seasonal, trend = self.decomposition(z)
        out = _over_time(seasonal, self.seasonal_weight) + _over_time(trend, self.trend_weight)
        out = out + (self.seasonal_bias + self.trend_bias).transpose(0, 1)  # (T_out, N|1)
        return out[..., None]


__all__ = ["DLinear", "MovingAverage"]
