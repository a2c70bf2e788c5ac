"""The run's loaders: worker processes capped at the CPUs, final loaders not kept alive."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from linearcast.engine import loaders
from linearcast.engine.config import TrainConfig
from linearcast.engine.loaders import make_loaders, worker_count
from linearcast.engine.setup import make_fabric, prepare_data


@pytest.mark.parametrize("requested", [0, 1, 2])
def test_workers_up_to_the_cpus_are_kept_without_a_word(
    requested: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loaders, "usable_cpus", lambda: 2)
    with caplog.at_level(logging.WARNING):
        assert worker_count(requested) == requested
    assert caplog.records == []


def test_more_workers_than_cpus_are_capped_with_the_setting_that_fits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loaders, "usable_cpus", lambda: 2)
    with caplog.at_level(logging.WARNING):
        assert worker_count(1000) == 2
    (record,) = caplog.records
    assert "num_workers=1000" in record.getMessage()
    assert "--set num_workers=2 " in record.getMessage()


def test_usable_cpus_is_a_positive_count() -> None:
    assert loaders.usable_cpus() >= 1


def test_a_run_asking_for_a_thousand_workers_gets_the_cpus_and_starts_none_yet(
    tmp_path: Path, tiny: Callable[..., TrainConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a thousand persistent workers in each of four loaders exhausted a 24 GiB machine
    monkeypatch.setattr(loaders, "usable_cpus", lambda: 2)
    cfg = tiny(tmp_path, num_workers=1000)
    made = make_loaders(cfg, prepare_data(cfg), make_fabric(cfg))
    parts = [made.train, made.val, made.full_val, made.test]
    assert [p.num_workers for p in parts] == [2, 2, 2, 2]
    # the per-epoch loaders keep their workers between epochs; the final ones run once
    assert [p.persistent_workers for p in parts] == [True, True, False, False]
