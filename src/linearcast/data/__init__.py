"""Data: readers for the field's formats, protocols, windows, scaler and a synthetic default.

Typical use::

    from linearcast.data import load, get_protocol

    ds = load("PEMS08.npz")                     # TimeSeriesDataset, values [T, N, F]
    prep = get_protocol("pems").prepare(ds)     # counts, scaler, train/val/test windows
    loaders = prep.dataloaders(batch_size=16)   # x [B, 12, N, 3], y [B, 12, N, 1]

Names are imported on first use (``import linearcast.data`` itself loads nothing heavy).
See ``docs/data.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linearcast._lazy import lazy_exports

if TYPE_CHECKING:
    from linearcast.data.catalog import CATALOG, CatalogEntry, cache_dir, download, get_entry
    from linearcast.data.dataset import TimeSeriesDataset, graph_stats
    from linearcast.data.frames import as_dataset, describe_data, future_timestamps
    from linearcast.data.protocols import PROTOCOLS, PreparedData, Protocol, get_protocol
    from linearcast.data.readers import (
        READERS,
        check_timestamps,
        load,
        read_adjacency,
        read_adjacency_pickle,
        read_array,
        read_basicts,
        read_ltsf_csv,
        read_matrix_csv,
        read_metr_h5,
        read_pems_graph,
        read_pems_npz,
        read_pgt_json,
        sniff_format,
    )
    from linearcast.data.scaler import StandardScaler
    from linearcast.data.synthetic import synthetic_traffic
    from linearcast.data.windows import WindowDataset
    from linearcast.data.writers import write_basicts

_EXPORTS: dict[str, str] = {
    "TimeSeriesDataset": "dataset",
    "graph_stats": "dataset",
    "as_dataset": "frames",
    "describe_data": "frames",
    "future_timestamps": "frames",
    "READERS": "readers",
    "check_timestamps": "readers",
    "load": "readers",
    "read_adjacency": "readers",
    "read_adjacency_pickle": "readers",
    "read_array": "readers",
    "read_basicts": "readers",
    "read_ltsf_csv": "readers",
    "read_matrix_csv": "readers",
    "read_metr_h5": "readers",
    "read_pems_graph": "readers",
    "read_pems_npz": "readers",
    "read_pgt_json": "readers",
    "sniff_format": "readers",
    "StandardScaler": "scaler",
    "WindowDataset": "windows",
    "PROTOCOLS": "protocols",
    "PreparedData": "protocols",
    "Protocol": "protocols",
    "get_protocol": "protocols",
    "synthetic_traffic": "synthetic",
    "write_basicts": "writers",
    "CATALOG": "catalog",
    "CatalogEntry": "catalog",
    "cache_dir": "catalog",
    "download": "catalog",
    "get_entry": "catalog",
}

__all__ = [
    "CATALOG",
    "PROTOCOLS",
    "READERS",
    "CatalogEntry",
    "PreparedData",
    "Protocol",
    "StandardScaler",
    "TimeSeriesDataset",
    "WindowDataset",
    "as_dataset",
    "cache_dir",
    "check_timestamps",
    "describe_data",
    "download",
    "future_timestamps",
    "get_entry",
    "get_protocol",
    "graph_stats",
    "load",
    "read_adjacency",
    "read_adjacency_pickle",
    "read_array",
    "read_basicts",
    "read_ltsf_csv",
    "read_matrix_csv",
    "read_metr_h5",
    "read_pems_graph",
    "read_pems_npz",
    "read_pgt_json",
    "sniff_format",
    "synthetic_traffic",
    "write_basicts",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
