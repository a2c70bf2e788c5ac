"""A run that diverges: which weights may be kept, and the sentence that stops it.

A checkpoint keeps only weights that are all finite and whose loss was seen finite
(:func:`check_keepable`): on a validation epoch the validation loss is that check; on the epochs
between (``eval_every > 1``) one validation batch is. So ``last.ckpt`` never holds the 1e30 or
NaN weights of the step that diverged, and :func:`diverged_error` names the epoch it does hold
(``RunState.kept_epoch``).

The message blames what it can show: non-finite inputs or targets in the data (which split),
a loss that was not finite before any weight update (the data's scale or the precision, never
the learning rate), else the usual causes with the learning rate first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from linearcast.engine.checkpoint import LAST
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import evaluate, non_finite_data, non_finite_weights
from linearcast.engine.setup import current_lr
from linearcast.errors import TrainingDiverged

if TYPE_CHECKING:
    from linearcast.engine.run_state import RunState

Batches = Iterable[tuple[Tensor, Tensor]]


def check_keepable(config: TrainConfig, run: RunState, epoch: int, *, validated: bool) -> None:
    """Raise before ``epoch``'s checkpoint when its weights must not be kept (a collective).

    Args:
        config: the run's config.
        run: the run (its model holds the weights to keep).
        epoch: the epoch just trained.
        validated: whether this epoch's validation loss (finite) was computed on these weights;
            without it the loss of one validation batch is checked.

    Raises:
        TrainingDiverged: a non-finite parameter or buffer, or a non-finite loss.
    """
    bad = non_finite_weights(run.fabric, run.raw)
    if bad:
        names = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
        what = f"weights ({len(bad)} tensor(s): {names})"
        raise diverged_error(config, run, what, math.nan, epoch, 0)
    if validated:
        return
    probe = evaluate(run.fabric, run.raw, run.val_loader, run.prep, loss_fn=run.loss_fn,
                     max_batches=1)  # fmt: skip
    if not math.isfinite(probe.loss):
        raise diverged_error(
            config,
            run,
            "loss on a validation batch (checked before keeping the epoch's weights)",
            probe.loss,
            epoch,
            0,
            data=run.val_loader,
            split="validation",
            max_batches=1,
        )


def diverged_error(
    config: TrainConfig,
    run: RunState,
    what: str,
    value: Tensor | float,
    epoch: int,
    step: int,
    *,
    data: Batches | None = None,
    split: str = "training",
    max_batches: int = 0,
) -> TrainingDiverged:
    """The sentences that stop a run whose ``what`` became ``value`` (not finite).

    Args:
        config: the run's config.
        run: the run (run directory, last finite loss, kept epoch, optimizer).
        what: what became non-finite (``"training loss"``, ``"validation loss"``, ...).
        value: its value.
        epoch: the epoch.
        step: the step of ``epoch`` (1-based), or 0: at the epoch's end (validation, checks).
        data: the batches the value came from, scanned for non-finite inputs and targets
            (``[(x, y)]`` for a training step, a loader for a validation pass).
        split: the split ``data`` belongs to, for the message.
        max_batches: scan at most this many batches of ``data`` (0: all).
    """
    number = float(value.detach()) if isinstance(value, Tensor) else float(value)
    where = f"step {step}/{run.steps_per_epoch} of epoch {epoch}" if step else f"epoch {epoch}"
    head = f"training stopped: the {what} became {number:g} at {where}"
    if step:
        head += f" (global step {run.global_step + 1})"
    counts = non_finite_data(data, max_batches) if data is not None else [0, 0, 0, 0]
    if counts[0] or counts[1]:
        cause = _data_cause(counts, split)
    elif run.last_finite is None:
        cause = _before_update_cause(config, run, data)
    else:
        last = run.last_finite
        cause = (
            f"the last finite training loss was {last[0]:.6g} (global step {last[1]}). Likely "
            f"causes: {'; '.join(_hints(config, run, with_lr=True))}"
        )
    return TrainingDiverged(f"{head}; {cause}. {_kept(run)}.")


def _data_cause(counts: list[int], split: str) -> str:
    """The data is not finite where a model or a loss reads it: say what and where, and how to
    mark it as missing (never a null value that would also mask real readings)."""
    n_x, n_y, bad, windows = counts
    parts = []
    if n_x:
        parts.append(f"its inputs hold {n_x} NaN or infinite value(s)")
    if n_y:
        parts.append(f"its targets hold {n_y} infinite value(s)")
    return (
        f"the {split} data is not finite ({' and '.join(parts)}, in {bad} of the {windows} "
        f"window(s) checked), so the learning rate is not the cause: the windows of "
        f"linearcast fill missing inputs and mask missing targets, so these values reached the "
        f"model another way; read the data through linearcast.data (--set "
        f"data_options.non_finite=mask keeps NaN/inf as missing readings; a sentinel such as "
        f"-9999 is named with --set data_options.null_value=-9999)"
    )


def _before_update_cause(config: TrainConfig, run: RunState, data: Batches | None) -> str:
    """A non-finite loss before any weight update of this process: the data's scale or the
    precision, not the learning rate."""
    largest = ""
    for x, y in data or []:  # the batch that failed (a training step) or the first one
        peak = max(float(x.detach().abs().max()), float(y.detach().abs().max()))
        largest = f"; its largest value is {peak:.3g}"
        break
    spread = float(np.max(run.prep.scaler.std))
    weights = "the weights of last.ckpt" if run.kept_epoch is not None else "the initial weights"
    return (
        f"no weight update had happened yet ({weights}), so the learning rate is not the "
        f"cause; the data is finite (the training scaler's std reaches {spread:.3g}{largest}). "
        f"Likely causes: "
        f"{'; '.join(_hints(config, run, with_lr=False))}"
    )


def _hints(config: TrainConfig, run: RunState, *, with_lr: bool) -> list[str]:
    hints = []
    if with_lr:
        lr = current_lr(run.optimizer)
        hints.append(f"a learning rate too high (now {lr:.3g}; try --lr {lr / 10:.3g})")
    if config.precision not in ("32-true", "32", "64-true", "64"):
        hints.append(f"reduced precision ({config.precision}; try --precision 32-true)")
    hints.append(
        "unscaled or extreme data (check `linearcast data describe` for sentinel values "
        "such as -9999 and name them: --set data_options.null_value=-9999)"
    )
    return hints


def _kept(run: RunState) -> str:
    """Which weights the run directory keeps (the truth: ``run.kept_epoch``)."""
    if run.kept_epoch is not None and (run.run_dir / LAST).is_file():
        return (
            f"{run.run_dir / LAST} keeps the weights of epoch {run.kept_epoch}, the last with "
            f"finite weights and loss (resume from it with --resume {run.run_dir} once the "
            f"cause is fixed)"
        )
    return (
        "No checkpoint was written (no epoch ended with finite weights), so the run directory "
        "is removed"
    )
