"""Several files, one dataset: a glob pattern (``'data/PRSA_Data_*.csv'``, quoted on the command
line) or a list of paths, one file per station, each read by its own reader with the same
options and stacked along the series axis.

Series names: the file's station (a ``station`` column holding one name, else the file stem)
when the file gives one series (e.g. with ``value_column=PM2.5``), else ``station/series``.
Every file must have the timestamps of the first (or, without timestamps, its length).

A path that exists is read as it is, even when its name holds ``*``, ``?`` or ``[``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.readers._files import check_alloc, echo, echo_list
from linearcast.errors import DataError

_MAGIC = re.compile(r"[*?\[]")
#: Options applied to the stacked dataset, not to each file.
STACK_OPTIONS = ("adjacency", "graph_drop", "name")


def is_pattern(spec: object) -> bool:
    """Whether ``spec`` is a glob pattern (and not an existing path whose name holds ``*``)."""
    if not isinstance(spec, str | os.PathLike):
        return False
    text = os.fspath(spec)
    return isinstance(text, str) and bool(_MAGIC.search(text)) and not Path(text).exists()


def expand(spec: object) -> list[Path] | None:
    """The files of a pattern or a list of paths; ``None`` for a single path.

    Raises:
        DataError: a pattern that matches no file, or an empty list.
    """
    if isinstance(spec, list | tuple):
        if not spec:
            raise DataError("data: expected one or more dataset files, found an empty list.")
        return [Path(s) for s in spec]
    if not is_pattern(spec):
        return None
    text = os.path.expanduser(str(spec))
    files = sorted(Path(m) for m in glob.glob(text) if not Path(m).is_dir())
    if not files:
        raise DataError(
            f"{text}: no file matches this pattern (expected one or more dataset files, e.g. "
            f"'data/PRSA_Data_*.csv', quoted so that the shell passes it as it is)."
        )
    return files


def stacked_name(spec: object, files: Sequence[Path]) -> str:
    """A name for the stacked dataset: the pattern's stem up to its first wildcard, else the
    files' folder (``PRSA_Data_*_2013.csv`` -> ``PRSA_Data``)."""
    stem = Path(os.fspath(spec)).name if isinstance(spec, str | os.PathLike) else ""
    head = _MAGIC.split(Path(str(stem)).stem, maxsplit=1)[0].rstrip("_-. ")
    return head or files[0].resolve().parent.name or "files"


def read_files(
    files: list[Path],
    spec: object,
    read: Callable[[Path, dict[str, Any]], TimeSeriesDataset],
    options: dict[str, Any],
) -> tuple[TimeSeriesDataset, dict[str, Any]]:
    """Read each file with ``read(file, options)`` and stack them (see the module docstring).

    Returns:
        The stacked dataset, and the :data:`STACK_OPTIONS` given (for the caller to apply).
    """
    later = {k: options.pop(k) for k in STACK_OPTIONS if k in options}
    parts = [read(f, dict(options)) for f in files]
    first = parts[0]
    for f, ds in zip(files[1:], parts[1:], strict=True):
        _check_aligned(files[0], first, f, ds)
    names = _series_names(files, parts)
    n = sum(ds.num_nodes for ds in parts)
    shape = [first.num_steps, n, first.num_channels]
    check_alloc(spec, f"{len(files)} files stacked to {shape}", 4 * int(np.prod(shape)))
    values = np.concatenate([np.asarray(ds.values, dtype=np.float32) for ds in parts], axis=1)
    label = Path(os.fspath(spec)) if isinstance(spec, str | os.PathLike) else files[0]
    stacked = TimeSeriesDataset(
        values=values,
        name=str(later.pop("name", None) or stacked_name(spec, files)),
        path=label,
        freq_minutes=first.freq_minutes,
        steps_per_day=first.steps_per_day,
        start=first.start,
        timestamps=first.timestamps,
        node_names=names,
        channel_names=first.channel_names,
        null_value=first.null_value,
        meta={
            "format": first.meta.get("format"),
            "files": [str(f) for f in files],
            **({"freq": first.meta["freq"]} if first.meta.get("freq") else {}),
        },
    )
    return stacked, later


def _check_aligned(f0: Path, ds0: TimeSeriesDataset, f: Path, ds: TimeSeriesDataset) -> None:
    """Refuse a file whose times (or length, channels) differ from the first file's."""
    if ds.num_channels != ds0.num_channels:
        raise DataError(
            f"{f}: expected {ds0.num_channels} channel(s) like {f0.name}, found "
            f"{ds.num_channels}; every file must have the same columns."
        )
    t0, t = ds0.timestamps, ds.timestamps
    if t0 is None or t is None:
        if (t0 is None) != (t is None) or ds.num_steps != ds0.num_steps:
            raise DataError(
                f"{f}: expected the times of {f0.name} ({ds0.num_steps} steps"
                f"{', with timestamps' if t0 is not None else ', no timestamps'}), found "
                f"{ds.num_steps} steps{', with timestamps' if t is not None else ''}; every "
                f"file must cover the same times."
            )
        return
    if len(t) != len(t0) or not t.equals(t0):
        k = min(len(t), len(t0))
        diff = np.flatnonzero(t[:k] != t0[:k])
        where = (
            f"row {int(diff[0])}: {t[int(diff[0])]} where {f0.name} has {t0[int(diff[0])]}"
            if len(diff)
            else f"{len(t)} steps where {f0.name} has {len(t0)}"
        )
        raise DataError(
            f"{f}: expected the timestamps of {f0.name} (every file must cover the same times), "
            f"found {where}; cut or fill the files to one time range."
        )


def _series_names(files: list[Path], parts: list[TimeSeriesDataset]) -> list[str]:
    stations = [str(ds.meta.get("station") or f.stem) for f, ds in zip(files, parts, strict=True)]
    if len(set(stations)) != len(stations):
        stations = [f.stem for f in files]
    names: list[str] = []
    for station, ds in zip(stations, parts, strict=True):
        own = ds.node_names or [str(i) for i in range(ds.num_nodes)]
        names += [station] if ds.num_nodes == 1 else [f"{station}/{s}" for s in own]
    if len(set(names)) != len(names):
        seen = sorted({s for s in names if names.count(s) > 1})
        raise DataError(
            f"{files[0].parent}: the files give repeated series names {echo_list(seen)}; "
            f"expected one file per station (names from a station column or the file name, "
            f"e.g. {echo(files[0].name)})."
        )
    return names
