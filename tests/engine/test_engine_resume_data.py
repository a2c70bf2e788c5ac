"""A run resumes only on the data it was trained on (readings, series names, times)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main

_ARGS = ["--model", "dlinear", "--protocol", "ltsf", "--set", "protocol_overrides.in_steps=24",
         "--set", "protocol_overrides.out_steps=12", "--quiet", "--no-intervals"]  # fmt: skip


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(300)
    cols = {f"s{i}": 50 + 10 * np.sin(2 * np.pi * t / 24 + i) + rng.normal(0, 1, 300)
            for i in range(3)}  # fmt: skip
    return pd.DataFrame(cols, index=pd.date_range("2024-01-01", periods=300, freq="h", name="date"))


_REORDERED = "the same series in another order ('s2' at position 0, where the run had 's0')"
_RENAMED = "other series names: series it did not have ['x'], without its series ['s2']"


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (lambda d: d * 10, "other readings or times"),
        (lambda d: d.set_axis(["s2", "s1", "s0"], axis=1), _REORDERED),  # readings, other names
        (lambda d: d.set_axis(["s0", "s1", "x"], axis=1), _RENAMED),
        (lambda d: d[["s0", "s2", "s1"]], "the same series in another order"),  # columns moved
        (lambda d: d.set_axis(d.index + pd.Timedelta(days=7)), "other readings or times"),
    ],
    ids=["readings", "names", "renamed", "reordered", "times"],
)
def test_resuming_on_other_data_is_refused_and_the_run_kept(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[pd.DataFrame], pd.DataFrame],
    found: str,
) -> None:
    data = tmp_path / "d.csv"
    _frame().to_csv(data)
    out = tmp_path / "runs"
    common = ["--data", str(data), *_ARGS]
    assert main(["train", *common, "--epochs", "1", "--out", str(out), "--run-name", "r"]) == 0
    run = out / "r"
    kept = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    change(_frame()).to_csv(data)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert f"{data}: expected the data {run} was trained on, found {found}" in err
    assert "another --run-name" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == kept
    _frame().to_csv(data)  # the run's own data back: it goes on
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2
