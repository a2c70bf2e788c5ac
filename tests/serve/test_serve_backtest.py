"""``linearcast backtest`` / ``Run.cross_validation``: cutoffs placed as neuralforecast places
them, forecasts equal to ``forecast``'s from the rows up to each cutoff, metrics equal to a hand
computation from the frame, the files, the refusals, refits that never see past their cutoff."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linearcast.api import Run
from linearcast.cli import main
from linearcast.data import synthetic_traffic
from linearcast.engine import TrainConfig, train
from linearcast.errors import ConfigError, DataError
from linearcast.serve.backtest import backtest_run, cutoff_rows
from linearcast.serve.forecast import forecast_run

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()
NULL_ATOL = 5e-5
# float32 forward passes of a batch of 1 and of a batch of K round differently
RTOL, ATOL = 1e-5, 1e-4


def _train(config: TrainConfig) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    try:
        return train(config, verbose=False, report=False).run_dir
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def last_value(tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]) -> Path:
    """last-value on 6 synthetic sensors, 3 days of 5-minute steps: y_hat = the cutoff's value."""
    out = tmp_path_factory.mktemp("bt-last") / "runs"
    return _train(tiny(out, model="last-value", model_overrides={}, tensorboard=False))


@pytest.fixture(scope="module")
def dlinear(tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]) -> Path:
    out = tmp_path_factory.mktemp("bt-dlinear") / "runs"
    return _train(tiny(out, model="dlinear", model_overrides={}, tensorboard=False))


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    """The runs' own data (the flow channel) as a wide frame with a DatetimeIndex."""
    ds = synthetic_traffic(num_nodes=6, days=3, seed=1)
    idx = pd.date_range(ds.start, periods=ds.num_steps, freq="5min")
    return pd.DataFrame(ds.values[..., 0], index=idx, columns=ds.node_names)


def _quiet(fn: Callable[..., object], *args: object, **kwargs: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------- cutoffs and values
def test_last_value_forecasts_the_cutoff_value_at_every_step(
    last_value: Path, series: pd.DataFrame
) -> None:
    k, s, h = 5, 7, 12
    bt = backtest_run(last_value, series, n_windows=k, step_size=s, accelerator="cpu")
    t, n = series.shape
    frame = bt.frame
    assert list(frame.columns) == ["unique_id", "ds", "cutoff", "y", "y_hat"]
    assert len(frame) == k * n * h
    # neuralforecast's placement: the last window's horizon ends at the data's last step
    rows = [t - h - 1 - (k - 1 - i) * s for i in range(k)]
    assert bt.info["cutoff_rows"] == rows
    assert list(frame["cutoff"].unique()) == list(series.index[rows])
    assert frame["ds"].max() == series.index[-1]
    for (name, cutoff), group in frame.groupby(["unique_id", "cutoff"], sort=False):
        row = series.index.get_loc(cutoff)
        assert list(group["ds"]) == list(series.index[row + 1 : row + 1 + h])
        np.testing.assert_array_equal(group["y"], series[name].to_numpy()[row + 1 : row + 1 + h])
        # the model repeats its last input: the value at the cutoff, at every step
        np.testing.assert_allclose(group["y_hat"], series[name].iloc[row], rtol=1e-5, atol=1e-4)
    assert list(frame["unique_id"].unique()) == list(series.columns)


def test_each_window_is_the_forecast_from_the_rows_up_to_its_cutoff(
    dlinear: Path, series: pd.DataFrame
) -> None:
    bt = backtest_run(dlinear, series, n_windows=3, step_size=20, accelerator="cpu")
    for cutoff, group in bt.frame.groupby("cutoff"):
        row = series.index.get_loc(cutoff)
        fc = forecast_run(dlinear, series.iloc[: row + 1], accelerator="cpu")
        expected = fc.to_frame()
        np.testing.assert_array_equal(group["ds"], expected["ds"])
        np.testing.assert_allclose(group["y_hat"], expected["y_hat"], RTOL, ATOL)


def test_columns_in_another_order_give_the_same_backtest(
    dlinear: Path, series: pd.DataFrame
) -> None:
    a = backtest_run(dlinear, series, n_windows=2, step_size=5, accelerator="cpu").frame
    shuffled = series[list(reversed(series.columns))]
    b = backtest_run(dlinear, shuffled, n_windows=2, step_size=5, accelerator="cpu").frame
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------------- metrics
def _hand_metrics(group: pd.DataFrame, null: float, floor: float) -> dict[str, float]:
    y, p = group["y"].to_numpy(np.float64), group["y_hat"].to_numpy(np.float64)
    ok = np.isfinite(y) & ~np.isclose(y, null, atol=NULL_ATOL, rtol=0)
    e = p[ok] - y[ok]
    ape = ok & (np.abs(y) > floor)
    return {
        "MAE": float(np.abs(e).mean()),
        "RMSE": math.sqrt(float((e**2).mean())),
        "MAPE": 100 * float(np.abs((p[ape] - y[ape]) / y[ape]).mean()),
        "scored": int(ok.sum()),
    }


def test_metrics_per_cutoff_and_overall_equal_a_hand_computation(
    dlinear: Path, series: pd.DataFrame
) -> None:
    data = series.copy()
    data.iloc[-30:-20, 1] = np.nan  # missing readings and null zeros in the forecast rows
    data.iloc[-12:-5, 2] = 0.0
    bt = _quiet(backtest_run, dlinear, data, n_windows=4, step_size=9, accelerator="cpu",
                data_options={"non_finite": "mask"})  # fmt: skip
    assert bt.info["null_value"] == 0.0
    floor = bt.info["mape_floor"]
    assert floor > NULL_ATOL  # 1e-3 * mean |y| of the rows before the first forecast
    groups = list(bt.frame.groupby("cutoff", sort=True))
    assert len(groups) == len(bt.metrics) == 4
    for (cutoff, group), (_, row) in zip(groups, bt.metrics.iterrows()):
        assert row["cutoff"] == cutoff
        hand = _hand_metrics(group, 0.0, floor)
        assert row["scored"] == hand["scored"] and row["targets"] == len(group)
        for name in ("MAE", "RMSE", "MAPE"):
            assert row[name] == pytest.approx(hand[name], rel=1e-6), name
    assert bt.metrics["scored"].sum() < len(bt.frame)  # the NaN and zeros were left out
    hand = _hand_metrics(bt.frame, 0.0, floor)
    for name in ("MAE", "RMSE", "MAPE"):
        assert bt.overall[name] == pytest.approx(hand[name], rel=1e-6), name


def test_a_window_with_nothing_to_score_has_nan_metrics_not_zero(
    dlinear: Path, series: pd.DataFrame
) -> None:
    data = series.copy()
    data.iloc[-12:] = 0.0  # the last window's targets are all null readings
    bt = _quiet(backtest_run, dlinear, data, n_windows=2, step_size=12, accelerator="cpu")
    last = bt.metrics.iloc[-1]
    assert last["scored"] == 0 and math.isnan(last["MAE"]) and math.isnan(last["MAPE"])
    assert bt.metrics.iloc[0]["scored"] > 0 and bt.overall["MAE"] > 0


def test_intervals_add_bands_and_their_coverage_per_cutoff(
    dlinear: Path, series: pd.DataFrame
) -> None:
    bt = backtest_run(dlinear, series, n_windows=3, step_size=10, accelerator="cpu", level=[90])
    f = bt.frame
    assert {"y_hat_lo_90", "y_hat_hi_90"} <= set(f.columns)
    assert (f["y_hat_lo_90"] <= f["y_hat"]).all() and (f["y_hat"] <= f["y_hat_hi_90"]).all()
    for (_, group), (_, row) in zip(f.groupby("cutoff", sort=True), bt.metrics.iterrows()):
        ok = ~np.isclose(group["y"], 0.0, atol=NULL_ATOL, rtol=0) & group["y"].notna()
        inside = (group["y"] >= group["y_hat_lo_90"]) & (group["y"] <= group["y_hat_hi_90"])
        assert row["coverage_90"] == pytest.approx((inside & ok).sum() / ok.sum())


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("k", "s"), [(0, 1), (3, 0), (-1, 2), (2, 1.5), (True, 1), ("3", 1), (2, None)]
)
def test_windows_and_step_must_be_positive_whole_numbers(
    last_value: Path, series: pd.DataFrame, k: object, s: object
) -> None:
    with pytest.raises(ConfigError, match=r"expected a whole number >= 1") as err:
        backtest_run(last_value, series, n_windows=k, step_size=s)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_too_many_windows_says_how_many_fit(last_value: Path, series: pd.DataFrame) -> None:
    t = len(series)
    fit = (t - 12 - 12) // 50 + 1
    with pytest.raises(DataError, match=rf"at most {fit} fit \(--windows {fit}"):
        backtest_run(last_value, series, n_windows=fit + 1, step_size=50)
    assert len(backtest_run(last_value, series, n_windows=fit, step_size=50).metrics) == fit
    with pytest.raises(DataError, match=r"not even one window fits: give at least 24 steps"):
        backtest_run(last_value, series.iloc[:20], n_windows=1, step_size=1)


def test_series_that_are_not_the_runs_are_refused(last_value: Path, series: pd.DataFrame) -> None:
    renamed = series.rename(columns={"S0003": "elsewhere"})
    with pytest.raises(DataError, match=r"elsewhere"):
        backtest_run(last_value, renamed, n_windows=2, step_size=5)


def test_non_finite_forecasts_are_refused_naming_the_cutoff_and_series(
    last_value: Path, series: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linearcast.serve.backtest_windows as bwmod

    real = bwmod.forecast_windows

    def nan_in_the_last_window(*args: object, **kwargs: object) -> np.ndarray:
        values = real(*args, **kwargs)  # type: ignore[arg-type]
        values[1, :, 2] = np.nan  # (K, H, N, C): window 2 of 2, series S0002
        return values

    monkeypatch.setattr(bwmod, "forecast_windows", nan_in_the_last_window)
    last_cutoff = len(series) - 12 - 1  # T - H - 1: the last window ends with the data
    with pytest.raises(DataError, match=rf"in 1 of 12 \(window, series\) forecasts, the first "
                       rf"for series 'S0002' from the cutoff at row {last_cutoff}"):  # fmt: skip
        backtest_run(last_value, series, n_windows=2, step_size=5, accelerator="cpu")


def test_a_gap_in_the_rows_the_windows_read_is_refused_one_before_them_is_not(
    last_value: Path, series: pd.DataFrame, tmp_path: Path
) -> None:
    gap, early = tmp_path / "gap.csv", tmp_path / "early.csv"  # a CSV may have gaps (a warning)
    series.drop(series.index[-40]).rename_axis("date").to_csv(gap)  # inside the last windows
    series.drop(series.index[100]).rename_axis("date").to_csv(early)  # long before the first
    with pytest.raises(DataError, match=r"the usual 0 days 00:05:00 grid.*fewer windows") as err:
        _quiet(backtest_run, last_value, str(gap), n_windows=5, step_size=5)
    assert "from 2024-01-03 20:35:00 to 2024-01-03 20:45:00" in str(err.value)
    bt = _quiet(backtest_run, last_value, str(early), n_windows=2, step_size=5)
    assert len(bt.metrics) == 2  # type: ignore[attr-defined]


def test_refit_is_only_done_when_asked_with_true(last_value: Path, series: pd.DataFrame) -> None:
    for value in ("yes", 1, None):
        with pytest.raises(ConfigError, match=r"refit expected True or False"):
            backtest_run(last_value, series, n_windows=1, step_size=1, refit=value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- own data, CLI, API
def test_own_data_warns_about_in_sample_windows(last_value: Path) -> None:
    with pytest.warns(UserWarning, match=r"of 60 windows forecast rows before row \d+.*in-sample"):
        bt = backtest_run(last_value, n_windows=60, step_size=10, accelerator="cpu")
    start = bt.info["test_start"]
    inside = sum(r + 1 < start for r in bt.info["cutoff_rows"])
    assert 0 < inside < 60 and f" {inside} of 60 windows" in bt.notes[-1]


def test_cli_writes_the_frame_metrics_and_plot_and_never_overwrites(
    dlinear: Path, series: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "recent.csv"
    series.rename_axis("date").to_csv(data)
    out = tmp_path / "bt"
    args = ["backtest", str(dlinear), "--data", str(data), "--windows", "6", "--step", "12"]
    assert main([*args, "--out-dir", str(out), "--accelerator", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "6 windows every 12 steps x 6 series x 12 steps of dlinear" in text
    frame = pd.read_csv(out / "backtest.csv", parse_dates=["ds", "cutoff"])
    assert list(frame.columns) == ["unique_id", "ds", "cutoff", "y", "y_hat"]
    assert len(frame) == 6 * 6 * 12 and frame["cutoff"].nunique() == 6
    spacing = np.diff(np.sort(frame["cutoff"].unique()))
    assert (spacing == np.timedelta64(60, "m")).all()
    metrics = pd.read_csv(out / "backtest_metrics.csv")
    assert list(metrics.columns[:6]) == ["window", "cutoff", "MAE", "RMSE", "MAPE", "MSE"]
    report = json.loads((out / "backtest_metrics.json").read_text())
    assert len(report["per_cutoff"]) == 6 and report["overall"]["MAE"] > 0
    png = (out / "backtest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # a second backtest into the same folder is refused before any work
    assert main([*args, "--out-dir", str(out)]) == 1
    assert "already exists and is kept" in capsys.readouterr().err
    assert pd.read_csv(out / "backtest.csv").shape == frame.shape


def test_cli_out_that_is_one_of_the_backtests_own_files_is_refused(
    dlinear: Path, series: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the frame written, then the metrics per cutoff written over it: 96 rows lost
    data = tmp_path / "recent.csv"
    series.rename_axis("date").to_csv(data)
    out = tmp_path / "bt"
    out.mkdir()
    clash = out / ".." / "bt" / "backtest_metrics.csv"
    args = ["backtest", str(dlinear), "--data", str(data), "--windows", "2", "--step", "12",
            "--out-dir", str(out), "--out", str(clash)]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "found the name of a file the backtest writes into --out-dir" in err
    assert "choose another --out name" in err and not any(out.iterdir())


def test_cli_out_that_exists_names_out_not_out_dir(
    dlinear: Path, series: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "recent.csv"
    series.rename_axis("date").to_csv(data)
    mine = tmp_path / "mine.csv"
    mine.write_text("kept\n")
    args = ["backtest", str(dlinear), "--data", str(data), "--windows", "2", "--step", "12",
            "--out-dir", str(tmp_path / "bt"), "--out", str(mine)]  # fmt: skip
    assert main(args) == 1
    assert "choose another --out (frame_path= in Python)" in capsys.readouterr().err
    assert mine.read_text() == "kept\n"


def test_cli_refuses_bad_windows_in_one_line(
    dlinear: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bt"
    assert main(["backtest", str(dlinear), "--windows", "0", "--step", "3",
                 "--out-dir", str(out)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--windows expected a whole number >= 1, found 0" in err
    assert not out.exists()


def test_run_cross_validation_returns_the_frame_with_metrics(
    dlinear: Path, series: pd.DataFrame, tmp_path: Path
) -> None:
    cv = Run(dlinear).cross_validation(series, n_windows=3, step_size=4, out_dir=tmp_path / "cv")
    bt = backtest_run(dlinear, series, n_windows=3, step_size=4, accelerator="cpu")
    pd.testing.assert_frame_equal(cv, bt.frame, check_like=False)
    assert pd.DataFrame(cv.attrs["metrics"])["MAE"].tolist() == bt.metrics["MAE"].tolist()
    assert cv.attrs["overall"]["MAE"] == bt.overall["MAE"]
    assert (tmp_path / "cv" / "backtest.png").is_file()


# ---------------------------------------------------------------------- refit
def test_refit_trains_on_the_rows_up_to_each_cutoff_only(
    dlinear: Path, series: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "recent.csv"
    series.rename_axis("date").to_csv(data)
    out = tmp_path / "bt"
    args = ["backtest", str(dlinear), "--data", str(data), "--windows", "2", "--step", "24"]
    assert main([*args, "--refit", "--out-dir", str(out), "--accelerator", "cpu",
                 "--level", "90"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "refit 1/2: training dlinear" in text and "refit 2/2: training dlinear" in text
    report = json.loads((out / "backtest_metrics.json").read_text())
    frame = pd.read_csv(out / "backtest.csv", parse_dates=["ds", "cutoff"])
    assert "coverage_90" in report["overall"] and "y_hat_hi_90" in frame.columns
    for i, row in enumerate(report["info"]["cutoff_rows"]):
        refit_dir = out / "refits" / f"cutoff-{i + 1:03d}"
        trained = json.loads((refit_dir / "metrics.json").read_text())
        assert trained["dataset"]["shape"][0] == row + 1  # nothing after the cutoff
        assert (refit_dir / "intervals.npz").is_file()  # calibrated on that refit's own windows
        # the window is that refit run's forecast from the rows up to the cutoff
        fc = forecast_run(refit_dir, series.iloc[: row + 1], accelerator="cpu").to_frame()
        got = frame[frame["cutoff"] == series.index[row]]
        np.testing.assert_allclose(got["y_hat"], fc["y_hat"], RTOL, ATOL)
    assert report["info"]["refit"] is True


def test_python_refit_writes_its_runs_into_a_new_folder_of_the_run(
    dlinear: Path, series: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(dlinear.glob("backtest-*"))
    cv = Run(dlinear).cross_validation(series, n_windows=2, step_size=30, refit=True, level=80)
    (folder,) = set(dlinear.glob("backtest-*")) - before
    assert sorted(p.name for p in (folder / "refits").iterdir()) == ["cutoff-001", "cutoff-002"]
    assert "refit 2/2: training dlinear" in capsys.readouterr().err
    assert len(cv) == 2 * 6 * 12 and "coverage_80" in cv.attrs["overall"]
    fixed = backtest_run(dlinear, series, n_windows=2, step_size=30, accelerator="cpu").frame
    assert not np.allclose(cv["y_hat"], fixed["y_hat"])  # other weights than the run's


def test_a_cutoff_too_early_to_refit_on_is_named(
    dlinear: Path, series: pd.DataFrame, tmp_path: Path
) -> None:
    # 72 rows up to the first cutoff: too few for one 12+12 window in each 6:2:2 split
    with pytest.raises(DataError, match=r"^refit at cutoff 2024-01-01 05:55:00 \(rows 0\.\.71\): "):
        backtest_run(dlinear, series, n_windows=2, step_size=780, refit=True,
                     refit_dir=tmp_path / "refits", accelerator="cpu")  # fmt: skip


# ---------------------------------------------------------------------- other layouts
def _etth1_like(path: Path, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    hours = np.arange(rows)
    cols = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    values = {c: 5 + np.sin(hours * 2 * np.pi / 24 + i) + 0.1 * rng.standard_normal(rows)
              for i, c in enumerate(cols)}  # fmt: skip
    frame = pd.DataFrame({"date": pd.date_range("2016-07-01", periods=rows, freq="h"), **values})
    frame.to_csv(path, index=False)
    return frame


def test_an_etth1_shaped_csv_run(
    tmp_path: Path, tiny: Callable[..., TrainConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "ETTh1.csv"
    frame = _etth1_like(csv, 3000)
    windows = {"split_months": [2, 1, 1], "in_steps": 48, "out_steps": 24}
    cfg = tiny(tmp_path / "runs", model="dlinear", model_overrides={}, data=str(csv),
               protocol="ett", tensorboard=False, protocol_overrides=windows)  # fmt: skip
    run = _train(cfg)
    out = tmp_path / "bt"
    assert main(["backtest", str(run), "--data", str(csv), "--windows", "4", "--step", "24",
                 "--out-dir", str(out), "--accelerator", "cpu"]) == 0  # fmt: skip
    bt = pd.read_csv(out / "backtest.csv", parse_dates=["ds", "cutoff"])
    assert len(bt) == 4 * 7 * 24 and set(bt["unique_id"]) == set(frame.columns[1:])
    assert bt["ds"].max() == frame["date"].iloc[-1]
    ot = bt[bt["unique_id"] == "OT"]
    np.testing.assert_allclose(ot["y"], np.concatenate([frame["OT"].to_numpy()[-96 + 24 * i :][:24]
                                                        for i in range(4)]), rtol=1e-6)  # fmt: skip
    with pytest.warns(UserWarning, match=r"of 40 windows forecast rows before row 2160.*in-s"):
        backtest_run(run, str(csv), n_windows=40, step_size=48, accelerator="cpu")  # its own file
    cv = _quiet(Run(run).cross_validation, n_windows=2, step_size=24)  # the run's own CSV
    assert len(cv) == 2 * 7 * 24 and cv.attrs["overall"]["scored"] == 2 * 7 * 24


def test_a_hzmetro_like_mat_pair_run(tmp_path: Path, tiny: Callable[..., TrainConfig]) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    n, days, steps = 5, 6, 48
    tensor = np.random.default_rng(1).poisson(30, (n, days, steps)).astype(np.uint16)
    scipy_io.savemat(tmp_path / "inflow_tensor.mat", {"inflow_tensor": tensor})
    scipy_io.savemat(tmp_path / "outflow_tensor.mat", {"outflow_tensor": tensor + 1})
    path = tmp_path / "inflow_tensor.mat"
    # elinformer: time features from the steps per day, no timestamps
    cfg = tiny(tmp_path / "runs", data=str(path), data_options={"adjacency": "none"})
    run = _train(cfg.replace(tensorboard=False))
    bt = _quiet(backtest_run, run, n_windows=3, step_size=30, accelerator="cpu")
    f = bt.frame
    assert len(f) == 3 * n * 12 and (f["channel"] == "inflow").all()
    assert f["cutoff"].tolist()[:12] == [days * steps - 12 - 1 - 60] * 12  # step numbers
    assert np.isfinite(f["y_hat"]).all()
    inflow = tensor.reshape(n, days * steps).T  # (T, N): row = day * steps + step
    for i, name in enumerate(f["unique_id"].unique()):
        got = f[f["unique_id"] == name]
        rows = [r + 1 + j for r in bt.info["cutoff_rows"] for j in range(12)]
        np.testing.assert_array_equal(got["y"], inflow[rows, i])
        assert (got["ds"].to_numpy() == np.asarray(rows)).all()


@pytest.mark.skipif(
    not (SHARED_DATA / "ETT" / "ETTh1.csv").is_file(), reason="../shared/data/ETT/ETTh1.csv absent"
)
def test_real_etth1_with_a_tiny_run(tmp_path: Path, tiny: Callable[..., TrainConfig]) -> None:
    csv = SHARED_DATA / "ETT" / "ETTh1.csv"
    cfg = tiny(tmp_path / "runs", model="dlinear", model_overrides={}, data=str(csv),
               protocol="ett", tensorboard=False, max_train_batches=2, max_val_batches=2,
               protocol_overrides={"in_steps": 96, "out_steps": 24})  # fmt: skip
    run = _train(cfg)
    bt = backtest_run(run, str(csv), n_windows=5, step_size=168, accelerator="cpu")
    assert len(bt.frame) == 5 * 7 * 24
    assert bt.frame["ds"].max() == pd.Timestamp("2018-06-26 19:00:00")
    assert (np.diff(bt.frame["cutoff"].unique()) == np.timedelta64(168, "h")).all()
    assert np.isfinite(bt.metrics["MAE"]).all()


# ---------------------------------------------------------------------- cutoff arithmetic
_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "40"))


@pytest.mark.fuzz
@settings(
    max_examples=_EXAMPLES, deadline=None,
    derandomize="LINEARCAST_HYPOTHESIS_EXAMPLES" not in os.environ,
)  # fmt: skip
@given(
    t=st.integers(1, 400),
    t_in=st.integers(1, 50),
    h=st.integers(1, 50),
    k=st.integers(1, 30),
    s=st.integers(1, 60),
)
def test_cutoffs_fit_the_data_or_the_refusal_says_how_many_do(
    t: int, t_in: int, h: int, k: int, s: int
) -> None:
    try:
        rows = cutoff_rows(t, t_in, h, k, s, "x.csv")
    except DataError as err:
        text = str(err)
        assert text.startswith("x.csv: ") and "\n" not in text
        if "at most" not in text:  # not even one window
            assert t < t_in + h
            return
        fit = int(text.split("at most ")[1].split()[0])
        assert 1 <= fit < k
        cutoff_rows(t, t_in, h, fit, s, "x.csv")  # that many do fit
        with pytest.raises(DataError):
            cutoff_rows(t, t_in, h, fit + 1, s, "x.csv")
        return
    assert len(rows) == k and rows[-1] == t - h - 1  # the last horizon ends at the last row
    assert (np.diff(rows) == s).all() and rows[0] - t_in + 1 >= 0
