"""``basicts``: a BasicTS v0.4/v0.5 folder, ``data.dat`` (float32 memmap ``[L, N, C]``),
``desc.json`` and an optional ``adj_mx.pkl`` (read with the restricted unpickler)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import PathLike, ReaderFormat, require_file
from linearcast.data.readers._files import check_text_size, echo, echo_list, first_line
from linearcast.data.readers.graph import check_graph_size, read_adjacency_pickle
from linearcast.errors import DataError

_TIME_FEATURE_NAMES = ("time of day", "day of week", "day of month", "day of year")


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
    require_file(desc_path, "a BasicTS desc.json beside data.dat")
    require_file(dat, "a BasicTS data.dat (float32 memmap)")
    desc, shape = _read_desc(desc_path, dat)
    data = np.memmap(dat, dtype=np.float32, mode="r", shape=shape)
    values, tod, dow, channel_names = _split_time_features(data, desc, desc_path)
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
        check_graph_size(adj, shape[1], adjacency, shape)
    return TimeSeriesDataset(
        values=values,
        name=name or str(desc.get("name") or dat.parent.name),
        path=dat.parent,
        freq_minutes=int(freq) if freq is not None else None,
        adjacency=adj,
        node_names=ids,
        channel_names=channel_names,
        null_value=null_value,
        tod_values=tod,
        dow_values=dow,
        meta={"format": "basicts", "desc": desc},
    )


def _read_desc(desc_path: Path, dat: Path) -> tuple[dict[str, Any], tuple[int, int, int]]:
    """``desc.json`` and the ``[L, N, C]`` shape it gives, checked against the size of ``dat``."""
    check_text_size(desc_path, "a BasicTS desc.json", 16)
    try:
        desc = json.loads(desc_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(
            f"{desc_path}: expected valid UTF-8 JSON, could not parse it ({first_line(err, 100)})."
        ) from None
    if not isinstance(desc, dict):
        raise DataError(f"{desc_path}: expected a JSON object, found {type(desc).__name__}.")
    if "shape" not in desc:
        raise DataError(
            f"{desc_path}: expected key 'shape', found keys {echo_list(sorted(desc, key=str))}."
        )
    raw_shape = desc["shape"]
    if (
        not isinstance(raw_shape, list)
        or len(raw_shape) != 3
        or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in raw_shape)
    ):
        raise DataError(
            f"{desc_path}: expected 'shape' as three positive integers [L, N, C], "
            f"found {echo(raw_shape)}."
        )
    shape = (raw_shape[0], raw_shape[1], raw_shape[2])
    expected_bytes = int(np.prod(shape)) * 4
    found_bytes = dat.stat().st_size
    if found_bytes != expected_bytes:
        raise DataError(
            f"{dat}: expected {expected_bytes} bytes (float32 of shape {list(shape)} from "
            f"desc.json), found {found_bytes} bytes."
        )
    return desc, shape


def _split_time_features(
    data: np.ndarray, desc: dict[str, Any], desc_path: Path
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str]]:
    """Split ``data: [L, N, C]`` into the data channels ``[L, N, F]`` (a memmap view when they
    come first), the exact time of day ``[L]`` and day of week ``[L]`` (None when absent) and
    the data channels' names, by ``desc["feature_description"]``."""
    c = data.shape[2]
    features = [str(x).lower() for x in desc.get("feature_description", [])]
    if len(features) != c:
        features = features[:c] + ["value"] * (c - len(features))
    time_idx = {f: i for i, f in enumerate(features) if f in _TIME_FEATURE_NAMES}
    data_idx = [i for i, f in enumerate(features) if f not in _TIME_FEATURE_NAMES]
    if not data_idx:
        raise DataError(
            f"{desc_path}: expected at least one data channel, found only {echo_list(features)}."
        )
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
    return values, tod, dow, [features[i] for i in data_idx]


FORMAT = ReaderFormat(
    name="basicts",
    read=read_basicts,
    files="a BasicTS folder: data.dat float32 memmap [L, N, C] + desc.json (+ adj_mx.pkl)",
    suffixes=("/", ".dat", ".json"),
    claims=lambda p: p.is_dir() or p.name in ("data.dat", "desc.json"),
    priority=20,
)
