"""Read a ``torch.save`` file without torch's unpickler or its C++ zip reader.

A checkpoint is a zip archive (``archive/data.pkl``, ``archive/data/<key>``, ``byteorder``)
that ``torch.save`` writes uncompressed. Here Python's :mod:`zipfile` reads the members,
:class:`~linearcast.data.safe_pickle.SafeUnpickler` runs ``data.pkl`` with stand-ins for the few
names a checkpoint uses (torch's tensor rebuild and storage types, and for version-1 files
NumPy's array and dtype), and tensors are made by :func:`torch.frombuffer` from member bytes
whose length equals the declared element count times the item size, then viewed with a size,
stride and offset checked to stay inside them. Nothing from the file reaches a C routine
before its values are checked, so a crafted file is a sentence, never a crash or an
allocation larger than the file.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from linearcast.data.safe_pickle import BadPickleData, restricted_loads

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_MAX_DIMS = 16


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and its kin: only names a dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __call__(self, *args: Any) -> Any:
        raise BadPickleData("a storage built by a call (torch.save never writes one)")


class _Storage:
    """A storage read from the archive: a flat tensor over the member's bytes."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > _MAX_DIMS:
        raise BadPickleData(f"a tensor {what} {value!r:.60} (expected a tuple of integers)")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise BadPickleData(f"a tensor {what} {value!r:.60} (expected non-negative integers)")
    return tuple(value)


def _rebuild_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` with every argument checked first."""
    if not isinstance(storage, _Storage):
        raise BadPickleData("a tensor without a storage from the archive")
    dims, steps = _ints(size, "size"), _ints(stride, "stride")
    if len(dims) != len(steps):
        raise BadPickleData(f"a tensor of size {dims} with stride {steps}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise BadPickleData(f"a tensor at storage offset {offset!r:.40}")
    if not isinstance(requires_grad, bool) or hooks not in (None, {}) or metadata not in (None, {}):
        raise BadPickleData("a tensor with hooks or metadata (a state dict holds none)")
    flat = storage.flat
    if math.prod(dims) == 0:
        return torch.empty(dims, dtype=flat.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(dims, steps))
    if last >= flat.numel():
        raise BadPickleData(
            f"a tensor of size {dims} reaching element {last} of a storage of {flat.numel()}"
        )
    return flat.as_strided(dims, steps, offset)


_KEY = re.compile(r"^[0-9]{1,9}$")


class _ArchiveReader:
    """The persistent-id resolver of one archive: ``('storage', type, key, location, numel)``."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        self.archive = archive
        self.prefix = prefix
        self.storages: dict[str, _Storage] = {}

    def __call__(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise BadPickleData(f"a persistent reference {pid!r:.60}")
        kind, key, _location, numel = pid[1:]
        if not isinstance(kind, _StorageType):
            raise BadPickleData(f"a storage of type {kind!r:.40}")
        if not isinstance(key, str) or not _KEY.match(key):
            raise BadPickleData(f"a storage key {key!r:.40}")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise BadPickleData(f"a storage of {numel!r:.40} elements")
        if key in self.storages:
            known = self.storages[key].flat
            if known.dtype != kind.dtype:
                raise BadPickleData(f"storage {key} read as {known.dtype} and {kind.dtype}")
            return self.storages[key]
        name = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise BadPickleData(f"a reference to storage {key}, which the archive lacks") from None
        itemsize = torch.empty((), dtype=kind.dtype).element_size()
        if info.file_size != numel * itemsize:
            raise BadPickleData(
                f"storage {key} of {numel} x {itemsize} bytes in a member of {info.file_size}"
            )
        raw = bytearray(self.archive.read(info))
        flat = torch.frombuffer(raw, dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
        self.storages[key] = _Storage(flat)
        return self.storages[key]


def _torch_names() -> dict[tuple[str, str], Any]:
    names: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("collections", "OrderedDict"): OrderedDict,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        names[("torch", name)] = _StorageType(dtype)
    return names


def _members(archive: zipfile.ZipFile, size: int) -> str:
    """Check the archive's layout; return the members' common prefix (``archive/``)."""
    infos = archive.infolist()
    pickles = [i.filename for i in infos if i.filename.endswith("data.pkl")]
    if len(pickles) != 1 or pickles[0].count("/") != 1:
        raise BadPickleData(f"{len(pickles)} data.pkl members (torch.save writes one)")
    prefix = pickles[0][: -len("data.pkl")]
    for info in infos:
        if not info.filename.startswith(prefix):
            raise BadPickleData(f"a member {info.filename!r:.60} outside {prefix!r}")
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
            # torch.save stores members uncompressed: sizes are bounded by the file's own
            raise BadPickleData(f"a compressed or oversized member {info.filename!r:.60}")
    order = prefix + "byteorder"
    if order in archive.namelist() and archive.read(order) != b"little":
        raise BadPickleData(f"byte order {archive.read(order)[:10]!r} (expected little)")
    return prefix


def read_torch_file(path: Path) -> Any:
    """The object a ``torch.save`` file holds, read without torch's unpickler.

    Args:
        path: the file.

    Returns:
        Its object, with CPU tensors, plain containers and (version-1 files) NumPy arrays.

    Raises:
        RefusedGlobal: the pickle names something a checkpoint never holds.
        pickle.UnpicklingError: (including ``BadPickleData``) values no honest file holds.
        zipfile.BadZipFile, OSError, EOFError, ValueError, TypeError, ...: a damaged file
            (the caller turns every exception into one sentence).
    """
    size = path.stat().st_size
    if not zipfile.is_zipfile(path):
        # torch's pre-1.6 format (a bare pickle stream; linearcast never wrote it): run it
        # through the same stand-ins, so that a payload is named and refused like any other
        with path.open("rb") as fh:
            head = fh.read(2)
        if head[:1] == b"\x80":
            return restricted_loads(path.read_bytes(), extra=_torch_names())
        raise zipfile.BadZipFile("not a zip archive (torch.save writes one)")
    with zipfile.ZipFile(path) as archive:
        prefix = _members(archive, size)
        data = archive.read(prefix + "data.pkl")
        reader = _ArchiveReader(archive, prefix)
        return restricted_loads(data, extra=_torch_names(), persistent_load=reader)
