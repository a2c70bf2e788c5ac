"""Missing readings in the data a forecast or backtest reads, under the run's rule.

A run decides at training time which readings are missing (NaN, ±inf and its null value) and
how its model's input gets them (the protocol's ``input_fill``; both are kept with the scaler in
``best.ckpt``). New data is read under that rule:

- the run's null value is the data's (:func:`apply_null_value`), whatever the reader's default,
  so the input fill, the notes and a backtest's scores all use the value the model was trained
  with;
- a null value *given* with the forecast or backtest (``--set data_options.null_value=-200``,
  ``Run.forecast(df, null_value=-200)``) marks more readings as missing: they become NaN, so the
  model's input fills them as it fills NaN and a backtest does not score them. It cannot
  unmark the run's own (``nan`` for a run trained with 0 or -200 as missing): that is refused;
- a series whose whole input window is missing has nothing to forecast from: its forecast and
  intervals are NaN, with a warning naming it (:func:`unobserved_series`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.errors import ConfigError

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset

__all__ = [
    "apply_null_value",
    "declared_null",
    "null_reading_note",
    "resolved_null",
    "run_null_value",
    "unobserved_note",
    "unobserved_series",
    "unobserved_windows",
    "unobserved_windows_note",
]

_OPTION = "data_options.null_value"
_SHOWN = 5  # series named in a note


def declared_null(sets: Sequence[str], data_options: dict[str, Any] | None) -> bool:
    """Whether the user gave a null value with the forecast or backtest (``--set
    data_options.null_value=...`` or ``null_value=``), not only inherited the run's."""
    given = any(item.split("=", 1)[0].strip() == _OPTION for item in sets)
    return given or "null_value" in (data_options or {})


def run_null_value(ckpt: dict[str, Any], protocol: Protocol) -> float | None:
    """The null value the run was trained with: its scaler's (NaN: none besides NaN/±inf); the
    protocol's for a checkpoint that does not record it; ``None`` when neither says."""
    state = ckpt.get("scaler") or {}
    if "null_value" in state:
        value = state["null_value"]
        return math.nan if value is None else float(value)
    return None if protocol.null_value is None else float(protocol.null_value)


def resolved_null(ds: TimeSeriesDataset, p: Protocol) -> float:
    """The null value the protocol resolves for ``ds`` (the protocol's, else the data's)."""
    return float(ds.null_value if p.null_value is None else p.null_value)


def _same(a: float, b: float) -> bool:
    from linearcast.data.scaler import valid_mask

    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return not bool(valid_mask(np.asarray([a]), b)[0])  # within the null rule's 5e-5


def apply_null_value(
    ds: TimeSeriesDataset, declared: bool, run_null: float | None, run_dir: Path
) -> TimeSeriesDataset:
    """``ds`` under the run's null value, with the readings equal to a declared one made NaN.

    Args:
        ds: the data as read (its ``null_value`` the reader's, or the one given).
        declared: the null value was given with the forecast or backtest
            (:func:`declared_null`).
        run_null: the run's null value (:func:`run_null_value`); ``None``: unknown, ``ds`` is
            returned as read.
        run_dir: the run, for messages.

    Returns:
        A copy of ``ds`` whose ``null_value`` is the run's and whose readings equal to the
        declared null value are NaN (all channels); ``ds`` itself when nothing changes.

    Raises:
        ConfigError: the declared null value is not a number, or is NaN for a run trained with
            a finite null value (its readings cannot be unmarked).
    """
    if run_null is None:
        return ds
    src = ds.source
    values = ds.values
    if declared:
        try:
            given = float(ds.null_value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{src}: null_value expected a number (or nan), found {ds.null_value!r}; e.g. "
                f"--set {_OPTION}=-200 (Python: null_value=-200)."
            ) from None
        if math.isnan(given) and not math.isnan(run_null):
            raise ConfigError(
                f"{src}: expected a null value that marks more readings as missing than "
                f"{run_null:g}, the one {run_dir} was trained with, found nan, which cannot make "
                f"its {run_null:g} readings real ones (the run was trained with them missing); "
                f"leave {_OPTION} out (Python: null_value=), or retrain with --set {_OPTION}=nan."
            )
        if not _same(given, run_null) and not math.isnan(given):
            hit = np.isclose(np.asarray(values), given, atol=5e-5, rtol=0.0)
            if hit.any():
                values = np.where(hit, np.float32(np.nan), values).astype(np.float32)
    if values is ds.values and _same(float(ds.null_value), run_null):
        return ds
    return dataclasses.replace(ds, values=values, null_value=run_null)


def unobserved_windows(ds: TimeSeriesDataset, p: Protocol, cutoffs: np.ndarray) -> np.ndarray:
    """``[K, N]`` bool: for the window ending at each cutoff row, the series with no reading the
    model reads in its ``in_steps`` input rows (every one missing: NaN/±inf, or the null value
    unless the input fill keeps null-valued readings as values), which have nothing to forecast
    from."""
    from linearcast.data.scaler import valid_mask

    null = resolved_null(ds, p)
    rule = math.nan if p.fill_for(null) == "keep" else null
    out = np.zeros((len(cutoffs), ds.num_nodes), dtype=bool)
    for k, c in enumerate(int(c) for c in cutoffs):
        window = np.asarray(ds.values[c - p.in_steps + 1 : c + 1, :, p.target_channel])
        out[k] = ~valid_mask(window.astype(np.float64), rule).any(axis=0)
    return out


def unobserved_series(ds: TimeSeriesDataset, p: Protocol) -> np.ndarray:
    """``[N]`` bool: the series with no reading the model reads in the last ``in_steps``
    steps (:func:`unobserved_windows` of the window ending at the last row)."""
    return unobserved_windows(ds, p, np.array([ds.num_steps - 1]))[0]


def unobserved_windows_note(
    ds: TimeSeriesDataset, unobserved: np.ndarray, labels: list[str]
) -> str | None:
    """The backtest's warning for windows ``unobserved [K, N]`` with no input reading (their
    forecasts are NaN and their targets not scored), or ``None``."""
    if not unobserved.any():
        return None
    series = [labels[i] for i in np.flatnonzero(unobserved.any(axis=0))]
    shown = ", ".join(repr(n) for n in series[:_SHOWN]) + (", ..." if len(series) > _SHOWN else "")
    return (
        f"{ds.source}: {int(unobserved.sum())} of the {unobserved.size} (window, series) "
        f"forecasts have no reading in their input window (series {shown}), so they are NaN "
        f"and their targets are not scored."
    )


def unobserved_note(ds: TimeSeriesDataset, p: Protocol, labels: list[str]) -> str | None:
    """The warning for the series whose whole input window is missing (their forecasts are
    NaN), or ``None``."""
    empty = np.flatnonzero(unobserved_series(ds, p))
    if not len(empty):
        return None
    names = [labels[i] for i in empty]
    shown = ", ".join(repr(n) for n in names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")
    null = resolved_null(ds, p)
    keep = math.isnan(null) or p.fill_for(null) == "keep"
    what = "NaN/inf" if keep else f"NaN/inf or the null value {null:g}"
    have = "has" if len(names) == 1 else "have"
    return (
        f"{ds.source}: {len(names)} of {ds.num_nodes} series ({shown}) {have} no reading in the "
        f"last {p.in_steps} steps, the model's input window (all {what}), so their forecasts "
        f"and intervals are NaN; give them a reading in those steps to forecast them."
    )


def null_reading_note(ds: TimeSeriesDataset, p: Protocol) -> str | None:
    """A note when the last step is missing (NaN, ±inf or the null value) in some series that
    have a reading earlier in the window: the input fill (the protocol's ``input_fill``,
    applied by the run's scaler) stands in for it. Series with no reading at all are
    :func:`unobserved_note`'s."""
    from linearcast.data.scaler import valid_mask

    n = ds.num_steps
    null = resolved_null(ds, p)
    window = np.asarray(ds.values[n - p.in_steps :, :, p.target_channel], dtype=np.float64)
    gone = ~valid_mask(window, null)
    seen = ~unobserved_series(ds, p)
    hit_last = int((gone[-1] & seen).sum())
    if not hit_last:
        return None
    what = "NaN/inf" if math.isnan(null) else f"NaN/inf or the null value {null:g}"
    fill = {
        "last": "the last observation before it",
        "mean": "the training mean",
        "keep": "null-valued readings as values (as in training) and NaN/inf as the last "
        "observation",
    }
    among = "" if seen.all() else " of the series with a reading"
    return (
        f"{ds.source}: the last step is missing ({what}) at {hit_last} of {ds.num_nodes} "
        f"series, and {int(gone[:, seen].sum())} of the {int(seen.sum()) * p.in_steps} input "
        f"readings{among} are; the model reads {fill[p.fill_for(null)]} in their place, so "
        f"those forecasts start from an older reading."
    )
