"""Readers for the file formats of the field; each returns a :class:`TimeSeriesDataset`.

=================  ======================================================================
format             files
=================  ======================================================================
``pems``           ``PEMS0x.npz`` (key ``data``, ``[T, N, F]``) + ``PEMS0x.csv`` edge list
                   ``from,to,cost`` (+ ``PEMS03.txt`` ids) -- the STSGCN/ASTGNN release
``basicts``        ``data.dat`` float32 memmap ``[L, N, C]`` + ``desc.json`` (+ ``adj_mx.pkl``)
``metr``           pandas HDF5 ``.h5`` (time index x sensors) + DCRNN ``adj_mx.pkl``
``ltsf``           CSV with a ``date`` column then one column per series (ETT, Weather, ...)
``matrix_csv``     ``[T, N]`` CSV with a header of node ids + ``[N, N]`` adjacency CSV
``pgt``            pytorch-geometric-temporal JSON (chickenpox, pedalme, england_covid)
``array``          generic ``.npy`` / ``.npz`` holding ``[T, N]`` or ``[T, N, F]``
=================  ======================================================================

Large arrays are memory-mapped (``.npy``, BasicTS ``data.dat``, float32 members of
uncompressed ``.npz``); compressed ``.npz`` and CSV/HDF5/JSON files are loaded into memory.
Every bad input raises :class:`linearcast.errors.DataError` naming the file, what was expected
and what was found.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.safe_pickle import load_pickle_file, pytables_restricted
from linearcast.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PathLike = str | Path
GraphWeights = Literal["connectivity", "distance", "gaussian"]

PEMS_CHANNELS = ["flow", "occupancy", "speed"]
_TIME_FEATURE_NAMES = ("time of day", "day of week", "day of month", "day of year")
# Frequencies of the pytorch-geometric-temporal files (the JSON does not say).
_PGT_FREQ_MINUTES = {"chickenpox": 7 * 1440, "pedalme_london": 7 * 1440, "england_covid": 1440}


# ---------------------------------------------------------------------------- helpers
def _require_file(path: PathLike, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found (expected {what}).")
    if p.is_dir():
        raise DataError(f"{p}: expected {what}, found a directory.")
    return p


def _np_reason(err: Exception) -> str:
    """NumPy's reason, minus its advice to load pickles unsafely (linearcast never does)."""
    if "pickle" in str(err).lower():
        return (
            "it holds pickled Python objects, which linearcast refuses to load (they can run code)"
        )
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _read_csv(path: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` with a :class:`DataError` naming the file for empty or unparsable text."""
    try:
        df = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: expected {what}, found an empty file (no columns).") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: expected {what}, could not parse it as CSV ({first}).") from err
    if df.shape[0] == 0:
        raise DataError(
            f"{path}: expected {what}, found a header ({df.shape[1]} columns) but no data rows."
        )
    return df


def _as_3d(arr: np.ndarray, source: str, what: str = "values") -> np.ndarray:
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 3:
        return arr
    raise DataError(
        f"{source}: expected {what} of rank 2 [T, N] or 3 [T, N, F], "
        f"found rank {arr.ndim} with shape {tuple(arr.shape)}."
    )


def _check_numeric(arr: np.ndarray, source: str) -> None:
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{source}: expected a numeric array, found dtype {arr.dtype}.")


def _to_float32(arr: np.ndarray) -> np.ndarray:
    """Keep float32 arrays (and memmaps) as they are; convert others (loads into memory)."""
    return arr if arr.dtype == np.float32 else np.asarray(arr, dtype=np.float32)


def _npz_member_memmap(path: Path, member: str) -> np.ndarray | None:
    """Memory-map one uncompressed member of an ``.npz``; ``None`` when that is impossible."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                return None
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
        if dtype.hasobject or len(shape) == 0:
            return None
        return np.memmap(
            path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _read_npz_key(path: Path, key: str | None, default: str = "data") -> tuple[np.ndarray, str]:
    """Return one array of an ``.npz`` (memory-mapped when stored float32 uncompressed)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path}: expected a numpy .npz archive, could not open it ({_np_reason(err)})."
        ) from err
    with npz:
        keys = list(npz.files)
        if key is None:
            if default in keys:
                key = default
            elif len(keys) == 1:
                key = keys[0]
            else:
                raise DataError(
                    f"{path}: expected key {default!r} (or a single array), found keys {keys}; "
                    f"pass key=..."
                )
        if key not in keys:
            raise DataError(f"{path}: expected key {key!r}, found keys {keys}.")
        mm = _npz_member_memmap(path, key + ".npy")
        if mm is not None and mm.dtype == np.float32:
            return mm, key
        try:
            return np.asarray(npz[key]), key
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(
                f"{path}: could not read array {key!r} of the archive ({_np_reason(err)})."
            ) from err


def read_adjacency_pickle(path: PathLike) -> tuple[np.ndarray, list[str] | None]:
    """Read an ``adj_mx.pkl``: a DCRNN list ``[sensor_ids, id_to_ind, adj]`` or a bare matrix.

    Args:
        path: the pickle (BasicTS copies both layouts to ``adj_mx.pkl``).

    Returns:
        ``(adjacency [N, N] float32, sensor_ids or None)``.
    """
    p = _require_file(path, "a pickled adjacency (adj_mx.pkl)")
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


def read_adjacency(path: PathLike) -> np.ndarray:
    """Read a dense adjacency ``[N, N]`` from ``.npy``, ``.npz``, ``.pkl`` or a header-less CSV.

    Args:
        path: the adjacency file.

    Returns:
        ``[N, N]`` float32.
    """
    p = _require_file(path, "an adjacency file (.npy, .npz, .pkl or .csv)")
    suffix = p.suffix.lower()
    if suffix == ".pkl":
        return read_adjacency_pickle(p)[0]
    if suffix == ".npy":
        try:
            adj = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise DataError(
                f"{p}: expected an [N, N] .npy adjacency, could not read it ({_np_reason(err)})."
            ) from err
    elif suffix == ".npz":
        adj, _ = _read_npz_key(p, None, default="adj")
    else:
        df = _read_csv(p, "an [N, N] adjacency CSV", header=None)
        bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        if bad and len(df) > 1:
            # a header row of ids: drop it and retry
            df = _read_csv(p, "an [N, N] adjacency CSV")
            bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise DataError(
                f"{p}: expected a numeric [N, N] adjacency CSV, "
                f"found non-numeric column {bad[0]!r}."
            )
        adj = df.to_numpy()
    adj = np.asarray(adj)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise DataError(f"{p}: expected a square adjacency [N, N], found shape {adj.shape}.")
    return adj.astype(np.float32)


def check_timestamps(ts: pd.DatetimeIndex, source: str) -> int | None:
    """Check timestamps are valid, unique and increasing; return the step in minutes.

    Args:
        ts: one timestamp per step.
        source: file name for the messages.

    Returns:
        The most common step in whole minutes (``None`` when under a minute or a single step).

    Raises:
        DataError: on missing (NaT), duplicated or unsorted timestamps.
    """
    nat = int(ts.isna().sum())
    if nat:
        raise DataError(f"{source}: expected a timestamp on every row, found {nat} missing.")
    dup = ts.duplicated()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{source}: expected unique timestamps, found {int(dup.sum())} duplicated "
            f"(first: {ts[first]} at row {first})."
        )
    if len(ts) < 2:
        return None
    diffs = np.diff(ts.as_unit("ns").asi8)
    if (diffs < 0).any():
        i = int(np.flatnonzero(diffs < 0)[0])
        raise DataError(
            f"{source}: expected timestamps sorted in increasing order, found {ts[i + 1]} "
            f"after {ts[i]} (rows {i} and {i + 1}); {int((diffs < 0).sum())} steps go backwards."
        )
    step = pd.Series(diffs).mode().iloc[0]
    irregular = int((diffs != step).sum())
    step_td = pd.Timedelta(int(step), unit="ns")
    if irregular:
        warnings.warn(
            f"{source}: {irregular} of {len(diffs)} steps differ from the usual step {step_td} "
            f"(gaps or irregular sampling); windows assume a regular grid.",
            UserWarning,
            stacklevel=3,
        )
    minutes = step_td.total_seconds() / 60.0
    return int(minutes) if minutes >= 1 and float(minutes).is_integer() else None


def _numeric_frame(df: pd.DataFrame, source: str) -> np.ndarray:
    """Return the frame as float, raising on the first non-numeric column with an example."""
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            continue
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna() & s.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: expected numeric values in column {col!r}, found "
                f"{int(bad.sum())} non-numeric entries (first {s.iloc[row]!r} at data row {row})."
            )
        df[col] = conv
    return df.to_numpy(dtype=np.float64)


def _check_graph_size(adj: np.ndarray, n: int, graph_path: Path | str, data_shape: Any) -> None:
    if adj.shape[0] != n:
        raise DataError(
            f"{graph_path}: the graph has {adj.shape[0]} nodes but the data has N={n} series "
            f"(data shape {tuple(data_shape)}); expected a ({n}, {n}) adjacency."
        )


# ---------------------------------------------------------------------------- PEMS
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
    p = _require_file(path, "a PEMS edge list CSV (from,to,cost)")
    df = _read_csv(p, "a PEMS edge list CSV (from,to,cost)")
    if df.shape[1] != 3:
        raise DataError(
            f"{p}: expected 3 columns from,to,cost (or from,to,distance), "
            f"found {df.shape[1]}: {list(df.columns)}."
        )
    arr = _numeric_frame(df.copy(), str(p))
    src = arr[:, 0].astype(np.int64)
    dst = arr[:, 1].astype(np.int64)
    cost = arr[:, 2]
    if id_file is not None:
        idp = _require_file(id_file, "a PEMS id file (one station id per line)")
        ids = [line.strip() for line in idp.read_text().splitlines() if line.strip()]
        if len(ids) != num_nodes:
            raise DataError(
                f"{idp}: expected {num_nodes} station ids (N of the data), found {len(ids)}."
            )
        index = {int(s): i for i, s in enumerate(ids)}
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
    p = _require_file(path, "a PEMS .npz file with key 'data'")
    arr, _ = _read_npz_key(p, key)
    _check_numeric(arr, f"{p} (key {key!r})")
    if arr.ndim != 3:
        raise DataError(
            f"{p}: expected key {key!r} of rank 3 [T, N, F], found shape {tuple(arr.shape)}."
        )
    values = handle_non_finite(_to_float32(arr), str(p), null_value, non_finite)
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


# ---------------------------------------------------------------------------- BasicTS
def _basicts_paths(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path / "data.dat", path / "desc.json"
    if path.name == "desc.json":
        return path.with_name("data.dat"), path
    return path, path.with_name("desc.json")


def read_basicts(
    path: PathLike,
    *,
    name: str | None = None,
    adjacency: PathLike | Literal["auto"] | None = "auto",
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read a BasicTS v0.4/v0.5 dataset folder: ``data.dat`` + ``desc.json`` (+ ``adj_mx.pkl``).

    ``data.dat`` is a raw float32 memmap ``[L, N, C]`` whose channels are the data channel(s)
    followed by the time features named in ``desc.json["feature_description"]``
    ("time of day" as a fraction, "day of week" as ``dow / 7``, ...). The time-feature channels
    are split off: ``values`` keeps the data channels (still memory-mapped) and the exact
    time-of-day / day-of-week columns become ``tod_values`` / ``dow_values``.

    Args:
        path: the folder, its ``data.dat`` or its ``desc.json``.
        name: dataset name (default: ``desc["name"]`` or the folder name).
        adjacency: ``"auto"`` reads ``adj_mx.pkl`` beside the data when present.
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset with memory-mapped ``values [L, N, F]``; the null value and frequency come from
        ``desc.json`` (``regular_settings.NULL_VAL``, ``"frequency (minutes)"``).
    """
    p = Path(path)
    dat, desc_path = _basicts_paths(p)
    _require_file(desc_path, "a BasicTS desc.json beside data.dat")
    _require_file(dat, "a BasicTS data.dat (float32 memmap)")
    try:
        desc = json.loads(desc_path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{desc_path}: expected valid JSON, could not parse it ({err}).") from err
    if not isinstance(desc, dict):
        raise DataError(f"{desc_path}: expected a JSON object, found {type(desc).__name__}.")
    if "shape" not in desc:
        raise DataError(f"{desc_path}: expected key 'shape', found keys {sorted(desc)}.")
    raw_shape = desc["shape"]
    if (
        not isinstance(raw_shape, list)
        or len(raw_shape) != 3
        or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in raw_shape)
    ):
        raise DataError(
            f"{desc_path}: expected 'shape' as three positive integers [L, N, C], "
            f"found {raw_shape!r}."
        )
    shape = tuple(raw_shape)
    expected_bytes = int(np.prod(shape)) * 4
    found_bytes = dat.stat().st_size
    if found_bytes != expected_bytes:
        raise DataError(
            f"{dat}: expected {expected_bytes} bytes (float32 of shape {list(shape)} from "
            f"desc.json), found {found_bytes} bytes."
        )
    data = np.memmap(dat, dtype=np.float32, mode="r", shape=shape)
    features = [str(x).lower() for x in desc.get("feature_description", [])]
    if len(features) != shape[2]:
        features = features[: shape[2]] + ["value"] * (shape[2] - len(features))
    time_idx = {f: i for i, f in enumerate(features) if f in _TIME_FEATURE_NAMES}
    data_idx = [i for i, f in enumerate(features) if f not in _TIME_FEATURE_NAMES]
    if not data_idx:
        raise DataError(f"{desc_path}: expected at least one data channel, found only {features}.")
    if data_idx == list(range(len(data_idx))):
        values: np.ndarray = data[:, :, : len(data_idx)]  # still a memmap view
    else:
        values = np.asarray(data[:, :, data_idx])
    tod = dow = None
    if "time of day" in time_idx:
        tod = np.array(data[:, 0, time_idx["time of day"]], dtype=np.float32)
    if "day of week" in time_idx:
        raw = np.array(data[:, 0, time_idx["day of week"]], dtype=np.float64)
        # BasicTS >= 0.4 stores dow / 7; older files stored the index 0..6.
        dow = np.rint(raw * 7 if raw.max(initial=0) < 1.0 + 1e-6 else raw).astype(np.int64) % 7
    settings = desc.get("regular_settings", {}) or {}
    null_raw = settings.get("NULL_VAL", 0.0)
    null_value = float("nan") if null_raw is None else float(null_raw)
    values = handle_non_finite(values, str(dat), null_value, non_finite)
    freq = desc.get("frequency (minutes)", desc.get("frequency"))
    adj = None
    ids = None
    if adjacency == "auto":
        cand = dat.with_name("adj_mx.pkl")
        adjacency = cand if cand.exists() else None
    if adjacency is not None:
        adj, ids = read_adjacency_pickle(adjacency)
        _check_graph_size(adj, shape[1], adjacency, shape)
    return TimeSeriesDataset(
        values=values,
        name=name or str(desc.get("name") or dat.parent.name),
        path=dat.parent,
        freq_minutes=int(freq) if freq is not None else None,
        adjacency=adj,
        node_names=ids,
        channel_names=[features[i] for i in data_idx],
        null_value=null_value,
        tod_values=tod,
        dow_values=dow,
        meta={"format": "basicts", "desc": desc},
    )


# ---------------------------------------------------------------------------- METR-LA / PEMS-BAY
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
    p = _require_file(path, "a pandas HDF5 file (.h5)")
    try:
        with pytables_restricted(p), pd.HDFStore(p, mode="r") as store:
            keys = [k.lstrip("/") for k in store.keys()]
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{p}: expected a pandas HDF5 file, could not open it ({err}).") from err
    if key is None:
        if len(keys) != 1:
            raise DataError(f"{p}: expected a single frame or key=..., found keys {keys}.")
        key = keys[0]
    if key.lstrip("/") not in keys:
        raise DataError(f"{p}: expected key {key!r}, found keys {keys}.")
    try:
        with pytables_restricted(p):
            df = pd.read_hdf(p, key=key)
    except DataError:
        raise
    except Exception as err:  # PyTables/pandas raise many types for a damaged file
        raise DataError(
            f"{p}: expected a pandas frame under key {key!r}, could not read it "
            f"({type(err).__name__}: {err})."
        ) from err
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{p}: expected a DataFrame under key {key!r}, found {type(df).__name__}.")
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(
            f"{p}: expected a DatetimeIndex (one row per time step), "
            f"found {type(df.index).__name__}."
        )
    freq = check_timestamps(df.index, str(p))
    arr = _numeric_frame(df.copy(), str(p))
    values = handle_non_finite(arr.astype(np.float32)[:, :, None], str(p), null_value, non_finite)
    columns = [str(c) for c in df.columns]
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
        _check_graph_size(adj, len(columns), adjacency, values.shape)
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
                    stacklevel=2,
                )
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


# ---------------------------------------------------------------------------- LTSF CSV
def read_ltsf_csv(
    path: PathLike,
    *,
    date_column: str = "date",
    columns: list[str] | None = None,
    name: str | None = None,
    null_value: float = float("nan"),
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read an LTSF CSV (ETT, Weather, ECL, Traffic, Exchange, ILI): ``date`` then one column each.

    Args:
        path: the CSV.
        date_column: name of the timestamp column (first column by convention).
        columns: keep only these series, in this order (default: all; ``OT`` is last).
        name: dataset name (default: the file stem).
        null_value: NaN (these datasets have no missing-value marker).
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset with ``values [T, N, 1]`` (N = number of series) and its timestamps.
    """
    p = _require_file(path, "an LTSF CSV with a 'date' column")
    df = _read_csv(p, f"an LTSF CSV ({date_column!r} column, then one column per series)")
    if date_column not in df.columns:
        raise DataError(
            f"{p}: expected a {date_column!r} column, found columns {list(df.columns)[:10]}."
        )
    try:
        ts = pd.DatetimeIndex(pd.to_datetime(df[date_column]))
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{p}: expected dates in column {date_column!r}, could not parse them ({err})."
        ) from err
    freq = check_timestamps(ts, str(p))
    data = df.drop(columns=[date_column])
    if columns is not None:
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise DataError(f"{p}: expected columns {missing}, found {list(data.columns)}.")
        data = data[columns]
    if data.shape[1] == 0:
        raise DataError(f"{p}: expected at least one series column besides {date_column!r}.")
    arr = _numeric_frame(data.copy(), str(p))
    values = handle_non_finite(arr.astype(np.float32)[:, :, None], str(p), null_value, non_finite)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq,
        timestamps=ts,
        node_names=[str(c) for c in data.columns],
        channel_names=["value"],
        null_value=null_value,
        meta={"format": "ltsf"},
    )


# ---------------------------------------------------------------------------- [T, N] CSV
def read_matrix_csv(
    path: PathLike,
    adjacency: PathLike | Literal["auto"] | None = "auto",
    *,
    header: bool = True,
    name: str | None = None,
    freq_minutes: int | None = None,
    start: pd.Timestamp | str | None = None,
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read a ``[T, N]`` CSV (header = node ids) and an ``[N, N]`` adjacency CSV (Los-loop).

    Args:
        path: the data CSV (T-GCN's ``los_speed.csv``: header of 207 sensor ids).
        adjacency: header-less ``[N, N]`` CSV; ``"auto"`` uses the sibling whose name replaces
            ``speed`` by ``adj`` (``los_adj.csv``) or ``<stem>_adj.csv``.
        header: whether the first line holds node names.
        name: dataset name (default: the file stem).
        freq_minutes: step in minutes (the file does not say; Los-loop: 5).
        start: first timestamp, when known.
        null_value: 0.0 (traffic convention).
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset with ``values [T, N, 1]``.
    """
    p = _require_file(path, "a [T, N] CSV")
    df = _read_csv(p, "a [T, N] CSV (one column per node)", header=0 if header else None)
    arr = _numeric_frame(df.copy(), str(p))
    values = handle_non_finite(arr.astype(np.float32)[:, :, None], str(p), null_value, non_finite)
    n = values.shape[1]
    if adjacency == "auto":
        cands = []
        if "speed" in p.stem:
            cands.append(p.with_name(p.stem.replace("speed", "adj") + p.suffix))
        cands.append(p.with_name(f"{p.stem}_adj{p.suffix}"))
        adjacency = next((c for c in cands if c.exists()), None)
    adj = None
    if adjacency is not None:
        adj = read_adjacency(adjacency)
        _check_graph_size(adj, n, adjacency, values.shape)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        start=pd.Timestamp(start) if start is not None else None,
        adjacency=adj,
        node_names=[str(c) for c in df.columns] if header else None,
        null_value=null_value,
        meta={"format": "matrix_csv", "adjacency": str(adjacency) if adjacency else None},
    )


# ---------------------------------------------------------------------------- PGT JSON
def _edges_to_adj(edges: Any, weights: Any, n: int, source: str, what: str = "edges") -> np.ndarray:
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


def read_pgt_json(
    path: PathLike,
    *,
    name: str | None = None,
    freq_minutes: int | None = None,
    null_value: float = float("nan"),
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read the pytorch-geometric-temporal JSON layouts.

    Layouts recognised by their keys:

    - ``FX`` ``[T, N]`` + ``edges`` (+ ``node_ids`` name -> index): chickenpox, weight 1;
    - ``X`` ``[T, N]`` + ``edges`` + ``weights``: pedalme_london;
    - ``y`` ``[T, N]`` + ``edge_mapping`` (``edge_index`` / ``edge_weight`` per time period):
      england_covid; the graph changes daily and ``adjacency`` is the mean weight over periods.

    Args:
        path: the JSON file.
        name: dataset name (default: the file stem).
        freq_minutes: step in minutes (default: weekly for chickenpox and pedalme_london, daily
            for england_covid, else unknown).
        null_value: NaN (values are counts or z-scores, zeros are real readings).
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset with ``values [T, N, 1]`` and a static adjacency ``[N, N]``.
    """
    p = _require_file(path, "a pytorch-geometric-temporal JSON file")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{p}: expected valid JSON, could not parse it ({err}).") from err
    if not isinstance(d, dict):
        raise DataError(f"{p}: expected a JSON object, found {type(d).__name__}.")
    src = str(p)
    node_names: list[str] | None = None
    layout: str
    if "FX" in d and "edges" in d:
        layout, key = "FX+edges", "FX"
    elif "X" in d and "edges" in d:
        layout, key = "X+edges+weights", "X"
    elif "y" in d and "edge_mapping" in d:
        layout, key = "y+edge_mapping", "y"
    else:
        raise DataError(
            f"{p}: expected a pytorch-geometric-temporal layout (keys FX+edges, X+edges+weights "
            f"or y+edge_mapping), found keys {sorted(d)[:10]}."
        )
    try:
        arr = np.asarray(d[key], dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(f"{p}: expected a numeric [T, N] matrix under {key!r} ({err}).") from err
    if arr.ndim != 2:
        raise DataError(f"{p}: expected {key!r} of rank 2 [T, N], found shape {arr.shape}.")
    n = arr.shape[1]
    if layout == "FX+edges":
        adj = _edges_to_adj(d["edges"], None, n, src)
        ids = d.get("node_ids")
        if isinstance(ids, dict) and len(ids) == n:
            node_names = [k for k, _ in sorted(ids.items(), key=lambda kv: kv[1])]
    elif layout == "X+edges+weights":
        adj = _edges_to_adj(d["edges"], d.get("weights"), n, src)
    else:
        em = d["edge_mapping"]
        ei, ew = em.get("edge_index", {}), em.get("edge_weight", {})
        periods = sorted(ei, key=int)
        acc = np.zeros((n, n), dtype=np.float64)
        for t in periods:
            acc += _edges_to_adj(ei[t], ew.get(t), n, src, what=f"edges of period {t}")
        adj = (acc / max(1, len(periods))).astype(np.float32)
    values = handle_non_finite(arr.astype(np.float32)[:, :, None], src, null_value, non_finite)
    if freq_minutes is None:
        freq_minutes = _PGT_FREQ_MINUTES.get(p.stem)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        adjacency=adj,
        node_names=node_names,
        null_value=null_value,
        meta={"format": "pgt", "layout": layout},
    )


# ---------------------------------------------------------------------------- generic arrays
def read_array(
    path: PathLike,
    *,
    key: str | None = None,
    adjacency: PathLike | np.ndarray | None = None,
    name: str | None = None,
    freq_minutes: int | None = None,
    steps_per_day: int | None = None,
    start: pd.Timestamp | str | None = None,
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read a generic ``.npy`` (memory-mapped) or ``.npz`` holding ``[T, N]`` or ``[T, N, F]``.

    Args:
        path: the array file.
        key: the npz key (default ``data``, or the only array).
        adjacency: an adjacency file (see :func:`read_adjacency`) or array ``[N, N]``.
        name: dataset name (default: the file stem).
        freq_minutes: step in minutes, when known.
        steps_per_day: steps per day, when known.
        start: first timestamp, when known.
        null_value: 0.0 or NaN.
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        A dataset; float32 ``.npy`` files stay memory-mapped (other dtypes are converted in RAM).
    """
    p = _require_file(path, "a .npy or .npz array")
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise DataError(
                f"{p}: expected a numpy .npy array, could not read it ({_np_reason(err)})."
            ) from err
        label = str(p)
    else:
        arr, used = _read_npz_key(p, key)
        label = f"{p} (key {used!r})"
    _check_numeric(arr, label)
    values = handle_non_finite(_to_float32(_as_3d(arr, label)), str(p), null_value, non_finite)
    adj = None
    if adjacency is not None:
        adj = adjacency if isinstance(adjacency, np.ndarray) else read_adjacency(adjacency)
        _check_graph_size(adj, values.shape[1], str(adjacency)[:200], values.shape)
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        steps_per_day=steps_per_day,
        start=pd.Timestamp(start) if start is not None else None,
        adjacency=adj,
        null_value=null_value,
        meta={"format": "array"},
    )


# ---------------------------------------------------------------------------- dispatch
READERS: dict[str, Callable[..., TimeSeriesDataset]] = {
    "pems": read_pems_npz,
    "basicts": read_basicts,
    "metr": read_metr_h5,
    "ltsf": read_ltsf_csv,
    "matrix_csv": read_matrix_csv,
    "pgt": read_pgt_json,
    "array": read_array,
}

_PEMS_STEM = re.compile(r"^pems0?\d+$", re.IGNORECASE)


def sniff_format(path: PathLike) -> str:
    """Guess the format of a file or folder from its name, siblings and first line.

    Args:
        path: a file or a BasicTS folder.

    Returns:
        One of the keys of :data:`READERS`.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found (expected a dataset file or BasicTS folder).")
    if p.is_dir():
        if (p / "desc.json").exists():
            return "basicts"
        raise DataError(f"{p}: expected a BasicTS folder with desc.json and data.dat, found none.")
    suffix = p.suffix.lower()
    if p.name in ("data.dat", "desc.json"):
        return "basicts"
    if suffix in (".h5", ".hdf5", ".hdf"):
        return "metr"
    if suffix == ".json":
        return "pgt"
    if suffix == ".npy":
        return "array"
    if suffix == ".npz":
        return "pems" if (_PEMS_STEM.match(p.stem) or p.with_suffix(".csv").exists()) else "array"
    if suffix in (".csv", ".txt"):
        with open(p, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip().split(",")
        names = [c.strip().lower() for c in first]
        if names[:2] == ["from", "to"]:
            raise DataError(
                f"{p}: this is an edge list (header {','.join(first)}), not a dataset: expected "
                f"the data file (e.g. {p.with_suffix('.npz').name}); the reader takes the graph "
                "from this file beside it."
            )
        return "ltsf" if names and names[0] == "date" else "matrix_csv"
    raise DataError(
        f"{p}: could not tell the format from suffix {suffix!r}; expected one of .npz, .npy, "
        f".h5, .csv, .json, data.dat, or pass format= one of {sorted(READERS)}."
    )


def _check_reader_options(
    reader: Callable[..., TimeSeriesDataset], fmt: str, path: PathLike, options: dict[str, Any]
) -> None:
    """Unknown reader options are a :class:`ConfigError` listing the ones this format takes."""
    params = inspect.signature(reader).parameters
    known = [n for n, p in params.items() if n != "path" and p.kind is not p.VAR_KEYWORD]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"{path}: the {fmt!r} reader has no option(s) {unknown}; it takes "
            f"{', '.join(known)} (set them with --set data_options.NAME=VALUE)."
        )


def load(path: PathLike, format: str = "auto", **kwargs: Any) -> TimeSeriesDataset:
    """Read any supported dataset.

    Args:
        path: file or BasicTS folder.
        format: ``"auto"`` (see :func:`sniff_format`) or one of :data:`READERS`.
        **kwargs: passed to the reader.

    Returns:
        The dataset.
    """
    p = Path(path)
    fmt = sniff_format(path) if format == "auto" else format
    if fmt not in READERS:
        raise DataError(f"{path}: unknown format {fmt!r}; expected one of {sorted(READERS)}.")
    if p.is_file() and p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty (0 bytes); expected a {fmt!r} dataset.")
    reader = READERS[fmt]
    _check_reader_options(reader, fmt, path, kwargs)
    try:
        ds = reader(path, **kwargs)
    except (DataError, ConfigError):
        raise
    except Exception as err:
        # a damaged file can fail deep inside numpy/pandas/PyTables in ways no reader foresees;
        # the contract is one sentence naming the file, so the net catches what slipped through
        log.debug("reader %s failed on %s", fmt, path, exc_info=True)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(
            f"{path}: could not read it as {fmt!r} data ({type(err).__name__}"
            f"{': ' + first if first else ''})."
        ) from err
    if "format" not in ds.meta:
        ds.meta["format"] = fmt
    return ds
