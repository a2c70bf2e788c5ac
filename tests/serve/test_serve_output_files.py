"""What using a run writes never loses what is there: ``forecast``, ``predict`` and ``evaluate``
keep an existing ``--out`` file unless ``--overwrite`` is given, and never write over the data
they read or the files a run keeps in its directory, not even with ``--overwrite``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.errors import ConfigError
from linearcast.serve import predict_run
from linearcast.serve.export import export_onnx
from linearcast.serve.forecast import forecast_run


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("linearcast: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one sentence, one line
    return err


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_forecast_onto_the_data_it_reads_is_refused_and_the_file_kept(
    hourly_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    overwrite: list[str],
) -> None:
    run, data = hourly_run
    recent = tmp_path / "recent.csv"
    pd.read_csv(data).tail(48).to_csv(recent, index=False)
    before = _digest(recent)
    args = ["forecast", str(run), "--data", str(recent), "--out", str(recent), *overwrite]
    assert main(args) == 1
    err = _error(capsys)
    assert f"{recent}: expected a file of your own for --out, found the data file this " in err
    assert "never overwritten, not even with --overwrite" in err
    assert _digest(recent) == before
    # the data the run was trained on is never an output either
    trained = _digest(data)
    args = ["forecast", str(run), "--data", str(recent), "--out", str(data), *overwrite]
    assert main(args) == 1
    assert "found the data file the run was trained on" in _error(capsys)
    assert _digest(data) == trained


def test_an_existing_output_is_replaced_only_with_overwrite(
    hourly_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, data = hourly_run
    out = tmp_path / "next.csv"
    out.write_text("kept\n")
    args = ["forecast", str(run), "--data", str(data), "--out", str(out)]
    assert main(args) == 1
    err = _error(capsys)
    assert f"{out}: already exists and is kept; pass --overwrite" in err
    assert out.read_text() == "kept\n"
    assert main([*args, "--overwrite"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["unique_id", "ds", "y_hat"] and len(frame) == 6 * 4
    assert not list(tmp_path.glob(".next.csv.*"))  # written through a temp file, none left
    # the Python API: save() keeps the file unless overwrite=True
    fc = forecast_run(run, data, accelerator="cpu")
    out.write_text("kept\n")
    with pytest.raises(ConfigError, match=r"already exists and is kept; pass --overwrite"):
        fc.save(out)
    assert out.read_text() == "kept\n"
    assert fc.save(out, overwrite=True) == out and pd.read_csv(out).shape == frame.shape


@pytest.mark.parametrize("name", ["history.csv", "intervals.npz"])  # the second is not there yet
def test_a_runs_own_files_are_refused_even_with_overwrite(
    hourly_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    run, data = hourly_run
    target = run / name
    before = target.read_bytes() if target.exists() else None
    args = ["forecast", str(run), "--data", str(data), "--out", str(target), "--overwrite"]
    assert main(args) == 1
    err = _error(capsys)
    assert (
        f"{target}: expected a file of your own for --out, found {name}, where the run in " in err
    )
    assert "never overwritten, not even with --overwrite" in err
    assert (target.read_bytes() if target.exists() else None) == before
    fc = forecast_run(run, data, accelerator="cpu")
    with pytest.raises(ConfigError, match=rf"found {name}, where the run in .* keeps its"):
        fc.save(target, overwrite=True)
    assert (target.read_bytes() if target.exists() else None) == before


def test_predict_keeps_existing_files_and_the_runs_own(
    hourly_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = hourly_run
    out = tmp_path / "test.npz"
    out.write_bytes(b"kept")
    assert main(["predict", str(run), "--out", str(out), "--accelerator", "cpu"]) == 1
    assert f"{out}: already exists and is kept; pass --overwrite" in _error(capsys)
    assert out.read_bytes() == b"kept"
    with pytest.raises(ConfigError, match=r"already exists and is kept"):
        predict_run(run, out, accelerator="cpu")
    assert out.read_bytes() == b"kept"
    args = ["predict", str(run), "--out", str(out), "--accelerator", "cpu", "--overwrite"]
    assert main(args) == 0
    assert out.read_bytes()[:2] == b"PK"  # an .npz (a zip), no longer the old bytes
    capsys.readouterr()
    args = ["predict", str(run), "--out", str(run / "intervals.npz"), "--overwrite"]
    assert main(args) == 1
    assert "where the run in" in _error(capsys) and not (run / "intervals.npz").exists()


@pytest.mark.parametrize("name", ["metrics.json", "config.json", "best.ckpt"])
def test_evaluate_out_never_replaces_the_runs_measured_files(
    hourly_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    run, _ = hourly_run
    target = run / name
    before = _digest(target)
    args = ["evaluate", str(run), "--out", str(target), "--overwrite", "--accelerator", "cpu"]
    assert main(args) == 1
    err = _error(capsys)
    assert f"found {name}, where the run in " in err and "not even with --overwrite" in err
    assert _digest(target) == before


def test_evaluate_out_keeps_an_existing_file_and_the_data(
    hourly_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, data = hourly_run
    out = tmp_path / "result.json"
    out.write_text("kept")
    args = ["evaluate", str(run), "--out", str(out), "--accelerator", "cpu"]
    assert main(args) == 1
    assert f"{out}: already exists and is kept; pass --overwrite" in _error(capsys)
    assert out.read_text() == "kept"
    assert main([*args, "--overwrite"]) == 0
    assert '"metrics"' in out.read_text()
    capsys.readouterr()
    trained = _digest(data)
    assert main(["evaluate", str(run), "--out", str(data), "--overwrite"]) == 1
    assert "found the data file the run was trained on" in _error(capsys)
    assert _digest(data) == trained


def test_export_never_writes_its_description_over_a_runs_file(
    hourly_run: tuple[Path, Path],
) -> None:
    run, _ = hourly_run
    before = _digest(run / "config.json")
    # the .json description goes beside the .onnx: config.onnx would replace config.json
    with pytest.raises(ConfigError, match=r"config\.json: expected a file of your own for the "
                       r"\.json description beside --onnx, found config\.json"):  # fmt: skip
        export_onnx(run, run / "config.onnx", check=False)
    assert _digest(run / "config.json") == before and not (run / "config.onnx").exists()


@pytest.mark.parametrize("existing", [".onnx", ".json"])
def test_export_keeps_an_existing_model_or_description_unless_told(
    hourly_run: tuple[Path, Path], tmp_path: Path, existing: str
) -> None:
    run, _ = hourly_run
    target = tmp_path / "model.onnx"
    there = target.with_suffix(existing)
    there.write_bytes(b"an earlier export\n")
    with pytest.raises(ConfigError, match=r"already exists and is kept; pass --overwrite"):
        export_onnx(run, target, check=False)
    assert there.read_bytes() == b"an earlier export\n"
    pytest.importorskip("onnx")
    export_onnx(run, target, check=False, overwrite=True)
    assert there.read_bytes() != b"an earlier export\n"


def test_the_training_data_is_kept_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # config.json keeps the data path as typed ("d.csv", relative to where training ran)
    where = tmp_path / "project"
    where.mkdir()
    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=200, freq="h", name="date")
    pd.DataFrame(rng.normal(50, 5, (200, 2)), index=idx, columns=["a", "b"]).to_csv(where / "d.csv")
    monkeypatch.chdir(where)
    args = ["train", "--model", "last-value", "--data", "d.csv", "--protocol", "ltsf",
            "--set", "protocol_overrides.in_steps=12", "--set", "protocol_overrides.out_steps=3",
            "--set", "baseline=", "--epochs", "1", "--quiet", "--no-intervals",
            "--out", "runs", "--run-name", "r"]  # fmt: skip
    assert main(args) == 0
    trained = _digest(where / "d.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run, data = where / "runs" / "r", str(elsewhere / "recent.csv")
    (elsewhere / "recent.csv").write_bytes((where / "d.csv").read_bytes())
    capsys.readouterr()
    for command in (["forecast", str(run), "--data", data], ["evaluate", str(run), "--data", data]):
        out = ["--out", str(where / "d.csv"), "--overwrite"]
        assert main([*command, *out]) == 1
        assert "found the data file the run was trained on" in _error(capsys)
    assert _digest(where / "d.csv") == trained
