"""CSV files as practitioners write them: epoch numbers, time columns by any documented name or
none (pandas' ``to_csv`` of a ``DatetimeIndex``), ``;``/tab separators, decimal commas, gzip,
UTF-16, day-first dates, UTC offsets across a DST change -- read right, or refused in one
sentence naming the option that reads them."""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import load, read_ltsf_csv
from linearcast.data.readers import read_table_csv
from linearcast.errors import ConfigError, DataError

T = 30


def _frame(n: int = 3, t: int = T, freq: str = "h", start: str = "2024-01-01") -> pd.DataFrame:
    """A wide frame, ``[t, n]`` values that differ per cell, a ``DatetimeIndex`` named ``date``."""
    rng = np.random.default_rng(0)
    index = pd.date_range(start, periods=t, freq=freq, name="date")
    values = rng.normal(50.0, 5.0, size=(t, n)).round(6)
    return pd.DataFrame(values, index=index, columns=[f"s{i}" for i in range(n)])


def _same(ds: object, df: pd.DataFrame) -> None:
    """The dataset holds the frame: its timestamps, series names and values."""
    assert list(ds.timestamps) == list(df.index)  # type: ignore[attr-defined]
    assert ds.node_names == list(df.columns)  # type: ignore[attr-defined]
    np.testing.assert_allclose(ds.values[:, :, 0], df.to_numpy(), rtol=1e-6)  # type: ignore[attr-defined]


def _sentence(err: pytest.ExceptionInfo[DataError]) -> str:
    text = str(err.value)
    assert "\n" not in text and "C error" not in text and "You might want" not in text
    return text


# ----------------------------------------------------------------------------- 1. epoch numbers
@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_numbers_are_read_in_the_unit_their_size_tells_and_say_so(
    tmp_path: Path, unit: str, scale: int
) -> None:
    df = _frame()
    path = tmp_path / "epoch.csv"
    seconds = (df.index - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    df.set_axis(pd.Index(seconds * scale, name="date")).to_csv(path)
    with pytest.warns(UserWarning, match=r"read as \w+ since 1970-01-01 UTC.*time_unit") as rec:
        ds = load(path)
    words = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
    assert any(f"read as {words[unit]} since" in str(w.message) for w in rec)
    _same(ds, df)
    assert ds.freq_minutes == 60
    assert words[unit] in ds.meta["time_note"]


def test_epoch_seconds_in_a_long_table(tmp_path: Path) -> None:
    df = _frame(n=2)
    long = df.reset_index().melt(id_vars="date", var_name="unique_id", value_name="y")
    long["ds"] = (long.pop("date") - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    path = tmp_path / "long.csv"
    long[["ds", "unique_id", "y"]].to_csv(path, index=False)
    with pytest.warns(UserWarning, match="read as seconds since 1970-01-01 UTC"):
        ds = load(path)
    assert ds.meta["format"] == "table"
    _same(ds, df)


def test_an_explicit_time_unit_wins_over_the_size(tmp_path: Path) -> None:
    path = tmp_path / "epoch.csv"
    path.write_text("date,a\n1704067200,1\n1704070800,2\n1704074400,3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the unit was said: nothing to warn about
        ds = load(path, time_unit="ms")
    assert ds.timestamps[0] == pd.Timestamp(1704067200, unit="ms")
    assert ds.timestamps[1] - ds.timestamps[0] == pd.Timedelta(seconds=3.6)


def test_numbers_that_fit_no_unit_are_refused_naming_time_unit(tmp_path: Path) -> None:
    path = tmp_path / "kilo.csv"
    path.write_text("date,a\n1704067,1\n1704070,2\n1704074,3\n")
    with pytest.raises(DataError, match=r"kilo\.csv: expected times in 'date', found numbers") as e:
        load(path)
    assert "--set data_options.time_unit=s" in _sentence(e)


def test_a_time_unit_that_is_no_unit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "epoch.csv"
    path.write_text("date,a\n1704067200,1\n1704070800,2\n")
    with pytest.raises(DataError, match=r"time_unit must be s, ms, us or ns .*found 'sec'"):
        load(path, time_unit="sec")
    text = tmp_path / "text.csv"
    text.write_text("date,a\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    with pytest.raises(DataError, match=r"time_unit=s is for epoch numbers, found '2024-01-01"):
        load(text, time_unit="s")


def test_digits_that_spell_dates_are_read_as_dates(tmp_path: Path) -> None:
    df = _frame(freq="D")
    path = tmp_path / "daily.csv"
    df.set_axis(pd.Index(df.index.strftime("%Y%m%d").astype(int), name="date")).to_csv(path)
    with pytest.warns(UserWarning, match="read as dates written YYYYMMDD"):
        ds = load(path)
    _same(ds, df)
    assert ds.freq_minutes == 1440


# ----------------------------------------------------------------------------- 2. time names
@pytest.mark.parametrize("name", ["timestamp", "datetime", "time", "ds", "Timestamp", "DS"])
def test_every_documented_time_name_is_found(tmp_path: Path, name: str) -> None:
    df = _frame()
    path = tmp_path / "wide.csv"
    df.rename_axis(name).to_csv(path)
    ds = load(path)
    _same(ds, df)


def test_an_unnamed_index_of_dates_is_the_time(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "to_csv.csv"
    df.rename_axis(None).to_csv(path)  # pandas writes an empty first header
    assert path.read_text().startswith(",s0,")
    ds = load(path)
    _same(ds, df)
    table = read_table_csv(path)
    _same(table, df)


def test_a_time_column_under_another_name_names_time_column(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "when.csv"
    df.rename_axis("when").to_csv(path)
    with pytest.raises(DataError, match=r"when\.csv: expected numbers in column 'when'") as e:
        load(path)
    assert _sentence(e).endswith("--set data_options.time_column=when.")
    _same(load(path, time_column="when"), df)


@pytest.mark.parametrize("extra", ["", ",note"])  # ltsf-shaped, or a table (text column)
def test_a_time_column_of_step_numbers_names_drop_and_reads_without_it(
    tmp_path: Path, extra: str
) -> None:
    """``time`` = 0, 1, 2, ... counts steps: refused as times naming the ``drop`` that reads
    the rows as regular steps, and read so with it (the values, no invented calendar)."""
    path = tmp_path / "steps.csv"
    rows = "".join(f"{t},{t + 0.5},{2 * t}{',x' if extra else ''}\n" for t in range(40))
    path.write_text(f"time,a,b{extra}\n{rows}")
    drop = ["time", "note"] if extra else ["time"]
    with pytest.raises(DataError, match=r"steps\.csv: expected times in 'time', found") as e:
        load(path, drop=drop[1:] or None)
    assert "if they count steps, leave the column out with --set 'data_options.drop=[time]'" in (
        _sentence(e)
    )
    ds = load(path, drop=drop)
    assert ds.timestamps is None and ds.node_names == ["a", "b"]
    np.testing.assert_allclose(ds.values[:3, :, 0], [[0.5, 0.0], [1.5, 2.0], [2.5, 4.0]])


def test_epoch_like_numbers_are_not_offered_as_steps(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"  # decreasing numbers: not a step count, no drop advice
    path.write_text("time,a\n" + "".join(f"{40 - t},{t}\n" for t in range(40)))
    with pytest.raises(DataError) as e:
        load(path)
    assert "count steps" not in _sentence(e)


@pytest.mark.parametrize(
    ("first", "options", "dated"),
    [
        ("00:10", {}, "this year"),  # pandas would date it today
        ("5 March", {}, "this year"),
        ("00:10", {"time_format": "%H:%M"}, "1900"),
    ],
)
def test_times_without_a_year_are_refused_not_dated_today(
    tmp_path: Path, first: str, options: dict[str, str], dated: str
) -> None:
    """A time of day (or a day without a year) would put every calendar feature on an
    invented date: refused naming the Date+Time join and ``time_format``."""
    path = tmp_path / "clock.csv"
    rest = ["00:20", "00:30"] if ":" in first else ["6 March", "7 March"]
    path.write_text("date,a\n" + "".join(f"{t},{i}\n" for i, t in enumerate([first, *rest])))
    with pytest.raises(DataError, match=r"clock\.csv: expected dates and times in 'date'") as e:
        load(path, **options)
    assert f"dated {dated}" in _sentence(e)
    assert "--set 'data_options.time_column=[Date,Time]'" in _sentence(e)


def test_a_month_and_year_without_a_day_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "monthly.csv"
    path.write_text("date,a\nMarch 2024,1\nApril 2024,2\nMay 2024,3\nJune 2024,4\n")
    ds = load(path)
    assert [t.strftime("%Y-%m-%d") for t in ds.timestamps] == [
        "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"
    ]  # fmt: skip


# ----------------------------------------------------------------------------- 3. dialects
@pytest.mark.parametrize(
    ("kwargs", "reader"),
    [
        ({"sep": ";"}, load),
        ({"sep": ";", "decimal": ","}, load),
        ({"sep": "\t"}, load),
        ({"sep": ";", "decimal": ","}, read_table_csv),
        ({"sep": "\t", "decimal": ","}, read_ltsf_csv),
    ],
)
def test_separators_and_decimal_commas_are_recognised(
    tmp_path: Path, kwargs: dict[str, str], reader: object
) -> None:
    df = _frame()
    path = tmp_path / "european.csv"
    df.to_csv(path, **kwargs)
    ds = reader(path)  # type: ignore[operator]
    _same(ds, df)


def test_sep_and_decimal_options_win(tmp_path: Path) -> None:
    path = tmp_path / "carets.csv"  # a separator no sniffing looks for
    path.write_text("date^a^b\n2024-01-01 00:00^1,5^2\n2024-01-01 01:00^3^4,25\n")
    ds = load(path, sep="^", decimal=",")
    assert ds.meta["format"] == "ltsf"
    assert ds.node_names == ["a", "b"]
    np.testing.assert_allclose(ds.values[:, :, 0], [[1.5, 2.0], [3.0, 4.25]])
    with pytest.raises(DataError, match=r"data_options\.sep must be one character \("):
        load(path, sep="^^")
    with pytest.raises(DataError, match=r"one character other than a line break or the quote"):
        load(path, sep='"')  # one character, but not one a CSV can be split on


def test_a_decimal_comma_the_sniffer_missed_names_decimal(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"  # one value with a point: the file is not all decimal commas
    path.write_text("date;a\n2024-01-01 00:00;1,5\n2024-01-01 01:00;2.5\n2024-01-01 02:00;3,5\n")
    with pytest.raises(DataError, match=r"mixed\.csv: expected numeric values in column 'a'") as e:
        load(path)
    assert "--set 'data_options.decimal=,'" in _sentence(e)


def _grouped(value: float, mark: str) -> str:
    """``value`` with thousands separators: ``12,345.67`` (``mark=","``) or ``12.345,67``."""
    text = f"{value:,.2f}"
    return text if mark == "," else text.translate(str.maketrans(",.", ".,"))


@pytest.mark.parametrize(
    ("layout", "mark", "sep"),
    [("wide", ",", ","), ("wide", ".", ";"), ("long", ",", ","), ("matrix", ",", ",")],
)
def test_thousands_separators_are_named_then_read(
    tmp_path: Path, layout: str, mark: str, sep: str
) -> None:
    """Spreadsheet exports write ``"5,035.80"``: refused naming ``thousands``, then read exactly
    with it (``.`` making ``,`` the decimal mark), whatever the file's layout."""
    df = _frame(t=40) * 1000.0  # 40,000-60,000: every value has a group separator
    df = df.round(2)
    cells = df.map(lambda v: _grouped(v, mark))
    path = tmp_path / f"{layout}.csv"
    if layout == "wide":
        cells.to_csv(path, sep=sep)
    elif layout == "long":
        long = cells.stack().rename("y").reset_index()
        long.columns = ["ds", "unique_id", "y"]
        long[["unique_id", "ds", "y"]].to_csv(path, index=False, sep=sep)
    else:  # a [T, N] matrix without times (T-GCN's layout), first line sensor names
        cells.to_csv(path, index=False, sep=sep)
    with pytest.raises(DataError, match=rf"{layout}\.csv: expected numeric values") as e:
        load(path)
    assert _sentence(e).endswith(f"--set 'data_options.thousands={mark}'.")
    ds = load(path, thousands=mark)
    if layout == "matrix":
        assert ds.node_names == list(df.columns)
        np.testing.assert_allclose(ds.values[:, :, 0], df.to_numpy(), rtol=1e-6)
    else:
        _same(ds, df)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"thousands": ",", "decimal": ","}, r"thousands must be no digit, letter or sign"),
        ({"thousands": "1"}, r"thousands must be no digit, letter or sign"),
        ({"thousands": "-"}, r"thousands must be no digit, letter or sign"),
        ({"thousands": ",,"}, r"thousands must be one character"),
        # '.' would make ',' the decimal mark and read 1.5 as 15: the numbers are not grouped
        ({"thousands": "."}, r"thousands=\. expects numbers grouped in threes .*found '1\.5'"),
    ],
)
def test_a_thousands_separator_that_cannot_be_one_is_refused(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("date,a\n2024-01-01 00:00,1.5\n2024-01-01 01:00,2.5\n")
    with pytest.raises(DataError, match=rf"plain\.csv: data_options\.{message}"):
        load(path, **options)


def test_lines_that_mix_separators_are_told_so(tmp_path: Path) -> None:
    """``date;a,b`` (an export that joined two dialects): named as mixed, not given an option
    that cannot read it."""
    path = tmp_path / "mixed.csv"
    path.write_text("date;a,b\n" + "".join(f"2024-01-{d:02d};{d},{d + 1}\n" for d in range(1, 30)))
    with pytest.raises(DataError, match=r"mixed\.csv: expected numeric values in column") as e:
        load(path)
    assert _sentence(e).endswith(
        "the file mixes the separators ',' and ';' (column 'date;a' holds both): save it with "
        "one separator throughout."
    )


def test_gzip_compressed_csv_is_read(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "packed.csv"
    path.write_bytes(gzip.compress(df.to_csv().encode()))
    _same(load(path), df)


def test_gzip_inside_gzip_is_named(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv.gz"
    path.write_bytes(gzip.compress(gzip.compress(_frame().to_csv().encode())))
    with pytest.raises(DataError, match=r"twice\.csv\.gz: .*compressed again \(gzip inside"):
        load(path)


def test_damaged_gzip_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes(gzip.compress(_frame(t=2000).to_csv().encode())[:200])
    with pytest.raises(DataError, match=r"cut\.csv: .*gzip-compressed data that does not"):
        read_ltsf_csv(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-16-le"])
def test_utf16_and_byte_order_marks_are_recognised(tmp_path: Path, encoding: str) -> None:
    df = _frame()
    path = tmp_path / "wide.csv"
    path.write_bytes(df.to_csv().encode(encoding))
    _same(load(path), df)


def test_text_that_is_not_utf8_names_the_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("date,Zürich\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: expected .* as utf-8 text, found byte 0xfc"):
        load(path)
    ds = load(path, encoding="latin-1")
    assert ds.node_names == ["Zürich"]


def test_a_line_with_more_fields_is_one_sentence_naming_sep(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("date,a\n2024-01-01 00:00,1\n2024-01-01 01:00,2,3,4\n")
    with pytest.raises(DataError, match=r"ragged\.csv: expected .* 2 fields on every line") as e:
        load(path)
    text = _sentence(e)
    assert "found 4 on line 3" in text and "data_options.sep" in text


def test_a_header_short_of_the_rows_asks_for_the_missing_name(tmp_path: Path) -> None:
    """``s0,s1,s2`` over rows of four fields (the time column left unnamed): the separator
    is right, the header is short; the message says so instead of naming ``sep``."""
    path = tmp_path / "short.csv"
    path.write_text("s0,s1,s2\n" + "".join(f"2024-01-01 {h:02d}:00,1,2,3\n" for h in range(9)))
    with pytest.raises(DataError, match=r"short\.csv: expected .* 3 fields on every line") as e:
        load(path)
    text = _sentence(e)
    assert "found 4 on line 2" in text and "data_options.sep" not in text
    assert text.endswith("give every column a name in the first line (e.g. the time column's: "
                         "date,...).")  # fmt: skip


def test_the_uci_air_quality_layout(tmp_path: Path) -> None:
    """UCI's AirQualityUCI.csv: ';', decimal commas, dd/mm/YYYY + HH.MM.SS, a trailing ';;' and
    rows of separators only at the end."""
    df = _frame(n=2, t=400)  # 400 hours: days past 12, so day-first is certain
    lines = ["Date;Time;CO(GT);T;;"]
    for ts, row in zip(df.index, df.to_numpy(), strict=True):
        cells = [f"{v:.6f}".replace(".", ",") for v in row]
        lines.append(f"{ts:%d/%m/%Y};{ts:%H.%M.%S};{';'.join(cells)};;")
    lines += [";;;;;"] * 3  # as many fields as the header
    path = tmp_path / "AirQualityUCI.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match=r"3 rows at its end hold no values"):
        ds = load(path)
    assert ds.meta["format"] == "table"
    assert list(ds.timestamps) == list(df.index)
    assert ds.node_names == ["CO(GT)", "T"]
    np.testing.assert_allclose(ds.values[:, :, 0], df.to_numpy(), rtol=1e-6)


def test_day_first_dates_are_never_read_month_first(tmp_path: Path) -> None:
    df = _frame(t=400)
    path = tmp_path / "excel.csv"
    df.to_csv(path, date_format="%d/%m/%Y %H:%M")
    _same(load(path), df)


def test_short_day_first_dates_take_the_regular_reading_and_say_so(tmp_path: Path) -> None:
    df = _frame(t=48)  # two days: every day and month is at most 12, both readings parse
    path = tmp_path / "short.csv"
    df.to_csv(path, date_format="%d/%m/%Y %H:%M")
    with pytest.warns(UserWarning, match=r"read day-first .*--set data_options\.dayfirst=false\.$"):
        ds = load(path)
    _same(ds, df)


def test_dates_that_read_both_ways_regularly_are_refused_naming_dayfirst(tmp_path: Path) -> None:
    df = _frame(t=10, freq="MS")  # 01/01 .. 01/10: months month-first, days day-first
    path = tmp_path / "monthly.csv"
    df.to_csv(path, date_format="%m/%d/%Y")
    with pytest.raises(DataError, match=r"monthly\.csv: the dates in 'date' read both") as e:
        load(path)
    assert "--set data_options.dayfirst=true (or false)" in _sentence(e)
    _same(load(path, dayfirst=False), df)
    _same(load(path, time_format="%m/%d/%Y"), df)
    days = load(path, dayfirst=True)
    assert days.timestamps[1] - days.timestamps[0] == pd.Timedelta(days=1)


def test_a_value_that_breaks_the_format_names_time_format(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("date,a\n01/02/2024 00:00,1\n31/02/2024 01:00,2\n13/13/2024 02:00,3\n")
    with pytest.raises(DataError, match=r"bad\.csv: expected times in 'date' in the format") as e:
        load(path)
    assert "'31/02/2024 01:00' at data row 1" in _sentence(e)
    assert "--set data_options.time_format=" in str(e.value)


# ----------------------------------------------------------------------------- 4. time zones
def test_offsets_across_a_dst_change_are_converted_to_utc(tmp_path: Path) -> None:
    df = _frame(t=72, start="2024-10-25 22:00")  # UTC; Paris leaves summer time on 10-27
    local = df.index.tz_localize("UTC").tz_convert("Europe/Paris")
    path = tmp_path / "paris.csv"
    df.set_axis(pd.Index(local.strftime("%Y-%m-%d %H:%M:%S%z"), name="date")).to_csv(path)
    assert "+0200" in path.read_text() and "+0100" in path.read_text()
    with pytest.warns(UserWarning, match=r"UTC offsets that change .* converted to UTC") as rec:
        ds = load(path)
    assert not any("could not parse" in str(w.message) for w in rec)
    _same(ds, df)
    assert ds.freq_minutes == 60


def test_one_fixed_offset_keeps_wall_clock_time(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "fixed.csv"
    stamped = df.index.strftime("%Y-%m-%dT%H:%M:%S+05:30")
    df.set_axis(pd.Index(stamped, name="date")).to_csv(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(load(path), df)


# ----------------------------------------------------------------------------- 5. name lists
@pytest.mark.parametrize("option", ["columns", "drop"])
@pytest.mark.parametrize("reader", [load, read_table_csv, read_ltsf_csv])
def test_a_column_named_twice_is_refused_naming_it(
    tmp_path: Path, option: str, reader: object
) -> None:
    path = tmp_path / "wide.csv"
    _frame().to_csv(path)
    with pytest.raises(DataError, match=rf"data_options\.{option} names 's0' 2 times") as e:
        reader(path, **{option: ["s0", "s0"]})  # type: ignore[operator]
    assert re.search(rf"--set data_options\.{option}=\[s0\]\.$", _sentence(e))


def test_a_trailing_separator_adds_no_series(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "trailing.csv"
    path.write_text("".join(line + ",\n" for line in df.to_csv().splitlines()))
    _same(load(path), df)


@pytest.mark.parametrize("codec", ["rot13", "base64", "zlib", "hex", "bz2", "uu", "idna", "nope"])
def test_an_encoding_that_is_no_text_encoding_is_one_sentence(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "d.csv"
    _frame().to_csv(path)
    with pytest.raises(DataError, match=rf"data_options\.encoding names no known text encoding, "
                       rf"found '{codec}'"):  # fmt: skip
        load(path, encoding=codec)


@pytest.mark.parametrize("limit", ["1e308", "inf", "0", "-1", "2e6"])
def test_a_memory_limit_beyond_any_machine_is_one_sentence(tmp_path: Path, limit: str) -> None:
    path = tmp_path / "d.csv"
    _frame().to_csv(path)
    with pytest.raises(ConfigError, match=r"memory_limit_gb: expected a positive number of GiB"):
        load(path, memory_limit_gb=float(limit))
