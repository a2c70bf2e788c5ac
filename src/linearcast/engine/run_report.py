"""What a run tells its user: the lines it prints, the contents of ``metrics.json``, the
baseline row.

The trainer calls these; they read a :class:`~linearcast.engine.run_state.RunState` and return
text or data, so the loop in :mod:`linearcast.engine.trainer` stays a loop. The files are
written by :mod:`~linearcast.engine.run_files`, the divergence message is
:mod:`~linearcast.engine.divergence`'s.
"""

from __future__ import annotations

import math
import platform
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from linearcast.data.prepared import SPLITS
from linearcast.data.scaler import valid_mask
from linearcast.engine.checkpoint import EarlyStopping
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import (
    EvalResult,
    evaluate,
    format_metrics_table,
    table_columns,
)
from linearcast.engine.run_state import RunState
from linearcast.engine.setup import dataset_label

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData


# ---------------------------------------------------------------------- printed lines
def masking_text(prep: PreparedData, frac: float | None = None) -> str:
    """The header line saying which share of the targets of each split is missing (NaN, ±inf or
    the null value), hence masked in the loss and the metrics and filled in the inputs.

    Args:
        prep: the prepared data (its rows give the shares, each reading counted once).
        frac: the test share when the caller computed it already (``prep``'s otherwise).
    """
    shares = {part: prep.missing_shares(part) for part in SPLITS}
    if frac is not None:
        shares["test"] = shares["test"] | {"masked": frac}
    null = None if math.isnan(prep.null_value) else f"{prep.null_value:g}"
    test = shares["test"]
    kinds = f"{100 * test['non_finite']:.1f}% NaN/inf"
    if null is not None:
        kinds += f", {100 * test['null']:.1f}% equal to the null value {null}"
    others = ", ".join(f"{k} {100 * shares[k]['masked']:.1f}%" for k in ("train", "val"))
    text = (
        f"targets   {100 * test['masked']:.1f}% of the test targets are missing ({kinds}) and "
        f"masked, not scored ({others}); missing inputs are filled "
        f"({_FILLS[prep.protocol.input_fill]})"
    )
    if prep.protocol.metrics_space == "raw":
        text += f"; MAPE also leaves out |y| <= {prep.mape_floor:.3g}"
    return text


_FILLS = {
    "last": "last observation, else the training mean",
    "mean": "the training mean",
    "keep": "null readings read as values, NaN/inf by the last observation",
}


def missing_shares(prep: PreparedData) -> dict[str, dict[str, float]]:
    """``metrics.json``'s ``missing``: per split, the share of the targets masked, and of those
    NaN/±inf and equal to the null value (rows the split owns, each reading counted once)."""
    return {part: prep.missing_shares(part) for part in SPLITS}


def model_line(name: str, facts: dict[str, Any], n_params: dict[str, int]) -> str:
    """The header line naming the model, its family and parameter counts."""
    return (
        f"model     {name} ({facts['family']}): {n_params['trainable']:,} trainable "
        f"parameters ({n_params['total']:,} in all) -- {facts['description']}"
    )


def set_up_lines(config: TrainConfig, run: RunState, *, resumed: bool) -> list[str]:
    """The header lines after the model's: loss and optimizer, devices, run directory."""
    cfg, fabric = config, run.fabric
    lines = [
        f"loss      {run.loss_fn}; optimizer {cfg.optimizer if run.trainable else 'none'}",
        f"device    {fabric.device} x {fabric.world_size} process(es), precision "
        f"{cfg.precision}, strategy {cfg.strategy}",
        f"run dir   {run.run_dir}",
    ]
    if resumed:
        lines.append(f"resume    from epoch {run.start_epoch - 1} (global step {run.global_step})")
    return lines


def progress_bar(enabled: bool, total: int, desc: str) -> Any:
    """A tqdm bar when ``enabled`` (rank 0 asked for progress), else None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def epoch_line(
    row: dict[str, Any], max_epochs: int, improved: bool, metrics_space: str = "raw"
) -> str:
    """The line printed after an epoch (``*`` when the validation loss improved)."""
    text = f"epoch {row['epoch']:>3}/{max_epochs}  train {row['train_loss']:.4f}"
    if "val_loss" in row:
        if metrics_space == "scaled":  # MAPE of standardised values means nothing
            text += f"  val {row['val_loss']:.4f} (MAE {row['val_MAE']:.4f})"
        else:
            text += (
                f"  val {row['val_loss']:.4f} (MAE {row['val_MAE']:.3f}, RMSE "
                f"{row['val_RMSE']:.3f}, MAPE {row['val_MAPE']:.2f}%)"
            )
    text += f"  lr {row['lr']:.2e}  {row['seconds']:.1f}s"
    return text + ("  *" if improved else "")


def early_stop_line(stopper: EarlyStopping) -> str:
    """The line saying why the epochs ended early."""
    return (
        f"early stop: no better validation loss for {stopper.bad_epochs} epochs; "
        f"best epoch {stopper.best_epoch} (val loss {stopper.best:.4f})"
    )


def results_table(metrics: dict[str, Any]) -> str:
    """The test table: the model and the baseline, overall and per horizon."""
    rows = {metrics["model"]: metrics["test"]}
    if metrics.get("baseline"):
        rows[metrics["baseline"]["model"]] = metrics["baseline"]["test"]
    space = metrics.get("metrics_space", "raw")
    units = "data units" if space == "raw" else "standardised units"
    title = (
        f"test metrics on {metrics['dataset']['name']} under {metrics['protocol']} "
        f"({metrics['test_windows']} windows, {units})"
    )
    return format_metrics_table(rows, title=title, columns=table_columns(space))


# ---------------------------------------------------------------------- the baseline
def floor_model(config: TrainConfig, fabric: Fabric, prep: PreparedData) -> nn.Module | None:
    """The baseline model (``config.baseline``) on the device; None without one."""
    name = config.baseline
    if not name:
        return None
    from linearcast.models import build

    p = prep.protocol
    floor = build(name, num_nodes=prep.num_nodes, in_steps=p.in_steps, out_steps=p.out_steps)
    module: nn.Module = fabric.to_device(floor)
    return module


def baseline_row(
    config: TrainConfig, fabric: Fabric, prep: PreparedData, loader: Any
) -> dict[str, Any] | None:
    """The floor on the same test windows (``config.baseline``, last value by default)."""
    floor = floor_model(config, fabric, prep)
    if floor is None:
        return None
    result: EvalResult = evaluate(fabric, floor, loader, prep, max_batches=config.max_eval_batches)
    return {"model": config.baseline, "test": result.metrics,
            "test_per_step": result.per_step}  # fmt: skip


# ---------------------------------------------------------------------- undefined metrics
def metric_notes(prep: PreparedData, test: EvalResult) -> list[str]:
    """One sentence per way the test metrics do not cover or define something, for the
    ``linearcast: warning:`` lines and ``metrics.json``'s ``warnings`` (empty when all is well).

    Covers series whose test targets are all masked (no metric scores them), series MAPE
    leaves out (every target within ``mape_floor`` of 0), series constant over the training
    rows in a standardised protocol (std 0: their errors stay in data units), no scored target
    at all (the metrics then read 0), and non-finite metric values (written as ``null``).
    """
    notes: list[str] = []
    p = prep.protocol
    n = prep.num_nodes
    names = list(prep.dataset.node_names or [f"series {i}" for i in range(n)])
    valid, scored_ape, _, _ = _series_stats(prep, "test")
    some = valid > 0

    def listed(mask: np.ndarray) -> str:
        picked = [names[i] for i in np.flatnonzero(mask)]
        more = f" and {len(picked) - 5} more" if len(picked) > 5 else ""
        return ", ".join(picked[:5]) + more

    null = "NaN" if math.isnan(prep.null_value) else f"{prep.null_value:g}"
    if not some.any():
        notes.append(
            f"no test target is scored (every one is NaN or the null value {null}), so the test "
            f"metrics read 0 and measure nothing; check the split and "
            f"--set protocol_overrides.null_value"
        )
    elif not some.all():
        notes.append(
            f"{int((~some).sum())} of {n} series have every test target masked (NaN or the "
            f"null value {null}), so no test metric covers them: {listed(~some)}"
        )
    if p.metrics_space == "raw" and some.any() and (some & (scored_ape == 0)).any():
        notes.append(
            f"MAPE is undefined for {listed(some & (scored_ape == 0))}: every test target is "
            f"within {prep.mape_floor:.3g} of 0, so MAPE leaves them out (MAE and RMSE cover them)"
        )
    if p.metrics_space == "scaled":
        _, _, low, high = _series_stats(prep, "train")
        flat = np.isfinite(low) & (low == high)
        if flat.any():
            notes.append(
                f"{listed(flat)}: constant over the training rows (std 0), so the scaler "
                f"divides by 1 and their standardised errors are in data units"
            )
    for key, values in test.metrics.items():
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            notes.append(
                f"test {', '.join(bad)} ({key.replace('_', ' ')}) not finite, written as null: "
                f"the forecasts hold NaN or infinite values"
            )
            break
    return notes


def _series_stats(
    prep: PreparedData, part: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per series over the rows ``part`` owns: valid targets, those MAPE scores, the smallest
    and largest valid value (``inf``/``-inf`` without one); each ``[N]``. Chunked (memmaps)."""
    a, b = prep.split_rows.get(part, (0, 0))
    values = prep.dataset.values
    ch, n = prep.protocol.target_channel, prep.num_nodes
    valid, ape = np.zeros(n, np.int64), np.zeros(n, np.int64)
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    step = max(1, (1 << 20) // max(n, 1))
    for start in range(a, b, step):
        rows = np.asarray(values[start : min(start + step, b), :, ch], dtype=np.float64)
        ok = valid_mask(rows, prep.null_value) & np.isfinite(rows)
        valid += ok.sum(0)
        ape += (ok & (np.abs(rows) > prep.mape_floor)).sum(0)
        low = np.minimum(low, np.where(ok, rows, np.inf).min(0))
        high = np.maximum(high, np.where(ok, rows, -np.inf).max(0))
    return valid, ape, low, high


# ---------------------------------------------------------------------- metrics.json
def peak_memory(fabric: Fabric) -> dict[str, Any]:
    """The peak memory of the run: CUDA's max allocated, else this process's peak RSS."""
    if fabric.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(fabric.device)
        return {"kind": "cuda_max_allocated", "MiB": peak / 2**20}
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10
    return {"kind": "process_peak_rss_rank0", "MiB": rss_kib * scale}


def run_metrics(
    config: TrainConfig,
    run: RunState,
    *,
    test: EvalResult,
    val_best: EvalResult,
    baseline: dict[str, Any] | None,
    ddp_counts: torch.Tensor,
) -> dict[str, Any]:
    """The contents of ``metrics.json`` (``ddp_counts``: ``[world, 2]`` windows, Σ targets)."""
    cfg, fabric, prep, history = config, run.fabric, run.prep, run.history
    epoch_seconds = run.epoch_seconds
    return {
        "model": cfg.model,
        "model_family": run.facts["family"],
        "parameters": run.n_params,
        "dataset": {
            "name": dataset_label(prep),
            "source": prep.dataset.source,
            "shape": list(prep.dataset.shape),
            "synthetic": bool(prep.dataset.meta.get("synthetic", False)),
            # where the data was, whatever the directory (config.json keeps the path as given)
            "file": str(prep.dataset.path.resolve()) if prep.dataset.path is not None else None,
        },
        "protocol": prep.protocol.label,
        "protocol_name": prep.protocol.name,
        "metrics_space": prep.protocol.metrics_space,
        "windows": prep.counts,
        "loss": repr(run.loss_fn),
        "epochs": len(history),
        "best_epoch": run.stopper.best_epoch,
        "stopped_early": run.stopper.should_stop,
        "seconds_per_epoch": epoch_seconds,
        "mean_epoch_seconds": float(np.mean(epoch_seconds)) if epoch_seconds else 0.0,
        "total_seconds": time.perf_counter() - run.started,
        "peak_memory": peak_memory(fabric),
        "device": str(fabric.device),
        "world_size": fabric.world_size,
        "precision": cfg.precision,
        "val": val_best.metrics,
        "val_loss": val_best.loss,
        "val_windows": val_best.windows,
        "test": test.metrics,
        "test_per_step": test.per_step,
        "test_windows": test.windows,
        "null_value": prep.null_value,
        "masked_fraction": {
            "train": prep.masked_fraction("train"),
            "val": val_best.masked_fraction,
            "test": test.masked_fraction,
        },
        "missing": missing_shares(prep),
        "input_fill": prep.protocol.input_fill,
        "mape_floor": prep.mape_floor,
        "mean_epoch_cpu_seconds": (
            float(np.mean([r["cpu_seconds"] for r in history if "cpu_seconds" in r]))
            if any("cpu_seconds" in r for r in history)
            else None
        ),
        "baseline": baseline,
        "train_windows_per_rank": [int(v) for v in ddp_counts[:, 0]],
        "train_target_sum_per_rank": [float(v) for v in ddp_counts[:, 1]],
        "host": platform.node(),
        "warnings": metric_notes(prep, test),
    }
