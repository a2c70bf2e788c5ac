"""The plots of a run directory: ``curves.png``, ``forecast.png`` and ``errors.png``.

Each plot has a ``*_figure`` function that builds a matplotlib ``Figure`` (object API with an
Agg canvas: no pyplot, no global backend) and a ``plot_*`` function that saves it. What to draw
is chosen by plain functions -- :func:`choose_window` (which test window) and
:func:`choose_series` (which series) -- so that the choice is tested apart from the drawing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

MASKED_GID = "masked"  # gid of the spans that mark masked readings (tests look for it)
MODEL_COLOR = "tab:red"
BASELINE_COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:brown")
_ROW_CHUNK_ELEMENTS = 1 << 21


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


# ---------------------------------------------------------------------- what to draw
def masked_readings(values: np.ndarray, null_value: float) -> np.ndarray:
    """Where readings are masked by the metrics' rule: NaN, or within 5e-5 of ``null_value``.

    Args:
        values: any shape.
        null_value: a number (0 for traffic) or NaN.

    Returns:
        Boolean array shaped like ``values``.
    """
    from linearcast.metrics import NULL_ATOL  # here: importing the plots loads no torch

    v = np.asarray(values, dtype=np.float64)
    hit = np.isnan(v)
    if not math.isnan(null_value):
        hit |= np.isclose(v, null_value, atol=NULL_ATOL, rtol=0.0)
    return hit


def choose_window(
    values: np.ndarray,
    starts: np.ndarray,
    length: int,
    null_value: float,
    target_channel: int = 0,
) -> int:
    """The window to draw: the fewest masked readings, ties broken towards the middle.

    A window whose history or targets are mostly masked (a metro at night, a sensor outage)
    shows little but grey, so the masked readings of the whole window (input and target rows,
    all series) are counted. Among equally good windows the one nearest the middle of the
    split is taken: on data without gaps that is the middle window, away from the split
    boundaries, and the same one whichever model is drawn.

    Args:
        values: ``[T, N, F]`` readings (may be a memmap; read one chunk of rows at a time).
        starts: ``[S]`` first row of each window.
        length: rows per window (``in_steps + out_steps``).
        null_value: the protocol's null value.
        target_channel: the channel drawn.

    Returns:
        An index into ``starts``.

    Raises:
        ValueError: no window.
    """
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        raise ValueError("choose_window: no window to choose from.")
    lo, hi = int(starts.min()), int(starts.max()) + length
    per_row = np.zeros(hi - lo, dtype=np.int64)
    step = max(1, _ROW_CHUNK_ELEMENTS // max(1, values.shape[1]))
    for a in range(lo, hi, step):
        b = min(a + step, hi)
        chunk = np.asarray(values[a:b, :, target_channel])
        per_row[a - lo : b - lo] = masked_readings(chunk, null_value).sum(axis=1)
    cum = np.concatenate([[0], np.cumsum(per_row)])
    masked = cum[starts - lo + length] - cum[starts - lo]
    idx = np.arange(len(starts))
    off_middle = np.abs(idx - (len(starts) - 1) / 2)
    return int(np.lexsort((off_middle, masked))[0])


def choose_series(window: np.ndarray, null_value: float, k: int = 4) -> list[int]:
    """Up to ``k`` distinct series of one window worth drawing.

    A series has signal when at least half of its readings are valid and its standard
    deviation over them exceeds ``1e-4`` of the window's largest valid magnitude: an all-null
    series, or one constant up to rounding (drawn on a 1e-8 axis), is left out. The picks run
    from the largest spread down to the median one: the largest shows the dynamics, the median
    a typical series; taking only the top ``k`` would show the outliers (faulty sensors,
    spikes) and nothing ordinary.

    Args:
        window: ``[L, N]`` readings of one window (history, then targets).
        null_value: the protocol's null value (masked readings do not count).
        k: how many series at most.

    Returns:
        Node indices, largest spread first; the series with the most valid readings when
        none has signal (so that something is drawn); ``[]`` only when ``N == 0``.
    """
    w = np.asarray(window, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"choose_series: expected a window [L, N], found shape {w.shape}.")
    if w.shape[1] == 0 or k < 1:
        return []
    valid = ~masked_readings(w, null_value)
    count = valid.sum(axis=0)
    clean = np.where(valid, w, 0.0)
    mean = clean.sum(axis=0) / np.maximum(count, 1)
    spread = np.sqrt((np.where(valid, w - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1))
    scale = float(np.abs(clean).max()) if valid.any() else 0.0
    signal = (2 * count >= w.shape[0]) & (spread > 1e-4 * scale) & (spread > 0)
    candidates = np.flatnonzero(signal)
    if len(candidates) == 0:
        return [int(np.argmax(count))]
    ranked = candidates[np.argsort(-spread[candidates], kind="stable")]
    m = len(ranked)
    if m <= k:
        return [int(v) for v in ranked]
    # from rank 0 (largest) to the median rank at least, k distinct ranks
    last = max(k - 1, (m - 1) // 2)
    picks = np.unique(np.linspace(0, last, k).round().astype(np.int64))
    return [int(ranked[p]) for p in picks]


def series_label(node: int, names: Sequence[str] | None, max_chars: int = 36) -> str:
    """``"<name> (node 7)"`` when the dataset names its series, else ``"node 7"``."""
    if not names:
        return f"node {node}"
    name = str(names[node])
    if len(name) > max_chars:
        name = name[: max_chars - 1] + "…"
    return name if name == str(node) else f"{name} (node {node})"


# ---------------------------------------------------------------------- forecast
def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` index pairs of the runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _time_text(t: pd.Timestamp, dates_only: bool) -> str:
    return t.strftime("%a %Y-%m-%d" if dates_only else "%a %Y-%m-%d %H:%M")


def window_text(
    in_steps: int,
    out_steps: int,
    *,
    times: pd.DatetimeIndex | None = None,
    first_row: int | None = None,
) -> str:
    """One line naming the window: its first input and last forecast time, else its rows."""
    shape = f"{in_steps} steps in, {out_steps} out"
    if times is not None and len(times) == in_steps + out_steps:
        dates_only = bool((times == times.normalize()).all())
        return (
            f"{_time_text(times[0], dates_only)} → {_time_text(times[-1], dates_only)} "
            f"(first input → last forecast; {shape})"
        )
    if first_row is not None:
        last = first_row + in_steps + out_steps - 1
        return f"steps {first_row} → {last} of the series (no calendar known; {shape})"
    return shape


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
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t_in, t_out = history.shape[0], truth.shape[0]
    observed = np.concatenate([history, truth], axis=0).astype(np.float64)  # (L, N)
    if nodes is None:
        nodes = choose_series(observed, null_value)
    nodes = list(nodes)
    if times is not None and len(times) != t_in + t_out:
        times = None
    if times is not None:
        x = times.to_numpy()
        gaps = np.sort(np.diff(x))
        step = gaps[len(gaps) // 2] if len(gaps) else np.timedelta64(1, "m")  # robust to a jump
        x_lo, x_hi = x - step / 2, x + step / 2
        split = x[t_in - 1] + step / 2
    else:
        x = np.arange(-t_in + 1, t_out + 1)
        x_lo, x_hi = x - 0.5, x + 0.5
        split = 0.5
    xh, xf = x[:t_in], x[t_in:]
    many = t_in + t_out > 48  # markers only where they can be told apart

    cols = 1 if len(nodes) == 1 else 2
    rows = math.ceil(len(nodes) / cols)
    fig = _figure(5.6 * cols, 3.0 * rows + 1.2)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    masked = masked_readings(observed, null_value)
    masked_label = f"masked, not scored ({_null_text(null_value)})"
    any_masked = False
    for j, (ax, node) in enumerate(zip(axes, nodes)):
        shown = np.where(masked[:, node], np.nan, observed[:, node])
        for a, b in _runs(masked[:, node]):
            ax.axvspan(x_lo[a], x_hi[b], color="0.6", alpha=0.35, lw=0, gid=MASKED_GID)
            any_masked = True
        ax.plot(xh, shown[:t_in], color="black", lw=1.4, label="history")
        # the observed series runs on across the forecast start (NaN ends leave a gap)
        ax.plot(x[t_in - 1 : t_in + 1], shown[t_in - 1 : t_in + 1], color="black", lw=1.4,
                ls="--", label="_join")  # fmt: skip
        ax.plot(xf, shown[t_in:], color="black", lw=1.4, ls="--", marker=None if many else ".",
                label="truth")  # fmt: skip
        ax.plot(xf, forecast[:, node], color=MODEL_COLOR, lw=1.6, marker=None if many else ".",
                label="forecast")  # fmt: skip
        if baseline is not None:
            ax.plot(xf, baseline[:, node], color=BASELINE_COLORS[0], lw=1.2, ls=":",
                    label=baseline_label)  # fmt: skip
        ax.axvline(split, color="grey", lw=0.8, alpha=0.6)
        if masked[t_in:, node].all():
            ax.text(0.98, 0.95, "all targets masked", transform=ax.transAxes, ha="right",
                    va="top", fontsize="small", color="0.3")  # fmt: skip
        ax.set_title(series_label(node, names), fontsize="medium")
        ax.grid(alpha=0.3)
        if units and j % cols == 0:
            ax.set_ylabel(units)
    for ax in axes[len(nodes) :]:
        ax.set_visible(False)
    if times is not None:
        locator = AutoDateLocator(minticks=3, maxticks=7)
        for ax in axes:
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        for ax in axes[max(0, len(nodes) - cols) : len(nodes)]:
            ax.set_xlabel("step (0 = last input; forecast after the grey line)")

    handles: list[Any] = [
        Line2D([], [], color="black", lw=1.4, label="history"),
        Line2D([], [], color="black", lw=1.4, ls="--", label="truth"),
        Line2D([], [], color=MODEL_COLOR, lw=1.6, label="forecast"),
    ]
    if baseline is not None:
        handles.append(Line2D([], [], color=BASELINE_COLORS[0], lw=1.2, ls=":",
                              label=f"{baseline_label} (baseline)"))  # fmt: skip
    if any_masked:
        handles.append(Patch(color="0.6", alpha=0.35, label=masked_label))
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
