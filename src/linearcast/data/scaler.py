"""Z-score scaler fit on the training rows only, ignoring missing readings.

What the reference code does, and what this one does:

- STAEformer (``lib/data_prepare.py``): one mean/std over the target channel of the *training
  input windows* ``x_train[..., 0]`` (every row counted once per window it appears in, zeros
  included).
- BasicTS (``ZScoreScaler``): one mean/std (or one per series with ``NORM_EACH_CHANNEL``) over
  the first ``int(L * train_ratio)`` rows of the target channel, zeros included.
- LTSF (Informer/Autoformer): sklearn ``StandardScaler`` per variable over the training rows.
- Here: mean/std over the training *rows* (each once), per series or global, skipping missing
  readings: NaN and ±inf always, and by default entries equal to the null value
  (``isclose(x, null, atol=5e-5)``: the zeros of dead sensors, a sentinel such as -9999), so
  that they do not drag the mean down or blow the std up. Pass ``mask_null=False`` to include
  null-valued entries (the numbers then match BasicTS's up to its one-row rounding). A zero std
  becomes 1.

The scaler also carries the input rule of the run (:meth:`StandardScaler.transform_inputs`):
which readings are missing (``null_value``) and how the model's input gets them (``fill``), so
that every path that builds a model input from a checkpoint's scaler (training windows,
``predict``, ``forecast``) fills them the same way.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from linearcast.data.checks import set_list
from linearcast.errors import DataError

ScalerMode = Literal["global", "per_channel"]
InputFill = Literal["last", "mean", "keep"]
INPUT_FILLS: tuple[str, ...] = ("last", "mean", "keep")
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_CHUNK_ROWS_ELEMS = 1 << 20
_NULL_ATOL = 5e-5


def valid_mask(x: np.ndarray, null_value: float) -> np.ndarray:
    """Entries that are real readings: finite and (for a finite null) not ≈ null.

    The one definition of "missing" the data layer uses (the scaler fit, the windows' fill
    and target marks, the masked shares): NaN, ±inf, or within 5e-5 of the null value.

    Args:
        x: any array.
        null_value: 0.0 (traffic), a sentinel such as -200, or NaN (no null value).

    Returns:
        Boolean array shaped like ``x``.
    """
    ok = np.isfinite(x)
    if not math.isnan(null_value):
        ok &= ~np.isclose(x, null_value, atol=_NULL_ATOL, rtol=0.0)
    return ok


def fill_last(z: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Carry the last observation forward along axis 0; entries with none before them get 0.

    Args:
        z: ``[T, ...]`` scaled values (0 is the training mean).
        missing: boolean, shaped like ``z``.

    Returns:
        A float array shaped like ``z`` with no missing entry left.
    """
    t = z.shape[0]
    idx = np.where(missing, 0, np.arange(t).reshape((t,) + (1,) * (z.ndim - 1)))
    idx = np.maximum.accumulate(idx, axis=0)  # row of the last observation at or before
    seen = np.maximum.accumulate(~missing, axis=0)
    out = np.take_along_axis(z, idx, axis=0)
    return np.where(seen, out, 0.0).astype(z.dtype, copy=False)


class StandardScaler:
    """``(x - mean) / std`` with a global scalar or one mean/std per series (node / variable).

    The series axis is the last axis of the array being scaled, or the one before it when the
    last has size 1 (``[..., N]`` or ``[..., N, 1]``).

    Args:
        mean: scalar (global) or ``[N]`` (per_channel).
        std: same shape as ``mean``.
        mode: ``"global"`` or ``"per_channel"``.
        null_value: the value that marks a missing reading besides NaN/±inf (NaN: none).
        fill: what a missing input reading becomes (:meth:`transform_inputs`): ``"last"``
            the last observation before it in the window (0, the training mean, when there is
            none), ``"mean"`` 0, ``"keep"`` NaN/±inf as ``"last"`` but a null-valued reading
            scaled as a value (the reference code's inputs).
    """

    def __init__(
        self,
        mean: float | np.ndarray = 0.0,
        std: float | np.ndarray = 1.0,
        mode: ScalerMode = "global",
        *,
        null_value: float = math.nan,
        fill: InputFill = "last",
    ) -> None:
        if mode not in ("global", "per_channel"):
            raise DataError(f"scaler mode must be 'global' or 'per_channel', found {mode!r}.")
        if fill not in INPUT_FILLS:
            raise DataError(f"scaler fill must be one of {INPUT_FILLS}, found {fill!r}.")
        self.mode: ScalerMode = mode
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.null_value = float(null_value)
        self.fill: InputFill = fill
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
        names: list[str] | None = None,
    ) -> StandardScaler:
        """Fit on training rows.

        Args:
            values: ``[T_train, N]`` (or ``[T_train, N, 1]``) target rows; may be a memmap
                view -- read chunk by chunk in float64.
            null_value: the dataset's null value (kept as :attr:`null_value`, the readings
                :meth:`transform_inputs` fills, whatever ``mask_null`` says).
            mask_null: skip entries ≈ null; NaN and ±inf are always skipped.
            source: name used in error messages.
            names: the N series' names, for the message naming those without a training value.

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
            ok = valid_mask(c, null_value if mask_null else math.nan)
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
            which, fix = "", ""
            if shape and names is not None and len(names) == n:
                gone = [str(names[i]) for i in np.flatnonzero(count == 0)]
                shown = ", ".join(repr(g) for g in gone[:5]) + (", ..." if len(gone) > 5 else "")
                which = f": {shown}"
                fix = (
                    f"; leave {'it' if len(gone) == 1 else 'them'} out (--set "
                    f"{set_list('data_options.drop', gone[:5])} where the reader takes drop) or "
                    f"give a longer training period"
                )
            raise DataError(
                f"{source}: expected valid (non-null, non-NaN) training values to fit the scaler, "
                f"found none for {empty} of {max(1, int(np.prod(shape)))} series{which} "
                f"(rows {t}, null value {null_value}){fix}."
            )
        m = s1 / count
        var = np.maximum(s2 / count - m * m, 0.0)
        std = np.sqrt(var)
        self.mean = m + shift
        self.std = np.where(std > 0, std, 1.0)
        self.null_value = float(null_value)
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

    def missing(self, x: np.ndarray) -> np.ndarray:
        """Where ``x`` (raw units) holds a missing reading: NaN, ±inf or ≈ :attr:`null_value`."""
        return ~valid_mask(x, self.null_value)

    def transform_inputs(self, x: np.ndarray) -> np.ndarray:
        """Scale a model input and fill its missing readings (so no NaN reaches a model).

        Args:
            x: ``[T, N]`` raw readings of one input window, time on axis 0.

        Returns:
            ``[T, N]`` float32: :meth:`transform`, with every missing reading replaced as
            :attr:`fill` says (``"last"``: the last observation before it in the window, else
            0 -- the training mean; ``"mean"``: 0; ``"keep"``: null-valued readings scaled as
            values, NaN/±inf as ``"last"``).
        """
        raw = np.asarray(x, dtype=np.float32)
        missing = ~valid_mask(raw, math.nan if self.fill == "keep" else self.null_value)
        with np.errstate(invalid="ignore", over="ignore"):
            z = self.transform(np.where(missing, np.float32(0.0), raw))
        if not missing.any():
            return z
        if self.fill == "mean":
            return np.where(missing, np.float32(0.0), z).astype(np.float32, copy=False)
        return fill_last(z, missing)

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
            # None for NaN: the state stays strict JSON
            "null_value": None if math.isnan(self.null_value) else self.null_value,
            "fill": self.fill,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StandardScaler:
        """Rebuild a scaler saved with :meth:`state_dict` (a state from before the input rule
        was saved fills only NaN/±inf, which is what its model was trained on).

        Raises:
            DataError: a missing key, or a field of the wrong type, named with what it holds.
        """
        if not all(key in state for key in ("mode", "mean", "std")):
            raise DataError(
                f"scaler state: expected keys mode, mean, std; found {sorted(map(str, state))}."
            )
        arrays = {}
        for key in ("mean", "std"):
            try:
                arrays[key] = np.asarray(state[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError(
                    f"scaler state: expected a number or a list of numbers as {key}, found "
                    f"{_shown(state[key])}."
                ) from None
        null = state.get("null_value")
        if null is not None and (
            isinstance(null, bool) or not isinstance(null, (int, float, np.integer, np.floating))
        ):
            raise DataError(
                f"scaler state: expected a number or null as null_value, found {_shown(null)}."
            )
        # mode and fill are checked (and named) by the constructor
        sc = cls(
            arrays["mean"],
            arrays["std"],
            mode=state["mode"],
            null_value=math.nan if null is None else float(null),
            fill=state.get("fill", "keep"),
        )
        sc.fitted = bool(state.get("fitted", True))
        return sc


def _shown(value: Any) -> str:
    """``type repr`` of a state value, cut to 60 characters."""
    text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= 60 else text[:59] + "…"
