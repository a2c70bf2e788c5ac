"""The training engine: a short loop on Lightning Fabric, checkpoints, run directories.

Using a finished run (evaluate, predict, forecast, export) is :mod:`linearcast.serve`, the
layer above; nothing here imports it.

Typical use::

    from linearcast.engine import preset, train

    result = train(preset("demo"))            # trains, tests, writes runs/<model>-<data>-<time>
    result.metrics["test"]["overall"]["MAE"]

    from linearcast.engine import TrainConfig
    cfg = TrainConfig(model="elinformer", data="PEMS08.npz", protocol="pems", max_epochs=50)
    cfg = cfg.with_sets(["lr=3e-4", "model_overrides.num_layers=2"])

Names are imported on first use (``import linearcast.engine`` loads neither torch nor Fabric).
See ``docs/engine.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linearcast._lazy import lazy_exports

if TYPE_CHECKING:
    from linearcast.engine.checkpoint import EarlyStopping, atomic_save, load_checkpoint
    from linearcast.engine.config import PRESETS, SyntheticConfig, TrainConfig, preset
    from linearcast.engine.evaluation import EvalResult, evaluate
    from linearcast.engine.run_dir import create_run_dir
    from linearcast.engine.samplers import EpochShardSampler, ShardSampler
    from linearcast.engine.trainer import RunResult, Trainer, train

_EXPORTS: dict[str, str] = {
    "EarlyStopping": "checkpoint",
    "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint",
    "PRESETS": "config",
    "SyntheticConfig": "config",
    "TrainConfig": "config",
    "preset": "config",
    "EvalResult": "evaluation",
    "EpochShardSampler": "samplers",
    "ShardSampler": "samplers",
    "evaluate": "evaluation",
    "create_run_dir": "run_dir",
    "RunResult": "trainer",
    "Trainer": "trainer",
    "train": "trainer",
}

__all__ = [
    "PRESETS",
    "EarlyStopping",
    "EpochShardSampler",
    "EvalResult",
    "RunResult",
    "ShardSampler",
    "SyntheticConfig",
    "TrainConfig",
    "Trainer",
    "atomic_save",
    "create_run_dir",
    "evaluate",
    "load_checkpoint",
    "preset",
    "train",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
