"""The plots of a run directory: ``curves.png``, ``forecast.png`` and ``errors.png``.

Each plot has a ``*_figure`` function that builds a matplotlib ``Figure`` (object API with an
Agg canvas: no pyplot, no global backend) and a ``plot_*`` function that saves it. What to draw
is chosen by plain functions in :mod:`linearcast.engine.plot_choice` -- :func:`choose_window`
(which test window) and :func:`choose_series` (which series), importable from here too -- so
that the choice is tested apart from the drawing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.engine.plot_choice import (
    choose_series,
    choose_window,
    masked_readings,
    series_label,
    window_text,
)

if TYPE_CHECKING:
    import pandas as pd
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
    "masked_readings",
    "plot_curves",
    "plot_errors",
    "plot_forecast",
    "series_label",
    "window_text",
]

MASKED_GID = "masked"  # gid of the spans that mark masked readings (tests look for it)
MODEL_COLOR = "tab:red"
BASELINE_COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:brown")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    fig.savefig(path)
    return Path(path)


def _null_text(null_value: float) -> str:
    return "NaN" if math.isnan(null_value) else f"null = {null_value:g}"


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
    fig = _figure(6.0, 4.0)
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
    return None if fig is None else _save(fig, path)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------- forecast
def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` index pairs of the runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class _Window:
    """What every panel of a forecast figure shares.

    Attributes:
        x: ``[L]`` x positions of the window's rows (timestamps, or steps with 0 = last input).
        lo, hi: ``[L]`` each row's span on the x axis (masked rows are shaded over it).
        split: the x position between the last input and the first forecast.
        t_in: input steps.
        observed: ``[L, N]`` history then truth.
        masked: ``[L, N]`` which readings are masked (:func:`masked_readings`).
        many: too many steps for markers to be told apart.
    """

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    split: Any
    t_in: int
    observed: np.ndarray
    masked: np.ndarray
    many: bool


def _window(
    history: np.ndarray, truth: np.ndarray, times: pd.DatetimeIndex | None, null_value: float
) -> _Window:
    """The x axis of the window (in time when ``times`` is given) and its readings."""
    t_in, t_out = history.shape[0], truth.shape[0]
    observed = np.concatenate([history, truth], axis=0).astype(np.float64)  # (L, N)
    if times is not None:
        x = times.to_numpy()
        gaps = np.sort(np.diff(x))
        step = gaps[len(gaps) // 2] if len(gaps) else np.timedelta64(1, "m")  # robust to a jump
        lo, hi, split = x - step / 2, x + step / 2, x[t_in - 1] + step / 2
    else:
        x = np.arange(-t_in + 1, t_out + 1)
        lo, hi, split = x - 0.5, x + 0.5, 0.5
    masked = masked_readings(observed, null_value)
    return _Window(x, lo, hi, split, t_in, observed, masked, many=t_in + t_out > 48)


def _draw_series(
    ax: Any,
    w: _Window,
    node: int,
    forecast: np.ndarray,
    baseline: np.ndarray | None,
    baseline_label: str,
) -> bool:
    """One series' panel: masked steps shaded, history, truth and the forecasts; returns
    whether any step was masked."""
    t_in, x = w.t_in, w.x
    xh, xf = x[:t_in], x[t_in:]
    marker = None if w.many else "."  # markers only where they can be told apart
    shown = np.where(w.masked[:, node], np.nan, w.observed[:, node])
    spans = _runs(w.masked[:, node])
    for a, b in spans:
        ax.axvspan(w.lo[a], w.hi[b], color="0.6", alpha=0.35, lw=0, gid=MASKED_GID)
    ax.plot(xh, shown[:t_in], color="black", lw=1.4, label="history")
    # the observed series runs on across the forecast start (NaN ends leave a gap)
    ax.plot(x[t_in - 1 : t_in + 1], shown[t_in - 1 : t_in + 1], color="black", lw=1.4, ls="--",
            label="_join")  # fmt: skip
    ax.plot(xf, shown[t_in:], color="black", lw=1.4, ls="--", marker=marker, label="truth")
    ax.plot(xf, forecast[:, node], color=MODEL_COLOR, lw=1.6, marker=marker, label="forecast")
    if baseline is not None:
        ax.plot(xf, baseline[:, node], color=BASELINE_COLORS[0], lw=1.2, ls=":",
                label=baseline_label)  # fmt: skip
    ax.axvline(w.split, color="grey", lw=0.8, alpha=0.6)
    if w.masked[t_in:, node].all():
        ax.text(0.98, 0.95, "all targets masked", transform=ax.transAxes, ha="right",
                va="top", fontsize="small", color="0.3")  # fmt: skip
    return bool(spans)


def _format_x_axes(axes: np.ndarray, shown: int, cols: int, in_time: bool) -> None:
    """Dates on every axis in time; else the step label under the bottom row's panels."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if in_time:
        locator = AutoDateLocator(minticks=3, maxticks=7)
        for ax in axes:
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        for ax in axes[max(0, shown - cols) : shown]:
            ax.set_xlabel("step (0 = last input; forecast after the grey line)")


def _legend_handles(baseline_label: str | None, masked_label: str | None) -> list[Any]:
    """The figure legend's entries (the baseline's and the masked shading's when drawn)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Line2D([], [], color="black", lw=1.4, label="history"),
        Line2D([], [], color="black", lw=1.4, ls="--", label="truth"),
        Line2D([], [], color=MODEL_COLOR, lw=1.6, label="forecast"),
    ]
    if baseline_label is not None:
        handles.append(Line2D([], [], color=BASELINE_COLORS[0], lw=1.2, ls=":",
                              label=f"{baseline_label} (baseline)"))  # fmt: skip
    if masked_label is not None:
        handles.append(Patch(color="0.6", alpha=0.35, label=masked_label))
    return handles


def forecast_figure(
    history: np.ndarray,
    truth: np.ndarray,
    forecast: np.ndarray,
    *,
    nodes: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    times: pd.DatetimeIndex | None = None,
    first_row: int | None = None,
    baseline: np.ndarray | None = None,
    baseline_label: str = "baseline",
    title: str = "",
    null_value: float = 0.0,
    units: str = "",
) -> Figure:
    """History, truth and forecast of a few series over one window, one panel per series.

    Masked readings (equal to the null value, or NaN) are not drawn as values: their steps
    are shaded grey (``gid`` :data:`MASKED_GID`) and named in the legend, so a gap reads as
    "not scored" rather than as a missing line.

    Args:
        history: ``[T_in, N]`` input target, in the units of ``truth``.
        truth: ``[T_out, N]`` targets.
        forecast: ``[T_out, N]`` predictions.
        nodes: the series to draw (default: :func:`choose_series` over history and truth).
        names: N series names (``dataset.node_names``); ``"node i"`` without them.
        times: ``T_in + T_out`` timestamps of the window's rows (x axis in time, title with
            the first input and last forecast time); steps relative to the last input without.
        first_row: the dataset row of the first input step (named in the title without times).
        baseline: ``[T_out, N]`` baseline predictions, drawn dotted when given.
        baseline_label: its legend entry (e.g. ``"last-value"``).
        title: first title line (model, dataset, protocol).
        null_value: the protocol's null value.
        units: y-axis label (e.g. ``"data units"``).
    """
    t_in, t_out = history.shape[0], truth.shape[0]
    if times is not None and len(times) != t_in + t_out:
        times = None
    w = _window(history, truth, times, null_value)
    nodes = list(choose_series(w.observed, null_value) if nodes is None else nodes)
    cols = 1 if len(nodes) == 1 else 2
    rows = math.ceil(len(nodes) / cols)
    fig = _figure(5.6 * cols, 3.0 * rows + 1.2)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    any_masked = False
    for j, (ax, node) in enumerate(zip(axes, nodes)):
        any_masked |= _draw_series(ax, w, node, forecast, baseline, baseline_label)
        ax.set_title(series_label(node, names), fontsize="medium")
        ax.grid(alpha=0.3)
        if units and j % cols == 0:
            ax.set_ylabel(units)
    for ax in axes[len(nodes) :]:
        ax.set_visible(False)
    _format_x_axes(axes, len(nodes), cols, in_time=times is not None)
    masked_label = f"masked, not scored ({_null_text(null_value)})" if any_masked else None
    handles = _legend_handles(baseline_label if baseline is not None else None, masked_label)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    when = window_text(t_in, t_out, times=times, first_row=first_row)
    fig.suptitle(f"{title}\ntest window: {when}" if title else f"test window: {when}",
                 fontsize="medium")  # fmt: skip
    return fig


def plot_forecast(
    path: str | Path,
    history: np.ndarray,
    truth: np.ndarray,
    forecast: np.ndarray,
    **options: Any,
) -> Path:
    """Write ``forecast.png``; ``options`` as in :func:`forecast_figure`."""
    return _save(forecast_figure(history, truth, forecast, **options), path)


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
    fig = _figure(10.0, 4.4)
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
    return None if fig is None else _save(fig, path)
