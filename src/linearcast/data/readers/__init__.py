"""Readers for the file formats of the field: one module per format, one table, one ``load``.

Each module declares a :class:`~linearcast.data.readers._common.ReaderFormat` -- its reader,
the suffixes it reads and how it recognises a file -- and :data:`FORMATS` lists them. ``load``
sniffs the format (or takes ``format=``), checks the reader's options and turns anything a
damaged file provokes into one :class:`~linearcast.errors.DataError` naming the file.

=============== ==========================================================================
format          files
=============== ==========================================================================
``pems``        ``PEMS0x.npz`` (key ``data``) + ``PEMS0x.csv`` edge list (+ ``PEMS03.txt``)
``basicts``     ``data.dat`` float32 memmap ``[L, N, C]`` + ``desc.json`` (+ ``adj_mx.pkl``)
``metr``        pandas HDF5 ``.h5`` (time index x sensors) + DCRNN ``adj_mx.pkl``
``ltsf``        CSV with a ``date`` column then one column per series (ETT, Weather, ...)
``table``       CSV, long (``unique_id, ds, y``) or wide; time in one column, ``Date`` +
                ``Time``, or ``year, month, day[, hour]`` (UCI AirQuality, Beijing PM2.5)
``uctb``        UCTB benchmark ``.zip`` (one ``.pkl``) / ``.pkl``: ``Node.TrafficNode`` ``[T, N]``
``matrix_csv``  ``[T, N]`` CSV (header optional) + ``[N, N]`` adjacency beside it (Los-loop)
``pgt``         pytorch-geometric-temporal JSON; networkx node-link JSON
``flow_pair``   ``*inflow*`` / ``*outflow*`` arrays (.npz, .npy, .mat) → ``[T, N, 2]``
``mat``         a MATLAB ``.mat`` array (``[T, N]`` or ``[N, days, steps]``)
``array``       generic ``.npy`` / ``.npz`` holding ``[T, N]`` or ``[T, N, F]``
=============== ==========================================================================

Several files (a glob pattern or a list of paths, one file per station) are read each with its
reader and stacked into one dataset (:mod:`.multi`).

Large arrays are memory-mapped (``.npy``, BasicTS ``data.dat``, float32 members of
uncompressed ``.npz``); compressed ``.npz`` and CSV/HDF5/JSON/MAT files are loaded into memory.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.readers import (
    array,
    basicts,
    flows,
    ltsf,
    matrix_csv,
    metr,
    multi,
    pems,
    pgt,
    table,
    uctb,
)
from linearcast.data.readers._common import (
    PathLike,
    ReaderFormat,
    check_timestamps,
    csv_options,
)
from linearcast.data.readers._files import (
    LIMIT_OPTION,
    first_line,
    memory_limit,
    not_found,
    require_file,
)
from linearcast.data.readers.array import read_array
from linearcast.data.readers.basicts import read_basicts
from linearcast.data.readers.flows import read_flow_pair
from linearcast.data.readers.graph import (
    looks_like_adjacency,
    read_adjacency,
    read_adjacency_pickle,
)
from linearcast.data.readers.ltsf import read_ltsf_csv
from linearcast.data.readers.matrix_csv import read_matrix_csv
from linearcast.data.readers.metr import read_metr_h5
from linearcast.data.readers.pems import is_edge_list, read_pems_graph, read_pems_npz
from linearcast.data.readers.pgt import read_pgt_json
from linearcast.data.readers.table import read_table_csv
from linearcast.data.readers.uctb import read_uctb
from linearcast.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Every format, by name. A new format = one module declaring ``FORMAT`` + one entry here.
FORMATS: dict[str, ReaderFormat] = {
    f.name: f
    for f in (
        basicts.FORMAT,
        pems.FORMAT,
        flows.FORMAT,
        flows.MAT_FORMAT,
        metr.FORMAT,
        ltsf.FORMAT,
        table.FORMAT,
        matrix_csv.FORMAT,
        pgt.FORMAT,
        uctb.FORMAT,
        array.FORMAT,
    )
}

#: ``format name -> reader`` (the table above, as functions).
READERS: dict[str, Callable[..., TimeSeriesDataset]] = {n: f.read for n, f in FORMATS.items()}


def _format_list(formats: list[ReaderFormat]) -> str:
    return ", ".join(f"--format {f.name} ({f.files})" for f in formats)


def sniff_format(path: PathLike) -> str:
    """Tell the format of a file or folder from its suffix, name, siblings and first line.

    Args:
        path: a file or a BasicTS folder (or a glob pattern: its first file tells).

    Returns:
        A key of :data:`FORMATS`.

    Raises:
        DataError: no format recognises the file, or two recognise it equally (the message
            lists the ``--format`` values that would read it).
    """
    files = multi.expand(path)
    p = files[0] if files else Path(path)
    if not p.exists():
        raise DataError(f"{p}: {not_found(p)} (expected a dataset file or BasicTS folder).")
    if p.is_dir():
        if (p / "desc.json").exists():
            return "basicts"
        raise DataError(f"{p}: expected a BasicTS folder with desc.json and data.dat, found none.")
    require_file(p, "a dataset file or BasicTS folder")  # a FIFO would block the sniffing
    if p.name in ("data.dat", "desc.json"):
        return "basicts"
    suffix = p.suffix.lower()
    if suffix == ".gz" and Path(p.stem).suffix.lower() in (".csv", ".txt"):
        suffix = Path(p.stem).suffix.lower()  # data.csv.gz: the CSV readers decompress it
    readable = [f for f in FORMATS.values() if suffix in f.suffixes]
    if not readable:
        known = sorted({s for f in FORMATS.values() for s in f.suffixes if s != "/"})
        raise DataError(
            f"{p}: could not tell the format from suffix {suffix!r}; expected one of "
            f"{', '.join(known)}, data.dat, or pass --format one of {sorted(FORMATS)}."
        )
    if suffix in (".csv", ".txt") and is_edge_list(p):
        raise DataError(
            f"{p}: this is an edge list (header from,to,...), not a dataset: expected the data "
            f"file (e.g. {p.with_suffix('.npz').name}); the reader takes the graph from this "
            "file beside it."
        )
    claimed = [f for f in readable if f.claims is None or f.claims(p)]
    if not claimed:
        if looks_like_adjacency(p):
            raise DataError(
                f"{p}: the name says this is a graph (adjacency), not a dataset: pass the data "
                f"file; the graph beside it is read with it (or set it with --set "
                f"data_options.adjacency={p.name}). If it is data, pass {_format_list(readable)}."
            )
        raise DataError(f"{p}: no format recognises this file; pass {_format_list(readable)}.")
    best = max(f.priority for f in claimed)
    top = [f for f in claimed if f.priority == best]
    if len(top) > 1:
        raise DataError(f"{p}: the file fits several formats; choose with {_format_list(top)}.")
    return top[0].name


def reader_options(fmt: str) -> list[str]:
    """The keyword options of a format's reader (``--set data_options.NAME=VALUE``)."""
    params = inspect.signature(READERS[fmt]).parameters
    return [n for n, p in params.items() if n != "path" and p.kind is not p.VAR_KEYWORD]


#: Options every format takes: passed to the reader when it has them, else applied to the
#: dataset it returns (so that a file without timestamps, graph or null rule can be given them);
#: ``memory_limit_gb`` bounds what the read may allocate (default: half the memory available).
COMMON_OPTIONS = ("freq_minutes", "start", "adjacency", "graph_drop", "null_value", LIMIT_OPTION)


def _check_reader_options(fmt: str, path: PathLike, options: dict[str, Any]) -> None:
    """Unknown reader options are a :class:`ConfigError` listing the ones this format takes."""
    known = reader_options(fmt)
    unknown = sorted(set(options) - set(known) - set(COMMON_OPTIONS))
    if unknown:
        takes = sorted(set(known) | set(COMMON_OPTIONS))
        raise ConfigError(
            f"{path}: the {fmt!r} reader has no option(s) {unknown}; it takes "
            f"{', '.join(takes)} (set them with --set data_options.NAME=VALUE)."
        )


def _apply_common(ds: TimeSeriesDataset, options: dict[str, Any]) -> TimeSeriesDataset:
    """Give a dataset the :data:`COMMON_OPTIONS` its reader does not take itself."""
    import dataclasses

    import pandas as pd

    from linearcast.data.readers.graph import resolve_adjacency

    src = ds.source
    changes: dict[str, Any] = {}
    if "freq_minutes" in options and options["freq_minutes"] is not None:
        f = int(options["freq_minutes"])
        if ds.timestamps is not None and ds.freq_minutes not in (None, f):
            raise DataError(
                f"{src}: its timestamps give a step of {ds.freq_minutes} min, not the "
                f"{f} min asked for; drop --freq / data_options.freq_minutes."
            )
        changes |= {"freq_minutes": f, "steps_per_day": 1440 // f if 1440 % f == 0 else None}
    if options.get("start") is not None:
        if ds.timestamps is not None:
            raise DataError(
                f"{src}: the file has its own timestamps (from {ds.timestamps[0]}); drop --start "
                f"/ data_options.start."
            )
        changes["start"] = pd.Timestamp(options["start"])
    if "null_value" in options:
        changes["null_value"] = float(options["null_value"])
    if "adjacency" in options or "graph_drop" in options:
        adjacency = options.get("adjacency", "auto")
        adj, _ = resolve_adjacency(
            adjacency,
            ds.num_nodes,
            Path(str(ds.path)),
            ds.shape,
            drop=options.get("graph_drop", ()),
        )
        changes["adjacency"] = adj
    return dataclasses.replace(ds, **changes) if changes else ds


def load(
    path: PathLike | list[PathLike], format: str = "auto", **options: Any
) -> TimeSeriesDataset:
    """Read any supported dataset.

    Args:
        path: file or BasicTS folder; or several files, one per station (a glob pattern such as
            ``"data/PRSA_Data_*.csv"``, or a list of paths), stacked into one dataset (see
            :mod:`~linearcast.data.readers.multi`). A path that exists is never a pattern.
        format: ``"auto"`` (see :func:`sniff_format`) or a key of :data:`FORMATS`.
        **options: the reader's options (:func:`reader_options` lists them) and the
            :data:`COMMON_OPTIONS` every format takes (``freq_minutes``, ``start``,
            ``adjacency``, ``graph_drop``, ``null_value``).

    Returns:
        The dataset.

    Raises:
        DataError: for any problem with the file (one sentence naming it).
        ConfigError: an unknown format name or reader option.
    """
    with memory_limit(options.pop(LIMIT_OPTION, None)):
        files = multi.expand(path)
        if files is None:
            return _load(Path(path), format, options)  # type: ignore[arg-type]
        ds, later = multi.read_files(files, path, lambda f, o: _load(f, format, o), options)
        return _apply_common(ds, later)


#: Options only the ``table`` reader takes: given them, a CSV another format claims is a table.
_TABLE_OPTIONS = frozenset({"id_column", "time_column", "value_column"})


def resolve_format(path: PathLike, format: str, options: dict[str, Any]) -> str:
    """The format :func:`load` reads ``path`` as: ``format``, or for ``"auto"`` the sniffed one
    -- a CSV is a ``table`` when ``options`` name its columns (``id_column``, ...)."""
    path = Path(path)
    with csv_options(options):
        fmt = sniff_format(path) if format == "auto" else format
    if (
        format == "auto"
        and _TABLE_OPTIONS & set(options)
        and not _TABLE_OPTIONS & set(reader_options(fmt))
        and path.suffix.lower() in table.FORMAT.suffixes
    ):
        fmt = "table"
    return fmt


def _load(p: Path, format: str, options: dict[str, Any]) -> TimeSeriesDataset:
    """:func:`load` within the memory limit."""
    path = p
    fmt = resolve_format(path, format, options)
    if fmt not in FORMATS:
        raise ConfigError(
            f"{path}: unknown format {fmt!r}; expected one of {sorted(FORMATS)} (--format)."
        )
    if p.is_file() and p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty (0 bytes); expected a {fmt!r} dataset.")
    _check_reader_options(fmt, path, options)
    own = set(reader_options(fmt))
    later = {k: options.pop(k) for k in list(options) if k in COMMON_OPTIONS and k not in own}
    try:
        # values past float32's range become inf, which handle_non_finite reports in a sentence
        with np.errstate(over="ignore"):
            ds = READERS[fmt](path, **options)
        ds = _apply_common(ds, later)
    except DataError as err:
        if format == "auto":
            raise
        raise _with_format_hint(err, path, fmt) from err.__cause__
    except ConfigError:
        raise
    except Exception as err:
        # a damaged file can fail deep inside numpy/pandas/PyTables/SciPy in ways no reader
        # foresees; the contract is one sentence naming the file, so the net catches the rest
        log.debug("reader %s failed on %s", fmt, path, exc_info=True)
        first = first_line(err, 120) if str(err).strip() else ""
        raise DataError(
            f"{path}: could not read it as {fmt!r} data ({type(err).__name__}"
            f"{': ' + first if first else ''})."
        ) from err
    if "format" not in ds.meta:
        ds.meta["format"] = fmt
    return ds


def _with_format_hint(err: DataError, path: Path, fmt: str) -> DataError:
    """``err`` of a read in the ``fmt`` the user named, saying which format the file looks
    like when that is another (a CSV read as ``--format uctb`` fails in pickle's words)."""
    try:
        seen = sniff_format(path)
    except (DataError, ConfigError, OSError):
        return err
    if seen == fmt:
        return err
    text = str(err).rstrip(".")
    return DataError(
        f"{text}; the file looks like {seen!r} data: leave --format out (or --format {seen})."
    )


__all__ = [
    "FORMATS",
    "READERS",
    "ReaderFormat",
    "check_timestamps",
    "load",
    "read_adjacency",
    "read_adjacency_pickle",
    "read_array",
    "read_basicts",
    "read_flow_pair",
    "read_ltsf_csv",
    "read_matrix_csv",
    "read_metr_h5",
    "read_pems_graph",
    "read_pems_npz",
    "read_pgt_json",
    "read_table_csv",
    "read_uctb",
    "reader_options",
    "resolve_format",
    "sniff_format",
]
