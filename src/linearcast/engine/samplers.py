"""Samplers that split windows between processes.

- :class:`EpochShardSampler` (training): a seeded permutation per epoch, sharded and padded so
  that every process runs the same number of batches (DDP needs that).
- :class:`ShardSampler` (validation/test): every window exactly once over all processes, no
  padding, so that metric sums added across processes are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, rank + 2·world, ...`` of a dataset, in order, unpadded.

    Args:
        data: the dataset (only its length is used).
        rank: this process's global rank.
        world_size: number of processes.
    """

    def __init__(self, data: Sized, rank: int = 0, world_size: int = 1) -> None:
        self.length = len(data)
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


class EpochShardSampler(Sampler[int]):
    """A seeded shuffle per epoch, sharded over processes, padded to equal shard sizes.

    The same indices as ``torch.utils.data.DistributedSampler`` (permutation seeded with
    ``seed + epoch``, padded by repeating its first indices, every ``world_size``-th index from
    ``rank``), but the engine owns the epoch: Fabric calls ``set_epoch`` on any sampler that has
    one with its own count of iterations, which restarts at 0 when a run is resumed -- so this
    sampler's method is named :meth:`use_epoch` instead.

    Args:
        data: the dataset (only its length is used).
        rank: this process's global rank.
        world_size: number of processes.
        seed: shuffling seed.
        shuffle: shuffle (else the natural order, still sharded and padded).
    """

    def __init__(
        self, data: Sized, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True
    ) -> None:
        self.length = len(data)
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.epoch = 0

    def use_epoch(self, epoch: int) -> None:
        """Choose the permutation of this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.length / self.world_size)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.length, generator=g).tolist()
        else:
            indices = list(range(self.length))
        total = len(self) * self.world_size
        while len(indices) < total:  # pad with the first indices, as DistributedSampler
            indices += indices[: total - len(indices)]
        return iter(indices[self.rank : total : self.world_size])
