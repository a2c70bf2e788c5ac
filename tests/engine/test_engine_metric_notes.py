"""Series the test metrics cannot score or define are named in one `linearcast: warning:` line
each (and in metrics.json), and the metrics themselves stay finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.data import synthetic_traffic
from linearcast.data.prepared import prepare
from linearcast.data.protocols import get_protocol
from linearcast.engine.evaluation import EvalResult
from linearcast.engine.run_report import metric_notes


def _mixed_csv(tmp_path: Path) -> Path:
    """Two ordinary series, one constant, one dead (zeros) over the test rows."""
    t = 288 * 4
    rng = np.random.default_rng(0)
    frame = {"date": pd.date_range("2020-01-01", periods=t, freq="5min")}
    for i in range(2):
        frame[f"s{i}"] = rng.poisson(30, t).astype(float)
    frame["flat"] = np.full(t, 7.0)
    dead = rng.poisson(30, t).astype(float)
    dead[int(0.8 * t) - 30 :] = 0.0
    frame["dead"] = dead
    path = tmp_path / "mixed.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("protocol", ["pems", "ltsf"])
def test_undefined_metrics_are_named_once_and_the_numbers_stay_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    args = ["train", "--model", "dlinear", "--data", str(_mixed_csv(tmp_path)), "--protocol",
            protocol, "--epochs", "1", "--max-train-batches", "2", "--max-eval-batches", "2",
            "--out", str(tmp_path / "runs"), "--quiet", "--accelerator", "cpu",
            "--set", "protocol_overrides.in_steps=24", "--set", "protocol_overrides.out_steps=12",
            "--set", "plots=false"]  # fmt: skip
    assert main(args) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "linearcast: warning:" in x]
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    for values in metrics["test"].values():
        assert all(v is not None and math.isfinite(v) for v in values.values())
    assert [f"linearcast: warning: {w}." for w in metrics["warnings"]] == lines
    assert all(x.startswith("linearcast: warning: ") and "Warning" not in x for x in lines)
    if protocol == "pems":  # null value 0: the dead series is never scored
        assert len(lines) == 1 and "no test metric covers them: dead" in lines[0]
    else:  # standardised: the constant series' std 0 is said, not hidden
        assert len(lines) == 1 and lines[0].startswith("linearcast: warning: flat: constant")


def test_non_finite_metrics_and_no_scored_target_are_said() -> None:
    ds = synthetic_traffic(num_nodes=3, days=3)
    prep = prepare(get_protocol("pems"), ds)
    bad = EvalResult(metrics={"overall": {"MAE": math.nan, "RMSE": math.inf, "MAPE": 1.0,
                                          "MSE": math.inf}}, loss=0.0, windows=1)  # fmt: skip
    notes = metric_notes(prep, bad)
    assert notes == [
        "test MAE, RMSE, MSE (overall) not finite, written as null: the forecasts hold NaN or "
        "infinite values"
    ]
    ds.values[:] = 0.0  # every reading equals the null value
    fine = EvalResult(metrics={"overall": {"MAE": 0.0}}, loss=0.0, windows=1)
    (note,) = metric_notes(
        prepare(
            get_protocol("pems").replace(scaler_mask_null=False, allow_mostly_missing=True), ds
        ),
        fine,
    )
    assert note.startswith("no test target is scored")
