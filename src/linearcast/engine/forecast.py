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
``forecast [T_out, N, C]``, ``timestamps`` and ``node_names``.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.engine.config import TrainConfig
from linearcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset

OUTPUT_SUFFIXES = (".csv", ".parquet", ".npz")
_TIME_OPTIONS = ("freq_minutes", "steps_per_day", "start")


@dataclass
class Forecast:
    """The forecast of the steps after the end of a series.

    Attributes:
        values: ``[T_out, N, C]`` float32 in data units.
        timestamps: the ``T_out`` future timestamps, or ``None`` when the data has no time.
        steps: ``[T_out]`` step numbers ``T, T+1, ...`` (row numbers after the data's last).
        node_names: N series names (the data's, else ``"0"``, ``"1"``, ...).
        source: the file (or object) forecast from.
        last_input: timestamp (or step number) of the data's last step.
        notes: what the user should know (null readings in the input, time counted from the
            first row, ...); also issued as warnings.
    """

    values: np.ndarray
    timestamps: pd.DatetimeIndex | None
    steps: np.ndarray
    node_names: list[str]
    source: str
    last_input: Any
    notes: list[str] = field(default_factory=list)

    @property
    def horizon(self) -> int:
        """T_out."""
        return int(self.values.shape[0])

    @property
    def ds(self) -> pd.DatetimeIndex | np.ndarray:
        """The future timestamps, or the step numbers when there are none."""
        return self.timestamps if self.timestamps is not None else self.steps

    def to_frame(self) -> pd.DataFrame:
        """Long layout: one row per (series, time), columns ``unique_id, ds, y_hat``.

        Rows are sorted by series then time; with C > 1 output channels the value columns are
        ``y_hat_0``, ``y_hat_1``, ...
        """
        t, n, c = self.values.shape
        ds = np.asarray(self.ds)
        frame: dict[str, Any] = {
            "unique_id": np.repeat(np.asarray(self.node_names, dtype=object), t),
            "ds": np.tile(ds, n),
        }
        per_node = self.values.transpose(1, 0, 2).reshape(n * t, c)  # (N·T_out, C)
        if c == 1:
            frame["y_hat"] = per_node[:, 0]
        else:
            for i in range(c):
                frame[f"y_hat_{i}"] = per_node[:, i]
        return pd.DataFrame(frame)

    def save(self, path: str | Path) -> Path:
        """Write ``.csv`` or ``.parquet`` (the long frame) or ``.npz`` (the arrays).

        Raises:
            ConfigError: another suffix, or ``.parquet`` without pyarrow installed.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in OUTPUT_SUFFIXES:
            raise ConfigError(
                f"{path}: expected an output file ending in {', '.join(OUTPUT_SUFFIXES)}; "
                f"found {path.suffix or 'no suffix'!r}."
            )
        if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
            raise ConfigError(
                f"{path}: writing .parquet needs the pyarrow package, which is not installed "
                f"(pip install pyarrow); or write .csv or .npz."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npz":
            stamps = (
                self.timestamps.as_unit("ns").to_numpy()
                if self.timestamps is not None
                else self.steps.astype(np.int64)
            )
            np.savez(
                path,
                forecast=self.values.astype(np.float32),
                timestamps=stamps,
                node_names=np.asarray(self.node_names, dtype=str),
            )
        elif suffix == ".parquet":
            self.to_frame().to_parquet(path, index=False)
        else:
            self.to_frame().to_csv(path, index=False)
        return path

    def summary(self) -> str:
        """One line: horizon, series, first and last forecast time."""
        first, last = self.ds[0], self.ds[-1]
        kind = "" if self.timestamps is not None else "step "
        return (
            f"{self.horizon} steps x {len(self.node_names)} series after {self.source} "
            f"(last input {kind}{self.last_input}): {kind}{first} -> {kind}{last}"
        )


# ---------------------------------------------------------------------- data
def resolve_data_options(
    config: TrainConfig, data: str | Path, data_format: str | None, sets: list[str]
) -> TrainConfig:
    """The run's config pointed at ``data``: the run's reader options unless others are given.

    The run's ``data_options`` carry over when the format is the run's (they describe files
    like the one it was trained on); options the file's reader does not take are dropped from
    those, never from ``sets``.

    Args:
        config: the run's config.
        data: the file to forecast from (or ``"synthetic"``).
        data_format: ``None``: the run's format; else a reader format or ``"auto"``.
        sets: ``data_options.NAME=VALUE`` strings (``--set``).

    Raises:
        ConfigError: a ``--set`` that is not ``data_options.*``.
    """
    for item in sets:
        if not item.strip().startswith("data_options."):
            raise ConfigError(
                f"--set {item}: forecast takes only the reader's options, as "
                f"data_options.NAME=VALUE (the model and protocol are the run's)."
            )
    fmt = config.data_format if data_format is None else data_format
    inherited = dict(config.data_options) if fmt == config.data_format else {}
    if inherited and str(data) != "synthetic":
        from linearcast.data.readers import reader_options, sniff_format

        reader = sniff_format(data) if fmt == "auto" else fmt
        known = set(reader_options(reader)) if reader in _reader_names() else set(inherited)
        inherited = {k: v for k, v in inherited.items() if k in known}
    cfg = config.replace(data=str(data), data_format=fmt, data_options=inherited)
    return cfg.with_sets(sets)


def _reader_names() -> list[str]:
    from linearcast.data.readers import FORMATS

    return list(FORMATS)


def _time_hint(ds: TimeSeriesDataset, config: TrainConfig, meta: dict[str, Any]) -> str:
    """Which option gives the data a calendar (for the missing-time-features message)."""
    freq = meta.get("freq_minutes")  # the step the model was trained on, when recorded
    freq_text = f"={freq}" if freq else "=MINUTES"
    if ds.path is None:
        return (
            f"pass freq_minutes{freq_text} and start='YYYY-MM-DD HH:MM' (the first row's time) "
            f"with the data, or give it timestamps (a DatetimeIndex)"
        )
    from linearcast.data.readers import reader_options, sniff_format

    try:
        fmt = sniff_format(ds.path) if config.data_format == "auto" else config.data_format
        options = [o for o in _TIME_OPTIONS if o in reader_options(fmt)]
    except (DataError, ConfigError, KeyError):
        options = list(_TIME_OPTIONS)
    if not options:
        return "use a file format that carries timestamps (e.g. a CSV with a date column)"
    parts = []
    if "freq_minutes" in options:
        parts.append(f"--set data_options.freq_minutes{freq_text}")
    if "start" in options:
        parts.append("--set data_options.start=YYYY-MM-DDTHH:MM (the first row's time)")
    if not parts:
        parts.append("--set data_options.steps_per_day=STEPS")
    return " and ".join(parts)


def _check_inputs(
    ds: TimeSeriesDataset,
    config: TrainConfig,
    protocol: Protocol,
    meta: dict[str, Any],
    run_dir: Path,
) -> list[str]:
    """Refuse data the model cannot forecast from; return notes worth a warning."""
    from linearcast.data.frames import check_regular_end
    from linearcast.models import REGISTRY

    src = ds.source
    t, n, f = ds.shape
    p = protocol
    if (meta.get("in_steps"), meta.get("out_steps")) != (p.in_steps, p.out_steps):
        raise ConfigError(
            f"{run_dir}: the model was trained on {meta.get('in_steps')} -> "
            f"{meta.get('out_steps')} windows, but the run's protocol now gives "
            f"{p.in_steps} -> {p.out_steps}."
        )
    if t < p.in_steps:
        raise DataError(
            f"{src}: expected at least {p.in_steps} steps (the model's input window) to forecast "
            f"from, found T={t}."
        )
    spec = REGISTRY.get(config.model)
    if spec is not None and spec.fixed_num_nodes and meta.get("num_nodes") not in (None, n):
        raise ConfigError(
            f"{src}: model {config.model!r} of {run_dir} was trained on "
            f"N={meta.get('num_nodes')} series and runs only on that many; found N={n} "
            f"(shape {list(ds.shape)})."
        )
    if not 0 <= p.target_channel < f:
        raise DataError(
            f"{src}: the model forecasts channel {p.target_channel}, but the data has F={f} "
            f"channels (shape {list(ds.shape)})."
        )
    check_regular_end(ds, p.in_steps)
    notes: list[str] = []
    if p.add_time_of_day or p.add_day_of_week:
        try:
            if p.add_time_of_day:
                ds.time_of_day()
            if p.add_day_of_week:
                ds.day_of_week()
        except DataError:
            raise DataError(
                f"{src}: model {config.model!r} needs the time of day and day of week of the "
                f"input steps, but the data has no timestamps, start time or step; "
                f"{_time_hint(ds, config, meta)}."
            ) from None
        trained = meta.get("steps_per_day")
        if trained and ds.steps_per_day and int(trained) != int(ds.steps_per_day):
            raise DataError(
                f"{src}: the model was trained on data with {trained} steps per day "
                f"({1440 // int(trained)}-minute steps), found {ds.steps_per_day} steps per day "
                f"({ds.freq_minutes}-minute steps); its time-of-day features would not match."
            )
        if ds.timestamps is None and ds.start is None and ds.tod_values is None:
            notes.append(
                f"{src}: no timestamps or start time: the time of day and day of week are "
                f"counted from the first row, as if it were Monday 00:00 (give the real start "
                f"with {_time_hint(ds, config, meta)})."
            )
    null = ds.null_value if p.null_value is None else p.null_value
    last = np.asarray(ds.values[t - 1, :, p.target_channel], dtype=np.float64)
    window = np.asarray(ds.values[t - p.in_steps :, :, p.target_channel], dtype=np.float64)
    is_null = np.isnan if math.isnan(null) else (lambda a: np.isclose(a, null, atol=5e-5, rtol=0))
    hit_last = int(is_null(last).sum())
    if hit_last:
        notes.append(
            f"{src}: the last step holds the null value {null:g} (a missing reading) at "
            f"{hit_last} of {n} series, and {int(is_null(window).sum())} of the "
            f"{window.size} input readings are null; the model reads them as values, so "
            f"those forecasts start from a missing reading."
        )
    return notes


# ---------------------------------------------------------------------- forecast
def forecast_run(
    run_dir: str | Path,
    data: Any,
    *,
    data_format: str | None = None,
    sets: list[str] | tuple[str, ...] = (),
    data_options: dict[str, Any] | None = None,
    accelerator: str | None = None,
) -> Forecast:
    """Forecast the ``out_steps`` steps after the end of ``data`` with a run's best weights.

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

    Returns:
        The :class:`Forecast` (in data units).

    Raises:
        DataError: too few steps, a gap at the end, no calendar for a model that needs one.
        ConfigError: not a run directory, a model tied to another N.
    """
    from linearcast.data import StandardScaler, WindowDataset
    from linearcast.data.frames import (
        as_dataset,
        future_timestamps,
        is_in_memory,
    )
    from linearcast.engine.checkpoint import BEST, load_weights
    from linearcast.engine.evaluation import forward_eval
    from linearcast.engine.inference import _fabric, read_run
    from linearcast.engine.setup import build_model_for, load_dataset, resolve_protocol

    run_dir = Path(run_dir)
    ckpt, config = read_run(run_dir)
    meta = dict(ckpt.get("meta", {}))
    if is_in_memory(data):
        ds = as_dataset(data, **(data_options or {}))
    else:
        cfg = resolve_data_options(config, data, data_format, list(sets))
        if data_options:
            cfg = cfg.replace(data_options={**cfg.data_options, **data_options})
        ds = load_dataset(cfg)
    protocol = resolve_protocol(config)
    notes = _check_inputs(ds, config, protocol, meta, run_dir)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)

    scaler = StandardScaler.from_state_dict(ckpt["scaler"])
    t = ds.num_steps
    p = protocol
    # the training windows' own code builds the input: same scaling, same time features
    window = WindowDataset(
        ds.values,
        np.array([t - p.in_steps]),
        p.in_steps,
        0,
        scaler=scaler,
        target_channel=p.target_channel,
        time_of_day=ds.time_of_day() if p.add_time_of_day else None,
        day_of_week=ds.day_of_week() if p.add_day_of_week else None,
    )
    x, _ = window[0]  # (T_in, N, C_in)
    model = build_model_for(
        config, ds, p, window.input_channels, steps_per_day=meta.get("steps_per_day")
    )
    load_weights(model, ckpt["model"], run_dir / BEST)
    model.eval()
    fabric = _fabric(config, accelerator)
    model = fabric.to_device(model)
    out = forward_eval(fabric, model, fabric.to_device(x[None])).float()  # (1, T_out, N, C)
    # model outputs are in scaled units under every protocol; the user wants data units (the
    # same float32 inverse transform as predict's, so that the numbers agree exactly)
    values = scaler.inverse_transform(out)[0].cpu().numpy()  # (T_out, N, C)
    stamps = future_timestamps(ds, p.out_steps)
    known = ds.times()
    return Forecast(
        values=values,
        timestamps=stamps,
        steps=np.arange(t, t + p.out_steps, dtype=np.int64),
        node_names=ds.node_names or [str(i) for i in range(ds.num_nodes)],
        source=ds.source,
        last_input=known[-1] if known is not None else t - 1,
        notes=notes,
    )
