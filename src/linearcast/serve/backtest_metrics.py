"""The errors of a backtest, per cutoff and overall, as the run's metrics are computed.

Masked MAE, RMSE, MAPE (%) and MSE of :class:`~linearcast.metrics.StreamingEvaluator` (float64
sums, so the overall numbers weigh every scored reading alike, not every window), always in
data units. A target is scored when the null rule keeps it (NaN/±inf never; a finite null
value, 0 for traffic data, not either); MAPE also leaves out ``|y|`` at or below the MAPE floor.
The floor is the protocol's ``mape_floor`` or, as in training, ``max(5e-5, 1e-3 * mean |y|)``
over the rows the first window could know (up to its cutoff), never the rows it forecasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from linearcast.metrics import NULL_ATOL, StreamingEvaluator

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset

__all__ = ["mape_floor", "score_windows"]


def mape_floor(p: Protocol, ds: TimeSeriesDataset, rows: int, null_value: float) -> float:
    """The MAPE floor: the protocol's, else ``max(5e-5, 1e-3 * mean |y|)`` over the first
    ``rows`` rows' valid target readings."""
    from linearcast.data.scaler import valid_mask

    if p.mape_floor is not None:
        return float(p.mape_floor)
    target = np.asarray(ds.values[:rows, :, p.target_channel], dtype=np.float64)
    ok = valid_mask(target, null_value)
    mean_abs = float(np.abs(target[ok]).mean()) if ok.any() else 0.0
    return max(NULL_ATOL, 1e-3 * mean_abs)


def score_windows(
    pred: np.ndarray,
    y: np.ndarray,
    cutoffs: Sequence[Any] | np.ndarray | pd.Index,
    null_value: float,
    floor: float,
    horizons: Sequence[int] = (),
    bands: dict[float, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Metrics per window and over all windows.

    Args:
        pred: ``[K, H, N]`` forecasts in data units.
        y: ``[K, H, N]`` targets in data units (NaN or the null value where missing).
        cutoffs: the K cutoffs (timestamps or rows), for the ``cutoff`` column.
        null_value: the null rule's value (NaN: only NaN/±inf are missing).
        floor: the MAPE floor.
        horizons: 1-indexed steps also reported overall (``by_horizon``).
        bands: ``{level: (lo, hi)}`` intervals ``[K, H, N]``: adds ``coverage_90`` (the share
            of scored targets inside) and ``width_90`` (their mean ``hi - lo``) per level.

    Returns:
        ``(metrics, overall)``: a frame with one row per window (``window, cutoff, MAE, RMSE,
        MAPE, MSE, scored, targets``, then the interval columns; NaN metrics where nothing was
        scored) and the same over all windows as a dict (with ``by_horizon``).
    """
    from linearcast.data.scaler import valid_mask
    from linearcast.serve.intervals import column_suffix

    total = StreamingEvaluator(horizons, null_value, floor)
    rows = []
    for k, cutoff in enumerate(cutoffs):
        ev = StreamingEvaluator(horizons, null_value, floor)
        ev.update(pred[k : k + 1], y[k : k + 1])  # (1, H, N)
        total.merge(ev)
        rows.append({"window": k, "cutoff": cutoff, **_scored(ev.sums().sum(1))})
    sums = total.sums(steps=y.shape[1])  # (6, H)
    overall = _scored(sums.sum(1))
    scored = valid_mask(y, null_value)  # (K, H, N) the metrics' mask
    for level, (lo, hi) in sorted((bands or {}).items()):
        inside = (y >= lo) & (y <= hi) & scored
        width = np.where(scored, hi - lo, 0.0)
        count = scored.sum(axis=(1, 2))  # (K,)
        name = column_suffix(level)
        for k, row in enumerate(rows):
            row[f"coverage_{name}"] = _share(inside[k].sum(), count[k])
            row[f"width_{name}"] = _share(width[k].sum(dtype=np.float64), count[k])
        overall[f"coverage_{name}"] = _share(inside.sum(), count.sum())
        overall[f"width_{name}"] = _share(width.sum(dtype=np.float64), count.sum())
    overall["by_horizon"] = {
        f"horizon_{h}": _scored(sums[:, h - 1]) for h in horizons if h <= sums.shape[1]
    }
    return pd.DataFrame(rows), overall


def _share(part: Any, whole: Any) -> float:
    return float(part) / float(whole) if whole else math.nan


def _scored(sums: torch.Tensor) -> dict[str, Any]:
    """MAE, RMSE, MAPE (%), MSE and the counts from the evaluator's sums ``[6]`` (NaN where
    nothing was scored: 0.0 would read as a perfect forecast)."""
    abs_e, sq_e, ape, count, ape_count, targets = (float(v) for v in sums)
    mse = sq_e / count if count else math.nan
    return {
        "MAE": abs_e / count if count else math.nan,
        "RMSE": math.sqrt(mse) if count else math.nan,
        "MAPE": 100.0 * ape / ape_count if ape_count else math.nan,
        "MSE": mse,
        "scored": int(count),
        "targets": int(targets),
    }
