"""Run directories: ``runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>[-k]``, never overwritten.

What a finished run directory holds::

    config.json    the resolved TrainConfig
    metrics.json   test metrics (overall and per horizon), the baseline row, the protocol,
                   model, parameter count, dataset, epochs, seconds per epoch, peak memory
    history.csv    epoch, train_loss, val_loss, val_MAE, val_RMSE, val_MAPE, lr, seconds,
                   cpu_seconds
    last.ckpt      state after the last epoch (resume from it)
    best.ckpt      the weights with the best validation loss (evaluate/predict use it)
    curves.png     training and validation loss per epoch
    forecast.png   history, truth and forecast of a few nodes for one test window

Plots are drawn with matplotlib's object API (``Figure`` + Agg canvas), which neither needs
nor changes a global backend.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linearcast import jsonio
from linearcast.errors import ConfigError

HISTORY_FIELDS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_MAE",
    "val_RMSE",
    "val_MAPE",
    "lr",
    "seconds",
    "cpu_seconds",
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-") or "run"


def create_run_dir(
    parent: str | Path,
    model: str,
    dataset: str,
    *,
    name: str = "",
    now: dt.datetime | None = None,
) -> Path:
    """Create a new, empty run directory; an existing one is never reused.

    Args:
        parent: folder holding the runs (created when missing).
        model: model name (first part of the directory name).
        dataset: dataset name (second part).
        name: use exactly this name instead (it must not exist yet).
        now: the timestamp (default: the current local time).

    Returns:
        The created directory ``parent/<model>-<dataset>-<YYYYmmdd-HHMMSS>`` or, when that
        exists (two runs in the same second), the same with ``-1``, ``-2``, ... appended.

    Raises:
        ConfigError: ``name`` given and taken, or no free name found.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    if name:
        path = parent / name
        try:
            path.mkdir()
        except FileExistsError:
            raise ConfigError(
                f"{path}: run directory exists; choose another run_name, or resume it with "
                f"--resume {path}."
            ) from None
        return path
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = f"{_slug(model)}-{_slug(dataset)}-{stamp}"
    for k in range(10_000):
        path = parent / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()  # atomic: fails if another process created it first
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"{parent}: no free run directory name for {base}.")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file through a temp file + ``os.replace`` (readers never see half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented, strict JSON, atomically (NaN and ±inf become ``null``)."""
    return write_text_atomic(path, jsonio.dumps(data) + "\n")


def keep_earlier_result(run_dir: str | Path) -> Path | None:
    """Rename a finished run's ``metrics.json``/``history.csv`` before a resumed run rewrites them.

    A run resumed after it finished (e.g. with more epochs) writes a new result; the earlier one
    is kept as ``metrics.<epochs>.json`` and ``history.<epochs>.csv`` (``<epochs>``: the epochs
    it had run; ``-1``, ``-2``, ... appended if that name is taken), so nothing measured is lost.

    Returns:
        The renamed metrics file, or None when there was none.
    """
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        epochs = int(json.loads(metrics.read_text()).get("epochs", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        epochs = 0
    for k in range(10_000):
        tag = f"{epochs}" if k == 0 else f"{epochs}-{k}"
        target = run_dir / f"metrics.{tag}.json"
        if not target.exists():
            break
    os.replace(metrics, target)
    history = run_dir / "history.csv"
    if history.is_file():
        os.replace(history, run_dir / f"history.{tag}.csv")
    return target


def read_json(path: str | Path) -> Any:
    """Read a JSON file, naming it in the error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: invalid JSON ({err}).") from err


def write_history(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``history.csv`` (columns :data:`HISTORY_FIELDS`; missing values left empty)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _csv_value(row.get(k)) for k in HISTORY_FIELDS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def read_history(path: str | Path) -> list[dict[str, float]]:
    """Read ``history.csv`` back (empty cells become NaN)."""
    with Path(path).open(newline="") as fh:
        return [
            {k: float(v) if v != "" else float("nan") for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


# ---------------------------------------------------------------------- plots
def plot_curves(path: str | Path, rows: Sequence[dict[str, Any]], title: str = "") -> Path | None:
    """Training and validation loss against epoch (``curves.png``); None if no epoch ran."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    train = [_nan(r.get("train_loss")) for r in rows]
    val = [_nan(r.get("val_loss")) for r in rows]
    fig = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, train, marker="o", label="train loss")
    vx = [e for e, v in zip(epochs, val) if not math.isnan(v)]
    vy = [v for v in val if not math.isnan(v)]
    ax.plot(vx, vy, marker="s", label="validation loss")
    if vy:
        best = int(np.argmin(vy))
        ax.axvline(vx[best], color="grey", linestyle=":", label=f"best (epoch {vx[best]})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def plot_forecast(
    path: str | Path,
    history: np.ndarray,
    truth: np.ndarray,
    forecast: np.ndarray,
    *,
    nodes: Sequence[int],
    baseline: np.ndarray | None = None,
    title: str = "",
    null_value: float = 0.0,
) -> Path:
    """History, truth and forecast of a few nodes for one window (``forecast.png``).

    Args:
        path: output PNG.
        history: ``[T_in, N]`` input target in data units.
        truth: ``[T_out, N]`` targets.
        forecast: ``[T_out, N]`` predictions.
        nodes: which nodes to draw (one panel each).
        baseline: ``[T_out, N]`` baseline predictions, drawn dashed when given.
        title: figure title.
        null_value: readings equal to it are missing and not drawn.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t_in, t_out = history.shape[0], truth.shape[0]
    x_hist = np.arange(-t_in + 1, 1)
    x_fut = np.arange(1, t_out + 1)
    fig = Figure(figsize=(3.2 * len(nodes), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(nodes), squeeze=False)[0]

    def shown(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.float64, copy=True)
        if not math.isnan(null_value):
            v[np.isclose(v, null_value, atol=5e-5)] = np.nan
        return v

    for ax, node in zip(axes, nodes):
        ax.plot(x_hist, shown(history[:, node]), color="black", label="history")
        ax.plot(x_fut, shown(truth[:, node]), color="black", linestyle="--", label="truth")
        ax.plot(x_fut, forecast[:, node], color="tab:red", marker=".", label="forecast")
        if baseline is not None:
            ax.plot(x_fut, baseline[:, node], color="tab:grey", linestyle=":", label="baseline")
        ax.axvline(0.5, color="grey", alpha=0.4)
        ax.set_title(f"node {node}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
