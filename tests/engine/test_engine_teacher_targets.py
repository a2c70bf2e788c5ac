"""Models that read the truth while training (``ModelSpec.takes_targets``: DCRNN's scheduled
sampling) get each window's targets in their own scaled units; the others never see them."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from linearcast.engine import train
from linearcast.models import REGISTRY
from linearcast.models.dcrnn import DCRNN


def test_dcrnn_trains_with_its_targets_in_scaled_units(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert REGISTRY["dcrnn"].takes_targets and not REGISTRY["elinformer"].takes_targets
    seen: list[tuple[torch.Tensor, torch.Tensor | None, bool]] = []
    real = DCRNN.forward

    def spy(self: DCRNN, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        seen.append(
            (x.detach().clone(), None if targets is None else targets.clone(), self.training)
        )
        return real(self, x, targets)

    monkeypatch.setattr(DCRNN, "forward", spy)
    cfg = make_config(
        model="dcrnn",
        model_overrides={"rnn_units": 4, "num_rnn_layers": 1},
        max_train_batches=2,
        max_eval_batches=1,
    )
    train(cfg, verbose=False)
    training = [(x, t) for x, t, is_training in seen if is_training]
    evaluating = [t for _, t, is_training in seen if not is_training]
    assert len(training) == 2 and all(t is not None for _, t in training)
    assert evaluating and all(t is None for t in evaluating)  # free-running when evaluated
    for x, t in training:
        assert t is not None and t.shape[:3] == (x.shape[0], 12, x.shape[2])
        # the model's units: the synthetic flows (hundreds) standardised by the run's scaler
        finite = t[torch.isfinite(t)]
        assert finite.abs().mean() < 5 and finite.abs().max() < 50
