"""What a run is made of: devices, data, model, loss, optimizer and scheduler, from a config.

The engine sees models only through :func:`linearcast.models.build` and the one forward
signature ``[B, T_in, N, C_in] -> [B, T_out, N, C_out]``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from linearcast.engine.config import TrainConfig, numbers_from_text
from linearcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData, Protocol, TimeSeriesDataset

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- devices
def make_fabric(config: TrainConfig) -> Fabric:
    """A Fabric instance for the config's accelerator, devices, strategy, nodes and precision.

    Raises:
        ConfigError: Fabric rejects the combination (the message says why).
    """
    from lightning_fabric import Fabric

    if config.strategy.startswith(("fsdp", "deepspeed", "xla")):
        # evaluation runs the unwrapped module on unpadded shards, which sharded-parameter
        # strategies cannot do; the models here fit one device, so DDP is what they need
        raise ConfigError(
            f"strategy {config.strategy!r} is not supported by the engine; use auto, ddp, "
            f"ddp_spawn, ddp_fork or ddp_notebook."
        )
    devices: int | str = config.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    precision: dict[str, Any] = {"precision": config.precision}
    if config.precision in ("bf16-mixed", "16-mixed"):
        precision = {"plugins": [_mixed_precision_float32_inputs(config)]}
    try:
        return Fabric(
            accelerator=config.accelerator,
            devices=devices,
            strategy=config.strategy,
            num_nodes=config.num_nodes,
            **precision,
        )
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(
            f"cannot set up accelerator={config.accelerator!r}, devices={config.devices!r}, "
            f"strategy={config.strategy!r}, num_nodes={config.num_nodes}, "
            f"precision={config.precision!r}: {err}"
        ) from err


def _mixed_precision_float32_inputs(config: TrainConfig) -> Any:
    """Fabric's mixed precision, except that model inputs stay float32.

    Fabric casts every floating input to the autocast type; in bfloat16 a time-of-day fraction
    k/288 loses its slot (28 of 288 map to another one), so STAEformer's and STID's time-of-day
    tables would be indexed wrongly. Autocast still runs the matmuls in the low precision.
    """
    import torch
    from lightning_fabric.plugins.precision import MixedPrecision

    class Float32Inputs(MixedPrecision):
        def convert_input(self, data: Any) -> Any:
            return data

    accelerator = config.accelerator
    cuda = accelerator in ("cuda", "gpu") or (accelerator == "auto" and torch.cuda.is_available())
    return Float32Inputs(precision=config.precision, device="cuda" if cuda else "cpu")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- data
def load_dataset(config: TrainConfig) -> TimeSeriesDataset:
    """The dataset named by ``config.data`` (a path, or ``"synthetic"``).

    Raises:
        ConfigError: ``data`` empty (a preset for a real dataset needs ``--data``).
        DataError: the file does not exist or cannot be read.
    """
    from linearcast.data import load, synthetic_traffic
    from linearcast.data.readers.multi import is_pattern

    if config.data == "synthetic":
        s = config.synthetic
        return synthetic_traffic(
            num_nodes=s.num_nodes,
            days=s.days,
            steps_per_day=s.steps_per_day,
            seed=s.seed,
            missing_rate=s.missing_rate,
        )
    if not config.data:
        raise ConfigError(
            "no dataset given: pass --data PATH (a dataset file or folder) or --data synthetic."
        )
    if config.data.startswith("<") and config.data.endswith(">"):
        # config.json of a run trained on a frame/array given in Python records only its shape
        raise ConfigError(
            f"config: data is {config.data}: the run was trained on data given in Python, which "
            f"is not stored with it; pass the data again (--data FILE, or data= in Python)."
        )
    options = numbers_from_text(config.data_options)
    if is_pattern(config.data):  # several files, one per station ('PRSA_Data_*.csv')
        return load(config.data, format=config.data_format, **options)
    path = Path(config.data)
    if not path.exists():
        from linearcast.data.readers._files import not_found

        why = "dataset not found" if not path.is_symlink() else not_found(path)
        raise DataError(
            f"{path}: {why} (expected a file or a BasicTS folder; "
            f"`linearcast data list` shows the known datasets and how to get them)."
        )
    return load(path, format=config.data_format, **options)


def resolve_protocol(config: TrainConfig) -> Protocol:
    """The protocol named by the config, with its overrides (lists become tuples)."""
    from linearcast.data import get_protocol

    overrides = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in numbers_from_text(config.protocol_overrides).items()
    }
    if "null_value" in config.data_options and "null_value" not in overrides:
        # the reader's null value (--set data_options.null_value=...) wins over the preset's
        overrides["null_value"] = None
    return get_protocol(config.protocol, **overrides)


def prepare_data(config: TrainConfig, dataset: TimeSeriesDataset | None = None) -> PreparedData:
    """Load (unless given) and split the dataset under the config's protocol."""
    ds = load_dataset(config) if dataset is None else dataset
    return resolve_protocol(config).prepare(ds)


def dataset_label(prep: PreparedData) -> str:
    """Short dataset name for run directories: the dataset's name or the file stem."""
    name = prep.dataset.name or (Path(str(prep.dataset.path)).stem if prep.dataset.path else "")
    return name or "data"


# ---------------------------------------------------------------------- model
def build_model(config: TrainConfig, prep: PreparedData, *, trained_graph: Any = None) -> nn.Module:
    """Build ``config.model`` from the registry for the prepared data's shape.

    The adjacency (or ``trained_graph`` where the data has none) is passed to models that
    declare ``needs_graph``; models that need time features are checked against the
    protocol's input channels.

    Raises:
        ConfigError: unknown model, missing graph or time features.
    """
    return build_model_for(
        config, prep.dataset, prep.protocol, prep.input_channels, trained_graph=trained_graph
    )


def build_model_for(
    config: TrainConfig,
    dataset: TimeSeriesDataset,
    protocol: Protocol,
    input_channels: int | None = None,
    *,
    steps_per_day: int | None = None,
    trained_graph: Any = None,
) -> nn.Module:
    """:func:`build_model` without a split: for data that only holds inputs (forecasting).

    Args:
        config: the run's config.
        dataset: gives N, the graph and steps per day.
        protocol: gives the window lengths and the input channels.
        input_channels: C_in (default: from the protocol's time-feature flags).
        steps_per_day: the size of a time-of-day table to build (default: the dataset's).
        trained_graph: the ``[N, N]`` graph the run was trained on (kept in its checkpoint),
            used when ``dataset`` has none.
    """
    from linearcast.models import REGISTRY, build

    if input_channels is None:
        input_channels = 1 + int(protocol.add_time_of_day) + int(protocol.add_day_of_week)

    spec = REGISTRY.get(config.model)
    if spec is None:
        raise ConfigError(
            f"unknown model {config.model!r}; known models: {', '.join(sorted(REGISTRY))} "
            f"(see `linearcast models`)."
        )
    overrides = numbers_from_text(config.model_overrides)
    if spec.needs_graph and "adjacency" not in overrides:
        adjacency = dataset.adjacency if dataset.adjacency is not None else trained_graph
        if adjacency is None:
            # a variant of the same model file that needs no graph (gwnet -> gwnet-adaptive)
            others = [
                s.name
                for s in REGISTRY.values()
                if not s.needs_graph and s.builder.__module__ == spec.builder.__module__
            ]
            instead = f" or use --model {' / '.join(others)}, which needs none" if others else ""
            raise ConfigError(
                f"model {spec.name!r} needs a graph, but {dataset.source} has no adjacency; "
                f"give one with --set data_options.adjacency=FILE{instead}."
            )
        overrides["adjacency"] = adjacency
    steps_per_day = steps_per_day or dataset.steps_per_day
    if "steps_per_day" in spec.data_fields and "steps_per_day" not in overrides and steps_per_day:
        overrides["steps_per_day"] = int(steps_per_day)
    # channels 1 and 2 are time of day and day of week only when the protocol adds both (a
    # day of week alone would sit where the model reads time of day)
    needed = min(spec.channels_read(overrides), 3) - 1
    given = 0 if not protocol.add_time_of_day else 1 + int(protocol.add_day_of_week)
    if needed > given:
        reads = ("time of day as an input channel", "time of day and day of week as inputs")
        has = "none" if given == 0 else "time of day only"
        fewer = (
            f", or read the target alone with {spec.fewer_channels}" if spec.fewer_channels else ""
        )
        raise ConfigError(
            f"model {spec.name!r} reads {reads[needed - 1]}, but protocol "
            f"{protocol.label} gives {has} (C_in={input_channels}); add them with --set "
            f"protocol_overrides.add_time_of_day=true --set protocol_overrides.add_day_of_week="
            f"true (data without timestamps also needs --set data_options.freq_minutes=MINUTES)"
            f"{fewer}."
        )
    p = protocol
    return build(
        spec.name,
        num_nodes=dataset.num_nodes,
        in_steps=p.in_steps,
        out_steps=p.out_steps,
        **overrides,
    )


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{"trainable": ..., "total": ...}`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "total": int(total)}


def has_trainable_parameters(model: nn.Module) -> bool:
    """Whether gradient training has anything to update."""
    return any(p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------------- loss
class LossFn:
    """The training loss on predictions and targets in the same units.

    Args:
        name: ``huber``, ``masked_mae``, ``masked_mse``, ``mae`` or ``mse``.
        null_value: the null value as the targets hold it (NaN for standardised targets, whose
            missing readings the windows made NaN; see ``PreparedData.target_null``).
        mask: skip null targets (NaN and ±inf targets are always skipped); ``False``
            reproduces STAEformer's unmasked Huber on raw-unit traffic targets.
        huber_delta: Huber switch point.
        data_null: the data's own null value, for :meth:`__repr__` (default ``null_value``).

    The loss is a mean over the kept entries; :meth:`count` says how many, so that means over
    several batches (and processes) can be weighted exactly. Every name masks the same
    missing readings: ``mae``/``mse`` differ from ``masked_*`` only by name (the LTSF one).
    """

    def __init__(
        self,
        name: str,
        null_value: float,
        *,
        mask: bool = True,
        huber_delta: float = 1.0,
        data_null: float | None = None,
    ) -> None:
        from linearcast import metrics

        known = ("huber", "masked_mae", "masked_mse", "mae", "mse")
        if name not in known:
            raise ConfigError(f"unknown loss {name!r}; expected one of {', '.join(known)}.")
        self.name = name
        self.null_value = float(null_value) if mask else math.nan
        self.data_null = float(null_value if data_null is None else data_null)
        # standardised targets hold the null readings as NaN already: masked whatever ``mask``
        self.masks_null = mask or (math.isnan(null_value) and not math.isnan(self.data_null))
        self.delta = float(huber_delta)
        self._null_mask = metrics.null_mask
        fn: Callable[..., Tensor]
        if name == "huber":
            fn = metrics.huber_loss
        elif name in ("masked_mae", "mae"):
            fn = metrics.masked_mae_loss
        else:
            fn = metrics.masked_mse_loss
        self._fn: Callable[..., Tensor] = fn

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean loss over the kept entries (0-dim tensor; 0 when none is kept)."""
        if self.name == "huber":
            return self._fn(pred, target, delta=self.delta, null_value=self.null_value)
        return self._fn(pred, target, null_value=self.null_value)

    def count(self, target: Tensor) -> Tensor:
        """Number of entries the mean runs over (0-dim integer tensor)."""
        return self._null_mask(target, self.null_value).sum()

    def __repr__(self) -> str:
        if math.isnan(self.data_null) or not self.masks_null:
            return f"{self.name} (masked: NaN/inf readings)"
        return f"{self.name} (masked: NaN/inf readings and the null value {self.data_null:g})"


def make_loss(config: TrainConfig, prep: PreparedData) -> LossFn:
    """The loss the config asks for (``auto``: the protocol's), masking the prepared data's
    missing targets (``prep.target_null``: the null value in the targets' units)."""
    name = prep.protocol.loss if config.loss == "auto" else config.loss
    return LossFn(
        name,
        prep.target_null,
        mask=config.mask_loss,
        huber_delta=config.huber_delta,
        data_null=prep.null_value,
    )


# ---------------------------------------------------------------------- optimisation
def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam (L2 weight decay, as the STAEformer code) or AdamW (decoupled)."""
    params = [p for p in model.parameters() if p.requires_grad]
    betas = (float(config.betas[0]), float(config.betas[1]))
    kwargs = {"lr": config.lr, "betas": betas, "eps": config.adam_eps}
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, weight_decay=config.weight_decay, **kwargs)  # type: ignore[arg-type]
    return torch.optim.Adam(params, weight_decay=config.weight_decay, **kwargs)  # type: ignore[arg-type]


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """MultiStepLR (stepped per epoch), OneCycleLR (per iteration) or None.

    OneCycle: warm-up over ``onecycle_pct_start`` of all iterations from ``lr/div_factor`` to
    ``lr``, then linear decay; momentum is not cycled (the betas stay as configured).
    """
    if config.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[int(m) for m in config.milestones], gamma=config.gamma
        )
    if config.scheduler == "onecycle":
        total = config.max_epochs * steps_per_epoch
        if total < 4:
            log.warning("onecycle: only %d iterations in all; keeping the lr constant", total)
            return None
        # torch divides by the warm-up length in steps: keep it >= 1 step on very short runs
        pct_start = min(max(config.onecycle_pct_start, 2.0 / total), 0.5)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=total,
            pct_start=pct_start,
            div_factor=config.onecycle_div_factor,
            anneal_strategy="linear",
            cycle_momentum=False,
        )
    return None


@dataclass
class Schedule:
    """An lr scheduler and when it steps: after every batch (OneCycle) or after every epoch
    (MultiStep). ``scheduler`` None: a constant lr (no steps, nothing in the checkpoint)."""

    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    per_batch: bool = False

    def after_batch(self) -> None:
        """Call after every optimizer step."""
        if self.per_batch and self.scheduler is not None:
            self.scheduler.step()

    def after_epoch(self) -> None:
        """Call after every training epoch."""
        if not self.per_batch and self.scheduler is not None:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any] | None:
        """The scheduler's state (a checkpoint's ``"scheduler"``), None without one."""
        return None if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict` (None, or no scheduler: nothing to restore)."""
        if self.scheduler is not None and state is not None:
            self.scheduler.load_state_dict(state)


def make_schedule(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> Schedule:
    """:func:`make_scheduler` with when it steps: OneCycle per batch, MultiStep per epoch."""
    return Schedule(
        make_scheduler(config, optimizer, steps_per_epoch),
        per_batch=config.scheduler == "onecycle",
    )


def setup_optimization(
    config: TrainConfig,
    fabric: Fabric,
    model: nn.Module,
    trainable: bool,
    steps_per_epoch: int,
    ckpt: dict[str, Any] | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer | None, Schedule]:
    """The model as Fabric sets it up, its optimizer and schedule (none without trainable
    parameters), their state restored from ``ckpt`` when resuming."""
    if not trainable:
        return fabric.to_device(model), None, Schedule(None)
    optimizer = make_optimizer(config, model)
    schedule = make_schedule(config, optimizer, steps_per_epoch)
    # the compiled module shares the parameters: the optimizer and checkpoints see the same ones
    trained = cast(nn.Module, torch.compile(model)) if config.compile else model
    wrapped, optimizer = fabric.setup(trained, optimizer)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt.get("scheduler"))
    return wrapped, optimizer, schedule


def current_lr(optimizer: torch.optim.Optimizer | None) -> float:
    """Learning rate of the first parameter group (NaN without an optimizer)."""
    if optimizer is None:
        return math.nan
    return float(optimizer.param_groups[0]["lr"])


def describe_model(name: str) -> dict[str, Any]:
    """Registry facts about a model (family, flags, description)."""
    from linearcast.models import REGISTRY

    spec = REGISTRY[name]
    return {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "needs_graph": spec.needs_graph,
        "needs_time_features": spec.needs_time_features,
        "fixed_num_nodes": spec.fixed_num_nodes,
    }
