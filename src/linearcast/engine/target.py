"""What a run's forecasts are: which channel of the data they predict, and whether they are
clipped at 0.

**Channel.** A model forecasts one channel of ``[T, N, F]`` data (the protocol's
``target_channel``, 0 unless set): the inflow of in/out-flow data, the flow of PEMS's
flow/occupancy/speed. The checkpoint's ``meta`` records its index and name (``target_channel``,
``target_name``) so that a forecast, a prediction or an ONNX file says which one without the
data; the name comes from the dataset's ``channel_names``.

**Non-negative output** (``nonnegative = true``, the presets for counts). Counts are never
below 0, but a linear model extrapolating a falling series is. The rule is applied where a
forecast leaves the model: a forward hook clips the model's (scaled) output at the scaled value
of 0 when the model is in eval mode, so validation, test metrics, the run's plots, ``evaluate``
and ``predict`` all see clipped forecasts while training sees the unclipped ones (a clipped
output has no gradient to learn from). Data-unit outputs are then clipped at exactly 0
(:func:`clip_data_units`): the inverse transform of the scaled 0 is 0 only up to float32
rounding. The ONNX graph clips in data units itself (:class:`~linearcast.serve.export.
RawUnitModel`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from linearcast.data import StandardScaler, TimeSeriesDataset
    from linearcast.engine.config import TrainConfig

_MAX_NAME = 60  # a name from a file, shown in one line


def channel_name(ds: TimeSeriesDataset, channel: int) -> str | None:
    """The dataset's name for ``channel``, or ``None`` when it names none."""
    names = ds.channel_names
    if names is None or not 0 <= channel < len(names):
        return None
    return str(names[channel])[:_MAX_NAME]


def target_meta(ds: TimeSeriesDataset, channel: int) -> dict[str, Any]:
    """The checkpoint ``meta`` entries naming the forecast channel of ``ds``."""
    return {
        "target_channel": int(channel),
        "target_name": channel_name(ds, channel),
        "data_channels": int(ds.num_channels),
    }


def recorded_target(meta: dict[str, Any], channel: int) -> tuple[str | None, int | None]:
    """``(name, data channels)`` a checkpoint's ``meta`` records for ``channel`` (``None`` for
    what a run written before they were recorded, or another channel's record, lacks)."""
    name = meta.get("target_name")
    count = meta.get("data_channels")
    if meta.get("target_channel") != channel:
        return None, None
    name = name[:_MAX_NAME] if isinstance(name, str) else None
    count = count if isinstance(count, int) and not isinstance(count, bool) else None
    return name, count


def channel_text(name: str | None, channel: int, channels: int | None) -> str:
    """``"inflow (channel 0 of 2)"``; ``"channel 0 of 2"`` without a name; ``""`` when the data
    has one channel (nothing to say)."""
    if channels == 1 or (channels is None and name is None and channel == 0):
        return ""
    where = f"channel {channel}" + (f" of {channels}" if channels else "")
    return f"{name} ({where})" if name else where


# ------------------------------------------------------------------ non-negative output
def clip_data_units(values: np.ndarray, nonnegative: bool) -> np.ndarray:
    """``values`` clipped at 0 when ``nonnegative`` (NaN stays NaN, to be refused as such)."""
    if not nonnegative:
        return values
    return np.where(values < 0, np.zeros((), dtype=values.dtype), values)


def scaled_zero(scaler: StandardScaler) -> Tensor:
    """The scaled value of 0 in data units: ``-mean / std``, a scalar (global scaler) or
    ``[N, 1]`` (per series) against outputs ``[B, T_out, N, C]``."""
    zero = -np.asarray(scaler.mean, dtype=np.float64) / np.asarray(scaler.std, dtype=np.float64)
    floor = torch.as_tensor(zero, dtype=torch.float32)
    return floor[:, None] if floor.dim() else floor


class _ClipHook:
    """A forward hook: outputs at least the scaled 0, in eval mode only."""

    def __init__(self, floor: Tensor) -> None:
        self.floor = floor

    def __call__(self, module: nn.Module, inputs: Any, out: Tensor) -> Tensor | None:
        if module.training:
            return None
        floor = self.floor.to(device=out.device, dtype=out.dtype)
        # NaN outputs stay NaN (torch.maximum propagates them): non-finite forecasts are refused
        return torch.maximum(out, floor)


def apply_output_rule(model: nn.Module, config: TrainConfig, scaler: StandardScaler) -> nn.Module:
    """``model`` with the run's output rule: clipped at 0 in eval mode under
    ``config.nonnegative`` (a forward hook: the weights and their names are unchanged)."""
    if config.nonnegative:
        model.register_forward_hook(_ClipHook(scaled_zero(scaler)))
    return model
