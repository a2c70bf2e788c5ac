"""A synthetic, deterministic traffic-like dataset in the PEMS layout (no download needed).

**The data is synthetic.** It imitates the structure of PEMS loop-detector data so that a first
run trains and evaluates end to end; numbers on it say nothing about real traffic.

How it is made (all from one ``numpy`` generator seeded by ``seed``):

- *graph*: sensors at random points of the unit square joined like a road network -- a minimum
  spanning tree (connected) plus each sensor's 2 nearest neighbours; symmetric weights
  ``exp(-d²/σ²)`` (σ the mean edge length) in ``(0, 1]``, no self loops;
- *daily and weekly cycles*: a night trough, a morning rush hour (~08:00) and an evening one
  (~17:30) whose sizes vary per sensor (commuter direction); weekends are lower, flatter and
  peak around midday;
- *diffusion between neighbours*: a congestion field ``z`` follows
  ``z_t = ρ·P·z_{t-1} + ε_t`` (``P`` the row-normalised adjacency), so a sensor's disturbance
  reaches its neighbours a few steps later; flow is multiplied by ``exp(-0.35·z)``;
- *noise*: multiplicative Gaussian noise on every reading;
- *missing readings*: a fraction ``missing_rate`` of readings are 0 (isolated drops and short
  sensor outages), as in PEMS, to be masked by the metrics (null value 0).

Channels (like PEMS04/08): flow (vehicles per 5 minutes, tens to hundreds), occupancy (fraction
0..1) and speed (mph), or flow only with ``channels=1``. Start: Monday 2024-01-01 00:00.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linearcast.data.dataset import TimeSeriesDataset
from linearcast.errors import ConfigError


def _road_graph(rng: np.random.Generator, n: int) -> np.ndarray:
    """MST + 2-nearest-neighbour graph on random points; Gaussian-kernel weights ``[N, N]``."""
    pts = rng.random((n, 2))
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))  # (N, N)
    edge = np.zeros((n, n), dtype=bool)
    # Prim's MST keeps the network connected
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()
    parent = np.zeros(n, dtype=np.int64)
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        j = int(np.argmin(cand))
        edge[j, parent[j]] = edge[parent[j], j] = True
        in_tree[j] = True
        closer = d[j] < best
        best = np.where(closer, d[j], best)
        parent = np.where(closer, j, parent)
    k = min(2, n - 1)
    if k > 0:
        nn = np.argsort(d + np.eye(n) * 1e9, axis=1)[:, :k]
        rows = np.repeat(np.arange(n), k)
        edge[rows, nn.ravel()] = True
        edge[nn.ravel(), rows] = True
    np.fill_diagonal(edge, False)
    sigma = float(d[edge].mean()) if edge.any() else 1.0
    sigma = sigma if sigma > 0 else 1.0
    w = np.where(edge, np.exp(-((d / sigma) ** 2)), 0.0)
    return w.astype(np.float32)


def _daily_profile(
    hours: np.ndarray, morning: np.ndarray, evening: np.ndarray, weekend: np.ndarray
) -> np.ndarray:
    """Relative demand ``[T, N]`` from hour of day ``[T, 1]`` and per-node peak sizes ``[1, N]``."""
    base = 0.18 + 0.55 * np.clip(np.sin(np.pi * (hours - 5.0) / 19.0), 0.0, None) ** 1.5
    rush = morning * np.exp(-0.5 * ((hours - 8.0) / 1.0) ** 2) + evening * np.exp(
        -0.5 * ((hours - 17.5) / 1.3) ** 2
    )
    midday = 0.45 * np.exp(-0.5 * ((hours - 13.0) / 2.5) ** 2)
    weekday_shape = base + rush
    weekend_shape = 0.75 * base + midday
    return np.where(weekend, weekend_shape, weekday_shape)


def _check_args(
    num_nodes: int, days: int, steps_per_day: int, channels: int, missing_rate: float
) -> None:
    if num_nodes < 2 or days < 1 or steps_per_day < 1:
        raise ConfigError(
            f"synthetic_traffic: expected num_nodes >= 2, days >= 1, steps_per_day >= 1, found "
            f"{num_nodes}, {days}, {steps_per_day}."
        )
    if channels not in (1, 3):
        raise ConfigError(f"synthetic_traffic: channels must be 1 or 3, found {channels}.")
    if not 0.0 <= missing_rate < 1.0:
        raise ConfigError(
            f"synthetic_traffic: missing_rate must be in [0, 1), found {missing_rate}."
        )


def _congestion_field(
    rng: np.random.Generator, adj: np.ndarray, t: int, steps_per_day: int
) -> np.ndarray:
    """A congestion field ``[T, N]`` diffusing over the graph ``adj: [N, N]``: AR(1) noise
    mixed with the neighbours' state, plus bursty incidents that spread to neighbours."""
    n = adj.shape[0]
    deg = adj.sum(1, keepdims=True)
    trans = (adj / np.where(deg > 0, deg, 1.0)).astype(np.float64)  # (N, N) row-normalised
    rho, mix = 0.97, 0.6
    eps = rng.normal(0.0, 0.12, size=(t, n))
    # bursty incidents: rare large shocks that spread to neighbours
    shocks = rng.random((t, n)) < 2.0 / steps_per_day
    eps += shocks * rng.uniform(0.8, 1.6, size=(t, n))
    z = np.zeros((t, n))
    prev = np.zeros(n)
    for i in range(t):
        prev = rho * ((1.0 - mix) * prev + mix * (trans @ prev)) + eps[i]
        z[i] = prev
    return z


def _missing_mask(rng: np.random.Generator, t: int, n: int, missing_rate: float) -> np.ndarray:
    """Missing readings ``[T, N]`` bool: half isolated, half outages of 6..36 steps."""
    missing = rng.random((t, n)) < missing_rate / 2
    n_out = round(missing_rate / 2 * t * n / 21.0)
    for _ in range(n_out):
        node = int(rng.integers(n))
        a = int(rng.integers(t))
        missing[a : a + int(rng.integers(6, 37)), node] = True
    return missing


def _channels(
    rng: np.random.Generator,
    flow: np.ndarray,
    z: np.ndarray,
    capacity: np.ndarray,
    noise: float,
    channels: int,
) -> tuple[np.ndarray, list[str]]:
    """``values: [T, N, channels]`` and their names from the flow ``[T, N]``: occupancy from
    flow over capacity (``[1, N]``) and congestion ``z``, speed from occupancy."""
    if channels == 1:
        return flow[:, :, None], ["flow"]
    n = flow.shape[1]
    occ = np.clip(flow / capacity * 0.12 * (1.0 + 0.6 * np.clip(z, 0.0, None)), 0.0, 1.0)
    free = rng.uniform(62.0, 70.0, size=(1, n))
    speed = free * (1.0 - 0.65 / (1.0 + np.exp(-(occ - 0.18) / 0.04)))
    speed *= 1.0 + 0.5 * noise * rng.standard_normal(flow.shape)
    values = np.stack([flow, occ, np.clip(speed, 3.0, None)], axis=-1)
    return values, ["flow", "occupancy", "speed"]


def synthetic_traffic(
    num_nodes: int = 64,
    days: int = 14,
    steps_per_day: int = 288,
    seed: int = 0,
    missing_rate: float = 0.02,
    channels: int = 3,
    noise: float = 0.06,
    start: str = "2024-01-01",
) -> TimeSeriesDataset:
    """Generate synthetic PEMS-like traffic (see the module docstring; **synthetic data**).

    Args:
        num_nodes: N sensors.
        days: number of days (T = days · steps_per_day).
        steps_per_day: 288 for 5-minute steps.
        seed: everything is a deterministic function of the arguments.
        missing_rate: fraction of readings set to 0 (the null value).
        channels: 3 (flow, occupancy, speed) or 1 (flow).
        noise: relative std of the multiplicative reading noise.
        start: date of the first step (a Monday by default).

    Returns:
        A :class:`TimeSeriesDataset` with ``values [T, N, channels]`` float32, a symmetric
        adjacency ``[N, N]`` with weights in ``(0, 1]``, null value 0 and
        ``meta["synthetic"] = True``.
    """
    _check_args(num_nodes, days, steps_per_day, channels, missing_rate)
    rng = np.random.default_rng(seed)
    n, t = num_nodes, days * steps_per_day
    adj = _road_graph(rng, n)

    # per-sensor character
    level = rng.lognormal(mean=np.log(220.0), sigma=0.35, size=(1, n))  # veh / 5 min at peak-ish
    morning = rng.uniform(0.2, 0.9, size=(1, n))
    evening = 1.1 - morning + rng.uniform(-0.1, 0.1, size=(1, n))
    capacity = level * rng.uniform(1.3, 1.8, size=(1, n))

    step = np.arange(t)
    start_ts = pd.Timestamp(start)
    hours = ((step % steps_per_day) * 24.0 / steps_per_day + start_ts.hour)[:, None]  # (T, 1)
    weekday = (start_ts.day_of_week + step // steps_per_day) % 7
    weekend = (weekday >= 5)[:, None]
    profile = _daily_profile(hours, morning, evening, weekend)  # (T, N)

    z = _congestion_field(rng, adj, t, steps_per_day)  # (T, N)
    congestion = np.exp(-0.35 * np.clip(z, -3.0, 6.0))

    flow = level * profile * congestion
    flow *= 1.0 + noise * rng.standard_normal((t, n))
    flow = np.clip(flow, 1.0, None)

    missing = _missing_mask(rng, t, n, missing_rate)  # (T, N)

    values, names = _channels(rng, flow, z, capacity, noise, channels)  # (T, N, C)
    values = values.astype(np.float32)
    values[missing] = 0.0
    return TimeSeriesDataset(
        values=values,
        name="synthetic",
        path=None,
        freq_minutes=1440 // steps_per_day if 1440 % steps_per_day == 0 else None,
        steps_per_day=steps_per_day,
        start=start_ts,
        adjacency=adj,
        node_names=[f"S{i:04d}" for i in range(n)],
        channel_names=names,
        null_value=0.0,
        meta={
            "format": "synthetic",
            "synthetic": True,
            "seed": seed,
            "missing_rate": float(missing.mean()),
        },
    )
