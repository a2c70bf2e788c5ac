"""Forecast the future: the next ``out_steps`` steps after the end of a series, with timestamps.

``predict`` forecasts the windows of a split, whose futures are known; ``forecast`` takes the
*last* ``in_steps`` steps of a file (or a frame, or an array), runs the run's best weights on
them and returns the ``out_steps`` steps that follow, in data units, with the timestamps that
continue the data's calendar (step numbers ``T, T+1, ...`` when the data has no time).

The input window is built exactly as the training windows were (:class:`WindowDataset`, the
run's scaler from the checkpoint, time of day and day of week of the input steps), so a file
that ends where a test window's inputs end gets the forecast ``predict`` gives that window.

Output (:meth:`Forecast.to_frame`) is the long layout of neuralforecast / StatsForecast / Darts:
one row per (series, timestamp) with columns ``unique_id, ds, y_hat``; ``.npz`` holds
``forecast [T_out, N, C]``, ``timestamps`` and ``node_names``. The model forecasts one channel
of the data (:mod:`linearcast.engine.target`): with several (in/out flows) a ``channel`` column
names it (e.g. ``inflow``), as do the ``.npz`` arrays ``channel``/``channel_index`` and the
summary line. A run with ``nonnegative = true`` gives forecasts clipped at 0. With ``level=``
the frame gains ``y_hat_lo_90`` / ``y_hat_hi_90`` per level and the ``.npz`` arrays
``lo_90`` / ``hi_90`` (conformal intervals, :mod:`linearcast.serve.intervals`).

Series are matched by name (:mod:`linearcast.engine.series_identity`): the data's columns or
``unique_id`` values are reordered to the run's node order, so a file whose columns come in
another order, or a long frame whose rows do, gets the same forecast; data whose names are not
the run's is refused. The forecast is in the run's node order, labelled with the names.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.engine.config import TrainConfig
from linearcast.engine.target import channel_name, channel_text, recorded_target
from linearcast.errors import ConfigError
from linearcast.serve.backtest_windows import forecast_windows
from linearcast.serve.forecast_inputs import (
    check_finite_forecast,
    check_horizon,
    check_inputs,
    read_forecast_data,
    resolve_data_options,
)
from linearcast.serve.intervals import (
    apply_intervals,
    check_levels,
    column_suffix,
    conformal_quantiles,
)
from linearcast.serve.missing_inputs import unobserved_series
from linearcast.serve.outputs import atomic_output, check_output_path, input_files

__all__ = ["OUTPUT_SUFFIXES", "Forecast", "forecast_run", "resolve_data_options"]

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset

OUTPUT_SUFFIXES = (".csv", ".parquet", ".npz")


@dataclass
class Forecast:
    """The forecast of the steps after the end of a series.

    Attributes:
        values: ``[T_out, N, C]`` float32 in data units.
        timestamps: the ``T_out`` future timestamps, or ``None`` when the data has no time.
        steps: ``[T_out]`` step numbers ``T, T+1, ...`` (row numbers after the data's last).
        node_names: N series names in the run's node order (the data's, else ``"0"``, ``"1"``,
            ...).
        source: the file (or object) forecast from.
        last_input: timestamp (or step number) of the data's last step.
        notes: what the user should know (null readings in the input, time counted from the
            first row, ...); also issued as warnings.
        units: the units of ``values``: always ``"data units"`` (the scaler is undone).
        channel: the data channel forecast (the protocol's ``target_channel``).
        channel_name: its name (``"inflow"``), or ``None`` when the data names none.
        data_channels: the channels F of the data forecast from (``None``: not known).
        nonnegative: the values are clipped at 0 (the run's ``nonnegative`` option).
        intervals: ``{level: (lo, hi)}`` conformal prediction intervals, each ``[T_out, N, C]``
            in data units (:mod:`linearcast.serve.intervals`); empty unless asked for.
        history: ``[T_h, N]`` the last readings of the forecast channel before the forecast
            (data units; drawn by the band plot), ``None`` when not kept.
        history_ds: their ``T_h`` timestamps (or step numbers).
        run_dir: the run directory forecast with (:meth:`save` never writes over its files).
        inputs: the files read (path -> what it is; :meth:`save` never writes over them).
    """

    values: np.ndarray
    timestamps: pd.DatetimeIndex | None
    steps: np.ndarray
    node_names: list[str]
    source: str
    last_input: Any
    notes: list[str] = field(default_factory=list)
    units: str = "data units"
    channel: int = 0
    channel_name: str | None = None
    data_channels: int | None = None
    nonnegative: bool = False
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    history: np.ndarray | None = None
    history_ds: Any = None
    run_dir: Path | None = None
    inputs: dict[Path, str] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        """T_out."""
        return int(self.values.shape[0])

    @property
    def ds(self) -> pd.DatetimeIndex | np.ndarray:
        """The future timestamps, or the step numbers when there are none."""
        return self.timestamps if self.timestamps is not None else self.steps

    @property
    def channel_label(self) -> str:
        """The forecast channel for people (``"inflow (channel 0 of 2)"``); ``""`` for data
        with one channel."""
        return channel_text(self.channel_name, self.channel, self.data_channels)

    def to_frame(self) -> pd.DataFrame:
        """Long layout: one row per (series, time), columns ``unique_id, ds, y_hat``.

        Rows are sorted by series (the run's order) then time; with C > 1 output channels the
        value columns are ``y_hat_0``, ``y_hat_1``, ...; intervals add ``y_hat_lo_90``,
        ``y_hat_hi_90`` per level (``y_hat_0_lo_90`` with C > 1: Python identifiers, unlike
        neuralforecast's ``-lo-90``, so ``frame.y_hat_lo_90`` and SQL work as they are); when
        the data has several channels a
        last column ``channel`` names the one forecast; ``attrs`` hold ``units``, ``channel``
        and ``nonnegative``.
        """
        t, n, c = self.values.shape
        ds = np.asarray(self.ds)
        frame: dict[str, Any] = {
            "unique_id": np.repeat(np.asarray(self.node_names, dtype=object), t),
            "ds": np.tile(ds, n),
        }

        def long(values: np.ndarray) -> np.ndarray:
            return values.transpose(1, 0, 2).reshape(n * t, c)  # (N·T_out, C)

        names = ["y_hat"] if c == 1 else [f"y_hat_{i}" for i in range(c)]
        for i, name in enumerate(names):
            frame[name] = long(self.values)[:, i]
            for level, (lo, hi) in sorted(self.intervals.items()):
                frame[f"{name}_lo_{column_suffix(level)}"] = long(lo)[:, i]
                frame[f"{name}_hi_{column_suffix(level)}"] = long(hi)[:, i]
        if self.channel_label:  # several data channels: say which one y_hat is
            frame["channel"] = self.channel_name or f"channel {self.channel}"
        out = pd.DataFrame(frame)
        out.attrs |= {"units": self.units, "channel": self.channel_label,
                      "nonnegative": self.nonnegative}  # fmt: skip
        return out

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``.csv`` or ``.parquet`` (the long frame) or ``.npz`` (the arrays).

        The file is written whole or not at all (a temp file beside it, renamed when complete).

        Args:
            path: the file to write.
            overwrite: replace an existing file (``--overwrite``); never the data the forecast
                read or a file the run keeps in its directory (``history.csv``, ...).

        Raises:
            ConfigError: another suffix, a directory or a missing folder, ``.parquet``
                without pyarrow installed, an existing file without ``overwrite``, or a file
                the forecast read or the run wrote.
        """
        path = check_writable(path, overwrite=overwrite, run_dir=self.run_dir, reads=self.inputs)
        with atomic_output(path) as tmp:
            self._write(tmp, path.suffix.lower())
        return path

    def _write(self, path: Path, suffix: str) -> None:
        if suffix == ".npz":
            stamps = (
                self.timestamps.as_unit("ns").to_numpy()
                if self.timestamps is not None
                else self.steps.astype(np.int64)
            )
            arrays: dict[str, Any] = dict(
                forecast=self.values.astype(np.float32),
                timestamps=stamps,
                node_names=np.asarray(self.node_names, dtype=str),
                units=np.asarray(self.units),
                channel=np.asarray(self.channel_name or f"channel {self.channel}"),
                channel_index=np.asarray(self.channel, dtype=np.int64),
                nonnegative=np.asarray(self.nonnegative),
            )
            arrays |= self.interval_arrays()
            np.savez(path, **arrays)
        elif suffix == ".parquet":
            self.to_frame().to_parquet(path, index=False)
        else:
            self.to_frame().to_csv(path, index=False)

    def interval_arrays(self) -> dict[str, np.ndarray]:
        """``{"lo_90": [T_out, N, C], "hi_90": ...}`` float32, the ``.npz`` arrays."""
        out = {}
        for level, (lo, hi) in sorted(self.intervals.items()):
            out[f"lo_{column_suffix(level)}"] = lo.astype(np.float32)
            out[f"hi_{column_suffix(level)}"] = hi.astype(np.float32)
        return out

    def summary(self) -> str:
        """One line: horizon, series, the channel (several in the data), first and last
        forecast time."""
        first, last = self.ds[0], self.ds[-1]
        kind = "" if self.timestamps is not None else "step "
        what = f" of {self.channel_label}" if self.channel_label else ""
        return (
            f"{self.horizon} steps x {len(self.node_names)} series{what} after {self.source} "
            f"(last input {kind}{self.last_input}): {kind}{first} -> {kind}{last}"
        )


def check_writable(
    path: str | Path,
    *,
    overwrite: bool = False,
    run_dir: str | Path | None = None,
    reads: dict[Path, str] | None = None,
) -> Path:
    """``path`` if a forecast can be written there (checked before the model runs).

    Args:
        path: the file to write.
        overwrite: whether an existing file may be replaced (``--overwrite``).
        run_dir: the run forecast with: the files it keeps are never replaced.
        reads: the files the forecast reads (:func:`~linearcast.serve.outputs.run_inputs`),
            never replaced.

    Raises:
        ConfigError: another suffix, a directory, a missing folder, ``.parquet`` without
            pyarrow installed, an existing file without ``overwrite``, or a file the forecast
            reads or a run wrote.
    """
    path = check_output_path(
        path, OUTPUT_SUFFIXES, overwrite=overwrite, run_dir=run_dir, reads=reads
    )
    if path.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(
            f"{path}: writing .parquet needs the pyarrow package, which is not installed "
            f"(pip install pyarrow); or write .csv or .npz."
        )
    return path


# ---------------------------------------------------------------------- forecast
def forecast_run(
    run_dir: str | Path,
    data: Any,
    *,
    data_format: str | None = None,
    sets: list[str] | tuple[str, ...] = (),
    data_options: dict[str, Any] | None = None,
    accelerator: str | None = None,
    horizon: int | None = None,
    level: Sequence[Any] | Any = (),
    calibration_data: TimeSeriesDataset | None = None,
) -> Forecast:
    """Forecast the ``out_steps`` steps after the end of ``data`` with a run's best weights.

    The data's series are matched to the run's by name (reordered to the run's order); data
    without names, and runs that record none, are matched by position (with a warning).

    Args:
        run_dir: a run directory written by ``train``.
        data: a dataset path (any format ``linearcast.data.load`` reads, or ``"synthetic"``)
            or an object :func:`linearcast.data.as_dataset` takes (a wide or long DataFrame,
            an array ``[T, N]``/``[T, N, C]``, a dataset).
        data_format: reader format of a path (default: the run's).
        sets: ``data_options.NAME=VALUE`` strings for the reader (``--set``).
        data_options: options of :func:`~linearcast.data.as_dataset` for an in-memory object
            (``freq_minutes``, ``start``, ...), or reader options for a path.
        accelerator: override the run's accelerator (e.g. ``"cpu"``).
        horizon: forecast only the first ``horizon`` steps (``None``: all ``out_steps``); the
            model's horizon is fixed, so a longer one is refused.
        level: prediction-interval levels in percent (``[80, 90]``): conformal intervals
            calibrated on the run's validation windows (stored in the run directory the first
            time); ``()``: none.
        calibration_data: the run's own data as an object, for a run trained on a frame or
            array whose levels are not stored yet.

    Returns:
        The :class:`Forecast` (in data units, ``[horizon, N, C]``, the run's series order).

    Raises:
        DataError: too few steps, a gap at the end, no calendar for a model that needs one,
            series that are not the run's, non-finite forecasts.
        ConfigError: not a run directory, a model tied to another N, a horizon the model does
            not have.
    """
    from linearcast.data.frames import future_timestamps
    from linearcast.engine.setup import resolve_protocol
    from linearcast.serve.run import read_run

    run_dir = Path(run_dir)
    levels = check_levels(level, "level") if level is not None and level != () else ()
    ckpt, config = read_run(run_dir)
    meta = dict(ckpt.get("meta", {}))
    protocol = resolve_protocol(config)
    h = check_horizon(horizon, protocol.out_steps, run_dir)
    ds, labels, named = read_forecast_data(run_dir, ckpt, config, data, data_format, list(sets),
                                           data_options)  # fmt: skip
    notes = named + check_inputs(ds, config, protocol, meta, run_dir, labels)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    values = _run_best_weights(run_dir, ckpt, config, ds, protocol, accelerator)[:h]
    # nothing to forecast from: NaN (and NaN intervals), as the note above says, not the mean
    unobserved = unobserved_series(ds, protocol)
    values[:, unobserved] = np.nan
    check_finite_forecast(values, labels, ds.source, run_dir, unobserved)
    intervals = {}
    if levels:
        cal = conformal_quantiles(run_dir, levels, dataset=calibration_data,
                                  accelerator=accelerator)  # fmt: skip
        intervals = apply_intervals(values, cal, levels)
    t = ds.num_steps
    stamps = future_timestamps(ds, protocol.out_steps)
    known = ds.times()
    channel = protocol.target_channel
    name, _ = recorded_target(meta, channel)
    return Forecast(
        values=values,
        timestamps=stamps[:h] if stamps is not None else None,
        steps=np.arange(t, t + h, dtype=np.int64),
        node_names=labels,
        source=ds.source,
        last_input=known[-1] if known is not None else t - 1,
        notes=notes,
        channel=channel,
        channel_name=name or channel_name(ds, channel),
        # the channels of the file forecast from: one channel leaves nothing to name
        data_channels=ds.num_channels,
        nonnegative=config.nonnegative,
        intervals=intervals,
        history=ds.values[t - protocol.in_steps :, :, channel].astype(np.float32),
        history_ds=known[t - protocol.in_steps :]
        if known is not None
        else np.arange(t - protocol.in_steps, t),
        run_dir=run_dir,
        inputs=input_files(config, data) | input_files(None, ds.path),
    )


def _run_best_weights(
    run_dir: Path,
    ckpt: dict[str, Any],
    config: TrainConfig,
    ds: TimeSeriesDataset,
    p: Protocol,
    accelerator: str | None,
) -> np.ndarray:
    """``[T_out, N, C]`` in data units: the run's best weights on the last ``in_steps`` of
    ``ds``, the backtest's batched path with one cutoff at the last row (built as the training
    windows were: same scaling, same time features)."""
    last = np.array([ds.num_steps - 1])
    return forecast_windows(run_dir, ckpt, config, ds, p, last, accelerator)[0]
