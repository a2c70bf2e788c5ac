"""The run-directory plots: what they choose to draw and what they hand to matplotlib."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from linearcast.data import TimeSeriesDataset
from linearcast.engine.plots import (
    MASKED_GID,
    choose_series,
    choose_window,
    curves_figure,
    errors_figure,
    forecast_figure,
    masked_readings,
    series_label,
)


def _window(rng: np.random.Generator, length: int = 24) -> tuple[np.ndarray, list[int]]:
    """[L, 9] readings: 6 series with decreasing spread and 3 to be left out."""
    t = np.arange(length)
    cols = [100 + s * np.sin(t / 3) + rng.normal(0, 0.01, length) for s in (60, 50, 40, 30, 20, 10)]
    zeros = np.zeros(length)  # all null under null value 0
    tiny = 1e-8 + 1e-13 * rng.normal(size=length)  # constant up to rounding
    gappy = 100 + 80 * np.sin(t)  # the largest spread, but mostly null
    gappy[: length * 2 // 3] = 0.0
    w = np.stack([zeros, *cols[:3], tiny, *cols[3:], gappy], axis=1)
    signal = [1, 2, 3, 5, 6, 7]  # largest spread first
    return w, signal


def _drawn_lines(ax: Any) -> dict[str, Any]:
    return {
        line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")
    }


def _masked_spans(ax: Any) -> list[Any]:
    return [p for p in ax.patches if p.get_gid() == MASKED_GID]


# ---------------------------------------------------------------------- choice
def test_choose_series_skips_null_constant_and_mostly_masked_series() -> None:
    w, signal = _window(np.random.default_rng(0))
    picks = choose_series(w, null_value=0.0, k=4)
    assert len(picks) == len(set(picks)) == 4
    assert set(picks) <= set(signal)
    assert picks[0] == signal[0]  # the largest spread first
    # down to the median of the 6 with signal, not only the top 4
    assert max(signal.index(p) for p in picks) >= (len(signal) - 1) // 2
    assert choose_series(w, null_value=0.0, k=10) == signal
    # with NaN as the null value the zero series is a constant: still left out
    assert 0 not in choose_series(w, null_value=math.nan, k=10)


def test_choose_series_spreads_picks_from_largest_to_median() -> None:
    t = np.arange(48)
    spreads = np.arange(20, 0, -1, dtype=np.float64)  # series i has spread 20 - i
    w = 500 + spreads[None, :] * np.sin(t / 4)[:, None]
    picks = choose_series(w, null_value=0.0, k=4)
    assert picks[0] == 0 and len(set(picks)) == 4
    assert 9 <= max(picks) <= 10  # the median rank of 20
    assert picks == sorted(picks)  # largest spread first


def test_choose_series_draws_something_when_nothing_has_signal() -> None:
    w = np.zeros((12, 5))
    w[:, 3] = 7.0  # constant, but the only series with readings under null 0
    assert choose_series(w, null_value=0.0) == [3]


def test_choose_window_takes_the_fewest_masked_readings_then_the_middle() -> None:
    values = np.ones((100, 3, 1), dtype=np.float32)
    starts = np.arange(0, 80)
    length = 20
    # no gaps: the middle window
    assert choose_window(values, starts, length, 0.0) in (39, 40)
    values[30:70, 0, 0] = 0.0  # a long outage around the middle
    i = choose_window(values, starts, length, 0.0)
    masked = [masked_readings(values[s : s + length, :, 0], 0.0).sum() for s in starts]
    assert masked[i] == min(masked) == 0
    assert i == 10  # of the windows without a null (0..10, 70..79), the nearest the middle
    values[:, :, 0] = np.nan  # all masked: still an answer, the middle one
    assert choose_window(values, starts, length, math.nan) in (39, 40)


def test_series_label_uses_names_and_falls_back_to_the_index() -> None:
    assert series_label(7, None) == "node 7"
    assert series_label(7, [f"s{i}" for i in range(9)]) == "s7 (node 7)"
    long = ["Upper East Side North and a very long zone description"] * 8
    assert len(series_label(3, long)) < len(long[3])


def test_dataset_times_of_one_window_match_its_calendar() -> None:
    values = np.ones((500, 2, 1), dtype=np.float32)
    start = pd.Timestamp("2012-03-01")
    by_start = TimeSeriesDataset(values, start=start, freq_minutes=5)
    full = pd.date_range(start, periods=500, freq="5min")
    window = by_start.times(slice(100, 124))
    assert window is not None and window.equals(full[100:124])
    stamps = pd.DatetimeIndex(full + pd.to_timedelta(np.arange(500) % 3, "s"))  # irregular
    by_stamps = TimeSeriesDataset(values, timestamps=stamps, freq_minutes=5)
    window = by_stamps.times(slice(100, 124))
    assert window is not None and window.equals(stamps[100:124])
    assert TimeSeriesDataset(values, steps_per_day=288).times(slice(0, 24)) is None


# ---------------------------------------------------------------------- forecast
def _forecast_inputs(t_in: int = 12, t_out: int = 12) -> dict[str, Any]:
    w, _ = _window(np.random.default_rng(1), t_in + t_out)
    return {
        "history": w[:t_in],
        "truth": w[t_in:],
        "forecast": w[t_in:] + 1.0,
        "baseline": np.repeat(w[t_in - 1 : t_in], t_out, axis=0),
    }


def test_forecast_figure_draws_named_series_with_signal_and_marks_masked_steps() -> None:
    data = _forecast_inputs()
    w = np.concatenate([data["history"], data["truth"]])
    names = [f"sensor-{i}" for i in range(w.shape[1])]
    truth = data["truth"].copy()
    chosen = choose_series(w, 0.0)
    truth[[2, 3, 7], chosen[0]] = 0.0  # masked targets in the first panel
    fig = forecast_figure(
        data["history"], truth, data["forecast"], names=names, baseline=data["baseline"],
        baseline_label="last-value", null_value=0.0,
    )  # fmt: skip
    axes = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert titles == [series_label(n, names) for n in chosen]
    assert all(t.startswith("sensor-") for t in titles)
    assert "sensor-0 (node 0)" not in titles  # the all-null series
    first = _drawn_lines(axes[0])
    assert set(first) == {"history", "truth", "forecast", "last-value"}
    y = np.asarray(first["truth"].get_ydata(), dtype=np.float64)
    assert np.isnan(y[[2, 3, 7]]).all() and np.isfinite(np.delete(y, [2, 3, 7])).all()
    # steps 3-4 and 8 of the forecast (x = 3..4 and 8): two shaded runs
    spans = _masked_spans(axes[0])
    assert len(spans) == 2
    extents = sorted((p.get_x(), p.get_x() + p.get_width()) for p in spans)
    assert extents == [(2.5, 4.5), (7.5, 8.5)]
    assert not any(_masked_spans(ax) for ax in axes[1:])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("masked") and "null = 0" in t for t in legend)
    assert "last-value (baseline)" in legend


def test_forecast_figure_titles_the_window_with_timestamps_when_known() -> None:
    data = _forecast_inputs()
    times = pd.date_range("2012-03-05 07:00", periods=24, freq="5min")
    fig = forecast_figure(data["history"], data["truth"], data["forecast"], times=times,
                          nodes=[1, 2], title="m on d")  # fmt: skip
    title = fig.get_suptitle()
    assert title.startswith("m on d\n")
    assert "Mon 2012-03-05 07:00 → Mon 2012-03-05 08:55" in title
    x = fig.axes[0].get_lines()[0].get_xdata()
    assert np.asarray(x).dtype.kind == "M"  # the x axis is in time
    assert [ax.get_title() for ax in fig.axes[:2]] == ["node 1", "node 2"]  # no names

    days = pd.date_range("2020-01-01", periods=24, freq="D")
    fig = forecast_figure(data["history"], data["truth"], data["forecast"], times=days, nodes=[1])
    assert "Wed 2020-01-01 → Fri 2020-01-24" in fig.get_suptitle()


def test_forecast_figure_without_a_calendar_names_the_steps() -> None:
    data = _forecast_inputs()
    fig = forecast_figure(data["history"], data["truth"], data["forecast"], nodes=[1],
                          first_row=500)  # fmt: skip
    assert "steps 500 → 523" in fig.get_suptitle()
    line = _drawn_lines(fig.axes[0])["truth"]
    assert list(line.get_xdata()) == list(range(1, 13))


# ---------------------------------------------------------------------- curves, errors
def test_curves_use_a_log_axis_only_when_losses_span_two_decades() -> None:
    rows = [{"epoch": e, "train_loss": 10.0 / e, "val_loss": 12.0 / e} for e in range(1, 5)]
    fig = curves_figure(rows)
    assert fig is not None and fig.axes[0].get_yscale() == "linear"
    rows[0] |= {"train_loss": 5000.0}
    fig = curves_figure(rows)
    assert fig is not None and fig.axes[0].get_yscale() == "log"
    assert any("best (epoch 4)" in str(line.get_label()) for line in fig.axes[0].get_lines())
    assert curves_figure([]) is None


def _per_step(values: list[float]) -> dict[str, list[float]]:
    n = len(values)
    rmse = [v * 1.5 for v in values]
    return {"MAE": values, "RMSE": rmse, "MSE": [v * v for v in rmse], "MAPE": [1.0] * n,
            "count": [10.0] * n, "count_MAPE": [10.0] * n}  # fmt: skip


@pytest.mark.parametrize(
    ("space", "panels"), [("raw", ["MAE", "RMSE"]), ("scaled", ["MSE", "MAE"])]
)
def test_errors_figure_draws_one_line_per_model_over_every_step(
    space: str, panels: list[str]
) -> None:
    metrics = {
        "model": "elinformer",
        "dataset": {"name": "METR-LA"},
        "protocol": "metr[basicts,12->12]",
        "metrics_space": space,
        "test_windows": 100,
        "test_per_step": _per_step([1.0 + 0.1 * i for i in range(12)]),
        "baseline": {
            "model": "last-value",
            "test_per_step": _per_step([2.0 + 0.3 * i for i in range(12)]),
        },
    }
    fig = errors_figure(metrics, step_minutes=5)
    assert fig is not None
    units = "standardised units" if space == "scaled" else "data units"
    assert [ax.get_title() for ax in fig.axes] == [f"{p} ({units})" for p in panels]
    assert "metr[basicts,12->12]" in fig.get_suptitle() and units in fig.get_suptitle()
    for ax, name in zip(fig.axes, panels):
        lines = _drawn_lines(ax)
        assert len(lines) == 2
        model = next(v for k, v in lines.items() if k.startswith("elinformer"))
        base = next(v for k, v in lines.items() if k.startswith("last-value (baseline)"))
        assert list(model.get_xdata()) == list(range(1, 13))
        assert list(model.get_ydata()) == metrics["test_per_step"][name]
        assert list(base.get_ydata()) == metrics["baseline"]["test_per_step"][name]
        assert "5 min" in ax.get_xlabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    mae = np.mean(metrics["test_per_step"]["MAE"])  # equal counts: the plain mean
    assert legend[0].startswith("elinformer: overall") and f"MAE {mae:.4g}" in legend[0]
    assert legend[1].startswith("last-value (baseline): overall")
    assert errors_figure({"model": "m", "test": {}}) is None  # an older metrics.json
