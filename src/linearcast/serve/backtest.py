"""Backtesting: rolling-origin evaluation of a finished run (``linearcast backtest``).

K forecast origins (*cutoffs*) are placed ``step_size`` steps apart so that the last window's
horizon ends at the data's last step (neuralforecast's ``cross_validation`` semantics): with T
steps and horizon H, window ``k = 0 .. K-1`` has its cutoff at row
``T - H - 1 - (K - 1 - k) * step_size``. A cutoff is the last input step; the window reads the
``in_steps`` rows ending there and forecasts the ``H = out_steps`` rows after it.

Inputs are built as :func:`~linearcast.serve.forecast.forecast_run` builds them (the data read
with the run's reader and options, series matched to the run's by name, the target scaled and
its gaps filled by the checkpoint's scaler, the time features of the input steps); all windows
go through the model in batches. What a backtest reads and refuses is in
:mod:`~linearcast.serve.backtest_inputs`, the model run in
:mod:`~linearcast.serve.backtest_windows`, the metrics in
:mod:`~linearcast.serve.backtest_metrics`. With ``refit=True`` a model is trained again on the
rows up to each cutoff with the run's config (:mod:`~linearcast.serve.backtest_refit`).

Output (:class:`Backtest`): the long frame ``unique_id, ds, cutoff, y, y_hat`` (one row per
series x cutoff x horizon step, sorted in that order; ``ds`` and ``cutoff`` are timestamps, or
row numbers when the data has no time; data units), the metrics per cutoff and overall (masked
MAE, RMSE, MAPE in %, MSE in data units, with the run's null rule) and ``backtest.png``, the
error per cutoff over time (:mod:`linearcast.serve.backtest_plot`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.errors import ConfigError
from linearcast.serve.backtest_inputs import check_count, cutoff_rows

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset
    from linearcast.engine.config import TrainConfig

__all__ = ["Backtest", "backtest_run", "check_count", "cutoff_rows"]


@dataclass
class Backtest:
    """The result of a backtest.

    Attributes:
        frame: the long frame ``unique_id, ds, cutoff, y, y_hat`` (``y_hat_0, y_hat_1, ...``
            for a model with several output channels, then ``channel`` when the data has
            several), ``K * N * H`` rows, data units.
        metrics: one row per cutoff: ``window``, ``cutoff``, ``MAE``, ``RMSE``, ``MAPE`` (%),
            ``MSE``, ``scored`` (readings the null rule kept), ``targets``; the metrics are NaN
            where nothing was scored.
        overall: the same metrics over every window (``horizon_3`` ... in ``by_horizon``).
        info: what was backtested: run, data, model, windows, step, horizon, units, null value,
            MAPE floor, refit; on the run's own data the first row of its test split
            (``test_start``) and the first cutoff whose window forecasts only test rows
            (``out_of_sample_from``), else ``None``.
        notes: what the user should know (also issued as warnings).
    """

    frame: pd.DataFrame
    metrics: pd.DataFrame
    overall: dict[str, Any]
    info: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: windows, series, horizon and the overall errors."""
        i, o = self.info, self.overall
        refit = ", refit per cutoff" if i["refit"] else ""
        return (
            f"{i['n_windows']} windows every {i['step_size']} steps x {i['num_series']} series x "
            f"{i['horizon']} steps of {i['model']} on {i['data']}{refit}: MAE {o['MAE']:.4g}, "
            f"RMSE {o['RMSE']:.4g}, MAPE {o['MAPE']:.2f}% ({o['scored']} of {o['targets']} "
            f"targets scored, {i['units']})"
        )

    def save(self, out_dir: str | Path, frame_path: str | Path | None = None) -> dict[str, Path]:
        """Write the files (see :func:`linearcast.serve.backtest_files.save_backtest`)."""
        from linearcast.serve.backtest_files import save_backtest

        return save_backtest(self, out_dir, frame_path)


def backtest_run(
    run_dir: str | Path,
    data: Any = None,
    *,
    n_windows: int,
    step_size: int,
    refit: bool = False,
    refit_dir: str | Path | None = None,
    data_format: str | None = None,
    sets: list[str] | tuple[str, ...] = (),
    data_options: dict[str, Any] | None = None,
    accelerator: str | None = None,
    batch_size: int = 0,
    progress: Callable[[str], None] | None = None,
    level: Sequence[Any] | Any = (),
    calibration_data: TimeSeriesDataset | None = None,
) -> Backtest:
    """Rolling-origin evaluation of a run: K windows, ``step_size`` apart, ending at the data's end.

    Args:
        run_dir: a run directory written by ``train``.
        data: a dataset path or an object :func:`linearcast.data.as_dataset` takes; ``None``:
            the run's own data file (a run trained on an object needs it passed again).
        n_windows: K, the number of cutoffs.
        step_size: rows between consecutive cutoffs.
        refit: train a new model with the run's config on the rows up to each cutoff (slow:
            one training per window) instead of using the run's best weights.
        refit_dir: the folder the refit runs are written to (required with ``refit``).
        data_format: reader format of a path (default: the run's).
        sets: ``data_options.NAME=VALUE`` strings for the reader (``--set``).
        data_options: options for an in-memory object (or reader options for a path).
        accelerator: override the run's accelerator (e.g. ``"cpu"``).
        batch_size: windows per forward pass (0: the run's evaluation batch size).
        progress: called with one line per refit (``None``: quiet).
        level: prediction-interval levels in percent (``[80, 90]``): conformal intervals
            (:mod:`linearcast.serve.intervals`) of the run, or of each refit run, calibrated on
            its validation windows; adds ``y_hat_lo_90``/``y_hat_hi_90`` columns and
            ``coverage_90``/``width_90`` metrics per level.
        calibration_data: the run's own data as an object, for the intervals of a run trained
            on a frame or array whose levels are not stored yet.

    Returns:
        The :class:`Backtest` (frame, metrics per cutoff and overall).

    Raises:
        ConfigError: K or S not whole numbers >= 1, ``refit`` not a bool, not a run
            directory, a run trained on an object with no ``data`` given.
        DataError: too few steps for K windows (the message says how many fit), series that
            are not the run's, a gap in the rows the windows read, non-finite forecasts.
    """
    from linearcast.engine.setup import resolve_protocol
    from linearcast.serve.backtest_inputs import (
        check_windows,
        first_test_row,
        in_sample_note,
        own_data,
        same_file,
    )
    from linearcast.serve.backtest_windows import (
        check_finite_windows,
        forecast_windows,
        interval_bands,
    )
    from linearcast.serve.forecast_inputs import read_forecast_data
    from linearcast.serve.intervals import check_levels
    from linearcast.serve.missing_inputs import unobserved_windows, unobserved_windows_note
    from linearcast.serve.run import read_run

    if not isinstance(refit, bool | np.bool_):
        raise ConfigError(f"backtest: refit expected True or False, found {refit!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ConfigError(
            f"backtest: batch_size (--batch-size) expected a whole number >= 0 (0: the run's), "
            f"found {batch_size!r}."
        )
    asked = level is not None and not (isinstance(level, tuple | list) and not level)
    levels = check_levels(level, "level (--level)") if asked else ()
    if refit and refit_dir is None:
        raise ConfigError("backtest: refit=True needs refit_dir= (a folder for the new runs).")
    run_dir = Path(run_dir)
    ckpt, config = read_run(run_dir)
    protocol = resolve_protocol(config)
    h = protocol.out_steps
    own = data is None or same_file(data, config.data)
    ds, labels, notes = read_forecast_data(run_dir, ckpt, config,
                                           own_data(config, run_dir) if data is None else data,
                                           data_format, list(sets), data_options)  # fmt: skip
    cutoffs = cutoff_rows(ds.num_steps, protocol.in_steps, h, n_windows, step_size, ds.source)
    notes += check_windows(ds, config, protocol, ckpt.get("meta", {}), run_dir, cutoffs, labels)
    test_start = first_test_row(protocol, ds) if own else None
    # refit models never saw the rows after their cutoff; the run's weights saw its train rows
    if not refit and test_start is not None and cutoffs[0] + 1 < test_start:
        notes.append(in_sample_note(ds, cutoffs, test_start))
    # nothing to forecast from: NaN and not scored, as forecast gives NaN (not the mean)
    unobserved = unobserved_windows(ds, protocol, cutoffs)  # (K, N)
    notes += [n for n in [unobserved_windows_note(ds, unobserved, labels)] if n]
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    gone = unobserved[:, None, :, None]  # (K, 1, N, 1)
    if refit:
        from linearcast.serve.backtest_refit import refit_forecasts

        assert refit_dir is not None  # checked above, before the data is read
        pred, bands = refit_forecasts(
            config, ds, cutoffs, Path(refit_dir), accelerator, batch_size, progress, levels
        )
        pred = np.where(gone, np.float32(np.nan), pred)
        bands = {lv: (np.where(gone, np.nan, lo), np.where(gone, np.nan, hi))
                 for lv, (lo, hi) in bands.items()}  # fmt: skip
    else:
        pred = forecast_windows(run_dir, ckpt, config, ds, protocol, cutoffs, accelerator,
                                batch_size)  # fmt: skip
        pred = np.where(gone, np.float32(np.nan), pred)
        check_finite_windows(pred, ds, cutoffs, run_dir, unobserved)
        bands = interval_bands(run_dir, pred, levels, calibration_data, accelerator, batch_size)
    facts = {"step_size": int(step_size), "refit": bool(refit), "test_start": test_start,
             "unobserved": unobserved}  # fmt: skip
    return _result(run_dir, config, protocol, ds, labels, cutoffs, (pred, bands), facts, notes)


def _result(
    run_dir: Path,
    config: TrainConfig,
    p: Protocol,
    ds: TimeSeriesDataset,
    labels: list[str],
    cutoffs: np.ndarray,
    forecasts: tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]],
    facts: dict[str, Any],
    notes: list[str],
) -> Backtest:
    """The long frame and the metrics from the forecasts ``pred [K, H, N, C]`` and their
    intervals ``{level: (lo, hi)}`` (each shaped like ``pred``)."""
    from linearcast.engine.target import channel_name, channel_text
    from linearcast.serve.backtest_metrics import mape_floor, score_windows
    from linearcast.serve.missing_inputs import resolved_null

    pred, bands = forecasts
    k, h, n, _ = pred.shape
    rows = cutoffs[:, None] + 1 + np.arange(h)  # (K, H) the rows forecast
    y = np.asarray(ds.values[:, :, p.target_channel])[rows]  # (K, H, N) data units
    times = ds.times()
    stamps = times[rows.ravel()].to_numpy().reshape(k, h) if times is not None else rows
    cut = times[cutoffs] if times is not None else cutoffs
    null = resolved_null(ds, p)
    floor = mape_floor(p, ds, int(cutoffs[0]) + 1, null)
    first = {lv: (lo[..., 0], hi[..., 0]) for lv, (lo, hi) in bands.items()}  # scored channel
    # a NaN forecast (no input reading) leaves its targets unscored, as a missing target does
    scored_y = np.where(facts["unobserved"][:, None, :], np.nan, y)
    metrics, overall = score_windows(pred[..., 0], scored_y, cut, null, floor, p.horizons, first)
    frame: dict[str, Any] = {
        "unique_id": np.repeat(np.asarray(labels, dtype=object), k * h),
        "ds": np.tile(stamps.ravel(), n),
        "cutoff": np.tile(np.repeat(np.asarray(cut), h), n),
        "y": y.transpose(2, 0, 1).ravel(),  # (N, K, H): series, then cutoff, then step
    }
    frame |= _value_columns(pred, bands)
    label = channel_text(channel_name(ds, p.target_channel), p.target_channel, ds.num_channels)
    if label:
        frame["channel"] = channel_name(ds, p.target_channel) or f"channel {p.target_channel}"
    info = {
        "run_dir": str(run_dir),
        "model": config.model,
        "data": ds.source,
        "n_windows": k,
        "step_size": facts["step_size"],
        "horizon": h,
        "in_steps": p.in_steps,
        "num_series": n,
        "cutoff_rows": cutoffs.tolist(),
        "units": "data units",
        "channel": label,
        "null_value": null,
        "mape_floor": floor,
        "nonnegative": config.nonnegative,
        "refit": facts["refit"],
        "levels": sorted(bands),
        "test_start": facts["test_start"],
        # the cutoff of the first window forecasting only test rows (plots shade before it)
        "out_of_sample_from": _cutoff_of(times, facts["test_start"]),
    }
    out = pd.DataFrame(frame)
    out.attrs |= {"units": "data units", "channel": label}
    return Backtest(out, metrics, overall, info, notes)


def _value_columns(
    pred: np.ndarray, bands: dict[float, tuple[np.ndarray, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``y_hat`` (``y_hat_0, ...`` for several output channels) and, per level, ``_lo_90`` /
    ``_hi_90`` columns (the names :meth:`Forecast.to_frame` uses), series-major like the
    frame."""
    from linearcast.serve.intervals import column_suffix

    c = pred.shape[-1]

    def long(values: np.ndarray) -> np.ndarray:
        return values.transpose(2, 0, 1, 3).reshape(-1, c)  # (N·K·H, C)

    names = ["y_hat"] if c == 1 else [f"y_hat_{i}" for i in range(c)]
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        out[name] = long(pred)[:, i]
        for level, (lo, hi) in sorted(bands.items()):
            out[f"{name}_lo_{column_suffix(level)}"] = long(lo)[:, i]
            out[f"{name}_hi_{column_suffix(level)}"] = long(hi)[:, i]
    return out


def _cutoff_of(times: pd.DatetimeIndex | None, test_start: int | None) -> Any:
    """The cutoff (time, else row) whose window forecasts the test split's first row."""
    if test_start is None or test_start < 1:
        return None
    row = test_start - 1
    return pd.Timestamp(times[row]) if times is not None and row < len(times) else row
