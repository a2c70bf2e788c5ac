"""A run's files: a bad --out or a full disk is one sentence, nothing measured is lost, no
temporary file is left, and a resumed run clears the temporary files a killed one left."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from linearcast import atomic
from linearcast.cli import main
from linearcast.engine import train
from linearcast.errors import ConfigError

ARGS = ["train", "--model", "dlinear", "--epochs", "1", "--max-train-batches", "2",
        "--max-eval-batches", "2", "--quiet", "--accelerator", "cpu",
        "--set", "synthetic.num_nodes=3", "--set", "synthetic.days=3"]  # fmt: skip


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if atomic.TEMP_RE.match(p.name)]


@pytest.mark.parametrize("case", ["file", "file in path"])
def test_an_out_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    (tmp_path / "taken").write_text("measured")
    out = tmp_path / "taken" if case == "file" else tmp_path / "taken" / "runs"
    assert main([*ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert str(out) in err and "found a file" in err and "--out" in err
    assert (tmp_path / "taken").read_text() == "measured"


def test_a_full_disk_at_the_end_keeps_the_earlier_result_and_leaves_no_temp(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(model="dlinear", model_overrides={}, run_name="r")
    run = train(cfg, verbose=False).run_dir
    earlier = (run / "metrics.json").read_text()
    real = atomic._fsync_file

    def full_for_metrics(path: Path) -> None:  # the disk is full when metrics.json is flushed
        if "metrics.json" in path.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path)

    monkeypatch.setattr(atomic, "_fsync_file", full_for_metrics)
    with pytest.raises(ConfigError) as err:
        train(cfg.replace(resume=str(run), max_epochs=2), verbose=False)
    text = str(err.value)
    assert text.startswith(str(run / "metrics.json")) and "no space left" in text
    assert "\n" not in text
    # the earlier result is kept whole (renamed to metrics.1.json), nothing half written
    assert (run / "metrics.1.json").read_text() == earlier
    assert not (run / "metrics.json").exists()
    assert _temps(run) == []


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_earlier_one(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from linearcast.engine.checkpoint import LAST, load_checkpoint

    cfg = make_config(model="dlinear", model_overrides={}, run_name="c")
    run = train(cfg, verbose=False).run_dir
    real = torch.save

    def half_then_full(obj: Any, fh: Any, *args: Any, **kwargs: Any) -> None:
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(ConfigError) as err:
        train(cfg.replace(resume=str(run), max_epochs=2), verbose=False)
    monkeypatch.setattr(torch, "save", real)
    assert "no space left" in str(err.value) and ".ckpt" in str(err.value)
    assert load_checkpoint(run / LAST)["epoch"] == 1
    assert _temps(run) == []


def test_resuming_removes_the_temporary_files_a_killed_run_left(make_config: Any) -> None:
    cfg = make_config(model="dlinear", model_overrides={}, run_name="k")
    run = train(cfg, verbose=False).run_dir
    left = [".best.ckpt.k2j_9xab.tmp", ".last.ckpt.zz_00000.tmp", ".curves.png.abcdefgh.tmp.png"]
    for name in left:
        (run / name).write_bytes(b"half")
    (run / "notes.tmp").write_text("the user's")
    train(cfg.replace(resume=str(run), max_epochs=2), verbose=False)
    assert _temps(run) == [] and (run / "notes.tmp").read_text() == "the user's"


def test_plots_and_files_are_written_whole(make_config: Any) -> None:
    run = train(make_config(model="dlinear", model_overrides={}, plots=True), verbose=False).run_dir
    for name in ("curves.png", "forecast.png", "errors.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "history.csv").read_text().startswith("epoch,")
    assert json.loads((run / "series.json").read_text())
    assert _temps(run) == []
