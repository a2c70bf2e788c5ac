"""A run the serve tests share: last-value (nothing to learn, trained in a second) on an hourly
CSV, for the checks on what using a run reads and writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from linearcast.engine import TrainConfig, train


def _hourly_frame(rows: int, freq: str = "h") -> pd.DataFrame:
    """``date, s0..s3``: four smooth daily cycles with noise, ``rows`` steps of ``freq``."""
    rng = np.random.default_rng(0)
    hours = np.arange(rows)
    values = {f"s{i}": 50 + 10 * np.sin(hours * 2 * np.pi / 24 + i) + rng.standard_normal(rows)
              for i in range(4)}  # fmt: skip
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=rows, freq=freq), **values})


@pytest.fixture(scope="module")
def hourly_run(
    tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]
) -> tuple[Path, Path]:
    """``(run_dir, data)``: last-value under ltsf (24 -> 6 steps, no time features) trained on
    ``data``, a 400-row hourly CSV; the checkpoint records ``freq_minutes`` 60."""
    root = tmp_path_factory.mktemp("hourly")
    data = root / "hourly.csv"
    _hourly_frame(400).to_csv(data, index=False)
    cfg = tiny(root / "runs", model="last-value", model_overrides={}, data=str(data),
               protocol="ltsf", protocol_overrides={"in_steps": 24, "out_steps": 6},
               loss="mse", tensorboard=False, baseline="")  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    try:
        return train(cfg, verbose=False, report=False).run_dir, data
    finally:
        torch.set_num_threads(threads)
