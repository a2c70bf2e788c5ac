"""In-memory data: pandas frames and NumPy arrays as a :class:`TimeSeriesDataset`.

Readers turn *files* into datasets; this module does the same for objects a Python user already
holds, with the same checks (numeric values float32 can hold, one timestamp per row, unique,
increasing, on a regular grid) and the same kind of one-sentence
:class:`~linearcast.errors.DataError`. A time column of numbers or text is read as the CSV
readers read one (:mod:`linearcast.data.readers.time_columns`): epoch numbers in the unit their
size tells, with a warning, unless ``time_unit`` says it.

Accepted shapes::

    wide frame   index = DatetimeIndex, PeriodIndex or text dates (or a time column: found
                 by name as the CSV readers find one, else the one datetime column)
                 x one column per series                       -> values [T, N, 1]
    long frame   columns unique_id, ds, y (neuralforecast / StatsForecast / Darts layout)
                 one row per (series, time)                     -> values [T, N, 1]
    array        [T, N] or [T, N, C] (masked entries: missing readings);
                 time from freq_minutes= / steps_per_day= / start=

It also knows where a series goes next: :func:`future_timestamps` continues a dataset's calendar
(used by forecasting), and :func:`check_regular_end` refuses a gap among the last steps.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.data.checks import check_non_finite_policy, to_float32
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.frame_columns import (
    check_labels,
    check_numeric_column,
    check_times,
    parse_times,
    refuse_repeats,
    wide_time,
)
from linearcast.errors import DataError

if TYPE_CHECKING:
    from linearcast.data.readers.time_columns import TimeSpec

LONG_COLUMNS = ("unique_id", "ds", "y")


def describe_data(data: Any) -> str:
    """A short label for data given as an object (what ``config.json`` records as ``data``).

    Returns:
        e.g. ``"<DataFrame [T, N]>"`` with the numbers filled in, ``"<ndarray [T, N, C]>"``.
    """
    if isinstance(data, TimeSeriesDataset):
        return f"<TimeSeriesDataset {data.name} {list(data.shape)}>"
    if isinstance(data, pd.DataFrame):
        if _is_long(data, *LONG_COLUMNS):
            t = data[LONG_COLUMNS[1]].nunique()
            n = data[LONG_COLUMNS[0]].nunique()
            return f"<DataFrame long [{t}, {n}]>"
        return f"<DataFrame [{data.shape[0]}, {data.shape[1]}]>"
    if isinstance(data, pd.Series):
        return f"<Series [{len(data)}]>"
    if isinstance(data, np.ndarray):
        return f"<ndarray {list(data.shape)}>"
    return f"<{type(data).__name__}>"


def is_in_memory(data: Any) -> bool:
    """Whether ``data`` is an object :func:`as_dataset` takes (not a path or a name)."""
    return isinstance(data, TimeSeriesDataset | pd.DataFrame | pd.Series | np.ndarray)


def as_dataset(
    data: Any,
    *,
    name: str | None = None,
    freq_minutes: int | None = None,
    steps_per_day: int | None = None,
    start: pd.Timestamp | str | None = None,
    time_column: str | None = None,
    id_column: str = "unique_id",
    ds_column: str = "ds",
    value_column: str = "y",
    node_names: list[str] | None = None,
    null_value: float = math.nan,
    non_finite: NonFinitePolicy = "error",
    time_unit: str | None = None,
    time_format: str | None = None,
    dayfirst: bool | None = None,
) -> TimeSeriesDataset:
    """Turn a frame or an array into a :class:`TimeSeriesDataset` (checked).

    Args:
        data: a wide or long ``pandas.DataFrame``, a ``pandas.Series`` (one series), a NumPy
            array ``[T, N]`` / ``[T, N, C]`` (masked entries of a ``numpy.ma`` array are
            missing readings), or a dataset (returned as it is).
        name: dataset name (default ``"dataframe"`` / ``"array"``).
        freq_minutes: step in minutes (a positive whole number), for data without timestamps
            (arrays, frames without a time index).
        steps_per_day: steps per day (a positive whole number), for data without timestamps.
        start: timestamp of the first step, for data without timestamps; it needs the step
            (``freq_minutes``, or ``steps_per_day`` dividing a day).
        time_column: the column holding the timestamps of a wide frame (default: the index
            when it holds times -- a ``DatetimeIndex``, a ``PeriodIndex`` or text dates --,
            else the time columns the CSV readers find by name, in any case (ds, date,
            datetime, time, timestamp; Date + Time; year, month, day[, hour]), else the one
            column of datetimes).
        id_column: series column of a long frame.
        ds_column: time column of a long frame.
        value_column: value column of a long frame.
        node_names: N names (default: the frame's columns / series ids; none for arrays).
        null_value: the value that marks a missing reading (NaN by default; 0.0 for traffic).
        non_finite: ``"error"`` (default), ``"mask"`` (NaN/inf are missing readings) or
            ``"null"`` (NaN/inf become the null value).
        time_unit: the unit of epoch numbers in the time column (``s``, ``ms``, ``us``,
            ``ns``); default: told by their magnitude, with a warning (as the CSV readers do).
        time_format: the ``strftime`` format of a time column of text or digits
            (``%d/%m/%Y %H:%M``, ``%Y%m%d``); default: the format of the first value.
        dayfirst: ``dd/mm`` (true) or ``mm/dd`` (false) dates; default: told by the dates.

    Returns:
        The dataset: ``values [T, N, F]`` float32, timestamps when the data had them (time-zone
        aware times as wall-clock time, or in UTC when their offsets change, with a warning).

    Raises:
        DataError: options out of range, non-numeric, boolean or complex values, datetime or
            duration columns that are not the time, unnamed or repeated column names, finite
            values beyond float32's range, times that do not parse (numbers that fit no epoch
            unit), missing/duplicated/unsorted timestamps, an irregular grid, a row
            ``MultiIndex``, a long frame with missing (series, time) pairs, or a shape that is
            not ``[T, N]`` / ``[T, N, C]``.
    """
    if isinstance(data, TimeSeriesDataset):
        return data
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "y")
    from linearcast.data.readers.time_columns import time_spec

    source = _source_of(data, name)
    spec = time_spec(source, time_unit, time_format, dayfirst)
    freq_minutes = _whole(freq_minutes, "freq_minutes", source, "minutes between rows", 10)
    steps_per_day = _whole(steps_per_day, "steps_per_day", source, "rows per day", 144)
    first = _start(start, source)
    null_value = _null_value(null_value, source)
    check_non_finite_policy(non_finite, source)
    masked = 0
    if isinstance(data, np.ma.MaskedArray):
        data, masked = _unmasked(data)
    values, ts, names, source, note = _values_of(
        data, name, time_column, id_column, ds_column, value_column, spec
    )
    if node_names is None:
        node_names = names
    freq_name: str | None = None
    if ts is not None:
        if freq_minutes is not None or steps_per_day is not None or first is not None:
            raise DataError(
                f"{source}: the data has timestamps, so freq_minutes/steps_per_day/start are "
                f"taken from them; found them given as options too (drop the options)."
            )
        freq_minutes, freq_name = _regular_step(ts, source)
    else:
        _check_step_options(source, freq_minutes, steps_per_day, first)
    if masked and non_finite == "error":
        raise DataError(
            f"{source}: expected no missing readings under non_finite='error' (the default), "
            f"found {masked} masked {'entry' if masked == 1 else 'entries'} of a masked array, "
            f"read as missing readings (NaN); "
            f"keep them as missing readings (left out of the loss and the metrics) with "
            f"non_finite='mask'."
        )
    values = handle_non_finite(values, source, null_value, non_finite)
    ds = TimeSeriesDataset(
        values=values,
        name=name or ("dataframe" if isinstance(data, pd.DataFrame) else "array"),
        path=None,
        freq_minutes=freq_minutes,
        steps_per_day=steps_per_day,
        start=first if ts is None else None,
        timestamps=ts,
        node_names=[str(n) for n in node_names] if node_names is not None else None,
        null_value=null_value,
        meta={"format": "in-memory", "source": describe_data(data)},
    )
    if freq_name is not None:
        ds.meta["freq"] = freq_name
    if note is not None:
        ds.meta["time_note"] = note
    return ds


def _source_of(data: Any, name: str | None) -> str:
    """How messages name the data: its name, else ``dataframe`` / ``array``."""
    return name or ("array" if isinstance(data, np.ndarray) else "dataframe")


# ---------------------------------------------------------------------- options
def _whole(value: Any, option: str, source: str, what: str, example: int) -> int | None:
    """``value`` as a positive whole number (``None`` stays ``None``)."""
    if value is None:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if ok and math.isfinite(float(value)) and float(value) > 0 and float(value).is_integer():
        return int(value)
    raise DataError(
        f"{source}: {option} must be a positive whole number ({what}, e.g. "
        f"{option}={example}), found {value!r}."
    )


def _start(start: Any, source: str) -> pd.Timestamp | None:
    """``start`` as a time-zone-naive timestamp (wall-clock time), ``None`` when not given."""
    if start is None:
        return None
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError, OverflowError):
        first = pd.NaT
    if first is pd.NaT or not isinstance(first, pd.Timestamp):
        raise DataError(
            f"{source}: start must be the first row's time, such as start='2024-01-01 00:00', "
            f"found {start!r}."
        )
    return first.tz_localize(None) if first.tz is not None else first


def _check_step_options(
    source: str, freq_minutes: int | None, steps_per_day: int | None, first: pd.Timestamp | None
) -> None:
    """The time options of data without timestamps: a step and a day count that agree, and a
    ``start`` that has a step to count from (else it would be dropped without a word)."""
    if freq_minutes is not None and steps_per_day is not None:
        if freq_minutes * steps_per_day != 1440:
            raise DataError(
                f"{source}: freq_minutes={freq_minutes} and steps_per_day={steps_per_day} "
                f"disagree ({steps_per_day} steps of {freq_minutes} minutes are "
                f"{freq_minutes * steps_per_day} minutes, not a day's 1440); give only one."
            )
    divides = steps_per_day is not None and 1440 % steps_per_day == 0
    if first is not None and freq_minutes is None and not divides:
        raise DataError(
            f"{source}: start={str(first)!r} dates the first row, but the data has no "
            f"timestamps and no step to count on from it; give the step with "
            f"freq_minutes=MINUTES."
        )


def _null_value(value: Any, source: str) -> float:
    """``null_value`` as a float: a number, numeric text, or ``None``/NaN for none."""
    if value is None:
        return math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        out = float(value)
    else:
        try:
            out = float(str(value).strip()) if isinstance(value, str) else math.inf
        except ValueError:
            out = math.inf
    if math.isinf(out):
        raise DataError(
            f"{source}: null_value must be a finite number that marks a missing reading "
            f"(e.g. null_value=-200) or NaN, found {value!r}."
        )
    return out


def _unmasked(arr: np.ma.MaskedArray) -> tuple[np.ndarray, int]:
    """A masked array as a plain one with NaN where it is masked, and the number masked."""
    mask = np.ma.getmaskarray(arr)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        return np.asarray(arr.data), 0  # refused by _from_array, naming the dtype
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    return np.ma.filled(arr.astype(dtype), np.nan), int(mask.sum())


# ---------------------------------------------------------------------- layouts
def _values_of(
    data: Any,
    name: str | None,
    time_column: str | None,
    id_column: str,
    ds_column: str,
    value_column: str,
    spec: TimeSpec,
) -> tuple[np.ndarray, pd.DatetimeIndex | None, list[str] | None, str, str | None]:
    """``(values [T, N, F], timestamps or None, series names or None, source, time note)`` of
    a frame (long or wide) or an array; ``source`` names it in messages, the note says how a
    time column of numbers was read."""
    source = _source_of(data, name)
    if isinstance(data, pd.DataFrame):
        check_labels(data, source)
        names: list[str] | None
        if _is_long(data, id_column, ds_column, value_column):
            values, ts, names, note = _from_long(
                data, id_column, ds_column, value_column, source, spec
            )
        else:
            values, ts, names, note = _from_wide(
                data, time_column, source, spec, id_column, value_column
            )
        return values, ts, names, source, note
    if isinstance(data, np.ndarray):
        return _from_array(data, source), None, None, source, None
    raise DataError(
        f"expected a pandas DataFrame, a NumPy array [T, N] or [T, N, C], or a dataset "
        f"path; found {type(data).__name__}."
    )


def _is_long(frame: pd.DataFrame, id_column: str, ds_column: str, value_column: str) -> bool:
    return {id_column, ds_column, value_column} <= {str(c) for c in frame.columns}


def _from_long(
    frame: pd.DataFrame,
    id_column: str,
    ds_column: str,
    value_column: str,
    source: str,
    spec: TimeSpec,
) -> tuple[np.ndarray, pd.DatetimeIndex, list[str], str | None]:
    extra = [c for c in frame.columns if c not in (id_column, ds_column, value_column)]
    if extra:
        raise DataError(
            f"{source}: a long frame has the columns {id_column}, {ds_column}, {value_column}; "
            f"found also {extra[:5]} (exogenous columns are not used: drop them)."
        )
    if len(frame) == 0:
        raise DataError(
            f"{source}: expected rows ({id_column}, {ds_column}, {value_column}); found none."
        )
    dup = frame.duplicated(subset=[id_column, ds_column])
    if dup.any():
        row = frame[dup].iloc[0]
        raise DataError(
            f"{source}: expected one row per ({id_column}, {ds_column}), found "
            f"{int(dup.sum())} repeated (first: {row[id_column]!r} at {row[ds_column]})."
        )
    check_numeric_column(frame[value_column], value_column, source)
    ids = list(pd.unique(frame[id_column]))
    wide = frame.pivot(index=ds_column, columns=id_column, values=value_column)
    wide = wide.reindex(columns=ids).sort_index()
    # a (series, time) pair without a row, as opposed to a row holding NaN (a missing reading)
    present = frame.assign(_row=1.0).pivot(index=ds_column, columns=id_column, values="_row")
    missing = present.reindex(index=wide.index, columns=ids).isna().to_numpy()
    if missing.any():
        t_i, n_i = np.argwhere(missing)[0]
        raise DataError(
            f"{source}: expected every series at every {ds_column}, found "
            f"{int(missing.sum())} missing ({id_column}, {ds_column}) pairs (first: "
            f"{ids[n_i]!r} has no row at {wide.index[t_i]}); add them (NaN for a missing "
            f"reading) or fill the gaps."
        )
    ts, note = parse_times(pd.Series(wide.index), ds_column, source, spec, "ds_column")
    check_times(ts, ds_column, source)
    names = [str(i) for i in ids]
    values = to_float32(wide.to_numpy(dtype=np.float64), source, names)
    return values[:, :, None], ts, names, note


def _from_wide(
    frame: pd.DataFrame,
    time_column: str | None,
    source: str,
    spec: TimeSpec,
    id_column: str,
    value_column: str,
) -> tuple[np.ndarray, pd.DatetimeIndex | None, list[str] | None, str | None]:
    ts, note, times, frame = wide_time(frame, time_column, source, spec)
    if frame.shape[1] == 0:
        raise DataError(f"{source}: expected at least one series column, found none.")
    if frame.shape[0] == 0:
        raise DataError(f"{source}: expected at least one row, found none.")
    if ts is not None:
        refuse_repeats(ts, frame, times, source, id_column, value_column)
        check_times(ts, "+".join(times) if times else "index", source)
    for j in range(frame.shape[1]):
        check_numeric_column(frame.iloc[:, j], str(frame.columns[j]), source)
    # pandas' default labels 0..N-1 are positions, not names (forecasts match series by name)
    names = None if isinstance(frame.columns, pd.RangeIndex) else [str(c) for c in frame.columns]
    values = to_float32(frame.to_numpy(dtype=np.float64), source, names)
    return values[:, :, None], ts, names, note


def _from_array(arr: np.ndarray, source: str) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(
            f"{source}: expected real numbers, found dtype {arr.dtype}; pass the part that is "
            f"the reading (arr.real, or np.abs(arr) for the magnitude)."
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{source}: expected numeric values, found dtype {arr.dtype}.")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise DataError(
            f"{source}: expected an array [T, N] or [T, N, C], found shape {tuple(arr.shape)}."
        )
    return to_float32(arr, source)


def _regular_step(ts: pd.DatetimeIndex, source: str) -> tuple[int | None, str | None]:
    """The step in minutes (when whole) and the pandas frequency of regular timestamps.

    Month and year steps vary in length but are regular on the calendar: pandas' inferred
    frequency accepts them.

    Raises:
        DataError: when the steps are neither equal nor a calendar frequency.
    """
    if len(ts) < 2:
        return None, None
    diffs = np.diff(ts.as_unit("ns").asi8)
    step = int(pd.Series(diffs).mode().iloc[0])
    if (diffs != step).any():
        inferred = pd.DatetimeIndex(ts, freq="infer").freqstr if len(ts) >= 3 else None
        if inferred is None:
            i = int(np.flatnonzero(diffs != step)[0])
            raise DataError(
                f"{source}: expected timestamps on a regular grid, found "
                f"{int((diffs != step).sum())} of {len(diffs)} steps that differ from the usual "
                f"step {pd.Timedelta(step, unit='ns')} (first: {ts[i]} -> {ts[i + 1]}); "
                f"resample or fill the gaps first."
            )
        return None, inferred
    minutes = pd.Timedelta(step, unit="ns").total_seconds() / 60.0
    whole = minutes >= 1 and float(minutes).is_integer()
    return (int(minutes) if whole else None), None


def check_regular_end(ds: TimeSeriesDataset, steps: int) -> None:
    """Refuse a series whose last ``steps`` rows are not evenly spaced (a gap at the end).

    Raises:
        DataError: naming the file, the step expected and the one found.
    """
    ts = ds.timestamps
    if ts is None or len(ts) < 3 or ds.meta.get("freq"):
        return
    tail = pd.DatetimeIndex(ts[-(steps + 1) :])
    diffs = np.diff(tail.as_unit("ns").asi8)
    step = int(pd.Series(np.diff(pd.DatetimeIndex(ts).as_unit("ns").asi8)).mode().iloc[0])
    bad = np.flatnonzero(diffs != step)
    if len(bad):
        i = int(bad[-1])
        raise DataError(
            f"{ds.source}: expected the last {steps} steps on the usual "
            f"{pd.Timedelta(step, unit='ns')} grid (the model's input window), found a step of "
            f"{pd.Timedelta(int(diffs[i]), unit='ns')} from {tail[i]} to {tail[i + 1]}; "
            f"fill the gap or cut the file before it."
        )


def future_timestamps(ds: TimeSeriesDataset, steps: int) -> pd.DatetimeIndex | None:
    """The next ``steps`` timestamps after the dataset's last one (its calendar continued).

    Returns:
        ``None`` when the dataset knows no time (no timestamps, no start and step).
    """
    ts = ds.times()
    if ts is None:
        return None
    freq = ds.meta.get("freq")  # a calendar frequency (months, years): steps vary in length
    if freq:
        return pd.date_range(ts[-1], periods=steps + 1, freq=freq)[1:]
    if len(ts) < 2:
        if ds.freq_minutes is None:
            return None
        step = pd.Timedelta(minutes=ds.freq_minutes)
    else:
        step = ts[-1] - ts[-2]
    return pd.DatetimeIndex([ts[-1] + step * (k + 1) for k in range(steps)])
