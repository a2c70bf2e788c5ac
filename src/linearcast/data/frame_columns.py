"""What the columns and index of an in-memory frame hold, for
:func:`~linearcast.data.frames.as_dataset`: where its time is, and that everything else is a
series of numbers.

The time of a wide frame is ``time_column=``, else its index when that holds times (a
``DatetimeIndex``, a ``PeriodIndex``, text dates as ``pd.read_csv(index_col=0)`` leaves them),
else the columns the CSV readers find by name (:mod:`linearcast.data.readers.time_columns`),
else its one column of datetimes. A datetime column is never a series of epoch numbers, nor a
duration one of nanoseconds; flags (``bool`` or ``True``/``False`` objects), complex numbers,
unnamed and repeated column names are refused, each in one sentence naming the column and the
fix. Times are read by the CSV readers' code: time-zone-aware ones as wall-clock time for one
UTC offset, in UTC (with a warning) when the offsets change.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.errors import DataError

if TYPE_CHECKING:
    from linearcast.data.readers.time_columns import TimeSpec


def check_labels(frame: pd.DataFrame, source: str) -> None:
    """Every column named, no name twice: series are matched to a run by name."""
    unnamed = [i for i, c in enumerate(frame.columns) if _no_label(c)]
    if unnamed:
        raise DataError(
            f"{source}: expected a name on every column, found {len(unnamed)} without one "
            f"(None or NaN labels, at column positions {unnamed[:5]}); name them "
            f"(frame.columns = [...]) or drop them."
        )
    repeated = frame.columns.duplicated()
    if repeated.any():
        names = list(dict.fromkeys(str(c) for c in frame.columns[repeated]))
        raise DataError(
            f"{source}: expected one column per name, found {names[:5]} on more than one "
            f"column; rename them (frame.columns = [...]) or drop the repeats "
            f"(frame.loc[:, ~frame.columns.duplicated()])."
        )


def _no_label(label: Any) -> bool:
    return (
        label is None
        or label is pd.NA
        or label is pd.NaT
        or (isinstance(label, float) and math.isnan(label))
    )


def _object_kind(col: pd.Series) -> str:
    """pandas' name for what an object column holds (``"datetime"``, ``"boolean"``,
    ``"mixed"``, ...); ``""`` for a column of another dtype."""
    return pd.api.types.infer_dtype(col, skipna=True) if col.dtype == object else ""


def _is_datetime_like(col: pd.Series) -> bool:
    """Times: datetime64 (any zone), periods, or objects that are all datetimes or dates."""
    if pd.api.types.is_datetime64_any_dtype(col) or isinstance(col.dtype, pd.PeriodDtype):
        return True
    return _object_kind(col) in ("datetime", "datetime64", "date", "period")


def _is_duration(col: pd.Series) -> bool:
    return pd.api.types.is_timedelta64_dtype(col) or _object_kind(col) in (
        "timedelta",
        "timedelta64",
    )


def _first_of(col: pd.Series, kinds: tuple[type, ...]) -> int | None:
    """The row of the first entry of an object column that is one of ``kinds`` (flags,
    complex numbers: ``pd.to_numeric`` would take them as numbers)."""
    if _object_kind(col) not in ("boolean", "complex", "mixed", "mixed-integer"):
        return None
    hits = np.fromiter((isinstance(v, kinds) for v in col.to_numpy()), bool, len(col))
    return int(np.flatnonzero(hits)[0]) if hits.any() else None


def check_numeric_column(col: pd.Series, label: str, source: str) -> None:
    """Numbers only: text, flags (``bool`` or ``True``/``False`` objects alike), complex
    numbers, datetimes and durations are refused, naming the first such entry."""
    if _is_datetime_like(col) or _is_duration(col):
        what = "durations" if _is_duration(col) else "datetimes"
        raise DataError(
            f"{source}: expected numeric values in column {label!r}, found {what} "
            f"({col.dtype}), which are not readings; convert them to numbers or drop the "
            f"column."
        )
    row = _first_of(col, (complex, np.complexfloating))
    if pd.api.types.is_complex_dtype(col) or row is not None:
        if row is None:  # the first with an imaginary part, else the first
            imag = np.flatnonzero(np.imag(col.to_numpy()) != 0)
            row = int(imag[0]) if len(imag) else 0
        raise DataError(
            f"{source}: expected real numbers in column {label!r}, found complex values "
            f"(first {complex(col.iloc[row])} at row {row}); pass the part that is the reading "
            f"(.real, or .abs() for the magnitude) or drop the column."
        )
    row = _first_of(col, (bool, np.bool_))
    if pd.api.types.is_bool_dtype(col) or row is not None:
        row = row or 0
        raise DataError(
            f"{source}: expected numeric values in column {label!r}, found {col.dtype} "
            f"(first non-numeric entry {col.iloc[row]!r} at row {row}); flags are not readings "
            f"(convert them with .astype(float) if they are)."
        )
    if not pd.api.types.is_numeric_dtype(col):
        conv = pd.to_numeric(col, errors="coerce")
        bad = conv.isna() & col.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: expected numeric values in column {label!r}, found {col.dtype} "
                f"(first non-numeric entry {col.iloc[row]!r} at row {row})."
            )


def wide_time(
    frame: pd.DataFrame, time_column: str | None, source: str, spec: TimeSpec
) -> tuple[pd.DatetimeIndex | None, str | None, list[str], pd.DataFrame]:
    """``(timestamps, note, the time columns, the frame without them)`` of a wide frame.

    The time is ``time_column``, else the index when it holds times, else the columns the CSV
    readers find by name, else the one column of datetimes. Datetime columns are never series:
    one that repeats the time is left out with a warning, any other is refused; so are
    durations.
    """
    from linearcast.data.readers.time_columns import find_time_columns

    ts: pd.DatetimeIndex | None = None
    note: str | None = None
    times: list[str] = []
    if time_column is not None:
        if time_column not in frame.columns:
            raise DataError(
                f"{source}: expected a time column {time_column!r}, found columns "
                f"{[str(c) for c in frame.columns][:10]}."
            )
        times = [time_column]
    else:
        found = _index_times(frame.index, source, spec)
        if found is not None:
            ts, note = found
        else:
            times = find_time_columns([c for c in frame.columns if isinstance(c, str)])
    if times:
        ts, note = parse_times(frame[times], "+".join(times), source, spec)
        frame = frame.drop(columns=times)
    durations = [str(c) for j, c in enumerate(frame.columns) if _is_duration(frame.iloc[:, j])]
    if durations:
        raise DataError(
            f"{source}: expected numbers in every series column, found durations (timedelta) "
            f"in {durations[:5]}; convert them to numbers (e.g. "
            f"frame[{durations[0]!r}].dt.total_seconds()) or drop them "
            f"(frame.drop(columns={durations[:5]}))."
        )
    stamped = [c for j, c in enumerate(frame.columns) if _is_datetime_like(frame.iloc[:, j])]
    if not stamped:
        return ts, note, times, frame
    shown = [str(c) for c in stamped[:5]]
    if ts is None:
        if len(stamped) > 1:
            raise DataError(
                f"{source}: expected one time column, found {len(stamped)} columns of "
                f"datetimes {shown}; name the time with time_column={shown[0]!r} and drop the "
                f"others (frame.drop(columns=[...]))."
            )
        times = [str(stamped[0])]
        ts, note = parse_times(frame[stamped], times[0], source, spec)
        return ts, note, times, frame.drop(columns=stamped)
    copies = [c for c in stamped if _same_times(frame[c], ts, source, spec)]
    others = [str(c) for c in stamped if c not in copies]
    where = (
        f"time_column={times[0]!r}"
        if time_column is not None
        else (f"the column(s) {times}" if times else "the index")
    )
    if others:
        raise DataError(
            f"{source}: expected numbers in every series column, found datetimes in {others} "
            f"while the time is taken from {where}; drop them "
            f"(frame.drop(columns={others})) or name the time with time_column=NAME."
        )
    warnings.warn(
        f"{source}: column(s) {[str(c) for c in copies]} hold the same times as {where}; "
        f"left out of the series.",
        UserWarning,
        stacklevel=5,
    )
    return ts, note, times, frame.drop(columns=copies)


def _same_times(col: pd.Series, ts: pd.DatetimeIndex, source: str, spec: TimeSpec) -> bool:
    """Whether a datetime column holds exactly the timestamps ``ts`` (a copy of the index)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            other, _ = parse_times(col, str(col.name), source, spec)
    except DataError:
        return False
    return bool(other.equals(ts))


def _index_times(
    index: pd.Index, source: str, spec: TimeSpec
) -> tuple[pd.DatetimeIndex, str | None] | None:
    """The timestamps of an index that holds times (datetimes, periods, text dates), ``None``
    for one that does not (positions, labels); a row ``MultiIndex`` is refused."""
    from linearcast.data.readers.time_columns import TIME_NAMES, looks_like_time

    if isinstance(index, pd.MultiIndex):
        raise DataError(
            f"{source}: expected one row per time (a DatetimeIndex or a time column), found a "
            f"row MultiIndex with levels {list(index.names)}; move them into "
            f"columns with frame.reset_index() (a (unique_id, ds) index then reads as a long "
            f"frame), or keep only the time level (frame.droplevel(...))."
        )
    values = pd.Series(index)
    if isinstance(index, pd.DatetimeIndex | pd.PeriodIndex) or _is_datetime_like(values):
        return parse_times(values, "index", source, spec)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    present = values.dropna()
    named = index.name is not None and str(index.name).strip().lower() in TIME_NAMES
    text = len(present) > 0 and isinstance(present.iloc[0], str)
    if named or (text and looks_like_time(str(present.iloc[0]))):
        # read as a CSV's time column is (pd.read_csv(index_col=0) leaves the dates as text)
        return parse_times(values, "index", source, spec)
    return None


def parse_times(
    values: pd.Series | pd.DataFrame,
    label: str,
    source: str,
    spec: TimeSpec,
    option: str = "time_column",
) -> tuple[pd.DatetimeIndex, str | None]:
    """The timestamps of a time column (or index, or the columns of a split time) and, when
    they were read in a way the data did not say plainly, a note saying how (also given as a
    warning).

    Datetimes and periods are taken as they are, time-zone-aware ones as the CSV readers take
    them (wall-clock time for one UTC offset, UTC when the offsets change); numbers and text
    are read by the CSV readers' code, so epoch seconds are never taken for nanoseconds.
    """
    # imported here: the readers package imports this module (the long-table reader)
    from linearcast.data.readers.time_columns import parse_time, wall_clock

    if isinstance(values, pd.DataFrame) and values.shape[1] > 1:
        frame = values.reset_index(drop=True)
        return parse_time(frame, [str(c) for c in frame.columns], source, option, spec)
    col = (values.iloc[:, 0] if isinstance(values, pd.DataFrame) else values).reset_index(drop=True)
    if isinstance(col.dtype, pd.PeriodDtype):
        col = col.dt.to_timestamp()
    elif col.dtype == object and _is_datetime_like(col):
        try:
            col = pd.Series(pd.to_datetime(col))
        except (ValueError, TypeError):  # mixed offsets: read as text, as a CSV's
            col = col.astype("string")
    if _is_duration(col):
        raise DataError(
            f"{source}: expected times in {label!r}, found durations ({col.dtype}); name the "
            f"column of times with {option}=NAME."
        )
    if not pd.api.types.is_datetime64_any_dtype(col):
        return parse_time(pd.DataFrame({label: col}), [label], source, option, spec)
    ts, note = wall_clock(pd.DatetimeIndex(col), repr(label))
    if note is not None:
        warnings.warn(f"{source}: {note}.", UserWarning, stacklevel=4)
    return ts, note


def check_times(ts: pd.DatetimeIndex, label: str, source: str) -> None:
    """Timestamps present, unique and increasing (irregular steps are left to the grid check
    of :func:`~linearcast.data.frames.as_dataset`, which refuses them)."""
    from linearcast.data.readers._common import check_timestamps

    with warnings.catch_warnings():  # irregular steps: refused by the caller, not warned of
        warnings.simplefilter("ignore", UserWarning)
        check_timestamps(ts, f"{source} ({label})")


def refuse_repeats(
    ts: pd.DatetimeIndex,
    frame: pd.DataFrame,
    times: list[str],
    source: str,
    id_column: str,
    value_column: str,
) -> None:
    """Repeated times in a wide frame: a long frame under other column names (a column of
    ids beside them) is told which options name its columns; else which rows to keep."""
    repeated = ts.duplicated()
    if not repeated.any():
        return
    i = int(np.flatnonzero(repeated)[0])
    k = int(repeated.sum())
    found = f"{k} repeated timestamp{'s' if k > 1 else ''} (first: {ts[i]} at row {i})"
    cols = [str(c) for c in frame.columns]
    text = [
        str(c)
        for j, c in enumerate(frame.columns)
        if not pd.api.types.is_numeric_dtype(frame.iloc[:, j])
    ]
    ids = id_column if id_column in cols else (text[0] if text else None)
    if ids is not None:
        rest = [c for c in cols if c != ids]
        value = value_column if value_column in rest else rest[0] if len(rest) == 1 else "NAME"
        if times:
            ds, moved = (times[0] if len(times) == 1 else "ds"), ""
        else:  # the times are the index: a column once reset
            ds = "index" if frame.index.name is None else str(frame.index.name)
            moved = " after frame.reset_index()"
        raise DataError(
            f"{source}: expected one row per time in a wide frame, found {found} and a column "
            f"of ids {ids!r}, as in a long frame (one row per series and time); name its "
            f"columns with id_column={ids!r}, ds_column={ds!r}, value_column={value!r}{moved}."
        )
    keep = (
        f"frame.drop_duplicates(subset={times})"
        if times
        else "frame[~frame.index.duplicated(keep='first')]"
    )
    where = "+".join(times) if times else "index"
    raise DataError(
        f"{source} ({where}): expected unique timestamps, found {found}; keep one row per "
        f"timestamp (e.g. {keep}) or average them (frame.groupby(...).mean())."
    )
