"""``matrix_csv``: a ``[T, N]`` CSV, one column per node (a header of node names optional), with
an ``[N, N]`` adjacency beside it (T-GCN's Los-loop: ``los_speed.csv`` + ``los_adj.csv``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from linearcast.data.checks import to_float32
from linearcast.data.dataset import NonFinitePolicy, TimeSeriesDataset, handle_non_finite
from linearcast.data.readers._common import (
    CsvDialect,
    PathLike,
    ReaderFormat,
    csv_dialect,
    first_csv_line,
    numeric_frame,
    option_name,
    read_csv,
    require_file,
)
from linearcast.data.readers._files import echo
from linearcast.data.readers.graph import looks_like_adjacency, resolve_adjacency
from linearcast.data.readers.pems import is_edge_list
from linearcast.data.readers.time_columns import looks_like_time
from linearcast.errors import DataError


def _has_header(path: Path, dialect: CsvDialect) -> bool:
    """Whether the first line holds node names rather than the first readings.

    Names when any cell is not a number. A line of numbers is taken as names only when they are
    distinct integers and most of them lie outside the range of their column in the next rows
    (sensor ids such as Los-loop's 773869 above speeds of 0..70); otherwise it is data.
    """
    head = read_csv(
        path, "a [T, N] CSV", dialect, header=None, nrows=1001, dtype=str, keep_default_na=False
    )
    if dialect.thousands is not None:
        head = head.apply(lambda col: col.str.replace(dialect.thousands, "", regex=False))
    if dialect.decimal == ",":
        head = head.apply(lambda col: col.str.replace(",", ".", regex=False))
    try:
        cells = head.to_numpy(dtype=np.float64)
    except ValueError:
        return True
    first, rest = cells[0], cells[1:]
    if not len(rest) or not np.array_equal(first, np.round(first)):
        return False
    if len(np.unique(first)) != len(first):
        return False
    outside = (first < np.nanmin(rest, axis=0)) | (first > np.nanmax(rest, axis=0))
    return bool(outside.mean() > 0.5)


def read_matrix_csv(
    path: PathLike,
    adjacency: PathLike | Literal["auto"] | None = "auto",
    *,
    header: bool | Literal["auto"] = "auto",
    name: str | None = None,
    freq_minutes: int | None = None,
    start: pd.Timestamp | str | None = None,
    null_value: float = 0.0,
    non_finite: NonFinitePolicy = "error",
    graph_drop: Sequence[int] = (),
    sep: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    encoding: str | None = None,
) -> TimeSeriesDataset:
    """Read a ``[T, N]`` CSV and the ``[N, N]`` adjacency beside it.

    Args:
        path: the data CSV (T-GCN's ``los_speed.csv``: a header of 207 sensor ids).
        adjacency: an adjacency file (CSV with or without header/index, ``.npy``, ...);
            ``"auto"`` takes ``los_adj.csv`` for ``los_speed.csv``, ``<stem>_adj.csv``, or the one
            file beside it named like a graph (``*adj*``, ``graph*``); ``None``/``"none"``: none.
        header: whether the first line holds node names (``"auto"``: see :func:`_has_header`;
            ``describe`` shows the names it took).
        name: dataset name (default: the file stem).
        freq_minutes: step in minutes (the file does not say; Los-loop: 5).
        start: first timestamp, when known (day-of-week then follows the calendar).
        null_value: 0.0 (traffic convention).
        non_finite: ``"error"`` or ``"null"``.
        graph_drop: node indices to delete from the graph (one more node than the data).
        sep: the field separator (default: ``,``, ``;`` or tab, from the first line).
        decimal: the decimal mark (default: ``.``; ``,`` in a ``;``-separated file that writes
            its numbers so).
        thousands: the thousands separator of numbers written ``"5,035.80"`` (``,``; ``.``
            for ``1.234,5``, which makes ``,`` the decimal mark); default: none.
        encoding: the text encoding (default: UTF-8, or UTF-16/32 by its byte-order mark).

    Returns:
        A dataset with ``values [T, N, 1]``.
    """
    p = require_file(path, "a [T, N] CSV")
    if is_edge_list(p):
        raise DataError(
            f"{p}: this is an edge list (header {echo(','.join(first_csv_line(p)))}), "
            f"not a dataset: expected the data file (e.g. {p.with_suffix('.npz').name}); the "
            "reader takes the graph from this file beside it."
        )
    dialect = csv_dialect(p, sep, decimal, encoding, thousands=thousands, options=True)
    with_header = _has_header(p, dialect) if header == "auto" else bool(header)
    what = "a [T, N] CSV (one column per node)"
    df = read_csv(p, what, dialect, header=0 if with_header else None)
    _refuse_time_column(p, df)
    arr = numeric_frame(df.copy(), str(p), dialect=dialect)
    arr = to_float32(arr, str(p), list(df.columns) if with_header else None)
    values = handle_non_finite(arr[:, :, None], str(p), null_value, non_finite)
    n = values.shape[1]
    named = [p.with_name(p.stem.replace("speed", "adj") + p.suffix)] if "speed" in p.stem else []
    adj, note = resolve_adjacency(
        adjacency,
        n,
        p,
        values.shape,
        drop=graph_drop,
        candidates=[*named, p.with_name(f"{p.stem}_adj{p.suffix}")],
    )
    return TimeSeriesDataset(
        values=values,
        name=name or p.stem,
        path=p,
        freq_minutes=freq_minutes,
        start=pd.Timestamp(start) if start is not None else None,
        adjacency=adj,
        node_names=[str(c) for c in df.columns] if with_header else None,
        null_value=null_value,
        meta={"format": "matrix_csv", "graph_note": note},
    )


def _refuse_time_column(p: Path, df: pd.DataFrame) -> None:
    """A column of dates is a time column no name marked as one (or a first line of data):
    say how to read it rather than that it is not numeric."""
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) or not len(s.dropna()):
            continue
        cell = str(s.dropna().iloc[0]).strip()
        if not looks_like_time(cell):
            continue
        if looks_like_time(str(col)):
            raise DataError(
                f"{p}: expected a header line (a time column's name, then one per series), found "
                f"data on the first line ({echo(str(col))}, ...); add a header line such as "
                f"date,{','.join(f's{i}' for i in range(1, min(df.shape[1], 3)))},..."
            )
        raise DataError(
            f"{p}: expected numbers in column {echo(str(col))}, found times (first "
            f"{echo(cell)}); read it as the time column with --set "
            f"data_options.time_column={option_name(col)}."
        )


FORMAT = ReaderFormat(
    name="matrix_csv",
    read=read_matrix_csv,
    files="a [T, N] CSV, one column per node (header optional) + an [N, N] adjacency beside it",
    suffixes=(".csv", ".txt"),
    claims=lambda p: not looks_like_adjacency(p),
    priority=0,
)
