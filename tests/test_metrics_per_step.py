"""Per-step metrics: each step by hand, and their weighted aggregate is the overall result."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from linearcast.metrics import StreamingEvaluator


def _batches(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Three batches [B, 12, 5, 1] with nulls whose share grows with the step."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b in (3, 5, 2):
        target = 50 + 20 * torch.rand(b, 12, 5, 1, generator=gen, dtype=torch.float64)
        nulls = (
            torch.rand(b, 12, 5, 1, generator=gen) < torch.linspace(0, 0.6, 12)[None, :, None, None]
        )
        target[nulls] = 0.0
        target[0, 4, 0, 0] = 0.5  # under a MAPE floor of 1: scored by MAE, not by MAPE
        pred = target + torch.randn(b, 12, 5, 1, generator=gen, dtype=torch.float64) * (
            1 + torch.arange(12)[None, :, None, None]
        )
        out.append((pred, target))
    return out


def test_per_step_values_match_a_hand_computation_and_the_horizons() -> None:
    batches = _batches()
    ev = StreamingEvaluator(horizons=(3, 6, 12), mape_floor=1.0)
    for pred, target in batches:
        ev.update(pred, target)
    per = ev.compute_per_step()
    assert all(len(v) == 12 for v in per.values())
    pred = torch.cat([p for p, _ in batches]).numpy()[..., 0]
    target = torch.cat([t for _, t in batches]).numpy()[..., 0]
    for step in (0, 4, 11):
        p, t = pred[:, step], target[:, step]
        valid = t != 0
        err = (p - t)[valid]
        assert per["count"][step] == valid.sum()
        assert per["MAE"][step] == pytest.approx(np.abs(err).mean())
        assert per["RMSE"][step] == pytest.approx(math.sqrt((err**2).mean()))
        ape = valid & (np.abs(t) > 1.0)
        assert per["MAPE"][step] == pytest.approx(100 * np.abs((p - t)[ape] / t[ape]).mean())
    res = ev.compute()
    for h in (3, 6, 12):
        for name in ("MAE", "RMSE", "MAPE", "MSE"):
            assert per[name][h - 1] == pytest.approx(res[f"horizon_{h}"][name], rel=1e-12)
    assert per["MAE"][11] > per["MAE"][0]  # the errors grow with the step, as generated


def test_per_step_values_aggregate_to_the_overall_metrics_with_their_counts() -> None:
    ev = StreamingEvaluator(mape_floor=1.0)
    for pred, target in _batches(3):
        ev.update(pred, target)
    per = {k: np.asarray(v) for k, v in ev.compute_per_step().items()}
    overall = ev.compute()["overall"]
    w, w_ape = per["count"], per["count_MAPE"]
    assert len(set(w.tolist())) > 1  # unequal weights: a plain mean would not do
    assert (w * per["MAE"]).sum() / w.sum() == pytest.approx(overall["MAE"], rel=1e-12)
    assert (w * per["MSE"]).sum() / w.sum() == pytest.approx(overall["MSE"], rel=1e-12)
    assert math.sqrt((w * per["RMSE"] ** 2).sum() / w.sum()) == pytest.approx(
        overall["RMSE"], rel=1e-12
    )
    assert (w_ape * per["MAPE"]).sum() / w_ape.sum() == pytest.approx(overall["MAPE"], rel=1e-12)
    assert per["MAE"].mean() != pytest.approx(overall["MAE"], rel=1e-6)


def test_per_step_is_empty_before_any_batch() -> None:
    per = StreamingEvaluator().compute_per_step()
    assert set(per) == {"MAE", "RMSE", "MAPE", "MSE", "count", "count_MAPE"}
    assert all(v == [] for v in per.values())
