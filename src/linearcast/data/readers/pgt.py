"""``pgt``: the JSON layouts of pytorch-geometric-temporal (chickenpox, pedalme, england_covid)
and networkx node-link graphs whose nodes carry the series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linearcast.data.checks import to_float32
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import PathLike, ReaderFormat, require_file
from linearcast.data.readers._files import (
    check_dense_graph,
    check_text_size,
    echo,
    echo_list,
    first_line,
)
from linearcast.data.readers.graph import edges_to_adj
from linearcast.errors import DataError

# bytes of Python objects per byte of JSON (a list of small floats: 32 bytes per ~3 chars)
_JSON_EXPANSION = 16

# Frequencies of the pytorch-geometric-temporal files (the JSON does not say).
_PGT_FREQ_MINUTES = {"chickenpox": 7 * 1440, "pedalme_london": 7 * 1440, "england_covid": 1440}


def _from_node_link(
    d: dict[str, Any], src: str, series_key: str | None, file_size: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(series [T, N], adjacency [N, N], node names)`` of a networkx node-link document
    (``file_size``: of the JSON, to refuse an N it cannot hold)."""
    nodes, links = d["nodes"], d["links"]
    if not isinstance(nodes, list) or not nodes or not all(isinstance(x, dict) for x in nodes):
        raise DataError(f"{src}: expected 'nodes' as a non-empty list of objects.")
    if not isinstance(links, list) or not all(isinstance(x, dict) for x in links):
        raise DataError(f"{src}: expected 'links' as a list of objects.")
    listed = [k for k, v in nodes[0].items() if isinstance(v, list) and k != "id"]
    if series_key is None:
        if len(listed) != 1:
            raise DataError(
                f"{src}: expected one list-valued node attribute holding the series, found "
                f"{echo_list(listed) if listed else 'none'}; choose with --set "
                f"data_options.series_key=NAME."
            )
        series_key = listed[0]
    missing = [i for i, node in enumerate(nodes) if not isinstance(node.get(series_key), list)]
    if missing:
        raise DataError(
            f"{src}: expected every node to have a list {echo(series_key)}, missing at node "
            f"{missing[0]} ({len(missing)} in all)."
        )
    lengths = {len(node[series_key]) for node in nodes}
    if len(lengths) != 1:
        raise DataError(
            f"{src}: expected series of one length under {echo(series_key)}, found lengths "
            f"{sorted(lengths)[:5]}."
        )
    try:
        arr = np.asarray([node[series_key] for node in nodes], dtype=np.float64).T  # (T, N)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"{src}: expected numbers in the node series ({first_line(err, 80)})."
        ) from err
    ids = [node.get("id", i) for i, node in enumerate(nodes)]
    index = {json.dumps(x): i for i, x in enumerate(ids)}
    if len(index) != len(ids):
        raise DataError(f"{src}: expected unique node ids, found {len(ids) - len(index)} repeated.")
    n = len(nodes)
    check_dense_graph(src, n, file_size=file_size)
    adj = np.zeros((n, n), dtype=np.float64)
    for j, link in enumerate(links):
        try:
            a, b = index[json.dumps(link["source"])], index[json.dumps(link["target"])]
            w = float(link.get("weight", 1.0))
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{src}: link {j} ({echo(link)}) must have a source and a target among the node "
                f"ids and a numeric weight."
            ) from None
        adj[a, b] += w
        if not d.get("directed", False) and a != b:
            adj[b, a] += w
    return arr, adj.astype(np.float32), [str(x) for x in ids]


def read_pgt_json(
    path: PathLike,
    *,
    name: str | None = None,
    freq_minutes: int | None = None,
    null_value: float = float("nan"),
    non_finite: NonFinitePolicy = "error",
    series_key: str | None = None,
    start: str | None = None,
) -> TimeSeriesDataset:
    """Read the pytorch-geometric-temporal JSON layouts.

    Layouts recognised by their keys:

    - ``FX`` ``[T, N]`` + ``edges`` (+ ``node_ids`` name -> index): chickenpox, weight 1;
    - ``X`` ``[T, N]`` + ``edges`` + ``weights``: pedalme_london;
    - ``y`` ``[T, N]`` + ``edge_mapping`` (``edge_index`` / ``edge_weight`` per time period):
      england_covid; the graph changes daily and ``adjacency`` is the mean weight over periods;
    - networkx node-link (``nodes``, ``links``, ``directed``, ``multigraph``, ``graph``): each
      node's series is a list-valued attribute (``series_key``; found when there is one), each
      link's ``weight`` (default 1) enters the adjacency, both ways unless ``directed``.

    Args:
        path: the JSON file.
        name: dataset name (default: the file stem).
        freq_minutes: step in minutes (default: weekly for chickenpox and pedalme_london, daily
            for england_covid, else unknown).
        null_value: NaN (values are counts or z-scores, zeros are real readings).
        non_finite: ``"error"`` or ``"null"``.
        series_key: node-link files: the node attribute holding the series.
        start: first timestamp, when known (the files do not say; chickenpox: 2005-01-03).

    Returns:
        A dataset with ``values [T, N, 1]`` and a static adjacency ``[N, N]``.
    """
    p = require_file(path, "a pytorch-geometric-temporal JSON file")
    d = _load_object(p)
    node_names: list[str] | None
    if "nodes" in d and "links" in d:
        layout = "node-link"
        arr, adj, node_names = _from_node_link(d, str(p), series_key, p.stat().st_size)
    else:
        layout, arr, adj, node_names = _from_matrix_layout(d, str(p), p.stat().st_size)
    arr = to_float32(arr, str(p), node_names)
    values = handle_non_finite(arr[:, :, None], str(p), null_value, non_finite)
    if freq_minutes is None:
        freq_minutes = _PGT_FREQ_MINUTES.get(p.stem)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        adjacency=adj,
        node_names=node_names,
        start=pd.Timestamp(start) if start is not None else None,
        null_value=null_value,
        meta={"format": "pgt", "layout": layout},
    )


def _load_object(p: Path) -> dict[str, Any]:
    """The JSON object in ``p`` (a :class:`DataError` naming the file otherwise)."""
    check_text_size(p, "a JSON file", _JSON_EXPANSION)
    try:
        d = json.loads(p.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(
            f"{p}: expected valid UTF-8 JSON, could not parse it ({first_line(err, 100)})."
        ) from None
    if not isinstance(d, dict):
        raise DataError(f"{p}: expected a JSON object, found {type(d).__name__}.")
    return d


def _from_matrix_layout(
    d: dict[str, Any], src: str, file_size: int
) -> tuple[str, np.ndarray, np.ndarray, list[str] | None]:
    """``(layout, series [T, N], adjacency [N, N], node names or None)`` of the FX+edges,
    X+edges+weights and y+edge_mapping layouts (see :func:`read_pgt_json`; ``file_size``: of
    the JSON, to refuse an N it cannot hold)."""
    if "FX" in d and "edges" in d:
        layout, key = "FX+edges", "FX"
    elif "X" in d and "edges" in d:
        layout, key = "X+edges+weights", "X"
    elif "y" in d and "edge_mapping" in d:
        layout, key = "y+edge_mapping", "y"
    else:
        raise DataError(
            f"{src}: expected a pytorch-geometric-temporal layout (keys FX+edges, "
            f"X+edges+weights, y+edge_mapping, or networkx node-link nodes+links), found keys "
            f"{echo_list(sorted(d))}."
        )
    try:
        arr = np.asarray(d[key], dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{src}: expected a numeric [T, N] matrix under {key!r} ({first_line(err, 80)})."
        ) from err
    if arr.ndim != 2:
        raise DataError(f"{src}: expected {key!r} of rank 2 [T, N], found shape {arr.shape}.")
    n = arr.shape[1]
    node_names: list[str] | None = None
    if layout == "FX+edges":
        adj = edges_to_adj(d["edges"], None, n, src, file_size=file_size)
        ids = d.get("node_ids")
        if isinstance(ids, dict) and len(ids) == n:
            node_names = [k for k, _ in sorted(ids.items(), key=lambda kv: kv[1])]
    elif layout == "X+edges+weights":
        adj = edges_to_adj(d["edges"], d.get("weights"), n, src, file_size=file_size)
    else:
        em = d["edge_mapping"]
        ei, ew = em.get("edge_index", {}), em.get("edge_weight", {})
        periods = sorted(ei, key=int)
        check_dense_graph(src, n, file_size=file_size)
        acc = np.zeros((n, n), dtype=np.float64)
        for t in periods:
            what = f"edges of period {echo(t, 20)}"
            acc += edges_to_adj(ei[t], ew.get(t), n, src, what=what, file_size=file_size)
        adj = (acc / max(1, len(periods))).astype(np.float32)
    return layout, arr, adj, node_names


FORMAT = ReaderFormat(
    name="pgt",
    read=read_pgt_json,
    files="pytorch-geometric-temporal JSON (chickenpox, pedalme, england_covid) or a "
    "networkx node-link graph whose nodes carry the series",
    suffixes=(".json",),
    priority=5,
)
