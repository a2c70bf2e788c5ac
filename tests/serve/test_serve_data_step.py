"""A run forecasts data at the step it was trained on: ``forecast``, ``backtest``, ``evaluate``
and ``predict`` refuse new data whose known step differs from the one the checkpoint records
(one check, :func:`linearcast.serve.data_step.check_step`), and leave data without a
step as it was."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.errors import DataError
from linearcast.serve import evaluate_run, predict_run
from linearcast.serve.backtest import backtest_run
from linearcast.serve.forecast import forecast_run

FINER = "expected 1-hour steps (the step the model of {run} was trained on), found 30-minute steps"


def _restepped(data: Path, path: Path, freq: str) -> Path:
    """The run's own readings with timestamps ``freq`` apart."""
    frame = pd.read_csv(data)
    frame["date"] = pd.date_range("2024-01-01", periods=len(frame), freq=freq)
    frame.to_csv(path, index=False)
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("linearcast: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    return err


@pytest.mark.parametrize(
    "command",
    [
        ["forecast"],
        ["backtest", "--windows", "2", "--step", "12"],
        ["evaluate"],
        ["predict", "--out", "p.npz"],
    ],
)
def test_a_30_minute_file_is_refused_by_an_hourly_run(
    hourly_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    run, data = hourly_run
    monkeypatch.chdir(tmp_path)  # predict's p.npz, backtest's folder
    half = _restepped(data, tmp_path / "half-hourly.csv", "30min")
    name, *rest = command
    out_dir = ["--out-dir", str(tmp_path / "bt")] if name == "backtest" else []
    args = [name, str(run), "--data", str(half), *rest, *out_dir, "--accelerator", "cpu"]
    assert main(args) == 1
    err = _error(capsys)
    assert f"{half}: {FINER.format(run=run)} between its timestamps" in err
    assert "resample the data to 1-hour steps" in err
    assert not (tmp_path / "bt").exists() and not (tmp_path / "p.npz").exists()
    # the same readings at the run's step pass the check (it is the step that is refused)
    hourly = _restepped(data, tmp_path / "hourly.csv", "h")
    assert main([*args[:3], str(hourly), *args[4:]]) == 0, capsys.readouterr().err


def test_python_api_refuses_another_step_too(hourly_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = hourly_run
    finer = re.escape(FINER.format(run=run))
    frame = pd.read_csv(data, index_col="date")
    frame.index = pd.date_range("2024-01-01", periods=len(frame), freq="30min")
    with pytest.raises(DataError, match=finer + r" .* or correct the data's timestamps"):
        forecast_run(run, frame.tail(48), accelerator="cpu")
    with pytest.raises(DataError, match=finer):
        backtest_run(run, frame, n_windows=2, step_size=12, accelerator="cpu")
    half = _restepped(data, tmp_path / "half-hourly.csv", "30min")
    with pytest.raises(DataError, match=finer):
        evaluate_run(run, data=str(half), accelerator="cpu")
    with pytest.raises(DataError, match=finer):
        predict_run(run, None, data=str(half), accelerator="cpu")


def test_a_daily_file_and_a_step_given_as_an_option(
    hourly_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, data = hourly_run
    daily = _restepped(data, tmp_path / "daily.csv", "D")
    assert main(["forecast", str(run), "--data", str(daily)]) == 1
    err = _error(capsys)
    assert "found 1-day steps between its timestamps" in err
    assert "give data at 1-hour steps or train a run on 1-day data" in err
    # no timestamps: the step given as an option is checked, and the message names the option
    bare = tmp_path / "bare.npy"
    np.save(bare, pd.read_csv(data).drop(columns="date").to_numpy()[-48:])
    sets = ["--set", "data_options.freq_minutes=30"]
    assert main(["forecast", str(run), "--data", str(bare), *sets]) == 1
    err = _error(capsys)
    assert "found 30-minute steps (from its data options" in err
    assert "--set data_options.freq_minutes=60" in err


def test_data_without_a_step_is_forecast_as_before(
    hourly_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, data = hourly_run
    bare = tmp_path / "bare.npy"
    values = pd.read_csv(data).drop(columns="date").to_numpy()[-48:]
    np.save(bare, values)
    with pytest.warns(UserWarning, match="no series names"):
        fc = forecast_run(run, str(bare), accelerator="cpu")
    assert fc.timestamps is None
    np.testing.assert_allclose(fc.values[..., 0], np.repeat(values[-1:], 6, axis=0), rtol=1e-5)


def test_check_step_compares_known_steps_only() -> None:
    from linearcast.data import TimeSeriesDataset, as_dataset
    from linearcast.serve.data_step import check_step

    meta = {"freq_minutes": 60}
    values = np.arange(40.0).reshape(20, 2)

    def frame(index: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame(values[: len(index)], index=index, columns=["a", "b"])

    half = pd.date_range("2024-01-01", periods=20, freq="30min")
    with pytest.raises(DataError, match="found 30-minute steps between its timestamps"):
        check_step(as_dataset(frame(half)), meta, "runs/r")
    gaps = half.delete([3, 9])  # a file's reader warns and keeps the usual step, 30 minutes
    read = TimeSeriesDataset(values[:18, :, None], path=Path("gaps.csv"), timestamps=gaps,
                             freq_minutes=30)  # fmt: skip
    with pytest.raises(DataError, match=r"gaps\.csv: .* found 30-minute steps between its"):
        check_step(read, meta, "runs/r")
    with pytest.raises(DataError, match=r"found 30-minute steps \(from its freq_minutes"):
        check_step(as_dataset(values, freq_minutes=30), meta, "runs/r")
    # the run's step, no step at all, a calendar step and a run that recorded none: not refused
    check_step(as_dataset(frame(pd.date_range("2024-01-01", periods=20, freq="h"))), meta, "r")
    check_step(as_dataset(values), meta, "runs/r")
    months = pd.date_range("2024-01-01", periods=20, freq="MS")
    check_step(as_dataset(frame(months)), meta, "runs/r")
    # a reader that gives months their usual length (31 days): still a calendar step
    check_step(TimeSeriesDataset(values[..., None], timestamps=months, freq_minutes=44640),
               meta, "runs/r")  # fmt: skip
    check_step(as_dataset(frame(half)), {"freq_minutes": None}, "runs/r")


def _calendar_run(root: Path, freq: str) -> tuple[Path, Path]:
    """last-value trained on 120 steps of ``freq`` (a calendar step when ``freq`` is one)."""
    data = root / f"train-{freq}.csv"
    _restepped_frame(120, freq).to_csv(data, index=False)
    args = ["train", "--model", "last-value", "--data", str(data), "--protocol", "ltsf",
            "--set", "protocol_overrides.in_steps=12", "--set", "protocol_overrides.out_steps=3",
            "--set", "baseline=", "--epochs", "1", "--quiet", "--no-intervals",
            "--out", str(root / "runs"), "--run-name", freq]  # fmt: skip
    assert main(args) == 0
    return root / "runs" / freq, data


def _restepped_frame(rows: int, freq: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"date": pd.date_range("2001-01-01", periods=rows, freq=freq),
                         "s0": rng.normal(50, 5, rows), "s1": rng.normal(40, 5, rows)})  # fmt: skip


@pytest.mark.parametrize(
    ("trained", "given", "refused"),
    [
        ("MS", "MS", None),
        ("MS", "ME", None),  # month ends are months too
        ("MS", "QS", "expected 1-month (MS) steps"),
        ("MS", "YS", "expected 1-month (MS) steps"),
        ("MS", "h", "expected 1-month (MS) steps"),
        ("h", "MS", "expected 1-hour steps"),
    ],
)
def test_calendar_steps_are_compared_too(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained: str,
    given: str,
    refused: str | None,
) -> None:
    run, _ = _calendar_run(tmp_path, trained)
    data = tmp_path / f"new-{given}.csv"
    _restepped_frame(40, given).to_csv(data, index=False)
    capsys.readouterr()
    code = main(["forecast", str(run), "--data", str(data), "--out", str(tmp_path / "f.csv")])
    if refused is None:
        assert code == 0
        return
    assert code == 1
    assert refused in _error(capsys)
