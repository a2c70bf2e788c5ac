"""Is new data at the step a run was trained on? (:func:`check_step`, used by ``forecast``,
``backtest``, ``evaluate`` and ``predict`` on new data.)

Steps in minutes are compared as numbers; calendar steps (months, quarters, years: pandas
frequencies such as ``"MS"``, recorded by the readers in ``meta["freq"]`` and by training in the
checkpoint's ``meta["freq"]``) by their period, so month starts and month ends are both months.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from linearcast.data.checks import calendar_frequency
from linearcast.errors import DataError

if TYPE_CHECKING:
    from linearcast.data import TimeSeriesDataset

__all__ = ["check_step"]


def _step_text(minutes: int) -> str:
    """A step for people: ``"30-minute"``, ``"1-hour"``, ``"1-day"``."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}-day"
    if minutes % 60 == 0:
        return f"{minutes // 60}-hour"
    return f"{minutes}-minute"


def check_step(ds: TimeSeriesDataset, meta: dict[str, Any], run_dir: str | Path) -> None:
    """Refuse data whose step is not the one the run was trained on (``forecast``,
    ``backtest``, ``evaluate`` and ``predict`` on new data all check here).

    A model maps ``in_steps`` readings to the next ``out_steps`` at the step it learned:
    30-minute readings fed to an hourly model give numbers, but not forecasts. Checked when
    both steps are known (the checkpoint's ``meta["freq_minutes"]``; the data's from its
    timestamps, ``data_options.freq_minutes`` or ``steps_per_day``; with gaps, the usual step);
    data without a step (no time) or on a calendar step (months) is left to the other checks.

    Raises:
        DataError: the steps differ: one sentence naming the data, both steps and the fix.
    """
    trained, found = meta.get("freq_minutes"), ds.freq_minutes
    if "freq" in meta:  # runs since calendars were recorded: months, quarters, years compared
        _check_calendar(ds, meta, run_dir)
        if meta["freq"] or _calendar(ds):
            return
    if not trained or not found or int(trained) == int(found) or _calendar(ds):
        return
    run, new = _step_text(int(trained)), _step_text(int(found))
    if ds.timestamps is not None:
        origin = "between its timestamps"
        whose = "the file" if ds.path is not None else "the data"
        fix = f"or correct {whose}'s timestamps if they are wrong"
    elif ds.path is None:
        origin = "(from its freq_minutes / steps_per_day)"
        fix = f"or pass freq_minutes={int(trained)} if that is the data's real step"
    else:
        origin = "(from its data options, metadata or file name)"
        fix = (
            f"or give the real step with --set data_options.freq_minutes={int(trained)} if the "
            f"file is at {run} steps"
        )
    if int(found) < int(trained):  # finer data: aggregate it to the run's step
        what = (
            f"resample the data to {run} steps (e.g. pandas .resample('{int(trained)}min').mean())"
        )
    else:  # coarser data: the steps between its readings are unknown
        what = f"give data at {run} steps or train a run on {new} data"
    raise DataError(
        f"{ds.source}: expected {run} steps (the step the model of {run_dir} was trained on), "
        f"found {new} steps {origin}; {what}, {fix}."
    )


def _check_calendar(ds: TimeSeriesDataset, meta: dict[str, Any], run_dir: str | Path) -> None:
    """:func:`check_step` where either side is on a calendar step (``meta["freq"]``, e.g.
    ``"MS"``): the same period (month starts or ends alike) passes, anything else is refused."""
    trained, found = meta.get("freq"), _calendar(ds)
    if not trained and not found:
        return
    if trained and found and _period(str(trained)) == _period(found):
        return
    minutes = meta.get("freq_minutes")
    run = _calendar_text(str(trained)) if trained else minutes and f"{_step_text(int(minutes))}"
    new = _calendar_text(found) if found else ds.freq_minutes and _step_text(ds.freq_minutes)
    if not run or not new:
        return  # one side knows no step: left to the other checks
    raise DataError(
        f"{ds.source}: expected {run} steps (the step the model of {run_dir} was trained on), "
        f"found {new} steps; give data at {run} steps, or train a run on {new} data."
    )


def _calendar(ds: TimeSeriesDataset) -> str | None:
    """The data's calendar frequency (``"MS"``, ``"QS-JAN"``, ...) or ``None``: the reader's
    (``meta["freq"]``), else what its timestamps show."""
    if ds.meta.get("freq"):
        return str(ds.meta["freq"])
    return calendar_frequency(ds.timestamps) if ds.timestamps is not None else None


def _period(freq: str) -> tuple[str, int]:
    """A calendar frequency's period and multiple: ``"MS"`` and ``"ME"`` are both months."""
    from pandas.tseries.frequencies import to_offset

    off = to_offset(freq)
    return type(off).__name__.replace("Begin", "").replace("End", ""), int(off.n)


def _calendar_text(freq: str) -> str:
    """``"MS"`` -> ``"1-month (MS)"``."""
    try:
        name, n = _period(freq)
    except ValueError:
        return freq
    return f"{n}-{name.lower()} ({freq})"
