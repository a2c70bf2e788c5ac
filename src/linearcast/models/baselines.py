"""Cheap, honest floors that every result table includes.

All baselines follow the model contract: ``x: [B, T_in, N, C_in]`` (channel 0 = the scaled target,
other channels ignored) → ``[B, T_out, N, 1]`` in the same (scaled) units; N = nodes or series.

- :class:`LastValue` — persistence, ``ŷ_{T+h} = x_T``. No parameters.
- :class:`HistoricalAverage` — the mean of the input window. No parameters.
- :class:`SeasonalNaive` — the value one season earlier (a day or a week of steps). No parameters.
- :class:`DLinear` — moving-average decomposition (kernel 25, edge-replicate padding) and two
  linear maps over time (seasonal + trend), shared over series unless ``individual=True``
  (Zeng et al., AAAI 2023).
- :class:`VARBaseline` — a vector autoregression of order ``p`` fitted in closed form by (ridge)
  least squares through ``fit(loader)``; forecasts iteratively. Its coefficients are buffers, so
  it has no trainable parameters and the engine need not train it by gradient.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options

log = logging.getLogger(__name__)


def _target(x: Tensor, model: str, in_steps: int | None = None) -> Tensor:
    """Channel 0 of ``x: [B, T, N, C_in]`` as ``[B, T, N]``, with a clear error on bad shapes."""
    if x.dim() != 4 or (in_steps is not None and x.shape[1] != in_steps):
        want = "T_in" if in_steps is None else f"T_in={in_steps}"
        raise ConfigError(
            f"{model} expects x of shape [B, {want}, N, C_in]; found {tuple(x.shape)}"
        )
    return x[..., 0]


def _check_steps(model: str, in_steps: int, out_steps: int) -> None:
    if in_steps < 1 or out_steps < 1:
        raise ConfigError(
            f"{model} needs in_steps >= 1 and out_steps >= 1; found {in_steps} and {out_steps}"
        )


class LastValue(nn.Module):
    """Persistence: repeat the last observed value over the horizon.

    Args:
        in_steps: T_in (only checked).
        out_steps: T_out.
    """

    def __init__(self, in_steps: int, out_steps: int) -> None:
        super().__init__()
        _check_steps("last-value", in_steps, out_steps)
        self.in_steps, self.out_steps = in_steps, out_steps

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = _target(x, "last-value", self.in_steps)  # (B, T_in, N)
        return z[:, -1:, :, None].expand(-1, self.out_steps, -1, -1)


class HistoricalAverage(nn.Module):
    """The mean of the input window, repeated over the horizon.

    Args:
        in_steps: T_in (only checked).
        out_steps: T_out.
    """

    def __init__(self, in_steps: int, out_steps: int) -> None:
        super().__init__()
        _check_steps("historical-average", in_steps, out_steps)
        self.in_steps, self.out_steps = in_steps, out_steps

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = _target(x, "historical-average", self.in_steps)  # (B, T_in, N)
        return z.mean(dim=1, keepdim=True)[..., None].expand(-1, self.out_steps, -1, -1)


class SeasonalNaive(nn.Module):
    """The value one season earlier: ``ŷ_{T+h} = x_{T+h−k·m}`` with ``k = ceil(h/m)``.

    Args:
        in_steps: T_in; must be at least the season ``m``.
        out_steps: T_out (may exceed the season: the last season is repeated).
        steps_per_day: steps per day of the data (the engine passes the dataset's value). When
            neither it nor ``season`` is known, the season is ``in_steps`` (the forecast repeats
            the input window) and a warning says so.
        period: ``"day"`` (``m = steps_per_day``) or ``"week"`` (``m = 7·steps_per_day``).
        season: ``m`` directly; overrides ``steps_per_day``/``period``.

    Raises:
        ConfigError: the input window is shorter than the season.
    """

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        *,
        steps_per_day: int | None = None,
        period: Literal["day", "week"] = "day",
        season: int | None = None,
    ) -> None:
        super().__init__()
        _check_steps("seasonal-naive", in_steps, out_steps)
        if period not in ("day", "week"):
            raise ConfigError(f"seasonal-naive period must be 'day' or 'week'; found {period!r}")
        if season is not None:
            how = f"season={season}"
        elif steps_per_day is not None:
            if steps_per_day < 1:
                raise ConfigError(f"seasonal-naive needs steps_per_day >= 1; found {steps_per_day}")
            season = steps_per_day * (7 if period == "week" else 1)
            how = f"period={period!r} with steps_per_day={steps_per_day}"
        else:
            season, how = in_steps, "season=in_steps"
            log.warning(
                "seasonal-naive: steps_per_day unknown; using season = in_steps = %d (the "
                "forecast repeats the input window). Pass steps_per_day= or season=",
                in_steps,
            )
        if season < 1:
            raise ConfigError(f"seasonal-naive needs a season >= 1 step; found {season}")
        if in_steps < season:
            raise ConfigError(
                f"seasonal-naive with {how} needs in_steps >= {season} (one season of input); "
                f"found in_steps={in_steps}. Use a longer input window, period='day', or pass "
                "season= / the dataset's steps_per_day="
            )
        self.in_steps, self.out_steps, self.season = in_steps, out_steps, season
        # input index of each horizon step (0-based h): T_in − m + (h mod m)
        idx = in_steps - season + torch.arange(out_steps) % season
        self.register_buffer("index", idx, persistent=False)
        self.index: Tensor

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = _target(x, "seasonal-naive", self.in_steps)  # (B, T_in, N)
        return z[:, self.index, :, None]


class MovingAverage(nn.Module):
    """DLinear's trend: a centred moving average with edge-replicate padding, along dim 1.

    Args:
        kernel_size: window length (odd keeps the output length; even drops one step, as in
            the original DLinear).
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 1:
            raise ConfigError(f"moving-average kernel_size must be >= 1; found {kernel_size}")
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, N] → [B, T, N]`` (``T − 1`` steps for an even kernel)."""
        half = (self.kernel_size - 1) // 2
        padded = torch.cat([x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], 1)
        return F.avg_pool1d(padded.transpose(1, 2), self.kernel_size, stride=1).transpose(1, 2)


def _over_time(z: Tensor, weight: Tensor) -> Tensor:
    """``z: [B, T_in, N]`` times ``weight: [1|N, T_out, T_in]`` over time → ``[B, T_out, N]``."""
    if weight.shape[0] == 1:
        return torch.einsum("bin,ji->bjn", z, weight[0])
    return torch.einsum("bin,nji->bjn", z, weight)


class DLinear(nn.Module):
    """DLinear: ``Linear_s(x − trend) + Linear_t(trend)`` over time, per series.

    Args:
        num_nodes: N (used only when ``individual``).
        in_steps: T_in.
        out_steps: T_out.
        kernel_size: moving-average window (25, as the paper).
        individual: one pair of linear maps per series (ties the model to N).
    """

    def __init__(
        self,
        num_nodes: int,
        in_steps: int,
        out_steps: int,
        *,
        kernel_size: int = 25,
        individual: bool = False,
    ) -> None:
        super().__init__()
        _check_steps("dlinear", in_steps, out_steps)
        if kernel_size % 2 == 0:
            raise ConfigError(
                f"dlinear needs an odd kernel_size (the decomposition keeps the length); "
                f"found {kernel_size}"
            )
        self.in_steps, self.out_steps, self.individual = in_steps, out_steps, individual
        self.decompose = MovingAverage(kernel_size)
        n = num_nodes if individual else 1
        self.seasonal_weight = nn.Parameter(torch.empty(n, out_steps, in_steps))
        self.seasonal_bias = nn.Parameter(torch.empty(n, out_steps))
        self.trend_weight = nn.Parameter(torch.empty(n, out_steps, in_steps))
        self.trend_bias = nn.Parameter(torch.empty(n, out_steps))
        bound = in_steps**-0.5  # nn.Linear's default init
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def decomposition(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z: [B, T, N] → (seasonal, trend)``, each ``[B, T, N]``; they sum to ``z``."""
        trend = self.decompose(z)
        return z - trend, trend

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]``."""
        z = _target(x, "dlinear", self.in_steps)  # (B, T_in, N)
        if self.individual and z.shape[2] != self.seasonal_weight.shape[0]:
            raise ConfigError(
                f"dlinear(individual=True) was built for N={self.seasonal_weight.shape[0]} "
                f"series; found N={z.shape[2]}"
            )
        seasonal, trend = self.decomposition(z)
        out = _over_time(seasonal, self.seasonal_weight) + _over_time(trend, self.trend_weight)
        out = out + (self.seasonal_bias + self.trend_bias).transpose(0, 1)  # (T_out, N|1)
        return out[..., None]


VarMode = Literal["auto", "full", "per_node"]


@dataclass
class VARConfig:
    """Configuration of :class:`VARBaseline`.

    Attributes:
        num_nodes: N.
        in_steps: T_in (≥ ``order``).
        out_steps: T_out.
        order: p, the number of lags.
        ridge: λ ≥ 0 added to the diagonal of the normal equations for the lag coefficients
            (not the intercept), in units of "per regression row" (λ·rows is added), so its
            effect does not depend on how much data is fitted.
        mode: ``"full"`` (every node regresses on p lags of all N nodes: ``p·N²`` coefficients),
            ``"per_node"`` (each node on its own p lags: a diagonal VAR, ``p·N``), or ``"auto"``
            (full when ``N <= max_full_nodes``).
        max_full_nodes: the ``"auto"`` threshold; beyond it a full VAR has more coefficients
            per equation than is sensible to fit from a window of traffic-like data.
        fit_intercept: include a constant.
    """

    num_nodes: int
    in_steps: int
    out_steps: int
    order: int = 2
    ridge: float = 0.0
    mode: VarMode = "auto"
    max_full_nodes: int = 64
    fit_intercept: bool = True

    def __post_init__(self) -> None:
        _check_steps("var", self.in_steps, self.out_steps)
        if self.order < 1:
            raise ConfigError(f"var needs order >= 1; found {self.order}")
        if self.in_steps <= self.order:
            raise ConfigError(
                f"var with order={self.order} needs in_steps > {self.order} (lags plus at least "
                f"one target step per window); found in_steps={self.in_steps}"
            )
        if self.ridge < 0:
            raise ConfigError(f"var needs ridge >= 0; found {self.ridge}")
        if self.mode not in ("auto", "full", "per_node"):
            raise ConfigError(f"var mode must be 'auto', 'full' or 'per_node'; found {self.mode!r}")

    @property
    def full(self) -> bool:
        """Whether the cross-node (full) VAR is fitted."""
        return self.mode == "full" or (
            self.mode == "auto" and self.num_nodes <= self.max_full_nodes
        )


class VARBaseline(nn.Module):
    """Least-squares VAR(p) on the scaled target: ``z_t = c + Σ_{k=1..p} A_k z_{t−k} + e_t``.

    Fitted in closed form by :meth:`fit` from the input windows of the training batches (every
    window of length T_in gives T_in − p regression rows; with stride-1 windows these cover the
    whole training series, overlapping steps weighted alike up to the split's edges). The
    targets ``y`` are not used: they are in raw units, and the windows already contain the
    training series in the model's scaled units. Forecasts are iterated: each predicted step
    becomes a lag of the next.

    Full mode stores ``A: [p, N, N]`` (``A[k−1, i, j]`` = effect of node j at lag k on node i);
    per-node mode stores ``A: [p, N]`` (diagonal). Until :meth:`fit` runs, the coefficients are
    persistence (``A_1 = I``) and ``forward`` logs a warning once.

    Args:
        config: the configuration.
    """

    def __init__(self, config: VARConfig) -> None:
        super().__init__()
        self.config = config
        p, n = config.order, config.num_nodes
        coef = torch.zeros(p, n, n) if config.full else torch.zeros(p, n)
        if config.full:
            coef[0] = torch.eye(n)
        else:
            coef[0] = 1.0
        self.register_buffer("coef", coef)
        self.register_buffer("intercept", torch.zeros(n))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.coef: Tensor
        self.intercept: Tensor
        self.fitted: Tensor
        self._warned = False

    def _rows(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Lagged design ``[R, N, p]`` (lag 1 first), targets ``[R, N]``; ``z: [B, T, N]``."""
        p = self.config.order
        t = z.shape[1]
        lags = torch.stack([z[:, p - k : t - k] for k in range(1, p + 1)], dim=-1)  # (B, T−p, N, p)
        return lags.reshape(-1, z.shape[2], p), z[:, p:].reshape(-1, z.shape[2])

    @torch.no_grad()
    def fit(self, loader: Iterable[Any]) -> VARBaseline:
        """Fit the coefficients by (ridge) least squares, accumulating normal equations in float64.

        Args:
            loader: iterable of training batches ``(x, y, ...)`` (or bare ``x``) with
                ``x: [B, T_in, N, C_in]``; only channel 0 of ``x`` is used.

        Returns:
            ``self``.

        Raises:
            ConfigError: the loader yielded no batches or batches of the wrong shape.
        """
        cfg = self.config
        n, p = cfg.num_nodes, cfg.order
        icpt = int(cfg.fit_intercept)
        dim = (n * p if cfg.full else p) + icpt
        gram: Tensor | None = None
        cross: Tensor | None = None
        rows = 0
        for batch in loader:
            x = batch[0] if isinstance(batch, tuple | list) else batch
            z = _target(x, "var", cfg.in_steps).to(torch.float64)
            if z.shape[2] != n:
                raise ConfigError(f"var was built for N={n} nodes; a batch has N={z.shape[2]}")
            lags, target = self._rows(z)  # (R, N, p), (R, N)
            r = lags.shape[0]
            if cfg.full:
                feats = lags.transpose(1, 2).reshape(r, p * n)  # lag-major: [lag1 nodes, lag2 ...]
                if icpt:
                    feats = torch.cat([feats, feats.new_ones(r, 1)], dim=1)
                g, c = feats.T @ feats, feats.T @ target  # (D, D), (D, N)
            else:
                feats = torch.cat([lags, lags.new_ones(r, n, 1)], dim=2) if icpt else lags
                g = torch.einsum("rni,rnj->nij", feats, feats)  # (N, D, D)
                c = torch.einsum("rni,rn->ni", feats, target)[..., None]  # (N, D, 1)
            gram = g if gram is None else gram + g
            cross = c if cross is None else cross + c
            rows += r
        if gram is None or cross is None:
            raise ConfigError("var.fit got no training batches")
        reg = torch.ones(dim, dtype=torch.float64)
        if icpt:
            reg[-1] = 0.0
        gram = gram + cfg.ridge * rows * torch.diag(reg)
        # the normal equations are small; gelsd (SVD) copes with collinear or constant series
        beta = torch.linalg.lstsq(gram.cpu(), cross.cpu(), driver="gelsd").solution
        if cfg.full:
            coef = beta[: n * p].reshape(p, n, n).transpose(1, 2)  # (p, target, source)
            intercept = beta[n * p] if icpt else torch.zeros(n, dtype=torch.float64)
        else:
            coef = beta[:, :p, 0].T  # (p, N)
            intercept = beta[:, p, 0] if icpt else torch.zeros(n, dtype=torch.float64)
        self.coef.copy_(coef.to(self.coef))
        self.intercept.copy_(intercept.to(self.intercept))
        self.fitted.fill_(True)
        log.info(
            "var: fitted order %d (%s) on %d rows", p, "full" if cfg.full else "per-node", rows
        )
        return self

    def step(self, history: Tensor) -> Tensor:
        """One-step prediction from the last ``p`` steps, ``[B, ≥p, N] → [B, N]``."""
        p = self.config.order
        out = self.intercept.to(history.dtype).expand(history.shape[0], -1)
        for k in range(1, p + 1):
            lag = history[:, -k]  # (B, N)
            a = self.coef[k - 1].to(history.dtype)
            out = out + (lag @ a.T if self.config.full else lag * a)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]`` by iterating :meth:`step`."""
        cfg = self.config
        z = _target(x, "var", cfg.in_steps)  # (B, T_in, N)
        if z.shape[2] != cfg.num_nodes:
            raise ConfigError(f"var was built for N={cfg.num_nodes} nodes; found N={z.shape[2]}")
        if not bool(self.fitted) and not self._warned:
            log.warning("var: forward before fit(); predicting with persistence coefficients")
            self._warned = True
        hist = z[:, -cfg.order :]
        preds = []
        for _ in range(cfg.out_steps):
            nxt = self.step(hist)  # (B, N)
            preds.append(nxt)
            hist = torch.cat([hist[:, 1:], nxt[:, None]], dim=1)
        return torch.stack(preds, dim=1)[..., None]


#: the options ``model_overrides`` may set, per baseline
_NO_OPTIONS: frozenset[str] = frozenset()
_SEASONAL_OPTIONS = frozenset({"steps_per_day", "period", "season"})
_DLINEAR_OPTIONS = frozenset({"kernel_size", "individual"})
_VAR_OPTIONS = frozenset(
    {f.name for f in fields(VARConfig)} - {"num_nodes", "in_steps", "out_steps"}
)


def build_last_value(
    *, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any
) -> LastValue:
    """Registry builder of :class:`LastValue` (no options)."""
    check_options("last-value", overrides, _NO_OPTIONS)
    return LastValue(in_steps, out_steps)


def build_historical_average(
    *, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any
) -> HistoricalAverage:
    """Registry builder of :class:`HistoricalAverage` (no options)."""
    check_options("historical-average", overrides, _NO_OPTIONS)
    return HistoricalAverage(in_steps, out_steps)


def build_seasonal_naive(
    *, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any
) -> SeasonalNaive:
    """Registry builder of :class:`SeasonalNaive` (``steps_per_day``, ``period``, ``season``)."""
    check_options("seasonal-naive", overrides, _SEASONAL_OPTIONS)
    return SeasonalNaive(in_steps, out_steps, **overrides)


def build_dlinear(*, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any) -> DLinear:
    """Registry builder of :class:`DLinear` (options ``kernel_size``, ``individual``)."""
    check_options("dlinear", overrides, _DLINEAR_OPTIONS)
    return DLinear(num_nodes, in_steps, out_steps, **overrides)


def build_var(*, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any) -> VARBaseline:
    """Registry builder of :class:`VARBaseline` (options: the fields of :class:`VARConfig`)."""
    check_options("var", overrides, _VAR_OPTIONS)
    return VARBaseline(
        VARConfig(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **overrides)
    )


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="last-value",
        builder=build_last_value,
        description="Persistence: the last observed value (no parameters)",
        fixed_num_nodes=False,
        options=_NO_OPTIONS,
        family="baseline",
    ),
    ModelSpec(
        name="historical-average",
        builder=build_historical_average,
        description="Mean of the input window (no parameters)",
        fixed_num_nodes=False,
        options=_NO_OPTIONS,
        family="baseline",
    ),
    ModelSpec(
        name="seasonal-naive",
        builder=build_seasonal_naive,
        description="Seasonal naive: the value one day (or week) earlier (no parameters)",
        fixed_num_nodes=False,
        options=_SEASONAL_OPTIONS,
        family="baseline",
        data_fields=("steps_per_day",),
    ),
    ModelSpec(
        name="dlinear",
        builder=build_dlinear,
        description="DLinear: trend/seasonal decomposition and linear maps over time",
        fixed_num_nodes=False,
        options=_DLINEAR_OPTIONS,
        family="baseline",
    ),
    ModelSpec(
        name="var",
        builder=build_var,
        description="VAR(p) fitted by least squares (closed form via fit; no trainable parameters)",
        fixed_num_nodes=True,
        options=_VAR_OPTIONS,
        family="baseline",
    ),
]

__all__ = [
    "SPECS",
    "DLinear",
    "HistoricalAverage",
    "LastValue",
    "MovingAverage",
    "SeasonalNaive",
    "VARBaseline",
    "VARConfig",
    "build_dlinear",
    "build_historical_average",
    "build_last_value",
    "build_seasonal_naive",
    "build_var",
]
