"""Write a dataset in the BasicTS v0.4/v0.5 layout: ``data.dat``, ``desc.json``, ``adj_mx.pkl``."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from linearcast import jsonio
from linearcast.data.checks import _iter_row_chunks
from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.protocols import Protocol, get_protocol
from linearcast.errors import DataError


def write_basicts(
    dataset: TimeSeriesDataset,
    out_dir: str | Path,
    *,
    protocol: Protocol | str | None = None,
    add_time_of_day: bool = True,
    add_day_of_week: bool = True,
    domain: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``dataset`` as a BasicTS folder readable by BasicTS and :func:`read_basicts`.

    ``data.dat`` is float32 ``[L, N, F + k]``: the F data channels, then the time of day as a
    fraction and the day of week as ``dow / 7`` (BasicTS's encoding), when asked for and known.
    ``desc.json`` carries the shape, frequency and the protocol's ``regular_settings``.
    ``adj_mx.pkl`` is the bare ``[N, N]`` float32 adjacency (as BasicTS stores PEMS graphs).
    The data is copied chunk by chunk, so memory-mapped inputs stay out of RAM.

    Args:
        dataset: what to write.
        out_dir: the folder (created; must be empty unless ``overwrite``).
        protocol: protocol whose settings go to ``regular_settings`` (default ``pems``).
        add_time_of_day: append the time-of-day channel (skipped when unknown).
        add_day_of_week: append the day-of-week channel (skipped when unknown).
        domain: description of channel 0 (default: its channel name).
        overwrite: replace existing ``data.dat`` / ``desc.json`` / ``adj_mx.pkl``.

    Returns:
        The folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dat = out / "data.dat"
    if dat.exists() and not overwrite:
        raise DataError(f"{dat}: already exists; pass overwrite=True (--overwrite) to replace it.")
    proto = get_protocol(protocol or "pems")
    t, n, f = dataset.shape
    extra = _time_columns(dataset, add_time_of_day, add_day_of_week)
    shape = (t, n, f + len(extra))
    _write_values(dataset, extra, shape, dat)
    names = list(dataset.channel_names or [f"channel {i}" for i in range(f)])
    if domain is not None:
        names[0] = domain
    null = dataset.null_value if proto.null_value is None else proto.null_value
    desc = {
        "name": dataset.name,
        "domain": names[0],
        "shape": list(shape),
        "num_time_steps": t,
        "num_nodes": n,
        "num_features": shape[2],
        "feature_description": names + [name for name, _ in extra],
        "has_graph": dataset.adjacency is not None,
        "frequency (minutes)": dataset.freq_minutes,
        "regular_settings": _regular_settings(proto, null),
        "source": str(dataset.path) if dataset.path is not None else None,
    }
    (out / "desc.json").write_text(jsonio.dumps(desc, indent=4))
    adj_path = out / "adj_mx.pkl"
    if dataset.adjacency is not None:
        with open(adj_path, "wb") as fh:
            pickle.dump(np.asarray(dataset.adjacency, dtype=np.float32), fh)
    elif adj_path.exists() and overwrite:
        adj_path.unlink()
    return out


def _time_columns(
    dataset: TimeSeriesDataset, add_time_of_day: bool, add_day_of_week: bool
) -> list[tuple[str, np.ndarray]]:
    """``(name, [T] float32)`` of the time channels to append: the time of day as a fraction,
    the day of week as ``dow / 7`` (BasicTS's encoding), each when asked for and known."""
    extra: list[tuple[str, np.ndarray]] = []
    known_time = dataset.steps_per_day is not None or dataset.timestamps is not None
    known_time = known_time or dataset.tod_values is not None
    if add_time_of_day and known_time:
        extra.append(("time of day", dataset.time_of_day().astype(np.float32)))
    if add_day_of_week and (known_time or dataset.dow_values is not None):
        extra.append(("day of week", (dataset.day_of_week() / 7.0).astype(np.float32)))
    return extra


def _write_values(
    dataset: TimeSeriesDataset,
    extra: list[tuple[str, np.ndarray]],
    shape: tuple[int, int, int],
    dat: Path,
) -> None:
    """Write ``data.dat`` ``[T, N, F + k]`` chunk by chunk through a temporary file."""
    f = dataset.shape[2]
    tmp = dat.with_name(".data.dat.part")
    mm = np.memmap(tmp, dtype=np.float32, mode="w+", shape=shape)
    for sl in _iter_row_chunks(dataset.values):
        mm[sl, :, :f] = dataset.values[sl]
        for j, (_, col) in enumerate(extra):
            mm[sl, :, f + j] = col[sl, None]
    mm.flush()
    del mm
    os.replace(tmp, dat)


def _regular_settings(proto: Protocol, null: float) -> dict[str, Any]:
    """BasicTS's ``regular_settings`` of ``proto``."""
    raw = proto.metrics_space == "raw"
    return {
        "INPUT_LEN": proto.in_steps,
        "OUTPUT_LEN": proto.out_steps,
        "TRAIN_VAL_TEST_RATIO": list(proto.split_ratios),
        "NORM_EACH_CHANNEL": proto.scaler == "per_channel",
        "RESCALE": raw,
        "METRICS": ["MAE", "RMSE", "MAPE"] if raw else ["MAE", "MSE"],
        # json writes NaN for a NaN null value, as BasicTS's own files do
        "NULL_VAL": float("nan") if math.isnan(null) else float(null),
    }
