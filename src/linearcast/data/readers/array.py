"""``array``: a generic ``.npy`` (memory-mapped) or ``.npz`` holding ``[T, N]`` or ``[T, N, F]``,
with an adjacency beside it when one is named like a graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    PathLike,
    ReaderFormat,
    as_3d,
    check_numeric,
    minutes_in_name,
    read_npy,
    read_npz_key,
    require_file,
    to_float32,
)
from linearcast.data.readers._npy import check_npy, check_npz
from linearcast.data.readers.graph import resolve_adjacency
from linearcast.data.readers.pems import is_edge_list


def read_array(
    path: PathLike,
    *,
    key: str | None = None,
    adjacency: PathLike | np.ndarray | Literal["auto"] | None = "auto",
    name: str | None = None,
    freq_minutes: int | None = None,
    steps_per_day: int | None = None,
    start: pd.Timestamp | str | None = None,
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
    graph_drop: Sequence[int] = (),
) -> TimeSeriesDataset:
    """Read a generic ``.npy`` (memory-mapped) or ``.npz`` holding ``[T, N]`` or ``[T, N, F]``.

    Args:
        path: the array file.
        key: the npz key (default ``data``, or the only array).
        adjacency: an adjacency file (see :func:`~linearcast.data.read_adjacency`) or array
            ``[N, N]``; ``"auto"``: the one file beside it named like a graph (``*adj*``,
            ``graph*``), when there is one; ``None``/``"none"``: no graph.
        name: dataset name (default: the file stem).
        freq_minutes: step in minutes (default: stated in the name, e.g. ``..-30min-..``).
        steps_per_day: steps per day, when known.
        start: first timestamp, when known.
        null_value: 0.0 or NaN.
        non_finite: ``"error"`` or ``"null"``.
        graph_drop: node indices to delete from the graph.

    Returns:
        A dataset; float32 ``.npy`` files stay memory-mapped (other dtypes are converted in RAM).
    """
    p = require_file(path, "a .npy or .npz array")
    if p.suffix.lower() == ".npy":
        check_npy(p, "a numpy array [T, N] or [T, N, F]")
        arr = read_npy(p, "a numpy array [T, N] or [T, N, F]")
        label = str(p)
    else:
        check_npz(p, key)
        arr, used = read_npz_key(p, key)
        label = f"{p} (key {used!r})"
    check_numeric(arr, label)
    values = handle_non_finite(to_float32(as_3d(arr, label), label), str(p), null_value, non_finite)
    # a CSV of the same stem may be the graph (a square matrix), as an edge list is for PEMS
    same_stem = [c for c in (p.with_suffix(".csv"),) if c.exists() and not is_edge_list(c)]
    adj, note = resolve_adjacency(
        adjacency, values.shape[1], p, values.shape, drop=graph_drop, candidates=same_stem
    )
    if freq_minutes is None and steps_per_day is None:
        freq_minutes = minutes_in_name(p)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        steps_per_day=steps_per_day,
        start=pd.Timestamp(start) if start is not None else None,
        adjacency=adj,
        null_value=null_value,
        meta={"format": "array", "graph_note": note},
    )


FORMAT = ReaderFormat(
    name="array",
    read=read_array,
    files="a generic .npy / .npz holding [T, N] or [T, N, F] (+ an adjacency beside it)",
    suffixes=(".npy", ".npz"),
    priority=0,
)
