"""``metr``: METR-LA / PEMS-BAY as DCRNN ships them, a pandas HDF5 frame (time index x sensors)
and ``adj_mx.pkl``. PyTables' unpickling runs through the restricted unpickler."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data import isolate
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    PathLike,
    ReaderFormat,
    check_timestamps,
    numeric_frame,
    require_file,
)
from linearcast.data.readers._files import echo, echo_list, first_line
from linearcast.data.readers.graph import check_graph_size, read_adjacency_pickle
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
            ``speed``; ``None`` reads the only frame in the file).
        adjacency: DCRNN ``adj_mx.pkl`` (``[sensor_ids, id_to_ind, adj]``); ``"auto"`` tries
            ``adj_mx.pkl``, ``adj_mx_bay.pkl``, ``adj_<stem>.pkl`` beside the file and keeps the
            one whose size matches N. Rows are reordered to the frame's column order.
        key: HDF5 key.
        name: dataset name (default: the file stem).
        null_value: zeros mark missing readings.
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset with ``values [T, N, 1]`` (speed, mph) and its timestamps.
    """
    p = require_file(path, "a pandas HDF5 file (.h5)")
    df, key = _read_frame(p, key)
    freq = check_timestamps(pd.DatetimeIndex(df.index), str(p))
    arr = df.to_numpy(dtype=np.float32)
    values = handle_non_finite(arr[:, :, None], str(p), null_value, non_finite)
    columns = [str(c) for c in df.columns]
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


def _read_frame(p: Path, key: str | None) -> tuple[pd.DataFrame, str]:
    """The time-indexed frame under ``key`` (the only one when None) and its key, parsed in a
    child process (:mod:`linearcast.data.isolate`): PyTables can crash on a damaged file."""
    meta, arrays = isolate.run_isolated("hdf5", p, key=key)
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


def hdf5_frame_worker(path: str, key: str | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The child's side of :func:`_read_frame`: ``(meta, {"values": [T, N] float64,
    "index": [T] int64 ns})``; ``meta`` holds the key, the column names and the time zone."""
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
    if key is None:
        if len(keys) != 1:
            raise DataError(
                f"{p}: expected a single frame or --set data_options.key=NAME, found keys "
                f"{echo_list(keys)}."
            )
        key = keys[0]
    if key.lstrip("/") not in keys:
        raise DataError(f"{p}: expected key {echo(key)}, found keys {echo_list(keys)}.")
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
