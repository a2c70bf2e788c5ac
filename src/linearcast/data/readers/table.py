"""``table``: the CSV tables users have -- long (``unique_id, ds, y``, or any names given as
options) or wide (one column per series), with the time in one column, in ``Date`` + ``Time``,
or in ``year, month, day[, hour[, minute]]``.

What the reader decides for a wide table:

- a column of text is refused, naming it and the ``drop=[...]`` / ``columns=[...]`` options;
- a row-number column (named ``No``, ``index``, ``id``, ``Unnamed: 0`` or nothing, holding
  exactly 1..T or 0..T-1) is dropped with a warning: it counts rows, it is not a series;
- a ``station`` column holding one name is the file's station (a multi-file read names the
  file's series after it); one that varies means the table is long (``id_column=station``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linearcast.data.checks import DROP_FIX, calendar_frequency, to_float32
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.frames import LONG_COLUMNS, as_dataset
from linearcast.data.readers._common import (
    CsvDialect,
    Dedupe,
    PathLike,
    ReaderFormat,
    check_timestamps,
    csv_dialect,
    dedupe_rows,
    first_csv_line,
    head_lines,
    numeric_frame,
    read_csv,
    require_file,
)
from linearcast.data.readers._files import echo, echo_list
from linearcast.data.readers.time_columns import (
    TimeSpec,
    find_time_columns,
    looks_timed,
    parse_time,
    time_spec,
    unnamed_time_column,
)
from linearcast.errors import DataError

_ROW_NUMBER_NAMES = ("no", "index", "id", "row", "unnamed: 0", "")
_WHAT = "a CSV table (long: id, time, value columns; or wide: a time column, one per series)"


def name_list(value: Any, option: str, source: Any = None) -> list[str]:
    """Column names from an option: a list, or the text ``[a, b]`` / ``a`` that ``--set`` gives
    for bare words (TOML would need quotes).

    Raises:
        DataError: no name, or a name given twice (a table would then hold that column twice).
    """
    where = f"{source}: " if source is not None else ""
    if isinstance(value, list | tuple):
        names = [str(v) for v in value]
    else:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        names = [t.strip().strip("'\"") for t in text.split(",")]
        names = [n for n in names if n]
    if not names:
        raise DataError(
            f"{where}data_options.{option}: expected column names, found {echo(value)}; e.g. "
            f"--set data_options.{option}=[NAME1,NAME2]."
        )
    repeated = [n for i, n in enumerate(names) if n in names[:i]]
    if repeated:
        raise DataError(
            f"{where}data_options.{option} names {echo(repeated[0])} "
            f"{names.count(repeated[0])} times, expected each column once; e.g. --set "
            f"data_options.{option}=[{','.join(dict.fromkeys(names))}]."
        )
    return names


def read_table_csv(
    path: PathLike,
    *,
    id_column: str | None = None,
    time_column: str | list[str] | None = None,
    value_column: str | None = None,
    columns: list[str] | str | None = None,
    drop: list[str] | str | None = None,
    name: str | None = None,
    null_value: float = math.nan,
    non_finite: NonFinitePolicy = "error",
    dedupe: Dedupe = "error",
    time_unit: str | None = None,
    time_format: str | None = None,
    dayfirst: bool | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    encoding: str | None = None,
) -> TimeSeriesDataset:
    """Read a long or wide CSV table.

    Args:
        path: the CSV.
        id_column: the series column of a long table (default ``unique_id`` when present).
        time_column: the time column, or several to combine (``[Date, Time]``, ``[year, month,
            day, hour]``); default: found by name (:mod:`.time_columns`), else an unnamed first
            column of dates (pandas' ``to_csv`` of a ``DatetimeIndex``).
        value_column: the value column of a long table (default ``y``); of a wide table, the
            one column to keep (a multi-file read then names the series after each file).
        columns: wide: keep only these series, in this order.
        drop: leave these columns out (text columns, lags, row numbers).
        name: dataset name (default: the file stem).
        null_value: the value that marks a missing reading (NaN by default).
        non_finite: ``"error"`` or ``"null"`` (empty cells and ``NA`` are NaN).
        dedupe: wide tables: rows with a repeated timestamp (``error``, ``first``, ``last``,
            ``mean``).
        time_unit: the unit of epoch numbers in the time column (``s``, ``ms``, ``us``,
            ``ns``); default: told by their magnitude, with a warning.
        time_format: the ``strftime`` format of the times (``%d/%m/%Y %H:%M``); default: the
            format of the first time.
        dayfirst: ``dd/mm`` (true) or ``mm/dd`` (false) dates; default: told by the dates.
        sep: the field separator (default: ``,``, ``;`` or tab, from the header line).
        decimal: the decimal mark (default: ``.``; ``,`` in a ``;``-separated file that writes
            its numbers so).
        thousands: the thousands separator of numbers written ``"5,035.80"`` (``,``; ``.``
            for ``1.234,5``, which makes ``,`` the decimal mark); default: none.
        encoding: the text encoding (default: UTF-8, or UTF-16/32 by its byte-order mark).

    Returns:
        ``values [T, N, 1]`` with the timestamps (when the table has a time) and series names.
    """
    p = require_file(path, _WHAT)
    spec = time_spec(str(p), time_unit, time_format, dayfirst)
    dialect = csv_dialect(p, sep, decimal, encoding, thousands=thousands, options=True)
    df = read_csv(p, _WHAT, dialect)
    df.columns = [str(c).strip() for c in df.columns]
    if drop is not None:
        gone = name_list(drop, "drop", p)
        require_columns(p, df, gone, "drop")
        df = df.drop(columns=gone)
    times = name_list(time_column, "time_column", p) if time_column is not None else None
    times = times if times is not None else find_time_columns(list(df.columns))
    long_id = id_column or ("unique_id" if set(LONG_COLUMNS) <= set(df.columns) else None)
    if long_id is not None:
        ds = _read_long(
            p, df, long_id, times, value_column or "y", null_value, non_finite, spec, dialect
        )
    else:
        unnamed = unnamed_time_column(df) if not times else None
        times = [unnamed] if unnamed is not None else times
        ds = _read_wide(
            p, df, times, value_column, columns, null_value, non_finite, dedupe, spec, dialect
        )
    return dataclasses.replace(ds, name=name or p.stem)


def require_columns(p: Path, df: pd.DataFrame, names: list[str], option: str) -> None:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataError(
            f"{p}: data_options.{option} names {echo_list(missing)}, found columns "
            f"{echo_list(df.columns)}; use the names of the header."
        )


def _read_long(
    p: Path,
    df: pd.DataFrame,
    id_col: str,
    times: list[str],
    value_col: str,
    null_value: float,
    non_finite: NonFinitePolicy,
    spec: TimeSpec,
    dialect: CsvDialect,
) -> TimeSeriesDataset:
    """A long table through :func:`~linearcast.data.frames.as_dataset` (its checks: one row
    per series and time, every series at every time, numeric values)."""
    require_columns(p, df, [id_col, value_col], "id_column / value_column")
    if not times:
        raise DataError(
            f"{p}: a long table needs a time column, found none among {echo_list(df.columns)}; "
            f"name it with --set data_options.time_column=NAME."
        )
    ts, note = parse_time(df, times, str(p), spec=spec)
    # the frame keeps the file's names, so as_dataset's messages name the file's columns
    when = "+".join(times) if "+".join(times) not in (id_col, value_col) else "time"
    frame = pd.DataFrame({id_col: df[id_col].astype(str).to_numpy(), when: ts})
    column = df[value_col]
    if not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        # text values: told as a CSV's (the decimal and thousands options), not a frame's
        column = pd.Series(numeric_frame(df[[value_col]].copy(), str(p), dialect=dialect)[:, 0])
    frame[value_col] = column.to_numpy()
    ds = as_dataset(
        frame,
        name=str(p),
        id_column=id_col,
        ds_column=when,
        value_column=value_col,
        null_value=null_value,
        non_finite=non_finite,
    )
    meta = {**ds.meta, "format": "table", "layout": "long", "value_column": value_col}
    if note is not None:
        meta["time_note"] = note
    return dataclasses.replace(ds, path=p, channel_names=[value_col], meta=meta)


def _read_wide(
    p: Path,
    df: pd.DataFrame,
    times: list[str],
    value_column: str | None,
    columns: list[str] | str | None,
    null_value: float,
    non_finite: NonFinitePolicy,
    dedupe: Dedupe,
    spec: TimeSpec,
    dialect: CsvDialect,
) -> TimeSeriesDataset:
    ts, note = parse_time(df, times, str(p), spec=spec, droppable=True) if times else (None, None)
    data = df.drop(columns=times)
    station, data = _station(p, data)
    if columns is None:
        data = _drop_row_numbers(p, data)
    keep = [value_column] if value_column is not None else None
    keep = name_list(columns, "columns", p) if columns is not None else keep
    if keep is not None:
        require_columns(p, data, keep, "columns" if columns is not None else "value_column")
        data = data[keep]
    if data.shape[1] == 0:
        raise DataError(f"{p}: expected at least one series column besides the time, found none.")
    freq = None
    if ts is not None:
        data, ts = dedupe_rows(data, ts, dedupe, str(p))
        freq = check_timestamps(ts, str(p))
    fix = (
        "; a table's series must be numbers: leave it out with --set data_options.drop=[{col}] "
        "(or keep some with --set data_options.columns=[NAME,...])"
    )
    arr = numeric_frame(data.copy(), str(p), fix, dialect)
    arr = to_float32(arr, str(p), list(data.columns), DROP_FIX)
    values = handle_non_finite(arr[:, :, None], str(p), null_value, non_finite)
    meta: dict[str, Any] = {"format": "table", "layout": "wide"}
    calendar = calendar_frequency(ts) if ts is not None else None
    if calendar is not None:
        meta["freq"] = calendar
    if note is not None:
        meta["time_note"] = note
    if station is not None:
        meta["station"] = station
    return TimeSeriesDataset(
        values=values,
        path=p,
        freq_minutes=freq,
        timestamps=ts,
        node_names=[str(c) for c in data.columns],
        channel_names=["value"],
        null_value=null_value,
        meta=meta,
    )


def _station(p: Path, data: pd.DataFrame) -> tuple[str | None, pd.DataFrame]:
    """The file's station (a ``station`` column holding one name), and the table without it."""
    col = next((c for c in data.columns if c.lower() == "station"), None)
    if col is None or pd.api.types.is_numeric_dtype(data[col]):
        return None, data
    names = pd.unique(data[col].dropna())
    if len(names) != 1:
        raise DataError(
            f"{p}: column {echo(col)} holds {len(names)} station names, so the table is long "
            f"(one row per station and time): read it with --set data_options.id_column={col} "
            f"--set data_options.value_column=COLUMN."
        )
    return str(names[0]), data.drop(columns=[col])


def _drop_row_numbers(p: Path, data: pd.DataFrame) -> pd.DataFrame:
    """Without a first column that only numbers the rows (1..T or 0..T-1), with a warning."""
    first = data.columns[0]
    if first.lower() not in _ROW_NUMBER_NAMES or data.shape[1] < 2:
        return data
    col = pd.to_numeric(data[first], errors="coerce").to_numpy(dtype=np.float64)
    t = len(col)
    if not (np.array_equal(col, np.arange(1, t + 1)) or np.array_equal(col, np.arange(t))):
        return data
    warnings.warn(
        f"{p}: column {echo(first)} numbers the rows ({int(col[0])}..{int(col[-1])}), it is not "
        f"a series: left out (keep it with --set data_options.columns=[...]).",
        UserWarning,
        stacklevel=4,
    )
    return data.drop(columns=[first])


def _first_row_has_text(path: Path, header: list[str]) -> bool:
    """Whether the first data row holds text outside the time columns (a long table such as
    ``time, station, PM2.5``, or a wide one with a text column: the ltsf reader reads neither)."""
    dialect = csv_dialect(path)
    lines = head_lines(path, dialect)
    row = lines[1] if len(lines) > 1 else []
    timed = {c.lower() for c in find_time_columns(header)}
    for name, cell in zip(header, row, strict=False):
        if name in timed or cell.upper() in ("", "NA", "NAN", "N/A", "NULL", "NONE", "-"):
            continue
        try:
            if dialect.thousands is not None:
                cell = cell.replace(dialect.thousands, "")
            float(cell.replace(",", ".") if dialect.decimal == "," else cell)
        except ValueError:
            return True
    return False


def _claims(path: Path) -> bool:
    header = first_csv_line(path)
    if set(LONG_COLUMNS) <= set(header) or looks_timed(header):
        return True
    return bool(find_time_columns(header)) and _first_row_has_text(path, header)


FORMAT = ReaderFormat(
    name="table",
    read=read_table_csv,
    files="CSV table: long (unique_id, ds, y) or wide, time in one column, Date+Time or "
    "year,month,day[,hour]",
    suffixes=(".csv", ".txt"),
    claims=_claims,
    priority=20,
)
