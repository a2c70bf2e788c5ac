"""Masked metrics (BasicTS definitions), a streaming per-horizon evaluator and masked losses.

Mask (``m``): entries whose target is a real reading --

- null value 0 (traffic): ``~isclose(target, 0, atol=5e-5)``;
- null value NaN: ``isfinite(target)``;
- NaN and ±inf targets are *always* masked out (BasicTS counts NaN in the denominator with a
  zero error when the null value is 0; here they are excluded, the only difference). An
  infinite target is never a reading: it would make every sum infinite.

``MAE = Σ|e|·m / Σm``, ``MSE = Σe²·m / Σm``, ``RMSE = sqrt(MSE)``,
``MAPE = Σ|e / target|·m' / Σm'`` with ``m'`` also excluding ``target ≈ 0`` (returned as a
fraction by the functions, shown in % by the evaluator). When ``Σm = 0`` the value is ``0.0``,
never NaN.

The :class:`StreamingEvaluator` keeps float64 sums and counts per horizon step over the whole
test set, so batches are weighted by their number of valid entries (never a mean of per-batch
means) and the batch size does not change the result. It reports overall, at the chosen
horizons (:meth:`~StreamingEvaluator.compute`) and at every step
(:meth:`~StreamingEvaluator.compute_per_step`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from linearcast.errors import ConfigError, DataError

Array = torch.Tensor | np.ndarray
NULL_ATOL = 5e-5
METRIC_NAMES = ("MAE", "RMSE", "MAPE", "MSE")
SUM_ROWS = 6  # rows of StreamingEvaluator.sums()


def _as_tensor(x: Array | float) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x))


def _pair(pred: Array, target: Array) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_tensor(pred), _as_tensor(target)
    if p.shape != t.shape:
        raise DataError(
            f"metrics: expected prediction and target of the same shape, found "
            f"{tuple(p.shape)} and {tuple(t.shape)}."
        )
    if not p.is_floating_point():
        p = p.float()
    if not t.is_floating_point():
        t = t.to(p.dtype)
    return p, t


def null_mask(target: Array, null_value: float = 0.0) -> torch.Tensor:
    """Boolean mask of valid targets (see the module docstring).

    Args:
        target: any shape.
        null_value: 0.0 (or another number) or NaN.

    Returns:
        Boolean tensor shaped like ``target``.
    """
    t = _as_tensor(target)
    valid = torch.isfinite(t)
    if not math.isnan(null_value):
        null = torch.full_like(t, float(null_value))
        valid &= ~torch.isclose(t, null, atol=NULL_ATOL, rtol=0.0)
    return valid


def _clean(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # NaN targets at masked entries would give NaN gradients through where(); zero them first
    return torch.where(mask, t, torch.zeros_like(t))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # where() (not multiply) so NaN/inf at masked entries cannot leak into the sum
    count = mask.sum()
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def masked_mae(pred: Array, target: Array, null_value: float = 0.0) -> torch.Tensor:
    """Masked mean absolute error.

    Args:
        pred: predictions, any shape (e.g. ``[B, T, N, 1]``); torch or numpy.
        target: same shape.
        null_value: 0.0 or NaN.

    Returns:
        0-dim tensor (0.0 when no entry is valid).
    """
    p, t = _pair(pred, target)
    mask = null_mask(t, null_value)
    return _masked_mean((p - _clean(t, mask)).abs(), mask)


def masked_mse(pred: Array, target: Array, null_value: float = 0.0) -> torch.Tensor:
    """Masked mean squared error (shapes as :func:`masked_mae`)."""
    p, t = _pair(pred, target)
    mask = null_mask(t, null_value)
    return _masked_mean((p - _clean(t, mask)) ** 2, mask)


def masked_rmse(pred: Array, target: Array, null_value: float = 0.0) -> torch.Tensor:
    """Square root of :func:`masked_mse` over the whole array (not a mean of per-row RMSEs)."""
    return torch.sqrt(masked_mse(pred, target, null_value))


def masked_mape(pred: Array, target: Array, null_value: float = 0.0) -> torch.Tensor:
    """Masked mean absolute percentage error, as a fraction (×100 for %).

    Entries with ``target ≈ 0`` (atol 5e-5) are excluded as well as null ones.
    """
    p, t = _pair(pred, target)
    mask = null_mask(t, null_value) & ~torch.isclose(
        t, torch.zeros_like(t), atol=NULL_ATOL, rtol=0.0
    )
    safe = torch.where(mask, t, torch.ones_like(t))
    return _masked_mean(((p - safe) / safe).abs(), mask)


# ---------------------------------------------------------------------------- losses
def masked_mae_loss(
    pred: torch.Tensor, target: torch.Tensor, null_value: float = 0.0
) -> torch.Tensor:
    """Training loss: :func:`masked_mae` (differentiable; zero with zero gradient if all null)."""
    return masked_mae(pred, target, null_value)


def masked_mse_loss(
    pred: torch.Tensor, target: torch.Tensor, null_value: float = 0.0
) -> torch.Tensor:
    """Training loss: :func:`masked_mse`."""
    return masked_mse(pred, target, null_value)


def huber_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    delta: float = 1.0,
    null_value: float | None = None,
) -> torch.Tensor:
    """Huber loss; STAEformer trains PEMS0x with ``nn.HuberLoss(delta=1)`` *unmasked*.

    Args:
        pred: predictions (raw units for the ``pems`` protocol).
        target: same shape.
        delta: switch point between the quadratic and linear parts.
        null_value: ``None`` for STAEformer's unmasked loss; a number or NaN to mask null
            targets (NaN and ±inf targets are masked in either case).

    Returns:
        0-dim tensor.
    """
    p, t = _pair(pred, target)
    mask = torch.isfinite(t) if null_value is None else null_mask(t, null_value)
    err = (p - torch.where(mask, t, p)).abs()
    quad = torch.clamp(err, max=delta)
    loss = 0.5 * quad**2 + delta * (err - quad)
    return _masked_mean(loss, mask)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "masked_mae": masked_mae_loss,
    "masked_mse": masked_mse_loss,
    "huber": huber_loss,
    "mse": lambda pred, target, null_value=float("nan"): masked_mse_loss(pred, target, null_value),
    "mae": lambda pred, target, null_value=float("nan"): masked_mae_loss(pred, target, null_value),
}


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    """Loss by name: ``masked_mae``, ``masked_mse``, ``huber``, ``mse``, ``mae``.

    ``mse``/``mae`` only skip NaN targets (LTSF); the ``masked_*`` ones also skip ``null_value``
    (default 0). ``huber`` is unmasked unless given ``null_value``.
    """
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}.")
    return LOSSES[name]


# ---------------------------------------------------------------------------- streaming
class StreamingEvaluator:
    """Accumulate masked metrics over batches; report overall and per horizon step.

    Args:
        horizons: 1-indexed steps reported on their own (``(3, 6, 12)``: 15/30/60 minutes at
            5-minute steps); steps beyond the prediction length are skipped.
        null_value: 0.0 or NaN.

    Examples:
        >>> ev = StreamingEvaluator()
        >>> for x, y in loader:  # doctest: +SKIP
        ...     ev.update(model(x), y)
        >>> ev.compute()["horizon_3"]["MAE"]  # doctest: +SKIP
    """

    def __init__(
        self,
        horizons: Sequence[int] = (3, 6, 12),
        null_value: float = 0.0,
        mape_floor: float = NULL_ATOL,
    ) -> None:
        if any(h < 1 for h in horizons):
            raise ConfigError(f"horizons are 1-indexed steps >= 1, found {tuple(horizons)}.")
        if not mape_floor >= 0:
            raise ConfigError(f"mape_floor must be >= 0, found {mape_floor!r}.")
        self.horizons = tuple(int(h) for h in horizons)
        self.null_value = float(null_value)
        self.mape_floor = float(mape_floor)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.steps: int | None = None
        # (6, T): Σ|e|, Σe², Σ|e/y|, valid count, MAPE count, all targets
        self._sums: torch.Tensor | None = None

    def update(self, pred: Array, target: Array) -> None:
        """Add one batch.

        Args:
            pred: ``[B, T, N]`` or ``[B, T, N, C]`` predictions (same units as ``target``).
            target: same shape.
        """
        p, t = _pair(pred, target)
        if p.ndim < 2:
            raise DataError(
                f"evaluator: expected [B, T, ...] with the horizon on axis 1, "
                f"found shape {tuple(p.shape)}."
            )
        steps = p.shape[1]
        if self.steps is None:
            self.steps = steps
        elif steps != self.steps:
            raise DataError(
                f"evaluator: expected {self.steps} horizon steps (as in earlier batches), "
                f"found {steps}."
            )
        p64 = p.detach().to(torch.float64).transpose(0, 1).reshape(steps, -1)  # (T, B·N·C)
        t64 = t.detach().to(torch.float64).transpose(0, 1).reshape(steps, -1)
        mask = null_mask(t64, self.null_value)
        ape_mask = mask & (t64.abs() > self.mape_floor)  # near-zero targets would dominate
        err = p64 - t64
        zero = torch.zeros_like(err)
        abs_e = torch.where(mask, err.abs(), zero).sum(1)
        sq_e = torch.where(mask, err * err, zero).sum(1)
        ape = torch.where(ape_mask, (err / torch.where(ape_mask, t64, 1.0)).abs(), zero).sum(1)
        entries = torch.full_like(abs_e, float(t64.shape[1]))
        stats = torch.stack(
            [
                abs_e,
                sq_e,
                ape,
                mask.sum(1).to(torch.float64),
                ape_mask.sum(1).to(torch.float64),
                entries,
            ]
        ).cpu()
        self._sums = stats if self._sums is None else self._sums + stats

    def merge(self, other: StreamingEvaluator) -> None:
        """Add another evaluator's sums (e.g. gathered from other processes)."""
        if other._sums is None:
            return
        if self._sums is None:
            self.steps, self._sums = other.steps, other._sums.clone()
            return
        if other.steps != self.steps:
            raise DataError(f"evaluator: cannot merge {other.steps} steps into {self.steps}.")
        self._sums = self._sums + other._sums

    def sums(self, steps: int | None = None) -> torch.Tensor:
        """The accumulated sums, ``[6, T]`` float64: Σ|e|, Σe², Σ|e/y|, valid count, MAPE count,
        all targets (valid or masked).

        Summing these across processes (``all_reduce``) and :meth:`load_sums` gives the
        globally weighted metrics. ``steps`` gives the shape to return before any update.
        """
        if self._sums is None:
            if steps is None:
                raise DataError("evaluator: no batch seen yet; pass steps= to get zero sums.")
            return torch.zeros(SUM_ROWS, steps, dtype=torch.float64)
        return self._sums.clone()

    def load_sums(self, sums: torch.Tensor) -> None:
        """Replace the state by ``sums`` (as returned by :meth:`sums`, e.g. reduced)."""
        if sums.dim() != 2 or sums.shape[0] != SUM_ROWS:
            raise DataError(f"evaluator: sums must be [{SUM_ROWS}, T]; found {tuple(sums.shape)}.")
        self.steps = int(sums.shape[1])
        self._sums = sums.detach().to(torch.float64).cpu().clone()

    @property
    def count(self) -> int:
        """Valid entries seen so far."""
        return 0 if self._sums is None else int(self._sums[3].sum())

    @property
    def masked_fraction(self) -> float:
        """Fraction of the targets seen that the null rule masked (0 before any update)."""
        if self._sums is None or float(self._sums[5].sum()) == 0:
            return 0.0
        return 1.0 - float(self._sums[3].sum()) / float(self._sums[5].sum())

    @staticmethod
    def _metrics(s: torch.Tensor) -> dict[str, float]:
        abs_e, sq_e, ape, cnt, cnt_ape, _ = (float(v) for v in s)
        mse = sq_e / cnt if cnt > 0 else 0.0
        return {
            "MAE": abs_e / cnt if cnt > 0 else 0.0,
            "RMSE": math.sqrt(mse),
            "MAPE": 100.0 * ape / cnt_ape if cnt_ape > 0 else 0.0,
            "MSE": mse,
        }

    def compute(self) -> dict[str, dict[str, float]]:
        """Metrics over everything seen.

        Returns:
            ``{"overall": {"MAE", "RMSE", "MAPE" (%), "MSE"}, "horizon_3": {...}, ...}``;
            all zeros (not NaN) when nothing valid was seen.
        """
        if self._sums is None:
            zero = dict.fromkeys(METRIC_NAMES, 0.0)
            return {"overall": zero} | {f"horizon_{h}": dict(zero) for h in self.horizons}
        out = {"overall": self._metrics(self._sums.sum(1))}
        for h in self.horizons:
            if self.steps is not None and h <= self.steps:
                out[f"horizon_{h}"] = self._metrics(self._sums[:, h - 1])
        return out

    def compute_per_step(self) -> dict[str, list[float]]:
        """Metrics at every horizon step, with the weights that aggregate them.

        Returns:
            ``{"MAE", "RMSE", "MAPE" (%), "MSE", "count", "count_MAPE"}``, each a list of
            ``T`` values (step 1 first; ``[]`` before any update). ``count`` is the number of
            valid targets at the step and ``count_MAPE`` those MAPE scores: the overall MAE
            and MSE are the ``count``-weighted means of the per-step values, the overall
            MAPE the ``count_MAPE``-weighted mean, the overall RMSE ``sqrt`` of the overall
            MSE (not a mean of per-step RMSEs). Steps with no valid target read 0.0.
        """
        out: dict[str, list[float]] = {k: [] for k in (*METRIC_NAMES, "count", "count_MAPE")}
        if self._sums is None:
            return out
        for t in range(self._sums.shape[1]):
            for key, value in self._metrics(self._sums[:, t]).items():
                out[key].append(value)
            out["count"].append(float(self._sums[3, t]))
            out["count_MAPE"].append(float(self._sums[4, t]))
        return out

    def format_table(self, title: str | None = None) -> str:
        """The results as an aligned text table (MAPE in %)."""
        res = self.compute()
        lines = [title] if title else []
        lines.append(f"{'':<12}{'MAE':>10}{'RMSE':>10}{'MAPE(%)':>10}{'MSE':>12}")
        for key, m in res.items():
            label = key.replace("_", " ")
            lines.append(
                f"{label:<12}{m['MAE']:>10.4f}{m['RMSE']:>10.4f}{m['MAPE']:>10.3f}{m['MSE']:>12.4f}"
            )
        return "\n".join(lines)


MaskedMetricAccumulator = StreamingEvaluator
