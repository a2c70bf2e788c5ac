"""The attention benchmark script runs end to end and writes what the README relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "attention.py"


@pytest.mark.slow
def test_benchmark_writes_json_with_header_records_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "attention.json"
    cmd = [
        sys.executable, str(SCRIPT), "--n", "64", "128", "--heads", "1", "--repeats", "1",
        "--kernels", "softmax_sdpa", "eala_linear", "eala_quadratic", "--max-memory-gib", "0.00001",
        "--out", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    result = json.loads(out.read_text())
    assert {"cpu", "torch", "torch_threads", "commit", "date"} <= set(result["machine"])
    assert result["matmul_gflops"] > 0
    got = {(r["kernel"], r["n"]) for r in result["records"]}
    assert got == {(k, n) for k in ("softmax_sdpa", "eala_linear") for n in (64, 128)}
    # the materialised kernel is over the (tiny) memory budget: skipped with a reason, not run
    assert {s["kernel"] for s in result["skipped"]} == {"eala_quadratic"}
    assert all("GiB" in s["reason"] for s in result["skipped"])
    assert all(r["forward_s"] > 0 and r["forward_backward_s"] >= 0 for r in result["records"])
    assert all("gflops" in r for r in result["records"] if r["kernel"] == "eala_linear")
    assert out.with_suffix(".png").stat().st_size > 10_000
