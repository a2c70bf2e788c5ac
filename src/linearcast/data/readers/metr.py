"""``metr``: METR-LA / PEMS-BAY as DCRNN ships them, a pandas HDF5 frame (time index x sensors)
and ``adj_mx.pkl``. PyTables' unpickling runs through the restricted unpickler.

An HDF5 file without pandas frames (``tables.create_array``, ``h5py``'s ``create_dataset``) is
read like a ``.npy`` when it holds one numeric 2-D/3-D array, or the one ``key`` names; else
the error lists the datasets it holds, each with its shape and dtype."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data import isolate
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    PathLike,
    ReaderFormat,
    as_3d,
    check_timestamps,
    minutes_in_name,
    numeric_frame,
    require_file,
    to_float32,
)
from linearcast.data.readers._files import (
    check_alloc,
    echo,
    echo_list,
    first_line,
    limit_given,
    memory_budget,
    memory_limit,
)
from linearcast.data.readers.graph import (
    check_graph_size,
    read_adjacency_pickle,
    resolve_adjacency,
)
from linearcast.data.safe_pickle import pytables_restricted
from linearcast.errors import DataError


def read_metr_h5(
    path: PathLike,
    adjacency: PathLike | Literal["auto"] | None = "auto",
    *,
    key: str | None = None,
    name: str | None = None,
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read METR-LA / PEMS-BAY: a pandas HDF5 frame (time index x sensor columns) + adj pickle.

    Args:
        path: the ``.h5`` (DCRNN's ``metr-la.h5`` uses key ``df``, ``pems-bay.h5`` key
            ``speed``; ``None`` reads the only frame in the file, or in a file without frames
            its only numeric 2-D/3-D array ``[T, N]`` / ``[T, N, F]``).
        adjacency: DCRNN ``adj_mx.pkl`` (``[sensor_ids, id_to_ind, adj]``); ``"auto"`` tries
            ``adj_mx.pkl``, ``adj_mx_bay.pkl``, ``adj_<stem>.pkl`` beside the file and keeps the
            one whose size matches N. Rows are reordered to the frame's column order.
        key: HDF5 key of a frame, or path of an array (``data``, ``/group/data``).
        name: dataset name (default: the file stem).
        null_value: zeros mark missing readings.
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset with ``values [T, N, 1]`` (speed, mph) and its timestamps; from a plain
        array ``[T, N, F]`` without timestamps (give ``freq_minutes`` / ``--freq``), the graph
        found as for ``array``.
    """
    p = require_file(path, "a pandas HDF5 file (.h5)")
    meta, arrays = isolate.run_isolated("hdf5", p, key=key, limit=_limit_bytes())
    if meta.get("array"):
        return _array_dataset(p, meta, arrays, adjacency, name, null_value, non_finite)
    df, key = _frame(p, meta, arrays)
    freq = check_timestamps(pd.DatetimeIndex(df.index), str(p))
    columns = [str(c) for c in df.columns]
    raw = df.to_numpy()
    raw = raw if raw.dtype.kind in "fiu" else df.to_numpy(dtype=np.float64)
    arr = to_float32(raw, str(p), columns)
    values = handle_non_finite(arr[:, :, None], str(p), null_value, non_finite)
    adj, adjacency = _sensor_graph(p, adjacency, columns, values.shape)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq,
        timestamps=df.index,
        adjacency=adj,
        node_names=columns,
        channel_names=["speed"],
        null_value=null_value,
        meta={"format": "metr", "key": key, "adjacency": str(adjacency) if adjacency else None},
    )


def _limit_bytes() -> int | None:
    """The user's ``memory_limit_gb`` in bytes, for the child (None: its own default)."""
    return memory_budget() if limit_given() else None


def _array_dataset(
    p: Path,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    adjacency: PathLike | Literal["auto"] | None,
    name: str | None,
    null_value: float,
    non_finite: NonFinitePolicy,
) -> TimeSeriesDataset:
    """A plain HDF5 array ``[T, N]`` / ``[T, N, F]`` (no timestamps), read like ``array``."""
    arr, used = arrays.get("array"), meta.get("key")
    if (
        arr is None
        or arr.ndim not in (2, 3)
        or arr.dtype.hasobject
        or arr.dtype.kind not in "fiu"
        or not isinstance(used, str)
    ):
        raise DataError(f"{p}: the HDF5 parser returned a malformed array; re-export the file.")
    label = f"{p} (array {used})"
    values = handle_non_finite(to_float32(as_3d(arr, label), label), str(p), null_value, non_finite)
    adj, note = resolve_adjacency(adjacency, values.shape[1], p, values.shape)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=minutes_in_name(p),
        adjacency=adj,
        null_value=null_value,
        meta={"format": "metr", "key": used, "layout": "hdf5 array", "graph_note": note},
    )


def _frame(
    p: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, str]:
    """The time-indexed frame the child (:func:`hdf5_frame_worker`) parsed, and its key."""
    values, index = arrays.get("values"), arrays.get("index")
    columns, used = meta.get("columns"), meta.get("key")
    if (
        values is None
        or index is None
        or values.ndim != 2
        or values.dtype != np.float64
        or index.shape != (values.shape[0],)
        or index.dtype != np.int64
        or not isinstance(columns, list)
        or len(columns) != values.shape[1]
        or not isinstance(used, str)
    ):
        raise DataError(f"{p}: the HDF5 parser returned a malformed frame; re-export the file.")
    try:
        ts = pd.DatetimeIndex(pd.to_datetime(index, unit="ns"))
        if meta.get("tz"):
            ts = ts.tz_localize("UTC").tz_convert(str(meta["tz"]))
    except (ValueError, TypeError, OverflowError) as err:
        raise DataError(f"{p}: expected valid timestamps, found {first_line(err)}.") from None
    df = pd.DataFrame(values, index=ts, columns=[str(c) for c in columns], copy=False)
    return df, used


def hdf5_frame_worker(
    path: str, key: str | None, limit: int | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The child's side of :func:`read_metr_h5`, run by :mod:`linearcast.data.isolate` (PyTables
    can crash on a damaged file).

    A pandas frame gives ``(meta, {"values": [T, N] float64, "index": [T] int64 ns})``, ``meta``
    holding the key, the column names and the time zone. A file without pandas frames (written
    by ``tables.create_array`` or ``h5py``) gives its one numeric 2-D/3-D array, or the one
    ``key`` names: ``({"key": "/name", "array": True}, {"array": ...})``. ``limit``: the
    user's memory limit in bytes (None: the default budget).
    """
    p = Path(path)
    try:
        with pytables_restricted(p), pd.HDFStore(p, mode="r") as store:
            keys = [k.lstrip("/") for k in store.keys()]
    except DataError:
        raise
    except Exception as err:
        raise DataError(
            f"{p}: expected a pandas HDF5 file, could not open it ({first_line(err)})."
        ) from err
    if (key is None and not keys) or (key is not None and key.strip("/") not in keys):
        with memory_limit(None if limit is None else limit / (1 << 30)):
            return _plain_array(p, key, keys)
    if key is None:
        if len(keys) != 1:
            raise DataError(
                f"{p}: expected a single frame or --set data_options.key=NAME, found keys "
                f"{echo_list(keys)}."
            )
        key = keys[0]
    try:
        with pytables_restricted(p):
            df = pd.read_hdf(p, key=key)
    except DataError:
        raise
    except Exception as err:  # PyTables/pandas raise many types for a damaged file
        raise DataError(
            f"{p}: expected a pandas frame under key {echo(key)}, could not read it "
            f"({type(err).__name__}: {first_line(err)})."
        ) from err
    if not isinstance(df, pd.DataFrame):
        raise DataError(
            f"{p}: expected a DataFrame under key {echo(key)}, found {type(df).__name__}."
        )
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(
            f"{p}: expected a DatetimeIndex (one row per time step), "
            f"found {type(df.index).__name__}."
        )
    values = numeric_frame(df.copy(), str(p))
    index = df.index.tz_convert("UTC") if df.index.tz is not None else df.index
    meta = {
        "key": key,
        "columns": [str(c) for c in df.columns],
        "tz": str(df.index.tz) if df.index.tz is not None else None,
    }
    return meta, {"values": values, "index": np.asarray(index.as_unit("ns").asi8, np.int64)}


@dataclass(frozen=True)
class _Node:
    """One dataset or link of an HDF5 file, as a message names it."""

    path: str
    text: str  # e.g. "array /data [400, 3] float64"
    readable: bool = False  # a numeric 2-D or 3-D array
    nbytes: int = 0


def _node(node: Any) -> _Node:
    import tables

    where = node._v_pathname
    if isinstance(node, tables.link.Link):
        return _Node(where, f"link {where} -> {echo(str(node.target), 40)} (not followed)")
    if isinstance(node, tables.Table):
        return _Node(where, f"table {where} ({int(node.nrows)} rows)")
    if isinstance(node, tables.VLArray):
        return _Node(where, f"variable-length array {where}")
    if isinstance(node, tables.Array):  # also CArray and EArray
        shape = [int(d) for d in node.shape]
        dtype = np.dtype(node.dtype)
        ok = len(shape) in (2, 3) and dtype.kind in "fiu"
        size = math.prod(shape) * dtype.itemsize
        return _Node(where, f"array {where} {shape} {kind_of(dtype)}", ok, size)
    return _Node(where, f"dataset {where} of a type PyTables cannot read")


def _plain_array(
    p: Path, key: str | None, frames: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The one numeric 2-D/3-D array of an HDF5 file that is not a pandas frame (or the one
    ``key`` names); anything else is a sentence listing what the file holds."""
    import tables

    inside = tuple(f"/{f}/" for f in frames)  # a frame's own arrays are not candidates
    try:
        with pytables_restricted(p), tables.open_file(p, mode="r") as h5:
            nodes = [
                _node(n)
                for n in h5.walk_nodes("/")
                if isinstance(n, (tables.Leaf, tables.link.Link))
                and not n._v_pathname.startswith(inside)
            ]
            if key is None:
                numeric = [n for n in nodes if n.readable]
                if len(numeric) != 1:
                    raise DataError(_no_single_array(p, nodes, several=len(numeric) > 1))
                found = numeric[0]
            else:
                where = "/" + key.strip("/")
                found = next((n for n in nodes if n.path == where), _Node(where, ""))
                if not found.text:
                    raise DataError(
                        f"{p}: expected key {echo(key)}, found {_found(frames, nodes)}."
                    )
                if not found.readable:
                    raise DataError(
                        f"{p}: expected a numeric 2-D or 3-D array [T, N] or [T, N, F] under "
                        f"key {echo(key)}, found {found.text}; convert it to a real float "
                        f"array, or choose another with --set data_options.key=NAME."
                    )
            # a few bytes of header may declare terabytes (chunks never written)
            check_alloc(
                f"{p} ({found.text})",
                "reading it",
                max(found.nbytes, 1),
                compressed=p.stat().st_size,
                stored_as="of file",
            )
            arr = np.asarray(h5.get_node(found.path).read())
    except DataError:
        raise
    except Exception as err:
        raise DataError(
            f"{p}: expected a readable HDF5 array, could not read it ({first_line(err)})."
        ) from err
    return {"key": found.path, "array": True}, {"array": arr}


def kind_of(dtype: np.dtype[Any]) -> str:
    """A dtype as a message names it: ``float64``, ``complex128``, ``text (S2)``, ``object``."""
    if dtype.kind in "SU":
        return f"text ({dtype.str.lstrip('|<>=')})"
    if dtype.kind == "V" and dtype.names:
        return f"records ({', '.join(dtype.names)})"
    return str(dtype)


def _found(frames: list[str], nodes: list[_Node]) -> str:
    """``keys ['df']`` (pandas frames), then the other datasets and links of the file."""
    others = _listing([n.text for n in nodes])
    if frames:
        return f"keys {echo_list(frames)}" + (f" and {others}" if others else "")
    return others or "no datasets at all"


def _listing(texts: list[str], items: int = 8) -> str:
    more = f", … ({len(texts)} in all)" if len(texts) > items else ""
    return ", ".join(texts[:items]) + more


def _no_single_array(p: Path, nodes: list[_Node], *, several: bool) -> str:
    """The sentence for a file without a pandas frame and without exactly one numeric array."""
    found = _listing([n.text for n in nodes]) or "no datasets at all"
    if several:
        fix = "choose one with --set data_options.key=NAME"
    else:
        fix = "re-export it with DataFrame.to_hdf, or save a real float array"
    return (
        f"{p}: not a pandas HDFStore frame; expected one numeric 2-D or 3-D array [T, N] or "
        f"[T, N, F] ({fix}), found {found}."
    )


def _sensor_graph(
    p: Path,
    adjacency: PathLike | Literal["auto"] | None,
    columns: list[str],
    shape: tuple[int, ...],
) -> tuple[np.ndarray | None, PathLike | None]:
    """The adjacency ``[N, N]`` in the order of the frame's ``columns`` (None without a graph)
    and the file it came from (``"auto"``: the pickle beside ``p`` whose size matches N)."""
    adj = None
    if adjacency == "auto":
        cands = [p.with_name(n) for n in ("adj_mx.pkl", "adj_mx_bay.pkl", f"adj_{p.stem}.pkl")]
        found = [c for c in cands if c.exists()]
        adjacency = None
        for c in found:
            if read_adjacency_pickle(c)[0].shape[0] == len(columns):
                adjacency = c
                break
        if adjacency is None and found:
            adjacency = found[0]  # wrong size: the check below names it
    if adjacency is not None:
        adj, ids = read_adjacency_pickle(adjacency)
        check_graph_size(adj, len(columns), adjacency, shape)
        if ids is not None and ids != columns:
            if set(ids) == set(columns):
                order = {s: i for i, s in enumerate(ids)}
                idx = np.array([order[c] for c in columns])
                adj = adj[np.ix_(idx, idx)]
            else:
                warnings.warn(
                    f"{adjacency}: sensor ids differ from the columns of {p.name}; "
                    f"using the adjacency in file order.",
                    UserWarning,
                    stacklevel=3,  # the reader's caller,
                )
    return adj, adjacency


FORMAT = ReaderFormat(
    name="metr",
    read=read_metr_h5,
    files="METR-LA/PEMS-BAY: a pandas HDF5 .h5 (time index x sensors) + DCRNN adj_mx.pkl",
    suffixes=(".h5", ".hdf5", ".hdf"),
)
