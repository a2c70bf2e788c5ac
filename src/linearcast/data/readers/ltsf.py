"""``ltsf``: the long-horizon CSVs (ETT, Weather, ECL, Traffic, Exchange, ILI), a ``date``
column then one column per series (``OT`` last by convention); also a first column named
``ds``, ``datetime``, ``time`` or ``timestamp``, or unnamed (pandas' ``to_csv`` of a
``DatetimeIndex``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from linearcast.data.checks import DROP_FIX, calendar_frequency, to_float32
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    Dedupe,
    PathLike,
    ReaderFormat,
    check_timestamps,
    csv_dialect,
    dedupe_rows,
    head_lines,
    numeric_frame,
    read_csv,
    require_file,
)
from linearcast.data.readers._files import echo, echo_list
from linearcast.data.readers.table import name_list, read_table_csv, require_columns
from linearcast.data.readers.time_columns import (
    TIME_NAMES,
    looks_like_time,
    parse_time,
    time_spec,
    unnamed_time_column,
)
from linearcast.errors import DataError


def read_ltsf_csv(
    path: PathLike,
    *,
    date_column: str | None = None,
    columns: list[str] | str | None = None,
    drop: list[str] | str | None = None,
    name: str | None = None,
    null_value: float = float("nan"),
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
    """Read an LTSF CSV (ETT, Weather, ECL, Traffic, Exchange, ILI): ``date`` then one column each.

    Args:
        path: the CSV (gzip-compressed, ``;``- or tab-separated, with decimal commas, UTF-16:
            recognised, see :func:`~linearcast.data.readers._common.csv_dialect`).
        date_column: name of the timestamp column (any case); default: ``date``, else one of
            ``ds, datetime, time, timestamp``, else an unnamed first column of dates (pandas'
            ``to_csv`` of a ``DatetimeIndex``).
        columns: keep only these series, in this order (default: all; ``OT`` is last).
        drop: leave these columns out (e.g. a text column).
        name: dataset name (default: the file stem).
        null_value: NaN (these datasets have no missing-value marker).
        non_finite: ``"error"`` or ``"null"``.
        dedupe: rows with a repeated timestamp: ``"error"`` (the default: say so),
            ``"first"``, ``"last"`` or ``"mean"`` (keep one; a warning counts them).
        time_unit: the unit of epoch numbers in the date column (``s``, ``ms``, ``us``,
            ``ns``); default: told by their magnitude, with a warning.
        time_format: the ``strftime`` format of the dates (``%d/%m/%Y %H:%M``); default: the
            format of the first date.
        dayfirst: ``dd/mm`` (true) or ``mm/dd`` (false) dates; default: told by the dates.
        sep: the field separator (default: ``,``, ``;`` or tab, from the header line).
        decimal: the decimal mark (default: ``.``; ``,`` in a ``;``-separated file that writes
            its numbers so).
        thousands: the thousands separator of numbers written ``"5,035.80"`` (``,``; ``.``
            for ``1.234,5``, which makes ``,`` the decimal mark); default: none.
        encoding: the text encoding (default: UTF-8, or UTF-16/32 by its byte-order mark).

    Returns:
        A dataset with ``values [T, N, 1]`` (N = number of series) and its timestamps.
    """
    p = require_file(path, "an LTSF CSV with a 'date' column")
    spec = time_spec(str(p), time_unit, time_format, dayfirst)
    dialect = csv_dialect(p, sep, decimal, encoding, thousands=thousands, options=True)
    what = f"an LTSF CSV ({(date_column or 'date')!r} column, then one column per series)"
    df = read_csv(p, what, dialect)
    found = _date_column(p, df, date_column)
    if date_column is None and drop is not None and found in name_list(drop, "drop", p):
        # the time column left out (step numbers): a wide table without times
        return read_table_csv(
            p, columns=columns, drop=drop, name=name, null_value=null_value,
            non_finite=non_finite, dedupe=dedupe, sep=sep, decimal=decimal,
            thousands=thousands, encoding=encoding,
        )  # fmt: skip
    date_column = found
    ts, note = parse_time(df, [date_column], str(p), "date_column", spec, droppable=True)
    data = df.drop(columns=[date_column])
    if drop is not None:
        gone = name_list(drop, "drop", p)
        require_columns(p, data, gone, "drop")
        data = data.drop(columns=gone)
    data, ts = dedupe_rows(data, ts, dedupe, str(p))
    freq = check_timestamps(ts, str(p))
    if columns is not None:
        columns = name_list(columns, "columns", p)
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise DataError(
                f"{p}: expected columns {echo_list(missing)}, found {echo_list(data.columns)}."
            )
        data = data[columns]
    if data.shape[1] == 0:
        raise DataError(f"{p}: expected at least one series column besides {echo(date_column)}.")
    fix = "; leave it out with --set data_options.drop=[{col}] (or data_options.columns=[...])"
    arr = numeric_frame(data.copy(), str(p), fix, dialect)
    arr = to_float32(arr, str(p), list(data.columns), DROP_FIX)
    values = handle_non_finite(arr[:, :, None], str(p), null_value, non_finite)
    meta = {"format": "ltsf"} | ({"time_note": note} if note else {})
    calendar = calendar_frequency(ts)
    if calendar is not None:
        meta["freq"] = calendar
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq,
        timestamps=ts,
        node_names=[str(c) for c in data.columns],
        channel_names=["value"],
        null_value=null_value,
        meta=meta,
    )


def _date_column(p: Path, df: pd.DataFrame, given: str | None) -> str:
    """The time column: ``given`` (any case), else found by name or as an unnamed first
    column of dates."""
    cols = [str(c) for c in df.columns]
    low = {c.lower(): c for c in reversed(cols)}
    if given is not None:
        if given in cols or given.lower() in low:
            return given if given in cols else low[given.lower()]
        raise DataError(f"{p}: expected a {echo(given)} column, found columns {echo_list(cols)}.")
    for n in ("date", *TIME_NAMES):
        if n in low:
            return low[n]
    unnamed = unnamed_time_column(df)
    if unnamed is not None:
        return unnamed
    raise DataError(
        f"{p}: expected a time column (named date, ds, datetime, time or timestamp, any case, "
        f"or an unnamed first column of dates), found columns {echo_list(cols)}; name it with "
        f"--set data_options.date_column=NAME."
    )


def _claims(path: Path) -> bool:
    lines = head_lines(path)
    first = [c.lower() for c in lines[0]] if lines else []
    if not first:
        return False
    if first[0] in TIME_NAMES:
        return True
    # pandas' to_csv of a DatetimeIndex: an unnamed first column of dates
    unnamed = first[0] in ("", "unnamed: 0")
    return unnamed and len(lines) > 1 and bool(lines[1]) and looks_like_time(lines[1][0])


FORMAT = ReaderFormat(
    name="ltsf",
    read=read_ltsf_csv,
    files="LTSF CSV: a 'date' (or ds, time, ...) column, then one column per series (ETT, ...)",
    suffixes=(".csv", ".txt"),
    claims=_claims,
    priority=10,
)
