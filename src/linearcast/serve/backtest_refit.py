"""Backtesting with ``refit``: a new model per cutoff, trained on the rows up to it.

Each refit is an ordinary training run with the run's config (model, options, protocol, epochs,
seed; only the output folder, the name and the description of the data change), on the data's
first ``cutoff + 1`` rows: the protocol splits those rows into train/val/test as it split the
run's data, so the model never sees a row after its cutoff. The refit's best weights (and its
own scaler) then forecast that cutoff's window; intervals asked for are calibrated on the
refit run's own validation windows. Runs go to ``refit_dir/cutoff-001``, ...,
created new (an existing folder is never reused), so a backtest overwrites nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from linearcast.atomic import make_folder
from linearcast.errors import DataError

if TYPE_CHECKING:
    from linearcast.data import TimeSeriesDataset
    from linearcast.engine.config import TrainConfig

__all__ = ["head", "refit_forecasts"]


def head(ds: TimeSeriesDataset, rows: int) -> TimeSeriesDataset:
    """The first ``rows`` steps of ``ds`` (a view of its values, its calendar kept)."""
    return dataclasses.replace(
        ds,
        values=ds.values[:rows],
        timestamps=ds.timestamps[:rows] if ds.timestamps is not None else None,
        tod_values=ds.tod_values[:rows] if ds.tod_values is not None else None,
        dow_values=ds.dow_values[:rows] if ds.dow_values is not None else None,
    )


def refit_forecasts(
    config: TrainConfig,
    ds: TimeSeriesDataset,
    cutoffs: np.ndarray,
    refit_dir: Path,
    accelerator: str | None,
    batch_size: int,
    progress: Callable[[str], None] | None,
    levels: Sequence[float] = (),
) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """Train on the rows up to each cutoff, then forecast that cutoff's window.

    Returns:
        ``(pred, bands)``: ``[K, H, N, C]`` float32 in data units, and ``{level: (lo, hi)}``
        of the same shape, each window's intervals calibrated on its own refit run.

    Raises:
        DataError: too few rows before a cutoff for the protocol's train/val/test windows (the
            message names the cutoff), or what training or forecasting refuses.
    """
    from linearcast.engine.setup import resolve_protocol
    from linearcast.engine.trainer import train
    from linearcast.serve.backtest_windows import (
        check_finite_windows,
        forecast_windows,
        interval_bands,
    )
    from linearcast.serve.run import read_run

    make_folder(refit_dir, what="the refit runs", fix="--out-dir")
    times = ds.times()
    k_all = len(cutoffs)
    outs, bands = [], []
    for k, row in enumerate(int(c) for c in cutoffs):
        where = f"cutoff {times[row]} (rows 0..{row})" if times is not None else f"rows 0..{row}"
        name = f"cutoff-{k + 1:03d}"
        if progress is not None:
            progress(f"refit {k + 1}/{k_all}: training {config.model} on {where} -> "
                     f"{refit_dir / name}")  # fmt: skip
        cfg = config.replace(
            out_dir=str(refit_dir),
            run_name=name,
            resume=False,
            data=f"<{ds.source} rows 0..{row}>",
            accelerator=accelerator or config.accelerator,
        )
        known = head(ds, row + 1)
        try:
            result = train(cfg, progress=False, verbose=False, report=False, dataset=known)
        except DataError as err:
            raise DataError(f"refit at {where}: {err}") from None
        ckpt, run_config = read_run(result.run_dir)
        protocol = resolve_protocol(run_config)
        pred = forecast_windows(result.run_dir, ckpt, run_config, ds, protocol,
                                cutoffs[k : k + 1], accelerator, batch_size)  # fmt: skip
        check_finite_windows(pred, ds, cutoffs[k : k + 1], result.run_dir)
        outs.append(pred)
        bands.append(interval_bands(result.run_dir, pred, levels, known, accelerator, batch_size))
    joined = {
        lv: (np.concatenate([b[lv][0] for b in bands]), np.concatenate([b[lv][1] for b in bands]))
        for lv in levels
    }
    return np.concatenate(outs), joined
