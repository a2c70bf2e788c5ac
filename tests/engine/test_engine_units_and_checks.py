"""One unit everywhere (predict gives data units under every protocol and says so), evaluation
matches other data's series by name, and the ONNX file carries its series order and refuses NaN."""

from __future__ import annotations

import importlib.util
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import linearcast
from linearcast.data import StandardScaler, synthetic_traffic
from linearcast.engine import TrainConfig, train
from linearcast.engine.checkpoint import load_checkpoint
from linearcast.errors import ConfigError, DataError
from linearcast.serve.inference import evaluate_run, predict_run


@pytest.fixture(scope="module")
def ett_run(tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]) -> Path:
    """last-value under the ltsf protocol (standardised metrics, as ett) on 4 synthetic
    sensors."""
    out = tmp_path_factory.mktemp("units") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = tiny(out, tensorboard=False, model="last-value", model_overrides={}, protocol="ltsf",
                   protocol_overrides={"in_steps": 12, "out_steps": 6},
                   synthetic={"num_nodes": 4, "days": 2, "seed": 2}, loss="mse")  # fmt: skip
        return train(cfg, verbose=False, report=False).run_dir
    finally:
        torch.set_num_threads(threads)


def test_predict_is_in_data_units_under_ltsf_and_names_them(ett_run: Path) -> None:
    """last-value repeats the last input reading: in data units that is the file's reading.
    Before: standardised under ett/ltsf, data units under pems, with no way to tell."""
    raw = synthetic_traffic(num_nodes=4, days=2, seed=2).values[..., 0]  # (T, N)
    res = predict_run(ett_run, None, accelerator="cpu")
    assert res["units"] == "data units"
    last_inputs = raw[res["start"] + 11]  # (S, N)
    np.testing.assert_allclose(res["prediction"][:, 0, :, 0], last_inputs, rtol=1e-5, atol=1e-3)
    futures = raw[res["start"][:, None] + 12 + np.arange(6)]  # (S, 6, N)
    np.testing.assert_allclose(res["target"][..., 0], futures, rtol=1e-5, atol=1e-3)
    pred = linearcast.load_run(ett_run).predict(synthetic_traffic(num_nodes=4, days=2, seed=2),
                                                accelerator="cpu")  # fmt: skip
    assert pred.units == "data units" and pred[:2].units == "data units"
    scaled = predict_run(ett_run, None, accelerator="cpu", units="scaled")
    scaler = StandardScaler.from_state_dict(load_checkpoint(ett_run / "best.ckpt")["scaler"])
    assert scaled["units"] == "standardised units"
    np.testing.assert_allclose(scaler.inverse_transform(scaled["prediction"]), res["prediction"],
                               rtol=1e-5, atol=1e-3)  # fmt: skip
    with pytest.raises(ConfigError, match=r"units expected one of 'data', 'scaled'"):
        predict_run(ett_run, None, units="raw")


def test_predict_output_in_a_missing_folder_is_refused_before_work(
    ett_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"expected a folder .*nowhere.*found nothing"):
        predict_run(ett_run, tmp_path / "nowhere" / "p.npz", accelerator="cpu")
    assert not (tmp_path / "nowhere").exists()
    out = tmp_path / "p.npz"
    predict_run(ett_run, out, accelerator="cpu")
    with np.load(out) as z:
        assert str(z["units"]) == "data units"


def test_evaluate_other_data_matches_series_by_name(ett_run: Path) -> None:
    ds = synthetic_traffic(num_nodes=4, days=2, seed=2)
    assert ds.node_names is not None
    idx = pd.date_range(ds.start, periods=ds.num_steps, freq="5min")
    frame = pd.DataFrame(ds.values[..., 0], index=idx, columns=ds.node_names)
    ref = evaluate_run(ett_run, data=ds, accelerator="cpu")["metrics"]["overall"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named data in another order: no warning needed
        moved = linearcast.load_run(ett_run).evaluate(frame[frame.columns[::-1]],
                                                      accelerator="cpu")  # fmt: skip
    assert moved["metrics"]["overall"] == pytest.approx(ref, rel=1e-6)
    with pytest.raises(DataError, match=r"missing \['S0001'\].*not in the run \['x'\]"):
        linearcast.load_run(ett_run).evaluate(frame.rename(columns={"S0001": "x"}))


needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs the [onnx] extra",
)


@needs_onnx
def test_onnx_sidecar_names_the_node_order_and_nan_fails_the_check(
    ett_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    from linearcast.serve import export

    path = tmp_path / "model.onnx"
    res = export.export_onnx(ett_run, path)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["series"] == ["S0000", "S0001", "S0002", "S0003"]
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["linearcast.series"]) == side["series"]
    assert res["checked"]
    # NaN on either side fails the check (before: max |difference| 0 was reported)
    scaler = StandardScaler.from_state_dict(load_checkpoint(ett_run / "best.ckpt")["scaler"])
    meta = {"in_steps": 12, "out_steps": 6, "num_nodes": 4, "input_channels": 1}
    model = torch.nn.Identity()  # not used: the reference below is NaN

    def nan_forecast(m: object, s: object, x: np.ndarray) -> np.ndarray:
        return np.full((x.shape[0], 6, 4, 1), np.nan, np.float32)

    monkeypatch.setattr(export, "_torch_forecast", nan_forecast)
    with pytest.raises(ConfigError, match=r"PyTorch produced \d+ non-finite values"):
        export._check(path, model, scaler, meta)
