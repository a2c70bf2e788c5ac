"""Keyword arguments of the Python API: config fields, aliases and the data options of an
in-memory frame or array (which a run records so that its later commands read data the same
way)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
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
    """``(config fields, data options)`` from ``fit``'s keyword arguments.

    Raises:
        ConfigError: an unknown keyword, with the name it most likely means.
    """
    from linearcast.data.frames import is_in_memory
    from linearcast.engine.config import TrainConfig
    from linearcast.engine.config_io import unknown_options

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    in_memory = is_in_memory(data)
    frame_options = _frame_options() if in_memory else set()
    config: dict[str, Any] = {}
    data_options: dict[str, Any] = {}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        if name in fields:
            config[name] = value
        elif name in frame_options:
            data_options[name] = value
        elif not in_memory and name in _frame_options():
            raise ConfigError(
                f"fit(): expected {key}= only with a DataFrame or array, found it with data="
                f"{data!r}; pass a file's reader options as data_options={{{key!r}: ...}}."
            )
        else:
            known = fields | frame_options | set(_ALIASES)
            what = "a TrainConfig field or a data option"
            raise ConfigError(unknown_options("fit()", [key], known, what))
    return config, data_options


def recorded_options(options: dict[str, Any]) -> dict[str, Any]:
    """The data options of a frame or array that ``config.json`` can keep (numbers, strings,
    flags, lists of names; a timestamp as text), so that the run's later commands read new
    data as it read the training data (``Run.forecast(df)`` with the same ``non_finite``,
    ``null_value``, ``freq_minutes``, ...)."""
    import pandas as pd

    from linearcast.engine.config_io import plain

    kept: dict[str, Any] = {}
    for key, value in options.items():
        value = plain(value)
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        simple = value is None or isinstance(value, bool | int | float | str)
        if simple or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            kept[key] = value
    return kept


def run_frame_options(config: TrainConfig, given: dict[str, Any]) -> dict[str, Any]:
    """The run's data options that :func:`linearcast.data.as_dataset` takes, overridden by
    ``given`` (what the caller passed now)."""
    from linearcast.serve.forecast_inputs import inherited_frame_options

    return {**inherited_frame_options(config), **given}


def frame_dataset(data: Any, options: dict[str, Any], method: str = "fit") -> TimeSeriesDataset:
    from linearcast.data.frames import as_dataset
    from linearcast.engine.config_io import unknown_options

    known = _frame_options()
    unknown = [k for k in options if k not in known]
    if unknown:
        what = "a data option for a frame or array"
        raise ConfigError(unknown_options(f"{method}()", unknown[:1], known, what))
    return as_dataset(data, **options)


def set_strings(sets: Any) -> list[str]:
    """``fit``'s ``sets`` as a list of ``key=value`` strings: ``None`` is none, one string is
    one ``key=value`` (not a sequence of characters).

    Raises:
        ConfigError: anything but strings (a dict, a number, a list holding a number).
    """
    if sets is None:
        return []
    if isinstance(sets, str):
        return [sets]
    if isinstance(sets, Mapping) or not isinstance(sets, Iterable) or isinstance(sets, bytes):
        raise ConfigError(
            f"fit(): sets expects a list of key=value strings, found {sets!r}; pass "
            f"sets=['lr=0.1'] or the fields as keyword arguments (lr=0.1)."
        )
    items = list(sets)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(
                f"fit(): sets expects key=value strings, found {item!r} in it; pass "
                f"sets=['lr=0.1'] or the fields as keyword arguments (lr=0.1)."
            )
    return items


def check_frame_times(data: Any, dataset: TimeSeriesDataset, config: TrainConfig) -> None:
    """Refuse, in ``fit``'s own keywords, a frame or array without times under a protocol
    that adds time features (the data layer's message speaks the CLI's ``--set``).

    Raises:
        ConfigError: naming the feature, the data and ``freq_minutes=`` /
            ``protocol_overrides=`` as the fix.
    """
    from linearcast.data.frames import describe_data
    from linearcast.engine.setup import resolve_protocol
    from linearcast.errors import DataError

    protocol = resolve_protocol(config)
    features = (
        ("time-of-day", "add_time_of_day", protocol.add_time_of_day, dataset.time_of_day),
        ("day-of-week", "add_day_of_week", protocol.add_day_of_week, dataset.day_of_week),
    )
    for label, flag, wanted, compute in features:
        if not wanted:
            continue
        try:
            compute()
        except DataError:
            raise ConfigError(
                f"fit(): protocol {config.protocol!r} adds {label} features, which need times; "
                f"found none in {describe_data(data)}{_text_index(data)}; pass "
                f"freq_minutes=MINUTES (and start='YYYY-MM-DD'), or leave the feature out "
                f"with protocol_overrides={{{flag!r}: False}}."
            ) from None


def _text_index(data: Any) -> str:
    """``", whose index holds text such as ..."`` for a wide frame indexed by strings."""
    import pandas as pd

    if not isinstance(data, pd.DataFrame) or len(data.index) == 0:
        return ""
    first = data.index[0]
    if not isinstance(first, str):
        return ""
    return (
        f", whose index holds text such as {first!r} (parse it with "
        f"df.index = pd.to_datetime(df.index))"
    )
