"""Named starting points of a :class:`~linearcast.engine.config.TrainConfig`.

:data:`PRESETS` maps a name to ``(description, values)``; :func:`linearcast.engine.config.preset`
builds the config (``linearcast train --preset NAME``; a config file may name ``preset = "..."``
as its base). The values are plain dicts so that this module needs nothing of the config's.

The STAEformer presets follow the official code's per-dataset settings (``staeformer.md``;
Adam lr 1e-3, MultiStepLR ×0.1, batch 16; Huber on PEMS0x, masked MAE on METR-LA/PEMS-BAY)::

    preset               weight decay  milestones     max epochs  patience
    staeformer-metr-la   3e-4          [20, 30]       200         30
    staeformer-pems-bay  1e-4          [10, 30]       300         20
    staeformer-pems03    5e-4          [15, 30, 40]   300         20
    staeformer-pems04    5e-4          [15, 30, 50]   300         20
    staeformer-pems07    1e-3          [15, 35, 50]   300         20
    staeformer-pems08    1.5e-3        [25, 45, 65]   300         30

The presets for counts (``counts``, ``elinformer-hzmetro``, ``elinformer-nyc-taxi``) set
``nonnegative = true``: their forecasts are clipped at 0 (:mod:`linearcast.engine.target`).
"""

from __future__ import annotations

from typing import Any


def _staeformer(
    protocol: str, weight_decay: float, milestones: list[int], epochs: int, patience: int
) -> dict[str, Any]:
    pems = protocol.startswith("pems")
    return {
        "model": "staeformer",
        "data": "",
        "protocol": protocol,
        "batch_size": 16,
        "max_epochs": epochs,
        "lr": 1e-3,
        "weight_decay": weight_decay,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": milestones,
        "gamma": 0.1,
        # the official code trains PEMS0x with nn.HuberLoss() (unmasked), METR/BAY masked MAE
        "loss": "huber" if pems else "masked_mae",
        "mask_loss": not pems,
        "patience": patience,
    }


def _basicts(batch_size: int) -> dict[str, Any]:
    return {
        "model": "staeformer",
        "data": "",
        "protocol": "pems",
        "batch_size": batch_size,
        "max_epochs": 100,
        "lr": 1e-3,
        "weight_decay": 3e-4,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": [20, 25],
        "gamma": 0.1,
        "loss": "masked_mae",
        "patience": 0,  # BasicTS trains all epochs and keeps the best validation checkpoint
    }


def _samovar(protocol: str, lookback: int, horizon: int) -> dict[str, Any]:
    return {
        "model": "samovar",
        "data": "",
        "protocol": protocol,
        "protocol_overrides": {"in_steps": lookback, "out_steps": horizon},
        "batch_size": 32,
        "max_epochs": 50,
        "lr": 6e-4,
        "betas": [0.9, 0.95],
        "weight_decay": 0.1,
        "optimizer": "adamw",
        "scheduler": "onecycle",
        "onecycle_pct_start": 0.05,
        "onecycle_div_factor": 10.0,
        "grad_clip": 1.0,
        "loss": "mse",
        "patience": 12,
    }


def _stid(protocol: str) -> dict[str, Any]:
    """STID's BasicTS v0.5.8 recipe (``baselines/STID/PEMS08.py``; PEMS04 and METR-LA use the
    same one, and the official repo's configs are identical): Adam lr 2e-3 with L2 weight decay
    1e-4, MultiStepLR [1, 50, 80] x0.5 stepped per epoch, batch 64 (64 for evaluation), gradient
    norm clipped at 5, masked MAE in data units, 100 epochs, the best validation checkpoint
    tested. No curriculum or teacher forcing."""
    return {
        "model": "stid",
        "data": "",
        "protocol": protocol,
        "batch_size": 64,
        "eval_batch_size": 64,
        "max_epochs": 100,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": [1, 50, 80],
        "gamma": 0.5,
        "grad_clip": 5.0,
        "loss": "masked_mae",
        "patience": 0,  # BasicTS trains all epochs and keeps the best validation checkpoint
    }


def _gwnet(protocol: str, *, basicts: bool) -> dict[str, Any]:
    """Graph WaveNet's recipes. Official (nnzhan ``train.py``/``engine.py``, METR-LA and PEMS-BAY
    at 7:1:2): Adam lr 1e-3 with L2 weight decay 1e-4, no LR schedule, batch 64, gradient norm
    clipped at 5, masked MAE (null 0) in data units, 100 epochs, the best validation epoch
    tested. BasicTS v0.5.8 (``baselines/GWNet/{PEMS04,PEMS08,METR-LA}.py``, one recipe): lr
    2e-3, MultiStepLR [1, 50] x0.5 stepped per epoch, batch 16 (64 for evaluation), otherwise
    the same. Dropout 0.3 is the model's default; no curriculum or teacher forcing."""
    return {
        "model": "gwnet",
        "data": "",
        "protocol": protocol,
        "batch_size": 16 if basicts else 64,
        "eval_batch_size": 64,
        "max_epochs": 100,
        "lr": 2e-3 if basicts else 1e-3,
        "weight_decay": 1e-4,
        "optimizer": "adam",
        "scheduler": "multistep" if basicts else "none",
        "milestones": [1, 50] if basicts else [],
        "gamma": 0.5,
        "grad_clip": 5.0,
        "loss": "masked_mae",
        "patience": 0,  # both train every epoch and test the best validation checkpoint
    }


def _stgcn(protocol: str, *, published_table: bool = False) -> dict[str, Any]:
    """STGCN's BasicTS recipes (the model defaults are BasicTS's: dropout 0.5, the unscaled
    normalised Laplacian). v0.5.8 (``baselines/STGCN/{PEMS04,PEMS08,METR-LA}.py``, one recipe):
    Adam lr 4e-4 with L2 weight decay 3e-4, MultiStepLR [1, 50] x0.5 stepped per epoch, batch 16
    (64 for evaluation), no gradient clipping, masked MAE in data units, 100 epochs, the best
    validation checkpoint tested. ``published_table``: the 2023 config behind BasicTS's published
    table (``examples/STGCN/STGCN_PEMS08.py`` @ 5c978fd): lr 2e-3, weight decay 1e-4, MultiStepLR
    [1, 50, 100] x0.5, batch 64, clip 5, 200 epochs. No curriculum or teacher forcing in either
    (hazdzz's own recipe trains a single-step target with MSE and StepLR, another task)."""
    return {
        "model": "stgcn",
        "data": "",
        "protocol": protocol,
        "batch_size": 64 if published_table else 16,
        "eval_batch_size": 64,
        "max_epochs": 200 if published_table else 100,
        "lr": 2e-3 if published_table else 4e-4,
        "weight_decay": 1e-4 if published_table else 3e-4,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": [1, 50, 100] if published_table else [1, 50],
        "gamma": 0.5,
        "grad_clip": 5.0 if published_table else 0.0,
        "loss": "masked_mae",
        "patience": 0,  # BasicTS trains every epoch and tests the best validation checkpoint
    }


def _counts(extra: dict[str, Any]) -> dict[str, Any]:
    """ELinFormer at the README's reduced width and recipe (Results on real data) for counts
    (metro gate flows, taxi trips, pedestrians): the forecasts are clipped at 0."""
    return {
        "model": "elinformer",
        "model_overrides": {
            "input_embedding_dim": 12,
            "tod_embedding_dim": 12,
            "dow_embedding_dim": 12,
            "adaptive_embedding_dim": 28,
            "feed_forward_dim": 128,
            "num_layers": 2,
        },
        "data": "",
        "protocol": "pems",
        "batch_size": 16,
        "max_epochs": 10,
        "lr": 1e-3,
        "weight_decay": 3e-4,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": [6, 8],
        "gamma": 0.1,
        "loss": "masked_mae",
        # a count is never below 0; a model extrapolating a falling series would say -361
        "nonnegative": True,
        **extra,
    }


def _dcrnn(
    protocol: str, *, metr: bool = False, clip: bool = True, official: bool = False
) -> dict[str, Any]:
    """DCRNN's recipes: BasicTS v0.5.8 (``baselines/DCRNN/{PEMS04,PEMS08,METR-LA}.py``): Adam lr
    3e-3 (METR-LA 1e-2), no weight decay, MultiStepLR [80] x0.3 (METR-LA [20, 30, 40, 50] x0.1)
    stepped per epoch, batch 64, gradient norm clipped at 5 (none on PEMS08), masked MAE in data
    units, 100 epochs, the best validation checkpoint tested. ``official`` (chnsh
    ``dcrnn_la.yaml``): lr 1e-2, [20, 30, 40, 50] x0.1, clip 5, patience 50. Both use scheduled
    sampling with τ = 2000 (the model's, fed by ``targets=``) and Adam eps 1e-3."""
    return {
        "model": "dcrnn",
        "model_overrides": {"use_curriculum_learning": True, "cl_decay_steps": 2000},
        "data": "",
        "protocol": protocol,
        "batch_size": 64,
        "eval_batch_size": 64,
        "max_epochs": 100,
        "lr": 1e-2 if metr else 3e-3,
        "weight_decay": 0.0,
        "optimizer": "adam",
        "adam_eps": 1e-3,
        "scheduler": "multistep",
        "milestones": [20, 30, 40, 50] if metr else [80],
        "gamma": 0.1 if metr else 0.3,
        "grad_clip": 5.0 if clip else 0.0,
        "loss": "masked_mae",
        "patience": 50 if official else 0,  # BasicTS trains every epoch, tests the best one
    }


def _agcrn(
    protocol: str, *, embed_dim: int = 10, seed: int = 0, official: bool, input_dim: int = 1
) -> dict[str, Any]:
    """AGCRN's recipes. ``official`` (LeiBAI/AGCRN ``model/PEMSD{4,8}_AGCRN.conf``, ``Run.py``):
    Adam lr 3e-3, eps 1e-8, no weight decay, no lr decay, no clipping, batch 64, 100 epochs,
    early stopping after 15 epochs without a better validation loss, plain L1 in data units
    (unmasked), embed_dim 10 (PEMSD4) or 2 (PEMSD8), seed 10 or 12. BasicTS v0.5.8
    (``baselines/AGCRN/{PEMS04,PEMS08,METR-LA}.py``): the same optimiser and batch, masked MAE,
    embed_dim 10, every epoch trained and the best validation checkpoint tested; METR-LA feeds
    time of day too (``input_dim`` 2). No teacher forcing or curriculum in either: the official
    forward ignores its ``teacher_forcing_ratio``."""
    overrides: dict[str, Any] = {"embed_dim": embed_dim}
    if input_dim != 1:
        overrides["input_dim"] = input_dim
    return {
        "model": "agcrn",
        "model_overrides": overrides,
        "data": "",
        "protocol": protocol,
        "batch_size": 64,
        "eval_batch_size": 64,
        "max_epochs": 100,
        "lr": 3e-3,
        "weight_decay": 0.0,
        "optimizer": "adam",
        "scheduler": "none",
        "grad_clip": 0.0,
        "loss": "mae" if official else "masked_mae",
        "mask_loss": not official,
        "patience": 15 if official else 0,
        "seed": seed,
    }


PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "staeformer-metr-la": (
        "STAEformer official, METR-LA (masked MAE, wd 3e-4, milestones 20/30)",
        _staeformer("metr-staeformer", 3e-4, [20, 30], 200, 30),
    ),
    "staeformer-pems-bay": (
        "STAEformer official, PEMS-BAY (masked MAE, wd 1e-4, milestones 10/30)",
        _staeformer("metr-staeformer", 1e-4, [10, 30], 300, 20),
    ),
    "staeformer-pems03": (
        "STAEformer official, PEMS03 (Huber, wd 5e-4, milestones 15/30/40)",
        _staeformer("pems-staeformer", 5e-4, [15, 30, 40], 300, 20),
    ),
    "staeformer-pems04": (
        "STAEformer official, PEMS04 (Huber, wd 5e-4, milestones 15/30/50)",
        _staeformer("pems-staeformer", 5e-4, [15, 30, 50], 300, 20),
    ),
    "staeformer-pems07": (
        "STAEformer official, PEMS07 (Huber, wd 1e-3, milestones 15/35/50)",
        _staeformer("pems-staeformer", 1e-3, [15, 35, 50], 300, 20),
    ),
    "staeformer-pems08": (
        "STAEformer official, PEMS08 (Huber, wd 1.5e-3, milestones 25/45/65)",
        _staeformer("pems-staeformer", 1.5e-3, [25, 45, 65], 300, 30),
    ),
    "basicts-pems03": ("BasicTS port of STAEformer, PEMS03 (masked MAE, 100 epochs)", _basicts(16)),
    "basicts-pems04": ("BasicTS port of STAEformer, PEMS04 (masked MAE, 100 epochs)", _basicts(16)),
    "basicts-pems07": ("BasicTS port of STAEformer, PEMS07 (batch 8)", _basicts(8)),
    "basicts-pems08": ("BasicTS port of STAEformer, PEMS08 (masked MAE, 100 epochs)", _basicts(16)),
    "samovar-ett": (
        "SAMoVAR on ETT (AdamW 6e-4, OneCycle, clip 1, lookback 1024 -> 96)",
        _samovar("ett", 1024, 96),
    ),
    "samovar-ltsf": (
        "SAMoVAR on other LTSF CSVs (0.7/0.1/0.2, lookback 1024 -> 96)",
        _samovar("ltsf", 1024, 96),
    ),
    "stid-pems04": (
        "STID, BasicTS recipe, PEMS04 (Adam 2e-3, wd 1e-4, x0.5 at 1/50/80, batch 64, clip 5)",
        _stid("pems"),
    ),
    "stid-pems08": (
        "STID, BasicTS recipe, PEMS08 (Adam 2e-3, wd 1e-4, x0.5 at 1/50/80, batch 64, clip 5)",
        _stid("pems"),
    ),
    "stid-metr-la": (
        "STID, BasicTS recipe, METR-LA (7:1:2 split; otherwise as stid-pems08)",
        _stid("metr"),
    ),
    "gwnet": (
        "Graph WaveNet, official recipe (METR-LA/PEMS-BAY 7:1:2; Adam 1e-3, wd 1e-4, no "
        "schedule, batch 64, clip 5)",
        _gwnet("metr", basicts=False),
    ),
    "gwnet-pems04": (
        "Graph WaveNet, BasicTS recipe, PEMS04 (6:2:2; Adam 2e-3, wd 1e-4, milestones 1/50 "
        "x0.5, batch 16, clip 5)",
        _gwnet("pems", basicts=True),
    ),
    "gwnet-pems08": (
        "Graph WaveNet, BasicTS recipe, PEMS08 (as gwnet-pems04)",
        _gwnet("pems", basicts=True),
    ),
    "gwnet-metr-la": (
        "Graph WaveNet, BasicTS recipe, METR-LA (7:1:2 split; otherwise as gwnet-pems08)",
        _gwnet("metr", basicts=True),
    ),
    "stgcn-pems04": (
        "STGCN, BasicTS v0.5.8 recipe, PEMS04 (6:2:2; Adam 4e-4, wd 3e-4, milestones 1/50 x0.5, "
        "batch 16, no clip)",
        _stgcn("pems"),
    ),
    "stgcn-pems08": (
        "STGCN, BasicTS v0.5.8 recipe, PEMS08 (as stgcn-pems04)",
        _stgcn("pems"),
    ),
    "stgcn-metr-la": (
        "STGCN, BasicTS v0.5.8 recipe, METR-LA (7:1:2 split; otherwise as stgcn-pems08)",
        _stgcn("metr"),
    ),
    "stgcn-pems08-2023": (
        "STGCN, the 2023 BasicTS config behind its published table (Adam 2e-3, wd 1e-4, "
        "milestones 1/50/100 x0.5, batch 64, clip 5, 200 epochs)",
        _stgcn("pems", published_table=True),
    ),
    "agcrn-pems08": (
        "AGCRN, official recipe, PEMS08 (embed_dim 2: 150,112 parameters; Adam 3e-3, batch 64, "
        "L1, patience 15, seed 12)",
        _agcrn("pems", embed_dim=2, seed=12, official=True),
    ),
    "agcrn-pems04": (
        "AGCRN, official recipe, PEMS04 (embed_dim 10; as agcrn-pems08 otherwise, seed 10)",
        _agcrn("pems", embed_dim=10, seed=10, official=True),
    ),
    "agcrn-basicts": (
        "AGCRN, BasicTS v0.5.8 recipe, PEMS04/PEMS08 (embed_dim 10, Adam 3e-3, batch 64, "
        "masked MAE, 100 epochs, best validation checkpoint)",
        _agcrn("pems", official=False),
    ),
    "agcrn-metr-la": (
        "AGCRN, BasicTS v0.5.8 recipe, METR-LA (7:1:2; target and time of day in, input_dim 2)",
        _agcrn("metr", official=False, input_dim=2),
    ),
    "counts": (
        "ELinFormer (reduced width) for counts (trips, passengers, pedestrians); forecasts >= 0",
        _counts({}),
    ),
    "elinformer-hzmetro": (
        "ELinFormer (reduced width) on HZMetro in/out flows (inflow forecast, no graph); >= 0",
        _counts({"data_options": {"adjacency": "none"}}),
    ),
    "elinformer-nyc-taxi": (
        "ELinFormer (reduced width) on NYC taxi in/out flows, 100+25 batches/epoch; >= 0",
        _counts(
            {
                "data_options": {"start": "2019-01-01"},
                "max_train_batches": 100,
                "max_val_batches": 25,
            }
        ),
    ),
    "dcrnn": (
        "DCRNN, official recipe (chnsh dcrnn_la.yaml; METR-LA 7:1:2, Adam 1e-2, milestones "
        "20/30/40/50 x0.1, batch 64, clip 5, patience 50, scheduled sampling)",
        _dcrnn("metr", metr=True, official=True),
    ),
    "dcrnn-pems04": (
        "DCRNN, BasicTS v0.5.8 recipe, PEMS04 (6:2:2; Adam 3e-3, milestone 80 x0.3, batch 64, "
        "clip 5, scheduled sampling)",
        _dcrnn("pems"),
    ),
    "dcrnn-pems08": (
        "DCRNN, BasicTS v0.5.8 recipe, PEMS08 (as dcrnn-pems04 without clipping)",
        _dcrnn("pems", clip=False),
    ),
    "dcrnn-metr-la": (
        "DCRNN, BasicTS v0.5.8 recipe, METR-LA (7:1:2; Adam 1e-2, milestones 20/30/40/50 x0.1, "
        "clip 5)",
        _dcrnn("metr", metr=True),
    ),
    "demo": (
        "ELinFormer (small) on the synthetic dataset; ~1-2 minutes on 2 CPU cores",
        {
            "model": "elinformer",
            "model_overrides": {
                "input_embedding_dim": 12,
                "tod_embedding_dim": 12,
                "dow_embedding_dim": 12,
                "adaptive_embedding_dim": 28,
                "feed_forward_dim": 128,
                "num_layers": 1,
                "dropout": 0.1,
            },
            "data": "synthetic",
            "synthetic": {"num_nodes": 32, "days": 14, "seed": 0},
            "protocol": "pems",
            "batch_size": 32,
            "max_epochs": 8,
            "lr": 3e-3,
            "weight_decay": 1e-4,
            "scheduler": "multistep",
            "milestones": [6],
            "gamma": 0.3,
            "loss": "masked_mae",
            "patience": 3,
        },
    ),
}
