"""Where a table keeps its time: one column, a ``Date`` and a ``Time`` column, or the parts
``year, month, day[, hour[, minute]]`` -- found by name (any case) and combined into one
timestamp per row -- and how its values are read.

A time column of text is read in the format of its first value; ``dd/mm/yyyy`` and
``mm/dd/yyyy`` are told apart by the values (a day past 12, else the one reading with regular
steps), never guessed silently. UTC offsets are kept as wall-clock time when there is one, and
converted to UTC (with a warning) when they change (a DST change). A time column of numbers is
read as epoch seconds, milliseconds, microseconds or nanoseconds by their magnitude, or as dates
written ``YYYYMMDD[HH[MM[SS]]]``, with a warning saying which; ``time_unit`` and ``time_format``
say it instead.

=========================== ============================================================
layout                       example
=========================== ============================================================
one column                   ``ds`` / ``date`` / ``datetime`` / ``time`` / ``timestamp``
date + time                  UCI AirQuality: ``Date`` = 2004-03-10, ``Time`` = 18:00:00
parts                        Beijing PM2.5 (PRSA): ``year, month, day, hour``
=========================== ============================================================
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from linearcast.data.checks import set_list
from linearcast.data.readers._files import echo, echo_list, first_line
from linearcast.errors import DataError

#: Single time columns, in the order they are looked for.
TIME_NAMES = ("ds", "date", "datetime", "time", "timestamp")
#: The parts of a split timestamp; the first three are required, the rest optional.
PARTS = ("year", "month", "day", "hour", "minute")
#: Epoch units and the magnitudes that are times from 1973-03-03 to 2286-11-20 in each: the
#: ranges are a factor of 10 apart, so numbers that all fall in one tell their unit.
EPOCH_UNITS = {"s": (1e8, 1e10), "ms": (1e11, 1e13), "us": (1e14, 1e16), "ns": (1e17, 1e19)}
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: Dates written as digits, by their number of digits.
_COMPACT = {
    8: ("%Y%m%d", "YYYYMMDD"),
    10: ("%Y%m%d%H", "YYYYMMDDHH"),
    12: ("%Y%m%d%H%M", "YYYYMMDDHHMM"),
    14: ("%Y%m%d%H%M%S", "YYYYMMDDHHMMSS"),
}
# a date that starts with day and month in some order: 10/03/2004, 1.2.24, 03-10-2004
_DMY = re.compile(r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d)")
_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# a cell that looks like a date (an unnamed index column written by pandas' to_csv)
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}(?:[ T]\d{1,2}[:.]\d{2}.*)?\s*$")
# the UCI AirQuality time of day, 18.00.00
_DOTTED_TIME = re.compile(r"^(\d{1,2})\.(\d{2})\.(\d{2})$")


@dataclass(frozen=True)
class TimeSpec:
    """How the values of a time column are written, when the file does not say it plainly.

    Attributes:
        unit: numbers are epoch times in this unit (``s``, ``ms``, ``us``, ``ns``).
        format: values are written in this ``strftime`` format (``%d/%m/%Y %H:%M``).
        dayfirst: ``dd/mm`` (True) or ``mm/dd`` (False) dates.
    """

    unit: str | None = None
    format: str | None = None
    dayfirst: bool | None = None


def time_spec(
    source: str, time_unit: Any = None, time_format: Any = None, dayfirst: Any = None
) -> TimeSpec:
    """The reader options ``time_unit``, ``time_format`` and ``dayfirst``, checked.

    Raises:
        DataError: a unit other than ``s``, ``ms``, ``us``, ``ns``, a format without a ``%``
            code, or a ``dayfirst`` that is not true or false.
    """
    unit = None if time_unit is None else str(time_unit).strip().lower()
    if unit is not None and unit not in EPOCH_UNITS:
        raise DataError(
            f"{source}: data_options.time_unit must be s, ms, us or ns (the unit of epoch "
            f"numbers), found {echo(time_unit)}."
        )
    fmt = None if time_format is None else str(time_format)
    if fmt is not None and "%" not in fmt:
        raise DataError(
            f"{source}: data_options.time_format must be a strftime format such as "
            f"'%d/%m/%Y %H:%M', found {echo(time_format)}."
        )
    first: bool | None = None
    if dayfirst is not None:
        text = str(dayfirst).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise DataError(
                f"{source}: data_options.dayfirst must be true (dd/mm dates) or false "
                f"(mm/dd), found {echo(dayfirst)}."
            )
        first = text in ("true", "1")
    return TimeSpec(unit=unit, format=fmt, dayfirst=first)


def looks_like_time(cell: str) -> bool:
    """Whether a cell reads as a date (``2024-01-01``, ``01/02/2024 10:00``, ...)."""
    return bool(_DATE_LIKE.match(cell))


def unnamed_time_column(frame: pd.DataFrame) -> str | None:
    """The first column when it has no name (pandas' ``to_csv`` of a ``DatetimeIndex``) and
    its first value reads as a date, else None."""
    if frame.shape[1] == 0:
        return None
    first = str(frame.columns[0])
    if first.strip() and not first.startswith("Unnamed: 0"):
        return None
    col = frame[frame.columns[0]].dropna()
    if not len(col) or pd.api.types.is_numeric_dtype(col):
        return None
    return first if looks_like_time(str(col.iloc[0])) else None


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
    frame: pd.DataFrame,
    names: Sequence[str],
    source: str,
    option: str = "time_column",
    spec: TimeSpec | None = None,
    *,
    droppable: bool = False,
) -> tuple[pd.DatetimeIndex, str | None]:
    """One timestamp per row from the time column(s) ``names`` of ``frame``.

    Args:
        frame: the table.
        names: one column, a date and a time column, or the parts ``year, month, day[, hour[,
            minute]]`` (any case).
        source: the file, for messages.
        option: the reader option that names the columns (for the fix in messages).
        spec: how the values are written (the reader's ``time_unit``, ``time_format``,
            ``dayfirst`` options); default: recognised from the values.
        droppable: whether the reader reads the file without its time column when the
            ``drop`` option names it (a column of step numbers is then told so).

    Returns:
        The timestamps (time-zone naive: the calendar features use wall-clock time; UTC when
        the offsets in the file change), and a note saying how they were read when the file
        did not say it plainly (numbers, a guessed day-first order, offsets converted to
        UTC), which is also given as a warning.

    Raises:
        DataError: a named column is missing, or the values do not parse as times.
    """
    spec = spec or TimeSpec()
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: expected time column(s) {echo_list(missing)}, found columns "
            f"{echo_list(frame.columns)}; name them with --set data_options.{option}=NAME "
            f"(or [Date,Time], [year,month,day,hour])."
        )
    low = [n.strip().lower() for n in names]
    label = echo("+".join(names))
    try:
        with warnings.catch_warnings():
            # pandas' advice to pass a format: the result is checked by the caller
            warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
            warnings.filterwarnings("ignore", "Parsing dates in", UserWarning)
            if len(names) >= 3 and set(low) <= set(PARTS) and set(PARTS[:3]) <= set(low):
                ts, note = _parse_parts(frame, names, low, source), None
            elif len(names) == 1:
                col = frame[names[0]]
                if spec.unit is not None and not pd.api.types.is_numeric_dtype(col):
                    col = _as_numbers(col, label, source, spec.unit)
                if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                    dropped = names[0] if droppable else None
                    ts, note = _parse_numbers(col, label, source, spec, dropped)
                else:
                    ts, note = _parse_text(col, label, source, spec)
            else:
                ts, note = _parse_text(_joined(frame, names), label, source, spec)
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as err:
        raise DataError(
            f"{source}: expected times in {label}, could not parse them "
            f"({first_line(err, 100)}); give their format with --set "
            f"data_options.time_format=FORMAT or name the time column(s) with --set "
            f"data_options.{option}=..."
        ) from err
    if note is not None:
        warnings.warn(f"{source}: {note}.", UserWarning, stacklevel=3)
    out = pd.DatetimeIndex(ts)
    return (out.tz_localize(None) if out.tz is not None else out), note


def _parse_parts(
    frame: pd.DataFrame, names: Sequence[str], low: list[str], source: str
) -> pd.DatetimeIndex:
    parts = frame[list(names)].set_axis(low, axis=1)
    bad = parts.isna().any(axis=1)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{source}: expected a time on every row, found {int(bad.sum())} rows "
            f"with an empty {'+'.join(names)} part (first at data row {row})."
        )
    return pd.DatetimeIndex(pd.to_datetime(parts))


def _joined(frame: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """A date and a time column as one text per row (``18.00.00`` written ``18:00:00``)."""
    cols = [frame[n].astype("string").str.strip() for n in names]
    cols[1:] = [c.str.replace(_DOTTED_TIME, r"\1:\2:\3", regex=True) for c in cols[1:]]
    out = cols[0]
    for c in cols[1:]:
        out = out + " " + c  # a missing part leaves the row missing
    return out


def _as_numbers(col: pd.Series, label: str, source: str, unit: str) -> pd.Series:
    """A text column given a ``time_unit``: its numbers, else a refusal (the unit is for
    epoch numbers)."""
    conv = pd.to_numeric(col, errors="coerce")
    bad = np.flatnonzero((conv.isna() & col.notna()).to_numpy())
    if len(bad):
        raise DataError(
            f"{source}: data_options.time_unit={unit} is for epoch numbers, found "
            f"{echo(str(col.iloc[bad[0]]))} at data row {int(bad[0])} in {label}; leave "
            f"time_unit out (or give a text format with data_options.time_format=FORMAT)."
        )
    return conv


def _span(ts: pd.DatetimeIndex) -> str:
    valid = ts.dropna()
    return f"{valid.min()} .. {valid.max()}" if len(valid) else "no values"


def _utc_note(label: str, ts: pd.DatetimeIndex) -> str:
    """The note on times whose UTC offsets change, read as UTC (``ts``: time-zone aware)."""
    return (
        f"the times in {label} carry UTC offsets that change (a daylight-saving change or "
        f"mixed time zones): converted to UTC ({_span(ts.tz_convert('UTC').tz_localize(None))}), "
        f"so the time-of-day features are UTC"
    )


def wall_clock(ts: pd.DatetimeIndex, label: str) -> tuple[pd.DatetimeIndex, str | None]:
    """Times without a time zone, as :func:`parse_time` gives them: wall-clock time when they
    have one UTC offset, else converted to UTC, with a note saying so (across a DST change the
    wall clock repeats or skips an hour).

    Args:
        ts: timestamps, time-zone aware or not (naive ones come back as they are).
        label: the column, as messages show it (``'ds'``).

    Returns:
        The naive timestamps and the note (``None`` unless converted to UTC).
    """
    if ts.tz is None:
        return ts, None
    local = ts.tz_localize(None)
    offsets = local - ts.tz_convert("UTC").tz_localize(None)
    if offsets.nunique() <= 1:
        return local, None
    return ts.tz_convert("UTC").tz_localize(None), _utc_note(label, ts)


def _parse_numbers(
    col: pd.Series, label: str, source: str, spec: TimeSpec, dropped: str | None = None
) -> tuple[pd.DatetimeIndex, str | None]:
    """Numbers as times: epoch times in ``spec.unit`` or the unit their magnitude tells,
    or digits spelling a date (``20240131``), or by ``spec.format``; ``dropped``: the column's
    name when the reader can leave it out (step numbers are then told how)."""
    x = col.astype(np.float64)
    fix = (
        "say what they are with --set data_options.time_unit=s (or ms, us, ns) for epoch "
        "times, or --set data_options.time_format=FORMAT for digits that spell a date "
        "(e.g. %Y%m%d)"
    )
    finite = x[np.isfinite(x)]
    integral = bool(len(finite)) and bool((finite == np.round(finite)).all())
    if spec.format is not None:
        digits = x.map(lambda v: f"{v:.0f}" if np.isfinite(v) else None) if integral else x
        return _parse_text(digits.astype("string"), label, source, spec)
    if spec.unit is not None:
        try:
            return pd.DatetimeIndex(pd.to_datetime(x, unit=spec.unit)), None
        except (ValueError, OverflowError):
            raise DataError(
                f"{source}: expected epoch times in {_UNIT_WORDS[spec.unit]} in {label} "
                f"(time_unit={spec.unit}), found numbers {finite.min():.10g} .. "
                f"{finite.max():.10g} that are out of range in that unit; {fix}."
            ) from None
    if not len(finite):
        return pd.DatetimeIndex([pd.NaT] * len(x)), None
    lo, hi = float(finite.min()), float(finite.max())
    compact = _COMPACT.get(len(f"{hi:.0f}")) if integral and lo > 0 else None
    if compact is not None and len(f"{lo:.0f}") == len(f"{hi:.0f}"):
        fmt, words = compact
        text = x.map(lambda v: f"{v:.0f}" if np.isfinite(v) else None).astype("string")
        ts = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce"))
        if not (ts.isna() & x.notna().to_numpy()).any():
            return ts, (
                f"the time column {label} holds numbers, read as dates written {words} "
                f"({_span(ts)}); if that is wrong, {fix}"
            )
    for unit, (a, b) in EPOCH_UNITS.items():
        if a <= lo and hi < b:
            ts = pd.DatetimeIndex(pd.to_datetime(x, unit=unit))
            return ts, (
                f"the time column {label} holds numbers, read as {_UNIT_WORDS[unit]} since "
                f"1970-01-01 UTC by their size ({_span(ts)}); if that is wrong, {fix}"
            )
    raise DataError(
        f"{source}: expected times in {label}, found numbers {lo:.10g} .. {hi:.10g} that are "
        f"neither epoch times from 1973 to 2286 in s, ms, us or ns nor digits spelling a date; "
        f"{fix}{_steps_fix(finite, integral, dropped)}."
    )


def _steps_fix(finite: pd.Series, integral: bool, dropped: str | None) -> str:
    """How to read a file whose time column counts steps (0, 1, 2, ...): without it."""
    if dropped is None or not integral or len(finite) < 2 or finite.min() < 0:
        return ""
    if not (np.diff(finite.to_numpy()) > 0).all():
        return ""
    return (
        f"; if they count steps, leave the column out with --set "
        f"{set_list('data_options.drop', [dropped])} (the rows are then read as regular "
        f"steps: give the step with --set data_options.freq_minutes=MINUTES)"
    )


def _as_ordered(fmt: str, dayfirst: bool) -> str:
    """``fmt`` with ``%d`` before ``%m`` when ``dayfirst``, else after."""
    if "%d" not in fmt or "%m" not in fmt:
        return fmt
    if (fmt.index("%d") < fmt.index("%m")) != dayfirst:
        fmt = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return fmt


def _strict(text: pd.Series, fmt: str) -> tuple[pd.DatetimeIndex, int | None, bool]:
    """``text`` read in ``fmt``: the times, the first row that does not parse, and whether
    UTC offsets that change were converted to UTC."""
    present = (text.notna() & (text != "")).to_numpy()
    utc = False
    if "%z" in fmt or fmt == "ISO8601":
        offsets = text[present].str.extract(_OFFSET)[0].dropna()
        offsets = offsets.str.replace("Z", "+00:00").str.replace(
            r"^([+-]\d{2})(\d{2})$", r"\1:\2", regex=True
        )
        utc = offsets.nunique() > 1
    try:
        ts = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce", utc=utc))
    except ValueError:  # offsets on some rows only
        ts = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce", utc=True))
        utc = True
    bad = np.flatnonzero(np.asarray(ts.isna()) & present)
    return ts, (int(bad[0]) if len(bad) else None), utc


def _regular(ts: pd.DatetimeIndex) -> bool:
    """Whether times step regularly (on the calendar: month starts count)."""
    return len(ts) >= 3 and ts.is_unique and pd.DatetimeIndex(ts, freq="infer").freq is not None


def _parse_text(
    col: pd.Series, label: str, source: str, spec: TimeSpec
) -> tuple[pd.DatetimeIndex, str | None]:
    """Text as times, in ``spec.format`` or the format of its first value."""
    text = col.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy()
    if not present.any():
        return pd.DatetimeIndex([pd.NaT] * len(text)), None
    sample = str(text[present].iloc[0])
    fix = (
        "give their format with --set data_options.time_format=FORMAT (strftime codes, e.g. "
        "%d/%m/%Y %H:%M)"
    )
    if spec.format is not None:
        formats = [spec.format]
    elif _DMY.match(sample):
        orders = (spec.dayfirst,) if spec.dayfirst is not None else (False, True)
        formats = []
        for first in orders:
            guess = guess_datetime_format(sample, dayfirst=first)
            if guess is not None and _as_ordered(guess, first) not in formats:
                formats.append(_as_ordered(guess, first))
        if not formats:
            raise DataError(
                f"{source}: expected times in {label}, could not tell the format of its first "
                f"value {echo(sample)}; {fix}."
            )
    else:
        guess = guess_datetime_format(sample)
        if guess is None:  # pandas then parses value by value
            _refuse_dateless(sample, None, label, source)
            return _parse_loose(text, label, source, fix)
        formats = [guess]
    for f in formats:
        _refuse_dateless(sample, f, label, source)
    tried = [(f, *_strict(text, f)) for f in formats]
    if tried[0][2] is not None and spec.format is None and _ISO.match(sample):
        tried[0] = ("ISO8601", *_strict(text, "ISO8601"))
    ok = [t for t in tried if t[2] is None]
    if not ok:
        f, _, row, _ = tried[-1]
        assert row is not None
        like = "" if spec.format is not None else f" (as its first value, {echo(sample)})"
        raise DataError(
            f"{source}: expected times in {label} in the format {echo(f)}{like}, found "
            f"{echo(str(text.iloc[row]))} at data row {row}; {fix}."
        )
    fmt, ts, _, utc = ok[0]
    note = None
    if len(ok) == 2 and not ts.equals(ok[1][1]):
        regular = [t for t in ok if _regular(t[1])]
        if len(regular) != 1:
            diff = int(np.flatnonzero(np.asarray(ts != ok[1][1]) & present)[0])
            raise DataError(
                f"{source}: the dates in {label} read both month-first and day-first (e.g. "
                f"{echo(str(text.iloc[diff]))}: {ts[diff].date()} or {ok[1][1][diff].date()}); "
                f"say which with --set data_options.dayfirst=true (or false), or give the "
                f"format with --set data_options.time_format=FORMAT."
            )
        fmt, ts, _, utc = regular[0]
        first = fmt.index("%d") < fmt.index("%m")
        order = "day-first" if first else "month-first"
        note = (
            f"the dates in {label} read both month-first and day-first; read {order} "
            f"({echo(fmt)}), the reading with regular steps; if that is wrong, say so with "
            f"--set data_options.dayfirst={str(not first).lower()}"
        )
    if utc:
        note = _utc_note(label, ts)
    return ts, note


#: strftime codes that give the year (or a whole timestamp)
_DATE_CODES = re.compile(r"%[YyGxcs]|ISO8601")


def _refuse_dateless(sample: str, fmt: str | None, label: str, source: str) -> None:
    """Refuse times without a year (``18:30``, ``5 March``): pandas dates them 1900 (with a
    format) or this year, today for times of day (without), so the calendar -- and every
    day-of-week feature -- would be invented. ``fmt``: the format the values are read in,
    ``None`` for value by value."""
    if fmt is not None:
        dated = bool(_DATE_CODES.search(fmt))
    else:
        from dateutil import parser

        try:
            one = parser.parse(sample, default=datetime.datetime(2001, 1, 1))
            two = parser.parse(sample, default=datetime.datetime(2002, 2, 2))
        except (ValueError, OverflowError):
            return  # not dateutil's to read either: the caller's message says so
        dated = one.year == two.year
    if not dated:
        raise DataError(
            f"{source}: expected dates and times in {label}, found "
            + (
                f"times without a year (first {echo(sample)}), which would be dated this year"
                if fmt is None
                else f"the format {echo(fmt)}, which reads no year (first value "
                f"{echo(sample)}), so every time would be dated 1900"
            )
            + "; give the dates (a date column "
            "beside it is joined with --set 'data_options.time_column=[Date,Time]'), or a "
            "format with the date with --set data_options.time_format=FORMAT."
        )


def _parse_loose(
    text: pd.Series, label: str, source: str, fix: str
) -> tuple[pd.DatetimeIndex, str | None]:
    """Text whose format pandas cannot tell from its first value: read value by value."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(text)), None
    except ValueError as err:
        if "Mixed timezones" not in str(err):
            raise DataError(
                f"{source}: expected times in {label}, could not parse them "
                f"({first_line(err, 80)}); {fix}."
            ) from None
    ts = pd.DatetimeIndex(pd.to_datetime(text, utc=True))
    return ts, _utc_note(label, ts)
