"""What ``Protocol.prepare`` derives from the training rows besides the scaler: MAPE's automatic
floor and the fraction of targets the metrics mask, both read a block at a time."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from linearcast.data import TimeSeriesDataset, get_protocol
from linearcast.data import prepared as prepared_module
from linearcast.errors import DataError
from linearcast.metrics import NULL_ATOL


def _values(null: float, seed: int = 0) -> np.ndarray:
    """[600, 3, 1] float32 with thirds (float32 sums of them lose digits), negative entries,
    NaN, exact nulls, entries within NULL_ATOL of the null and entries just outside it."""
    rng = np.random.default_rng(seed)
    v = (rng.integers(1, 300, size=(600, 3, 1)) / 3.0).astype(np.float32)
    v[1::5, 0] *= -1.0
    v[0, :] = 1e4  # the first row weighs on the mean: a pass that skips it is seen
    v[3::11, 1] = np.nan
    v[::7, 2] = null
    v[5::13, 0] = null + 0.5 * NULL_ATOL  # masked by the metrics
    v[6::13, 0] = null + 1.5 * NULL_ATOL  # not masked (nor by a relative tolerance at null 5)
    return v


def _expected_mean_abs(rows: np.ndarray, null: float) -> float:
    r = rows.astype(np.float64)
    masked = np.isnan(r) | (np.abs(r - null) <= NULL_ATOL)
    return float(np.abs(r[~masked]).mean())


@pytest.mark.parametrize("null", [0.0, 5.0, math.nan])
@pytest.mark.parametrize("chunk", [7, 1 << 21])
def test_mape_floor_is_a_thousandth_of_the_mean_unmasked_training_target(
    monkeypatch: pytest.MonkeyPatch, null: float, chunk: int
) -> None:
    # a chunk of 7 entries reads 2 rows of 3 series at a time: 300 blocks, the last one short
    monkeypatch.setattr(prepared_module, "_CHUNK_ENTRIES", chunk)
    values = _values(0.0 if math.isnan(null) else null)
    ds = TimeSeriesDataset(values, name="x", steps_per_day=24, null_value=null)
    prep = get_protocol("pems", null_value=None).prepare(ds)
    a, b = prep.split_rows["train"]
    expected = _expected_mean_abs(values[a:b, :, 0], null)
    # accumulated in float64: float32 sums of the thirds would be off by ~1e-7
    assert prep.mape_floor == pytest.approx(1e-3 * expected, rel=1e-12)


def test_mape_floor_of_training_rows_without_a_valid_target_is_the_null_tolerance() -> None:
    rows = np.full((5, 4), np.nan, dtype=np.float32)
    assert prepared_module._mean_abs(rows, 0.0) == 0.0
    assert prepared_module._mean_abs(np.zeros((5, 4), np.float32), 0.0) == 0.0


@pytest.mark.parametrize("null", [0.0, 5.0])
@pytest.mark.parametrize("chunk", [7, 1 << 21])
def test_masked_fraction_counts_nan_and_null_targets_of_each_part(
    monkeypatch: pytest.MonkeyPatch, null: float, chunk: int
) -> None:
    monkeypatch.setattr(prepared_module, "_CHUNK_ENTRIES", chunk)
    values = _values(null)
    values[450:, 1] = null  # the test part masks more than the others
    ds = TimeSeriesDataset(values, name="x", steps_per_day=24, null_value=null)
    prep = get_protocol("pems", null_value=None).prepare(ds)
    seen = {}
    for part in ("train", "val", "test"):
        a, b = prep.split_rows[part]
        r = values[a:b, :, 0].astype(np.float64)
        expected = float((np.isnan(r) | (np.abs(r - null) <= NULL_ATOL)).mean())
        seen[part] = prep.masked_fraction(part)
        assert seen[part] == pytest.approx(expected, rel=1e-12), part
    assert seen["test"] > seen["train"] + 0.1
    assert prep.masked_fraction() == seen["test"]  # the default part is the test part
    with pytest.raises(KeyError):
        prep.masked_fraction("validation")
    # a part that owns no rows (a PreparedData put together by hand) masks nothing
    empty = dataclasses.replace(prep, split_rows={**prep.split_rows, "test": (10, 10)})
    assert empty.masked_fraction("test") == 0.0


def test_time_features_changed_after_construction_are_checked_before_windows() -> None:
    values = np.ones((600, 3, 1), dtype=np.float32)
    ds = TimeSeriesDataset(values, name="x", steps_per_day=24, path=Path("flows.npz"))
    ds.dow_values = np.full(600, 9)  # checked at construction, changed afterwards
    with pytest.raises(DataError, match=r"flows\.npz.*day-of-week"):
        get_protocol("pems").prepare(ds)
    ds.dow_values = None
    ds.tod_values = np.full(600, 3.0, dtype=np.float32)
    with pytest.raises(DataError, match=r"flows\.npz.*time-of-day"):
        get_protocol("pems").prepare(ds)
