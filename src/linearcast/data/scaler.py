"""Z-score scaler fit on the training rows only, ignoring missing readings.

What the reference code does, and what this one does:

- STAEformer (``lib/data_prepare.py``): one mean/std over the target channel of the *training
  input windows* ``x_train[..., 0]`` (every row counted once per window it appears in, zeros
  included).
- BasicTS (``ZScoreScaler``): one mean/std (or one per series with ``NORM_EACH_CHANNEL``) over
  the first ``int(L * train_ratio)`` rows of the target channel, zeros included.
- LTSF (Informer/Autoformer): sklearn ``StandardScaler`` per variable over the training rows.
- Here: mean/std over the training *rows* (each once), per series or global, and by default
  skipping entries equal to the null value (``isclose(x, null, atol=5e-5)``) and NaN, so that
  the zeros of dead sensors do not drag the mean down. Pass ``mask_null=False`` to include
  them (the numbers then match BasicTS's up to its one-row rounding). A zero std becomes 1.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from linearcast.errors import DataError

ScalerMode = Literal["global", "per_channel"]
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_CHUNK_ROWS_ELEMS = 1 << 20
_NULL_ATOL = 5e-5


def valid_mask(x: np.ndarray, null_value: float) -> np.ndarray:
    """Entries that are real readings: not NaN and (for a finite null) not ≈ null.

    Args:
        x: any array.
        null_value: 0.0 (traffic) or NaN.

    Returns:
        Boolean array shaped like ``x``.
    """
    ok = ~np.isnan(x)
    if not math.isnan(null_value):
        ok &= ~np.isclose(x, null_value, atol=_NULL_ATOL, rtol=0.0)
    return ok


class StandardScaler:
    """``(x - mean) / std`` with a global scalar or one mean/std per series (node / variable).

    The series axis is the last axis of the array being scaled, or the one before it when the
    last has size 1 (``[..., N]`` or ``[..., N, 1]``).

    Args:
        mean: scalar (global) or ``[N]`` (per_channel).
        std: same shape as ``mean``.
        mode: ``"global"`` or ``"per_channel"``.
    """

    def __init__(
        self,
        mean: float | np.ndarray = 0.0,
        std: float | np.ndarray = 1.0,
        mode: ScalerMode = "global",
    ) -> None:
        if mode not in ("global", "per_channel"):
            raise DataError(f"scaler mode must be 'global' or 'per_channel', found {mode!r}.")
        self.mode: ScalerMode = mode
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.fitted = False

    def __repr__(self) -> str:
        if self.mode == "global":
            return f"StandardScaler(global, mean={float(self.mean):.4g}, std={float(self.std):.4g})"
        return f"StandardScaler(per_channel, N={self.mean.size})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        values: np.ndarray,
        null_value: float = 0.0,
        mask_null: bool = True,
        source: str = "training data",
    ) -> StandardScaler:
        """Fit on training rows.

        Args:
            values: ``[T_train, N]`` (or ``[T_train, N, 1]``) target rows; may be a memmap
                view -- read chunk by chunk in float64.
            null_value: the dataset's null value.
            mask_null: skip entries ≈ null (and NaN); NaN are always skipped.
            source: name used in error messages.

        Returns:
            ``self``.

        Raises:
            DataError: when no valid entry remains (or a series has none, per_channel).
        """
        if values.ndim == 3 and values.shape[2] == 1:
            values = values[:, :, 0]
        if values.ndim != 2:
            raise DataError(
                f"{source}: expected [T, N] rows to fit the scaler, found {tuple(values.shape)}."
            )
        t, n = values.shape
        axis = None if self.mode == "global" else 0
        shape = () if axis is None else (n,)
        count = np.zeros(shape, dtype=np.float64)
        s1 = np.zeros(shape, dtype=np.float64)
        s2 = np.zeros(shape, dtype=np.float64)
        shift: np.ndarray | None = None
        step = max(1, _CHUNK_ROWS_ELEMS // max(1, n))
        for a in range(0, t, step):
            c = np.asarray(values[a : a + step], dtype=np.float64)
            ok = valid_mask(c, null_value) if mask_null else ~np.isnan(c)
            if shift is None:
                # shifted sums keep float64 accurate on long series
                cnt0 = ok.sum(axis=axis)
                shift = np.where(
                    cnt0 > 0, np.where(ok, c, 0.0).sum(axis=axis) / np.maximum(cnt0, 1), 0.0
                )
            d = np.where(ok, c - shift, 0.0)
            count += ok.sum(axis=axis)
            s1 += d.sum(axis=axis)
            s2 += (d * d).sum(axis=axis)
        if shift is None or (count == 0).any():
            empty = int((count == 0).sum()) if shape else 1
            raise DataError(
                f"{source}: expected valid (non-null, non-NaN) training values to fit the scaler, "
                f"found none for {empty} of {max(1, int(np.prod(shape)))} series "
                f"(rows {t}, null value {null_value})."
            )
        m = s1 / count
        var = np.maximum(s2 / count - m * m, 0.0)
        std = np.sqrt(var)
        self.mean = m + shift
        self.std = np.where(std > 0, std, 1.0)
        self.fitted = True
        return self

    # ------------------------------------------------------------------ applying
    def _params(self, x: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "global":
            return self.mean, self.std
        n = self.mean.size
        shape = tuple(x.shape)
        if shape and shape[-1] == n:
            return self.mean, self.std
        if len(shape) >= 2 and shape[-1] == 1 and shape[-2] == n:
            return self.mean[:, None], self.std[:, None]
        raise DataError(
            f"per_channel scaler for N={n} series cannot scale an array of shape {shape}; "
            f"expected [..., {n}] or [..., {n}, 1]."
        )

    def transform(self, x: ArrayT) -> ArrayT:
        """Scale ``x`` (numpy or torch; same type, dtype and device back).

        Args:
            x: ``[..., N]`` or ``[..., N, 1]`` (any shape for a global scaler).

        Returns:
            ``(x - mean) / std``.
        """
        mean, std = self._params(x)
        if isinstance(x, torch.Tensor):
            m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
            s = torch.as_tensor(std, dtype=x.dtype, device=x.device)
            return (x - m) / s
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return ((x - mean) / std).astype(dtype, copy=False)

    def inverse_transform(self, x: ArrayT) -> ArrayT:
        """Undo :meth:`transform` (numpy or torch).

        Args:
            x: scaled values, ``[..., N]`` or ``[..., N, 1]``.

        Returns:
            ``x * std + mean``.
        """
        mean, std = self._params(x)
        if isinstance(x, torch.Tensor):
            m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
            s = torch.as_tensor(std, dtype=x.dtype, device=x.device)
            return x * s + m
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return (x * std + mean).astype(dtype, copy=False)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (JSON and ``torch.save`` friendly)."""
        return {
            "mode": self.mode,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "fitted": self.fitted,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StandardScaler:
        """Rebuild a scaler saved with :meth:`state_dict`."""
        try:
            sc = cls(np.asarray(state["mean"]), np.asarray(state["std"]), mode=state["mode"])
        except KeyError as err:
            raise DataError(
                f"scaler state: expected keys mode, mean, std; found {sorted(state)}."
            ) from err
        sc.fitted = bool(state.get("fitted", True))
        return sc
