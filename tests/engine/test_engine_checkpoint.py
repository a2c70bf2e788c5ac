"""Atomic checkpoints, early stopping state and run directories that are never reused."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from linearcast.engine import checkpoint
from linearcast.engine.checkpoint import EarlyStopping, atomic_save, load_checkpoint
from linearcast.engine.run_dir import create_run_dir, read_history, write_history
from linearcast.errors import ConfigError


def _ckpt(value: float) -> dict[str, Any]:
    return {
        "format": checkpoint.FORMAT,
        "version": checkpoint.VERSION,
        "model": {"w": torch.full((64, 64), value)},
    }


def test_failure_while_writing_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.ckpt"
    atomic_save(_ckpt(1.0), path)
    real_save = torch.save

    def broken_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"PK\x03\x04 partial bytes of a zip archive")  # what a crash leaves behind
        f.flush()
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save(_ckpt(2.0), path)
    monkeypatch.setattr(torch, "save", real_save)

    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.full((64, 64), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left


def test_non_atomic_write_would_have_corrupted_it(tmp_path: Path) -> None:
    """The failure mode the atomic write prevents: a partial file is not loadable."""
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"PK\x03\x04 partial bytes of a zip archive")
    with pytest.raises(ConfigError, match="cannot read the checkpoint"):
        load_checkpoint(path)


def test_successful_write_replaces_and_load_checks_the_format(tmp_path: Path) -> None:
    path = tmp_path / "best.ckpt"
    atomic_save(_ckpt(1.0), path)
    atomic_save(_ckpt(3.0), path)
    assert float(load_checkpoint(path)["model"]["w"][0, 0]) == 3.0
    torch.save({"weights": 1}, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="not a linearcast checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_rng_state_round_trip() -> None:
    state = checkpoint.rng_state()
    a = torch.rand(3)
    checkpoint.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_early_stopping_counts_non_improving_epochs() -> None:
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert es.step(5.0, 1) and not es.should_stop
    assert not es.step(4.95, 2)  # within min_delta: not an improvement
    assert not es.should_stop
    assert not es.step(6.0, 3)
    assert es.should_stop and es.best_epoch == 1 and es.best == 5.0
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(es.state_dict())
    assert restored.should_stop and restored.bad_epochs == 2
    assert not EarlyStopping(patience=0, bad_epochs=100).should_stop  # 0 = never stop


def test_run_dirs_in_the_same_second_are_distinct(tmp_path: Path) -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5)
    a = create_run_dir(tmp_path, "elinformer", "synthetic", now=now)
    (a / "metrics.json").write_text("{}")
    b = create_run_dir(tmp_path, "elinformer", "synthetic", now=now)
    c = create_run_dir(tmp_path, "elinformer", "synthetic", now=now)
    assert a.name == "elinformer-synthetic-20250102-030405"
    assert (b.name, c.name) == (a.name + "-1", a.name + "-2")
    assert (a / "metrics.json").read_text() == "{}"  # the first run is untouched
    assert not any(os.scandir(b))


def test_named_run_dir_is_never_reused(tmp_path: Path) -> None:
    create_run_dir(tmp_path, "m", "d", name="mine")
    with pytest.raises(ConfigError, match="exists"):
        create_run_dir(tmp_path, "m", "d", name="mine")


def test_history_csv_round_trip(tmp_path: Path) -> None:
    rows = [
        {"epoch": 1, "train_loss": 2.5, "val_loss": 2.0, "lr": 1e-3, "seconds": 1.0},
        {"epoch": 2, "train_loss": 2.0, "lr": 1e-3, "seconds": 1.0},  # no validation
    ]
    back = read_history(write_history(tmp_path / "history.csv", rows))
    assert back[0]["val_loss"] == 2.0 and back[1]["epoch"] == 2
    assert back[1]["val_loss"] != back[1]["val_loss"]  # NaN where no validation ran
