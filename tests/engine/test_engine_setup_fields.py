"""The engine fills a model's data-derived fields from the dataset."""

from __future__ import annotations

from linearcast.data import get_protocol, synthetic_traffic
from linearcast.engine.config import TrainConfig
from linearcast.engine.setup import build_model


def test_steps_per_day_comes_from_the_dataset_unless_overridden() -> None:
    ds = synthetic_traffic(num_nodes=6, days=8, steps_per_day=48, seed=0)
    prep = get_protocol("pems", in_steps=48, out_steps=12).prepare(ds)
    model = build_model(TrainConfig(model="seasonal-naive"), prep)
    assert model.season == 48  # type: ignore[attr-defined]
    sta = build_model(TrainConfig(model="elinformer"), get_protocol("pems").prepare(ds))
    assert sta.config.steps_per_day == 48  # type: ignore[attr-defined]
    cfg = TrainConfig(model="elinformer", model_overrides={"steps_per_day": 288})
    assert build_model(cfg, get_protocol("pems").prepare(ds)).config.steps_per_day == 288  # type: ignore[attr-defined]
