"""The floors: rules on the input window with no parameters.

- :class:`LastValue` — persistence, ``ŷ_{T+h} = x_T``.
- :class:`HistoricalAverage` — the mean of the input window.
- :class:`SeasonalNaive` — the value one season earlier (a day or a week of steps).

They follow the model contract of :mod:`linearcast.models.baselines`, which registers them.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import check_steps, target_channel

# the baselines' logger, as before they were split into files (users filter on the name)
log = logging.getLogger("linearcast.models.baselines")


class LastValue(nn.Module):
    """Persistence: repeat the last observed value over the horizon.

    Args:
        in_steps: T_in (only checked).
        out_steps: T_out.
    """

    def __init__(self, in_steps: int, out_steps: int) -> None:
        super().__init__()
        check_steps("last-value", in_steps, out_steps)
        self.in_steps, self.out_steps = in_steps, out_steps

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = target_channel(x, "last-value", self.in_steps)  # (B, T_in, N)
        return z[:, -1:, :, None].expand(-1, self.out_steps, -1, -1)


class HistoricalAverage(nn.Module):
    """The mean of the input window, repeated over the horizon.

    Args:
        in_steps: T_in (only checked).
        out_steps: T_out.
    """

    def __init__(self, in_steps: int, out_steps: int) -> None:
        super().__init__()
        check_steps("historical-average", in_steps, out_steps)
        self.in_steps, self.out_steps = in_steps, out_steps

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = target_channel(x, "historical-average", self.in_steps)  # (B, T_in, N)
        return z.mean(dim=1, keepdim=True)[..., None].expand(-1, self.out_steps, -1, -1)


class SeasonalNaive(nn.Module):
    """The value one season earlier: ``ŷ_{T+h} = x_{T+h−k·m}`` with ``k = ceil(h/m)``.

    Args:
        in_steps: T_in; must be at least the season ``m``.
        out_steps: T_out (may exceed the season: the last season is repeated).
        steps_per_day: steps per day of the data (the engine passes the dataset's value). When
            neither it nor ``season`` is known, the season is ``in_steps`` (the forecast repeats
            the input window) and a warning says so.
        period: ``"day"`` (``m = steps_per_day``) or ``"week"`` (``m = 7·steps_per_day``).
        season: ``m`` directly; overrides ``steps_per_day``/``period``.

    Raises:
        ConfigError: the input window is shorter than the season.
    """

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        *,
        steps_per_day: int | None = None,
        period: Literal["day", "week"] = "day",
        season: int | None = None,
    ) -> None:
        super().__init__()
        check_steps("seasonal-naive", in_steps, out_steps)
        if period not in ("day", "week"):
            raise ConfigError(f"seasonal-naive period must be 'day' or 'week'; found {period!r}")
        if season is not None:
            how = f"season={season}"
        elif steps_per_day is not None:
            if steps_per_day < 1:
                raise ConfigError(f"seasonal-naive needs steps_per_day >= 1; found {steps_per_day}")
            season = steps_per_day * (7 if period == "week" else 1)
            how = f"period={period!r} with steps_per_day={steps_per_day}"
        else:
            season, how = in_steps, "season=in_steps"
            log.warning(
                "seasonal-naive: steps_per_day unknown; using season = in_steps = %d (the "
                "forecast repeats the input window). Pass steps_per_day= or season=",
                in_steps,
            )
        if season < 1:
            raise ConfigError(f"seasonal-naive needs a season >= 1 step; found {season}")
        if in_steps < season:
            raise ConfigError(
                f"seasonal-naive with {how} needs in_steps >= {season} (one season of input); "
                f"found in_steps={in_steps}. Use a longer input window, period='day', or pass "
                "season= / the dataset's steps_per_day="
            )
        self.in_steps, self.out_steps, self.season = in_steps, out_steps, season
        # input index of each horizon step (0-based h): T_in − m + (h mod m)
        idx = in_steps - season + torch.arange(out_steps) % season
        self.register_buffer("index", idx, persistent=False)
        self.index: Tensor

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = target_channel(x, "seasonal-naive", self.in_steps)  # (B, T_in, N)
        return z[:, self.index, :, None]


__all__ = ["HistoricalAverage", "LastValue", "SeasonalNaive"]
