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
import difflib
import json
import math
import numbers
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from linearcast.errors import ConfigError
from linearcast.ranges import (
    Check,
    Choice,
    Either,
    Flag,
    Integer,
    ListOf,
    Nothing,
    Number,
    Text,
    is_flag,
)

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

#: the values of the readers' ``non_finite`` and ``dedupe`` options (the ``Literal`` types
#: ``NonFinitePolicy`` and ``Dedupe`` of the data package; a test keeps them equal)
NON_FINITE_CHOICES = ("error", "mask", "null")
DEDUPE_CHOICES = ("error", "first", "last", "mean")

#: reader options (``data_options``) whose values are the same in every format that takes
#: them, checked when the config is built: a run never stores one its reader would refuse
DATA_OPTION_CHECKS: dict[str, Check] = {
    "freq_minutes": Either((Integer(1, 525_600), Nothing())),  # at most a year
    "steps_per_day": Either((Integer(1, 86_400), Nothing())),
    "null_value": Number(allow_nan=True),
    "non_finite": Choice(NON_FINITE_CHOICES),
    "dedupe": Choice(DEDUPE_CHOICES),
    "weights": Choice(("connectivity", "distance", "gaussian")),
    "layout": Choice(("auto", "time_node", "node_time", "node_day_step", "day_step_node")),
    "graph_threshold": Number(0.0, 1.0),
}

#: what people often call a config field (other libraries' names, the CLI's flags), for the
#: "did you mean" of an unknown option
FIELD_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "learningrate": "lr",
    "epochs": "max_epochs",
    "epoch": "max_epochs",
    "n_epochs": "max_epochs",
    "num_epochs": "max_epochs",
    "out": "out_dir",
    "output": "out_dir",
    "output_dir": "out_dir",
    "outdir": "out_dir",
    "save_dir": "out_dir",
    "log_dir": "out_dir",
    "name": "run_name",
    "experiment_name": "run_name",
    "wd": "weight_decay",
    "l2": "weight_decay",
    "bs": "batch_size",
    "batch": "batch_size",
    "train_batch_size": "batch_size",
    "val_batch_size": "eval_batch_size",
    "test_batch_size": "eval_batch_size",
    "workers": "num_workers",
    "n_workers": "num_workers",
    "clip": "grad_clip",
    "clip_grad": "grad_clip",
    "gradient_clip": "grad_clip",
    "gradient_clip_val": "grad_clip",
    "max_grad_norm": "grad_clip",
    "early_stopping": "patience",
    "early_stopping_patience": "patience",
    "eps": "adam_eps",
    "device": "accelerator",
    "gpus": "devices",
    "dataset": "data",
    "data_path": "data",
    "format": "data_format",
    "model_options": "model_overrides",
    "model_kwargs": "model_overrides",
    "model_config": "model_overrides",
    "protocol_options": "protocol_overrides",
    "reader_options": "data_options",
    "lr_scheduler": "scheduler",
    "lr_milestones": "milestones",
    "lr_gamma": "gamma",
    "criterion": "loss",
    "random_seed": "seed",
    "random_state": "seed",
    "amp": "precision",
    "mixed_precision": "precision",
}


def did_you_mean(key: str, known: Iterable[str]) -> str | None:
    """The known option ``key`` most likely means: its usual name elsewhere
    (:data:`FIELD_ALIASES`: ``learning_rate`` -> ``lr``), else the closest spelling
    (``lrr`` -> ``lr``); ``None`` when nothing is close."""
    names = sorted(set(known))
    folded = key.strip().lower().replace("-", "_")
    alias = FIELD_ALIASES.get(folded)
    if alias in names:
        return alias
    if folded in names:
        return folded
    close = difflib.get_close_matches(folded, names, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_options(
    where: str, keys: Iterable[str], known: Iterable[str], what: str, kind: str = ""
) -> str:
    """One sentence for unknown option names: each with its likely meaning, then the list.

    Args:
        where: the message's prefix (``"config"``, ``"fit()"``).
        keys: the unknown names, as given.
        known: the accepted names.
        what: what ``known`` are (``"a config field"``).
        kind: a word before "option" (``"synthetic"``).
    """
    names = sorted(set(known))
    parts = []
    for key in keys:
        guess = did_you_mean(str(key), names)
        parts.append(f"{key!r}" + (f" (did you mean {guess!r}?)" if guess else ""))
    options = "option" if len(parts) == 1 else "options"
    kind = f"{kind} " if kind else ""
    return (
        f"{where}: unknown {kind}{options} {', '.join(parts)}; expected {what}: {', '.join(names)}."
    )


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
                checks[key].check(f"{table}.{key}", value, _fix(table, key))


def _fix(table: str, key: str) -> str:
    """How to set an option of ``table``, from the CLI and from Python."""
    if table == "data_options":
        python = f"data_options={{{key!r}: VALUE}}"
        if key in _frame_options():  # fit() takes a frame's data options as keywords
            python += f", or {key}=VALUE with a frame or array"
    else:
        python = f"{table}={{{key!r}: VALUE}}"
    return f"--set {table}.{key}=VALUE (Python: {python})"


def _frame_options() -> set[str]:
    """The options of :func:`linearcast.data.as_dataset` (imported only for a message)."""
    import inspect

    from linearcast.data.frames import as_dataset

    return set(inspect.signature(as_dataset).parameters) - {"data"}


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


def plain(value: Any) -> Any:
    """``value`` with NumPy numbers and bools (also inside lists, tuples and dicts) as Python's
    ``int``, ``float`` and ``bool``: ``lr=np.float32(1e-3)`` is a learning rate, and
    ``config.json`` holds plain values."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if type(value).__module__ != "numpy":
        return value
    if isinstance(value, str):  # np.str_
        return str(value)
    if is_flag(value):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        # a float32's shortest text is the number meant: np.float32(1e-3) -> 0.001, not
        # 0.0010000000474974513
        return float(str(value)) if getattr(value, "itemsize", 8) < 8 else float(value)
    return value


def coerce_value(key: str, value: Any, current: Any) -> Any:
    """Check ``value`` against the type of the field's current value; widen int -> float.

    NumPy scalars count as the Python numbers they hold (:func:`plain`). A field with a
    declared range (:data:`FIELD_CHECKS`) names that range when the type is wrong, as it does
    when the value is out of range.
    """
    value = plain(value)
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
        from linearcast.data.readers._files import require_file
        from linearcast.errors import DataError

        try:  # not found, a loop, a directory, a FIFO or a device: say which
            require_file(path, "a config file (.toml or .json)")
        except DataError as err:
            raise ConfigError(str(err)) from None
        raise ConfigError(f"{path}: config file not found.")  # pragma: no cover - raced
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
