"""Samplers: the training shuffle changes every epoch and equals DistributedSampler's."""

from __future__ import annotations

import pytest
from torch.utils.data import DistributedSampler

from linearcast.engine.samplers import EpochShardSampler, ShardSampler

DATA = list(range(23))  # 23 windows: does not divide by 2 or 4, so shards are padded


def _indices(sampler: EpochShardSampler, epoch: int) -> list[int]:
    sampler.use_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize(("world", "seed"), [(1, 0), (2, 7), (4, 123)])
def test_epoch_shards_equal_distributed_sampler(world: int, seed: int) -> None:
    for epoch in (1, 2, 5):
        for rank in range(world):
            ours = EpochShardSampler(DATA, rank, world, seed=seed)
            ref = DistributedSampler(DATA, num_replicas=world, rank=rank, seed=seed, shuffle=True)
            ref.set_epoch(epoch)
            assert _indices(ours, epoch) == list(ref), (epoch, rank)
            assert len(ours) == len(ref)


def test_each_epoch_gets_its_own_permutation() -> None:
    sampler = EpochShardSampler(DATA, seed=3)
    orders = [_indices(sampler, epoch) for epoch in range(1, 6)]
    assert all(sorted(order) == DATA for order in orders)
    assert len({tuple(order) for order in orders}) == len(orders)
    # the seed moves every epoch's permutation, and one epoch is reproducible
    assert _indices(EpochShardSampler(DATA, seed=4), 2) != orders[1]
    assert _indices(EpochShardSampler(DATA, seed=3), 2) == orders[1]


def test_padded_shards_cover_every_window_and_unshuffled_keeps_order() -> None:
    shards = [_indices(EpochShardSampler(DATA, r, 4, seed=1), 3) for r in range(4)]
    assert {len(s) for s in shards} == {6}  # 24 = 23 + one repeated window
    seen = [i for s in shards for i in s]
    assert len(seen) == 24 and set(seen) == set(DATA)
    plain = [_indices(EpochShardSampler(DATA, r, 2, shuffle=False), 9) for r in range(2)]
    assert plain == [list(range(0, 23, 2)), [*range(1, 23, 2), 0]]


def test_shard_sampler_sees_every_window_once_without_padding() -> None:
    shards = [list(ShardSampler(DATA, r, 4)) for r in range(4)]
    assert sorted(i for s in shards for i in s) == DATA
    assert [len(ShardSampler(DATA, r, 4)) for r in range(4)] == [len(s) for s in shards]


def test_defaults_are_one_process_seed_0_epoch_0() -> None:
    ref = DistributedSampler(DATA, num_replicas=1, rank=0, seed=0, shuffle=True)  # epoch 0
    assert list(EpochShardSampler(DATA)) == list(ref)  # before any use_epoch call
    assert list(ShardSampler(DATA)) == DATA
