"""What the metrics measured: the fraction of targets masked, and MAPE's floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from linearcast.data import TimeSeriesDataset, get_protocol
from linearcast.metrics import StreamingEvaluator


def test_masked_fraction_counts_every_target_once() -> None:
    target = torch.ones(4, 12, 5)
    target[:, :, :2] = 0.0  # 2 of 5 series null
    ev = StreamingEvaluator()
    ev.update(target + 1.0, target)
    assert ev.masked_fraction == pytest.approx(0.4)
    ev.update(torch.ones(2, 12, 5), torch.ones(2, 12, 5))  # nothing masked in this batch
    assert ev.masked_fraction == pytest.approx(0.4 * 240 / 360)
    assert StreamingEvaluator().masked_fraction == 0.0


def test_mape_floor_leaves_out_near_zero_targets() -> None:
    target = torch.full((1, 12, 4), 100.0)
    target[0, :, 0] = 1e-3  # near zero: |e / y| would be 1000 for an error of 1
    pred = target + 1.0
    raw = StreamingEvaluator(null_value=math.nan)
    raw.update(pred, target)
    floored = StreamingEvaluator(null_value=math.nan, mape_floor=0.1)
    floored.update(pred, target)
    assert raw.compute()["overall"]["MAPE"] > 1000  # dominated by the near-zero targets
    assert floored.compute()["overall"]["MAPE"] == pytest.approx(1.0)  # 1 / 100, in %
    # MAE and RMSE still score every valid target
    assert floored.compute()["overall"]["MAE"] == raw.compute()["overall"]["MAE"]
    assert raw.compute()["overall"]["MAE"] == pytest.approx(1.0, rel=1e-6)


def test_protocol_sets_an_automatic_mape_floor_from_the_training_targets() -> None:
    values = np.full((600, 3, 1), 50.0, dtype=np.float32)
    values[::7] = 0.0  # nulls do not lower the mean
    prep = get_protocol("pems").prepare(TimeSeriesDataset(values, name="x", steps_per_day=24))
    assert prep.mape_floor == pytest.approx(0.05)
    fixed = get_protocol("pems", mape_floor=2.0).prepare(
        TimeSeriesDataset(values, name="x", steps_per_day=24)
    )
    assert fixed.mape_floor == 2.0
    assert prep.masked_fraction("train") == pytest.approx(1 / 7, abs=0.01)


def test_mape_floor_leaves_out_targets_at_the_floor_and_may_be_zero() -> None:
    target = torch.tensor([[[0.5], [2.0]]])  # [B=1, T=2, N=1]: one target exactly at the floor
    ev = StreamingEvaluator(null_value=math.nan, mape_floor=0.5, horizons=())
    ev.update(target + 1.0, target)
    assert ev.compute()["overall"]["MAPE"] == pytest.approx(50.0)  # only |1 / 2|, in %
    no_floor = StreamingEvaluator(null_value=math.nan, mape_floor=0.0, horizons=())
    no_floor.update(target + 1.0, target)
    assert no_floor.compute()["overall"]["MAPE"] == pytest.approx(125.0)  # (200 + 50) / 2
    with pytest.raises(ValueError, match="mape_floor"):
        StreamingEvaluator(mape_floor=-1.0)
