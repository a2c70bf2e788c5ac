"""Missing readings are one concept in the data layer: NaN, ±inf, or the null value (a sentinel
such as -200/-9999, or 0 for traffic). They are left out of the scaler fit, NaN in the targets
(masked by every loss and metric), filled in the model's input, and counted per split; a null
rule that would hide most of the targets stops and asks."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linearcast.data import as_dataset, get_protocol, load
from linearcast.data.checks import handle_non_finite
from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.scaler import StandardScaler, fill_last
from linearcast.data.summary import describe
from linearcast.errors import ConfigError, DataError

_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "30"))


def _weather_csv(tmp_path: Path, rows: int = 600) -> tuple[Path, np.ndarray]:
    """An LTSF CSV (``date`` + 3 series) whose wind speed holds -9999 in 5% of the rows."""
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    values = np.stack(
        [
            10 + 5 * np.sin(t / 24) + rng.normal(0, 1, rows),  # temperature
            2 + 1.5 * rng.random(rows),  # wind speed, m/s
            1000 + rng.normal(0, 3, rows),  # pressure
        ],
        axis=1,
    )
    values[rng.random(rows) < 0.05, 1] = -9999.0
    frame = pd.DataFrame(values, columns=["T", "wv", "p"])
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=rows, freq="10min"))
    path = tmp_path / "weather.csv"
    frame.to_csv(path, index=False)
    return path, values


# ------------------------------------------------------------------------------ scaler
def test_a_named_sentinel_is_left_out_of_the_ltsf_scaler(tmp_path: Path) -> None:
    path, values = _weather_csv(tmp_path)
    ds = load(path, null_value=-9999.0)
    prep = get_protocol("ltsf", null_value=None, in_steps=24, out_steps=12).prepare(ds)
    a, b = prep.split_rows["train"]
    wind = values[a:b, 1]
    real = wind[wind != -9999.0]
    assert prep.null_value == -9999.0
    assert prep.scaler.std[1] == pytest.approx(real.std(), rel=1e-5)  # not squashed
    assert prep.scaler.mean[1] == pytest.approx(real.mean(), rel=1e-5)
    assert prep.scaler.std[1] < 1.0  # the -9999 rows would make it ~2000


@pytest.mark.parametrize("protocol", ["pems", "pems-staeformer", "metr", "ltsf", "ett"])
def test_nan_and_inf_never_reach_the_scaler_statistics(protocol: str) -> None:
    rng = np.random.default_rng(1)
    t = 24 * 30 * 21 if protocol == "ett" else 600
    v = (50 + rng.normal(0, 5, (t, 3))).astype(np.float32)
    v[rng.random(v.shape) < 0.05] = np.nan
    v[7, 0] = np.inf
    with pytest.warns(UserWarning, match="kept as missing readings"):
        ds = as_dataset(v[:, :, None], freq_minutes=60, start="2020-01-06", non_finite="mask")
    p = get_protocol(protocol, null_value=None, in_steps=12, out_steps=12)
    prep = p.prepare(ds)
    a, b = p.scaler_rows(t, ds.steps_per_day)
    rows = np.asarray(ds.values[a:b, :, 0], dtype=np.float64)
    ok = np.isfinite(rows)
    axis = None if p.scaler == "global" else 0
    mean = np.where(ok, rows, 0).sum(axis) / ok.sum(axis)
    np.testing.assert_allclose(prep.scaler.mean, mean, rtol=1e-6)
    assert np.isfinite(prep.scaler.std).all()


# ------------------------------------------------------------------------------ windows
def test_missing_inputs_are_filled_and_missing_targets_are_nan(tmp_path: Path) -> None:
    path, values = _weather_csv(tmp_path)
    ds = load(path, null_value=-9999.0)
    prep = get_protocol("ltsf", null_value=None, in_steps=24, out_steps=12).prepare(ds)
    sc = prep.scaler
    for part in (prep.train, prep.val, prep.test):
        for i in range(0, len(part), 37):
            x, y = part[i]
            s = int(part.starts[i])
            hist = values[s : s + 24]
            fut = values[s + 24 : s + 36]
            assert torch.isfinite(x).all()
            # a target is NaN exactly where the reading is the sentinel
            np.testing.assert_array_equal(torch.isnan(y[..., 0]).numpy(), fut == -9999.0)
            # a missing input reads as the last observation before it (else the mean: 0)
            for r, c in zip(*np.nonzero(hist == -9999.0), strict=True):
                before = np.flatnonzero(hist[:r, c] != -9999.0)
                want = (hist[before[-1], c] - sc.mean[c]) / sc.std[c] if len(before) else 0.0
                assert float(x[r, c, 0]) == pytest.approx(want, abs=1e-5)


def test_fill_rules_last_mean_and_keep() -> None:
    x = np.array([[np.nan, 1.0], [4.0, -200.0], [np.inf, 3.0], [-200.0, np.nan]], np.float32)
    kw = {"null_value": -200.0}
    last = StandardScaler(mean=1.0, std=2.0, **kw).transform_inputs(x)  # type: ignore[arg-type]
    np.testing.assert_allclose(last, [[0, 0], [1.5, 0], [1.5, 1], [1.5, 1]])
    mean = StandardScaler(mean=1.0, std=2.0, fill="mean", **kw).transform_inputs(x)  # type: ignore[arg-type]
    np.testing.assert_allclose(mean, [[0, 0], [1.5, 0], [0, 1], [0, 0]])
    keep = StandardScaler(mean=1.0, std=2.0, fill="keep", **kw).transform_inputs(x)  # type: ignore[arg-type]
    np.testing.assert_allclose(keep, [[0, 0], [1.5, -100.5], [1.5, 1], [-100.5, 1]])
    with pytest.raises(ConfigError, match=r"input_fill must be one of auto, last, mean, keep"):
        get_protocol("pems", input_fill="zero")


def test_the_scaler_state_carries_the_input_rule() -> None:
    sc = StandardScaler(mean=1.0, std=2.0, null_value=-9999.0, fill="mean")
    back = StandardScaler.from_state_dict(sc.state_dict())
    assert back.null_value == -9999.0 and back.fill == "mean"
    nan_state = StandardScaler(mean=1.0, std=2.0).state_dict()
    assert nan_state["null_value"] is None  # strict JSON
    assert math.isnan(StandardScaler.from_state_dict(nan_state).null_value)
    old = {"mode": "global", "mean": 1.0, "std": 2.0}  # before the rule was saved
    assert StandardScaler.from_state_dict(old).fill == "keep"


# ------------------------------------------------------------------------------ metrics
@pytest.mark.parametrize("protocol", ["pems", "ltsf"])
def test_metrics_equal_a_hand_computation_over_the_non_missing_targets(
    tmp_path: Path, protocol: str
) -> None:
    path, values = _weather_csv(tmp_path)
    ds = load(path, null_value=-9999.0)
    p = get_protocol(protocol, null_value=None, in_steps=24, out_steps=12, horizons=(3,))
    p = p.replace(add_time_of_day=False, add_day_of_week=False)
    prep = p.prepare(ds)
    ev = prep.evaluator()
    errors: list[np.ndarray] = []
    for x, y in prep.dataloaders(batch_size=64)["test"]:
        pred = x[:, -12:, :, :1]  # any forecast in the model's (scaled) units
        ev.update(prep.to_target_space(pred), y)
    sc = prep.scaler
    for i, s in enumerate(prep.test.starts):
        x, _ = prep.test[i]
        fut = values[s + 24 : s + 36]
        pred = x[-12:, :, 0].double().numpy()
        if protocol == "ltsf":  # standardised units
            truth = (fut - sc.mean) / sc.std
        else:
            truth, pred = fut, pred * sc.std + sc.mean
        errors.append(np.abs(pred - truth)[fut != -9999.0])
    mae = np.concatenate(errors).mean()
    assert ev.compute()["overall"]["MAE"] == pytest.approx(mae, rel=1e-5)
    assert ev.masked_fraction > 0  # the sentinel targets were seen and masked


# ------------------------------------------------------------------------------ shares
def test_the_masked_share_of_each_split_is_counted_by_kind() -> None:
    v = np.full((200, 2, 1), 5.0, np.float32)
    v[10:20, 0] = np.nan  # train rows 0..120
    v[150:155, 1] = -200.0  # val rows 120..160
    v[170, 0] = np.inf  # test rows 160..200
    ds = TimeSeriesDataset(values=v, freq_minutes=60, null_value=-200.0)
    prep = get_protocol("pems", null_value=None, add_time_of_day=False,
                        add_day_of_week=False).prepare(ds)  # fmt: skip
    assert prep.split_rows == {"train": (0, 120), "val": (120, 160), "test": (160, 200)}
    assert prep.missing_shares("train") == {"masked": 10 / 240, "non_finite": 10 / 240,
                                            "null": 0.0}  # fmt: skip
    assert prep.missing_shares("val") == {"masked": 5 / 80, "non_finite": 0.0, "null": 5 / 80}
    assert prep.missing_shares("test")["non_finite"] == pytest.approx(1 / 80)
    assert prep.masked_fraction("val") == 5 / 80


def test_describe_counts_null_readings_and_the_missing_share(tmp_path: Path) -> None:
    path, values = _weather_csv(tmp_path)
    info = describe(load(path, null_value=-9999.0))
    (ch,) = info["channels"]
    hits = int((values == -9999.0).sum())
    assert ch["null"] == hits and ch["missing_share"] == pytest.approx(hits / values.size)


# ------------------------------------------------------------------------------ real zeros
def _counts(zero_share: float, t: int = 400, n: int = 3) -> TimeSeriesDataset:
    rng = np.random.default_rng(2)
    v = rng.poisson(3, (t, n)).astype(np.float32) + 1
    v[rng.random(v.shape) < zero_share] = 0.0  # real zeros: nobody boarded
    return as_dataset(v, freq_minutes=15, start="2021-03-01", null_value=0.0)


def test_a_null_rule_that_masks_most_targets_stops_and_names_both_choices() -> None:
    ds = _counts(0.74)
    with pytest.raises(DataError) as err:
        get_protocol("pems", null_value=None).prepare(ds)
    text = str(err.value)
    assert "% of the training targets equal the null value 0" in text
    assert "--set data_options.null_value=nan" in text
    assert "--set protocol_overrides.allow_mostly_missing=true" in text
    assert text.count(". ") <= 2 and "\n" not in text  # sentences, not a traceback
    scored = get_protocol("pems", null_value=float("nan")).prepare(ds)  # zeros are readings
    assert scored.masked_fraction("test") == 0.0
    kept = get_protocol("pems", null_value=None, allow_mostly_missing=True).prepare(ds)
    assert kept.masked_fraction("train") > 0.5
    get_protocol("pems", null_value=None).prepare(_counts(0.3))  # under half: no question


def test_a_series_that_is_mostly_null_is_named_in_a_warning() -> None:
    # ten series of readings and one of rainfall, 70% real zeros: 6% of all targets, so the
    # whole-data question stays quiet, but that series' zeros would all leave the metrics
    rng = np.random.default_rng(3)
    v = rng.normal(50, 5, (600, 11)).astype(np.float32)
    rain = np.maximum(rng.normal(0, 1, 600), 0.1).astype(np.float32)
    rain[rng.random(600) < 0.7] = 0.0
    v[:, 7] = rain
    names = [f"s{i}" for i in range(11)]
    names[7] = "rain"
    ds = as_dataset(pd.DataFrame(v, columns=names, index=pd.date_range("2024", periods=600,
                                 freq="5min")), null_value=0.0)  # fmt: skip
    protocol = get_protocol("pems", null_value=None)
    with pytest.warns(UserWarning) as caught:
        protocol.prepare(ds)
    (text,) = [str(w.message) for w in caught if "mostly the null value" in str(w.message)]
    share = 100 * float((rain == 0).mean())
    assert f"1 of 11 series are mostly the null value 0 (rain {share:.1f}%)" in text
    assert "--set data_options.null_value=nan" in text
    # scoring the zeros, or choosing to keep them masked, says nothing
    for quiet in (get_protocol("pems", null_value=float("nan")),
                  get_protocol("pems", null_value=None, allow_mostly_missing=True)):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            quiet.prepare(ds)


def test_the_mostly_null_warning_names_the_worst_series_and_counts_the_rest() -> None:
    v = np.full((400, 9), 4.0, np.float32)
    for i in range(8):
        v[: 220 + 20 * i, i] = 0.0  # series i: (220 + 20 i) / 400 zeros, all above half
    v[:, 8] = 5.0
    # 8 series mostly zero would be most of the data: keep it under half with many others
    v = np.concatenate([v, np.full((400, 30), 4.0, np.float32)], axis=1)
    ds = as_dataset(v, freq_minutes=60, null_value=0.0)
    with pytest.warns(UserWarning, match="mostly the null value") as caught:
        get_protocol("pems", null_value=None, add_time_of_day=False,
                     add_day_of_week=False).prepare(ds)  # fmt: skip
    (text,) = [str(w.message) for w in caught if "mostly the null value" in str(w.message)]
    assert "8 of 39 series" in text and "and 3 more" in text
    named = text[text.index("(") + 1 : text.index(")")]
    assert named.startswith("series 7 90.0%, series 6 85.0%, series 5 80.0%")
    assert named.count("%") == 5


def test_the_question_is_asked_on_the_whole_series_too() -> None:
    v = np.full((400, 2), 4.0, np.float32)
    v[140:, :] = 0.0  # 42% of the training rows 0..240, 65% of the whole series
    ds = as_dataset(v, freq_minutes=60, null_value=0.0)
    with pytest.raises(DataError, match=r"of the target series equal the null value 0"):
        get_protocol("pems", null_value=None, add_time_of_day=False,
                     add_day_of_week=False).prepare(ds)  # fmt: skip


# ------------------------------------------------------------------------------ entry
def test_non_finite_mask_keeps_nan_and_the_error_recommends_it() -> None:
    v = np.ones((6, 2, 1), np.float32)
    v[1, 0, 0], v[2, 1, 0] = np.nan, np.inf
    with pytest.raises(DataError) as err:
        handle_non_finite(v, "gaps.csv", 0.0, "error")
    assert "--set data_options.non_finite=mask" in str(err.value)
    assert "null_value=0" not in str(err.value)
    with pytest.warns(UserWarning, match=r"gaps\.csv: 1 NaN and 1 infinite .* kept as missing"):
        out = handle_non_finite(v, "gaps.csv", 0.0, "mask")
    assert np.isnan(out[1, 0, 0]) and np.isnan(out[2, 1, 0]) and np.isfinite(out).sum() == 10
    with pytest.raises(DataError, match=r"non_finite must be one of error, mask, null"):
        handle_non_finite(v, "gaps.csv", 0.0, "drop")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ real files
def test_air_quality_sentinels_are_missing_readings(shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "air_quality" / "AirQuality.csv")
    stamps = pd.to_datetime(raw["Date"] + " " + raw["Time"])
    frame = raw.drop(columns=["Date", "Time"]).set_index(pd.DatetimeIndex(stamps))
    frame = frame[["CO(GT)", "NOx(GT)", "NO2(GT)", "T"]]
    ds = as_dataset(frame, null_value=-200.0)
    prep = get_protocol("pems", null_value=None).prepare(ds)
    a, b = prep.split_rows["train"]
    rows = frame.to_numpy()[a:b]
    real = rows[rows != -200.0]
    assert prep.scaler.mean == pytest.approx(real.mean(), rel=1e-5)
    assert prep.scaler.std == pytest.approx(real.std(), rel=1e-5)
    x, _ = prep.test[0]
    assert torch.isfinite(x).all()
    assert 0.0 < prep.missing_shares("train")["null"] < 0.5


def test_prsa_na_gaps_train_windows_without_nan(shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "air_quality" / "PRSA_data_2010.1.1-2014.12.31.csv")
    stamps = pd.to_datetime(raw[["year", "month", "day", "hour"]])
    frame = raw[["pm2.5", "DEWP", "TEMP", "PRES"]].set_index(pd.DatetimeIndex(stamps))
    with pytest.raises(DataError, match="non_finite=mask"):
        as_dataset(frame)
    with pytest.warns(UserWarning, match="kept as missing readings"):
        ds = as_dataset(frame, non_finite="mask")
    prep = get_protocol("pems", null_value=None).prepare(ds)
    assert prep.missing_shares("train")["non_finite"] > 0.0
    loader = prep.dataloaders(batch_size=256, shuffle_train=False)["train"]
    x, y = next(iter(loader))  # the file starts with 24 NA hours of pm2.5
    assert torch.isfinite(x).all() and torch.isnan(y).any()


# ------------------------------------------------------------------------------ property
@pytest.mark.fuzz
@settings(
    max_examples=_EXAMPLES,
    deadline=None,
    derandomize="LINEARCAST_HYPOTHESIS_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    share=st.floats(0.0, 0.45),
    null=st.sampled_from([0.0, -200.0, math.nan]),
    protocol=st.sampled_from(["pems", "ltsf", "pems-staeformer"]),
    fill=st.sampled_from(["last", "mean", "keep"]),
)
def test_no_missing_reading_reaches_a_model_and_every_one_is_masked(
    seed: int, share: float, null: float, protocol: str, fill: str
) -> None:
    rng = np.random.default_rng(seed)
    v = (20 + rng.normal(0, 3, (160, 3))).astype(np.float32)
    gone = rng.random(v.shape) < share
    kinds = rng.integers(0, 3, v.shape)
    v[gone & (kinds == 0)] = np.nan
    v[gone & (kinds == 1)] = np.inf
    v[gone & (kinds == 2)] = -200.0 if math.isnan(null) else null
    v[:2] = 20.0  # every series has a reading in the training rows
    real_null = not math.isnan(null)
    ds = TimeSeriesDataset(values=v[:, :, None], freq_minutes=60, null_value=null)
    p = get_protocol(protocol, null_value=None, in_steps=8, out_steps=4, input_fill=fill,
                     add_time_of_day=False, add_day_of_week=False)  # fmt: skip
    prep = p.prepare(ds)
    missing = ~np.isfinite(v) | (np.isclose(v, null) if real_null else False)
    for part in (prep.train, prep.val, prep.test):
        xs, ys = zip(*(part[i] for i in range(len(part))), strict=True)
        x, y = torch.stack(xs), torch.stack(ys)  # (S, 8, N, 1), (S, 4, N, 1)
        assert torch.isfinite(x).all()
        fut_missing = np.stack([missing[s + 8 : s + 12] for s in part.starts])  # (S, 4, N)
        if p.metrics_space == "scaled" or not real_null:
            np.testing.assert_array_equal(torch.isnan(y[..., 0]).numpy(), fut_missing)
        ev = prep.evaluator()
        ev.update(y, y)
        assert ev.count == int((~fut_missing).sum())  # exactly the real readings are scored


def test_fill_last_matches_a_loop() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(9, 4))
    miss = rng.random(z.shape) < 0.5
    out = fill_last(z, miss)
    for c in range(4):
        last = 0.0
        for r in range(9):
            last = z[r, c] if not miss[r, c] else last
            assert out[r, c] == last


@pytest.mark.parametrize(
    ("protocol", "null_value", "expected"),
    [("pems", 0.0, "keep"), ("pems", -200.0, "last"), ("pems", float("nan"), "last"),
     ("ltsf", float("nan"), "last"), ("ltsf", -9999.0, "last")],
)  # fmt: skip
def test_auto_fill_keeps_traffic_zeros_and_fills_everything_else(
    protocol: str, null_value: float, expected: str
) -> None:
    # zeros fed as readings is how the published traffic numbers were trained (and how our
    # results tables were); a sentinel or a NaN must never reach a model as a value
    values = np.abs(np.random.default_rng(0).normal(5, 1, size=(400, 3, 1))).astype(np.float32)
    values[::7, 0, 0] = 0.0 if null_value == 0 else null_value
    ds = TimeSeriesDataset(values=values, name="x", steps_per_day=24, null_value=null_value)
    p = get_protocol(protocol, null_value=None, in_steps=8, out_steps=4)
    assert p.input_fill == "auto"
    prep = p.prepare(ds)
    assert prep.protocol.input_fill == expected == prep.scaler.fill
    x, _ = prep.train[0]
    assert torch.isfinite(torch.as_tensor(x)).all()


def test_a_series_without_training_values_is_named_with_the_drop_that_fixes_it() -> None:
    rng = np.random.default_rng(4)
    v = rng.normal(50, 5, (600, 4)).astype(np.float32)
    v[:450, 2] = np.nan  # s2 starts after the training period
    frame = pd.DataFrame(v, columns=["s0", "s1", "s2", "s3"],
                         index=pd.date_range("2024", periods=600, freq="h"))  # fmt: skip
    ds = as_dataset(frame, non_finite="mask")
    with pytest.raises(DataError) as err:
        get_protocol("ltsf", in_steps=24, out_steps=12).prepare(ds)
    text = str(err.value)
    assert "found none for 1 of 4 series: 's2'" in text
    assert "--set 'data_options.drop=[s2]'" in text
    ds.values[:, 2, 0] = np.nan_to_num(ds.values[:, 2, 0], nan=1.0)  # with values it fits
    get_protocol("ltsf", in_steps=24, out_steps=12).prepare(ds)
