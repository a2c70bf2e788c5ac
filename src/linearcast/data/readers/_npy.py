"""What a ``.npy`` / ``.npz`` file really is, checked before NumPy opens it.

``np.load`` takes any file that is neither a ``.npy`` nor a zip archive for a pickle, so with
``allow_pickle=False`` it calls random bytes "pickled data"; a truncated ``.npy`` fails inside
``mmap`` and an object array with a memory-mapping complaint. These checks read the first bytes
and the header (with NumPy's header parser, which evaluates literals only) and say in one
sentence what the file holds: not a ``.npy`` at all, a pickle, an object dtype, a header that
declares more than the file holds, a damaged zip archive.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from linearcast.data.readers._files import echo, first_line, human_bytes, require_file
from linearcast.errors import DataError

NPY_MAGIC = b"\x93NUMPY"
_ZIP_PREFIXES = (b"PK\x03\x04", b"PK\x05\x06")  # a member, or an empty archive
# NumPy refuses headers over 10,000 bytes (max_header_size): any it reads is shorter
_HEADER_BYTES = 1 << 16
_RESAVE_NPY = "re-save the array with numpy.save"
_RESAVE_NPZ = "re-save it with numpy.savez"


def _pickle_like(head: bytes) -> bool:
    """Whether ``head`` starts like a pickle of protocol 2 or later (``\\x80`` + version)."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _starts(head: bytes) -> str:
    return echo(head[:8], 40)


def _read_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _object_dtype(dtype: np.dtype[Any], shape: tuple[int, ...]) -> str:
    return (
        f"dtype {dtype} {list(shape)}, i.e. pickled Python objects, which linearcast refuses to "
        f"load (they can run code); save a numeric array"
    )


def _head(fh: IO[bytes]) -> io.BytesIO:
    """The magic, version and header of a ``.npy`` stream, and no more: a zip member read to
    its end would be checked against its CRC, which the archive reader reports better."""
    head = fh.read(len(NPY_MAGIC) + 2)
    if head[: len(NPY_MAGIC)] == NPY_MAGIC and len(head) == len(NPY_MAGIC) + 2:
        width = 2 if head[-2] == 1 else 4
        size = fh.read(width)
        head += size + fh.read(min(int.from_bytes(size, "little"), _HEADER_BYTES))
    return io.BytesIO(head)


def _header_problem(fh: io.BytesIO, available: int) -> str | None:
    """What is wrong with the ``.npy`` whose first bytes ``fh`` holds (None: nothing), given
    its full size ``available`` (the file's, or the zip member's)."""
    head = fh.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        head += fh.read(2)
        if head[:4] in _ZIP_PREFIXES:
            return "a zip archive (an .npz), not a .npy array; rename it to .npz"
        if _pickle_like(head):
            return (
                f"a Python pickle (it starts with {_starts(head)}), not a .npy array; linearcast "
                f"refuses to load pickles (they can run code): {_RESAVE_NPY}"
            )
        return (
            f"a file that is not a .npy array (it starts with {_starts(head)}, not with the "
            f".npy magic bytes {NPY_MAGIC!r}); {_RESAVE_NPY}"
        )
    fh.seek(0)
    try:
        shape, _, dtype = _read_header(fh)
    except (ValueError, EOFError, OSError) as err:
        return f"a .npy file with a damaged header ({first_line(err)}); {_RESAVE_NPY}"
    if dtype.hasobject:
        return f"a .npy array of {_object_dtype(dtype, shape)}"
    if any(d < 0 for d in shape):
        return f"a .npy header declaring the impossible shape {list(shape)}; {_RESAVE_NPY}"
    declared = math.prod(shape) * dtype.itemsize
    follow = available - fh.tell()
    if declared > follow:
        return (
            f"a truncated or damaged .npy: its header declares {dtype} {list(shape)} "
            f"({human_bytes(declared)}) but {human_bytes(follow)} of data follow it; "
            f"{_RESAVE_NPY}"
        )
    return None


def check_npy(path: Path, what: str) -> None:
    """Refuse a ``.npy`` that NumPy could not read, saying what the file is.

    Args:
        path: the file.
        what: what the caller expects, e.g. ``"a numpy array [T, N] or [T, N, F]"``.

    Raises:
        DataError: ``{path}: expected {what} (.npy), found ...``: not a ``.npy`` (its first
            bytes), a pickle, an object dtype, a damaged header, or fewer bytes than the
            header declares.
    """
    require_file(path, what)
    with open(path, "rb") as fh:
        problem = _header_problem(_head(fh), path.stat().st_size)
    if problem is not None:
        raise DataError(f"{path}: expected {what} (.npy), found {problem}.")


def _member(names: list[str], key: str | None, default: str) -> str | None:
    """The ``.npy`` member the archive reader will read (None: it will say which to choose)."""
    keys = [n[: -len(".npy")] for n in names if n.endswith(".npy")]
    if key is None:
        key = default if default in keys else (keys[0] if len(keys) == 1 else None)
    return f"{key}.npy" if key is not None and key in keys else None


def _member_head(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> io.BytesIO:
    """The header of a member: read from the file when stored (the zip reader reads small
    members whole and checks their CRC, which would hide what the header declares)."""
    if info.compress_type != zipfile.ZIP_STORED:
        with zf.open(info) as fh:
            return _head(fh)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header of member {info.filename!r}")
        skip = int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + skip)
        return _head(fh)


def check_npz(path: Path, key: str | None = None, default: str = "data") -> None:
    """Refuse an ``.npz`` that NumPy could not read, saying what the file (or the member that
    would be read: ``key``, else ``default``, else the only one) is.

    Args:
        path: the file.
        key: the member asked for (None: ``default`` or the only one).
        default: the member read when ``key`` is None and the archive has it.

    Raises:
        DataError: not a zip archive (its first bytes, or a pickle), a damaged archive, or a
            member that is not a ``.npy`` or holds an object dtype. A ``.npy`` under an
            ``.npz`` name, a missing key and a member larger than its size are left to the
            archive reader, which names them.
    """
    what = "a numpy .npz archive (a zip of .npy arrays)"
    require_file(path, what)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(NPY_MAGIC):
        return
    if head[:4] not in _ZIP_PREFIXES:
        found = (
            f"a Python pickle (it starts with {_starts(head)}), which linearcast refuses to load "
            f"(pickles can run code)"
            if _pickle_like(head)
            else f"a file that is not a zip archive (it starts with {_starts(head)}, not with "
            f"the zip signature {_ZIP_PREFIXES[0]!r} of an .npz)"
        )
        raise DataError(f"{path}: expected {what}, found {found}; {_RESAVE_NPZ}.")
    try:
        with zipfile.ZipFile(path) as zf:
            name = _member(zf.namelist(), key, default)
            if name is None:
                return
            info = zf.getinfo(name)
            problem = _header_problem(_member_head(path, zf, info), info.file_size)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise DataError(
            f"{path}: expected {what}, found a damaged zip archive ({first_line(err)}; "
            f"truncated, or not written by numpy.savez); {_RESAVE_NPZ}."
        ) from None
    if problem is not None:
        raise DataError(f"{path}: expected {what}, found as member {echo(name)} {problem}.")
