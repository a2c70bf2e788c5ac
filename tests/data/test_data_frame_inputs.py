"""What a Python user's frame or array may hold besides numbers, and what ``as_dataset`` makes of
it: datetime columns and indexes are the time (never a series of epoch numbers), masked entries
are missing readings, and every other odd input -- repeated or missing column names, complex
numbers, flags, options out of range, a long frame under other names -- is one sentence naming
the data, what was expected, what was found and the keyword that fixes it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from linearcast.data import TimeSeriesDataset, as_dataset
from linearcast.errors import DataError

T = 60
INDEX = pd.date_range("2024-01-01", periods=T, freq="10min")


def _wide(n: int = 3) -> pd.DataFrame:
    values = np.arange(T * n, dtype=np.float64).reshape(T, n) + 10.0
    return pd.DataFrame(values, index=INDEX, columns=[f"s{i}" for i in range(n)])


def _long() -> pd.DataFrame:
    return _wide().rename_axis("ds").reset_index().melt("ds", var_name="unique_id", value_name="y")


def _refusal(data: Any, **options: Any) -> str:
    """The message of the DataError ``as_dataset`` raises: one sentence, data named first."""
    with pytest.raises(DataError) as err:
        as_dataset(data, name="mine", **options)
    text = str(err.value)
    assert text.startswith("mine"), text
    assert "\n" not in text and text.endswith("."), text
    return text


def _quiet(data: Any, **options: Any) -> TimeSeriesDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return as_dataset(data, **options)


# ------------------------------------------------------------------ A2: datetime columns
@pytest.mark.parametrize(
    "make",
    [
        lambda df: df.reset_index(names="Date"),  # capital D: not a name the old lookup knew
        lambda df: df.reset_index(names="when"),  # any name: the one datetime column
        lambda df: df.reset_index(names="stamp").assign(stamp=lambda f: f["stamp"].astype(object)),
    ],
    ids=["Date", "when", "objects"],
)
def test_the_one_datetime_column_is_the_time_not_a_series(make: Any) -> None:
    ds = _quiet(make(_wide()))
    assert ds.node_names == ["s0", "s1", "s2"]
    assert list(ds.timestamps) == list(INDEX)
    assert ds.freq_minutes == 10
    np.testing.assert_array_equal(ds.values[..., 0], _wide().to_numpy(np.float32))


def test_a_copy_of_the_index_is_left_out_with_a_warning() -> None:
    df = _wide()
    df["date"] = df.index  # set_index("date", drop=False)
    with pytest.warns(UserWarning, match=r"\['date'\] hold the same times as the index"):
        ds = as_dataset(df)
    assert ds.node_names == ["s0", "s1", "s2"]
    assert float(np.abs(ds.values).max()) < 1e6  # no epoch numbers among the readings


@pytest.mark.parametrize(
    ("make", "options", "names"),
    [  # another datetime column beside the index, a named time column, or a second one
        (lambda df: df.assign(when=df.index + pd.Timedelta("1h")), {}, ["'when'", "index"]),
        (
            lambda df: df.reset_index(names="ds").assign(x=lambda f: f["ds"] + pd.Timedelta("1h")),
            {"time_column": "ds"},
            ["'x'", "time_column='ds'"],
        ),
        (
            lambda df: df.reset_index(names="a").assign(b=lambda f: f["a"] + pd.Timedelta("1h")),
            {},
            ["['a', 'b']", "time_column='a'"],
        ),
    ],
    ids=["beside-index", "beside-time-column", "two-candidates"],
)
def test_other_datetime_columns_are_refused_naming_them(
    make: Any, options: dict[str, Any], names: list[str]
) -> None:
    text = _refusal(make(_wide()), **options)
    assert "datetimes" in text and "drop" in text
    for name in names:
        assert name in text


def test_durations_are_refused_not_read_as_nanoseconds() -> None:
    df = _wide().assign(lag=pd.to_timedelta(np.arange(T), unit="s"))
    text = _refusal(df)
    assert "durations" in text and "'lag'" in text and "total_seconds" in text


def test_a_long_frame_of_datetime_values_is_refused() -> None:
    long = _long().assign(y=lambda f: f["ds"])
    assert "expected numeric values in column 'y', found datetimes" in _refusal(long)


# ------------------------------------------------------------------ A4: masked arrays
def test_masked_entries_are_missing_readings_not_the_value_under_the_mask() -> None:
    arr = np.arange(T * 3, dtype=np.float64).reshape(T, 3)
    mask = np.zeros_like(arr, dtype=bool)
    mask[-1, 0] = mask[5, 2] = True
    arr[mask] = -9999.0
    masked = np.ma.masked_array(arr, mask=mask)
    text = _refusal(masked, freq_minutes=10)  # missing readings are refused by default
    assert "2 masked entries" in text and "non_finite='mask'" in text
    with pytest.warns(UserWarning, match="2 NaN"):
        ds = as_dataset(masked, freq_minutes=10, non_finite="mask")
    np.testing.assert_array_equal(np.isnan(ds.values[..., 0]), mask)
    assert not (ds.values == -9999.0).any()
    np.testing.assert_array_equal(ds.values[~mask, 0], arr[~mask].astype(np.float32))
    # integers too, and a dataset built on a masked array directly
    ints = np.ma.masked_array(np.arange(T * 3).reshape(T, 3), mask=mask)
    with pytest.warns(UserWarning, match="2 NaN"):
        assert np.isnan(as_dataset(ints, non_finite="mask").values[..., 0]).sum() == 2
    direct = TimeSeriesDataset(values=masked[:, :, None].astype(np.float32))
    np.testing.assert_array_equal(np.isnan(direct.values[..., 0]), mask)


def test_an_unmasked_masked_array_reads_as_the_plain_array() -> None:
    arr = np.arange(T * 2, dtype=np.float64).reshape(T, 2)
    ds = _quiet(np.ma.masked_array(arr, mask=False), freq_minutes=10)
    np.testing.assert_array_equal(ds.values[..., 0], arr.astype(np.float32))


# ------------------------------------------------------------------ A7: indexes and start
@pytest.mark.parametrize(
    "index",
    [
        INDEX.astype(str),  # what pd.read_csv(index_col=0) gives
        INDEX.strftime("%Y-%m-%dT%H:%M"),
        INDEX.to_period("10min"),
    ],
    ids=["text", "iso-text", "periods"],
)
def test_an_index_of_times_keeps_its_timestamps(index: pd.Index) -> None:
    df = _wide().set_axis(index, axis=0)
    ds = _quiet(df)
    assert list(ds.timestamps) == list(INDEX)
    assert ds.freq_minutes == 10


def test_a_monthly_period_index_continues_the_calendar() -> None:
    df = pd.DataFrame(
        {"s0": np.arange(24.0)}, index=pd.period_range("2020-01", periods=24, freq="M")
    )
    ds = _quiet(df)
    assert ds.timestamps[0] == pd.Timestamp("2020-01-01") and ds.meta["freq"] == "MS"


def test_a_text_index_that_does_not_parse_is_named_not_dropped() -> None:
    index = list(INDEX.astype(str))
    index[7] = "garbage"
    text = _refusal(_wide().set_axis(index, axis=0))
    assert "'garbage' at data row 7" in text and "time_format" in text


def test_labels_in_the_index_are_not_times() -> None:
    df = _wide().set_axis([f"r{i}" for i in range(T)], axis=0)
    ds = _quiet(df)
    assert ds.timestamps is None and ds.node_names == ["s0", "s1", "s2"]


def test_a_row_multiindex_is_refused() -> None:
    df = _long().set_index(["unique_id", "ds"])
    text = _refusal(df)
    assert "row MultiIndex" in text and "['unique_id', 'ds']" in text
    assert "frame.reset_index()" in text
    # the advice works: reset, it is the long frame it was
    assert as_dataset(df.reset_index()).shape == (T, 3, 1)


def test_start_needs_a_step() -> None:
    arr = np.zeros((T, 2))
    text = _refusal(arr, start="2024-01-08")
    assert "start='2024-01-08 00:00:00'" in text and "freq_minutes=" in text
    for options in ({"freq_minutes": 10}, {"steps_per_day": 144}):
        ds = _quiet(arr, start="2024-01-08", **options)
        times = ds.times()
        assert times is not None and times[1] == pd.Timestamp("2024-01-08 00:10")


# ------------------------------------------------------------------ B: crashes
def test_repeated_column_names_are_named() -> None:
    text = _refusal(_wide().set_axis(["s0", "s0", "s1"], axis=1))
    assert "found ['s0'] on more than one column" in text
    long = pd.concat([_long(), _long()[["y"]]], axis=1)  # two 'y' columns
    assert "['y']" in _refusal(long)


@pytest.mark.parametrize("labels", [["s0", None, "s2"], ["s0", "s1", np.nan]])
def test_columns_without_a_name_are_refused(labels: list[Any]) -> None:
    text = _refusal(_wide().set_axis(labels, axis=1))
    assert "found 1 without one" in text and "None or NaN" in text


@pytest.mark.parametrize("start", ["garbage", "2024-13-45", [2024, 1, 1]])
def test_a_start_that_is_not_a_time_is_one_sentence(start: Any) -> None:
    text = _refusal(np.zeros((T, 2)), freq_minutes=10, start=start)
    assert "start must be the first row's time" in text and repr(start) in text


@pytest.mark.parametrize(
    "make",
    [
        lambda col: col.astype(object).where(col.index != col.index[4], 1 + 2j),
        lambda col: col.astype(complex),
    ],
    ids=["object", "complex128"],
)
def test_complex_values_are_refused(make: Any) -> None:
    df = _wide()
    df["s1"] = make(df["s1"])
    text = _refusal(df)
    assert "expected real numbers in column 's1', found complex values" in text
    assert "complex" in _refusal(np.zeros((T, 2), dtype=complex))


# ------------------------------------------------------------------ C1: time zones
@pytest.mark.parametrize("start", ["2024-10-26 12:00", "2024-03-30 12:00"], ids=["fall", "spring"])
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_offsets_that_change_are_read_in_utc_with_a_warning(start: str, layout: str) -> None:
    local = pd.date_range(start, periods=48, freq="h", tz="Europe/Berlin")
    wide = pd.DataFrame({"s0": np.arange(48.0), "s1": np.arange(48.0)}, index=local)
    data = (
        wide
        if layout == "wide"
        else wide.rename_axis("ds").reset_index().melt("ds", var_name="unique_id", value_name="y")
    )
    with pytest.warns(UserWarning, match="UTC offsets that change .* converted to UTC"):
        ds = as_dataset(data)
    assert list(ds.timestamps) == list(local.tz_convert("UTC").tz_localize(None))
    assert ds.freq_minutes == 60  # every hour kept: none deleted, none invented


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Etc/GMT-1", "UTC"])
def test_one_offset_keeps_the_wall_clock(tz: str) -> None:
    local = pd.date_range("2024-01-08 00:00", periods=T, freq="10min", tz=tz)
    ds = _quiet(_wide().set_axis(local, axis=0))
    assert list(ds.timestamps) == list(local.tz_localize(None))
    assert ds.time_of_day()[0] == 0.0


# ------------------------------------------------------------------ C2: long frames
@pytest.mark.parametrize(
    ("rename", "fix"),
    [
        ({"y": "Y"}, "id_column='unique_id', ds_column='ds', value_column='Y'"),
        ({"unique_id": "series"}, "id_column='series', ds_column='ds', value_column='y'"),
    ],
)
def test_a_long_frame_under_other_names_is_told_its_options(
    rename: dict[str, str], fix: str
) -> None:
    long = _long().rename(columns=rename)
    text = _refusal(long)
    assert fix in text and "dedupe" not in text
    options = {"id_column": "unique_id", "value_column": "y"}
    options |= {"value_column": "Y"} if "y" in rename else {"id_column": "series"}
    assert as_dataset(long, **options).shape == (T, 3, 1)  # the advice works


def test_repeated_times_in_a_wide_frame_name_no_missing_option() -> None:
    df = pd.concat([_wide(), _wide().iloc[[3]]]).sort_index()
    text = _refusal(df)
    assert "expected unique timestamps" in text and "index.duplicated" in text
    assert "dedupe" not in text  # as_dataset has no such option


# ------------------------------------------------------------------ C6 / C7: options
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("freq_minutes", 0),
        ("freq_minutes", -10),
        ("freq_minutes", 10.5),
        ("freq_minutes", True),
        ("freq_minutes", "10"),
        ("steps_per_day", 0),
        ("steps_per_day", -144),
    ],
)
def test_steps_must_be_positive_whole_numbers(option: str, value: Any) -> None:
    text = _refusal(np.zeros((T, 2)), **{option: value})
    assert f"{option} must be a positive whole number" in text
    assert f"found {value!r}" in text and f"{option}=" in text


def test_a_step_and_a_day_count_that_disagree_are_refused() -> None:
    text = _refusal(np.zeros((T, 2)), freq_minutes=7, steps_per_day=100)
    assert "freq_minutes=7 and steps_per_day=100 disagree" in text
    assert _quiet(np.zeros((T, 2)), freq_minutes=10, steps_per_day=144).steps_per_day == 144


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"null_value": "abc"}, "null_value must be a finite number"),
        ({"null_value": float("inf")}, "null_value must be a finite number"),
        ({"non_finite": "bogus"}, "non_finite must be one of error, mask, null, found 'bogus'"),
    ],
)
def test_bad_missing_value_options_are_refused_on_clean_data(
    options: dict[str, Any], expected: str
) -> None:
    for data in (np.zeros((T, 2)), _wide()):  # no NaN to trip over later
        assert expected in _refusal(data, **options)


def test_null_value_as_a_number_in_text_or_numpy() -> None:
    for value in ("-200", np.float32(-200), -200):
        assert _quiet(np.zeros((T, 2)), null_value=value).null_value == -200.0


# ------------------------------------------------------------------ C14: flags
@pytest.mark.parametrize(
    "make",
    [
        lambda col: col > 20,
        lambda col: (col > 20).astype("boolean"),
        lambda col: (col > 20).astype(object),
        lambda col: col.astype(object).where(col.index != col.index[4], True),
    ],
    ids=["bool", "boolean", "object-bools", "one-object-bool"],
)
def test_flags_are_refused_whatever_their_dtype(make: Any) -> None:
    df = _wide()
    df["s0"] = make(df["s0"])
    text = _refusal(df)
    assert text.startswith("mine: expected numeric values in column 's0'")
    assert "flags are not readings" in text


# ------------------------------------------------------------------ end to end
@pytest.mark.filterwarnings("ignore:no prediction intervals")
def test_a_run_forecasts_a_text_index_on_the_calendar(tmp_path: Path) -> None:
    import linearcast

    frame = _wide(2).set_axis(pd.date_range("2024-01-01", periods=T, freq="h"), axis=0)
    frame["date"] = frame.index  # set_index("date", drop=False): not a series
    with pytest.warns(UserWarning, match="same times as the index"):
        run = linearcast.fit(model="last-value", data=frame, protocol="ltsf", out_dir=str(tmp_path),
                             plots=False, accelerator="cpu",
                             sets=["protocol_overrides.in_steps=12",
                                   "protocol_overrides.out_steps=3"])  # fmt: skip
    text = frame.drop(columns="date").tail(12)
    text.index = text.index.astype(str)  # as pd.read_csv(index_col=0) gives it
    future = run.forecast(text, accelerator="cpu")
    assert set(future["unique_id"]) == {"s0", "s1"}
    expected = pd.date_range(frame.index[-1], periods=4, freq="h")[1:]
    assert sorted(set(future["ds"])) == list(expected)
