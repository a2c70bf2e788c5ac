"""A diverging run keeps only finite weights whose loss was finite, and says truthfully which
epoch it kept and what went wrong (the data, not the learning rate, when the data is at fault)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from linearcast.cli import main
from linearcast.engine import train
from linearcast.engine.checkpoint import LAST, load_checkpoint
from linearcast.engine.evaluation import non_finite_data, non_finite_weights
from linearcast.errors import TrainingDiverged


def _blow_up_weights_at(monkeypatch: pytest.MonkeyPatch, step: int, value: float) -> None:
    """After optimizer step ``step`` every weight becomes ``value`` (1e37: finite, but the
    forecasts overflow float32)."""
    from linearcast.engine import trainer

    real = trainer.setup_optimization

    def wrapped(cfg: Any, fabric: Any, raw: nn.Module, *args: Any) -> Any:
        model, optimizer, schedule = real(cfg, fabric, raw, *args)
        step_fn, calls = optimizer.step, {"n": 0}

        def step_then_blow_up(*a: Any, **k: Any) -> Any:
            out = step_fn(*a, **k)
            calls["n"] += 1
            if calls["n"] == step:
                with torch.no_grad():
                    for p in raw.parameters():
                        p.fill_(value)
            return out

        optimizer.step = step_then_blow_up
        return model, optimizer, schedule

    monkeypatch.setattr(trainer, "setup_optimization", wrapped)


def test_with_eval_every_the_kept_checkpoint_is_the_last_with_a_finite_loss(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4 steps per epoch: epoch 2 ends with weights of 1e37, and no validation runs on them
    _blow_up_weights_at(monkeypatch, step=8, value=1e37)
    cfg = make_config(model="dlinear", model_overrides={}, max_epochs=4, eval_every=3,
                      run_name="blown")  # fmt: skip
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, verbose=False)
    run = Path(cfg.out_dir) / "blown"
    kept = load_checkpoint(run / LAST)
    assert kept["epoch"] == 1
    weights = kept["model"].values()
    assert all(bool(torch.isfinite(t).all()) and float(t.abs().max()) < 1e6 for t in weights)
    text = str(err.value)
    assert f"{run / LAST} keeps the weights of epoch 1" in text
    assert "at epoch 2" in text and "validation batch" in text


def test_weights_that_became_nan_are_never_kept(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _blow_up_weights_at(monkeypatch, step=4, value=float("nan"))  # the end of epoch 1
    cfg = make_config(model="dlinear", model_overrides={}, max_epochs=3, eval_every=2,
                      run_name="nan")  # fmt: skip
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, verbose=False)
    assert not (Path(cfg.out_dir) / "nan").exists()  # nothing finite to keep
    assert "weights" in str(err.value) and "No checkpoint was written" in str(err.value)


def _csv(tmp_path: Path, rows: slice | None = None, value: float = np.nan) -> Path:
    rng = np.random.default_rng(0)
    values = rng.poisson(20, (700, 4)).astype(float) + 1.0
    if rows is not None:
        values[rows, 1] = value
    path = tmp_path / "counts.csv"
    pd.DataFrame(values).to_csv(path, header=False, index=False)
    return path


def _train(tmp_path: Path, path: Path, *sets: str) -> str:
    args = ["train", "--model", "dlinear", "--data", str(path), "--epochs", "2",
            "--max-train-batches", "3", "--out", str(tmp_path / "runs"), "--quiet",
            "--accelerator", "cpu", "--lr", "1e-3"]  # fmt: skip
    for s in ("data_options.freq_minutes=15", "plots=false", *sets):
        args += ["--set", s]
    assert main(args) == 1
    return ""


def test_non_finite_inputs_are_named_instead_of_the_learning_rate() -> None:
    # the windows fill missing inputs (tests/engine/test_engine_missing_values.py trains on
    # NaN data), so non-finite inputs can only come another way; the message still names them
    from linearcast.engine.divergence import _data_cause

    x, y = torch.ones(2, 4, 3, 1), torch.ones(2, 2, 3, 1)
    x[1, 0, 2, 0] = torch.nan
    text = _data_cause(non_finite_data([(x, y)]), "validation")
    assert "the validation data is not finite" in text and "inputs hold 1 NaN" in text
    assert "--lr" not in text and "learning rate is not the cause" in text
    assert "data_options.non_finite=mask" in text and "null_value=0" not in text


def test_a_first_loss_that_overflows_does_not_blame_the_learning_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _train(tmp_path, _csv(tmp_path, slice(3, 4), 3e38))  # a sentinel far beyond the readings
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "at step 1/" in err and "no weight update had happened yet" in err
    assert "--lr" not in err and "sentinel" in err and "std reaches" in err


def test_the_helpers_find_what_a_loss_would_read() -> None:
    x = torch.zeros(3, 4, 2, 1)
    y = torch.zeros(3, 2, 2, 1)
    x[1, 0, 0, 0] = torch.nan
    y[2, 0, 0, 0] = torch.inf
    y[0, 0, 0, 0] = torch.nan  # masked out of every loss: not counted
    assert non_finite_data([(x, y)]) == [1, 1, 2, 3]

    class Fabric:
        world_size = 1

    module = nn.Linear(2, 2)
    assert non_finite_weights(Fabric(), module) == []  # type: ignore[arg-type]
    module.register_buffer("running", torch.tensor([1.0, torch.inf]))
    assert non_finite_weights(Fabric(), module) == ["running"]  # type: ignore[arg-type]
