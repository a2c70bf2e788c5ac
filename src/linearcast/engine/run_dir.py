"""Run directories: ``runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>[-k]``, never overwritten.

What a finished run directory holds::

    config.json    the resolved TrainConfig
    metrics.json   test metrics (overall, per horizon, and per step in ``test_per_step``),
                   the baseline's, the protocol, model, parameter count, dataset, epochs,
                   seconds per epoch, peak memory
    history.csv    epoch, train_loss, val_loss, val_MAE, val_RMSE, val_MAPE, lr, seconds,
                   cpu_seconds
    last.ckpt      state after the last epoch (resume from it)
    best.ckpt      the weights with the best validation loss (evaluate/predict use it)
    curves.png     training and validation loss per epoch (log scale when the losses span
                   more than two decades), best epoch marked
    forecast.png   one test window (the fewest masked readings, nearest the middle), up to
                   four series with signal, named: history, truth, forecast and the
                   baseline's forecast; masked readings shaded; title with the window's
                   first input and last forecast time (or its steps without a calendar)
    errors.png     test error per step ahead (MAE and RMSE in data units, or MSE and MAE
                   when standardised) of the model and the baseline, from metrics.json's
                   ``test_per_step``

The plots are drawn by :mod:`linearcast.engine.plots` with matplotlib's object API
(``Figure`` + Agg canvas), which neither needs nor changes a global backend.
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

from linearcast import jsonio
from linearcast.atomic import file_mode
from linearcast.engine.config_checks import check_run_name, inside
from linearcast.engine.config_io import damaged
from linearcast.engine.plots import plot_curves as plot_curves  # moved; old imports still work
from linearcast.engine.plots import plot_forecast as plot_forecast
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
        ConfigError: ``name`` not a single directory name, given and taken, or no free name
            found.
    """
    parent = Path(parent)
    check_run_name(name)
    parent.mkdir(parents=True, exist_ok=True)
    if name:
        path = parent / name
        if not inside(parent, path):  # e.g. a name that is a symbolic link out of parent
            raise ConfigError(
                f"{path}: the run directory must be inside {parent}; choose another --run-name."
            )
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
        os.chmod(tmp, file_mode(path))  # mkstemp's files are private (0600)
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
    epochs = earlier_epochs(metrics)
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


def earlier_epochs(metrics: Path) -> int:
    """The ``epochs`` a finished run's ``metrics.json`` records, or 0 when it records none that
    is a count (missing, damaged, ``Infinity``, ``NaN``, negative, not a number): it only names
    the kept copy, and a finished result must never be lost to a damaged earlier one."""
    try:
        epochs = json.loads(metrics.read_text(errors="replace")).get("epochs", 0)
    except (OSError, ValueError, AttributeError, RecursionError):
        return 0
    if isinstance(epochs, bool) or not isinstance(epochs, int | float):
        return 0
    if not math.isfinite(epochs) or not 0 <= epochs < 2**31 or epochs != int(epochs):
        return 0
    return int(epochs)


def check_resumable(run_dir: str | Path) -> None:
    """Refuse, before any training, a run directory whose result files a resumed run could
    not replace at its end (a ``metrics.json`` or ``history.csv`` that is not a regular file).

    Raises:
        ConfigError: naming the file.
    """
    for name in ("metrics.json", "history.csv"):
        path = Path(run_dir) / name
        if path.exists() and not path.is_file():
            raise ConfigError(
                f"{path}: expected a regular file (the earlier result) in the run directory to "
                f"resume, found a directory or device; move it away and resume again."
            )


def read_json(path: str | Path) -> Any:
    """Read a JSON file, naming it in the error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: invalid JSON ({err}).") from err
    except (UnicodeDecodeError, RecursionError, OSError) as err:
        raise ConfigError(f"{path}: expected JSON text, {damaged(err)}.") from err


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
        os.chmod(tmp, file_mode(path))  # mkstemp's files are private (0600)
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
