"""Atomic checkpoints that load without running code, and RNG state capture.

A checkpoint is written to a temporary file in the destination's directory, flushed and
``fsync``-ed, then ``os.replace``-d over the destination (atomic on POSIX and Windows), and the
directory entry is synced. A crash while writing leaves the previous file intact.

Loading never runs code from the file and hands nothing from it to C unchecked: the archive is
read by :mod:`linearcast.engine.checkpoint_file` (Python's zip reader, a pure-Python unpickler
whose only names are checked stand-ins for torch's tensor rebuild and, for version-1 files,
NumPy's array and dtype), and the contents are checked against what training writes
(:mod:`linearcast.engine.checkpoint_schema`). Everything a checkpoint holds is stored as
tensors, numbers, strings and lists/dicts of them (format version 2), so ``torch.load(...,
weights_only=True)`` reads our files too. Version-1 files (written before 2026-12) also held
NumPy's RNG state as an array.

Contents (a plain dict)::

    format, version          "linearcast-checkpoint", 2
    model                    the model's state_dict (unwrapped from DDP)
    optimizer, scheduler     their state_dicts (None for closed-form models)
    epoch, global_step       completed epochs and optimizer steps
    early_stopping           EarlyStopping.state_dict()
    rng                      python, numpy, torch (one per rank) and cuda states (see rng_state)
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

from linearcast.atomic import file_mode, fsync_dir
from linearcast.data.safe_pickle import BadPickleData, RefusedGlobal
from linearcast.engine.checkpoint_file import read_torch_file
from linearcast.engine.checkpoint_schema import check_checkpoint
from linearcast.errors import ConfigError

FORMAT = "linearcast-checkpoint"
VERSION = 2
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
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the engine, without running or trusting anything in it.

    The file is parsed by :func:`~linearcast.engine.checkpoint_file.read_torch_file` (Python's
    zip reader and a pure-Python unpickler with checked stand-ins, not torch's unpickler), then
    every entry the engine uses is checked once
    (:func:`~linearcast.engine.checkpoint_schema.check_checkpoint`).

    Args:
        path: a ``.ckpt`` file.
        map_location: where tensors go.

    Returns:
        The checkpoint dict.

    Raises:
        ConfigError: missing, unreadable, not a linearcast checkpoint, newer than this version,
            asking to import anything beyond tensors and plain containers (the sentence names
            the refused import; nothing of it ran), or holding contents the engine cannot use
            (the sentence names the first one, e.g. NaN weights).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found (expected a file written by training).")
    try:
        ckpt = read_torch_file(path)
    except RefusedGlobal as err:
        raise ConfigError(
            f"{path}: refused to load: the file asks to import {err.name}, which a linearcast "
            f"checkpoint never contains (only tensors, numbers, strings and lists/dicts of "
            f"them); nothing from it was run. It was not written by linearcast, or it was altered."
        ) from None
    except BadPickleData as err:
        raise ConfigError(
            f"{path}: refused to load: the file holds {err}, which `linearcast train` never "
            f"writes; nothing from it was run. It was not written by linearcast, or it was altered."
        ) from None
    except Exception as err:  # a damaged zip or pickle: any error of the parse is one sentence
        raise ConfigError(
            f"{path}: cannot read the checkpoint ({type(err).__name__}: {_first_line(err)}); "
            f"expected a file written by `linearcast train` (best.ckpt or last.ckpt)."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a linearcast checkpoint (expected format {FORMAT!r}).")
    version = ckpt.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{path}: expected an integer checkpoint version, found {version!r:.40}.")
    if version > VERSION:
        raise ConfigError(
            f"{path}: checkpoint version {version} is newer than this linearcast reads "
            f"({VERSION}); upgrade linearcast."
        )
    if not isinstance(ckpt.get("model"), dict):
        raise ConfigError(
            f"{path}: incomplete checkpoint: expected the model weights under 'model', found "
            f"{type(ckpt.get('model')).__name__}."
        )
    check_checkpoint(ckpt, path)
    return _to_device(ckpt, torch.device(map_location))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if len(text) <= 120 else text[:119] + "…"


def _to_device(obj: Any, device: torch.device) -> Any:
    if device.type == "cpu":
        return obj  # the reader builds CPU tensors
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _to_device(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def load_weights(model: torch.nn.Module, state: dict[str, Any], source: str | Path) -> None:
    """``model.load_state_dict(state)``, with a sentence instead of a traceback on a mismatch.

    Args:
        model: the model built from the run's config.
        state: the checkpoint's ``model`` entry.
        source: the checkpoint file, named in the message.

    Raises:
        ConfigError: keys missing from or unknown to the model, or tensors of other shapes
            (weights from another model, width or number of nodes).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {list(state[k].shape)} vs {list(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} of other shapes (checkpoint vs model: {shapes[0]})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown to the model (e.g. {unexpected[0]})")
        raise ConfigError(
            f"{source}: the weights do not fit the model the run's config builds: "
            f"{'; '.join(parts)}. The checkpoint belongs to another model, width or number of "
            f"nodes; use the run directory it was written in."
        )
    model.load_state_dict(state)


# ---------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """This process's RNG states, as tensors and numbers (so that they load with
    ``weights_only=True``): python, numpy, torch CPU and (when initialised) CUDA."""
    py_version, py_internal, py_gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    state: dict[str, Any] = {
        "python": {
            "version": int(py_version),
            "internal": torch.tensor(py_internal, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state` (also the raw tuples of version-1 files)."""
    py = state["python"]
    if isinstance(py, dict):
        internal = tuple(int(x) for x in py["internal"].tolist())
        random.setstate((py["version"], internal, py["gauss_next"]))
    else:
        random.setstate(py)
    npy = state["numpy"]
    if isinstance(npy, dict):
        keys = npy["keys"].numpy().astype(np.uint32)
        npy = (npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    np.random.set_state(npy)  # noqa: NPY002
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
