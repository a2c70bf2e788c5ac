"""``ltsf``: the long-horizon CSVs (ETT, Weather, ECL, Traffic, Exchange, ILI), a ``date``
column then one column per series (``OT`` last by convention)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    Dedupe,
    PathLike,
    ReaderFormat,
    check_timestamps,
    dedupe_rows,
    first_csv_line,
    numeric_frame,
    read_csv,
    require_file,
)
from linearcast.data.readers._files import echo, echo_list, first_line
from linearcast.data.readers.table import name_list, require_columns
from linearcast.errors import DataError


def read_ltsf_csv(
    path: PathLike,
    *,
    date_column: str = "date",
    columns: list[str] | str | None = None,
    drop: list[str] | str | None = None,
    name: str | None = None,
    null_value: float = float("nan"),
    non_finite: NonFinitePolicy = "error",
    dedupe: Dedupe = "error",
) -> TimeSeriesDataset:
    """Read an LTSF CSV (ETT, Weather, ECL, Traffic, Exchange, ILI): ``date`` then one column each.

    Args:
        path: the CSV.
        date_column: name of the timestamp column (first column by convention).
        columns: keep only these series, in this order (default: all; ``OT`` is last).
        drop: leave these columns out (e.g. a text column).
        name: dataset name (default: the file stem).
        null_value: NaN (these datasets have no missing-value marker).
        non_finite: ``"error"`` or ``"null"``.
        dedupe: rows with a repeated timestamp: ``"error"`` (the default: say so),
            ``"first"``, ``"last"`` or ``"mean"`` (keep one; a warning counts them).

    Returns:
        A dataset with ``values [T, N, 1]`` (N = number of series) and its timestamps.
    """
    p = require_file(path, "an LTSF CSV with a 'date' column")
    df = read_csv(p, f"an LTSF CSV ({date_column!r} column, then one column per series)")
    if date_column not in df.columns:
        # "Date" for "date": the header's case is the file author's choice
        date_column = next((c for c in df.columns if c.lower() == date_column.lower()), date_column)
    if date_column not in df.columns:
        raise DataError(
            f"{p}: expected a {echo(date_column)} column, found columns {echo_list(df.columns)}."
        )
    try:
        with warnings.catch_warnings():
            # pandas' advice to pass a format: the dates are checked below, it adds nothing
            warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
            ts = pd.DatetimeIndex(pd.to_datetime(df[date_column]))
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{p}: expected dates in column {echo(date_column)}, could not parse them "
            f"({first_line(err, 100)})."
        ) from err
    data = df.drop(columns=[date_column])
    if drop is not None:
        gone = name_list(drop, "drop")
        require_columns(p, data, gone, "drop")
        data = data.drop(columns=gone)
    data, ts = dedupe_rows(data, ts, dedupe, str(p))
    freq = check_timestamps(ts, str(p))
    if columns is not None:
        columns = name_list(columns, "columns")
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise DataError(
                f"{p}: expected columns {echo_list(missing)}, found {echo_list(data.columns)}."
            )
        data = data[columns]
    if data.shape[1] == 0:
        raise DataError(f"{p}: expected at least one series column besides {echo(date_column)}.")
    fix = "; leave it out with --set data_options.drop=[{col}] (or data_options.columns=[...])"
    arr = numeric_frame(data.copy(), str(p), fix)
    values = handle_non_finite(arr.astype(np.float32)[:, :, None], str(p), null_value, non_finite)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq,
        timestamps=ts,
        node_names=[str(c) for c in data.columns],
        channel_names=["value"],
        null_value=null_value,
        meta={"format": "ltsf"},
    )


def _claims(path: Path) -> bool:
    first = first_csv_line(path)
    return bool(first) and first[0] in ("date", "datetime", "time", "timestamp")


FORMAT = ReaderFormat(
    name="ltsf",
    read=read_ltsf_csv,
    files="LTSF CSV: a 'date' column, then one column per series (ETT, Weather, ECL, ...)",
    suffixes=(".csv", ".txt"),
    claims=_claims,
    priority=10,
)
