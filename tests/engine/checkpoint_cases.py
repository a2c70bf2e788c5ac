"""A complete, valid checkpoint dict as training writes it, for loader tests to alter."""

from __future__ import annotations

from typing import Any

import torch

from linearcast.engine import checkpoint


def valid_checkpoint(value: float = 1.0, **changes: Any) -> dict[str, Any]:
    """Every entry ``save_checkpoint`` writes, small; ``changes`` replace top-level entries."""
    ckpt: dict[str, Any] = {
        "format": checkpoint.FORMAT,
        "version": checkpoint.VERSION,
        "model": {"w": torch.full((64, 64), value), "b": torch.zeros(64)},
        "optimizer": None,
        "scheduler": None,
        "epoch": 1,
        "global_step": 4,
        "early_stopping": checkpoint.EarlyStopping().state_dict(),
        "rng": checkpoint.rng_state(),
        "scaler": {"mode": "global", "mean": 1.5, "std": 2.0, "fitted": True},
        "config": {"model": "elinformer"},
        "history": [{"epoch": 1, "train_loss": 0.5}],
        "meta": {
            "model": "elinformer",
            "num_nodes": 6,
            "in_steps": 12,
            "out_steps": 12,
            "input_channels": 3,
            "protocol": "pems",
            "dataset": "synthetic",
            "null_value": 0.0,
            "steps_per_day": 288,
            "freq_minutes": 5,
        },
    }
    ckpt.update(changes)
    return ckpt
