"""TensorBoard event files in the run directory, one scalar per epoch and quantity.

Optional: with the ``tensorboard`` package installed (extra ``[tensorboard]``, part of
``[dev]``) and ``TrainConfig.tensorboard`` true (the default), rank 0 writes
``events.out.tfevents.*`` next to ``history.csv``; without the package nothing happens and
nothing else changes. ``tensorboard --logdir runs`` then shows every run side by side.

The scalars are the ``history.csv`` row of each epoch, at step = epoch:

=====================  ===========================================
tag                    history.csv column
=====================  ===========================================
``loss/train``         ``train_loss``
``loss/val``           ``val_loss``
``val/MAE``            ``val_MAE`` (also ``val/RMSE``, ``val/MAPE``)
``lr``                 ``lr``
``time/epoch_seconds`` ``seconds`` (also ``time/epoch_cpu_seconds``)
=====================  ===========================================
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: history.csv column -> TensorBoard tag
TAGS: dict[str, str] = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "val_MAE": "val/MAE",
    "val_RMSE": "val/RMSE",
    "val_MAPE": "val/MAPE",
    "lr": "lr",
    "seconds": "time/epoch_seconds",
    "cpu_seconds": "time/epoch_cpu_seconds",
}


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (which torch's ``SummaryWriter`` needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger:
    """An epoch callback (``fn(trainer, epoch, row)``) writing the row's numbers as scalars.

    Args:
        log_dir: the run directory (the event file goes straight into it).
    """

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def __call__(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        for key, tag in TAGS.items():
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), global_step=epoch)
        self.writer.flush()  # the file is read while the run goes on

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def open_tensorboard(enabled: bool, run_dir: Path, is_rank_zero: bool) -> TensorBoardLogger | None:
    """A logger for rank 0 when asked for and installed; ``None`` otherwise (nothing to do)."""
    if not (enabled and is_rank_zero):
        return None
    if not tensorboard_available():
        log.info("tensorboard is not installed: no event files (pip install tensorboard)")
        return None
    return TensorBoardLogger(run_dir)
