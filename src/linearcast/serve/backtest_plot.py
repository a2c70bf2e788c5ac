"""``backtest.png``: the error of each backtest window against its cutoff, over time.

Top panel: MAE and RMSE per cutoff (data units) with the overall MAE as a dashed line; below,
MAPE per cutoff when any target could be scored by it, and the coverage of each prediction
interval asked for (dotted: its level). On the run's own data the rows the
model was trained or early-stopped on (before its test split) are shaded: errors there are
in-sample. A window with nothing to score leaves a gap. Drawn with the object API (no pyplot).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.engine.plot_style import MODEL_COLOR, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from linearcast.serve.backtest import Backtest

__all__ = ["backtest_figure"]

MARKERS_UP_TO = 60  # windows; beyond, markers hide the line


def backtest_figure(bt: Backtest) -> Figure:
    """The figure of :func:`save_backtest <linearcast.serve.backtest_files.save_backtest>`."""
    info, m = bt.info, bt.metrics
    x = _x(m["cutoff"])
    timed = isinstance(x, pd.DatetimeIndex)
    has_mape = bool(m["MAPE"].notna().any())
    levels = info.get("levels") or []
    panels = 1 + int(has_mape) + int(bool(levels))
    fig = new_figure(9.0, 2.0 + 2.0 * panels)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    marker = "o" if len(m) <= MARKERS_UP_TO else None
    top = axes[0]
    top.plot(x, m["MAE"], color=MODEL_COLOR, marker=marker, ms=4, label="MAE")
    top.plot(x, m["RMSE"], color="tab:blue", marker=marker, ms=4, alpha=0.8, label="RMSE")
    overall = bt.overall["MAE"]
    if np.isfinite(overall):
        top.axhline(overall, color=MODEL_COLOR, ls="--", lw=1, label=f"overall MAE {overall:.4g}")
    top.set_ylabel(f"error ({info['units']})")
    if has_mape:
        axes[1].plot(x, m["MAPE"], color="tab:green", marker=marker, ms=4, label="MAPE")
        axes[1].set_ylabel("MAPE (%)")
    if levels:
        _coverage(axes[-1], x, m, levels, marker)
    start = info["out_of_sample_from"]
    if not info["refit"] and start is not None and len(x) and x[0] < start:
        for i, ax in enumerate(axes):
            _shade_in_sample(ax, x[0], start, label=i == 0)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    _x_axis(axes[-1], timed)
    refit = ", refit per cutoff" if info["refit"] else ""
    channel = f" ({info['channel']})" if info["channel"] else ""
    fig.suptitle(
        f"{info['model']} on {Path(str(info['data'])).name}{channel}: error per cutoff\n"
        f"{info['n_windows']} windows every {info['step_size']} steps, horizon "
        f"{info['horizon']} steps{refit}",
        fontsize=10,
    )
    return fig


def _x(cutoffs: pd.Series) -> Any:
    """The cutoffs as a DatetimeIndex (timestamps) or an int array (rows)."""
    if pd.api.types.is_datetime64_any_dtype(cutoffs):
        return pd.DatetimeIndex(cutoffs)
    return np.asarray(cutoffs, dtype=np.int64)


def _coverage(ax: Axes, x: Any, m: pd.DataFrame, levels: list[float], marker: str | None) -> None:
    """Coverage per cutoff of each level's interval, with the level as a dotted line."""
    from linearcast.serve.intervals import column_suffix, level_key

    colors = ("tab:purple", "tab:orange", "tab:brown", "tab:olive")
    for i, level in enumerate(levels):
        color = colors[i % len(colors)]
        share = 100 * m[f"coverage_{column_suffix(level)}"]
        ax.plot(x, share, color=color, marker=marker, ms=4, label=f"{level_key(level)}% interval")
        ax.axhline(level, color=color, ls=":", lw=1)
    ax.set_ylabel("coverage (%)")


def _shade_in_sample(ax: Axes, first: Any, start: Any, *, label: bool) -> None:
    text = "in-sample (before the run's test split)" if label else None
    ax.axvspan(first, start, color="0.85", alpha=0.6, lw=0, label=text)
    ax.axvline(start, color="0.4", ls=":", lw=1)


def _x_axis(ax: Axes, timed: bool) -> None:
    if timed:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_xlabel("cutoff (time of the last input step)")
    else:
        ax.set_xlabel("cutoff (row of the last input step)")
