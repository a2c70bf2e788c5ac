"""The layouts through the command line: describe -> train -> forecast on a long CSV and on a
multi-file glob, and describe naming --freq/--start where a file has no timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main

TS = pd.date_range("2020-01-01", periods=150, freq="h")
TINY = ["--epochs", "1", "--max-train-batches", "2", "--max-eval-batches", "2"]
TINY += ["--accelerator", "cpu", "--set", "tensorboard=false", "--quiet"]


def _series(k: int) -> np.ndarray:
    return (10 + 3 * np.sin(np.arange(len(TS)) / 4 + k)).round(3)


def _long_csv(path: Path) -> None:
    frames = [pd.DataFrame({"unique_id": f"s{k}", "ds": TS, "y": _series(k)}) for k in range(3)]
    pd.concat(frames).to_csv(path, index=False)


def _station_files(folder: Path) -> None:
    for k, station in enumerate(["Aotizhongxin", "Changping"]):
        pd.DataFrame(
            {
                "No": np.arange(1, len(TS) + 1),
                "year": TS.year,
                "month": TS.month,
                "day": TS.day,
                "hour": TS.hour,
                "PM2.5": _series(k),
                "wd": "NW",
                "station": station,
            }
        ).to_csv(folder / f"PRSA_Data_{station}_2020.csv", index=False)


def _describe_train_forecast(
    data: str, sets: list[str], out: Path, capsys: pytest.CaptureFixture[str]
) -> pd.DataFrame:
    assert main(["data", "describe", data, *[a for s in sets for a in ("--set", s)]]) == 0
    described = capsys.readouterr().out
    assert "frequency     60 min" in described
    train_sets = [a for s in sets for a in ("--set", f"data_options.{s}")]
    argv = ["train", "--model", "dlinear", "--data", data, *train_sets, *TINY, "--out", str(out)]
    assert main(argv) == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    capsys.readouterr()
    next_csv = out / "next.csv"
    assert main(["forecast", str(run), "--data", data, "--out", str(next_csv)]) == 0
    return pd.read_csv(next_csv)


def test_long_csv_describe_train_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: describe said "expected numeric values in column 'unique_id'"."""
    data = tmp_path / "history.csv"
    _long_csv(data)
    fc = _describe_train_forecast(str(data), [], tmp_path / "runs", capsys)
    assert sorted(fc.unique_id.unique()) == ["s0", "s1", "s2"]
    assert pd.Timestamp(fc.ds.min()) == TS[-1] + pd.Timedelta(hours=1)
    assert np.isfinite(fc.y_hat).all()


def test_multi_file_glob_describe_train_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a pattern was "file not found"."""
    _station_files(tmp_path)
    pattern = str(tmp_path / "PRSA_Data_*.csv")
    fc = _describe_train_forecast(pattern, ["value_column=PM2.5"], tmp_path / "runs", capsys)
    assert sorted(fc.unique_id.unique()) == ["Aotizhongxin", "Changping"]
    assert np.isfinite(fc.y_hat).all()
    assert any(p.name.startswith("dlinear-PRSA_Data-") for p in (tmp_path / "runs").iterdir())


def test_describe_without_timestamps_names_freq_and_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "frequency unknown" with no way forward."""
    path = tmp_path / "speeds.npy"
    np.save(path, np.ones((20, 3), dtype=np.float32))
    assert main(["data", "describe", str(path)]) == 0
    out = capsys.readouterr().out
    freq = next(line for line in out.splitlines() if line.strip().startswith("frequency"))
    start = next(line for line in out.splitlines() if line.strip().startswith("start"))
    assert "--freq MINUTES" in freq and "data_options.freq_minutes=MINUTES" in freq
    assert "--start" in start and "data_options.start=" in start
    assert main(["data", "describe", str(path), "--freq", "5", "--start", "2020-01-01"]) == 0
    out = capsys.readouterr().out
    assert "5 min, steps/day 288" in out and "--freq" not in out
