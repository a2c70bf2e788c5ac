"""Missing readings in the data a forecast or backtest reads: a null value given with it is
honoured (its readings are missing: filled in the input as the run fills NaN, never scored), one
that would unmark the run's own is refused, and a series with no reading in its input window
gets NaN, not the training mean."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import linearcast
from linearcast.cli import main
from linearcast.engine import TrainConfig, train
from linearcast.errors import ConfigError
from linearcast.serve.backtest import backtest_run
from linearcast.serve.forecast import Forecast, forecast_run

SENTINEL = -200.0
DECLARED = ["data_options.null_value=-200"]
MASK = ["data_options.non_finite=mask"]


@pytest.fixture(scope="module")
def keep_run(hourly_run: tuple[Path, Path], tiny: Callable[..., TrainConfig]) -> tuple[Path, Path]:
    """``(run_dir, data)``: last-value under pems (null value 0, input fill ``keep``: zeros are
    fed as readings) on the hourly CSV of ``hourly_run``."""
    _, data = hourly_run
    cfg = tiny(data.parent / "runs-pems", model="last-value", model_overrides={},
               data=str(data), protocol="pems",
               protocol_overrides={"in_steps": 24, "out_steps": 6}, loss="mse",
               tensorboard=False, baseline="")  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, verbose=False, report=False).run_dir, data
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(params=["ltsf", "pems"])
def any_run(
    request: pytest.FixtureRequest, hourly_run: tuple[Path, Path], keep_run: tuple[Path, Path]
) -> tuple[Path, Path]:
    """The ltsf run (null value NaN, fill ``last``) and the pems run (null 0, fill ``keep``)."""
    return hourly_run if request.param == "ltsf" else keep_run


def _quiet(fn: Callable[..., object], *args: object, **kwargs: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def _forecast(run_dir: Path, data: object, **kwargs: object) -> Forecast:
    fc = _quiet(forecast_run, run_dir, data, accelerator="cpu", **kwargs)
    assert isinstance(fc, Forecast)
    return fc


def _marked(frame: pd.DataFrame, rows: list[int], column: str, value: float) -> pd.DataFrame:
    out = frame.copy()
    out.loc[out.index[rows], column] = value
    return out


def test_a_null_value_given_with_a_forecast_marks_those_readings_missing(
    any_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before: ``--set data_options.null_value=-200`` (or ``null_value=-200`` in Python) was
    accepted and ignored: the run's own null value won and -200 reached the model as a reading."""
    run_dir, data = any_run
    recent = pd.read_csv(data).tail(30).reset_index(drop=True)
    sentinel = _marked(recent, [-2, -1], "s1", SENTINEL)
    gaps = _marked(recent, [-2, -1], "s1", math.nan)
    files = {"sentinel": tmp_path / "sentinel.csv", "gaps": tmp_path / "gaps.csv"}
    sentinel.to_csv(files["sentinel"], index=False)
    gaps.to_csv(files["gaps"], index=False)

    declared = _forecast(run_dir, str(files["sentinel"]), sets=DECLARED)
    masked = _forecast(run_dir, str(files["gaps"]), sets=MASK)
    np.testing.assert_array_equal(declared.values, masked.values)
    # last-value forecasts the last observation the model reads: s1's last real reading
    s1 = declared.node_names.index("s1")
    np.testing.assert_allclose(declared.values[:, s1, 0], recent.s1.iloc[-3], rtol=1e-6)
    # not declared, -200 is a reading (the run's null value is not -200)
    plain = _forecast(run_dir, str(files["sentinel"]))
    np.testing.assert_allclose(plain.values[:, s1, 0], SENTINEL, rtol=1e-6)
    # the same in Python, for a frame
    run = linearcast.load_run(run_dir)
    frame = sentinel.set_index(pd.DatetimeIndex(sentinel.pop("date")))
    nan_frame = gaps.set_index(pd.DatetimeIndex(gaps.pop("date")))
    got = _quiet(run.forecast, frame, null_value=SENTINEL, accelerator="cpu")
    want = _quiet(run.forecast, nan_frame, non_finite="mask", accelerator="cpu")
    assert isinstance(got, pd.DataFrame) and isinstance(want, pd.DataFrame)
    pd.testing.assert_frame_equal(got, want)
    assert np.isfinite(got.y_hat).all() and (got.y_hat != SENTINEL).all()


def test_a_null_value_given_with_a_backtest_is_neither_read_nor_scored(
    hourly_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before: the -200 targets were scored (108 of 108), an MAE six times the clean one."""
    run_dir, data = hourly_run
    recent = pd.read_csv(data).tail(60).reset_index(drop=True)
    rows = [-10, -4, -3, -1]  # inside the 2 windows' horizons (cutoffs at rows -13 and -7)
    sentinel, gaps = tmp_path / "sentinel.csv", tmp_path / "gaps.csv"
    _marked(recent, rows, "s0", SENTINEL).to_csv(sentinel, index=False)
    _marked(recent, rows, "s0", math.nan).to_csv(gaps, index=False)

    def backtest(path: Path, sets: list[str]) -> object:
        return _quiet(backtest_run, run_dir, str(path), n_windows=2, step_size=6, sets=sets,
                      accelerator="cpu")  # fmt: skip

    declared, masked, plain = (
        backtest(sentinel, DECLARED),
        backtest(gaps, MASK),
        backtest(sentinel, []),
    )
    pd.testing.assert_frame_equal(declared.frame, masked.frame)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(declared.metrics, masked.metrics)  # type: ignore[attr-defined]
    overall = declared.overall  # type: ignore[attr-defined]
    assert overall["targets"] == 2 * 6 * 4 and overall["scored"] == overall["targets"] - len(rows)
    frame = declared.frame  # type: ignore[attr-defined]
    assert not (frame.y == SENTINEL).any() and int(frame.y.isna().sum()) == len(rows)
    assert plain.overall["scored"] == plain.overall["targets"]  # type: ignore[attr-defined]


def test_a_null_value_that_would_unmark_the_runs_own_is_refused(
    keep_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, data = keep_run
    recent = tmp_path / "recent.csv"
    pd.read_csv(data).tail(30).to_csv(recent, index=False)
    for sets in (["data_options.null_value=nan"], None):
        kwargs = {"sets": sets} if sets else {"data_options": {"null_value": math.nan}}
        with pytest.raises(ConfigError) as err:
            forecast_run(run_dir, str(recent), accelerator="cpu", **kwargs)  # type: ignore[arg-type]
        text = str(err.value)
        assert text.startswith(f"{recent}: expected a null value that marks more readings")
        assert "found nan" in text and "retrain with --set data_options.null_value=nan." in text
        assert text.count(". ") == 0 and text.endswith(".")
    args = ["--windows", "1", "--step", "1", "--set", "data_options.null_value=nan"]
    assert main(["backtest", str(run_dir), "--data", str(recent), *args]) == 1
    assert "found nan" in capsys.readouterr().err
    # the run's own null value given again changes nothing
    same = _forecast(run_dir, str(recent), sets=["data_options.null_value=0"])
    np.testing.assert_array_equal(same.values, _forecast(run_dir, str(recent)).values)


def test_a_series_with_no_reading_in_its_input_window_gets_nan_forecasts(
    hourly_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before: 36 finite numbers (the training mean) with a warning about "the last
    observation before it", which did not exist."""
    run_dir, data = hourly_run
    recent = pd.read_csv(data).tail(30).reset_index(drop=True)
    clean, empty = tmp_path / "clean.csv", tmp_path / "empty.csv"
    recent.to_csv(clean, index=False)
    _marked(recent, list(range(-24, 0)), "s2", math.nan).to_csv(empty, index=False)
    ref = _forecast(run_dir, str(clean), level=[90])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fc = forecast_run(run_dir, str(empty), sets=MASK, level=[90], accelerator="cpu")
    said = [str(w.message) for w in caught]
    assert any("1 of 4 series ('s2') has no reading in the last 24 steps" in m
               and "forecasts and intervals are NaN" in m for m in said), said  # fmt: skip
    assert not any("last step is missing" in m for m in said), said
    s2 = fc.node_names.index("s2")
    others = [i for i in range(4) if i != s2]
    assert np.isnan(fc.values[:, s2]).all()
    lo, hi = fc.intervals[90.0]
    assert np.isnan(lo[:, s2]).all() and np.isnan(hi[:, s2]).all()
    np.testing.assert_array_equal(fc.values[:, others], ref.values[:, others])
    assert np.isfinite(lo[:, others]).all() and np.isfinite(hi[:, others]).all()
    frame = fc.to_frame()
    assert frame[frame.unique_id == "s2"].y_hat.isna().all()
    assert frame[frame.unique_id != "s2"].y_hat.notna().all()


def test_a_backtest_window_with_no_input_reading_is_nan_and_not_scored(
    hourly_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """As forecast: a window whose inputs are all missing for a series has no forecast, so its
    targets (present here) are left out of the scores rather than scored against the mean."""
    run_dir, data = hourly_run
    recent = pd.read_csv(data).tail(60).reset_index(drop=True)
    path = tmp_path / "empty-inputs.csv"
    _marked(recent, list(range(-30, -6)), "s2", math.nan).to_csv(path, index=False)  # inputs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bt = backtest_run(run_dir, str(path), n_windows=1, step_size=1, sets=MASK,
                          accelerator="cpu")  # fmt: skip
    assert any("1 of the 4 (window, series) forecasts have no reading" in str(w.message)
               and "'s2'" in str(w.message) for w in caught)  # fmt: skip
    frame = bt.frame
    s2 = frame.unique_id == "s2"
    assert frame[s2].y_hat.isna().all() and frame[s2].y.notna().all()
    assert frame[~s2].y_hat.notna().all()
    assert bt.overall["targets"] == 24 and bt.overall["scored"] == 18
    rest = frame[~s2]
    assert bt.overall["MAE"] == pytest.approx(float((rest.y - rest.y_hat).abs().mean()))
