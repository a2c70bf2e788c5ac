"""``pems``: the STSGCN/ASTGNN release, ``PEMS0x.npz`` (key ``data``, ``[T, N, F]``) and the edge
list ``PEMS0x.csv`` (``from,to,cost``; PEMS03 adds ``PEMS03.txt`` with its station ids)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    _CSV_EXPANSION,
    GraphWeights,
    PathLike,
    ReaderFormat,
    check_numeric,
    first_csv_line,
    numeric_frame,
    read_csv,
    read_npz_key,
    require_file,
    to_float32,
)
from linearcast.data.readers._files import check_dense_graph, check_text_size, echo, echo_list
from linearcast.data.readers._npy import check_npz
from linearcast.errors import DataError

PEMS_CHANNELS = ["flow", "occupancy", "speed"]
_PEMS_STEM = re.compile(r"^pems0?\d+$", re.IGNORECASE)


def read_pems_graph(
    path: PathLike,
    num_nodes: int,
    *,
    id_file: PathLike | None = None,
    weights: GraphWeights = "connectivity",
) -> np.ndarray:
    """Read a PEMS edge list ``from,to,cost`` (PEMS03: ``from,to,distance`` + an id file).

    Args:
        path: the edge CSV (header line, then one edge per line).
        num_nodes: N of the data the graph belongs to.
        id_file: for PEMS03, the ``.txt`` listing the raw station ids in data row order.
        weights: ``"connectivity"`` (symmetric 0/1, no self loops -- BasicTS's ``adj_mx``),
            ``"distance"`` (the symmetric raw cost), or ``"gaussian"``
            (``exp(-(d/σ)²)`` with σ the std of the costs, DCRNN's kernel).

    Returns:
        ``[N, N]`` float32 symmetric adjacency.
    """
    p = require_file(path, "a PEMS edge list CSV (from,to,cost)")
    df = read_csv(p, "a PEMS edge list CSV (from,to,cost)")
    if df.shape[1] != 3:
        raise DataError(
            f"{p}: expected 3 columns from,to,cost (or from,to,distance), "
            f"found {df.shape[1]}: {echo_list(df.columns)}."
        )
    arr = numeric_frame(df.copy(), str(p))
    ends = arr[:, :2]
    bad = ~np.isfinite(ends) | (ends != np.round(ends))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(
            f"{p}: expected integer node ids in columns from,to, found {echo(ends[row].tolist())} "
            f"at data row {row}."
        )
    src = arr[:, 0].astype(np.int64)
    dst = arr[:, 1].astype(np.int64)
    cost = arr[:, 2]
    if id_file is not None:
        idp = require_file(id_file, "a PEMS id file (one station id per line)")
        check_text_size(idp, "a PEMS id file", _CSV_EXPANSION)
        text = idp.read_text(encoding="utf-8-sig", errors="replace")
        ids = [line.strip() for line in text.splitlines() if line.strip()]
        if len(ids) != num_nodes:
            raise DataError(
                f"{idp}: expected {num_nodes} station ids (N of the data), found {len(ids)}."
            )
        try:
            index = {int(s): i for i, s in enumerate(ids)}
        except ValueError:
            bad = next(s for s in ids if not s.lstrip("+-").isdigit())
            raise DataError(
                f"{idp}: expected one integer station id per line, found {echo(bad)}."
            ) from None
        missing = sorted({int(x) for x in np.concatenate([src, dst]) if int(x) not in index})
        if missing:
            raise DataError(
                f"{p}: expected every station id to be listed in {idp.name}, found "
                f"{len(missing)} unknown ids (e.g. {missing[:3]})."
            )
        src = np.array([index[int(x)] for x in src], dtype=np.int64)
        dst = np.array([index[int(x)] for x in dst], dtype=np.int64)
    hi = int(max(src.max(initial=-1), dst.max(initial=-1)))
    lo = int(min(src.min(initial=0), dst.min(initial=0)))
    if hi >= num_nodes or lo < 0:
        raise DataError(
            f"{p}: the edges refer to node indices {lo}..{hi} but the data has N={num_nodes} "
            f"nodes (expected indices 0..{num_nodes - 1}; PEMS03 needs its id file)."
        )
    check_dense_graph(p, num_nodes)
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float64)
    if weights == "connectivity":
        w = np.ones_like(cost)
    elif weights == "distance":
        w = cost
    elif weights == "gaussian":
        sigma = float(cost.std()) or 1.0
        w = np.exp(-((cost / sigma) ** 2))
    else:
        raise DataError(
            f"{p}: weights must be connectivity, distance or gaussian, got {weights!r}."
        )
    adj[src, dst] = w
    adj[dst, src] = w
    return adj.astype(np.float32)


def read_pems_npz(
    path: PathLike,
    graph: PathLike | Literal["auto"] | None = "auto",
    id_file: PathLike | Literal["auto"] | None = "auto",
    *,
    key: str = "data",
    name: str | None = None,
    steps_per_day: int = 288,
    start: pd.Timestamp | str | None = None,
    weights: GraphWeights = "connectivity",
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read a PEMS0x release: ``PEMS0x.npz`` (key ``data``) + ``PEMS0x.csv`` (+ ``PEMS03.txt``).

    Args:
        path: the ``.npz``; ``data`` is ``[T, N, F]`` with F = 1 (flow) or 3 (flow, occupancy,
            speed); channel 0 is the target.
        graph: edge list CSV; ``"auto"`` uses ``<stem>.csv`` beside the npz when present.
        id_file: PEMS03's station ids; ``"auto"`` uses ``<stem>.txt`` beside the npz when present.
        key: the array key in the npz.
        name: dataset name (default: the file stem).
        steps_per_day: 288 (5-minute steps).
        start: first timestamp when known; without it day 0 is the first day of the file
            (the BasicTS/STAEformer convention for day-of-week).
        weights: see :func:`read_pems_graph`.
        null_value: missing readings are zeros in PEMS.
        non_finite: ``"error"`` or ``"null"`` (see :func:`handle_non_finite`).

    Returns:
        A dataset with ``values [T, N, F]`` (memory-mapped when the npz stores float32
        uncompressed; the public releases are compressed and load into memory).
    """
    p = require_file(path, "a PEMS .npz file with key 'data'")
    check_npz(p, key)
    arr, _ = read_npz_key(p, key)
    check_numeric(arr, f"{p} (key {key!r})")
    if arr.ndim != 3:
        raise DataError(
            f"{p}: expected key {key!r} of rank 3 [T, N, F], found shape {tuple(arr.shape)}."
        )
    values = handle_non_finite(to_float32(arr, p), str(p), null_value, non_finite)
    n = values.shape[1]
    if graph == "auto":
        cand = p.with_suffix(".csv")
        graph = cand if cand.exists() else None
    if id_file == "auto":
        cand = p.with_suffix(".txt")
        id_file = cand if (cand.exists() and graph is not None) else None
    adj = None
    if graph is not None:
        adj = read_pems_graph(graph, n, id_file=id_file, weights=weights)
    f = values.shape[2]
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        steps_per_day=steps_per_day,
        start=pd.Timestamp(start) if start is not None else None,
        adjacency=adj,
        channel_names=PEMS_CHANNELS[:f] if f <= 3 else None,
        null_value=null_value,
        meta={"format": "pems", "graph": str(graph) if graph else None, "weights": weights},
    )


def is_edge_list(path: Path) -> bool:
    """Whether a CSV starts with a ``from,to,...`` header (a PEMS edge list)."""
    return path.is_file() and first_csv_line(path)[:2] == ["from", "to"]


def _claims(path: Path) -> bool:
    return bool(_PEMS_STEM.match(path.stem)) or is_edge_list(path.with_suffix(".csv"))


FORMAT = ReaderFormat(
    name="pems",
    read=read_pems_npz,
    files="PEMS0x.npz (key 'data', [T, N, F]) + PEMS0x.csv edge list from,to,cost "
    "(+ PEMS03.txt ids): the STSGCN/ASTGNN release",
    suffixes=(".npz",),
    claims=_claims,
    priority=10,
)
