"""Unpickling that cannot run code: the few names the field's pickles need, nothing else.

A pickle can name any importable callable and call it while loading (``os.system`` is the
classic payload), so ``pickle.load`` on a file someone hands you runs their code. The pickles
this field ships hold plain data:

- DCRNN / BasicTS ``adj_mx.pkl``: ``[sensor_ids, id_to_ind, adj]`` (lists, a dict, strings,
  ints, one NumPy array; often written by Python 2, whose byte strings need ``latin1``) or a bare
  ``[N, N]`` array;
- pandas HDF5 files (METR-LA, PEMS-BAY): PyTables pickles a few attributes, e.g. the time
  index's frequency (a pandas offset such as ``<5 * Minutes>``).

:class:`RestrictedUnpickler` builds lists, dicts, tuples, strings, bytes and numbers as usual
(they need no import) and resolves only the names in :data:`ALLOWED` -- constructors of NumPy
arrays, dtypes and scalars, ``_codecs.encode`` (how protocol 2 stores bytes) and pandas
date offsets. Anything else is refused with a :class:`~linearcast.errors.DataError` naming the
file and the refused name; nothing of the file has run at that point.
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from linearcast.errors import DataError

#: (module, name) pairs a pickle may import. NumPy moved ``numpy.core`` to ``numpy._core`` in
#: 2.0; pickles written by either name the one their writer had.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def _allowed_extra(module: str, name: str) -> bool:
    """NumPy's dtype classes (``numpy.dtypes.Float32DType``) and pandas date offsets."""
    if module == "numpy.dtypes" and name.endswith("DType"):
        return True
    return module == "pandas._libs.tslibs.offsets" and name[:1].isupper()


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a name outside :data:`ALLOWED` (``.name`` holds ``module.name``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"refused to import {name}")
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` resolves only :data:`ALLOWED` names."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED and not _allowed_extra(module, name):
            raise RefusedGlobal(f"{module}.{name}")
        obj = getattr(importlib.import_module(module), name)
        if module.startswith("pandas."):
            from pandas.tseries.offsets import BaseOffset

            if not (isinstance(obj, type) and issubclass(obj, BaseOffset)):
                raise RefusedGlobal(f"{module}.{name}")
        return obj


def restricted_loads(data: bytes, *, encoding: str = "ASCII", errors: str = "strict") -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler` (raises :class:`RefusedGlobal`)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding, errors=errors).load()


def load_pickle_file(path: str | Path, what: str) -> Any:
    """Unpickle a file that should hold plain data (see the module docstring).

    Args:
        path: the pickle.
        what: what the file should be, for the messages (e.g. "a pickled adjacency").

    Returns:
        The unpickled object.

    Raises:
        DataError: a refused name (nothing from the file ran), or a file that is not a pickle.
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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as err:
        raise DataError(f"{path}: expected {what}, could not unpickle it ({err}).") from err
    except (AttributeError, ImportError, KeyError, MemoryError, OverflowError) as err:
        raise DataError(f"{path}: expected {what}, could not unpickle it ({err!r}).") from err


@contextmanager
def pytables_restricted(source: str | Path) -> Iterator[None]:
    """Make PyTables (and so ``pandas.read_hdf``) unpickle through :class:`RestrictedUnpickler`.

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
