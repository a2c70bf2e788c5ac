"""``benchmarks/step_interleaved.py``: interleaved rounds cancel a steady drift of the machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def inter(bench_module) -> ModuleType:  # type: ignore[no-untyped-def]
    return bench_module("step_interleaved")  # type: ignore[no-any-return]


class _Machine:
    """A fake clock; each step advances it by ``work × (1 + drift · calls so far)``."""

    def __init__(self, drift: float) -> None:
        self.now, self.calls, self.drift = 0.0, 0, drift

    def step(self, work: float) -> Callable[[], None]:
        def run() -> None:
            self.now += work * (1.0 + self.drift * self.calls)
            self.calls += 1

        return run


def test_a_steady_drift_cancels_and_the_order_reverses_every_round(inter: ModuleType) -> None:
    m = _Machine(drift=0.1)  # each call 10% slower than the one before: a VM slowing down
    res = inter.interleave({"a": m.step(1.0), "b": m.step(1.0)}, repeats=4, clock=lambda: m.now)
    assert res["order"] == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    assert res["vs_first"]["b"] == pytest.approx(1.0, abs=1e-12)  # same work, same median
    assert all(len(t) == 4 for t in res["step_s_all"].values())
    assert m.calls == 2 + 8  # one untimed warm-up each, then 4 rounds of 2


def test_the_ratio_reads_the_work_when_the_machine_is_steady(inter: ModuleType) -> None:
    m = _Machine(drift=0.0)
    steps = {"base": m.step(2.0), "half": m.step(1.0), "triple": m.step(6.0)}
    res = inter.interleave(steps, repeats=3, clock=lambda: m.now)
    assert res["vs_first"] == pytest.approx({"base": 1.0, "half": 0.5, "triple": 3.0})
    assert res["step_s"]["base"] == pytest.approx(2.0)


def test_a_real_step_runs_and_the_cli_writes_json_and_a_plot(
    inter: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setattr(inter, "RESULTS", tmp_path)
    rc = inter.main(["--n", "6", "--batch", "1", "--repeats", "2", "--tag", "t", "--models",
                     "ELinFormer (paper θ)", "ELinFormer + nn.Dropout masks"])  # fmt: skip
    assert rc == 0
    out = json.loads((tmp_path / "step_interleaved-t.json").read_text())
    assert out["machine"]["cores"] and out["n"] == 6 and out["batch"] == 1
    assert out["vs_first"]["ELinFormer (paper θ)"] == 1.0
    assert all(t > 0 for ts in out["step_s_all"].values() for t in ts)
    assert (tmp_path / "step_interleaved-t.png").stat().st_size > 0
