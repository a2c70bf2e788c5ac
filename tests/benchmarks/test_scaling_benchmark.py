"""The scaling benchmark's memory extrapolation: what it refuses to start, and why."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def scaling(bench_module):  # type: ignore[no-untyped-def]
    return bench_module("staeformer_scaling")


def _rec(label: str, n: int, gib: float) -> dict[str, object]:
    return {"label": label, "n": n, "per_window_bytes_probe": gib * 2**30}


def test_slope_recovers_a_power_law(scaling) -> None:  # type: ignore[no-untyped-def]
    assert scaling.slope([(n, 3.0 * n**2) for n in (100, 200, 400)]) == pytest.approx(2.0)
    assert scaling.slope([(100, 1.0)]) is None


def test_prediction_follows_the_fitted_slope_of_the_same_model(scaling) -> None:  # type: ignore[no-untyped-def]
    recs = [_rec("soft", 1000, 1.0), _rec("soft", 2000, 4.0), _rec("lin", 1000, 9.0)]
    # quadratic from two points: 4 GiB at 2000 -> 16 GiB at 4000; other models' records ignored
    assert scaling.predict_per_window_bytes(recs, "soft", 4000) / 2**30 == pytest.approx(16.0)
    # only points below the asked N count
    assert scaling.predict_per_window_bytes(recs, "soft", 1000) is None
    assert scaling.predict_per_window_bytes([], "soft", 4000) is None


def test_prediction_from_one_point_is_quadratic_and_never_below_linear(scaling) -> None:  # type: ignore[no-untyped-def]
    one = [_rec("m", 1000, 1.0)]
    assert scaling.predict_per_window_bytes(one, "m", 2000) / 2**30 == pytest.approx(4.0)
    # a measured slope under 1 (fixed overheads at small N) is raised to 1
    flat = [_rec("m", 1000, 1.0), _rec("m", 2000, 1.1)]
    assert scaling.predict_per_window_bytes(flat, "m", 4000) / 2**30 == pytest.approx(2.2)
