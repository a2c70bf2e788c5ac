"""Write a dataset in the BasicTS v0.4/v0.5 layout: ``data.dat``, ``desc.json``, ``adj_mx.pkl``."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from linearcast.atomic import (
    atomic_path,
    check_destination,
    os_error_message,
    write_bytes,
    write_json,
)
from linearcast.data.checks import _iter_row_chunks
from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.protocols import Protocol, get_protocol
from linearcast.errors import DataError

_FIX = "a new OUT_DIR"


def write_basicts(
    dataset: TimeSeriesDataset,
    out_dir: str | Path,
    *,
    protocol: Protocol | str | None = None,
    add_time_of_day: bool = True,
    add_day_of_week: bool = True,
    domain: str | None = None,
    overwrite: bool = False,
    null_value: float | None = None,
) -> Path:
    """Write ``dataset`` as a BasicTS folder readable by BasicTS and :func:`read_basicts`.

    ``data.dat`` is float32 ``[L, N, F + k]``: the F data channels, then the time of day as a
    fraction and the day of week as ``dow / 7`` (BasicTS's encoding), when asked for and known.
    ``desc.json`` carries the shape, frequency and the protocol's ``regular_settings``.
    ``adj_mx.pkl`` is the bare ``[N, N]`` float32 adjacency (as BasicTS stores PEMS graphs).
    The data is copied chunk by chunk, so memory-mapped inputs stay out of RAM.

    Args:
        dataset: what to write.
        out_dir: the folder (created with its parents when missing; its ``data.dat``,
            ``desc.json`` and ``adj_mx.pkl`` must not exist unless ``overwrite``).
        protocol: protocol whose settings go to ``regular_settings`` (default ``pems``).
        add_time_of_day: append the time-of-day channel (skipped when unknown).
        add_day_of_week: append the day-of-week channel (skipped when unknown).
        domain: description of channel 0 (default: its channel name).
        overwrite: replace existing ``data.dat`` / ``desc.json`` / ``adj_mx.pkl``.
        null_value: the value that marks a missing reading, written as ``NULL_VAL`` (default:
            the protocol's, else the dataset's); the one the data was read with when it was
            given (``data convert --null``), as training lets the data's own win.

    Returns:
        The folder.

    Raises:
        DataError: the folder is a file, a file exists without ``overwrite``, or a write
            failed (full disk, no permission); nothing earlier is then lost or half written.
    """
    out = _output_folder(out_dir)
    dat, desc_path, adj_path = out / "data.dat", out / "desc.json", out / "adj_mx.pkl"
    # refuse before anything is written: no file of an earlier conversion is half replaced
    for target in (dat, desc_path, adj_path):
        check_destination(target, overwrite=overwrite, what=target.name, fix=_FIX, error=DataError)
    proto = get_protocol(protocol or "pems")
    t, n, f = dataset.shape
    extra = _time_columns(dataset, add_time_of_day, add_day_of_week)
    shape = (t, n, f + len(extra))
    _write_values(dataset, extra, shape, dat)
    names = list(dataset.channel_names or [f"channel {i}" for i in range(f)])
    if domain is not None:
        names[0] = domain
    null = null_value if null_value is not None else proto.null_value
    null = dataset.null_value if null is None else null
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
    write_json(desc_path, desc, indent=4, what="desc.json", fix=_FIX, error=DataError)
    if dataset.adjacency is not None:
        adj = pickle.dumps(np.asarray(dataset.adjacency, dtype=np.float32))
        write_bytes(adj_path, adj, what="adj_mx.pkl", fix=_FIX, error=DataError)
    elif adj_path.exists() and overwrite:
        adj_path.unlink()  # an earlier conversion's graph does not belong to this data
    return out


def _output_folder(out_dir: str | Path) -> Path:
    """``out_dir``, created with its parents when missing; a file in its place is refused."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataError(
            f"{out}: expected an output folder, found a file; choose another output folder "
            f"(data convert SRC OUT_DIR) or remove the file."
        ) from None
    except OSError as err:
        raise DataError(os_error_message(out, err, what="the output folder", fix=_FIX)) from None
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
    """Write ``data.dat`` ``[T, N, F + k]`` (C order, float32) chunk by chunk, atomically.

    Plain writes, not a memmap: a full disk then raises ``ENOSPC`` (reported, the temporary file
    removed) instead of killing the process with SIGBUS.
    """
    f = dataset.shape[2]
    with atomic_path(dat, what="data.dat", fix=_FIX, error=DataError) as tmp, open(tmp, "wb") as fh:
        for sl in _iter_row_chunks(dataset.values):
            chunk = np.asarray(dataset.values[sl])
            block = np.empty((chunk.shape[0], *shape[1:]), dtype=np.float32)
            block[:, :, :f] = chunk
            for j, (_, col) in enumerate(extra):
                block[:, :, f + j] = col[sl, None]
            fh.write(block.tobytes())


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
