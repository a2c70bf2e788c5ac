"""``benchmarks/dcrnn_graph_impl.py``: both paths step, and the run writes its JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench(bench_module) -> ModuleType:  # type: ignore[no-untyped-def]
    return bench_module("dcrnn_graph_impl")  # type: ignore[no-any-return]


def test_a_small_run_writes_json_and_a_plot(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    assert bench.main(["--n", "12", "--batch", "2", "--repeats", "2", "--tag", "t"]) == 0
    out = json.loads((tmp_path / "dcrnn_graph_impl-t.json").read_text())
    assert out["graph"].startswith("random") and 0 < out["graph_density"] < 0.25
    assert set(out["step_s"]) == {"dense", "sparse"} and out["vs_first"]["dense"] == 1.0
    assert all(t > 0 for ts in out["step_s_all"].values() for t in ts)
    assert (tmp_path / "dcrnn_graph_impl-t.png").stat().st_size > 0
