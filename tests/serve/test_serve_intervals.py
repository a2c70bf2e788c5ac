"""Prediction intervals: split conformal on the validation windows (the quantile with its
finite-sample correction, coverage on held-out windows, widening with the level, the clip at 0),
and where they surface: ``forecast``'s columns, ``.npz`` arrays and plot, ``predict``'s arrays,
``evaluate``'s and ``train``'s coverage in ``metrics.json``; bad levels refused in one sentence."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linearcast.cli import main
from linearcast.data import synthetic_traffic
from linearcast.engine import TrainConfig, train
from linearcast.errors import ConfigError
from linearcast.serve.forecast import forecast_run
from linearcast.serve.inference import evaluate_run, predict_run
from linearcast.serve.interval_scores import score_intervals
from linearcast.serve.intervals import (
    CACHE_FILE,
    Calibration,
    apply_intervals,
    check_levels,
    conformal_quantiles,
    split_quantile,
)

_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "30"))
SETS = ["--set", "data_options.freq_minutes=5", "--set", "data_options.start=2024-01-01"]


def _train(out: Path, tiny: Callable[..., TrainConfig], **changes: object) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    try:
        cfg = tiny(out, tensorboard=False, **changes)
        return train(cfg, verbose=False, report=False).run_dir
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]) -> Path:
    """A tiny ELinFormer on 6 synthetic sensors (5-minute steps from 2024-01-01)."""
    return _train(tmp_path_factory.mktemp("intervals") / "runs", tiny)


@pytest.fixture(scope="module")
def recent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's data without its last 12 steps, as a plain array file."""
    ds = synthetic_traffic(num_nodes=6, days=3, seed=1)
    path = tmp_path_factory.mktemp("recent") / "recent.npy"
    np.save(path, ds.values[:-12, :, 0])
    return path


# ---------------------------------------------------------------------- the quantile
def test_quantile_uses_the_finite_sample_correction_by_hand() -> None:
    scores = np.arange(1.0, 11.0)[:, None]  # m = 10 scores 1..10 in one column
    # k = ceil(11 * 0.9) = 10 (not the empirical 90% quantile 9.1); 80%: ceil(8.8) = 9
    assert split_quantile(scores, 90)[0][0] == 10.0
    assert split_quantile(scores, 80)[0][0] == 9.0
    # m = 9: k = ceil(10 * 0.9) = 9 exactly (float arithmetic gives 9.000000000000002 -> 10)
    q, ok = split_quantile(np.arange(1.0, 10.0)[:, None], 90)
    assert q[0] == 9.0 and ok[0]
    # 95% of m = 10 needs k = ceil(10.45) = 11 > m: no finite quantile in that column
    q, ok = split_quantile(scores, 95)
    assert not ok[0] and math.isinf(q[0])
    # missing scores (NaN) are not counted: m = 9 again
    with_gap = np.concatenate([scores[:9], [[np.nan]]])
    assert split_quantile(with_gap, 90)[0][0] == 9.0


@pytest.mark.fuzz
@settings(max_examples=_EXAMPLES, deadline=None,
          derandomize="LINEARCAST_HYPOTHESIS_EXAMPLES" not in os.environ)  # fmt: skip
@given(
    scores=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60),
    level=st.integers(1, 999).map(lambda v: v / 10),
)
def test_quantile_is_the_smallest_score_covering_the_corrected_level(
    scores: list[float], level: float
) -> None:
    arr = np.asarray(scores)[:, None]
    q, ok = split_quantile(arr, level)
    m = len(scores)
    need = (m + 1) * level / 100  # scores <= q must number at least this (and k <= m)
    if not ok[0]:
        assert math.ceil(need - 1e-9) > m
        return
    assert (arr[:, 0] <= q[0]).sum() >= need - 1e-9
    below = arr[:, 0][arr[:, 0] < q[0]]
    assert len(below) < need + 1e-9  # no smaller score would do


def _gaussian_calibration(rng: np.random.Generator, m: int, levels: list[float]) -> Calibration:
    scores = np.abs(rng.standard_normal((m, 3, 4, 1)))  # |y - 0| for y ~ N(0, 1)
    quantiles = {lv: split_quantile(scores, lv)[0].astype(np.float32) for lv in levels}
    return Calibration(quantiles, np.full((3, 4, 1), m), dict.fromkeys(levels, 0), False, "")


def test_coverage_on_held_out_gaussian_windows_is_the_level() -> None:
    rng = np.random.default_rng(0)
    cal = _gaussian_calibration(rng, 400, [90.0])
    target = rng.standard_normal((5000, 3, 4, 1)).astype(np.float32)
    pred = np.zeros_like(target)
    mask = np.ones(target.shape, dtype=bool)
    mask[::7] = False  # missing targets are not scored
    scores = score_intervals([(pred, target, mask)], cal, [90.0], horizons=(3,))["90"]
    # the coverage of 12 cells calibrated on 400 scores each: sd ~ sqrt(.09 / 400 / 12) + the
    # test draw's sqrt(.09 / 51000): within 4 sd of 0.9
    tolerance = 4 * (math.sqrt(0.09 / 400 / 12) + math.sqrt(0.09 / mask.sum()))
    assert abs(scores["coverage"] - 0.9) < tolerance
    assert scores["count"] == int(mask.sum())
    # width: 2 x the 90% quantile of |N(0, 1)| (1.645) up to the calibration's spread
    assert abs(scores["width"] - 2 * 1.645) < 0.15
    assert set(scores["per_horizon"]) == {"horizon_3"}


def test_lower_bound_is_clipped_at_zero_for_nonnegative_runs() -> None:
    q = np.full((2, 1, 1), 5.0, dtype=np.float32)
    values = np.array([[[1.0]], [[8.0]]], dtype=np.float32)
    clipped = Calibration({90.0: q}, np.ones((2, 1, 1)), {90.0: 0}, True, "")
    free = Calibration({90.0: q}, np.ones((2, 1, 1)), {90.0: 0}, False, "")
    lo, hi = apply_intervals(values, clipped, [90.0])[90.0]
    assert lo.ravel().tolist() == [0.0, 3.0] and hi.ravel().tolist() == [6.0, 13.0]
    assert apply_intervals(values, free, [90.0])[90.0][0].ravel().tolist() == [-4.0, 3.0]


# ---------------------------------------------------------------------- levels
@pytest.mark.parametrize("bad", ["0", "100", "150", "x", "-5", "nan", "90.25"])
def test_bad_levels_are_refused_in_one_sentence(
    run: Path, recent: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="--level expected interval levels"):
        check_levels([bad])
    assert main(["forecast", str(run), "--data", str(recent), *SETS, "--level", bad]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--level" in err and repr(bad) in err
    assert err.replace("e.g.", "eg").rstrip(".").count(". ") == 0  # one sentence


# ---------------------------------------------------------------------- on a run
def test_intervals_widen_with_the_level_and_are_stored_per_checkpoint(run: Path) -> None:
    cal = conformal_quantiles(run, [50, 80, 95], accelerator="cpu")
    q50, q80, q95 = (cal.quantiles[lv] for lv in (50.0, 80.0, 95.0))
    assert (q50 <= q80).all() and (q80 <= q95).all() and (q95 > q50).any()
    assert cal.counts.shape == q50.shape and (cal.counts > 0).all()
    path = run / CACHE_FILE
    with np.load(path, allow_pickle=False) as z:  # what is stored is what was computed
        stored = dict(z)
    assert np.array_equal(stored["quantiles"][1], q80)
    # the stored quantiles are reused: a marker value written there comes back
    stored["quantiles"] = stored["quantiles"] + 1000.0
    np.savez(path, **stored)
    assert np.allclose(conformal_quantiles(run, [80], accelerator="cpu").quantiles[80.0],
                       q80 + 1000.0)  # fmt: skip
    # ... unless they belong to another checkpoint: then they are computed again
    stored["checkpoint"] = np.asarray("0" * 64)
    np.savez(path, **stored)
    again = conformal_quantiles(run, [80], accelerator="cpu")
    assert np.array_equal(again.quantiles[80.0], q80)


@pytest.mark.parametrize(
    "damage",
    [b"", b"PK\x03\x04 not a zip", bytes(range(256)) * 4, "nan", "negative counts"],
    ids=["empty", "zip-signature", "random", "nan-quantiles", "negative-counts"],
)
def test_a_damaged_calibration_cache_is_calibrated_afresh(run: Path, damage: bytes | str) -> None:
    cal = conformal_quantiles(run, [80], accelerator="cpu")  # writes the cache
    path = run / CACHE_FILE
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    else:
        with np.load(path, allow_pickle=False) as z:
            stored = dict(z)
        if damage == "nan":
            stored["quantiles"] = np.full_like(stored["quantiles"], np.nan)
        else:
            stored["counts"] = -stored["counts"]
        np.savez(path, **stored)
    again = conformal_quantiles(run, [80], accelerator="cpu")
    assert np.array_equal(again.quantiles[80.0], cal.quantiles[80.0])


def test_cli_forecast_writes_interval_columns_arrays_and_a_plot(
    run: Path, recent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plot = tmp_path / "next.csv", tmp_path / "next.png"
    args = ["forecast", str(run), "--data", str(recent), *SETS, "--level", "80", "90"]
    assert main([*args, "--out", str(out), "--plot", str(plot)]) == 0
    assert "intervals at 80%, 90%" in capsys.readouterr().out
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "y_hat_lo_80", "y_hat_hi_80",
                                   "y_hat_lo_90", "y_hat_hi_90"]  # fmt: skip
    assert (frame.y_hat_lo_90 <= frame.y_hat).all() and (frame.y_hat <= frame.y_hat_hi_90).all()
    assert (frame.y_hat_lo_90 <= frame.y_hat_lo_80).all()  # the 90% band holds the 80% one
    assert (frame.y_hat_hi_90 - frame.y_hat_lo_90 > 0).all()
    assert plot.stat().st_size > 10_000
    npz = tmp_path / "next.npz"
    assert main([*args, "--out", str(npz)]) == 0
    with np.load(npz, allow_pickle=False) as z:
        assert z["lo_90"].shape == z["hi_90"].shape == z["forecast"].shape == (12, 6, 1)
        assert (z["lo_90"] <= z["forecast"]).all() and (z["forecast"] <= z["hi_90"]).all()
        q = conformal_quantiles(run, [90]).quantiles[90.0]
        assert np.allclose(z["hi_90"] - z["forecast"], q, atol=1e-4)


def test_forecast_intervals_follow_the_horizon(run: Path, recent: Path) -> None:
    fc = forecast_run(run, str(recent), sets=SETS[1::2], horizon=5, level=[90], accelerator="cpu")
    lo, hi = fc.intervals[90.0]
    assert lo.shape == hi.shape == fc.values.shape == (5, 6, 1)
    frame = fc.to_frame()
    assert {"y_hat_lo_90", "y_hat_hi_90"} <= set(frame.columns) and len(frame) == 30


def test_predict_npz_holds_interval_arrays(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "test.npz"
    assert main(["predict", str(run), "--out", str(out), "--level", "90"]) == 0
    with np.load(out, allow_pickle=False) as z:
        pred, lo, hi = z["prediction"], z["lo_90"], z["hi_90"]
    assert lo.shape == hi.shape == pred.shape and (lo <= pred).all() and (pred <= hi).all()
    with pytest.raises(ConfigError, match=r"expected --out ending in \.npz"):
        predict_run(run, tmp_path / "x.npy", level=[90])


def test_evaluate_reports_coverage_and_width_per_level_and_horizon(run: Path) -> None:
    res = evaluate_run(run, accelerator="cpu", level=[80, 90])
    iv = res["intervals"]
    assert set(iv) == {"80", "90"}
    for row in iv.values():
        assert 0.0 < row["coverage"] <= 1.0 and row["width"] > 0 and row["count"] > 0
        assert set(row["per_horizon"]) == {"horizon_3", "horizon_6", "horizon_12"}
    assert iv["90"]["coverage"] >= iv["80"]["coverage"]
    assert iv["90"]["width"] > iv["80"]["width"]
    assert "coverage(%)" in res["table"] and "90%" in res["table"]
    # the coverage is the share of scored targets inside the band, recomputed by hand
    pred = predict_run(run, None, accelerator="cpu", level=[90])
    lo, hi, y = pred["intervals"]["lo_90"], pred["intervals"]["hi_90"], pred["target"]
    scored = ~np.isclose(y, 0.0, atol=5e-5) & np.isfinite(y)
    inside = ((y >= lo) & (y <= hi) & scored).sum() / scored.sum()
    assert abs(iv["90"]["coverage"] - inside) < 1e-6


def test_train_writes_interval_coverage_into_metrics_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--data", "synthetic", "--set", "synthetic.num_nodes=4",
            "--set", "synthetic.days=3", "--epochs", "1", "--max-train-batches", "2",
            "--accelerator", "cpu", "--out", str(tmp_path), "--run-name", "r", "--quiet",
            "--set", "model_overrides.num_layers=1", "--set", "plots=false",
            "--set", "tensorboard=false", "--set", "nonnegative=true"]  # fmt: skip
    assert main(argv) == 0
    assert "prediction intervals on the test windows" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert set(metrics["intervals"]) == {"80", "90"}
    assert 0 < metrics["intervals"]["90"]["coverage"] <= 1
    assert (tmp_path / "r" / CACHE_FILE).is_file()
    # a nonnegative run's lower bounds stop at 0
    pred = predict_run(tmp_path / "r", None, accelerator="cpu", level=[90])
    lo = pred["intervals"]["lo_90"]
    q = conformal_quantiles(tmp_path / "r", [90]).quantiles[90.0]
    assert (lo >= 0).all() and ((pred["prediction"] - q) < 0).any()
