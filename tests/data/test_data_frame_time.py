"""A time column of numbers in an in-memory frame is read as the CSV readers read one: epoch
times in the unit their size tells (with a warning saying so), ``time_unit`` when given, and
numbers that fit no unit refused naming ``time_unit`` -- never nanoseconds since 1970 silently."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from linearcast.data import as_dataset
from linearcast.errors import DataError

T = 24
DATES = pd.date_range("2024-03-01", periods=T, freq="h")
SECONDS = DATES.as_unit("s").asi8  # int64 epoch seconds


def _wide(times: object, column: str = "ds") -> pd.DataFrame:
    values = np.arange(T * 2, dtype=np.float64).reshape(T, 2)
    return pd.DataFrame({column: times, "a": values[:, 0], "b": values[:, 1]})


def _long(times: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": np.repeat(["a", "b"], T),
            "ds": np.tile(times, 2),
            "y": np.arange(2 * T, dtype=np.float64),
        }
    )


@pytest.mark.parametrize(
    ("unit", "scale"), [("seconds", 1), ("milliseconds", 10**3), ("microseconds", 10**6)]
)
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_epoch_numbers_read_in_the_unit_their_size_tells(
    layout: str, unit: str, scale: int
) -> None:
    times = SECONDS * scale
    data = _wide(times) if layout == "wide" else _long(times)
    with pytest.warns(UserWarning, match=rf"read as {unit} since 1970-01-01 UTC by their size"):
        ds = as_dataset(data, name="mine")
    assert list(ds.timestamps) == list(DATES)
    assert ds.freq_minutes == 60
    assert f"read as {unit}" in ds.meta["time_note"]


def test_the_warning_names_the_data_column_and_fix() -> None:
    with pytest.warns(UserWarning) as rec:
        as_dataset(_wide(SECONDS), name="mine")
    text = " ".join(str(w.message) for w in rec)
    assert text.startswith("mine: the time column 'ds' holds numbers")
    assert "time_unit=s" in text


def test_time_unit_wins_over_the_size() -> None:
    # epoch seconds of 1970..: too small for a unit by size, but time_unit says it
    small = (DATES - pd.Timestamp("2024-03-01")).as_unit("s").asi8 + 3600
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said by the caller: no warning
        ds = as_dataset(_wide(small), time_unit="s")
    assert ds.timestamps[0] == pd.Timestamp("1970-01-01 01:00")
    assert (np.diff(ds.timestamps) == pd.Timedelta(hours=1)).all()
    # and it wins over a size that tells another unit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ms = as_dataset(_wide(SECONDS * 1000), time_unit="ms")
    assert list(ms.timestamps) == list(DATES)


def test_numbers_that_fit_no_unit_are_refused_naming_time_unit() -> None:
    with pytest.raises(DataError) as err:
        as_dataset(_wide(np.arange(T) * 3600), name="mine")
    text = str(err.value)
    assert text.startswith("mine: expected times in 'ds', found numbers 0 .. 82800")
    assert "time_unit=s" in text and "\n" not in text


def test_a_bad_time_unit_is_refused() -> None:
    with pytest.raises(DataError, match=r"time_unit must be s, ms, us or ns .* found 'h'"):
        as_dataset(_wide(SECONDS), time_unit="h")


def test_named_time_column_and_datetime_index_are_unchanged() -> None:
    ds = as_dataset(_wide(SECONDS, column="when"), time_column="when", time_unit="s")
    assert list(ds.timestamps) == list(DATES)
    frame = _wide(DATES).set_index("ds")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # datetimes need no note
        indexed = as_dataset(frame)
    assert list(indexed.timestamps) == list(DATES)
    assert "time_note" not in indexed.meta


def test_time_options_reach_the_api_signature() -> None:
    import inspect

    params = inspect.signature(as_dataset).parameters
    assert {"time_unit", "time_format", "dayfirst"} <= set(params)
