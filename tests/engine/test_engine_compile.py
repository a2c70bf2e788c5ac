"""``compile = true``: training runs through torch.compile, checkpoints stay the plain model's."""

from __future__ import annotations

from typing import Any

import lightning_fabric  # noqa: F401  (it wraps torch.compile on import; before the monkeypatch below)
import pytest
import torch

from linearcast.engine import train
from linearcast.engine.checkpoint import load_checkpoint
from linearcast.engine.config import TrainConfig
from linearcast.serve.inference import evaluate_run


def test_compile_is_off_by_default_and_a_config_field() -> None:
    assert TrainConfig().compile is False
    assert TrainConfig(compile=True).compile is True


def test_compile_routes_the_trained_module_through_torch_compile(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.nn.Module] = []

    def record(module: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        seen.append(module)
        return module

    monkeypatch.setattr(torch, "compile", record)
    train(make_config(max_epochs=1, run_name="plain"), verbose=False)
    assert seen == []
    train(make_config(max_epochs=1, run_name="compiled", compile=True), verbose=False)
    assert len(seen) == 1 and type(seen[0]).__name__ == "STAEformer"


@pytest.mark.slow
def test_compiled_training_writes_plain_checkpoints_and_learns(make_config: Any) -> None:
    """A real inductor compile (tiny model): the loss moves as in eager mode, the checkpoint's
    keys are the model's own (no ``_orig_mod.`` prefix) and load into an uncompiled model."""
    eager = train(make_config(max_epochs=1, run_name="eager"), verbose=False)
    compiled = train(make_config(max_epochs=1, run_name="compiled", compile=True), verbose=False)
    state = load_checkpoint(compiled.run_dir / "last.ckpt")["model"]
    assert state.keys() == load_checkpoint(eager.run_dir / "last.ckpt")["model"].keys()
    assert not any(k.startswith("_orig_mod") for k in state)
    # same seed, same data: the compiled step computes the same function up to float32 rounding
    a, b = eager.history[0]["train_loss"], compiled.history[0]["train_loss"]
    assert a == pytest.approx(b, rel=1e-3)
    # the run's test metrics come from the plain module; evaluate reloads best.ckpt into one
    again = evaluate_run(compiled.run_dir, accelerator="cpu")
    assert again["metrics"]["overall"] == pytest.approx(compiled.metrics["test"]["overall"])
