"""Atomic checkpoints, early stopping state and run directories that are never reused."""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from checkpoint_cases import valid_checkpoint

from linearcast.engine import checkpoint
from linearcast.engine.checkpoint import EarlyStopping, atomic_save, load_checkpoint
from linearcast.engine.run_dir import create_run_dir, read_history, write_history
from linearcast.errors import ConfigError


def _ckpt(value: float) -> dict[str, Any]:
    return valid_checkpoint(value)


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


def test_version_1_raw_rng_tuples_still_restore_every_generator() -> None:
    # version-1 checkpoints stored random.getstate() / np.random.get_state() tuples as they are
    random.seed(3)
    np.random.seed(3)  # noqa: NPY002
    state = {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
             "torch": torch.get_rng_state()}  # fmt: skip
    expected = (random.random(), float(np.random.rand()), torch.rand(2))  # noqa: NPY002
    random.seed(9)
    np.random.seed(9)  # noqa: NPY002
    torch.manual_seed(9)
    checkpoint.set_rng_state(state)
    got = (random.random(), float(np.random.rand()), torch.rand(2))  # noqa: NPY002
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


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


def test_temp_file_is_a_hidden_sibling_of_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.replace is atomic only within one file system: the temp file must sit beside the target
    moves: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        moves.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = atomic_save(_ckpt(1.0), tmp_path / "last.ckpt")
    ((src, dst),) = moves
    assert dst == path and src.parent == path.parent
    assert src.name.startswith(".last.ckpt.") and src.name.endswith(".tmp")


def test_a_checkpoint_with_the_engine_contents_loads_where_asked(tmp_path: Path) -> None:
    # the engine also saves numpy/python RNG states, as tensors and numbers (weights_only loads)
    path = atomic_save({**_ckpt(2.0), "rng": checkpoint.rng_state()}, tmp_path / "last.ckpt")
    state = load_checkpoint(path)
    now = checkpoint.rng_state()
    assert torch.equal(state["rng"]["python"]["internal"], now["python"]["internal"])
    assert torch.equal(state["rng"]["numpy"]["keys"], now["numpy"]["keys"])
    assert load_checkpoint(path, map_location="meta")["model"]["w"].device.type == "meta"


def test_checkpoint_versions_newer_than_ours_are_refused(tmp_path: Path) -> None:
    newer = atomic_save({**_ckpt(1.0), "version": checkpoint.VERSION + 1}, tmp_path / "a.ckpt")
    with pytest.raises(ConfigError, match="newer than this linearcast reads"):
        load_checkpoint(newer)
    unversioned = {k: v for k, v in _ckpt(1.0).items() if k != "version"}
    with pytest.raises(ConfigError, match="expected an integer checkpoint version, found None"):
        load_checkpoint(atomic_save(unversioned, tmp_path / "b.ckpt"))


def test_cuda_rng_states_are_saved_and_restored_when_cuda_is_in_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restored: list[Any] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: ["gpu0-state"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = checkpoint.rng_state()
    assert state["cuda"] == ["gpu0-state"]
    checkpoint.set_rng_state(state)
    assert restored == [["gpu0-state"]]
    checkpoint.set_rng_state({k: v for k, v in state.items() if k != "cuda"})  # a CPU run's
    assert restored == [["gpu0-state"]]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # CUDA present, unused
    assert "cuda" not in checkpoint.rng_state()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # resumed on a CPU machine
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert "cuda" not in checkpoint.rng_state()
    checkpoint.set_rng_state(state)
    assert restored == [["gpu0-state"]]


def test_early_stopping_state_round_trip_and_ties() -> None:
    es = EarlyStopping(patience=3, min_delta=0.0)
    assert es.step(5.0, 1) and not es.step(5.0, 2)  # a tie is not an improvement
    assert es.state_dict() == {
        "patience": 3, "min_delta": 0.0, "best": 5.0, "best_epoch": 1, "bad_epochs": 1,
    }  # fmt: skip
    restored = EarlyStopping(patience=3)
    restored.load_state_dict(es.state_dict())
    assert (restored.best, restored.best_epoch, restored.bad_epochs) == (5.0, 1, 1)
    assert not restored.step(5.0, 3) and restored.step(4.0, 4) and restored.best_epoch == 4


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
