"""Unpickling that cannot run code or hand a file's state to C: a pure-Python evaluator.

A pickle can name any importable callable and call it while loading (``os.system`` is the
classic payload), so ``pickle.load`` on a file someone hands you runs their code. Allowing
only "harmless" names is not enough either: ``numpy.dtype.__setstate__`` fed crafted state
crashes the process inside NumPy (type confusion in C), and ``numpy.ndarray((32768, 32768))``
allocates 4 GiB from an 84-byte file. So nothing from the file reaches a C callable here.

The pickles this field ships hold plain data:

- DCRNN / BasicTS ``adj_mx.pkl``: ``[sensor_ids, id_to_ind, adj]`` (lists, a dict, strings,
  ints, one NumPy array; often written by Python 2, whose byte strings need ``latin1``) or a bare
  ``[N, N]`` array;
- pandas HDF5 files (METR-LA, PEMS-BAY): PyTables pickles a few attributes, e.g. the time
  index's frequency (a pandas offset such as ``<5 * Minutes>``);
- version-1 linearcast checkpoints: NumPy's RNG state (a ``uint32`` array).

:class:`SafeUnpickler` runs the opcodes with Python's pure-Python unpickler (lists, dicts,
tuples, strings, bytes and numbers need no import) and resolves the few names these files use
to *stand-ins* written here (:data:`SHIMS`): ``numpy.dtype`` becomes a descriptor checked
against a fixed grammar, ``_reconstruct`` + ``BUILD`` an array spec whose byte count must equal
its shape times the item size, ``_codecs.encode`` a latin-1 encode, a pandas offset a call with
an integer and a bool. When the whole pickle has been read, the specs are turned into NumPy
objects from those checked values (:func:`finish`). Any other name is refused with a
:class:`~linearcast.errors.DataError` naming the file and the refused name; nothing of the file
has run at that point.
"""

from __future__ import annotations

import collections
import importlib
import io
import math
import pickle
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np

from linearcast.errors import DataError

#: The largest array a pickle may declare (elements). Declared sizes are checked against the
#: bytes actually present, so this only bounds what an honest file can hold.
MAX_ELEMENTS = 2**31


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a name outside :data:`SHIMS` (``.name`` holds ``module.name``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"refused to import {name}")
        self.name = name


class BadPickleData(pickle.UnpicklingError):
    """An allowed name was called with values no honest file holds (the message says which)."""


# ------------------------------------------------------------------------------- dtypes
_DESCR = re.compile(r"^([<>|=]?)([biufc])([1-9][0-9]?)$|^([<>|=]?)([SU])([0-9]{0,6})$")
_CHAR_SIZES = {"b": {1}, "i": {1, 2, 4, 8}, "u": {1, 2, 4, 8}, "f": {2, 4, 8}, "c": {8, 16}}
_SHORT = {"?": "b1", "d": "f8", "f": "f4", "e": "f2", "l": "i8", "q": "i8", "i": "i4"}


class DtypeSpec:
    """Stand-in for ``numpy.dtype(spec, align, copy)``; ``BUILD`` may set the byte order."""

    order: str | None = None  # unset when a pickle makes one without calling it (NEWOBJ)
    kind: str | None = None
    size: str = ""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        if isinstance(spec, bytes):
            spec = spec.decode("latin1")
        if not isinstance(spec, str) or len(spec) > 12:
            raise BadPickleData(f"a NumPy dtype from {_short(spec)} (expected a type code)")
        spec = _SHORT.get(spec, spec)
        m = _DESCR.match(spec)
        if m is None:
            raise BadPickleData(f"NumPy dtype {spec!r} (expected a number or string type)")
        if m.group(2) and int(m.group(3)) not in _CHAR_SIZES[m.group(2)]:
            raise BadPickleData(f"NumPy dtype {spec!r} (no such item size)")
        self.order = m.group(1) or m.group(4) or "="
        self.kind = m.group(2) or m.group(5)
        self.size = m.group(3) or m.group(6) or ""

    def __setstate__(self, state: Any) -> None:
        # NumPy's own state: (version, byteorder, subdtype, names, fields, elsize, alignment,
        # flags) -- only the byte order and a string type's size are honoured
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise BadPickleData(f"NumPy dtype state {_short(state)}")
        order = state[1]
        if isinstance(order, bytes):
            order = order.decode("latin1")
        if order not in ("<", ">", "|", "=") or any(s is not None for s in state[2:5]):
            raise BadPickleData(f"NumPy dtype state {_short(state)} (structured or sub-array)")
        self.order = order
        elsize = state[-3]
        if self.kind in ("S", "U") and isinstance(elsize, int) and 0 < elsize <= 4 * 10**6:
            self.size = str(elsize // 4 if self.kind == "U" else elsize)

    def build(self) -> np.dtype[Any]:
        """The NumPy dtype (only descriptors the grammar admitted reach NumPy)."""
        if self.order is None or self.kind is None:
            raise BadPickleData("a NumPy dtype that was never given a type code")
        return np.dtype(f"{self.order}{self.kind}{self.size}")


def _dtype_of(obj: Any, what: str) -> np.dtype[Any]:
    if not isinstance(obj, DtypeSpec):
        raise BadPickleData(f"{what} with dtype {_short(obj)} (expected a NumPy dtype)")
    return obj.build()


# ------------------------------------------------------------------------------- arrays
class _NdarrayType:
    """Stand-in for the class ``numpy.ndarray`` (only ever passed to ``_reconstruct``)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _NdarrayType:
        # ndarray(shape) allocates whatever the file declares, with no bytes behind it
        raise BadPickleData(f"a call numpy.ndarray{_short(args, 40)}, which allocates memory")


class ArraySpec:
    """Stand-in for ``_reconstruct(ndarray, (0,), b'b')``; ``BUILD`` gives it shape and bytes."""

    array: np.ndarray | None = None

    def __init__(self, cls: Any = None, shape: Any = None, typecode: Any = None) -> None:
        if cls is not _NdarrayType:
            raise BadPickleData(f"an array of class {_short(cls)} (expected numpy.ndarray)")

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise BadPickleData(f"array state {_short(state)}")
        shape, dtype, fortran, data = state[-4:]
        self.array = _array_from(data, dtype, shape, "F" if fortran is True else "C")


def _shape_of(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) > 32
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise BadPickleData(f"array shape {_short(shape)} (expected non-negative integers)")
    if math.prod(shape) > MAX_ELEMENTS:
        raise BadPickleData(f"array shape {tuple(shape)} (more than {MAX_ELEMENTS} elements)")
    return tuple(shape)


def _array_from(data: Any, dtype: Any, shape: Any, order: Literal["C", "F"]) -> np.ndarray:
    dt = _dtype_of(dtype, "an array")
    dims = _shape_of(shape)
    if isinstance(data, str):  # protocol 0-2 from Python 2 keeps the bytes as a latin-1 str
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)):
        raise BadPickleData(f"array data of type {type(data).__name__} (expected bytes)")
    need = math.prod(dims) * dt.itemsize
    if len(data) != need:
        raise BadPickleData(
            f"an array of shape {dims} and dtype {dt} in {len(data)} bytes (it needs {need})"
        )
    return np.frombuffer(bytes(data), dtype=dt).reshape(dims, order=order).copy()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    return _array_from(buf, dtype, shape, "F" if order == "F" else "C")


def _scalar(dtype: Any, data: Any = None) -> Any:
    arr = _array_from(data, dtype, (), "C")
    return arr[()]


def _encode(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise BadPickleData(f"_codecs.encode({_short(text)}, {_short(encoding)})")
    return text.encode("latin1")


def _offset(name: str) -> Callable[..., Any]:
    """A pandas date offset from ``(n, normalize)`` only (what ``Tick.__reduce__`` writes)."""

    def build(n: Any = 1, normalize: Any = False) -> Any:
        if not isinstance(n, int) or isinstance(n, bool) or abs(n) > 10**9:
            raise BadPickleData(f"pandas offset {name}({_short(n)})")
        if not isinstance(normalize, bool):
            raise BadPickleData(f"pandas offset {name}(normalize={_short(normalize)})")
        import pandas as pd

        cls = getattr(pd.offsets, name, None)
        if not (isinstance(cls, type) and issubclass(cls, pd.offsets.BaseOffset)):
            raise RefusedGlobal(f"pandas offset {name}")
        return cls(n, normalize=normalize)

    return build


_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")
_OFFSETS = ("pandas._libs.tslibs.offsets", "pandas.tseries.offsets")

#: ``(module, name) -> stand-in``: every name a pickle may import, and what it gets instead.
SHIMS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _encode,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): DtypeSpec,
    **{(m, "_reconstruct"): ArraySpec for m in _MULTIARRAY},
    **{(m, "scalar"): _scalar for m in _MULTIARRAY},
    **{(m, "_frombuffer"): _frombuffer for m in _NUMERIC},
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
}


class SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, resolving names only to :data:`SHIMS` (and ``extra``).

    Args:
        file: the pickle's bytes as a binary file.
        extra: more ``(module, name) -> stand-in`` entries (the checkpoint loader adds torch's).
        **kwargs: ``encoding``/``errors`` as for :class:`pickle.Unpickler`.
    """

    def __init__(
        self,
        file: Any,
        *,
        extra: dict[tuple[str, str], Any] | None = None,
        persistent_load: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(file, **kwargs)
        self._names = {**SHIMS, **(extra or {})}
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._names:
            return self._names[(module, name)]
        if module in _OFFSETS and re.fullmatch(r"[A-Z][A-Za-z]{1,30}", name):
            return _offset(name)
        raise RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise BadPickleData("a persistent reference (this file holds only plain data)")
        return self._persistent(pid)


def finish(obj: Any) -> Any:
    """Replace the stand-ins in an unpickled object by the NumPy objects they describe.

    Containers are rebuilt (lists, tuples, dicts, sets), shared references stay shared and
    cycles are kept. Raises :class:`BadPickleData` for an array spec that never got its state.
    """
    done: dict[int, Any] = {}

    def walk(x: Any) -> Any:
        if isinstance(x, (str, bytes, int, float, bool, complex, type(None))):
            return x
        key = id(x)
        if key in done:
            return done[key]
        if isinstance(x, ArraySpec):
            if x.array is None:
                raise BadPickleData("an array without its data")
            done[key] = x.array
        elif isinstance(x, DtypeSpec):
            done[key] = x.build()
        elif isinstance(x, list):
            out: list[Any] = []
            done[key] = out
            out.extend(walk(v) for v in x)
        elif isinstance(x, dict):
            new: dict[Any, Any] = type(x)() if type(x) is not dict else {}
            done[key] = new
            for k, v in x.items():
                new[walk(k)] = walk(v)
            for k, v in vars(x).items() if hasattr(x, "__dict__") else ():
                setattr(new, k, walk(v))
        elif isinstance(x, tuple):
            done[key] = tuple(walk(v) for v in x)
        elif isinstance(x, (set, frozenset)):
            done[key] = type(x)(walk(v) for v in x)
        else:
            done[key] = x
        return done[key]

    try:
        return walk(obj)
    except RecursionError:
        raise BadPickleData("containers nested too deeply") from None


def restricted_loads(
    data: bytes,
    *,
    encoding: str = "ASCII",
    errors: str = "strict",
    extra: dict[tuple[str, str], Any] | None = None,
    persistent_load: Callable[[Any], Any] | None = None,
) -> Any:
    """``pickle.loads`` through :class:`SafeUnpickler`, stand-ins replaced by :func:`finish`.

    Raises:
        RefusedGlobal: the pickle names something outside :data:`SHIMS`.
        pickle.UnpicklingError: (including :class:`BadPickleData`) anything else wrong with it.
    """
    unpickler = SafeUnpickler(
        io.BytesIO(data),
        extra=extra,
        persistent_load=persistent_load,
        encoding=encoding,
        errors=errors,
    )
    try:
        obj = unpickler.load()
    except RecursionError:
        raise BadPickleData("containers nested too deeply") from None
    return finish(obj)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_pickle_file(path: str | Path, what: str) -> Any:
    """Unpickle a file that should hold plain data (see the module docstring).

    Args:
        path: the pickle.
        what: what the file should be, for the messages (e.g. "a pickled adjacency").

    Returns:
        The unpickled object (NumPy arrays for the arrays in it).

    Raises:
        DataError: a refused name (nothing from the file ran), values no honest file holds
            (e.g. an array whose declared size exceeds its bytes), or not a pickle at all.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        try:
            return restricted_loads(data)
        except UnicodeDecodeError:
            # Python 2 pickles (DCRNN's adj_mx.pkl) hold byte strings: latin1 maps them 1:1
            return restricted_loads(data, encoding="latin1")
    except RefusedGlobal as err:
        raise DataError(
            f"{path}: refused to unpickle: the file asks to import {err.name}, which {what} "
            f"never needs (expected only lists, strings, numbers and NumPy arrays); nothing from "
            f"the file was run. If the file is yours, save the array as .npy or .csv instead."
        ) from None
    except BadPickleData as err:
        raise DataError(
            f"{path}: refused to unpickle: it holds {err}, which {what} never does; nothing "
            f"from the file was run."
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as err:
        raise DataError(
            f"{path}: expected {what}, could not unpickle it ({_short(err)}; the file starts "
            f"with {data[:16]!r})."
        ) from None
    except (AttributeError, ImportError, KeyError, MemoryError, OverflowError) as err:
        raise DataError(
            f"{path}: expected {what}, could not unpickle it ({err!r}; the file starts with "
            f"{data[:16]!r})."
        ) from None


@contextmanager
def pytables_restricted(source: str | Path) -> Iterator[None]:
    """Make PyTables (and so ``pandas.read_hdf``) unpickle through :class:`SafeUnpickler`.

    PyTables unpickles object arrays and some attributes with ``pickle.loads`` and swallows
    unpickling errors (returning the raw bytes), so refusals are collected here and raised as one
    :class:`DataError` when the block ends.

    Args:
        source: the HDF5 file, named in the message.
    """
    refused: list[str] = []

    def loads(data: bytes, **kwargs: Any) -> Any:
        try:
            return restricted_loads(data, **kwargs)
        except RefusedGlobal as err:
            refused.append(err.name)
            raise
        except BadPickleData as err:
            refused.append(str(err))
            raise

    shim = SimpleNamespace(
        loads=loads,
        dumps=pickle.dumps,
        HIGHEST_PROTOCOL=pickle.HIGHEST_PROTOCOL,
        UnpicklingError=pickle.UnpicklingError,
    )
    modules = [sys.modules.get(m) for m in ("tables.atom", "tables.attributeset")]
    if any(m is None for m in modules):
        importlib.import_module("tables")
        modules = [sys.modules.get(m) for m in ("tables.atom", "tables.attributeset")]
    saved = [(m, m.pickle) for m in modules if m is not None and hasattr(m, "pickle")]
    for m, _ in saved:
        m.pickle = shim  # type: ignore[attr-defined]
    try:
        yield
    except Exception:
        if refused:  # the refusal made pandas fail further on: report the cause
            raise _refused_error(source, refused) from None
        raise
    finally:
        for m, original in saved:
            m.pickle = original  # type: ignore[attr-defined]
    if refused:
        raise _refused_error(source, refused)


def _refused_error(source: str | Path, refused: list[str]) -> DataError:
    return DataError(
        f"{source}: refused to unpickle objects stored in this HDF5 file: it asks to import "
        f"{', '.join(sorted(set(refused)))}, which a pandas time-series frame never needs; "
        f"nothing from the file was run."
    )
