"""The plots of a run directory: ``curves.png``, ``forecast.png`` and ``errors.png``.

Each plot has a ``*_figure`` function that builds a matplotlib ``Figure`` (object API with an
Agg canvas: no pyplot, no global backend) and a ``plot_*`` function that saves it. What to draw
is chosen by plain functions in :mod:`linearcast.engine.plot_choice` -- :func:`choose_window`
(which test window), :func:`choose_series` (which series) and :func:`history_shown` (how much of
a long history), importable from here too -- so that the choice is tested apart from the
drawing. ``forecast.png`` is drawn by :mod:`linearcast.engine.forecast_plot`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.engine.forecast_plot import forecast_figure, plot_forecast
from linearcast.engine.plot_choice import (
    choose_series,
    choose_window,
    history_shown,
    masked_readings,
    series_label,
    window_text,
)
from linearcast.engine.plot_style import (
    BASELINE_COLORS,
    MASKED_GID,
    MODEL_COLOR,
    new_figure,
    save_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BASELINE_COLORS",
    "MASKED_GID",
    "MODEL_COLOR",
    "choose_series",
    "choose_window",
    "curves_figure",
    "error_columns",
    "errors_figure",
    "forecast_figure",
    "history_shown",
    "masked_readings",
    "plot_curves",
    "plot_errors",
    "plot_forecast",
    "series_label",
    "window_text",
]


# ---------------------------------------------------------------------- curves
def curves_figure(rows: Sequence[Mapping[str, Any]], title: str = "") -> Figure | None:
    """Training and validation loss against epoch; None if no epoch ran.

    The loss axis is logarithmic when the losses span more than two decades (a first epoch at
    100 would otherwise flatten every later one); the best validation epoch is marked.
    """
    from matplotlib.ticker import MaxNLocator

    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    train = [_nan(r.get("train_loss")) for r in rows]
    val = [_nan(r.get("val_loss")) for r in rows]
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.plot(epochs, train, marker="o", label="train loss")
    vx = [e for e, v in zip(epochs, val) if not math.isnan(v)]
    vy = [v for v in val if not math.isnan(v)]
    ax.plot(vx, vy, marker="s", label="validation loss")
    if vy:
        best = int(np.argmin(vy))
        ax.axvline(vx[best], color="grey", linestyle=":", label=f"best (epoch {vx[best]})")
    positive = [v for v in (*train, *vy) if math.isfinite(v) and v > 0]
    if positive and max(positive) > 100 * min(positive):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 0.96 on a 1-epoch run
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title or "training curves", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_curves(
    path: str | Path, rows: Sequence[Mapping[str, Any]], title: str = ""
) -> Path | None:
    """Write ``curves.png`` (see :func:`curves_figure`); None if no epoch ran."""
    fig = curves_figure(rows, title)
    return None if fig is None else save_figure(fig, path)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------- forecast
# ---------------------------------------------------------------------- errors
def error_columns(metrics_space: str) -> tuple[str, str]:
    """The two metrics drawn per step: MAE/RMSE in data units, MSE/MAE when standardised."""
    return ("MSE", "MAE") if metrics_space == "scaled" else ("MAE", "RMSE")


def _overall(per_step: Mapping[str, Sequence[float]], name: str) -> float:
    """The overall value from per-step values and their weights (as the evaluator computes it)."""
    weights = np.asarray(per_step.get("count", []), dtype=np.float64)
    if name == "RMSE":
        return math.sqrt(_overall(per_step, "MSE"))
    values = np.asarray(per_step[name], dtype=np.float64)
    if len(weights) != len(values) or weights.sum() <= 0:
        return float(np.mean(values)) if len(values) else math.nan
    return float((values * weights).sum() / weights.sum())


def _duration(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day" + ("s" if minutes > 1440 else "")
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def errors_figure(metrics: Mapping[str, Any], *, step_minutes: int | None = None) -> Figure | None:
    """Test error per step ahead, one line per model, from a ``metrics.json`` dict.

    Args:
        metrics: the contents of ``metrics.json``: ``test_per_step`` (and
            ``baseline.test_per_step``), ``model``, ``metrics_space``, ``protocol``,
            ``dataset.name``, ``test_windows``.
        step_minutes: minutes per step, named on the x axis when known.

    Returns:
        Two panels (:func:`error_columns`), or None when ``metrics`` has no per-step values
        (a run directory written before they existed).
    """
    curves: dict[str, Mapping[str, Sequence[float]]] = {}
    if metrics.get("test_per_step"):
        curves[str(metrics.get("model", "model"))] = metrics["test_per_step"]
    base = metrics.get("baseline") or {}
    if base.get("test_per_step"):
        curves[f"{base.get('model', 'baseline')} (baseline)"] = base["test_per_step"]
    if not curves:
        return None
    space = str(metrics.get("metrics_space", "raw"))
    names = error_columns(space)
    units = "standardised units" if space == "scaled" else "data units"
    fig = new_figure(10.0, 4.4)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    per_minutes = f" (1 step = {_duration(step_minutes)})" if step_minutes else ""
    for ax, name in zip(axes, names):
        for i, (label, per_step) in enumerate(curves.items()):
            values = np.asarray(per_step[name], dtype=np.float64)
            steps = np.arange(1, len(values) + 1)
            color = MODEL_COLOR if i == 0 else BASELINE_COLORS[(i - 1) % len(BASELINE_COLORS)]
            ax.plot(steps, values, color=color, ls="-" if i == 0 else "--",
                    marker="o" if len(values) <= 24 else None, ms=3.5, label=label)  # fmt: skip
        ax.set_title(f"{name} ({units})", fontsize="medium")
        ax.set_xlabel("steps ahead" + per_minutes)
        ax.set_ylabel(f"test {name}")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if len(steps) <= 24:
            ax.set_xticks(steps)
    # one legend for both panels (same colours), below them where it hides no curve
    texts = [
        f"{label}: overall " + ", ".join(f"{n} {_overall(per_step, n):.4g}" for n in names)
        for label, per_step in curves.items()
    ]
    fig.legend(axes[0].get_lines(), texts, loc="outside lower center", ncols=len(texts),
               fontsize="small")  # fmt: skip
    dataset = (metrics.get("dataset") or {}).get("name", "")
    head = f"test error per step ahead: {metrics.get('model', '')} on {dataset}".rstrip()
    detail = f"{metrics.get('protocol', '')}, {names[0]} and {names[1]} in {units}"
    if metrics.get("test_windows"):
        detail += f", {metrics['test_windows']} test windows"
    fig.suptitle(f"{head}\n{detail}", fontsize="medium")
    return fig


def plot_errors(
    path: str | Path, metrics: Mapping[str, Any], *, step_minutes: int | None = None
) -> Path | None:
    """Write ``errors.png`` (see :func:`errors_figure`); None without per-step values."""
    fig = errors_figure(metrics, step_minutes=step_minutes)
    return None if fig is None else save_figure(fig, path)
