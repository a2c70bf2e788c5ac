"""What a forecast reads: the data to forecast from, and the checks that refuse what the model
cannot forecast from (see :func:`linearcast.serve.forecast.forecast_run`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.engine.config import TrainConfig
from linearcast.errors import ConfigError, DataError
from linearcast.serve.data_step import check_step

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset

_TIME_OPTIONS = ("freq_minutes", "steps_per_day", "start")


def read_forecast_data(
    run_dir: Path,
    ckpt: dict[str, Any],
    config: TrainConfig,
    data: Any,
    data_format: str | None,
    sets: list[str],
    data_options: dict[str, Any] | None,
) -> tuple[TimeSeriesDataset, list[str], list[str]]:
    """The data a forecast or backtest reads, under the run's rule for missing readings and in
    the run's series order.

    Read by :func:`forecast_dataset`; its null value made the run's and readings equal to a
    null value given with it made NaN (:func:`~linearcast.serve.missing_inputs.
    apply_null_value`); its series matched to the run's by name
    (:func:`~linearcast.engine.series_identity.match_series`).

    Returns:
        ``(dataset, labels, notes)`` as :func:`~linearcast.engine.series_identity.match_series`
        returns them.

    Raises:
        ConfigError: a null value given that the run cannot take, or what reading refuses.
        DataError: what reading or matching the series refuses.
    """
    from linearcast.engine.series_identity import match_series, read_series
    from linearcast.engine.setup import resolve_protocol
    from linearcast.serve.missing_inputs import apply_null_value, declared_null, run_null_value

    ds, options = forecast_dataset(config, data, data_format, sets, data_options)
    run_null = run_null_value(ckpt, resolve_protocol(config))
    ds = apply_null_value(ds, declared_null(sets, data_options), run_null, run_dir)
    run = read_series(run_dir, ckpt.get("meta"))
    return match_series(ds, run, run_dir, drop=read_drop(options) if ds.path else None)


def read_drop(options: dict[str, Any]) -> list[str]:
    """The ``drop`` list among reader ``options`` (``[]`` when none or unreadable)."""
    from linearcast.data.readers.table import name_list

    if options.get("drop") is None:
        return []
    try:
        return name_list(options["drop"], "drop")
    except DataError:
        return []


def forecast_dataset(
    config: TrainConfig,
    data: Any,
    data_format: str | None,
    sets: list[str],
    data_options: dict[str, Any] | None,
) -> tuple[TimeSeriesDataset, dict[str, Any]]:
    """The data to forecast from: an in-memory object as a dataset, or a path read with the
    run's reader options (see :func:`resolve_data_options`). An object is read with the run's
    own data options that :func:`~linearcast.data.as_dataset` takes (``non_finite``,
    ``null_value``, ``freq_minutes``, ...), overridden by ``data_options``.

    Returns:
        ``(dataset, options)``: the data and the options it was read with.
    """
    from linearcast.data.frames import as_dataset, is_in_memory
    from linearcast.engine.setup import load_dataset

    if is_in_memory(data):
        options = dict(data_options or {})
        known = sorted(n for n in inspect.signature(as_dataset).parameters if n != "data")
        unknown = [k for k in options if k not in known]
        if unknown:
            raise ConfigError(
                f"forecast: unknown option {unknown[0]!r} for data given as "
                f"{type(data).__name__}; expected the data options {', '.join(known)} "
                f"(or horizon=/h= for fewer steps)."
            )
        options = {**inherited_frame_options(config), **options}
        return as_dataset(data, **options), options
    cfg = resolve_data_options(config, data, data_format, sets)
    if data_options:
        cfg = cfg.replace(data_options={**cfg.data_options, **data_options})
    return load_dataset(cfg), dict(cfg.data_options)


#: data options that describe one frame, not the run's data in general: never inherited
_OWN_TO_DATA = ("name", "start")


def inherited_frame_options(config: TrainConfig) -> dict[str, Any]:
    """The run's data options (``config.data_options``) that
    :func:`~linearcast.data.as_dataset` takes, minus those that describe one frame (its name,
    its first timestamp): how new data given as an object is read."""
    from linearcast.data.frames import as_dataset
    from linearcast.engine.config_io import numbers_from_text

    known = set(inspect.signature(as_dataset).parameters) - {"data", *_OWN_TO_DATA}
    return numbers_from_text({k: v for k, v in config.data_options.items() if k in known})


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
        from linearcast.data.readers import reader_options, resolve_format

        # as the run read its own file: its options can decide the format (a CSV with
        # id_column is a long table whatever its first line looks like)
        reader = resolve_format(data, fmt, inherited) if Path(data).exists() else fmt
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


def check_inputs(
    ds: TimeSeriesDataset,
    config: TrainConfig,
    protocol: Protocol,
    meta: dict[str, Any],
    run_dir: Path,
    labels: list[str] | None = None,
) -> list[str]:
    """Refuse data the model cannot forecast from; return notes worth a warning (``labels``:
    the N series' names for them, default the data's)."""
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
    check_step(ds, meta, run_dir)
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
    from linearcast.serve.missing_inputs import null_reading_note, unobserved_note

    labels = labels or ds.node_names or [str(i) for i in range(n)]
    notes += [x for x in (unobserved_note(ds, p, labels), null_reading_note(ds, p)) if x]
    return notes


def check_horizon(horizon: Any, out_steps: int, run_dir: Path) -> int:
    """The number of steps to forecast: ``horizon`` (``None``: the model's ``out_steps``).

    Raises:
        ConfigError: not a whole number from 1 to ``out_steps`` (the model's horizon is fixed).
    """
    if horizon is None:
        return out_steps
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(
            f"forecast: horizon (h) expected a whole number of steps from 1 to {out_steps}, "
            f"found {horizon!r}."
        )
    if horizon > out_steps:
        raise ConfigError(
            f"{run_dir}: the model forecasts {out_steps} steps (its horizon is fixed when it is "
            f"trained), found horizon (h) {horizon}; ask for at most {out_steps}, or train a run "
            f"with --set protocol_overrides.out_steps={horizon}."
        )
    return int(horizon)


def check_finite_forecast(
    values: np.ndarray,
    labels: list[str],
    source: str,
    run_dir: Path,
    unobserved: np.ndarray | None = None,
) -> None:
    """Refuse a forecast ``[T_out, N, C]`` with NaN or infinite values, naming the series;
    ``unobserved [N]``: series whose forecast is NaN because their input window is missing
    (:func:`~linearcast.serve.missing_inputs.unobserved_series`), not refused."""
    bad = ~np.isfinite(values).all(axis=(0, 2))  # (N,)
    if unobserved is not None:
        bad &= ~unobserved
    if not bad.any():
        return
    names = [labels[i] for i in np.flatnonzero(bad)]
    shown = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
    raise DataError(
        f"{source}: the model of {run_dir} produced non-finite values (NaN/inf) for series "
        f"{shown} ({len(names)} of {len(labels)}); expected finite forecasts: check the input "
        f"window of those series for NaN readings and best.ckpt for non-finite weights "
        f"(retrain if they are)."
    )
