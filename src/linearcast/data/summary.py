"""Summaries of a dataset for ``linearcast data describe`` and :meth:`TimeSeriesDataset.describe
<linearcast.data.dataset.TimeSeriesDataset.describe>`: per-channel counts and ranges, per-series
outliers (sentinels such as -9999) and graph statistics. Chunked, so safe on large memmaps.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.data.checks import _iter_row_chunks

if TYPE_CHECKING:
    from linearcast.data.dataset import TimeSeriesDataset


def describe(dataset: TimeSeriesDataset) -> dict[str, Any]:
    """Summary statistics, computed chunk by chunk (safe on large memmaps).

    Returns:
        A JSON-serialisable dict: name, path, shape, frequency, start, per-channel counts of
        zeros / NaN / inf / readings equal to the null value, the share of missing readings
        (NaN, ±inf or the null value: what training masks and fills), min / max / mean over
        the readings (finite values other than the null value), and graph statistics.
    """
    t, n, f = dataset.shape
    null = dataset.null_value
    nulls = np.zeros(f, dtype=np.int64)
    zeros = np.zeros(f, dtype=np.int64)
    nans = np.zeros(f, dtype=np.int64)
    infs = np.zeros(f, dtype=np.int64)
    sums = np.zeros(f, dtype=np.float64)
    counts = np.zeros(f, dtype=np.int64)
    mins = np.full(f, np.inf)
    maxs = np.full(f, -np.inf)
    for sl in _iter_row_chunks(dataset.values):
        c = np.asarray(dataset.values[sl], dtype=np.float64)
        zeros += (c == 0).sum(axis=(0, 1))
        nans += np.isnan(c).sum(axis=(0, 1))
        infs += np.isinf(c).sum(axis=(0, 1))
        fin = _readings(c, null)
        if not math.isnan(null):
            nulls += (np.isfinite(c) & ~fin).sum(axis=(0, 1))
        counts += fin.sum(axis=(0, 1))
        sums += np.where(fin, c, 0.0).sum(axis=(0, 1))
        mins = np.minimum(mins, np.where(fin, c, np.inf).min(axis=(0, 1)))
        maxs = np.maximum(maxs, np.where(fin, c, -np.inf).max(axis=(0, 1)))
    names = dataset.channel_names or [f"ch{i}" for i in range(f)]
    channels = []
    for i in range(f):
        ok = counts[i] > 0
        channels.append(
            {
                "name": names[i],
                "zeros": int(zeros[i]),
                "nan": int(nans[i]),
                "inf": int(infs[i]),
                "null": int(nulls[i]),
                "missing_share": float((nans[i] + infs[i] + nulls[i]) / max(t * n, 1)),
                "min": float(mins[i]) if ok else None,
                "max": float(maxs[i]) if ok else None,
                "mean": float(sums[i] / counts[i]) if ok else None,
            }
        )
    out: dict[str, Any] = {
        "name": dataset.name,
        "path": str(dataset.path) if dataset.path is not None else None,
        "format": dataset.meta.get("format"),
        "series": series_stats(dataset),
        "shape": [t, n, f],
        "memmap": dataset.is_memmap,
        "freq_minutes": dataset.freq_minutes,
        "steps_per_day": dataset.steps_per_day,
        "start": str(dataset.start) if dataset.start is not None else None,
        "null_value": None if math.isnan(dataset.null_value) else dataset.null_value,
        "channels": channels,
        "graph": graph_stats(dataset.adjacency),
    }
    return out


def _readings(c: np.ndarray, null: float) -> np.ndarray:
    """Where ``c`` holds readings: finite and not the null value (within 5e-5, as the loss
    masks it)."""
    fin = np.isfinite(c)
    return fin if math.isnan(null) else fin & ~np.isclose(c, null, atol=5e-5, rtol=0.0)


def series_stats(
    dataset: TimeSeriesDataset, far: float = 20.0, sample_rows: int = 100_000
) -> list[dict[str, Any]]:
    """Per channel: each series' min/max, and values far outside the series' robust range
    (over its readings: the null value is left out).

    A series' robust range is its 5th..95th percentile (from up to ``sample_rows`` rows
    spread over the file); a value is *far* when it lies more than ``far`` times that range
    beyond it -- the signature of a sentinel such as Weather's -9999 that should be the null
    value, not a reading. Min/max and the far counts are exact (a chunked pass).

    Returns:
        One dict per channel: ``name``, ``min``/``max`` per series (``[N]`` lists),
        ``far_low``/``far_high`` counts, ``far_values`` (up to 3 most frequent far values)
        and ``far_series`` (up to 5 series names holding them).
    """
    t, n, f = dataset.shape
    rows = np.unique(np.linspace(0, t - 1, min(t, sample_rows)).round().astype(np.int64))
    sample = np.asarray(dataset.values[rows], dtype=np.float64)  # (rows, N, F)
    sample[~_readings(sample, dataset.null_value)] = np.nan  # the null value is no reading
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
    for sl in _iter_row_chunks(dataset.values):
        c = np.asarray(dataset.values[sl], dtype=np.float64)  # (rows, N, F)
        fin = _readings(c, dataset.null_value)
        mins = np.minimum(mins, np.where(fin, c, np.inf).min(axis=0))
        maxs = np.maximum(maxs, np.where(fin, c, -np.inf).max(axis=0))
        low, high = fin & (c < lo), fin & (c > hi)
        far_low += low.sum(axis=0)
        far_high += high.sum(axis=0)
        for ch in range(f):
            hits = c[..., ch][low[..., ch] | high[..., ch]]
            for v, k in zip(*np.unique(hits, return_counts=True), strict=True):
                far_vals[ch][float(v)] = far_vals[ch].get(float(v), 0) + int(k)
    names = dataset.node_names or [f"node {i}" for i in range(n)]
    channels = dataset.channel_names or [f"ch{i}" for i in range(f)]
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


__all__ = ["describe", "graph_stats", "series_stats"]
