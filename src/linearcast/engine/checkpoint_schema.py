"""What a checkpoint must hold, checked once where it is loaded.

The engine reads checkpoints in many places (evaluate, forecast, export, resume, ``load_run``);
a file that unpickles but holds the wrong things (a missing scaler, ``meta`` as a list, a
sparse or string tensor, a negative size, ``in_steps = 10**12``, NaN weights) used to fail in
each of them with its own traceback, or worse, run. :func:`check_checkpoint` checks every entry
the engine uses against the form :func:`linearcast.engine.run_state.save_checkpoint` writes, so
the rest of the engine may trust it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linearcast.data.scaler import INPUT_FILLS
from linearcast.errors import ConfigError

#: Bounds no honest run reaches; past them a value is damage (or an attack on memory).
MAX_NODES = 10**7
MAX_STEPS = 10**6
MAX_CHANNELS = 1024
MAX_INPUT_ELEMENTS = 2**31  # T_in x N x C_in of one window
MAX_EPOCHS = 10**9
_TORCH_RNG_BYTES = 5056  # torch.get_rng_state().numel() for the CPU generator (MT19937)


class _Bad(Exception):
    """One thing wrong with the checkpoint (the message says what and what was expected)."""


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _Bad(f"{what} is {_show(value)} (expected an integer)")
    if not low <= int(value) <= high:
        raise _Bad(f"{what} is {int(value)} (expected {low} to {high})")
    return int(value)


def _number(value: Any, what: str, *, finite: bool = True, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _Bad(f"{what} is {_show(value)} (expected a number)")
    if finite and not math.isfinite(float(value)):
        raise _Bad(f"{what} is {value} (expected a finite number)")


def _dict(value: Any, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is {_show(value)} (expected a dict)")
    return value


def _show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.layout} {value.dtype} tensor of shape {list(value.shape)}"
    text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= 60 else text[:59] + "…"


def _tensor(value: Any, what: str, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
        raise _Bad(f"{what} is {_show(value)} (expected a dense tensor)")
    if value.device.type == "meta" or value.dtype in (torch.complex64, torch.complex128):
        raise _Bad(f"{what} is {_show(value)} (expected real values in memory)")
    if dtype is not None and value.dtype != dtype:
        raise _Bad(f"{what} is {_show(value)} (expected {dtype})")
    return value


def _check_model(state: Any) -> None:
    state = _dict(state, "'model'")
    for key, value in state.items():
        if not isinstance(key, str):
            raise _Bad(f"a weight is named {_show(key)} (expected a string)")
        t = _tensor(value, f"weight {key!r}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise _NonFinite(key)


class _NonFinite(_Bad):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _check_meta(meta: Any) -> None:
    meta = _dict(meta, "'meta'")
    if not isinstance(meta.get("model"), str):
        raise _Bad(f"meta.model is {_show(meta.get('model'))} (expected a model name)")
    n = _int(meta.get("num_nodes"), "meta.num_nodes", 1, MAX_NODES)
    t_in = _int(meta.get("in_steps"), "meta.in_steps", 1, MAX_STEPS)
    _int(meta.get("out_steps"), "meta.out_steps", 1, MAX_STEPS)
    c = _int(meta.get("input_channels", 1), "meta.input_channels", 1, MAX_CHANNELS)
    if t_in * n * c > MAX_INPUT_ELEMENTS:
        raise _Bad(f"one input window of {t_in} x {n} x {c} values (over {MAX_INPUT_ELEMENTS})")
    for key in ("steps_per_day", "freq_minutes"):
        if meta.get(key) is not None:
            _int(meta[key], f"meta.{key}", 1, 10**7)
    _number(meta.get("null_value"), "meta.null_value", finite=False, allow_none=True)
    for key in ("protocol", "dataset", "graph_sha256", "data_sha256", "freq"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise _Bad(f"meta.{key} is {_show(meta[key])} (expected a string)")
    series = meta.get("series")
    if series is not None and not (
        isinstance(series, list)
        and len(series) == n
        and all(isinstance(v, str) for v in series)
        and len(set(series)) == n
    ):
        raise _Bad(f"meta.series is {_show(series)} (expected {n} distinct series names)")


def _check_graph(graph: Any, num_nodes: int) -> None:
    if graph is None:
        return
    t = _tensor(graph, "'graph'", dtype=torch.float32)
    if tuple(t.shape) != (num_nodes, num_nodes):
        raise _Bad(f"'graph' has shape {list(t.shape)} (expected [{num_nodes}, {num_nodes}])")
    if not bool(torch.isfinite(t).all()):
        raise _Bad("'graph' holds NaN or infinite weights (expected finite ones)")


def _check_scaler(scaler: Any, num_nodes: int) -> None:
    """Every field :meth:`StandardScaler.state_dict` writes (``fitted``, ``null_value`` and
    ``fill`` may be absent: older runs did not write them)."""
    scaler = _dict(scaler, "'scaler'")
    mode = scaler.get("mode")
    if mode not in ("global", "per_channel"):
        raise _Bad(f"scaler.mode is {_show(mode)} (expected 'global' or 'per_channel')")
    sizes = set()
    for key in ("mean", "std"):
        value = scaler.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and len(values) > MAX_NODES:
            raise _Bad(f"scaler.{key} holds {len(values)} values")
        for v in values:
            _number(v, f"scaler.{key}")
            if key == "std" and float(v) <= 0:
                raise _Bad(f"scaler.std holds {v} (expected positive values)")
        sizes.add(len(values) if isinstance(value, (list, tuple)) else 1)
    if mode == "per_channel" and sizes != {num_nodes}:
        raise _Bad(f"a per-series scaler of sizes {sorted(sizes)} for N={num_nodes} series")
    if "fitted" in scaler and not isinstance(scaler["fitted"], bool):
        raise _Bad(f"scaler.fitted is {_show(scaler['fitted'])} (expected true or false)")
    # NaN (no null value) is written as None; a NaN float is the same rule
    _number(scaler.get("null_value"), "scaler.null_value", finite=False, allow_none=True)
    fill = scaler.get("fill", "keep")
    if not isinstance(fill, str) or fill not in INPUT_FILLS:
        names = ", ".join(repr(f) for f in INPUT_FILLS[:-1]) + f" or {INPUT_FILLS[-1]!r}"
        raise _Bad(f"scaler.fill is {_show(fill)} (expected {names})")


def _check_rng(rng: Any) -> None:
    rng = _dict(rng, "'rng'")
    py = rng.get("python")
    if isinstance(py, dict):
        internal = _tensor(py.get("internal"), "rng.python.internal", dtype=torch.int64)
        values = internal.tolist() if internal.dim() == 1 else None
        gauss = py.get("gauss_next")
    elif isinstance(py, tuple) and len(py) == 3:
        values, gauss = py[1], py[2]
    else:
        raise _Bad(f"rng.python is {_show(py)}")
    if not isinstance(values, (list, tuple)) or len(values) != 625:
        raise _Bad("rng.python's state (expected 625 integers)")
    if not all(isinstance(v, int) and 0 <= v < 2**32 for v in values) or values[-1] > 624:
        raise _Bad("rng.python's state (expected 624 words below 2**32 and a position)")
    _number(gauss, "rng.python.gauss_next", allow_none=True)
    npy = rng.get("numpy")
    if isinstance(npy, dict):
        keys: Any = _tensor(npy.get("keys"), "rng.numpy.keys", dtype=torch.int64).numpy()
        kind, pos, has_gauss = npy.get("kind"), npy.get("pos"), npy.get("has_gauss")
        cached = npy.get("cached_gaussian")
    elif isinstance(npy, tuple) and len(npy) == 5:
        kind, keys, pos, has_gauss, cached = npy
    else:
        raise _Bad(f"rng.numpy is {_show(npy)}")
    if kind != "MT19937" or not isinstance(keys, np.ndarray) or keys.shape != (624,):
        raise _Bad("rng.numpy (expected MT19937 with 624 keys)")
    if keys.min(initial=0) < 0 or keys.max(initial=0) >= 2**32:
        raise _Bad("rng.numpy's keys (expected values below 2**32)")
    _int(pos, "rng.numpy.pos", 0, 624)
    _int(has_gauss, "rng.numpy.has_gauss", 0, 1)
    _number(cached, "rng.numpy.cached_gaussian")
    state = _tensor(rng.get("torch"), "rng.torch", dtype=torch.uint8)
    if state.shape != (_TORCH_RNG_BYTES,):
        raise _Bad(f"rng.torch has shape {list(state.shape)} (expected [{_TORCH_RNG_BYTES}])")
    per_rank = rng.get("torch_per_rank")
    if per_rank is not None:
        table = _tensor(per_rank, "rng.torch_per_rank", dtype=torch.uint8)
        if table.dim() != 2 or table.shape[1] != _TORCH_RNG_BYTES or table.shape[0] > 65536:
            raise _Bad(f"rng.torch_per_rank is {_show(table)}")
    cuda = rng.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, (list, tuple))
        and all(isinstance(_tensor(s, "rng.cuda", dtype=torch.uint8), torch.Tensor) for s in cuda)
    ):
        raise _Bad(f"rng.cuda is {_show(cuda)}")


def _check_progress(ckpt: dict[str, Any]) -> None:
    _int(ckpt.get("epoch"), "'epoch'", 0, MAX_EPOCHS)
    _int(ckpt.get("global_step"), "'global_step'", 0, 2**62)
    stop = _dict(ckpt.get("early_stopping"), "'early_stopping'")
    _number(stop.get("best"), "early_stopping.best", finite=False)
    _int(stop.get("best_epoch"), "early_stopping.best_epoch", 0, MAX_EPOCHS)
    _int(stop.get("bad_epochs"), "early_stopping.bad_epochs", 0, MAX_EPOCHS)
    history = ckpt.get("history", [])
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise _Bad(f"'history' is {_show(history)} (expected a list of rows)")
    optimizer = ckpt.get("optimizer")
    if optimizer is not None:
        optimizer = _dict(optimizer, "'optimizer'")
        if not isinstance(optimizer.get("state"), dict) or not isinstance(
            optimizer.get("param_groups"), list
        ):
            raise _Bad("'optimizer' (expected its state and param_groups)")
        for slot in optimizer["state"].values():
            for key, value in _dict(slot, "an optimizer slot").items():
                if isinstance(value, torch.Tensor):
                    _tensor(value, f"optimizer state {key!r}")
    if ckpt.get("scheduler") is not None:
        _dict(ckpt["scheduler"], "'scheduler'")


def check_checkpoint(ckpt: Any, path: str | Path) -> None:
    """Refuse a checkpoint whose contents the engine cannot use, with one sentence.

    Args:
        ckpt: what the file held (already known to be a dict of format ``linearcast``).
        path: the file, named in the message.

    Raises:
        ConfigError: the first thing wrong, what it is and what was expected; NaN or infinite
            weights are named with the weight.
    """
    try:
        _check_model(ckpt.get("model"))
        _check_meta(ckpt.get("meta"))
        _check_scaler(ckpt.get("scaler"), int(ckpt["meta"]["num_nodes"]))
        _check_graph(ckpt.get("graph"), int(ckpt["meta"]["num_nodes"]))
        _dict(ckpt.get("config"), "'config'")
        _check_progress(ckpt)
        _check_rng(ckpt.get("rng"))
    except _NonFinite as err:
        raise ConfigError(
            f"{path}: the weights hold NaN or infinite values (first in {err.key!r}); the run "
            f"diverged before this checkpoint was written, or the file was altered. Retrain "
            f"(e.g. with a lower --lr) instead of using it."
        ) from None
    except _Bad as err:
        raise ConfigError(
            f"{path}: damaged or altered checkpoint: {err}; `linearcast train` never writes "
            f"that. Use the run's other checkpoint (best.ckpt / last.ckpt) or retrain."
        ) from None
