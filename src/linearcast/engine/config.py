"""Training configuration: one typed dataclass, named presets, JSON/TOML files, ``key=value`` sets.

A run is fully described by a :class:`TrainConfig`. It is built from, in order:

1. the defaults below (or a named :func:`preset`),
2. a config file (``.toml`` or ``.json``; a file may name ``preset = "..."`` as its base and
   then only lists what differs -- see ``configs/``),
3. ``key=value`` overrides (``lr=3e-4``, ``model_overrides.num_layers=2``,
   ``synthetic.num_nodes=16``, ``protocol_overrides.split_mode="staeformer"``).

"Off" is spelled ``0`` (``patience``, ``grad_clip``, ``max_train_batches``, ...) rather than
``None`` so that every config round-trips through TOML, which has no null.

The STAEformer presets follow the official code's per-dataset settings (``staeformer.md``;
Adam lr 1e-3, MultiStepLR ×0.1, batch 16; Huber on PEMS0x, masked MAE on METR-LA/PEMS-BAY)::

    preset               weight decay  milestones     max epochs  patience
    staeformer-metr-la   3e-4          [20, 30]       200         30
    staeformer-pems-bay  1e-4          [10, 30]       300         20
    staeformer-pems03    5e-4          [15, 30, 40]   300         20
    staeformer-pems04    5e-4          [15, 30, 50]   300         20
    staeformer-pems07    1e-3          [15, 35, 50]   300         20
    staeformer-pems08    1.5e-3        [25, 45, 65]   300         30
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linearcast import jsonio
from linearcast.errors import ConfigError

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("multistep", "onecycle", "none")
LOSSES = ("auto", "huber", "masked_mae", "masked_mse", "mae", "mse")


@dataclass
class SyntheticConfig:
    """Options of the built-in synthetic dataset (``data = "synthetic"``).

    Attributes:
        num_nodes: N sensors.
        days: length in days (288 steps per day).
        steps_per_day: steps per day.
        seed: generator seed (the data is a deterministic function of these options).
        missing_rate: fraction of zero ("missing") readings.
    """

    num_nodes: int = 64
    days: int = 14
    steps_per_day: int = 288
    seed: int = 0
    missing_rate: float = 0.02


@dataclass
class TrainConfig:
    """Everything a training run needs (see the module docstring for how it is assembled).

    Attributes:
        model: registry name (``linearcast models`` lists them).
        model_overrides: model config fields to change (e.g. ``{"num_layers": 2}``).
        data: a dataset path (any format ``linearcast.data.load`` reads) or ``"synthetic"``;
            ``""`` means "must be given" (presets for real datasets).
        data_format: reader format (``"auto"`` sniffs it).
        data_options: keyword arguments of the reader (e.g. ``{"freq_minutes": 5}`` for a
            Los-loop CSV, which does not state its frequency).
        synthetic: options of the synthetic dataset.
        protocol: protocol name (``pems``, ``pems-staeformer``, ``metr``, ``ett``, ...).
        protocol_overrides: protocol fields to change (e.g. ``{"in_steps": 336}``).
        batch_size: training batch size (per process).
        eval_batch_size: validation/test batch size (0: ``batch_size``).
        max_epochs: epochs at most.
        lr: learning rate (OneCycle: the peak).
        weight_decay: weight decay (Adam: L2 as in the reference code; AdamW: decoupled).
        optimizer: ``"adam"`` or ``"adamw"``.
        betas: Adam(W) betas.
        scheduler: ``"multistep"`` (stepped per epoch), ``"onecycle"`` (per iteration) or
            ``"none"``.
        milestones: MultiStepLR epochs.
        gamma: MultiStepLR factor.
        onecycle_pct_start: OneCycle warm-up fraction.
        onecycle_div_factor: OneCycle initial lr = ``lr / div_factor``.
        loss: ``"auto"`` (the protocol's), ``"huber"``, ``"masked_mae"``, ``"masked_mse"``,
            ``"mae"``, ``"mse"``; computed on inverse-transformed (raw-unit) predictions for
            raw-unit protocols.
        mask_loss: skip null targets in the loss (``False`` reproduces STAEformer's unmasked
            Huber on PEMS0x; NaN targets are always skipped).
        huber_delta: Huber switch point.
        patience: early stopping after this many epochs without a better validation loss
            (0: never stop early; the best weights are restored before testing either way).
        min_delta: an improvement must exceed this.
        grad_clip: max gradient norm (0: no clipping).
        precision: Fabric precision (``"32-true"``, ``"bf16-mixed"``, ``"16-mixed"``, ...).
        accelerator: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``.
        devices: devices per node (an int, ``"auto"`` or a list string as Fabric accepts).
        strategy: ``"auto"``, ``"ddp"`` (subprocess launcher: re-runs the command line),
            ``"ddp_spawn"`` (from a Python session), ``"ddp_fork"``, ``"ddp_notebook"``.
        num_nodes: machines (multi-node DDP; the launcher sets the rank variables).
        seed: seeds weights, shuffling and dropout.
        max_train_batches: training batches per epoch at most (0: all).
        max_eval_batches: validation/test batches at most (0: all) -- quick runs only; metrics
            then cover part of the set.
        max_val_batches: per-epoch validation (early stopping, best checkpoint) on this many
            batches of windows spread evenly over the validation period (0: all); the final
            validation and test numbers always use every window.
        eval_every: validate every this many epochs (and on the last).
        num_workers: DataLoader worker processes.
        out_dir: parent folder of run directories.
        run_name: run directory name (``""``: ``<model>-<dataset>-<YYYYmmdd-HHMMSS>``).
        resume: ``False``; ``True`` to continue ``out_dir/run_name``; or a run directory path.
        baseline: registry name of the floor evaluated beside every result (``""``: none).
        plots: write ``curves.png``, ``forecast.png`` and ``errors.png``.
        tensorboard: write TensorBoard event files (per-epoch losses, validation metrics, lr,
            epoch time) into the run directory when the ``tensorboard`` package is installed;
            without it this does nothing.
    """

    model: str = "elinformer"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: str = "synthetic"
    data_format: str = "auto"
    data_options: dict[str, Any] = field(default_factory=dict)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    protocol: str = "pems"
    protocol_overrides: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    eval_batch_size: int = 0
    max_epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    scheduler: str = "multistep"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    onecycle_pct_start: float = 0.05
    onecycle_div_factor: float = 10.0
    loss: str = "auto"
    mask_loss: bool = True
    huber_delta: float = 1.0
    patience: int = 20
    min_delta: float = 0.0
    grad_clip: float = 0.0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    seed: int = 0
    max_train_batches: int = 0
    max_eval_batches: int = 0
    max_val_batches: int = 0
    eval_every: int = 1
    num_workers: int = 0
    out_dir: str = "runs"
    run_name: str = ""
    resume: bool | str = False
    baseline: str = "last-value"
    plots: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.synthetic, dict):
            self.synthetic = _synthetic_from_dict(self.synthetic)
        elif not isinstance(self.synthetic, SyntheticConfig):
            raise ConfigError(f"config: synthetic must be a table/dict, found {self.synthetic!r}.")
        # types first, so that validate() compares numbers with numbers
        for f in dataclasses.fields(self):
            if f.name != "synthetic":
                setattr(self, f.name, _coerce(f.name, getattr(self, f.name), _default(f)))
        for name in ("model_overrides", "protocol_overrides", "data_options"):
            setattr(self, name, _nonfinite_as_text(getattr(self, name)))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check value ranges and names; raise :class:`ConfigError` naming the field."""
        positive = ("batch_size", "max_epochs", "eval_every", "num_nodes")
        non_negative = (
            "eval_batch_size",
            "patience",
            "grad_clip",
            "max_train_batches",
            "max_eval_batches",
            "max_val_batches",
            "num_workers",
            "weight_decay",
            "min_delta",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"config: {name} must be >= 1, found {getattr(self, name)!r}.")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"config: {name} must be >= 0, found {getattr(self, name)!r}.")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError(f"config: lr must be a positive number, found {self.lr!r}.")
        choices = {"optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "loss": LOSSES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"config: {name} must be one of {', '.join(allowed)}; "
                    f"found {getattr(self, name)!r}."
                )

        def numbers(values: list[Any], kind: Any) -> bool:
            return all(isinstance(v, kind) and not isinstance(v, bool) for v in values)

        if len(self.betas) != 2 or not numbers(self.betas, int | float):
            raise ConfigError(f"config: betas must be two numbers, found {self.betas!r}.")
        if not numbers(self.milestones, int):
            raise ConfigError(
                f"config: milestones must be a list of epochs (integers), "
                f"found {self.milestones!r}."
            )
        if any(int(m) < 1 for m in self.milestones):
            raise ConfigError(f"config: milestones are epochs >= 1, found {self.milestones!r}.")
        if not 0.0 < self.onecycle_pct_start < 1.0:
            raise ConfigError(
                f"config: onecycle_pct_start must be in (0, 1), found {self.onecycle_pct_start}."
            )
        if not self.model:
            raise ConfigError("config: model must name a registry entry (see `linearcast models`).")
        self._check_model_overrides()

    def _check_model_overrides(self) -> None:
        """A misspelt ``model_overrides`` key fails here, before any data is read."""
        if not self.model_overrides:
            return
        from linearcast.models import REGISTRY

        spec = REGISTRY.get(self.model)
        if spec is None or spec.options is None:
            return  # an unknown model fails when it is built, naming the known ones
        unknown = sorted(set(self.model_overrides) - spec.options)
        if unknown:
            keys = ", ".join(f"model_overrides.{key}" for key in unknown)
            raise ConfigError(
                f"config: {keys} is not an option of model {self.model!r}; its options are "
                f"{', '.join(sorted(spec.options)) or 'none'}."
            )

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict (nested ``synthetic`` as a dict)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, base: TrainConfig | None = None) -> TrainConfig:
        """Build a config from a (possibly partial) dict.

        Args:
            values: field -> value; ``synthetic`` may be a partial dict; a ``preset`` key names
                the config to start from (it takes precedence over ``base``).
            base: start from this config instead of the defaults.

        Returns:
            A new, validated config.

        Raises:
            ConfigError: unknown keys (with the known ones listed) or values of the wrong type.
        """
        values = dict(values)
        preset_name = values.pop("preset", None)
        if base is None:
            base = preset(preset_name) if preset_name else cls()
        elif preset_name:
            base = preset(preset_name)
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"config: unknown option(s) {unknown}; known options: {', '.join(sorted(known))}."
            )
        merged = base.to_dict()
        for key, value in values.items():
            if key == "synthetic":
                if not isinstance(value, dict):
                    raise ConfigError(f"config: synthetic must be a table/dict, found {value!r}.")
                merged["synthetic"] = {**merged["synthetic"], **value}
            else:
                merged[key] = _coerce(key, value, merged[key])
        merged["synthetic"] = _synthetic_from_dict(merged["synthetic"])
        return cls(**merged)

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed (same rules as :meth:`from_dict`)."""
        return TrainConfig.from_dict(changes, base=self)

    def with_sets(self, sets: list[str]) -> TrainConfig:
        """Apply ``key=value`` strings (``--set``); dotted keys reach into the dict fields.

        Values are parsed as TOML values when possible (``3e-4``, ``true``, ``[20, 30]``,
        ``"text"``), else taken as a plain string.
        """
        cfg = self.to_dict()
        for item in sets:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigError(f"--set expects key=value, found {item!r}.")
            value = parse_value(raw.strip())
            head, _, rest = key.partition(".")
            _check_parsed(key, raw.strip(), value, None if rest else cfg.get(head))
            if rest:
                if head not in (
                    "model_overrides",
                    "protocol_overrides",
                    "data_options",
                    "synthetic",
                ):
                    raise ConfigError(
                        f"--set {key}: only model_overrides.*, protocol_overrides.*, "
                        f"data_options.* and synthetic.* take a dotted key."
                    )
                cfg[head] = {**cfg[head], rest: value}
            else:
                cfg[head] = value
        return TrainConfig.from_dict(cfg, base=TrainConfig())

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the config as JSON (``.json``) or TOML (``.toml``)."""
        path = Path(path)
        if path.suffix == ".toml":
            path.write_text(to_toml(self.to_dict()))
        else:
            path.write_text(jsonio.dumps(self.to_dict()) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, *, base: TrainConfig | None = None) -> TrainConfig:
        """Read a ``.toml`` or ``.json`` config (partial: missing keys keep their defaults)."""
        return cls.from_dict(read_config_file(path), base=base)


def _nonfinite_as_text(values: dict[str, Any]) -> dict[str, Any]:
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
    """The inverse of :func:`_nonfinite_as_text` for options handed to readers and protocols."""
    table = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
    return {k: table.get(v, v) if isinstance(v, str) else v for k, v in values.items()}


def _default(f: dataclasses.Field[Any]) -> Any:
    """A field's default value (calling its factory)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _synthetic_from_dict(values: dict[str, Any]) -> SyntheticConfig:
    known = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"config: unknown synthetic option(s) {unknown}; known: {', '.join(sorted(known))}."
        )
    defaults = SyntheticConfig()
    coerced = {k: _coerce(f"synthetic.{k}", v, getattr(defaults, k)) for k, v in values.items()}
    return SyntheticConfig(**coerced)


def _coerce(key: str, value: Any, current: Any) -> Any:
    """Check ``value`` against the type of the field's current value; widen int -> float."""
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


def _check_parsed(key: str, raw: str, value: Any, current: Any) -> None:
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


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` file into a dict.

    Raises:
        ConfigError: missing file, unknown suffix, or a syntax error (with the file named).
    """
    path = Path(path)
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
    raise ConfigError(f"{path}: expected a .toml or .json config file, found {path.suffix!r}.")


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


# ---------------------------------------------------------------------- presets
def _staeformer(
    protocol: str, weight_decay: float, milestones: list[int], epochs: int, patience: int
) -> dict[str, Any]:
    pems = protocol.startswith("pems")
    return {
        "model": "staeformer",
        "data": "",
        "protocol": protocol,
        "batch_size": 16,
        "max_epochs": epochs,
        "lr": 1e-3,
        "weight_decay": weight_decay,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": milestones,
        "gamma": 0.1,
        # the official code trains PEMS0x with nn.HuberLoss() (unmasked), METR/BAY masked MAE
        "loss": "huber" if pems else "masked_mae",
        "mask_loss": not pems,
        "patience": patience,
    }


def _basicts(batch_size: int) -> dict[str, Any]:
    return {
        "model": "staeformer",
        "data": "",
        "protocol": "pems",
        "batch_size": batch_size,
        "max_epochs": 100,
        "lr": 1e-3,
        "weight_decay": 3e-4,
        "optimizer": "adam",
        "scheduler": "multistep",
        "milestones": [20, 25],
        "gamma": 0.1,
        "loss": "masked_mae",
        "patience": 0,  # BasicTS trains all epochs and keeps the best validation checkpoint
    }


def _samovar(protocol: str, lookback: int, horizon: int) -> dict[str, Any]:
    return {
        "model": "samovar",
        "data": "",
        "protocol": protocol,
        "protocol_overrides": {"in_steps": lookback, "out_steps": horizon},
        "batch_size": 32,
        "max_epochs": 50,
        "lr": 6e-4,
        "betas": [0.9, 0.95],
        "weight_decay": 0.1,
        "optimizer": "adamw",
        "scheduler": "onecycle",
        "onecycle_pct_start": 0.05,
        "onecycle_div_factor": 10.0,
        "grad_clip": 1.0,
        "loss": "mse",
        "patience": 12,
    }


PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "staeformer-metr-la": (
        "STAEformer official, METR-LA (masked MAE, wd 3e-4, milestones 20/30)",
        _staeformer("metr-staeformer", 3e-4, [20, 30], 200, 30),
    ),
    "staeformer-pems-bay": (
        "STAEformer official, PEMS-BAY (masked MAE, wd 1e-4, milestones 10/30)",
        _staeformer("metr-staeformer", 1e-4, [10, 30], 300, 20),
    ),
    "staeformer-pems03": (
        "STAEformer official, PEMS03 (Huber, wd 5e-4, milestones 15/30/40)",
        _staeformer("pems-staeformer", 5e-4, [15, 30, 40], 300, 20),
    ),
    "staeformer-pems04": (
        "STAEformer official, PEMS04 (Huber, wd 5e-4, milestones 15/30/50)",
        _staeformer("pems-staeformer", 5e-4, [15, 30, 50], 300, 20),
    ),
    "staeformer-pems07": (
        "STAEformer official, PEMS07 (Huber, wd 1e-3, milestones 15/35/50)",
        _staeformer("pems-staeformer", 1e-3, [15, 35, 50], 300, 20),
    ),
    "staeformer-pems08": (
        "STAEformer official, PEMS08 (Huber, wd 1.5e-3, milestones 25/45/65)",
        _staeformer("pems-staeformer", 1.5e-3, [25, 45, 65], 300, 30),
    ),
    "basicts-pems03": ("BasicTS port of STAEformer, PEMS03 (masked MAE, 100 epochs)", _basicts(16)),
    "basicts-pems04": ("BasicTS port of STAEformer, PEMS04 (masked MAE, 100 epochs)", _basicts(16)),
    "basicts-pems07": ("BasicTS port of STAEformer, PEMS07 (batch 8)", _basicts(8)),
    "basicts-pems08": ("BasicTS port of STAEformer, PEMS08 (masked MAE, 100 epochs)", _basicts(16)),
    "samovar-ett": (
        "SAMoVAR on ETT (AdamW 6e-4, OneCycle, clip 1, lookback 1024 -> 96)",
        _samovar("ett", 1024, 96),
    ),
    "samovar-ltsf": (
        "SAMoVAR on other LTSF CSVs (0.7/0.1/0.2, lookback 1024 -> 96)",
        _samovar("ltsf", 1024, 96),
    ),
    "demo": (
        "ELinFormer (small) on the synthetic dataset; ~1-2 minutes on 2 CPU cores",
        {
            "model": "elinformer",
            "model_overrides": {
                "input_embedding_dim": 12,
                "tod_embedding_dim": 12,
                "dow_embedding_dim": 12,
                "adaptive_embedding_dim": 28,
                "feed_forward_dim": 128,
                "num_layers": 1,
                "dropout": 0.1,
            },
            "data": "synthetic",
            "synthetic": {"num_nodes": 32, "days": 14, "seed": 0},
            "protocol": "pems",
            "batch_size": 32,
            "max_epochs": 8,
            "lr": 3e-3,
            "weight_decay": 1e-4,
            "scheduler": "multistep",
            "milestones": [6],
            "gamma": 0.3,
            "loss": "masked_mae",
            "patience": 3,
        },
    ),
}


def preset_names() -> list[str]:
    """Names accepted by :func:`preset`."""
    return list(PRESETS)


def preset(name: str) -> TrainConfig:
    """A named preset (see :data:`PRESETS` and the module docstring).

    Raises:
        ConfigError: for an unknown name (the known ones are listed).
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}.")
    values = copy.deepcopy(PRESETS[name][1])
    synthetic = values.pop("synthetic", {})
    cfg = TrainConfig(**values)
    if synthetic:
        cfg.synthetic = _synthetic_from_dict({**dataclasses.asdict(cfg.synthetic), **synthetic})
    return cfg
