"""Keyword arguments of the Python API: config fields, aliases and the data options of an
in-memory frame or array (which a run records so that its later commands read data the same
way)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

from linearcast.errors import ConfigError

if TYPE_CHECKING:
    from linearcast.data import TimeSeriesDataset
    from linearcast.engine.config import TrainConfig

# CLI spellings accepted as keyword arguments (linearcast train --epochs ...)
_ALIASES = {"epochs": "max_epochs"}


def _frame_options() -> set[str]:
    from linearcast.data.frames import as_dataset

    return {n for n in inspect.signature(as_dataset).parameters if n != "data"}


def split_options(data: Any, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config fields, data options)`` from ``fit``'s keyword arguments."""
    from linearcast.data.frames import is_in_memory
    from linearcast.engine.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    frame_options = _frame_options() if is_in_memory(data) else set()
    config: dict[str, Any] = {}
    data_options: dict[str, Any] = {}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        if name in fields:
            config[name] = value
        elif name in frame_options:
            data_options[name] = value
        else:
            known = sorted(fields | frame_options | set(_ALIASES))
            raise ConfigError(
                f"fit(): unknown option {key!r}; expected a TrainConfig field or a data option: "
                f"{', '.join(known)}."
            )
    return config, data_options


def recorded_options(options: dict[str, Any]) -> dict[str, Any]:
    """The data options of a frame or array that ``config.json`` can keep (numbers, strings,
    flags, lists of names; a timestamp as text), so that the run's later commands read new
    data as it read the training data (``Run.forecast(df)`` with the same ``non_finite``,
    ``null_value``, ``freq_minutes``, ...)."""
    import pandas as pd

    kept: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        plain = value is None or isinstance(value, bool | int | float | str)
        if plain or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            kept[key] = value
    return kept


def run_frame_options(config: TrainConfig, given: dict[str, Any]) -> dict[str, Any]:
    """The run's data options that :func:`linearcast.data.as_dataset` takes, overridden by
    ``given`` (what the caller passed now)."""
    from linearcast.serve.forecast_inputs import inherited_frame_options

    return {**inherited_frame_options(config), **given}


def frame_dataset(data: Any, options: dict[str, Any], method: str = "fit") -> TimeSeriesDataset:
    from linearcast.data.frames import as_dataset

    known = _frame_options()
    unknown = [k for k in options if k not in known]
    if unknown:
        raise ConfigError(
            f"{method}(): unknown option {unknown[0]!r}; expected a data option for a frame or "
            f"array: {', '.join(sorted(known))}."
        )
    return as_dataset(data, **options)
