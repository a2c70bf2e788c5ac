"""``forecast.png``: history, truth and forecasts of a few series over one test window.

What to draw (which window, which series, how much of a long history) is chosen by plain
functions in :mod:`linearcast.engine.plot_choice`; shared colours and the figure in
:mod:`linearcast.engine.plot_style`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.engine.plot_choice import (
    choose_series,
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
    null_text,
    save_figure,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


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
    channel: str = "",
) -> Figure:
    """History, truth and forecast of a few series over one window, one panel per series.

    Masked readings (equal to the null value, or NaN) are not drawn as values: their steps
    are shaded grey (``gid`` :data:`MASKED_GID`) and named in the legend, so a gap reads as
    "not scored" rather than as a missing line. A history much longer than the horizon is cut
    to its last :func:`~linearcast.engine.plot_choice.history_shown` steps (the title says
    so), so that the forecast is drawn at a readable scale.

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
        channel: the data channel forecast, for data with several (e.g. ``"inflow (channel 0
            of 2)"``), named in the title.
    """
    t_in, t_out = history.shape[0], truth.shape[0]
    if times is not None and len(times) != t_in + t_out:
        times = None
    when = window_text(t_in, t_out, times=times, first_row=first_row)
    keep = history_shown(t_in, t_out)
    if keep < t_in:  # the recent part at a readable scale; the title names the whole window
        history = history[t_in - keep :]
        times = times[t_in - keep :] if times is not None else None
        when += f"\nshowing the last {keep} of the {t_in} input steps"
    w = _window(history, truth, times, null_value)
    nodes = list(choose_series(w.observed, null_value) if nodes is None else nodes)
    cols = 1 if len(nodes) == 1 else 2
    rows = math.ceil(len(nodes) / cols)
    fig = new_figure(5.6 * cols, 3.0 * rows + 1.2)
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
    masked_label = f"masked, not scored ({null_text(null_value)})" if any_masked else None
    handles = _legend_handles(baseline_label if baseline is not None else None, masked_label)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    head = ", ".join(part for part in (title, f"forecasting {channel}" if channel else "") if part)
    fig.suptitle(f"{head}\ntest window: {when}" if head else f"test window: {when}",
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
    return save_figure(forecast_figure(history, truth, forecast, **options), path)
