"""Sliding windows over a ``[T, N, F]`` array, one window at a time.

:class:`WindowDataset` keeps a reference to the (possibly memory-mapped) array and a vector of
window start indices; item ``i`` reads rows ``[s, s + in_steps + out_steps)`` with
``s = starts[i]`` and nothing else, so no ``[S, T, N]`` array of all samples ever exists.

Layout of one item (STAEformer's, shared by every model in the library):

- ``x: [in_steps, N, C_in]`` float32 -- channel 0 is the target scaled with the training
  scaler, its missing readings (NaN, ±inf, the null value) filled by the scaler's rule
  (:meth:`StandardScaler.transform_inputs
  <linearcast.data.scaler.StandardScaler.transform_inputs>`: by default the last observation
  in the window, else the training mean), so no NaN ever reaches a model; then, when asked
  for, the time of day as a fraction in ``[0, 1)`` and the day of the week ``0..6`` (as float;
  ``int(x[..., 2])`` indexes an embedding);
- ``y: [out_steps, N, 1]`` float32 -- the target of the next ``out_steps`` rows, raw (unscaled,
  metrics in data units; ``pems``/``metr``) or scaled (``ett``/``ltsf``, metrics in
  standardised units) as the protocol says. A missing target is NaN, which every loss and
  metric masks: NaN/±inf always; a null-valued reading too when ``y`` is scaled (a scaled
  sentinel is no longer recognisable), while raw targets keep it for the null rule of the loss
  and metrics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from linearcast.data.scaler import StandardScaler
from linearcast.errors import DataError


class WindowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Windows ``(x, y)`` read lazily from ``values``.

    Args:
        values: ``[T, N, F]`` float32 array (an ``np.memmap`` stays one).
        starts: ``[S]`` int64 first row of each window's input.
        in_steps: input length.
        out_steps: output length.
        scaler: scales the input target channel and fills its missing readings (``None``:
            unscaled, missing readings filled as by an identity scaler).
        target_channel: which of the F channels is the target.
        time_of_day: ``[T]`` fractions in ``[0, 1)``; adds channel 1 of ``x`` when given.
        day_of_week: ``[T]`` integers ``0..6``; adds the next channel of ``x`` when given.
        scale_target: also scale ``y`` (standardised-units protocols).
    """

    def __init__(
        self,
        values: np.ndarray,
        starts: np.ndarray,
        in_steps: int,
        out_steps: int,
        *,
        scaler: StandardScaler | None = None,
        target_channel: int = 0,
        time_of_day: np.ndarray | None = None,
        day_of_week: np.ndarray | None = None,
        scale_target: bool = False,
    ) -> None:
        if values.ndim != 3:
            raise DataError(f"windows: expected values [T, N, F], found shape {values.shape}.")
        t = values.shape[0]
        self.values = values
        self.starts = np.asarray(starts, dtype=np.int64)
        self.in_steps = int(in_steps)
        self.out_steps = int(out_steps)
        if len(self.starts) and (
            self.starts.min() < 0 or self.starts.max() + self.in_steps + self.out_steps > t
        ):
            raise DataError(
                f"windows: starts {int(self.starts.min())}..{int(self.starts.max())} with "
                f"{self.in_steps}+{self.out_steps} steps do not fit in T={t} rows."
            )
        if not 0 <= target_channel < values.shape[2]:
            raise DataError(
                f"windows: target channel {target_channel} out of range for F={values.shape[2]}."
            )
        self.scaler = scaler
        self.target_channel = int(target_channel)
        self.scale_target = scale_target
        # [T] vectors only (float32), never per-window copies
        self.time_of_day = None if time_of_day is None else np.asarray(time_of_day, np.float32)
        self.day_of_week = None if day_of_week is None else np.asarray(day_of_week, np.float32)
        for label, arr in (("time_of_day", self.time_of_day), ("day_of_week", self.day_of_week)):
            if arr is not None and arr.shape != (t,):
                raise DataError(f"windows: expected {label} of shape ({t},), found {arr.shape}.")

    @property
    def num_nodes(self) -> int:
        """N."""
        return int(self.values.shape[1])

    @property
    def input_channels(self) -> int:
        """C_in = 1 + (time of day) + (day of week)."""
        return 1 + (self.time_of_day is not None) + (self.day_of_week is not None)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0:
            index += len(self.starts)
        s = int(self.starts[index])
        m = s + self.in_steps
        e = m + self.out_steps
        # one contiguous read of the window's rows, then split; copy so the memmap is not held
        block = np.array(self.values[s:e, :, self.target_channel], dtype=np.float32)  # (L, N)
        hist, fut = block[: self.in_steps], block[self.in_steps :]
        # set later by inference (a checkpoint's scaler), so read here, not in __init__
        inputs = self.scaler if self.scaler is not None else StandardScaler()
        hist = inputs.transform_inputs(hist)
        if self.scale_target and self.scaler is not None:
            gone = self.scaler.missing(fut)
            fut = np.where(gone, np.float32(np.nan), self.scaler.transform(np.where(gone, 0, fut)))
        else:
            fut = np.where(np.isfinite(fut), fut, np.float32(np.nan))
        n = block.shape[1]
        x = np.empty((self.in_steps, n, self.input_channels), dtype=np.float32)  # (T_in, N, C)
        x[..., 0] = hist
        c = 1
        if self.time_of_day is not None:
            x[..., c] = self.time_of_day[s:m, None]
            c += 1
        if self.day_of_week is not None:
            x[..., c] = self.day_of_week[s:m, None]
        y = np.ascontiguousarray(fut[..., None], dtype=np.float32)  # (T_out, N, 1)
        return torch.from_numpy(x), torch.from_numpy(y)
