"""The training loop: short, linear, on Lightning Fabric (devices, DDP, precision).

Read :meth:`Trainer._run` top to bottom: :meth:`~Trainer._set_up` (data -> model, closed-form
``fit`` when the model has one -> optimizer and schedule -> Fabric setup -> run directory), then
per epoch :meth:`~Trainer.train_epoch`, :meth:`~Trainer.validate` (early stopping) and the
checkpoints, then :meth:`~Trainer.finish` (best weights restored -> test metrics and a baseline
row -> ``metrics.json``, ``history.csv`` and plots).

Distributed runs: :func:`train` calls ``fabric.launch(fn)``. With ``strategy="ddp"`` Fabric's
subprocess launcher starts the other ranks by re-running the current command line
(``python -m linearcast train ...`` works; a Python session such as pytest or a notebook does
not, use ``strategy="ddp_spawn"`` there). Every rank builds the data and the model. Training
windows are sharded by :class:`~linearcast.engine.samplers.EpochShardSampler` (reshuffled per
epoch), validation/test windows by the unpadded :class:`~linearcast.engine.samplers.ShardSampler`,
whose metric sums are all-reduced. Only rank 0 prints and writes files.
"""

from __future__ import annotations

import itertools
import logging
import math
import platform
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from linearcast.engine import checkpoint as ckpt_mod
from linearcast.engine.checkpoint import (
    BEST,
    LAST,
    EarlyStopping,
    atomic_save,
    load_checkpoint,
    load_weights,
)
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import (
    EvalResult,
    all_reduce_sum,
    evaluate,
    format_metrics_table,
    forward_eval,
    table_columns,
    unit_converter,
)
from linearcast.engine.plots import choose_window, plot_curves, plot_errors, plot_forecast
from linearcast.engine.run_dir import (
    create_run_dir,
    keep_earlier_result,
    write_history,
    write_json,
)
from linearcast.engine.samplers import EpochShardSampler, ShardSampler
from linearcast.engine.setup import (
    LossFn,
    Schedule,
    build_model,
    count_parameters,
    current_lr,
    dataset_label,
    describe_model,
    has_trainable_parameters,
    make_loss,
    make_optimizer,
    make_schedule,
    prepare_data,
)
from linearcast.engine.tensorboard import open_tensorboard
from linearcast.errors import ConfigError, TrainingDiverged

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData, TimeSeriesDataset

log = logging.getLogger(__name__)

EpochCallback = Callable[["Trainer", int, dict[str, Any]], None]
"""Called on every rank after each epoch's checkpoint: ``fn(trainer, epoch, history_row)``."""


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


def make_fabric(config: TrainConfig) -> Fabric:
    """A Fabric instance for the config's accelerator, devices, strategy, nodes and precision.

    Raises:
        ConfigError: Fabric rejects the combination (the message says why).
    """
    from lightning_fabric import Fabric

    if config.strategy.startswith(("fsdp", "deepspeed", "xla")):
        # evaluation runs the unwrapped module on unpadded shards, which sharded-parameter
        # strategies cannot do; the models here fit one device, so DDP is what they need
        raise ConfigError(
            f"strategy {config.strategy!r} is not supported by the engine; use auto, ddp, "
            f"ddp_spawn, ddp_fork or ddp_notebook."
        )
    devices: int | str = config.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    try:
        return Fabric(
            accelerator=config.accelerator,
            devices=devices,
            strategy=config.strategy,
            num_nodes=config.num_nodes,
            precision=config.precision,  # type: ignore[arg-type]
        )
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(
            f"cannot set up accelerator={config.accelerator!r}, devices={config.devices!r}, "
            f"strategy={config.strategy!r}, num_nodes={config.num_nodes}, "
            f"precision={config.precision!r}: {err}"
        ) from err


def train(
    config: TrainConfig,
    *,
    progress: bool | None = None,
    verbose: bool = True,
    report: bool | None = None,
    callbacks: Sequence[EpochCallback] = (),
    dataset: TimeSeriesDataset | None = None,
) -> RunResult:
    """Train and test ``config`` (see :class:`Trainer`)."""
    trainer = Trainer(
        config,
        progress=progress,
        verbose=verbose,
        report=report,
        callbacks=callbacks,
        dataset=dataset,
    )
    return trainer.fit()


@dataclass
class _RunState:
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


class Trainer:
    """Runs one training run described by a :class:`TrainConfig`.

    Args:
        config: the run.
        progress: show tqdm bars (rank 0); ``None``: only when stderr is a terminal.
        verbose: print what is happening (dataset, model, one line per epoch).
        report: print the final test table and the run directory (``None``: as ``verbose``).
        callbacks: called after every epoch (see :data:`EpochCallback`).
        dataset: train on this dataset (e.g. from :func:`linearcast.data.as_dataset`) instead
            of loading ``config.data``, which then only describes it in ``config.json``.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        progress: bool | None = None,
        verbose: bool = True,
        report: bool | None = None,
        callbacks: Sequence[EpochCallback] = (),
        dataset: TimeSeriesDataset | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.verbose = verbose
        self.report = verbose if report is None else report
        self.callbacks = list(callbacks)
        self.fabric: Fabric | None = None
        self._new_run_dir: Path | None = None  # created by this run (not resumed), rank 0

    # ------------------------------------------------------------------ entry point
    def fit(self) -> RunResult:
        """Launch the processes Fabric needs and run :meth:`_run` in each."""
        fabric = make_fabric(self.config)
        try:
            result: RunResult = fabric.launch(self._run)
        except BaseException:
            self._discard_unstarted_run_dir()
            raise
        return result

    def _discard_unstarted_run_dir(self) -> None:
        """A run that failed before its first checkpoint leaves no directory behind (a resumed
        run's directory, or one holding a checkpoint, is always kept)."""
        path = self._new_run_dir
        if path is not None and path.is_dir() and not (path / LAST).exists():
            shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def _say(self, text: str, *, result: bool = False) -> None:
        wanted = self.report if result else self.verbose
        if wanted and self.fabric is not None and self.fabric.is_global_zero:
            print(text, flush=True)

    def _resume_dir(self) -> Path | None:
        cfg = self.config
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
        return path

    def _loader(self, data: Any, batch_size: int, sampler: Any) -> DataLoader[Any]:
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    @staticmethod
    def _gather(fabric: Fabric, local: torch.Tensor) -> torch.Tensor:
        """``[world, *local.shape]``: every rank's tensor (a sum of one-hot rows; a collective)."""
        rows = torch.zeros((fabric.world_size, *local.shape), dtype=torch.float64)
        rows[fabric.global_rank] = local.detach().to("cpu", torch.float64)
        return all_reduce_sum(fabric, rows)

    def _gathered_rng(self, fabric: Fabric) -> dict[str, Any]:
        """RNG states: python/numpy of this rank, torch CPU of every rank (CUDA: this rank's)."""
        state = ckpt_mod.rng_state()
        per_rank = self._gather(fabric, state["torch"])
        state["torch_per_rank"] = per_rank.to(torch.uint8) if fabric.world_size > 1 else None
        return state

    def _restore_rng(self, fabric: Fabric, state: dict[str, Any]) -> None:
        per_rank = state.get("torch_per_rank")
        local = dict(state)
        if per_rank is not None and per_rank.shape[0] == fabric.world_size:
            # clone: torch.set_rng_state crashes on a row view of the table (offset > 0)
            local["torch"] = per_rank[fabric.global_rank].to(torch.uint8).clone()
        ckpt_mod.set_rng_state(local)

    # ------------------------------------------------------------------ the run
    def _run(self, fabric: Fabric) -> RunResult:
        """One process's run: set up, the epochs, then the test on the best weights."""
        cfg = self.config
        say = self._say
        run = self._set_up(fabric)
        self._before_epochs(run)
        tensorboard = open_tensorboard(cfg.tensorboard, run.run_dir, fabric.is_global_zero)
        callbacks: list[EpochCallback] = list(self.callbacks)
        if tensorboard is not None:
            callbacks.append(tensorboard)
        for epoch in range(run.start_epoch, cfg.max_epochs + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            row = self.train_epoch(run, epoch)
            improved = self.validate(run, epoch, row)
            row["seconds"] = time.perf_counter() - t0
            # CPU time of this process: less disturbed than wall time by other work on the machine
            row["cpu_seconds"] = time.process_time() - c0
            run.epoch_seconds.append(row["seconds"])
            run.history.append(row)
            if improved:
                self._save(run, run.run_dir / BEST, epoch)
            self._save(run, run.run_dir / LAST, epoch)
            say(self._epoch_line(row, cfg.max_epochs, improved, run.prep.protocol.metrics_space))
            for callback in callbacks:
                callback(self, epoch, row)
            if run.stopper.should_stop:
                s = run.stopper
                say(
                    f"early stop: no better validation loss for {s.bad_epochs} epochs; "
                    f"best epoch {s.best_epoch} (val loss {s.best:.4f})"
                )
                break
        if tensorboard is not None:
            tensorboard.close()
        return self.finish(run)

    # ------------------------------------------------------------------ the run's steps
    def _set_up(self, fabric: Fabric) -> _RunState:
        """Data, model (closed-form ``fit`` here), loaders, optimizer and schedule, the state of
        a resumed run, and the run directory."""
        cfg = self.config
        self.fabric = fabric
        say = self._say
        started = time.perf_counter()
        resume_dir = self._resume_dir()
        ckpt = load_checkpoint(resume_dir / LAST) if resume_dir is not None else None
        fabric.seed_everything(cfg.seed, verbose=False)

        # ---- data
        prep = prepare_data(cfg, self.dataset)
        say(f"data      {prep.summary()}")
        self._say_masking(prep)
        if prep.dataset.meta.get("synthetic"):
            say("          (synthetic traffic-like data: numbers say nothing about real roads)")

        # ---- model; closed-form models are fitted here (before any gradient step)
        model = build_model(cfg, prep)
        facts = describe_model(cfg.model)
        closed_form = getattr(model, "fit", None)
        if ckpt is None and callable(closed_form):
            say(f"fit       {cfg.model}: closed-form fit on the training windows")
            closed_form(self._fit_batches(prep))
        trainable = has_trainable_parameters(model)
        n_params = count_parameters(model)
        say(
            f"model     {cfg.model} ({facts['family']}): {n_params['trainable']:,} trainable "
            f"parameters ({n_params['total']:,} in all) -- {facts['description']}"
        )

        # ---- loaders: training shuffled per epoch and sharded; evaluation sharded, unpadded
        world, rank = fabric.world_size, fabric.global_rank
        eval_bs = cfg.eval_batch_size or cfg.batch_size
        train_sampler = EpochShardSampler(prep.train, rank, world, seed=cfg.seed)
        val_part: Any = prep.val
        if cfg.max_val_batches and cfg.max_val_batches * eval_bs < len(prep.val):
            # per-epoch validation on windows spread evenly over the whole validation period
            # (the first ones would all come from its start); the final numbers use all of it
            picks = np.linspace(0, len(prep.val) - 1, cfg.max_val_batches * eval_bs).round()
            val_part = torch.utils.data.Subset(prep.val, np.unique(picks.astype(int)).tolist())
        train_loader, val_loader, full_val_loader, test_loader = fabric.setup_dataloaders(
            self._loader(prep.train, cfg.batch_size, train_sampler),
            self._loader(val_part, eval_bs, ShardSampler(val_part, rank, world)),
            self._loader(prep.val, eval_bs, ShardSampler(prep.val, rank, world)),
            self._loader(prep.test, eval_bs, ShardSampler(prep.test, rank, world)),
            use_distributed_sampler=False,
        )
        steps_per_epoch = len(train_loader)
        if cfg.max_train_batches:
            steps_per_epoch = min(steps_per_epoch, cfg.max_train_batches)

        # ---- optimizer, schedule, Fabric setup (state restored when resuming)
        raw: nn.Module = model
        if ckpt is not None:
            assert resume_dir is not None
            load_weights(raw, ckpt["model"], resume_dir / LAST)
        optimizer: torch.optim.Optimizer | None = None
        schedule = Schedule(None)
        if trainable:
            optimizer = make_optimizer(cfg, raw)
            schedule = make_schedule(cfg, optimizer, steps_per_epoch)
            model, optimizer = fabric.setup(raw, optimizer)
            if ckpt is not None:
                optimizer.load_state_dict(ckpt["optimizer"])
                schedule.load_state_dict(ckpt.get("scheduler"))
        else:
            model = fabric.to_device(raw)
        loss_fn = make_loss(cfg, prep)
        stopper = EarlyStopping(patience=cfg.patience, min_delta=cfg.min_delta)
        history: list[dict[str, Any]] = []
        start_epoch, global_step = 1, 0
        if ckpt is not None:
            stopper.load_state_dict(ckpt["early_stopping"])
            history = list(ckpt.get("history", []))
            start_epoch = int(ckpt["epoch"]) + 1
            global_step = int(ckpt["global_step"])
            self._restore_rng(fabric, ckpt["rng"])

        # ---- run directory (rank 0 creates it, everyone learns its name)
        run_dir = self._open_run_dir(fabric, prep, resume_dir)
        meta = self._meta(prep)
        say(f"loss      {loss_fn}; optimizer {cfg.optimizer if trainable else 'none'}")
        say(
            f"device    {fabric.device} x {world} process(es), precision {cfg.precision}, "
            f"strategy {cfg.strategy}"
        )
        say(f"run dir   {run_dir}")
        if ckpt is not None:
            say(f"resume    from epoch {start_epoch - 1} (global step {global_step})")
        acc_dtype = torch.float32 if fabric.device.type == "mps" else torch.float64  # no f64 on MPS
        return _RunState(
            fabric=fabric, prep=prep, raw=raw, model=model, trainable=trainable, facts=facts,
            n_params=n_params, optimizer=optimizer, schedule=schedule, loss_fn=loss_fn,
            stopper=stopper, train_sampler=train_sampler, train_loader=train_loader,
            val_loader=val_loader, full_val_loader=full_val_loader, test_loader=test_loader,
            steps_per_epoch=steps_per_epoch, run_dir=run_dir, meta=meta, history=history,
            start_epoch=start_epoch, global_step=global_step, started=started,
            acc_dtype=acc_dtype, epoch_seconds=[float(r["seconds"]) for r in history],
        )  # fmt: skip

    def _save(self, run: _RunState, path: Path, epoch: int) -> None:
        """Write a checkpoint of the run at ``epoch`` (a collective: every rank calls it)."""
        fabric = run.fabric
        state = {
            "format": ckpt_mod.FORMAT,
            "version": ckpt_mod.VERSION,
            "model": run.raw.state_dict(),
            "optimizer": run.optimizer.state_dict() if run.optimizer is not None else None,
            "scheduler": run.schedule.state_dict(),
            "epoch": epoch,
            "global_step": run.global_step,
            "early_stopping": run.stopper.state_dict(),
            "rng": self._gathered_rng(fabric),  # a collective: every rank calls save()
            "scaler": run.prep.scaler.state_dict(),
            "config": self.config.to_dict(),
            "history": run.history,
            "meta": run.meta,
        }
        if fabric.is_global_zero:
            atomic_save(state, path)
        fabric.barrier()

    def _before_epochs(self, run: _RunState) -> None:
        """A model without trainable parameters is validated and saved once, with no epochs;
        a resumed run that had stopped early runs none either."""
        cfg = self.config
        if not run.trainable:
            self._say("train     no trainable parameters: skipping gradient training")
            result = evaluate(run.fabric, run.raw, run.val_loader, run.prep, loss_fn=run.loss_fn,
                              max_batches=cfg.max_eval_batches)  # fmt: skip
            run.stopper.step(result.loss, 0)
            self._save(run, run.run_dir / BEST, 0)
            self._save(run, run.run_dir / LAST, 0)
            run.start_epoch = cfg.max_epochs + 1
        elif run.stopper.should_stop:
            self._say(f"train     this run already stopped early at epoch {run.start_epoch - 1}")
            run.start_epoch = cfg.max_epochs + 1

    def train_epoch(self, run: _RunState, epoch: int) -> dict[str, Any]:
        """One pass over the training windows; returns the epoch's history row so far
        (``epoch``, ``train_loss``: mean over all ranks, ``lr`` at the epoch's start)."""
        cfg, fabric, model, optimizer = self.config, run.fabric, run.model, run.optimizer
        run.train_sampler.use_epoch(epoch)
        model.train()
        lr = current_lr(optimizer)
        # accumulated on the device: no host synchronisation per step
        sums = torch.zeros(2, dtype=run.acc_dtype, device=fabric.device)  # loss·count, count
        run.rank_counts = torch.zeros_like(sums)  # windows, Σ targets (this rank)
        bar = self._bar(run.steps_per_epoch, f"epoch {epoch}/{cfg.max_epochs}")
        to_units = unit_converter(run.prep)
        for i, (x, y) in enumerate(run.train_loader):
            if i >= run.steps_per_epoch:
                break
            pred = to_units(model(x))  # (B, T_out, N, C) in the units of y
            loss = run.loss_fn(pred, y)
            aux = getattr(run.raw, "aux_loss", None)
            total = loss + aux if aux is not None else loss
            if not self._all_finite(fabric, total):  # before a step can spoil the weights
                raise self._diverged(
                    run.run_dir, "training loss", total, epoch, i + 1, run.steps_per_epoch,
                    run.global_step, run.last_finite, current_lr(optimizer),
                )  # fmt: skip
            run.last_finite = (float(total.detach()), run.global_step + 1)
            assert optimizer is not None
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(total)
            if cfg.grad_clip > 0:
                fabric.clip_gradients(model, optimizer, max_norm=cfg.grad_clip)
            optimizer.step()
            run.schedule.after_batch()
            run.global_step += 1
            n = run.loss_fn.count(y).to(run.acc_dtype)
            sums += torch.stack([total.detach().to(run.acc_dtype) * n, n])
            run.rank_counts[0] += x.shape[0]
            run.rank_counts[1] += torch.nan_to_num(y.detach().to(run.acc_dtype)).sum()
            if bar is not None:
                bar.update(1)
                if i % 10 == 0:  # reading the loss synchronises an accelerator
                    bar.set_postfix(loss=f"{total.detach().item():.4f}")
        if bar is not None:
            bar.close()
        run.schedule.after_epoch()
        sums = all_reduce_sum(fabric, sums)
        train_loss = float(sums[0] / sums[1]) if sums[1] > 0 else math.nan
        return {"epoch": epoch, "train_loss": train_loss, "lr": lr}

    def validate(self, run: _RunState, epoch: int, row: dict[str, Any]) -> bool:
        """On validation epochs, add the validation numbers to ``row`` and step early stopping;
        returns whether the validation loss improved (the best checkpoint is then written)."""
        cfg = self.config
        if not (epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs):
            return False
        val = evaluate(run.fabric, run.raw, run.val_loader, run.prep, loss_fn=run.loss_fn,
                       max_batches=cfg.max_eval_batches)  # fmt: skip
        if not math.isfinite(val.loss):
            raise self._diverged(
                run.run_dir, "validation loss", torch.tensor(val.loss), epoch, 0,
                run.steps_per_epoch, run.global_step, run.last_finite,
                current_lr(run.optimizer),
            )  # fmt: skip
        o = val.metrics["overall"]
        row |= {"val_loss": val.loss, "val_MAE": o["MAE"], "val_RMSE": o["RMSE"],
                "val_MAPE": o["MAPE"]}  # fmt: skip
        return run.stopper.step(val.loss, epoch)

    def finish(self, run: _RunState) -> RunResult:
        """Best weights back, test and full-validation metrics, the baseline row, and the run
        directory's outputs (``metrics.json``, ``history.csv``, plots)."""
        cfg, fabric, raw, prep, loss_fn = self.config, run.fabric, run.raw, run.prep, run.loss_fn
        run_dir, history, stopper = run.run_dir, run.history, run.stopper
        fabric.barrier()
        if (run_dir / BEST).is_file():
            raw.load_state_dict(load_checkpoint(run_dir / BEST)["model"])
        test = evaluate(fabric, raw, run.test_loader, prep, max_batches=cfg.max_eval_batches)
        val_best = evaluate(fabric, raw, run.full_val_loader, prep, loss_fn=loss_fn,
                            max_batches=cfg.max_eval_batches)  # fmt: skip
        baseline = self._baseline(fabric, prep, run.test_loader)
        ddp_counts = self._gather(fabric, run.rank_counts)  # (world, 2)
        epoch_seconds = run.epoch_seconds

        metrics = {
            "model": cfg.model,
            "model_family": run.facts["family"],
            "parameters": run.n_params,
            "dataset": {
                "name": dataset_label(prep),
                "source": prep.dataset.source,
                "shape": list(prep.dataset.shape),
                "synthetic": bool(prep.dataset.meta.get("synthetic", False)),
            },
            "protocol": prep.protocol.label,
            "protocol_name": prep.protocol.name,
            "metrics_space": prep.protocol.metrics_space,
            "windows": prep.counts,
            "loss": repr(loss_fn),
            "epochs": len(history),
            "best_epoch": stopper.best_epoch,
            "stopped_early": stopper.should_stop,
            "seconds_per_epoch": epoch_seconds,
            "mean_epoch_seconds": float(np.mean(epoch_seconds)) if epoch_seconds else 0.0,
            "total_seconds": time.perf_counter() - run.started,
            "peak_memory": self._peak_memory(fabric),
            "device": str(fabric.device),
            "world_size": fabric.world_size,
            "precision": cfg.precision,
            "val": val_best.metrics,
            "val_loss": val_best.loss,
            "val_windows": val_best.windows,
            "test": test.metrics,
            "test_per_step": test.per_step,
            "test_windows": test.windows,
            "null_value": prep.null_value,
            "masked_fraction": {"val": val_best.masked_fraction, "test": test.masked_fraction},
            "mape_floor": prep.mape_floor,
            "mean_epoch_cpu_seconds": (
                float(np.mean([r["cpu_seconds"] for r in history if "cpu_seconds" in r]))
                if any("cpu_seconds" in r for r in history)
                else None
            ),
            "baseline": baseline,
            "train_windows_per_rank": [int(v) for v in ddp_counts[:, 0]],
            "train_target_sum_per_rank": [float(v) for v in ddp_counts[:, 1]],
            "host": platform.node(),
        }
        if fabric.is_global_zero:
            self._write_outputs(run_dir, metrics, history, prep, raw, fabric)
        fabric.barrier()
        self._say("\n" + self.results_table(metrics), result=True)
        self._say(f"\nrun directory: {run_dir}", result=True)
        return RunResult(run_dir=run_dir, metrics=metrics, history=history)

    # ------------------------------------------------------------------ pieces
    def _say_masking(self, prep: PreparedData) -> None:
        """State how many targets the null rule leaves out; warn when it is more than 10%."""
        frac = prep.masked_fraction("test")
        null = "NaN" if math.isnan(prep.null_value) else f"{prep.null_value:g}"
        text = (
            f"targets   {100 * frac:.1f}% of the test targets equal the null value {null} and are "
            f"masked (not scored)"
        )
        if prep.protocol.metrics_space == "raw":
            text += f"; MAPE also leaves out |y| <= {prep.mape_floor:.3g}"
        self._say(text)
        if frac > 0.10 and not math.isnan(prep.null_value):
            log.warning(
                "%.1f%% of the targets are masked as missing (null value %s): metrics cover only "
                "the rest. If these are genuine readings (counts of zero), score them with "
                "--set protocol_overrides.null_value=nan.",
                100 * frac,
                null,
            )

    @staticmethod
    def _all_finite(fabric: Fabric, value: torch.Tensor) -> bool:
        """Whether ``value`` is finite on every rank (so that all ranks stop together)."""
        bad = (~torch.isfinite(value.detach())).to(torch.float64).reshape(1).cpu()
        if fabric.world_size > 1:
            bad = all_reduce_sum(fabric, bad)
        return bool(bad.item() == 0)

    def _diverged(
        self,
        run_dir: Path,
        what: str,
        value: torch.Tensor,
        epoch: int,
        step: int,
        steps_per_epoch: int,
        global_step: int,
        last_finite: tuple[float, int] | None,
        lr: float,
    ) -> TrainingDiverged:
        """The sentence that stops a run whose loss is no longer finite."""
        cfg = self.config
        where = f"step {step}/{steps_per_epoch} of epoch {epoch}" if step else f"epoch {epoch}"
        last = (
            f"the last finite training loss was {last_finite[0]:.6g} (global step {last_finite[1]})"
            if last_finite is not None
            else "no finite loss was seen in this run"
        )
        kept = (
            f"{run_dir / LAST} keeps the weights of epoch {epoch - 1} (resume from it with "
            f"--resume {run_dir} once the cause is fixed)"
            if (run_dir / LAST).is_file()
            else "No checkpoint was written (it failed in the first epoch), so the run directory "
            "is removed"
        )
        hints = [f"a learning rate too high (now {lr:.3g}; try --lr {lr / 10:.3g})"]
        if cfg.precision not in ("32-true", "32", "64-true", "64"):
            hints.append(f"reduced precision ({cfg.precision}; try --precision 32-true)")
        hints.append(
            "unscaled or extreme data (check `linearcast data describe` for sentinel values "
            "such as -9999 and set the null value)"
        )
        return TrainingDiverged(
            f"training stopped: the {what} became {float(value.detach()):g} at {where} "
            f"(global step {global_step + 1}); {last}. {kept}. Likely causes: "
            f"{'; '.join(hints)}."
        )

    def _fit_batches(self, prep: PreparedData) -> Iterable[Any]:
        """Training batches in order for a closed-form ``fit`` (limited by max_train_batches)."""
        cfg = self.config
        loader = DataLoader(prep.train, batch_size=cfg.eval_batch_size or cfg.batch_size)
        return itertools.islice(loader, cfg.max_train_batches or None)

    def _open_run_dir(self, fabric: Fabric, prep: PreparedData, resume: Path | None) -> Path:
        cfg = self.config
        if resume is not None:
            if fabric.is_global_zero:  # the continuation's config (e.g. a raised max_epochs)
                write_json(resume / "config.json", cfg.to_dict())
            return resume
        name = ""
        if fabric.is_global_zero:
            path = create_run_dir(cfg.out_dir, cfg.model, dataset_label(prep), name=cfg.run_name)
            self._new_run_dir = path
            write_json(path / "config.json", cfg.to_dict())
            name = str(path)
        name = fabric.broadcast(name, src=0)
        return Path(name)

    def _meta(self, prep: PreparedData) -> dict[str, Any]:
        p = prep.protocol
        return {
            "model": self.config.model,
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
        }

    def _bar(self, total: int, desc: str) -> Any:
        if not (self.progress and self.fabric is not None and self.fabric.is_global_zero):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    @staticmethod
    def _epoch_line(
        row: dict[str, Any], max_epochs: int, improved: bool, metrics_space: str = "raw"
    ) -> str:
        text = f"epoch {row['epoch']:>3}/{max_epochs}  train {row['train_loss']:.4f}"
        if "val_loss" in row:
            if metrics_space == "scaled":  # MAPE of standardised values means nothing
                text += f"  val {row['val_loss']:.4f} (MAE {row['val_MAE']:.4f})"
            else:
                text += (
                    f"  val {row['val_loss']:.4f} (MAE {row['val_MAE']:.3f}, RMSE "
                    f"{row['val_RMSE']:.3f}, MAPE {row['val_MAPE']:.2f}%)"
                )
        text += f"  lr {row['lr']:.2e}  {row['seconds']:.1f}s"
        return text + ("  *" if improved else "")

    def _baseline(self, fabric: Fabric, prep: PreparedData, loader: Any) -> dict[str, Any] | None:
        """The floor on the same test windows (``config.baseline``, last value by default)."""
        floor = self._floor(fabric, prep)
        if floor is None:
            return None
        result: EvalResult = evaluate(
            fabric, floor, loader, prep, max_batches=self.config.max_eval_batches
        )
        return {"model": self.config.baseline, "test": result.metrics,
                "test_per_step": result.per_step}  # fmt: skip

    def _floor(self, fabric: Fabric, prep: PreparedData) -> nn.Module | None:
        """The baseline model (``config.baseline``) on the device; None without one."""
        name = self.config.baseline
        if not name:
            return None
        from linearcast.models import build

        p = prep.protocol
        floor = build(name, num_nodes=prep.num_nodes, in_steps=p.in_steps, out_steps=p.out_steps)
        module: nn.Module = fabric.to_device(floor)
        return module

    @staticmethod
    def _peak_memory(fabric: Fabric) -> dict[str, Any]:
        if fabric.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(fabric.device)
            return {"kind": "cuda_max_allocated", "MiB": peak / 2**20}
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10
        return {"kind": "process_peak_rss_rank0", "MiB": rss_kib * scale}

    def _write_outputs(
        self,
        run_dir: Path,
        metrics: dict[str, Any],
        history: list[dict[str, Any]],
        prep: PreparedData,
        model: nn.Module,
        fabric: Fabric,
    ) -> None:
        keep_earlier_result(run_dir)
        write_json(run_dir / "metrics.json", metrics)
        write_history(run_dir / "history.csv", history)
        if not self.config.plots:
            return
        title = f"{self.config.model} on {metrics['dataset']['name']} ({metrics['protocol']})"
        plot_curves(run_dir / "curves.png", history, title=title)
        self._plot_forecast(run_dir / "forecast.png", prep, model, fabric, title)
        plot_errors(run_dir / "errors.png", metrics, step_minutes=prep.dataset.freq_minutes)

    def _plot_forecast(
        self, path: Path, prep: PreparedData, model: nn.Module, fabric: Fabric, title: str
    ) -> None:
        """One test window (:func:`~linearcast.engine.plots.choose_window`): history, truth,
        the model's and the baseline's forecasts of up to four series with signal."""
        test = prep.test
        if len(test) == 0:
            return
        t_in, t_out = test.in_steps, test.out_steps
        i = choose_window(test.values, test.starts, t_in + t_out, prep.null_value,
                          test.target_channel)  # fmt: skip
        first = int(test.starts[i])
        x, y = test[i]
        to_units = unit_converter(prep)
        xb = fabric.to_device(x[None])
        pred = to_units(forward_eval(fabric, model, xb))[0, ..., 0].cpu().numpy()  # (T_out, N)
        baseline = None
        floor = self._floor(fabric, prep)
        if floor is not None:
            floor.eval()
            baseline = to_units(forward_eval(fabric, floor, xb))[0, ..., 0].cpu().numpy()
        scaled = prep.protocol.metrics_space == "scaled"
        if scaled:  # the units of y and of the forecasts
            hist = x[..., 0].double().numpy()  # (T_in, N)
        else:  # the file's readings: an inverse-transformed null would miss the null test
            hist = np.asarray(test.values[first : first + t_in, :, test.target_channel])
        plot_forecast(
            path,
            hist,
            y[..., 0].numpy(),
            pred,
            names=prep.dataset.node_names,
            times=prep.dataset.times(slice(first, first + t_in + t_out)),
            first_row=first,
            baseline=baseline,
            baseline_label=self.config.baseline or "baseline",
            title=title,
            null_value=prep.null_value,
            units="standardised units" if scaled else "data units",
        )

    @staticmethod
    def results_table(metrics: dict[str, Any]) -> str:
        """The test table: the model and the baseline, overall and per horizon."""
        rows = {metrics["model"]: metrics["test"]}
        if metrics.get("baseline"):
            rows[metrics["baseline"]["model"]] = metrics["baseline"]["test"]
        space = metrics.get("metrics_space", "raw")
        units = "data units" if space == "raw" else "standardised units"
        title = (
            f"test metrics on {metrics['dataset']['name']} under {metrics['protocol']} "
            f"({metrics['test_windows']} windows, {units})"
        )
        return format_metrics_table(rows, title=title, columns=table_columns(space))
