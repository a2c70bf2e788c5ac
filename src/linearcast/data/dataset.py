"""The in-memory (or memory-mapped) dataset every reader returns.

A :class:`TimeSeriesDataset` holds ``values: [T, N, F]`` float32 -- T time steps, N series
(sensors, nodes, variables), F measured channels (PEMS: flow, occupancy, speed; LTSF CSVs: 1) --
and what is known about time (frequency, steps per day, start or timestamps), the graph
(adjacency ``[N, N]``) and the null value that marks missing readings.

Time features are not stored as channels: :meth:`TimeSeriesDataset.time_of_day` and
:meth:`TimeSeriesDataset.day_of_week` derive them from the timestamps, the start time or the
steps-per-day count (or return the exact columns a BasicTS file carried).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linearcast.data import summary
from linearcast.data.checks import (
    NonFinitePolicy,
    check_time_features,
    count_non_finite,
    handle_non_finite,
    to_float32,
)
from linearcast.data.checks import _iter_row_chunks as _iter_row_chunks  # used by tests
from linearcast.data.summary import graph_stats
from linearcast.errors import DataError


def _source(path: Path | str | None, name: str) -> str:
    return str(path) if path is not None else f"dataset {name!r}"


@dataclass
class TimeSeriesDataset:
    """A multivariate / spatio-temporal series, ``values: [T, N, F]`` float32.

    Attributes:
        values: ``[T, N, F]`` float32; may be a read-only ``np.memmap`` (large files).
        name: short name used in messages and outputs (e.g. ``"PEMS08"``).
        path: the file or folder it was read from (``None`` for generated data).
        freq_minutes: minutes between steps, when known.
        steps_per_day: steps per day (288 for 5-minute data), when the frequency divides a day.
        start: timestamp of the first step, when known.
        timestamps: one timestamp per step (``len == T``), when the file had them.
        adjacency: ``[N, N]`` float32 weighted adjacency, or ``None``.
        node_names: N names (sensor ids, column names), or ``None``.
        channel_names: F names, or ``None``.
        null_value: value that marks a missing reading (0.0 for traffic, NaN otherwise).
        tod_values: exact time-of-day fractions ``[T]`` carried by the file (BasicTS), or None.
        dow_values: exact day-of-week indices ``[T]`` carried by the file (BasicTS), or None.
        meta: free-form facts from the reader (format, source keys, notes).
    """

    values: np.ndarray
    name: str = "dataset"
    path: Path | None = None
    freq_minutes: int | None = None
    steps_per_day: int | None = None
    start: pd.Timestamp | None = None
    timestamps: pd.DatetimeIndex | None = None
    adjacency: np.ndarray | None = None
    node_names: list[str] | None = None
    channel_names: list[str] | None = None
    null_value: float = 0.0
    tod_values: np.ndarray | None = None
    dow_values: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = _source(self.path, self.name)
        v = self.values
        if not isinstance(v, np.ndarray):
            raise DataError(f"{src}: expected a numpy array of values, found {type(v).__name__}.")
        if isinstance(v, np.ma.MaskedArray) and v.dtype.kind in "iuf":
            # masked entries are missing readings; np.asarray would keep what lies under them
            wide = v.dtype if v.dtype.kind == "f" else np.dtype(np.float64)
            self.values = v = np.ma.filled(v.astype(wide), np.nan)
        if v.ndim != 3:
            raise DataError(
                f"{src}: expected values of rank 3 [T, N, F], found shape {tuple(v.shape)}."
            )
        if v.dtype != np.float32:
            if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
                raise DataError(f"{src}: expected numeric values, found dtype {v.dtype}.")
            self.values = v = to_float32(v, src, self.node_names)
        t, n, f = v.shape
        if t == 0 or n == 0 or f == 0:
            raise DataError(f"{src}: expected a non-empty [T, N, F] array, found {v.shape}.")
        if self.adjacency is not None:
            a = np.asarray(self.adjacency)
            if a.ndim != 2 or a.shape[0] != a.shape[1]:
                raise DataError(f"{src}: expected a square adjacency [N, N], found {a.shape}.")
            if a.shape[0] != n:
                raise DataError(
                    f"{src}: the graph has {a.shape[0]} nodes but the data has N={n} series "
                    f"(values shape {tuple(v.shape)}); expected an adjacency of shape ({n}, {n})."
                )
            if not np.isfinite(a).all():
                raise DataError(
                    f"{src}: expected a finite adjacency, found "
                    f"{int((~np.isfinite(a)).sum())} NaN/inf weights."
                )
            self.adjacency = a.astype(np.float32, copy=False)
        if self.node_names is not None and len(self.node_names) != n:
            raise DataError(
                f"{src}: expected {n} node names (N of values {tuple(v.shape)}), "
                f"found {len(self.node_names)}."
            )
        if self.node_names is not None:
            self.node_names = _unique_names([str(x) for x in self.node_names], src)
        if self.channel_names is not None and len(self.channel_names) != f:
            raise DataError(
                f"{src}: expected {f} channel names (F of values {tuple(v.shape)}), "
                f"found {len(self.channel_names)}."
            )
        if self.timestamps is not None:
            if len(self.timestamps) != t:
                raise DataError(
                    f"{src}: expected {t} timestamps (one per step), found {len(self.timestamps)}."
                )
            if self.start is None:
                self.start = pd.Timestamp(self.timestamps[0])
        if self.freq_minutes is not None and self.steps_per_day is None:
            if self.freq_minutes > 0 and 1440 % self.freq_minutes == 0:
                self.steps_per_day = 1440 // self.freq_minutes
        if self.steps_per_day is not None and self.freq_minutes is None:
            if self.steps_per_day > 0 and 1440 % self.steps_per_day == 0:
                self.freq_minutes = 1440 // self.steps_per_day
        for label, arr in (("time-of-day", self.tod_values), ("day-of-week", self.dow_values)):
            if arr is not None and len(arr) != t:
                raise DataError(f"{src}: expected {t} {label} values, found {len(arr)}.")
        check_time_features(src, self.tod_values, self.dow_values)

    # ------------------------------------------------------------------ shape helpers
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, N, F)``."""
        t, n, f = self.values.shape
        return int(t), int(n), int(f)

    @property
    def num_steps(self) -> int:
        """T, the number of time steps."""
        return self.shape[0]

    @property
    def num_nodes(self) -> int:
        """N, the number of series (nodes)."""
        return self.shape[1]

    @property
    def num_channels(self) -> int:
        """F, the number of measured channels."""
        return self.shape[2]

    @property
    def source(self) -> str:
        """The file it came from, or its name; used in messages."""
        return _source(self.path, self.name)

    @property
    def is_memmap(self) -> bool:
        """True when ``values`` is memory-mapped (not loaded into RAM)."""
        return isinstance(self.values, np.memmap)

    # ------------------------------------------------------------------ time features
    def _timestamps_or_none(self) -> pd.DatetimeIndex | None:
        if self.timestamps is not None:
            return self.timestamps
        if self.start is not None and self.freq_minutes is not None:
            return pd.date_range(
                self.start, periods=self.num_steps, freq=pd.Timedelta(minutes=self.freq_minutes)
            )
        return None

    def times(self, rows: slice | None = None) -> pd.DatetimeIndex | None:
        """Timestamps of the steps (all, or the rows ``rows``) when the calendar is known.

        Args:
            rows: e.g. ``slice(s, s + in_steps + out_steps)`` for one window (default: all).

        Returns:
            A ``DatetimeIndex`` from the file's timestamps or from ``start`` + ``freq_minutes``;
            None when neither is known (steps per day alone fixes no date).
        """
        rows = slice(None) if rows is None else rows
        if self.timestamps is not None:
            return self.timestamps[rows]
        if self.start is not None and self.freq_minutes is not None:
            # only the rows asked for: no T-long index to draw one window
            steps = np.asarray(range(self.num_steps)[rows], dtype=np.int64)
            return pd.DatetimeIndex(self.start + pd.to_timedelta(steps * self.freq_minutes, "min"))
        return None

    def time_of_day(self) -> np.ndarray:
        """Time of day of every step as a fraction of a day.

        Returns:
            ``[T]`` float32 in ``[0, 1)``. From the file's own column (BasicTS), else the
            timestamps, else ``(t mod steps_per_day) / steps_per_day`` counting from step 0 (the
            convention of BasicTS and STAEformer for PEMS files, which carry no timestamps).

        Raises:
            DataError: when neither timestamps nor steps per day are known.
        """
        if self.tod_values is not None:
            return np.asarray(self.tod_values, dtype=np.float32)
        ts = self._timestamps_or_none()
        if ts is not None:
            secs = (ts - ts.normalize()).total_seconds().to_numpy()
            return (np.asarray(secs, dtype=np.float64) / 86400.0).astype(np.float32)
        if self.steps_per_day is not None:
            spd = self.steps_per_day
            return ((np.arange(self.num_steps) % spd) / spd).astype(np.float32)
        raise DataError(
            f"{self.source}: time-of-day features need timestamps, a start time or steps per "
            f"day; found none. Give the step with --set data_options.freq_minutes=MINUTES (and the "
            f"first time with --set data_options.start=YYYY-MM-DD), or leave the feature out with "
            f"--set protocol_overrides.add_time_of_day=false (the models flagged T in `linearcast "
            f"models` read it)."
        )

    def day_of_week(self) -> np.ndarray:
        """Day of the week of every step.

        Returns:
            ``[T]`` int64 in ``0..6`` (Monday = 0 when dates are known; otherwise day 0 is the
            first day of the file, the BasicTS/STAEformer convention for PEMS files).

        Raises:
            DataError: when neither timestamps nor steps per day are known.
        """
        if self.dow_values is not None:
            return np.asarray(self.dow_values, dtype=np.int64)
        ts = self._timestamps_or_none()
        if ts is not None:
            return np.asarray(ts.day_of_week, dtype=np.int64)
        if self.steps_per_day is not None:
            return ((np.arange(self.num_steps) // self.steps_per_day) % 7).astype(np.int64)
        raise DataError(
            f"{self.source}: day-of-week features need timestamps, a start time or steps per "
            f"day; found none. Give the step with --set data_options.freq_minutes=MINUTES (and the "
            f"first time with --set data_options.start=YYYY-MM-DD), or leave the feature out with "
            f"--set protocol_overrides.add_day_of_week=false (the models flagged T in `linearcast "
            f"models` read it)."
        )

    # ------------------------------------------------------------------ summary
    def describe(self) -> dict[str, Any]:
        """Summary statistics, computed chunk by chunk (safe on large memmaps).

        Returns:
            A JSON-serialisable dict: name, path, shape, frequency, start, per-channel counts of
            zeros / NaN / inf and min / max / mean over finite values, and graph statistics
            (:func:`linearcast.data.summary.describe`).
        """
        return summary.describe(self)

    def series_stats(self, far: float = 20.0, sample_rows: int = 100_000) -> list[dict[str, Any]]:
        """Per channel: each series' min/max, and values far outside the series' robust range
        (:func:`linearcast.data.summary.series_stats`, which says what *far* means).

        Returns:
            One dict per channel: ``name``, ``min``/``max`` per series (``[N]`` lists),
            ``far_low``/``far_high`` counts, ``far_values`` and ``far_series``.
        """
        return summary.series_stats(self, far=far, sample_rows=sample_rows)


__all__ = [
    "NonFinitePolicy",
    "TimeSeriesDataset",
    "check_time_features",
    "count_non_finite",
    "graph_stats",
    "handle_non_finite",
]


def _unique_names(names: list[str], source: str) -> list[str]:
    """Names with repeats told apart (``X``, ``X #2``, ...), in order, with one warning.

    Series are matched to a run by name (forecasts, ``series.json``), so two series may not
    share one; files do repeat names (NYC's taxi zones list one island twice), and the same
    file always gets the same names back.
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    repeated = [k for k, c in seen.items() if c > 1]
    if repeated:
        if len(set(out)) != len(out):  # "X #2" was itself a name: fall back to positions
            out = [f"{name} #{i}" for i, name in enumerate(names)]
        first = repeated[0] if len(repeated[0]) <= 60 else repeated[0][:59] + "…"
        warnings.warn(
            f"{source}: {len(repeated)} series name(s) repeat (e.g. {first!r}); the later ones "
            f"are told apart as '{first} #2', ...",
            stacklevel=3,
        )
    return out
