"""What the steps of one run share, and the bookkeeping that lets a run stop and continue.

:class:`RunState` is made by :meth:`Trainer._set_up <linearcast.engine.trainer.Trainer._set_up>`
and handed to every step of the loop. The rest is the resume path: which run directory a run
continues (:func:`resume_dir`), the checkpoint it writes (:func:`save_checkpoint`, a collective)
and what a resumed run takes back from one (:func:`restore_progress`), the RNG states of every
rank (:func:`gathered_rng`, :func:`restore_rng`), and the facts a checkpoint records about the
data (:func:`run_meta`; the fingerprints and their checks are in
:mod:`~linearcast.engine.trained_on`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from linearcast.atomic import os_error_message
from linearcast.engine import checkpoint as ckpt_mod
from linearcast.engine.checkpoint import LAST, EarlyStopping, atomic_save
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import all_reduce_sum, non_finite_weights
from linearcast.engine.run_dir import check_resumable
from linearcast.engine.samplers import EpochShardSampler
from linearcast.engine.series_identity import series_record
from linearcast.engine.setup import LossFn, Schedule, dataset_label
from linearcast.engine.target import target_meta
from linearcast.engine.trained_on import data_fingerprint, graph_fingerprint, kept_graph
from linearcast.errors import ConfigError, TrainingDiverged

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData


@dataclass
class RunResult:
    """What a finished run returns (on rank 0; other ranks get the same ``run_dir``).

    Attributes:
        run_dir: the run directory.
        metrics: the contents of ``metrics.json``.
        history: the rows of ``history.csv``.
    """

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunState:
    """What the steps of one process's run share (:meth:`Trainer._set_up` makes it)."""

    fabric: Fabric
    prep: PreparedData
    raw: nn.Module  # the model itself (its state_dict is the checkpoint's)
    model: nn.Module  # as Fabric set it up (the one trained)
    trainable: bool
    facts: dict[str, Any]
    n_params: dict[str, int]
    optimizer: torch.optim.Optimizer | None
    schedule: Schedule
    loss_fn: LossFn
    stopper: EarlyStopping
    train_sampler: EpochShardSampler
    train_loader: Any
    val_loader: Any
    full_val_loader: Any
    test_loader: Any
    steps_per_epoch: int
    run_dir: Path
    meta: dict[str, Any]
    history: list[dict[str, Any]]
    start_epoch: int
    global_step: int
    started: float  # time.perf_counter() at the start
    acc_dtype: torch.dtype
    epoch_seconds: list[float]
    # windows and Σ targets this rank trained on in the last epoch
    rank_counts: torch.Tensor = field(default_factory=lambda: torch.zeros(2, dtype=torch.float64))
    last_finite: tuple[float, int] | None = None  # (loss, global step) for the divergence message
    kept_epoch: int | None = None  # the epoch last.ckpt holds (finite weights and loss)


def resume_dir(config: TrainConfig) -> Path | None:
    """The run directory ``config.resume`` continues, or None for a new run; checked before
    anything is trained (:func:`check_continuation`).

    Raises:
        ConfigError: ``resume=True`` without ``run_name``, no ``last.ckpt`` in the directory, or
            a config that describes another run than the directory's.
    """
    cfg = config
    if cfg.resume is False or cfg.resume == "":
        return None
    if cfg.resume is True:
        if not cfg.run_name:
            raise ConfigError("resume=True needs run_name (the run directory to continue).")
        path = Path(cfg.out_dir) / cfg.run_name
    else:
        path = Path(str(cfg.resume))
    if not (path / LAST).is_file():
        raise ConfigError(f"{path}: cannot resume, no {LAST} in this run directory.")
    check_continuation(config, path)
    return path


#: what a resumed run must share with the run it continues: the model, its inputs and the data
#: (epochs, lr, devices, ... may change)
SAME_RUN_FIELDS = (
    "model",
    "model_overrides",
    "protocol",
    "protocol_overrides",
    "data",
    "data_format",
    "data_options",
    "synthetic",
)


def check_continuation(config: TrainConfig, path: Path) -> None:
    """Refuse to continue ``path`` with a config of another run (e.g. a config file naming
    ``resume``), and a run directory whose result files could not be replaced at the end.

    Raises:
        ConfigError: naming the first field that differs, or the file.
    """
    check_resumable(path)
    own_path = path / "config.json"
    if not own_path.is_file():
        return  # a run directory from before config.json: the checkpoint alone decides
    own = TrainConfig.load(own_path).to_dict()
    new = config.to_dict()
    differ = [k for k in SAME_RUN_FIELDS if own[k] != new[k]]
    if differ:
        k = differ[0]
        raise ConfigError(
            f"{own_path}: cannot resume this run with another {k} ({new[k]!r}; the run has "
            f"{own[k]!r}); resume it with `linearcast train --resume {path}` and only --epochs "
            f"or device options, or start a new run."
        )


def gather(fabric: Fabric, local: torch.Tensor) -> torch.Tensor:
    """``[world, *local.shape]``: every rank's tensor (a sum of one-hot rows; a collective)."""
    rows = torch.zeros((fabric.world_size, *local.shape), dtype=torch.float64)
    rows[fabric.global_rank] = local.detach().to("cpu", torch.float64)
    return all_reduce_sum(fabric, rows)


def gathered_rng(fabric: Fabric) -> dict[str, Any]:
    """RNG states: python/numpy of this rank, torch CPU of every rank (CUDA: this rank's)."""
    state = ckpt_mod.rng_state()
    per_rank = gather(fabric, state["torch"])
    state["torch_per_rank"] = per_rank.to(torch.uint8) if fabric.world_size > 1 else None
    return state


def restore_rng(fabric: Fabric, state: dict[str, Any]) -> None:
    """Set the RNG states of :func:`gathered_rng`; torch CPU from this rank's row when the
    checkpoint has one per rank of this world size."""
    per_rank = state.get("torch_per_rank")
    local = dict(state)
    if per_rank is not None and per_rank.shape[0] == fabric.world_size:
        # clone: torch.set_rng_state crashes on a row view of the table (offset > 0)
        local["torch"] = per_rank[fabric.global_rank].to(torch.uint8).clone()
    ckpt_mod.set_rng_state(local)


def save_checkpoint(run: RunState, config: TrainConfig, path: Path, epoch: int) -> None:
    """Write a checkpoint of the run at ``epoch`` (a collective: every rank calls it).

    Non-finite weights are never written over a kept checkpoint (the trainer stops with the
    reason first, :func:`~linearcast.engine.divergence.check_keepable`); ``last.ckpt`` records
    its epoch in ``run.kept_epoch``.

    Raises:
        TrainingDiverged: a parameter or buffer is NaN or infinite.
        ConfigError: the file could not be written (full disk, no permission).
    """
    fabric = run.fabric
    bad = non_finite_weights(fabric, run.raw)
    if bad:
        raise TrainingDiverged(
            f"{path}: not written, the weights of epoch {epoch} are not finite ({bad[0]}); "
            f"the checkpoint already there is kept."
        )
    state = {
        "format": ckpt_mod.FORMAT,
        "version": ckpt_mod.VERSION,
        "model": run.raw.state_dict(),
        "optimizer": run.optimizer.state_dict() if run.optimizer is not None else None,
        "scheduler": run.schedule.state_dict(),
        "epoch": epoch,
        "global_step": run.global_step,
        "early_stopping": run.stopper.state_dict(),
        "rng": gathered_rng(fabric),  # a collective: every rank calls save()
        "scaler": run.prep.scaler.state_dict(),
        "config": config.to_dict(),
        "history": run.history,
        "meta": run.meta,
    }
    graph = kept_graph(config, run.prep)
    if graph is not None:
        state["graph"] = graph
    if fabric.is_global_zero:
        try:
            atomic_save(state, path)  # removes its temp file on failure
        except OSError as err:
            raise ConfigError(
                os_error_message(path, err, what="the checkpoint", fix="--out DIR")
            ) from None
    fabric.barrier()
    if path.name == LAST:
        run.kept_epoch = epoch


def restore_progress(
    fabric: Fabric, ckpt: dict[str, Any] | None, stopper: EarlyStopping
) -> tuple[list[dict[str, Any]], int, int]:
    """``(history, start_epoch, global_step)`` of a resumed run (early stopping and the RNG
    restored from ``ckpt``); a new run's (``[]``, 1, 0) without one."""
    history: list[dict[str, Any]] = []
    start_epoch, global_step = 1, 0
    if ckpt is not None:
        stopper.load_state_dict(ckpt["early_stopping"])
        history = list(ckpt.get("history", []))
        start_epoch = _count(ckpt, "epoch") + 1
        global_step = _count(ckpt, "global_step")
        restore_rng(fabric, ckpt["rng"])
    return history, start_epoch, global_step


def _count(ckpt: dict[str, Any], key: str) -> int:
    """``ckpt[key]`` as a count, or a sentence (an Infinity or NaN must not end a resume in a
    traceback)."""
    value = ckpt.get(key)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
        raise ConfigError(
            f"{LAST}: cannot resume, the checkpoint's {key} must be a count >= 0, found "
            f"{value!r}; resume from an intact run directory or start a new run."
        )
    return value


def run_meta(config: TrainConfig, prep: PreparedData) -> dict[str, Any]:
    """The checkpoint's ``meta``: what inference needs to rebuild the model and its inputs."""
    p = prep.protocol
    return {
        "model": config.model,
        "num_nodes": prep.num_nodes,
        "in_steps": p.in_steps,
        "out_steps": p.out_steps,
        "input_channels": prep.input_channels,
        "protocol": p.label,
        "dataset": dataset_label(prep),
        "null_value": prep.null_value,
        # the calendar the time features were computed on (forecasting checks new data)
        "steps_per_day": prep.dataset.steps_per_day,
        "freq_minutes": prep.dataset.freq_minutes,
        "freq": prep.dataset.meta.get("freq"),  # a calendar step (months, ...), else None
        # which channel the forecasts are of (named in forecasts and the ONNX sidecar)
        **target_meta(prep.dataset, p.target_channel),
        # the graph, for models that rebuild their supports from the data (DCRNN)
        "graph_sha256": graph_fingerprint(prep.dataset.adjacency),
        # the readings, names and calendar trained on (a resumed run must see the same)
        "data_sha256": data_fingerprint(prep.dataset),
        # the series in node order (series.json's copy: forecasts match series by name)
        "series": series_record(prep.dataset)["names"],
    }
