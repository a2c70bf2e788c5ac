"""Use a finished run: recompute its metrics (``evaluate``) or write forecasts (``predict``).

Both reload ``best.ckpt`` and the run's resolved config. Inputs are scaled with the scaler
saved in the checkpoint (the one the model was trained with), also on a different dataset
given with ``data=``; the protocol (split, windows) is the run's. Other data's series are
matched to the run's by name (:mod:`linearcast.engine.series_identity`).

``predict`` gives data units by default under every protocol (the units of ``forecast``);
``units="scaled"`` gives the model's standardised space (the one ett/ltsf metrics use).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from linearcast.engine.checkpoint import BEST, load_checkpoint, load_weights
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import (
    evaluate,
    format_metrics_table,
    forward_eval,
    table_columns,
)
from linearcast.engine.outputs import atomic_output, check_output_path
from linearcast.engine.samplers import ShardSampler
from linearcast.engine.series_identity import match_series, read_series
from linearcast.engine.setup import build_model, load_dataset, prepare_data
from linearcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData, TimeSeriesDataset

SPLITS = ("train", "val", "test")
UNITS = {"data": "data units", "scaled": "standardised units"}


class Prediction(np.ndarray):
    """A NumPy array that names its units (``.units``: ``"data units"`` or ``"standardised
    units"``); otherwise an ordinary ``[S, T_out, N, C]`` float32 array."""

    units: str | None

    def __new__(cls, values: np.ndarray, units: str) -> Prediction:
        obj = np.asarray(values).view(cls)
        obj.units = units
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.units = getattr(obj, "units", None)


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

        dataset, _, notes = match_series(
            dataset or load_dataset(config), read_series(run_dir), run_dir
        )
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=3)
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


def _fabric(config: TrainConfig, accelerator: str | None) -> Fabric:
    from lightning_fabric import Fabric

    fabric = Fabric(
        accelerator=accelerator or config.accelerator,
        devices=1,
        precision=config.precision,  # type: ignore[arg-type]
    )
    fabric.launch()
    return fabric


def _model(
    ckpt: dict[str, Any], config: TrainConfig, prep: PreparedData, fabric: Fabric, run_dir: Path
) -> Any:
    model = build_model(config, prep)
    load_weights(model, ckpt["model"], run_dir / BEST)
    model.eval()
    return fabric.to_device(model)


def _open_split(
    run_dir: str | Path,
    data: str | TimeSeriesDataset | None,
    data_format: str,
    split: str,
    accelerator: str | None,
    batch_size: int | None,
) -> tuple[TrainConfig, PreparedData, Fabric, Any, Any, int]:
    """What evaluating or predicting a split of a finished run starts from.

    Returns:
        ``(config, prep, fabric, model, part, batch_size)``: the run's config, its prepared
        data, the Fabric and the best weights on its device, the split's windows and the batch
        size (the given one, else the run's evaluation or training batch size).
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; found {split!r}.")
    ckpt, config, prep = load_run(run_dir, data, data_format)
    fabric = _fabric(config, accelerator)
    model = _model(ckpt, config, prep, fabric, Path(run_dir))
    part = getattr(prep, split)
    return (
        config,
        prep,
        fabric,
        model,
        part,
        batch_size or config.eval_batch_size or config.batch_size,
    )


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | TimeSeriesDataset | None = None,
    data_format: str = "auto",
    split: str = "test",
    batch_size: int = 0,
    accelerator: str | None = None,
    max_batches: int = 0,
) -> dict[str, Any]:
    """Recompute a run's metrics with its best weights.

    Args:
        run_dir: a run directory holding ``best.ckpt``.
        data: evaluate on this dataset (a path or a dataset object) instead of the run's own.
        data_format: reader format of ``data``.
        split: ``"test"``, ``"val"`` or ``"train"``.
        batch_size: evaluation batch size (0: the run's).
        accelerator: override the run's accelerator (e.g. ``"cpu"``).
        max_batches: evaluate only this many batches (0: all).

    Returns:
        ``{"run_dir", "model", "dataset", "protocol", "split", "windows", "metrics",
        "baseline", "table"}``.
    """
    config, prep, fabric, model, part, bs = _open_split(
        run_dir, data, data_format, split, accelerator, batch_size
    )
    loader = fabric.setup_dataloaders(
        DataLoader(part, batch_size=bs, sampler=ShardSampler(part)),
        use_distributed_sampler=False,
    )
    result = evaluate(fabric, model, loader, prep, max_batches=max_batches)
    overall = result.metrics["overall"]
    _check_finite(all(np.isfinite(overall[k]) for k in ("MAE", "MSE")), prep, run_dir, split)
    rows = {config.model: result.metrics}
    baseline = None
    if config.baseline:
        from linearcast.models import build

        p = prep.protocol
        floor = build(
            config.baseline, num_nodes=prep.num_nodes, in_steps=p.in_steps, out_steps=p.out_steps
        )
        base = evaluate(fabric, fabric.to_device(floor), loader, prep, max_batches=max_batches)
        baseline = {"model": config.baseline, split: base.metrics}
        rows[config.baseline] = base.metrics
    name = prep.dataset.name
    space = prep.protocol.metrics_space
    units = "data units" if space == "raw" else "standardised units"
    table = format_metrics_table(
        rows,
        title=f"{split} metrics on {name} under {prep.protocol.label} ({result.windows} windows, "
        f"{units})",
        columns=table_columns(space),
    )
    return {
        "run_dir": str(run_dir),
        "model": config.model,
        "dataset": name,
        "protocol": prep.protocol.label,
        "split": split,
        "windows": result.windows,
        "metrics": result.metrics,
        "baseline": baseline,
        "table": table,
    }


def _check_finite(finite: bool, prep: PreparedData, run_dir: str | Path, split: str) -> None:
    """Refuse non-finite forecasts (masked errors of finite forecasts are finite, 0.0 when
    nothing is scored, so non-finite metrics mean non-finite forecasts)."""
    if not finite:
        raise DataError(
            f"{prep.dataset.source}: the model of {run_dir} produced non-finite values (NaN/inf) "
            f"on the {split} windows; expected finite forecasts: check "
            f"best.ckpt for non-finite weights and the data for NaN readings (retrain if the "
            f"weights are)."
        )


def predict_run(
    run_dir: str | Path,
    out: str | Path | None,
    *,
    data: str | TimeSeriesDataset | None = None,
    data_format: str = "auto",
    split: str = "test",
    batch_size: int = 0,
    accelerator: str | None = None,
    units: str = "data",
) -> dict[str, Any]:
    """Forecast every window of a split and save them.

    Args:
        run_dir: a run directory holding ``best.ckpt``.
        out: ``.npy`` (predictions ``[S, T_out, N, C]`` in ``units``) or ``.npz`` (arrays
            ``prediction``, ``target`` (both in ``units``), ``start``, the first input row of
            each window, and ``units``); ``None``: write nothing (the arrays are in the
            result). Written whole or not at all.
        data: forecast this dataset (a path or a dataset object) instead of the run's own.
        data_format: reader format of ``data``.
        split: ``"test"``, ``"val"`` or ``"train"``.
        batch_size: batch size (0: the run's evaluation batch size).
        accelerator: override the run's accelerator.
        units: ``"data"`` (default: data units under every protocol, as ``forecast``) or
            ``"scaled"`` (standardised by the run's scaler).

    Returns:
        ``{"path", "shape", "windows", "split", "units", "prediction", "target", "start"}``
        (the last three as arrays; ``units`` is ``"data units"`` or ``"standardised units"``).

    Raises:
        ConfigError: another output suffix or folder, unknown ``units``, a split without
            windows.
        DataError: non-finite predictions.
    """
    if units not in UNITS:
        raise ConfigError(
            f"predict: units expected one of {', '.join(map(repr, UNITS))}, found {units!r}."
        )
    out = check_output_path(out, (".npy", ".npz")) if out is not None else None
    _, prep, fabric, model, part, bs = _open_split(
        run_dir, data, data_format, split, accelerator, batch_size
    )
    preds, targets = [], []
    for x, y in DataLoader(part, batch_size=bs):
        pred = forward_eval(fabric, model, fabric.to_device(x)).float().cpu()  # scaled units
        preds.append(pred)
        targets.append(y)
    if not preds:
        raise ConfigError(f"{prep.dataset.source}: the {split} split has no windows.")
    prediction, target = _in_units(torch.cat(preds), torch.cat(targets), prep, units)
    _check_finite(bool(np.isfinite(prediction).all()), prep, run_dir, split)
    if out is not None:
        with atomic_output(out) as tmp, tmp.open("wb") as fh:
            if out.suffix == ".npz":
                np.savez(fh, prediction=prediction, target=target,
                         start=np.asarray(part.starts), units=np.asarray(UNITS[units]))  # fmt: skip
            else:
                np.save(fh, prediction)
    return {
        "path": str(out) if out is not None else None,
        "units": UNITS[units],
        "shape": list(prediction.shape),
        "windows": len(part),
        "split": split,
        "prediction": prediction,
        "target": target,
        "start": np.asarray(part.starts),
    }


def _in_units(
    pred: torch.Tensor, y: torch.Tensor, prep: PreparedData, units: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, target)`` in ``units`` from model outputs (always scaled) and targets
    (data units under raw-metric protocols, scaled under the others)."""
    scaler = prep.scaler
    raw_targets = prep.protocol.metrics_space == "raw"
    if units == "data":
        pred = scaler.inverse_transform(pred)
        y = y if raw_targets else scaler.inverse_transform(y)
    elif raw_targets:
        y = scaler.transform(y)
    return pred.float().numpy(), y.float().numpy()
