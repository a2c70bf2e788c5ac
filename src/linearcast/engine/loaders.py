"""The data loaders of a run: training shuffled per epoch and sharded, evaluation sharded.

Training windows go through :class:`~linearcast.engine.samplers.EpochShardSampler` (reshuffled
per epoch, padded so that every rank runs as many batches), validation and test windows through
the unpadded :class:`~linearcast.engine.samplers.ShardSampler`, so that metric sums added over
the ranks are exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from linearcast.engine.config import TrainConfig
from linearcast.engine.samplers import EpochShardSampler, ShardSampler

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData


@dataclass
class RunLoaders:
    """The loaders :func:`make_loaders` sets up (as Fabric returns them).

    Attributes:
        train_sampler: the training sampler (``use_epoch`` reshuffles it).
        train: training batches.
        val: the per-epoch validation batches (``max_val_batches`` spread over the period).
        full_val: every validation window (the final numbers).
        test: every test window.
        steps_per_epoch: training batches per epoch (``max_train_batches`` at most).
    """

    train_sampler: EpochShardSampler
    train: Any
    val: Any
    full_val: Any
    test: Any
    steps_per_epoch: int


def _loader(config: TrainConfig, data: Any, batch_size: int, sampler: Any) -> DataLoader[Any]:
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
    )


def make_loaders(config: TrainConfig, prep: PreparedData, fabric: Fabric) -> RunLoaders:
    """This rank's loaders of the training, validation and test windows, set up by Fabric."""
    cfg = config
    world, rank = fabric.world_size, fabric.global_rank
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    train_sampler = EpochShardSampler(prep.train, rank, world, seed=cfg.seed)
    val_part: Any = prep.val
    if cfg.max_val_batches and cfg.max_val_batches * eval_bs < len(prep.val):
        # per-epoch validation on windows spread evenly over the whole validation period
        # (the first ones would all come from its start); the final numbers use all of it
        picks = np.linspace(0, len(prep.val) - 1, cfg.max_val_batches * eval_bs).round()
        val_part = torch.utils.data.Subset(prep.val, np.unique(picks.astype(int)).tolist())
    train_loader, val_loader, full_val_loader, test_loader = fabric.setup_dataloaders(
        _loader(cfg, prep.train, cfg.batch_size, train_sampler),
        _loader(cfg, val_part, eval_bs, ShardSampler(val_part, rank, world)),
        _loader(cfg, prep.val, eval_bs, ShardSampler(prep.val, rank, world)),
        _loader(cfg, prep.test, eval_bs, ShardSampler(prep.test, rank, world)),
        use_distributed_sampler=False,
    )
    steps_per_epoch = len(train_loader)
    if cfg.max_train_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.max_train_batches)
    return RunLoaders(
        train_sampler=train_sampler,
        train=train_loader,
        val=val_loader,
        full_val=full_val_loader,
        test=test_loader,
        steps_per_epoch=steps_per_epoch,
    )


def fit_batches(config: TrainConfig, prep: PreparedData) -> Iterable[Any]:
    """Training batches in order for a closed-form ``fit`` (limited by max_train_batches)."""
    loader = DataLoader(prep.train, batch_size=config.eval_batch_size or config.batch_size)
    return itertools.islice(loader, config.max_train_batches or None)
