"""``linearcast forecast``: the steps after a file's end, its calendar continued, and the same
numbers ``predict`` gives the window that ends where the file ends."""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from linearcast.cli import main
from linearcast.data import synthetic_traffic
from linearcast.engine import TrainConfig, train
from linearcast.engine.checkpoint import load_checkpoint
from linearcast.errors import ConfigError, DataError
from linearcast.serve import predict_run
from linearcast.serve.forecast import forecast_run

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()
# float32 forward passes of a batch of 1 and of a batch of 32 round differently
RTOL, ATOL = 1e-5, 1e-4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]) -> Path:
    """A tiny ELinFormer trained on 6 synthetic sensors (5-minute steps from 2024-01-01)."""
    out = tmp_path_factory.mktemp("forecast") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    try:
        return train(tiny(out, tensorboard=False), verbose=False, report=False).run_dir
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def series() -> tuple[np.ndarray, pd.DatetimeIndex, list[str]]:
    """The run's own data: target ``[T, N]``, timestamps, sensor names."""
    ds = synthetic_traffic(num_nodes=6, days=3, seed=1)
    idx = pd.date_range(ds.start, periods=ds.num_steps, freq="5min")
    assert ds.node_names is not None
    return ds.values[..., 0].copy(), idx, ds.node_names


@pytest.fixture(scope="module")
def last_test_window(run: Path) -> np.ndarray:
    """``predict``'s forecast of the last test window (inputs end 12 steps before T)."""
    res = predict_run(run, None, accelerator="cpu")
    prediction: np.ndarray = res["prediction"][-1, ..., 0]  # (12, N)
    return prediction


def test_cli_forecast_continues_the_calendar_and_matches_predict(
    run: Path,
    series: tuple[np.ndarray, pd.DatetimeIndex, list[str]],
    last_test_window: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    values, idx, names = series
    k = len(idx) - 12  # the file ends where the last test window's inputs end
    data = tmp_path / "recent.npy"
    np.save(data, values[:k])
    out = tmp_path / "next.csv"
    sets = ["--set", "data_options.freq_minutes=5", "--set", "data_options.start=2024-01-01"]
    assert main(["forecast", str(run), "--data", str(data), *sets, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert str(out) in text and "horizon 12 steps x 6 series" in text
    assert "no series names, so its 6 series are taken as the run's" in captured.err
    assert str(idx[k]) in text and str(idx[k + 11]) in text

    frame = pd.read_csv(out, parse_dates=["ds"])
    assert list(frame.columns) == ["unique_id", "ds", "y_hat"]
    assert len(frame) == 12 * 6
    for node in range(6):
        rows = frame[frame["unique_id"] == names[node]]  # a .npy's series are the run's, in order
        assert list(rows["ds"]) == list(idx[k : k + 12])  # the file's calendar, continued
        np.testing.assert_allclose(rows["y_hat"], last_test_window[:, node], RTOL, ATOL)


def test_python_forecast_of_a_frame_and_npz_output(
    run: Path,
    series: tuple[np.ndarray, pd.DatetimeIndex, list[str]],
    last_test_window: np.ndarray,
    tmp_path: Path,
) -> None:
    values, idx, names = series
    k = len(idx) - 12
    df = pd.DataFrame(values[:k], index=idx[:k], columns=names)
    fc = forecast_run(run, df.iloc[-30:], accelerator="cpu")  # the last 30 steps suffice
    assert fc.values.shape == (12, 6, 1)
    np.testing.assert_allclose(fc.values[..., 0], last_test_window, RTOL, ATOL)
    assert fc.timestamps is not None and list(fc.timestamps) == list(idx[k : k + 12])
    assert fc.node_names == names
    frame = fc.to_frame()
    assert list(frame["unique_id"].unique()) == names
    np.testing.assert_array_equal(
        frame.pivot(index="ds", columns="unique_id", values="y_hat")[names].to_numpy(),
        fc.values[..., 0],
    )
    path = fc.save(tmp_path / "next.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays: no pickle needed to read them
        assert z["forecast"].shape == (12, 6, 1)
        assert z["timestamps"].dtype.kind == "M"
        assert list(pd.DatetimeIndex(z["timestamps"])) == list(idx[k : k + 12])
        assert list(z["node_names"]) == names


def test_parquet_needs_pyarrow(run: Path, tmp_path: Path) -> None:
    ds = synthetic_traffic(num_nodes=6, days=1, seed=1)
    fc = forecast_run(run, ds, accelerator="cpu")
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(ConfigError, match=r"needs the pyarrow package.*pip install pyarrow"):
            fc.save(tmp_path / "f.parquet")
    else:
        back = pd.read_parquet(fc.save(tmp_path / "f.parquet"))
        pd.testing.assert_frame_equal(back, fc.to_frame(), check_dtype=False)
    with pytest.raises(ConfigError, match=r"\.csv, \.parquet, \.npz"):
        fc.save(tmp_path / "f.xlsx")


def test_clear_errors(run: Path, series: tuple[np.ndarray, pd.DatetimeIndex, list[str]],
                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    values, idx, names = series
    df = pd.DataFrame(values, index=idx, columns=names)
    with pytest.raises(DataError, match=r"at least 12 steps .* found T=5"):
        forecast_run(run, df.iloc[:5], accelerator="cpu")
    with pytest.raises(DataError, match=r"expected the 6 series .* found 4 series .*"
                       r"missing \['S0004', 'S0005'\]"):  # fmt: skip
        forecast_run(run, df.iloc[:, :4], accelerator="cpu")
    # no calendar: the message says which option gives one, with the step the model knows
    bare = tmp_path / "bare.npy"
    np.save(bare, values[:100])
    assert main(["forecast", str(run), "--data", str(bare)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("linearcast: error: ") and "Traceback" not in err
    assert "--set data_options.freq_minutes=5" in err and "data_options.start" in err
    # only reader options can be set: the model and protocol are the run's
    assert main(["forecast", str(run), "--data", str(bare), "--set", "lr=1"]) == 1
    assert "data_options.NAME=VALUE" in capsys.readouterr().err


def test_gap_at_the_end_of_a_file(
    run: Path, series: tuple[np.ndarray, pd.DatetimeIndex, list[str]], tmp_path: Path
) -> None:
    values, idx, names = series
    frame = pd.DataFrame(values[:200], columns=names)
    frame.insert(0, "date", idx[:200])
    csv = tmp_path / "gap.csv"
    frame.drop(index=195).to_csv(csv, index=False)  # a step missing among the last 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the reader's own note on irregular steps
        with pytest.raises(DataError, match=r"last 12 steps .* fill the gap"):
            forecast_run(run, str(csv), accelerator="cpu")


def test_null_last_value_warns(
    run: Path,
    series: tuple[np.ndarray, pd.DatetimeIndex, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    values, idx, names = series
    frame = pd.DataFrame(values[:200].copy(), columns=names)
    frame.iloc[-1, 2] = 0.0  # the null value of the pems protocol: a missing reading
    frame.insert(0, "date", idx[:200])
    csv = tmp_path / "null.csv"
    frame.to_csv(csv, index=False)
    assert main(["forecast", str(run), "--data", str(csv)]) == 0
    captured = capsys.readouterr()
    assert "linearcast: warning:" in captured.err
    assert "last step is missing (NaN/inf or the null value 0) at 1 of 6 series" in captured.err
    assert "y_hat" in captured.out  # no --out: the table is printed


def test_step_numbers_without_time_and_exact_units(
    tmp_path: Path, make_config: Callable[..., TrainConfig]
) -> None:
    """last-value needs no time features: forecasting a bare array gives step numbers, and
    the forecast is the last row in data units (the scaler round trip is exact enough)."""
    cfg = make_config(
        tensorboard=False,
        model="last-value",
        model_overrides={},
        protocol_overrides={"add_time_of_day": False, "add_day_of_week": False},
    )
    run_dir = train(cfg, verbose=False, report=False).run_dir
    values = np.random.default_rng(0).uniform(50, 400, size=(40, 6)).astype(np.float32)
    data = tmp_path / "plain.npy"
    np.save(data, values)
    fc = forecast_run(run_dir, str(data), accelerator="cpu")
    assert fc.timestamps is None
    np.testing.assert_array_equal(fc.steps, np.arange(40, 52))
    np.testing.assert_allclose(fc.values[..., 0], np.repeat(values[-1:], 12, axis=0), rtol=1e-6)
    assert list(fc.to_frame()["ds"][:12]) == list(range(40, 52))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent (real data)")
def test_etth1_forecast_matches_predict_and_the_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_config: Callable[..., TrainConfig]
) -> None:
    path = SHARED_DATA / "ETT" / "ETTh1.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    cfg = make_config(
        tensorboard=False,
        model="dlinear",
        model_overrides={},
        data=str(path),
        protocol="ett",
        protocol_overrides={"in_steps": 96, "out_steps": 24},
        loss="mse",
        max_eval_batches=1,
        max_train_batches=2,
    )
    run_dir = train(cfg, verbose=False, report=False).run_dir
    res = predict_run(run_dir, None, accelerator="cpu", batch_size=512)
    full = pd.read_csv(path, parse_dates=["date"])
    k = int(res["start"][-1]) + 96  # the file ends where the last test window's inputs end
    recent = tmp_path / "ETTh1-recent.csv"
    full.iloc[:k].to_csv(recent, index=False)
    out = tmp_path / "next.csv"
    assert main(["forecast", str(run_dir), "--data", str(recent), "--out", str(out)]) == 0
    assert "horizon 24 steps x 7 series" in capsys.readouterr().out
    frame = pd.read_csv(out, parse_dates=["ds"])
    ot = frame[frame["unique_id"] == "OT"]
    assert list(ot["ds"]) == list(full["date"].iloc[k : k + 24])  # hourly, continued
    # predict and forecast both give data units, also under ett (metrics are standardised)
    assert res["units"] == "data units"
    expected = res["prediction"][-1][..., 0]  # (24, 7)
    wide = frame.pivot(index="ds", columns="unique_id", values="y_hat")[list(full.columns[1:])]
    np.testing.assert_allclose(wide.to_numpy(), expected, RTOL, ATOL)
    assert math.isfinite(float(wide.to_numpy().sum()))


def _graph_run(tmp_path: Path, model: str, overrides: dict[str, object]) -> tuple[Path, Path]:
    """A tiny run of a graph model on a [T, N] CSV with ``flows_adj.csv`` beside it."""
    ds = synthetic_traffic(num_nodes=5, days=2, seed=2)
    data = tmp_path / "train" / "flows.csv"
    data.parent.mkdir()
    pd.DataFrame(ds.values[..., 0], columns=[f"s{i}" for i in range(5)]).to_csv(data, index=False)
    np.savetxt(data.parent / "flows_adj.csv", ds.adjacency, delimiter=",")
    cfg = TrainConfig(model=model, model_overrides=overrides, data=str(data),
                      data_options={"freq_minutes": 5}, max_epochs=1, max_train_batches=1,
                      max_eval_batches=1, batch_size=8, accelerator="cpu", plots=False,
                      tensorboard=False, baseline="", out_dir=str(tmp_path / "runs"))  # fmt: skip
    return train(cfg, verbose=False, report=False).run_dir, data


@pytest.mark.parametrize(
    ("model", "overrides", "refused"),
    [
        ("dcrnn", {"rnn_units": 4, "num_rnn_layers": 1}, True),  # supports come from the data
        ("stgcn", {"temporal_channels": 4, "graph_channels": 2, "output_channels": 4}, False),
    ],
)
@pytest.mark.filterwarnings("ignore:.*no timestamps or start time")
def test_a_graph_the_model_never_saw_is_refused_where_the_checkpoint_lacks_it(
    tmp_path: Path, model: str, overrides: dict[str, object], refused: bool
) -> None:
    run_dir, data = _graph_run(tmp_path, model, overrides)
    recent = tmp_path / "new" / "recent.csv"
    recent.parent.mkdir()
    frame = pd.read_csv(data).tail(40)
    frame.to_csv(recent, index=False)
    same = forecast_run(
        run_dir, recent, data_options={"adjacency": str(data.parent / "flows_adj.csv")}
    )
    other = np.ones((5, 5)) - np.eye(5)
    np.savetxt(recent.parent / "recent_adj.csv", other, delimiter=",")  # found beside the data
    if refused:
        with pytest.raises(
            ConfigError, match=r"recent\.csv: its graph is not the one .* trained on"
        ):
            forecast_run(run_dir, recent)
    else:  # the checkpoint holds the operator: the data's graph changes nothing
        np.testing.assert_array_equal(forecast_run(run_dir, recent).values, same.values)


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        ("dcrnn", {"rnn_units": 4, "num_rnn_layers": 1}),
        ("stgcn", {"temporal_channels": 4, "graph_channels": 2, "output_channels": 4}),
        ("gwnet", {"residual_channels": 4, "dilation_channels": 4, "skip_channels": 8,
                   "end_channels": 8, "blocks": 1, "adaptive_embedding_dim": 2}),
    ],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:.*no timestamps or start time")
def test_new_data_without_a_graph_is_forecast_on_the_graph_the_run_kept(
    tmp_path: Path, model: str, overrides: dict[str, object]
) -> None:
    # a practitioner's recent readings rarely come with the sensor graph: the checkpoint keeps
    # the one the weights were trained on, and forecasts on it (before: "needs a graph")
    run_dir, data = _graph_run(tmp_path, model, overrides)
    kept = load_checkpoint(run_dir / "best.ckpt")["graph"]
    np.testing.assert_array_equal(
        kept.numpy(), np.loadtxt(data.parent / "flows_adj.csv", delimiter=",").astype(np.float32)
    )
    recent = tmp_path / "new" / "recent.csv"
    recent.parent.mkdir()
    pd.read_csv(data).tail(40).to_csv(recent, index=False)
    given = forecast_run(
        run_dir, recent, data_options={"adjacency": str(data.parent / "flows_adj.csv")}
    )
    alone = forecast_run(run_dir, recent)
    np.testing.assert_array_equal(alone.values, given.values)
    assert np.isfinite(alone.values).all()
