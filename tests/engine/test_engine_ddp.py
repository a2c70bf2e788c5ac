"""Two-process DDP on CPU (gloo) through the command line, as a user runs it.

``--strategy ddp`` uses Fabric's subprocess launcher: the first process re-runs
``python -m linearcast train ...`` once more for rank 1. The test checks that the run finishes,
that each rank trained on its own shard of the windows (exactly the windows its sampler
assigns), and that the validation and test metrics, summed over both ranks, equal a
single-process evaluation of the same weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from linearcast.engine.config import TrainConfig
from linearcast.engine.samplers import EpochShardSampler
from linearcast.engine.setup import prepare_data
from linearcast.serve.inference import evaluate_run

TINY_SETS = [
    "--set",
    "model_overrides={input_embedding_dim=4, tod_embedding_dim=4, dow_embedding_dim=4, "
    "adaptive_embedding_dim=4, feed_forward_dim=16, num_layers=1}",
    "--set",
    "synthetic={num_nodes=6, days=3, seed=1}",
    "--set",
    "loss='masked_mae'",
    "--set",
    "plots=false",
]


@pytest.mark.slow
def test_ddp_two_processes_shard_training_and_sum_metrics_exactly(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    argv = [sys.executable, "-m", "linearcast", "train", "--model", "elinformer", *TINY_SETS]
    argv += ["--epochs", "2", "--batch-size", "32", "--devices", "2", "--strategy", "ddp"]
    argv += ["--accelerator", "cpu", "--out", str(out), "--run-name", "ddp", "--quiet"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")
    }
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = out / "ddp"
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["epochs"] == 2

    # each rank trained on its own shard: the sampler pads 497 windows to 2 x 249
    cfg = TrainConfig.load(run / "config.json")
    prep = prepare_data(cfg)
    n = len(prep.train)
    assert m["train_windows_per_rank"] == [(n + 1) // 2] * 2
    shards = []
    for rank in (0, 1):
        sampler = EpochShardSampler(prep.train, rank, 2, seed=cfg.seed)
        sampler.use_epoch(2)  # the last epoch
        shards.append(list(sampler))
    assert len(set(shards[0]) & set(shards[1])) == n % 2  # disjoint up to the padding
    assert set(shards[0]) | set(shards[1]) == set(range(n))
    for rank, shard in enumerate(shards):
        expected = sum(float(torch.nan_to_num(prep.train[i][1].double()).sum()) for i in shard)
        assert m["train_target_sum_per_rank"][rank] == pytest.approx(expected, rel=1e-9)
    assert m["train_target_sum_per_rank"][0] != m["train_target_sum_per_rank"][1]

    # metrics over both ranks == one process evaluating the same (best) weights
    for split, key in (("val", "val"), ("test", "test")):
        single = evaluate_run(run, split=split, accelerator="cpu")
        # every window counted once over the two ranks (no padding in evaluation)
        assert single["windows"] == m[f"{split}_windows"] == m["windows"][split]
        for horizon, values in m[key].items():
            for name, value in values.items():
                got = single["metrics"][horizon][name]
                assert got == pytest.approx(value, rel=1e-5), (split, horizon, name)
