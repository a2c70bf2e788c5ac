"""Checks where data enters: non-finite values (count; refuse, keep as missing readings or
replace by the null value) and the range of time features. Every reader and
:class:`~linearcast.data.dataset.TimeSeriesDataset` use them; the scans go chunk by chunk, so
memory-mapped arrays are not read whole.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np

from linearcast.errors import DataError

NonFinitePolicy = Literal["error", "mask", "null"]
NON_FINITE_POLICIES: tuple[str, ...] = ("error", "mask", "null")

# Elements per chunk when scanning (possibly memory-mapped) arrays; keeps peak memory small.
_CHUNK_ELEMENTS = 1 << 21


def _iter_row_chunks(values: np.ndarray) -> list[slice]:
    """Row slices of ``values`` (first axis) holding about ``_CHUNK_ELEMENTS`` elements each."""
    t = values.shape[0]
    per_row = max(1, int(np.prod(values.shape[1:], dtype=np.int64)))
    step = max(1, _CHUNK_ELEMENTS // per_row)
    return [slice(a, min(a + step, t)) for a in range(0, t, step)]


def count_non_finite(values: np.ndarray) -> tuple[int, int]:
    """Count NaN and ±inf entries of an array, chunk by chunk (memmap friendly).

    Args:
        values: any float array, typically ``[T, N, F]``.

    Returns:
        ``(num_nan, num_inf)``.
    """
    n_nan = n_inf = 0
    if not np.issubdtype(values.dtype, np.floating):
        return 0, 0
    for sl in _iter_row_chunks(values):
        chunk = np.asarray(values[sl])
        n_nan += int(np.isnan(chunk).sum())
        n_inf += int(np.isinf(chunk).sum())
    return n_nan, n_inf


def handle_non_finite(
    values: np.ndarray,
    source: str,
    null_value: float,
    policy: NonFinitePolicy = "error",
) -> np.ndarray:
    """Apply the non-finite rule: raise, or keep NaN/inf as missing readings, with a warning.

    A missing reading (NaN, ±inf, or the null value) is left out of the scaler fit, the loss and
    the metrics, and filled in the model's input (docs/data.md, "Missing values"), so ``"mask"``
    and ``"null"`` train the same; they differ in what the array holds afterwards.

    Args:
        values: ``[T, N, F]`` float array (may be a read-only memmap).
        source: file name (or dataset name) used in the messages.
        null_value: the dataset's null value (0.0, a sentinel such as -200, or NaN).
        policy: ``"error"`` raises :class:`DataError` with the counts; ``"mask"`` keeps NaN and
            makes ±inf NaN; ``"null"`` replaces every NaN and ±inf by ``null_value``. Both
            copy a read-only ``values`` and emit a :class:`UserWarning` with the counts.

    Returns:
        ``values`` itself when it holds no NaN/inf, else the cleaned array.
    """
    n_nan, n_inf = count_non_finite(values)
    if n_nan == 0 and n_inf == 0:
        return values
    total = int(values.size)
    found = f"{n_nan} NaN and {n_inf} infinite values out of {total}"
    if policy == "error":
        raise DataError(
            f"{source}: expected finite values, found {found}. To treat them as missing "
            f"readings (left out of the scaler, the loss and the metrics, filled in the model's "
            f"input) use --set data_options.non_finite=mask (Python: non_finite='mask')."
        )
    if policy not in NON_FINITE_POLICIES:
        raise DataError(
            f"{source}: non_finite must be one of {', '.join(NON_FINITE_POLICIES)}, found "
            f"{policy!r} (--set data_options.non_finite=mask)."
        )
    fill = math.nan if policy == "mask" else null_value
    what = "kept as missing readings" if policy == "mask" else f"replaced by the null value {fill}"
    warnings.warn(
        f"{source}: {found} {what} (masked in the loss and metrics, filled in the inputs).",
        UserWarning,
        stacklevel=3,
    )
    out = np.array(values, dtype=np.float32, copy=True)
    out[~np.isfinite(out)] = fill
    return out


def check_time_features(
    source: str, tod: np.ndarray | None = None, dow: np.ndarray | None = None
) -> None:
    """Check time features where data enters: time of day in [0, 1), day of week in 0..6.

    Models index embedding tables with them (STAEformer: ``floor(tod · steps_per_day)`` and the
    day); a value out of range (e.g. a step index given as time of day) would otherwise land
    silently in the last slot or fail deep inside the model.

    Raises:
        DataError: naming the file, the expected range and the values found.
    """
    if tod is not None and len(tod):
        t = np.asarray(tod, dtype=np.float64)
        bad = ~np.isfinite(t) | (t < 0.0) | (t >= 1.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: expected time-of-day fractions in [0, 1), found {int(bad.sum())} "
                f"outside (first {t[i]:g} at step {i}; range "
                f"{np.nanmin(t):g}..{np.nanmax(t):g}). "
                f"A column of step indices or hours must be divided by steps per day or 24."
            )
    if dow is not None and len(dow):
        d = np.asarray(dow, dtype=np.float64)
        bad = ~np.isfinite(d) | (d < 0) | (d > 6) | (d != np.round(d))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: expected day-of-week integers 0..6 (Monday = 0), found "
                f"{int(bad.sum())} other values (first {d[i]:g} at step {i})."
            )


__all__ = [
    "NON_FINITE_POLICIES",
    "NonFinitePolicy",
    "check_time_features",
    "count_non_finite",
    "handle_non_finite",
]
