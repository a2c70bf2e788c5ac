"""Options that exist can be reached, metrics say what they measured, failures leave no mess."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.engine import train
from linearcast.engine.trainer import Trainer

TINY = (
    "model_overrides={input_embedding_dim=4, tod_embedding_dim=4, dow_embedding_dim=4, "
    "adaptive_embedding_dim=4, feed_forward_dim=16, num_layers=1}"
)


def _counts_csv(tmp_path: Path, zero_fraction: float) -> Path:
    """A headerless [T, N] CSV of counts with many genuine zeros (bus boardings)."""
    rng = np.random.default_rng(0)
    values = rng.poisson(20, (700, 4)).astype(float)
    values[rng.random(values.shape) < zero_fraction] = 0.0
    path = tmp_path / "boardings.csv"
    pd.DataFrame(values).to_csv(path, header=False, index=False)
    return path


def _argv(path: Path, tmp_path: Path, *sets: str) -> list[str]:
    args = ["train", "--data", str(path), "--epochs", "1", "--max-train-batches", "2"]
    args += ["--out", str(tmp_path / "runs"), "--quiet", "--accelerator", "cpu", "--set", TINY]
    for s in ("data_options.freq_minutes=15", "plots=false", *sets):
        args += ["--set", s]
    return args


def _metrics(tmp_path: Path) -> dict[str, Any]:
    (run,) = (tmp_path / "runs").iterdir()
    result: dict[str, Any] = json.loads((run / "metrics.json").read_text())
    return result


def test_masked_targets_are_counted_warned_about_and_the_override_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _counts_csv(tmp_path, 0.4)
    with caplog.at_level(logging.WARNING):
        assert main(_argv(path, tmp_path)) == 0
    frac = _metrics(tmp_path)["masked_fraction"]["test"]
    assert 0.35 < frac < 0.45
    assert "--set protocol_overrides.null_value=nan" in caplog.text
    # the reader's null value takes effect (it used to be overridden by the preset's 0)
    for d in (tmp_path / "runs").iterdir():
        import shutil

        shutil.rmtree(d)
    assert main(_argv(path, tmp_path, "data_options.null_value=nan")) == 0
    assert _metrics(tmp_path)["masked_fraction"]["test"] == 0.0


def test_the_run_header_states_the_masked_fraction(make_config: Any) -> None:
    lines: list[str] = []
    trainer = Trainer(make_config(), verbose=True)
    trainer._say = lambda text, result=False: lines.append(text)  # type: ignore[method-assign]
    trainer.fit()
    header = next(line for line in lines if line.startswith("targets"))
    assert "of the test targets are missing" in header and "equal to the null value 0" in header
    assert "masked, not scored (train " in header and "missing inputs are filled" in header
    assert "MAPE also leaves out |y| <=" in header


def test_an_unquoted_date_is_a_date(tmp_path: Path) -> None:
    path = _counts_csv(tmp_path, 0.0)
    assert main(_argv(path, tmp_path, "data_options.start=2020-10-01")) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "config.json").read_text())["data_options"]["start"] == "2020-10-01"


def test_a_failed_start_leaves_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _counts_csv(tmp_path, 0.0)
    # diverges in the first epoch: no checkpoint, so nothing is kept
    assert main(_argv(path, tmp_path, "lr=1e9")) == 1
    assert "the run directory is removed" in capsys.readouterr().err
    assert not any((tmp_path / "runs").iterdir())


def test_print_config_into_head_ends_quietly(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -m linearcast train --print-config | head -1"
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "{"
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


def test_standardised_protocols_print_no_mape_per_epoch() -> None:
    row = {"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "val_MAE": 0.3, "val_RMSE": 0.6,
           "val_MAPE": 812.0, "lr": 1e-3, "seconds": 1.0}  # fmt: skip
    assert "MAPE" not in Trainer._epoch_line(row, 5, False, "scaled")
    assert "MAPE 812.00%" in Trainer._epoch_line(row, 5, False, "raw")


def test_training_on_a_new_layout_end_to_end(tmp_path: Path) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    n, days, steps = 5, 6, 48
    rng = np.random.default_rng(1)
    tensor = rng.poisson(30, (n, days, steps)).astype(np.uint16)
    scipy_io.savemat(tmp_path / "inflow_tensor.mat", {"inflow_tensor": tensor})
    scipy_io.savemat(tmp_path / "outflow_tensor.mat", {"outflow_tensor": tensor})
    cfg_sets = {"data_options": {"adjacency": "none"}}
    from linearcast.engine import TrainConfig

    cfg = TrainConfig(
        model="elinformer",
        data=str(tmp_path / "inflow_tensor.mat"),
        model_overrides={
            "input_embedding_dim": 4,
            "tod_embedding_dim": 4,
            "dow_embedding_dim": 4,
            "adaptive_embedding_dim": 4,
            "feed_forward_dim": 16,
            "num_layers": 1,
        },
        max_epochs=1,
        max_train_batches=2,
        out_dir=str(tmp_path / "runs"),
        plots=False,
        accelerator="cpu",
        **cfg_sets,  # type: ignore[arg-type]
    )
    result = train(cfg, verbose=False)
    assert result.metrics["dataset"]["shape"] == [days * steps, n, 2]
    assert np.isfinite(result.metrics["test"]["overall"]["MAE"])
