"""The schedule says when its scheduler steps: OneCycle after every batch, MultiStep per epoch."""

from __future__ import annotations

import pytest
import torch

from linearcast.engine.config import TrainConfig
from linearcast.engine.setup import Schedule, make_schedule


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_onecycle_steps_per_batch_and_multistep_per_epoch() -> None:
    onecycle = make_schedule(TrainConfig(scheduler="onecycle", max_epochs=2), _optimizer(), 5)
    multistep = make_schedule(TrainConfig(scheduler="multistep", milestones=[1]), _optimizer(), 5)
    for schedule, per_batch in ((onecycle, True), (multistep, False)):
        assert schedule.per_batch is per_batch and schedule.scheduler is not None
        assert schedule.scheduler.last_epoch == 0
        schedule.after_batch()
        assert schedule.scheduler.last_epoch == (1 if per_batch else 0)
        schedule.after_epoch()
        assert schedule.scheduler.last_epoch == 1


def test_no_scheduler_never_steps_and_saves_none() -> None:
    schedule = make_schedule(TrainConfig(scheduler="none"), _optimizer(), 5)
    assert schedule == Schedule(None)
    schedule.after_batch()
    schedule.after_epoch()
    assert schedule.state_dict() is None
    schedule.load_state_dict({"anything": 1})  # nothing to restore
