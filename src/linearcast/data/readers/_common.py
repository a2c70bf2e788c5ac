"""What every reader shares: the format table entry, file checks, CSV/NumPy reading, timestamps.

Nothing here knows a particular format; each format module (``pems``, ``basicts``, ...) imports
these helpers and declares one :class:`ReaderFormat`.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import gzip
import io
import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data import checks
from linearcast.data.checks import calendar_frequency
from linearcast.data.checks import option_name as option_name
from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.readers._files import (
    check_alloc,
    check_text_size,
    echo,
    echo_list,
    first_line,
    human_bytes,
    memory_budget,
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


#: Bytes read to recognise a text file (its first lines): a file without line breaks costs nothing.
HEAD_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"
# UTF-32 first: its little-endian mark begins with UTF-16's
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: What ``--set data_options.sep=...`` may say for the characters a shell makes awkward.
_SEP_WORDS = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|", "space": " "}
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+(?:[eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")
#: ``5,035.80``, ``1.234.567,5``, ``12 500``: a number with a thousands separator (group 1).
_NUMBERISH = re.compile(r"^[-+]?[\d.,' ]*\d[\d.,' ]*$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}([,.' ])\d{3}(?:\1\d{3})*(?:[.,]\d+)?$")


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: what :func:`csv_dialect` found (or the options said).

    Attributes:
        sep: the field separator (``,``; ``;``, tab and ``|`` are recognised from the header
            line).
        decimal: the decimal mark (``,`` is recognised in ``;``- or tab-separated files).
        thousands: the thousands separator of numbers such as ``"5,035.80"`` (none unless
            the ``thousands`` option names it).
        encoding: the text encoding (UTF-8; UTF-16/32 and UTF-8 with a byte-order mark are
            recognised by it, UTF-16 without one by its zero bytes).
        gzip: whether the file is gzip-compressed (recognised by its first bytes).
        options: whether the reader takes the ``sep``/``decimal``/``encoding`` options (its
            messages then name them).
    """

    sep: str = ","
    decimal: str = "."
    thousands: str | None = None
    encoding: str = "utf-8-sig"
    gzip: bool = False
    options: bool = False


# the sep/decimal/encoding options of the read in progress, for format sniffing (whose
# ``claims(path)`` take no options)
_SNIFF_OPTIONS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "csv_options", default=None
)


@contextlib.contextmanager
def csv_options(options: dict[str, Any]) -> Iterator[None]:
    """Let :func:`csv_dialect` calls inside (format sniffing) use the ``sep``, ``decimal``,
    ``thousands`` and ``encoding`` in ``options`` (a reader's options) unless given their own."""
    token = _SNIFF_OPTIONS.set(
        {
            k: options[k]
            for k in ("sep", "decimal", "thousands", "encoding")
            if options.get(k) is not None
        }
    )
    try:
        yield
    finally:
        _SNIFF_OPTIONS.reset(token)


def _raw_head(path: Path, gz: bool) -> bytes:
    """The first :data:`HEAD_BYTES` of a file (decompressed when gzip; a damaged stream gives
    what could be read)."""
    if gz:
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error):
            return b""
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _guess_encoding(head: bytes) -> str:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    sample = head[:4096]
    if sample.count(0) * 4 > len(sample):  # ASCII text as UTF-16 is half zero bytes
        odd = sample[1::2].count(0)
        return "utf-16-le" if odd > sample[0::2].count(0) else "utf-16-be"
    return "utf-8-sig"


def _option_text(value: Any, option: str, source: Path, allowed: str) -> str:
    text = str(value)
    if option in ("sep", "thousands"):
        text = _SEP_WORDS.get(text.strip().lower(), text)
    if len(text) != 1 or text in ("\n", "\r", '"'):
        why = "" if len(text) != 1 else " other than a line break or the quote character"
        raise DataError(
            f"{source}: data_options.{option} must be one character{why} ({allowed}), found "
            f"{echo(value)}."
        )
    return text


def _split(line: str, sep: str) -> list[str]:
    return [c.strip().strip('"') for c in line.strip().split(sep)]


def csv_dialect(
    path: Path,
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
    *,
    thousands: str | None = None,
    options: bool = False,
) -> CsvDialect:
    """How a CSV is written, from its first bytes and lines; the options given win.

    The separator is the most frequent of ``,``, ``;``, tab and ``|`` in the header line (``,``
    on a tie); a ``;``- or tab-separated file whose numbers are written ``1,5`` (and none ``1.5``)
    has a decimal comma.

    Args:
        path: the file (checked to be a regular file).
        sep: the ``sep`` option (``tab``, ``semicolon`` ... name awkward characters).
        decimal: the ``decimal`` option (``.`` or ``,``).
        encoding: the ``encoding`` option (any Python codec name).
        thousands: the ``thousands`` option (one character other than the decimal mark).
        options: whether the reader takes these options (its messages then name them).

    Raises:
        DataError: an option value that is not a separator, decimal mark, thousands
            separator or known encoding.
    """
    given = _SNIFF_OPTIONS.get() or {}
    sep = sep if sep is not None else given.get("sep")
    decimal = decimal if decimal is not None else given.get("decimal")
    encoding = encoding if encoding is not None else given.get("encoding")
    thousands = thousands if thousands is not None else given.get("thousands")
    gz = _is_gzip(path)
    head = _raw_head(path, gz)
    no_text = DataError(
        f"{path}: data_options.encoding names no known text encoding, found "
        f"{echo(encoding)}; e.g. --set data_options.encoding=latin-1 (or cp1252, utf-16)."
    )
    if encoding is not None:
        try:
            info = codecs.lookup(str(encoding))
        except LookupError:
            raise no_text from None
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib: not text
            raise no_text
        enc = "utf-8-sig" if info.name == "utf-8" else info.name
    else:
        enc = _guess_encoding(head)
    try:
        text = head.decode(enc, errors="replace")
    except (UnicodeError, LookupError, TypeError, ValueError):  # idna, punycode: no "replace"
        raise no_text from None
    lines = text.lstrip("\ufeff").splitlines()
    header = lines[0] if lines else ""
    if sep is not None:
        sp = _option_text(sep, "sep", path, "e.g. ';' or tab")
    else:
        counts = {c: header.count(c) for c in (",", ";", "\t", "|")}
        sp = max(counts, key=lambda c: (counts[c], c == ","))
        sp = sp if counts[sp] else ","
    th = None if thousands is None else _option_text(thousands, "thousands", path, "e.g. ','")
    if decimal is not None:
        dec = _option_text(decimal, "decimal", path, "'.' or ','")
        if dec not in (".", ","):
            raise DataError(
                f"{path}: data_options.decimal must be '.' or ',', found {echo(decimal)}."
            )
    elif th is not None:
        dec = "," if th == "." else "."  # '1.234,5' or '1,234.5'
    else:
        dec = "."
        if sp != ",":
            cells = [c for line in lines[1:50] for c in _split(line, sp)]
            comma = any(_DECIMAL_COMMA.match(c) for c in cells)
            dec = "," if comma and not any(_DECIMAL_POINT.match(c) for c in cells) else "."
    if th is not None and (th == dec or th.isalnum() or th in "+-"):
        raise DataError(
            f"{path}: data_options.thousands must be no digit, letter or sign and differ from "
            f"the decimal mark {dec!r}, found {echo(thousands)}."
        )
    if th is not None:
        _check_grouping(path, [c for line in lines[1:50] for c in _split(line, sp)], th)
    return CsvDialect(sep=sp, decimal=dec, thousands=th, encoding=enc, gzip=gz, options=options)


def _check_grouping(path: Path, cells: list[str], mark: str) -> None:
    """Refuse a ``thousands`` mark the numbers do not group in threes (pandas would drop it
    wherever it stands: ``1.5`` read with ``thousands=.`` is 15)."""
    for cell in cells:
        if mark in cell and _NUMBERISH.match(cell):
            grouped = _THOUSANDS.match(cell)
            if grouped is None or grouped.group(1) != mark:
                raise DataError(
                    f"{path}: data_options.thousands={mark} expects numbers grouped in threes "
                    f"('12{mark}345'), found {echo(cell)}; leave the option out (or set the "
                    f"separator the numbers use)."
                )


def head_lines(path: Path, dialect: CsvDialect | None = None) -> list[list[str]]:
    """The cells of the first lines of a text file (at most :data:`HEAD_BYTES` read), stripped
    of spaces and quotes, split at the file's separator (:func:`csv_dialect`)."""
    require_file(path, "a text file")
    d = dialect or csv_dialect(path)
    text = _raw_head(path, d.gzip).decode(d.encoding, errors="replace").lstrip("\ufeff")
    return [_split(line, d.sep) for line in text.splitlines()]


def first_csv_line(path: Path) -> list[str]:
    """The cells of the first line of a text file, stripped and lower-cased (a byte-order mark
    dropped, a ``;`` or tab separator and gzip recognised; at most 64 KiB read, so a file
    without line breaks costs nothing)."""
    lines = head_lines(path)
    return [c.lower() for c in lines[0]] if lines else [""]


def np_reason(err: Exception) -> str:
    """NumPy's reason, minus its advice to load pickles unsafely (linearcast never does)."""
    if "pickle" in str(err).lower():
        return (
            "it holds pickled Python objects, which linearcast refuses to load (they can run code)"
        )
    return first_line(err)


def _gunzip(path: Path, what: str) -> bytes:
    """A gzip-compressed file's text, read no further than the memory budget allows."""
    cap = memory_budget() // _CSV_EXPANSION
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: expected {what}, found gzip-compressed data that does not decompress "
            f"({first_line(err)}); the file is damaged or truncated."
        ) from None
    if data.startswith(_GZIP_MAGIC):
        raise DataError(
            f"{path}: expected {what}, found gzip-compressed data compressed again (gzip "
            f"inside gzip); decompress it once (gunzip) and read that file."
        )
    size = path.stat().st_size
    text = "of gzip-compressed text" if len(data) <= cap else "or more of gzip-compressed text"
    check_alloc(
        path,
        f"parsing {what} ({human_bytes(len(data))} {text})",
        len(data) * _CSV_EXPANSION,
        compressed=size,
        stored_as="of gzip",
    )
    return data


def _drop_empty_edges(path: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Without the empty columns a trailing separator adds (``a,b,``: no name, no value) and
    the empty rows at the end (``;;;;``: UCI AirQuality's last lines), with a warning for rows."""
    while df.shape[1] > 1:
        last = str(df.columns[-1]).strip()
        if (last and not last.startswith("Unnamed: ")) or not df.iloc[:, -1].isna().all():
            break
        df = df.iloc[:, :-1]
    empty = df.isna().all(axis=1).to_numpy()
    tail = len(empty) - int(np.argmin(empty[::-1])) if not empty.all() else 0
    if tail < len(empty):
        warnings.warn(
            f"{path}: {len(empty) - tail} rows at its end hold no values (only separators): "
            f"left out.",
            UserWarning,
            stacklevel=4,
        )
        df = df.iloc[:tail]
    return df


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parse_error(path: Path, what: str, err: Exception, d: CsvDialect) -> DataError:
    """One sentence for pandas' parser errors (its C tokenizer's words are not the user's)."""
    fix = "; name its separator with --set data_options.sep=CHAR" if d.options else ""
    m = _FIELDS.search(str(err))
    if m:
        want, line, saw = m.groups()
        if line == "2" and int(saw) > int(want):
            # the header is short, not the separator wrong: a time column left unnamed
            fix = (
                f"; give every column a name in the first line (e.g. the time column's: "
                f"date{d.sep}...)"
            )
        return DataError(
            f"{path}: expected {what} with {want} fields on every line (as on its first line, "
            f"separated by {d.sep!r}), found {saw} on line {line}{fix}."
        )
    return DataError(
        f"{path}: expected {what}, could not parse it as CSV separated by {d.sep!r} "
        f"({first_line(err)}){fix}."
    )


def read_csv(
    path: Path, what: str, dialect: CsvDialect | None = None, **kwargs: Any
) -> pd.DataFrame:
    """``pd.read_csv`` with a :class:`DataError` naming the file for empty or unparsable text.

    Args:
        path: the file.
        what: what the reader expects, for messages.
        dialect: separator, decimal mark, encoding and compression (default: recognised by
            :func:`csv_dialect`).
        **kwargs: passed to ``pd.read_csv``.

    Returns:
        The table, without empty trailing columns and rows (trailing separators).
    """
    require_file(path, what)
    d = dialect or csv_dialect(path)
    if d.gzip:
        source: Any = io.BytesIO(_gunzip(path, what))
    else:
        # pandas parses text into objects several times its size
        check_text_size(path, what, _CSV_EXPANSION)
        source = path
    try:
        df = pd.read_csv(
            source,
            sep=d.sep,
            decimal=d.decimal,
            thousands=d.thousands,
            encoding=d.encoding,
            **kwargs,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: expected {what}, found an empty file (no columns).") from None
    except UnicodeDecodeError as err:
        fix = (
            "; name its encoding with --set data_options.encoding=NAME (e.g. latin-1, cp1252)"
            if d.options
            else "; save it as UTF-8"
        )
        enc = d.encoding.removesuffix("-sig")
        raise DataError(
            f"{path}: expected {what} as {enc} text, found byte 0x{err.object[err.start]:02x} "
            f"at offset {err.start}, which is not {enc}{fix}."
        ) from None
    except (pd.errors.ParserError, ValueError) as err:
        raise _parse_error(path, what, err, d) from err
    if kwargs.get("header", 0) == 0:
        df = _drop_empty_edges(path, df)
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


def to_float32(
    arr: np.ndarray, source: Any = "the array", names: list[str] | None = None
) -> np.ndarray:
    """Keep float32 arrays (and memmaps) as they are; convert others (loads into memory, so the
    float32 copy is checked against the memory budget first: int8 becomes 4x its file) with
    :func:`linearcast.data.checks.to_float32` (finite values beyond float32's range refused)."""
    if arr.dtype == np.float32:
        return arr
    check_alloc(source, f"{arr.dtype} {list(arr.shape)} as float32", int(arr.size) * 4)
    return checks.to_float32(arr, str(source), names)


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
    if irregular and calendar_frequency(ts) is not None:
        return None  # months, quarters, years: regular on the calendar, not in minutes
    if irregular:
        warnings.warn(
            f"{source}: {irregular} of {len(diffs)} steps differ from the usual step {step_td} "
            f"(gaps or irregular sampling); windows assume a regular grid.",
            UserWarning,
            stacklevel=3,
        )
    minutes = step_td.total_seconds() / 60.0
    return int(minutes) if minutes >= 1 and float(minutes).is_integer() else None


def numeric_frame(
    df: pd.DataFrame, source: str, fix: str = "", dialect: CsvDialect | None = None
) -> np.ndarray:
    """Return the frame as float, raising on the first non-numeric column with an example.

    ``fix``: a clause appended to the message (how to leave the column out), e.g.
    ``"; leave it out with --set data_options.drop=[NAME]"``; ``{col}`` is the column's name.
    ``dialect``: how the CSV was read; a value such as ``1,5`` in a file read with a decimal
    point then names the ``decimal`` option.
    """
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            continue
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna() & s.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            cell = str(s.iloc[row]).strip()
            hint = _numeric_hint(cell, str(col), dialect) or fix.replace("{col}", option_name(col))
            raise DataError(
                f"{source}: expected numeric values in column {echo(col)}, found "
                f"{int(bad.sum())} non-numeric entries (first {echo(s.iloc[row])} at data row "
                f"{row}){hint}."
            )
        df[col] = conv
    return df.to_numpy(dtype=np.float64)


def _numeric_hint(cell: str, col: str, dialect: CsvDialect | None) -> str:
    """The option (or repair) a non-numeric ``cell`` of column ``col`` points to, when the
    way it is written tells one: a decimal comma, a thousands separator, or lines that mix
    separators (a column name and its cells holding another one); else ``""``."""
    if dialect is None or not dialect.options:
        return ""
    if dialect.sep != "," and dialect.decimal == "." and _DECIMAL_COMMA.match(cell):
        return "; for numbers written with a decimal comma, set --set 'data_options.decimal=,'"
    grouped = _THOUSANDS.match(cell)
    if grouped is not None and grouped.group(1) != dialect.thousands:
        mark = {" ": "space"}.get(grouped.group(1), grouped.group(1))
        return (
            "; for numbers written with a thousands separator, set --set "
            f"'data_options.thousands={mark}'"
        )
    other = next((c for c in ",;\t|" if c != dialect.sep and c in col and c in cell), None)
    if other is not None:
        return (
            f"; the file mixes the separators {dialect.sep!r} and {other!r} (column {echo(col)} "
            f"holds both): save it with one separator throughout"
        )
    return ""
