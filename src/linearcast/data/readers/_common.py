"""What every reader shares: the format table entry, file checks, CSV/NumPy reading, timestamps.

Nothing here knows a particular format; each format module (``pems``, ``basicts``, ...) imports
these helpers and declares one :class:`ReaderFormat`.
"""

from __future__ import annotations

import math
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.readers._files import (
    check_alloc,
    check_text_size,
    echo,
    echo_list,
    first_line,
    human_bytes,
    require_file,
)
from linearcast.errors import DataError

PathLike = str | Path
# bytes of parsed objects per byte of CSV text (pandas' object columns before conversion)
_CSV_EXPANSION = 8
GraphWeights = Literal["connectivity", "distance", "gaussian"]


@dataclass(frozen=True)
class ReaderFormat:
    """One file format: its reader and how a file of it is recognised.

    Attributes:
        name: the ``--format`` value.
        read: ``read(path, **options) -> TimeSeriesDataset``.
        files: one line for ``--help`` and docs (what the files look like).
        suffixes: file suffixes it reads (lower case, with the dot); ``("/",)`` for folders.
        claims: ``claims(path) -> bool``: whether a file with one of the suffixes looks like this
            format (name, siblings, first bytes); ``None`` claims every such file.
        priority: among several formats that claim a file, the highest wins; equal priorities
            are ambiguous and the error lists the ``--format`` values.
    """

    name: str
    read: Callable[..., TimeSeriesDataset]
    files: str
    suffixes: tuple[str, ...]
    claims: Callable[[Path], bool] | None = None
    priority: int = 0


_MINUTES_IN_NAME = re.compile(r"(?<![0-9])(\d+)[ _-]?(?:min|minute|minutes)(?![a-z])", re.I)


def minutes_in_name(path: Path) -> int | None:
    """A step stated in a file name (``NYCtaxi-30min-inflow.npz`` → 30), else None."""
    m = _MINUTES_IN_NAME.search(path.stem)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def first_csv_line(path: Path) -> list[str]:
    """The cells of the first line of a text file, stripped and lower-cased (a UTF-8 byte-order
    mark dropped; at most 64 KiB read, so a file without line breaks costs nothing)."""
    require_file(path, "a text file")
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        line = fh.readline(1 << 16)
    return [c.strip().strip('"').lower() for c in line.strip().split(",")]


def np_reason(err: Exception) -> str:
    """NumPy's reason, minus its advice to load pickles unsafely (linearcast never does)."""
    if "pickle" in str(err).lower():
        return (
            "it holds pickled Python objects, which linearcast refuses to load (they can run code)"
        )
    return first_line(err)


def read_csv(path: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` with a :class:`DataError` naming the file for empty or unparsable text."""
    require_file(path, what)
    # pandas parses text into objects several times its size
    check_text_size(path, what, _CSV_EXPANSION)
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: expected {what}, found an empty file (no columns).") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(
            f"{path}: expected {what}, could not parse it as CSV ({first_line(err)})."
        ) from err
    if df.shape[0] == 0:
        raise DataError(
            f"{path}: expected {what}, found a header ({df.shape[1]} columns) but no data rows."
        )
    return df


def as_3d(arr: np.ndarray, source: str, what: str = "values") -> np.ndarray:
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 3:
        return arr
    raise DataError(
        f"{source}: expected {what} of rank 2 [T, N] or 3 [T, N, F], "
        f"found rank {arr.ndim} with shape {tuple(arr.shape)}."
    )


def check_numeric(arr: np.ndarray, source: str) -> None:
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{source}: expected a numeric array, found dtype {arr.dtype}.")


def to_float32(arr: np.ndarray, source: Any = "the array") -> np.ndarray:
    """Keep float32 arrays (and memmaps) as they are; convert others (loads into memory, so the
    float32 copy is checked against the memory budget first: int8 becomes 4x its file)."""
    if arr.dtype == np.float32:
        return arr
    check_alloc(source, f"{arr.dtype} {list(arr.shape)} as float32", int(arr.size) * 4)
    return np.asarray(arr, dtype=np.float32)


def read_npy(path: Path, what: str) -> np.ndarray:
    """A ``.npy`` memory-mapped (NumPy checks the header's shape against the file's size, so a
    damaged header cannot make it allocate what the file does not hold)."""
    require_file(path, what)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(
            f"{path}: expected {what} (.npy), could not read it ({np_reason(err)})."
        ) from err


def _read_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _member_header(
    path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo
) -> tuple[tuple[int, ...], bool, np.dtype[Any], int | None]:
    """``(shape, fortran, dtype, offset)`` of an ``.npz`` member's header; ``offset`` is where
    a stored (uncompressed) member's data starts in the file, else None."""
    if info.compress_type != zipfile.ZIP_STORED:
        with zf.open(info) as fh:
            shape, fortran, dtype = _read_header(fh)
        return shape, fortran, dtype, None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError("damaged zip member header")
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        shape, fortran, dtype = _read_header(fh)
        return shape, fortran, dtype, fh.tell()


def _read_member(path: Path, npz: Any, key: str) -> np.ndarray:
    """Array ``key`` of an open ``.npz``: its header checked against the member's size and the
    memory budget first, then memory-mapped when stored uncompressed, else decompressed."""
    label = f"{path} (key {echo(key)})"
    zf: zipfile.ZipFile = npz.zip
    info = zf.getinfo(key + ".npy")
    shape, fortran, dtype, offset = _member_header(path, zf, info)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    count = math.prod(shape)
    declared = count * dtype.itemsize
    if declared > info.file_size:
        raise DataError(
            f"{label}: the array header declares {dtype} {list(shape)} ({human_bytes(declared)}) "
            f"but the archive member holds {human_bytes(info.file_size)}; the file is damaged."
        )
    # readers convert to float32: budget the larger of the stored and converted arrays
    need = count * max(dtype.itemsize, 4)
    packed = info.compress_size if offset is None else None
    check_alloc(label, f"array {dtype} {list(shape)}", need, compressed=packed)
    if offset is not None and len(shape) and count:
        order: Literal["F", "C"] = "F" if fortran else "C"
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
    return np.asarray(npz[key])


def read_npz_key(path: Path, key: str | None, default: str = "data") -> tuple[np.ndarray, str]:
    """Return one array of an ``.npz`` (memory-mapped when stored uncompressed).

    The member's declared shape is checked against its size and the memory budget
    (:func:`~linearcast.data.readers._files.check_alloc`) before anything is decompressed.
    """
    require_file(path, "a numpy .npz archive")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path}: expected a numpy .npz archive, could not open it ({np_reason(err)})."
        ) from err
    if not hasattr(npz, "files"):  # a .npy (or pickle) behind an .npz name
        raise DataError(f"{path}: expected a numpy .npz archive, found a single .npy array.")
    with npz:
        keys = list(npz.files)
        if key is None:
            if default in keys:
                key = default
            elif len(keys) == 1:
                key = keys[0]
            else:
                raise DataError(
                    f"{path}: expected key {echo(default)} (or a single array), found keys "
                    f"{echo_list(keys)}; choose one with --set data_options.key=NAME."
                )
        if key not in keys:
            raise DataError(f"{path}: expected key {echo(key)}, found keys {echo_list(keys)}.")
        try:
            return _read_member(path, npz, key), key
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(
                f"{path}: could not read array {echo(key)} of the archive ({np_reason(err)})."
            ) from err


Dedupe = Literal["error", "first", "last", "mean"]


def dedupe_rows(
    frame: pd.DataFrame, ts: pd.DatetimeIndex, how: Dedupe, source: str
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """One row per timestamp: ``"error"`` leaves duplicates for :func:`check_timestamps` to
    report; ``"first"``/``"last"`` keep that row, ``"mean"`` averages the duplicates.

    The LTSF Weather CSV has one duplicated timestamp; a warning says how many rows went.
    """
    if how == "error":
        return frame, ts
    if how not in ("first", "last", "mean"):
        raise DataError(
            f"{source}: dedupe must be error, first, last or mean; found {echo(how)} (--set "
            f"data_options.dedupe=first)."
        )
    dup = ts.duplicated(keep=False)
    if not dup.any():
        return frame, ts
    frame = frame.set_axis(ts, axis=0)
    if how == "mean":
        out = frame.groupby(level=0, sort=False).mean()
    else:
        out = frame[~frame.index.duplicated(keep=how)]
    warnings.warn(
        f"{source}: {len(frame) - len(out)} rows with a repeated timestamp removed "
        f"(dedupe={how!r}).",
        UserWarning,
        stacklevel=3,
    )
    return out.reset_index(drop=True), pd.DatetimeIndex(out.index)


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
            f"(first: {ts[first]} at row {first}); keep one row per timestamp with --set "
            f"data_options.dedupe=first (or last, mean)."
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


def _option_name(col: Any) -> str:
    """A column's name as an option value, or ``NAME`` where it is too long or odd to echo."""
    text = str(col)
    return text if len(text) <= 40 and text.isprintable() and "," not in text else "NAME"


def numeric_frame(df: pd.DataFrame, source: str, fix: str = "") -> np.ndarray:
    """Return the frame as float, raising on the first non-numeric column with an example.

    ``fix``: a clause appended to the message (how to leave the column out), e.g.
    ``"; leave it out with --set data_options.drop=[NAME]"``; ``{col}`` is the column's name.
    """
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            continue
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna() & s.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: expected numeric values in column {echo(col)}, found "
                f"{int(bad.sum())} non-numeric entries (first {echo(s.iloc[row])} at data row "
                f"{row}){fix.replace('{col}', _option_name(col))}."
            )
        df[col] = conv
    return df.to_numpy(dtype=np.float64)
