"""``linearcast export --onnx``: raw units in and out (scaler folded in), a dynamic batch axis,
and onnxruntime reproducing PyTorch for STAEformer, ELinFormer (linear EALA) and SAMoVAR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from linearcast.cli import main
from linearcast.data import StandardScaler, synthetic_traffic
from linearcast.engine import TrainConfig, train
from linearcast.engine.checkpoint import atomic_save, load_checkpoint
from linearcast.errors import ConfigError
from linearcast.serve import export as export_mod
from linearcast.serve.export import export_onnx, missing_onnx_packages
from linearcast.serve.forecast import forecast_run

needs_onnx = pytest.mark.skipif(
    bool(missing_onnx_packages()),
    reason=f"the [onnx] extra is not installed (missing {', '.join(missing_onnx_packages())})",
)
TINY = {"input_embedding_dim": 4, "tod_embedding_dim": 4, "dow_embedding_dim": 4,
        "adaptive_embedding_dim": 4, "feed_forward_dim": 16, "num_layers": 1}  # fmt: skip


def _run(out: Path, **changes: Any) -> Path:
    cfg = TrainConfig(
        model="staeformer",
        model_overrides=dict(TINY),
        data="synthetic",
        synthetic={"num_nodes": 6, "days": 3, "seed": 1},  # type: ignore[arg-type]
        protocol="pems",
        batch_size=32,
        max_epochs=1,
        max_train_batches=2,
        max_eval_batches=1,
        accelerator="cpu",
        out_dir=str(out),
        plots=False,
        tensorboard=False,
        baseline="",
    )
    return train(cfg.replace(**changes), verbose=False, report=False).run_dir


def test_missing_extra_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_mod, "missing_onnx_packages", lambda: ["onnxscript"])
    with pytest.raises(
        ConfigError, match=r"onnxscript is not installed \(pip install 'linearcast\[onnx\]'\)"
    ):
        export_onnx(tmp_path, tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match=r"ending in \.onnx"):
        export_onnx(tmp_path, tmp_path / "m.pt")


@needs_onnx
@pytest.mark.slow
def test_staeformer_cli_export_takes_raw_units_like_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx
    import onnxruntime as ort

    run_dir = _run(tmp_path / "runs")
    path = tmp_path / "staeformer.onnx"
    assert main(["export", str(run_dir), "--onnx", str(path)]) == 0
    text = capsys.readouterr().out
    assert "max |difference|" in text and "standardised units (tolerance 1e-4)" in text
    description = json.loads(path.with_suffix(".json").read_text())
    assert description["inputs"]["x"]["shape"] == ["B", 12, 6, 3]
    assert description["check"]["checked"] and description["check"]["max_scaled_diff"] <= 1e-4
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["linearcast.in_steps"] == "12" and props["linearcast.steps_per_day"] == "288"
    # one self-contained file: no external-data file left under the temp name beside it
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "staeformer.json",
        "staeformer.onnx",
    ]
    alone = tmp_path / "copied" / "model.onnx"
    alone.parent.mkdir()
    alone.write_bytes(path.read_bytes())
    onnx.checker.check_model(onnx.load(str(alone)))  # loads with its weights, nothing beside it

    # the graph takes the raw window with its time features and returns data units: the
    # same numbers as `forecast`, which scales in NumPy, on the last 12 steps of the data
    ds = synthetic_traffic(num_nodes=6, days=3, seed=1)
    t = ds.num_steps
    # forecast fills missing readings (null 0) in its input, the graph does not: none here
    last = ds.values[t - 12 :, :, 0]
    last[last == 0] = 100.0
    fc = forecast_run(run_dir, ds, accelerator="cpu")
    x = np.stack(
        [
            ds.values[t - 12 :, :, 0],
            np.repeat(ds.time_of_day()[t - 12 :, None], 6, axis=1),
            np.repeat(ds.day_of_week()[t - 12 :, None], 6, axis=1).astype(np.float32),
        ],
        axis=-1,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = np.repeat(x[None], 5, axis=0).astype(np.float32)  # a batch size not exported with
    (got,) = session.run(["forecast"], {"x": batch})
    assert got.shape == (5, 12, 6, 1)
    scaler = StandardScaler.from_state_dict(load_checkpoint(run_dir / "best.ckpt")["scaler"])
    for b in range(5):
        np.testing.assert_allclose(got[b], fc.values, rtol=0, atol=1e-4 * float(scaler.std))


@needs_onnx
@pytest.mark.slow
def test_elinformer_linear_eala_export_and_a_check_that_can_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # N = 10 > 2·head_dim = 8: spatial attention takes the linear EALA path
    overrides = {**TINY, "spatial_impl": "linear"}
    run_dir = _run(tmp_path / "runs", model="elinformer", model_overrides=overrides,
                   synthetic={"num_nodes": 10, "days": 3, "seed": 2})  # fmt: skip
    res = export_onnx(run_dir, tmp_path / "elinformer.onnx")
    assert res["checked"] and res["max_scaled_diff"] <= 1e-4
    assert res["input_shape"] == ["B", 12, 10, 3] and res["output_shape"] == ["B", 12, 10, 1]

    # the check compares with PyTorch: a pipeline that disagrees is refused
    ckpt = load_checkpoint(run_dir / "best.ckpt")
    scaler = StandardScaler.from_state_dict(ckpt["scaler"])
    meta = dict(ckpt["meta"])
    monkeypatch.setattr(
        export_mod, "_torch_forecast", lambda m, s, x: np.zeros((x.shape[0], 12, 10, 1))
    )
    with pytest.raises(ConfigError, match="does not reproduce the PyTorch forecast"):
        export_mod._check(Path(res["path"]), None, scaler, meta)  # type: ignore[arg-type]


@needs_onnx
@pytest.mark.slow
def test_samovar_export(tmp_path: Path) -> None:
    import onnxruntime as ort

    run_dir = _run(
        tmp_path / "runs",
        model="samovar",
        model_overrides={"d_model": 16, "n_heads": 2, "n_mlp_layers": 1, "n_attn_layers": 1},
        protocol="ltsf",
        protocol_overrides={"in_steps": 48, "out_steps": 12},
        synthetic={"num_nodes": 3, "days": 3, "seed": 3},
        loss="mse",
    )
    res = export_onnx(run_dir, tmp_path / "samovar.onnx")
    assert res["checked"] and res["max_scaled_diff"] <= 1e-4
    assert res["input_shape"] == ["B", 48, 3, 1]  # LTSF models take no time features
    session = ort.InferenceSession(res["path"], providers=["CPUExecutionProvider"])
    raw = synthetic_traffic(num_nodes=3, days=3, seed=3).values[-48:, :, :1]
    (got,) = session.run(["forecast"], {"x": raw[None].astype(np.float32)})
    fc = forecast_run(run_dir, pd.DataFrame(raw[..., 0]).set_axis(
        pd.date_range("2024-01-01", periods=48, freq="5min")), accelerator="cpu")  # fmt: skip
    scaler = StandardScaler.from_state_dict(load_checkpoint(run_dir / "best.ckpt")["scaler"])
    std = np.asarray(scaler.std)[:, None]  # per series
    assert np.max(np.abs(got[0] - fc.values) / std) <= 1e-4


GRAPH_MODELS = {
    "gwnet": {"residual_channels": 4, "dilation_channels": 4, "skip_channels": 8,
              "end_channels": 8, "blocks": 1, "adaptive_embedding_dim": 2},
    "stgcn": {"temporal_channels": 4, "graph_channels": 2, "output_channels": 4},
    "dcrnn": {"rnn_units": 4, "num_rnn_layers": 1},
}  # fmt: skip


@pytest.mark.parametrize("model", sorted(GRAPH_MODELS))
def test_graph_models_are_rebuilt_on_the_runs_graph_for_export(tmp_path: Path, model: str) -> None:
    # the builders need the graph before the weights are loaded (DCRNN's supports are not in
    # the checkpoint's weights); export has no --data, so it uses the graph the checkpoint kept
    run_dir = _run(tmp_path / "runs", model=model, model_overrides=GRAPH_MODELS[model])
    name, meta, _, rebuilt = export_mod._load_run(run_dir)
    trained = load_checkpoint(run_dir / "best.ckpt")["model"]
    assert name == model and meta["num_nodes"] == 6
    for key, value in rebuilt.state_dict().items():
        assert torch.equal(value, trained[key].to(value.dtype)), key
    supports = [b for k, b in rebuilt.named_buffers() if k.startswith(("support", "gso"))]
    assert supports and all(bool(s.abs().sum() > 0) for s in supports)  # a graph, not zeros
    # the checkpoint keeps the graph: the run's data may be gone
    config = json.loads((run_dir / "config.json").read_text())
    config["data"] = str(tmp_path / "gone.csv")
    (run_dir / "config.json").write_text(json.dumps(config))
    *_, again = export_mod._load_run(run_dir)
    for key, value in again.named_buffers():
        assert torch.equal(value, dict(rebuilt.named_buffers())[key]), key
    # a run written before checkpoints kept it, without its data: one sentence with the fix
    ckpt = load_checkpoint(run_dir / "best.ckpt")
    del ckpt["graph"]
    atomic_save(ckpt, run_dir / "best.ckpt")
    with pytest.raises(ConfigError, match=rf"model '{model}' is built on the graph of the run's"):
        export_mod._load_run(run_dir)
