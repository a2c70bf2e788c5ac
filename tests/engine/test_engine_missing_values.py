"""Runs on messy real-world data: NaN gaps train under every protocol and model (masked in the
loss and metrics, filled in the inputs), a named sentinel reaches the scaler, the loss and the
metrics, a default null value that would hide most targets stops and asks, and
``Run.forecast(df)`` reads new data with the run's data options."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import linearcast
from linearcast.cli import main
from linearcast.data import StandardScaler
from linearcast.engine.checkpoint import load_checkpoint

TINY_ELINFORMER = (
    "model_overrides={input_embedding_dim=4, tod_embedding_dim=4, dow_embedding_dim=4, "
    "adaptive_embedding_dim=4, feed_forward_dim=16, num_layers=1}"
)
TINY_SAMOVAR = "model_overrides={d_model=8, n_heads=2, n_attn_layers=1, n_mlp_layers=1}"
SHORT = ("protocol_overrides.in_steps=24", "protocol_overrides.out_steps=12")


def _air_quality_csv(tmp_path: Path, rows: int = 720, stations: int = 12) -> Path:
    """Hourly readings of a pollutant at 12 stations (never 0), 3% of them NaN gaps."""
    rng = np.random.default_rng(0)
    t = np.arange(rows)[:, None]
    values = 40 + 15 * np.sin(2 * np.pi * t / 24) + rng.gamma(2.0, 5.0, (rows, stations))
    values[rng.random(values.shape) < 0.03] = np.nan
    values[100:110, 1] = np.nan  # an outage of 10 hours
    frame = pd.DataFrame(values, columns=[f"station{i}" for i in range(stations)])
    frame.insert(0, "date", pd.date_range("2021-01-04", periods=rows, freq="h"))
    path = tmp_path / "air.csv"
    frame.to_csv(path, index=False)
    return path


def _weather_csv(tmp_path: Path, rows: int = 700) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(rows)
    values = np.stack(
        [10 + 5 * np.sin(t / 24) + rng.normal(0, 1, rows), 2 + 1.5 * rng.random(rows)], axis=1
    )
    values[rng.random(rows) < 0.05, 1] = -9999.0
    frame = pd.DataFrame(values, columns=["T", "wv"])
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=rows, freq="10min"))
    path = tmp_path / "weather.csv"
    frame.to_csv(path, index=False)
    return path, values


def _train(tmp_path: Path, path: Path, model: str, protocol: str, *sets: str) -> int:
    args = ["train", "--model", model, "--data", str(path), "--protocol", protocol,
            "--epochs", "1", "--max-train-batches", "3", "--out", str(tmp_path / "runs"),
            "--quiet", "--accelerator", "cpu"]  # fmt: skip
    for s in ("plots=false", "max_eval_batches=2", *sets):
        args += ["--set", s]
    return main(args)


def _run(tmp_path: Path) -> Path:
    (run,) = (tmp_path / "runs").iterdir()
    return run


def _metrics(tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((_run(tmp_path) / "metrics.json").read_text())
    return result


@pytest.mark.parametrize(
    "sets",
    [
        ("data_options.non_finite=mask",),
        ("data_options.non_finite=null",),  # what the earlier error and docs recommended
        ("data_options.non_finite=null", "protocol_overrides.null_value=nan"),
    ],
)
def test_nan_gaps_train_a_spatio_temporal_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sets: tuple[str, ...]
) -> None:
    path = _air_quality_csv(tmp_path)
    assert _train(tmp_path, path, "elinformer", "pems", TINY_ELINFORMER, *sets) == 0, (
        capsys.readouterr().err
    )
    m = _metrics(tmp_path)
    for part in ("train", "val", "test"):
        assert 0.01 < m["missing"][part]["non_finite"] < 0.08  # counted per split
        assert m["missing"][part]["null"] == 0.0  # no zero in the file, none claimed
    assert m["masked_fraction"]["test"] > 0.0
    assert math.isfinite(m["test"]["overall"]["MAE"]) and m["test"]["overall"]["MAE"] > 0
    history = pd.read_csv(_run(tmp_path) / "history.csv")
    assert np.isfinite(history["train_loss"]).all()


@pytest.mark.parametrize("model,overrides", [("samovar", TINY_SAMOVAR), ("dlinear", "")])
def test_nan_gaps_train_ltsf_models_and_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, overrides: str
) -> None:
    path = _air_quality_csv(tmp_path, stations=4)
    sets = (*SHORT, "data_options.non_finite=mask", *([overrides] if overrides else []))
    assert _train(tmp_path, path, model, "ltsf", *sets) == 0, capsys.readouterr().err
    m = _metrics(tmp_path)
    assert m["loss"] == "mse (masked: NaN/inf readings)"
    assert math.isfinite(m["test"]["overall"]["MSE"])
    assert math.isfinite(m["baseline"]["test"]["overall"]["MSE"])
    assert m["masked_fraction"]["test"] > 0.0


def test_a_named_sentinel_reaches_the_scaler_the_loss_and_the_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, values = _weather_csv(tmp_path)
    sets = (*SHORT, "data_options.null_value=-9999")
    assert _train(tmp_path, path, "dlinear", "ltsf", *sets) == 0, capsys.readouterr().err
    m = _metrics(tmp_path)
    assert m["loss"] == "mse (masked: NaN/inf readings and the null value -9999)"
    assert m["missing"]["test"]["null"] > 0.0 and m["masked_fraction"]["test"] > 0.0
    scaler = StandardScaler.from_state_dict(load_checkpoint(_run(tmp_path) / "best.ckpt")["scaler"])
    train_rows = values[: int(len(values) * 0.7), 1]
    real = train_rows[train_rows != -9999.0]
    assert scaler.std[1] == pytest.approx(real.std(), rel=1e-4)  # not squashed by -9999
    assert scaler.null_value == -9999.0 and scaler.fill == "last"


def _boardings_csv(tmp_path: Path, zero_share: float) -> Path:
    rng = np.random.default_rng(2)
    values = rng.poisson(2.0, (700, 4)).astype(float) + 1.0
    values[rng.random(values.shape) < zero_share] = 0.0  # nobody boarded: real zeros
    path = tmp_path / "boardings.csv"
    pd.DataFrame(values).to_csv(path, header=False, index=False)
    return path


def test_a_default_that_hides_most_targets_stops_and_asks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _boardings_csv(tmp_path, 0.74)
    base = ("data_options.freq_minutes=15", TINY_ELINFORMER)
    assert _train(tmp_path, path, "elinformer", "pems", *base) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "of the training targets equal the null value 0" in err
    assert "--set data_options.null_value=nan" in err
    assert "--set protocol_overrides.allow_mostly_missing=true" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # zeros as readings: every target is scored
    assert _train(tmp_path, path, "elinformer", "pems", *base, "data_options.null_value=nan") == 0
    assert _metrics(tmp_path)["masked_fraction"]["test"] == 0.0


def _frame_with_gaps(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t = np.arange(rows)[:, None]
    values = 20 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, (rows, 3))
    values[rng.random(values.shape) < 0.03] = np.nan
    index = pd.date_range("2022-05-02", periods=rows, freq="h")
    return pd.DataFrame(values, index=index, columns=["a", "b", "c"])


@pytest.mark.filterwarnings("ignore:.*kept as missing readings:UserWarning")
def test_run_forecast_reads_new_data_with_the_run_data_options(tmp_path: Path) -> None:
    df = _frame_with_gaps()
    run = linearcast.fit(model="dlinear", data=df, protocol="ltsf", non_finite="mask",
                         epochs=1, max_train_batches=3, accelerator="cpu", plots=False,
                         out_dir=str(tmp_path / "runs"), sets=list(SHORT))  # fmt: skip
    tail = df.tail(48).copy()
    tail.iloc[-1, 0] = tail.iloc[-5, 2] = np.nan  # 2 NaN in the input window
    with pytest.warns(UserWarning, match="the last step is missing"):
        fc = run.forecast(tail)
    assert len(fc) == 12 * 3 and np.isfinite(fc["y_hat"]).all()
    # a reloaded run reads its options from config.json
    with pytest.warns(UserWarning, match="the last step is missing"):
        again = linearcast.load_run(run.run_dir).forecast(tail)
    np.testing.assert_allclose(again["y_hat"], fc["y_hat"])
    assert json.loads((run.run_dir / "config.json").read_text())["data_options"] == {
        "non_finite": "mask"
    }


def test_a_frame_null_value_wins_over_the_protocol_default(tmp_path: Path) -> None:
    df = _frame_with_gaps().fillna(-200.0)  # a sentinel instead of NaN
    no_time = [
        "protocol_overrides.add_time_of_day=false",
        "protocol_overrides.add_day_of_week=false",
    ]
    run = linearcast.fit(model="dlinear", data=df, protocol="pems", null_value=-200.0,
                         epochs=1, max_train_batches=3, accelerator="cpu", plots=False,
                         out_dir=str(tmp_path / "runs"), sets=[*SHORT, *no_time])  # fmt: skip
    assert run.metrics["null_value"] == -200.0  # not the pems preset's 0
    assert run.metrics["missing"]["train"]["null"] > 0.0
