"""Files someone hands you never run code; runs that go wrong say so and lose nothing measured.

The payloads below would create a marker file when unpickled; every test asserts that the
marker does not exist afterwards and that the error is one sentence naming the file.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from linearcast.cli import main
from linearcast.engine import checkpoint, train
from linearcast.engine.checkpoint import BEST, LAST, load_checkpoint
from linearcast.errors import ConfigError, TrainingDiverged
from linearcast.serve.inference import evaluate_run

FIXTURE_V1 = Path(__file__).parent.parent / "fixtures" / "run_v1"
TINY_SETS = [
    "--set",
    "model_overrides={input_embedding_dim=4, tod_embedding_dim=4, dow_embedding_dim=4, "
    "adaptive_embedding_dim=4, feed_forward_dim=16, num_layers=1}",
    "--set",
    "synthetic.num_nodes=6",
    "--set",
    "synthetic.days=3",
]


class _Payload:
    """Unpickling this runs ``os.system('touch MARKER')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _payload_ckpt(path: Path, marker: Path, *, plain_pickle: bool) -> Path:
    if plain_pickle:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:  # inside an otherwise valid-looking torch.save dict
        torch.save({"format": checkpoint.FORMAT, "version": 2, "model": _Payload(marker)}, path)
    return path


def _run_dir_with(tmp_path: Path, ckpt_name: str = BEST) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_V1, run)
    (run / ckpt_name).unlink(missing_ok=True)
    return run


@pytest.mark.parametrize("plain_pickle", [True, False])
@pytest.mark.parametrize("command", ["evaluate", "predict", "resume"])
def test_a_payload_checkpoint_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plain_pickle: bool, command: str
) -> None:
    marker = tmp_path / "pwned"
    ckpt_name = LAST if command == "resume" else BEST
    run = _run_dir_with(tmp_path, ckpt_name)
    _payload_ckpt(run / ckpt_name, marker, plain_pickle=plain_pickle)
    argv = {
        "evaluate": ["evaluate", str(run), "--accelerator", "cpu"],
        "predict": ["predict", str(run), "--out", str(tmp_path / "p.npy")],
        "resume": ["train", "--resume", str(run), "--quiet", "--accelerator", "cpu"],
    }[command]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{run / ckpt_name}: refused to load" in err
    assert "nothing from it was run" in err
    if not plain_pickle:
        assert "posix.system" in err or "nt.system" in err  # the refused import is named


def test_a_version_1_run_directory_still_evaluates_to_the_same_numbers() -> None:
    recorded = json.loads((FIXTURE_V1 / "evaluate_v1.json").read_text())
    result = evaluate_run(FIXTURE_V1, accelerator="cpu")
    assert result["windows"] == recorded["windows"]
    for horizon, values in recorded["metrics"].items():
        for name, value in values.items():
            # float32 rounding only: kernels may reorder their arithmetic between versions
            # (the heads-last EALA output moved MAE by 2e-9 relative); a misread checkpoint or
            # scaler would move it by far more
            assert result["metrics"][horizon][name] == pytest.approx(value, rel=1e-6)


def test_new_checkpoints_hold_only_tensors_and_plain_values(make_config: Any) -> None:
    result = train(make_config(), verbose=False)
    path = result.run_dir / LAST
    # no import beyond torch's tensor machinery: loads with an empty allow-list
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    state = load_checkpoint(path)
    assert state["version"] == checkpoint.VERSION == 2
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)


def test_rng_state_round_trips_through_the_safe_form() -> None:
    import random

    import numpy as np

    state = checkpoint.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    checkpoint.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # noqa: NPY002


# ----------------------------------------------------------------------------- checkpoints vs runs
def _two_runs(make_config: Any) -> tuple[Path, Path]:
    a = train(make_config(run_name="a"), verbose=False).run_dir
    b = train(
        make_config(run_name="b", model_overrides={"num_layers": 1, "feed_forward_dim": 8}),
        verbose=False,
    ).run_dir
    return a, b


def test_a_checkpoint_copied_from_another_run_is_refused(
    make_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_runs(make_config)
    shutil.copy(b / BEST, a / BEST)
    assert main(["evaluate", str(a), "--accelerator", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"{a / BEST}: this checkpoint was written by another run" in err
    assert "model_overrides" in err and "Traceback" not in err


def test_weights_that_do_not_fit_the_config_are_a_sentence(make_config: Any) -> None:
    a, _ = _two_runs(make_config)
    state = torch.load(a / BEST, weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(3, 3, 3)
    torch.save(state, a / BEST)
    with pytest.raises(ConfigError, match=r"do not fit the model.*1 of other shapes"):
        evaluate_run(a, accelerator="cpu")
    del state["model"][name]
    torch.save(state, a / BEST)
    with pytest.raises(ConfigError, match=rf"do not fit the model.*1 missing \(e\.g\. {name}\)"):
        evaluate_run(a, accelerator="cpu")
    state = torch.load(a / LAST, weights_only=True)  # the run's own weights, and one more
    state["model"]["extra.weight"] = torch.zeros(2)
    torch.save(state, a / BEST)
    with pytest.raises(ConfigError, match=r"1 unknown to the model \(e\.g\. extra\.weight\)"):
        evaluate_run(a, accelerator="cpu")


# ----------------------------------------------------------------------------- divergence
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_epoch(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linearcast.engine import setup, trainer

    real = setup.make_loss

    def poisoned(config: Any, prep: Any) -> Any:
        fn = real(config, prep)
        calls = {"n": 0}

        class Poisoned(type(fn)):  # type: ignore[misc]
            def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                calls["n"] += pred.requires_grad  # training steps only
                loss = super().__call__(pred, target)
                poison = calls["n"] == 6 and pred.requires_grad  # epoch 2, step 2
                return loss * math.nan if poison else loss

        fn.__class__ = Poisoned
        return fn

    monkeypatch.setattr(trainer, "make_loss", poisoned)
    cfg = make_config(max_epochs=3, run_name="nan")
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, verbose=False)
    text = str(err.value)
    assert "the training loss became nan at step 2/4 of epoch 2" in text
    assert "last finite training loss was" in text and "learning rate" in text
    assert "(global step 5)" in text  # epoch 2's first step, the one before the NaN
    run = Path(cfg.out_dir) / "nan"
    assert f"{run / LAST} keeps the weights of epoch 1" in text
    kept = load_checkpoint(run / LAST)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values())
    assert not (run / "metrics.json").exists()  # no NaN table written


def test_a_huge_learning_rate_exits_non_zero_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--lr", "1e6", "--epochs", "2", "--max-train-batches", "4", "--quiet"]
    code = main([*argv, *TINY_SETS, "--out", str(tmp_path), "--accelerator", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "Traceback" not in err and err.count("\n") == 0
    assert "training stopped: the training loss became" in err
    assert "try --lr" in err


def test_json_files_are_strict_json(tmp_path: Path) -> None:
    import numpy as np

    from linearcast.engine.run_dir import write_json

    data = {"MAPE": math.nan, "x": [math.inf, -math.inf, 1.5], "n": np.float32(2.0), "k": (1,)}
    text = write_json(tmp_path / "m.json", data).read_text()

    def refuse(token: str) -> float:
        raise AssertionError(f"non-JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {
        "MAPE": None,
        "x": [None, None, 1.5],
        "n": 2.0,
        "k": [1],
    }


# ----------------------------------------------------------------------------- resume keeps results
def test_resuming_a_finished_run_keeps_the_earlier_result(make_config: Any) -> None:
    first = train(make_config(run_name="r", max_epochs=1), verbose=False)
    before = json.loads((first.run_dir / "metrics.json").read_text())
    history_before = (first.run_dir / "history.csv").read_text()
    train(make_config(run_name="r", max_epochs=2, resume=True), verbose=False)
    kept = json.loads((first.run_dir / "metrics.1.json").read_text())
    assert kept == before
    assert (first.run_dir / "history.1.csv").read_text() == history_before
    assert json.loads((first.run_dir / "metrics.json").read_text())["epochs"] == 2
    train(make_config(run_name="r", max_epochs=3, resume=True), verbose=False)
    assert (first.run_dir / "metrics.2.json").is_file()  # each earlier result kept once
    assert (first.run_dir / "metrics.1.json").read_text() == json.dumps(before, indent=2) + "\n"


def test_refusing_a_foreign_pickle_adds_no_torch_warning(tmp_path: Path) -> None:
    # torch warns about the pickle protocol of files it did not write; our sentence says more
    path = tmp_path / "best.ckpt"
    path.write_bytes(pickle.dumps({"format": "x"}, protocol=4))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError, match=r"best\.ckpt: not a linearcast checkpoint"):
            checkpoint.load_checkpoint(path)
    assert [str(w.message) for w in seen] == []
