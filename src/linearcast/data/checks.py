"""Checks where data enters: the cast to float32 (finite values beyond its range refused, not
turned into infinities), non-finite values (count; refuse, keep as missing readings or replace by
the null value) and the range of time features. Every reader and
:class:`~linearcast.data.dataset.TimeSeriesDataset` use them; the scans go chunk by chunk, so
memory-mapped arrays are not read whole.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linearcast.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

NonFinitePolicy = Literal["error", "mask", "null"]
NON_FINITE_POLICIES: tuple[str, ...] = ("error", "mask", "null")

# Elements per chunk when scanning (possibly memory-mapped) arrays; keeps peak memory small.
_CHUNK_ELEMENTS = 1 << 21
#: The largest magnitude float32 holds; a finite value beyond it would become ±inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: What to do about values beyond float32's range, for readers without a ``drop`` option.
RESCALE_FIX = "rescale that series (e.g. divide it by a power of ten) before reading it"
#: The same for readers whose ``drop`` option leaves a column out (``{col}``: its name).
DROP_FIX = (
    "rescale that series in the file (e.g. divide it by a power of ten), or leave it out with "
    "--set data_options.drop=[{col}]"
)


def _iter_row_chunks(values: np.ndarray) -> list[slice]:
    """Row slices of ``values`` (first axis) holding about ``_CHUNK_ELEMENTS`` elements each."""
    t = values.shape[0]
    per_row = max(1, int(np.prod(values.shape[1:], dtype=np.int64)))
    step = max(1, _CHUNK_ELEMENTS // per_row)
    return [slice(a, min(a + step, t)) for a in range(0, t, step)]


def option_name(col: Any) -> str:
    """A column's name as an option value, or ``NAME`` where it is too long or odd to echo."""
    text = str(col)
    return text if len(text) <= 40 and text.isprintable() and "," not in text else "NAME"


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_WORDS = ("true", "false", "nan", "inf", "none", "null")


def set_list(option: str, names: list[str]) -> str:
    """``--set`` argument giving ``option`` the list ``names``, quoted for a POSIX shell; a
    name that is not a plain word (commas, spaces, quotes, ``true``, digits) is written as a
    JSON string, so that it reaches the option as it is."""
    items = [
        n if _PLAIN.fullmatch(n) and n.lower() not in _WORDS else json.dumps(n, ensure_ascii=False)
        for n in names
    ]
    return shlex.quote(f"{option}=[{','.join(items)}]")


def to_float32(
    values: np.ndarray,
    source: str,
    names: Sequence[Any] | None = None,
    fix: str = RESCALE_FIX,
) -> np.ndarray:
    """``values`` as float32, refusing finite values beyond float32's range.

    Every model computes in float32, and a cast turns a finite value above ~3.4e38 into ±inf,
    which the non-finite check would then report as an infinity in the file. Only floats wider
    than float32 can hold such values: float32 arrays (memory-mapped ones included) come back
    as they are, integers and float16 are cast (int64 beyond 2**24 loses precision, never
    range); wider floats are cast chunk by chunk, so a memory-mapped array is never copied
    whole in float64. NaN and ±inf pass through, for :func:`handle_non_finite`.

    Args:
        values: any numeric array, typically ``[T, N]`` or ``[T, N, F]`` (may be a memmap).
        source: the file (or dataset) named in the message.
        names: the N series names (axis 1), to name the first value out of range.
        fix: what to do, for the message; ``{col}`` stands for that series' name.

    Returns:
        ``values`` itself when float32, else a new float32 array of the same shape.

    Raises:
        DataError: naming the source, the count and the first value beyond float32's range.
    """
    if values.dtype == np.float32:
        return values
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return np.asarray(values, dtype=np.float32)
    arr = values.reshape(1) if values.ndim == 0 else values
    # the memory layout kept as astype keeps it (a frame's columns stay contiguous)
    out = np.empty_like(arr, dtype=np.float32, subok=False)
    count = 0
    first: tuple[int, ...] | None = None
    series = np.zeros(arr.shape[1] if arr.ndim >= 2 else 1, dtype=bool)
    with np.errstate(over="ignore"):  # the overflow is what is counted below
        for sl in _iter_row_chunks(arr):
            chunk = np.asarray(arr[sl])
            out[sl] = chunk
            over = np.isinf(out[sl]) & np.isfinite(chunk)
            n = int(over.sum())
            if n and first is None:
                at = np.argwhere(over)[0]
                first = (int(at[0]) + int(sl.start), *(int(i) for i in at[1:]))
            count += n
            if n and arr.ndim >= 2:
                series |= over.reshape(over.shape[0], over.shape[1], -1).any(axis=(0, 2))
    if first is None:
        return out.reshape(values.shape)
    raise DataError(_beyond_float32(arr, source, count, int(series.sum()), first, names, fix))


def _beyond_float32(
    arr: np.ndarray,
    source: str,
    count: int,
    n_series: int,
    first: tuple[int, ...],
    names: Sequence[Any] | None,
    fix: str,
) -> str:
    """The message of :func:`to_float32`: the count, the first value, where it is, the fix."""
    value = float(arr[first])
    where = ""
    name: Any = None
    if len(first) >= 2:
        j = first[1]
        name = names[j] if names is not None and len(names) == arr.shape[1] else None
        text = str(name)
        shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "…"
        where = f" in series {shown}" if name is not None else f" in series {j} (from 0)"
        if len(first) == 3 and arr.shape[2] > 1:
            where += f", channel {first[2]}"
    values = "value" if count == 1 else "values"
    spread = f" in {n_series} series" if n_series > 1 else ""
    return (
        f"{source}: expected values float32 can hold (magnitude at most {FLOAT32_MAX:.1e}; "
        f"every model computes in float32), found {count} finite {values} beyond it{spread} "
        f"(first {value:.6g}{where} at row {first[0]}); "
        f"{fix.replace('{col}', option_name(name) if name is not None else 'NAME')}."
    )


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


def check_non_finite_policy(policy: Any, source: str) -> None:
    """Refuse a ``non_finite`` rule other than ``error``, ``mask`` or ``null`` (up front: not
    only once a NaN turns up).

    Raises:
        DataError: naming the source, the rules and the value found.
    """
    if not isinstance(policy, str) or policy not in NON_FINITE_POLICIES:
        raise DataError(
            f"{source}: non_finite must be one of {', '.join(NON_FINITE_POLICIES)}, found "
            f"{policy!r} (--set data_options.non_finite=mask)."
        )


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
    check_non_finite_policy(policy, source)
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


def calendar_frequency(ts: pd.DatetimeIndex) -> str | None:
    """pandas' frequency (``"MS"``, ``"QE-DEC"``, ``"YS-JAN"``, ...) of timestamps that are
    regular on the calendar but not in length (months, quarters, years); ``None`` for equal
    steps, too few timestamps or no regular pattern. The dataset keeps it in ``meta["freq"]``
    so that forecasts continue the calendar (the next month start, not 31 days on)."""
    import pandas as pd

    if len(ts) < 3 or not ts.is_monotonic_increasing or not ts.is_unique:
        return None
    diffs = np.diff(ts.as_unit("ns").asi8)
    if (diffs == diffs[0]).all():
        return None
    try:
        return pd.DatetimeIndex(ts, freq="infer").freqstr  # None: no pattern
    except (TypeError, ValueError):
        return None


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
    "DROP_FIX",
    "FLOAT32_MAX",
    "NON_FINITE_POLICIES",
    "RESCALE_FIX",
    "NonFinitePolicy",
    "check_non_finite_policy",
    "check_time_features",
    "count_non_finite",
    "handle_non_finite",
    "option_name",
    "to_float32",
]
