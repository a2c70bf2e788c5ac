"""Shared test settings, and the tiny training config the engine and serve tests share.

Tests run two xdist workers on two cores; letting each worker's torch also use two threads
oversubscribes the cores, and small ops then spin-wait (a 10 ms step becomes > 1 s). One
intra-op thread per worker is set here, per test, and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from linearcast.engine.config import TrainConfig


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_MODEL = {
    "input_embedding_dim": 4,
    "tod_embedding_dim": 4,
    "dow_embedding_dim": 4,
    "adaptive_embedding_dim": 4,
    "feed_forward_dim": 16,
    "num_layers": 1,
    "dropout": 0.1,  # kept > 0 so that resume tests depend on the restored RNG state
}


def tiny_config(out_dir: Path, **changes: object) -> TrainConfig:
    """ELinFormer with 1 layer of width 16 on 6 synthetic sensors over 3 days (497 windows)."""
    cfg = TrainConfig(
        model="elinformer",
        model_overrides=dict(TINY_MODEL),
        data="synthetic",
        synthetic={"num_nodes": 6, "days": 3, "seed": 1},  # type: ignore[arg-type]
        protocol="pems",
        batch_size=32,
        max_epochs=1,
        lr=3e-3,
        loss="masked_mae",
        max_train_batches=4,
        accelerator="cpu",
        out_dir=str(out_dir),
        plots=False,
    )
    return cfg.replace(**changes) if changes else cfg


MakeConfig = Callable[..., TrainConfig]


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """``make_config(**changes)``: :func:`tiny_config` writing runs under ``tmp_path/runs``."""

    def make(**changes: object) -> TrainConfig:
        return tiny_config(tmp_path / "runs", **changes)

    return make


@pytest.fixture(scope="session")
def tiny() -> Callable[..., TrainConfig]:
    """:func:`tiny_config` itself, for module-scoped fixtures (they cannot use ``make_config``)."""
    return tiny_config
