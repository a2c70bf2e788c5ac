"""A forecast with its prediction bands, for a person to read (``forecast --plot FILE``).

One panel per series (up to four, picked as ``forecast.png`` picks them: the largest spread down
to a typical one): the recent history in black, the forecast in red, each interval level a
shaded band (the widest the lightest), and a dashed line where the history ends. Masked
readings (NaN) leave gaps in the history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.engine.plot_choice import choose_series, history_shown, series_label
from linearcast.engine.plot_style import MODEL_COLOR, new_figure, save_figure
from linearcast.serve.intervals import level_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from linearcast.serve.forecast import Forecast

__all__ = ["band_figure", "plot_forecast_band"]


def _x(fc: Forecast, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """x positions of the shown history and of the forecast (times, or step numbers)."""
    hist = np.asarray(fc.history_ds)[-keep:] if keep else np.asarray([])
    return hist, np.asarray(fc.ds)


def band_figure(
    fc: Forecast, *, nodes: Sequence[int] | None = None, title: str = "", k: int = 4
) -> Figure:
    """The figure of :func:`plot_forecast_band`.

    Args:
        fc: a forecast (with ``history`` and, for bands, ``intervals``).
        nodes: the series to draw (default: up to ``k`` chosen from the history).
        title: first title line (e.g. the run directory).
        k: how many series at most.
    """
    history = fc.history if fc.history is not None else np.zeros((0, len(fc.node_names)))
    keep = min(history.shape[0], history_shown(history.shape[0], fc.horizon))
    shown = history[history.shape[0] - keep :]
    if nodes is None:
        window = np.concatenate([shown, fc.values[:, :, 0]]) if keep else fc.values[:, :, 0]
        nodes = choose_series(window, math.nan, k=k)
    nodes = list(nodes)
    x_hist, x_fc = _x(fc, keep)
    cols = 1 if len(nodes) == 1 else 2
    rows = math.ceil(len(nodes) / cols)
    fig = new_figure(5.6 * cols, 2.9 * rows + 1.2)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    levels = sorted(fc.intervals, reverse=True)  # widest first, drawn underneath
    shades: list[float] = np.linspace(0.18, 0.42, len(levels)).tolist()
    for ax, node in zip(axes, nodes):
        if keep:
            ax.plot(x_hist, shown[:, node], color="black", lw=1.2, label="history")
            ax.axvline(x_hist[-1], color="grey", ls="--", lw=0.8)
        for level, alpha in zip(levels, shades):
            lo, hi = fc.intervals[level]
            label = f"{level_key(level)}% interval"
            ax.fill_between(x_fc, lo[:, node, 0], hi[:, node, 0], color=MODEL_COLOR,
                            alpha=alpha, lw=0, label=label)  # fmt: skip
        ax.plot(x_fc, fc.values[:, node, 0], color=MODEL_COLOR, lw=1.6, label="forecast")
        ax.set_title(series_label(node, fc.node_names), fontsize="medium")
        ax.grid(alpha=0.3)
    for ax in axes[0::cols]:
        ax.set_ylabel(fc.units)
    for ax in axes[len(nodes) :]:
        ax.set_visible(False)
    if fc.timestamps is not None:
        for ax in axes:
            ax.tick_params(axis="x", labelrotation=30)
    else:
        for ax in axes[-cols:]:
            ax.set_xlabel("step")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    head = ", ".join(p for p in (title, f"forecasting {fc.channel_label}" if fc.channel_label
                                 else "") if p)  # fmt: skip
    what = f"{fc.horizon} steps after {Path(str(fc.source)).name} (last input {fc.last_input})"
    if levels:  # on its own line: the figure is narrow beside a long title
        what += "\nbands: conformal intervals calibrated on the run's validation windows"
    fig.suptitle(f"{head}\n{what}" if head else what, fontsize="medium")
    return fig


def plot_forecast_band(path: str | Path, fc: Forecast, **options: Any) -> Path:
    """Write the figure (PNG, SVG or PDF by suffix) whole or not at all; ``options`` as in
    :func:`band_figure`."""
    from linearcast.serve.outputs import atomic_output

    fig = band_figure(fc, **options)
    with atomic_output(path, option="--plot") as tmp:
        save_figure(fig, tmp)
    return Path(path)
