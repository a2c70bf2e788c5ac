"""Config values in and out: type checks, ``--set`` values, config files, the TOML writer.

:class:`~linearcast.engine.config.TrainConfig` uses these to check each field against the type
of its default (:func:`coerce_value`), to parse ``key=value`` strings (:func:`parse_value`,
:func:`check_parsed`), to read ``.toml``/``.json`` files (:func:`read_config_file`) and to write
TOML (:func:`to_toml`). NaN and ±inf option values travel as text (:func:`nonfinite_as_text`,
:func:`numbers_from_text`): JSON has no such numbers.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from linearcast.errors import ConfigError
from linearcast.ranges import Check, Either, Flag, Integer, ListOf, Nothing, Number, Text

_SEED = Integer(0, 2**32 - 1)  # numpy's and Fabric's seeds are 32-bit
_COUNT = Integer(0)  # "0: off/all"
_POSITIVE = Integer(1)
_SIZE = Number(0.0, low_open=True)  # finite > 0
_AMOUNT = Number(0.0)  # finite >= 0

#: The allowed values of every numeric field of TrainConfig and of its ``synthetic`` table,
#: checked by ``TrainConfig.validate`` whichever way the config was built (defaults, presets,
#: files, ``--set``, the Python API). A numeric field missing here fails a test.
FIELD_CHECKS: dict[str, Check] = {
    "batch_size": _POSITIVE,
    "eval_batch_size": _COUNT,
    "max_epochs": _POSITIVE,
    "lr": _SIZE,
    "weight_decay": _AMOUNT,
    "betas": ListOf(Number(0.0, 1.0, high_open=True), 2, 2),
    "adam_eps": Number(0.0, 1.0, low_open=True),
    "milestones": ListOf(_POSITIVE),
    "gamma": _SIZE,
    "onecycle_pct_start": Number(0.0, 1.0, low_open=True, high_open=True),
    "onecycle_div_factor": _SIZE,
    "huber_delta": _SIZE,
    "patience": _COUNT,
    "min_delta": _AMOUNT,
    "grad_clip": _AMOUNT,
    "devices": Either(
        (
            Integer(1, 4096),
            Integer(-1, -1),
            Text(
                r"auto|-1|\s*\d{1,4}(\s*,\s*\d{1,4})*\s*,?\s*",
                "'auto' or device indices such as '0,1'",
            ),
        )
    ),
    "num_nodes": Integer(1, 65_536),
    "seed": _SEED,
    "max_train_batches": _COUNT,
    "max_eval_batches": _COUNT,
    "max_val_batches": _COUNT,
    "eval_every": _POSITIVE,
    "num_workers": Integer(0, 1024),
    "nonnegative": Flag(),
    "synthetic.num_nodes": Integer(1, 100_000),
    "synthetic.days": Integer(1, 100_000),
    "synthetic.steps_per_day": Integer(1, 86_400),
    "synthetic.seed": _SEED,
    "synthetic.missing_rate": Number(0.0, 1.0, high_open=True),
}

#: The numeric fields of a protocol ``protocol_overrides`` may set (the data layer's
#: ``Protocol`` checks how they fit together; these are the values each may take).
PROTOCOL_CHECKS: dict[str, Check] = {
    "in_steps": Integer(1, 1_000_000),
    "out_steps": Integer(1, 1_000_000),
    "stride": Integer(1, 1_000_000),
    "split_ratios": ListOf(Number(0.0, 1.0), 3, 3),
    "split_months": ListOf(Integer(0, 12 * 1000), 3, 3),
    "null_value": Either((Number(allow_nan=True), Nothing())),
    "horizons": ListOf(Integer(1, 1_000_000), 0, 1000),
    "mape_floor": Either((_AMOUNT, Nothing())),
    "target_channel": Integer(0, 100_000),
    "scaler_mask_null": Flag(),
    "add_time_of_day": Flag(),
    "add_day_of_week": Flag(),
}

#: reader options (``data_options``) that are numbers in every format that takes them
DATA_OPTION_CHECKS: dict[str, Check] = {
    "freq_minutes": Integer(1, 525_600),  # at most a year
    "null_value": Number(allow_nan=True),
}


def check_values(values: dict[str, Any]) -> None:
    """Check the numeric fields of a config dict (``TrainConfig.to_dict()``) against
    :data:`FIELD_CHECKS`, and the numeric protocol and reader options it sets against
    :data:`PROTOCOL_CHECKS` and :data:`DATA_OPTION_CHECKS`.

    Raises:
        ConfigError: one sentence naming the option, the allowed values and the value found.
    """
    for key, check in FIELD_CHECKS.items():
        head, _, rest = key.partition(".")
        value = values[head][rest] if rest else values[head]
        check.check(key, value)
    for table, checks in (
        ("protocol_overrides", PROTOCOL_CHECKS),
        ("data_options", DATA_OPTION_CHECKS),
    ):
        for key, value in numbers_from_text(values[table]).items():
            if key in checks:
                checks[key].check(f"{table}.{key}", value)


def nonfinite_as_text(values: dict[str, Any]) -> dict[str, Any]:
    """NaN/±inf option values as the strings ``"nan"``, ``"inf"``, ``"-inf"``: JSON has no
    such numbers, and config.json must give back exactly the run (``null_value = nan`` is a
    common option). :func:`numbers_from_text` turns them back into floats where they are used."""
    out = {}
    for k, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        out[k] = v
    return out


def numbers_from_text(values: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`nonfinite_as_text` for options handed to readers and protocols."""
    table = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
    return {k: table.get(v, v) if isinstance(v, str) else v for k, v in values.items()}


def field_default(f: dataclasses.Field[Any]) -> Any:
    """A field's default value (calling its factory)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def coerce_value(key: str, value: Any, current: Any) -> Any:
    """Check ``value`` against the type of the field's current value; widen int -> float.

    A field with a declared range (:data:`FIELD_CHECKS`) names that range when the type is
    wrong, as it does when the value is out of range.
    """
    try:
        return _coerce(key, value, current)
    except ConfigError:
        if key in FIELD_CHECKS:
            FIELD_CHECKS[key].check(key, value)
        raise


def _coerce(key: str, value: Any, current: Any) -> Any:
    if key in ("model_overrides", "protocol_overrides", "data_options"):
        if not isinstance(value, dict):
            raise ConfigError(f"config: {key} must be a table/dict, found {value!r}.")
        return copy.deepcopy(value)
    if key == "devices":
        if isinstance(value, bool) or not isinstance(value, int | str | list):
            raise ConfigError(f"config: devices must be an int or a string, found {value!r}.")
        return value if not isinstance(value, list) else ",".join(str(v) for v in value)
    if key == "resume":
        if not isinstance(value, bool | str):
            raise ConfigError(f"config: resume must be true/false or a path, found {value!r}.")
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config: {key} must be true or false, found {value!r}.")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise ConfigError(f"config: {key} must be an integer, found {value!r}.")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config: {key} must be a number, found {value!r}.")
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"config: {key} must be a string, found {value!r}.")
        return value
    if isinstance(current, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config: {key} must be a list, found {value!r}.")
        return list(value)
    return value


def parse_value(raw: str) -> Any:
    """Parse a ``--set`` value as a TOML value, falling back to the raw string.

    TOML dates and times (``2020-10-01``, ``2020-10-01T08:00``) become ISO strings, which every
    option taking a time (e.g. ``data_options.start``) accepts.
    """
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    return _dates_as_text(value)


def _dates_as_text(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):  # dt.datetime is a dt.date
        return value.isoformat()
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    return value


def check_parsed(key: str, raw: str, value: Any, current: Any) -> None:
    """A ``--set`` value that is not valid TOML is taken as a plain string; for a field that
    wants a number, flag or list, say that it did not parse (not that its type is wrong)."""
    if not isinstance(value, str) or value != raw or isinstance(current, str) or current is None:
        return
    if key in ("resume", "devices"):  # these take a string too (a path, "auto", "0,1")
        return
    if isinstance(current, bool):
        kind = "true or false"
    elif isinstance(current, list):
        kind = "a list such as [20, 30]"
    elif isinstance(current, int | float):
        kind = "a number such as 3e-4"
    else:
        return
    raise ConfigError(f"--set {key}={raw}: cannot parse {raw!r} as a value; {key} expects {kind}.")


def read_config_file(path: str | Path, *, new_run: bool = False) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` file into a dict.

    Args:
        path: the file.
        new_run: the file describes a new run (``--config``), so it may not set ``resume``:
            continuing a run is ``--resume``'s, which keeps the run's own config and directory.

    Raises:
        ConfigError: missing file, unknown suffix, a syntax error (with the file named), or
            ``resume`` in a new run's file.
    """
    values = _read_config_file(Path(path))
    if new_run and values.get("resume", False) not in (False, ""):
        raise ConfigError(
            f"{path}: a config file cannot set resume (found {values['resume']!r}); continue "
            f"a run with --resume RUN_DIR instead."
        )
    return values


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        if path.suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a JSON object, found {type(data).__name__}.")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot parse the config: {err}") from err
    except (UnicodeDecodeError, RecursionError, OSError) as err:
        raise ConfigError(f"{path}: expected a config as UTF-8 text, {damaged(err)}.") from err
    raise ConfigError(f"{path}: expected a .toml or .json config file, found {path.suffix!r}.")


def damaged(err: BaseException) -> str:
    """What a text file that could not be read was (for ``expected ..., found ...``)."""
    if isinstance(err, UnicodeDecodeError):
        return f"found bytes that are not UTF-8 text (at offset {err.start})"
    if isinstance(err, RecursionError):
        return "found values nested too deeply to read"
    reason = err.strerror if isinstance(err, OSError) else None
    return f"could not read it ({reason or type(err).__name__})"


# ---------------------------------------------------------------------- TOML writer
def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML.")


def to_toml(values: dict[str, Any]) -> str:
    """Write a config dict as TOML: scalars first, then one table per dict.

    ``None`` values are left out (TOML has no null; the defaults then apply on reading).
    """
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{key} = {_toml_scalar(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        for key, value in table.items():
            if isinstance(value, dict):
                raise ConfigError(f"cannot write the nested table {name}.{key} to TOML.")
            if value is not None:
                lines.append(f"{json.dumps(key)} = {_toml_scalar(value)}")
    return "\n".join(lines) + "\n"
