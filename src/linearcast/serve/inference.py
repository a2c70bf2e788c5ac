"""Use a finished run: recompute its metrics (``evaluate``) or write forecasts (``predict``).

Both reload ``best.ckpt`` and the run's resolved config. Inputs are scaled with the scaler
saved in the checkpoint (the one the model was trained with), also on a different dataset
given with ``data=``; the protocol (split, windows) is the run's. Other data's series are
matched to the run's by name (:mod:`linearcast.engine.series_identity`).

``predict`` gives data units by default under every protocol (the units of ``forecast``);
``units="scaled"`` gives the model's standardised space (the one ett/ltsf metrics use). A run
with ``nonnegative = true`` predicts and is scored on forecasts clipped at 0
(:mod:`linearcast.engine.target`); both name the data channel forecast when there are several.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import (
    evaluate,
    format_metrics_table,
    forward_eval,
    table_columns,
)
from linearcast.engine.samplers import ShardSampler
from linearcast.engine.target import channel_name, channel_text, clip_data_units
from linearcast.errors import ConfigError, DataError
from linearcast.serve.intervals import check_levels
from linearcast.serve.outputs import atomic_output, check_output_path, run_inputs
from linearcast.serve.run import best_model, inference_fabric, load_run, read_run

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData, TimeSeriesDataset

__all__ = ["Prediction", "evaluate_run", "load_run", "predict_run", "read_run"]

SPLITS = ("train", "val", "test")
UNITS = {"data": "data units", "scaled": "standardised units"}


class Prediction(np.ndarray):
    """A NumPy array that names its units (``.units``: ``"data units"`` or ``"standardised
    units"``) and holds the intervals asked for (``.intervals``: ``{"lo_90": [S, T_out, N, C],
    "hi_90": ...}``, on this array only, not its slices); otherwise an ordinary
    ``[S, T_out, N, C]`` float32 array."""

    units: str | None
    intervals: dict[str, np.ndarray]

    def __new__(
        cls, values: np.ndarray, units: str, intervals: dict[str, np.ndarray] | None = None
    ) -> Prediction:
        obj = np.asarray(values).view(cls)
        obj.units = units
        obj.intervals = dict(intervals or {})
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.units = getattr(obj, "units", None)
        self.intervals = {}  # a slice or a result of arithmetic is no longer those windows


def _open_split(
    run_dir: str | Path,
    data: str | TimeSeriesDataset | None,
    data_format: str,
    split: str,
    accelerator: str | None,
    batch_size: int | None,
) -> tuple[TrainConfig, PreparedData, Fabric, Any, Any, int]:
    """What evaluating or predicting a split of a finished run starts from.

    Returns:
        ``(config, prep, fabric, model, part, batch_size)``: the run's config, its prepared
        data, the Fabric and the best weights on its device, the split's windows and the batch
        size (the given one, else the run's evaluation or training batch size).
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; found {split!r}.")
    ckpt, config, prep = load_run(run_dir, data, data_format)
    fabric = inference_fabric(config, accelerator)
    model = best_model(ckpt, config, prep, fabric, Path(run_dir))
    part = getattr(prep, split)
    return (
        config,
        prep,
        fabric,
        model,
        part,
        batch_size or config.eval_batch_size or config.batch_size,
    )


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | TimeSeriesDataset | None = None,
    data_format: str = "auto",
    split: str = "test",
    batch_size: int = 0,
    accelerator: str | None = None,
    max_batches: int = 0,
    level: Sequence[Any] | Any = (),
) -> dict[str, Any]:
    """Recompute a run's metrics with its best weights.

    Args:
        run_dir: a run directory holding ``best.ckpt``.
        data: evaluate on this dataset (a path or a dataset object) instead of the run's own.
        data_format: reader format of ``data``.
        split: ``"test"``, ``"val"`` or ``"train"``.
        batch_size: evaluation batch size (0: the run's).
        accelerator: override the run's accelerator (e.g. ``"cpu"``).
        max_batches: evaluate only this many batches (0: all).
        level: prediction-interval levels in percent (``[80, 90]``): adds their coverage and
            width on the split (:mod:`linearcast.serve.interval_scores`), calibrated on the
            run's own validation windows; ``()``: none.

    Returns:
        ``{"run_dir", "model", "dataset", "protocol", "split", "windows", "metrics",
        "baseline", "table", "intervals"}`` (``intervals``: ``{"90": {"coverage", "width",
        "per_horizon", ...}}``, empty without ``level``).
    """
    levels = check_levels(level, "level") if _given(level) else ()
    config, prep, fabric, model, part, bs = _open_split(
        run_dir, data, data_format, split, accelerator, batch_size
    )
    loader = fabric.setup_dataloaders(
        DataLoader(part, batch_size=bs, sampler=ShardSampler(part)),
        use_distributed_sampler=False,
    )
    result = evaluate(fabric, model, loader, prep, max_batches=max_batches)
    overall = result.metrics["overall"]
    _check_finite(all(np.isfinite(overall[k]) for k in ("MAE", "MSE")), prep, run_dir, split)
    rows = {config.model: result.metrics}
    baseline = None
    if config.baseline:
        from linearcast.models import build

        p = prep.protocol
        floor = build(
            config.baseline, num_nodes=prep.num_nodes, in_steps=p.in_steps, out_steps=p.out_steps
        )
        base = evaluate(fabric, fabric.to_device(floor), loader, prep, max_batches=max_batches)
        baseline = {"model": config.baseline, split: base.metrics}
        rows[config.baseline] = base.metrics
    name = prep.dataset.name
    space = prep.protocol.metrics_space
    units = "data units" if space == "raw" else "standardised units"
    channel = _channel_label(prep)
    clipped = ", forecasts clipped at 0" if config.nonnegative else ""
    table = format_metrics_table(
        rows,
        title=f"{split} metrics on {name}{f' ({channel})' if channel else ''} under "
        f"{prep.protocol.label} ({result.windows} windows, {units}{clipped})",
        columns=table_columns(space),
    )
    intervals: dict[str, Any] = {}
    if levels:
        from linearcast.serve.interval_scores import intervals_table, split_interval_scores

        intervals = split_interval_scores(
            run_dir, levels, (prep, fabric, model), split=split, own=data is None,
            accelerator=accelerator, batch_size=bs, max_batches=max_batches,
        )  # fmt: skip
        table += "\n\n" + intervals_table(intervals, split)
    return {
        "run_dir": str(run_dir),
        "model": config.model,
        "dataset": name,
        "protocol": prep.protocol.label,
        "split": split,
        "windows": result.windows,
        "metrics": result.metrics,
        "baseline": baseline,
        "table": table,
        "channel": channel,
        "intervals": intervals,
    }


def _given(level: Any) -> bool:
    """Whether levels were asked for (``None`` and empty sequences are none)."""
    if level is None:
        return False
    return not (isinstance(level, list | tuple) and not level)


def _check_finite(finite: bool, prep: PreparedData, run_dir: str | Path, split: str) -> None:
    """Refuse non-finite forecasts (masked errors of finite forecasts are finite, 0.0 when
    nothing is scored, so non-finite metrics mean non-finite forecasts)."""
    if not finite:
        raise DataError(
            f"{prep.dataset.source}: the model of {run_dir} produced non-finite values (NaN/inf) "
            f"on the {split} windows; expected finite forecasts: check "
            f"best.ckpt for non-finite weights and the data for NaN readings (retrain if the "
            f"weights are)."
        )


def predict_run(
    run_dir: str | Path,
    out: str | Path | None,
    *,
    data: str | TimeSeriesDataset | None = None,
    data_format: str = "auto",
    split: str = "test",
    batch_size: int = 0,
    accelerator: str | None = None,
    units: str = "data",
    level: Sequence[Any] | Any = (),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Forecast every window of a split and save them.

    Args:
        run_dir: a run directory holding ``best.ckpt``.
        out: ``.npy`` (predictions ``[S, T_out, N, C]`` in ``units``) or ``.npz`` (arrays
            ``prediction``, ``target`` (both in ``units``), ``start``, the first input row of
            each window, and ``units``); ``None``: write nothing (the arrays are in the
            result). Written whole or not at all.
        data: forecast this dataset (a path or a dataset object) instead of the run's own.
        data_format: reader format of ``data``.
        split: ``"test"``, ``"val"`` or ``"train"``.
        batch_size: batch size (0: the run's evaluation batch size).
        accelerator: override the run's accelerator.
        units: ``"data"`` (default: data units under every protocol, as ``forecast``) or
            ``"scaled"`` (standardised by the run's scaler).
        level: prediction-interval levels in percent (``[80, 90]``, data units only): the
            ``.npz`` gets arrays ``lo_90``, ``hi_90`` shaped like ``prediction``, the result
            ``intervals`` ``{"lo_90": array, "hi_90": array, ...}``.
        overwrite: replace an existing ``out`` (``--overwrite``); never the data read or a
            file the run keeps in its directory (``history.csv``, ``intervals.npz``, ...).

    Returns:
        ``{"path", "shape", "windows", "split", "units", "prediction", "target", "start",
        "intervals"}`` (arrays for the last four; ``units`` is ``"data units"`` or
        ``"standardised units"``).

    Raises:
        ConfigError: another output suffix or folder, an existing ``out`` without
            ``overwrite``, an ``out`` that is the data read or a file the run wrote, unknown
            ``units``, a split without windows.
        DataError: non-finite predictions.
    """
    if units not in UNITS:
        raise ConfigError(
            f"predict: units expected one of {', '.join(map(repr, UNITS))}, found {units!r}."
        )
    levels = check_levels(level, "level") if _given(level) else ()
    if levels and units != "data":
        raise ConfigError(
            f"predict: intervals (level={list(levels)}) are in data units; expected "
            f"units='data', found units={units!r}."
        )
    if out is not None:
        out = check_output_path(out, (".npy", ".npz"), overwrite=overwrite, run_dir=run_dir,
                                reads=run_inputs(run_dir, data))  # fmt: skip
    if levels and out is not None and out.suffix.lower() != ".npz":
        raise ConfigError(
            f"{out}: --level writes the interval arrays lo_<level>/hi_<level> beside the "
            f"predictions, which .npy cannot hold; expected --out ending in .npz."
        )
    config, prep, fabric, model, part, bs = _open_split(
        run_dir, data, data_format, split, accelerator, batch_size
    )
    preds, targets = [], []
    for x, y in DataLoader(part, batch_size=bs):
        pred = forward_eval(fabric, model, fabric.to_device(x)).float().cpu()  # scaled units
        preds.append(pred)
        targets.append(y)
    if not preds:
        raise ConfigError(f"{prep.dataset.source}: the {split} split has no windows.")
    prediction, target = _in_units(torch.cat(preds), torch.cat(targets), prep, units)
    if units == "data":  # the hook clipped at the scaled 0; exactly 0 after float32 rounding
        prediction = clip_data_units(prediction, config.nonnegative)
    _check_finite(bool(np.isfinite(prediction).all()), prep, run_dir, split)
    channel = _channel_label(prep)
    bands: dict[str, Any] = {}
    if levels:
        from linearcast.serve.intervals import apply_intervals, column_suffix, conformal_quantiles

        opened = (prep, fabric, model) if data is None else None  # own data: calibrate on it
        cal = conformal_quantiles(
            run_dir, levels, accelerator=accelerator, batch_size=bs, opened=opened
        )
        for lv, (lo, hi) in apply_intervals(prediction, cal, levels).items():
            bands |= {f"lo_{column_suffix(lv)}": lo, f"hi_{column_suffix(lv)}": hi}
    if out is not None:
        with atomic_output(out) as tmp, tmp.open("wb") as fh:
            if out.suffix.lower() == ".npz":
                np.savez(fh, prediction=prediction, target=target,
                         start=np.asarray(part.starts), units=np.asarray(UNITS[units]),
                         channel=np.asarray(channel or "channel 0"), **bands)  # fmt: skip
            else:
                np.save(fh, prediction)
    return {
        "path": str(out) if out is not None else None,
        "units": UNITS[units],
        "shape": list(prediction.shape),
        "windows": len(part),
        "split": split,
        "prediction": prediction,
        "target": target,
        "start": np.asarray(part.starts),
        "channel": channel,
        "intervals": bands,
    }


def _channel_label(prep: PreparedData) -> str:
    """The data channel the run forecasts, named (``""`` for data with one channel)."""
    ds, channel = prep.dataset, prep.protocol.target_channel
    return channel_text(channel_name(ds, channel), channel, ds.num_channels)


def _in_units(
    pred: torch.Tensor, y: torch.Tensor, prep: PreparedData, units: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, target)`` in ``units`` from model outputs (always scaled) and targets
    (data units under raw-metric protocols, scaled under the others)."""
    scaler = prep.scaler
    raw_targets = prep.protocol.metrics_space == "raw"
    if units == "data":
        pred = scaler.inverse_transform(pred)
        y = y if raw_targets else scaler.inverse_transform(y)
    elif raw_targets:
        y = scaler.transform(y)
    return pred.float().numpy(), y.float().numpy()
