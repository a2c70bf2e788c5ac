"""The table layouts users have: long CSVs (any column names), time split over Date + Time or
year/month/day/hour columns, text and row-number columns, and several files (one per station)
stacked into one dataset."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from linearcast.data import TimeSeriesDataset, load
from linearcast.data.readers import sniff_format
from linearcast.errors import DataError

TS = pd.date_range("2020-01-01", periods=48, freq="h")


def _long(path: Path, names: tuple[str, str, str] = ("unique_id", "ds", "y")) -> pd.DataFrame:
    """A long table of 3 series x 48 hours, rows shuffled; returns the wide truth."""
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(48, 3)).round(4), index=TS, columns=["s1", "s2", "s3"])
    long = wide.rename_axis("t").reset_index().melt(id_vars="t", var_name="id", value_name="v")
    long = long[["id", "t", "v"]].set_axis(list(names), axis=1)
    long.iloc[rng.permutation(len(long))].to_csv(path, index=False)
    return wide


def _station_file(path: Path, station: str, ts: pd.DatetimeIndex = TS, seed: int = 0) -> None:
    """One station's file in the layout of the Beijing multi-site set (PRSA_Data_*.csv)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "No": np.arange(1, len(ts) + 1),
            "year": ts.year,
            "month": ts.month,
            "day": ts.day,
            "hour": ts.hour,
            "PM2.5": rng.uniform(0, 300, len(ts)).round(1),
            "TEMP": rng.normal(10, 5, len(ts)).round(1),
            "wd": "NW",
            "station": station,
        }
    )
    frame.loc[3, "PM2.5"] = np.nan  # a real gap: delivered as NaN
    frame.to_csv(path, index=False)


def _quiet_load(*args: Any, **kwargs: Any) -> TimeSeriesDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load(*args, **kwargs)


# ---------------------------------------------------------------------- long tables
def test_long_csv_is_recognised_and_pivoted_by_name(tmp_path: Path) -> None:
    """Before: sniffed as ltsf/matrix_csv and refused ("expected numeric values in column
    'unique_id'")."""
    path = tmp_path / "forecasts.csv"
    wide = _long(path)
    assert sniff_format(path) == "table"
    ds = load(path)
    assert ds.shape == (48, 3, 1) and sorted(ds.node_names or []) == ["s1", "s2", "s3"]
    assert ds.timestamps is not None and ds.timestamps.equals(TS) and ds.freq_minutes == 60
    for i, name in enumerate(ds.node_names or []):
        np.testing.assert_allclose(ds.values[:, i, 0], wide[name].to_numpy(), atol=1e-6)


@pytest.mark.parametrize("order", [("station", "time", "PM2.5"), ("time", "station", "PM2.5")])
def test_long_csv_with_other_column_names_via_options(
    tmp_path: Path, order: tuple[str, str, str]
) -> None:
    """station/time/PM2.5 in any column order (time first is what the ltsf reader claims)."""
    path = tmp_path / "pm.csv"
    wide = _long(path, ("station", "time", "PM2.5"))
    frame = pd.read_csv(path)[list(order)]
    frame.to_csv(path, index=False)
    ds = load(path, id_column="station", time_column="time", value_column="PM2.5")
    assert ds.meta["format"] == "table" and ds.channel_names == ["PM2.5"]
    assert ds.timestamps is not None and ds.timestamps.equals(TS)
    got = pd.DataFrame(ds.values[..., 0], columns=ds.node_names)[list(wide.columns)]
    np.testing.assert_allclose(got.to_numpy(), wide.to_numpy(), atol=1e-5)


def test_long_csv_with_a_missing_pair_names_it(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    _long(path)
    frame = pd.read_csv(path)
    frame = frame[~((frame.unique_id == "s2") & (frame.ds == str(TS[5])))]
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"gap\.csv.*missing.*'s2'") as err:
        load(path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- time columns
def test_date_and_time_columns_make_one_timestamp(tmp_path: Path) -> None:
    """The UCI AirQuality layout: Date, Time, then the series (-200 is its sentinel)."""
    path = tmp_path / "aq.csv"
    frame = pd.DataFrame(
        {"Date": TS.strftime("%Y-%m-%d"), "Time": TS.strftime("%H:%M:%S"), "CO(GT)": 1.5}
    )
    frame["NOx(GT)"] = np.arange(48.0)
    frame.loc[2, "CO(GT)"] = -200
    frame.to_csv(path, index=False)
    ds = load(path, null_value=-200)
    assert ds.timestamps is not None and ds.timestamps.equals(TS)
    assert ds.node_names == ["CO(GT)", "NOx(GT)"] and ds.null_value == -200
    assert ds.values[2, 0, 0] == -200 and ds.values[47, 1, 0] == 47


@pytest.mark.parametrize("minute", [False, True])
def test_year_month_day_hour_columns_make_one_timestamp(tmp_path: Path, minute: bool) -> None:
    ts = pd.date_range("2013-03-01 00:30" if minute else "2013-03-01", periods=48, freq="h")
    parts = {"year": ts.year, "month": ts.month, "day": ts.day, "hour": ts.hour}
    if minute:
        parts["minute"] = ts.minute
    path = tmp_path / "parts.csv"
    pd.DataFrame({**parts, "pm": np.arange(48.0)}).to_csv(path, index=False)
    ds = load(path)
    assert ds.timestamps is not None and ds.timestamps.equals(ts) and ds.node_names == ["pm"]


def test_time_columns_given_by_option(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    frame = pd.DataFrame({"v": np.arange(48.0), "Tag": TS.strftime("%Y-%m-%d"), "Uhr": TS.hour})
    frame["Uhr"] = frame["Uhr"].astype(str) + ":00"
    frame.to_csv(path, index=False)
    ds = load(path, format="table", time_column="[Tag, Uhr]")
    assert ds.timestamps is not None and ds.timestamps.equals(TS) and ds.node_names == ["v"]


# ---------------------------------------------------------------------- text and row numbers
def test_a_text_column_is_refused_naming_the_drop_option(tmp_path: Path) -> None:
    path = tmp_path / "PRSA_Data_X.csv"
    _station_file(path, "X")
    with pytest.raises(DataError) as err:
        _quiet_load(path, non_finite="mask")
    text = str(err.value)
    assert "PRSA_Data_X.csv" in text and "'wd'" in text and "data_options.drop=[wd]" in text
    assert "data_options.columns=" in text and "\n" not in text
    ds = _quiet_load(path, drop="[wd]", non_finite="mask")
    assert ds.node_names == ["PM2.5", "TEMP"]


def test_a_row_number_column_is_left_out_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "numbered.csv"
    pd.DataFrame({"No": np.arange(1, 49), "date": TS, "a": 2.0}).to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"column 'No' numbers the rows \(1\.\.48\)"):
        ds = load(path)
    assert ds.node_names == ["a"]
    # a column named No that is not 1..T is a series
    pd.DataFrame({"No": np.arange(48) * 3.0, "date": TS, "a": 2.0}).to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert load(path).node_names == ["No", "a"]


def test_beijing_pm25_real_file(shared_data: Path) -> None:
    """PRSA: year/month/day/hour, a row-number column, text cbwd, NA gaps in pm2.5."""
    path = shared_data / "air_quality" / "PRSA_data_2010.1.1-2014.12.31.csv"
    with pytest.raises(DataError, match=r"'cbwd'.*data_options\.drop=\[cbwd\]"):
        _quiet_load(path)
    ds = _quiet_load(path, drop="[cbwd]", non_finite="mask")
    assert ds.shape == (43824, 10, 1)  # 16 columns - No - 4 time parts - cbwd
    assert ds.timestamps is not None and ds.timestamps[0] == pd.Timestamp("2010-01-01 00:00")
    assert ds.freq_minutes == 60 and "No" not in (ds.node_names or [])
    pm = (ds.node_names or []).index("pm2.5")
    assert int(np.isnan(ds.values[:, pm, 0]).sum()) == 2067


def test_air_quality_real_file(shared_data: Path) -> None:
    """UCI AirQuality: separate Date and Time columns; -200 marks a missing reading."""
    ds = load(shared_data / "air_quality" / "AirQuality.csv", null_value=-200)
    assert ds.shape == (9357, 13, 1) and ds.freq_minutes == 60 and ds.null_value == -200
    assert ds.timestamps is not None
    assert ds.timestamps[0] == pd.Timestamp("2004-03-10 18:00")
    assert ds.timestamps[-1] == pd.Timestamp("2005-04-04 14:00")
    assert (ds.values == -200).any()


# ---------------------------------------------------------------------- several files
@pytest.fixture
def stations(tmp_path: Path) -> Path:
    for i, name in enumerate(["Aotizhongxin", "Changping", "Dingling"]):
        _station_file(tmp_path / f"PRSA_Data_{name}_20130301-20170228.csv", name, seed=i)
    return tmp_path


def test_a_glob_stacks_one_series_per_file_and_column(stations: Path) -> None:
    pattern = str(stations / "PRSA_Data_*.csv")
    ds = _quiet_load(pattern, drop="[wd]", non_finite="mask")
    assert ds.shape == (48, 6, 1) and ds.name == "PRSA_Data"
    assert (ds.node_names or [])[:2] == ["Aotizhongxin/PM2.5", "Aotizhongxin/TEMP"]
    assert ds.timestamps is not None and ds.timestamps.equals(TS)
    truth = pd.read_csv(stations / "PRSA_Data_Changping_20130301-20170228.csv")
    np.testing.assert_allclose(ds.values[:, 2, 0], truth["PM2.5"], atol=1e-4)


def test_a_value_column_gives_one_series_per_station(stations: Path) -> None:
    ds = _quiet_load(str(stations / "PRSA_Data_*.csv"), value_column="PM2.5", non_finite="mask")
    assert ds.node_names == ["Aotizhongxin", "Changping", "Dingling"]
    assert np.isnan(ds.values[3]).all()


def test_several_paths_and_station_names_from_file_stems(tmp_path: Path) -> None:
    for name in ("north", "south"):
        pd.DataFrame({"date": TS, "pm": np.arange(48.0)}).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    ds = load([tmp_path / "north.csv", tmp_path / "south.csv"], value_column="pm")
    assert ds.node_names == ["north", "south"] and ds.shape == (48, 2, 1)
    assert ds.meta["files"] == [str(tmp_path / "north.csv"), str(tmp_path / "south.csv")]


def test_files_whose_times_differ_are_refused_naming_the_first(stations: Path) -> None:
    _station_file(stations / "PRSA_Data_Zz_1.csv", "Zz", ts=TS + pd.Timedelta(hours=1))
    _station_file(stations / "PRSA_Data_Zy_1.csv", "Zy", ts=TS[:40])
    with pytest.raises(DataError) as err:
        _quiet_load(str(stations / "PRSA_Data_*.csv"), value_column="PM2.5", non_finite="mask")
    text = str(err.value)
    # sorted: ...Dingling, Zy (short), Zz (shifted): Zy is the first that differs
    assert text.startswith(str(stations / "PRSA_Data_Zy_1.csv")) and "\n" not in text
    assert "40 steps" in text and "same times" in text


def test_a_pattern_that_matches_nothing_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no file matches this pattern"):
        load(str(tmp_path / "PRSA_*.csv"))


def test_an_existing_path_with_a_star_is_read_as_it_is(tmp_path: Path) -> None:
    star = tmp_path / "a*.csv"
    pd.DataFrame({"date": TS, "x": 1.0}).to_csv(star, index=False)
    pd.DataFrame({"date": TS, "y": 2.0}).to_csv(tmp_path / "ab.csv", index=False)
    ds = load(str(star))
    assert ds.node_names == ["x"] and "files" not in ds.meta
