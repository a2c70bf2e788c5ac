"""How good a run's prediction intervals are, measured on windows the calibration did not see.

Coverage is the share of scored targets (the metrics' mask: missing readings are left out)
inside ``[lo, hi]``; width is the mean of ``hi - lo`` over the same targets, in data units (after
the clip at 0 of nonnegative runs). Both are reported overall and at the protocol's horizons
(step 3, 6, 12 of the traffic protocols), per level, as ``metrics.json``'s ``intervals``::

    {"90": {"coverage": 0.897, "width": 41.2, "count": 123456, "pooled_cells": 0,
            "per_horizon": {"horizon_3": {"coverage": ..., "width": ...}, ...}}, ...}

A split-conformal interval covers at least its level *on average over exchangeable data*; the
windows of a series overlap and the test period follows the validation one, so coverage below
the level is a measured fact about this run (e.g. distribution shift), not a bug to hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.serve.intervals import (
    DEFAULT_LEVELS,
    Calibration,
    apply_intervals,
    check_levels,
    conformal_quantiles,
    level_key,
    open_run,
    split_batches,
)

if TYPE_CHECKING:
    from linearcast.data import TimeSeriesDataset

__all__ = ["intervals_table", "record_intervals", "score_intervals", "split_interval_scores"]


def score_intervals(
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    calibration: Calibration,
    levels: Sequence[float],
    horizons: Sequence[int],
) -> dict[str, Any]:
    """Coverage and mean width per level, overall and at ``horizons``.

    Args:
        batches: ``(prediction, target, mask)`` ``[B, T, N, C]`` in data units (as
            :func:`~linearcast.serve.intervals.split_batches` gives).
        calibration: the run's quantiles (holding every level).
        levels: in percent.
        horizons: 1-indexed steps reported on their own.

    Returns:
        ``{level_key: {"coverage", "width", "count", "pooled_cells", "per_horizon":
        {"horizon_h": {"coverage", "width", "count"}}}}`` (coverage is a fraction; 0.0 and
        width 0.0 where nothing is scored).
    """
    sums: dict[float, np.ndarray] = {}  # level -> (3, T): covered, scored, width sum per step
    for pred, target, mask in batches:
        for level, (lo, hi) in apply_intervals(pred, calibration, levels).items():
            inside = (target >= lo) & (target <= hi) & mask
            width = np.where(mask, hi - lo, 0.0)
            step = np.stack([inside.sum(axis=(0, 2, 3)), mask.sum(axis=(0, 2, 3)),
                             width.sum(axis=(0, 2, 3), dtype=np.float64)])  # fmt: skip
            sums[level] = sums.get(level, 0) + step
    out: dict[str, Any] = {}
    for level in levels:
        s = sums.get(level, np.zeros((3, 1)))
        per_horizon = {f"horizon_{h}": _rates(s[:, h - 1 : h]) for h in horizons if h <= s.shape[1]}
        out[level_key(level)] = _rates(s) | {
            "pooled_cells": calibration.pooled[level],
            "per_horizon": per_horizon,
        }
    return out


def _rates(s: np.ndarray) -> dict[str, Any]:
    covered, count, width = (float(v) for v in s.sum(axis=1))
    return {
        "coverage": covered / count if count else 0.0,
        "width": width / count if count else 0.0,
        "count": int(count),
    }


def split_interval_scores(
    run_dir: str | Path,
    levels: Iterable[Any],
    opened: tuple[Any, Any, Any],
    *,
    split: str = "test",
    own: bool = True,
    dataset: TimeSeriesDataset | None = None,
    accelerator: str | None = None,
    batch_size: int = 0,
    max_batches: int = 0,
) -> dict[str, Any]:
    """:func:`score_intervals` on a split of an opened run.

    Args:
        run_dir: the run.
        levels: in percent.
        opened: ``(prep, fabric, model)`` of the data scored.
        split: ``"test"`` (``"val"`` scores the calibration windows themselves).
        own: ``opened`` is the run's own data (then it is calibrated on, too).
        dataset: the run's own data as an object, for a calibration not stored yet.
        accelerator: for the calibration pass on the run's own data.
        batch_size: batch size (0: the run's).
        max_batches: score only this many batches (0: all).
    """
    from linearcast.engine.config import TrainConfig

    wanted = check_levels(levels, "level")
    run_dir = Path(run_dir)
    config = TrainConfig.load(run_dir / "config.json")
    cal = conformal_quantiles(run_dir, wanted, dataset=dataset, accelerator=accelerator,
                              batch_size=batch_size, opened=opened if own else None)  # fmt: skip
    prep, fabric, model = opened
    bs = batch_size or config.eval_batch_size or config.batch_size
    batches = split_batches(fabric, model, prep, split, bs, config.nonnegative, max_batches)
    return score_intervals(batches, cal, wanted, prep.protocol.horizons)


def intervals_table(intervals: dict[str, Any], split: str = "test") -> str:
    """Coverage (%) and mean width per level, overall and per horizon, aligned."""
    lines = [
        f"prediction intervals on the {split} windows (split conformal, calibrated on the "
        f"validation windows; width in data units)",
        f"{'level':<8}{'horizon':<12}{'coverage(%)':>12}{'width':>12}",
    ]
    for key, row in intervals.items():
        for label, r in [("overall", row), *row["per_horizon"].items()]:
            lines.append(
                f"{key + '%':<8}{label.replace('_', ' '):<12}{100 * r['coverage']:>12.2f}"
                f"{r['width']:>12.4f}"
            )
    return "\n".join(lines)


def record_intervals(
    run_dir: str | Path,
    levels: Iterable[Any] = DEFAULT_LEVELS,
    *,
    dataset: TimeSeriesDataset | None = None,
    accelerator: str | None = None,
) -> dict[str, Any]:
    """Calibrate a finished run's intervals and add their test coverage and width to its
    ``metrics.json`` (key ``intervals``, written atomically); what ``train`` does at its end.

    Args:
        run_dir: a finished run directory (``metrics.json`` written).
        levels: in percent.
        dataset: the run's data as an object (a run trained on a frame or array).
        accelerator: override the run's accelerator.

    Returns:
        The ``intervals`` entry.
    """
    import json

    from linearcast.engine.run_dir import write_json

    run_dir = Path(run_dir)
    opened = open_run(run_dir, dataset, accelerator)
    scores = split_interval_scores(run_dir, levels, opened, dataset=dataset,
                                   accelerator=accelerator)  # fmt: skip
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics["intervals"] = scores
    write_json(path, metrics)
    return scores


def record_or_warn(run_dir: str | Path, levels: Iterable[Any], **options: Any) -> dict[str, Any]:
    """:func:`record_intervals`, or ``{}`` with a warning when the run's intervals cannot be
    calibrated (the run itself is finished: training must not fail over its intervals)."""
    import warnings

    from linearcast.errors import LinearcastError

    try:
        return record_intervals(run_dir, levels, **options)
    except LinearcastError as err:
        warnings.warn(f"no prediction intervals: {err}", UserWarning, stacklevel=3)
        return {}
