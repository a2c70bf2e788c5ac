"""Output people can use (#24): forecasts of counts clipped at 0, the data channel a forecast is
of named wherever it is written, a readable forecast plot for long lookbacks, and one warning
style in every command."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.engine.config import TrainConfig, preset
from linearcast.engine.trainer import train
from linearcast.errors import ConfigError
from linearcast.serve.export import missing_onnx_packages
from linearcast.serve.forecast import forecast_run
from linearcast.serve.inference import evaluate_run, predict_run

T, N = 240, 3
PROTOCOL = {
    "in_steps": 8,
    "out_steps": 4,
    "horizons": [1, 4],
    "null_value": math.nan,  # counts: a zero is a reading
    "add_time_of_day": False,
    "add_day_of_week": False,
}


def _write_counts(folder: Path, rows: int = T) -> Path:
    """In/out-flow count files ``[rows, 3]``: each inflow falls linearly to 0 and stays there
    (a linear model extrapolates the fall below 0); the inflow file is returned."""
    t = np.arange(T)
    inflow = np.stack([np.maximum(0.0, 150.0 - (1 + 0.2 * i) * t) for i in range(N)], axis=1)
    np.save(folder / "counts-inflow.npy", inflow[:rows].astype(np.float32))
    np.save(folder / "counts-outflow.npy", (0.5 * inflow[:rows] + 3.0).astype(np.float32))
    return folder / "counts-inflow.npy"


def _config(out: Path, data: Path, **changes: object) -> TrainConfig:
    """The VAR baseline (closed-form least squares: no training noise) on the count files."""
    values: dict[str, object] = {
        "model": "var",
        "data": str(data),
        "data_options": {"freq_minutes": 60, "start": "2024-01-01"},
        "protocol": "pems",
        "protocol_overrides": dict(PROTOCOL),
        "max_epochs": 1,
        "accelerator": "cpu",
        "out_dir": str(out),
        "plots": False,
        "tensorboard": False,
    }
    return TrainConfig.from_dict(values | changes)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs of the same model on the same counts: ``raw`` and ``clip`` (nonnegative), and
    ``recent``: the files cut where node 0 is about to reach 0."""
    root = tmp_path_factory.mktemp("counts")
    data = _write_counts(root)
    cut = root / "recent"
    cut.mkdir()
    recent = _write_counts(cut, rows=149)  # node 0 reads 2 at the end, falling by 1 a step
    raw = train(_config(root / "runs", data, run_name="raw"), verbose=False).run_dir
    clip = train(
        _config(root / "runs", data, run_name="clip", nonnegative=True), verbose=False
    ).run_dir
    return {"raw": raw, "clip": clip, "data": data, "recent": recent}


# ---------------------------------------------------------------------- non-negative output
def test_forecast_of_a_nonnegative_run_is_clipped_at_zero_and_unchanged_above(
    runs: dict[str, Path],
) -> None:
    raw = forecast_run(runs["raw"], str(runs["recent"]), accelerator="cpu")
    clip = forecast_run(runs["clip"], str(runs["recent"]), accelerator="cpu")
    assert raw.values.min() < -0.5  # the fall extrapolated: the failure the option fixes
    assert clip.values.min() >= 0.0
    np.testing.assert_array_equal(clip.values, np.maximum(raw.values, 0.0))
    assert clip.nonnegative and not raw.nonnegative


def test_predict_and_metrics_of_a_nonnegative_run_are_those_of_clipped_forecasts(
    runs: dict[str, Path],
) -> None:
    raw = predict_run(runs["raw"], None, accelerator="cpu")
    clip = predict_run(runs["clip"], None, accelerator="cpu")
    assert raw["prediction"].min() < -0.5
    np.testing.assert_array_equal(clip["prediction"], np.maximum(raw["prediction"], 0.0))
    target = clip["target"]
    assert np.isfinite(target).all()
    err = np.abs(np.maximum(raw["prediction"], 0.0) - target)
    expected = {"MAE": err.mean(), "RMSE": math.sqrt((err**2).mean())}
    scored = evaluate_run(runs["clip"], accelerator="cpu")["metrics"]["overall"]
    recorded = json.loads((runs["clip"] / "metrics.json").read_text())["test"]["overall"]
    unclipped = evaluate_run(runs["raw"], accelerator="cpu")["metrics"]["overall"]
    for name, value in expected.items():
        # evaluate and the run's own test metrics score the clipped forecasts
        assert scored[name] == pytest.approx(value, rel=1e-5, abs=1e-5)
        assert recorded[name] == pytest.approx(value, rel=1e-5, abs=1e-5)
    assert unclipped["MAE"] > scored["MAE"] + 1e-3  # the clip changed what was scored
    # the model's standardised units clip at the scaled 0
    scaled = predict_run(runs["clip"], None, accelerator="cpu", units="scaled")["prediction"]
    floor = scaled.min()
    assert (scaled >= floor).all() and np.isclose(scaled, floor).mean() > 0.01


def test_the_option_is_stored_with_the_run_and_checked_like_every_option(
    runs: dict[str, Path],
) -> None:
    saved = json.loads((runs["clip"] / "config.json").read_text())
    assert saved["nonnegative"] is True
    assert json.loads((runs["raw"] / "config.json").read_text())["nonnegative"] is False
    with pytest.raises(ConfigError, match=r"nonnegative must be true or false.*--set"):
        TrainConfig().with_sets(["nonnegative=2"])
    assert TrainConfig().with_sets(["nonnegative=true"]).nonnegative
    # the presets for counts turn it on; the others leave it off
    for name in ("counts", "elinformer-hzmetro", "elinformer-nyc-taxi"):
        assert preset(name).nonnegative, name
    assert not preset("staeformer-pems08").nonnegative


@pytest.mark.skipif(bool(missing_onnx_packages()), reason="the [onnx] extra is not installed")
def test_onnx_export_clips_inside_the_graph_and_names_the_channel(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    import onnxruntime as ort

    from linearcast.serve import export
    from linearcast.serve.export import export_onnx

    # DLinear (VAR's closed form does not trace): a linear map, negative on negative inputs
    cfg = _config(tmp_path, runs["data"], model="dlinear", nonnegative=True, max_train_batches=2)
    run_dir = train(cfg, verbose=False).run_dir
    path = tmp_path / "clip.onnx"
    assert export_onnx(run_dir, path)["checked"]
    side = json.loads(path.with_suffix(".json").read_text())
    out = side["outputs"]["forecast"]
    assert out["nonnegative"] is True and "clipped at 0" in out["units"]
    assert out["channel"] == "inflow" and out["channel_index"] == 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    recent = np.load(runs["recent"])[-8:][None, :, :, None].astype(np.float32)  # (1, T_in, N, 1)
    got = session.run(["forecast"], {"x": recent})[0][0]  # (T_out, N, C)
    want = forecast_run(run_dir, str(runs["recent"]), accelerator="cpu").values
    np.testing.assert_allclose(got, want, atol=1e-3)
    far = np.full_like(recent, -1000.0)  # far below the data: the unclipped forecast has < 0
    _, _, scaler, model = export._load_run(run_dir)
    unclipped = export._torch_forecast(model, scaler, far)
    assert unclipped.min() < -1.0
    np.testing.assert_allclose(
        session.run(["forecast"], {"x": far})[0], np.maximum(unclipped, 0.0), atol=1e-2
    )


# ---------------------------------------------------------------------- channel
def test_a_two_channel_forecast_names_its_channel_everywhere_it_is_written(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fc = forecast_run(runs["clip"], str(runs["recent"]), accelerator="cpu")
    assert fc.channel_label == "inflow (channel 0 of 2)"
    assert "of inflow (channel 0 of 2)" in fc.summary()
    frame = fc.to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "channel"]
    assert set(frame["channel"]) == {"inflow"} and frame.attrs["channel"] == fc.channel_label
    fc.save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as z:
        assert str(z["channel"]) == "inflow" and int(z["channel_index"]) == 0
        assert bool(z["nonnegative"])
    # the CLI's summary line and file
    out = tmp_path / "f.csv"
    argv = ["forecast", str(runs["clip"]), "--data", str(runs["recent"]), "--out", str(out)]
    assert main([*argv, "--accelerator", "cpu"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "series of inflow (channel 0 of 2)" in line and "clipped at 0" in line
    assert set(pd.read_csv(out)["channel"]) == {"inflow"}
    # predict's arrays and evaluate's table
    res = predict_run(runs["clip"], tmp_path / "p.npz", accelerator="cpu")
    assert res["channel"] == "inflow (channel 0 of 2)"
    with np.load(tmp_path / "p.npz") as z:
        assert str(z["channel"]) == "inflow (channel 0 of 2)"
    table = evaluate_run(runs["clip"], accelerator="cpu")["table"]
    assert "inflow (channel 0 of 2)" in table.splitlines()[0]
    assert "clipped at 0" in table.splitlines()[0]


def test_a_one_channel_forecast_keeps_its_columns_and_says_nothing_of_channels() -> None:
    from linearcast.serve.forecast import Forecast

    fc = Forecast(
        values=np.ones((2, 1, 1), np.float32),
        timestamps=None,
        steps=np.arange(5, 7),
        node_names=["a"],
        source="x",
        last_input=4,
        data_channels=1,
    )
    assert list(fc.to_frame().columns) == ["unique_id", "ds", "y_hat"]
    assert fc.channel_label == "" and "channel" not in fc.summary()


# ---------------------------------------------------------------------- plot
def _x_span(line: object) -> tuple[float, float]:
    x = np.asarray(line.get_xdata(), dtype="datetime64[ns]" if _is_time(line) else float)  # type: ignore[attr-defined]
    x = x.astype(np.int64).astype(float) if x.dtype.kind == "M" else x
    return float(x.min()), float(x.max())


def _is_time(line: object) -> bool:
    data = line.get_xdata()  # type: ignore[attr-defined]
    return len(data) > 0 and isinstance(data[0], np.datetime64 | pd.Timestamp)


@pytest.mark.parametrize("with_times", [False, True])
def test_a_long_lookback_plot_shows_the_recent_history_and_a_readable_forecast(
    with_times: bool,
) -> None:
    from linearcast.engine.plots import forecast_figure

    t_in, t_out, n = 1024, 96, 2
    rng = np.random.default_rng(0)
    series = 50 + np.cumsum(rng.normal(size=(t_in + t_out, n)), axis=0)
    times = pd.date_range("2024-01-01", periods=t_in + t_out, freq="h") if with_times else None
    fig = forecast_figure(series[:t_in], series[t_in:], series[t_in:] + 1, times=times,
                          nodes=[0, 1], title="samovar on ETTh1", channel="OT")  # fmt: skip
    for ax in fig.axes:
        if not ax.get_visible() or not ax.get_lines():
            continue
        lines = {line.get_label(): line for line in ax.get_lines()}
        history, forecast = lines["history"], lines["forecast"]
        assert len(history.get_xdata()) <= 3 * t_out  # bounded by the horizon, not the lookback
        lo, _ = _x_span(history)
        f_lo, f_hi = _x_span(forecast)
        assert (f_hi - f_lo) / (f_hi - lo) >= 0.2  # the forecast is not a sliver
    title = fig.texts[0].get_text() if fig.texts else fig._suptitle.get_text()  # type: ignore[attr-defined]
    assert "last 288 of the 1024 input steps" in title and "forecasting OT" in title


# ---------------------------------------------------------------------- warnings
def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # show every warning Python would
    return subprocess.run([sys.executable, "-m", "linearcast", *argv], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)  # fmt: skip


def _one_style(stderr: str) -> list[str]:
    """The warning lines; fails on Python's ``file.py:LINE: UserWarning`` form or a logger's."""
    assert "UserWarning" not in stderr and "site-packages" not in stderr, stderr
    assert ".py:" not in stderr and "WARNING " not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("linearcast: warning: ")]


def test_describe_and_train_warn_in_one_line_style(tmp_path: Path) -> None:
    v = np.random.default_rng(0).random((400, 3))
    v[::7, 1] = np.nan  # NaN readings
    v[:, 2] = 0.0  # a dataset with many zeros
    frame = pd.DataFrame(v, columns=["a", "b", "c"])
    frame.insert(0, "date", pd.date_range("2024-01-01", periods=400, freq="h"))
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    described = _cli("data", "describe", str(tmp_path / "gaps.csv"), "--set",
                     "non_finite=mask", cwd=tmp_path)  # fmt: skip
    assert described.returncode == 0, described.stderr
    _one_style(described.stderr)
    # the trainer's masked-targets note goes through logging: the same style
    trained = _cli("train", "--model", "last-value", "--epochs", "1", "--accelerator", "cpu",
                   "--set", "synthetic.num_nodes=4", "--set", "synthetic.days=2",
                   "--set", "synthetic.missing_rate=0.3", "--out", str(tmp_path / "runs"),
                   "--quiet", cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    notes = _one_style(trained.stderr)
    assert any("masked as missing" in line for line in notes), trained.stderr
