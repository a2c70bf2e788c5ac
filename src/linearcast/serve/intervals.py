"""Prediction intervals for every model, without retraining: split conformal on the validation
windows.

For each series ``n``, horizon step ``h`` and output channel ``c`` the absolute residuals
``|y - ŷ|`` of the run's best weights on its validation windows (data units; targets the
metrics mask as missing are left out) give ``m`` scores; the interval at level ``α`` (e.g.
0.9) is ``ŷ ± q[h, n, c]`` with ``q`` the ``k``-th smallest score,
``k = ceil((m + 1) · α)`` (the finite-sample correction of split conformal prediction). Where a
series has too few scores at a step for that (``k > m``), the step's scores over all series
are used instead (``pooled`` counts how many such cells there are). A run with ``nonnegative
= true`` has its lower bounds clipped at 0.

The windows overlap, so the scores are not exchangeable draws: coverage is *measured* on the
test windows (:mod:`linearcast.serve.interval_scores`), not guaranteed.

The quantiles are kept in the run directory (``intervals.npz``, read with
``allow_pickle=False``, written atomically) with the SHA-256 of ``best.ckpt``: later forecasts
reuse them, a new level is added to them, and a changed checkpoint is calibrated afresh.

Column names: ``y_hat_lo_90`` / ``y_hat_hi_90`` (``97.5`` gives ``y_hat_lo_97_5``), not
neuralforecast's ``model-lo-90``: names that are Python identifiers work with pandas attribute
access, ``DataFrame.query`` and SQL without quoting.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from linearcast.data import PreparedData, TimeSeriesDataset

__all__ = [
    "CACHE_FILE",
    "DEFAULT_LEVELS",
    "Calibration",
    "apply_intervals",
    "check_levels",
    "column_suffix",
    "conformal_quantiles",
    "level_key",
    "split_quantile",
]

CACHE_FILE = "intervals.npz"
DEFAULT_LEVELS = (80.0, 90.0)
_CACHE_VERSION = 1


# ---------------------------------------------------------------------- levels
def check_levels(levels: Iterable[Any] | Any, option: str = "--level") -> tuple[float, ...]:
    """The levels as sorted distinct floats in (0, 100), at most one decimal each.

    Raises:
        ConfigError: a level that is not such a number (``0``, ``100``, ``150``, ``"x"``).
    """
    if isinstance(levels, str | int | float):
        levels = [levels]
    out: set[float] = set()
    for raw in levels:
        try:
            value = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            value = math.nan
        if not (0 < value < 100) or round(value, 1) != value:
            raise ConfigError(
                f"{option} expected interval levels in percent, numbers strictly between 0 and "
                f"100 with at most one decimal (e.g. {option} 80 90); found {raw!r}."
            )
        out.add(value)
    if not out:
        raise ConfigError(f"{option} expected at least one level (e.g. {option} 90); found none.")
    return tuple(sorted(out))


def level_key(level: float) -> str:
    """``90.0 -> "90"``, ``97.5 -> "97.5"`` (the keys of ``metrics.json``)."""
    return f"{level:.1f}".removesuffix(".0")


def column_suffix(level: float) -> str:
    """``90 -> "90"``, ``97.5 -> "97_5"``: columns ``y_hat_lo_<suffix>``, arrays ``lo_<suffix>``."""
    return level_key(level).replace(".", "_")


# ---------------------------------------------------------------------- the quantile
def split_quantile(scores: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The conformal quantile of each column of ``scores`` with the finite-sample correction.

    Args:
        scores: ``[M, ...]`` nonconformity scores; NaN marks a missing one.
        level: in percent, e.g. ``90``.

    Returns:
        ``(q [...], ok [...])``: the ``k``-th smallest of the ``m`` finite scores of each column,
        ``k = ceil((m + 1) · level / 100)`` (computed exactly, in integers), and where ``k <= m``
        (elsewhere ``q`` is ``inf``).
    """
    alpha = Fraction(level_key(level)) / 100
    ordered = np.sort(scores, axis=0)  # NaN sorts last
    m = np.isfinite(scores).sum(axis=0)
    k = -((-(m + 1) * alpha.numerator) // alpha.denominator)  # ceil, exact
    ok = (k <= m) & (m > 0)
    idx = np.clip(k - 1, 0, max(scores.shape[0] - 1, 0))
    if scores.shape[0] == 0:
        return np.full(scores.shape[1:], np.inf), ok
    q = np.take_along_axis(ordered, idx[None], axis=0)[0]
    return np.where(ok, q, np.inf), ok


def _quantiles(scores: np.ndarray, level: float, source: str) -> tuple[np.ndarray, int]:
    """``q [T_out, N, C]`` per cell, pooled over series where a cell has too few scores.

    Returns:
        ``(q, pooled cells)``.

    Raises:
        DataError: a step with too few scores even over all series.
    """
    q, ok = split_quantile(scores, level)
    if ok.all():
        return q.astype(np.float32), 0
    m, t, n, c = scores.shape
    pooled, pooled_ok = split_quantile(scores.transpose(0, 2, 1, 3).reshape(m * n, t, c), level)
    if not pooled_ok.all():
        step = int(np.argwhere(~pooled_ok)[0][0]) + 1
        raise DataError(
            f"{source}: the validation windows hold too few scored targets at horizon step "
            f"{step} for a {level_key(level)}% interval (conformal needs at least "
            f"{math.ceil(1 / (1 - level / 100)) - 1}); found "
            f"{int(np.isfinite(scores[:, step - 1]).sum())}: ask for a lower --level."
        )
    q = np.where(ok, q, pooled[:, None, :])
    return q.astype(np.float32), int((~ok).sum())


# ---------------------------------------------------------------------- calibration
@dataclass
class Calibration:
    """The conformal quantiles of a run.

    Attributes:
        quantiles: ``{level: q [T_out, N, C]}`` half-widths in data units.
        counts: ``[T_out, N, C]`` validation scores per cell.
        pooled: ``{level: cells whose quantile is pooled over series}``.
        nonnegative: lower bounds are clipped at 0.
        checkpoint: SHA-256 of the ``best.ckpt`` calibrated.
    """

    quantiles: dict[float, np.ndarray]
    counts: np.ndarray
    pooled: dict[float, int]
    nonnegative: bool
    checkpoint: str


def apply_intervals(
    values: np.ndarray, calibration: Calibration, levels: Iterable[float]
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """``{level: (lo, hi)}`` around forecasts ``values [..., T, N, C]`` (``T <= T_out``: the
    first ``T`` steps' quantiles); lower bounds clipped at 0 for nonnegative runs."""
    t = values.shape[-3]
    out = {}
    for level in levels:
        q = calibration.quantiles[level][:t].astype(values.dtype)
        lo, hi = values - q, values + q
        if calibration.nonnegative:
            lo = np.maximum(lo, np.zeros((), dtype=lo.dtype))
        out[level] = (lo, hi)
    return out


def checkpoint_hash(run_dir: Path) -> str:
    """SHA-256 of the run's ``best.ckpt``."""
    from linearcast.engine.checkpoint import BEST

    digest = hashlib.sha256()
    with (run_dir / BEST).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(path: Path, checkpoint: str, nonnegative: bool) -> Calibration | None:
    """The stored calibration if it is intact and of this checkpoint (else ``None``: it is a
    cache, recomputed rather than trusted)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != _CACHE_VERSION or str(z["checkpoint"]) != checkpoint:
                return None
            levels = [float(v) for v in z["levels"]]
            q, counts, pooled = z["quantiles"], z["counts"], z["pooled"]
            if q.ndim != 4 or q.shape[0] != len(levels) or q.shape[1:] != counts.shape:
                return None
            if not np.isfinite(q).all() or (counts < 0).any():
                return None  # not what calibration writes: calibrate afresh
            return Calibration(
                quantiles={lv: q[i].astype(np.float32) for i, lv in enumerate(levels)},
                counts=counts.astype(np.int64),
                pooled={lv: int(pooled[i]) for i, lv in enumerate(levels)},
                nonnegative=nonnegative,
                checkpoint=checkpoint,
            )
    except (OSError, ValueError, KeyError, TypeError, EOFError, MemoryError, zipfile.BadZipFile):
        return None  # a damaged cache is calibrated afresh


def _write_cache(path: Path, cal: Calibration) -> None:
    from linearcast.atomic import atomic_path

    levels = sorted(cal.quantiles)
    with atomic_path(path, keep_suffix=True, what="the interval calibration") as tmp:
        np.savez(
            tmp,
            version=np.asarray(_CACHE_VERSION),
            checkpoint=np.asarray(cal.checkpoint),
            levels=np.asarray(levels, dtype=np.float64),
            quantiles=np.stack([cal.quantiles[lv] for lv in levels]),
            counts=cal.counts,
            pooled=np.asarray([cal.pooled[lv] for lv in levels], dtype=np.int64),
        )


def conformal_quantiles(
    run_dir: str | Path,
    levels: Iterable[Any] = DEFAULT_LEVELS,
    *,
    dataset: TimeSeriesDataset | None = None,
    accelerator: str | None = None,
    batch_size: int = 0,
    opened: tuple[Any, Any, Any] | None = None,
) -> Calibration:
    """The run's conformal quantiles at ``levels``, from ``intervals.npz`` when it holds them
    for the current ``best.ckpt``, else computed on the run's validation windows and stored.

    Args:
        run_dir: a finished run directory.
        levels: in percent (:func:`check_levels`).
        dataset: the run's own data as an object (a run trained on a frame or array; its
            ``config.json`` only describes it); ``None``: read the run's data.
        accelerator: override the run's accelerator.
        batch_size: batch size of the validation pass (0: the run's).
        opened: ``(prep, fabric, model)`` of the run already opened on its own data (saves
            opening it again).

    Raises:
        ConfigError: bad levels, not a run, or a run trained on an object without ``dataset``.
        DataError: too few validation scores for a level.
    """
    from linearcast.engine.config import TrainConfig

    wanted = check_levels(levels, "level")
    run_dir = Path(run_dir)
    config = TrainConfig.load(run_dir / "config.json")
    checkpoint = checkpoint_hash(run_dir)
    cache = _read_cache(run_dir / CACHE_FILE, checkpoint, config.nonnegative)
    missing = [lv for lv in wanted if cache is None or lv not in cache.quantiles]
    if not missing:
        assert cache is not None
        return cache
    if dataset is None and config.data.startswith("<"):
        raise ConfigError(
            f"{run_dir}: intervals are calibrated on the run's validation windows, but the run "
            f"was trained on an in-memory {config.data} that config.json does not hold (fit() "
            f"stores levels 80 and 90); pass it: conformal_quantiles(run_dir, levels, "
            f"dataset=linearcast.data.as_dataset(frame))."
        )
    scores = _validation_scores(run_dir, dataset, accelerator, batch_size, opened)
    source = f"{run_dir}"
    fresh = {lv: _quantiles(scores, lv, source) for lv in missing}
    counts = np.isfinite(scores).sum(axis=0).astype(np.int64)
    old_q = cache.quantiles if cache is not None else {}
    old_p = cache.pooled if cache is not None else {}
    cal = Calibration(
        quantiles=old_q | {lv: q for lv, (q, _) in fresh.items()},
        counts=counts,
        pooled=old_p | {lv: p for lv, (_, p) in fresh.items()},
        nonnegative=config.nonnegative,
        checkpoint=checkpoint,
    )
    _write_cache(run_dir / CACHE_FILE, cal)
    return cal


def open_run(
    run_dir: Path, dataset: TimeSeriesDataset | str | None, accelerator: str | None
) -> tuple[PreparedData, Any, Any]:
    """``(prep, fabric, model)``: a run's data (its own, or ``dataset``) and best weights."""
    from linearcast.serve.run import best_model, inference_fabric, load_run

    ckpt, config, prep = load_run(run_dir, dataset)
    fabric = inference_fabric(config, accelerator)
    return prep, fabric, best_model(ckpt, config, prep, fabric, run_dir)


def _validation_scores(
    run_dir: Path,
    dataset: TimeSeriesDataset | None,
    accelerator: str | None,
    batch_size: int,
    opened: tuple[Any, Any, Any] | None,
) -> np.ndarray:
    """``[M, T_out, N, C]`` absolute residuals of the best weights on the validation windows,
    in data units; NaN where the metrics mask the target."""
    from linearcast.engine.config import TrainConfig

    config = TrainConfig.load(run_dir / "config.json")
    prep, fabric, model = opened or open_run(run_dir, dataset, accelerator)
    bs = batch_size or config.eval_batch_size or config.batch_size
    parts = [
        np.where(mask, np.abs(target - pred), np.nan).astype(np.float32)
        for pred, target, mask in split_batches(fabric, model, prep, "val", bs, config.nonnegative)
    ]
    if not parts:
        raise DataError(
            f"{prep.dataset.source}: the validation split of {run_dir} has no windows to "
            f"calibrate intervals on; expected at least one (check protocol_overrides' split)."
        )
    return np.concatenate(parts)


def split_batches(
    fabric: Any,
    model: Any,
    prep: PreparedData,
    split: str,
    batch_size: int,
    nonnegative: bool,
    max_batches: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(prediction, target, mask)`` per batch of a split's windows, each ``[B, T_out, N, C]``:
    forecasts (clipped at 0 for nonnegative runs) and targets in data units, and the metrics'
    mask of scored targets (:func:`linearcast.metrics.null_mask`)."""
    from torch.utils.data import DataLoader

    from linearcast.engine.evaluation import forward_eval
    from linearcast.engine.target import clip_data_units
    from linearcast.metrics import null_mask

    scaler, raw = prep.scaler, prep.protocol.metrics_space == "raw"
    for i, (x, y) in enumerate(DataLoader(getattr(prep, split), batch_size=batch_size)):
        if max_batches and i >= max_batches:
            break
        out = forward_eval(fabric, model, fabric.to_device(x)).float().cpu()  # scaled units
        pred = clip_data_units(scaler.inverse_transform(out).numpy(), nonnegative)
        mask = null_mask(y, prep.target_null).numpy()
        target = (y if raw else scaler.inverse_transform(y)).float().numpy()
        yield pred, target, mask


def asked_levels(
    run_dir: str | Path,
    level: Any,
    dataset: TimeSeriesDataset | None = None,
    accelerator: str | None = None,
) -> tuple[float, ...]:
    """The levels a Python call asked for (``None`` or empty: none), checked; with the run's
    own data as an object (``dataset``) it is calibrated on now, so that calls given other
    data find the calibration stored."""
    if level is None or (isinstance(level, list | tuple) and not level):
        return ()
    levels = check_levels(level, "level")
    if dataset is not None:
        conformal_quantiles(run_dir, levels, dataset=dataset, accelerator=accelerator)
    return levels
