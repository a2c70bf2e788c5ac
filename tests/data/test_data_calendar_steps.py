"""Month, quarter and year steps in a CSV are a calendar, continued as one (not 31 days on)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import load
from linearcast.data.frames import future_timestamps


def _csv(tmp_path: Path, index: pd.DatetimeIndex, name: str = "date") -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(50, 5, (len(index), 2)), index=index, columns=["a", "b"])
    path = tmp_path / "d.csv"
    frame.rename_axis(name).to_csv(path)
    return path


@pytest.mark.parametrize(
    ("freq", "name"), [("MS", "date"), ("ME", "date"), ("QS-JAN", "ds"), ("YS-JAN", "timestamp")]
)
def test_calendar_steps_are_read_without_a_warning_and_continued(
    tmp_path: Path, freq: str, name: str
) -> None:
    index = pd.date_range("2023-01-01", periods=30, freq=freq)
    path = _csv(tmp_path, index, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "steps differ from the usual step" was said here
        ds = load(path)
    assert ds.meta["freq"] == index.freqstr and ds.freq_minutes is None
    expected = pd.date_range(index[-1], periods=4, freq=freq)[1:]
    future = future_timestamps(ds, 3)
    assert future is not None and list(future) == list(expected)


def test_equal_steps_keep_their_minutes(tmp_path: Path) -> None:
    ds = load(_csv(tmp_path, pd.date_range("2023-01-02", periods=30, freq="W-MON")))
    assert ds.freq_minutes == 7 * 24 * 60 and "freq" not in ds.meta


def test_gaps_are_still_said(tmp_path: Path) -> None:
    index = pd.date_range("2023-01-01", periods=40, freq="h").delete([5, 6, 20])
    with pytest.warns(UserWarning, match="2 of 36 steps differ from the usual step"):
        ds = load(_csv(tmp_path, index))
    assert ds.freq_minutes == 60 and "freq" not in ds.meta
