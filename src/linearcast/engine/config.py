"""Training configuration: one typed dataclass, named presets, JSON/TOML files, ``key=value`` sets.

A run is fully described by a :class:`TrainConfig`. It is built from, in order:

1. the defaults below (or a named :func:`preset`),
2. a config file (``.toml`` or ``.json``; a file may name ``preset = "..."`` as its base and
   then only lists what differs -- see ``configs/``),
3. ``key=value`` overrides (``lr=3e-4``, ``model_overrides.num_layers=2``,
   ``synthetic.num_nodes=16``, ``protocol_overrides.split_mode="staeformer"``).

"Off" is spelled ``0`` (``patience``, ``grad_clip``, ``max_train_batches``, ...) rather than
``None`` so that every config round-trips through TOML, which has no null.

The presets (:data:`PRESETS`: STAEformer's official per-dataset settings, the BasicTS port,
SAMoVAR, the demo) are listed in :mod:`linearcast.engine.presets`; type checks, ``--set``
parsing, config files and the TOML writer are in :mod:`linearcast.engine.config_io`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linearcast import jsonio
from linearcast.engine.config_checks import check_names, check_run_name
from linearcast.engine.config_io import (
    check_parsed,
    check_values,
    coerce_value,
    field_default,
    nonfinite_as_text,
    numbers_from_text,
    parse_value,
    read_config_file,
    to_toml,
    unknown_options,
)
from linearcast.engine.presets import PRESETS
from linearcast.errors import ConfigError

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULERS",
    "SyntheticConfig",
    "TrainConfig",
    "numbers_from_text",
    "parse_value",
    "preset",
    "preset_names",
    "read_config_file",
    "to_toml",
]

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
        adam_eps: Adam(W)'s eps (torch's 1e-8; DCRNN's references use 1e-3).
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
        compile: train through ``torch.compile(model)`` (inductor; Fabric re-applies it after
            wrapping the model). The first step compiles (about 40 s for STAEformer on 2 CPU
            cores); evaluation and checkpoints use the uncompiled module, whose ``state_dict``
            is unchanged. Measured at the PEMS07 shape: README, "How fast is it?".
        nonnegative: clip forecasts at 0 in data units wherever they leave the model (forecast,
            predict, evaluate and the run's metrics, plots, the ONNX graph) -- for counts
            (pedestrians, trips, passengers), which a linear model can send below 0. Training
            sees the unclipped outputs (a clipped output has no gradient); the presets for count
            datasets turn it on.
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
    adam_eps: float = 1e-8
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
    compile: bool = False
    nonnegative: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.synthetic, dict):
            self.synthetic = _synthetic_from_dict(self.synthetic)
        elif not isinstance(self.synthetic, SyntheticConfig):
            raise ConfigError(f"config: synthetic must be a table/dict, found {self.synthetic!r}.")
        # types first, so that validate() compares numbers with numbers
        for f in dataclasses.fields(self):
            if f.name != "synthetic":
                setattr(self, f.name, coerce_value(f.name, getattr(self, f.name), field_default(f)))
        for name in ("model_overrides", "protocol_overrides", "data_options"):
            setattr(self, name, nonfinite_as_text(getattr(self, name)))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check every field's range (:data:`~linearcast.engine.config_io.FIELD_CHECKS`) and
        every name (model, baseline, protocol, format, model options) before any data is read;
        raise :class:`ConfigError` naming the option, the allowed values and the value found."""
        check_values(self.to_dict())
        choices = {"optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "loss": LOSSES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"config: {name} must be one of {', '.join(allowed)}; "
                    f"found {getattr(self, name)!r}; set it with --set {name}=NAME."
                )
        check_names(self)
        check_run_name(self.run_name)

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
        unknown = sorted(set(values) - set(known), key=str)
        if unknown:
            raise ConfigError(unknown_options("config", unknown, known, "a config field"))
        merged = base.to_dict()
        for key, value in values.items():
            if key == "synthetic":
                if not isinstance(value, dict):
                    raise ConfigError(f"config: synthetic must be a table/dict, found {value!r}.")
                merged["synthetic"] = {**merged["synthetic"], **value}
            else:
                merged[key] = coerce_value(key, value, merged[key])
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
            if head == "resume":  # it would continue a run under this config: --resume's job
                raise ConfigError(
                    "--set resume=... is not accepted; continue a run with --resume RUN_DIR."
                )
            check_parsed(key, raw.strip(), value, None if rest else cfg.get(head))
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


def _synthetic_from_dict(values: dict[str, Any]) -> SyntheticConfig:
    known = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(values) - known, key=str)
    if unknown:
        raise ConfigError(
            unknown_options("config", unknown, known, "a field of synthetic", kind="synthetic")
        )
    defaults = SyntheticConfig()
    coerced = {
        k: coerce_value(f"synthetic.{k}", v, getattr(defaults, k)) for k, v in values.items()
    }
    return SyntheticConfig(**coerced)


def preset_names() -> list[str]:
    """Names accepted by :func:`preset`."""
    return list(PRESETS)


def preset(name: str) -> TrainConfig:
    """A named preset (see :data:`PRESETS` and :mod:`linearcast.engine.presets`).

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
