"""Masked metrics against hand computations; the streaming evaluator's global weighting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from linearcast.errors import ConfigError, DataError
from linearcast.metrics import (
    StreamingEvaluator,
    get_loss,
    huber_loss,
    masked_mae,
    masked_mae_loss,
    masked_mape,
    masked_mse,
    masked_rmse,
    null_mask,
)

NAN = float("nan")


def test_hand_computation_with_zeros_and_nans() -> None:
    target = torch.tensor([[10.0, 0.0, 4.0], [NAN, 2.0, 1e-6]])
    pred = torch.tensor([[12.0, 5.0, 1.0], [3.0, 3.0, 1.0]])
    # null 0: valid are 10, 4, 2 (0 and 1e-6 ≈ 0 within 5e-5; NaN always masked)
    assert masked_mae(pred, target).item() == pytest.approx((2 + 3 + 1) / 3)
    assert masked_mse(pred, target).item() == pytest.approx((4 + 9 + 1) / 3)
    assert masked_rmse(pred, target).item() == pytest.approx(math.sqrt(14 / 3))
    assert masked_mape(pred, target).item() == pytest.approx((2 / 10 + 3 / 4 + 1 / 2) / 3)
    # null NaN: the zeros count (the 0 target is excluded from MAPE only)
    assert masked_mae(pred, target, null_value=NAN).item() == pytest.approx(
        (2 + 5 + 3 + 1 + 1) / 5, rel=1e-5
    )
    assert masked_mape(pred, target, null_value=NAN).item() == pytest.approx((0.2 + 0.75 + 0.5) / 3)


def test_numpy_inputs_and_return_type() -> None:
    t = np.array([1.0, 2.0, 0.0])
    p = np.array([2.0, 2.0, 9.0])
    out = masked_mae(p, t)
    assert isinstance(out, torch.Tensor) and out.ndim == 0
    assert out.item() == pytest.approx(0.5)
    with pytest.raises(DataError, match=r"same shape, found \(3,\) and \(2,\)"):
        masked_mae(p, t[:2])


def test_nothing_valid_gives_zero_not_nan() -> None:
    t = torch.tensor([0.0, NAN, 0.0])
    p = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for fn in (masked_mae, masked_mse, masked_rmse, masked_mape):
        v = fn(p, t)
        assert v.item() == 0.0 and not torch.isnan(v)


def test_null_mask_matches_basicts_isclose() -> None:
    t = torch.tensor([0.0, 4e-5, 6e-5, -4e-5, NAN, 3.0])
    assert null_mask(t, 0.0).tolist() == [False, False, True, False, False, True]
    assert null_mask(t, NAN).tolist() == [True, True, True, True, False, True]


def test_loss_gradients_are_finite_with_nan_targets() -> None:
    t = torch.tensor([1.0, NAN, 0.0, 4.0])
    p = torch.tensor([2.0, 5.0, 3.0, 1.0], requires_grad=True)
    loss = masked_mae_loss(p, t)
    loss.backward()
    assert loss.item() == pytest.approx(2.0)
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert p.grad.tolist() == pytest.approx([0.5, 0.0, 0.0, -0.5])


def test_huber_matches_torch_and_masks_when_asked() -> None:
    p = torch.tensor([0.0, 3.0, -1.0, 2.0])
    t = torch.tensor([0.5, 0.0, 1.0, 2.0])
    ref = torch.nn.functional.huber_loss(p, t, delta=1.0)
    assert huber_loss(p, t).item() == pytest.approx(ref.item())  # STAEformer: unmasked
    masked = huber_loss(p, t, null_value=0.0)
    ref_m = torch.nn.functional.huber_loss(p[[0, 2, 3]], t[[0, 2, 3]], delta=1.0)
    assert masked.item() == pytest.approx(ref_m.item())
    assert get_loss("huber") is huber_loss
    with pytest.raises(ConfigError, match="unknown loss 'l7'"):
        get_loss("l7")


def _batch(seed: int, b: int = 5, t: int = 12, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(b, t, n, 1, generator=g) * 100
    y[torch.rand(b, t, n, 1, generator=g) < 0.2] = 0.0
    y[torch.rand(b, t, n, 1, generator=g) < 0.05] = NAN
    p = y.nan_to_num(50.0) + torch.randn(b, t, n, 1, generator=g) * 5
    return p, y


def test_evaluator_equals_global_hand_computation() -> None:
    p, y = _batch(0, b=20)
    ev = StreamingEvaluator()
    for i in range(0, 20, 3):  # uneven batches
        ev.update(p[i : i + 3], y[i : i + 3])
    res = ev.compute()
    assert set(res) == {"overall", "horizon_3", "horizon_6", "horizon_12"}
    pn, yn = p.double().numpy(), y.double().numpy()
    m = ~np.isnan(yn) & ~np.isclose(yn, 0, atol=5e-5, rtol=0)
    e = pn - yn
    assert res["overall"]["MAE"] == pytest.approx(np.abs(e[m]).mean())
    assert res["overall"]["RMSE"] == pytest.approx(np.sqrt((e[m] ** 2).mean()))
    assert res["overall"]["MAPE"] == pytest.approx(100 * np.abs(e[m] / yn[m]).mean())
    h3 = m[:, 2]
    assert res["horizon_3"]["MAE"] == pytest.approx(np.abs(e[:, 2][h3]).mean())
    assert res["horizon_12"]["MSE"] == pytest.approx((e[:, 11][m[:, 11]] ** 2).mean())
    assert ev.count == int(m.sum())
    # and equal to the one-shot functional metrics (MAPE as a fraction there)
    assert res["overall"]["MAE"] == pytest.approx(masked_mae(p, y).item(), rel=1e-5)
    assert res["overall"]["MAPE"] == pytest.approx(100 * masked_mape(p, y).item(), rel=1e-5)


def test_evaluator_mape_skips_zero_targets_under_a_nan_null() -> None:
    # ett/ltsf protocols (null NaN): a zero is a real reading for MAE/RMSE but has no percentage
    # error; one zero let into MAPE makes it infinite
    target = torch.tensor([[[10.0, 0.0], [NAN, 4.0]], [[2e-5, 5.0], [-2.0, 1.0]]])  # [B, T, N]
    pred = torch.tensor([[[12.0, 3.0], [7.0, 5.0]], [[1.0, 4.0], [-1.0, 1.0]]])
    ev = StreamingEvaluator(horizons=(1, 2), null_value=NAN)
    ev.update(pred, target)
    res = ev.compute()
    # valid (not NaN): 10, 0, 2e-5, 5 at step 1; 4, -2, 1 at step 2; MAPE skips 0 and 2e-5
    assert res["overall"]["MAE"] == pytest.approx((2 + 3 + (1 - 2e-5) + 1 + 1 + 1 + 0) / 7)
    assert res["overall"]["MAPE"] == pytest.approx(100 * (0.2 + 0.2 + 0.25 + 0.5 + 0.0) / 5)
    assert res["horizon_1"]["MAPE"] == pytest.approx(100 * (0.2 + 0.2) / 2)
    assert res["overall"]["MAPE"] == pytest.approx(100 * masked_mape(pred, target, NAN).item())
    assert ev.sums()[4].tolist() == [2.0, 3.0]  # the MAPE counts per step


def test_batch_size_does_not_change_the_result() -> None:
    p, y = _batch(1, b=24)
    results = []
    for bs in (1, 5, 24):
        ev = StreamingEvaluator()
        for i in range(0, 24, bs):
            ev.update(p[i : i + bs], y[i : i + bs])
        results.append(ev.compute())
    for r in results[1:]:
        for k in r:
            for metric in r[k]:
                assert r[k][metric] == pytest.approx(results[0][k][metric], rel=1e-12)


def test_not_a_mean_of_batch_means() -> None:
    ev = StreamingEvaluator(horizons=(1,))
    ev.update(torch.tensor([[[1.0]]]), torch.tensor([[[2.0]]]))  # one entry, error 1
    ev.update(torch.full((1, 1, 3), 5.0), torch.tensor([[[2.0, 2.0, 2.0]]]))  # three, error 3
    assert ev.compute()["overall"]["MAE"] == pytest.approx((1 + 3 * 3) / 4)  # not (1 + 3) / 2


def test_all_missing_batch_contributes_nothing() -> None:
    p, y = _batch(2)
    ev = StreamingEvaluator()
    ev.update(p, y)
    before = ev.compute()
    ev.update(torch.rand(3, 12, 4, 1), torch.zeros(3, 12, 4, 1))
    ev.update(torch.rand(3, 12, 4, 1), torch.full((3, 12, 4, 1), NAN))
    assert ev.compute() == before
    empty = StreamingEvaluator()
    empty.update(torch.rand(2, 12, 4), torch.zeros(2, 12, 4))
    out = empty.compute()
    assert all(v == 0.0 for d in out.values() for v in d.values())
    assert not any(math.isnan(v) for d in out.values() for v in d.values())


def test_horizons_beyond_length_are_skipped_and_merge() -> None:
    p, y = _batch(3, t=6)
    a, b = StreamingEvaluator(), StreamingEvaluator()
    a.update(p[:2], y[:2])
    b.update(p[2:], y[2:])
    a.merge(b)
    full = StreamingEvaluator()
    full.update(p, y)
    assert set(full.compute()) == {"overall", "horizon_3", "horizon_6"}
    for k, v in full.compute().items():
        assert a.compute()[k] == pytest.approx(v)
    with pytest.raises(DataError, match=r"expected 6 horizon steps .* found 12"):
        full.update(*_batch(4))


def test_format_table() -> None:
    ev = StreamingEvaluator()
    ev.update(*_batch(5))
    table = ev.format_table(title="PEMS08")
    lines = table.splitlines()
    assert lines[0] == "PEMS08" and "MAPE(%)" in lines[1]
    assert lines[2].startswith("overall") and lines[3].startswith("horizon 3")
    assert f"{ev.compute()['overall']['MAE']:.4f}" in lines[2]


def test_sums_round_trip_equals_merge() -> None:
    """Reducing ``sums()`` across evaluators and ``load_sums`` equals evaluating all at once."""
    g = torch.Generator().manual_seed(3)
    target = torch.rand(10, 12, 5, generator=g) * 50
    target[target < 10] = 0.0  # nulls
    pred = target + torch.randn(10, 12, 5, generator=g)
    whole, a, b = StreamingEvaluator(), StreamingEvaluator(), StreamingEvaluator()
    whole.update(pred, target)
    a.update(pred[:3], target[:3])
    b.update(pred[3:], target[3:])
    reduced = StreamingEvaluator()
    reduced.load_sums(a.sums() + b.sums())
    got, want = reduced.compute(), whole.compute()
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key])
    assert torch.equal(StreamingEvaluator().sums(steps=12), torch.zeros(6, 12, dtype=torch.float64))
    assert reduced.masked_fraction == pytest.approx(whole.masked_fraction)
    with pytest.raises(DataError, match=r"\[6, T\]"):
        reduced.load_sums(torch.zeros(4, 12))


# --------------------------------------------------------- found by mutation testing (make mutate)
def test_every_metric_and_loss_uses_the_null_value_it_is_given() -> None:
    # null 5.0 (neither 0 nor NaN): 5.0 and 5.00004 are null, 5.00008 and 0.0 are readings
    target = torch.tensor([5.0, 5.00004, 5.00008, 0.0, 2.0], dtype=torch.float64)
    pred = torch.tensor([9.0, 9.0, 6.00008, 1.0, 4.0], dtype=torch.float64)
    assert null_mask(target, 5.0).tolist() == [False, False, True, True, True]
    err = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)  # at the three readings
    assert masked_mae(pred, target, 5.0).item() == pytest.approx(4 / 3)
    assert masked_mse(pred, target, 5.0).item() == pytest.approx(6 / 3)
    assert masked_rmse(pred, target, 5.0).item() == pytest.approx(math.sqrt(2.0))
    assert masked_mape(pred, target, 5.0).item() == pytest.approx((1 / 5.00008 + 2 / 2) / 2)
    for name, value in [("masked_mae", 4 / 3), ("masked_mse", 2.0)]:
        assert get_loss(name)(pred, target, 5.0).item() == pytest.approx(value)
    huber = 0.5 * torch.clamp(err, max=1) ** 2 + (err - torch.clamp(err, max=1))
    assert huber_loss(pred, target, null_value=5.0).item() == pytest.approx(huber.mean().item())
    # the defaults: null 0 for the masked functions, NaN only for mse/mae (LTSF)
    assert null_mask(target).tolist() == [True, True, True, False, True]
    assert masked_mape(pred, target).item() == pytest.approx(
        (4 / 5 + 3.99996 / 5.00004 + 1 / 5.00008 + 1) / 4
    )
    assert get_loss("masked_mse")(pred, target).item() == pytest.approx(
        (16 + 3.99996**2 + 1 + 4) / 4
    )
    assert get_loss("mse")(pred, target).item() == pytest.approx((16 + 3.99996**2 + 1 + 1 + 4) / 5)
    assert get_loss("mae")(pred, target).item() == pytest.approx((4 + 3.99996 + 1 + 1 + 2) / 5)


def test_integer_inputs_are_compared_as_floats() -> None:
    target = np.array([3, 0, 4])
    pred = np.array([1, 5, 4])
    assert masked_mae(pred, target).item() == pytest.approx(1.0)  # (2 + 0) / 2
    assert masked_mae(pred.astype(np.float32), target).item() == pytest.approx(1.0)
    assert masked_mse(pred, target.astype(np.float32)).item() == pytest.approx(2.0)
    assert masked_mape(pred, target, NAN).item() == pytest.approx((2 / 3 + 0) / 2)
    # unsigned bytes would wrap around (0 - 3 = 253) if not made floats first
    assert masked_mae(np.uint8([0, 4]), np.uint8([3, 4])).item() == pytest.approx(1.5)
    # the target takes the prediction's float type before the null is compared: 0.5 masks nothing
    assert masked_mae(pred.astype(np.float64), target, 0.5).item() == pytest.approx(7 / 3)


def test_one_valid_entry_is_a_mean_over_one() -> None:
    target, pred = torch.tensor([0.0, 4.0, NAN]), torch.tensor([1.0, 1.0, 1.0])
    assert masked_mae(pred, target).item() == pytest.approx(3.0)
    assert masked_mape(pred, target).item() == pytest.approx(0.75)
    ev = StreamingEvaluator(horizons=(1,))
    ev.update(pred.view(1, 1, 3), target.view(1, 1, 3))
    assert ev.compute()["overall"] == pytest.approx(
        {"MAE": 3.0, "RMSE": 3.0, "MAPE": 75.0, "MSE": 9.0}
    )


def test_default_null_is_zero_for_mape_too() -> None:
    assert masked_mape(torch.tensor([2.0, 3.0]), torch.tensor([1.0, 0.0])).item() == 1.0


def test_evaluator_accepts_b_t_and_keeps_float64_sums() -> None:
    ev = StreamingEvaluator(horizons=(2,))
    ev.update(torch.tensor([[1.0, 5.0]]), torch.tensor([[2.0, 4.0]]))  # [B, T]: no node axis
    assert ev.compute()["horizon_2"]["MAE"] == 1.0 and ev.count == 2
    with pytest.raises(DataError, match=r"\[B, T, \.\.\.\]"):
        ev.update(torch.tensor([1.0]), torch.tensor([2.0]))
    assert ev.sums().dtype == torch.float64
    assert StreamingEvaluator().sums(steps=3).dtype == torch.float64
    reduced = StreamingEvaluator()
    reduced.load_sums(ev.sums().float())  # e.g. all-reduced in float32 on some device
    assert reduced.sums().dtype == torch.float64
    empty = StreamingEvaluator(horizons=(2,))
    empty.merge(ev)  # into an evaluator that saw nothing yet
    assert empty.compute() == ev.compute() and empty.steps == 2


def test_an_evaluator_that_saw_nothing_reports_zeros() -> None:
    zero = {"MAE": 0.0, "RMSE": 0.0, "MAPE": 0.0, "MSE": 0.0}
    assert StreamingEvaluator(horizons=(1, 4)).compute() == {
        "overall": zero,
        "horizon_1": zero,
        "horizon_4": zero,
    }
    assert StreamingEvaluator().count == 0


def test_format_table_layout_without_a_title() -> None:
    ev = StreamingEvaluator(horizons=(1,))
    ev.update(torch.tensor([[[3.0]]]), torch.tensor([[[2.0]]]))
    assert ev.format_table().splitlines() == [
        f"{'':<12}{'MAE':>10}{'RMSE':>10}{'MAPE(%)':>10}{'MSE':>12}",
        f"{'overall':<12}{1.0:>10.4f}{1.0:>10.4f}{50.0:>10.3f}{1.0:>12.4f}",
        f"{'horizon 1':<12}{1.0:>10.4f}{1.0:>10.4f}{50.0:>10.3f}{1.0:>12.4f}",
    ]
