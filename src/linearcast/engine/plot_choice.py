"""What the run-directory plots draw: which test window, which series, and how they are named.

Plain NumPy functions (no matplotlib), so that the choice is tested apart from the drawing in
:mod:`linearcast.engine.plots`, which imports them from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_ROW_CHUNK_ELEMENTS = 1 << 21


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


#: the history drawn is at most this many times the horizon (forecast >= 1/4 of the x axis)
HISTORY_PER_HORIZON = 3


def history_shown(in_steps: int, out_steps: int) -> int:
    """How many of the last input steps a forecast panel draws.

    A 1024-step lookback drawn whole beside a 96-step forecast squeezes the forecast into a
    sliver of the axis; the panel shows the last ``3 * out_steps`` input steps at most, so the
    forecast takes at least a quarter of the x range (the title names the whole window).

    Args:
        in_steps: T_in of the window.
        out_steps: T_out.

    Returns:
        ``min(in_steps, 3 * out_steps)``, at least 1.
    """
    return max(1, min(in_steps, HISTORY_PER_HORIZON * max(1, out_steps)))


def series_label(node: int, names: Sequence[str] | None, max_chars: int = 36) -> str:
    """``"<name> (node 7)"`` when the dataset names its series, else ``"node 7"``."""
    if not names:
        return f"node {node}"
    name = str(names[node])
    if len(name) > max_chars:
        name = name[: max_chars - 1] + "…"
    return name if name == str(node) else f"{name} (node {node})"


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
