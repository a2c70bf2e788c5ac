"""A run trained on a long table named by its options forecasts new files of the same layout:
the options that made the file a table are the run's, and forecast reads with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main


def _long_csv(path: Path, steps: int) -> Path:
    # numeric station ids and a time column no sniffing rule knows: only the options say that
    # this is a long table (station, when, level)
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=steps, freq="h")
    rows = [
        (sid, t, 10 + sid + np.sin(i / 4) + 0.1 * rng.normal())
        for sid in (101, 102, 103)
        for i, t in enumerate(times)
    ]
    pd.DataFrame(rows, columns=["station", "when", "level"]).to_csv(path, index=False)
    return path


def test_forecast_reads_a_long_table_with_the_runs_column_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _long_csv(tmp_path / "levels.csv", 300)
    sets = [
        "--set", "data_options.id_column=station",
        "--set", "data_options.time_column=when",
        "--set", "data_options.value_column=level",
        "--set", "protocol=ltsf",
        "--set", "protocol_overrides.in_steps=24",
        "--set", "protocol_overrides.out_steps=6",
    ]  # fmt: skip
    code = main(["train", "--model", "last-value", "--data", str(data), *sets,
                 "--out", str(tmp_path / "runs"), "--run-name", "r", "--quiet",
                 "--accelerator", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    newer = _long_csv(tmp_path / "newer.csv", 100)
    out = tmp_path / "next.csv"
    code = main(["forecast", str(tmp_path / "runs" / "r"), "--data", str(newer), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    fc = pd.read_csv(out)
    assert sorted(fc["unique_id"].astype(str).unique()) == ["101", "102", "103"]
    # last value: every step of a series' forecast is its last reading in the new file
    last = pd.read_csv(newer).groupby("station")["level"].last()
    for sid, group in fc.groupby("unique_id"):
        np.testing.assert_allclose(group["y_hat"], last[int(sid)], rtol=1e-5)
