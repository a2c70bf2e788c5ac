"""Where a table keeps its time: one column, a ``Date`` and a ``Time`` column, or the parts
``year, month, day[, hour[, minute]]`` -- found by name (any case) and combined into one
timestamp per row.

=========================== ============================================================
layout                       example
=========================== ============================================================
one column                   ``ds`` / ``date`` / ``datetime`` / ``time`` / ``timestamp``
date + time                  UCI AirQuality: ``Date`` = 2004-03-10, ``Time`` = 18:00:00
parts                        Beijing PM2.5 (PRSA): ``year, month, day, hour``
=========================== ============================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from linearcast.data.readers._files import echo, echo_list, first_line
from linearcast.errors import DataError

#: Single time columns, in the order they are looked for.
TIME_NAMES = ("ds", "date", "datetime", "time", "timestamp")
#: The parts of a split timestamp; the first three are required, the rest optional.
PARTS = ("year", "month", "day", "hour", "minute")


def _by_lower(columns: Sequence[object]) -> dict[str, str]:
    """``lower-case name -> column`` (the first column of each lower-case name)."""
    out: dict[str, str] = {}
    for c in columns:
        out.setdefault(str(c).strip().lower(), str(c))
    return out


def find_time_columns(columns: Sequence[object]) -> list[str]:
    """The columns holding the time, by name (``[]`` when none looks like time).

    Parts (``year, month, day`` + optional ``hour``, ``minute``) win over a ``date`` + ``time``
    pair, which wins over a single column named one of :data:`TIME_NAMES`.
    """
    low = _by_lower(columns)
    if all(p in low for p in PARTS[:3]):
        return [low[p] for p in PARTS if p in low]
    if "date" in low and "time" in low:
        return [low["date"], low["time"]]
    for name in TIME_NAMES:
        if name in low:
            return [low[name]]
    return []


def looks_timed(header: Sequence[str]) -> bool:
    """Whether a header (lower-case cells) names split time columns or a time column that is
    not the first (the tables the ``ltsf`` reader, which wants ``date`` first, cannot read)."""
    cells = list(header)
    if all(p in cells for p in PARTS[:3]) or ("date" in cells and "time" in cells):
        return True
    return any(c in TIME_NAMES for c in cells[1:])


def parse_time(
    frame: pd.DataFrame, names: Sequence[str], source: str, option: str = "time_column"
) -> pd.DatetimeIndex:
    """One timestamp per row from the time column(s) ``names`` of ``frame``.

    Args:
        frame: the table.
        names: one column, a date and a time column, or the parts ``year, month, day[, hour[,
            minute]]`` (any case).
        source: the file, for messages.
        option: the reader option that names the columns (for the fix in messages).

    Returns:
        The timestamps (time-zone naive: the calendar features use wall-clock time).

    Raises:
        DataError: a named column is missing, or the values do not parse as times.
    """
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: expected time column(s) {echo_list(missing)}, found columns "
            f"{echo_list(frame.columns)}; name them with --set data_options.{option}=NAME "
            f"(or [Date,Time], [year,month,day,hour])."
        )
    low = [n.strip().lower() for n in names]
    label = "+".join(names)
    try:
        with warnings.catch_warnings():
            # pandas' advice to pass a format: the result is checked by the caller
            warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
            if len(names) >= 3 and set(low) <= set(PARTS) and set(PARTS[:3]) <= set(low):
                parts = frame[list(names)].set_axis(low, axis=1)
                bad = parts.isna().any(axis=1)
                if bad.any():
                    row = int(bad.to_numpy().argmax())
                    raise DataError(
                        f"{source}: expected a time on every row, found {int(bad.sum())} rows "
                        f"with an empty {label} part (first at data row {row})."
                    )
                ts = pd.to_datetime(parts)
            elif len(names) == 1:
                ts = pd.to_datetime(frame[names[0]])
            else:
                text = frame[list(names)].astype(str).agg(" ".join, axis=1)
                ts = pd.to_datetime(text)
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as err:
        raise DataError(
            f"{source}: expected times in {echo(label)}, could not parse them "
            f"({first_line(err, 100)}); name the time column(s) with --set "
            f"data_options.{option}=..."
        ) from err
    out = pd.DatetimeIndex(ts)
    return out.tz_localize(None) if out.tz is not None else out
