"""The synthetic default: deterministic, PEMS-like, and learnable beyond persistence."""

from __future__ import annotations

import numpy as np
import pytest

from linearcast.data import get_protocol, synthetic_traffic
from linearcast.errors import ConfigError


def test_deterministic_and_seed_dependent() -> None:
    a = synthetic_traffic(num_nodes=16, days=3, seed=7)
    b = synthetic_traffic(num_nodes=16, days=3, seed=7)
    c = synthetic_traffic(num_nodes=16, days=3, seed=8)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.adjacency, b.adjacency)
    assert not np.array_equal(a.values, c.values)


def test_pems_layout_and_ranges() -> None:
    ds = synthetic_traffic()  # defaults: 64 nodes, 14 days, 288 steps/day
    assert ds.shape == (14 * 288, 64, 3) and ds.values.dtype == np.float32
    assert ds.channel_names == ["flow", "occupancy", "speed"]
    assert ds.meta["synthetic"] is True and ds.null_value == 0.0
    assert ds.freq_minutes == 5 and ds.start is not None and ds.start.day_of_week == 0
    flow = ds.values[..., 0]
    ok = flow > 0
    assert 50 < np.median(flow[ok]) < 300  # tens to hundreds of vehicles per 5 minutes
    assert flow.max() < 2000
    occ = ds.values[..., 1]
    assert occ.min() >= 0 and occ.max() <= 1
    # missing readings: zeros on every channel at the same places, about missing_rate of them
    zero = flow == 0
    assert (ds.values[zero] == 0).all()
    assert 0.01 < zero.mean() < 0.03
    assert synthetic_traffic(num_nodes=8, days=2, missing_rate=0.0).values.min() > 0


def test_graph_is_road_like() -> None:
    ds = synthetic_traffic(num_nodes=40, days=1, seed=2)
    a = ds.adjacency
    assert a is not None and a.shape == (40, 40)
    np.testing.assert_array_equal(a, a.T)
    assert a.min() >= 0 and a.max() <= 1 and np.diag(a).sum() == 0
    deg = (a > 0).sum(1)
    assert deg.min() >= 1 and deg.mean() < 6  # sparse, no isolated sensor
    # connected: breadth-first search reaches every node
    seen, frontier = {0}, [0]
    while frontier:
        nxt = [j for i in frontier for j in np.flatnonzero(a[i]) if j not in seen]
        seen.update(nxt)
        frontier = list(set(nxt))
    assert len(seen) == 40


def test_daily_and_weekly_cycles() -> None:
    ds = synthetic_traffic(num_nodes=20, days=14, seed=0, missing_rate=0.0, channels=1)
    assert ds.shape[2] == 1
    flow = ds.values[..., 0].reshape(14, 288, 20)  # day, step, node
    weekday = flow[:5].mean(axis=(0, 2))
    night, morning = weekday[3 * 12], weekday[8 * 12]  # 03:00 vs 08:00
    assert morning > 2.5 * night
    weekend_peak = flow[5:7, 7 * 12 : 9 * 12].mean()
    weekday_peak = flow[0:5, 7 * 12 : 9 * 12].mean()
    assert weekend_peak < 0.8 * weekday_peak


def test_learnable_beyond_persistence() -> None:
    """A linear model on time-of-day profile + neighbours beats last-value persistence at h=12."""
    ds = synthetic_traffic(num_nodes=24, days=14, seed=0, channels=1)
    x = ds.values[..., 0].astype(np.float64)
    t, n = x.shape
    h, spd = 12, 288
    train = get_protocol("pems").split_rows(t)["train"][1]
    tod = np.arange(t) % spd
    weekend = ((np.arange(t) // spd) % 7 >= 5).astype(int)
    prof = np.zeros((2, spd, n))
    days = x[: train // spd * spd].reshape(-1, spd, n)
    day_is_weekend = weekend[: train // spd * spd : spd]
    for w in (0, 1):
        rows = days[day_is_weekend == w]
        m = rows > 0
        prof[w] = (rows * m).sum(0) / np.maximum(m.sum(0), 1)
    a = ds.adjacency
    assert a is not None
    p = a / a.sum(1, keepdims=True)

    def features(t0: np.ndarray) -> np.ndarray:
        now = x[t0]  # (S, N)
        dev = now - prof[weekend[t0], tod[t0]]
        fut = prof[weekend[t0 + h], tod[t0 + h]]
        cols = [now, fut, dev, dev @ p.T, np.ones_like(now)]
        return np.stack(cols, -1).reshape(-1, len(cols))

    tr = np.arange(0, train - h, 2)
    te = np.arange(train, t - h)
    xtr, ytr = features(tr), x[tr + h].ravel()
    keep = (ytr > 0) & (x[tr].ravel() > 0)
    w_ = np.linalg.lstsq(xtr[keep], ytr[keep], rcond=None)[0]
    yte = x[te + h].ravel()
    valid = yte > 0
    model_mae = np.abs(features(te) @ w_ - yte)[valid].mean()
    persistence_mae = np.abs(x[te].ravel() - yte)[valid].mean()
    assert model_mae < 0.7 * persistence_mae


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="channels must be 1 or 3, found 2"):
        synthetic_traffic(channels=2)
    with pytest.raises(ConfigError, match=r"missing_rate must be in \[0, 1\), found 1.5"):
        synthetic_traffic(missing_rate=1.5)
