"""What a backtest reads and refuses: the cutoffs (how many windows fit), the data (the run's
own or another file, checked as :mod:`linearcast.serve.forecast_inputs` checks a forecast's),
a gap in the rows the windows read, and which windows are in-sample on the run's own data
(see :func:`linearcast.serve.backtest.backtest_run`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linearcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from linearcast.data import Protocol, TimeSeriesDataset
    from linearcast.engine.config import TrainConfig

__all__ = [
    "check_count",
    "check_windows",
    "cutoff_rows",
    "first_test_row",
    "in_sample_note",
    "own_data",
    "same_file",
]


def check_count(value: Any, name: str) -> int:
    """``value`` as a whole number >= 1.

    Raises:
        ConfigError: a bool, a fraction, text, or a number below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"backtest: {name} expected a whole number >= 1, found {value!r}.")
    return int(value)


def cutoff_rows(
    num_steps: int, in_steps: int, horizon: int, n_windows: int, step_size: int, source: str
) -> np.ndarray:
    """The rows of the K cutoffs (last input step of each window), oldest first.

    Args:
        num_steps: T, the rows of the data.
        in_steps: the model's input window.
        horizon: H, the steps forecast after each cutoff.
        n_windows: K.
        step_size: rows between consecutive cutoffs.
        source: the data, for messages.

    Returns:
        ``[K]`` int64, ``T - H - 1 - (K - 1 - k) * step_size`` for ``k = 0 .. K-1``.

    Raises:
        ConfigError: ``n_windows`` or ``step_size`` not a whole number >= 1.
        DataError: fewer than ``in_steps + H + (K - 1) * step_size`` rows (the message says
            how many windows fit).
    """
    k = check_count(n_windows, "n_windows (--windows)")
    s = check_count(step_size, "step_size (--step)")
    need = in_steps + horizon + (k - 1) * s
    if num_steps < need:
        room = num_steps - in_steps - horizon
        if room < 0:
            fits = (
                f"not even one window fits: give at least {in_steps + horizon} steps (the "
                f"{in_steps}-step input and the {horizon}-step horizon)"
            )
        else:
            m = room // s + 1
            fits = f"at most {m} fit (--windows {m}, n_windows={m}), or use a smaller step"
        raise DataError(
            f"{source}: {k} windows every {s} steps need at least {in_steps} + {horizon} + "
            f"({k} - 1) x {s} = {need} steps (input, horizon and spacing), found T={num_steps}; "
            f"{fits}."
        )
    last = num_steps - horizon - 1
    return np.asarray(last - s * np.arange(k - 1, -1, -1), dtype=np.int64)


def own_data(config: TrainConfig, run_dir: Path) -> str:
    """The run's data path; a run trained on an in-memory object records only its shape."""
    if config.data.startswith("<"):
        raise ConfigError(
            f"{run_dir}: the run was trained on an in-memory object ({config.data}), which it "
            f"does not keep; pass the data again (--data FILE, or data= in Python)."
        )
    return config.data


def same_file(data: Any, own: str) -> bool:
    """Whether ``data`` names the file the run was trained on (its split is then known)."""
    if not isinstance(data, str | Path) or own.startswith("<") or own == "synthetic":
        return False
    try:
        return Path(data).resolve() == Path(own).resolve()
    except (OSError, RuntimeError):
        return False


def check_windows(
    ds: TimeSeriesDataset,
    config: TrainConfig,
    p: Protocol,
    meta: dict[str, Any],
    run_dir: Path,
    cutoffs: np.ndarray,
    labels: list[str] | None = None,
) -> list[str]:
    """Refuse data the model cannot forecast from (forecast's checks) or a gap in the rows the
    windows read; return the notes worth a warning (``labels``: the series' names for them)."""
    from linearcast.serve.forecast_inputs import check_inputs
    from linearcast.serve.missing_inputs import null_reading_note, unobserved_note

    names = labels or ds.node_names or [str(i) for i in range(ds.num_nodes)]
    notes = check_inputs(ds, config, p, meta, run_dir, names)
    # about the data's last window: not an input of any backtest window
    last = {null_reading_note(ds, p), unobserved_note(ds, p, names)}
    notes = [n for n in notes if n not in last]
    _check_regular(ds, int(cutoffs[0]) - p.in_steps + 1, len(cutoffs))
    return notes


def _check_regular(ds: TimeSeriesDataset, first: int, k: int) -> None:
    """Refuse timestamps that are not evenly spaced from row ``first`` to the end."""
    ts = ds.timestamps
    if ts is None or len(ts) < 3 or ds.meta.get("freq"):
        return
    ns = pd.DatetimeIndex(ts).as_unit("ns").asi8
    diffs = np.diff(ns)
    step = int(pd.Series(diffs).mode().iloc[0])
    bad = np.flatnonzero(diffs[first:] != step)
    if len(bad):
        i = first + int(bad[-1])
        raise DataError(
            f"{ds.source}: expected the rows the {k} windows read (from {ts[first]} to the end) "
            f"on the usual {pd.Timedelta(step, unit='ns')} grid, found a step of "
            f"{pd.Timedelta(int(diffs[i]), unit='ns')} from {ts[i]} to {ts[i + 1]}; fill the "
            f"gap, or use fewer windows or a smaller step so that they start after it."
        )


def first_test_row(p: Protocol, ds: TimeSeriesDataset) -> int | None:
    """The first target row of the run's test split (its own data), or None."""
    try:
        starts = p.window_starts(ds.num_steps, ds.steps_per_day)["test"]
    except (DataError, ConfigError):
        return None
    return int(starts[0]) + p.in_steps if len(starts) else None


def in_sample_note(ds: TimeSeriesDataset, cutoffs: np.ndarray, test_start: int) -> str:
    inside = int((cutoffs + 1 < test_start).sum())
    return (
        f"{ds.source}: {inside} of {len(cutoffs)} windows forecast rows before row "
        f"{test_start}, where the run's test split starts: the model was trained or "
        f"early-stopped on those rows, so their errors are in-sample."
    )
