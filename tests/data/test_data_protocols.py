"""Protocols: exact sample counts of the reference code, splits, scaler, window contents."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import RandomSampler, SequentialSampler

from linearcast.data import (
    PROTOCOLS,
    StandardScaler,
    TimeSeriesDataset,
    WindowDataset,
    get_protocol,
    read_ltsf_csv,
    synthetic_traffic,
)
from linearcast.data import scaler as scaler_module
from linearcast.errors import ConfigError, DataError

# (T, ratios, train, val, test) of the index.npz files published with STAEformer
# (XDZhelheim/STAEformer, data/<NAME>/index.npz), read once and written down here.
STAEFORMER_INDEX = {
    "PEMS03": (26208, "pems", 15711, 5237, 5237),
    "PEMS04": (16992, "pems", 10181, 3394, 3394),
    "PEMS07": (28224, "pems", 16921, 5640, 5640),
    "PEMS08": (17856, "pems", 10700, 3567, 3566),
    "METR-LA": (34272, "metr", 23974, 3425, 6850),
    "PEMS-BAY": (52116, "metr", 36465, 5209, 10419),
}


def test_pems08_basicts_counts() -> None:
    p = get_protocol("pems")
    assert p.split_mode == "basicts"
    # BasicTS: val = test = int(17856 * 0.2) = 3571 rows, train 10714 rows; windows stay inside
    assert p.split_rows(17856) == {
        "train": (0, 10714),
        "val": (10714, 14285),
        "test": (14285, 17856),
    }
    assert p.counts(17856) == {"train": 10714 - 23, "val": 3571 - 23, "test": 3571 - 23}
    assert p.counts(17856) == {"train": 10691, "val": 3548, "test": 3548}


def test_pems08_staeformer_counts() -> None:
    p = get_protocol("pems", split_mode="staeformer")
    assert p.counts(17856) == {"train": 10700, "val": 3567, "test": 3566}
    assert sum(p.counts(17856).values()) == 17856 - 12 - 12 + 1 == 17833
    assert get_protocol("pems-staeformer").counts(17856) == p.counts(17856)
    starts = p.window_starts(17856)
    # index.npz rows: train[0] = (0, 12, 24), val[0] = (10700, ...), test[-1] ends at T
    assert starts["val"][0] == 10700 and starts["test"][0] == 14267
    assert starts["test"][-1] + 24 == 17856


@pytest.mark.parametrize("name", sorted(STAEFORMER_INDEX))
def test_staeformer_counts_match_published_index(name: str) -> None:
    t, proto, train, val, test = STAEFORMER_INDEX[name]
    assert get_protocol(proto, split_mode="staeformer").counts(t) == {
        "train": train,
        "val": val,
        "test": test,
    }


def test_basicts_windows_never_borrow_across_splits() -> None:
    p = get_protocol("metr")
    rows = p.split_rows(34272)
    for part, starts in p.window_starts(34272).items():
        a, b = rows[part]
        assert starts.min() == a and starts.max() + 24 == b
    assert p.counts(34272) == {
        "train": 34272 - int(34272 * 0.1) - int(34272 * 0.2) - 23,
        "val": int(34272 * 0.1) - 23,
        "test": int(34272 * 0.2) - 23,
    }


# ETTh1.csv: 17420 hourly rows (checked against the file in test_etth1_file_has_the_counted_length)
ETTH1_ROWS, ETTH1_STEPS_PER_DAY = 17420, 24


def test_ltsf_and_ett_counts_borrow_lookback() -> None:
    # needs no data file, so the lookback arithmetic is guarded on every checkout
    p = get_protocol("ett")
    # Informer/Autoformer Dataset_ETT_hour: 12/4/4 months of 30 days
    assert p.counts(ETTH1_ROWS, ETTH1_STEPS_PER_DAY) == {"train": 8449, "val": 2785, "test": 2785}
    starts = p.window_starts(ETTH1_ROWS, ETTH1_STEPS_PER_DAY)
    assert starts["val"][0] == 8640 - 96 and starts["test"][0] == 8640 + 2880 - 96
    # each part's first target row is its own first row; its lookback comes from the part before
    rows = p.split_rows(ETTH1_ROWS, ETTH1_STEPS_PER_DAY)
    for part in ("val", "test"):
        assert starts[part][0] + p.in_steps == rows[part][0]
        assert starts[part][-1] + p.in_steps + p.out_steps == rows[part][1]
    # Dataset_Custom: int(0.7 T) train, int(0.2 T) test; exchange_rate 96->96
    assert get_protocol("ltsf").counts(7588) == {"train": 5120, "val": 665, "test": 1422}
    assert get_protocol("ili").counts(966) == {"train": 617, "val": 74, "test": 170}
    assert get_protocol("ett", out_steps=720).counts(17420, 24) == {
        "train": 8640 - 96 - 720 + 1,
        "val": 2880 - 720 + 1,
        "test": 2880 - 720 + 1,
    }


def test_etth1_file_has_the_counted_length(shared_data: Path) -> None:
    ds = read_ltsf_csv(shared_data / "ETT" / "ETTh1.csv")
    assert (ds.num_steps, ds.steps_per_day) == (ETTH1_ROWS, ETTH1_STEPS_PER_DAY)
    assert get_protocol("ett").counts(ds.num_steps, ds.steps_per_day)["val"] == 2785


def test_presets_and_overrides() -> None:
    assert {"pems", "metr", "ett", "ltsf"} <= set(PROTOCOLS)
    p = get_protocol("metr", in_steps=24)
    assert (
        p.in_steps == 24 and p.split_ratios == (0.7, 0.1, 0.2) and p.label == "metr[basicts,24->12]"
    )
    assert get_protocol("ett").scaler == "per_channel" and get_protocol("pems").scaler == "global"
    assert get_protocol("pems").null_value == 0.0 and math.isnan(
        get_protocol("ltsf").null_value or 0
    )
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['window'\]"):
        get_protocol("pems", window=3)
    with pytest.raises(ConfigError, match="unknown protocol 'nope'"):
        get_protocol("nope")
    with pytest.raises(ConfigError, match="split_ratios"):
        get_protocol("pems", split_ratios=(0.5, 0.2, 0.2))
    with pytest.raises(DataError, match=r"expected at least 14400 steps .* found T=1000"):
        get_protocol("ett").counts(1000, 24)


def test_stride() -> None:
    p = get_protocol("pems", stride=3)
    s = p.window_starts(17856)
    assert (np.diff(s["train"]) == 3).all() and s["val"][0] == 10714
    assert p.counts(17856)["train"] == len(range(0, 10714 - 23, 3))


# ----------------------------------------------------------------------------- scaler
def _ds(values: np.ndarray, **kw: object) -> TimeSeriesDataset:
    return TimeSeriesDataset(values=values.astype(np.float32), name="toy", steps_per_day=288, **kw)  # type: ignore[arg-type]


def test_scaler_fits_training_rows_only_and_masks_nulls() -> None:
    t, n = 1000, 3
    rng = np.random.default_rng(0)
    v = rng.uniform(10, 20, size=(t, n, 1)).astype(np.float32).astype(np.float64)
    v[5:50, 1, 0] = 0.0  # missing readings in the training part
    prep = get_protocol("pems").prepare(_ds(v))
    train_end = prep.split_rows["train"][1]
    assert train_end == 600
    tr = v[:train_end, :, 0]
    valid = tr[tr != 0]
    assert prep.scaler.mean == pytest.approx(valid.mean(), rel=1e-9)
    assert prep.scaler.std == pytest.approx(valid.std(), rel=1e-9)
    # changing the val/test rows does not change the scaler
    v2 = v.copy()
    v2[train_end:] *= 100.0
    prep2 = get_protocol("pems").prepare(_ds(v2))
    assert float(prep2.scaler.mean) == float(prep.scaler.mean)
    # unmasked (BasicTS/STAEformer style)
    prep3 = get_protocol("pems", scaler_mask_null=False).prepare(_ds(v))
    assert prep3.scaler.mean == pytest.approx(tr.mean(), rel=1e-9)


def test_staeformer_scaler_rows_are_training_inputs() -> None:
    p = get_protocol("pems-staeformer")
    assert p.scaler_rows(17856) == (0, 10699 + 12)


def test_per_channel_scaler_and_state_dict() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal([[1.0, -5.0, 100.0]], [[2.0, 0.5, 10.0]], size=(500, 3))
    sc = StandardScaler(mode="per_channel").fit(x, null_value=float("nan"))
    np.testing.assert_allclose(sc.mean, x.mean(0), rtol=1e-10)
    np.testing.assert_allclose(sc.std, x.std(0), rtol=1e-10)
    z = sc.transform(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-10)
    b = torch.tensor(x[None, :12, :, None], dtype=torch.float32)  # [B, T, N, 1]
    zb = sc.transform(b)
    np.testing.assert_allclose(zb[0, :, :, 0].numpy(), z[:12], rtol=1e-5, atol=1e-5)
    back = sc.inverse_transform(zb)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    torch.testing.assert_close(back, b, rtol=1e-5, atol=1e-4)
    sc2 = StandardScaler.from_state_dict(sc.state_dict())
    np.testing.assert_array_equal(sc2.mean, sc.mean)
    assert sc2.mode == "per_channel" and sc2.state_dict() == sc.state_dict()
    with pytest.raises(DataError, match=r"N=3 series cannot scale an array of shape \(4, 5\)"):
        sc.transform(np.zeros((4, 5)))


@pytest.mark.parametrize("mode", ["global", "per_channel"])
def test_scaler_reading_several_chunks_matches_numpy(mode: str) -> None:
    # PEMS07-sized training rows are read in several chunks; a trend moves the later chunks'
    # mean away from the first chunk's (the shift the sums are taken around), which every test
    # whose data fits one chunk cannot see
    t, n = 6000, 300
    assert t * n > scaler_module._CHUNK_ROWS_ELEMS  # two chunks at least
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 50.0, t)[:, None] + rng.normal(100.0, 2.0, size=(t, n))
    x[rng.random(x.shape) < 0.01] = 0.0  # null readings, skipped
    sc = StandardScaler(mode=mode).fit(x, null_value=0.0)
    valid = np.ma.masked_equal(x, 0.0)
    axis = None if mode == "global" else 0
    np.testing.assert_allclose(sc.mean, valid.mean(axis=axis), rtol=1e-10)
    np.testing.assert_allclose(sc.std, valid.std(axis=axis), rtol=1e-8)


def test_scaler_is_the_same_whatever_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.normal(size=(400, 5)), axis=0) + 30.0  # random walks: chunk means differ
    x[rng.random(x.shape) < 0.05] = np.nan
    one = StandardScaler(mode="per_channel").fit(x, null_value=float("nan"))
    monkeypatch.setattr(scaler_module, "_CHUNK_ROWS_ELEMS", 7 * 5)  # 7 rows a chunk
    many = StandardScaler(mode="per_channel").fit(x, null_value=float("nan"))
    np.testing.assert_allclose(many.mean, one.mean, rtol=1e-12)
    np.testing.assert_allclose(many.std, one.std, rtol=1e-10)
    np.testing.assert_allclose(many.std, np.nanstd(x, axis=0), rtol=1e-10)


# ----------------------------------------------------------------------------- windows
def test_window_layout_matches_staeformer() -> None:
    ds = synthetic_traffic(num_nodes=6, days=3, seed=3)
    prep = get_protocol("pems-staeformer").prepare(ds)
    assert prep.input_channels == 3
    i = 123
    x, y = prep.val[i]
    s = int(prep.val.starts[i])
    assert x.shape == (12, 6, 3) and y.shape == (12, 6, 1)
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    raw = ds.values[:, :, 0]
    np.testing.assert_allclose(
        x[..., 0].numpy(),
        (raw[s : s + 12] - prep.scaler.mean) / prep.scaler.std,
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_array_equal(y[..., 0].numpy(), raw[s + 12 : s + 24])  # raw targets
    tod = (np.arange(s, s + 12) % 288) / 288
    np.testing.assert_allclose(x[:, 0, 1].numpy(), tod, atol=1e-6)
    assert (x[:, :, 1] == x[:, :1, 1]).all()  # same for every node
    assert (x[..., 1] >= 0).all() and (x[..., 1] < 1).all()
    # synthetic starts on Monday 2024-01-01: day index = weekday
    np.testing.assert_array_equal(x[:, 0, 2].numpy(), (np.arange(s, s + 12) // 288) % 7)


def test_scaled_metrics_space_scales_targets(shared_data: Path) -> None:
    ds = read_ltsf_csv(shared_data / "ETT" / "ETTh1.csv")
    prep = get_protocol("ett").prepare(ds)
    assert prep.input_channels == 1
    x, y = prep.test[0]
    assert x.shape == (96, 7, 1)
    s = int(prep.test.starts[0])
    expect = (ds.values[s + 96 : s + 192, :, 0] - prep.scaler.mean) / prep.scaler.std
    np.testing.assert_allclose(y[..., 0].numpy(), expect, rtol=1e-4, atol=1e-4)
    train = ds.values[:8640, :, 0]
    np.testing.assert_allclose(prep.scaler.mean, train.mean(0), rtol=1e-5)


def test_windows_hold_no_sample_array() -> None:
    ds = synthetic_traffic(num_nodes=8, days=4, seed=0)
    prep = get_protocol("pems").prepare(ds)
    w = prep.train
    assert w.values is ds.values  # the array itself, not a copy of the windows
    big = [
        k
        for k, v in vars(w).items()
        if isinstance(v, np.ndarray) and v.ndim >= 2 and v is not ds.values
    ]
    assert big == []
    assert w.starts.shape == (len(w),)
    loader = prep.dataloaders(batch_size=32, seed=0)
    xb, yb = next(iter(loader["train"]))
    assert xb.shape == (32, 12, 8, 3) and yb.shape == (32, 12, 8, 1)
    xb2, _ = next(iter(prep.dataloaders(batch_size=32, seed=0)["train"]))
    torch.testing.assert_close(xb, xb2)  # seeded shuffle


def test_window_dataset_rejects_out_of_range_starts() -> None:
    with pytest.raises(
        DataError, match=r"starts 0\.\.90 with 12\+12 steps do not fit in T=100 rows"
    ):
        WindowDataset(np.zeros((100, 2, 1), np.float32), np.array([0, 90]), 12, 12)


def test_end_to_end_persistence_through_the_evaluator() -> None:
    """Loader -> to_target_space -> evaluator equals a direct masked computation."""
    ds = synthetic_traffic(num_nodes=6, days=4, seed=5, channels=1)
    # "keep": the null readings reach the input as values, so the last input is raw[s + 11]
    prep = get_protocol("pems", input_fill="keep").prepare(ds)
    ev = prep.evaluator()
    assert ev.horizons == (3, 6, 12) and ev.null_value == 0.0
    for x, y in prep.dataloaders(batch_size=64)["test"]:
        last = x[:, -1:, :, :1].expand(-1, 12, -1, -1)  # scaled last value, [B, 12, N, 1]
        ev.update(prep.to_target_space(last), y)
    starts = prep.test.starts
    raw = ds.values[:, :, 0].astype(np.float64)
    pred = np.stack([np.repeat(raw[s + 11][None], 12, 0) for s in starts])
    true = np.stack([raw[s + 12 : s + 24] for s in starts])
    m = true != 0
    assert ev.compute()["overall"]["MAE"] == pytest.approx(np.abs(pred - true)[m].mean(), rel=1e-5)
    # scaled protocols leave predictions alone
    ett = get_protocol("ltsf", in_steps=24, out_steps=12).prepare(ds)
    z = torch.randn(2, 12, 6, 1)
    assert ett.to_target_space(z) is z


# ------------------------------------------- windows, loaders, options (found by make mutate)
ROWS, NODES = 40, 3


def _values() -> np.ndarray:
    return np.arange(ROWS * NODES * 2, dtype=np.float32).reshape(ROWS, NODES, 2)


def test_defaults_read_channel_0_unscaled_targets_and_int64_starts() -> None:
    v = _values()
    scaler = StandardScaler(mean=10.0, std=2.0)
    ds = WindowDataset(v, [0, 7], 4, 3, scaler=scaler)  # starts as a list
    assert ds.starts.dtype == np.int64 and ds.input_channels == 1
    x, y = ds[1]
    assert x.dtype == y.dtype == torch.float32
    np.testing.assert_array_equal(x[..., 0].numpy(), (v[7:11, :, 0] - 10.0) / 2.0)
    np.testing.assert_array_equal(y[..., 0].numpy(), v[11:14, :, 0])  # targets stay raw
    for i in (-1, -2):  # negative indices count from the end, as for a list
        for a, b in zip(ds[i], ds[len(ds) + i], strict=True):
            assert torch.equal(a, b)


def test_scale_target_and_other_channel_and_time_features() -> None:
    v = _values()
    scaler = StandardScaler(mean=10.0, std=2.0)
    tod = np.linspace(0, 1, ROWS, endpoint=False)  # float64 in, float32 kept
    dow = np.arange(ROWS) % 7
    ds = WindowDataset(
        v, np.array([5]), 4, 3, scaler=scaler, target_channel=1, time_of_day=tod,
        day_of_week=dow, scale_target=True,
    )  # fmt: skip
    assert ds.time_of_day is not None and ds.time_of_day.dtype == np.float32
    assert ds.day_of_week is not None and ds.day_of_week.dtype == np.float32
    x, y = ds[0]
    assert x.shape == (4, NODES, 3)
    np.testing.assert_array_equal(x[..., 0].numpy(), (v[5:9, :, 1] - 10.0) / 2.0)
    np.testing.assert_array_equal(y[..., 0].numpy(), (v[9:12, :, 1] - 10.0) / 2.0)
    np.testing.assert_allclose(x[:, 0, 1].numpy(), tod[5:9], rtol=1e-6)
    np.testing.assert_array_equal(x[:, 2, 2].numpy(), dow[5:9])


def test_bad_channel_or_time_feature_length_is_a_sentence() -> None:
    v = _values()
    with pytest.raises(DataError, match="target channel 2 out of range for F=2"):
        WindowDataset(v, [0], 4, 3, target_channel=2)
    with pytest.raises(DataError, match=r"expected time_of_day of shape \(40,\)"):
        WindowDataset(v, [0], 4, 3, time_of_day=np.zeros(ROWS - 1))
    with pytest.raises(DataError, match=r"expected day_of_week of shape \(40,\), found \(2,\)"):
        WindowDataset(v, [0], 4, 3, day_of_week=np.zeros(2))


@pytest.fixture(scope="module")
def small_prep() -> Any:
    return get_protocol("pems").prepare(synthetic_traffic(num_nodes=3, days=2, seed=0))


def _first_batch_x(loader: Any) -> torch.Tensor:
    return next(iter(loader))[0]


def test_loader_defaults_and_flags(small_prep: Any) -> None:
    loaders = small_prep.dataloaders()
    train, val, test = loaders["train"], loaders["val"], loaders["test"]
    assert train.batch_size == val.batch_size == 16
    assert isinstance(train.sampler, RandomSampler)
    assert isinstance(val.sampler, SequentialSampler) and isinstance(
        test.sampler, SequentialSampler
    )
    assert train.num_workers == 0 and not train.drop_last and not val.drop_last
    assert val.generator is None and test.generator is None
    torch.testing.assert_close(
        _first_batch_x(val), torch.stack([small_prep.val[i][0] for i in range(16)])
    )
    # the default seed is 0
    torch.testing.assert_close(
        _first_batch_x(train), _first_batch_x(small_prep.dataloaders(seed=0)["train"])
    )
    assert not torch.equal(
        _first_batch_x(train), _first_batch_x(small_prep.dataloaders(seed=1)["train"])
    )
    flags = small_prep.dataloaders(batch_size=5, shuffle_train=False, drop_last=True, num_workers=0)
    assert isinstance(flags["train"].sampler, SequentialSampler)
    assert flags["train"].drop_last and not flags["val"].drop_last and not flags["test"].drop_last
    assert isinstance(flags["val"].sampler, SequentialSampler)


def test_iterating_validation_leaves_the_training_shuffle_alone(small_prep: Any) -> None:
    # validation between two epochs must not draw from the training generator
    a, b = small_prep.dataloaders(seed=3), small_prep.dataloaders(seed=3)
    for _ in a["train"]:
        pass
    for _ in b["train"]:
        pass
    for _ in b["val"]:
        pass
    torch.testing.assert_close(_first_batch_x(a["train"]), _first_batch_x(b["train"]))


def test_evaluator_and_summary_follow_the_protocol(small_prep: Any) -> None:
    ev = small_prep.evaluator()
    assert ev.horizons == small_prep.protocol.horizons and ev.null_value == 0.0
    nan_prep = get_protocol("pems", null_value=float("nan"), horizons=(1, 2)).prepare(
        synthetic_traffic(num_nodes=3, days=2, seed=0)
    )
    ev = nan_prep.evaluator()
    assert ev.horizons == (1, 2) and math.isnan(ev.null_value)
    c = small_prep.counts
    shape = list(small_prep.dataset.shape)
    assert small_prep.summary().startswith(f"synthetic {shape} under pems[basicts,12->12]")
    assert f"train {c['train']}, val {c['val']}, test {c['test']} windows" in small_prep.summary()


@pytest.mark.parametrize(
    "bad",
    [
        {"in_steps": 0}, {"out_steps": 0}, {"stride": 0}, {"split_ratios": (0.5, 0.5)},
        {"split_ratios": (1.2, -0.1, -0.1)}, {"split_ratios": (0.6, 0.2, 0.21)},
        {"split_mode": "staeformer", "split_months": (12, 4, 4)},
    ],
)  # fmt: skip
def test_protocol_options_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="protocol 'pems'"):
        get_protocol("pems", **bad)


def test_protocol_limits_that_are_allowed() -> None:
    p = get_protocol("pems", in_steps=1, out_steps=1, split_ratios=(0.8, 0.0, 0.2 + 5e-7))
    assert p.counts(10)["val"] == 0
    # exactly the 20 months of the ETT split is enough
    assert get_protocol("ett").counts(14400, 24)["test"] == 2880 - 96 + 1  # lookback borrowed


def test_staeformer_split_rows_are_the_rows_each_part_covers() -> None:
    p = get_protocol("pems-staeformer")
    # windows 0..10699 train, 10700..14266 val, 14267..17832 test, each 24 rows long
    assert p.split_rows(17856) == {
        "train": (0, 10699 + 24),
        "val": (10700, 14266 + 24),
        "test": (14267, 17856),
    }
    empty = get_protocol("pems", split_mode="staeformer", split_ratios=(0.5, 0.0, 0.5))
    assert empty.split_rows(100)["val"] == (0, 0)


def test_month_split_prepared_without_a_data_file() -> None:
    # the ETTh1 tests above need ../shared/data; this ETT-shaped series runs on every checkout
    rng = np.random.default_rng(0)
    t = 14400 + 20
    values = (rng.normal(size=(t, 2, 2)).cumsum(0) + 10).astype(np.float32)
    values[:50, :, 1] = 0.0  # real zeros: the null is NaN here, so they count
    ds = TimeSeriesDataset(values=values, name="ett-like", steps_per_day=24, null_value=math.nan)
    prep = get_protocol("ett", target_channel=1).prepare(ds)
    assert prep.dataset is ds and math.isnan(prep.null_value)
    assert prep.counts == {"train": 8640 - 192 + 1, "val": 2785, "test": 2785}
    assert prep.split_rows == {"train": (0, 8640), "val": (8640, 11520), "test": (11520, 14400)}
    train = values[:8640, :, 1].astype(np.float64)
    np.testing.assert_allclose(prep.scaler.mean, train.mean(0), rtol=1e-9)
    np.testing.assert_allclose(prep.scaler.std, train.std(0), rtol=1e-9)
    x, y = prep.test[0]
    s = int(prep.test.starts[0])
    assert s == 11520 - 96
    scaled = (values[:, :, 1] - prep.scaler.mean) / prep.scaler.std
    np.testing.assert_allclose(x[..., 0].numpy(), scaled[s : s + 96], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y[..., 0].numpy(), scaled[s + 96 : s + 192], rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match="forecasts channel 2, but the data has F=2"):
        get_protocol("ett", target_channel=2).prepare(ds)
    with pytest.raises(DataError, match=r"long enough .* val 2880 rows"):
        get_protocol("ett", out_steps=3000).prepare(ds)


def test_null_value_comes_from_the_protocol_unless_it_has_none() -> None:
    values = np.random.default_rng(1).uniform(1, 2, size=(120, 2, 1)).astype(np.float32)
    ds = TimeSeriesDataset(values=values, name="toy", steps_per_day=288, null_value=math.nan)
    # 120 rows: 72/24/24, one 24-row window in val and in test is enough
    prep = get_protocol("pems").prepare(ds)
    assert prep.counts == {"train": 49, "val": 1, "test": 1} and prep.null_value == 0.0
    assert math.isnan(get_protocol("pems", null_value=None).prepare(ds).null_value)
    # the scaler skips the protocol's null: with a NaN null, zeros are readings and count
    values[:10, 0, 0] = 0.0
    kept = get_protocol("pems", null_value=math.nan).prepare(ds).scaler
    assert float(kept.mean) == pytest.approx(float(values[:72, :, 0].astype(np.float64).mean()))


def test_get_protocol_returns_presets_and_protocols_as_given() -> None:
    assert get_protocol("PEMS") is PROTOCOLS["pems"]
    p = get_protocol("metr", in_steps=24)
    assert get_protocol(p) is p
    assert get_protocol(p, out_steps=3) == p.replace(out_steps=3)
    empty_train = get_protocol("pems", split_mode="staeformer", split_ratios=(0.0, 0.5, 0.5))
    assert empty_train.scaler_rows(100) == (0, 0)


def test_valid_mask_tolerance_and_nan() -> None:
    from linearcast.data.scaler import valid_mask

    x = np.array([0.0, 4e-5, 6e-5, np.nan, 5.00008, 5.0, 5.00004])
    assert valid_mask(x, 0.0).tolist() == [False, False, True, False, True, True, True]
    assert valid_mask(x, 5.0).tolist() == [True, True, True, False, True, False, False]
    assert valid_mask(x, math.nan).tolist() == [True, True, True, False, True, True, True]


def test_scaler_defaults_dtypes_repr_and_old_states() -> None:
    x = np.array([[1.5, -2.0]], dtype=np.float32)
    plain = StandardScaler()
    np.testing.assert_array_equal(plain.transform(x), x)  # mean 0, std 1, global
    assert plain.mode == "global" and repr(plain) == "StandardScaler(global, mean=0, std=1)"
    sc = StandardScaler(mean=np.float32(0.1), std=np.float32(3.0))
    assert sc.mean.dtype == sc.std.dtype == np.float64
    per = StandardScaler(mean=np.array([1.0, 2.0]), std=np.array([2.0, 4.0]), mode="per_channel")
    assert repr(per) == "StandardScaler(per_channel, N=2)"
    state = per.state_dict()
    assert state["fitted"] is False and StandardScaler.from_state_dict(state).fitted is False
    del state["fitted"]  # states written before the flag existed were fitted ones
    assert StandardScaler.from_state_dict(state).fitted is True


def test_scaler_shapes_devices_and_numpy_inverse() -> None:
    sc = StandardScaler(mean=np.array([1.0, 2.0, 3.0]), std=np.array([2.0, 4.0, 8.0]))
    sc.mode = "per_channel"
    btn = np.ones((2, 5, 3))  # [B, T, N] with T != N
    np.testing.assert_allclose(sc.transform(btn)[1, 4], [0.0, -0.25, -0.25])
    col = np.full((3, 1), 5.0)  # [N, 1]
    np.testing.assert_allclose(sc.transform(col)[:, 0], [2.0, 0.75, 0.25])
    tn1 = np.full((4, 3, 1), 5.0)  # [T, N, 1]
    np.testing.assert_allclose(sc.transform(tn1)[3, :, 0], [2.0, 0.75, 0.25])
    with pytest.raises(DataError, match=r"cannot scale an array of shape \(3, 5\)"):
        sc.transform(np.zeros((3, 5)))
    back = sc.inverse_transform(np.array([[1.0, 1.0, 1.0]]))  # numpy: x·std + mean
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, [[3.0, 6.0, 11.0]])
    assert sc.inverse_transform(np.array([[1, 1, 1]])).dtype == np.float32  # ints become float32
    meta = torch.zeros(2, 3, device="meta")  # the scaler's tensors follow x's device
    assert sc.transform(meta).device.type == sc.inverse_transform(meta).device.type == "meta"


def test_scaler_fit_takes_t_n_1_and_refuses_other_channels() -> None:
    x = np.random.default_rng(4).normal(3.0, 2.0, size=(30, 4))
    flat = StandardScaler(mode="per_channel").fit(x, null_value=math.nan)
    col = StandardScaler(mode="per_channel").fit(x[:, :, None], null_value=math.nan)
    np.testing.assert_array_equal(col.mean, flat.mean)
    np.testing.assert_array_equal(col.std, flat.std)
    with pytest.raises(DataError, match=r"expected \[T, N\] rows .* found \(30, 4, 2\)"):
        StandardScaler().fit(np.stack([x, x], axis=-1))
    # the default null is 0: zeros are skipped, ones are readings
    ones = np.array([[0.0, 1.0], [1.0, 3.0]])
    assert float(StandardScaler().fit(ones).mean) == pytest.approx(5 / 3)


@pytest.mark.parametrize("mode", ["global", "per_channel"])
def test_scaler_stays_accurate_far_from_zero(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # sums are taken around the first chunk's mean; around a poor shift, var = E[d²] - m²
    # cancels catastrophically for a series at 1e8 with unit spread
    n = 4
    x = 1e8 + np.random.default_rng(3).normal(size=(50, n))
    monkeypatch.setattr(scaler_module, "_CHUNK_ROWS_ELEMS", n)  # one row a chunk
    sc = StandardScaler(mode=mode).fit(x, null_value=math.nan)
    axis = None if mode == "global" else 0
    np.testing.assert_allclose(sc.mean, x.mean(axis=axis), rtol=1e-12)
    np.testing.assert_allclose(sc.std, x.std(axis=axis), rtol=1e-6)


def test_parts_too_short_for_a_window_have_none() -> None:
    # 30 rows under pems: train 18, val 6, test 6 rows -- none holds a 24-row window
    assert get_protocol("pems").counts(30) == {"train": 0, "val": 0, "test": 0}
    assert get_protocol("pems-staeformer").counts(20) == {"train": 0, "val": 0, "test": 0}
    strided = get_protocol("pems-staeformer", stride=2).window_starts(100)
    assert np.diff(np.concatenate(list(strided.values()))).tolist() == [2] * 38


def test_loaders_pass_num_workers_on(small_prep: Any) -> None:
    loaders = small_prep.dataloaders(num_workers=1)  # not iterated: no process is started
    assert [loaders[k].num_workers for k in ("train", "val", "test")] == [1, 1, 1]


def test_scaler_numpy_dtypes_constant_series_and_error_source() -> None:
    sc = StandardScaler(mean=2.0, std=4.0)
    for dtype in (np.float16, np.float32, np.float64):  # floats keep their precision
        x = np.array([[6.0, 10.0]], dtype=dtype)
        assert sc.transform(x).dtype == dtype and sc.inverse_transform(x).dtype == dtype
    assert sc.transform(np.array([[6, 10]])).dtype == np.float32  # integers become float32
    np.testing.assert_array_equal(sc.transform(np.array([[6, 10]])), [[1.0, 2.0]])
    # a constant series has std 0, which becomes 1 (scaled values 0, not NaN)
    x = np.stack([np.full(20, 7.0), np.arange(20.0)], axis=1)
    fitted = StandardScaler(mode="per_channel").fit(x, null_value=math.nan)
    np.testing.assert_array_equal(fitted.mean, [7.0, 9.5])
    np.testing.assert_allclose(fitted.std, [1.0, np.arange(20.0).std()])
    with pytest.raises(DataError, match=r"^training data: expected valid"):
        StandardScaler().fit(np.zeros((5, 2)))  # every entry is the null 0


@pytest.mark.parametrize(("mode", "empty", "series"), [("per_channel", 2, 3), ("global", 1, 1)])
def test_scaler_error_counts_the_series_without_a_valid_value(
    mode: str, empty: int, series: int
) -> None:
    x = np.zeros((40, 3))
    x[:, 1] = np.arange(1.0, 41.0)  # one series with values, two all null
    if mode == "global":
        x[:, 1] = 0.0
    with pytest.raises(DataError, match=rf"found none for {empty} of {series} series"):
        StandardScaler(mode=mode).fit(x, null_value=0.0, source="flows.npz")


def test_a_fitted_scaler_says_so_in_its_state() -> None:
    assert StandardScaler().state_dict()["fitted"] is False
    sc = StandardScaler().fit(np.arange(1.0, 11.0)[:, None], null_value=0.0)
    assert sc.fitted is True and sc.state_dict()["fitted"] is True
    assert StandardScaler.from_state_dict(sc.state_dict()).fitted is True
