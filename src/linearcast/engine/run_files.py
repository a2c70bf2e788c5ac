"""The files a run writes in its directory, each whole or not at all.

:func:`open_run_dir` creates the directory (or takes the resumed one, removing the temporary
files a killed process left there) and writes ``config.json``; :func:`write_outputs` writes
``metrics.json``, ``series.json``, ``history.csv`` and the plots at the end (rank 0). Every file
goes through :mod:`linearcast.atomic` (temporary file in the folder, ``fsync``, ``os.replace``):
a full disk or a missing folder is one sentence naming the path, the earlier file stays intact
and no temporary file is left.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from linearcast.atomic import atomic_path, make_folder, os_error_message, remove_stale_temps
from linearcast.atomic import write_json as write_json_atomic
from linearcast.engine import plots  # figures looked up at call time (tests wrap them)
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import forward_eval, unit_converter
from linearcast.engine.run_dir import create_run_dir, keep_earlier_result, write_history
from linearcast.engine.run_report import floor_model
from linearcast.engine.series_identity import SERIES_FILE, series_record
from linearcast.engine.setup import dataset_label
from linearcast.engine.target import channel_name, channel_text
from linearcast.errors import ConfigError

if TYPE_CHECKING:
    from lightning_fabric import Fabric
    from matplotlib.figure import Figure

    from linearcast.data import PreparedData

FIX = "--out DIR"  # the option that moves a run's files elsewhere


def write_json(path: Path, data: Any) -> Path:
    """Strict JSON, atomically; errors name ``path`` and ``--out``."""
    return write_json_atomic(path, data, what=path.name, fix=FIX)


def open_run_dir(
    config: TrainConfig, fabric: Fabric, prep: PreparedData, resume: Path | None
) -> tuple[Path, Path | None]:
    """The run directory, with ``config.json`` (rank 0 writes; every rank learns the name).

    Returns:
        ``(run_dir, created)``: ``created`` is the directory this call made (rank 0 of a new
        run), which a run that fails before its first checkpoint removes.

    Raises:
        ConfigError: ``--out`` is a file or cannot be written, or ``config.json`` could not be.
    """
    cfg = config
    if resume is not None:
        if fabric.is_global_zero:  # the continuation's config (e.g. a raised max_epochs)
            remove_stale_temps(resume)  # half-written files of a killed process
            write_json(resume / "config.json", cfg.to_dict())
        return resume, None
    name, created = "", None
    if fabric.is_global_zero:
        make_folder(cfg.out_dir, what="run directories", fix=FIX)
        try:
            created = create_run_dir(cfg.out_dir, cfg.model, dataset_label(prep),
                                     name=cfg.run_name)  # fmt: skip
        except OSError as err:
            raise ConfigError(
                os_error_message(cfg.out_dir, err, what="a run directory", fix=FIX)
            ) from None
        try:
            write_json(created / "config.json", cfg.to_dict())
        except BaseException:
            shutil.rmtree(created, ignore_errors=True)  # still empty: nothing measured
            raise
        name = str(created)
    name = fabric.broadcast(name, src=0)
    return Path(name), created


def save_figure(fig: Figure | None, path: Path) -> Path | None:
    """``fig`` as ``path`` (PNG by its suffix), atomically; None without a figure."""
    if fig is None:
        return None
    with atomic_path(path, keep_suffix=True, what=path.name, fix=FIX) as tmp:
        fig.savefig(tmp)
    return path


def write_outputs(
    config: TrainConfig,
    run_dir: Path,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    prep: PreparedData,
    model: nn.Module,
    fabric: Fabric,
) -> None:
    """``metrics.json``, ``series.json``, ``history.csv`` and (``config.plots``) the three
    plots (rank 0)."""
    keep_earlier_result(run_dir)
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / SERIES_FILE, series_record(prep.dataset))  # forecasts match by name
    history_path = run_dir / "history.csv"
    with atomic_path(history_path, what=history_path.name, fix=FIX) as tmp:
        write_history(tmp, history)  # the CSV layout stays run_dir's
    if not config.plots:
        return
    title = f"{config.model} on {metrics['dataset']['name']} ({metrics['protocol']})"
    save_figure(plots.curves_figure(history, title), run_dir / "curves.png")
    save_figure(test_window_figure(config, prep, model, fabric, title), run_dir / "forecast.png")
    step = prep.dataset.freq_minutes
    save_figure(plots.errors_figure(metrics, step_minutes=step), run_dir / "errors.png")


def test_window_figure(
    config: TrainConfig,
    prep: PreparedData,
    model: nn.Module,
    fabric: Fabric,
    title: str,
) -> Figure | None:
    """One test window (:func:`~linearcast.engine.plots.choose_window`): history, truth,
    the model's and the baseline's forecasts of up to four series with signal (None without
    test windows)."""
    test = prep.test
    if len(test) == 0:
        return None
    t_in, t_out = test.in_steps, test.out_steps
    i = plots.choose_window(test.values, test.starts, t_in + t_out, prep.null_value,
                      test.target_channel)  # fmt: skip
    first = int(test.starts[i])
    x, y = test[i]
    to_units = unit_converter(prep)
    xb = fabric.to_device(x[None])
    pred = to_units(forward_eval(fabric, model, xb))[0, ..., 0].cpu().numpy()  # (T_out, N)
    baseline = None
    floor = floor_model(config, fabric, prep)
    if floor is not None:
        floor.eval()
        baseline = to_units(forward_eval(fabric, floor, xb))[0, ..., 0].cpu().numpy()
    scaled = prep.protocol.metrics_space == "scaled"
    channel = channel_name(prep.dataset, test.target_channel)  # named in the title
    if scaled:  # the units of y and of the forecasts
        hist = x[..., 0].double().numpy()  # (T_in, N)
    else:  # the file's readings: an inverse-transformed null would miss the null test
        hist = np.asarray(test.values[first : first + t_in, :, test.target_channel])
    return plots.forecast_figure(
        hist,
        y[..., 0].numpy(),
        pred,
        names=prep.dataset.node_names,
        times=prep.dataset.times(slice(first, first + t_in + t_out)),
        first_row=first,
        baseline=baseline,
        baseline_label=config.baseline or "baseline",
        title=title,
        null_value=prep.null_value,
        units="standardised units" if scaled else "data units",
        channel=channel_text(channel, test.target_channel, prep.dataset.num_channels),
    )
