"""``flow_pair`` and ``mat``: in/out-flow pairs and MATLAB tensors of mobility datasets.

Mobility data (taxi zones, metro stations, bike docks) is often shipped as two arrays, one for
the flow into and one for the flow out of each node, in two files whose names differ only in
``inflow``/``outflow``:

- NYC taxi (``nyc_taxi``): ``NYCtaxi-30min-inflow.npz`` / ``-outflow.npz``, key ``arr_0``,
  ``[T, N]`` each; the step is in the name (30 min);
- HZMetro (``hzmetro``): ``inflow_tensor.mat`` / ``outflow_tensor.mat`` (MATLAB v5, read with
  SciPy), ``[N, days, steps of day]`` each (80 stations × 25 days × 144 ten-minute steps).

The pair becomes one dataset ``[T, N, 2]`` with channels ``inflow`` (the target, channel 0) and
``outflow``. A graph beside the files is used when exactly one file there is named like one
(``W_adj_matrix.csv``, ``graph.csv``), and node names when a CSV there has N rows and a column
called ``*name*`` (NYC's ``manhattan_zones.csv``, ordered by its ``graph_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from linearcast.data import checks, isolate
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    PathLike,
    ReaderFormat,
    check_numeric,
    minutes_in_name,
    read_npy,
    read_npz_key,
    require_file,
)
from linearcast.data.readers._files import echo, first_line, is_regular
from linearcast.data.readers._npy import check_npy, check_npz
from linearcast.data.readers.graph import resolve_adjacency
from linearcast.errors import ConfigError, DataError

Layout = Literal["auto", "time_node", "node_time", "node_day_step", "day_step_node"]
_FLOW = re.compile(r"(in|out)flow", re.IGNORECASE)


def _direction(path: Path) -> str:
    """``"in"``, ``"out"`` or ``""`` as the file name says."""
    m = _FLOW.search(path.name)
    return m.group(1).lower() if m else ""


def partner_of(path: Path) -> Path | None:
    """The ``outflow`` file of an ``inflow`` file and vice versa (None if the name has neither)."""
    m = _FLOW.search(path.name)
    if m is None:
        return None
    other = "out" if m.group(1).lower() == "in" else "in"
    if m.group(1)[0].isupper():
        other = other.capitalize()
    return path.with_name(path.name[: m.start(1)] + other + path.name[m.end(1) :])


def _load_mat(path: Path, key: str | None) -> np.ndarray:
    """The numeric variable ``key`` (the only 2-D/3-D one when None) of a ``.mat``, parsed in a
    child process (:mod:`linearcast.data.isolate`): ``loadmat`` can crash on a damaged file."""
    _, arrays = isolate.run_isolated("mat", path, key=key)
    arr = arrays.get("array")
    if arr is None or arr.dtype.hasobject or arr.dtype.kind not in "fiubc":
        raise DataError(f"{path}: the MATLAB parser returned a malformed array; re-save the file.")
    return arr


def mat_worker(path: str, key: str | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The child's side of :func:`_load_mat`: ``({"key": name}, {"array": the variable})``."""
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - scipy is in the stats and dev extras
        raise DataError(
            f"{path}: reading MATLAB files needs SciPy: pip install 'linearcast[stats]'."
        ) from None
    try:
        mat = loadmat(path)
    except (ValueError, OSError, TypeError, NotImplementedError) as err:
        raise DataError(
            f"{path}: expected a MATLAB v4/v5 .mat file, could not read it ({first_line(err)}); "
            f"v7.3 files are HDF5: convert them to .npy."
        ) from err
    variables = {k: v for k, v in mat.items() if not k.startswith("__")}
    arrays = {k: v for k, v in variables.items() if isinstance(v, np.ndarray)}
    if key is None:
        numeric = [k for k, v in arrays.items() if v.ndim in (2, 3) and v.dtype.kind in "fiub"]
        if len(numeric) != 1:
            fix = (
                "choose one with --set data_options.key=NAME"
                if numeric
                else "re-save the data as a real, dense numeric matrix"
            )
            raise DataError(
                f"{path}: expected one numeric 2-D or 3-D array, found "
                f"{_variables(variables) if variables else 'no variables'}; {fix}."
            )
        key = numeric[0]
    if key not in arrays:
        raise DataError(
            f"{path}: expected variable {echo(key)}, found "
            f"{_variables(variables) if variables else 'no variables'}."
        )
    arr = arrays[key]
    if arr.dtype.hasobject or arr.dtype.kind not in "fiub":
        raise DataError(
            f"{path}: expected variable {echo(key)} to be a numeric array, found "
            f"{_variables({key: arr})}; re-save it as a real, dense numeric matrix."
        )
    return {"key": key}, {"array": np.asarray(arr)}


def _variable(value: Any) -> str:
    """What a ``loadmat`` variable is, in MATLAB's words: ``complex128 [400, 3]``, ``cell [1, 1]``,
    ``struct [1, 1]``, ``text``, ``sparse float64 [400, 3]``."""
    shape = list(getattr(value, "shape", ()))
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return f"struct {shape}"
        if value.dtype.hasobject:
            return f"cell {shape}"
        if value.dtype.kind in "SU":
            return "text"
        return f"{value.dtype} {shape}"
    dtype = getattr(value, "dtype", None)
    if hasattr(value, "tocsr"):  # scipy.sparse: MATLAB's sparse matrices
        return f"sparse {dtype} {shape}"
    return type(value).__name__


def _variables(variables: dict[str, Any], items: int = 8) -> str:
    """``'a' float64 [400, 3], 'b' cell [1, 1]``: each variable and what it is."""
    names = sorted(variables)
    shown = ", ".join(f"{echo(k, 40)} {_variable(variables[k])}" for k in names[:items])
    return shown + (f", … ({len(names)} in all)" if len(names) > items else "")


def _load_array(path: Path, key: str | None) -> np.ndarray:
    require_file(path, "an inflow/outflow array (.npz, .npy or .mat)")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return _load_mat(path, key)
    if suffix == ".npy":
        check_npy(path, "an inflow/outflow array")
        return read_npy(path, "an inflow/outflow array")
    check_npz(path, key)
    arr, _ = read_npz_key(path, key)
    return arr


def to_time_node(
    arr: np.ndarray, layout: Layout, source: str
) -> tuple[np.ndarray, int | None, str]:
    """``[T, N]`` float32 from a 2-D or 3-D array, the steps per day a day×step layout implies,
    and the layout used.

    ``"auto"``: a 2-D array is ``[T, N]`` (``[N, T]`` when it has more columns than rows); a
    3-D array is ``[N, days, steps]`` (the transdim/HZMetro layout).
    """
    check_numeric(arr, source)
    if layout == "auto":
        if arr.ndim == 2:
            layout = "time_node" if arr.shape[0] >= arr.shape[1] else "node_time"
        elif arr.ndim == 3:
            layout = "node_day_step"
        else:
            raise DataError(f"{source}: expected a 2-D or 3-D array, found shape {arr.shape}.")
    want = 3 if layout in ("node_day_step", "day_step_node") else 2
    if arr.ndim != want:
        raise DataError(
            f"{source}: layout {layout!r} needs a {want}-D array, found shape {arr.shape}."
        )
    spd: int | None = None
    if layout == "time_node":
        out = arr
    elif layout == "node_time":
        out = arr.T
    elif layout == "node_day_step":
        n, days, spd = arr.shape
        out = arr.transpose(1, 2, 0).reshape(days * spd, n)
    elif layout == "day_step_node":
        days, spd, n = arr.shape
        out = arr.reshape(days * spd, n)
    else:
        raise ConfigError(
            f"{source}: layout must be auto, time_node, node_time, node_day_step or "
            f"day_step_node; found {layout!r}."
        )
    return np.ascontiguousarray(checks.to_float32(out, source)), spd, layout


def names_from_csv(path: Path, n: int) -> list[str] | None:
    """Names from a CSV with N rows and a ``*name*`` column (ordered by a ``graph_id``, ``index``
    or ``node`` column holding 0..N-1 when there is one), else None."""
    try:
        df = pd.read_csv(path, nrows=n + 1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return None
    name_cols = [c for c in df.columns if "name" in str(c).lower()]
    if len(df) != n or not name_cols:
        return None
    order = [c for c in df.columns if str(c).lower() in ("graph_id", "index", "node")]
    if order and pd.api.types.is_integer_dtype(df[order[0]]):
        if sorted(df[order[0]]) == list(range(n)):
            df = df.sort_values(order[0])
    return [str(v) for v in df[name_cols[0]]]


def sibling_node_names(data_path: Path, n: int) -> list[str] | None:
    """Node names from the first CSV beside the data that :func:`names_from_csv` accepts."""
    for cand in sorted(c for c in data_path.parent.glob("*.csv") if is_regular(c)):
        names = names_from_csv(cand, n)
        if names is not None:
            return names
    return None


def read_flow_pair(
    path: PathLike,
    *,
    key: str | None = None,
    layout: Layout = "auto",
    adjacency: PathLike | Literal["auto"] | None = "auto",
    graph_drop: Sequence[int] = (),
    node_names: PathLike | Literal["auto"] | None = "auto",
    name: str | None = None,
    freq_minutes: int | None = None,
    start: pd.Timestamp | str | None = None,
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
) -> TimeSeriesDataset:
    """Read an in/out-flow pair (either file of it) as one ``[T, N, 2]`` dataset.

    Args:
        path: the inflow or the outflow file (``.npz``, ``.npy`` or ``.mat``); the other is
            found by swapping ``inflow``/``outflow`` in the name. A file without a partner is
            read alone as ``[T, N, 1]``.
        key: the array's key (npz) or variable (mat) (default: the only one).
        layout: how the axes are laid out (see :func:`to_time_node`).
        adjacency: a graph file, ``"auto"`` (the one file beside it named like a graph) or
            ``None``/``"none"``.
        graph_drop: node indices to delete from the graph (HZMetro's graph has one station more
            than its flows, and does not say which: e.g. ``[80]``, the last).
        node_names: a CSV of names (see :func:`sibling_node_names`), ``"auto"`` or None.
        name: dataset name (default: the folder's name).
        freq_minutes: step in minutes (default: from the name, or 1440 / steps of a day×step
            layout).
        start: first timestamp (the files do not say; NYC taxi: 2019-01-01).
        null_value: 0.0: a zero count is masked by the metrics like a missing reading (the
            traffic convention); with many genuine zeros, NaN scores every target instead.
        non_finite: ``"error"`` or ``"null"``.

    Returns:
        ``values [T, N, C]`` (C = 2 for a pair: inflow, outflow).
    """
    p = require_file(path, "an inflow/outflow array (.npz, .npy or .mat)")
    files, parts, spd, used = _read_pair(p, key, layout)  # parts: [T, N] each
    values = handle_non_finite(np.stack(parts, axis=-1), str(p), null_value, non_finite)
    n = values.shape[1]
    adj, note = resolve_adjacency(adjacency, n, p, values.shape, drop=graph_drop)
    names = _node_names(node_names, p, n)
    if freq_minutes is None:
        freq_minutes = minutes_in_name(p)
    if len(files) == 2:
        channels = ["inflow", "outflow"]
    else:
        channels = [f"{_direction(p)}flow" if _direction(p) else "value"]
    return TimeSeriesDataset(
        values=values,
        name=name or p.parent.name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        steps_per_day=spd if freq_minutes is None else None,
        start=pd.Timestamp(start) if start is not None else None,
        adjacency=adj,
        node_names=names,
        channel_names=channels,
        null_value=null_value,
        meta={
            "format": "flow_pair",
            "files": [str(f) for f in files],
            "layout": used,
            "graph_note": note,
        },
    )


def _read_pair(
    p: Path, key: str | None, layout: Layout
) -> tuple[list[Path], list[np.ndarray], int | None, str]:
    """The files read (inflow first), their ``[T, N]`` arrays, the steps per day a layout gave
    and the layout used."""
    other = partner_of(p)
    files = [p]
    if other is not None and other.exists():
        files = [f for d in ("in", "out") for f in (p, other) if _direction(f) == d]
    parts: list[np.ndarray] = []
    spd: int | None = None
    used: str = layout
    for f in files:
        arr, f_spd, used = to_time_node(_load_array(f, key), layout, str(f))
        parts.append(arr)
        spd = spd or f_spd
    shapes = {a.shape for a in parts}
    if len(shapes) != 1:
        raise DataError(
            f"{files[0]} and {files[1]}: expected the same [T, N] in both files, found "
            f"{parts[0].shape} and {parts[1].shape}."
        )
    return files, parts, spd, used


def _node_names(node_names: PathLike | Literal["auto"] | None, p: Path, n: int) -> list[str] | None:
    """The ``n`` node names: from a sibling CSV (``"auto"``), the CSV given, or None."""
    names: list[str] | None = None
    if node_names == "auto":
        names = sibling_node_names(p, n)
    elif node_names is not None:
        names = names_from_csv(require_file(node_names, "a CSV of node names"), n)
        if names is None:
            raise DataError(
                f"{node_names}: expected {n} rows (one per node) and a column called *name*."
            )
    return names


def _claims(path: Path) -> bool:
    other = partner_of(path)
    return other is not None and other.exists()


FORMAT = ReaderFormat(
    name="flow_pair",
    read=read_flow_pair,
    files="two arrays *inflow* / *outflow* (.npz, .npy or MATLAB .mat [N, days, steps]) → "
    "[T, N, 2] (NYC taxi, HZMetro)",
    suffixes=(".npz", ".npy", ".mat"),
    claims=_claims,
    priority=15,
)

MAT_FORMAT = ReaderFormat(
    name="mat",
    read=read_flow_pair,
    files="a MATLAB v4/v5 .mat holding [T, N], [N, T] or [N, days, steps] (read with SciPy)",
    suffixes=(".mat",),
    priority=0,
)
