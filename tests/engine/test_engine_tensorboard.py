"""TensorBoard event files: the per-epoch numbers of history.csv, read back from the file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from linearcast.engine import tensorboard as tb_mod
from linearcast.engine import train
from linearcast.engine.tensorboard import TAGS, open_tensorboard, tensorboard_available


@pytest.mark.skipif(not tensorboard_available(), reason="the tensorboard package is not installed")
def test_event_file_holds_the_history(make_config: Any) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(
        make_config(max_epochs=2, max_train_batches=2, max_eval_batches=1, tensorboard=True),
        verbose=False,
    )
    run_dir: Path = result.run_dir
    events = list(run_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1  # next to history.csv, one file per (run, process start)
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == set(TAGS.values())
    with (run_dir / "history.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 2
    for column, tag in TAGS.items():
        scalars = acc.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2], tag
        for s, row in zip(scalars, result.history, strict=True):  # float32 in the event file
            assert s.value == pytest.approx(float(row[column]), rel=1e-6), (tag, row)


def test_no_event_files_when_off_or_not_installed(
    make_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir: Path = train(
        make_config(max_train_batches=1, tensorboard=False), verbose=False
    ).run_dir
    assert not list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / "history.csv").is_file()
    # without the package: nothing to do, no error, whatever the flag says
    monkeypatch.setattr(tb_mod, "tensorboard_available", lambda: False)
    assert open_tensorboard(True, tmp_path, True) is None
    assert open_tensorboard(True, tmp_path, False) is None  # other ranks never write
    assert not list(tmp_path.glob("events.out.tfevents.*"))
