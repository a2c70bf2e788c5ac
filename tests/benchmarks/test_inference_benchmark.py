"""``benchmarks/staeformer_inference.py``: a batch too slow to time is skipped with its reason."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def inf(bench_module) -> ModuleType:  # type: ignore[no-untyped-def]
    return bench_module("staeformer_inference")  # type: ignore[no-any-return]


def test_a_batch_predicted_over_the_cap_from_its_batch_1_call_is_skipped(inf: ModuleType) -> None:
    recs = [
        {"label": "a", "n": 8600, "batch": 1, "step_s": 24.0},
        {"label": "b", "n": 8600, "batch": 1, "step_s": 4.0},
        {"label": "a", "n": 883, "batch": 1, "step_s": 0.5},
    ]
    why = inf.too_slow(recs, "a", 8600, 64, 300.0)
    assert why is not None and "1536 s" in why and "--max-call-seconds 300" in why
    assert inf.too_slow(recs, "b", 8600, 64, 300.0) is None  # 256 s: under the cap
    assert inf.too_slow(recs, "b", 8600, 80, 300.0) is not None  # 320 s
    assert inf.too_slow(recs, "a", 883, 64, 300.0) is None  # the same model at another N: 32 s
    assert inf.too_slow(recs, "a", 8600, 64, 0.0) is None  # 0 = never skip
    assert inf.too_slow(recs, "c", 8600, 64, 300.0) is None  # no batch-1 call measured: run it
    assert inf.too_slow(recs, "a", 8600, 1, 1.0) is None  # batch 1 itself is always run
