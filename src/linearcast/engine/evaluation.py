"""Validation and test passes, exact across processes.

Each process evaluates its own shard of the windows
(:class:`~linearcast.engine.samplers.ShardSampler`: no padding, no duplicates; a distributed
sampler would repeat windows to even out the shards and bias the metrics). The
:class:`~linearcast.metrics.StreamingEvaluator` keeps float64 sums per horizon step; the sums of
all processes are added with one ``all_reduce``, so the DDP result equals a single-process
evaluation of the same weights (up to float32 forward-pass rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from linearcast.metrics import SUM_ROWS, StreamingEvaluator

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from linearcast.data import PreparedData
    from linearcast.engine.setup import LossFn


def unit_converter(prep: PreparedData) -> Callable[[Tensor], Tensor]:
    """Map model outputs (scaled units) to the units of ``y``.

    ``raw`` protocols: inverse-transform with the training scaler (loss and metrics in data
    units, as STAEformer and BasicTS do); ``scaled`` protocols: identity. Always float32 or
    wider, so that a bf16 forward pass does not round the loss.
    """
    scaler = prep.scaler
    raw = prep.protocol.metrics_space == "raw"

    def convert(pred: Tensor) -> Tensor:
        pred = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
        return scaler.inverse_transform(pred) if raw else pred

    return convert


def teacher_targets(prep: PreparedData) -> Callable[[Tensor], Tensor]:
    """Map targets (the units of ``y``) to the model's scaled units: what a model that reads
    the truth while training (``ModelSpec.takes_targets``) is given. The inverse of
    :func:`unit_converter`; missing targets stay NaN."""
    scaler = prep.scaler
    raw = prep.protocol.metrics_space == "raw"

    def convert(y: Tensor) -> Tensor:
        return scaler.transform(y) if raw else y

    return convert


def forward_eval(fabric: Fabric, module: nn.Module, x: Tensor) -> Tensor:
    """Forward pass without gradients on the unwrapped module, with Fabric's precision.

    The DDP wrapper is bypassed on purpose: processes evaluate different numbers of batches,
    and a wrapped forward may synchronise buffers (a collective each process must join).
    """
    precision = fabric.strategy.precision
    x = precision.convert_input(x)
    with torch.no_grad(), precision.forward_context():
        out = module(x)
    return precision.convert_output(out)


@dataclass
class EvalResult:
    """Metrics of one pass over a split (all processes together).

    Attributes:
        metrics: ``{"overall": {"MAE", "RMSE", "MAPE", "MSE"}, "horizon_3": {...}, ...}``.
        loss: the training loss over the split, weighted by kept entries (NaN without one).
        windows: windows evaluated (all processes).
        masked_fraction: fraction of the targets the null rule masked (not scored).
        per_step: every horizon step's metrics and weights,
            :meth:`~linearcast.metrics.StreamingEvaluator.compute_per_step` (``{"MAE": [T_out
            values], "RMSE", "MAPE", "MSE", "count", "count_MAPE"}``).
    """

    metrics: dict[str, dict[str, float]]
    loss: float
    windows: int
    masked_fraction: float = 0.0
    per_step: dict[str, list[float]] = field(default_factory=dict)


def all_reduce_sum(fabric: Fabric, tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all processes (a collective); returned on the CPU."""
    if fabric.world_size == 1:
        return tensor.detach().cpu()
    out = fabric.all_reduce(tensor, reduce_op="sum")
    assert isinstance(out, Tensor)
    return out.detach().cpu()


def all_finite(fabric: Fabric, value: Tensor) -> bool:
    """Whether ``value`` is finite on every rank (so that all ranks stop together)."""
    bad = (~torch.isfinite(value.detach())).to(torch.float64).reshape(1).cpu()
    if fabric.world_size > 1:
        bad = all_reduce_sum(fabric, bad)
    return bool(bad.item() == 0)


def non_finite_weights(fabric: Fabric, module: nn.Module) -> list[str]:
    """Names of ``module``'s floating-point parameters and buffers holding NaN or ±inf (a
    collective: a tensor bad on any rank makes every rank's list non-empty, so all stop)."""
    bad = [
        name
        for name, t in module.state_dict().items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if fabric.world_size > 1 and not all_finite(fabric, torch.tensor(math.inf if bad else 0.0)):
        return bad or ["(on another process)"]
    return bad


def non_finite_data(batches: Iterable[tuple[Tensor, Tensor]], max_batches: int = 0) -> list[int]:
    """``[inputs, targets, windows with any, windows]``: non-finite entries a loss would read.

    Inputs count NaN and ±inf (a model cannot read either); targets count ±inf only, since NaN
    targets are always masked out of losses and metrics.

    Args:
        batches: ``(x [B, T_in, N, C_in], y [B, T_out, N, C])`` pairs, e.g. a loader.
        max_batches: stop after this many (0: all).
    """
    n_x = n_y = bad = windows = 0
    for i, (x, y) in enumerate(batches):
        if max_batches and i >= max_batches:
            break
        bad_x = ~torch.isfinite(x.detach()).reshape(x.shape[0], -1)
        bad_y = torch.isinf(y.detach()).reshape(y.shape[0], -1)
        n_x += int(bad_x.sum())
        n_y += int(bad_y.sum())
        bad += int((bad_x.any(1) | bad_y.any(1)).sum())
        windows += int(x.shape[0])
    return [n_x, n_y, bad, windows]


def _evaluator_sums(ev: StreamingEvaluator, steps: int) -> Tensor:
    return ev.sums(steps)


def _set_evaluator_sums(ev: StreamingEvaluator, sums: Tensor, steps: int) -> None:
    assert sums.shape[-1] == steps
    ev.load_sums(sums)


def evaluate(
    fabric: Fabric,
    module: nn.Module,
    loader: Any,
    prep: PreparedData,
    *,
    loss_fn: LossFn | None = None,
    max_batches: int = 0,
) -> EvalResult:
    """Run ``module`` over ``loader`` (this process's shard) and combine all processes.

    Every process must call this (it ends with collectives).

    Args:
        fabric: the Fabric instance.
        module: the unwrapped model (eval mode is set here).
        loader: a Fabric-set-up DataLoader over a :class:`ShardSampler`.
        prep: the prepared data (scaler, protocol, null value).
        loss_fn: also compute this loss over the split.
        max_batches: stop after this many batches (0: all).

    Returns:
        An :class:`EvalResult`.
    """
    module.eval()
    protocol = prep.protocol
    to_units = unit_converter(prep)
    ev = StreamingEvaluator(
        horizons=protocol.horizons, null_value=prep.target_null, mape_floor=prep.mape_floor
    )
    loss_sum = torch.zeros((), dtype=torch.float64)
    loss_count = torch.zeros((), dtype=torch.float64)
    windows = 0
    for i, (x, y) in enumerate(loader):
        if max_batches and i >= max_batches:
            break
        pred = to_units(forward_eval(fabric, module, x))  # (B, T_out, N, C)
        ev.update(pred, y)
        windows += int(x.shape[0])
        if loss_fn is not None:
            n = loss_fn.count(y)
            loss_sum += loss_fn(pred, y).detach().double().cpu() * n.double().cpu()
            loss_count += n.double().cpu()
    steps = protocol.out_steps
    # one all_reduce: evaluator sums (6, T), loss sum/count and window count
    local = torch.cat(
        [
            _evaluator_sums(ev, steps).flatten(),
            torch.stack([loss_sum, loss_count, torch.tensor(float(windows), dtype=torch.float64)]),
        ]
    )
    total = all_reduce_sum(fabric, local)
    sums = total[: SUM_ROWS * steps].reshape(SUM_ROWS, steps)
    _set_evaluator_sums(ev, sums, steps)
    ls, lc, w = (float(v) for v in total[SUM_ROWS * steps :])
    loss = ls / lc if lc > 0 else math.nan
    if loss_fn is not None and lc == 0:
        loss = 0.0
    return EvalResult(
        metrics=ev.compute(),
        loss=loss,
        windows=int(w),
        masked_fraction=ev.masked_fraction,
        per_step=ev.compute_per_step(),
    )


def format_metrics_table(
    rows: dict[str, dict[str, dict[str, float]]],
    *,
    title: str = "",
    columns: tuple[str, ...] = ("MAE", "RMSE", "MAPE"),
) -> str:
    """An aligned table: one row per (model, horizon), one column per metric.

    Args:
        rows: ``{label: metrics}`` where ``metrics`` is an :class:`EvalResult` metrics dict.
        title: first line.
        columns: metric names (``MAE``, ``RMSE``, ``MAPE`` (shown in %), ``MSE``).
    """
    width = max([12, *(len(k) + 2 for k in rows)])
    heads = "".join(f"{c + '(%)' if c == 'MAPE' else c:>10}" for c in columns)
    lines = [title] if title else []
    lines.append(f"{'model':<{width}}{'horizon':<12}{heads}")
    for label, metrics in rows.items():
        for key, m in metrics.items():
            cells = "".join(f"{m[c]:>10.3f}" if c == "MAPE" else f"{m[c]:>10.4f}" for c in columns)
            lines.append(f"{label:<{width}}{key.replace('_', ' '):<12}{cells}")
    return "\n".join(lines)


def table_columns(metrics_space: str) -> tuple[str, ...]:
    """Traffic tables report MAE/RMSE/MAPE in data units; LTSF tables MSE/MAE (standardised)."""
    return ("MSE", "MAE") if metrics_space == "scaled" else ("MAE", "RMSE", "MAPE")
