"""End-to-end training on tiny synthetic data: outputs, resume, early stopping, loss, fit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from linearcast.engine import checkpoint as ckpt_mod
from linearcast.engine import plots
from linearcast.engine.checkpoint import load_checkpoint
from linearcast.engine.config import TrainConfig
from linearcast.engine.evaluation import unit_converter
from linearcast.engine.run_dir import read_history
from linearcast.engine.run_state import gathered_rng, restore_rng, resume_dir
from linearcast.engine.setup import LossFn, build_model, make_loss, prepare_data
from linearcast.engine.trainer import Trainer, train
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY
from linearcast.models.base import ModelSpec

PNG = b"\x89PNG\r\n\x1a\n"


def test_one_epoch_writes_the_run_directory(make_config: Any, monkeypatch: Any) -> None:
    cfg: TrainConfig = make_config(plots=True)
    figures: dict[str, Any] = {}

    def keep(name: str, build: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            figures[name] = build(*args, **kwargs)
            return figures[name]

        return wrapped

    for name in ("forecast_figure", "errors_figure"):
        monkeypatch.setattr(plots, name, keep(name, getattr(plots, name)))
    res = train(cfg, verbose=False)
    d = res.run_dir
    assert re.fullmatch(r"elinformer-synthetic-\d{8}-\d{6}(-\d+)?", d.name)
    names = {p.name for p in d.iterdir()}
    assert {
        "config.json",
        "metrics.json",
        "history.csv",
        "last.ckpt",
        "best.ckpt",
        "curves.png",
        "forecast.png",
        "errors.png",
    } <= names
    assert not [n for n in names if n.endswith(".tmp")]
    for png in ("curves.png", "forecast.png", "errors.png"):
        assert (d / png).read_bytes()[:8] == PNG

    assert TrainConfig.from_dict(json.loads((d / "config.json").read_text())) == cfg
    m = json.loads((d / "metrics.json").read_text())
    assert m["model"] == "elinformer" and m["protocol"] == "pems[basicts,12->12]"
    assert m["protocol_name"] == "pems" and m["dataset"]["name"] == "synthetic"
    assert m["dataset"]["shape"] == [864, 6, 3] and m["dataset"]["synthetic"] is True
    model = build_model(cfg, prepare_data(cfg))
    assert m["parameters"]["trainable"] == sum(p.numel() for p in model.parameters())
    assert m["epochs"] == 1 and len(m["seconds_per_epoch"]) == 1
    assert m["peak_memory"]["MiB"] > 0
    assert set(m["test"]) == {"overall", "horizon_3", "horizon_6", "horizon_12"}
    assert m["test_windows"] == m["windows"]["test"] == 149
    assert m["baseline"]["model"] == "last-value"
    assert set(m["baseline"]["test"]) == set(m["test"])
    for metrics in (m["test"], m["baseline"]["test"]):
        assert all(v["MAE"] > 0 and v["RMSE"] >= v["MAE"] for v in metrics.values())
    # every step's metrics, equal to the horizons' at steps 3/6/12
    for per_step, metrics in ((m["test_per_step"], m["test"]),
                              (m["baseline"]["test_per_step"], m["baseline"]["test"])):  # fmt: skip
        assert all(len(v) == 12 for v in per_step.values())
        for h in (3, 6, 12):
            for name in ("MAE", "RMSE", "MAPE", "MSE"):
                assert per_step[name][h - 1] == pytest.approx(metrics[f"horizon_{h}"][name])
    # errors.png: one line per model and panel, over the 12 steps
    errors = figures["errors_figure"]
    for ax in errors.axes:
        lines = [x for x in ax.get_lines() if not x.get_label().startswith("_")]
        assert [x.get_label().split(":")[0] for x in lines] == [
            "elinformer", "last-value (baseline)"
        ]  # fmt: skip
        assert all(list(x.get_xdata()) == list(range(1, 13)) for x in lines)
    # forecast.png: named synthetic sensors, a window titled with its timestamps
    forecast = figures["forecast_figure"]
    assert all(ax.get_title().startswith("S0") for ax in forecast.axes if ax.get_visible())
    assert re.search(r"2024-01-0\d \d\d:\d\d → ", forecast.get_suptitle())

    rows = read_history(d / "history.csv")
    assert [r["epoch"] for r in rows] == [1.0]
    assert rows[0]["train_loss"] > 0 and rows[0]["lr"] == pytest.approx(cfg.lr)
    # masked MAE is both the loss and the metric: the validation loss is the raw-unit masked MAE
    assert rows[0]["val_loss"] == pytest.approx(rows[0]["val_MAE"], rel=1e-5)


def test_two_runs_never_share_a_directory(make_config: Any) -> None:
    a = train(make_config(max_train_batches=1, baseline=""), verbose=False)
    b = train(make_config(max_train_batches=1, baseline=""), verbose=False)
    assert a.run_dir != b.run_dir and a.run_dir.parent == b.run_dir.parent
    assert (a.run_dir / "metrics.json").is_file() and (b.run_dir / "metrics.json").is_file()


class _Stop(Exception):
    pass


def _stop_after_first_epoch(trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
    if epoch == 1:
        raise _Stop


def test_resume_continues_exactly_where_it_stopped(make_config: Any) -> None:
    full = train(make_config(max_epochs=2, run_name="full"), verbose=False)
    with pytest.raises(_Stop):
        train(make_config(max_epochs=2, run_name="cut"), verbose=False,
              callbacks=[_stop_after_first_epoch])  # fmt: skip
    cut_dir = full.run_dir.parent / "cut"
    after_one = load_checkpoint(cut_dir / "last.ckpt")
    assert after_one["epoch"] == 1
    resumed = train(make_config(max_epochs=2, run_name="cut", resume=True), verbose=False)
    assert resumed.run_dir == cut_dir

    a = load_checkpoint(full.run_dir / "last.ckpt")
    b = load_checkpoint(resumed.run_dir / "last.ckpt")
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"] == 8
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
        # the second epoch did change the weights (so equality above is not vacuous)
    assert any(not torch.equal(v, after_one["model"][k]) for k, v in a["model"].items())
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(state_a["exp_avg"], state_b["exp_avg"])
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]
    assert full.metrics["test"] == resumed.metrics["test"]


def test_resume_keeps_the_learning_rate_schedule(make_config: Any) -> None:
    # one drop after epoch 1: epochs 2 and 3 train at lr·gamma. A resume that rebuilt the
    # scheduler instead of restoring it would count its epochs from 0 and drop again after
    # epoch 2 (the resume test above uses a schedule whose rate never changes)
    fast = dict(
        milestones=[1], gamma=0.1, run_name="lr", max_train_batches=1, max_eval_batches=1,
        baseline="",
    )  # fmt: skip
    with pytest.raises(_Stop):
        train(make_config(max_epochs=2, **fast), verbose=False,
              callbacks=[_stop_after_first_epoch])  # fmt: skip
    cut_dir = Path(make_config().out_dir) / "lr"
    first_row = load_checkpoint(cut_dir / "last.ckpt")["history"][0]
    epochs: list[int] = []
    # resumed by path, with more epochs than the cut run had
    resumed = train(
        make_config(max_epochs=3, **{**fast, "resume": str(cut_dir)}), verbose=False,
        callbacks=[lambda trainer, epoch, row: epochs.append(epoch)],
    )  # fmt: skip
    assert epochs == [2, 3]  # continued, not started again
    assert resumed.history[0] == first_row
    lr = make_config().lr
    assert [r["lr"] for r in resumed.history] == pytest.approx([lr, lr * 0.1, lr * 0.1])
    last = load_checkpoint(resumed.run_dir / "last.ckpt")
    assert last["scheduler"]["last_epoch"] == 3
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr * 0.1)
    assert json.loads((cut_dir / "config.json").read_text())["max_epochs"] == 3


def test_resume_adds_a_scheduler_the_cut_run_did_not_have(
    make_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = dict(run_name="s", max_train_batches=1, max_eval_batches=1, baseline="", max_epochs=2)
    with pytest.raises(_Stop):
        train(make_config(scheduler="none", **fast), verbose=False,
              callbacks=[_stop_after_first_epoch])  # fmt: skip
    capsys.readouterr()
    resumed = train(make_config(milestones=[1], resume=True, **fast), verbose=True, report=False)
    assert "resume    from epoch 1 (global step 1)" in capsys.readouterr().out
    lr = make_config().lr
    assert [r["lr"] for r in resumed.history] == pytest.approx([lr, lr])  # a fresh schedule


def test_resume_of_a_closed_form_run_does_not_fit_again(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linearcast.models.baselines import VARBaseline

    cfg = make_config(model="var", model_overrides={"order": 2}, run_name="v", baseline="")
    first = train(cfg, verbose=False)
    assert bool(load_checkpoint(first.run_dir / "last.ckpt")["model"]["fitted"])

    def refit(self: Any, loader: Any) -> Any:
        raise AssertionError("a resumed closed-form model was fitted again")

    monkeypatch.setattr(VARBaseline, "fit", refit)
    again = train(cfg.replace(resume=True), verbose=False)
    assert again.metrics["test"] == first.metrics["test"]


def test_resume_dir_forms(make_config: Any) -> None:
    assert resume_dir(make_config(resume=False)) is None
    assert resume_dir(make_config(resume="")) is None
    with pytest.raises(ConfigError, match="resume=True needs run_name"):
        resume_dir(make_config(resume=True))
    with pytest.raises(ConfigError, match=r"cannot resume, no last\.ckpt"):
        resume_dir(make_config(resume=True, run_name="nothing-here"))


class _FakeFabric:
    """What the RNG helpers use of Fabric; all_reduce adds nothing (the other ranks send 0)."""

    def __init__(self, world_size: int, global_rank: int) -> None:
        self.world_size, self.global_rank = world_size, global_rank

    def all_reduce(self, tensor: Tensor, reduce_op: str) -> Tensor:
        return tensor


def test_resume_restores_each_ranks_torch_rng_from_its_own_row() -> None:
    rank1 = _FakeFabric(world_size=2, global_rank=1)
    torch.manual_seed(5)
    mine = torch.get_rng_state()
    state = gathered_rng(rank1)
    rows = state["torch_per_rank"]
    assert rows.dtype == torch.uint8 and rows.shape == (2, mine.numel())
    assert torch.equal(rows[1], mine) and not rows[0].any()
    torch.manual_seed(6)
    other = torch.get_rng_state()
    state |= {"torch": other, "torch_per_rank": torch.stack([other, mine])}
    restore_rng(rank1, state)
    assert torch.equal(torch.get_rng_state(), mine)  # rank 1's row, not the saving rank's
    assert gathered_rng(_FakeFabric(1, 0))["torch_per_rank"] is None
    restore_rng(_FakeFabric(1, 0), state)  # 2 ranks' rows, resumed on 1 process
    assert torch.equal(torch.get_rng_state(), other)


def test_resume_through_the_trainer_takes_this_ranks_rng_row(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a checkpoint with one RNG row per rank (as a DDP run of this world size writes): the
    # trainer must hand its Fabric down, so that the row of this rank is restored
    first = train(make_config(max_epochs=1, run_name="r"), verbose=False)
    state = torch.load(first.run_dir / "last.ckpt", weights_only=True)
    torch.manual_seed(123)
    row = torch.get_rng_state()
    assert not torch.equal(row, state["rng"]["torch"])
    state["rng"]["torch_per_rank"] = row[None].clone()
    torch.save(state, first.run_dir / "last.ckpt")
    restored: list[Tensor] = []
    real = ckpt_mod.set_rng_state

    def spy(local: dict[str, Any]) -> None:
        restored.append(local["torch"])
        real(local)

    monkeypatch.setattr(ckpt_mod, "set_rng_state", spy)
    train(make_config(max_epochs=2, run_name="r", resume=True), verbose=False)
    assert len(restored) == 1 and torch.equal(restored[0], row)


def test_resume_from_weights_that_do_not_fit_names_the_last_checkpoint(make_config: Any) -> None:
    first = train(make_config(max_epochs=1, run_name="w"), verbose=False)
    last = first.run_dir / "last.ckpt"
    state = torch.load(last, weights_only=True)
    state["model"]["extra.weight"] = torch.zeros(2)
    torch.save(state, last)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(last))}: the weights do not fit"):
        train(make_config(max_epochs=2, run_name="w", resume=True), verbose=False)


class _Drift(nn.Module):
    """Predicts a constant ``w`` (scaled units); in training mode ``w - 100``.

    Every training step therefore pushes ``w`` up, away from the validation optimum: the
    validation loss rises from the first epoch on, whatever the data.
    """

    def __init__(self, out_steps: int) -> None:
        super().__init__()
        self.out_steps = out_steps
        self.w = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: Tensor) -> Tensor:
        b, _, n, _ = x.shape
        shift = -100.0 if self.training else 0.0
        return (self.w + shift) * x.new_ones(b, self.out_steps, n, 1)


def _build_drift(*, num_nodes: int, in_steps: int, out_steps: int, **_: Any) -> nn.Module:
    return _Drift(out_steps)


def test_early_stopping_stops_and_restores_the_best_weights(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ModelSpec("test-drift", _build_drift, "test model", fixed_num_nodes=False)
    monkeypatch.setitem(REGISTRY, "test-drift", spec)
    cfg = make_config(
        model="test-drift",
        model_overrides={},
        max_epochs=10,
        patience=2,
        lr=0.2,
        max_train_batches=2,
        scheduler="none",
    )
    res = train(cfg, verbose=False)
    h = res.history
    assert [r["epoch"] for r in h] == [1, 2, 3]  # 1 best, then 2 epochs without improvement
    assert h[0]["val_loss"] < h[1]["val_loss"] < h[2]["val_loss"]
    m = res.metrics
    assert m["stopped_early"] is True and m["best_epoch"] == 1 and m["epochs"] == 3
    best = load_checkpoint(res.run_dir / "best.ckpt")
    last = load_checkpoint(res.run_dir / "last.ckpt")
    assert best["epoch"] == 1 and last["epoch"] == 3
    assert float(best["model"]["w"]) < float(last["model"]["w"])
    # validation recomputed after restoring equals epoch 1's, not the last epoch's
    assert m["val"]["overall"]["MAE"] == pytest.approx(h[0]["val_MAE"], rel=1e-9)
    assert m["val"]["overall"]["MAE"] < h[2]["val_MAE"]


def test_resume_of_an_early_stopped_run_trains_no_more(
    make_config: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ModelSpec("test-drift", _build_drift, "test model", fixed_num_nodes=False)
    monkeypatch.setitem(REGISTRY, "test-drift", spec)
    cfg = make_config(
        model="test-drift", model_overrides={}, max_epochs=10, patience=1, lr=0.2,
        max_train_batches=1, max_eval_batches=1, scheduler="none", baseline="", run_name="es",
    )  # fmt: skip
    stopped = train(cfg, verbose=False)
    assert [r["epoch"] for r in stopped.history] == [1, 2]
    epochs: list[int] = []
    capsys.readouterr()
    again = train(cfg.replace(resume=True), verbose=True,
                  callbacks=[lambda trainer, epoch, row: epochs.append(epoch)])  # fmt: skip
    assert epochs == [] and again.history == stopped.history
    assert "this run already stopped early at epoch 2" in capsys.readouterr().out
    assert load_checkpoint(again.run_dir / "last.ckpt")["epoch"] == 2


def test_training_loss_is_in_raw_units_and_skips_nulls(make_config: Any) -> None:
    cfg = make_config()
    prep = prepare_data(cfg)
    y = next(y for _, y in DataLoader(prep.train, batch_size=64) if (y == 0).any())
    valid = y != 0
    pred_raw = torch.where(valid, y + 2.0, torch.full_like(y, 1e4))  # error 2 where valid
    pred_model = prep.scaler.transform(pred_raw)  # what a model outputs: scaled units
    loss = make_loss(cfg, prep)(unit_converter(prep)(pred_model), y)
    # raw units (scaled units would give 2/std = 2/{std}) and null targets skipped
    assert float(loss) == pytest.approx(2.0, rel=1e-4)
    unmasked = LossFn("masked_mae", prep.null_value, mask=False)
    assert float(unmasked(unit_converter(prep)(pred_model), y)) > 10.0
    huber = LossFn("huber", prep.null_value, mask=True)
    assert float(huber(pred_raw, y)) == pytest.approx(1.5, rel=1e-5)  # 0.5 + (2 - 1)


def test_closed_form_model_is_fitted_and_not_trained(make_config: Any) -> None:
    res = train(make_config(model="var", model_overrides={"order": 2}, max_epochs=5), verbose=False)
    m = res.metrics
    assert m["epochs"] == 0 and m["parameters"]["trainable"] == 0 and res.history == []
    ckpt = load_checkpoint(res.run_dir / "best.ckpt")
    assert bool(ckpt["model"]["fitted"]) and ckpt["optimizer"] is None
    # before fit the VAR is persistence, i.e. exactly the last-value baseline
    assert m["test"]["overall"]["MAE"] != pytest.approx(
        m["baseline"]["test"]["overall"]["MAE"], rel=1e-6
    )


def test_config_is_checked_before_anything_is_written(make_config: Any, tmp_path: Path) -> None:
    from linearcast.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown model"):
        train(make_config(model="nope"), verbose=False)
    with pytest.raises(ConfigError, match=r"no last\.ckpt"):
        train(make_config(resume=str(tmp_path / "nowhere")), verbose=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
