"""Open a finished run: its config and best checkpoint, checked to belong together, its data
(the run's own or another dataset's, matched by series name) and its model with the best
weights and the run's output rule (:mod:`linearcast.engine.target`).

:mod:`linearcast.serve.inference` (``evaluate``, ``predict``), :mod:`~linearcast.serve.forecast`
and :mod:`~linearcast.serve.export` start from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from linearcast.engine.checkpoint import BEST, load_checkpoint, load_weights
from linearcast.engine.config import TrainConfig
from linearcast.engine.series_identity import match_series, read_series
from linearcast.engine.setup import build_model, load_dataset, prepare_data
from linearcast.engine.target import apply_output_rule
from linearcast.engine.trained_on import check_trained_graph, trained_graph
from linearcast.errors import ConfigError
from linearcast.serve.data_step import check_step

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData, TimeSeriesDataset


# config fields that decide the model's architecture and inputs: a checkpoint must agree with
# its run's config.json on these (epochs, lr, ... may differ after a resume)
_ARCHITECTURE_FIELDS = ("model", "model_overrides", "protocol", "protocol_overrides")


def read_run(run_dir: str | Path) -> tuple[dict[str, Any], TrainConfig]:
    """A run's best checkpoint and config, checked to belong together (no data is read).

    Raises:
        ConfigError: no run directory / config / checkpoint, or a checkpoint from another run.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run directory not found.")
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(
            f"{run_dir}: not a run directory (no config.json); expected a folder written by "
            f"`linearcast train`."
        )
    config = TrainConfig.load(config_path)
    ckpt_path = run_dir / BEST
    ckpt = load_checkpoint(ckpt_path)
    _check_same_run(ckpt, config, ckpt_path, config_path)
    return ckpt, config


def load_run(
    run_dir: str | Path, data: str | TimeSeriesDataset | None = None, data_format: str = "auto"
) -> tuple[dict[str, Any], TrainConfig, PreparedData]:
    """The best checkpoint, the run's config (``data`` replaced when given) and the data.

    The run is described by its ``config.json``; ``best.ckpt`` must have been written by that
    run (same model, architecture options and protocol, same N and window lengths) -- a
    checkpoint copied from another run is refused.

    Args:
        run_dir: a run directory.
        data: a dataset path, or a dataset object (e.g. from
            :func:`linearcast.data.as_dataset`), instead of the run's own data.
        data_format: reader format of a ``data`` path.

    Raises:
        ConfigError: no run directory / config / checkpoint, a checkpoint from another run, or
            data whose shape the model cannot take.
        DataError: other data at another step than the run's
            (:func:`~linearcast.serve.data_step.check_step`).
    """
    run_dir = Path(run_dir)
    ckpt, config = read_run(run_dir)
    ckpt_path = run_dir / BEST
    dataset = None
    if isinstance(data, str | Path):
        config = config.replace(data=str(data), data_format=data_format)
    elif data is not None:
        from linearcast.data.frames import describe_data

        config = config.replace(data=describe_data(data))
        dataset = data
    if data is not None:  # the run's own data is in its own order; other data is matched
        import warnings

        from linearcast.serve.forecast_inputs import read_drop

        dataset, _, notes = match_series(
            dataset or load_dataset(config),
            read_series(run_dir, ckpt.get("meta")),
            run_dir,
            drop=read_drop(config.data_options),
        )
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=3)
        check_step(dataset, ckpt.get("meta", {}), run_dir)  # as forecast and backtest check
    prep = prepare_data(config, dataset)
    from linearcast.data import StandardScaler

    scaler = StandardScaler.from_state_dict(ckpt["scaler"])
    prep.scaler = scaler
    for part in (prep.train, prep.val, prep.test):
        part.scaler = scaler
    meta = ckpt.get("meta", {})
    p = prep.protocol
    if (meta.get("in_steps"), meta.get("out_steps")) != (p.in_steps, p.out_steps):
        raise ConfigError(
            f"{ckpt_path}: the model was trained on {meta.get('in_steps')} -> "
            f"{meta.get('out_steps')} windows, but the run's protocol now gives "
            f"{p.in_steps} -> {p.out_steps}."
        )
    from linearcast.models import REGISTRY

    spec = REGISTRY.get(config.model)
    if spec is not None and spec.fixed_num_nodes and meta.get("num_nodes") != prep.num_nodes:
        raise ConfigError(
            f"{prep.dataset.source}: model {config.model!r} of {run_dir} was trained on "
            f"N={meta.get('num_nodes')} nodes and runs only on that many; found N={prep.num_nodes}."
        )
    return ckpt, config, prep


def _check_same_run(
    ckpt: dict[str, Any], config: TrainConfig, ckpt_path: Path, config_path: Path
) -> None:
    """Refuse a checkpoint whose saved config disagrees with the run's config.json."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        raise ConfigError(f"{ckpt_path}: the checkpoint holds no config; it is not from a run.")
    own = config.to_dict()
    differ = [k for k in _ARCHITECTURE_FIELDS if saved.get(k, own[k]) != own[k]]
    if differ:
        k = differ[0]
        raise ConfigError(
            f"{ckpt_path}: this checkpoint was written by another run: its {k} is "
            f"{saved.get(k)!r} but {config_path} says {own[k]!r}"
            f"{f' (and {len(differ) - 1} more fields differ)' if len(differ) > 1 else ''}. "
            f"Evaluate the run directory the checkpoint came from."
        )


def inference_fabric(config: TrainConfig, accelerator: str | None) -> Fabric:
    """One device of the run's accelerator (or ``accelerator``) at the run's precision."""
    from lightning_fabric import Fabric

    fabric = Fabric(
        accelerator=accelerator or config.accelerator,
        devices=1,
        precision=config.precision,  # type: ignore[arg-type]
    )
    fabric.launch()
    return fabric


def best_model(
    ckpt: dict[str, Any], config: TrainConfig, prep: PreparedData, fabric: Fabric, run_dir: Path
) -> Any:
    """The run's model with its best weights and output rule, in eval mode on the device."""
    model = build_model(config, prep, trained_graph=trained_graph(ckpt))
    load_weights(model, ckpt["model"], run_dir / BEST)
    check_trained_graph(
        model, ckpt.get("meta", {}), prep.dataset.adjacency, str(prep.dataset.source), run_dir
    )
    apply_output_rule(model, config, prep.scaler).eval()
    return fabric.to_device(model)
