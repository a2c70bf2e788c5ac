"""The step benchmark's ``targets``: the issue's ratios from the records of one run."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def step_bench(bench_module) -> ModuleType:  # type: ignore[no-untyped-def]
    return bench_module("staeformer_step")  # type: ignore[no-any-return]


def _rec(label: str, step_s: float, gib: float, floor_s: float = 1.0) -> dict[str, object]:
    return {"label": label, "n": 883, "batch": 16, "step_s": step_s,
            "delta_peak_bytes": gib * 2**30, "flop_floor_s": floor_s}  # fmt: skip


def test_targets_are_ratios_of_the_same_run_and_say_met_or_not(step_bench: ModuleType) -> None:
    recs = [
        _rec("STAEformer, SDPA", 30.0, 7.0),
        _rec("ELinFormer (paper θ)", 18.0, 7.5, floor_s=6.0),
        _rec("ELinFormer + checkpointing", 27.0, 2.0),
        _rec("STAEformer, SDPA + nn.Dropout masks", 40.0, 7.0),
        _rec("ELinFormer + nn.Dropout masks", 24.0, 7.5),
        {**_rec("ELinFormer (paper θ)", 1.0, 1.0), "batch": 8},  # another shape: ignored
    ]
    out = step_bench.targets(recs)
    assert out["elinformer_vs_sdpa_time"] == pytest.approx(0.6)
    assert out["elinformer_vs_flop_floor"] == pytest.approx(3.0)
    assert out["elinformer_vs_sdpa_memory"] == pytest.approx(7.5 / 7.0)
    assert out["checkpointing_vs_plain_time"] == pytest.approx(1.5)
    assert out["checkpointing_gib"] == pytest.approx(2.0)
    assert out["elinformer_fast_vs_nn_dropout_time"] == pytest.approx(0.75)
    assert out["sdpa_fast_vs_nn_dropout_time"] == pytest.approx(0.75)
    assert out["elinformer_vs_sdpa_time_both_nn_dropout"] == pytest.approx(0.6)
    assert out["met"] == {
        "elinformer_vs_flop_floor": False,
        "elinformer_vs_sdpa_time": True,
        "elinformer_vs_sdpa_memory": False,
        "checkpointing_gib": True,
        "checkpointing_vs_plain_time": False,
    }


def test_the_official_configuration_draws_the_official_codes_dropout_masks(
    step_bench: ModuleType,
) -> None:
    name, overrides = step_bench.MODELS["official (materialised softmax)"]
    assert name == "staeformer-naive" and overrides == {"fast_dropout": False}
    assert step_bench.MODELS["ELinFormer (paper θ)"] == ("elinformer", {})  # the default model
