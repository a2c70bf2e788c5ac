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

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.errors import DataError

NonFinitePolicy = Literal["error", "null"]

# Elements per chunk when scanning (possibly memory-mapped) arrays; keeps peak memory small.
_CHUNK_ELEMENTS = 1 << 21


def _source(path: Path | str | None, name: str) -> str:
    return str(path) if path is not None else f"dataset {name!r}"


def _iter_row_chunks(values: np.ndarray) -> list[slice]:
    """Row slices of ``values`` (first axis) holding about ``_CHUNK_ELEMENTS`` elements each."""
    t = values.shape[0]
    per_row = max(1, int(np.prod(values.shape[1:], dtype=np.int64)))
    step = max(1, _CHUNK_ELEMENTS // per_row)
    return [slice(a, min(a + step, t)) for a in range(0, t, step)]


def count_non_finite(values: np.ndarray) -> tuple[int, int]:
    """Count NaN and ±inf entries of an array, chunk by chunk (memmap friendly).

    Args:
        values: any float array, typically ``[T, N, F]``.

    Returns:
        ``(num_nan, num_inf)``.
    """
    n_nan = n_inf = 0
    if not np.issubdtype(values.dtype, np.floating):
        return 0, 0
    for sl in _iter_row_chunks(values):
        chunk = np.asarray(values[sl])
        n_nan += int(np.isnan(chunk).sum())
        n_inf += int(np.isinf(chunk).sum())
    return n_nan, n_inf


def handle_non_finite(
    values: np.ndarray,
    source: str,
    null_value: float,
    policy: NonFinitePolicy = "error",
) -> np.ndarray:
    """Apply the non-finite rule: raise, or replace NaN/inf by the null value with a warning.

    Args:
        values: ``[T, N, F]`` float array (may be a read-only memmap).
        source: file name (or dataset name) used in the messages.
        null_value: the dataset's null value (0.0 or NaN).
        policy: ``"error"`` raises :class:`DataError` with the counts; ``"null"`` replaces
            every NaN and ±inf by ``null_value`` (an in-memory copy when ``values`` is read-only)
            and emits a :class:`UserWarning` with the counts.

    Returns:
        ``values`` itself when it holds no NaN/inf, else the cleaned array.
    """
    n_nan, n_inf = count_non_finite(values)
    if n_nan == 0 and n_inf == 0:
        return values
    total = int(values.size)
    found = f"{n_nan} NaN and {n_inf} infinite values out of {total}"
    if policy == "error":
        raise DataError(
            f"{source}: expected finite values, found {found}. To treat them as missing "
            f"(replaced by the null value {null_value}, masked in the metrics) use --set "
            f"data_options.non_finite=null (Python: non_finite='null')."
        )
    if policy != "null":
        raise DataError(f"{source}: non_finite must be 'error' or 'null', found {policy!r}.")
    warnings.warn(
        f"{source}: {found} replaced by the null value {null_value} (masked in metrics).",
        UserWarning,
        stacklevel=3,
    )
    out = np.array(values, dtype=np.float32, copy=True)
    out[~np.isfinite(out)] = null_value
    return out


def check_time_features(
    source: str, tod: np.ndarray | None = None, dow: np.ndarray | None = None
) -> None:
    """Check time features where data enters: time of day in [0, 1), day of week in 0..6.

    Models index embedding tables with them (STAEformer: ``floor(tod · steps_per_day)`` and the
    day); a value out of range (e.g. a step index given as time of day) would otherwise land
    silently in the last slot or fail deep inside the model.

    Raises:
        DataError: naming the file, the expected range and the values found.
    """
    if tod is not None and len(tod):
        t = np.asarray(tod, dtype=np.float64)
        bad = ~np.isfinite(t) | (t < 0.0) | (t >= 1.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: expected time-of-day fractions in [0, 1), found {int(bad.sum())} "
                f"outside (first {t[i]:g} at step {i}; range "
                f"{np.nanmin(t):g}..{np.nanmax(t):g}). "
                f"A column of step indices or hours must be divided by steps per day or 24."
            )
    if dow is not None and len(dow):
        d = np.asarray(dow, dtype=np.float64)
        bad = ~np.isfinite(d) | (d < 0) | (d > 6) | (d != np.round(d))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: expected day-of-week integers 0..6 (Monday = 0), found "
                f"{int(bad.sum())} other values (first {d[i]:g} at step {i})."
            )


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
        if v.ndim != 3:
            raise DataError(
                f"{src}: expected values of rank 3 [T, N, F], found shape {tuple(v.shape)}."
            )
        if v.dtype != np.float32:
            if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
                raise DataError(f"{src}: expected numeric values, found dtype {v.dtype}.")
            self.values = v = v.astype(np.float32)
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
            f"--set protocol_overrides.add_time_of_day=false (STAEformer-type models need it)."
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
            f"--set protocol_overrides.add_day_of_week=false (STAEformer-type models need it)."
        )

    # ------------------------------------------------------------------ summary
    def describe(self) -> dict[str, Any]:
        """Summary statistics, computed chunk by chunk (safe on large memmaps).

        Returns:
            A JSON-serialisable dict: name, path, shape, frequency, start, per-channel counts of
            zeros / NaN / inf and min / max / mean over finite values, and graph statistics.
        """
        t, n, f = self.shape
        zeros = np.zeros(f, dtype=np.int64)
        nans = np.zeros(f, dtype=np.int64)
        infs = np.zeros(f, dtype=np.int64)
        sums = np.zeros(f, dtype=np.float64)
        counts = np.zeros(f, dtype=np.int64)
        mins = np.full(f, np.inf)
        maxs = np.full(f, -np.inf)
        for sl in _iter_row_chunks(self.values):
            c = np.asarray(self.values[sl], dtype=np.float64)
            fin = np.isfinite(c)
            zeros += (c == 0).sum(axis=(0, 1))
            nans += np.isnan(c).sum(axis=(0, 1))
            infs += np.isinf(c).sum(axis=(0, 1))
            counts += fin.sum(axis=(0, 1))
            sums += np.where(fin, c, 0.0).sum(axis=(0, 1))
            mins = np.minimum(mins, np.where(fin, c, np.inf).min(axis=(0, 1)))
            maxs = np.maximum(maxs, np.where(fin, c, -np.inf).max(axis=(0, 1)))
        names = self.channel_names or [f"ch{i}" for i in range(f)]
        channels = []
        for i in range(f):
            ok = counts[i] > 0
            channels.append(
                {
                    "name": names[i],
                    "zeros": int(zeros[i]),
                    "nan": int(nans[i]),
                    "inf": int(infs[i]),
                    "min": float(mins[i]) if ok else None,
                    "max": float(maxs[i]) if ok else None,
                    "mean": float(sums[i] / counts[i]) if ok else None,
                }
            )
        out: dict[str, Any] = {
            "name": self.name,
            "path": str(self.path) if self.path is not None else None,
            "format": self.meta.get("format"),
            "series": self.series_stats(),
            "shape": [t, n, f],
            "memmap": self.is_memmap,
            "freq_minutes": self.freq_minutes,
            "steps_per_day": self.steps_per_day,
            "start": str(self.start) if self.start is not None else None,
            "null_value": None if math.isnan(self.null_value) else self.null_value,
            "channels": channels,
            "graph": graph_stats(self.adjacency),
        }
        return out

    def series_stats(self, far: float = 20.0, sample_rows: int = 100_000) -> list[dict[str, Any]]:
        """Per channel: each series' min/max, and values far outside the series' robust range.

        A series' robust range is its 5th..95th percentile (from up to ``sample_rows`` rows
        spread over the file); a value is *far* when it lies more than ``far`` times that range
        beyond it -- the signature of a sentinel such as Weather's -9999 that should be the null
        value, not a reading. Min/max and the far counts are exact (a chunked pass).

        Returns:
            One dict per channel: ``name``, ``min``/``max`` per series (``[N]`` lists),
            ``far_low``/``far_high`` counts, ``far_values`` (up to 3 most frequent far values)
            and ``far_series`` (up to 5 series names holding them).
        """
        t, n, f = self.shape
        rows = np.unique(np.linspace(0, t - 1, min(t, sample_rows)).round().astype(np.int64))
        sample = np.asarray(self.values[rows], dtype=np.float64)  # (rows, N, F)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN series
            q01 = np.nanpercentile(sample, 5, axis=0)  # (N, F)
            q99 = np.nanpercentile(sample, 95, axis=0)
        width = np.where(np.isfinite(q99 - q01), q99 - q01, 0.0)
        # a series that is (almost) constant has no range to be far from: never flag it
        lo = np.where(width > 0, q01 - far * width, -np.inf)
        hi = np.where(width > 0, q99 + far * width, np.inf)
        mins = np.full((n, f), np.inf)
        maxs = np.full((n, f), -np.inf)
        far_low = np.zeros((n, f), dtype=np.int64)
        far_high = np.zeros((n, f), dtype=np.int64)
        far_vals: list[dict[float, int]] = [{} for _ in range(f)]
        for sl in _iter_row_chunks(self.values):
            c = np.asarray(self.values[sl], dtype=np.float64)  # (rows, N, F)
            fin = np.isfinite(c)
            mins = np.minimum(mins, np.where(fin, c, np.inf).min(axis=0))
            maxs = np.maximum(maxs, np.where(fin, c, -np.inf).max(axis=0))
            low, high = fin & (c < lo), fin & (c > hi)
            far_low += low.sum(axis=0)
            far_high += high.sum(axis=0)
            for ch in range(f):
                hits = c[..., ch][low[..., ch] | high[..., ch]]
                for v, k in zip(*np.unique(hits, return_counts=True), strict=True):
                    far_vals[ch][float(v)] = far_vals[ch].get(float(v), 0) + int(k)
        names = self.node_names or [f"node {i}" for i in range(n)]
        channels = self.channel_names or [f"ch{i}" for i in range(f)]
        out = []
        for ch in range(f):
            hit = np.flatnonzero((far_low[:, ch] + far_high[:, ch]) > 0)
            top = sorted(far_vals[ch].items(), key=lambda kv: -kv[1])[:3]
            out.append(
                {
                    "name": channels[ch],
                    "min": [float(v) if np.isfinite(v) else None for v in mins[:, ch]],
                    "max": [float(v) if np.isfinite(v) else None for v in maxs[:, ch]],
                    "far_low": int(far_low[:, ch].sum()),
                    "far_high": int(far_high[:, ch].sum()),
                    "far_values": [{"value": v, "count": k} for v, k in top],
                    "far_series": [names[i] for i in hit[:5]],
                }
            )
        return out


def graph_stats(adjacency: np.ndarray | None) -> dict[str, Any] | None:
    """Statistics of an adjacency matrix.

    Args:
        adjacency: ``[N, N]`` weights, or ``None``.

    Returns:
        ``None`` without a graph, else nodes, directed non-zero entries off the diagonal,
        undirected edges, self loops, symmetry, isolated nodes, density and weight range.
    """
    if adjacency is None:
        return None
    a = np.asarray(adjacency, dtype=np.float64)
    n = a.shape[0]
    off = a.copy()
    np.fill_diagonal(off, 0.0)
    nz = off != 0
    nnz = int(nz.sum())
    undirected = int((nz | nz.T).sum() // 2)
    weights = off[nz]
    isolated = int(((~nz).all(axis=0) & (~nz).all(axis=1)).sum())
    return {
        "nodes": int(n),
        "nonzero_offdiag": nnz,
        "undirected_edges": undirected,
        "self_loops": int((np.diag(a) != 0).sum()),
        "symmetric": bool(np.allclose(a, a.T)),
        "isolated_nodes": isolated,
        "density": float(nnz / (n * (n - 1))) if n > 1 else 0.0,
        "weight_min": float(weights.min()) if nnz else None,
        "weight_max": float(weights.max()) if nnz else None,
    }
