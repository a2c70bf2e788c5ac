"""``uctb``: the UCTB urban-data benchmark (``uctb/Urban-Dataset``): a pickled dict, published as
a ``.zip`` holding one ``.pkl``::

    {"TimeRange": ["2021-01-01", "2022-11-01"],     # start, end (exclusive)
     "TimeFitness": 60,                              # minutes per step
     "Node": {"TrafficNode": array [T, N],
              "StationInfo": [[id, build_time, lat, lng, name], ...],   # N rows
              "TrafficMonthlyInteraction": ..., "POI": ...},
     "Grid": {...}, "ExternalFeature": {...}}

The pickle is read by :mod:`linearcast.data.safe_pickle` (NumPy arrays, lists, dicts, strings
and numbers only; nothing in the file runs). The zip member is read with Python's ``zipfile``
after its declared size is checked against the memory budget. Step ``t`` is at
``TimeRange[0] + t * TimeFitness`` minutes (as UCTB's loaders count it).

``graph="distance"``: a Gaussian kernel of the stations' great-circle (haversine) distances,
``w_ij = exp(-(d_ij / σ)²)`` with σ the standard deviation of the distances between distinct
stations, and weights below ``graph_threshold`` (default 0.1) set to 0 (DCRNN's kernel and
threshold); the diagonal is 1.
"""

from __future__ import annotations

import math
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data.checks import to_float32
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import PathLike, ReaderFormat, as_3d, check_numeric
from linearcast.data.readers._files import (
    check_alloc,
    check_dense_graph,
    echo,
    echo_list,
    is_regular,
    require_file,
)
from linearcast.data.readers.graph import looks_like_adjacency
from linearcast.data.safe_pickle import load_pickle_file
from linearcast.errors import DataError

_WHAT = "a UCTB dataset (a pickled dict with TimeRange, TimeFitness, Node.TrafficNode)"
_EARTH_KM = 6371.0088


def read_uctb(
    path: PathLike,
    *,
    graph: Literal["none", "distance"] = "none",
    graph_threshold: float = 0.1,
    name: str | None = None,
    null_value: float = math.nan,
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read a UCTB dataset (``.pkl``, or the published ``.zip`` holding one).

    Args:
        path: ``Bike_NYC.zip`` / ``Bike_NYC.pkl`` (any UCTB dataset).
        graph: ``"none"``, or ``"distance"``: the Gaussian-kernel adjacency of the stations'
            coordinates (see the module docstring).
        graph_threshold: kernel weights below it become 0 (``graph="distance"``).
        name: dataset name (default: the file stem).
        null_value: the value that marks a missing reading (NaN; counts of 0 are real).
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        ``values [T, N, 1]`` (``TrafficNode``), timestamps from ``TimeRange`` and
        ``TimeFitness``, station names from ``StationInfo``, and the graph when asked.
    """
    p = require_file(path, _WHAT)
    obj = _unpickle(p)
    node, traffic = _traffic(p, obj)
    t, n = traffic.shape[:2]
    freq, ts = _timestamps(p, obj, t)
    info = _station_info(p, node, n)
    values = handle_non_finite(as_3d(traffic, str(p)), str(p), null_value, non_finite)
    adjacency = None
    if not 0 <= graph_threshold <= 1:
        raise DataError(
            f"{p}: data_options.graph_threshold must be a kernel weight in [0, 1], found "
            f"{echo(graph_threshold)} (default 0.1)."
        )
    if graph == "distance":
        adjacency = distance_graph(p, info, graph_threshold)
    elif graph not in ("none", None):
        raise DataError(
            f"{p}: data_options.graph must be none or distance, found {echo(graph)} (--set "
            f"data_options.graph=distance)."
        )
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq,
        timestamps=ts,
        adjacency=adjacency,
        node_names=_names(info, n),
        channel_names=["value"],
        null_value=null_value,
        meta={
            "format": "uctb",
            "graph_note": None
            if adjacency is not None or info is None
            else "build one from the stations' coordinates with --set data_options.graph=distance",
        },
    )


def _unpickle(p: Path) -> Any:
    """The pickled dict of a ``.pkl``, or of the one ``.pkl`` member of a ``.zip``."""
    if not zipfile.is_zipfile(p):
        check_alloc(p, "the pickle", p.stat().st_size * 2)
        return load_pickle_file(p, "a UCTB dataset")
    try:
        with zipfile.ZipFile(p) as zf:
            members = [i for i in zf.infolist() if i.filename.lower().endswith(".pkl")]
            if len(members) != 1:
                raise DataError(
                    f"{p}: expected a zip holding one .pkl (a UCTB dataset), found "
                    f"{echo_list([i.filename for i in zf.infolist()])}."
                )
            info = members[0]
            # the bytes, then the arrays built from them
            check_alloc(
                f"{p} (member {echo(info.filename)})",
                "the pickle",
                info.file_size * 2,
                compressed=info.compress_size,
            )
            data = zf.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as e:
        raise DataError(f"{p}: expected a zip holding one .pkl, could not read it ({e}).") from e
    with tempfile.TemporaryDirectory(prefix="linearcast-uctb-") as tmp:
        inner = Path(tmp) / Path(info.filename).name
        inner.write_bytes(data)
        del data
        try:
            return load_pickle_file(inner, "a UCTB dataset")
        except DataError as err:
            # name the zip and its member, not the temporary copy
            raise DataError(str(err).replace(str(inner), f"{p} (member {info.filename})")) from None


def _traffic(p: Path, obj: Any) -> tuple[dict[str, Any], np.ndarray]:
    node = obj.get("Node") if isinstance(obj, dict) else None
    traffic = node.get("TrafficNode") if isinstance(node, dict) else None
    if not isinstance(node, dict) or not isinstance(traffic, np.ndarray):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DataError(
            f"{p}: expected {_WHAT}, found {echo(keys, 120)} without a Node.TrafficNode array."
        )
    check_numeric(traffic, f"{p} (Node.TrafficNode)")
    if traffic.ndim not in (2, 3) or 0 in traffic.shape:
        raise DataError(
            f"{p}: expected Node.TrafficNode of shape [T, N], found {list(traffic.shape)}."
        )
    return node, to_float32(traffic, f"{p} (Node.TrafficNode)")


def _timestamps(p: Path, obj: dict[str, Any], t: int) -> tuple[int, pd.DatetimeIndex]:
    fitness, span = obj.get("TimeFitness"), obj.get("TimeRange")
    if isinstance(fitness, bool) or not isinstance(fitness, int | float) or not fitness > 0:
        raise DataError(f"{p}: expected TimeFitness as minutes > 0, found {echo(fitness)}.")
    if fitness != int(fitness):
        raise DataError(f"{p}: expected TimeFitness as whole minutes, found {echo(fitness)}.")
    try:
        start, end = (pd.Timestamp(str(v)) for v in span)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise DataError(
            f"{p}: expected TimeRange as [start, end] dates, found {echo(span)}."
        ) from err
    step = pd.Timedelta(minutes=int(fitness))
    if start + t * step != end:
        warnings.warn(
            f"{p}: TimeRange {start}..{end} holds {(end - start) // step} steps of "
            f"{int(fitness)} min, the data {t}; the times are counted from {start}.",
            UserWarning,
            stacklevel=4,
        )
    return int(fitness), pd.date_range(start, periods=t, freq=step)


def _station_info(p: Path, node: dict[str, Any], n: int) -> list[Any] | None:
    info = node.get("StationInfo")
    if info is None or (hasattr(info, "__len__") and len(info) == 0):
        return None
    rows = list(info.values()) if isinstance(info, dict) else list(info)
    if len(rows) != n or not all(isinstance(r, list | tuple) and len(r) >= 4 for r in rows):
        raise DataError(
            f"{p}: expected Node.StationInfo as {n} rows [id, build_time, lat, lng, name] (one "
            f"per column of TrafficNode), found {len(rows)} rows (first {echo(rows[:1])})."
        )
    return rows


def _names(info: list[Any] | None, n: int) -> list[str] | None:
    """Station names (the last field, else the id), made unique with the id where repeated."""
    if info is None:
        return None
    names = [str(r[4] if len(r) > 4 else r[0]) for r in info]
    if len(set(names)) == n:
        return names
    return [f"{nm} ({r[0]})" for nm, r in zip(names, info, strict=True)]


def distance_graph(p: Path, info: list[Any] | None, threshold: float) -> np.ndarray:
    """The Gaussian-kernel adjacency ``[N, N]`` of the stations' haversine distances."""
    if info is None:
        raise DataError(
            f"{p}: data_options.graph=distance needs the stations' coordinates, found no "
            f"Node.StationInfo; drop the option."
        )
    n = len(info)
    check_dense_graph(p, n)
    try:
        lat = np.radians(np.array([float(r[2]) for r in info]))
        lng = np.radians(np.array([float(r[3]) for r in info]))
    except (TypeError, ValueError) as err:
        raise DataError(
            f"{p}: expected latitude and longitude numbers in fields 3 and 4 of "
            f"Node.StationInfo, found {echo(info[0])}."
        ) from err
    if not (np.isfinite(lat).all() and np.isfinite(lng).all()):
        raise DataError(f"{p}: Node.StationInfo holds non-finite coordinates.")
    dlat = lat[:, None] - lat[None, :]
    dlng = lng[:, None] - lng[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlng / 2) ** 2
    d = 2 * _EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    off = d[~np.eye(n, dtype=bool)]
    sigma = float(off.std()) if off.size else 0.0
    w = np.exp(-((d / sigma) ** 2)) if sigma > 0 else np.ones_like(d)
    w[w < threshold] = 0.0
    return w.astype(np.float32)


def _claims(path: Path) -> bool:
    if path.suffix.lower() == ".pkl":
        return not looks_like_adjacency(path)
    if not is_regular(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return len(names) >= 1 and sum(n.lower().endswith(".pkl") for n in names) == 1


FORMAT = ReaderFormat(
    name="uctb",
    read=read_uctb,
    files="UCTB dataset: .zip holding one .pkl (or the .pkl): TimeRange, TimeFitness, Node",
    suffixes=(".pkl", ".zip"),
    claims=_claims,
    priority=10,
)
