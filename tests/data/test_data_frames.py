"""Frames and arrays as datasets (``linearcast.data.frames``): layouts, checks, the calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linearcast.data import TimeSeriesDataset, as_dataset, describe_data, future_timestamps
from linearcast.data.frames import check_regular_end
from linearcast.errors import DataError


def _wide(
    t: int = 30, n: int = 3, freq: str = "5min", start: str = "2024-03-04 22:00"
) -> pd.DataFrame:
    idx = pd.date_range(start, periods=t, freq=freq)
    values = np.arange(t * n, dtype=np.float64).reshape(t, n)
    return pd.DataFrame(values, index=idx, columns=[f"s{i}" for i in range(n)])


def _long(wide: pd.DataFrame) -> pd.DataFrame:
    long = wide.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id",
                                                    value_name="y")  # fmt: skip
    return long[["unique_id", "ds", "y"]]


def test_wide_frame_keeps_values_names_and_calendar() -> None:
    df = _wide()
    ds = as_dataset(df)
    assert ds.shape == (30, 3, 1)
    np.testing.assert_array_equal(ds.values[..., 0], df.to_numpy(dtype=np.float32))
    assert ds.node_names == ["s0", "s1", "s2"]
    assert ds.freq_minutes == 5 and ds.steps_per_day == 288
    # 22:00 on a Monday: time of day 22/24, day 0; two hours later it is Tuesday 00:00
    assert ds.time_of_day()[0] == pytest.approx(22 / 24)
    assert ds.day_of_week()[0] == 0 and ds.day_of_week()[24] == 1
    assert ds.time_of_day()[24] == 0.0
    assert describe_data(df) == "<DataFrame [30, 3]>"


def test_time_column_instead_of_index() -> None:
    df = _wide().rename_axis("date").reset_index()
    ds = as_dataset(df)
    assert ds.shape == (30, 3, 1) and ds.timestamps is not None
    assert ds.node_names == ["s0", "s1", "s2"]


def test_long_frame_equals_the_wide_one_in_any_row_order() -> None:
    wide = _wide()
    long = _long(wide).sample(frac=1.0, random_state=0)  # shuffled rows
    ds = as_dataset(long)
    # series in order of first appearance in the long frame
    order = list(pd.unique(long["unique_id"]))
    assert ds.node_names == order
    np.testing.assert_array_equal(ds.values[..., 0], wide[order].to_numpy(dtype=np.float32))
    assert ds.freq_minutes == 5
    assert describe_data(long) == "<DataFrame long [30, 3]>"


def test_long_frame_with_a_missing_pair_names_it() -> None:
    long = _long(_wide())
    dropped = long[~((long["unique_id"] == "s1") & (long["ds"] == long["ds"].iloc[5]))]
    with pytest.raises(DataError, match=r"1 missing \(unique_id, ds\) pairs.*'s1'"):
        as_dataset(dropped)


def test_long_frame_nan_value_is_a_missing_reading_not_a_missing_row() -> None:
    long = _long(_wide())
    long.loc[3, "y"] = np.nan
    with pytest.raises(DataError, match="NaN"):  # the usual non-finite rule, not "missing pair"
        as_dataset(long)
    with pytest.warns(UserWarning, match="1 NaN"):
        ds = as_dataset(long, non_finite="null", null_value=0.0)
    assert (ds.values == 0.0).sum() == 2  # the NaN and the series' own first value 0.0


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda df: pd.concat([df, df.iloc[[3]]]).sort_index(), "unique timestamps"),
        (lambda df: df.iloc[::-1], "sorted in increasing order"),
        (lambda df: df.drop(df.index[10]), r"regular grid.*1 of 28 steps"),
        (lambda df: df.assign(s1=["x"] * len(df)), "numeric values in column 's1'"),
    ],
)
def test_bad_frames_are_one_sentence(mangle: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        as_dataset(mangle(_wide()))  # type: ignore[operator]


def test_array_with_start_and_step() -> None:
    arr = np.random.default_rng(0).normal(size=(50, 4, 2))
    ds = as_dataset(arr, freq_minutes=60, start="2024-01-01 06:00")
    assert ds.shape == (50, 4, 2) and ds.steps_per_day == 24
    assert ds.time_of_day()[0] == pytest.approx(0.25)
    future = future_timestamps(ds, 3)
    assert future is not None
    assert list(future) == list(pd.date_range("2024-01-03 08:00", periods=3, freq="h"))
    with pytest.raises(DataError, match=r"\[T, N\] or \[T, N, C\]"):
        as_dataset(arr[None])
    with pytest.raises(DataError, match="numeric"):
        as_dataset(np.array([["a", "b"]]))


def test_timestamps_and_time_options_together_are_refused() -> None:
    with pytest.raises(DataError, match="drop the options"):
        as_dataset(_wide(), freq_minutes=5)


def test_future_continues_the_calendar_including_months() -> None:
    ds = as_dataset(_wide(t=30))
    future = future_timestamps(ds, 4)
    assert future is not None
    expected = pd.date_range("2024-03-04 22:00", periods=34, freq="5min")[30:]
    assert list(future) == list(expected)
    monthly = _wide(
        t=14, freq="MS", start="2024-01-01"
    )  # months differ in length but are a regular calendar
    mds = as_dataset(monthly)
    assert mds.freq_minutes is None and mds.meta["freq"] == "MS"
    nxt = future_timestamps(mds, 2)
    assert nxt is not None and list(nxt) == [pd.Timestamp("2025-03-01"), pd.Timestamp("2025-04-01")]
    no_time = as_dataset(np.zeros((5, 2)))
    assert future_timestamps(no_time, 3) is None


def test_gap_at_the_end_is_refused() -> None:
    idx = pd.date_range("2024-01-01", periods=20, freq="h").delete(
        17
    )  # 1 step missing near the end
    ds = TimeSeriesDataset(values=np.zeros((19, 2, 1), np.float32), timestamps=idx, name="gap")
    check_regular_end(ds, 1)  # the last step is on the grid
    with pytest.raises(DataError, match=r"last 4 steps.*0 days 02:00:00"):
        check_regular_end(ds, 4)
