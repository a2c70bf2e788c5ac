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

Beside the loop: :mod:`~linearcast.engine.setup` builds the pieces (Fabric, data, model, loss,
optimizer), :mod:`~linearcast.engine.loaders` the loaders, :mod:`~linearcast.engine.run_state`
holds the state the steps share and the resume/checkpoint bookkeeping, and
:mod:`~linearcast.engine.run_report` the printed lines and ``metrics.json``'s contents,
:mod:`~linearcast.engine.run_files` the run directory's files (atomically), and
:mod:`~linearcast.engine.divergence` which weights a checkpoint may keep and why a run stopped.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from linearcast.engine.checkpoint import BEST, LAST, EarlyStopping, load_checkpoint, load_weights
from linearcast.engine.config import TrainConfig
from linearcast.engine.divergence import check_keepable, diverged_error
from linearcast.engine.evaluation import (
    all_finite,
    all_reduce_sum,
    evaluate,
    teacher_targets,
    unit_converter,
)
from linearcast.engine.loaders import fit_batches, make_loaders
from linearcast.engine.run_files import open_run_dir, write_outputs
from linearcast.engine.run_report import (
    baseline_row,
    early_stop_line,
    epoch_line,
    masking_text,
    model_line,
    progress_bar,
    results_table,
    run_metrics,
    set_up_lines,
)
from linearcast.engine.run_state import (
    RunResult,
    RunState,
    gather,
    restore_progress,
    resume_dir,
    run_meta,
    save_checkpoint,
)
from linearcast.engine.setup import (
    build_model,
    count_parameters,
    current_lr,
    describe_model,
    has_trainable_parameters,
    make_fabric,
    make_loss,
    prepare_data,
    setup_optimization,
)
from linearcast.engine.target import apply_output_rule
from linearcast.engine.tensorboard import open_tensorboard
from linearcast.engine.trained_on import check_same_data
from linearcast.models import REGISTRY

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData, TimeSeriesDataset

__all__ = ["EpochCallback", "RunResult", "Trainer", "make_fabric", "train"]

log = logging.getLogger(__name__)

EpochCallback = Callable[["Trainer", int, dict[str, Any]], None]
"""Called on every rank after each epoch's checkpoint: ``fn(trainer, epoch, history_row)``."""


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

    _epoch_line = staticmethod(epoch_line)
    results_table = staticmethod(results_table)

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
            check_keepable(cfg, run, epoch, validated="val_loss" in row)  # before any is kept
            row["seconds"] = time.perf_counter() - t0
            # CPU time of this process: less disturbed than wall time by other work on the machine
            row["cpu_seconds"] = time.process_time() - c0
            run.epoch_seconds.append(row["seconds"])
            run.history.append(row)
            if improved:
                save_checkpoint(run, cfg, run.run_dir / BEST, epoch)
            save_checkpoint(run, cfg, run.run_dir / LAST, epoch)
            say(epoch_line(row, cfg.max_epochs, improved, run.prep.protocol.metrics_space))
            for callback in callbacks:
                callback(self, epoch, row)
            if run.stopper.should_stop:
                say(early_stop_line(run.stopper))
                break
        if tensorboard is not None:
            tensorboard.close()
        return self.finish(run)

    # ------------------------------------------------------------------ the run's steps
    def _set_up(self, fabric: Fabric) -> RunState:
        """Data, model (closed-form ``fit`` here), loaders, optimizer and schedule, the state of
        a resumed run, and the run directory."""
        cfg = self.config
        self.fabric = fabric
        started = time.perf_counter()
        resume = resume_dir(cfg)
        ckpt = load_checkpoint(resume / LAST) if resume is not None else None
        fabric.seed_everything(cfg.seed, verbose=False)
        prep = self._set_up_data()
        raw, facts, n_params = self._set_up_model(prep, fit=ckpt is None)
        trainable = has_trainable_parameters(raw)
        loaders = make_loaders(cfg, prep, fabric)
        if ckpt is not None:
            assert resume is not None
            load_weights(raw, ckpt["model"], resume / LAST)
        model, optimizer, schedule = setup_optimization(
            cfg, fabric, raw, trainable, loaders.steps_per_epoch, ckpt
        )
        loss_fn = make_loss(cfg, prep)
        stopper = EarlyStopping(patience=cfg.patience, min_delta=cfg.min_delta)
        history, start_epoch, global_step = restore_progress(fabric, ckpt, stopper)
        meta = run_meta(cfg, prep)
        if ckpt is not None:
            assert resume is not None
            check_same_data(meta, ckpt, cfg.data, resume)  # before anything is written
        run_dir, self._new_run_dir = open_run_dir(cfg, fabric, prep, resume)  # rank 0 writes
        run = RunState(
            fabric=fabric, prep=prep, raw=raw, model=model, trainable=trainable, facts=facts,
            n_params=n_params, optimizer=optimizer, schedule=schedule, loss_fn=loss_fn,
            stopper=stopper, train_sampler=loaders.train_sampler, train_loader=loaders.train,
            val_loader=loaders.val, full_val_loader=loaders.full_val, test_loader=loaders.test,
            steps_per_epoch=loaders.steps_per_epoch, run_dir=run_dir,
            meta=meta, history=history, start_epoch=start_epoch,
            global_step=global_step, started=started,
            acc_dtype=torch.float32 if fabric.device.type == "mps" else torch.float64,  # no f64
            epoch_seconds=[float(r["seconds"]) for r in history],
            kept_epoch=start_epoch - 1 if ckpt is not None else None,
        )  # fmt: skip
        for line in set_up_lines(cfg, run, resumed=ckpt is not None):
            self._say(line)
        return run

    def _set_up_data(self) -> PreparedData:
        """The prepared data (``self.dataset`` or ``config.data``), announced."""
        prep = prepare_data(self.config, self.dataset)
        self._say(f"data      {prep.summary()}")
        self._say_masking(prep)
        if prep.dataset.meta.get("synthetic"):
            self._say(
                "          (synthetic traffic-like data: numbers say nothing about real roads)"
            )
        return prep

    def _set_up_model(
        self, prep: PreparedData, *, fit: bool
    ) -> tuple[nn.Module, dict[str, Any], dict[str, int]]:
        """The model, its registry facts and parameter counts; a closed-form model is fitted
        here (``fit``: a new run, before any gradient step)."""
        cfg = self.config
        model = apply_output_rule(build_model(cfg, prep), cfg, prep.scaler)  # nonnegative
        facts = describe_model(cfg.model)
        closed_form = getattr(model, "fit", None)
        if fit and callable(closed_form):
            self._say(f"fit       {cfg.model}: closed-form fit on the training windows")
            closed_form(fit_batches(cfg, prep))
        n_params = count_parameters(model)
        self._say(model_line(cfg.model, facts, n_params))
        return model, facts, n_params

    def _before_epochs(self, run: RunState) -> None:
        """A model without trainable parameters is validated and saved once, with no epochs;
        a resumed run that had stopped early runs none either."""
        cfg = self.config
        if not run.trainable:
            self._say("train     no trainable parameters: skipping gradient training")
            result = evaluate(run.fabric, run.raw, run.val_loader, run.prep, loss_fn=run.loss_fn,
                              max_batches=cfg.max_eval_batches)  # fmt: skip
            run.stopper.step(result.loss, 0)
            save_checkpoint(run, cfg, run.run_dir / BEST, 0)
            save_checkpoint(run, cfg, run.run_dir / LAST, 0)
            run.start_epoch = cfg.max_epochs + 1
        elif run.stopper.should_stop:
            self._say(f"train     this run already stopped early at epoch {run.start_epoch - 1}")
            run.start_epoch = cfg.max_epochs + 1

    def train_epoch(self, run: RunState, epoch: int) -> dict[str, Any]:
        """One pass over the training windows; returns the epoch's history row so far
        (``epoch``, ``train_loss``: mean over all ranks, ``lr`` at the epoch's start)."""
        cfg, fabric, model, optimizer = self.config, run.fabric, run.model, run.optimizer
        run.train_sampler.use_epoch(epoch)
        model.train()
        lr = current_lr(optimizer)
        # accumulated on the device: no host synchronisation per step
        sums = torch.zeros(2, dtype=run.acc_dtype, device=fabric.device)  # loss·count, count
        run.rank_counts = torch.zeros_like(sums)  # windows, Σ targets (this rank)
        bar = progress_bar(self.progress and fabric.is_global_zero, run.steps_per_epoch,
                           f"epoch {epoch}/{cfg.max_epochs}")  # fmt: skip
        to_units = unit_converter(run.prep)
        teacher = teacher_targets(run.prep) if REGISTRY[cfg.model].takes_targets else None
        for i, (x, y) in enumerate(run.train_loader):
            if i >= run.steps_per_epoch:
                break
            out = model(x, targets=teacher(y)) if teacher is not None else model(x)
            pred = to_units(out)  # (B, T_out, N, C) in the units of y
            loss = run.loss_fn(pred, y)
            aux = getattr(run.raw, "aux_loss", None)
            total = loss + aux if aux is not None else loss
            if not all_finite(fabric, total):  # before a step can spoil the weights
                raise diverged_error(cfg, run, "training loss", total, epoch, i + 1, data=[(x, y)])
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

    def validate(self, run: RunState, epoch: int, row: dict[str, Any]) -> bool:
        """On validation epochs, add the validation numbers to ``row`` and step early stopping;
        returns whether the validation loss improved (the best checkpoint is then written)."""
        cfg = self.config
        if not (epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs):
            return False
        val = evaluate(run.fabric, run.raw, run.val_loader, run.prep, loss_fn=run.loss_fn,
                       max_batches=cfg.max_eval_batches)  # fmt: skip
        if not math.isfinite(val.loss):
            raise diverged_error(cfg, run, "validation loss", val.loss, epoch, 0,
                                 data=run.val_loader, split="validation",
                                 max_batches=cfg.max_eval_batches)  # fmt: skip
        o = val.metrics["overall"]
        row |= {"val_loss": val.loss, "val_MAE": o["MAE"], "val_RMSE": o["RMSE"],
                "val_MAPE": o["MAPE"]}  # fmt: skip
        return run.stopper.step(val.loss, epoch)

    def finish(self, run: RunState) -> RunResult:
        """Best weights back, test and full-validation metrics, the baseline row, and the run
        directory's outputs (``metrics.json``, ``history.csv``, plots)."""
        cfg, fabric, raw, prep = self.config, run.fabric, run.raw, run.prep
        run_dir, history = run.run_dir, run.history
        fabric.barrier()
        if (run_dir / BEST).is_file():
            raw.load_state_dict(load_checkpoint(run_dir / BEST)["model"])
        test = evaluate(fabric, raw, run.test_loader, prep, max_batches=cfg.max_eval_batches)
        val_best = evaluate(fabric, raw, run.full_val_loader, prep, loss_fn=run.loss_fn,
                            max_batches=cfg.max_eval_batches)  # fmt: skip
        baseline = baseline_row(cfg, fabric, prep, run.test_loader)
        ddp_counts = gather(fabric, run.rank_counts)  # (world, 2)
        metrics = run_metrics(cfg, run, test=test, val_best=val_best, baseline=baseline,
                              ddp_counts=ddp_counts)  # fmt: skip
        if fabric.is_global_zero:
            for note in metrics["warnings"]:  # what the metrics leave undefined, and why
                print(f"linearcast: warning: {note}.", file=sys.stderr, flush=True)
            write_outputs(cfg, run_dir, metrics, history, prep, raw, fabric)
        fabric.barrier()
        self._say("\n" + results_table(metrics), result=True)
        self._say(f"\nrun directory: {run_dir}", result=True)
        return RunResult(run_dir=run_dir, metrics=metrics, history=history)

    # ------------------------------------------------------------------ pieces
    def _say_masking(self, prep: PreparedData) -> None:
        """State how many targets the null rule leaves out; warn when it is more than 10%."""
        frac = prep.masked_fraction("test")
        self._say(masking_text(prep, frac))
        if frac > 0.10 and not math.isnan(prep.null_value):
            what = (
                "zeros are genuine readings (counts of zero)"
                if prep.null_value == 0
                else (f"readings of {prep.null_value:g} are genuine")
            )
            log.warning(
                "%.1f%% of the targets are masked as missing (NaN or the null value %s): metrics "
                "cover only the rest. If the %s, score them with --set "
                "protocol_overrides.null_value=nan.",
                100 * frac,
                f"{prep.null_value:g}",
                what,
            )
