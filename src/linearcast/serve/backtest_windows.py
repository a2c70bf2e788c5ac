"""Running a run's best weights on the windows ending at given cutoffs, batched, and its
intervals around them: the backtest's windows (:func:`linearcast.serve.backtest.backtest_run`)
and ``forecast``'s one window at the end of the data (:mod:`linearcast.serve.forecast`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.errors import DataError

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset
    from linearcast.engine.config import TrainConfig

__all__ = ["check_finite_windows", "forecast_windows", "interval_bands"]


def forecast_windows(
    run_dir: Path,
    ckpt: dict[str, Any],
    config: TrainConfig,
    ds: TimeSeriesDataset,
    p: Protocol,
    cutoffs: np.ndarray,
    accelerator: str | None,
    batch_size: int = 0,
) -> np.ndarray:
    """The run's best weights on the ``in_steps`` rows ending at each cutoff, batched.

    Non-finite values are the caller's to refuse: a backtest names the cutoff
    (:func:`check_finite_windows`), ``forecast`` the series over the horizon it was asked for.

    Returns:
        ``[K, H, N, C]`` float32 in data units (the scaler undone, the run's clip at 0).
    """
    import torch
    from torch.utils.data import DataLoader

    from linearcast.data import StandardScaler, WindowDataset
    from linearcast.engine.checkpoint import BEST, load_weights
    from linearcast.engine.evaluation import forward_eval
    from linearcast.engine.setup import build_model_for
    from linearcast.engine.target import apply_output_rule, clip_data_units
    from linearcast.engine.trained_on import check_trained_graph, trained_graph
    from linearcast.serve.run import inference_fabric

    scaler = StandardScaler.from_state_dict(ckpt["scaler"])
    # the training windows' own code builds the inputs: same scaling, same time features
    windows = WindowDataset(
        ds.values,
        cutoffs - p.in_steps + 1,
        p.in_steps,
        0,
        scaler=scaler,
        target_channel=p.target_channel,
        time_of_day=ds.time_of_day() if p.add_time_of_day else None,
        day_of_week=ds.day_of_week() if p.add_day_of_week else None,
    )
    meta = ckpt.get("meta", {})
    model = build_model_for(
        config,
        ds,
        p,
        windows.input_channels,
        steps_per_day=meta.get("steps_per_day"),
        trained_graph=trained_graph(ckpt),
    )
    load_weights(model, ckpt["model"], run_dir / BEST)
    check_trained_graph(model, meta, ds.adjacency, str(ds.source), run_dir)
    apply_output_rule(model, config, scaler).eval()
    fabric = inference_fabric(config, accelerator)
    model = fabric.to_device(model)
    outs = []
    bs = batch_size or config.eval_batch_size or config.batch_size
    for x, _ in DataLoader(windows, batch_size=bs):
        out = forward_eval(fabric, model, fabric.to_device(x)).float()  # (B, H, N, C) scaled
        # data units under every protocol, by the same float32 inverse transform as predict's,
        # so that the numbers agree exactly
        outs.append(scaler.inverse_transform(out).cpu())
    return clip_data_units(torch.cat(outs).numpy(), config.nonnegative)  # (K, H, N, C)


def interval_bands(
    run_dir: Path,
    pred: np.ndarray,
    levels: Sequence[float],
    calibration_data: TimeSeriesDataset | None,
    accelerator: str | None,
    batch_size: int,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """``{level: (lo, hi)}`` around ``pred [K, H, N, C]``: the run's conformal intervals."""
    if not levels:
        return {}
    from linearcast.serve.intervals import apply_intervals, conformal_quantiles

    cal = conformal_quantiles(run_dir, levels, dataset=calibration_data,
                              accelerator=accelerator, batch_size=batch_size)  # fmt: skip
    return apply_intervals(pred, cal, levels)


def check_finite_windows(
    values: np.ndarray,
    ds: TimeSeriesDataset,
    cutoffs: np.ndarray,
    run_dir: Path,
    unobserved: np.ndarray | None = None,
) -> None:
    """Refuse forecasts ``[K, H, N, C]`` with NaN or infinite values, naming the first;
    ``unobserved [K, N]``: forecasts NaN because their input window is missing
    (:func:`~linearcast.serve.missing_inputs.unobserved_windows`), not refused."""
    bad = ~np.isfinite(values).all(axis=(1, 3))  # (K, N)
    if unobserved is not None:
        bad &= ~unobserved
    if not bad.any():
        return
    k, i = (int(v[0]) for v in np.nonzero(bad))
    names = ds.node_names or [str(j) for j in range(ds.num_nodes)]
    raise DataError(
        f"{ds.source}: the model of {run_dir} produced non-finite values (NaN/inf) in "
        f"{int(bad.sum())} of {bad.size} (window, series) forecasts, the first for series "
        f"{names[i]!r} from the cutoff at row {int(cutoffs[k])}; expected finite forecasts: "
        f"check those input rows for NaN readings and best.ckpt for non-finite weights."
    )
