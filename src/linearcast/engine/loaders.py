"""The data loaders of a run: training shuffled per epoch and sharded, evaluation sharded.

Training windows go through :class:`~linearcast.engine.samplers.EpochShardSampler` (reshuffled
per epoch, padded so that every rank runs as many batches), validation and test windows through
the unpadded :class:`~linearcast.engine.samplers.ShardSampler`, so that metric sums added over
the ranks are exact.
"""

from __future__ import annotations

import itertools
import logging
import os
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

log = logging.getLogger(__name__)


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


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(requested: int) -> int:
    """``num_workers`` capped at :func:`usable_cpus` (with a warning when it is capped).

    The windows are already in memory, so a worker beyond the CPUs loads nothing faster; each
    is a process of its own (hundreds of MB), and four loaders' worth of a large number can
    exhaust the machine's memory.
    """
    cpus = usable_cpus()
    if requested <= cpus:
        return requested
    log.warning(
        "num_workers=%d is more than the %d CPU(s) this process may use; using %d (each "
        "worker is a process of its own, so more only costs memory); set --set "
        "num_workers=%d or fewer to silence this.",
        requested,
        cpus,
        cpus,
        cpus,
    )
    return cpus


def _loader(
    data: Any, batch_size: int, sampler: Any, workers: int, *, persistent: bool
) -> DataLoader[Any]:
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=persistent and workers > 0,
    )


def make_loaders(config: TrainConfig, prep: PreparedData, fabric: Fabric) -> RunLoaders:
    """This rank's loaders of the training, validation and test windows, set up by Fabric."""
    cfg = config
    world, rank = fabric.world_size, fabric.global_rank
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    train_sampler = EpochShardSampler(prep.train, rank, world, seed=cfg.seed)
    workers = worker_count(cfg.num_workers)

    def shard(part: Any) -> ShardSampler:
        return ShardSampler(part, rank, world)

    val_part: Any = prep.val
    if cfg.max_val_batches and cfg.max_val_batches * eval_bs < len(prep.val):
        # per-epoch validation on windows spread evenly over the whole validation period
        # (the first ones would all come from its start); the final numbers use all of it
        picks = np.linspace(0, len(prep.val) - 1, cfg.max_val_batches * eval_bs).round()
        val_part = torch.utils.data.Subset(prep.val, np.unique(picks.astype(int)).tolist())
    train_loader, val_loader, full_val_loader, test_loader = fabric.setup_dataloaders(
        # the per-epoch loaders keep their workers; the final ones run once
        _loader(prep.train, cfg.batch_size, train_sampler, workers, persistent=True),
        _loader(val_part, eval_bs, shard(val_part), workers, persistent=True),
        _loader(prep.val, eval_bs, shard(prep.val), workers, persistent=False),
        _loader(prep.test, eval_bs, shard(prep.test), workers, persistent=False),
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
