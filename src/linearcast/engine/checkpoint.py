"""Atomic checkpoints and RNG state capture.

A checkpoint is written to a temporary file in the destination's directory, flushed and
``fsync``-ed, then ``os.replace``-d over the destination (atomic on POSIX and Windows), and the
directory entry is synced. A crash while writing leaves the previous file intact.

Contents (a plain dict, ``torch.load(..., weights_only=False)``)::

    format, version          "linearcast-checkpoint", 1
    model                    the model's state_dict (unwrapped from DDP)
    optimizer, scheduler     their state_dicts (None for closed-form models)
    epoch, global_step       completed epochs and optimizer steps
    early_stopping           EarlyStopping.state_dict()
    rng                      python, numpy, torch (one per rank) and cuda states
    scaler                   StandardScaler.state_dict()
    config                   the resolved TrainConfig as a dict
    history                  the rows of history.csv so far
    meta                     model name, N, T_in, T_out, C_in, protocol label, dataset name
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linearcast.errors import ConfigError

FORMAT = "linearcast-checkpoint"
VERSION = 1
LAST = "last.ckpt"
BEST = "best.ckpt"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (temp file in the same directory + ``os.replace``).

    Args:
        obj: anything ``torch.save`` accepts.
        path: destination; its directory must exist.

    Returns:
        ``path``.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    # makes the rename durable; not possible on every platform (Windows), hence best effort
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the engine.

    Args:
        path: a ``.ckpt`` file.
        map_location: where tensors go.

    Returns:
        The checkpoint dict.

    Raises:
        ConfigError: missing file, unreadable file, or not an engine checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many types for a corrupt file
        raise ConfigError(
            f"{path}: cannot read the checkpoint ({type(err).__name__}: {err})."
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a linearcast checkpoint (expected format {FORMAT!r}).")
    if int(ckpt.get("version", 0)) > VERSION:
        raise ConfigError(
            f"{path}: checkpoint version {ckpt['version']} is newer than this linearcast "
            f"reads ({VERSION}); upgrade linearcast."
        )
    return ckpt


# ---------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """This process's RNG states: python, numpy, torch CPU and (when present) CUDA."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (global state is what we save)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------- early stopping
@dataclass
class EarlyStopping:
    """Stop after ``patience`` validations without an improvement larger than ``min_delta``.

    Attributes:
        patience: validations without improvement before stopping (0: never stop).
        min_delta: an improvement must lower the best value by more than this.
        best: best validation loss so far.
        best_epoch: epoch of ``best`` (0 before any validation).
        bad_epochs: validations since the last improvement.
    """

    patience: int = 0
    min_delta: float = 0.0
    best: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0

    def step(self, value: float, epoch: int) -> bool:
        """Record a validation loss; return whether it is a new best."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` validations in a row brought no improvement."""
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state."""
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the current patience and min_delta are kept)."""
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
