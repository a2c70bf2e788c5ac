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

The models live in :mod:`linearcast.models.floors`, :mod:`linearcast.models.dlinear` and
:mod:`linearcast.models.var_baseline`; this module registers them.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from linearcast.models.base import ModelSpec, check_options
from linearcast.models.dlinear import DLinear, MovingAverage
from linearcast.models.floors import HistoricalAverage, LastValue, SeasonalNaive
from linearcast.models.var_baseline import VARBaseline, VARConfig, VarMode

#: the options ``model_overrides`` may set, per baseline
_NO_OPTIONS: frozenset[str] = frozenset()
_SEASONAL_OPTIONS = frozenset({"steps_per_day", "period", "season"})
_DLINEAR_OPTIONS = frozenset({"kernel_size", "individual"})
_VAR_OPTIONS = frozenset(
    {f.name for f in fields(VARConfig)} - {"num_nodes", "in_steps", "out_steps"}
)
#: why instance normalisation (model_overrides.revin) does not wrap a rule or a closed form
_NO_GRADIENT = "it has no parameters trained by gradient"


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
        no_revin=_NO_GRADIENT,
    ),
    ModelSpec(
        name="historical-average",
        builder=build_historical_average,
        description="Mean of the input window (no parameters)",
        fixed_num_nodes=False,
        options=_NO_OPTIONS,
        family="baseline",
        no_revin=_NO_GRADIENT,
    ),
    ModelSpec(
        name="seasonal-naive",
        builder=build_seasonal_naive,
        description="Seasonal naive: the value one day (or week) earlier (no parameters)",
        fixed_num_nodes=False,
        options=_SEASONAL_OPTIONS,
        family="baseline",
        no_revin=_NO_GRADIENT,
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
        no_revin=_NO_GRADIENT,
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
    "VarMode",
    "build_dlinear",
    "build_historical_average",
    "build_last_value",
    "build_seasonal_naive",
    "build_var",
]
