"""Graphs: adjacency matrices from CSV (with or without header and index), NumPy and pickles,
edge lists to matrices, and finding the adjacency that sits beside a data file."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linearcast.data.readers._common import (
    PathLike,
    read_csv,
    read_npy,
    read_npz_key,
    require_file,
)
from linearcast.data.readers._files import check_dense_graph
from linearcast.data.readers._npy import check_npy, check_npz
from linearcast.data.safe_pickle import load_pickle_file
from linearcast.errors import DataError

ADJACENCY_SUFFIXES = (".csv", ".txt", ".npy", ".npz", ".pkl")
# words that mark a file beside the data as its graph (los_adj.csv, W_adj_matrix.csv, graph.csv)
_GRAPH_WORDS = ("adj", "graph", "distance", "dist", "weight")


def read_adjacency_pickle(path: PathLike) -> tuple[np.ndarray, list[str] | None]:
    """Read an ``adj_mx.pkl``: a DCRNN list ``[sensor_ids, id_to_ind, adj]`` or a bare matrix.

    Args:
        path: the pickle (BasicTS copies both layouts to ``adj_mx.pkl``).

    Returns:
        ``(adjacency [N, N] float32, sensor_ids or None)``.
    """
    p = require_file(path, "a pickled adjacency (adj_mx.pkl)")
    obj = load_pickle_file(p, "a pickled adjacency (DCRNN/BasicTS adj_mx.pkl)")
    ids: list[str] | None = None
    if isinstance(obj, (list, tuple)) and len(obj) == 3:
        ids = [x.decode() if isinstance(x, bytes) else str(x) for x in obj[0]]
        adj = np.asarray(obj[2])
    elif isinstance(obj, np.ndarray):
        adj = obj
    else:
        raise DataError(
            f"{p}: expected [sensor_ids, id_to_ind, adj] or an [N, N] array, "
            f"found {type(obj).__name__}."
        )
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise DataError(f"{p}: expected a square adjacency [N, N], found shape {adj.shape}.")
    if ids is not None and len(ids) != adj.shape[0]:
        raise DataError(
            f"{p}: expected {adj.shape[0]} sensor ids (one per adjacency row), found {len(ids)}."
        )
    return adj.astype(np.float32), ids


def _as_float(cells: np.ndarray) -> np.ndarray | None:
    """The cells as float64, or None when any is not a number (empty corner cells excepted)."""
    try:
        return np.array([[float(c) if c != "" else np.nan for c in row] for row in cells])
    except ValueError:
        return None


def _is_labels(cells: np.ndarray) -> bool:
    """Whether a header row / index column holds labels: text, or the indices 0..k-1 / 1..k."""
    vals = [c for c in cells if c != ""]
    try:
        nums = np.array([float(c) for c in vals])
    except ValueError:
        return True
    k = len(nums)
    return k > 2 and (
        np.array_equal(nums, np.arange(k)) or np.array_equal(nums, np.arange(1, k + 1))
    )


def _square_from_csv(p: Path) -> np.ndarray:
    """A square numeric matrix from a CSV that may carry a header row and/or an index column."""
    frame = read_csv(p, "an [N, N] adjacency CSV", header=None, dtype=str, keep_default_na=False)
    # strip per column: np.char on the whole table would pad every cell to the longest one
    cells = frame.apply(lambda col: col.str.strip()).to_numpy(dtype=object)
    rows, cols = cells.shape
    gaps: np.ndarray | None = None  # a square of numbers but for empty or NaN cells
    # try the plain matrix first, then with the labels peeled off
    for drop_row, drop_col in ((0, 0), (1, 0), (0, 1), (1, 1)):
        if rows - drop_row != cols - drop_col:
            continue
        if drop_row and not _is_labels(cells[0, drop_col:]):
            continue
        if drop_col and not _is_labels(cells[drop_row:, 0]):
            continue
        values = _as_float(cells[drop_row:, drop_col:])
        if values is not None and not np.isnan(values).any():
            return values
        if values is not None and gaps is None:
            gaps = values
    if gaps is not None:
        r, c = (int(i) for i in np.argwhere(np.isnan(gaps))[0])
        raise DataError(
            f"{p}: expected a weight in every cell of the [{len(gaps)}, {len(gaps)}] adjacency, "
            f"found {int(np.isnan(gaps).sum())} empty or NaN cells (first at row {r}, column "
            f"{c}); write 0 for no edge, or give no graph with --set data_options.adjacency=none."
        )
    raise DataError(
        f"{p}: expected a square numeric [N, N] adjacency CSV (a header row of labels and an "
        f"index column are allowed), found {rows} rows x {cols} columns that do not form one."
    )


def read_adjacency(path: PathLike, *, drop: Sequence[int] = ()) -> np.ndarray:
    """Read a dense adjacency ``[N, N]`` from ``.csv``/``.txt``, ``.npy``, ``.npz`` or ``.pkl``.

    A CSV may be a bare matrix (Los-loop's ``los_adj.csv``), carry a header row of labels or of
    column indices (NYC taxi's ``W_adj_matrix.csv``) and/or an index column (HZMetro's
    ``graph.csv``): rows and columns of labels are recognised and dropped.

    Args:
        path: the adjacency file.
        drop: node indices to delete (rows and columns) after reading, e.g. a station the data
            does not have.

    Returns:
        ``[N, N]`` float32.
    """
    p = require_file(path, "an adjacency file (.npy, .npz, .pkl or .csv)")
    suffix = p.suffix.lower()
    if suffix == ".pkl":
        adj = read_adjacency_pickle(p)[0]
    elif suffix == ".npy":
        check_npy(p, "an [N, N] adjacency")
        adj = read_npy(p, "an [N, N] adjacency")
    elif suffix == ".npz":
        check_npz(p, None, default="adj")
        adj, _ = read_npz_key(p, None, default="adj")
    else:
        adj = _square_from_csv(p)
    adj = np.asarray(adj)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise DataError(f"{p}: expected a square adjacency [N, N], found shape {adj.shape}.")
    if drop:
        n = adj.shape[0]
        bad = [i for i in drop if not 0 <= int(i) < n]
        if bad:
            raise DataError(f"{p}: cannot drop nodes {bad}: the graph has nodes 0..{n - 1}.")
        keep = np.setdiff1d(np.arange(n), np.asarray(drop, dtype=np.int64))
        adj = adj[np.ix_(keep, keep)]
    with np.errstate(over="ignore"):
        out = adj.astype(np.float32)
    if not np.isfinite(out).all():
        raise DataError(
            f"{p}: expected finite edge weights (float32), found {int((~np.isfinite(out)).sum())} "
            f"NaN, infinite or too large; fix the file, choose another with --set "
            f"data_options.adjacency=FILE, or use none with --set data_options.adjacency=none."
        )
    return out


def looks_like_adjacency(path: Path) -> bool:
    """Whether a file beside the data is named like a graph (``*adj*``, ``graph*``, ...)."""
    name = path.stem.lower()
    return path.suffix.lower() in ADJACENCY_SUFFIXES and any(w in name for w in _GRAPH_WORDS)


def sibling_adjacency(data_path: Path) -> Path | None:
    """The graph file beside ``data_path`` when exactly one file there is named like one."""
    cands = sorted(
        c for c in data_path.parent.iterdir() if c != data_path and looks_like_adjacency(c)
    )
    # a FIFO or device named like a graph is named in the error read_adjacency gives
    return cands[0] if len(cands) == 1 else None


def resolve_adjacency(
    adjacency: PathLike | np.ndarray | None,
    n: int,
    data_path: Path,
    data_shape: Any,
    *,
    drop: Sequence[int] = (),
    candidates: Sequence[Path] = (),
) -> tuple[np.ndarray | None, str | None]:
    """The adjacency a reader was given (``"auto"``: found beside the data), checked against N.

    The adjacency must have N nodes (after ``drop``), else a :class:`DataError` says which
    ``--set`` options fix it (another file, dropping a node, or no graph).

    Args:
        adjacency: a file, an array, ``"auto"`` or ``None`` (no graph); ``"none"`` also means no
            graph (the value a TOML ``--set`` can spell).
        n: N of the data.
        data_path: the data file (for the automatic search and the messages).
        data_shape: the data's shape, for the messages.
        drop: node indices to delete from the graph first.
        candidates: files to try first in the automatic search (e.g. Los-loop's naming).

    Returns:
        ``(adjacency or None, a note for meta["graph_note"] or None)`` (the note is reserved
        for facts ``describe`` should show; None today).
    """
    if adjacency is None or (isinstance(adjacency, str) and adjacency.lower() == "none"):
        return None, None
    if isinstance(adjacency, np.ndarray):
        check_graph_size(adjacency, n, "the adjacency array", data_shape)
        return adjacency.astype(np.float32), None
    explicit = not (isinstance(adjacency, str) and adjacency == "auto")
    found = Path(adjacency) if explicit else None
    if found is None:
        found = next((c for c in candidates if c.exists()), None) or sibling_adjacency(data_path)
    if found is None:
        return None, None
    how = "given" if explicit else "found beside the data"
    try:
        adj = read_adjacency(found, drop=drop)
    except DataError as err:
        if explicit:
            raise
        raise DataError(
            f"{err} (This file was taken as the graph because of its name; set another with "
            f"--set data_options.adjacency=FILE, or none with --set data_options.adjacency=none.)"
        ) from None
    if not explicit and not drop and adj.shape[0] != n:
        # a graph nobody asked for that does not fit: models without a graph must still run
        # (HZMetro's graph.csv has one station more than its flows); a graph model then
        # stops with the engine's "needs a graph" sentence, and this warning says why
        warnings.warn(
            f"{found}: found beside the data but it has {adj.shape[0]} nodes for N={n} "
            f"series, so it is not used. {_graph_fix_hint(adj.shape[0], n)}",
            stacklevel=2,
        )
        return None, None
    check_graph_size(adj, n, found, data_shape, hint=True, how=how)
    return adj, None


def _graph_fix_hint(graph_n: int, n: int) -> str:
    hint = "Choose with --set data_options.adjacency=FILE"
    if graph_n == n + 1:
        hint += (
            f", drop the extra node with --set data_options.graph_drop=[INDEX] (e.g. "
            f"[{graph_n - 1}], the last one; the file does not say which one is extra)"
        )
    return hint + ", or --set data_options.adjacency=none for no graph."


def check_graph_size(
    adj: np.ndarray,
    n: int,
    graph_path: Path | str,
    data_shape: Any,
    *,
    hint: bool = False,
    how: str = "",
) -> None:
    """A :class:`DataError` when the graph's node count differs from the data's N (``hint``:
    say which ``--set`` options choose another graph, drop a node or use none)."""
    if adj.shape[0] != n:
        fix = f" {_graph_fix_hint(adj.shape[0], n)}" if hint else ""
        where = f" (the graph was {how})" if how else ""
        raise DataError(
            f"{graph_path}: the graph has {adj.shape[0]} nodes but the data has N={n} series "
            f"(data shape {tuple(data_shape)}); expected a ({n}, {n}) adjacency{where}.{fix}"
        )


def edges_to_adj(
    edges: Any,
    weights: Any,
    n: int,
    source: str,
    what: str = "edges",
    *,
    file_size: int | None = None,
) -> np.ndarray:
    """A dense ``[n, n]`` float32 adjacency from ``[E, 2]`` (or ``[2, E]``) index pairs.

    ``file_size``: the size of the file declaring ``n`` (see
    :func:`~linearcast.data.readers._files.check_dense_graph`).
    """
    check_dense_graph(source, n, file_size=file_size)
    e = np.asarray(edges, dtype=np.int64)
    if e.size == 0:
        return np.zeros((n, n), dtype=np.float32)
    if e.ndim != 2 or 2 not in e.shape:
        raise DataError(f"{source}: expected {what} as [E, 2] index pairs, found shape {e.shape}.")
    if e.shape[1] != 2:
        e = e.T
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(e):
        raise DataError(f"{source}: expected {len(e)} edge weights, found {len(w)}.")
    if e.min() < 0 or e.max() >= n:
        raise DataError(
            f"{source}: the {what} refer to nodes {int(e.min())}..{int(e.max())} but the data "
            f"has N={n} nodes (expected indices 0..{n - 1})."
        )
    adj = np.zeros((n, n), dtype=np.float64)
    np.add.at(adj, (e[:, 0], e[:, 1]), w)
    return adj.astype(np.float32)
